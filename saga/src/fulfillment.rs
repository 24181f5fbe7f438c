//! Fulfillment: stock of physical editions (`cmd.fulfillment.adjust_stock`), reservations of
//! the physical lines of orders (DESIGN §4) and their shipments.
//!
//! No overselling: a reservation locks the inventory rows of all its editions (in edition
//! order, so concurrent reservations cannot deadlock), checks `on_hand - reserved` for each, and
//! either reserves every line or none; `CHECK (reserved <= on_hand)` backs it in PostgreSQL.

use std::collections::BTreeMap;

use domain::billing::{PaymentCaptured, PaymentDeclined};
use domain::fulfillment::entity::{inventory, reservation, shipment};
use domain::fulfillment::{
    AdjustStock, CancelRejected, CancelShipment, MAX_STOCK, MAX_TRACKING_LEN, OUT_OF_STOCK,
    PAYMENT_DEADLINE_PASSED, ReadyToShip, RemindShipment, SHIPPING_DEADLINE_PASSED, ShipOrder,
    ShipmentCancelled, ShipmentDispatched, ShipmentRejected, ShipmentStatus, ShippedLine,
    ShippingReminder, StockMode, StockReserved, StockUnavailable,
};
use domain::messaging::Message;
use domain::ordering::OrderPlaced;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, OnConflict, Order, Query, TableRef};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::Tx;
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
            if !ev.lines.iter().any(|l| l.is_physical()) {
                // A digital order has no shipment.
                return Tx::nothing(rt, ME, msg).await;
            }
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
    use inventory::Column as C;
    // One upsert: the row as it is when the statement runs, whatever ran before.
    let current = |c: C| Expr::col((inventory::Entity, c));
    let wanted = match cmd.mode {
        StockMode::Set => Expr::val(cmd.quantity),
        StockMode::Add => current(C::OnHand).add(cmd.quantity),
    };
    let on_hand = Func::least([
        Expr::from(Func::greatest([wanted, current(C::Reserved)])),
        Expr::val(2_000_000_000),
    ]);
    let mut on_conflict = OnConflict::column(C::EditionId);
    on_conflict
        .value(C::OnHand, on_hand)
        .value(C::Version, current(C::Version).add(1))
        .value(C::UpdatedAt, Expr::current_timestamp());
    inventory::Entity::insert(inventory::ActiveModel {
        edition_id: Set(cmd.edition_id),
        // Within `i32`: |quantity| ≤ MAX_STOCK (checked above).
        on_hand: Set(i32::try_from(Ord::max(cmd.quantity, 0)).unwrap_or(i32::MAX)),
        ..Default::default()
    })
    .on_conflict(on_conflict)
    .exec_without_returning(tx.db())
    .await?;
    tx.commit(rt).await
}

/// Reserves every physical line of a placed order at once → `StockReserved`, or none →
/// `StockUnavailable`.
#[tracing::instrument(skip_all, fields(order.id = %ev.order_id))]
async fn reserve(rt: &Runtime, msg: &Incoming, ev: OrderPlaced) -> Result<(), Failure> {
    if !ev.needs_shipping {
        // Nothing to hold for a digital order.
        return Tx::nothing(rt, ME, msg).await;
    }
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
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
    let available: BTreeMap<Uuid, i32> = inventory::Entity::find()
        .filter(inventory::Column::EditionId.is_in(editions))
        .order_by_asc(inventory::Column::EditionId)
        .lock_exclusive()
        .all(tx.db())
        .await?
        .into_iter()
        .map(|i| (i.edition_id, i.on_hand - i.reserved))
        .collect();
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
    let created = {
        use shipment::Column as C;
        let mut columns = vec![C::OrderId, C::AccountId, C::Status, C::Address];
        let mut values: Vec<Expr> = vec![
            ev.order_id.into(),
            ev.account_id.into(),
            status.as_str().into(),
            address.into(),
        ];
        if !short.is_empty() {
            // Released at once, now (the database's clock).
            columns.extend([C::ReleaseReason, C::ReleasedAt]);
            values.extend([OUT_OF_STOCK.into(), Expr::current_timestamp()]);
        }
        let insert = Query::insert()
            .into_table(shipment::Entity.table_ref())
            .columns(columns)
            .values_panic(values)
            .on_conflict(OnConflict::column(C::OrderId).do_nothing().to_owned())
            .to_owned();
        tx.db().execute(&insert).await?.rows_affected()
    };
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
        use inventory::Column as C;
        inventory::Entity::update_many()
            .col_expr(C::Reserved, Expr::col(C::Reserved).add(*quantity))
            .col_expr(C::Version, Expr::col(C::Version).add(1))
            .col_expr(C::UpdatedAt, Expr::current_timestamp())
            .filter(C::EditionId.eq(*edition))
            .exec(tx.db())
            .await?;
        reservation::Entity::insert(reservation::ActiveModel {
            order_id: Set(ev.order_id),
            edition_id: Set(*edition),
            product_id: Set(line.product_id),
            publisher_id: Set(line.publisher_id),
            quantity: Set(*quantity),
        })
        .exec_without_returning(tx.db())
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
    // One guarded statement: only a reserved shipment waits for the publisher.
    let updated = shipment::Entity::update_many()
        .col_expr(
            shipment::Column::Status,
            Expr::val(ShipmentStatus::AwaitingShipment.as_str()),
        )
        .col_expr(shipment::Column::PaidAt, Expr::current_timestamp())
        .col_expr(shipment::Column::UpdatedAt, Expr::current_timestamp())
        .filter(shipment::Column::OrderId.eq(order))
        .filter(shipment::Column::Status.eq(ShipmentStatus::Reserved.as_str()))
        .exec_with_returning(tx.db())
        .await?;
    if let Some(row) = updated.into_iter().next() {
        let lines = reserved_lines(&tx, order).await?;
        tx.emit(
            ReadyToShip {
                order_id: order,
                account_id: row.account_id,
                lines,
            },
            msg,
        )?;
    }
    tx.commit(rt).await
}

async fn reserved_lines(tx: &Tx, order: Uuid) -> Result<Vec<ShippedLine>, Failure> {
    let rows = reservation::Entity::find()
        .filter(reservation::Column::OrderId.eq(order))
        .order_by_asc(reservation::Column::EditionId)
        .all(tx.db())
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ShippedLine {
            edition_id: r.edition_id,
            product_id: r.product_id,
            publisher_id: r.publisher_id,
            quantity: r.quantity,
        })
        .collect())
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
    // One guarded statement: of a ship and a cancel racing, the first to commit wins.
    let released = shipment::Entity::update_many()
        .col_expr(
            shipment::Column::Status,
            Expr::val(ShipmentStatus::Released.as_str()),
        )
        .col_expr(shipment::Column::ReleaseReason, Expr::val(reason))
        .col_expr(shipment::Column::ReleasedAt, Expr::current_timestamp())
        .col_expr(shipment::Column::UpdatedAt, Expr::current_timestamp())
        .filter(shipment::Column::OrderId.eq(order))
        .filter(shipment::Column::Status.is_in(from.iter().copied()))
        .exec(tx.db())
        .await?
        .rows_affected;
    if released == 0 {
        return Ok(false);
    }
    give_back_reserved(tx, order).await?;
    tracing::info!(reason, "reservation released");
    Ok(true)
}

/// Gives the reserved copies of `order` back to the inventory, in one statement (`UPDATE
/// inventory … FROM` the order's reservations, in edition order, as reservations lock them).
async fn give_back_reserved(tx: &Tx, order: Uuid) -> Result<(), Failure> {
    use inventory::Column as C;
    let r = Alias::new("r");
    let reserved = Query::select()
        .columns([
            reservation::Column::EditionId,
            reservation::Column::Quantity,
        ])
        .from(reservation::Entity.table_ref())
        .and_where(reservation::Column::OrderId.eq(order))
        .order_by(reservation::Column::EditionId, Order::Asc)
        .to_owned();
    let current = |c: C| Expr::col((inventory::Entity, c));
    let mut update = inventory::Entity::update_many()
        .col_expr(
            C::Reserved,
            current(C::Reserved).sub(Expr::col((r.clone(), reservation::Column::Quantity))),
        )
        .col_expr(C::Version, current(C::Version).add(1))
        .col_expr(C::UpdatedAt, Expr::current_timestamp())
        .filter(current(C::EditionId).equals((r.clone(), reservation::Column::EditionId)));
    QueryTrait::query(&mut update).from(TableRef::SubQuery(Box::new(reserved), r.into()));
    update.exec(tx.db()).await?;
    Ok(())
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
    let shipped = shipment::Entity::update_many()
        .set(shipment::ActiveModel {
            status: Set(ShipmentStatus::Shipped.as_str().to_owned()),
            carrier: Set(Some(carrier.clone())),
            tracking_number: Set(Some(tracking.clone())),
            ..Default::default()
        })
        .col_expr(shipment::Column::ShippedAt, Expr::current_timestamp())
        .col_expr(shipment::Column::UpdatedAt, Expr::current_timestamp())
        .filter(shipment::Column::OrderId.eq(cmd.order_id))
        .filter(shipment::Column::Status.eq(ShipmentStatus::AwaitingShipment.as_str()))
        .exec_with_returning(tx.db())
        .await?;
    let Some(row) = shipped.into_iter().next() else {
        tx.emit(reject("NOT_AWAITING_SHIPMENT"), msg)?;
        return tx.commit(rt).await;
    };
    for l in &lines {
        use inventory::Column as C;
        inventory::Entity::update_many()
            .col_expr(C::OnHand, Expr::col(C::OnHand).sub(l.quantity))
            .col_expr(C::Reserved, Expr::col(C::Reserved).sub(l.quantity))
            .col_expr(C::Version, Expr::col(C::Version).add(1))
            .col_expr(C::UpdatedAt, Expr::current_timestamp())
            .filter(C::EditionId.eq(l.edition_id))
            .exec(tx.db())
            .await?;
    }
    tracing::info!("shipment dispatched");
    tx.emit(
        ShipmentDispatched {
            order_id: cmd.order_id,
            account_id: row.account_id,
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
    let row = shipment::Entity::find_by_id(cmd.order_id)
        .lock_exclusive()
        .one(tx.db())
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
    let status = row.status;
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
            account_id: row.account_id,
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
    let marked = shipment::Entity::update_many()
        .col_expr(shipment::Column::RemindedAt, Expr::current_timestamp())
        .col_expr(shipment::Column::UpdatedAt, Expr::current_timestamp())
        .filter(shipment::Column::OrderId.eq(cmd.order_id))
        .filter(shipment::Column::Status.eq(ShipmentStatus::AwaitingShipment.as_str()))
        .filter(shipment::Column::RemindedAt.is_null())
        .exec(tx.db())
        .await?
        .rows_affected;
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
    let rows = shipment::Entity::find()
        .filter(shipment::Column::Status.eq(ShipmentStatus::AwaitingShipment.as_str()))
        .filter(shipment::Column::PaidAt.lte(now - deadline / 2))
        .order_by_asc(shipment::Column::PaidAt)
        .limit(500)
        .all(&rt.db)
        .await?;
    for s in rows {
        let order = s.order_id;
        // Never `None`: the filter on `paid_at` leaves out unpaid shipments.
        let Some(paid_at) = s.paid_at else {
            continue;
        };
        let reminded = s.reminded_at.is_some();
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
    let orders: Vec<Uuid> = shipment::Entity::find()
        .select_only()
        .column(shipment::Column::OrderId)
        .filter(shipment::Column::Status.eq(ShipmentStatus::Reserved.as_str()))
        .filter(shipment::Column::CreatedAt.lte(rt.settings.clock.now() - deadline))
        .order_by_asc(shipment::Column::CreatedAt)
        .limit(500)
        .into_tuple()
        .all(&rt.db)
        .await?;
    for order in orders {
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
