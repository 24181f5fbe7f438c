//! The consume loop of a participant.
//!
//! Each participant has one durable pull consumer per subject it listens to (NATS 2.9 allows one
//! filter subject per consumer), explicit ack, a bounded `max_deliver`. For each message:
//!
//! - it decodes the envelope; a message that does not decode is *poison*: it goes to the
//!   participant's `dead_letter` table at once and is terminated (`term`);
//! - the handler runs; it records the message id in the inbox, changes state and writes its
//!   outbox in one transaction (see [`crate::outbox::Tx`]); a message already in the inbox is
//!   acknowledged without effect;
//! - a transient failure is `nak`ed with an exponential delay; on the last allowed delivery it
//!   goes to the dead letters instead;
//! - the ack comes after the commit. A crash between the two redelivers the message, which the
//!   inbox then turns into a no-op;
//! - a message whose last delivery got no answer at all (the participant stopped while handling
//!   it) is reported by JetStream in a `MAX_DELIVERIES` advisory; a watcher per participant
//!   (one replica of each, through a queue group) stores it in the dead letters then, unless
//!   the inbox shows it was handled.

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use async_nats::jetstream::{AckKind, Message as JsMessage, consumer};
use domain::bus::{REPLAY_OF_HEADER, TRACEPARENT_HEADER};
use domain::messaging::Envelope;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use uuid::Uuid;

use crate::runtime::{Participant, Runtime};

/// Why a handler did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// May succeed later (database or broker unavailable, an order not visible yet):
    /// redelivered with backoff, dead-lettered after `max_deliver` deliveries.
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Can never succeed (malformed, unknown type, broken invariant): dead-lettered at once.
    #[error("poison: {0}")]
    Poison(String),
}

impl From<sea_orm::DbErr> for Failure {
    fn from(e: sea_orm::DbErr) -> Failure {
        Failure::Transient(e.into())
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
}

impl Incoming {
    /// The envelope's data as `T`; a mismatch is poison.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_value(self.envelope.data.clone()).map_err(|e| {
            Failure::Poison(format!("the data of {} does not decode: {e}", self.kind()))
        })
    }

    pub fn kind(&self) -> &str {
        &self.envelope.kind
    }
}

/// Subjects (without prefix) each participant consumes: (stream, filter subject).
pub fn subscriptions(p: Participant) -> Vec<(&'static str, String)> {
    let cmd = ("CMD", format!("cmd.{}.>", p.name()));
    let evt = |s: &str| ("EVT", format!("evt.{s}.>"));
    let mut subs = vec![cmd];
    match p {
        Participant::Ordering => subs.extend([
            evt("fulfillment.stock_reserved"),
            evt("fulfillment.stock_unavailable"),
            evt("fulfillment.ready_to_ship"),
            evt("fulfillment.shipment_dispatched"),
            evt("billing.payment_captured"),
            evt("billing.payment_refunded"),
            evt("billing.payment_declined"),
            evt("library.items_granted"),
        ]),
        Participant::Billing => subs.extend([
            evt("ordering.order_placed"),
            evt("ordering.order_completed"),
            evt("fulfillment.stock_reserved"),
            evt("fulfillment.shipment_cancelled"),
            evt("library.entitlements_revoked"),
        ]),
        Participant::Fulfillment => subs.extend([
            evt("ordering.order_placed"),
            evt("billing.payment_captured"),
            evt("billing.payment_declined"),
        ]),
        Participant::Library => subs.extend([
            evt("billing.payment_captured"),
            evt("fulfillment.shipment_dispatched"),
            evt("billing.payment_refunded"),
            evt("ordering.refund_approved"),
        ]),
        Participant::Notification => subs.extend([
            evt("ordering.order_completed"),
            evt("ordering.order_cancelled"),
            evt("ordering.refund_requested"),
            evt("ordering.refund_denied"),
            evt("ordering.order_refunded"),
            evt("library.gift_keys_generated"),
            evt("library.key_redeemed"),
            evt("billing.wallet_credited"),
            evt("billing.top_up_declined"),
            evt("billing.payment_refunded"),
            evt("fulfillment.ready_to_ship"),
            evt("fulfillment.shipment_dispatched"),
            evt("fulfillment.shipping_reminder"),
        ]),
    }
    subs
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

/// Creates (or updates) the consumers of `p` and returns their loops.
pub async fn start(rt: &Runtime, p: Participant) -> anyhow::Result<Vec<Task>> {
    let mut tasks: Vec<Task> = Vec::new();
    for (stream, subject) in subscriptions(p) {
        let stream_name = rt.bus.stream_name(stream);
        let stream = rt
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
            max_deliver: rt.settings.max_deliver,
            max_ack_pending: 1000,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&name, config.clone())
            .await
            .with_context(|| format!("creating consumer {name}"))?;
        // Bring an existing consumer's settings up to date (max_deliver, ack_wait).
        if let Err(e) = rt
            .bus
            .jetstream()
            .update_consumer_on_stream(config, &stream_name)
            .await
        {
            tracing::warn!(consumer = %name, error = %e, "could not update the consumer");
        }
        let rt = rt.clone();
        tasks.push(Box::pin(consume(rt, p, consumer, name)));
    }
    // Subscribed before returning, like the consumers: no advisory is missed after start.
    let client = rt.bus.jetstream().client();
    let group = format!("saga-exhausted-{}-{}", rt.bus.prefix(), p.name());
    let advisories = client
        .queue_subscribe(ADVISORY_MAX_DELIVERIES.to_owned(), group)
        .await
        .context("subscribing to JetStream's max-deliveries advisories")?;
    tasks.push(Box::pin(watch_exhausted(rt.clone(), p, advisories)));
    Ok(tasks)
}

/// JetStream's advisory subject when a consumer's message used up `max_deliver` unanswered
/// (stream and consumer are the last two tokens).
const ADVISORY_MAX_DELIVERIES: &str = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*";

/// The part of the advisory the watcher reads.
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    stream: String,
    consumer: String,
    stream_seq: u64,
    deliveries: i64,
}

async fn watch_exhausted(
    rt: Runtime,
    p: Participant,
    mut advisories: async_nats::Subscriber,
) -> anyhow::Result<()> {
    while let Some(advisory) = advisories.next().await {
        if let Err(e) = exhausted(&rt, p, &advisory.payload).await {
            tracing::error!(participant = p.name(), error = %format!("{e:#}"), "could not store an exhausted message");
        }
    }
    anyhow::bail!("the advisory subscription of {} ended", p.name())
}

/// Stores a message that ran out of deliveries without an answer in the dead letters.
async fn exhausted(rt: &Runtime, p: Participant, payload: &[u8]) -> anyhow::Result<()> {
    let advisory: MaxDeliveries =
        serde_json::from_slice(payload).context("decoding the advisory")?;
    let cmd = rt.bus.stream_name("CMD");
    let ours = (advisory.stream == cmd || advisory.stream == rt.bus.stream_name("EVT"))
        && advisory.consumer.starts_with(&format!("{}-", p.name()));
    if !ours {
        return Ok(());
    }
    let stream = rt.bus.jetstream().get_stream(&advisory.stream).await?;
    let msg = stream
        .get_raw_message(advisory.stream_seq)
        .await
        .with_context(|| {
            format!(
                "reading message {} of {}",
                advisory.stream_seq, advisory.stream
            )
        })?;
    let envelope: Option<Envelope<serde_json::Value>> = serde_json::from_slice(&msg.payload).ok();
    if let Some(env) = &envelope {
        // Handled, but the ack was lost; or dead-lettered already (the last attempt stored it
        // and only its `term` was lost).
        let known = rt
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT 1 AS one FROM {ctx}.inbox WHERE message_id = $1 \
                     UNION ALL SELECT 1 FROM {ctx}.dead_letter WHERE message_id = $1 AND replayed_at IS NULL",
                    ctx = p.name()
                ),
                [env.id.into()],
            ))
            .await?;
        if known.is_some() {
            return Ok(());
        }
    }
    let subject = rt.bus.unprefixed(msg.subject.as_str()).to_owned();
    let failure = Failure::Transient(anyhow::anyhow!(
        "no answer after {} deliveries (the participant stopped while handling it)",
        advisory.deliveries
    ));
    tracing::error!(participant = p.name(), %subject, error = %failure, "message goes to the dead letters");
    insert_dead_letter(
        rt,
        p,
        DeadLetter {
            subject: &subject,
            message_id: envelope.as_ref().map(|e| e.id),
            kind: envelope.as_ref().map(|e| e.kind.as_str()),
            payload: String::from_utf8_lossy(&msg.payload).into_owned(),
            error: failure.to_string(),
            delivered: advisory.deliveries,
        },
    )
    .await?;
    // A command is work: once in the dead letters it leaves the work queue (a replay sends a
    // new copy). Events stay in their stream.
    if advisory.stream == cmd
        && let Err(e) = stream.delete_message(advisory.stream_seq).await
    {
        tracing::warn!(error = %e, "could not remove the exhausted command from its stream");
    }
    Ok(())
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

async fn consume(
    rt: Runtime,
    p: Participant,
    consumer: consumer::Consumer<consumer::pull::Config>,
    name: String,
) -> anyhow::Result<()> {
    loop {
        let messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = %name, error = %e, "pulling failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let concurrency = rt.settings.concurrency.max(1);
        messages
            .for_each_concurrent(concurrency, |msg| {
                let rt = rt.clone();
                async move {
                    match msg {
                        Ok(msg) => process(&rt, p, msg).await,
                        Err(e) => tracing::warn!(error = %e, "receiving a message"),
                    }
                }
            })
            .await;
        tracing::warn!(consumer = %name, "message stream ended; pulling again");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn header(msg: &JsMessage, name: &str) -> Option<String> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

/// Handles one delivery and acknowledges it the right way.
async fn process(rt: &Runtime, p: Participant, msg: JsMessage) {
    let delivered = msg.info().map_or(1, |i| i.delivered);
    let last_attempt = delivered >= rt.settings.max_deliver;
    let subject = rt.bus.unprefixed(msg.subject.as_str()).to_owned();
    let envelope: Envelope<serde_json::Value> = match serde_json::from_slice(&msg.payload) {
        Ok(e) => e,
        Err(e) => {
            let failure = Failure::Poison(format!("the message is not an envelope: {e}"));
            dead_letter(rt, p, &msg, &subject, None, delivered, &failure).await;
            return;
        }
    };
    let trace = header(&msg, TRACEPARENT_HEADER).or_else(|| envelope.trace.clone());
    let span = tracing::info_span!(
        "handle",
        participant = p.name(),
        message.kind = %envelope.kind,
        message.id = %envelope.id,
        order.id = %envelope.correlation_id,
        trace.id = trace.as_deref().and_then(domain::bus::trace_id).unwrap_or(""),
        delivered,
    );
    let incoming = Incoming {
        subject: subject.clone(),
        replay_of: header(&msg, REPLAY_OF_HEADER).and_then(|v| v.parse().ok()),
        envelope,
        delivered,
        last_attempt,
        trace,
    };
    async {
        let result = dispatch(rt, p, &incoming).await;
        match result {
            Ok(()) => {
                if let Err(e) = msg.ack().await {
                    // Redelivered later; the inbox makes that a no-op.
                    tracing::warn!(error = %e, "ack failed");
                }
            }
            Err(Failure::Transient(e)) if !last_attempt => {
                let delay = rt.settings.backoff(delivered);
                tracing::warn!(error = %format!("{e:#}"), delay_ms = delay.as_millis() as u64, "transient failure; will retry");
                if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak failed");
                }
            }
            Err(failure) => {
                let id = Some(incoming.envelope.id);
                let kind = incoming.envelope.kind.clone();
                dead_letter_with(rt, p, &msg, &subject, id, Some(&kind), delivered, &failure).await;
            }
        }
    }
    .instrument(span)
    .await;
}

async fn dispatch(rt: &Runtime, p: Participant, msg: &Incoming) -> Result<(), Failure> {
    match p {
        Participant::Ordering => crate::ordering::handle(rt, msg).await,
        Participant::Billing => crate::billing::handle(rt, msg).await,
        Participant::Fulfillment => crate::fulfillment::handle(rt, msg).await,
        Participant::Library => crate::library::handle(rt, msg).await,
        Participant::Notification => crate::notification::handle(rt, msg).await,
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
