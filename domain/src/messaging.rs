//! Messages between the api and the saga participants (DESIGN §3): one JSON envelope for every
//! command and event, published on JetStream with `Nats-Msg-Id` = the envelope id.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A command or an event type: its wire name, version and subject.
pub trait Message: Serialize + DeserializeOwned {
    /// Wire type, e.g. `fulfillment.adjust_stock`.
    const TYPE: &'static str;
    /// Bumped on every change of the data's shape.
    const VERSION: u32;
    /// Subject without the deployment prefix, e.g. `cmd.fulfillment.adjust_stock`.
    fn subject(&self) -> String;
}

/// The envelope of every message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    /// The order id for saga traffic; otherwise the aggregate the message is about.
    pub correlation_id: Uuid,
    /// The message that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// The account that acted, if any.
    pub actor: Option<Uuid>,
    /// W3C `traceparent` of the span that sent it.
    pub trace: Option<String>,
    pub data: T,
}

impl<T: Message> Envelope<T> {
    /// A new envelope with a fresh id.
    pub fn new(data: T, correlation_id: Uuid, actor: Option<Uuid>) -> Envelope<T> {
        Envelope {
            id: crate::id::new_id(),
            kind: T::TYPE.to_owned(),
            version: T::VERSION,
            occurred_at: Utc::now(),
            correlation_id,
            causation_id: None,
            actor,
            trace: None,
            data,
        }
    }

    pub fn subject(&self) -> String {
        self.data.subject()
    }
}
