//! Refunds of completed orders (held by ordering: `ordering.refund_request`, one per order).
//!
//! The compensating saga: `RequestRefund` → ordering records the request and, inside the
//! policy, approves it at once (`RefundApproved`), otherwise waits for an admin
//! (`RefundRequested`, then `DecideRefund` → `RefundApproved` or `RefundDenied`) → library
//! revokes the order's entitlements and deactivates their keys (`EntitlementsRevoked`) →
//! billing gives the payment back and reverses the publishers' revenue (`PaymentRefunded`
//! with the request id) → ordering marks the order `REFUNDED` (`OrderRefunded`) → notification
//! tells the buyer and each publisher.

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
