//! Notification: what an account is told about (orders, wallet, sales), and in what words
//! ([`model`]).

pub mod model;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;
pub use model::{Note, Notifies};

/// Kinds of notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// To a buyer: an order is complete.
    OrderCompleted,
    /// To a buyer: an order was cancelled (e.g. the payment did not go through).
    OrderCancelled,
    /// To a buyer: a top-up reached the wallet.
    WalletCredited,
    /// To a buyer: a top-up was declined.
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
    /// To a buyer: a refund request outside the policy waits for an admin.
    RefundRequested,
    /// To a buyer: an admin denied the refund request.
    RefundDenied,
    /// To a buyer: the order is refunded (its items left the library, the money is back).
    OrderRefunded,
    /// To a publisher: a sale of theirs was refunded (its revenue reversed).
    SaleRefunded,
    /// To a publisher: a batch of gift keys is ready.
    GiftKeysReady,
    /// To the account that redeemed a gift key: the product is in the library.
    KeyRedeemed,
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
            NotificationKind::RefundRequested => "REFUND_REQUESTED",
            NotificationKind::RefundDenied => "REFUND_DENIED",
            NotificationKind::OrderRefunded => "ORDER_REFUNDED",
            NotificationKind::SaleRefunded => "SALE_REFUNDED",
            NotificationKind::GiftKeysReady => "GIFT_KEYS_READY",
            NotificationKind::KeyRedeemed => "KEY_REDEEMED",
        }
    }

    /// Every kind, in the order of the enum.
    pub const ALL: [NotificationKind; 15] = [
        NotificationKind::OrderCompleted,
        NotificationKind::OrderCancelled,
        NotificationKind::WalletCredited,
        NotificationKind::TopUpDeclined,
        NotificationKind::Sale,
        NotificationKind::ShipmentToSend,
        NotificationKind::ShippingReminder,
        NotificationKind::ShipmentDispatched,
        NotificationKind::PaymentRefunded,
        NotificationKind::RefundRequested,
        NotificationKind::RefundDenied,
        NotificationKind::OrderRefunded,
        NotificationKind::SaleRefunded,
        NotificationKind::GiftKeysReady,
        NotificationKind::KeyRedeemed,
    ];

    pub fn parse(s: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|x| x.as_str() == s)
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
