//! Ordering's pure types and rules: order lines (a price snapshot), the order and timeline
//! statuses, and the order state machine [`apply`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// What the buyer pays for one copy, tax included.
    pub unit_price_minor: i64,
    pub quantity: i32,
    /// The tax in `unit_price_minor` (0 where none is charged; orders placed before taxes
    /// were recorded read 0).
    #[serde(default)]
    pub unit_tax_minor: i64,
    /// The tax rate applied, parts per million.
    #[serde(default)]
    pub tax_rate_ppm: i64,
    /// The bundle the line was bought in (its price is its share of the bundle's); `None` for
    /// a line bought on its own (and in messages from before bundles).
    #[serde(default)]
    pub bundle_id: Option<Uuid>,
}

impl OrderLine {
    pub fn is_physical(&self) -> bool {
        self.kind == "physical"
    }

    /// `unit_price × quantity`, `None` on overflow.
    pub fn subtotal(&self) -> Option<i64> {
        self.unit_price_minor.checked_mul(i64::from(self.quantity))
    }

    /// The tax of the line (`unit tax × quantity`), `None` on overflow.
    pub fn tax(&self) -> Option<i64> {
        self.unit_tax_minor.checked_mul(i64::from(self.quantity))
    }

    /// The line without its tax: what the sale earns before the store's fee.
    pub fn net(&self) -> Option<i64> {
        self.subtotal()?.checked_sub(self.tax()?)
    }
}

/// The lines of `order`, in their order (read by the api and by the participants).
/// The lines of each publisher, publishers in ascending id order (one sale or refund per
/// publisher: revenue, notifications).
pub fn by_publisher(lines: &[OrderLine]) -> std::collections::BTreeMap<Uuid, Vec<&OrderLine>> {
    let mut by: std::collections::BTreeMap<Uuid, Vec<&OrderLine>> = Default::default();
    for l in lines {
        by.entry(l.publisher_id).or_default().push(l);
    }
    by
}

/// The total of `lines`; `None` on overflow (which validation makes impossible in practice).
pub fn total(lines: &[OrderLine]) -> Option<i64> {
    lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(l.subtotal()?))
}

/// Why ordering refuses an order at creation: the buyer already owns one of its digital
/// products, or has it in another order that is not cancelled.
pub const ALREADY_OWNED_OR_PENDING: &str = "ALREADY_OWNED_OR_PENDING";

/// The cancel reason of an order whose physical lines could not be reserved (fulfillment's
/// `StockUnavailable`; also `domain::fulfillment::OUT_OF_STOCK`).
pub const OUT_OF_STOCK: &str = "OUT_OF_STOCK";

/// The products an order claims for its buyer (`ordering.product_claim`): those of its digital
/// lines, distinct and sorted (claims are taken in this order, so two orders claiming the same
/// products cannot deadlock). Physical copies are not claimed: a buyer may buy a box twice.
pub fn claimed_products(lines: &[OrderLine]) -> Vec<Uuid> {
    let mut products: Vec<Uuid> = lines
        .iter()
        .filter(|l| !l.is_physical())
        .map(|l| l.product_id)
        .collect();
    products.sort();
    products.dedup();
    products
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

/// Where an order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Created; waiting for payment.
    Placed,
    /// Paid; waiting for the items to be granted.
    Paid,
    /// Paid, digital lines granted; the physical lines wait for the publisher to ship.
    AwaitingShipment,
    /// Every line delivered. Terminal.
    Completed,
    /// Ended without a sale (e.g. payment declined). Terminal.
    Cancelled,
    /// Completed, then refunded (entitlements revoked, payment returned). Terminal.
    Refunded,
}

impl OrderStatus {
    /// Every status, in the order an order can go through them.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Placed,
        OrderStatus::Paid,
        OrderStatus::AwaitingShipment,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::Paid => "PAID",
            OrderStatus::AwaitingShipment => "AWAITING_SHIPMENT",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// No saga step moves the order any more (a completed order may still be refunded
    /// through a refund request, which is not part of the order saga).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Completed | OrderStatus::Cancelled | OrderStatus::Refunded
        )
    }
}

/// One step in an order's timeline (`ordering.order_step.step`), stored and sent as
/// [`TimelineStep::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimelineStep {
    /// The order was created.
    Placed,
    /// The boxed copies were reserved from the stock.
    StockReserved,
    /// A boxed copy was out of stock; nothing was reserved or charged.
    StockUnavailable,
    /// The wallet was charged.
    PaymentCaptured,
    /// The payment did not go through (the detail says why).
    PaymentDeclined,
    /// Every digital line is in the buyer's library (an order without digital lines records
    /// it too, with nothing granted).
    ItemsGranted,
    /// Paid; the boxed copies are held for the publisher to ship.
    ReadyToShip,
    /// The order waits for the publisher to ship.
    AwaitingShipment,
    /// The parcel left (the detail gives carrier and tracking number).
    Shipped,
    /// The boxed copies are in the buyer's library.
    PhysicalItemsGranted,
    /// The payment went back to the wallet (cancelled before dispatch).
    PaymentRefunded,
    /// Every line delivered.
    Completed,
    /// The order ended without a sale (the detail says why).
    Cancelled,
    /// The buyer asked for a refund (the detail is the reason given).
    RefundRequested,
    /// The refund was approved (by the policy or an admin).
    RefundApproved,
    /// An admin denied the refund.
    RefundDenied,
    /// The refund is done: items left the library, the payment is back in the wallet.
    Refunded,
}

impl TimelineStep {
    /// Every step, in the order of the enum.
    pub const ALL: [TimelineStep; 17] = [
        TimelineStep::Placed,
        TimelineStep::StockReserved,
        TimelineStep::StockUnavailable,
        TimelineStep::PaymentCaptured,
        TimelineStep::PaymentDeclined,
        TimelineStep::ItemsGranted,
        TimelineStep::ReadyToShip,
        TimelineStep::AwaitingShipment,
        TimelineStep::Shipped,
        TimelineStep::PhysicalItemsGranted,
        TimelineStep::PaymentRefunded,
        TimelineStep::Completed,
        TimelineStep::Cancelled,
        TimelineStep::RefundRequested,
        TimelineStep::RefundApproved,
        TimelineStep::RefundDenied,
        TimelineStep::Refunded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TimelineStep::Placed => "PLACED",
            TimelineStep::StockReserved => "STOCK_RESERVED",
            TimelineStep::StockUnavailable => "STOCK_UNAVAILABLE",
            TimelineStep::PaymentCaptured => "PAYMENT_CAPTURED",
            TimelineStep::PaymentDeclined => "PAYMENT_DECLINED",
            TimelineStep::ItemsGranted => "ITEMS_GRANTED",
            TimelineStep::ReadyToShip => "READY_TO_SHIP",
            TimelineStep::AwaitingShipment => "AWAITING_SHIPMENT",
            TimelineStep::Shipped => "SHIPPED",
            TimelineStep::PhysicalItemsGranted => "PHYSICAL_ITEMS_GRANTED",
            TimelineStep::PaymentRefunded => "PAYMENT_REFUNDED",
            TimelineStep::Completed => "COMPLETED",
            TimelineStep::Cancelled => "CANCELLED",
            TimelineStep::RefundRequested => "REFUND_REQUESTED",
            TimelineStep::RefundApproved => "REFUND_APPROVED",
            TimelineStep::RefundDenied => "REFUND_DENIED",
            TimelineStep::Refunded => "REFUNDED",
        }
    }

    pub fn parse(s: &str) -> Option<TimelineStep> {
        TimelineStep::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What the ordering participant knows of one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub status: OrderStatus,
    /// The order has physical lines (fixed at placement).
    pub needs_shipping: bool,
    /// Fulfillment reserved the physical lines.
    pub reserved: bool,
    pub paid: bool,
    pub granted: bool,
    /// The publisher dispatched the physical lines.
    pub shipped: bool,
    /// The physical lines are in the buyer's library.
    pub delivered: bool,
    /// The payment went back (the order was cancelled before dispatch).
    pub refunded: bool,
    /// Fulfillment holds the paid physical lines for the publisher (`ReadyToShip`).
    pub ready: bool,
    pub cancel_reason: Option<String>,
}

impl OrderState {
    /// A freshly placed order.
    pub fn placed(needs_shipping: bool) -> OrderState {
        OrderState {
            status: OrderStatus::Placed,
            needs_shipping,
            reserved: false,
            paid: false,
            granted: false,
            shipped: false,
            delivered: false,
            refunded: false,
            ready: false,
            cancel_reason: None,
        }
    }
}

/// The facts the ordering participant reacts to (from other participants' events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderFact {
    /// Every physical line is reserved (orders that need shipping).
    StockReserved,
    /// A physical line could not be reserved; nothing was reserved or charged.
    StockUnavailable,
    PaymentCaptured,
    PaymentDeclined {
        reason: String,
    },
    /// Every digital line of the order is granted.
    ItemsGranted,
    /// Paid, and fulfillment holds the physical lines for the publisher to ship.
    ReadyToShip,
    /// The publisher dispatched the physical lines.
    Shipped,
    /// Every physical line of the order is granted (after dispatch).
    PhysicalGranted,
    /// Cancelled before dispatch (buyer or deadline) and the payment refunded.
    Refunded {
        reason: String,
    },
    /// A refund request of the completed order was approved, its entitlements revoked and
    /// its payment returned.
    RefundSettled,
}

impl OrderFact {
    /// The step this fact is in the order's timeline.
    pub fn step(&self) -> TimelineStep {
        match self {
            OrderFact::StockReserved => TimelineStep::StockReserved,
            OrderFact::StockUnavailable => TimelineStep::StockUnavailable,
            OrderFact::PaymentCaptured => TimelineStep::PaymentCaptured,
            OrderFact::PaymentDeclined { .. } => TimelineStep::PaymentDeclined,
            OrderFact::ItemsGranted => TimelineStep::ItemsGranted,
            OrderFact::ReadyToShip => TimelineStep::ReadyToShip,
            OrderFact::Shipped => TimelineStep::Shipped,
            OrderFact::PhysicalGranted => TimelineStep::PhysicalItemsGranted,
            OrderFact::Refunded { .. } => TimelineStep::PaymentRefunded,
            OrderFact::RefundSettled => TimelineStep::Refunded,
        }
    }
}

/// What applying a fact asks the participant to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Record a step in the timeline (only the first time a fact is seen).
    Timeline(TimelineStep),
    /// Emit `OrderCompleted`.
    Complete,
    /// The order now waits for the publisher to ship (timeline step `AWAITING_SHIPMENT`).
    AwaitShipment,
    /// Emit `OrderCancelled { reason }`.
    Cancel { reason: String },
    /// Emit `OrderRefunded` (a completed order was refunded).
    Refund,
}

/// The order state machine: what `fact` does to `state`.
///
/// - A fact already known changes nothing and asks for nothing (duplicates are harmless).
/// - Granted items imply a captured payment (library only grants on `PaymentCaptured`), so the
///   order completes on `ItemsGranted` even if `PaymentCaptured` has not arrived yet; the
///   capture still lands in the timeline when it does.
/// - A terminal order never changes status again; a late fact only lands in the timeline.
/// - A decline after a capture (impossible in a correct run) leaves the order as it is.
/// - An order that needs shipping does not complete on `ItemsGranted` (its digital lines): it
///   waits for the shipment (`AWAITING_SHIPMENT`). `StockUnavailable` cancels it with
///   `OUT_OF_STOCK` (nothing was charged: billing debits only on `StockReserved`).
pub fn apply(state: &OrderState, fact: &OrderFact) -> (OrderState, Vec<Effect>) {
    let mut next = state.clone();
    let mut effects = Vec::new();
    let new_fact = match fact {
        OrderFact::PaymentCaptured => !state.paid,
        OrderFact::ItemsGranted => !state.granted,
        // Only an order still waiting for its payment (or its stock) can be declined.
        OrderFact::PaymentDeclined { .. } => {
            state.status == OrderStatus::Placed
                && state.cancel_reason.is_none()
                && !state.paid
                && !state.granted
        }
        OrderFact::StockUnavailable => {
            state.status == OrderStatus::Placed
                && state.cancel_reason.is_none()
                && !state.paid
                && !state.granted
                && !state.reserved
        }
        OrderFact::StockReserved => !state.reserved,
        OrderFact::Shipped => !state.shipped,
        OrderFact::PhysicalGranted => !state.delivered,
        OrderFact::Refunded { .. } | OrderFact::RefundSettled => !state.refunded,
        OrderFact::ReadyToShip => !state.ready,
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
            if next.needs_shipping && next.delivered {
                if !next.status.is_terminal() {
                    next.status = OrderStatus::Completed;
                    effects.push(Effect::Complete);
                }
            } else if next.needs_shipping {
                await_shipment(&mut next, &mut effects);
            } else if !next.status.is_terminal() {
                next.status = OrderStatus::Completed;
                effects.push(Effect::Complete);
            }
        }
        OrderFact::PaymentDeclined { .. } | OrderFact::StockUnavailable => {
            let reason = match fact {
                OrderFact::PaymentDeclined { reason } => reason.clone(),
                _ => OUT_OF_STOCK.to_owned(),
            };
            if next.status == OrderStatus::Placed {
                next.status = OrderStatus::Cancelled;
                next.cancel_reason = Some(reason.clone());
                effects.push(Effect::Cancel { reason });
            }
        }
        OrderFact::StockReserved => next.reserved = true,
        OrderFact::ReadyToShip => {
            next.ready = true;
            await_shipment(&mut next, &mut effects);
        }
        OrderFact::Shipped => next.shipped = true,
        OrderFact::Refunded { reason } => {
            next.refunded = true;
            // Fulfillment cancels only what was not shipped, so the order cannot have completed;
            // should it have (a broken run), it stays completed.
            if !next.status.is_terminal() {
                next.status = OrderStatus::Cancelled;
                next.cancel_reason = Some(reason.clone());
                effects.push(Effect::Cancel {
                    reason: reason.clone(),
                });
            }
        }
        OrderFact::RefundSettled => {
            next.refunded = true;
            // Approved only for completed orders; anything else keeps its status.
            if next.status == OrderStatus::Completed {
                next.status = OrderStatus::Refunded;
                effects.push(Effect::Refund);
            }
        }
        OrderFact::PhysicalGranted => {
            next.delivered = true;
            // The digital lines may still be on their way; the order completes with the last.
            if next.granted && !next.status.is_terminal() {
                next.status = OrderStatus::Completed;
                effects.push(Effect::Complete);
            }
        }
    }
    (next, effects)
}

/// An order that needs shipping waits for the publisher once its digital lines are granted and
/// fulfillment holds its paid physical lines (so a buyer who sees `AWAITING_SHIPMENT` has the
/// digital lines, and may cancel).
fn await_shipment(next: &mut OrderState, effects: &mut Vec<Effect>) {
    if next.granted && next.ready && matches!(next.status, OrderStatus::Placed | OrderStatus::Paid)
    {
        next.status = OrderStatus::AwaitingShipment;
        effects.push(Effect::AwaitShipment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(facts: &[OrderFact]) -> (OrderState, Vec<Effect>) {
        run_from(OrderState::placed(false), facts)
    }

    fn run_from(mut state: OrderState, facts: &[OrderFact]) -> (OrderState, Vec<Effect>) {
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
                Effect::Timeline(TimelineStep::PaymentCaptured),
                Effect::Timeline(TimelineStep::ItemsGranted),
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

    #[test]
    fn claims_cover_digital_products_once_in_order() {
        let line = |product: u128, kind: &str| OrderLine {
            edition_id: Uuid::from_u128(product * 10),
            product_id: Uuid::from_u128(product),
            publisher_id: Uuid::from_u128(99),
            kind: kind.into(),
            product_title: "t".into(),
            edition_name: "e".into(),
            unit_price_minor: 100,
            quantity: 1,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: None,
        };
        let lines = [
            line(3, "digital"),
            line(1, "digital"),
            line(2, "physical"),
            line(3, "digital"),
        ];
        assert_eq!(
            claimed_products(&lines),
            vec![Uuid::from_u128(1), Uuid::from_u128(3)]
        );
        assert!(claimed_products(&[line(2, "physical")]).is_empty());
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

        /// An order that needs shipping: reservation, payment, grant of the digital lines and
        /// fulfillment's readiness in any order, duplicated: it waits for the shipment, once,
        /// and never completes.
        #[test]
        fn shipping_orders_wait_for_the_shipment(
            seq in arrivals(vec![
                OrderFact::StockReserved,
                OrderFact::PaymentCaptured,
                OrderFact::ItemsGranted,
                OrderFact::ReadyToShip,
            ])
        ) {
            let (s, e) = run_from(OrderState::placed(true), &seq);
            prop_assert_eq!(s.status, OrderStatus::AwaitingShipment);
            prop_assert_eq!(terminal_effects(&e), 0);
            prop_assert_eq!(e.iter().filter(|x| **x == Effect::AwaitShipment).count(), 1);
            let steps = e.iter().filter(|x| matches!(x, Effect::Timeline(_))).count();
            prop_assert_eq!(steps, 4);
        }

        /// The whole life of a shipped order, in any order and duplicated: completed once.
        #[test]
        fn shipped_orders_complete_once(
            seq in arrivals(vec![
                OrderFact::StockReserved,
                OrderFact::PaymentCaptured,
                OrderFact::ItemsGranted,
                OrderFact::ReadyToShip,
                OrderFact::Shipped,
                OrderFact::PhysicalGranted,
            ])
        ) {
            let (s, e) = run_from(OrderState::placed(true), &seq);
            prop_assert_eq!(s.status, OrderStatus::Completed);
            prop_assert_eq!(terminal_effects(&e), 1);
            prop_assert!(e.contains(&Effect::Complete));
        }

        /// A paid order cancelled before dispatch, every fact in any order and duplicated:
        /// cancelled once, with the refund's reason, never completed.
        #[test]
        fn refunded_orders_cancel_once(
            seq in arrivals(vec![
                OrderFact::StockReserved,
                OrderFact::PaymentCaptured,
                OrderFact::ItemsGranted,
                OrderFact::ReadyToShip,
                OrderFact::Refunded { reason: "CANCELLED_BY_BUYER".into() },
            ])
        ) {
            let (s, e) = run_from(OrderState::placed(true), &seq);
            prop_assert_eq!(s.status, OrderStatus::Cancelled);
            prop_assert_eq!(s.cancel_reason.as_deref(), Some("CANCELLED_BY_BUYER"));
            prop_assert_eq!(terminal_effects(&e), 1);
            prop_assert!(!e.contains(&Effect::Complete));
        }

        /// A completed order whose refund settles (the event delivered up to three times):
        /// refunded once; a refund that settles before the order completed (impossible: only
        /// completed orders are approved) changes no status.
        #[test]
        fn completed_orders_refund_once(
            seq in arrivals(vec![
                OrderFact::PaymentCaptured,
                OrderFact::ItemsGranted,
            ]),
            refunds in 1usize..=3,
        ) {
            let (done, _) = run(&seq);
            prop_assert_eq!(done.status, OrderStatus::Completed);
            let (s, e) = run_from(done, &vec![OrderFact::RefundSettled; refunds]);
            prop_assert_eq!(s.status, OrderStatus::Refunded);
            prop_assert_eq!(e.iter().filter(|x| **x == Effect::Refund).count(), 1);
            let (early, e) = run(&[OrderFact::RefundSettled, OrderFact::PaymentCaptured]);
            prop_assert_eq!(early.status, OrderStatus::Paid);
            prop_assert!(!e.contains(&Effect::Refund));
        }

        /// Stock unavailable, delivered up to three times: cancelled once, `OUT_OF_STOCK`.
        #[test]
        fn missing_stock_cancels_once(
            seq in arrivals(vec![OrderFact::StockUnavailable])
        ) {
            let (s, e) = run_from(OrderState::placed(true), &seq);
            prop_assert_eq!(s.status, OrderStatus::Cancelled);
            prop_assert_eq!(s.cancel_reason.as_deref(), Some(OUT_OF_STOCK));
            prop_assert_eq!(terminal_effects(&e), 1);
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
            needs_shipping in any::<bool>(),
            seq in proptest::collection::vec(
                prop_oneof![
                    Just(OrderFact::PaymentCaptured),
                    Just(OrderFact::ItemsGranted),
                    Just(OrderFact::PaymentDeclined { reason: "X".into() }),
                    Just(OrderFact::StockReserved),
                    Just(OrderFact::StockUnavailable),
                    Just(OrderFact::Shipped),
                    Just(OrderFact::PhysicalGranted),
                    Just(OrderFact::Refunded { reason: "Y".into() }),
                    Just(OrderFact::RefundSettled),
                    Just(OrderFact::ReadyToShip),
                ],
                0..8,
            )
        ) {
            let mut state = OrderState::placed(needs_shipping);
            let mut terminal: Option<OrderStatus> = None;
            let mut ends = 0;
            let mut refunds = 0;
            for f in &seq {
                let (next, effects) = apply(&state, f);
                ends += terminal_effects(&effects);
                refunds += effects.iter().filter(|e| **e == Effect::Refund).count();
                if let Some(t) = terminal {
                    // The one move out of a terminal status: a completed order refunded.
                    let refunded = t == OrderStatus::Completed && next.status == OrderStatus::Refunded;
                    prop_assert!(next.status == t || refunded, "{:?} -> {:?}", t, next.status);
                }
                if next.status.is_terminal() {
                    terminal = Some(next.status);
                }
                state = next;
            }
            prop_assert!(ends <= 1);
            prop_assert!(refunds <= 1);
            prop_assert_eq!(refunds == 1, state.status == OrderStatus::Refunded);
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
