//! Webhooks' pure types and rules: the event types an endpoint subscribes to, the delivery
//! states, the retry schedule and the ids of deliveries.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an endpoint can subscribe to; the wire name (`order.paid`) is the `type` of the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// An order with products of the publisher was paid.
    #[serde(rename = "order.paid")]
    OrderPaid,
    /// The publisher shipped the boxed copies of an order.
    #[serde(rename = "order.shipped")]
    OrderShipped,
    /// An order with products of the publisher was refunded.
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    /// Products of the publisher entered a buyer's library.
    #[serde(rename = "entitlement.granted")]
    EntitlementGranted,
    /// Products of the publisher left a buyer's library (a refund, a cancellation).
    #[serde(rename = "entitlement.revoked")]
    EntitlementRevoked,
    /// A build of the publisher's product became the current one of its platform.
    #[serde(rename = "build.made_current")]
    BuildMadeCurrent,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::OrderPaid,
        EventType::OrderShipped,
        EventType::OrderRefunded,
        EventType::EntitlementGranted,
        EventType::EntitlementRevoked,
        EventType::BuildMadeCurrent,
    ];

    /// The wire name, e.g. `order.paid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::OrderPaid => "order.paid",
            EventType::OrderShipped => "order.shipped",
            EventType::OrderRefunded => "order.refunded",
            EventType::EntitlementGranted => "entitlement.granted",
            EventType::EntitlementRevoked => "entitlement.revoked",
            EventType::BuildMadeCurrent => "build.made_current",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Not delivered yet: the next attempt is due at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Every attempt of the schedule failed (a redelivery schedules it again).
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Succeeded => "SUCCEEDED",
            DeliveryStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// The delays after each failed attempt (Standard Webhooks' and Svix's schedule, stretched to
/// almost three days): 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h six times. Twelve attempts in
/// all, the last about 67.6 hours after the first.
pub const RETRY_SCHEDULE_SECS: [u64; 11] = [
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
    10 * 3600,
];

/// The retry schedule, each delay multiplied by `scale` (tests shrink it).
pub fn retry_schedule(scale: f64) -> Vec<Duration> {
    RETRY_SCHEDULE_SECS
        .iter()
        .map(|s| Duration::from_secs(*s).mul_f64(scale.max(0.0)))
        .collect()
}

/// The delay before the next attempt after `attempts` failed ones, with `jitter` in [0, 1)
/// spreading it by up to ±20 %; `None` once the schedule is spent (the delivery failed).
pub fn next_delay(schedule: &[Duration], attempts: u32, jitter: f64) -> Option<Duration> {
    let i = usize::try_from(attempts.checked_sub(1)?).ok()?;
    let base = *schedule.get(i)?;
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Some(base.mul_f64(factor))
}

/// The id of the delivery of event `event` to endpoint `endpoint`: derived from both, so a
/// redelivered event never makes a second delivery. `hash` is SHA-256.
pub fn delivery_id(event: Uuid, endpoint: Uuid, hash: impl Fn(&[u8]) -> [u8; 32]) -> Uuid {
    crate::keys::derived_id("webhook-delivery", endpoint, &event.to_string(), hash)
}

/// The `webhook-id` header of a delivery: `msg_` and its id (the same on every attempt and
/// every redelivery: receivers de-duplicate on it).
pub fn webhook_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}

/// Longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// Longest description of an endpoint.
pub const MAX_DESCRIPTION_LEN: usize = 200;
/// Most endpoints of one publisher.
pub const MAX_ENDPOINTS: u64 = 20;
/// Seconds the previous secret keeps signing after a rotation, by default (24 h).
pub const DEFAULT_SECRET_OVERLAP_SECS: u64 = 24 * 3600;
/// Deliveries in a row whose every attempt failed before the endpoint is disabled, by default.
pub const DEFAULT_DISABLE_AFTER_FAILED_DELIVERIES: u32 = 5;
/// Seconds an endpoint may fail every attempt (no success since) before it is disabled, by
/// default (5 days).
pub const DEFAULT_DISABLE_AFTER_FAILING_SECS: u64 = 5 * 24 * 3600;
/// Days a finished delivery (and its attempts) stays in the log, by default.
pub const DEFAULT_DELIVERY_RETENTION_DAYS: u64 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_almost_three_days_and_then_ends() {
        let s = retry_schedule(1.0);
        let total: Duration = s.iter().sum();
        assert!(total > Duration::from_secs(2 * 86_400) && total < Duration::from_secs(3 * 86_400));
        assert_eq!(next_delay(&s, 1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(next_delay(&s, 12, 0.5), None);
        assert_eq!(next_delay(&s, 0, 0.5), None);
        let low = next_delay(&s, 2, 0.0).expect("delay");
        let high = next_delay(&s, 2, 0.999).expect("delay");
        assert!(low >= Duration::from_secs(240) && high < Duration::from_secs(361));
    }

    #[test]
    fn event_types_round_trip_their_wire_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).expect("json"),
                serde_json::json!(t.as_str())
            );
        }
    }
}
