//! How long the messaging tables keep what they no longer need (`server` feature only).
//!
//! An outbox row is needed until its relay has published it; an inbox row (a handled message
//! id) until JetStream can no longer deliver that message again. Both tables would otherwise
//! grow with every event for as long as the store runs. Each process that writes one of them
//! prunes it now and then ([`PRUNE_EVERY`]): rows past the retention go, a bounded batch per
//! statement ([`PRUNE_BATCH`]), claimed with `FOR UPDATE SKIP LOCKED` so that replicas prune
//! different rows and never wait for each other or for a relay.
//!
//! What is kept, whatever its age: an outbox row not published yet (its relay still owes it).
//! An inbox row lives for the retention after it was handled, which must be longer than any
//! way the message can come again: a redelivery comes within the ack wait, and a consumer
//! created anew starts `SAGA_NEW_CONSUMER_BACKLOG_SECS` back in time, so `saga run` refuses a
//! retention that is not longer than that backlog by a day ([`MIN_MARGIN`]).

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbErr};

use crate::sql::stmt;

/// The retention when none is configured (`MESSAGING_RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

/// Time between two prunes of one process.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Most rows one statement removes.
pub const PRUNE_BATCH: u32 = 5000;

/// How much longer than a new consumer's backlog the inbox must keep a handled message id.
pub const MIN_MARGIN: Duration = Duration::from_secs(86_400);

/// A messaging table and the rows of it that may go once they are older than the retention.
#[derive(Clone, Debug)]
pub struct Prunable {
    /// `schema.table`.
    table: String,
    /// Its primary key.
    key: &'static str,
    /// The rows past the cutoff `$1` that may go.
    old: &'static str,
}

impl Prunable {
    /// `{schema}.outbox`: the rows published before the cutoff (`created_at` first, for the
    /// BRIN index; a row is published after it was written).
    pub fn outbox(schema: &str) -> Prunable {
        Prunable {
            table: format!("{schema}.outbox"),
            key: "id",
            old: "created_at < $1 AND published_at < $1",
        }
    }

    /// `{schema}.inbox`: the ids of messages handled before the cutoff.
    pub fn inbox(schema: &str) -> Prunable {
        Prunable {
            table: format!("{schema}.inbox"),
            key: "message_id",
            old: "handled_at < $1",
        }
    }

    /// `schema.table`, for logs.
    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Removes at most `batch` rows of `what` older than `retention`; returns how many went. A
/// zero retention keeps everything.
pub async fn prune_batch(
    db: &impl ConnectionTrait,
    what: &Prunable,
    retention: Duration,
    batch: u32,
) -> Result<u64, DbErr> {
    // A retention beyond the calendar keeps everything, as does none.
    let Some(cutoff) = chrono::Duration::from_std(retention)
        .ok()
        .filter(|_| !retention.is_zero())
        .and_then(|r| chrono::Utc::now().checked_sub_signed(r))
    else {
        return Ok(0);
    };
    let Prunable { table, key, old } = what;
    let done = db
        .execute_raw(stmt(
            format!(
                "WITH doomed AS ( \
                     SELECT {key} FROM {table} WHERE {old} LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ) \
                 DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM doomed)"
            ),
            [cutoff.into(), i64::from(batch.max(1)).into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Prunes `what` batch after batch until one comes back short; returns how many rows went.
pub async fn prune(
    db: &impl ConnectionTrait,
    what: &Prunable,
    retention: Duration,
    batch: u32,
) -> Result<u64, DbErr> {
    let mut total = 0;
    loop {
        let n = prune_batch(db, what, retention, batch).await?;
        total += n;
        if n < u64::from(batch.max(1)) {
            return Ok(total);
        }
        // Let the relays and consumers have the database between two batches.
        tokio::task::yield_now().await;
    }
}

/// Prunes `tables` now and then every [`PRUNE_EVERY`], forever (nothing when the retention is
/// zero). A failed round is logged and tried again at the next.
pub async fn pruner(db: sea_orm::DatabaseConnection, tables: Vec<Prunable>, retention: Duration) {
    if retention.is_zero() {
        return std::future::pending().await;
    }
    loop {
        for what in &tables {
            match prune(&db, what, retention, PRUNE_BATCH).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(table = what.table(), rows, "old messaging rows pruned"),
                Err(e) => tracing::warn!(
                    table = what.table(),
                    error = %e,
                    "pruning old messaging rows failed; trying again later"
                ),
            }
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// Whether `retention` keeps a handled message id long enough for a consumer that starts
/// `backlog` back in time (zero keeps everything: always long enough).
pub fn inbox_retention_is_safe(retention: Duration, backlog: Duration) -> bool {
    retention.is_zero() || retention > backlog + MIN_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_outlives_a_new_consumers_backlog_by_a_day() {
        let day = Duration::from_secs(86_400);
        assert!(inbox_retention_is_safe(30 * day, day));
        assert!(inbox_retention_is_safe(Duration::ZERO, 40 * day));
        assert!(!inbox_retention_is_safe(2 * day, day));
        assert!(!inbox_retention_is_safe(7 * day, 7 * day));
    }
}
