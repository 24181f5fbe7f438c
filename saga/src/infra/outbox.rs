//! The transaction a handler works in, and the relay that publishes the outbox.
//!
//! [`Tx::begin`] opens a transaction and records the message in the participant's inbox
//! (`INSERT … ON CONFLICT DO NOTHING`): if the id is already there the message was handled and
//! the handler does nothing. The handler changes state in the transaction and queues events
//! with [`Tx::emit`]; [`Tx::commit`] writes them to the outbox and commits, all at once.
//!
//! When the consume loop handles several deliveries together (a [`Batch`]), the batch has
//! recorded them in the inbox already, and the handler works in the batch's one transaction
//! (from a savepoint when the batch runs carefully, after a handler failed: a failure then
//! rolls back to it), and the batch commits once for all of them. What must wait for the real commit (refreshing Redis, handing the outbox rows to the
//! relay) is queued with [`Tx::after_commit`] and runs after it, in either case; the work of a
//! handler rolled back to its savepoint never runs.
//!
//! The outbox rows and their relay are [`domain::outbox`]'s, shared with the api's catalog: the
//! relay is handed the rows once they are committed and publishes them with `Nats-Msg-Id` = the
//! event id, in order per correlation, then marks many published in one statement; it looks at
//! the table for rows nobody handed over (a crash, a failed publish, another replica's).

use std::sync::Arc;

use domain::messaging::{Envelope, Message};
use domain::outbox::Row;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

pub use crate::infra::batch::{AfterCommit, Batch};
use crate::infra::consumer::{Failure, Incoming};
use crate::infra::runtime::{Participant, Runtime};

/// A handler's transaction: inbox row written, outbox rows queued.
pub struct Tx {
    conn: Conn,
    participant: Participant,
    /// Events waiting for their outbox rows.
    pending: Vec<Row>,
    replay_of: Option<Uuid>,
    after: Vec<AfterCommit>,
}

/// Where a handler's statements go.
enum Conn {
    /// Its own transaction (a delivery handled alone).
    Own(DatabaseTransaction),
    /// The batch's transaction, from the handler's savepoint on.
    Batch(Arc<Batch>),
}

pub use domain::sql::stmt;

impl Tx {
    /// Opens the transaction of `msg`; `None` when the inbox already has it (then the replay
    /// marker, if any, is still set).
    pub async fn begin(
        rt: &Runtime,
        p: Participant,
        msg: &Incoming,
    ) -> Result<Option<Tx>, Failure> {
        if let Some(batch) = &msg.batch {
            // The batch recorded the message in the inbox (a duplicate never reaches its
            // handler); the handler's work starts at its savepoint.
            batch.begin().await?;
            return Ok(Some(Tx {
                conn: Conn::Batch(batch.clone()),
                participant: p,
                pending: Vec::new(),
                replay_of: msg.replay_of,
                after: Vec::new(),
            }));
        }
        let txn = rt.db.begin().await?;
        // Raw: one code path for every participant's own schema (`{name}.inbox`, chosen at run
        // time), and its ON CONFLICT DO NOTHING is how a duplicate delivery is recognised.
        let inserted = txn
            .execute_raw(stmt(
                format!(
                    "INSERT INTO {}.inbox (message_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    p.name()
                ),
                [msg.envelope.id.into(), msg.kind().to_owned().into()],
            ))
            .await?
            .rows_affected();
        let tx = Tx {
            conn: Conn::Own(txn),
            participant: p,
            pending: Vec::new(),
            replay_of: msg.replay_of,
            after: Vec::new(),
        };
        if inserted == 0 {
            tracing::info!("already handled; nothing to do");
            // Commits nothing but the replay marker, if any.
            tx.commit(rt).await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    /// The transaction the handler's statements go to.
    pub fn db(&self) -> &DatabaseTransaction {
        match &self.conn {
            Conn::Own(txn) => txn,
            Conn::Batch(batch) => &batch.txn,
        }
    }

    /// Answers a delivery that changes nothing whatever the state is (decided from the message
    /// alone): no transaction at all — the inbox only guards deliveries with effects, and a
    /// redelivery decides the same again — except for an admin's replay of a dead letter,
    /// which is marked replayed.
    pub async fn nothing(rt: &Runtime, p: Participant, msg: &Incoming) -> Result<(), Failure> {
        if msg.replay_of.is_none() {
            return Ok(());
        }
        match Tx::begin(rt, p, msg).await? {
            Some(tx) => tx.commit(rt).await,
            None => Ok(()),
        }
    }

    async fn mark_replayed(&self) -> Result<(), Failure> {
        if let Some(id) = self.replay_of {
            crate::infra::batch::mark_replayed(self.db(), self.participant, id).await?;
        }
        Ok(())
    }

    /// Queues `data` as an event caused by `cause` (same correlation, the trace continued).
    pub fn emit<T: Message>(&mut self, data: T, cause: &Incoming) -> Result<(), Failure> {
        let mut env = Envelope::new(data, cause.envelope.correlation_id, cause.envelope.actor);
        env.causation_id = Some(cause.envelope.id);
        env.trace = Some(domain::bus::child_traceparent(cause.trace.as_deref()));
        self.pending.push(row(&env)?);
        Ok(())
    }

    /// Runs `work` once this transaction is committed for good (at once after [`Tx::commit`], or
    /// after the commit of its batch); never if it is not.
    pub fn after_commit(&mut self, work: AfterCommit) {
        self.after.push(work);
    }

    /// Writes the outbox rows, marks a replayed dead letter, commits, hands the rows to the
    /// relay and runs the work deferred with [`Tx::after_commit`] (in a batch: keeps its work in
    /// the batch's transaction and leaves the rest to the batch's commit).
    pub async fn commit(self, rt: &Runtime) -> Result<(), Failure> {
        let name = self.participant.name();
        // Every event of the handler in one statement.
        domain::outbox::insert(self.db(), name, &self.pending).await?;
        self.mark_replayed().await?;
        match self.conn {
            Conn::Batch(batch) => batch.committed(self.after, self.pending),
            Conn::Own(txn) => {
                txn.commit().await?;
                rt.hand_over(self.participant, self.pending);
                for work in self.after {
                    work(rt.clone()).await;
                }
            }
        }
        Ok(())
    }
}

/// Writes `data` to the outbox of `p` in `db` (a transaction of work that no message caused,
/// such as a worker's), as a new event with `correlation_id`; the caller wakes the relay after
/// its commit ([`Runtime::wake_relay`]).
pub async fn enqueue<T: Message>(
    db: &impl ConnectionTrait,
    p: Participant,
    data: T,
    correlation_id: Uuid,
) -> Result<(), Failure> {
    let mut env = Envelope::new(data, correlation_id, None);
    env.trace = Some(domain::bus::new_traceparent());
    domain::outbox::insert(db, p.name(), &[row(&env)?]).await?;
    Ok(())
}

/// The outbox row of `env`; one that cannot be encoded can never be sent.
fn row<T: Message>(env: &Envelope<T>) -> Result<Row, Failure> {
    Row::new(env).map_err(|e| Failure::Poison(format!("encoding {}: {e}", T::TYPE)))
}

/// Publishes the outbox of `p` forever (see [`domain::outbox::relay_handed_over`]): the rows
/// its handlers commit ([`Runtime::hand_over`]), and the table when woken
/// ([`Runtime::wake_relay`]) or every second.
pub async fn relay(rt: Runtime, p: Participant) -> anyhow::Result<()> {
    domain::outbox::relay_handed_over(&rt.db, &rt.bus, p.name(), rt.relay_handoff(p)).await;
    Ok(())
}
