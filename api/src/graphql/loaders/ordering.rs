//! Ordering's loaders: the lines and the timeline of orders; and the priming of an order list
//! (with the shipments and refund requests of its orders, and its buyers' e-mails).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Lookahead;
use async_graphql::dataloader::Loader;
use domain::ordering::OrderLine;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::Loaders;
use crate::infra::error::ApiError;
use crate::ordering::Step;

/// The lines of orders, in line order (empty for an unknown order).
pub struct LinesByOrder(pub DatabaseConnection);

impl Loader<Uuid> for LinesByOrder {
    type Value = Vec<OrderLine>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::ordering::lines_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// The saga's steps of orders, oldest first (empty for an unknown order).
pub struct TimelineByOrder(pub DatabaseConnection);

impl Loader<Uuid> for TimelineByOrder {
    type Value = Vec<Step>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::ordering::timelines_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

impl Loaders {
    /// Loads, in one statement per kind and at the same time, what the selection `node` of an
    /// order list asks for: lines, timeline, shipment, refund request, and the buyers' e-mails
    /// (`buyers`: the account of each order, in any order, repeats allowed).
    pub async fn prime_orders(
        &self,
        node: Lookahead<'_>,
        orders: &[Uuid],
        buyers: &[Uuid],
    ) -> Result<(), Arc<ApiError>> {
        let ids = || orders.iter().copied();
        futures::future::try_join5(
            async {
                if node.field("lines").exists() {
                    self.lines.load_many(ids()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
            async {
                if node.field("timeline").exists() {
                    self.timelines.load_many(ids()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
            async {
                if node.field("shipment").exists() {
                    self.shipments.load_many(ids()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
            async {
                if node.field("refundRequest").exists() {
                    self.refunds.load_many(ids()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
            async {
                if node.field("buyerEmail").exists() {
                    self.emails.load_many(buyers.iter().copied()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
        )
        .await?;
        Ok(())
    }
}
