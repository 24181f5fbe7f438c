//! Fulfillment: stock of physical editions (`cmd.fulfillment.adjust_stock`), reservations of
//! the physical lines of orders (DESIGN §4) and their shipments.
//!
//! No overselling: a reservation locks the inventory rows of all its editions (in edition
//! order, so concurrent reservations cannot deadlock), checks `on_hand - reserved` for each, and
//! either reserves every line or none; `CHECK (reserved <= on_hand)` backs it in PostgreSQL.

use std::collections::BTreeMap;

use domain::billing::{PaymentCaptured, PaymentDeclined};
use domain::fulfillment::{
    AdjustStock, CancelRejected, CancelShipment, MAX_STOCK, MAX_TRACKING_LEN, OUT_OF_STOCK,
    PAYMENT_DEADLINE_PASSED, ReadyToShip, RemindShipment, SHIPPING_DEADLINE_PASSED, ShipOrder,
    ShipmentCancelled, ShipmentDispatched, ShipmentRejected, ShipmentStatus, ShippedLine,
    ShippingReminder, StockMode, StockReserved, StockUnavailable,
};
use domain::messaging::Message;
use domain::ordering::OrderPlaced;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::{Tx, stmt};
use crate::infra::runtime::{Participant, Runtime};

const ME: Participant = Participant::Fulfillment;

/// What fulfillment reacts to, registered with the consume loop: its commands and these events.
pub const REGISTRATION: Registration = Registration {
    participant: ME,
    events: &[
        "ordering.order_placed",
        "billing.payment_captured",
        "billing.payment_declined",
    ],
    handle: |rt, msg| Box::pin(handle(rt, msg)),
};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    match msg.kind() {
        AdjustStock::TYPE => adjust(rt, msg, msg.data()?).await,
        OrderPlaced::TYPE => reserve(rt, msg, msg.data()?).await,
        ShipOrder::TYPE => ship(rt, msg, msg.data()?).await,
        CancelShipment::TYPE => cancel(rt, msg, msg.data()?).await,
        RemindShipment::TYPE => remind(rt, msg, msg.data()?).await,
        PaymentCaptured::TYPE => {
            let ev: PaymentCaptured = msg.data()?;
            paid(rt, msg, ev.order_id).await
        }
        PaymentDeclined::TYPE => {
            let ev: PaymentDeclined = msg.data()?;
            release(rt, msg, ev.order_id, ev.reason.as_str()).await
        }
        other => Err(Failure::Poison(format!(
            "fulfillment does not handle `{other}`"
        ))),
    }
}

/// Applies a stock change; the stock on hand never drops below what is reserved.
async fn adjust(rt: &Runtime, msg: &Incoming, cmd: AdjustStock) -> Result<(), Failure> {
    if cmd.quantity.abs() > MAX_STOCK {
        return Err(Failure::Poison("the stock change is too large".into()));
    }
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let sql = match cmd.mode {
        StockMode::Set => {
            "INSERT INTO fulfillment.inventory (edition_id, on_hand) VALUES ($1, GREATEST($2, 0)) \
             ON CONFLICT (edition_id) DO UPDATE SET on_hand = LEAST(GREATEST($2, inventory.reserved), 2000000000), \
             version = inventory.version + 1, updated_at = now()"
        }
        StockMode::Add => {
            "INSERT INTO fulfillment.inventory (edition_id, on_hand) VALUES ($1, GREATEST($2, 0)) \
             ON CONFLICT (edition_id) DO UPDATE SET on_hand = LEAST(GREATEST(inventory.on_hand + $2, inventory.reserved), 2000000000), \
             version = inventory.version + 1, updated_at = now()"
        }
    };
    tx.txn
        .execute_raw(stmt(sql, [cmd.edition_id.into(), cmd.quantity.into()]))
        .await?;
    tx.commit(rt).await
}

/// Reserves every physical line of a placed order at once → `StockReserved`, or none →
/// `StockUnavailable`.
#[tracing::instrument(skip_all, fields(order.id = %ev.order_id))]
async fn reserve(rt: &Runtime, msg: &Incoming, ev: OrderPlaced) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    if !ev.needs_shipping {
        return tx.commit(rt).await;
    }
    let Some(address) = &ev.shipping_address else {
        return Err(Failure::Poison(
            "an order that needs shipping has no address".into(),
        ));
    };
    let address = serde_json::to_value(address)
        .map_err(|e| Failure::Poison(format!("encoding the address: {e}")))?;
    // Quantities per edition, in edition order (the lock order).
    let mut wanted: BTreeMap<Uuid, (i32, &domain::ordering::OrderLine)> = BTreeMap::new();
    for l in ev.lines.iter().filter(|l| l.is_physical()) {
        let e = wanted.entry(l.edition_id).or_insert((0, l));
        e.0 = e.0.saturating_add(l.quantity);
    }
    let editions: Vec<Uuid> = wanted.keys().copied().collect();
    let rows = tx
        .txn
        .query_all_raw(stmt(
            "SELECT edition_id, on_hand - reserved AS available FROM fulfillment.inventory \
             WHERE edition_id = ANY($1) ORDER BY edition_id FOR UPDATE",
            [editions.clone().into()],
        ))
        .await?;
    let mut available: BTreeMap<Uuid, i32> = BTreeMap::new();
    for r in rows {
        available.insert(r.try_get("", "edition_id")?, r.try_get("", "available")?);
    }
    let short: Vec<Uuid> = wanted
        .iter()
        .filter(|(e, (q, _))| available.get(*e).copied().unwrap_or(0) < *q)
        .map(|(e, _)| *e)
        .collect();
    let status = if short.is_empty() {
        ShipmentStatus::Reserved
    } else {
        ShipmentStatus::Released
    };
    let created = tx
        .txn
        .execute_raw(stmt(
            "INSERT INTO fulfillment.shipment (order_id, account_id, status, address, release_reason, released_at) \
             VALUES ($1, $2, $3, $4, $5, CASE WHEN $5::text IS NULL THEN NULL ELSE now() END) \
             ON CONFLICT (order_id) DO NOTHING",
            [
                ev.order_id.into(),
                ev.account_id.into(),
                status.as_str().to_owned().into(),
                address.into(),
                (!short.is_empty()).then(|| OUT_OF_STOCK.to_owned()).into(),
            ],
        ))
        .await?
        .rows_affected();
    if created == 0 {
        // The same order seen through another message: already decided.
        return tx.commit(rt).await;
    }
    if !short.is_empty() {
        tracing::info!(editions = ?short, "stock unavailable");
        tx.emit(
            StockUnavailable {
                order_id: ev.order_id,
                account_id: ev.account_id,
                edition_ids: short,
            },
            msg,
        )?;
        return tx.commit(rt).await;
    }
    for (edition, (quantity, line)) in &wanted {
        tx.txn
            .execute_raw(stmt(
                "UPDATE fulfillment.inventory SET reserved = reserved + $2, version = version + 1, \
                 updated_at = now() WHERE edition_id = $1",
                [(*edition).into(), (*quantity).into()],
            ))
            .await?;
        tx.txn
            .execute_raw(stmt(
                "INSERT INTO fulfillment.reservation (order_id, edition_id, product_id, publisher_id, quantity) \
                 VALUES ($1, $2, $3, $4, $5)",
                [
                    ev.order_id.into(),
                    (*edition).into(),
                    line.product_id.into(),
                    line.publisher_id.into(),
                    (*quantity).into(),
                ],
            ))
            .await?;
    }
    tracing::info!("stock reserved");
    tx.emit(
        StockReserved {
            order_id: ev.order_id,
            account_id: ev.account_id,
            lines: ev.lines,
            total_minor: ev.total_minor,
            currency: ev.currency,
        },
        msg,
    )?;
    tx.commit(rt).await
}

/// The order is paid: its shipment waits for the publisher → `ReadyToShip`.
#[tracing::instrument(skip_all, fields(order.id = %order))]
async fn paid(rt: &Runtime, msg: &Incoming, order: Uuid) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    // Digital-only orders have no shipment: nothing to do.
    let row = tx
        .txn
        .query_one_raw(stmt(
            "UPDATE fulfillment.shipment SET status = 'AWAITING_SHIPMENT', paid_at = now(), updated_at = now() \
             WHERE order_id = $1 AND status = 'RESERVED' RETURNING account_id",
            [order.into()],
        ))
        .await?;
    if let Some(row) = row {
        let lines = reserved_lines(&tx, order).await?;
        tx.emit(
            ReadyToShip {
                order_id: order,
                account_id: row.try_get("", "account_id")?,
                lines,
            },
            msg,
        )?;
    }
    tx.commit(rt).await
}

async fn reserved_lines(tx: &Tx, order: Uuid) -> Result<Vec<ShippedLine>, Failure> {
    let rows = tx
        .txn
        .query_all_raw(stmt(
            "SELECT edition_id, product_id, publisher_id, quantity FROM fulfillment.reservation \
             WHERE order_id = $1 ORDER BY edition_id",
            [order.into()],
        ))
        .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for r in rows {
        lines.push(ShippedLine {
            edition_id: r.try_get("", "edition_id")?,
            product_id: r.try_get("", "product_id")?,
            publisher_id: r.try_get("", "publisher_id")?,
            quantity: r.try_get("", "quantity")?,
        });
    }
    Ok(lines)
}

/// Gives the reservation of `order` back to the inventory (payment declined).
#[tracing::instrument(skip_all, fields(order.id = %order))]
async fn release(rt: &Runtime, msg: &Incoming, order: Uuid, reason: &str) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    release_in(&tx, order, reason, &["RESERVED"]).await?;
    tx.commit(rt).await
}

/// Releases the reservation of `order` if its shipment is in one of `from`; `false` when it
/// was not (already shipped or released, or no shipment).
pub(crate) async fn release_in(
    tx: &Tx,
    order: Uuid,
    reason: &str,
    from: &[&str],
) -> Result<bool, Failure> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let released = tx
        .txn
        .execute_raw(stmt(
            "UPDATE fulfillment.shipment SET status = 'RELEASED', release_reason = $2, released_at = now(), \
             updated_at = now() WHERE order_id = $1 AND status = ANY($3)",
            [order.into(), reason.to_owned().into(), from.into()],
        ))
        .await?
        .rows_affected();
    if released == 0 {
        return Ok(false);
    }
    // Edition order, as reservations lock them.
    tx.txn
        .execute_raw(stmt(
            "UPDATE fulfillment.inventory i SET reserved = i.reserved - r.quantity, version = i.version + 1, \
             updated_at = now() FROM (SELECT edition_id, quantity FROM fulfillment.reservation \
             WHERE order_id = $1 ORDER BY edition_id) r WHERE i.edition_id = r.edition_id",
            [order.into()],
        ))
        .await?;
    tracing::info!(reason, "reservation released");
    Ok(true)
}

/// Dispatches an order awaiting shipment: the reserved copies leave the stock (`on_hand` and
/// `reserved` both drop) → `ShipmentDispatched`; otherwise → `ShipmentRejected`. The status
/// update `WHERE status = 'AWAITING_SHIPMENT'` is what makes a ship and a cancel racing each
/// other exclusive: the first to commit wins, the other finds the status changed.
#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn ship(rt: &Runtime, msg: &Incoming, cmd: ShipOrder) -> Result<(), Failure> {
    let carrier = cmd.carrier.trim().to_owned();
    let tracking = cmd.tracking_number.trim().to_owned();
    if carrier.is_empty()
        || tracking.is_empty()
        || carrier.chars().count() > MAX_TRACKING_LEN
        || tracking.chars().count() > MAX_TRACKING_LEN
    {
        return Err(Failure::Poison(
            "carrier and tracking number are required".into(),
        ));
    }
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let lines = reserved_lines(&tx, cmd.order_id).await?;
    let reject = |reason: &str| ShipmentRejected {
        order_id: cmd.order_id,
        publisher_id: cmd.publisher_id,
        reason: reason.to_owned(),
    };
    if lines.is_empty() || lines.iter().any(|l| l.publisher_id != cmd.publisher_id) {
        tx.emit(reject("NOT_YOUR_ORDER"), msg)?;
        return tx.commit(rt).await;
    }
    let row = tx
        .txn
        .query_one_raw(stmt(
            "UPDATE fulfillment.shipment SET status = 'SHIPPED', carrier = $2, tracking_number = $3, \
             shipped_at = now(), updated_at = now() WHERE order_id = $1 AND status = 'AWAITING_SHIPMENT' \
             RETURNING account_id",
            [
                cmd.order_id.into(),
                carrier.clone().into(),
                tracking.clone().into(),
            ],
        ))
        .await?;
    let Some(row) = row else {
        tx.emit(reject("NOT_AWAITING_SHIPMENT"), msg)?;
        return tx.commit(rt).await;
    };
    for l in &lines {
        tx.txn
            .execute_raw(stmt(
                "UPDATE fulfillment.inventory SET on_hand = on_hand - $2, reserved = reserved - $2, \
                 version = version + 1, updated_at = now() WHERE edition_id = $1",
                [l.edition_id.into(), l.quantity.into()],
            ))
            .await?;
    }
    tracing::info!("shipment dispatched");
    tx.emit(
        ShipmentDispatched {
            order_id: cmd.order_id,
            account_id: row.try_get("", "account_id")?,
            publisher_id: cmd.publisher_id,
            carrier,
            tracking_number: tracking,
            lines,
        },
        msg,
    )?;
    tx.commit(rt).await
}

/// Cancels a paid order before dispatch: the reservation goes back to the stock →
/// `ShipmentCancelled` (billing refunds, library revokes, ordering cancels); when the parcel
/// left first (or the order is not awaiting shipment) → `CancelRejected`.
#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn cancel(rt: &Runtime, msg: &Incoming, cmd: CancelShipment) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let row = tx
        .txn
        .query_one_raw(stmt(
            "SELECT account_id, status FROM fulfillment.shipment WHERE order_id = $1 FOR UPDATE",
            [cmd.order_id.into()],
        ))
        .await?;
    let Some(row) = row else {
        tx.emit(
            CancelRejected {
                order_id: cmd.order_id,
                status: "NONE".into(),
            },
            msg,
        )?;
        return tx.commit(rt).await;
    };
    let status: String = row.try_get("", "status")?;
    // A reservation past its payment deadline is released unpaid (billing then refunds the
    // payment should it come after all); anything else only before dispatch.
    let from: &[&str] = if cmd.reason == PAYMENT_DEADLINE_PASSED {
        &["RESERVED"]
    } else {
        &["AWAITING_SHIPMENT"]
    };
    if !release_in(&tx, cmd.order_id, &cmd.reason, from).await? {
        tx.emit(
            CancelRejected {
                order_id: cmd.order_id,
                status,
            },
            msg,
        )?;
        return tx.commit(rt).await;
    }
    tx.emit(
        ShipmentCancelled {
            order_id: cmd.order_id,
            account_id: row.try_get("", "account_id")?,
            reason: cmd.reason,
            refund_digital: cmd.refund_digital,
        },
        msg,
    )?;
    tx.commit(rt).await
}

/// Marks the reminder of an order awaiting shipment (once) → `ShippingReminder`.
#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn remind(rt: &Runtime, msg: &Incoming, cmd: RemindShipment) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let marked = tx
        .txn
        .execute_raw(stmt(
            "UPDATE fulfillment.shipment SET reminded_at = now(), updated_at = now() \
             WHERE order_id = $1 AND status = 'AWAITING_SHIPMENT' AND reminded_at IS NULL",
            [cmd.order_id.into()],
        ))
        .await?
        .rows_affected();
    if marked > 0 {
        let mut publishers: Vec<Uuid> = reserved_lines(&tx, cmd.order_id)
            .await?
            .into_iter()
            .map(|l| l.publisher_id)
            .collect();
        publishers.sort();
        publishers.dedup();
        tx.emit(
            ShippingReminder {
                order_id: cmd.order_id,
                publisher_ids: publishers,
                deadline_at: cmd.deadline_at,
            },
            msg,
        )?;
    }
    tx.commit(rt).await
}

/// Forever, every `deadline_sweep`: reminds the publishers of orders awaiting shipment for half
/// the deadline, cancels (with a refund) those awaiting it for the whole deadline, and cancels
/// the orders whose reservation waited longer than `reservation_deadline` for its payment. The
/// commands go through the consumers like any other (`Nats-Msg-Id` derived from the order, and
/// the handlers are idempotent), so several replicas sweeping at once do no harm.
pub async fn deadlines(rt: Runtime) -> anyhow::Result<()> {
    loop {
        if let Err(e) = sweep(&rt).await {
            tracing::warn!(error = %format!("{e:#}"), "deadline sweep failed; retrying");
        }
        tokio::time::sleep(rt.settings.deadline_sweep).await;
    }
}

async fn sweep(rt: &Runtime) -> anyhow::Result<()> {
    expire_reservations(rt).await?;
    let now = rt.settings.clock.now();
    let deadline = chrono::Duration::from_std(rt.settings.shipping_deadline)?;
    let rows = rt
        .db
        .query_all_raw(stmt(
            "SELECT order_id, paid_at, reminded_at IS NOT NULL AS reminded FROM fulfillment.shipment \
             WHERE status = 'AWAITING_SHIPMENT' AND paid_at <= $1 ORDER BY paid_at LIMIT 500",
            [(now - deadline / 2).into()],
        ))
        .await?;
    for r in rows {
        let order: Uuid = r.try_get("", "order_id")?;
        let paid_at: chrono::DateTime<chrono::Utc> = r.try_get("", "paid_at")?;
        let reminded: bool = r.try_get("", "reminded")?;
        let deadline_at = paid_at + deadline;
        if deadline_at <= now {
            let env = domain::messaging::Envelope::new(
                CancelShipment {
                    order_id: order,
                    reason: SHIPPING_DEADLINE_PASSED.to_owned(),
                    // The buyer asked for nothing: the digital lines they have stay theirs.
                    refund_digital: false,
                },
                order,
                None,
            );
            rt.bus
                .publish_with_id(&env, &format!("deadline-{order}"))
                .await?;
            tracing::info!(order.id = %order, "shipping deadline passed; cancelling");
        } else if !reminded {
            let env = domain::messaging::Envelope::new(
                RemindShipment {
                    order_id: order,
                    deadline_at,
                },
                order,
                None,
            );
            rt.bus
                .publish_with_id(&env, &format!("remind-{order}"))
                .await?;
        }
    }
    Ok(())
}

/// Cancels the orders whose reservation has waited for its payment longer than the reservation
/// deadline (billing never answered their `StockReserved`): the cancel path releases the
/// copies, billing refunds whatever it charged (or makes sure it never will), library revokes,
/// ordering cancels.
async fn expire_reservations(rt: &Runtime) -> anyhow::Result<()> {
    let deadline = chrono::Duration::from_std(rt.settings.reservation_deadline)?;
    let rows = rt
        .db
        .query_all_raw(stmt(
            "SELECT order_id FROM fulfillment.shipment WHERE status = 'RESERVED' AND created_at <= $1 \
             ORDER BY created_at LIMIT 500",
            [(rt.settings.clock.now() - deadline).into()],
        ))
        .await?;
    for r in rows {
        let order: Uuid = r.try_get("", "order_id")?;
        let env = domain::messaging::Envelope::new(
            CancelShipment {
                order_id: order,
                reason: PAYMENT_DEADLINE_PASSED.to_owned(),
                refund_digital: true,
            },
            order,
            None,
        );
        rt.bus
            .publish_with_id(&env, &format!("expire-{order}"))
            .await?;
        tracing::warn!(order.id = %order, "reservation waited too long for its payment; cancelling");
    }
    Ok(())
}
