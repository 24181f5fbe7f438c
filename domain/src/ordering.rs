//! Ordering: orders, their lines (a price snapshot) and the order state machine of the saga
//! (DESIGN §4).
//!
//! The state machine is a pure function, [`apply`]: (state, event) → (state, effects). It is
//! written for a message system that delivers *at least once and in any order*: every event may
//! arrive twice and the facts of an order may arrive in any order; the end state and the
//! terminal event it emits are the same for every order of arrival (see the property tests).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;
use crate::money::Currency;

/// Largest number of lines in one order.
pub const MAX_LINES: usize = 50;
/// Largest quantity of one physical line (digital lines are always 1).
pub const MAX_QUANTITY: i32 = 10;

/// One line of an order, with the price and names as they were when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub edition_id: Uuid,
    pub product_id: Uuid,
    pub publisher_id: Uuid,
    /// `digital` or `physical`.
    pub kind: String,
    pub product_title: String,
    pub edition_name: String,
    pub unit_price_minor: i64,
    pub quantity: i32,
}

impl OrderLine {
    pub fn is_physical(&self) -> bool {
        self.kind == "physical"
    }

    /// `unit_price × quantity`, `None` on overflow.
    pub fn subtotal(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }
}

/// The total of `lines`; `None` on overflow (which validation makes impossible in practice).
pub fn total(lines: &[OrderLine]) -> Option<i64> {
    lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(l.subtotal()?))
}

/// Why a line input is refused at placement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("an order needs between 1 and {MAX_LINES} lines")]
    LineCount,
    #[error("the quantity must be between 1 and {MAX_QUANTITY}")]
    Quantity,
    #[error("a digital edition is bought once: its quantity must be 1")]
    DigitalQuantity,
    #[error("each edition may appear only once in an order")]
    DuplicateEdition,
}

/// Checks the shape of a requested order: line count, quantities, no duplicate edition.
/// `lines` are (edition id, quantity, is physical).
pub fn check_lines(lines: &[(Uuid, i32, bool)]) -> Result<(), LineError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(LineError::LineCount);
    }
    let mut seen = std::collections::HashSet::new();
    for (edition, quantity, physical) in lines {
        if !(1..=MAX_QUANTITY).contains(quantity) {
            return Err(LineError::Quantity);
        }
        if !physical && *quantity != 1 {
            return Err(LineError::DigitalQuantity);
        }
        if !seen.insert(*edition) {
            return Err(LineError::DuplicateEdition);
        }
    }
    Ok(())
}

/// `cmd.ordering.place`: the api asks ordering to create an order. The order id is derived
/// from (account, idempotency key), so a replayed command names the same order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub idempotency_key: String,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
}

impl Message for PlaceOrder {
    const TYPE: &'static str = "ordering.place";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.ordering.place".to_owned()
    }
}

/// `evt.ordering.order_placed.<order>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
    pub needs_shipping: bool,
}

impl Message for OrderPlaced {
    const TYPE: &'static str = "ordering.order_placed";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.order_placed.{}", self.order_id)
    }
}

/// `evt.ordering.order_completed.<order>`: every line delivered. Carries the lines so that
/// notification can tell each publisher about the sale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCompleted {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
    pub currency: Currency,
}

impl Message for OrderCompleted {
    const TYPE: &'static str = "ordering.order_completed";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.order_completed.{}", self.order_id)
    }
}

/// `evt.ordering.order_cancelled.<order>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub account_id: Uuid,
    /// A machine-readable reason, e.g. `INSUFFICIENT_FUNDS`.
    pub reason: String,
}

impl Message for OrderCancelled {
    const TYPE: &'static str = "ordering.order_cancelled";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        format!("evt.ordering.order_cancelled.{}", self.order_id)
    }
}

/// Where an order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Created; waiting for payment.
    Placed,
    /// Paid; waiting for the items to be granted.
    Paid,
    /// Every line delivered. Terminal.
    Completed,
    /// Ended without a sale (e.g. payment declined). Terminal.
    Cancelled,
}

impl OrderStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Placed,
            OrderStatus::Paid,
            OrderStatus::Completed,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Cancelled)
    }
}

/// What the ordering participant knows of one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub status: OrderStatus,
    pub paid: bool,
    pub granted: bool,
    pub cancel_reason: Option<String>,
}

impl OrderState {
    /// A freshly placed order.
    pub fn placed() -> OrderState {
        OrderState {
            status: OrderStatus::Placed,
            paid: false,
            granted: false,
            cancel_reason: None,
        }
    }
}

/// The facts the ordering participant reacts to (from other participants' events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderFact {
    PaymentCaptured,
    PaymentDeclined {
        reason: String,
    },
    /// Every digital line of the order is granted.
    ItemsGranted,
}

impl OrderFact {
    /// The step's name in the order's timeline.
    pub fn step(&self) -> &'static str {
        match self {
            OrderFact::PaymentCaptured => "PAYMENT_CAPTURED",
            OrderFact::PaymentDeclined { .. } => "PAYMENT_DECLINED",
            OrderFact::ItemsGranted => "ITEMS_GRANTED",
        }
    }
}

/// What applying a fact asks the participant to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Record a step in the timeline (only the first time a fact is seen).
    Timeline(&'static str),
    /// Emit `OrderCompleted`.
    Complete,
    /// Emit `OrderCancelled { reason }`.
    Cancel { reason: String },
}

/// The order state machine: what `fact` does to `state`.
///
/// - A fact already known changes nothing and asks for nothing (duplicates are harmless).
/// - Granted items imply a captured payment (library only grants on `PaymentCaptured`), so the
///   order completes on `ItemsGranted` even if `PaymentCaptured` has not arrived yet; the
///   capture still lands in the timeline when it does.
/// - A terminal order never changes status again; a late fact only lands in the timeline.
/// - A decline after a capture (impossible in a correct run) leaves the order as it is.
pub fn apply(state: &OrderState, fact: &OrderFact) -> (OrderState, Vec<Effect>) {
    let mut next = state.clone();
    let mut effects = Vec::new();
    let new_fact = match fact {
        OrderFact::PaymentCaptured => !state.paid,
        OrderFact::ItemsGranted => !state.granted,
        OrderFact::PaymentDeclined { .. } => {
            state.cancel_reason.is_none() && !state.paid && !state.granted
        }
    };
    if !new_fact {
        return (next, effects);
    }
    effects.push(Effect::Timeline(fact.step()));
    match fact {
        OrderFact::PaymentCaptured => {
            next.paid = true;
            if next.status == OrderStatus::Placed {
                next.status = OrderStatus::Paid;
            }
        }
        OrderFact::ItemsGranted => {
            next.granted = true;
            if !next.status.is_terminal() {
                next.status = OrderStatus::Completed;
                effects.push(Effect::Complete);
            }
        }
        OrderFact::PaymentDeclined { reason } => {
            if next.status == OrderStatus::Placed {
                next.status = OrderStatus::Cancelled;
                next.cancel_reason = Some(reason.clone());
                effects.push(Effect::Cancel {
                    reason: reason.clone(),
                });
            }
        }
    }
    (next, effects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(facts: &[OrderFact]) -> (OrderState, Vec<Effect>) {
        let mut state = OrderState::placed();
        let mut all = Vec::new();
        for f in facts {
            let (next, effects) = apply(&state, f);
            state = next;
            all.extend(effects);
        }
        (state, all)
    }

    fn terminal_effects(effects: &[Effect]) -> usize {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Complete | Effect::Cancel { .. }))
            .count()
    }

    /// A shuffled sequence of `facts` where each fact appears 1..=3 times.
    fn arrivals(facts: Vec<OrderFact>) -> impl Strategy<Value = Vec<OrderFact>> {
        let n = facts.len();
        proptest::collection::vec(1usize..=3, n).prop_flat_map(move |copies| {
            let seq: Vec<OrderFact> = facts
                .iter()
                .zip(copies)
                .flat_map(|(f, c)| std::iter::repeat_n(f.clone(), c))
                .collect();
            Just(seq).prop_shuffle()
        })
    }

    #[test]
    fn the_happy_path_completes() {
        let (s, e) = run(&[OrderFact::PaymentCaptured, OrderFact::ItemsGranted]);
        assert_eq!(s.status, OrderStatus::Completed);
        assert_eq!(
            e,
            vec![
                Effect::Timeline("PAYMENT_CAPTURED"),
                Effect::Timeline("ITEMS_GRANTED"),
                Effect::Complete
            ]
        );
    }

    #[test]
    fn a_decline_cancels_with_its_reason() {
        let (s, e) = run(&[OrderFact::PaymentDeclined {
            reason: "INSUFFICIENT_FUNDS".into(),
        }]);
        assert_eq!(s.status, OrderStatus::Cancelled);
        assert_eq!(s.cancel_reason.as_deref(), Some("INSUFFICIENT_FUNDS"));
        assert_eq!(terminal_effects(&e), 1);
    }

    #[test]
    fn lines_are_checked() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_eq!(check_lines(&[]), Err(LineError::LineCount));
        assert_eq!(check_lines(&[(a, 0, false)]), Err(LineError::Quantity));
        assert_eq!(
            check_lines(&[(a, 2, false)]),
            Err(LineError::DigitalQuantity)
        );
        assert_eq!(check_lines(&[(a, 11, true)]), Err(LineError::Quantity));
        assert_eq!(
            check_lines(&[(a, 1, false), (a, 1, false)]),
            Err(LineError::DuplicateEdition)
        );
        assert_eq!(check_lines(&[(a, 1, false), (b, 3, true)]), Ok(()));
    }

    proptest! {
        /// Payment and grant in any order, each delivered up to three times: the order
        /// completes, and `OrderCompleted` is emitted exactly once.
        #[test]
        fn success_in_any_order_completes_once(
            seq in arrivals(vec![OrderFact::PaymentCaptured, OrderFact::ItemsGranted])
        ) {
            let (s, e) = run(&seq);
            prop_assert_eq!(s.status, OrderStatus::Completed);
            prop_assert_eq!(terminal_effects(&e), 1);
            prop_assert!(e.contains(&Effect::Complete));
            let steps = e.iter().filter(|x| matches!(x, Effect::Timeline(_))).count();
            prop_assert_eq!(steps, 2);
        }

        /// A decline delivered up to three times cancels exactly once.
        #[test]
        fn declines_cancel_once(
            seq in arrivals(vec![OrderFact::PaymentDeclined { reason: "INSUFFICIENT_FUNDS".into() }])
        ) {
            let (s, e) = run(&seq);
            prop_assert_eq!(s.status, OrderStatus::Cancelled);
            prop_assert_eq!(terminal_effects(&e), 1);
        }

        /// Whatever arrives, in whatever order: at most one terminal event, a terminal status
        /// never changes, and replaying the whole sequence again changes nothing.
        #[test]
        fn any_sequence_is_stable(
            seq in proptest::collection::vec(
                prop_oneof![
                    Just(OrderFact::PaymentCaptured),
                    Just(OrderFact::ItemsGranted),
                    Just(OrderFact::PaymentDeclined { reason: "X".into() }),
                ],
                0..8,
            )
        ) {
            let mut state = OrderState::placed();
            let mut terminal: Option<OrderStatus> = None;
            let mut ends = 0;
            for f in &seq {
                let (next, effects) = apply(&state, f);
                ends += terminal_effects(&effects);
                if let Some(t) = terminal {
                    prop_assert_eq!(next.status, t);
                }
                if next.status.is_terminal() {
                    terminal = Some(next.status);
                }
                state = next;
            }
            prop_assert!(ends <= 1);
            let (again, effects) = seq.iter().fold((state.clone(), Vec::new()), |(s, mut all), f| {
                let (n, e) = apply(&s, f);
                all.extend(e);
                (n, all)
            });
            prop_assert_eq!(again, state);
            prop_assert!(effects.is_empty());
        }
    }
}
