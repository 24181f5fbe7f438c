//! Billing's messages: the top-up command and the events of payments, refunds and the wallet.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::DeclineReason;
use crate::messaging::Message;
use crate::money::Currency;
use crate::ordering::OrderLine;

/// `cmd.billing.top_up`. The top-up id is derived from (account, idempotency key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    pub top_up_id: Uuid,
    pub account_id: Uuid,
    pub amount_minor: i64,
    pub currency: Currency,
    /// A payment method token of the provider (for the sandbox: a test card number).
    pub payment_method: String,
}

impl Message for TopUp {
    const TYPE: &'static str = "billing.top_up";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.billing.top_up".to_owned()
    }
}

/// `evt.billing.payment_captured.<order>`: the wallet was debited. Carries the lines, so that
/// library grants without reading another context's tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub amount_minor: i64,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
}

impl Message for PaymentCaptured {
    const TYPE: &'static str = "billing.payment_captured";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.billing.payment_captured.{}", self.order_id)
    }
}

/// `evt.billing.payment_declined.<order>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDeclined {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub reason: DeclineReason,
}

impl Message for PaymentDeclined {
    const TYPE: &'static str = "billing.payment_declined";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.billing.payment_declined.{}", self.order_id)
    }
}

/// `evt.billing.payment_refunded.<order>`: the debit of a cancelled order went back to the
/// wallet (a `refund` ledger entry, at most one per order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub amount_minor: i64,
    pub currency: Currency,
    /// Why the order was cancelled, e.g. `CANCELLED_BY_BUYER`, or `REFUND_APPROVED`.
    pub reason: String,
    /// The refund request this settles (a completed order refunded); `None` for the refund
    /// of an order cancelled before dispatch.
    #[serde(default)]
    pub refund_request: Option<Uuid>,
    /// A cancellation before dispatch that refunded only the physical lines: the digital ones
    /// (downloaded, or out of the refund window) stay in the buyer's library, paid.
    #[serde(default)]
    pub digital_kept: bool,
}

impl Message for PaymentRefunded {
    const TYPE: &'static str = "billing.payment_refunded";
    /// 2: `refund_request`. 3: `digital_kept`.
    const VERSION: u32 = 3;
    fn subject(&self) -> String {
        format!("evt.billing.payment_refunded.{}", self.order_id)
    }
}

/// `evt.billing.wallet_credited.<account>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletCredited {
    pub top_up_id: Uuid,
    pub account_id: Uuid,
    pub amount_minor: i64,
    pub currency: Currency,
    pub balance_minor: i64,
}

impl Message for WalletCredited {
    const TYPE: &'static str = "billing.wallet_credited";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.billing.wallet_credited.{}", self.account_id)
    }
}

/// `evt.billing.top_up_declined.<account>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpDeclined {
    pub top_up_id: Uuid,
    pub account_id: Uuid,
    pub amount_minor: i64,
    pub reason: String,
}

impl Message for TopUpDeclined {
    const TYPE: &'static str = "billing.top_up_declined";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.billing.top_up_declined.{}", self.account_id)
    }
}
