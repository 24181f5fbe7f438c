//! Ordering: creates orders (`cmd.ordering.place`) and moves them along the saga with the pure
//! state machine of [`domain::ordering::apply`] as payments and grants arrive.

use anyhow::anyhow;
use domain::billing::{PaymentCaptured, PaymentDeclined, PaymentRefunded};
use domain::fulfillment::{ReadyToShip, ShipmentDispatched, StockReserved, StockUnavailable};
use domain::library::ItemsGranted;
use domain::messaging::Message;
use domain::ordering::{
    ALREADY_OWNED_OR_PENDING, Effect, OrderCancelled, OrderCompleted, OrderFact, OrderLine,
    OrderPlaced, OrderState, OrderStatus, PlaceOrder, TimelineStep, apply, claimed_products, total,
};
use domain::refund::{
    DecideRefund, OrderRefunded, RefundApproved, RefundDenied, RefundRequested, RefundStatus,
    RequestRefund,
};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::{Tx, stmt};
use crate::infra::runtime::{Participant, Runtime};

const ME: Participant = Participant::Ordering;

/// What ordering reacts to, registered with the consume loop: its commands and these events.
pub const REGISTRATION: Registration = Registration {
    participant: ME,
    events: &[
        "fulfillment.stock_reserved",
        "fulfillment.stock_unavailable",
        "fulfillment.ready_to_ship",
        "fulfillment.shipment_dispatched",
        "billing.payment_captured",
        "billing.payment_refunded",
        "billing.payment_declined",
        "library.items_granted",
    ],
    handle: |rt, msg| Box::pin(handle(rt, msg)),
};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    match msg.kind() {
        PlaceOrder::TYPE => place(rt, msg, msg.data()?).await,
        PaymentCaptured::TYPE => {
            let d: PaymentCaptured = msg.data()?;
            fact(
                rt,
                msg,
                d.order_id,
                OrderFact::PaymentCaptured,
                "billing",
                None,
            )
            .await
        }
        PaymentDeclined::TYPE => {
            let d: PaymentDeclined = msg.data()?;
            let reason = d.reason.as_str().to_owned();
            let f = OrderFact::PaymentDeclined {
                reason: reason.clone(),
            };
            fact(rt, msg, d.order_id, f, "billing", Some(reason)).await
        }
        StockReserved::TYPE => {
            let d: StockReserved = msg.data()?;
            let f = OrderFact::StockReserved;
            fact(rt, msg, d.order_id, f, "fulfillment", None).await
        }
        StockUnavailable::TYPE => {
            let d: StockUnavailable = msg.data()?;
            let detail = d
                .edition_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let f = OrderFact::StockUnavailable;
            fact(rt, msg, d.order_id, f, "fulfillment", Some(detail)).await
        }
        PaymentRefunded::TYPE => {
            let d: PaymentRefunded = msg.data()?;
            let f = if d.refund_request.is_some() {
                OrderFact::RefundSettled
            } else {
                OrderFact::Refunded {
                    reason: d.reason.clone(),
                }
            };
            let detail = if d.digital_kept {
                format!("{}; the digital lines stay in the library", d.reason)
            } else {
                d.reason
            };
            let claims = if d.digital_kept {
                Claims::Keep
            } else {
                Claims::Release
            };
            fact_with(rt, msg, d.order_id, f, "billing", Some(detail), claims).await
        }
        RequestRefund::TYPE => request_refund(rt, msg, msg.data()?).await,
        DecideRefund::TYPE => decide_refund(rt, msg, msg.data()?).await,
        ReadyToShip::TYPE => {
            let d: ReadyToShip = msg.data()?;
            let f = OrderFact::ReadyToShip;
            fact(rt, msg, d.order_id, f, "fulfillment", None).await
        }
        ShipmentDispatched::TYPE => {
            let d: ShipmentDispatched = msg.data()?;
            let detail = format!("{} {}", d.carrier, d.tracking_number);
            fact(
                rt,
                msg,
                d.order_id,
                OrderFact::Shipped,
                "fulfillment",
                Some(detail),
            )
            .await
        }
        ItemsGranted::TYPE => {
            let d: ItemsGranted = msg.data()?;
            let f = if d.physical {
                OrderFact::PhysicalGranted
            } else {
                OrderFact::ItemsGranted
            };
            fact(rt, msg, d.order_id, f, "library", None).await
        }
        other => Err(Failure::Poison(format!(
            "ordering does not handle `{other}`"
        ))),
    }
}

#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn place(rt: &Runtime, msg: &Incoming, cmd: PlaceOrder) -> Result<(), Failure> {
    let Some(total_minor) = total(&cmd.lines).filter(|_| !cmd.lines.is_empty()) else {
        return Err(Failure::Poison(
            "an order needs lines and a finite total".into(),
        ));
    };
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let needs_shipping = cmd.lines.iter().any(OrderLine::is_physical);
    if needs_shipping != cmd.shipping_address.is_some() {
        return Err(Failure::Poison(
            "an order has a shipping address exactly when it has physical lines".into(),
        ));
    }
    let created = tx
        .txn
        .execute_raw(stmt(
            r#"INSERT INTO ordering."order" (id, account_id, idempotency_key, status, total_minor, currency, needs_shipping)
               VALUES ($1, $2, $3, 'PLACED', $4, $5, $6) ON CONFLICT DO NOTHING"#,
            [
                cmd.order_id.into(),
                cmd.account_id.into(),
                cmd.idempotency_key.clone().into(),
                total_minor.into(),
                cmd.currency.as_str().to_owned().into(),
                needs_shipping.into(),
            ],
        ))
        .await?
        .rows_affected();
    if created == 0 {
        // The same order (a command replayed with another message id): already placed.
        tracing::info!("order exists already");
        return tx.commit(rt).await;
    }
    for (i, l) in cmd.lines.iter().enumerate() {
        tx.txn
            .execute_raw(stmt(
                "INSERT INTO ordering.order_line (order_id, line_no, edition_id, product_id, publisher_id, kind, \
                 product_title, edition_name, unit_price_minor, quantity) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                [
                    cmd.order_id.into(),
                    i32::try_from(i).unwrap_or(i32::MAX).into(),
                    l.edition_id.into(),
                    l.product_id.into(),
                    l.publisher_id.into(),
                    l.kind.clone().into(),
                    l.product_title.clone().into(),
                    l.edition_name.clone().into(),
                    l.unit_price_minor.into(),
                    l.quantity.into(),
                ],
            ))
            .await?;
    }
    step(&tx, cmd.order_id, TimelineStep::Placed, "ordering", None).await?;
    if !claim(&tx, &cmd).await? {
        // Another order of this buyer holds one of the products (or the buyer owns it): the
        // order ends here, before anything is reserved or charged.
        tracing::info!("refused: a product is already owned or in another order");
        let reason = ALREADY_OWNED_OR_PENDING.to_owned();
        tx.txn
            .execute_raw(stmt(
                r#"UPDATE ordering."order" SET status = 'CANCELLED', cancel_reason = $2, updated_at = now()
                   WHERE id = $1"#,
                [cmd.order_id.into(), reason.clone().into()],
            ))
            .await?;
        step(
            &tx,
            cmd.order_id,
            TimelineStep::Cancelled,
            "ordering",
            Some(reason.clone()),
        )
        .await?;
        tx.emit(
            OrderCancelled {
                order_id: cmd.order_id,
                account_id: cmd.account_id,
                reason,
            },
            msg,
        )?;
        return tx.commit(rt).await;
    }
    tx.emit(
        OrderPlaced {
            order_id: cmd.order_id,
            account_id: cmd.account_id,
            lines: cmd.lines,
            total_minor,
            currency: cmd.currency,
            needs_shipping,
            shipping_address: cmd.shipping_address,
        },
        msg,
    )?;
    tx.commit(rt).await
}

/// Claims the order's digital products for its buyer (`ordering.product_claim`, primary key
/// (account, product)). A concurrent transaction claiming the same product waits for this one
/// and then finds the row, so at most one order per buyer and product is ever alive. `false`
/// (and no claim left behind) when a product is already claimed by another order.
async fn claim(tx: &Tx, cmd: &PlaceOrder) -> Result<bool, Failure> {
    for product in claimed_products(&cmd.lines) {
        let claimed = tx
            .txn
            .execute_raw(stmt(
                "INSERT INTO ordering.product_claim (account_id, product_id, order_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, product_id) DO NOTHING",
                [cmd.account_id.into(), product.into(), cmd.order_id.into()],
            ))
            .await?
            .rows_affected();
        if claimed == 0 {
            release_claims(tx, cmd.order_id).await?;
            return Ok(false);
        }
    }
    Ok(true)
}

/// Gives back the products an order claimed (the order is cancelled).
async fn release_claims(tx: &Tx, order: Uuid) -> Result<(), Failure> {
    tx.txn
        .execute_raw(stmt(
            "DELETE FROM ordering.product_claim WHERE order_id = $1",
            [order.into()],
        ))
        .await?;
    Ok(())
}

async fn step(
    tx: &Tx,
    order: Uuid,
    step: TimelineStep,
    participant: &str,
    detail: Option<String>,
) -> Result<(), Failure> {
    tx.txn
        .execute_raw(stmt(
            "INSERT INTO ordering.order_step (id, order_id, step, participant, detail) VALUES ($1,$2,$3,$4,$5) \
             ON CONFLICT (order_id, step) DO NOTHING",
            [
                domain::id::new_id().into(),
                order.into(),
                step.as_str().to_owned().into(),
                participant.to_owned().into(),
                detail.into(),
            ],
        ))
        .await?;
    Ok(())
}

/// What a cancellation does with the products the order claimed for its buyer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claims {
    /// The buyer no longer has them: they may buy them again.
    Release,
    /// The buyer keeps the digital lines (a cancellation that refunded only the boxes).
    Keep,
}

async fn fact(
    rt: &Runtime,
    msg: &Incoming,
    order: Uuid,
    fact: OrderFact,
    participant: &str,
    detail: Option<String>,
) -> Result<(), Failure> {
    fact_with(rt, msg, order, fact, participant, detail, Claims::Release).await
}

#[tracing::instrument(skip_all, fields(order.id = %order, fact = fact.step().as_str()))]
async fn fact_with(
    rt: &Runtime,
    msg: &Incoming,
    order: Uuid,
    fact: OrderFact,
    participant: &str,
    detail: Option<String>,
    claims: Claims,
) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let row = tx
        .txn
        .query_one_raw(stmt(
            r#"SELECT account_id, status, needs_shipping, reserved, paid, granted, shipped, delivered,
               refunded, ready, cancel_reason, total_minor, currency FROM ordering."order" WHERE id = $1 FOR UPDATE"#,
            [order.into()],
        ))
        .await?;
    let Some(row) = row else {
        // Events of an order are only emitted after it was placed; not visible yet, or
        // unknown: retried, then dead-lettered.
        return Err(Failure::Transient(anyhow!("order {order} is not known")));
    };
    let status: String = row.try_get("", "status")?;
    let state = OrderState {
        status: OrderStatus::parse(&status)
            .ok_or_else(|| Failure::Poison(format!("unknown status {status}")))?,
        needs_shipping: row.try_get("", "needs_shipping")?,
        reserved: row.try_get("", "reserved")?,
        paid: row.try_get("", "paid")?,
        granted: row.try_get("", "granted")?,
        shipped: row.try_get("", "shipped")?,
        delivered: row.try_get("", "delivered")?,
        refunded: row.try_get("", "refunded")?,
        ready: row.try_get("", "ready")?,
        cancel_reason: row.try_get("", "cancel_reason")?,
    };
    let account_id: Uuid = row.try_get("", "account_id")?;
    let (next, effects) = apply(&state, &fact);
    if next != state {
        tx.txn
            .execute_raw(stmt(
                r#"UPDATE ordering."order" SET status = $2, paid = $3, granted = $4, cancel_reason = $5,
                   reserved = $6, shipped = $7, delivered = $8, refunded = $9, ready = $10, updated_at = now(),
                   completed_at = CASE WHEN $2 = 'COMPLETED' AND completed_at IS NULL THEN now() ELSE completed_at END
                   WHERE id = $1"#,
                [
                    order.into(),
                    next.status.as_str().to_owned().into(),
                    next.paid.into(),
                    next.granted.into(),
                    next.cancel_reason.clone().into(),
                    next.reserved.into(),
                    next.shipped.into(),
                    next.delivered.into(),
                    next.refunded.into(),
                    next.ready.into(),
                ],
            ))
            .await?;
    }
    for effect in effects {
        match effect {
            Effect::Timeline(s) => step(&tx, order, s, participant, detail.clone()).await?,
            Effect::Complete => {
                step(&tx, order, TimelineStep::Completed, "ordering", None).await?;
                let lines = load_lines(&tx, order).await?;
                let currency: String = row.try_get("", "currency")?;
                tx.emit(
                    OrderCompleted {
                        order_id: order,
                        account_id,
                        lines,
                        total_minor: row.try_get("", "total_minor")?,
                        currency: domain::money::Currency::parse(&currency)
                            .map_err(|e| Failure::Poison(e.to_string()))?,
                    },
                    msg,
                )?;
            }
            Effect::AwaitShipment => {
                step(&tx, order, TimelineStep::AwaitingShipment, "ordering", None).await?;
            }
            Effect::Refund => {
                // The buyer no longer owns the products: they may buy them again.
                release_claims(&tx, order).await?;
                let lines = load_lines(&tx, order).await?;
                let currency: String = row.try_get("", "currency")?;
                tx.emit(
                    OrderRefunded {
                        order_id: order,
                        account_id,
                        lines,
                        total_minor: row.try_get("", "total_minor")?,
                        currency: domain::money::Currency::parse(&currency)
                            .map_err(|e| Failure::Poison(e.to_string()))?,
                    },
                    msg,
                )?;
            }
            Effect::Cancel { reason } => {
                if claims == Claims::Release {
                    release_claims(&tx, order).await?;
                }
                step(
                    &tx,
                    order,
                    TimelineStep::Cancelled,
                    "ordering",
                    Some(reason.clone()),
                )
                .await?;
                tx.emit(
                    OrderCancelled {
                        order_id: order,
                        account_id,
                        reason,
                    },
                    msg,
                )?;
            }
        }
    }
    tx.commit(rt).await
}

async fn load_lines(tx: &Tx, order: Uuid) -> Result<Vec<OrderLine>, Failure> {
    Ok(domain::ordering::load_lines(&tx.txn, order).await?)
}

/// A buyer asks for the refund of a completed order. The api checked the ownership and the
/// policy; here the request is recorded once per order (`UNIQUE (order_id)`) and, within the
/// policy, approved at once. An order that is not (or no longer) completed gets no request.
#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn request_refund(rt: &Runtime, msg: &Incoming, cmd: RequestRefund) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let order = tx
        .txn
        .query_one_raw(stmt(
            r#"SELECT account_id, status FROM ordering."order" WHERE id = $1 FOR UPDATE"#,
            [cmd.order_id.into()],
        ))
        .await?;
    let Some(order) = order else {
        return Err(Failure::Poison(format!(
            "order {} is not known",
            cmd.order_id
        )));
    };
    let owner: Uuid = order.try_get("", "account_id")?;
    let status: String = order.try_get("", "status")?;
    if owner != cmd.account_id || status != OrderStatus::Completed.as_str() {
        tracing::warn!(%status, "refund request refused: not the buyer's completed order");
        return tx.commit(rt).await;
    }
    let status = if cmd.within_policy {
        RefundStatus::Approved
    } else {
        RefundStatus::PendingReview
    };
    let created = tx
        .txn
        .execute_raw(stmt(
            "INSERT INTO ordering.refund_request (id, order_id, account_id, reason, within_policy, policy_note, status, decided_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7, CASE WHEN $5 THEN now() END) ON CONFLICT (order_id) DO NOTHING",
            [
                cmd.request_id.into(),
                cmd.order_id.into(),
                cmd.account_id.into(),
                cmd.reason.clone().into(),
                cmd.within_policy.into(),
                cmd.policy_note.clone().into(),
                status.as_str().to_owned().into(),
            ],
        ))
        .await?
        .rows_affected();
    if created == 0 {
        tracing::info!("the order has a refund request already");
        return tx.commit(rt).await;
    }
    step(
        &tx,
        cmd.order_id,
        TimelineStep::RefundRequested,
        "ordering",
        Some(cmd.reason.clone()),
    )
    .await?;
    if cmd.within_policy {
        step(
            &tx,
            cmd.order_id,
            TimelineStep::RefundApproved,
            "ordering",
            Some(cmd.policy_note),
        )
        .await?;
        tx.emit(
            RefundApproved {
                request_id: cmd.request_id,
                order_id: cmd.order_id,
                account_id: cmd.account_id,
                approved_by: None,
            },
            msg,
        )?;
    } else {
        tx.emit(
            RefundRequested {
                request_id: cmd.request_id,
                order_id: cmd.order_id,
                account_id: cmd.account_id,
                reason: cmd.reason,
                policy_note: cmd.policy_note,
            },
            msg,
        )?;
    }
    tracing::info!(status = status.as_str(), "refund requested");
    tx.commit(rt).await
}

/// An admin decides a request that waits for review; a decided request stays decided.
#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn decide_refund(rt: &Runtime, msg: &Incoming, cmd: DecideRefund) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let status = if cmd.approve {
        RefundStatus::Approved
    } else {
        RefundStatus::Denied
    };
    let row = tx
        .txn
        .query_one_raw(stmt(
            "UPDATE ordering.refund_request SET status = $2, decided_by = $3, decision_note = $4, decided_at = now() \
             WHERE order_id = $1 AND status = 'PENDING_REVIEW' RETURNING id, account_id",
            [
                cmd.order_id.into(),
                status.as_str().to_owned().into(),
                cmd.admin_id.into(),
                cmd.note.clone().into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        tracing::info!("no refund request waits for review");
        return tx.commit(rt).await;
    };
    let request_id: Uuid = row.try_get("", "id")?;
    let account_id: Uuid = row.try_get("", "account_id")?;
    if cmd.approve {
        step(
            &tx,
            cmd.order_id,
            TimelineStep::RefundApproved,
            "admin",
            Some(cmd.note),
        )
        .await?;
        tx.emit(
            RefundApproved {
                request_id,
                order_id: cmd.order_id,
                account_id,
                approved_by: Some(cmd.admin_id),
            },
            msg,
        )?;
    } else {
        step(
            &tx,
            cmd.order_id,
            TimelineStep::RefundDenied,
            "admin",
            Some(cmd.note.clone()),
        )
        .await?;
        tx.emit(
            RefundDenied {
                request_id,
                order_id: cmd.order_id,
                account_id,
                note: cmd.note,
            },
            msg,
        )?;
    }
    tracing::info!(status = status.as_str(), "refund decided");
    tx.commit(rt).await
}
