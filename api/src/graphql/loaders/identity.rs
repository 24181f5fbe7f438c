//! Identity's loader: the e-mail of accounts (the buyers of a page of orders, for admins).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use domain::identity::entity::account;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::infra::error::ApiError;

/// The e-mail of accounts (`None` for an unknown account), one statement for every key.
pub struct AccountEmails(pub DatabaseConnection);

impl Loader<Uuid> for AccountEmails {
    type Value = Option<String>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows: Vec<(Uuid, String)> = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .column(account::Column::Email)
            .filter(account::Column::Id.is_in(keys.iter().copied()))
            .into_tuple()
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut map: HashMap<Uuid, Self::Value> = keys.iter().map(|k| (*k, None)).collect();
        map.extend(rows.into_iter().map(|(id, email)| (id, Some(email))));
        Ok(map)
    }
}
