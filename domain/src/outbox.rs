//! The transactional outbox (DESIGN §3), shared by the saga participants (`{participant}.outbox`)
//! and the api (`catalog.outbox`); `server` feature only.
//!
//! An event is written as a row ([`Row`], [`insert`]) in the transaction of the state change it
//! tells of, so both are committed or neither is. A relay ([`relay`]) publishes the rows with
//! `Nats-Msg-Id` = the event id and marks them published after JetStream's ack. It starts from
//! the table, so it survives restarts; a crash between the publish and the mark publishes again,
//! which JetStream's duplicate window (and the receivers' inboxes beyond it) make harmless.
//!
//! Order: rows are published in the order they were written (`created_at` is the clock at the
//! insert, which comes after the locks that order the changes of one aggregate, then the id), and
//! the rows of one correlation id one after the other: a row whose publish failed holds back the
//! later rows of its correlation until it is published. Several relays (replicas) share the work:
//! each claims a batch with `FOR UPDATE SKIP LOCKED` and leaves out a row while an earlier row of
//! its correlation, claimed by another relay, is not published yet.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::bus::{Bus, RawMessage};
use crate::messaging::{Envelope, Message};
use crate::sql::stmt;

/// Rows one relay transaction claims at most.
pub const BATCH: usize = 200;

/// How long a relay that was not woken waits before it looks again.
pub const POLL: Duration = Duration::from_secs(1);

/// An event on its way to an outbox: the encoded envelope and what its publish needs.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: Uuid,
    pub subject: String,
    pub kind: String,
    pub correlation_id: Uuid,
    pub trace: Option<String>,
    pub payload: serde_json::Value,
}

impl Row {
    /// The row of `envelope` (its id, subject, type, correlation and trace as they are).
    pub fn new<T: Message>(envelope: &Envelope<T>) -> Result<Row, serde_json::Error> {
        Ok(Row {
            id: envelope.id,
            subject: envelope.subject(),
            kind: envelope.kind.clone(),
            correlation_id: envelope.correlation_id,
            trace: envelope.trace.clone(),
            payload: serde_json::to_value(envelope)?,
        })
    }
}

/// Writes `rows` to `{schema}.outbox` in `db`, the transaction of the change they tell of, in
/// that order; the caller wakes its relay after the commit.
pub async fn insert(db: &impl ConnectionTrait, schema: &str, rows: &[Row]) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let (mut subjects, mut kinds, mut correlations, mut traces, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in rows {
        ids.push(row.id);
        subjects.push(row.subject.clone());
        kinds.push(row.kind.clone());
        correlations.push(row.correlation_id);
        // '' stands for no trace (NULL in the table).
        traces.push(row.trace.clone().unwrap_or_default());
        payloads.push(row.payload.to_string());
    }
    let values: [sea_orm::Value; 6] = [
        ids.into(),
        subjects.into(),
        kinds.into(),
        correlations.into(),
        traces.into(),
        payloads.into(),
    ];
    // Raw: the schema is chosen at run time (one path for every outbox), all rows in one
    // statement. `clock_timestamp()`, not the transaction's start: the row's place in the
    // relay's order is when it was written, after the locks its transaction waited for.
    db.execute_raw(stmt(
        format!(
            "INSERT INTO {schema}.outbox (id, subject, kind, correlation_id, trace, payload, created_at) \
             SELECT id, subject, kind, correlation_id, NULLIF(trace, ''), payload, clock_timestamp() \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[]::jsonb[]) \
                  AS r (id, subject, kind, correlation_id, trace, payload)"
        ),
        values,
    ))
    .await?;
    Ok(())
}

/// Publishes `{schema}.outbox` forever: at once when `waker` is notified, otherwise every
/// [`POLL`]. A batch that was not full took every row there was, so the relay waits for the
/// next wake instead of asking again at once (an empty look is a transaction too).
pub async fn relay(db: &DatabaseConnection, bus: &Bus, schema: &str, waker: &Notify) {
    loop {
        match publish_batch(db, bus, schema).await {
            Ok(n) if n >= BATCH => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(outbox = schema, error = %e, "outbox relay failed; retrying");
            }
        }
        tokio::select! {
            () = waker.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A claimed row, as the relay publishes it.
struct Claimed {
    id: Uuid,
    subject: String,
    kind: String,
    correlation_id: Uuid,
    trace: Option<String>,
    payload: String,
}

/// Publishes up to [`BATCH`] unpublished rows of `{schema}.outbox` (see the module's doc for
/// their order) and marks them published; returns how many.
pub async fn publish_batch(
    db: &DatabaseConnection,
    bus: &Bus,
    schema: &str,
) -> Result<usize, DbErr> {
    let txn = db.begin().await?;
    // Raw: FOR UPDATE SKIP LOCKED (replicas share the rows) in a schema chosen at run time. A
    // claimed row is left out while an earlier row of its correlation is unpublished and not
    // claimed here (another relay holds it): it must not overtake that one.
    let rows = txn
        .query_all_raw(stmt(
            format!(
                "WITH claimed AS MATERIALIZED ( \
                     SELECT id, subject, kind, correlation_id, trace, payload::text AS payload, created_at \
                     FROM {schema}.outbox WHERE published_at IS NULL \
                     ORDER BY created_at, id LIMIT {BATCH} FOR UPDATE SKIP LOCKED) \
                 SELECT c.id, c.subject, c.kind, c.correlation_id, c.trace, c.payload FROM claimed c \
                 WHERE NOT EXISTS ( \
                     SELECT 1 FROM {schema}.outbox e \
                     WHERE e.correlation_id = c.correlation_id AND e.published_at IS NULL \
                       AND (e.created_at, e.id) < (c.created_at, c.id) \
                       AND e.id NOT IN (SELECT id FROM claimed)) \
                 ORDER BY c.created_at, c.id"
            ),
            [],
        ))
        .await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    // One group per correlation, each in the order of the table.
    let mut groups: Vec<Vec<Claimed>> = Vec::new();
    let mut group_of: HashMap<Uuid, usize> = HashMap::new();
    for r in rows {
        let row = Claimed {
            id: r.try_get("", "id")?,
            subject: r.try_get("", "subject")?,
            kind: r.try_get("", "kind")?,
            correlation_id: r.try_get("", "correlation_id")?,
            trace: r.try_get("", "trace")?,
            payload: r.try_get("", "payload")?,
        };
        let g = *group_of.entry(row.correlation_id).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(row);
    }
    // The groups at once; within one, each row after the one before was acknowledged, and none
    // after one that failed.
    let publishes = groups.iter().map(|group| async move {
        let mut published = Vec::with_capacity(group.len());
        for r in group {
            let id = r.id.to_string();
            let correlation = r.correlation_id.to_string();
            // Not SQL: publishes the row's already encoded payload to NATS as it is.
            let sent = bus
                .publish_raw(RawMessage {
                    subject: &r.subject,
                    msg_id: &id,
                    kind: &r.kind,
                    correlation_id: Some(&correlation),
                    trace: r.trace.as_deref(),
                    replay_of: None,
                    payload: r.payload.clone().into_bytes(),
                })
                .await;
            if let Err(e) = sent {
                tracing::warn!(outbox = schema, message.id = %r.id, error = %e, "an outbox row was not published; the later ones of its correlation wait");
                break;
            }
            published.push(r.id);
        }
        published
    });
    let published: Vec<Uuid> = futures::future::join_all(publishes)
        .await
        .into_iter()
        .flatten()
        .collect();
    if !published.is_empty() {
        // Raw: the rows claimed above, in the schema chosen at run time.
        txn.execute_raw(stmt(
            format!("UPDATE {schema}.outbox SET published_at = now() WHERE id = ANY($1)"),
            [published.clone().into()],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(published.len())
}

/// Sets `store_outbox_backlog` and `store_outbox_oldest_seconds` of `{schema}.outbox` (label
/// `participant` = the schema: a participant, or `catalog` for the api's).
pub async fn sample(db: &impl ConnectionTrait, schema: &str) -> Result<(), DbErr> {
    let row = db
        .query_one_raw(stmt(
            format!(
                "SELECT count(*)::float8 AS backlog, \
                        coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS lag \
                 FROM {schema}.outbox WHERE published_at IS NULL"
            ),
            [],
        ))
        .await?;
    if let Some(row) = row {
        let backlog: f64 = row.try_get("", "backlog")?;
        let lag: f64 = row.try_get("", "lag")?;
        let schema = schema.to_owned();
        metrics::gauge!("store_outbox_backlog", "participant" => schema.clone()).set(backlog);
        metrics::gauge!("store_outbox_oldest_seconds", "participant" => schema).set(lag);
    }
    Ok(())
}
