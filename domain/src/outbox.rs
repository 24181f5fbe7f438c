//! The transactional outbox (DESIGN §3), shared by the saga participants (`{participant}.outbox`)
//! and the api (`catalog.outbox`); `server` feature only.
//!
//! An event is written as a row ([`Row`], [`insert`]) in the transaction of the state change it
//! tells of, so both are committed or neither is. A relay publishes the rows with
//! `Nats-Msg-Id` = the event id and marks them published after JetStream's ack. It starts from
//! the table, so it survives restarts; a crash between the publish and the mark publishes again,
//! which JetStream's duplicate window (and the receivers' inboxes beyond it) make harmless.
//!
//! Two relays share this module. [`relay`] (the api's) looks at the table whenever it is woken:
//! each look is a transaction that claims, publishes and marks. [`relay_handed_over`] (the
//! participants') is handed the rows its own process committed ([`Handoff`]) and publishes them
//! at once, without reading the table; it marks what it published in one statement for many
//! rows (when no row came for [`MARK_IDLE`], at the latest after [`MARK_EVERY`]), and looks at
//! the table only every [`POLL`] for rows nobody handed over (written by a process that died
//! before publishing them, by a replica that has not published them for [`GRACE`], or by code
//! that only woke it), and at once after a publish failed. Under load a saga step then costs no
//! transaction of the relay at all.
//!
//! Order: rows are published in the order they were written (`created_at` is the clock at the
//! insert, which comes after the locks that order the changes of one aggregate, then the id), and
//! the rows of one correlation id one after the other: a row whose publish failed holds back the
//! later rows of its correlation until it is published. Several relays (replicas) share the work:
//! a look claims a batch with `FOR UPDATE SKIP LOCKED` and leaves out a row while an earlier row
//! of its correlation, claimed by another relay, is not published yet. Rows handed over are
//! published in their commit order per correlation; after a failed publish the handed-over rows
//! wait for a look at the table, which publishes the failed row first. Between replicas, a row
//! handed over in one process does not wait for an earlier row of its correlation that another
//! process wrote and has not published yet (that process died, or its publish failed): the
//! receivers take events in any order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::bus::{Bus, RawMessage};
use crate::messaging::{Envelope, Message};
use crate::sql::stmt;

/// Rows one relay transaction claims at most.
pub const BATCH: usize = 200;

/// How long a relay that was not woken waits before it looks again.
pub const POLL: Duration = Duration::from_secs(1);

/// How old an unpublished row must be before [`relay_handed_over`]'s periodic look takes it: the
/// process that wrote it has published it by then, or failed to (a replica marks what it
/// published within [`MARK_EVERY`]).
pub const GRACE: Duration = Duration::from_secs(3);

/// Longest time [`relay_handed_over`] keeps published rows unmarked while rows keep coming.
pub const MARK_EVERY: Duration = Duration::from_secs(1);

/// How long [`relay_handed_over`] waits for more rows before it marks what it published.
pub const MARK_IDLE: Duration = Duration::from_millis(100);

/// Most published rows [`relay_handed_over`] keeps unmarked.
pub const MARK_MAX: usize = 2_000;

/// Most rows waiting in a [`Handoff`]; beyond that the table has them, and a look takes them.
pub const HANDOFF_MAX: usize = 10_000;

/// An event on its way to an outbox: the encoded envelope and what its publish needs.
#[derive(Clone, Debug)]
pub struct Row {
    pub id: Uuid,
    pub subject: String,
    pub kind: String,
    pub correlation_id: Uuid,
    pub trace: Option<String>,
    /// The envelope as JSON text (encoded once: stored, and published as it is).
    pub payload: String,
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
            payload: serde_json::to_string(envelope)?,
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
        payloads.push(row.payload.clone());
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
        match look(db, bus, schema, &[], None).await {
            // Full and all published: there may be more.
            Ok(n) if n.claimed >= BATCH && n.published == n.claimed => continue,
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

/// What the writers of an outbox in one process tell its relay ([`relay_handed_over`]): the
/// rows they committed, or that they committed rows without handing them over.
#[derive(Debug, Default)]
pub struct Handoff {
    rows: Mutex<Vec<Row>>,
    /// Rows were committed that were not handed over: look at the table.
    look: AtomicBool,
    notify: Notify,
}

impl Handoff {
    /// Hands over `rows`, just committed, in the order they were written.
    pub fn committed(&self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        {
            let mut waiting = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
            if waiting.len() + rows.len() <= HANDOFF_MAX {
                waiting.extend(rows);
            } else {
                // The relay is far behind: these wait in the table for its next look.
                self.look.store(true, Ordering::SeqCst);
            }
        }
        self.notify.notify_one();
    }

    /// Rows were committed without being handed over: the relay looks at the table at once.
    pub fn wake(&self) {
        self.look.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<Row> {
        std::mem::take(&mut *self.rows.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Publishes `{schema}.outbox` forever from the rows `handoff` is given (see the module's doc):
/// each at once after its commit, marked published with many others in one statement, and the
/// table looked at every [`POLL`] (rows older than [`GRACE`]) and at once at the start, after
/// [`Handoff::wake`] and after a failed publish (every row).
pub async fn relay_handed_over(
    db: &DatabaseConnection,
    bus: &Bus,
    schema: &str,
    handoff: &Handoff,
) {
    // Published, not yet marked; since when the oldest of them waits.
    let mut unmarked: Vec<Uuid> = Vec::new();
    let mut unmarked_since: Option<Instant> = None;
    let mut last_rows = Instant::now();
    // No mark before this (after one failed: the database is down or restarting).
    let mut mark_retry = Instant::now();
    // The next look at the table, and whether it takes every row (at the start: rows left by a
    // crash; after a failed publish: the handed-over rows wait for it, it keeps their order).
    let mut look_at = Instant::now();
    let mut look_all = true;
    loop {
        // The rows first, then the flag: a row committed before a wake is in the table when the
        // look it asks for runs, and is not published ahead of it from here.
        let rows = handoff.take();
        if handoff.look.swap(false, Ordering::SeqCst) {
            look_all = true;
            look_at = Instant::now();
        }
        if !rows.is_empty() {
            last_rows = Instant::now();
            // While a look at every row is due, the table has these too.
            if !look_all {
                let (published, complete) = publish_rows(bus, schema, &rows).await;
                if !published.is_empty() {
                    unmarked_since.get_or_insert_with(Instant::now);
                    unmarked.extend(published);
                }
                if !complete {
                    look_all = true;
                    look_at = Instant::now();
                }
            }
        }
        let now = Instant::now();
        if now >= look_at {
            let grace = if look_all { None } else { Some(GRACE) };
            match look(db, bus, schema, &unmarked, grace).await {
                Ok(looked) => {
                    unmarked.clear();
                    unmarked_since = None;
                    look_at = if looked.published < looked.claimed {
                        // A publish failed: every row again, after a pause.
                        Instant::now() + POLL
                    } else if looked.claimed >= BATCH {
                        // More to take.
                        Instant::now()
                    } else {
                        look_all = false;
                        Instant::now() + POLL
                    };
                }
                Err(e) => {
                    tracing::warn!(outbox = schema, error = %e, "outbox relay failed; retrying");
                    look_at = Instant::now() + POLL;
                    mark_retry = look_at;
                }
            }
        } else if mark_due(unmarked.len(), unmarked_since, last_rows, mark_retry)
            .is_some_and(|at| at <= now)
        {
            match mark_published(db, schema, &unmarked).await {
                Ok(()) => {
                    unmarked.clear();
                    unmarked_since = None;
                }
                Err(e) => {
                    // Kept, and marked later; published again by another relay meanwhile at
                    // worst (a duplicate JetStream drops).
                    tracing::warn!(outbox = schema, error = %e, "marking outbox rows published failed; retrying");
                    mark_retry = Instant::now() + POLL;
                }
            }
        }
        let wake_at = mark_due(unmarked.len(), unmarked_since, last_rows, mark_retry)
            .map_or(look_at, |at| at.min(look_at));
        tokio::select! {
            () = handoff.notify.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }
}

/// When `unmarked` published rows, the oldest waiting `since`, are to be marked: once no row
/// came for [`MARK_IDLE`] after `last_rows`, [`MARK_EVERY`] after `since` at the latest, at once
/// when [`MARK_MAX`] wait; never before `retry`.
fn mark_due(
    unmarked: usize,
    since: Option<Instant>,
    last_rows: Instant,
    retry: Instant,
) -> Option<Instant> {
    let since = since?;
    let at = if unmarked >= MARK_MAX {
        since
    } else {
        (since + MARK_EVERY).min(last_rows + MARK_IDLE)
    };
    Some(at.max(retry))
}

/// Publishes `rows` (handed over, in commit order; see [`publish_in_order`]). Returns the ids
/// published, and whether every row was.
async fn publish_rows(bus: &Bus, schema: &str, rows: &[Row]) -> (Vec<Uuid>, bool) {
    let outgoing: Vec<Outgoing<'_>> = rows.iter().map(Row::outgoing).collect();
    let published = publish_in_order(bus, schema, &outgoing).await;
    let complete = published.len() == rows.len();
    (published, complete)
}

/// Publishes `rows`: one group per correlation, the groups at once; within one, each row
/// after the one before was acknowledged, and none after one that failed. Returns the ids
/// published.
async fn publish_in_order(bus: &Bus, schema: &str, rows: &[Outgoing<'_>]) -> Vec<Uuid> {
    let mut groups: Vec<Vec<&Outgoing<'_>>> = Vec::new();
    let mut group_of: HashMap<Uuid, usize> = HashMap::new();
    for row in rows {
        let g = *group_of.entry(row.correlation_id).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(row);
    }
    let publishes = groups.iter().map(|group| async move {
        let mut published = Vec::with_capacity(group.len());
        for r in group {
            if !publish_one(bus, schema, r).await {
                break;
            }
            published.push(r.id);
        }
        published
    });
    futures::future::join_all(publishes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// A row as it is published.
impl Row {
    /// The row as it goes out.
    fn outgoing(&self) -> Outgoing<'_> {
        Outgoing {
            id: self.id,
            subject: &self.subject,
            kind: &self.kind,
            correlation_id: self.correlation_id,
            trace: self.trace.as_deref(),
            payload: self.payload.as_bytes(),
        }
    }
}

struct Outgoing<'a> {
    id: Uuid,
    subject: &'a str,
    kind: &'a str,
    correlation_id: Uuid,
    trace: Option<&'a str>,
    payload: &'a [u8],
}

/// Publishes one row and waits for JetStream's ack; whether it was stored.
async fn publish_one(bus: &Bus, schema: &str, r: &Outgoing<'_>) -> bool {
    let id = r.id.to_string();
    let correlation = r.correlation_id.to_string();
    // Not SQL: publishes the row's already encoded payload to NATS as it is.
    let sent = bus
        .publish_raw(RawMessage {
            subject: r.subject,
            msg_id: &id,
            kind: r.kind,
            correlation_id: Some(&correlation),
            trace: r.trace,
            replay_of: None,
            payload: r.payload.to_vec(),
        })
        .await;
    if let Err(e) = &sent {
        tracing::warn!(outbox = schema, message.id = %r.id, error = %e, "an outbox row was not published; the later ones of its correlation wait");
    }
    sent.is_ok()
}

/// Marks `ids` of `{schema}.outbox` published (one statement, its own transaction).
async fn mark_published(
    db: &impl ConnectionTrait,
    schema: &str,
    ids: &[Uuid],
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    // Raw: the schema is chosen at run time. A row another relay marked keeps its time.
    db.execute_raw(stmt(
        format!(
            "UPDATE {schema}.outbox SET published_at = now() WHERE id = ANY($1) AND published_at IS NULL"
        ),
        [ids.to_vec().into()],
    ))
    .await?;
    Ok(())
}

/// What a look at the table did.
#[derive(Clone, Copy, Debug)]
struct Looked {
    /// Rows it claimed and was free to publish.
    claimed: usize,
    published: usize,
}

/// Publishes up to [`BATCH`] unpublished rows of `{schema}.outbox` (see the module's doc for
/// their order) and marks them published; returns how many.
pub async fn publish_batch(
    db: &DatabaseConnection,
    bus: &Bus,
    schema: &str,
) -> Result<usize, DbErr> {
    Ok(look(db, bus, schema, &[], None).await?.published)
}

/// One look at `{schema}.outbox`, in one transaction: marks `published` (rows this relay
/// published already), then claims up to [`BATCH`] unpublished rows (only those older than
/// `grace`, if given), publishes them and marks them.
async fn look(
    db: &DatabaseConnection,
    bus: &Bus,
    schema: &str,
    published: &[Uuid],
    grace: Option<Duration>,
) -> Result<Looked, DbErr> {
    let txn = db.begin().await?;
    mark_published(&txn, schema, published).await?;
    let older = grace.map_or(String::new(), |g| {
        format!(
            "AND created_at < now() - interval '{} milliseconds' ",
            g.as_millis()
        )
    });
    // Raw: FOR UPDATE SKIP LOCKED (replicas share the rows) in a schema chosen at run time. A
    // claimed row is left out while an earlier row of its correlation is unpublished and not
    // claimed here (another relay holds it): it must not overtake that one.
    let rows = txn
        .query_all_raw(stmt(
            format!(
                "WITH claimed AS MATERIALIZED ( \
                     SELECT id, subject, kind, correlation_id, trace, payload::text AS payload, created_at \
                     FROM {schema}.outbox WHERE published_at IS NULL {older}\
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
        return Ok(Looked {
            claimed: 0,
            published: 0,
        });
    }
    let claimed = rows.len();
    // A claimed row is a row as it was written.
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|r| {
            Ok(Row {
                id: r.try_get("", "id")?,
                subject: r.try_get("", "subject")?,
                kind: r.try_get("", "kind")?,
                correlation_id: r.try_get("", "correlation_id")?,
                trace: r.try_get("", "trace")?,
                payload: r.try_get("", "payload")?,
            })
        })
        .collect::<Result<_, DbErr>>()?;
    let outgoing: Vec<Outgoing<'_>> = rows.iter().map(Row::outgoing).collect();
    let published = publish_in_order(bus, schema, &outgoing).await;
    mark_published(&txn, schema, &published).await?;
    txn.commit().await?;
    Ok(Looked {
        claimed,
        published: published.len(),
    })
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
