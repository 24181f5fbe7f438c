//! The consume loop of a participant.
//!
//! Each participant has one durable pull consumer per subject it listens to (NATS 2.9 allows one
//! filter subject per consumer), explicit ack, no limit on deliveries at JetStream (a message is
//! never dropped because its attempts ran out). For each message:
//!
//! - it decodes the envelope; a message that does not decode is *poison*: it goes to the
//!   participant's `dead_letter` table at once and is terminated (`term`);
//! - the handler runs; it records the message id in the inbox, changes state and writes its
//!   outbox in one transaction (see [`crate::infra::outbox::Tx`]); a message already in the inbox is
//!   acknowledged without effect. While it runs, a progress ack every half ack wait keeps
//!   JetStream from delivering it again, so the ack wait stays short and a message in flight at
//!   a crash comes back within seconds;
//! - a failure of the infrastructure ([`Failure::Unavailable`]: PostgreSQL down or restarting)
//!   is `nak`ed with an exponential delay for as long as it lasts;
//! - any other transient failure is `nak`ed the same way until `max_deliver` deliveries; then
//!   it goes to the dead letters. If even that insert fails, the message is `nak`ed and tried
//!   again later: nothing is lost silently;
//! - the ack comes after the commit. A crash between the two redelivers the message, which the
//!   inbox then turns into a no-op;
//! - every consumer of a participant hands each delivery to one of the participant's lanes,
//!   chosen by the account it concerns (see `Lanes`): the deliveries of one account never
//!   meet in two batches at once;
//! - deliveries that are waiting together in a lane (up to [`crate::Settings::batch_max`]) are
//!   handled one after the other in one transaction and committed once: under load a saga step
//!   costs a fraction of a commit. The batch records them all in the inbox with one statement
//!   and runs the handlers without savepoints; when one fails after it wrote, the batch is
//!   rolled back and runs again with a savepoint before each handler that writes
//!   ([`crate::infra::batch`]). A handler that fails there rolls back to its savepoint, leaves
//!   the inbox and is answered on its own; one that
//!   would wait for a row another transaction holds gives up at once (`lock_timeout`) and is
//!   handled alone after the batch's commit, so batches never wait on each other nor deadlock;
//!   if the commit fails, every delivery of the batch is tried again. A delivery that arrives
//!   alone is handled alone, at once;
//! - a consumer that disappears (deleted by hand, lost with its stream) is created again, and
//!   the participant is not ready (`/readyz`) while it is missing.

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{AckKind, Message as JsMessage, consumer};
use domain::bus::{REPLAY_OF_HEADER, TRACEPARENT_HEADER};
use domain::messaging::Envelope;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use uuid::Uuid;

use crate::infra::batch::{Batch, Progress};
use crate::infra::metrics::Outcome;
use crate::infra::runtime::{Participant, Runtime};

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The infrastructure failed, not the message (PostgreSQL unreachable or restarting, the
    /// pool exhausted): redelivered with backoff for as long as it takes, never dead-lettered.
    #[error("unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The transaction lost to another over a row (a deadlock, a serialization conflict, a
    /// lock it may not wait for in a batch): tried again, alone, never dead-lettered.
    #[error("contended: {0:#}")]
    Contended(anyhow::Error),
    /// May succeed later (a statement failed, the payment provider erred, an order not visible
    /// yet): redelivered with backoff, dead-lettered after `max_deliver` deliveries.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Can never succeed (malformed, unknown type, broken invariant): dead-lettered at once.
    #[error("poison: {0}")]
    Poison(String),
}

impl From<sea_orm::DbErr> for Failure {
    fn from(e: sea_orm::DbErr) -> Failure {
        if unreachable(&e) {
            Failure::Unavailable(e.into())
        } else if contended(&e) {
            Failure::Contended(e.into())
        } else {
            Failure::Transient(e.into())
        }
    }
}

/// Whether a database error says that PostgreSQL could not be reached or is going away (the
/// connection, the pool, SQLSTATE class 08 "connection exception", 57P01–57P03 "shutting down
/// or starting up", 53300 "too many connections"), rather than that a statement failed.
pub fn unreachable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => s,
        _ => return false,
    };
    match &**sqlx {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Whether a statement lost to another transaction (SQLSTATE 40P01 deadlock, 40001
/// serialization failure, 55P03 a lock not granted within `lock_timeout`): nothing is wrong
/// with the message, and trying again succeeds.
pub fn contended(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(s)) | DbErr::Query(RuntimeErr::SqlxError(s)) => s
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| matches!(&*code, "40P01" | "40001" | "55P03")),
        _ => false,
    }
}

/// A message as a handler sees it.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// Subject without the deployment prefix.
    pub subject: String,
    pub envelope: Envelope<serde_json::Value>,
    /// 1 for the first delivery.
    pub delivered: i64,
    /// No further delivery will follow a transient failure.
    pub last_attempt: bool,
    /// The dead letter this message replays, if it is a replay.
    pub replay_of: Option<Uuid>,
    /// `traceparent` of the sender.
    pub trace: Option<String>,
    /// The transaction this delivery shares with others handled together (see
    /// [`crate::infra::outbox::Batch`]); `None` when it is handled alone.
    pub(crate) batch: Option<std::sync::Arc<Batch>>,
}

impl Incoming {
    /// The envelope's data as `T`; a mismatch is poison.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        // From the tree in place: a handler's decode copies nothing it does not keep.
        T::deserialize(&self.envelope.data).map_err(|e| {
            Failure::Poison(format!("the data of {} does not decode: {e}", self.kind()))
        })
    }

    pub fn kind(&self) -> &str {
        &self.envelope.kind
    }
}

/// How a participant handles a message (its `handle`, boxed).
pub type Handler = for<'a> fn(
    &'a Runtime,
    &'a Incoming,
) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// What a participant registers with the consume loop: who it is, the events it reacts to and
/// its handler. Each participant module declares its own (`REGISTRATION`), so this loop names
/// none of them; the crate root maps a [`Participant`] to its registration.
pub struct Registration {
    pub participant: Participant,
    /// The events it listens to, without prefix and without `evt.`
    /// (`"billing.payment_captured"`); its commands (`cmd.<name>.>`) always come too.
    pub events: &'static [&'static str],
    pub handle: Handler,
}

impl Registration {
    /// The subjects (without prefix) it consumes: (stream, filter subject).
    pub fn subscriptions(&self) -> Vec<(&'static str, String)> {
        let cmd = ("CMD", format!("cmd.{}.>", self.participant.name()));
        let events = self.events.iter().map(|e| ("EVT", format!("evt.{e}.>")));
        std::iter::once(cmd).chain(events).collect()
    }
}

/// Durable consumer name: the participant and its subject (`ordering-evt_billing_payment_captured`).
fn durable_name(p: Participant, subject: &str) -> String {
    let s: String = subject
        .trim_end_matches(".>")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}-{s}", p.name())
}

type Task = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Creates (or updates) the consumers of a participant (anything that names its
/// registration, a [`Participant`] included) and returns their loops.
pub async fn start(
    rt: &Runtime,
    participant: impl Into<&'static Registration>,
) -> anyhow::Result<Vec<Task>> {
    let reg: &'static Registration = participant.into();
    let p = reg.participant;
    let (lanes, lane_loops) = Lanes::new(rt, reg);
    let mut tasks: Vec<Task> = Vec::new();
    for (stream, subject) in reg.subscriptions() {
        let events = stream == "EVT";
        let stream_name = rt.bus.stream_name(stream);
        let js_stream = rt
            .bus
            .jetstream()
            .get_stream(&stream_name)
            .await
            .with_context(|| format!("opening stream {stream_name}"))?;
        let name = durable_name(p, &subject);
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: rt.bus.subject(&subject),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: rt.settings.ack_wait,
            // Unlimited: `process` decides what goes to the dead letters; JetStream never drops
            // a message because its attempts ran out.
            max_deliver: -1,
            max_ack_pending: 1000,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        };
        // Created (or brought up to date) before returning: nothing published after `start`
        // is missed.
        let consumer = ensure_consumer(rt, &js_stream, events, config.clone())
            .await
            .with_context(|| format!("creating consumer {name}"))?;
        let rt = rt.clone();
        tasks.push(Box::pin(consume(
            rt,
            lanes.clone(),
            js_stream,
            events,
            config,
            consumer,
        )));
    }
    // The lanes run with the first consumer's loop (one task per consumer); like it, they never
    // end while the process runs.
    if let Some(first) = tasks.first_mut() {
        let consumer = std::mem::replace(first, Box::pin(async { Ok(()) }));
        *first = Box::pin(async move {
            tokio::select! {
                out = consumer => out,
                () = lane_loops => Err(anyhow::anyhow!("the lanes of {} stopped", p.name())),
            }
        });
    }
    Ok(tasks)
}

/// A delivery received and decoded, on its way to a lane.
type Delivery = (JsMessage, Incoming);

/// The lanes of a participant in this process: every consumer of the participant hands each
/// delivery to the lane of the account it concerns ([`lane_key`]), and each lane handles what
/// it was handed in batches, one batch after the other ([`crate::Settings::concurrency`] lanes,
/// so as many batches at once). Deliveries of one account never meet in two batches at once:
/// they do not wait for each other's row locks (a wallet, an order) nor lose them and go alone;
/// and the deliveries of every subject of a participant share its batches (fewer commits).
#[derive(Clone)]
struct Lanes {
    participant: Participant,
    senders: std::sync::Arc<[tokio::sync::mpsc::Sender<Delivery>]>,
}

impl Lanes {
    /// The lanes of `reg`, and the future that runs them.
    fn new(
        rt: &Runtime,
        reg: &'static Registration,
    ) -> (Lanes, futures::future::BoxFuture<'static, ()>) {
        let batch_max = rt.settings.batch_max.max(1);
        let (senders, loops): (Vec<_>, Vec<_>) = (0..rt.settings.concurrency.max(1))
            .map(|_| {
                // Room for the next batch while one is handled: a lane that is behind makes the
                // consumer wait (and JetStream keeps the rest).
                let (tx, rx) = tokio::sync::mpsc::channel(batch_max * 2);
                (tx, lane(rt.clone(), reg, rx))
            })
            .unzip();
        let run = futures::future::join_all(loops);
        (
            Lanes {
                participant: reg.participant,
                senders: senders.into(),
            },
            Box::pin(async move {
                run.await;
            }),
        )
    }

    /// Hands `delivery` to its lane; waits while that lane is full.
    async fn hand(&self, delivery: Delivery) {
        let key = lane_key(&delivery.1.envelope);
        let n = u64::try_from(self.senders.len()).unwrap_or(1).max(1);
        let i = usize::try_from(hash(key) % n).unwrap_or(0);
        if let Some(lane) = self.senders.get(i)
            && lane.send(delivery).await.is_err()
        {
            // Only when the lanes stopped, and then the process stops: redelivered later.
            tracing::warn!("a lane is closed; the delivery waits for its redelivery");
        }
    }
}

/// What a delivery's lane is chosen by: the account it concerns (`account_id` of its data: a
/// wallet, a library, the orders of a buyer), else who sent it, else its correlation (the
/// order). Only a hint for spreading the work: a delivery in another lane than a row's other
/// writers still waits for that row's lock or, in a batch, goes alone.
fn lane_key(envelope: &Envelope<serde_json::Value>) -> Uuid {
    envelope
        .data
        .get("account_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse().ok())
        .or(envelope.actor)
        .unwrap_or(envelope.correlation_id)
}

fn hash(id: Uuid) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// One lane: whatever waits in it when it is free, up to [`crate::Settings::batch_max`]
/// deliveries, as one batch (one delivery when the store is quiet, many under load).
async fn lane(
    rt: Runtime,
    reg: &'static Registration,
    mut rx: tokio::sync::mpsc::Receiver<Delivery>,
) {
    let batch_max = rt.settings.batch_max.max(1);
    while let Some(first) = rx.recv().await {
        let mut items = vec![first];
        while items.len() < batch_max {
            match rx.try_recv() {
                Ok(next) => items.push(next),
                Err(_) => break,
            }
        }
        process_batch(&rt, reg, items).await;
    }
}

/// Opens the consumer `config` names, creating it if it does not exist and bringing its
/// settings (`ack_wait`, `max_deliver`) up to date if it does. A new consumer of events starts
/// [`crate::Settings::new_consumer_backlog`] back in time, not at the stream's first event: a
/// consumer added or renamed a year into production must not replay the year.
///
/// Replicas of a participant that start together may all find the consumer missing and all
/// create it. The server takes the first create; it refuses the others when their start time
/// differs ("start time can not be updated", 10012). A replica whose create is refused looks
/// again and, finding the consumer now there, opens it; it fails only if there is still none.
async fn ensure_consumer(
    rt: &Runtime,
    stream: &Stream,
    events: bool,
    config: consumer::pull::Config,
) -> anyhow::Result<PullConsumer> {
    let name = config.durable_name.clone().unwrap_or_default();
    match stream.consumer_info(&name).await {
        Ok(info) => open_existing(rt, stream, info, config).await,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {
            let mut new = config.clone();
            if events {
                let back = time::Duration::try_from(rt.settings.new_consumer_backlog)
                    .unwrap_or(time::Duration::DAY);
                new.deliver_policy = consumer::DeliverPolicy::ByStartTime {
                    start_time: time::OffsetDateTime::now_utc() - back,
                };
            }
            tracing::info!(consumer = %name, "creating the consumer");
            match stream.create_consumer(new).await {
                Ok(created) => Ok(created),
                Err(refused) => match stream.consumer_info(&name).await {
                    Ok(info) => {
                        tracing::info!(consumer = %name, error = %refused, "another process created the consumer first; using it");
                        open_existing(rt, stream, info, config).await
                    }
                    Err(_) => Err(refused.into()),
                },
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the existing consumer `info` describes, first bringing its settings up to those of
/// `config` (all but its start position, which cannot change).
async fn open_existing(
    rt: &Runtime,
    stream: &Stream,
    info: consumer::Info,
    mut config: consumer::pull::Config,
) -> anyhow::Result<PullConsumer> {
    let name = info.name.clone();
    config.deliver_policy = info.config.deliver_policy;
    if info.config.ack_wait != config.ack_wait || info.config.max_deliver != config.max_deliver {
        // A server that refuses the change leaves the old settings: the consumer still works,
        // so this is a warning, not a reason to stop.
        if let Err(e) = rt
            .bus
            .jetstream()
            .update_consumer_on_stream(config, &info.stream_name)
            .await
        {
            tracing::warn!(consumer = %name, error = %e, "could not update the consumer");
        }
    }
    stream
        .get_consumer(&name)
        .await
        .map_err(|e| anyhow::anyhow!("opening consumer {name}: {e}"))
}

type Stream = async_nats::jetstream::stream::Stream;
type PullConsumer = consumer::Consumer<consumer::pull::Config>;

/// Whether the consumer is still on the server. Any answer but "not found" counts as present:
/// the server may be busy, and the pull loop reports its own errors.
async fn consumer_exists(stream: &Stream, name: &str) -> bool {
    match stream.consumer_info(name).await {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound
        ),
    }
}

/// How often the consume loop checks that its consumer still exists.
const CONSUMER_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Pulls and handles the consumer's messages for ever. When the consumer disappears (deleted
/// by an operator, lost with a stream), the participant reports itself not ready
/// ([`crate::infra::runtime::ConsumerHealth`]) and creates the consumer again.
async fn consume(
    rt: Runtime,
    lanes: Lanes,
    stream: Stream,
    events: bool,
    config: consumer::pull::Config,
    first: PullConsumer,
) -> anyhow::Result<()> {
    let name = config.durable_name.clone().unwrap_or_default();
    let mut current = Some(first);
    loop {
        let consumer = match current.take() {
            Some(c) => c,
            None => match ensure_consumer(&rt, &stream, events, config.clone()).await {
                Ok(c) => {
                    tracing::warn!(consumer = %name, "the consumer was created again");
                    c
                }
                Err(e) => {
                    tracing::warn!(consumer = %name, error = %format!("{e:#}"), "could not create the consumer; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        rt.consumers.present(&name);
        let messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %name, error = %e, "pulling failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                if consumer_exists(&stream, &name).await {
                    current = Some(consumer);
                } else {
                    rt.consumers.missing(&name);
                }
                continue;
            }
        };
        let work = messages
            .take_while(|msg| {
                let gone = matches!(msg, Err(e) if e.kind() == MessagesErrorKind::ConsumerDeleted);
                std::future::ready(!gone)
            })
            .filter_map(|msg| {
                std::future::ready(match msg {
                    Ok(msg) => Some(msg),
                    Err(e) => {
                        tracing::warn!(error = %e, "receiving a message");
                        None
                    }
                })
            })
            // Each to its lane, in the order they came.
            .for_each(|msg| {
                let (rt, lanes) = (&rt, &lanes);
                async move {
                    if let Some(incoming) = receive(rt, lanes.participant, &msg).await {
                        lanes.hand((msg, incoming)).await;
                    }
                }
            });
        let watch = async {
            loop {
                tokio::time::sleep(CONSUMER_CHECK).await;
                if !consumer_exists(&stream, &name).await {
                    break;
                }
            }
        };
        tokio::select! {
            () = work => {
                if consumer_exists(&stream, &name).await {
                    tracing::warn!(consumer = %name, "message stream ended; pulling again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    current = Some(consumer);
                    continue;
                }
            }
            () = watch => {}
        }
        // Messages in flight are dropped unanswered: the new consumer delivers them again and
        // the inbox turns any already handled into a no-op.
        rt.consumers.missing(&name);
        tracing::error!(consumer = %name, "the consumer is gone; creating it again");
    }
}

/// One row of a participant's dead letters.
struct DeadLetter<'a> {
    subject: &'a str,
    message_id: Option<Uuid>,
    kind: Option<&'a str>,
    payload: String,
    error: String,
    delivered: i64,
}

async fn insert_dead_letter(
    rt: &Runtime,
    p: Participant,
    row: DeadLetter<'_>,
) -> Result<(), sea_orm::DbErr> {
    let sql = format!(
        "INSERT INTO {}.dead_letter (id, message_id, subject, kind, payload, error, deliveries) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        p.name()
    );
    // Raw: the participant's schema is chosen at run time (one path for all of them).
    rt.db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                domain::id::new_id().into(),
                row.message_id.into(),
                row.subject.to_owned().into(),
                row.kind.map(str::to_owned).into(),
                row.payload.into(),
                row.error.into(),
                i32::try_from(row.delivered).unwrap_or(i32::MAX).into(),
            ],
        ))
        .await?;
    Ok(())
}

fn header(msg: &JsMessage, name: &str) -> Option<String> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

/// Reads a delivery as a handler sees it; one that is not an envelope goes to the dead letters
/// here (`None`).
async fn receive(rt: &Runtime, p: Participant, msg: &JsMessage) -> Option<Incoming> {
    let delivered = msg.info().map_or(1, |i| i.delivered);
    if delivered > 1 {
        crate::infra::metrics::redelivered(p);
    }
    let subject = rt.bus.unprefixed(msg.subject.as_str()).to_owned();
    let envelope: Envelope<serde_json::Value> = match serde_json::from_slice(&msg.payload) {
        Ok(e) => e,
        Err(e) => {
            let failure = Failure::Poison(format!("the message is not an envelope: {e}"));
            dead_letter(rt, p, msg, &subject, None, delivered, &failure).await;
            return None;
        }
    };
    let trace = header(msg, TRACEPARENT_HEADER).or_else(|| envelope.trace.clone());
    Some(Incoming {
        subject,
        replay_of: header(msg, REPLAY_OF_HEADER).and_then(|v| v.parse().ok()),
        envelope,
        delivered,
        last_attempt: delivered >= rt.settings.max_deliver,
        trace,
        batch: None,
    })
}

fn span(p: Participant, incoming: &Incoming) -> tracing::Span {
    handling_span(
        p,
        &incoming.envelope,
        incoming.trace.as_deref(),
        incoming.delivered,
    )
}

/// The span of one delivery's handling: in the trace of the message's sender (`trace`), its
/// child when spans are exported, named after the participant and the message.
pub fn handling_span(
    p: Participant,
    envelope: &Envelope<serde_json::Value>,
    trace: Option<&str>,
    delivered: i64,
) -> tracing::Span {
    let span = tracing::info_span!(
        "handle",
        otel.name = %format_args!("{} {}", p.name(), envelope.kind),
        otel.kind = "consumer",
        participant = p.name(),
        message.kind = %envelope.kind,
        message.id = %envelope.id,
        order.id = %envelope.correlation_id,
        trace.id = trace.and_then(domain::bus::trace_id).unwrap_or(""),
        delivered,
    );
    domain::telemetry::adopt(&span, trace);
    span
}

/// Runs `work` while JetStream hears "still working" about `msgs` every half ack wait: the
/// ack wait can stay short (a message in flight at a crash comes back within it) without a
/// slow handler, or a long batch, being delivered twice at once.
async fn with_progress<T>(rt: &Runtime, msgs: &[&JsMessage], work: impl Future<Output = T>) -> T {
    let beat = rt.settings.ack_wait / 2;
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep(beat) => {
                for msg in msgs {
                    if let Err(e) = msg.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %e, "progress ack failed");
                    }
                }
            }
        }
    }
}

/// Handles deliveries that arrived together: alone if there is one, otherwise in one
/// transaction ([`Batch`]), then answers each the right way. The handlers run one after the
/// other without savepoints; if one fails after it wrote, the batch is rolled back and runs
/// again with a savepoint per handler, which undoes the failed one alone.
async fn process_batch(rt: &Runtime, reg: &Registration, mut items: Vec<Delivery>) {
    let p = reg.participant;
    if items.len() <= 1 {
        for (msg, incoming) in items {
            process(rt, reg, msg, incoming).await;
        }
        return;
    }
    // First without savepoints; again with them when a handler failed after it wrote.
    let mut careful = false;
    let (ran, batch) = loop {
        let opened = match rt.db.begin().await {
            // A batch never waits long for a row another transaction holds: it would hold its
            // own rows meanwhile (two batches taking two wallets in opposite orders deadlock).
            // The delivery that would wait fails at once and is handled alone after the batch.
            Ok(txn) => match txn.execute_unprepared(BATCH_LOCK_TIMEOUT).await {
                Ok(_) => Ok(txn),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let batch = match opened {
            Ok(txn) => Batch::new(txn, careful),
            Err(e) => {
                // Each on its own: each then fails (and waits) or succeeds by itself.
                tracing::warn!(error = %e, "could not open a batch transaction");
                for (msg, incoming) in items {
                    process(rt, reg, msg, incoming).await;
                }
                return;
            }
        };
        // Each delivery's handler works in the batch's transaction (set here rather than on a
        // copy of each delivery: an envelope is a tree), and lets go of it after the run.
        for (_, incoming) in &mut items {
            incoming.batch = Some(batch.clone());
        }
        let delivered: Vec<&JsMessage> = items.iter().map(|(m, _)| m).collect();
        let ran = with_progress(rt, &delivered, run_batch(rt, reg, &batch, &items)).await;
        drop(delivered);
        for (_, incoming) in &mut items {
            incoming.batch = None;
        }
        match ran {
            // Dropping the batch rolls it back (nothing it deferred runs); every handler runs
            // again, each from its savepoint.
            Err(Stopped::Redo) => {
                drop(batch);
                careful = true;
            }
            Ok(results) => break (Ok(results), batch),
            Err(Stopped::Broken(e, results)) => break (Err((e, results)), batch),
        }
    };
    let (results, committed) = match (ran, std::sync::Arc::try_unwrap(batch)) {
        (Ok(results), Ok(batch)) => {
            let committed = batch.commit(rt, p).await.map_err(anyhow::Error::from);
            (results, committed)
        }
        (Ok(results), Err(_)) => {
            let kept = anyhow::anyhow!("a handler kept the batch's transaction");
            (results, Err(kept))
        }
        // Dropping the batch rolls it back; nothing it deferred runs.
        (Err((e, results)), _) => (results, Err(anyhow::Error::from(e))),
    };
    if committed.is_ok() {
        rt.counters.add_batched(items.len());
    }
    if let Err(e) = &committed {
        tracing::warn!(error = %format!("{e:#}"), deliveries = items.len(), "a batch did not commit; its deliveries will be tried again");
    }
    let mut alone = Vec::new();
    for ((msg, incoming), result) in items.into_iter().zip(results) {
        let result = match (&committed, result) {
            (_, Err(Failure::Contended(_))) => {
                rt.counters.add_alone();
                alone.push((msg, incoming));
                continue;
            }
            (Err(e), Ok(())) => Err(Failure::Unavailable(anyhow::anyhow!(
                "the batch did not commit: {e:#}"
            ))),
            (_, result) => result,
        };
        settle(rt, p, &msg, &incoming, result)
            .instrument(span(p, &incoming))
            .await;
    }
    // The batch's rows are free now: those that met another transaction's rows go on their
    // own, waiting for locks as long as it takes.
    for (msg, incoming) in alone {
        process(rt, reg, msg, incoming).await;
    }
}

/// Runs the handlers of a batch in its transaction: records the deliveries in the inbox, then
/// handles each that was not there, undoing the work of any that fails. Once the transaction
/// is broken (a statement of the batch's own failed), the rest are not run, and the answer is
/// `Err`: the batch must be rolled back, and every delivery of it comes again.
async fn run_batch(
    rt: &Runtime,
    reg: &Registration,
    batch: &std::sync::Arc<Batch>,
    items: &[(JsMessage, Incoming)],
) -> Result<Vec<Result<(), Failure>>, Stopped> {
    let p = reg.participant;
    let broken = |e: &sea_orm::DbErr| {
        Failure::Unavailable(anyhow::anyhow!("the batch's transaction failed: {e}"))
    };
    let ids = items.iter().map(|(_, i)| i.envelope.id).collect();
    let kinds = items.iter().map(|(_, i)| i.kind().to_owned()).collect();
    let fresh = match batch.record(p, ids, kinds).await {
        Ok(fresh) => fresh,
        Err(e) => {
            let results = items.iter().map(|_| Err(broken(&e))).collect();
            return Err(Stopped::Broken(e, results));
        }
    };
    let mut seen = std::collections::HashSet::new();
    let mut results = Vec::with_capacity(items.len());
    let mut failed: Option<sea_orm::DbErr> = None;
    for (_, incoming) in items {
        if let Some(e) = &failed {
            results.push(Err(broken(e)));
            continue;
        }
        let id = incoming.envelope.id;
        if fresh.contains(&id) && !seen.insert(id) {
            // Twice in this batch: its twin's outcome is not known until the commit, so it is
            // handled alone after it, and the inbox then tells.
            results.push(Err(Failure::Contended(anyhow::anyhow!(
                "delivered twice in one batch"
            ))));
            continue;
        }
        // Handled before: nothing to do but mark a replay.
        if !fresh.contains(&id) {
            let result = async {
                tracing::info!("already handled; nothing to do");
                match incoming.replay_of {
                    Some(dead) => {
                        batch.marks();
                        crate::infra::batch::mark_replayed(&batch.txn, p, dead)
                            .await
                            .map_err(Failure::from)
                    }
                    None => Ok(()),
                }
            }
            .instrument(span(p, incoming))
            .await;
            if let Err(Failure::Unavailable(e) | Failure::Transient(e) | Failure::Contended(e)) =
                &result
            {
                // Outside any savepoint: the batch's transaction is lost.
                failed = Some(sea_orm::DbErr::Custom(format!("{e:#}")));
            }
            results.push(result);
            continue;
        }
        batch.start();
        let result = (reg.handle)(rt, incoming)
            .instrument(span(p, incoming))
            .await;
        let kept = matches!(
            (&result, batch.progress()),
            (Ok(()), Progress::Idle | Progress::Committed)
        );
        if kept {
            batch.keep();
        } else if !batch.careful() && batch.progress() != Progress::Idle {
            // Its writes cannot be undone alone: the batch runs again, carefully.
            return Err(Stopped::Redo);
        } else if let Err(e) = batch.undo(p, id).await {
            failed = Some(e);
        }
        results.push(result);
    }
    match failed {
        // Nothing of the batch may be kept: none of its deliveries counts as handled, and the
        // caller rolls it back.
        Some(e) => {
            let results = items.iter().map(|_| Err(broken(&e))).collect();
            Err(Stopped::Broken(e, results))
        }
        None => Ok(results),
    }
}

/// Why a batch's handlers did not all run to an answer.
enum Stopped {
    /// A statement of the batch's own failed: the transaction is lost, and every delivery comes
    /// again (the answer each is given).
    Broken(sea_orm::DbErr, Vec<Result<(), Failure>>),
    /// A handler of a batch without savepoints failed after it wrote: run the batch again with
    /// them.
    Redo,
}

/// How long a statement in a batch waits for a row lock before giving up (SQLSTATE 55P03).
const BATCH_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '50ms'";

/// Handles one delivery alone and answers it.
async fn process(rt: &Runtime, reg: &Registration, msg: JsMessage, incoming: Incoming) {
    let p = reg.participant;
    let span = span(p, &incoming);
    async {
        let result = with_progress(rt, &[&msg], (reg.handle)(rt, &incoming)).await;
        settle(rt, p, &msg, &incoming, result).await;
    }
    .instrument(span)
    .await;
}

/// Answers a delivery after its handler: ack on success, a delayed nak while it may still
/// succeed, the dead letters when it never can.
async fn settle(
    rt: &Runtime,
    p: Participant,
    msg: &JsMessage,
    incoming: &Incoming,
    result: Result<(), Failure>,
) {
    let delivered = incoming.delivered;
    let outcome = match &result {
        Ok(()) => Outcome::Handled,
        Err(Failure::Unavailable(_) | Failure::Contended(_)) => Outcome::Retried,
        Err(Failure::Transient(_)) if !incoming.last_attempt => Outcome::Retried,
        Err(_) => Outcome::DeadLettered,
    };
    crate::infra::metrics::settled(p, &incoming.envelope, outcome);
    match result {
        Ok(()) => {
            if let Err(e) = msg.ack().await {
                // Redelivered later; the inbox makes that a no-op.
                tracing::warn!(error = %e, "ack failed");
            }
        }
        Err(Failure::Unavailable(e) | Failure::Contended(e)) => {
            // The database or the broker, not the message: it waits for them however long
            // that takes, and is never dead-lettered for it.
            let delay = rt.settings.backoff(delivered);
            tracing::warn!(error = %format!("{e:#}"), delay_ms = delay.as_millis() as u64, "a dependency is unavailable; will retry");
            if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "nak failed");
            }
        }
        Err(Failure::Transient(e)) if !incoming.last_attempt => {
            let delay = rt.settings.backoff(delivered);
            tracing::warn!(error = %format!("{e:#}"), delay_ms = delay.as_millis() as u64, "transient failure; will retry");
            if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "nak failed");
            }
        }
        Err(failure) => {
            let id = Some(incoming.envelope.id);
            let kind = incoming.envelope.kind.as_str();
            let subject = incoming.subject.as_str();
            dead_letter_with(rt, p, msg, subject, id, Some(kind), delivered, &failure).await;
        }
    }
}

async fn dead_letter(
    rt: &Runtime,
    p: Participant,
    msg: &JsMessage,
    subject: &str,
    message_id: Option<Uuid>,
    delivered: i64,
    failure: &Failure,
) {
    dead_letter_with(rt, p, msg, subject, message_id, None, delivered, failure).await;
}

/// Stores the message in the participant's dead letters, then terminates it. If the row
/// cannot be written the message is `nak`ed instead, so nothing is ever lost silently.
#[expect(clippy::too_many_arguments, reason = "one call site per failure path")]
async fn dead_letter_with(
    rt: &Runtime,
    p: Participant,
    msg: &JsMessage,
    subject: &str,
    message_id: Option<Uuid>,
    kind: Option<&str>,
    delivered: i64,
    failure: &Failure,
) {
    tracing::error!(error = %failure, "message goes to the dead letters");
    crate::infra::metrics::dead_lettered(p);
    let res = insert_dead_letter(
        rt,
        p,
        DeadLetter {
            subject,
            message_id,
            kind,
            payload: String::from_utf8_lossy(&msg.payload).into_owned(),
            error: failure.to_string(),
            delivered,
        },
    )
    .await;
    let ack = match res {
        Ok(_) => AckKind::Term,
        Err(e) => {
            tracing::error!(error = %e, "could not store the dead letter; will retry");
            AckKind::Nak(Some(rt.settings.retry_max))
        }
    };
    if let Err(e) = msg.ack_with(ack).await {
        tracing::warn!(error = %e, "term failed");
    }
}
