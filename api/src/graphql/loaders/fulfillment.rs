//! Fulfillment's loader: the shipment of orders.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::fulfillment::ShipmentRow;
use crate::infra::error::ApiError;

/// The shipment of orders (`None` for an order without one: a digital order).
pub struct ShipmentByOrder(pub DatabaseConnection);

impl Loader<Uuid> for ShipmentByOrder {
    type Value = Option<ShipmentRow>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::fulfillment::shipments_of(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}
