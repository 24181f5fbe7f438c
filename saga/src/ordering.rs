//! Ordering: creates orders (`cmd.ordering.place`) and moves them along the saga with the pure
//! state machine of [`domain::ordering::apply`] as payments and grants arrive.

use anyhow::anyhow;
use domain::billing::{PaymentCaptured, PaymentDeclined};
use domain::library::ItemsGranted;
use domain::messaging::Message;
use domain::ordering::{
    Effect, OrderCancelled, OrderCompleted, OrderFact, OrderLine, OrderPlaced, OrderState,
    OrderStatus, PlaceOrder, apply, total,
};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::consumer::{Failure, Incoming};
use crate::outbox::{Tx, stmt};
use crate::runtime::{Participant, Runtime};

const ME: Participant = Participant::Ordering;

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
        ItemsGranted::TYPE => {
            let d: ItemsGranted = msg.data()?;
            fact(
                rt,
                msg,
                d.order_id,
                OrderFact::ItemsGranted,
                "library",
                None,
            )
            .await
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
    step(&tx, cmd.order_id, "PLACED", "ordering", None).await?;
    tx.emit(
        OrderPlaced {
            order_id: cmd.order_id,
            account_id: cmd.account_id,
            lines: cmd.lines,
            total_minor,
            currency: cmd.currency,
            needs_shipping,
        },
        msg,
    )?;
    tx.commit(rt).await
}

async fn step(
    tx: &Tx,
    order: Uuid,
    step: &str,
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
                step.to_owned().into(),
                participant.to_owned().into(),
                detail.into(),
            ],
        ))
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(order.id = %order, fact = fact.step()))]
async fn fact(
    rt: &Runtime,
    msg: &Incoming,
    order: Uuid,
    fact: OrderFact,
    participant: &str,
    detail: Option<String>,
) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let row = tx
        .txn
        .query_one_raw(stmt(
            r#"SELECT account_id, status, paid, granted, cancel_reason, total_minor, currency
               FROM ordering."order" WHERE id = $1 FOR UPDATE"#,
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
        paid: row.try_get("", "paid")?,
        granted: row.try_get("", "granted")?,
        cancel_reason: row.try_get("", "cancel_reason")?,
    };
    let account_id: Uuid = row.try_get("", "account_id")?;
    let (next, effects) = apply(&state, &fact);
    if next != state {
        tx.txn
            .execute_raw(stmt(
                r#"UPDATE ordering."order" SET status = $2, paid = $3, granted = $4, cancel_reason = $5,
                   updated_at = now() WHERE id = $1"#,
                [
                    order.into(),
                    next.status.as_str().to_owned().into(),
                    next.paid.into(),
                    next.granted.into(),
                    next.cancel_reason.clone().into(),
                ],
            ))
            .await?;
    }
    for effect in effects {
        match effect {
            Effect::Timeline(s) => step(&tx, order, s, participant, detail.clone()).await?,
            Effect::Complete => {
                step(&tx, order, "COMPLETED", "ordering", None).await?;
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
            Effect::Cancel { reason } => {
                step(&tx, order, "CANCELLED", "ordering", Some(reason.clone())).await?;
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
    let rows = tx
        .txn
        .query_all_raw(stmt(
            "SELECT edition_id, product_id, publisher_id, kind, product_title, edition_name, unit_price_minor, quantity \
             FROM ordering.order_line WHERE order_id = $1 ORDER BY line_no",
            [order.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(OrderLine {
                edition_id: r.try_get("", "edition_id")?,
                product_id: r.try_get("", "product_id")?,
                publisher_id: r.try_get("", "publisher_id")?,
                kind: r.try_get("", "kind")?,
                product_title: r.try_get("", "product_title")?,
                edition_name: r.try_get("", "edition_name")?,
                unit_price_minor: r.try_get("", "unit_price_minor")?,
                quantity: r.try_get("", "quantity")?,
            })
        })
        .collect()
}
