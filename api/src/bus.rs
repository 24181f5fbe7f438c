//! Publishing commands and events to NATS JetStream (DESIGN §3).
//!
//! Streams `CMD` (subjects `cmd.>`, work-queue retention) and `EVT` (`evt.>`, limits retention)
//! are created or updated at start-up. Every subject and stream name can carry a deployment
//! prefix (`NATS_PREFIX`), which is how tests get streams of their own. Each message is published
//! with `Nats-Msg-Id` = the envelope id, so a retried publish inside the duplicate window is
//! stored once.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use domain::messaging::{Envelope, Message};

/// How long JetStream remembers message ids to drop duplicates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

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

impl Bus {
    /// `prefix`: empty, or a token such as `t1a2b` that prefixes every subject (`t1a2b.cmd.…`)
    /// and stream name (`t1a2b_CMD`).
    pub fn new(client: async_nats::Client, prefix: &str) -> Bus {
        Bus {
            js: jetstream::new(client),
            prefix: prefix.to_owned(),
        }
    }

    pub fn subject(&self, subject: &str) -> String {
        if self.prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.prefix)
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
    pub async fn ensure_streams(&self, replicas: usize) -> anyhow::Result<()> {
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
                .with_context(|| format!("creating or updating stream {name}"))?;
        }
        Ok(())
    }

    /// Publishes `envelope` and waits for JetStream's acknowledgement.
    pub async fn publish<T: Message>(&self, envelope: &Envelope<T>) -> anyhow::Result<Published> {
        let payload = serde_json::to_vec(envelope).context("encoding a message")?;
        let mut msg = PublishMessage::build()
            .payload(payload.into())
            .message_id(envelope.id.to_string())
            .header("Store-Type", envelope.kind.as_str())
            .header(
                "Store-Correlation-Id",
                envelope.correlation_id.to_string().as_str(),
            );
        if let Some(trace) = &envelope.trace {
            msg = msg.header("traceparent", trace.as_str());
        }
        let subject = self.subject(&envelope.subject());
        let ack = self
            .js
            .send_publish(subject.clone(), msg)
            .await
            .with_context(|| format!("publishing to {subject}"))?
            .await
            .with_context(|| format!("acknowledgement of {subject}"))?;
        tracing::debug!(
            message.id = %envelope.id,
            message.kind = %envelope.kind,
            correlation.id = %envelope.correlation_id,
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
