//! Refunds on the api side: checking and publishing `requestRefund` and the admins'
//! decisions, reading `ordering.refund_request` (written by the ordering participant).
//!
//! The policy is checked here, where the order, its downloads and the clock are known; the
//! ordering participant records the request once per order and approves it at once when the
//! api found it within the policy.
//!
//! "Never downloaded" is decided on one row, the order's `catalog.refund_gate` (the api is its
//! only writer): the first download link of an order ([`first_download`]) and a refund or a
//! cancellation that takes its digital lines back ([`claim`]) each change that row with one
//! conditional statement, so of the two sent at the same instant exactly one wins, and a link
//! is never handed out for an order whose money goes back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::catalog::entity::refund_gate;
use domain::messaging::Envelope;
use domain::ordering::entity::order;
use domain::refund::entity::refund_request;
use domain::refund::{DecideRefund, MAX_REASON_CHARS, RefundStatus, RequestRefund};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, QueryStatementBuilder};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// A refund request as the read side sees it (or, right after `requestRefund`, as it will be).
#[derive(Clone, Debug)]
pub struct RefundRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    pub within_policy: bool,
    pub policy_note: String,
    pub status: RefundStatus,
    pub decision_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

fn row(r: refund_request::Model) -> ApiResult<RefundRow> {
    let status = RefundStatus::parse(&r.status)
        .ok_or_else(|| anyhow::anyhow!("unknown refund status {}", r.status))?;
    Ok(RefundRow {
        id: r.id,
        order_id: r.order_id,
        account_id: r.account_id,
        reason: r.reason,
        within_policy: r.within_policy,
        policy_note: r.policy_note,
        status,
        decision_note: r.decision_note,
        created_at: r.created_at,
        decided_at: r.decided_at,
    })
}

/// The refund request of an order, if any.
pub async fn of_order(state: &AppState, order: Uuid) -> ApiResult<Option<RefundRow>> {
    let r = refund_request::Entity::find()
        .filter(refund_request::Column::OrderId.eq(order))
        .one(&state.db)
        .await?;
    r.map(row).transpose()
}

/// The refund request of each of `orders`, in one statement; `None` for an order without one.
/// Every order asked for has an entry.
pub async fn of_orders(
    db: &impl ConnectionTrait,
    orders: &[Uuid],
) -> ApiResult<HashMap<Uuid, Option<RefundRow>>> {
    let mut out: HashMap<Uuid, Option<RefundRow>> = orders.iter().map(|id| (*id, None)).collect();
    if orders.is_empty() {
        return Ok(out);
    }
    let rows = refund_request::Entity::find()
        .filter(refund_request::Column::OrderId.is_in(orders.to_vec()))
        .all(db)
        .await?;
    for r in rows {
        let request = row(r)?;
        out.insert(request.order_id, Some(request));
    }
    Ok(out)
}

/// Refund requests, oldest first (the review queue), optionally of one status, after the
/// request `after` (request ids are derived from their order, so the order is by time).
pub async fn list(
    state: &AppState,
    status: Option<RefundStatus>,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<RefundRow>> {
    use refund_request::Column as C;
    let mut query = refund_request::Entity::find();
    if let Some(status) = status {
        query = query.filter(C::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        // (created_at, id) after the cursor's, in the same statement (no row: nothing after).
        let cursor = Alias::new("cursor");
        let of_cursor = Query::select()
            .columns([C::CreatedAt, C::Id])
            .from_as(refund_request::Entity.table_ref(), cursor.clone())
            .and_where(Expr::col((cursor, C::Id)).eq(after))
            .to_owned();
        let key = Expr::tuple([
            Expr::col((refund_request::Entity, C::CreatedAt)),
            Expr::col((refund_request::Entity, C::Id)),
        ]);
        query = query.filter(key.gt(Expr::SubQuery(
            None,
            Box::new(of_cursor.into_sub_query_statement()),
        )));
    }
    let rows = query
        .order_by_asc(C::CreatedAt)
        .order_by_asc(C::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    rows.into_iter().map(row).collect()
}

/// Asks for the refund of a completed digital order of the caller. Within the policy it is
/// approved at once; otherwise it waits for an admin. Asking again answers the same request.
pub async fn request(
    state: &AppState,
    me: &Principal,
    order_id: Uuid,
    reason: &str,
) -> ApiResult<RefundRow> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadInput {
            field: "reason",
            message: format!("say why, in 1 to {MAX_REASON_CHARS} characters"),
        });
    }
    let order = order::Entity::find_by_id(order_id)
        .one(&state.db)
        .await?
        .filter(|o| o.account_id == me.id)
        .ok_or(ApiError::NotFound("order"))?;
    if let Some(existing) = of_order(state, order_id).await? {
        return Ok(existing);
    }
    let status = order.status;
    if status != "COMPLETED" {
        return Err(ApiError::Conflict(format!(
            "only a completed order can be refunded (this one is {status})"
        )));
    }
    if order.needs_shipping {
        return Err(ApiError::Conflict(
            "orders with boxed copies are returned to their publisher, not refunded here".into(),
        ));
    }
    let completed_at = order.completed_at;
    let now = Utc::now();
    let policy = state.config.refund_policy;
    // Within the window, the order is claimed for the refund unless it was downloaded: from
    // then on no download link is handed out for it (see `first_download`).
    let check = match policy.check(completed_at.unwrap_or(now), now, false) {
        Ok(()) => {
            let claimed = claim(state, order_id, Claim::Refund, !policy.allow_downloaded).await?;
            policy.check(completed_at.unwrap_or(now), now, !claimed)
        }
        Err(miss) => Err(miss),
    };
    let within_policy = check.is_ok();
    let policy_note = policy.note(&check);
    let request_id = crate::infra::idempotency::derived_id("refund", me.id, &order_id.to_string());
    let mut envelope = Envelope::new(
        RequestRefund {
            request_id,
            order_id,
            account_id: me.id,
            reason: reason.to_owned(),
            within_policy,
            policy_note: policy_note.clone(),
        },
        order_id,
        Some(me.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    state
        .bus
        .publish_with_id(&envelope, &request_id.to_string())
        .await?;
    tracing::info!(order.id = %order_id, within_policy, "refund requested");
    Ok(RefundRow {
        id: request_id,
        order_id,
        account_id: me.id,
        reason: reason.to_owned(),
        within_policy,
        policy_note,
        status: if within_policy {
            RefundStatus::Approved
        } else {
            RefundStatus::PendingReview
        },
        decision_note: None,
        created_at: now,
        decided_at: within_policy.then_some(now),
    })
}

/// An admin approves or denies a request that waits for review.
pub async fn decide(
    state: &AppState,
    admin: &Principal,
    order_id: Uuid,
    approve: bool,
    note: &str,
) -> ApiResult<RefundRow> {
    let note = note.trim();
    if note.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::BadInput {
            field: "note",
            message: format!("at most {MAX_REASON_CHARS} characters"),
        });
    }
    let mut current = of_order(state, order_id)
        .await?
        .ok_or(ApiError::NotFound("refund request"))?;
    if current.status != RefundStatus::PendingReview {
        return Err(ApiError::Conflict(format!(
            "the request was decided already ({})",
            current.status.as_str()
        )));
    }
    if approve {
        // No download link from now on. Should the other decision win (a `CONFLICT` below) and
        // deny, the claim is void and the next download link clears it.
        claim(state, order_id, Claim::Refund, false).await?;
    }
    let mut envelope = Envelope::new(
        DecideRefund {
            order_id,
            admin_id: admin.id,
            approve,
            note: note.to_owned(),
        },
        order_id,
        Some(admin.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    // One decision per request: a second one inside the duplicate window is dropped by
    // JetStream, after it by the participant (it decides only pending requests).
    let published = state
        .bus
        .publish_with_id(&envelope, &format!("decide-{}", current.id))
        .await?;
    if published.duplicate {
        return Err(ApiError::Conflict(
            "another decision on this request is under way".into(),
        ));
    }
    tracing::info!(order.id = %order_id, approve, "refund decided");
    current.status = if approve {
        RefundStatus::Approved
    } else {
        RefundStatus::Denied
    };
    current.decision_note = Some(note.to_owned());
    current.decided_at = Some(Utc::now());
    Ok(current)
}

/// What claims an order's digital lines back at the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// A refund request of the completed order (approved by the policy or by an admin).
    Refund,
    /// The buyer's cancellation before dispatch, refunding the digital lines too.
    Cancel,
}

impl Claim {
    const fn as_str(self) -> &'static str {
        match self {
            Claim::Refund => "REFUND",
            Claim::Cancel => "CANCEL",
        }
    }
}

/// Claims `order`'s digital lines for a refund or a cancellation: from now on no download link
/// is handed out for it. With `unless_downloaded`, only an order never downloaded is claimed;
/// `false` when it was downloaded (nothing claimed then).
pub async fn claim(
    state: &AppState,
    order: Uuid,
    what: Claim,
    unless_downloaded: bool,
) -> ApiResult<bool> {
    let claimed = refund_gate::claim(&state.db, order, what.as_str(), unless_downloaded).await?;
    tracing::info!(order.id = %order, claim = what.as_str(), claimed, "refund gate");
    Ok(claimed)
}

/// Records the first download of `order` unless a refund or a cancellation claimed it; `false`
/// when one did (then no link may be handed out). A claim whose refund was denied, or whose
/// cancellation lost to the parcel or to the shipping deadline, is void and cleared here.
pub async fn first_download(db: &impl ConnectionTrait, order: Uuid) -> ApiResult<bool> {
    Ok(refund_gate::first_download(db, order).await?)
}
