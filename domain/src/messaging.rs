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

/// The `outbox` entity of `$schema`: a saga participant's (through `messaging_entities!`) or
/// the catalog's, whose outbox the api writes (`outbox_entity!("catalog");`).
#[cfg(feature = "server")]
macro_rules! outbox_entity {
    ($schema:literal) => {
        /// Events to publish, written with the state change and marked published by the relay
        /// after JetStream's ack.
        pub mod outbox {
            use sea_orm::entity::prelude::*;

            #[doc = concat!("A row of `", $schema, ".outbox`.")]
            #[sea_orm::model]
            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(schema_name = $schema, table_name = "outbox")]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: Uuid,
                pub subject: String,
                pub kind: String,
                pub correlation_id: Uuid,
                pub trace: Option<String>,
                pub payload: Json,
                pub created_at: DateTimeUtc,
                pub published_at: Option<DateTimeUtc>,
            }

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}
#[cfg(feature = "server")]
pub(crate) use outbox_entity;

/// The three messaging tables every saga participant has in its schema (migration
/// `m20261124_000004_saga`): `inbox` (handled message ids), `outbox` (events to publish) and
/// `dead_letter` (messages that can never succeed). They are identical in every schema, so one
/// macro writes their entities: `messaging_entities!("billing");` in a context's `entity.rs`.
#[cfg(feature = "server")]
macro_rules! messaging_entities {
    ($schema:literal) => {
        /// Ids of the messages this participant handled, written in the transaction of the
        /// state change (a redelivered message changes nothing).
        pub mod inbox {
            use sea_orm::entity::prelude::*;

            #[doc = concat!("A row of `", $schema, ".inbox`.")]
            #[sea_orm::model]
            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(schema_name = $schema, table_name = "inbox")]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub message_id: Uuid,
                pub kind: String,
                pub handled_at: DateTimeUtc,
            }

            impl ActiveModelBehavior for ActiveModel {}
        }

        crate::messaging::outbox_entity!($schema);

        /// Messages that can never succeed (or ran out of deliveries), for admins to see and
        /// replay.
        pub mod dead_letter {
            use sea_orm::entity::prelude::*;

            #[doc = concat!("A row of `", $schema, ".dead_letter`.")]
            #[sea_orm::model]
            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(schema_name = $schema, table_name = "dead_letter")]
            pub struct Model {
                #[sea_orm(primary_key, auto_increment = false)]
                pub id: Uuid,
                pub message_id: Option<Uuid>,
                pub subject: String,
                pub kind: Option<String>,
                pub payload: String,
                pub error: String,
                pub deliveries: i32,
                pub failed_at: DateTimeUtc,
                pub replayed_at: Option<DateTimeUtc>,
                pub replay_message_id: Option<String>,
            }

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}
#[cfg(feature = "server")]
pub(crate) use messaging_entities;
