//! Refunds' messages: the request, the admin's decision and each step of the compensation.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;
use crate::ordering::OrderLine;

/// `cmd.ordering.request_refund`. The request id is derived from the order (one per order),
/// so a repeated request is the same request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRefund {
    pub request_id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    /// The api's policy check when the request was made.
    pub within_policy: bool,
    pub policy_note: String,
}

impl Message for RequestRefund {
    const TYPE: &'static str = "ordering.request_refund";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.ordering.request_refund".to_owned()
    }
}

/// `cmd.ordering.decide_refund`: an admin approves or denies a request waiting for review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecideRefund {
    pub order_id: Uuid,
    pub admin_id: Uuid,
    pub approve: bool,
    pub note: String,
}

impl Message for DecideRefund {
    const TYPE: &'static str = "ordering.decide_refund";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.ordering.decide_refund".to_owned()
    }
}

/// `evt.ordering.refund_requested.<order>`: a request outside the policy waits for an admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequested {
    pub request_id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    pub policy_note: String,
}

impl Message for RefundRequested {
    const TYPE: &'static str = "ordering.refund_requested";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.refund_requested.{}", self.order_id)
    }
}

/// `evt.ordering.refund_approved.<order>`: the compensation starts (library revokes first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundApproved {
    pub request_id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    /// The admin who approved it; `None` when the policy did.
    pub approved_by: Option<Uuid>,
}

impl Message for RefundApproved {
    const TYPE: &'static str = "ordering.refund_approved";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.refund_approved.{}", self.order_id)
    }
}

/// `evt.ordering.refund_denied.<order>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundDenied {
    pub request_id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub note: String,
}

impl Message for RefundDenied {
    const TYPE: &'static str = "ordering.refund_denied";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.refund_denied.{}", self.order_id)
    }
}

/// `evt.library.entitlements_revoked.<order>`: the refunded order's entitlements are revoked
/// and their keys deactivated; billing gives the money back next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementsRevoked {
    pub request_id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub entitlement_ids: Vec<Uuid>,
}

impl Message for EntitlementsRevoked {
    const TYPE: &'static str = "library.entitlements_revoked";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.library.entitlements_revoked.{}", self.order_id)
    }
}

/// `evt.ordering.order_refunded.<order>`: the end of the compensation. Carries the lines so
/// that notification can tell each publisher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: crate::money::Currency,
}

impl Message for OrderRefunded {
    const TYPE: &'static str = "ordering.order_refunded";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.order_refunded.{}", self.order_id)
    }
}
