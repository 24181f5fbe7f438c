//! What the codes of the API mean to people: order and shipment statuses, timeline steps,
//! ledger entries. The codes stay in the API (`extensions.code`, enums) for clients; the pages
//! show these sentences (and keep the code in a `data-` attribute where tests and styles need it).

/// An order's status, as the buyer reads it.
pub fn order_status(status: &str) -> &'static str {
    match status {
        "PLACED" => "Placed",
        "PAID" => "Paid",
        "AWAITING_SHIPMENT" => "Paid, waiting to be shipped",
        "COMPLETED" => "Complete",
        "CANCELLED" => "Cancelled",
        "REFUNDED" => "Refunded",
        _ => "In progress",
    }
}

/// One step of an order's timeline; `None` for a step that says nothing to the buyer of this
/// order (items granted to the library when the order had no digital line).
pub fn timeline_step(step: &str, has_digital: bool) -> Option<&'static str> {
    Some(match step {
        "PLACED" => "Order placed",
        "STOCK_RESERVED" => "Boxed copies reserved for you",
        "STOCK_UNAVAILABLE" => "A boxed copy was out of stock",
        "PAYMENT_CAPTURED" => "Paid from your wallet",
        "PAYMENT_DECLINED" => "The payment did not go through",
        "ITEMS_GRANTED" if !has_digital => return None,
        "ITEMS_GRANTED" => "Digital items added to your library",
        "READY_TO_SHIP" => "Handed to the publisher for shipping",
        "AWAITING_SHIPMENT" => "Waiting for the publisher to ship",
        "SHIPPED" => "Shipped",
        "PHYSICAL_ITEMS_GRANTED" => "Boxed copies added to your library",
        "PAYMENT_REFUNDED" => "Payment returned to your wallet",
        "COMPLETED" => "Order complete",
        "CANCELLED" => "Order cancelled",
        "REFUND_REQUESTED" => "Refund requested",
        "REFUND_APPROVED" => "Refund approved",
        "REFUND_DENIED" => "Refund denied",
        "REFUNDED" => "Refunded: the payment is back in your wallet",
        _ => "Updated",
    })
}

/// A wallet ledger entry's kind.
pub fn ledger_kind(kind: &str) -> &'static str {
    match kind {
        "CREDIT" | "TOP_UP" => "Top-up",
        "DEBIT" | "PAYMENT" => "Payment",
        "REFUND" => "Refund",
        _ => "Other",
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
        assert_eq!(timeline_step("ITEMS_GRANTED", false), None);
        assert_eq!(
            timeline_step("ITEMS_GRANTED", true),
            Some("Digital items added to your library")
        );
    }

    #[test]
    fn no_code_reaches_people() {
        for code in [
            "PLACED",
            "PAID",
            "AWAITING_SHIPMENT",
            "COMPLETED",
            "CANCELLED",
            "REFUNDED",
        ] {
            assert!(!order_status(code).contains('_'));
        }
        assert_eq!(items(1), "1 item");
        assert_eq!(items(2), "2 items");
        assert_eq!(order_number("0193ab4c-7d2e"), "0193AB4C");
    }
}
