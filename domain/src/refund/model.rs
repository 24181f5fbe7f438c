//! Refunds' pure types and rules: the refund policy and the status of a request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
