//! Billing's pure types and rules: decline reasons, ledger entry kinds, top-up limits, the
//! platform fee and the sandbox payment provider's test cards.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ordering::OrderLine;

/// Smallest top-up, minor units (5.00).
pub const DEFAULT_MIN_TOP_UP: i64 = 500;
/// Largest top-up, minor units (500.00).
pub const DEFAULT_MAX_TOP_UP: i64 = 50_000;

/// Why a payment was declined (the wire reason is `as_str`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeclineReason {
    InsufficientFunds,
    WalletFrozen,
    CurrencyMismatch,
}

impl DeclineReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeclineReason::InsufficientFunds => "INSUFFICIENT_FUNDS",
            DeclineReason::WalletFrozen => "WALLET_FROZEN",
            DeclineReason::CurrencyMismatch => "CURRENCY_MISMATCH",
        }
    }
}

/// The kinds of ledger entries. Each happens at most once per reference (order or top-up):
/// `UNIQUE (kind, reference)` in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Money in from a top-up (reference: the top-up).
    Credit,
    /// Money out for an order (reference: the order).
    Debit,
    /// Money back for a cancelled order (reference: the order).
    Refund,
}

impl EntryKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Credit => "credit",
            EntryKind::Debit => "debit",
            EntryKind::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Option<EntryKind> {
        [EntryKind::Credit, EntryKind::Debit, EntryKind::Refund]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Where a top-up is. Billing stores only the settled ones (`billing.top_up.status`, as
/// [`TopUpStatus::as_str`]); a top-up it has not settled yet is `Pending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TopUpStatus {
    /// Requested; the payment provider has not answered yet.
    Pending,
    /// The money is in the wallet.
    Credited,
    /// The payment provider refused it (the reason says why); nothing was charged.
    Declined,
}

impl TopUpStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            TopUpStatus::Pending => "PENDING",
            TopUpStatus::Credited => "CREDITED",
            TopUpStatus::Declined => "DECLINED",
        }
    }

    pub fn parse(s: &str) -> Option<TopUpStatus> {
        [
            TopUpStatus::Pending,
            TopUpStatus::Credited,
            TopUpStatus::Declined,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// What a cancellation before dispatch gives back of an order that was `paid` in full: the
/// physical lines always, the digital lines only with `refund_digital` (the refund policy
/// allowed it: never downloaded, within the window). Returns the amount to refund (never more
/// than `paid`, never negative) and the lines the buyer keeps.
pub fn cancellation_refund(
    lines: &[OrderLine],
    paid: i64,
    refund_digital: bool,
) -> (i64, Vec<OrderLine>) {
    let kept: Vec<OrderLine> = if refund_digital {
        Vec::new()
    } else {
        lines.iter().filter(|l| !l.is_physical()).cloned().collect()
    };
    let kept_total = crate::ordering::total(&kept).unwrap_or(i64::MAX);
    (paid.saturating_sub(kept_total).clamp(0, paid.max(0)), kept)
}

/// The reason of a [`super::PaymentRefunded`] that settles a refund request.
pub const REFUND_APPROVED: &str = "REFUND_APPROVED";

/// Default platform fee on each sale, in basis points (15 %).
pub const DEFAULT_PLATFORM_FEE_BPS: u32 = 1500;

/// The platform's fee on a sale of `gross` minor units at `bps` basis points, rounded half
/// up to a whole minor unit (so gross = fee + publisher's net exactly).
pub fn platform_fee(gross: i64, bps: u32) -> i64 {
    let fee = (i128::from(gross) * i128::from(bps.min(10_000)) + 5_000) / 10_000;
    i64::try_from(fee).unwrap_or(gross)
}

/// A publisher's share of a sale: (gross, fee, net) of each publisher's lines, publishers in
/// ascending id order. `gross` is what the lines sold for without their tax (the tax is the
/// state's, not the publisher's).
pub fn revenue_shares(lines: &[OrderLine], bps: u32) -> Vec<(Uuid, i64, i64, i64)> {
    crate::ordering::by_publisher(lines)
        .into_iter()
        .map(|(p, mine)| {
            // The tax in the price is not the publisher's: shares are of the net amount.
            let gross = mine.iter().map(|l| l.net().unwrap_or(0)).sum::<i64>();
            let fee = platform_fee(gross, bps);
            (p, gross, fee, gross - fee)
        })
        .collect()
}

/// Test cards of the sandbox payment provider (the numbers people know from card sandboxes).
pub mod sandbox {
    /// Approves.
    pub const CARD_APPROVE: &str = "4242424242424242";
    /// Declines (`card_declined`).
    pub const CARD_DECLINE: &str = "4000000000000002";
    /// Fails with a transient processing error on the first two attempts of a top-up, then
    /// approves: shows the retry with backoff.
    pub const CARD_TRANSIENT: &str = "4000000000000119";
    /// How many attempts of a top-up with [`CARD_TRANSIENT`] fail.
    pub const TRANSIENT_FAILURES: u32 = 2;

    /// What the sandbox answers for `card` at attempt `attempt` (1-based).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Outcome {
        Approved,
        Declined(&'static str),
        Transient,
    }

    pub fn outcome(card: &str, attempt: u32) -> Outcome {
        let digits: String = card.chars().filter(char::is_ascii_digit).collect();
        match digits.as_str() {
            CARD_APPROVE => Outcome::Approved,
            CARD_DECLINE => Outcome::Declined("CARD_DECLINED"),
            CARD_TRANSIENT if attempt <= TRANSIENT_FAILURES => Outcome::Transient,
            CARD_TRANSIENT => Outcome::Approved,
            _ => Outcome::Declined("UNKNOWN_CARD"),
        }
    }
}

/// Whether a top-up amount is within the store's limits.
pub fn check_top_up(amount_minor: i64, min: i64, max: i64) -> bool {
    (min..=max).contains(&amount_minor)
}

/// The last four digits of a payment method, for logs and the ledger (never the whole number).
pub fn last4(payment_method: &str) -> String {
    let digits: Vec<char> = payment_method
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits[digits.len().saturating_sub(4)..].iter().collect()
}

#[cfg(test)]
mod tests {
    use super::sandbox::*;
    use super::*;

    #[test]
    fn sandbox_cards() {
        assert_eq!(outcome(CARD_APPROVE, 1), Outcome::Approved);
        assert_eq!(outcome("4242 4242 4242 4242", 1), Outcome::Approved);
        assert_eq!(outcome(CARD_DECLINE, 1), Outcome::Declined("CARD_DECLINED"));
        assert_eq!(outcome(CARD_TRANSIENT, 1), Outcome::Transient);
        assert_eq!(outcome(CARD_TRANSIENT, 2), Outcome::Transient);
        assert_eq!(outcome(CARD_TRANSIENT, 3), Outcome::Approved);
        assert_eq!(last4(CARD_APPROVE), "4242");
        assert_eq!(last4("12"), "12");
        assert!(check_top_up(500, 500, 50_000));
        assert!(!check_top_up(499, 500, 50_000));
        assert!(!check_top_up(50_001, 500, 50_000));
    }

    #[test]
    fn fees_round_half_up_and_add_up() {
        assert_eq!(platform_fee(1999, 1500), 300); // 299.85
        assert_eq!(platform_fee(10, 1500), 2); // 1.5
        assert_eq!(platform_fee(0, 1500), 0);
        assert_eq!(platform_fee(1000, 0), 0);
        assert_eq!(platform_fee(1000, 20_000), 1000);
        let line = |p: u128, price| OrderLine {
            edition_id: Uuid::from_u128(p * 10),
            product_id: Uuid::from_u128(p * 100),
            publisher_id: Uuid::from_u128(p),
            kind: "digital".into(),
            product_title: "t".into(),
            edition_name: "e".into(),
            unit_price_minor: price,
            quantity: 1,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: None,
        };
        let shares = revenue_shares(&[line(2, 500), line(1, 1000), line(2, 499)], 1500);
        assert_eq!(
            shares,
            vec![
                (Uuid::from_u128(1), 1000, 150, 850),
                (Uuid::from_u128(2), 999, 150, 849)
            ]
        );
    }

    #[test]
    fn a_cancellation_refunds_the_boxes_and_the_digital_lines_only_when_allowed() {
        let line = |p: u128, kind: &str, price, quantity| OrderLine {
            edition_id: Uuid::from_u128(p * 10),
            product_id: Uuid::from_u128(p * 100),
            publisher_id: Uuid::from_u128(1),
            kind: kind.into(),
            product_title: "t".into(),
            edition_name: "e".into(),
            unit_price_minor: price,
            quantity,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: None,
        };
        let lines = [line(1, "physical", 3000, 2), line(2, "digital", 1000, 1)];
        assert_eq!(cancellation_refund(&lines, 7000, true), (7000, vec![]));
        assert_eq!(
            cancellation_refund(&lines, 7000, false),
            (6000, vec![lines[1].clone()])
        );
        let boxes = [line(1, "physical", 3000, 2)];
        assert_eq!(cancellation_refund(&boxes, 6000, false), (6000, vec![]));
        // Never more than was paid, never negative.
        assert_eq!(cancellation_refund(&lines, 500, false).0, 0);
    }
}
