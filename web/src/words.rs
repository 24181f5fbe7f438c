//! What the codes of the API mean to people: order and shipment statuses, timeline steps,
//! ledger entries. The codes stay in the API (`extensions.code`, enums) for clients; the pages
//! show these sentences (and keep the code in a `data-` attribute where tests and styles need it).

use domain::billing::{EntryKind, TopUpStatus};
use domain::catalog::{EditionKind, ProductStatus};
use domain::fulfillment::ShipmentStatus;
use domain::ordering::{OrderStatus, TimelineStep};

/// An order's status, as the buyer reads it (`None`: a status this build does not know).
pub fn order_status(status: Option<OrderStatus>) -> &'static str {
    match status {
        Some(OrderStatus::Placed) => "Placed",
        Some(OrderStatus::Paid) => "Paid",
        Some(OrderStatus::AwaitingShipment) => "Paid, waiting to be shipped",
        Some(OrderStatus::Completed) => "Complete",
        Some(OrderStatus::Cancelled) => "Cancelled",
        Some(OrderStatus::Refunded) => "Refunded",
        None => "In progress",
    }
}

/// No saga step moves the order any more (the page stops asking for it).
pub fn is_final(status: Option<OrderStatus>) -> bool {
    status.is_some_and(OrderStatus::is_terminal)
}

/// The style of an order's status badge.
pub fn status_class(status: Option<OrderStatus>) -> &'static str {
    match status {
        Some(OrderStatus::Completed) => "status status--ok",
        Some(OrderStatus::Cancelled) => "status status--bad",
        Some(OrderStatus::Refunded) => "status status--neutral",
        _ => "status status--pending",
    }
}

/// One step of an order's timeline; `None` for a step that says nothing to the buyer of this
/// order: items granted to the library when the order had no digital line (ordering records
/// the step for every paid order, a boxed-only one too, where nothing was granted).
pub fn timeline_step(step: Option<TimelineStep>, has_digital: bool) -> Option<&'static str> {
    let Some(step) = step else {
        return Some("Updated");
    };
    Some(match step {
        TimelineStep::Placed => "Order placed",
        TimelineStep::StockReserved => "Boxed copies reserved for you",
        TimelineStep::StockUnavailable => "A boxed copy was out of stock",
        TimelineStep::PaymentCaptured => "Paid from your wallet",
        TimelineStep::PaymentDeclined => "The payment did not go through",
        TimelineStep::ItemsGranted if !has_digital => return None,
        TimelineStep::ItemsGranted => "Digital items added to your library",
        TimelineStep::ReadyToShip => "Handed to the publisher for shipping",
        TimelineStep::AwaitingShipment => "Waiting for the publisher to ship",
        TimelineStep::Shipped => "Shipped",
        TimelineStep::PhysicalItemsGranted => "Boxed copies added to your library",
        TimelineStep::PaymentRefunded => "Payment returned to your wallet",
        TimelineStep::Completed => "Order complete",
        TimelineStep::Cancelled => "Order cancelled",
        TimelineStep::RefundRequested => "Refund requested",
        TimelineStep::RefundApproved => "Refund approved",
        TimelineStep::RefundDenied => "Refund denied",
        TimelineStep::Refunded => "Refunded: the payment is back in your wallet",
    })
}

/// What a shipment's status means to the buyer.
pub fn shipment_status(status: Option<ShipmentStatus>) -> &'static str {
    match status {
        Some(ShipmentStatus::Reserved) => "Copies reserved; waiting for the payment",
        Some(ShipmentStatus::AwaitingShipment) => "Paid; waiting for the publisher to ship",
        Some(ShipmentStatus::Shipped) => "Shipped",
        Some(ShipmentStatus::Released) => "Not shipped: the copies went back to the stock",
        None => "Being updated",
    }
}

/// A wallet ledger entry's kind.
pub fn ledger_kind(kind: Option<EntryKind>) -> &'static str {
    match kind {
        Some(EntryKind::Credit) => "Top-up",
        Some(EntryKind::Debit) => "Payment",
        Some(EntryKind::Refund) => "Refund",
        None => "Other",
    }
}

/// An edition's kind, inside a sentence ("Deluxe (boxed copy)").
pub fn edition_kind(kind: Option<EditionKind>) -> &'static str {
    match kind {
        Some(EditionKind::Digital) => "digital",
        Some(EditionKind::Physical) => "physical",
        None => "other",
    }
}

/// A product's status, as its publisher reads it (`moderated`: an admin took it off).
pub fn product_status(status: Option<ProductStatus>, moderated: bool) -> &'static str {
    match status {
        Some(ProductStatus::Published) => "On sale",
        Some(ProductStatus::Draft) => "Draft: not in the store yet",
        Some(ProductStatus::Unlisted) if moderated => "Taken off the store by moderation",
        Some(ProductStatus::Unlisted) => "Taken off the store",
        None => "Being updated",
    }
}

/// A top-up still waiting for the payment provider, as its owner reads it.
pub fn top_up_status(status: Option<TopUpStatus>) -> &'static str {
    match status {
        Some(TopUpStatus::Pending) | None => "is still being processed",
        Some(TopUpStatus::Credited) => "is in your wallet",
        Some(TopUpStatus::Declined) => "was declined",
    }
}

/// Why a top-up was declined (`TopUp.reason`), as its owner reads it.
pub fn decline_reason(code: &str) -> &'static str {
    match code {
        "CARD_DECLINED" => "the card was declined",
        "UNKNOWN_CARD" => "the card number is not known",
        "WALLET_FROZEN" => "your wallet is frozen; contact support",
        _ => "the payment did not go through",
    }
}

/// "1 item", "3 items".
pub fn items(n: usize) -> String {
    if n == 1 {
        "1 item".to_owned()
    } else {
        format!("{n} items")
    }
}

/// The short, readable name of an order: its id's first eight characters, upper case.
pub fn order_number(id: &str) -> String {
    id.chars().take(8).collect::<String>().to_uppercase()
}

/// Sets the browser tab's title: "`page` · Store".
pub fn set_title(page: &str) {
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        document.set_title(&if page.is_empty() {
            STORE.to_owned()
        } else {
            format!("{page} · {STORE}")
        });
    }
}

/// The store's name, in titles.
pub const STORE: &str = "Store";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boxed_only_order_hides_the_library_step() {
        assert_eq!(timeline_step(Some(TimelineStep::ItemsGranted), false), None);
        assert_eq!(
            timeline_step(Some(TimelineStep::ItemsGranted), true),
            Some("Digital items added to your library")
        );
    }

    #[test]
    fn no_code_reaches_people() {
        let no_code = |text: &str| !text.contains('_') && text != text.to_uppercase();
        for status in OrderStatus::ALL {
            assert!(no_code(order_status(Some(status))), "{status:?}");
        }
        for step in TimelineStep::ALL {
            assert!(
                timeline_step(Some(step), true).is_some_and(no_code),
                "{step:?}"
            );
        }
        assert_eq!(
            order_status(Some(OrderStatus::AwaitingShipment)),
            "Paid, waiting to be shipped"
        );
        assert!(is_final(Some(OrderStatus::Refunded)));
        assert!(!is_final(None));
        assert_eq!(items(1), "1 item");
        assert_eq!(items(2), "2 items");
        assert_eq!(order_number("0193ab4c-7d2e"), "0193AB4C");
    }
}
