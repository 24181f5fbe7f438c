//! Refunds in GraphQL: `requestRefund`, `decideRefund`, `refundRequests`, `Order.refundRequest`.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::paging;
use crate::refund::{self as service, RefundRow};

/// Where a refund request is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    /// Outside the policy: an admin decides.
    PendingReview,
    /// Approved (by the policy or an admin): the order is being or has been refunded
    /// (`Order.status` becomes `REFUNDED`).
    Approved,
    Denied,
}

impl From<domain::refund::RefundStatus> for RefundStatus {
    fn from(s: domain::refund::RefundStatus) -> RefundStatus {
        match s {
            domain::refund::RefundStatus::PendingReview => RefundStatus::PendingReview,
            domain::refund::RefundStatus::Approved => RefundStatus::Approved,
            domain::refund::RefundStatus::Denied => RefundStatus::Denied,
        }
    }
}

impl From<RefundStatus> for domain::refund::RefundStatus {
    fn from(s: RefundStatus) -> domain::refund::RefundStatus {
        match s {
            RefundStatus::PendingReview => domain::refund::RefundStatus::PendingReview,
            RefundStatus::Approved => domain::refund::RefundStatus::Approved,
            RefundStatus::Denied => domain::refund::RefundStatus::Denied,
        }
    }
}

/// A buyer's request to refund a completed order (one per order).
#[derive(SimpleObject, Clone, Debug)]
pub struct RefundRequest {
    pub id: Uuid,
    pub order_id: Uuid,
    pub account_id: Uuid,
    pub reason: String,
    /// Whether it met the refund policy when it was made (then it was approved at once).
    pub within_policy: bool,
    /// Why it was approved at once or sent to review.
    pub policy_note: String,
    pub status: RefundStatus,
    /// The admin's note with the decision.
    pub decision_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<RefundRow> for RefundRequest {
    fn from(r: RefundRow) -> RefundRequest {
        RefundRequest {
            id: r.id,
            order_id: r.order_id,
            account_id: r.account_id,
            reason: r.reason,
            within_policy: r.within_policy,
            policy_note: r.policy_note,
            status: r.status.into(),
            decision_note: r.decision_note,
            created_at: r.created_at,
            decided_at: r.decided_at,
        }
    }
}

#[derive(Default)]
pub struct RefundQuery;

#[Object]
impl RefundQuery {
    /// Refund requests, oldest first (admins; `PENDING_REVIEW` is the review queue).
    #[graphql(guard = "RoleGuard::admin()")]
    async fn refund_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only requests in this status (optional); `PENDING_REVIEW` is the review queue."
        )]
        status: Option<RefundStatus>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, RefundRequest>> {
        let (state, _) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("refund", after.as_deref())?;
        let rows = service::list(state, status.map(Into::into), cursor, first + 1).await?;
        Ok(paging::page(
            rows,
            first,
            after.is_some(),
            |r| paging::encode("refund", &r.id.to_string()),
            RefundRequest::from,
        ))
    }
}

#[derive(Default)]
pub struct RefundMutation;

#[Object]
impl RefundMutation {
    /// Asks for the refund of one of the caller's completed digital orders. Within the policy
    /// (by default: 14 days after purchase, never downloaded) it is approved at once and the
    /// order becomes `REFUNDED` moments later (entitlements revoked, keys deactivated, the
    /// payment back in the wallet); otherwise it waits for an admin (`PENDING_REVIEW`). Asking
    /// again answers the same request. `CONFLICT` for an order that is not completed or has
    /// boxed copies.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn request_refund(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's completed digital order.")] order_id: Uuid,
        #[graphql(desc = "Why the refund is asked for, shown to the admin who reviews it.")] reason: String,
    ) -> async_graphql::Result<RefundRequest> {
        let (state, me) = acting(ctx)?;
        Ok(service::request(state, me, order_id, &reason).await?.into())
    }

    /// Approves or denies a refund request that waits for review (admins). `CONFLICT` when it
    /// was decided already.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn decide_refund(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the order whose refund request waits for review.")]
        order_id: Uuid,
        #[graphql(desc = "`true` approves the refund, `false` denies it.")] approve: bool,
        #[graphql(default, desc = "A note for the buyer and the audit log (optional).")]
        note: String,
    ) -> async_graphql::Result<RefundRequest> {
        let (state, me) = acting(ctx)?;
        Ok(service::decide(state, me, order_id, approve, &note)
            .await?
            .into())
    }
}
