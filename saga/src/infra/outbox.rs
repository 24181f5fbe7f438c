//! The transaction a handler works in, and the relay that publishes the outbox.
//!
//! [`Tx::begin`] opens a transaction and records the message in the participant's inbox
//! (`INSERT … ON CONFLICT DO NOTHING`): if the id is already there the message was handled and
//! the handler does nothing. The handler changes state in the transaction and queues events
//! with [`Tx::emit`]; [`Tx::commit`] writes them to the outbox and commits, all at once.
//!
//! When the consume loop handles several deliveries together (a [`Batch`]), the batch has
//! recorded them in the inbox already, and the handler's transaction is a savepoint of the
//! batch's one transaction: a failure rolls back to it, and the batch commits once for all of
//! them. What must wait for the real commit (refreshing Redis, waking the relay) is queued with
//! [`Tx::after_commit`] and runs after it, in either case.
//!
//! The relay publishes unpublished outbox rows with `Nats-Msg-Id` = the event id and marks them
//! published after JetStream's ack. It starts from the table, so it survives restarts; a crash
//! between the publish and the mark publishes again, which JetStream's duplicate window and the
//! receivers' inboxes make harmless. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
//! replicas of a participant share the work.

use std::sync::Arc;
use std::time::Duration;

use domain::bus::RawMessage;
use domain::messaging::{Envelope, Message};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

pub use crate::infra::batch::{AfterCommit, Batch};
use crate::infra::consumer::{Failure, Incoming};
use crate::infra::runtime::{Participant, Runtime};

/// An event waiting in a transaction for its outbox row.
struct Pending {
    id: Uuid,
    subject: String,
    kind: String,
    correlation_id: Uuid,
    trace: String,
    payload: serde_json::Value,
}

/// A handler's transaction: inbox row written, outbox rows queued.
pub struct Tx {
    conn: Conn,
    participant: Participant,
    pending: Vec<Pending>,
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
        let trace = domain::bus::child_traceparent(cause.trace.as_deref());
        env.trace = Some(trace.clone());
        let payload = serde_json::to_value(&env)
            .map_err(|e| Failure::Poison(format!("encoding {}: {e}", T::TYPE)))?;
        self.pending.push(Pending {
            id: env.id,
            subject: env.subject(),
            kind: env.kind,
            correlation_id: env.correlation_id,
            trace,
            payload,
        });
        Ok(())
    }

    /// Runs `work` once this transaction is committed for good (at once after [`Tx::commit`], or
    /// after the commit of its batch); never if it is not.
    pub fn after_commit(&mut self, work: AfterCommit) {
        self.after.push(work);
    }

    /// Writes the outbox rows, marks a replayed dead letter, commits, wakes the relay and runs
    /// the work deferred with [`Tx::after_commit`] (in a batch: keeps its work in the batch's
    /// transaction and leaves the rest to the batch's commit).
    pub async fn commit(self, rt: &Runtime) -> Result<(), Failure> {
        let name = self.participant.name();
        if !self.pending.is_empty() {
            // Raw: the participant's schema is chosen at run time (one path for all of them);
            // every event of the handler in one statement.
            let mut ids = Vec::with_capacity(self.pending.len());
            let (mut subjects, mut kinds, mut correlations, mut traces, mut payloads) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for ev in &self.pending {
                ids.push(ev.id);
                subjects.push(ev.subject.clone());
                kinds.push(ev.kind.clone());
                correlations.push(ev.correlation_id);
                traces.push(ev.trace.clone());
                payloads.push(ev.payload.to_string());
            }
            let values: [sea_orm::Value; 6] = [
                ids.into(),
                subjects.into(),
                kinds.into(),
                correlations.into(),
                traces.into(),
                payloads.into(),
            ];
            self.db()
                .execute_raw(stmt(
                    format!(
                        "INSERT INTO {name}.outbox (id, subject, kind, correlation_id, trace, payload) \
                         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[]::jsonb[])"
                    ),
                    values,
                ))
                .await?;
        }
        self.mark_replayed().await?;
        let wake = !self.pending.is_empty();
        match self.conn {
            Conn::Batch(batch) => batch.committed(self.after, wake),
            Conn::Own(txn) => {
                txn.commit().await?;
                if wake {
                    rt.wake_relay(self.participant);
                }
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
    let payload = serde_json::to_value(&env)
        .map_err(|e| Failure::Poison(format!("encoding {}: {e}", T::TYPE)))?;
    let values: [sea_orm::Value; 6] = [
        env.id.into(),
        env.subject().into(),
        env.kind.clone().into(),
        env.correlation_id.into(),
        env.trace.clone().into(),
        payload.into(),
    ];
    // Raw: the participant's schema is chosen at run time, as in `Tx::commit`.
    db.execute_raw(stmt(
        format!(
            "INSERT INTO {}.outbox (id, subject, kind, correlation_id, trace, payload) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            p.name()
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Publishes the outbox of `p` forever: at once when woken, otherwise every second. A batch
/// that was not full took every row there was, so the relay waits for the next wake instead of
/// asking again at once (an empty look is a transaction too: one fewer per saga step).
pub async fn relay(rt: Runtime, p: Participant) -> anyhow::Result<()> {
    loop {
        match publish_batch(&rt, p).await {
            Ok(n) if n >= BATCH => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(participant = p.name(), error = %format!("{e:#}"), "outbox relay failed; retrying");
            }
        }
        tokio::select! {
            () = rt.relay_waker(p).notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Rows one relay transaction claims at most.
const BATCH: usize = 200;

/// Publishes up to [`BATCH`] unpublished rows; returns how many.
pub async fn publish_batch(rt: &Runtime, p: Participant) -> anyhow::Result<usize> {
    let name = p.name();
    let txn = rt.db.begin().await?;
    // Raw: FOR UPDATE SKIP LOCKED (replicas share the rows) in a schema chosen at run time.
    let rows = txn
        .query_all_raw(stmt(
            format!(
                "SELECT id, subject, kind, correlation_id, trace, payload::text AS payload FROM {name}.outbox \
                 WHERE published_at IS NULL ORDER BY created_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
            ),
            [],
        ))
        .await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    struct Row {
        id: Uuid,
        subject: String,
        kind: String,
        correlation: String,
        trace: Option<String>,
        payload: String,
    }
    let mut batch = Vec::with_capacity(rows.len());
    for r in rows {
        batch.push(Row {
            id: r.try_get("", "id")?,
            subject: r.try_get("", "subject")?,
            kind: r.try_get("", "kind")?,
            correlation: r.try_get::<Uuid>("", "correlation_id")?.to_string(),
            trace: r.try_get("", "trace")?,
            payload: r.try_get("", "payload")?,
        });
    }
    let ids: Vec<String> = batch.iter().map(|r| r.id.to_string()).collect();
    let publishes = batch.iter().zip(&ids).map(|(r, id)| {
        // Not SQL: publishes the row's already encoded payload to NATS as it is.
        rt.bus.publish_raw(RawMessage {
            subject: &r.subject,
            msg_id: id,
            kind: &r.kind,
            correlation_id: Some(&r.correlation),
            trace: r.trace.as_deref(),
            replay_of: None,
            payload: r.payload.clone().into_bytes(),
        })
    });
    let results = futures::future::join_all(publishes).await;
    let published: Vec<Uuid> = batch
        .iter()
        .zip(&results)
        .filter(|(_, res)| res.is_ok())
        .map(|(r, _)| r.id)
        .collect();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        tracing::warn!(participant = name, error = %e, "some outbox rows were not published");
    }
    if !published.is_empty() {
        // Raw: the rows claimed above, in the participant's schema chosen at run time.
        txn.execute_raw(stmt(
            format!("UPDATE {name}.outbox SET published_at = now() WHERE id = ANY($1)"),
            [published.clone().into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(published.len())
}
