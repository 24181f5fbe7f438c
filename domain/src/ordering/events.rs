//! Ordering's messages: the command that places an order and the events of its outcome.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::OrderLine;
use crate::address::ShippingAddress;
use crate::messaging::Message;
use crate::money::Currency;

/// `cmd.ordering.place`: the api asks ordering to create an order. The order id is derived
/// from (account, idempotency key), so a replayed command names the same order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub idempotency_key: String,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    /// Where the physical lines go (present exactly when there are physical lines).
    #[serde(default)]
    pub shipping_address: Option<ShippingAddress>,
    /// Where the order is taxed (ISO country, and a US state), as the api decided at
    /// `placeOrder`; `None` for orders placed before taxes were recorded.
    #[serde(default)]
    pub tax_place: Option<crate::tax::Place>,
}

impl Message for PlaceOrder {
    const TYPE: &'static str = "ordering.place";
    /// 2: `shipping_address`.
    const VERSION: u32 = 2;
    fn subject(&self) -> String {
        "cmd.ordering.place".to_owned()
    }
}

/// `evt.ordering.order_placed.<order>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
    pub needs_shipping: bool,
    /// Where the physical lines go (when `needs_shipping`).
    #[serde(default)]
    pub shipping_address: Option<ShippingAddress>,
}

impl Message for OrderPlaced {
    const TYPE: &'static str = "ordering.order_placed";
    /// 2: `shipping_address`.
    const VERSION: u32 = 2;
    fn subject(&self) -> String {
        format!("evt.ordering.order_placed.{}", self.order_id)
    }
}

/// `evt.ordering.order_completed.<order>`: every line delivered. Carries the lines so that
/// notification can tell each publisher about the sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCompleted {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
}

impl Message for OrderCompleted {
    const TYPE: &'static str = "ordering.order_completed";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.order_completed.{}", self.order_id)
    }
}

/// `evt.ordering.order_cancelled.<order>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub account_id: Uuid,
    /// A machine-readable reason, e.g. `INSUFFICIENT_FUNDS`.
    pub reason: String,
}

impl Message for OrderCancelled {
    const TYPE: &'static str = "ordering.order_cancelled";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.order_cancelled.{}", self.order_id)
    }
}
