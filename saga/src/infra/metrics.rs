//! What a saga process tells Prometheus (issue 17), at `/metrics` next to its probes.
//!
//! Counted as it happens (in [`crate::infra::consumer`]): deliveries per participant, message
//! kind and outcome, redeliveries, dead letters, and the step latency (from the moment a
//! message was created to its handling being settled). Sampled when scraped, for the
//! participants this process runs: each one's outbox backlog and the age of its oldest
//! unpublished event, its dead letters waiting for an admin, its durable consumers' pending and
//! ack-pending counts (from JetStream's consumer info), the open orders by state and the age of
//! the oldest (the process that runs ordering), the webhook deliveries waiting (webhooks), the
//! last reconciliation pass and its findings by kind (notification: the pass itself is a job
//! that exits), and the connection pool.

use std::time::Duration;

use domain::messaging::Envelope;
use futures::TryStreamExt as _;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::infra::runtime::{Participant, Runtime};

/// Longest a scrape waits for its samples; past it, the series keep their last values.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The open states of an order (everything else is an end).
const OPEN_ORDER_STATES: [&str; 3] = ["PLACED", "PAID", "AWAITING_SHIPMENT"];

/// A delivery's outcome, as the consume loop settled it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Handled,
    Retried,
    DeadLettered,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Handled => "handled",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Counts one settled delivery; a handled one also records its step latency.
pub fn settled(p: Participant, envelope: &Envelope<serde_json::Value>, outcome: Outcome) {
    let kind = domain::metrics::label(&envelope.kind);
    metrics::counter!(
        "store_saga_deliveries_total",
        "participant" => p.name(),
        "kind" => kind.clone(),
        "outcome" => outcome.as_str(),
    )
    .increment(1);
    if outcome == Outcome::Handled {
        let waited = (chrono::Utc::now() - envelope.occurred_at)
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(
            "store_saga_step_latency_seconds",
            "participant" => p.name(),
            "kind" => kind,
        )
        .record(waited);
    }
}

/// Counts a delivery that came again (a crash, a nak, an ack that did not arrive).
pub fn redelivered(p: Participant) {
    metrics::counter!("store_saga_redeliveries_total", "participant" => p.name()).increment(1);
}

/// Counts a message stored in the dead letters.
pub fn dead_lettered(p: Participant) {
    metrics::counter!("store_saga_dead_letters_total", "participant" => p.name()).increment(1);
}

/// Samples the gauges of `participants` (see the module's doc); errors are logged, and the
/// series they would have set keep their last values.
pub async fn sample(rt: &Runtime, participants: &[Participant]) {
    domain::metrics::record_pool(&rt.db);
    let work = async {
        for &p in participants {
            if let Err(e) = sample_participant(rt, p).await {
                tracing::warn!(participant = p.name(), error = %format!("{e:#}"), "sampling metrics failed");
            }
        }
        if let Err(e) = sample_consumers(rt, participants).await {
            tracing::warn!(error = %format!("{e:#}"), "sampling the consumers failed");
        }
    };
    if tokio::time::timeout(SAMPLE_TIMEOUT, work).await.is_err() {
        tracing::warn!("sampling metrics took too long");
    }
}

async fn sample_participant(rt: &Runtime, p: Participant) -> anyhow::Result<()> {
    let ctx = p.name();
    domain::outbox::sample(&rt.db, ctx).await?;
    let waiting = rt
        .db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT count(*)::float8 AS n FROM {ctx}.dead_letter WHERE replayed_at IS NULL"
            ),
        ))
        .await?;
    if let Some(row) = waiting {
        let n: f64 = row.try_get("", "n")?;
        metrics::gauge!("store_saga_dead_letters_waiting", "participant" => ctx).set(n);
    }
    match p {
        Participant::Ordering => sample_orders(rt).await?,
        // Reconciliation runs as a job that exits (`saga reconcile`): the process that tells
        // the admins of its findings reports its last pass.
        Participant::Notification => sample_reconciliation(rt).await?,
        Participant::Webhooks => {
            let row = rt
                .db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT count(*)::float8 AS n FROM webhooks.delivery WHERE status = 'PENDING'",
                ))
                .await?;
            if let Some(row) = row {
                let n: f64 = row.try_get("", "n")?;
                metrics::gauge!("store_webhook_deliveries_pending").set(n);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Open orders by state and the age of the oldest in each (the partial index `order_open_idx`
/// keeps this to the open orders, however many have ended).
async fn sample_orders(rt: &Runtime) -> anyhow::Result<()> {
    let rows = rt
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT status, count(*)::float8 AS n, \
                    extract(epoch FROM now() - min(created_at))::float8 AS oldest \
             FROM ordering.\"order\" \
             WHERE status IN ('PLACED', 'PAID', 'AWAITING_SHIPMENT') GROUP BY status",
        ))
        .await?;
    let mut seen = std::collections::HashMap::new();
    for row in rows {
        let status: String = row.try_get("", "status")?;
        let n: f64 = row.try_get("", "n")?;
        let oldest: f64 = row.try_get("", "oldest")?;
        seen.insert(status, (n, oldest));
    }
    for state in OPEN_ORDER_STATES {
        let (n, oldest) = seen.get(state).copied().unwrap_or((0.0, 0.0));
        metrics::gauge!("store_orders_open", "state" => state).set(n);
        metrics::gauge!("store_orders_oldest_open_seconds", "state" => state).set(oldest);
    }
    Ok(())
}

/// The last finished reconciliation pass: when, and what it found by kind.
async fn sample_reconciliation(rt: &Runtime) -> anyhow::Result<()> {
    let rows = rt
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "WITH last AS (SELECT id, finished_at FROM reconcile.run \
                           WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1) \
             SELECT extract(epoch FROM last.finished_at)::float8 AS at, f.kind, count(f.id)::float8 AS n \
             FROM last LEFT JOIN reconcile.finding f ON f.run_id = last.id \
             GROUP BY last.finished_at, f.kind",
        ))
        .await?;
    let mut found = std::collections::HashMap::new();
    for row in &rows {
        let at: f64 = row.try_get("", "at")?;
        metrics::gauge!("store_reconcile_last_run_timestamp_seconds").set(at);
        if let Some(kind) = row.try_get::<Option<String>>("", "kind")? {
            found.insert(kind, row.try_get::<f64>("", "n")?);
        }
    }
    if !rows.is_empty() {
        for kind in domain::reconcile::DriftKind::ALL {
            let n = found.get(kind.as_str()).copied().unwrap_or(0.0);
            metrics::gauge!("store_reconcile_drift", "kind" => kind.as_str()).set(n);
        }
    }
    Ok(())
}

/// Pending and ack-pending messages of every durable consumer of `participants` (their names
/// start with the participant's name).
async fn sample_consumers(rt: &Runtime, participants: &[Participant]) -> anyhow::Result<()> {
    for stream in ["CMD", "EVT"] {
        let name = rt.bus.stream_name(stream);
        let js = rt.bus.jetstream().get_stream(&name).await?;
        let infos: Vec<_> = js.consumers().try_collect().await?;
        for info in infos {
            let Some(p) = participants
                .iter()
                .find(|p| info.name.starts_with(&format!("{}-", p.name())))
            else {
                continue;
            };
            let consumer = info.name.clone();
            let labels = [("participant", p.name().to_owned()), ("consumer", consumer)];
            // `u64`/`usize` → `f64`: counts of messages.
            metrics::gauge!("store_consumer_pending", &labels).set(info.num_pending as f64);
            metrics::gauge!("store_consumer_ack_pending", &labels).set(info.num_ack_pending as f64);
            metrics::gauge!("store_consumer_redelivered", &labels).set(info.num_redelivered as f64);
        }
    }
    Ok(())
}
