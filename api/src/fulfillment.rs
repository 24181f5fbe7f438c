//! Fulfillment on the api side: shipments as the read side sees them (`fulfillment.shipment`,
//! written by the fulfillment participant) and `shipOrder`, which sends `cmd.fulfillment.ship`
//! and waits for fulfillment's answer, so that a publisher who loses a race with a cancellation
//! hears about it.

use std::collections::HashMap;
use std::time::Duration;

use domain::fulfillment::ShipmentStatus;
use domain::fulfillment::entity::{reservation, shipment};
use domain::fulfillment::{
    CANCELLED_BY_BUYER, CancelRejected, CancelShipment, MAX_TRACKING_LEN, ShipOrder,
    ShipmentCancelled, ShipmentDispatched, ShipmentRejected, ShippingAddress,
};
use domain::messaging::{Envelope, Message};
use domain::ordering::OrderLine;
use futures::StreamExt;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// How long `shipOrder` waits for fulfillment's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// The shipment of an order.
#[derive(Clone, Debug)]
pub struct ShipmentRow {
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub status: String,
    pub address: ShippingAddress,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub paid_at: Option<chrono::DateTime<chrono::Utc>>,
    pub shipped_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn shipment_row(s: shipment::Model) -> ApiResult<ShipmentRow> {
    Ok(ShipmentRow {
        order_id: s.order_id,
        account_id: s.account_id,
        status: s.status,
        address: serde_json::from_value(s.address)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("a stored address: {e}")))?,
        carrier: s.carrier,
        tracking_number: s.tracking_number,
        paid_at: s.paid_at,
        shipped_at: s.shipped_at,
    })
}

/// The shipment of an order, if it has one.
pub async fn shipment(state: &AppState, order: Uuid) -> ApiResult<Option<ShipmentRow>> {
    Ok(shipments_of(&state.db, &[order])
        .await?
        .remove(&order)
        .flatten())
}

/// The shipment of each of `orders`, in one statement; `None` for an order without one (a
/// digital order). Every order asked for has an entry.
pub async fn shipments_of(
    db: &impl ConnectionTrait,
    orders: &[Uuid],
) -> ApiResult<HashMap<Uuid, Option<ShipmentRow>>> {
    let mut out: HashMap<Uuid, Option<ShipmentRow>> = orders.iter().map(|id| (*id, None)).collect();
    if orders.is_empty() {
        return Ok(out);
    }
    let rows = shipment::Entity::find()
        .filter(shipment::Column::OrderId.is_in(orders.to_vec()))
        .all(db)
        .await?;
    for s in rows {
        let row = shipment_row(s)?;
        out.insert(row.order_id, Some(row));
    }
    Ok(out)
}

/// The publisher's orders awaiting shipment, oldest payment first.
pub async fn pending_shipments(
    state: &AppState,
    publisher: Uuid,
    limit: u64,
) -> ApiResult<Vec<ShipmentRow>> {
    // Shipments with a line of the publisher's.
    let theirs = Query::select()
        .expr(Expr::val(1))
        .from(reservation::Entity.table_ref())
        .and_where(
            Expr::col((reservation::Entity, reservation::Column::OrderId))
                .equals((shipment::Entity, shipment::Column::OrderId)),
        )
        .and_where(reservation::Column::PublisherId.eq(publisher))
        .to_owned();
    let rows = shipment::Entity::find()
        .filter(shipment::Column::Status.eq(ShipmentStatus::AwaitingShipment.as_str()))
        .filter(Expr::exists(theirs))
        .order_by_asc(shipment::Column::PaidAt)
        .order_by_asc(shipment::Column::OrderId)
        .limit(limit)
        .all(&state.db)
        .await?;
    rows.into_iter().map(shipment_row).collect()
}

/// The physical lines of an order that belong to `publisher`.
pub async fn publisher_lines(
    state: &AppState,
    order: Uuid,
    publisher: Uuid,
) -> ApiResult<Vec<OrderLine>> {
    Ok(crate::ordering::order_lines(state, order)
        .await?
        .into_iter()
        .filter(|l| ships(l, publisher))
        .collect())
}

/// Whether `publisher` ships `line` (a physical line of theirs).
pub fn ships(line: &OrderLine, publisher: Uuid) -> bool {
    line.is_physical() && line.publisher_id == publisher
}

fn tracking_field(field: &'static str, value: &str) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > MAX_TRACKING_LEN || v.chars().any(char::is_control) {
        return Err(ApiError::BadInput {
            field,
            message: format!("{field} must be 1 to {MAX_TRACKING_LEN} characters"),
        });
    }
    Ok(v.to_owned())
}

/// A publisher ships an order of theirs that awaits shipment. Fulfillment decides (a
/// cancellation may win the race); the answer is its decision, or what the order shows when no
/// answer came in time (`TIMEOUT` while it still awaits shipment).
pub async fn ship_order(
    state: &AppState,
    me: &Principal,
    order: Uuid,
    carrier: &str,
    tracking_number: &str,
) -> ApiResult<()> {
    let carrier = tracking_field("carrier", carrier)?;
    let tracking_number = tracking_field("trackingNumber", tracking_number)?;
    let Some(shipment) = shipment(state, order).await? else {
        return Err(ApiError::NotFound("shipment"));
    };
    let publishers: Vec<Uuid> = reservation::Entity::find()
        .select_only()
        .column(reservation::Column::PublisherId)
        .distinct()
        .filter(reservation::Column::OrderId.eq(order))
        .into_tuple()
        .all(&state.db)
        .await?;
    let mine = !publishers.is_empty() && publishers.iter().all(|p| *p == me.id);
    if !mine {
        return Err(ApiError::Forbidden(
            "only the publisher of the order's physical editions can ship it",
        ));
    }
    if shipment.status != "AWAITING_SHIPMENT" {
        return Err(not_awaiting(&shipment.status));
    }
    let command = ShipOrder {
        order_id: order,
        publisher_id: me.id,
        carrier,
        tracking_number,
    };
    let answer = send_and_wait(state, me, order, command).await?;
    match answer {
        Some(env) if env.kind == ShipmentRejected::TYPE => {
            let reason = env.data["reason"].as_str().unwrap_or("").to_owned();
            if reason == "NOT_YOUR_ORDER" {
                Err(ApiError::Forbidden(
                    "only the publisher of the order's physical editions can ship it",
                ))
            } else {
                let now = shipment_status(state, order).await?;
                Err(not_awaiting(&now))
            }
        }
        Some(env) if env.kind == ShipmentDispatched::TYPE => Ok(()),
        _ => unconfirmed(state, order, "SHIPPED", "shipment").await,
    }
}

async fn shipment_status(state: &AppState, order: Uuid) -> ApiResult<String> {
    Ok(shipment(state, order)
        .await?
        .map_or_else(|| "UNKNOWN".to_owned(), |s| s.status))
}

/// The answer to a ship or a cancel whose decision did not come from fulfillment in time: what
/// the shipment shows now. `done` is the status the command leads to. Still awaiting shipment,
/// the command is in flight and may yet win or lose its race: the caller is told so (`TIMEOUT`),
/// never that it happened.
async fn unconfirmed(state: &AppState, order: Uuid, done: &str, what: &str) -> ApiResult<()> {
    let now = shipment_status(state, order).await?;
    if now == done {
        return Ok(());
    }
    if now == "AWAITING_SHIPMENT" {
        tracing::warn!(order.id = %order, "no answer from fulfillment in time; the {what} is pending");
        return Err(ApiError::Unconfirmed(format!(
            "the {what} was sent but is not confirmed yet; the order shows its outcome in a moment"
        )));
    }
    Err(not_awaiting(&now))
}

fn not_awaiting(status: &str) -> ApiError {
    ApiError::Conflict(match status {
        "SHIPPED" => "the order has already been shipped".to_owned(),
        "RELEASED" => "the order was cancelled; there is nothing to ship".to_owned(),
        _ => format!("the order is not awaiting shipment (its shipment is {status})"),
    })
}

/// Publishes a fulfillment command about `order` and waits (up to [`ANSWER_WAIT`]) for the
/// event fulfillment emits because of it; `None` when none came in time.
async fn send_and_wait<T: Message>(
    state: &AppState,
    me: &Principal,
    order: Uuid,
    command: T,
) -> ApiResult<Option<Envelope<serde_json::Value>>> {
    // Listen before sending, so the answer cannot be missed.
    let mut answers = state
        .nats
        .subscribe(state.bus.subject(&format!("evt.fulfillment.*.{order}")))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("subscribing to the answer: {e}")))?;
    let mut envelope = Envelope::new(command, order, Some(me.id));
    envelope.trace = Some(domain::bus::new_traceparent());
    let command_id = envelope.id;
    state.bus.publish(&envelope).await?;
    Ok(tokio::time::timeout(ANSWER_WAIT, async {
        while let Some(m) = answers.next().await {
            let Ok(env) = serde_json::from_slice::<Envelope<serde_json::Value>>(&m.payload) else {
                continue;
            };
            if env.causation_id == Some(command_id) {
                return Some(env);
            }
        }
        None
    })
    .await
    .ok()
    .flatten())
}

/// Whether a cancellation gives the order's digital lines back too: the refund policy decides
/// (within the window of the purchase, and never downloaded unless the policy allows it). When
/// it does, the order is claimed at its refund gate, so that no download link is handed out
/// from now on; a cancellation that then loses to the parcel leaves a void claim, cleared by
/// the next download link.
async fn digital_refundable(
    state: &AppState,
    order: &crate::ordering::OrderRow,
) -> ApiResult<bool> {
    let lines = crate::ordering::order_lines(state, order.id).await?;
    if lines.iter().all(OrderLine::is_physical) {
        return Ok(false);
    }
    let policy = state.config.refund_policy;
    if policy
        .check(order.created_at, chrono::Utc::now(), false)
        .is_err()
    {
        return Ok(false);
    }
    crate::refund::claim(
        state,
        order.id,
        crate::refund::Claim::Cancel,
        !policy.allow_downloaded,
    )
    .await
}

/// The buyer cancels an order awaiting shipment: fulfillment releases the reservation (unless
/// the parcel left first: `CONFLICT`), then billing refunds, library revokes the order's digital
/// lines and ordering cancels it. The digital lines follow the refund policy: downloaded, or
/// bought longer ago than the refund window, they stay in the library and are not refunded.
pub async fn cancel_order(state: &AppState, me: &Principal, order: Uuid) -> ApiResult<()> {
    let Some(row) = crate::ordering::find_order(state, order)
        .await?
        .filter(|o| o.account_id == me.id)
    else {
        return Err(ApiError::NotFound("order"));
    };
    let shipment = shipment(state, order).await?;
    let awaiting = row.status == "AWAITING_SHIPMENT"
        && shipment
            .as_ref()
            .is_some_and(|s| s.status == "AWAITING_SHIPMENT");
    if !awaiting {
        return Err(ApiError::Conflict(
            match shipment.map(|s| s.status).as_deref() {
                Some("SHIPPED") => "the order has already been shipped".to_owned(),
                _ => format!(
                    "only an order awaiting shipment can be cancelled (this one is {})",
                    row.status
                ),
            },
        ));
    }
    let command = CancelShipment {
        order_id: order,
        reason: CANCELLED_BY_BUYER.to_owned(),
        refund_digital: digital_refundable(state, &row).await?,
    };
    match send_and_wait(state, me, order, command).await? {
        Some(env) if env.kind == CancelRejected::TYPE => {
            let now = shipment_status(state, order).await?;
            Err(ApiError::Conflict(if now == "SHIPPED" {
                "the order has already been shipped".to_owned()
            } else {
                format!("the order can no longer be cancelled (its shipment is {now})")
            }))
        }
        Some(env) if env.kind == ShipmentCancelled::TYPE => Ok(()),
        _ => unconfirmed(state, order, "RELEASED", "cancellation").await,
    }
}
