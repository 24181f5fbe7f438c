//! Refunds of completed orders (held by ordering: `ordering.refund_request`, one per order).
//!
//! The compensating saga: `RequestRefund` → ordering records the request and, inside the
//! policy, approves it at once (`RefundApproved`), otherwise waits for an admin
//! (`RefundRequested`, then `DecideRefund` → `RefundApproved` or `RefundDenied`) → library
//! revokes the order's entitlements and deactivates their keys (`EntitlementsRevoked`) →
//! billing gives the payment back and reverses the publishers' revenue (`PaymentRefunded`
//! with the request id) → ordering marks the order `REFUNDED` (`OrderRefunded`) → notification
//! tells the buyer and each publisher.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;
use crate::ordering::OrderLine;

/// Days after completion within which a never-downloaded order is refunded without review.
pub const DEFAULT_WINDOW_DAYS: u32 = 14;
/// Longest reason a buyer may give.
pub const MAX_REASON_CHARS: usize = 2000;

/// The refund policy (settings `REFUND_WINDOW_DAYS`, `REFUND_ALLOW_DOWNLOADED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub window_days: u32,
    /// Whether a downloaded order may still be refunded without review.
    pub allow_downloaded: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            window_days: DEFAULT_WINDOW_DAYS,
            allow_downloaded: false,
        }
    }
}

/// Why a request falls outside the policy (it then waits for an admin).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyMiss {
    #[error("the order completed more than {0} days ago")]
    TooLate(u32),
    #[error("a build of the order was downloaded")]
    Downloaded,
}

impl Policy {
    /// Whether a refund of an order completed at `completed_at`, asked for at `now`, is within
    /// the policy. `downloaded`: a download link was handed out for one of its entitlements.
    pub fn check(
        &self,
        completed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        downloaded: bool,
    ) -> Result<(), PolicyMiss> {
        let window = chrono::Duration::days(i64::from(self.window_days));
        if now - completed_at > window {
            return Err(PolicyMiss::TooLate(self.window_days));
        }
        if downloaded && !self.allow_downloaded {
            return Err(PolicyMiss::Downloaded);
        }
        Ok(())
    }

    /// The note kept with a request: why it was approved at once or sent to review.
    pub fn note(&self, result: &Result<(), PolicyMiss>) -> String {
        match result {
            Ok(()) => format!(
                "within {} days of purchase and never downloaded",
                self.window_days
            ),
            Err(miss) => miss.to_string(),
        }
    }
}

/// Where a refund request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    PendingReview,
    Approved,
    Denied,
}

impl RefundStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RefundStatus::PendingReview => "PENDING_REVIEW",
            RefundStatus::Approved => "APPROVED",
            RefundStatus::Denied => "DENIED",
        }
    }

    pub fn parse(s: &str) -> Option<RefundStatus> {
        [
            RefundStatus::PendingReview,
            RefundStatus::Approved,
            RefundStatus::Denied,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_window_and_downloads() {
        let p = Policy::default();
        let done = Utc::now() - chrono::Duration::days(3);
        assert_eq!(p.check(done, Utc::now(), false), Ok(()));
        assert_eq!(p.check(done, Utc::now(), true), Err(PolicyMiss::Downloaded));
        let old = Utc::now() - chrono::Duration::days(15);
        assert_eq!(
            p.check(old, Utc::now(), false),
            Err(PolicyMiss::TooLate(14))
        );
        let lenient = Policy {
            window_days: 30,
            allow_downloaded: true,
        };
        assert_eq!(lenient.check(old, Utc::now(), true), Ok(()));
        assert!(p.note(&Err(PolicyMiss::Downloaded)).contains("downloaded"));
    }
}
