//! The operations page in GraphQL (admins): `operations`.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::graphql::error::stored;
use crate::graphql::guard::RoleGuard;
use crate::graphql::ordering::OrderStatus;
use crate::infra::state::AppState;
use crate::operations as service;

/// A durable consumer of a participant.
#[derive(SimpleObject, Clone, Debug)]
pub struct ConsumerLag {
    pub name: String,
    /// Messages on its subjects not delivered yet.
    pub pending: u64,
    /// Delivered, not acknowledged yet.
    pub ack_pending: u64,
    /// Delivered more than once, not acknowledged yet.
    pub redelivered: u64,
}

/// A saga participant as operators see it.
#[derive(SimpleObject, Clone, Debug)]
pub struct ParticipantStatus {
    pub name: String,
    pub consumers: Vec<ConsumerLag>,
    /// Events stored and not published yet.
    pub outbox_backlog: i64,
    pub oldest_unpublished_at: Option<DateTime<Utc>>,
    /// Dead letters no admin has replayed (see `deadLetters`).
    pub dead_letters_waiting: i64,
}

/// Orders waiting in one state.
#[derive(SimpleObject, Clone, Debug)]
pub struct OpenOrders {
    /// `PLACED`, `PAID` or `AWAITING_SHIPMENT`.
    pub status: OrderStatus,
    pub count: i64,
    pub oldest_at: Option<DateTime<Utc>>,
}

/// What a reconciliation finding is about.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::reconcile::DriftKind")]
pub enum DriftKind {
    /// A cached balance in Redis was not the wallet's (repaired).
    CachedBalance,
    /// A wallet does not add up to its ledger.
    WalletLedger,
    /// A paid line of a settled order has no entitlement.
    MissingEntitlement,
    /// An active entitlement comes from an order that was never debited.
    UnpaidEntitlement,
    /// Reserved stock does not match the open reservations, or exceeds the stock.
    Stock,
}

/// What reconciliation did about a finding.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DriftAction {
    /// A derived copy was set right.
    Repaired,
    /// The source of truth is in question: left as it is, for a person to look at (the
    /// admins were notified).
    Reported,
}

/// Something a reconciliation pass found.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReconciliationFinding {
    pub id: Uuid,
    pub kind: DriftKind,
    /// What it is about (an account, an order, an edition).
    pub subject: String,
    pub detail: String,
    pub action: DriftAction,
    pub created_at: DateTime<Utc>,
}

/// A reconciliation pass.
#[derive(SimpleObject, Clone, Debug)]
pub struct Reconciliation {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    /// `null` while it runs (or if it stopped half-way).
    pub finished_at: Option<DateTime<Utc>>,
    pub wallets: i32,
    pub orders: i32,
    pub editions: i32,
    pub repaired: i32,
    pub reported: i32,
    /// The first 100 findings.
    pub findings: Vec<ReconciliationFinding>,
}

/// The operations page.
#[derive(SimpleObject, Clone, Debug)]
pub struct Operations {
    pub participants: Vec<ParticipantStatus>,
    pub open_orders: Vec<OpenOrders>,
    pub last_reconciliation: Option<Reconciliation>,
}

#[derive(Default)]
pub struct OperationsQuery;

#[Object]
impl OperationsQuery {
    /// How the store runs: each participant's consumer lag, outbox backlog and dead letters,
    /// the orders waiting, and the last reconciliation.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn operations(&self, ctx: &Context<'_>) -> async_graphql::Result<Operations> {
        let state = ctx.data::<AppState>()?;
        let participants = service::participants(state)
            .await?
            .into_iter()
            .map(|p| ParticipantStatus {
                name: p.name,
                consumers: p
                    .consumers
                    .into_iter()
                    .map(|c| ConsumerLag {
                        name: c.name,
                        pending: c.pending,
                        ack_pending: c.ack_pending,
                        redelivered: c.redelivered,
                    })
                    .collect(),
                outbox_backlog: p.outbox_backlog,
                oldest_unpublished_at: p.oldest_unpublished_at,
                dead_letters_waiting: p.dead_letters_waiting,
            })
            .collect();
        let open_orders = service::open_orders(state)
            .await?
            .into_iter()
            .map(|o| {
                Ok(OpenOrders {
                    status: stored(
                        "order status",
                        &o.status,
                        domain::ordering::OrderStatus::parse,
                    )?
                    .into(),
                    count: o.count,
                    oldest_at: o.oldest_at,
                })
            })
            .collect::<Result<_, crate::infra::error::ApiError>>()?;
        let last_reconciliation = match service::last_run(state, 100).await? {
            None => None,
            Some((run, findings)) => Some(Reconciliation {
                id: run.id,
                started_at: run.started_at,
                finished_at: run.finished_at,
                wallets: run.wallets,
                orders: run.orders,
                editions: run.editions,
                repaired: run.repaired,
                reported: run.reported,
                findings: findings
                    .into_iter()
                    .map(|f| {
                        Ok(ReconciliationFinding {
                            id: f.id,
                            kind: stored(
                                "finding kind",
                                &f.kind,
                                domain::reconcile::DriftKind::parse,
                            )?
                            .into(),
                            subject: f.subject,
                            detail: f.detail,
                            action: if f.action == "REPAIRED" {
                                DriftAction::Repaired
                            } else {
                                DriftAction::Reported
                            },
                            created_at: f.created_at,
                        })
                    })
                    .collect::<Result<_, crate::infra::error::ApiError>>()?,
            }),
        };
        Ok(Operations {
            participants,
            open_orders,
            last_reconciliation,
        })
    }
}
