//! Notification: what an account is told about (orders, wallet, sales).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;

/// Kinds of notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    OrderCompleted,
    OrderCancelled,
    WalletCredited,
    TopUpDeclined,
    /// To a publisher: a product of theirs was sold.
    Sale,
    /// To a publisher: a paid order waits for them to ship it.
    ShipmentToSend,
    /// To a publisher: half the shipping deadline of an order is gone.
    ShippingReminder,
    /// To a buyer: the parcel left (with the tracking number).
    ShipmentDispatched,
    /// To a buyer: the payment of a cancelled order went back to the wallet.
    PaymentRefunded,
}

impl NotificationKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationKind::OrderCompleted => "ORDER_COMPLETED",
            NotificationKind::OrderCancelled => "ORDER_CANCELLED",
            NotificationKind::WalletCredited => "WALLET_CREDITED",
            NotificationKind::TopUpDeclined => "TOP_UP_DECLINED",
            NotificationKind::Sale => "SALE",
            NotificationKind::ShipmentToSend => "SHIPMENT_TO_SEND",
            NotificationKind::ShippingReminder => "SHIPPING_REMINDER",
            NotificationKind::ShipmentDispatched => "SHIPMENT_DISPATCHED",
            NotificationKind::PaymentRefunded => "PAYMENT_REFUNDED",
        }
    }
}

/// `evt.notification.created.<account>`: a notification was stored (feeds the live push).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCreated {
    pub notification_id: Uuid,
    pub account_id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub order_id: Option<Uuid>,
}

impl Message for NotificationCreated {
    const TYPE: &'static str = "notification.created";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.notification.created.{}", self.account_id)
    }
}

/// `cmd.notification.mark_read`: the account has read everything created up to `up_to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRead {
    pub account_id: Uuid,
    pub up_to: chrono::DateTime<chrono::Utc>,
}

impl Message for MarkRead {
    const TYPE: &'static str = "notification.mark_read";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.notification.mark_read".to_owned()
    }
}
