//! Ordering: creates orders (`cmd.ordering.place`) and moves them along the saga with the pure
//! state machine of [`domain::ordering::apply`] as payments and grants arrive.

use anyhow::anyhow;
use domain::billing::{PaymentCaptured, PaymentDeclined, PaymentRefunded};
use domain::fulfillment::{ReadyToShip, ShipmentDispatched, StockReserved, StockUnavailable};
use domain::library::ItemsGranted;
use domain::messaging::Message;
use domain::ordering::entity::{order, order_line, order_step, product_claim};
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
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::Tx;
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
    let created = order::Entity::insert(order::ActiveModel {
        id: Set(cmd.order_id),
        account_id: Set(cmd.account_id),
        idempotency_key: Set(cmd.idempotency_key.clone()),
        status: Set(OrderStatus::Placed.as_str().to_owned()),
        total_minor: Set(total_minor),
        currency: Set(cmd.currency.as_str().to_owned()),
        needs_shipping: Set(needs_shipping),
        ..Default::default()
    })
    // Any conflict, on the id or on (account, idempotency key), means the order exists.
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .exec_without_returning(tx.db())
    .await?;
    if created == 0 {
        // The same order (a command replayed with another message id): already placed.
        tracing::info!("order exists already");
        return tx.commit(rt).await;
    }
    // The lines in one statement (there is at least one).
    let lines = cmd
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| order_line::ActiveModel {
            order_id: Set(cmd.order_id),
            line_no: Set(i32::try_from(i).unwrap_or(i32::MAX)),
            edition_id: Set(l.edition_id),
            product_id: Set(l.product_id),
            publisher_id: Set(l.publisher_id),
            kind: Set(l.kind.clone()),
            product_title: Set(l.product_title.clone()),
            edition_name: Set(l.edition_name.clone()),
            unit_price_minor: Set(l.unit_price_minor),
            quantity: Set(l.quantity),
        });
    order_line::Entity::insert_many(lines)
        .exec_without_returning(tx.db())
        .await?;
    step(&tx, cmd.order_id, TimelineStep::Placed, "ordering", None).await?;
    if !claim(&tx, &cmd).await? {
        // Another order of this buyer holds one of the products (or the buyer owns it): the
        // order ends here, before anything is reserved or charged.
        tracing::info!("refused: a product is already owned or in another order");
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

/// Claims the order's digital products for its buyer (`ordering.product_claim`, primary key
/// (account, product)). A concurrent transaction claiming the same product waits for this one
/// and then finds the row, so at most one order per buyer and product is ever alive. `false`
/// (and no claim left behind) when a product is already claimed by another order.
async fn claim(tx: &Tx, cmd: &PlaceOrder) -> Result<bool, Failure> {
    for product in claimed_products(&cmd.lines) {
        let claimed = product_claim::Entity::insert(product_claim::ActiveModel {
            account_id: Set(cmd.account_id),
            product_id: Set(product),
            order_id: Set(cmd.order_id),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                product_claim::Column::AccountId,
                product_claim::Column::ProductId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(tx.db())
        .await?;
        if claimed == 0 {
            release_claims(tx, cmd.order_id).await?;
            return Ok(false);
        }
    }
    Ok(true)
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
    if next != state {
        let mut update = order::Entity::update_many()
            .set(order::ActiveModel {
                status: Set(next.status.as_str().to_owned()),
                paid: Set(next.paid),
                granted: Set(next.granted),
                cancel_reason: Set(next.cancel_reason.clone()),
                reserved: Set(next.reserved),
                shipped: Set(next.shipped),
                delivered: Set(next.delivered),
                refunded: Set(next.refunded),
                ready: Set(next.ready),
                ..Default::default()
            })
            .col_expr(order::Column::UpdatedAt, Expr::current_timestamp());
        if next.status == OrderStatus::Completed {
            // The first completion is the one that counts.
            update = update.col_expr(
                order::Column::CompletedAt,
                Expr::col(order::Column::CompletedAt).if_null(Expr::current_timestamp()),
            );
        }
        update
            .filter(order::Column::Id.eq(order))
            .exec(tx.db())
            .await?;
    }
    // The timeline's new steps, written together at the end.
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
    steps(&tx, order, timeline).await?;
    tx.commit(rt).await
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
