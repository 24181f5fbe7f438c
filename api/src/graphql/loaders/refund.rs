//! Refunds' loader: the refund request of orders.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::infra::error::ApiError;
use crate::refund::RefundRow;

/// The refund request of orders (`None` for an order without one).
pub struct RefundByOrder(pub DatabaseConnection);

impl Loader<Uuid> for RefundByOrder {
    type Value = Option<RefundRow>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::refund::of_orders(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}
