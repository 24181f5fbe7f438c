//! A batch: one transaction shared by the deliveries a consumer handles together (see
//! [`crate::infra::consumer`] and [`crate::infra::outbox::Tx`]), and the work that waits for its
//! commit.
//!
//! The batch records every delivery in the inbox with one statement before any handler runs.
//! A batch runs first without savepoints: handlers rarely fail, and a savepoint is a statement
//! per delivery. When a handler fails after it began to write, the batch is rolled back and run
//! again *carefully*: each handler's work starts with a savepoint, taken when it opens its
//! [`crate::infra::outbox::Tx`] (a handler that decides from the message alone takes none), and
//! a handler that fails is rolled back to it and its inbox row removed. Savepoints are never released: the next one
//! shadows the last, and a rollback goes to the latest, so a handler that succeeds costs no
//! statement of bookkeeping at all. What a handler leaves for the commit (its outbox rows for
//! the relay, its deferred work) is kept only once the handler is kept: a handler rolled back
//! to its savepoint leaves nothing to publish.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use domain::outbox::Row;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use uuid::Uuid;

use crate::infra::runtime::{Participant, Runtime};

/// Work that must wait until the handler's changes are committed for good (they are what it
/// publishes: a cached balance, a cleared counter).
pub type AfterCommit =
    Box<dyn FnOnce(Runtime) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// How far the handler now running in a batch got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// It opened no transaction (it decides from the message alone): nothing to undo.
    Idle = 0,
    /// It took its savepoint and may have written.
    Begun = 1,
    /// It committed: its work stays.
    Committed = 2,
}

/// What a handler leaves for after the commit.
#[derive(Default)]
struct Left {
    /// Its outbox rows, for the relay.
    rows: Vec<Row>,
    after: Vec<AfterCommit>,
}

/// One transaction shared by the deliveries the consume loop handles together.
pub struct Batch {
    pub(crate) txn: DatabaseTransaction,
    /// Of the handler now running (they run one after the other).
    progress: AtomicU8,
    /// What the running handler committed, until it is kept or undone.
    running: Mutex<Left>,
    /// What the kept handlers left for the batch's commit.
    kept: Mutex<Left>,
    /// Whether any handler took its savepoint (and may have written) or a replay was marked:
    /// otherwise the batch changed nothing but the inbox, and is rolled back, not committed.
    wrote: std::sync::atomic::AtomicBool,
    /// Whether each handler's work starts with a savepoint (see [`Batch::new`]).
    careful: bool,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batch")
    }
}

/// The savepoint each handler of a batch starts from (one name: the latest is the one a
/// rollback returns to).
const SAVEPOINT: &str = "SAVEPOINT delivery";
const ROLLBACK: &str = "ROLLBACK TO SAVEPOINT delivery";

impl Batch {
    /// A batch in `txn`. A `careful` one takes a savepoint before each handler's work, so a
    /// handler that fails is undone alone; one that is not takes none (a statement less per
    /// delivery), and the first handler that fails after it began to write makes the whole
    /// batch run again, carefully ([`Batch::careful`]).
    pub(crate) fn new(txn: DatabaseTransaction, careful: bool) -> Arc<Batch> {
        Arc::new(Batch {
            careful,
            txn,
            progress: AtomicU8::new(Progress::Idle as u8),
            running: Mutex::default(),
            kept: Mutex::default(),
            wrote: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Records `ids` in the inbox of `p`; returns those that were not there (the others were
    /// handled before).
    pub(crate) async fn record(
        &self,
        p: Participant,
        ids: Vec<Uuid>,
        kinds: Vec<String>,
    ) -> Result<std::collections::HashSet<Uuid>, sea_orm::DbErr> {
        // Raw: one statement for the whole batch, in the participant's schema chosen at run time.
        let rows = self
            .txn
            .query_all_raw(domain::sql::stmt(
                format!(
                    "INSERT INTO {}.inbox (message_id, kind) \
                     SELECT * FROM unnest($1::uuid[], $2::text[]) \
                     ON CONFLICT DO NOTHING RETURNING message_id",
                    p.name()
                ),
                [ids.into(), kinds.into()],
            ))
            .await?;
        rows.iter()
            .map(|r| r.try_get::<Uuid>("", "message_id"))
            .collect()
    }

    /// Before a handler runs.
    pub(crate) fn start(&self) {
        *lock(&self.running) = Left::default();
        self.progress.store(Progress::Idle as u8, Ordering::SeqCst);
    }

    /// Whether a handler that wrote and failed can be undone alone (it has a savepoint).
    pub(crate) fn careful(&self) -> bool {
        self.careful
    }

    pub(crate) fn progress(&self) -> Progress {
        match self.progress.load(Ordering::SeqCst) {
            0 => Progress::Idle,
            1 => Progress::Begun,
            _ => Progress::Committed,
        }
    }

    /// The running handler opens its transaction: its savepoint.
    pub(crate) async fn begin(&self) -> Result<(), sea_orm::DbErr> {
        self.wrote.store(true, Ordering::SeqCst);
        if self.careful {
            self.txn.execute_unprepared(SAVEPOINT).await?;
        }
        self.progress.store(Progress::Begun as u8, Ordering::SeqCst);
        Ok(())
    }

    /// The running handler committed: its work stays if it is kept ([`Batch::keep`]), and
    /// `rows` (its outbox rows) and `after` wait for the batch's commit.
    pub(crate) fn committed(&self, after: Vec<AfterCommit>, rows: Vec<Row>) {
        {
            let mut running = lock(&self.running);
            running.after.extend(after);
            running.rows.extend(rows);
        }
        self.progress
            .store(Progress::Committed as u8, Ordering::SeqCst);
    }

    /// The running handler succeeded: what it left waits for the batch's commit.
    pub(crate) fn keep(&self) {
        let running = std::mem::take(&mut *lock(&self.running));
        let mut kept = lock(&self.kept);
        kept.rows.extend(running.rows);
        kept.after.extend(running.after);
    }

    /// Undoes what the running handler did (it failed, or dropped its transaction) and removes
    /// `id` from the inbox of `p`: the delivery is answered on its own and comes again.
    pub(crate) async fn undo(&self, p: Participant, id: Uuid) -> Result<(), sea_orm::DbErr> {
        *lock(&self.running) = Left::default();
        if self.progress() != Progress::Idle {
            self.txn.execute_unprepared(ROLLBACK).await?;
        }
        // Raw: the participant's schema is chosen at run time.
        self.txn
            .execute_raw(domain::sql::stmt(
                format!("DELETE FROM {}.inbox WHERE message_id = $1", p.name()),
                [id.into()],
            ))
            .await?;
        Ok(())
    }

    /// A replay of a dead letter is marked in the batch's transaction.
    pub(crate) fn marks(&self) {
        self.wrote.store(true, Ordering::SeqCst);
    }

    /// Commits the batch, then hands the kept handlers' outbox rows to the relay of `p` and
    /// runs what they deferred. A batch whose handlers all decided from the message alone
    /// (none took a savepoint: nothing to keep but inbox rows, which only guard deliveries
    /// with effects) is rolled back instead: no commit to wait for.
    pub(crate) async fn commit(self, rt: &Runtime, p: Participant) -> Result<(), sea_orm::DbErr> {
        if self.wrote.load(Ordering::SeqCst) {
            self.txn.commit().await?;
        } else {
            self.txn.rollback().await?;
        }
        let kept = self
            .kept
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rt.hand_over(p, kept.rows);
        for work in kept.after {
            work(rt.clone()).await;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Marks the dead letter `id` of `p` replayed (its replay was handled, or found handled).
pub(crate) async fn mark_replayed(
    db: &impl ConnectionTrait,
    p: Participant,
    id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    // Raw: the participant's schema is chosen at run time (one path for all of them).
    db.execute_raw(domain::sql::stmt(
        format!(
            "UPDATE {}.dead_letter SET replayed_at = coalesce(replayed_at, now()) WHERE id = $1",
            p.name()
        ),
        [id.into()],
    ))
    .await?;
    Ok(())
}
