//! Keeps the delivery log bounded: deliveries whose last attempt (or, never attempted, whose
//! recording) is older than `delivery_retention` are removed with their attempts, a bounded
//! batch per statement, once an hour by every replica of the participant.
//!
//! Only finished deliveries go (`SUCCEEDED`, or `FAILED` for good): a `PENDING` one is still on
//! its retry schedule and stays whatever its age. A delivery redelivered from the log has a
//! fresh `last_attempt_at` and so a fresh retention. The rows of one batch are claimed with
//! `FOR UPDATE SKIP LOCKED`, so two replicas prune different rows, and a redelivery that takes
//! the lock first keeps its row (the pruner skips it; the next round sees it again).

use std::time::Duration;

use sea_orm::ConnectionTrait;

use crate::infra::outbox::stmt;
use crate::infra::runtime::Runtime;

/// Time between two prunes of one process.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Most deliveries removed by one statement (each with its attempts).
pub const PRUNE_BATCH: u32 = 1000;

/// Removes at most `batch` finished deliveries older than `retention`, with their attempts;
/// returns how many deliveries went.
pub async fn prune_batch(rt: &Runtime, retention: Duration, batch: u32) -> anyhow::Result<u64> {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    // Raw: one statement claims the batch (SKIP LOCKED) and deletes the attempts and the
    // deliveries together, so a crash never leaves a delivery without the attempts it had.
    // `created_at` bounds the scan by its index; the last attempt decides.
    let done = rt
        .db
        .execute_raw(stmt(
            "WITH doomed AS ( \
                 SELECT id FROM webhooks.delivery \
                 WHERE status <> 'PENDING' \
                   AND created_at < now() - $1 * interval '1 millisecond' \
                   AND coalesce(last_attempt_at, created_at) < now() - $1 * interval '1 millisecond' \
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED \
             ), attempts AS ( \
                 DELETE FROM webhooks.attempt WHERE delivery_id IN (SELECT id FROM doomed) \
             ) \
             DELETE FROM webhooks.delivery WHERE id IN (SELECT id FROM doomed)",
            [retention_ms.into(), i64::from(batch.max(1)).into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Prunes batch after batch until one comes back short; returns how many deliveries went.
pub async fn prune(rt: &Runtime, retention: Duration, batch: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let n = prune_batch(rt, retention, batch).await?;
        total += n;
        if n < u64::from(batch.max(1)) {
            return Ok(total);
        }
        // Let the delivery loops have the database between two batches.
        tokio::task::yield_now().await;
    }
}

/// Prunes the delivery log now and then every [`PRUNE_EVERY`], forever (nothing when the
/// retention is zero). A failed round is logged and tried again at the next.
pub async fn pruner(rt: Runtime) -> anyhow::Result<()> {
    let retention = rt.settings.webhooks.delivery_retention;
    if retention.is_zero() {
        std::future::pending::<()>().await;
    }
    loop {
        match prune(&rt, retention, PRUNE_BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "old webhook deliveries pruned"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "pruning webhook deliveries failed; trying again later");
            }
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}
