//! Fulfillment's messages: stock, shipment and cancellation commands and events.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{ShippedLine, StockMode};
use crate::messaging::Message;
use crate::money::Currency;
use crate::ordering::OrderLine;

/// `cmd.fulfillment.adjust_stock`: a publisher changes the stock of a physical edition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustStock {
    pub edition_id: Uuid,
    pub product_id: Uuid,
    pub publisher_id: Uuid,
    pub mode: StockMode,
    pub quantity: i64,
}

impl Message for AdjustStock {
    const TYPE: &'static str = "fulfillment.adjust_stock";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.fulfillment.adjust_stock".to_owned()
    }
}

/// `evt.fulfillment.stock_reserved.<order>`: every physical line of the order is reserved.
/// Carries what billing needs to debit the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
}

impl Message for StockReserved {
    const TYPE: &'static str = "fulfillment.stock_reserved";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.stock_reserved.{}", self.order_id)
    }
}

/// `evt.fulfillment.stock_unavailable.<order>`: some physical line could not be reserved;
/// nothing was reserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockUnavailable {
    pub order_id: Uuid,
    pub account_id: Uuid,
    /// The editions short of stock.
    pub edition_ids: Vec<Uuid>,
}

impl Message for StockUnavailable {
    const TYPE: &'static str = "fulfillment.stock_unavailable";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.stock_unavailable.{}", self.order_id)
    }
}

/// `cmd.fulfillment.ship`: a publisher dispatched the physical lines of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipOrder {
    pub order_id: Uuid,
    /// The publisher shipping: must be the publisher of every physical line.
    pub publisher_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
}

impl Message for ShipOrder {
    const TYPE: &'static str = "fulfillment.ship";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.fulfillment.ship".to_owned()
    }
}

/// `evt.fulfillment.shipment_dispatched.<order>`: the parcel left; the reserved copies left the
/// stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentDispatched {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub publisher_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
    pub lines: Vec<ShippedLine>,
}

impl Message for ShipmentDispatched {
    const TYPE: &'static str = "fulfillment.shipment_dispatched";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.shipment_dispatched.{}", self.order_id)
    }
}

/// `evt.fulfillment.shipment_rejected.<order>`: a `ShipOrder` that could not apply (the order
/// is not awaiting shipment, e.g. cancelled a moment before, or not the publisher's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRejected {
    pub order_id: Uuid,
    pub publisher_id: Uuid,
    /// `NOT_AWAITING_SHIPMENT` or `NOT_YOUR_ORDER`.
    pub reason: String,
}

impl Message for ShipmentRejected {
    const TYPE: &'static str = "fulfillment.shipment_rejected";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.shipment_rejected.{}", self.order_id)
    }
}

/// `evt.fulfillment.ready_to_ship.<order>`: the order is paid and its reservation waits for
/// the publisher (shipment `AWAITING_SHIPMENT`). Ordering moves the order to
/// `AWAITING_SHIPMENT` on it, so a publisher who sees that status can ship at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyToShip {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<ShippedLine>,
}

impl Message for ReadyToShip {
    const TYPE: &'static str = "fulfillment.ready_to_ship";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.ready_to_ship.{}", self.order_id)
    }
}

/// `cmd.fulfillment.remind`: half the shipping deadline of an order is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemindShipment {
    pub order_id: Uuid,
    pub deadline_at: chrono::DateTime<chrono::Utc>,
}

impl Message for RemindShipment {
    const TYPE: &'static str = "fulfillment.remind";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.fulfillment.remind".to_owned()
    }
}

/// `evt.fulfillment.shipping_reminder.<order>`: the publishers of an order awaiting shipment
/// are reminded (once) that its deadline is half gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingReminder {
    pub order_id: Uuid,
    pub publisher_ids: Vec<Uuid>,
    pub deadline_at: chrono::DateTime<chrono::Utc>,
}

impl Message for ShippingReminder {
    const TYPE: &'static str = "fulfillment.shipping_reminder";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.shipping_reminder.{}", self.order_id)
    }
}

/// `cmd.fulfillment.cancel`: an order awaiting shipment is to be cancelled (by its buyer, or
/// because the shipping deadline passed). Fulfillment decides against a racing shipment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelShipment {
    pub order_id: Uuid,
    /// `CANCELLED_BY_BUYER`, `SHIPPING_DEADLINE_PASSED`, or `PAYMENT_DEADLINE_PASSED` (an
    /// order still `RESERVED`, i.e. not paid yet).
    pub reason: String,
    /// Whether the digital lines of the order are refunded (and revoked) too: only when the
    /// refund policy allows it (never downloaded, within the window), which the api decides at
    /// the order's refund gate. Otherwise only the physical lines are refunded and the digital
    /// ones stay in the library. A deadline cancellation keeps them.
    #[serde(default)]
    pub refund_digital: bool,
}

impl Message for CancelShipment {
    const TYPE: &'static str = "fulfillment.cancel";
    /// 2: `refund_digital`.
    const VERSION: u32 = 2;
    fn subject(&self) -> String {
        "cmd.fulfillment.cancel".to_owned()
    }
}

/// `evt.fulfillment.shipment_cancelled.<order>`: the reservation of a paid order was released
/// before dispatch; billing refunds (the physical lines, and the digital ones with
/// `refund_digital`), library revokes what was refunded, ordering cancels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentCancelled {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    /// The cancellation's [`CancelShipment::refund_digital`].
    #[serde(default)]
    pub refund_digital: bool,
}

impl Message for ShipmentCancelled {
    const TYPE: &'static str = "fulfillment.shipment_cancelled";
    /// 2: `refund_digital`.
    const VERSION: u32 = 2;
    fn subject(&self) -> String {
        format!("evt.fulfillment.shipment_cancelled.{}", self.order_id)
    }
}

/// `evt.fulfillment.cancel_rejected.<order>`: a `CancelShipment` that could not apply (the
/// parcel left first, or the order is not awaiting shipment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRejected {
    pub order_id: Uuid,
    /// The shipment's status then.
    pub status: String,
}

impl Message for CancelRejected {
    const TYPE: &'static str = "fulfillment.cancel_rejected";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.fulfillment.cancel_rejected.{}", self.order_id)
    }
}
