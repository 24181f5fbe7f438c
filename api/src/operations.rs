//! What the operations page shows (issue 17), read-only: per participant its durable
//! consumers' lag (JetStream's consumer info), outbox backlog and dead letters waiting; the
//! open orders by state and the oldest; the last reconciliation and its findings. The same
//! figures are series of the processes' `/metrics`; this is the admins' view of them.

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use sea_orm::{DbBackend, FromQueryResult, Statement};
use uuid::Uuid;

use crate::infra::error::ApiResult;
use crate::infra::state::AppState;

/// One durable consumer.
#[derive(Clone, Debug)]
pub struct Consumer {
    pub name: String,
    /// Messages on its subjects not delivered yet.
    pub pending: u64,
    /// Delivered, not acknowledged yet.
    pub ack_pending: u64,
    /// Delivered more than once and not acknowledged yet.
    pub redelivered: u64,
}

/// One participant.
#[derive(Clone, Debug)]
pub struct Participant {
    pub name: String,
    pub consumers: Vec<Consumer>,
    pub outbox_backlog: i64,
    /// The oldest event its relay has not published yet.
    pub oldest_unpublished_at: Option<DateTime<Utc>>,
    pub dead_letters_waiting: i64,
}

/// Open orders in one state.
#[derive(Clone, Debug, FromQueryResult)]
pub struct OpenOrders {
    pub status: String,
    pub count: i64,
    pub oldest_at: Option<DateTime<Utc>>,
}

/// A reconciliation pass.
#[derive(Clone, Debug, FromQueryResult)]
pub struct Run {
    pub id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub wallets: i32,
    pub orders: i32,
    pub editions: i32,
    pub repaired: i32,
    pub reported: i32,
}

/// What a pass found.
#[derive(Clone, Debug, FromQueryResult)]
pub struct Finding {
    pub id: Uuid,
    pub kind: String,
    pub subject: String,
    pub detail: String,
    pub action: String,
    pub created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct Backlog {
    backlog: i64,
    oldest: Option<DateTime<Utc>>,
    dead: i64,
}

/// Every participant (`migration::MESSAGING_SCHEMAS`), in that order.
pub async fn participants(state: &AppState) -> ApiResult<Vec<Participant>> {
    let mut consumers: Vec<Consumer> = Vec::new();
    for stream in ["CMD", "EVT"] {
        let js = state
            .bus
            .jetstream()
            .get_stream(state.bus.stream_name(stream))
            .await
            .map_err(|e| anyhow::anyhow!("opening stream {stream}: {e}"))?;
        let infos: Vec<_> = js
            .consumers()
            .try_collect()
            .await
            .map_err(|e| anyhow::anyhow!("listing the consumers of {stream}: {e}"))?;
        consumers.extend(infos.into_iter().map(|i| Consumer {
            name: i.name,
            pending: i.num_pending,
            // `usize` → `u64`: a count of messages.
            ack_pending: i.num_ack_pending as u64,
            redelivered: i.num_redelivered as u64,
        }));
    }
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for name in migration::MESSAGING_SCHEMAS {
        let sql = format!(
            "SELECT (SELECT count(*) FROM {name}.outbox WHERE published_at IS NULL) AS backlog, \
                    (SELECT min(created_at) FROM {name}.outbox WHERE published_at IS NULL) AS oldest, \
                    (SELECT count(*) FROM {name}.dead_letter WHERE replayed_at IS NULL) AS dead"
        );
        let row = Backlog::find_by_statement(Statement::from_string(DbBackend::Postgres, sql))
            .one(&state.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no backlog row for {name}"))?;
        let prefix = format!("{name}-");
        out.push(Participant {
            name: name.to_owned(),
            consumers: consumers
                .iter()
                .filter(|c| c.name.starts_with(&prefix))
                .cloned()
                .collect(),
            outbox_backlog: row.backlog,
            oldest_unpublished_at: row.oldest,
            dead_letters_waiting: row.dead,
        });
    }
    Ok(out)
}

/// The open orders by state (`ordering.order_open_idx`), in the saga's order.
pub async fn open_orders(state: &AppState) -> ApiResult<Vec<OpenOrders>> {
    let rows = OpenOrders::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT s.status, count(o.id)::bigint AS count, min(o.created_at) AS oldest_at \
         FROM (VALUES (1, 'PLACED'), (2, 'PAID'), (3, 'AWAITING_SHIPMENT')) AS s (n, status) \
         LEFT JOIN ordering.\"order\" o ON o.status = s.status \
         GROUP BY s.n, s.status ORDER BY s.n",
    ))
    .all(&state.db)
    .await?;
    Ok(rows)
}

/// The newest reconciliation pass and its findings (at most `limit`).
pub async fn last_run(state: &AppState, limit: u64) -> ApiResult<Option<(Run, Vec<Finding>)>> {
    let run = Run::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT id, started_at, finished_at, wallets, orders, editions, repaired, reported \
         FROM reconcile.run ORDER BY started_at DESC LIMIT 1",
    ))
    .one(&state.db)
    .await?;
    let Some(run) = run else {
        return Ok(None);
    };
    let findings = Finding::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, kind, subject, detail, action, created_at FROM reconcile.finding \
         WHERE run_id = $1 ORDER BY created_at, id LIMIT $2",
        [run.id.into(), i64::try_from(limit).unwrap_or(100).into()],
    ))
    .all(&state.db)
    .await?;
    Ok(Some((run, findings)))
}
