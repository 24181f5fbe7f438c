//! Discounts: a publisher's timed percentage off one edition. The rules here are checked
//! before anything is stored; at most one discount of an edition runs at any instant (the
//! database refuses overlapping windows), and the price an order pays is taken at
//! `placeOrder` from the discount running at that instant.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The deepest discount a publisher may give.
pub const MAX_DISCOUNT_PERCENT: i32 = 95;

/// The longest a discount may run.
pub const MAX_DISCOUNT_DAYS: i64 = 92;

/// How far ahead a discount may be scheduled.
pub const MAX_DISCOUNT_LEAD_DAYS: i64 = 366;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscountError {
    #[error("a discount is 1 to {MAX_DISCOUNT_PERCENT} percent off")]
    Percent,
    #[error("a discount must end after it starts")]
    Window,
    #[error("a discount must end in the future")]
    EndsInPast,
    #[error("a discount may run for at most {MAX_DISCOUNT_DAYS} days")]
    TooLong,
    #[error("a discount may be scheduled at most {MAX_DISCOUNT_LEAD_DAYS} days ahead")]
    TooFarAhead,
    #[error("the reason must have at most 500 characters")]
    Reason,
}

impl DiscountError {
    /// The input field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            DiscountError::Percent => "percent",
            DiscountError::Window | DiscountError::EndsInPast | DiscountError::TooLong => "endsAt",
            DiscountError::TooFarAhead => "startsAt",
            DiscountError::Reason => "reason",
        }
    }
}

/// A checked discount schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub percent: i16,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Checks a discount asked for at `now`. A start in the past means "from now" (the window is
/// never back-dated: orders already placed keep their price).
pub fn schedule(
    percent: i32,
    starts_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Schedule, DiscountError> {
    if !(1..=MAX_DISCOUNT_PERCENT).contains(&percent) {
        return Err(DiscountError::Percent);
    }
    let requested = starts_at.unwrap_or(now);
    if ends_at <= requested {
        return Err(DiscountError::Window);
    }
    if ends_at <= now {
        return Err(DiscountError::EndsInPast);
    }
    let starts_at = requested.max(now);
    if requested - now > Duration::days(MAX_DISCOUNT_LEAD_DAYS) {
        return Err(DiscountError::TooFarAhead);
    }
    if ends_at - starts_at > Duration::days(MAX_DISCOUNT_DAYS) {
        return Err(DiscountError::TooLong);
    }
    Ok(Schedule {
        percent: percent as i16,
        starts_at,
        ends_at,
    })
}

/// Checks the reason given for ending a discount early (optional, at most 500 characters).
pub fn parse_reason(reason: Option<&str>) -> Result<Option<String>, DiscountError> {
    let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if r.chars().count() > 500 {
        return Err(DiscountError::Reason);
    }
    Ok(Some(r.to_owned()))
}

/// The price after `percent` off, in whole minor units, rounded half up (19.99 at 33 % off is
/// 13.39). Integer arithmetic only.
pub const fn discounted(price_minor: i64, percent: i16) -> i64 {
    let keep = 100 - percent as i64;
    (price_minor * keep + 50) / 100
}

/// Accounts told of one wishlisted product going on sale, per event (a discount on a product
/// wished for by many is told in several events).
pub const WISHERS_PER_EVENT: usize = 500;

/// `evt.catalog.wished_item_on_sale.<product>`: a discount on an edition of a product started;
/// `accounts` (one part of those who wished for it) are told, once per discount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WishedItemOnSale {
    pub discount_id: Uuid,
    pub product_id: Uuid,
    pub product_title: String,
    pub edition_name: String,
    pub percent: i16,
    pub ends_at: DateTime<Utc>,
    pub accounts: Vec<Uuid>,
}

impl crate::messaging::Message for WishedItemOnSale {
    const TYPE: &'static str = "catalog.wished_item_on_sale";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.catalog.wished_item_on_sale.{}", self.product_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range")
    }

    #[test]
    fn percent_and_window_are_checked() {
        let now = at(0);
        assert_eq!(schedule(0, None, at(60), now), Err(DiscountError::Percent));
        assert_eq!(schedule(96, None, at(60), now), Err(DiscountError::Percent));
        assert!(schedule(95, None, at(60), now).is_ok());
        assert_eq!(
            schedule(10, Some(at(120)), at(60), now),
            Err(DiscountError::Window)
        );
        assert_eq!(
            schedule(10, Some(at(60)), at(60), now),
            Err(DiscountError::Window)
        );
        assert_eq!(
            schedule(10, Some(at(-120)), at(-60), now),
            Err(DiscountError::EndsInPast)
        );
        assert_eq!(
            schedule(10, None, at(93 * 86_400), now),
            Err(DiscountError::TooLong)
        );
        assert_eq!(
            schedule(10, Some(at(367 * 86_400)), at(368 * 86_400), now),
            Err(DiscountError::TooFarAhead)
        );
    }

    #[test]
    fn a_start_in_the_past_starts_now() {
        let s = schedule(20, Some(at(-600)), at(600), at(0)).expect("valid");
        assert_eq!(s.starts_at, at(0));
        assert_eq!(s.ends_at, at(600));
        assert_eq!(s.percent, 20);
    }

    #[test]
    fn discounted_prices_round_half_up_in_minor_units() {
        assert_eq!(discounted(1999, 33), 1339);
        assert_eq!(discounted(1999, 50), 1000);
        assert_eq!(discounted(1000, 95), 50);
        assert_eq!(discounted(1, 50), 1);
        assert_eq!(discounted(0, 10), 0);
        // A currency without minor units (JPY) rounds to whole yen.
        assert_eq!(discounted(1500, 33), 1005);
    }
}
