//! Notification: one notification per meaningful event, for the buyer and (for a sale) each
//! publisher. The unread counter `notif:unread:{account}` in Redis is dropped after each
//! change and rebuilt from the table by the api on its next read (while Redis is down the api
//! counts in the table, and drops the counters changed meanwhile when Redis is back).

use domain::billing::{PaymentRefunded, TopUpDeclined, WalletCredited};
use domain::fulfillment::{ReadyToShip, ShipmentDispatched, ShippingReminder};
use domain::library::{GiftKeysGenerated, KeyRedeemed};
use domain::messaging::Message;
use domain::money::Money;
use domain::notification::{MarkRead, NotificationCreated, NotificationKind};
use domain::ordering::{OrderCancelled, OrderCompleted};
use domain::refund::{OrderRefunded, RefundDenied, RefundRequested};
use fred::interfaces::KeysInterface;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::consumer::{Failure, Incoming};
use crate::outbox::{Tx, stmt};
use crate::runtime::{Participant, Runtime};

const ME: Participant = Participant::Notification;

struct Note {
    account: Uuid,
    kind: NotificationKind,
    title: String,
    body: String,
    order: Option<Uuid>,
}

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    let notes = match msg.kind() {
        OrderCompleted::TYPE => {
            let ev: OrderCompleted = msg.data()?;
            let total = Money {
                minor: ev.total_minor,
                currency: ev.currency,
            };
            let mut notes = vec![Note {
                account: ev.account_id,
                kind: NotificationKind::OrderCompleted,
                title: "Your order is complete".into(),
                body: format!(
                    "{} item(s) for {} are in your library.",
                    ev.lines.len(),
                    total.format()
                ),
                order: Some(ev.order_id),
            }];
            for (publisher, sold) in titles_by_publisher(&ev.lines) {
                notes.push(Note {
                    account: publisher,
                    kind: NotificationKind::Sale,
                    title: "You made a sale".into(),
                    body: format!("Sold: {}.", sold.join(", ")),
                    order: Some(ev.order_id),
                });
            }
            notes
        }
        OrderCancelled::TYPE => {
            let ev: OrderCancelled = msg.data()?;
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::OrderCancelled,
                title: "Your order was cancelled".into(),
                body: match ev.reason.as_str() {
                    "INSUFFICIENT_FUNDS" => {
                        "Your wallet balance did not cover the order; nothing was charged.".into()
                    }
                    "WALLET_FROZEN" => "Your wallet is frozen; nothing was charged.".into(),
                    domain::fulfillment::OUT_OF_STOCK => {
                        "An edition of your order is out of stock; nothing was charged.".into()
                    }
                    domain::fulfillment::CANCELLED_BY_BUYER => {
                        "You cancelled the order before it was shipped; your payment is refunded \
                         to your wallet."
                            .into()
                    }
                    domain::fulfillment::SHIPPING_DEADLINE_PASSED => {
                        "The publisher did not ship in time; your payment is refunded to your \
                         wallet."
                            .into()
                    }
                    domain::ordering::ALREADY_OWNED_OR_PENDING => {
                        "You already own this product or have it in another order; nothing was \
                         charged."
                            .into()
                    }
                    other => format!("Reason: {other}. Nothing was charged."),
                },
                order: Some(ev.order_id),
            }]
        }
        WalletCredited::TYPE => {
            let ev: WalletCredited = msg.data()?;
            let amount = Money {
                minor: ev.amount_minor,
                currency: ev.currency,
            };
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::WalletCredited,
                title: "Wallet topped up".into(),
                body: format!("{} was added to your wallet.", amount.format()),
                order: None,
            }]
        }
        TopUpDeclined::TYPE => {
            let ev: TopUpDeclined = msg.data()?;
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::TopUpDeclined,
                title: "Top-up declined".into(),
                body: match ev.reason.as_str() {
                    "WALLET_FROZEN" => {
                        "Your wallet is frozen, so it takes no top-ups; your card was not charged."
                            .into()
                    }
                    "CARD_DECLINED" => "Your card was declined; nothing was charged.".into(),
                    "UNKNOWN_CARD" => "This card is not accepted; nothing was charged.".into(),
                    _ => "The payment was declined; nothing was charged.".into(),
                },
                order: None,
            }]
        }
        PaymentRefunded::TYPE if msg.data::<PaymentRefunded>()?.refund_request.is_some() => {
            // A refund request settled: `OrderRefunded` tells the buyer, once the order is.
            Vec::new()
        }
        PaymentRefunded::TYPE if msg.data::<PaymentRefunded>()?.amount_minor == 0 => {
            // Nothing was charged (an unpaid order cancelled): `OrderCancelled` tells the buyer.
            Vec::new()
        }
        PaymentRefunded::TYPE => {
            let ev: PaymentRefunded = msg.data()?;
            let amount = Money {
                minor: ev.amount_minor,
                currency: ev.currency,
            };
            let body = if ev.digital_kept {
                format!(
                    "{} went back to your wallet. The digital items of the order stay in your \
                     library (downloaded, or bought longer ago than the refund window).",
                    amount.format()
                )
            } else {
                format!("{} went back to your wallet.", amount.format())
            };
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::PaymentRefunded,
                title: "Payment refunded".into(),
                body,
                order: Some(ev.order_id),
            }]
        }
        ReadyToShip::TYPE => {
            let ev: ReadyToShip = msg.data()?;
            publishers_of(&ev.lines)
                .into_iter()
                .map(|p| Note {
                    account: p,
                    kind: NotificationKind::ShipmentToSend,
                    title: "A new order to ship".into(),
                    body: format!(
                        "{} cop(ies) are paid and wait for you to ship them.",
                        ev.lines
                            .iter()
                            .filter(|l| l.publisher_id == p)
                            .map(|l| i64::from(l.quantity))
                            .sum::<i64>()
                    ),
                    order: Some(ev.order_id),
                })
                .collect()
        }
        ShippingReminder::TYPE => {
            let ev: ShippingReminder = msg.data()?;
            ev.publisher_ids
                .iter()
                .map(|p| Note {
                    account: *p,
                    kind: NotificationKind::ShippingReminder,
                    title: "An order still waits to be shipped".into(),
                    body: format!(
                        "Ship it before {}, or it is cancelled and refunded.",
                        ev.deadline_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                    order: Some(ev.order_id),
                })
                .collect()
        }
        ShipmentDispatched::TYPE => {
            let ev: ShipmentDispatched = msg.data()?;
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::ShipmentDispatched,
                title: "Your order is on its way".into(),
                body: format!(
                    "Shipped with {}, tracking number {}.",
                    ev.carrier, ev.tracking_number
                ),
                order: Some(ev.order_id),
            }]
        }
        RefundRequested::TYPE => {
            let ev: RefundRequested = msg.data()?;
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::RefundRequested,
                title: "Your refund request is under review".into(),
                body: format!(
                    "It is outside the automatic refund policy ({}); an admin will decide.",
                    ev.policy_note
                ),
                order: Some(ev.order_id),
            }]
        }
        RefundDenied::TYPE => {
            let ev: RefundDenied = msg.data()?;
            vec![Note {
                account: ev.account_id,
                kind: NotificationKind::RefundDenied,
                title: "Your refund request was denied".into(),
                body: if ev.note.is_empty() {
                    "The order stays in your library.".into()
                } else {
                    format!("{} The order stays in your library.", ev.note)
                },
                order: Some(ev.order_id),
            }]
        }
        OrderRefunded::TYPE => {
            let ev: OrderRefunded = msg.data()?;
            let total = Money {
                minor: ev.total_minor,
                currency: ev.currency,
            };
            let mut notes = vec![Note {
                account: ev.account_id,
                kind: NotificationKind::OrderRefunded,
                title: "Your order is refunded".into(),
                body: format!(
                    "{} went back to your wallet; the order's items left your library.",
                    total.format()
                ),
                order: Some(ev.order_id),
            }];
            for (publisher, titles) in titles_by_publisher(&ev.lines) {
                notes.push(Note {
                    account: publisher,
                    kind: NotificationKind::SaleRefunded,
                    title: "A sale was refunded".into(),
                    body: format!("Refunded: {}; its revenue is reversed.", titles.join(", ")),
                    order: Some(ev.order_id),
                });
            }
            notes
        }
        GiftKeysGenerated::TYPE => {
            let ev: GiftKeysGenerated = msg.data()?;
            vec![Note {
                account: ev.publisher_id,
                kind: NotificationKind::GiftKeysReady,
                title: "Gift keys ready".into(),
                body: format!("{} gift key(s) are ready to hand out.", ev.quantity),
                order: None,
            }]
        }
        KeyRedeemed::TYPE => {
            let ev: KeyRedeemed = msg.data()?;
            match ev.outcome {
                Ok(_) => vec![Note {
                    account: ev.account_id,
                    kind: NotificationKind::KeyRedeemed,
                    title: "Key redeemed".into(),
                    body: "The product is in your library.".into(),
                    order: None,
                }],
                Err(_) => Vec::new(),
            }
        }
        MarkRead::TYPE => return mark_read(rt, msg, msg.data()?).await,
        other => {
            return Err(Failure::Poison(format!(
                "notification does not handle `{other}`"
            )));
        }
    };
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let accounts: Vec<Uuid> = notes.iter().map(|n| n.account).collect();
    for n in notes {
        let id = domain::id::new_id();
        tx.txn
            .execute_raw(stmt(
                "INSERT INTO notification.notification (id, account_id, kind, title, body, order_id) \
                 VALUES ($1,$2,$3,$4,$5,$6)",
                [
                    id.into(),
                    n.account.into(),
                    n.kind.as_str().to_owned().into(),
                    n.title.clone().into(),
                    n.body.clone().into(),
                    n.order.into(),
                ],
            ))
            .await?;
        tx.emit(
            NotificationCreated {
                notification_id: id,
                account_id: n.account,
                kind: n.kind,
                title: n.title,
                body: n.body,
                order_id: n.order,
            },
            msg,
        )?;
    }
    tx.commit(rt).await?;
    forget_unread(rt, &accounts).await;
    Ok(())
}

async fn mark_read(rt: &Runtime, msg: &Incoming, cmd: MarkRead) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    tx.txn
        .execute_raw(stmt(
            "UPDATE notification.notification SET read_at = now() \
             WHERE account_id = $1 AND read_at IS NULL AND created_at <= $2",
            [cmd.account_id.into(), cmd.up_to.into()],
        ))
        .await?;
    tx.commit(rt).await?;
    forget_unread(rt, &[cmd.account_id]).await;
    Ok(())
}

/// Drops the derived unread counters; the api rebuilds them from the table.
async fn forget_unread(rt: &Runtime, accounts: &[Uuid]) {
    if !rt.redis_health.is_up() {
        return;
    }
    let keys: Vec<String> = accounts
        .iter()
        .map(|a| domain::keys::unread(&rt.redis_ns, *a))
        .collect();
    let res: Result<i64, _> = rt.redis.del(keys).await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "could not drop the unread counters");
    }
}

/// "Title (Edition)" of each line, per publisher.
fn titles_by_publisher(lines: &[domain::ordering::OrderLine]) -> Vec<(Uuid, Vec<String>)> {
    domain::ordering::by_publisher(lines)
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

fn publishers_of(lines: &[domain::fulfillment::ShippedLine]) -> Vec<Uuid> {
    let mut publishers: Vec<Uuid> = lines.iter().map(|l| l.publisher_id).collect();
    publishers.sort();
    publishers.dedup();
    publishers
}
