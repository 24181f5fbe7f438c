//! Publishing to NATS JetStream (DESIGN §3), shared by the api and the saga participants
//! (`server` feature only).
//!
//! Streams `CMD` (subjects `cmd.>`, work-queue retention) and `EVT` (`evt.>`, limits retention)
//! are created or updated at start-up by whoever starts first. Every subject and stream name can
//! carry a deployment prefix (`NATS_PREFIX`), which is how tests get streams of their own. Each
//! message is published with `Nats-Msg-Id` = the envelope id, so a retried publish inside the
//! duplicate window is stored once.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage, stream};

use crate::messaging::{Envelope, Message};

/// How long JetStream remembers message ids to drop duplicates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Header naming the message type (also inside the envelope).
pub const TYPE_HEADER: &str = "Store-Type";
/// Header carrying the correlation id (the order id for saga traffic).
pub const CORRELATION_HEADER: &str = "Store-Correlation-Id";
/// Header of a replayed message: the id of the dead-letter row it replays.
pub const REPLAY_OF_HEADER: &str = "Store-Replay-Of";
/// W3C trace context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A failure to talk to JetStream.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("encoding a message: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("publishing to {subject}: {detail}")]
    Publish { subject: String, detail: String },
    #[error("creating or updating stream {stream}: {detail}")]
    Stream { stream: String, detail: String },
}

#[derive(Clone)]
pub struct Bus {
    js: jetstream::Context,
    prefix: String,
}

/// What a publish produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub stream: String,
    pub sequence: u64,
    /// JetStream had already stored a message with this id.
    pub duplicate: bool,
}

/// A message already encoded (an outbox row, a dead letter being replayed).
#[derive(Clone, Debug)]
pub struct RawMessage<'a> {
    /// Subject without the deployment prefix.
    pub subject: &'a str,
    /// `Nats-Msg-Id`.
    pub msg_id: &'a str,
    pub kind: &'a str,
    pub correlation_id: Option<&'a str>,
    pub trace: Option<&'a str>,
    pub replay_of: Option<&'a str>,
    pub payload: Vec<u8>,
}

impl Bus {
    /// `prefix`: empty, or a token such as `t1a2b` that prefixes every subject (`t1a2b.cmd.…`)
    /// and stream name (`t1a2b_CMD`).
    pub fn new(client: async_nats::Client, prefix: &str) -> Bus {
        Bus {
            js: jetstream::new(client),
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn subject(&self, subject: &str) -> String {
        if self.prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.prefix)
        }
    }

    /// The subject without this deployment's prefix.
    pub fn unprefixed<'a>(&self, subject: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            subject
        } else {
            subject
                .strip_prefix(self.prefix.as_str())
                .and_then(|s| s.strip_prefix('.'))
                .unwrap_or(subject)
        }
    }

    pub fn stream_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{name}", self.prefix)
        }
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates the `CMD` and `EVT` streams, or brings their configuration up to date.
    pub async fn ensure_streams(&self, replicas: usize) -> Result<(), BusError> {
        let cmd = stream::Config {
            name: self.stream_name("CMD"),
            subjects: vec![self.subject("cmd.>")],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: replicas,
            ..Default::default()
        };
        let evt = stream::Config {
            name: self.stream_name("EVT"),
            subjects: vec![self.subject("evt.>")],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            // Long enough to rebuild projections from events.
            max_age: Duration::from_secs(365 * 24 * 3600),
            num_replicas: replicas,
            ..Default::default()
        };
        for config in [cmd, evt] {
            let name = config.name.clone();
            self.js
                .create_or_update_stream(config)
                .await
                .map_err(|e| BusError::Stream {
                    stream: name,
                    detail: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Publishes `envelope` and waits for JetStream's acknowledgement.
    pub async fn publish<T: Message>(&self, envelope: &Envelope<T>) -> Result<Published, BusError> {
        self.publish_with_id(envelope, &envelope.id.to_string())
            .await
    }

    /// Publishes `envelope` with an explicit `Nats-Msg-Id` (e.g. derived from an idempotency
    /// key, so that concurrent replays of one request are stored once).
    pub async fn publish_with_id<T: Message>(
        &self,
        envelope: &Envelope<T>,
        msg_id: &str,
    ) -> Result<Published, BusError> {
        let payload = serde_json::to_vec(envelope)?;
        let subject = envelope.subject();
        let correlation = envelope.correlation_id.to_string();
        // Not SQL: the encoded envelope goes to NATS with its headers.
        self.publish_raw(RawMessage {
            subject: &subject,
            msg_id,
            kind: &envelope.kind,
            correlation_id: Some(&correlation),
            trace: envelope.trace.as_deref(),
            replay_of: None,
            payload,
        })
        .await
    }

    /// Publishes an encoded message and waits for JetStream's acknowledgement.
    // Not SQL: "raw" is a message already encoded (an outbox row's payload, a dead letter).
    pub async fn publish_raw(&self, msg: RawMessage<'_>) -> Result<Published, BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(TYPE_HEADER, msg.kind);
        if let Some(c) = msg.correlation_id {
            headers.insert(CORRELATION_HEADER, c);
        }
        if let Some(t) = msg.trace {
            headers.insert(TRACEPARENT_HEADER, t);
        }
        if let Some(r) = msg.replay_of {
            headers.insert(REPLAY_OF_HEADER, r);
        }
        // The id goes into the map itself: `PublishMessage::headers` replaces whatever the
        // builder held, so a `message_id` set before it would be lost (and de-duplication off).
        headers.insert(async_nats::header::NATS_MESSAGE_ID, msg.msg_id);
        let publish = PublishMessage::build()
            .payload(msg.payload.into())
            .headers(headers);
        let subject = self.subject(msg.subject);
        let fail = |e: String| BusError::Publish {
            subject: subject.clone(),
            detail: e,
        };
        let ack = self
            .js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        tracing::debug!(
            message.id = msg.msg_id,
            message.kind = msg.kind,
            stream = %ack.stream,
            sequence = ack.sequence,
            duplicate = ack.duplicate,
            "published"
        );
        Ok(Published {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

/// The W3C `traceparent` of a message sent now: the current span's when spans are exported
/// (the receiver's span becomes its child), else a new trace (version 00, sampled).
pub fn new_traceparent() -> String {
    if let Some(current) = crate::telemetry::current_traceparent() {
        return current;
    }
    let trace = crate::id::new_id().simple().to_string();
    format!("00-{trace}-{}-01", new_span_id())
}

/// The `traceparent` of a message caused by one that carried `parent`: the current span's when
/// spans are exported (the handler's span, itself a child of `parent`), else `parent`'s trace
/// with a new span id (or a new trace when `parent` is missing or malformed).
pub fn child_traceparent(parent: Option<&str>) -> String {
    if let Some(current) = crate::telemetry::current_traceparent() {
        return current;
    }
    match parent.and_then(trace_id) {
        Some(trace) => format!("00-{trace}-{}-01", new_span_id()),
        None => new_traceparent(),
    }
}

/// The trace id (32 hex digits) of a `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then_some(trace)
}

fn new_span_id() -> String {
    // The last 8 bytes of a UUIDv7 are random.
    let bytes = crate::id::new_id().into_bytes();
    bytes[8..].iter().map(|b| format!("{b:02x}")).collect()
}
