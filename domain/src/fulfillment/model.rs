//! Fulfillment's pure types and rules: stock changes, shipped lines, deadlines, cancel
//! reasons and the shipment's status.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The address value lives apart, shared with ordering (an order carries one).
pub use crate::address::{AddressError, ShippingAddress};

/// How a stock change applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockMode {
    /// The stock on hand becomes `quantity` (never below what is reserved).
    Set,
    /// `quantity` (may be negative) is added to the stock on hand.
    Add,
}

/// Largest stock change or level accepted at once.
pub const MAX_STOCK: i64 = 1_000_000;

/// Longest carrier name and tracking number.
pub const MAX_TRACKING_LEN: usize = 100;

/// A physical line as shipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedLine {
    pub edition_id: Uuid,
    pub product_id: Uuid,
    pub publisher_id: Uuid,
    pub quantity: i32,
}

/// Default time a publisher has to ship a paid order (7 days).
pub const DEFAULT_SHIPPING_DEADLINE_SECS: u64 = 7 * 24 * 3600;

/// Cancel reason: the buyer cancelled before dispatch.
pub const CANCELLED_BY_BUYER: &str = "CANCELLED_BY_BUYER";
/// Cancel reason: the publisher did not ship in time.
pub const SHIPPING_DEADLINE_PASSED: &str = "SHIPPING_DEADLINE_PASSED";
/// Cancel reason: the order's reservation waited for its payment longer than the reservation
/// deadline (billing did not answer); the copies go back to the stock.
pub const PAYMENT_DEADLINE_PASSED: &str = "PAYMENT_DEADLINE_PASSED";
/// Default time a reservation waits for its payment (30 minutes).
pub const DEFAULT_RESERVATION_DEADLINE_SECS: u64 = 30 * 60;

/// The cancel reason of an order whose physical lines could not be reserved (ordering's word:
/// its rules cancel the order with it).
pub use crate::ordering::OUT_OF_STOCK;

/// Where the shipment of an order is (`fulfillment.shipment.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatus {
    /// Stock reserved, payment pending.
    Reserved,
    /// Paid; the publisher may ship.
    AwaitingShipment,
    /// Dispatched. Terminal.
    Shipped,
    /// Reservation given back (declined, cancelled, out of stock). Terminal.
    Released,
}

impl ShipmentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Reserved => "RESERVED",
            ShipmentStatus::AwaitingShipment => "AWAITING_SHIPMENT",
            ShipmentStatus::Shipped => "SHIPPED",
            ShipmentStatus::Released => "RELEASED",
        }
    }

    pub fn parse(s: &str) -> Option<ShipmentStatus> {
        [
            ShipmentStatus::Reserved,
            ShipmentStatus::AwaitingShipment,
            ShipmentStatus::Shipped,
            ShipmentStatus::Released,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}
