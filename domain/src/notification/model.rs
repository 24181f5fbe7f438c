//! Notification's pure types and rules: the kinds of notifications, and what each event
//! tells whom, in words: a pure function per event ([`Notifies`]), so the wording is tested
//! here and the notification participant only stores what it returns.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::billing::{PaymentRefunded, TopUpDeclined, WalletCredited};
use crate::fulfillment::{ReadyToShip, ShipmentDispatched, ShippedLine, ShippingReminder};
use crate::library::{GiftKeysGenerated, KeyRedeemed};
use crate::money::Money;
use crate::ordering::{OrderCancelled, OrderCompleted, OrderLine};
use crate::refund::{OrderRefunded, RefundDenied, RefundRequested};

/// Kinds of notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// To a buyer: an order is complete.
    OrderCompleted,
    /// To a buyer: an order was cancelled (e.g. the payment did not go through).
    OrderCancelled,
    /// To a buyer: a top-up reached the wallet.
    WalletCredited,
    /// To a buyer: a top-up was declined.
    TopUpDeclined,
    /// To a publisher: a product of theirs was sold.
    Sale,
    /// To a publisher: a paid order waits for them to ship it.
    ShipmentToSend,
    /// To a publisher: half the shipping deadline of an order is gone.
    ShippingReminder,
    /// To a buyer: the parcel left (with the tracking number).
    ShipmentDispatched,
    /// To a buyer: the payment of a cancelled order went back to the wallet.
    PaymentRefunded,
    /// To a buyer: a refund request outside the policy waits for an admin.
    RefundRequested,
    /// To a buyer: an admin denied the refund request.
    RefundDenied,
    /// To a buyer: the order is refunded (its items left the library, the money is back).
    OrderRefunded,
    /// To a publisher: a sale of theirs was refunded (its revenue reversed).
    SaleRefunded,
    /// To a publisher: a batch of gift keys is ready.
    GiftKeysReady,
    /// To the account that redeemed a gift key: the product is in the library.
    KeyRedeemed,
    /// To a publisher: a webhook endpoint kept failing and was disabled.
    WebhookEndpointDisabled,
    /// Reconciliation found something for an admin to look at.
    DriftFound,
    /// To a buyer: a product on their wishlist went on sale.
    WishlistOnSale,
}

impl NotificationKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationKind::OrderCompleted => "ORDER_COMPLETED",
            NotificationKind::OrderCancelled => "ORDER_CANCELLED",
            NotificationKind::WalletCredited => "WALLET_CREDITED",
            NotificationKind::TopUpDeclined => "TOP_UP_DECLINED",
            NotificationKind::Sale => "SALE",
            NotificationKind::ShipmentToSend => "SHIPMENT_TO_SEND",
            NotificationKind::ShippingReminder => "SHIPPING_REMINDER",
            NotificationKind::ShipmentDispatched => "SHIPMENT_DISPATCHED",
            NotificationKind::PaymentRefunded => "PAYMENT_REFUNDED",
            NotificationKind::RefundRequested => "REFUND_REQUESTED",
            NotificationKind::RefundDenied => "REFUND_DENIED",
            NotificationKind::OrderRefunded => "ORDER_REFUNDED",
            NotificationKind::SaleRefunded => "SALE_REFUNDED",
            NotificationKind::GiftKeysReady => "GIFT_KEYS_READY",
            NotificationKind::KeyRedeemed => "KEY_REDEEMED",
            NotificationKind::WebhookEndpointDisabled => "WEBHOOK_ENDPOINT_DISABLED",
            NotificationKind::DriftFound => "DRIFT_FOUND",
            NotificationKind::WishlistOnSale => "WISHLIST_ON_SALE",
        }
    }

    /// Every kind, in the order of the enum.
    pub const ALL: [NotificationKind; 18] = [
        NotificationKind::OrderCompleted,
        NotificationKind::OrderCancelled,
        NotificationKind::WalletCredited,
        NotificationKind::TopUpDeclined,
        NotificationKind::Sale,
        NotificationKind::ShipmentToSend,
        NotificationKind::ShippingReminder,
        NotificationKind::ShipmentDispatched,
        NotificationKind::PaymentRefunded,
        NotificationKind::RefundRequested,
        NotificationKind::RefundDenied,
        NotificationKind::OrderRefunded,
        NotificationKind::SaleRefunded,
        NotificationKind::GiftKeysReady,
        NotificationKind::KeyRedeemed,
        NotificationKind::WebhookEndpointDisabled,
        NotificationKind::DriftFound,
        NotificationKind::WishlistOnSale,
    ];

    pub fn parse(s: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One notification to store: for whom, what kind, its words, and the order it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub account: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub order: Option<Uuid>,
}

/// An event that notifies: the notes it makes (none when it tells no one anything).
pub trait Notifies {
    fn notes(&self) -> Vec<Note>;
}

impl Notifies for OrderCompleted {
    /// The buyer, and each publisher with what of theirs was sold.
    fn notes(&self) -> Vec<Note> {
        let total = Money {
            minor: self.total_minor,
            currency: self.currency,
        };
        let mut notes = vec![Note {
            account: self.account_id,
            kind: NotificationKind::OrderCompleted,
            title: "Your order is complete".into(),
            body: match self.lines.len() {
                1 => format!("1 item for {} is in your library.", total.format()),
                n => format!("{n} items for {} are in your library.", total.format()),
            },
            order: Some(self.order_id),
        }];
        for (publisher, sold) in titles_by_publisher(&self.lines) {
            notes.push(Note {
                account: publisher,
                kind: NotificationKind::Sale,
                title: "You made a sale".into(),
                body: format!("Sold: {}.", sold.join(", ")),
                order: Some(self.order_id),
            });
        }
        notes
    }
}

impl Notifies for OrderCancelled {
    fn notes(&self) -> Vec<Note> {
        let body = match self.reason.as_str() {
            "INSUFFICIENT_FUNDS" => {
                "Your wallet balance did not cover the order; nothing was charged.".into()
            }
            "WALLET_FROZEN" => "Your wallet is frozen; nothing was charged.".into(),
            crate::ordering::OUT_OF_STOCK => {
                "An edition of your order is out of stock; nothing was charged.".into()
            }
            crate::fulfillment::CANCELLED_BY_BUYER => {
                "You cancelled the order before it was shipped; your payment is refunded to your \
                 wallet."
                    .into()
            }
            crate::fulfillment::SHIPPING_DEADLINE_PASSED => {
                "The publisher did not ship in time; your payment is refunded to your wallet."
                    .into()
            }
            crate::ordering::ALREADY_OWNED_OR_PENDING => {
                "You already own this product or have it in another order; nothing was charged."
                    .into()
            }
            other => format!("Reason: {other}. Nothing was charged."),
        };
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::OrderCancelled,
            title: "Your order was cancelled".into(),
            body,
            order: Some(self.order_id),
        }]
    }
}

impl Notifies for WalletCredited {
    fn notes(&self) -> Vec<Note> {
        let amount = Money {
            minor: self.amount_minor,
            currency: self.currency,
        };
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::WalletCredited,
            title: "Wallet topped up".into(),
            body: format!("{} was added to your wallet.", amount.format()),
            order: None,
        }]
    }
}

impl Notifies for TopUpDeclined {
    fn notes(&self) -> Vec<Note> {
        let body = match self.reason.as_str() {
            "WALLET_FROZEN" => {
                "Your wallet is frozen, so it takes no top-ups; your card was not charged.".into()
            }
            "CARD_DECLINED" => "Your card was declined; nothing was charged.".into(),
            "UNKNOWN_CARD" => "This card is not accepted; nothing was charged.".into(),
            _ => "The payment was declined; nothing was charged.".into(),
        };
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::TopUpDeclined,
            title: "Top-up declined".into(),
            body,
            order: None,
        }]
    }
}

impl Notifies for PaymentRefunded {
    /// Nothing when a refund request settles (`OrderRefunded` tells the buyer, once the order
    /// is refunded) or when nothing was charged (`OrderCancelled` tells the buyer).
    fn notes(&self) -> Vec<Note> {
        if self.refund_request.is_some() || self.amount_minor == 0 {
            return Vec::new();
        }
        let amount = Money {
            minor: self.amount_minor,
            currency: self.currency,
        };
        let body = if self.digital_kept {
            format!(
                "{} went back to your wallet. The digital items of the order stay in your \
                 library (downloaded, or bought longer ago than the refund window).",
                amount.format()
            )
        } else {
            format!("{} went back to your wallet.", amount.format())
        };
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::PaymentRefunded,
            title: "Payment refunded".into(),
            body,
            order: Some(self.order_id),
        }]
    }
}

impl Notifies for crate::webhooks::EndpointDisabled {
    /// The endpoint's owner, with the URL and why.
    fn notes(&self) -> Vec<Note> {
        vec![Note {
            account: self.publisher_id,
            kind: NotificationKind::WebhookEndpointDisabled,
            title: "A webhook endpoint was disabled".into(),
            body: format!(
                "{} kept failing ({}); no more events go to it until you enable it again.",
                self.url, self.reason
            ),
            order: None,
        }]
    }
}

impl Notifies for crate::reconcile::DriftFound {
    /// Every admin, with what was found.
    fn notes(&self) -> Vec<Note> {
        self.admins
            .iter()
            .map(|&admin| Note {
                account: admin,
                kind: NotificationKind::DriftFound,
                title: "Reconciliation found a difference".into(),
                body: format!(
                    "{} ({}): {}. Nothing was changed; see Operations.",
                    capitalised(self.kind.words()),
                    self.subject,
                    self.detail
                ),
                order: None,
            })
            .collect()
    }
}

impl Notifies for crate::catalog::discount::WishedItemOnSale {
    /// Each wisher of this part, with the percentage and the end.
    fn notes(&self) -> Vec<Note> {
        self.accounts
            .iter()
            .map(|&account| Note {
                account,
                kind: NotificationKind::WishlistOnSale,
                title: format!("{} is on sale", self.product_title),
                body: format!(
                    "{} percent off {} ({}), from your wishlist, until {}.",
                    self.percent,
                    self.product_title,
                    self.edition_name,
                    self.ends_at.format("%-d %B %Y, %H:%M UTC")
                ),
                order: None,
            })
            .collect()
    }
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Notifies for ReadyToShip {
    /// Each publisher with copies to ship, and how many.
    fn notes(&self) -> Vec<Note> {
        publishers_of(&self.lines)
            .into_iter()
            .map(|p| Note {
                account: p,
                kind: NotificationKind::ShipmentToSend,
                title: "A new order to ship".into(),
                body: format!(
                    "{} cop(ies) are paid and wait for you to ship them.",
                    self.lines
                        .iter()
                        .filter(|l| l.publisher_id == p)
                        .map(|l| i64::from(l.quantity))
                        .sum::<i64>()
                ),
                order: Some(self.order_id),
            })
            .collect()
    }
}

impl Notifies for ShippingReminder {
    fn notes(&self) -> Vec<Note> {
        self.publisher_ids
            .iter()
            .map(|p| Note {
                account: *p,
                kind: NotificationKind::ShippingReminder,
                title: "An order still waits to be shipped".into(),
                body: format!(
                    "Ship it before {}, or it is cancelled and refunded.",
                    self.deadline_at.format("%Y-%m-%d %H:%M UTC")
                ),
                order: Some(self.order_id),
            })
            .collect()
    }
}

impl Notifies for ShipmentDispatched {
    fn notes(&self) -> Vec<Note> {
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::ShipmentDispatched,
            title: "Your order is on its way".into(),
            body: format!(
                "Shipped with {}, tracking number {}.",
                self.carrier, self.tracking_number
            ),
            order: Some(self.order_id),
        }]
    }
}

impl Notifies for RefundRequested {
    fn notes(&self) -> Vec<Note> {
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::RefundRequested,
            title: "Your refund request is under review".into(),
            body: format!(
                "It is outside the automatic refund policy ({}); an admin will decide.",
                self.policy_note
            ),
            order: Some(self.order_id),
        }]
    }
}

impl Notifies for RefundDenied {
    fn notes(&self) -> Vec<Note> {
        let body = if self.note.is_empty() {
            "The order stays in your library.".into()
        } else {
            format!("{} The order stays in your library.", self.note)
        };
        vec![Note {
            account: self.account_id,
            kind: NotificationKind::RefundDenied,
            title: "Your refund request was denied".into(),
            body,
            order: Some(self.order_id),
        }]
    }
}

impl Notifies for OrderRefunded {
    /// The buyer, and each publisher whose sale is reversed.
    fn notes(&self) -> Vec<Note> {
        let total = Money {
            minor: self.total_minor,
            currency: self.currency,
        };
        let mut notes = vec![Note {
            account: self.account_id,
            kind: NotificationKind::OrderRefunded,
            title: "Your order is refunded".into(),
            body: format!(
                "{} went back to your wallet; the order's items left your library.",
                total.format()
            ),
            order: Some(self.order_id),
        }];
        for (publisher, titles) in titles_by_publisher(&self.lines) {
            notes.push(Note {
                account: publisher,
                kind: NotificationKind::SaleRefunded,
                title: "A sale was refunded".into(),
                body: format!("Refunded: {}; its revenue is reversed.", titles.join(", ")),
                order: Some(self.order_id),
            });
        }
        notes
    }
}

impl Notifies for GiftKeysGenerated {
    fn notes(&self) -> Vec<Note> {
        vec![Note {
            account: self.publisher_id,
            kind: NotificationKind::GiftKeysReady,
            title: "Gift keys ready".into(),
            body: format!("{} gift key(s) are ready to hand out.", self.quantity),
            order: None,
        }]
    }
}

impl Notifies for KeyRedeemed {
    /// Only a redemption that worked (a refused one is answered where it was asked).
    fn notes(&self) -> Vec<Note> {
        match self.outcome {
            Ok(_) => vec![Note {
                account: self.account_id,
                kind: NotificationKind::KeyRedeemed,
                title: "Key redeemed".into(),
                body: "The product is in your library.".into(),
                order: None,
            }],
            Err(_) => Vec::new(),
        }
    }
}

/// "Title (Edition)" of each line, per publisher.
fn titles_by_publisher(lines: &[OrderLine]) -> Vec<(Uuid, Vec<String>)> {
    crate::ordering::by_publisher(lines)
        .into_iter()
        .map(|(p, mine)| {
            let titles = mine
                .iter()
                .map(|l| format!("{} ({})", l.product_title, l.edition_name))
                .collect();
            (p, titles)
        })
        .collect()
}

fn publishers_of(lines: &[ShippedLine]) -> Vec<Uuid> {
    let mut publishers: Vec<Uuid> = lines.iter().map(|l| l.publisher_id).collect();
    publishers.sort();
    publishers.dedup();
    publishers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::RedeemRefusal;
    use crate::money::Currency;

    const BUYER: Uuid = Uuid::from_u128(1);
    const ORDER: Uuid = Uuid::from_u128(2);
    const NEBULA: Uuid = Uuid::from_u128(10);
    const ATLAS: Uuid = Uuid::from_u128(11);

    fn line(publisher: Uuid, title: &str, edition: &str) -> OrderLine {
        OrderLine {
            edition_id: Uuid::from_u128(100),
            product_id: Uuid::from_u128(200),
            publisher_id: publisher,
            kind: "digital".into(),
            product_title: title.into(),
            edition_name: edition.into(),
            unit_price_minor: 1999,
            quantity: 1,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: None,
        }
    }

    fn lines() -> Vec<OrderLine> {
        vec![
            line(NEBULA, "Star Drift", "Standard"),
            line(ATLAS, "Map Maker", "Deluxe"),
            line(NEBULA, "Star Drift II", "Standard"),
        ]
    }

    fn cancelled(reason: &str) -> String {
        let ev = OrderCancelled {
            order_id: ORDER,
            account_id: BUYER,
            reason: reason.into(),
        };
        let [note] = <[Note; 1]>::try_from(ev.notes()).expect("one note");
        assert_eq!(note.kind, NotificationKind::OrderCancelled);
        note.body
    }

    #[test]
    fn a_completed_order_tells_the_buyer_and_each_publisher_what_sold() {
        let ev = OrderCompleted {
            order_id: ORDER,
            account_id: BUYER,
            lines: lines(),
            total_minor: 5997,
            currency: Currency::EUR,
        };
        let notes = ev.notes();
        assert_eq!(notes.len(), 3);
        assert_eq!(notes[0].account, BUYER);
        assert_eq!(notes[0].title, "Your order is complete");
        assert_eq!(
            notes[0].body,
            format!("3 items for {} are in your library.", money(5997))
        );
        let sales: Vec<(Uuid, &str)> = notes[1..]
            .iter()
            .map(|n| (n.account, n.body.as_str()))
            .collect();
        assert_eq!(
            sales,
            [
                (
                    NEBULA,
                    "Sold: Star Drift (Standard), Star Drift II (Standard)."
                ),
                (ATLAS, "Sold: Map Maker (Deluxe)."),
            ]
        );
        assert!(notes.iter().all(|n| n.order == Some(ORDER)));
        assert!(notes[1..].iter().all(|n| n.kind == NotificationKind::Sale));
    }

    #[test]
    fn a_cancellation_says_why_in_words() {
        assert_eq!(
            cancelled("INSUFFICIENT_FUNDS"),
            "Your wallet balance did not cover the order; nothing was charged."
        );
        assert_eq!(
            cancelled(crate::ordering::OUT_OF_STOCK),
            "An edition of your order is out of stock; nothing was charged."
        );
        assert!(cancelled(crate::fulfillment::CANCELLED_BY_BUYER).contains("refunded"));
        assert!(cancelled(crate::fulfillment::SHIPPING_DEADLINE_PASSED).contains("in time"));
        assert!(cancelled(crate::ordering::ALREADY_OWNED_OR_PENDING).contains("already own"));
        assert_eq!(
            cancelled("SOMETHING_NEW"),
            "Reason: SOMETHING_NEW. Nothing was charged."
        );
    }

    #[test]
    fn a_declined_top_up_names_the_cause_and_no_other() {
        let body = |reason: &str| {
            TopUpDeclined {
                top_up_id: Uuid::from_u128(3),
                account_id: BUYER,
                amount_minor: 1000,
                reason: reason.into(),
            }
            .notes()
            .remove(0)
            .body
        };
        assert!(body("WALLET_FROZEN").contains("frozen"));
        assert_eq!(
            body("CARD_DECLINED"),
            "Your card was declined; nothing was charged."
        );
        assert_eq!(
            body("UNKNOWN_CARD"),
            "This card is not accepted; nothing was charged."
        );
        assert_eq!(
            body("PROVIDER_SAYS_NO"),
            "The payment was declined; nothing was charged."
        );
    }

    #[test]
    fn a_refund_is_told_once() {
        let refund = |amount_minor, refund_request, digital_kept| PaymentRefunded {
            order_id: ORDER,
            account_id: BUYER,
            amount_minor,
            currency: Currency::EUR,
            reason: "CANCELLED_BY_BUYER".into(),
            refund_request,
            digital_kept,
        };
        assert_eq!(refund(500, Some(Uuid::from_u128(4)), false).notes(), []);
        assert_eq!(refund(0, None, false).notes(), []);
        let plain = refund(500, None, false).notes();
        assert_eq!(
            plain[0].body,
            format!("{} went back to your wallet.", money(500))
        );
        assert_eq!(plain[0].kind, NotificationKind::PaymentRefunded);
        let kept = refund(500, None, true).notes();
        assert!(kept[0].body.contains("digital items of the order stay"));
    }

    #[test]
    fn each_publisher_hears_of_its_own_copies_to_ship() {
        let shipped = |publisher, quantity| ShippedLine {
            edition_id: Uuid::from_u128(100),
            product_id: Uuid::from_u128(200),
            publisher_id: publisher,
            quantity,
        };
        let ev = ReadyToShip {
            order_id: ORDER,
            account_id: BUYER,
            lines: vec![shipped(ATLAS, 2), shipped(NEBULA, 1), shipped(ATLAS, 3)],
        };
        let told: Vec<(Uuid, String)> = ev
            .notes()
            .into_iter()
            .map(|n| (n.account, n.body))
            .collect();
        assert_eq!(
            told,
            [
                (
                    NEBULA,
                    "1 cop(ies) are paid and wait for you to ship them.".to_owned()
                ),
                (
                    ATLAS,
                    "5 cop(ies) are paid and wait for you to ship them.".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_reminder_gives_the_deadline_in_utc() {
        let deadline = chrono::DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .expect("date")
            .to_utc();
        let ev = ShippingReminder {
            order_id: ORDER,
            publisher_ids: vec![NEBULA, ATLAS],
            deadline_at: deadline,
        };
        let notes = ev.notes();
        assert_eq!(notes.len(), 2);
        assert_eq!(
            notes[0].body,
            "Ship it before 2026-03-04 05:06 UTC, or it is cancelled and refunded."
        );
    }

    #[test]
    fn a_denied_refund_adds_the_admins_note_when_there_is_one() {
        let denied = |note: &str| {
            RefundDenied {
                request_id: Uuid::from_u128(5),
                order_id: ORDER,
                account_id: BUYER,
                note: note.into(),
            }
            .notes()
            .remove(0)
            .body
        };
        assert_eq!(denied(""), "The order stays in your library.");
        assert_eq!(
            denied("Played for 40 hours."),
            "Played for 40 hours. The order stays in your library."
        );
    }

    #[test]
    fn a_refunded_order_tells_the_buyer_and_reverses_each_sale() {
        let ev = OrderRefunded {
            order_id: ORDER,
            account_id: BUYER,
            lines: lines(),
            total_minor: 5997,
            currency: Currency::EUR,
        };
        let kinds: Vec<(Uuid, NotificationKind)> = ev
            .notes()
            .into_iter()
            .map(|n| (n.account, n.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (BUYER, NotificationKind::OrderRefunded),
                (NEBULA, NotificationKind::SaleRefunded),
                (ATLAS, NotificationKind::SaleRefunded),
            ]
        );
    }

    #[test]
    fn only_a_redeemed_key_is_told() {
        let redeemed = |outcome| KeyRedeemed {
            redemption_id: Uuid::from_u128(6),
            account_id: BUYER,
            outcome,
        };
        let ok = redeemed(Ok((Uuid::from_u128(7), Uuid::from_u128(8)))).notes();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].kind, NotificationKind::KeyRedeemed);
        assert_eq!(ok[0].order, None);
        let refused = redeemed(Err(RedeemRefusal::UnknownKey));
        assert_eq!(refused.notes(), []);
    }

    #[test]
    fn the_rest_name_their_amount_or_their_parcel() {
        let credited = WalletCredited {
            top_up_id: Uuid::from_u128(3),
            account_id: BUYER,
            amount_minor: 2500,
            currency: Currency::EUR,
            balance_minor: 2500,
        };
        assert_eq!(
            credited.notes()[0].body,
            format!("{} was added to your wallet.", money(2500))
        );
        let dispatched = ShipmentDispatched {
            order_id: ORDER,
            account_id: BUYER,
            publisher_id: ATLAS,
            carrier: "DHL".into(),
            tracking_number: "JJD0001".into(),
            lines: Vec::new(),
        };
        assert_eq!(
            dispatched.notes()[0].body,
            "Shipped with DHL, tracking number JJD0001."
        );
        let keys = GiftKeysGenerated {
            batch_id: Uuid::from_u128(9),
            publisher_id: NEBULA,
            product_id: Uuid::from_u128(200),
            quantity: 25,
        };
        assert_eq!(keys.notes()[0].account, NEBULA);
        assert_eq!(
            keys.notes()[0].body,
            "25 gift key(s) are ready to hand out."
        );
        let requested = RefundRequested {
            request_id: Uuid::from_u128(5),
            order_id: ORDER,
            account_id: BUYER,
            reason: "Does not start".into(),
            policy_note: "downloaded".into(),
        };
        assert_eq!(
            requested.notes()[0].body,
            "It is outside the automatic refund policy (downloaded); an admin will decide."
        );
    }

    fn money(minor: i64) -> String {
        Money {
            minor,
            currency: Currency::EUR,
        }
        .format()
    }
}
