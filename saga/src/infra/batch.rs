//! A batch: one transaction shared by the deliveries a consumer handles together, each
//! handler in a savepoint of it (see [`crate::infra::consumer`] and
//! [`crate::infra::outbox::Tx`]), and the work that waits for its commit.

use std::sync::{Arc, Mutex};

use sea_orm::DatabaseTransaction;

use crate::infra::runtime::{Participant, Runtime};

/// Work that must wait until the handler's changes are committed for good (they are what it
/// publishes: a cached balance, a cleared counter).
pub type AfterCommit =
    Box<dyn FnOnce(Runtime) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// One transaction shared by the deliveries the consume loop handles together; each handler
/// works in a savepoint of it.
pub struct Batch {
    pub(crate) txn: DatabaseTransaction,
    /// Deferred to the batch's commit.
    after: Mutex<Vec<AfterCommit>>,
    wake: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batch")
    }
}

impl Batch {
    pub(crate) fn new(txn: DatabaseTransaction) -> Arc<Batch> {
        Arc::new(Batch {
            txn,
            after: Mutex::default(),
            wake: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn defer(&self, after: Vec<AfterCommit>, wake: bool) {
        if wake {
            self.wake.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.after
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(after);
    }

    /// Commits the batch, then wakes the relay of `p` and runs what the handlers deferred.
    pub(crate) async fn commit(self, rt: &Runtime, p: Participant) -> Result<(), sea_orm::DbErr> {
        self.txn.commit().await?;
        if self.wake.into_inner() {
            rt.wake_relay(p);
        }
        let after = self
            .after
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for work in after {
            work(rt.clone()).await;
        }
        Ok(())
    }
}
