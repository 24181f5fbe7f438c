//! Ordering: creates orders (`cmd.ordering.place`) and moves them along the saga with the pure
//! state machine of [`domain::ordering::apply`] as payments and grants arrive.

use anyhow::anyhow;
use domain::billing::{PaymentCaptured, PaymentDeclined, PaymentRefunded};
use domain::fulfillment::{ReadyToShip, ShipmentDispatched, StockReserved, StockUnavailable};
use domain::library::ItemsGranted;
use domain::messaging::Message;
use domain::ordering::entity::{order, order_step, product_claim};
use domain::ordering::{
    ALREADY_OWNED_OR_PENDING, Effect, OrderCancelled, OrderCompleted, OrderFact, OrderLine,
    OrderPlaced, OrderState, OrderStatus, PlaceOrder, TimelineStep, apply, claimed_products, total,
};
use domain::refund::entity::refund_request;
use domain::refund::{
    DecideRefund, OrderRefunded, RefundApproved, RefundDenied, RefundRequested, RefundStatus,
    RequestRefund,
};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter, QuerySelect};
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
    let products = claimed_products(&cmd.lines);
    let (created, claimed) = create(&tx, &cmd, total_minor, needs_shipping, &products).await?;
    if !created {
        // The same order (a command replayed with another message id): already placed.
        tracing::info!("order exists already");
        return tx.commit(rt).await;
    }
    if claimed < products.len() {
        // Another order of this buyer holds one of the products (or the buyer owns it): the
        // order ends here, before anything is reserved or charged, and gives back the claims it
        // did take.
        tracing::info!("refused: a product is already owned or in another order");
        release_claims(&tx, cmd.order_id).await?;
        let reason = ALREADY_OWNED_OR_PENDING.to_owned();
        order::Entity::update_many()
            .set(order::ActiveModel {
                status: Set(OrderStatus::Cancelled.as_str().to_owned()),
                cancel_reason: Set(Some(reason.clone())),
                ..Default::default()
            })
            .col_expr(order::Column::UpdatedAt, Expr::current_timestamp())
            .filter(order::Column::Id.eq(cmd.order_id))
            .exec(tx.db())
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

/// Creates the order of `cmd` with its lines, its first timeline step and the claims on its
/// digital `products` for its buyer (`ordering.product_claim`, primary key (account,
/// product)), in one statement: whether the order was created (any conflict, on the id or on
/// (account, idempotency key), means it exists), and how many products it claimed. A
/// concurrent transaction claiming the same product waits for this one and then finds the row,
/// so at most one order per buyer and product is ever alive; fewer claims than products means
/// another order (or the library) holds one.
async fn create(
    tx: &Tx,
    cmd: &PlaceOrder,
    total_minor: i64,
    needs_shipping: bool,
    products: &[Uuid],
) -> Result<(bool, usize), Failure> {
    let n = cmd.lines.len();
    let (mut line_no, mut editions, mut line_products, mut publishers) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut kinds, mut titles, mut names, mut prices, mut quantities) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut taxes, mut rates, mut bundles) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (i, l) in cmd.lines.iter().enumerate() {
        line_no.push(i32::try_from(i).unwrap_or(i32::MAX));
        editions.push(l.edition_id);
        line_products.push(l.product_id);
        publishers.push(l.publisher_id);
        kinds.push(l.kind.clone());
        titles.push(l.product_title.clone());
        names.push(l.edition_name.clone());
        prices.push(l.unit_price_minor);
        quantities.push(l.quantity);
        taxes.push(l.unit_tax_minor);
        rates.push(i32::try_from(l.tax_rate_ppm).unwrap_or(0));
        // As text ('' for none): an array parameter of optional uuids, read back with NULLIF.
        bundles.push(l.bundle_id.map(|b| b.to_string()).unwrap_or_default());
    }
    // Raw: four inserts that depend on the first, as one statement (a saga step's cost is its
    // statements); the lines, step and claims are written only when the order is new.
    let row = tx
        .db()
        .query_one_raw(stmt(
            r#"WITH o AS (
                 INSERT INTO ordering."order"
                   (id, account_id, idempotency_key, status, total_minor, currency, needs_shipping,
                    tax_country, tax_state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $20, $21)
                 ON CONFLICT DO NOTHING
                 RETURNING id
               ), l AS (
                 INSERT INTO ordering.order_line
                   (order_id, line_no, edition_id, product_id, publisher_id, kind, product_title,
                    edition_name, unit_price_minor, quantity, unit_tax_minor, tax_rate_ppm,
                    bundle_id)
                 SELECT o.id, t.line_no, t.edition_id, t.product_id, t.publisher_id, t.kind,
                        t.product_title, t.edition_name, t.unit_price_minor, t.quantity,
                        t.unit_tax_minor, t.tax_rate_ppm, NULLIF(t.bundle_id, '')::uuid
                 FROM o,
                   unnest($8::int[], $9::uuid[], $10::uuid[], $11::uuid[], $12::text[], $13::text[],
                          $14::text[], $15::bigint[], $16::int[], $22::bigint[], $23::int[],
                          $24::text[])
                   AS t(line_no, edition_id, product_id, publisher_id, kind, product_title,
                        edition_name, unit_price_minor, quantity, unit_tax_minor, tax_rate_ppm,
                        bundle_id)
               ), s AS (
                 INSERT INTO ordering.order_step (id, order_id, step, participant)
                 SELECT $17, o.id, $18, 'ordering' FROM o
               ), c AS (
                 INSERT INTO ordering.product_claim (account_id, product_id, order_id)
                 SELECT $2, p.id, o.id FROM o, unnest($19::uuid[]) AS p(id)
                 ON CONFLICT (account_id, product_id) DO NOTHING
                 RETURNING product_id
               )
               SELECT (SELECT count(*) FROM o)::bigint AS created,
                      (SELECT count(*) FROM c)::bigint AS claimed"#,
            [
                cmd.order_id.into(),
                cmd.account_id.into(),
                cmd.idempotency_key.clone().into(),
                OrderStatus::Placed.as_str().to_owned().into(),
                total_minor.into(),
                cmd.currency.as_str().to_owned().into(),
                needs_shipping.into(),
                line_no.into(),
                editions.into(),
                line_products.into(),
                publishers.into(),
                kinds.into(),
                titles.into(),
                names.into(),
                prices.into(),
                quantities.into(),
                domain::id::new_id().into(),
                TimelineStep::Placed.as_str().to_owned().into(),
                products.to_vec().into(),
                cmd.tax_place.as_ref().map(|p| p.country.clone()).into(),
                cmd.tax_place.as_ref().and_then(|p| p.state.clone()).into(),
                taxes.into(),
                rates.into(),
                bundles.into(),
            ],
        ))
        .await?
        .ok_or_else(|| Failure::Transient(anyhow!("creating the order returned no row")))?;
    let created: i64 = row.try_get("", "created")?;
    let claimed: i64 = row.try_get("", "claimed")?;
    Ok((created > 0, usize::try_from(claimed).unwrap_or(0)))
}

/// Gives back the products an order claimed (the order is cancelled).
async fn release_claims(tx: &Tx, order: Uuid) -> Result<(), Failure> {
    product_claim::Entity::delete_many()
        .filter(product_claim::Column::OrderId.eq(order))
        .exec(tx.db())
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
    steps(tx, order, vec![(step, participant, detail)]).await
}

/// Appends timeline steps to `order` in one statement; at most one of each step per order: a
/// second one is ignored.
async fn steps(
    tx: &Tx,
    order: Uuid,
    steps: Vec<(TimelineStep, &str, Option<String>)>,
) -> Result<(), Failure> {
    if steps.is_empty() {
        return Ok(());
    }
    let rows = steps
        .into_iter()
        .map(|(step, participant, detail)| order_step::ActiveModel {
            id: Set(domain::id::new_id()),
            order_id: Set(order),
            step: Set(step.as_str().to_owned()),
            participant: Set(participant.to_owned()),
            detail: Set(detail),
            ..Default::default()
        });
    order_step::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([order_step::Column::OrderId, order_step::Column::Step])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(tx.db())
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
    let row = order::Entity::find_by_id(order)
        .lock_exclusive()
        .one(tx.db())
        .await?;
    let Some(row) = row else {
        // Events of an order are only emitted after it was placed; not visible yet, or
        // unknown: retried, then dead-lettered.
        return Err(Failure::Transient(anyhow!("order {order} is not known")));
    };
    let state = OrderState {
        status: OrderStatus::parse(&row.status)
            .ok_or_else(|| Failure::Poison(format!("unknown status {}", row.status)))?,
        needs_shipping: row.needs_shipping,
        reserved: row.reserved,
        paid: row.paid,
        granted: row.granted,
        shipped: row.shipped,
        delivered: row.delivered,
        refunded: row.refunded,
        ready: row.ready,
        cancel_reason: row.cancel_reason.clone(),
    };
    let account_id = row.account_id;
    let (next, effects) = apply(&state, &fact);
    // The timeline's new steps, written with the order's new state at the end.
    let mut timeline = Vec::new();
    for effect in effects {
        match effect {
            Effect::Timeline(s) => timeline.push((s, participant, detail.clone())),
            Effect::Complete => {
                timeline.push((TimelineStep::Completed, "ordering", None));
                let lines = load_lines(&tx, order).await?;
                tx.emit(
                    OrderCompleted {
                        order_id: order,
                        account_id,
                        lines,
                        total_minor: row.total_minor,
                        currency: domain::money::Currency::parse(&row.currency)
                            .map_err(|e| Failure::Poison(e.to_string()))?,
                    },
                    msg,
                )?;
            }
            Effect::AwaitShipment => {
                timeline.push((TimelineStep::AwaitingShipment, "ordering", None));
            }
            Effect::Refund => {
                // The buyer no longer owns the products: they may buy them again.
                release_claims(&tx, order).await?;
                let lines = load_lines(&tx, order).await?;
                tx.emit(
                    OrderRefunded {
                        order_id: order,
                        account_id,
                        lines,
                        total_minor: row.total_minor,
                        currency: domain::money::Currency::parse(&row.currency)
                            .map_err(|e| Failure::Poison(e.to_string()))?,
                    },
                    msg,
                )?;
            }
            Effect::Cancel { reason } => {
                if claims == Claims::Release {
                    release_claims(&tx, order).await?;
                }
                timeline.push((TimelineStep::Cancelled, "ordering", Some(reason.clone())));
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
    advance(&tx, order, &next, next != state, timeline).await?;
    tx.commit(rt).await
}

/// Writes the order's new state `next` (when it `changed`) and appends its new timeline steps,
/// in one statement; at most one of each step per order: a second one is ignored.
async fn advance(
    tx: &Tx,
    order: Uuid,
    next: &OrderState,
    changed: bool,
    timeline: Vec<(TimelineStep, &str, Option<String>)>,
) -> Result<(), Failure> {
    if !changed && timeline.is_empty() {
        return Ok(());
    }
    let n = timeline.len();
    let (mut ids, mut steps, mut participants, mut details) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (step, participant, detail) in timeline {
        ids.push(domain::id::new_id());
        steps.push(step.as_str().to_owned());
        participants.push(participant.to_owned());
        details.push(detail.unwrap_or_default());
    }
    let s = next;
    // Raw: the update and the steps as one statement (a saga step's cost is its statements).
    // The update runs only when the state changed ($11); the first completion is the one that
    // counts.
    tx.db()
        .execute_raw(stmt(
            r#"WITH u AS (
                 UPDATE ordering."order"
                 SET status = $2, paid = $3, granted = $4, cancel_reason = $5, reserved = $6,
                     shipped = $7, delivered = $8, refunded = $9, ready = $10,
                     updated_at = now(),
                     completed_at = CASE WHEN $16 THEN coalesce(completed_at, now())
                                         ELSE completed_at END
                 WHERE id = $1 AND $11
               )
               INSERT INTO ordering.order_step (id, order_id, step, participant, detail)
               SELECT t.id, $1, t.step, t.participant, nullif(t.detail, '')
               FROM unnest($12::uuid[], $13::text[], $14::text[], $15::text[])
                 AS t(id, step, participant, detail)
               ON CONFLICT (order_id, step) DO NOTHING"#,
            [
                order.into(),
                s.status.as_str().to_owned().into(),
                s.paid.into(),
                s.granted.into(),
                s.cancel_reason.clone().into(),
                s.reserved.into(),
                s.shipped.into(),
                s.delivered.into(),
                s.refunded.into(),
                s.ready.into(),
                changed.into(),
                ids.into(),
                steps.into(),
                participants.into(),
                details.into(),
                (s.status == OrderStatus::Completed).into(),
            ],
        ))
        .await?;
    Ok(())
}

async fn load_lines(tx: &Tx, order: Uuid) -> Result<Vec<OrderLine>, Failure> {
    Ok(domain::ordering::load_lines(tx.db(), order).await?)
}

/// A buyer asks for the refund of a completed order. The api checked the ownership and the
/// policy; here the request is recorded once per order (`UNIQUE (order_id)`) and, within the
/// policy, approved at once. An order that is not (or no longer) completed gets no request.
#[tracing::instrument(skip_all, fields(order.id = %cmd.order_id))]
async fn request_refund(rt: &Runtime, msg: &Incoming, cmd: RequestRefund) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let order = order::Entity::find_by_id(cmd.order_id)
        .lock_exclusive()
        .one(tx.db())
        .await?;
    let Some(order) = order else {
        return Err(Failure::Poison(format!(
            "order {} is not known",
            cmd.order_id
        )));
    };
    let status = order.status;
    if order.account_id != cmd.account_id || status != OrderStatus::Completed.as_str() {
        tracing::warn!(%status, "refund request refused: not the buyer's completed order");
        return tx.commit(rt).await;
    }
    let status = if cmd.within_policy {
        RefundStatus::Approved
    } else {
        RefundStatus::PendingReview
    };
    let created = tx
        .db()
        .execute(&insert_refund_request(&cmd, status))
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

/// The request of `cmd` with `status`, at most one per order (`ON CONFLICT (order_id) DO
/// NOTHING`); approved at once (within the policy), it is decided now (the database's clock).
fn insert_refund_request(
    cmd: &RequestRefund,
    status: RefundStatus,
) -> sea_orm::sea_query::InsertStatement {
    use refund_request::Column as C;
    let mut columns = vec![
        C::Id,
        C::OrderId,
        C::AccountId,
        C::Reason,
        C::WithinPolicy,
        C::PolicyNote,
        C::Status,
    ];
    let mut values: Vec<Expr> = vec![
        cmd.request_id.into(),
        cmd.order_id.into(),
        cmd.account_id.into(),
        cmd.reason.clone().into(),
        cmd.within_policy.into(),
        cmd.policy_note.clone().into(),
        status.as_str().into(),
    ];
    if cmd.within_policy {
        columns.push(C::DecidedAt);
        values.push(Expr::current_timestamp());
    }
    Query::insert()
        .into_table(refund_request::Entity.table_ref())
        .columns(columns)
        .values_panic(values)
        .on_conflict(OnConflict::column(C::OrderId).do_nothing().to_owned())
        .to_owned()
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
    // One guarded statement: of two decisions only the first finds the request pending.
    let decided = refund_request::Entity::update_many()
        .set(refund_request::ActiveModel {
            status: Set(status.as_str().to_owned()),
            decided_by: Set(Some(cmd.admin_id)),
            decision_note: Set(Some(cmd.note.clone())),
            ..Default::default()
        })
        .col_expr(refund_request::Column::DecidedAt, Expr::current_timestamp())
        .filter(refund_request::Column::OrderId.eq(cmd.order_id))
        .filter(refund_request::Column::Status.eq(RefundStatus::PendingReview.as_str()))
        .exec_with_returning(tx.db())
        .await?;
    let Some(row) = decided.into_iter().next() else {
        tracing::info!("no refund request waits for review");
        return tx.commit(rt).await;
    };
    let request_id = row.id;
    let account_id = row.account_id;
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
