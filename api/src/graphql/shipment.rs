//! The shipment of an order in GraphQL (`Order.shipment`, `PendingShipment.address`): its
//! status, address and tracking.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use crate::fulfillment::ShipmentRow;
use crate::graphql::error::stored;
use crate::infra::error::ApiError;

/// Where the physical lines of an order go.
#[derive(SimpleObject, Clone, Debug)]
pub struct ShippingAddress {
    pub name: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub postal_code: String,
    pub street: String,
    pub phone: String,
}

impl From<domain::fulfillment::ShippingAddress> for ShippingAddress {
    fn from(a: domain::fulfillment::ShippingAddress) -> ShippingAddress {
        ShippingAddress {
            name: a.name,
            country: a.country,
            region: a.region,
            city: a.city,
            postal_code: a.postal_code,
            street: a.street,
            phone: a.phone,
        }
    }
}

/// Where the shipment of an order's boxed copies is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::fulfillment::ShipmentStatus")]
pub enum ShipmentStatus {
    /// The copies are reserved from the stock; the payment is pending.
    Reserved,
    /// Paid; waiting for the publisher to ship the parcel.
    AwaitingShipment,
    /// The parcel left (`carrier` and `trackingNumber` say where it is).
    Shipped,
    /// The reservation was given back (payment declined, order cancelled or out of stock);
    /// nothing will be shipped.
    Released,
}

/// The shipment of an order's physical lines.
#[derive(SimpleObject, Clone, Debug)]
pub struct Shipment {
    pub status: ShipmentStatus,
    pub address: ShippingAddress,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
}

impl TryFrom<ShipmentRow> for Shipment {
    type Error = ApiError;

    fn try_from(s: ShipmentRow) -> Result<Shipment, ApiError> {
        Ok(Shipment {
            status: stored(
                "shipment status",
                &s.status,
                domain::fulfillment::ShipmentStatus::parse,
            )?
            .into(),
            address: s.address.into(),
            carrier: s.carrier,
            tracking_number: s.tracking_number,
            paid_at: s.paid_at,
            shipped_at: s.shipped_at,
        })
    }
}
