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
use domain::messaging::Envelope;
use domain::refund::{DecideRefund, MAX_REASON_CHARS, RefundStatus, RequestRefund};
use domain::sql::stmt;
use sea_orm::ConnectionTrait;
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

const COLUMNS: &str = "id, order_id, account_id, reason, within_policy, policy_note, status, decision_note, created_at, decided_at";

fn row(r: &sea_orm::QueryResult) -> ApiResult<RefundRow> {
    let status: String = r.try_get("", "status")?;
    Ok(RefundRow {
        id: r.try_get("", "id")?,
        order_id: r.try_get("", "order_id")?,
        account_id: r.try_get("", "account_id")?,
        reason: r.try_get("", "reason")?,
        within_policy: r.try_get("", "within_policy")?,
        policy_note: r.try_get("", "policy_note")?,
        status: RefundStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown refund status {status}"))?,
        decision_note: r.try_get("", "decision_note")?,
        created_at: r.try_get("", "created_at")?,
        decided_at: r.try_get("", "decided_at")?,
    })
}

/// The refund request of an order, if any.
pub async fn of_order(state: &AppState, order: Uuid) -> ApiResult<Option<RefundRow>> {
    let r = state
        .db
        .query_one_raw(stmt(
            format!("SELECT {COLUMNS} FROM ordering.refund_request WHERE order_id = $1"),
            [order.into()],
        ))
        .await?;
    r.as_ref().map(row).transpose()
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
    let rows = db
        .query_all_raw(stmt(
            format!("SELECT {COLUMNS} FROM ordering.refund_request WHERE order_id = ANY($1)"),
            [orders.to_vec().into()],
        ))
        .await?;
    for r in &rows {
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
    let rows = state
        .db
        .query_all_raw(stmt(
            format!(
                "SELECT {COLUMNS} FROM ordering.refund_request WHERE ($1::text IS NULL OR status = $1) \
                 AND ($2::uuid IS NULL OR (created_at, id) > \
                      (SELECT created_at, id FROM ordering.refund_request WHERE id = $2)) \
                 ORDER BY created_at, id LIMIT $3"
            ),
            [
                status.map(|s| s.as_str().to_owned()).into(),
                after.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter().map(row).collect()
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
    let order = state
        .db
        .query_one_raw(stmt(
            r#"SELECT account_id, status, completed_at, needs_shipping FROM ordering."order" WHERE id = $1"#,
            [order_id.into()],
        ))
        .await?
        .filter(|r| r.try_get::<Uuid>("", "account_id").ok() == Some(me.id))
        .ok_or(ApiError::NotFound("order"))?;
    if let Some(existing) = of_order(state, order_id).await? {
        return Ok(existing);
    }
    let status: String = order.try_get("", "status")?;
    if status != "COMPLETED" {
        return Err(ApiError::Conflict(format!(
            "only a completed order can be refunded (this one is {status})"
        )));
    }
    if order.try_get::<bool>("", "needs_shipping")? {
        return Err(ApiError::Conflict(
            "orders with boxed copies are returned to their publisher, not refunded here".into(),
        ));
    }
    let completed_at: Option<DateTime<Utc>> = order.try_get("", "completed_at")?;
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
    let claimed = state
        .db
        .query_one_raw(stmt(
            "INSERT INTO catalog.refund_gate (order_id, claim, claimed_at) VALUES ($1, $2, now()) \
             ON CONFLICT (order_id) DO UPDATE SET claim = EXCLUDED.claim, claimed_at = EXCLUDED.claimed_at \
             WHERE NOT $3 OR refund_gate.downloaded_at IS NULL RETURNING order_id",
            [
                order.into(),
                what.as_str().to_owned().into(),
                unless_downloaded.into(),
            ],
        ))
        .await?
        .is_some();
    tracing::info!(order.id = %order, claim = what.as_str(), claimed, "refund gate");
    Ok(claimed)
}

/// Records the first download of `order` unless a refund or a cancellation claimed it; `false`
/// when one did (then no link may be handed out). A claim whose refund was denied, or whose
/// cancellation lost to the parcel or to the shipping deadline, is void and cleared here.
pub async fn first_download(db: &impl ConnectionTrait, order: Uuid) -> ApiResult<bool> {
    let recorded = db
        .query_one_raw(stmt(
            "INSERT INTO catalog.refund_gate (order_id, downloaded_at) VALUES ($1, now()) \
             ON CONFLICT (order_id) DO UPDATE \
             SET downloaded_at = coalesce(refund_gate.downloaded_at, EXCLUDED.downloaded_at), \
                 claim = NULL, claimed_at = NULL \
             WHERE refund_gate.claim IS NULL \
                OR (refund_gate.claim = 'REFUND' AND EXISTS (SELECT 1 FROM ordering.refund_request r \
                    WHERE r.order_id = $1 AND r.status = 'DENIED')) \
                OR (refund_gate.claim = 'CANCEL' AND EXISTS (SELECT 1 FROM fulfillment.shipment s \
                    WHERE s.order_id = $1 AND (s.status = 'SHIPPED' \
                       OR (s.status = 'RELEASED' AND s.release_reason IS DISTINCT FROM $2)))) \
             RETURNING order_id",
            [
                order.into(),
                domain::fulfillment::CANCELLED_BY_BUYER.to_owned().into(),
            ],
        ))
        .await?
        .is_some();
    Ok(recorded)
}
