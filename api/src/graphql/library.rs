//! Library in GraphQL: `library`, `ownsProduct`.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::catalog::entity::{edition, product};
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::error::ApiError;
use crate::graphql::catalog::types::{Edition, Product};
use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::paging;
use crate::library as service;
use crate::state::AppState;

/// Something the caller owns.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct LibraryItem {
    pub id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    pub order_id: Uuid,
    /// `XXXXX-XXXXX-XXXXX-XXXXX`, unique.
    pub license_key: String,
    pub granted_at: DateTime<Utc>,
}

#[ComplexObject]
impl LibraryItem {
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        let state = ctx.data::<AppState>()?;
        Ok(product::Entity::find_by_id(self.product_id)
            .one(&state.db)
            .await
            .map_err(ApiError::from)?
            .map(Product::from))
    }

    async fn edition(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Edition>> {
        let state = ctx.data::<AppState>()?;
        Ok(edition::Entity::find_by_id(self.edition_id)
            .one(&state.db)
            .await
            .map_err(ApiError::from)?
            .map(Edition::from))
    }
}

#[derive(Default)]
pub struct LibraryQuery;

#[Object]
impl LibraryQuery {
    /// What the caller owns, newest first.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn library(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, LibraryItem>> {
        let (state, me) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("item", after.as_deref())?;
        let rows = service::items(state, me.id, cursor, first + 1).await?;
        Ok(paging::page(
            rows,
            first,
            after.is_some(),
            |r| paging::encode("item", &r.id.to_string()),
            |r| LibraryItem {
                id: r.id,
                product_id: r.product_id,
                edition_id: r.edition_id,
                order_id: r.order_id,
                license_key: r.license_key,
                granted_at: r.granted_at,
            },
        ))
    }

    /// Whether the caller owns the product (false for anonymous callers).
    async fn owns_product(
        &self,
        ctx: &Context<'_>,
        product_id: Uuid,
    ) -> async_graphql::Result<bool> {
        let state = ctx.data::<AppState>()?;
        match crate::graphql::guard::caller(ctx).principal() {
            Some(me) => Ok(service::owns(state, me.id, product_id).await?),
            None => Ok(false),
        }
    }
}
