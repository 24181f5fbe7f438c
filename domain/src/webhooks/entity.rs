//! sea-orm entities of the `webhooks` schema (written by the webhooks participant only; read
//! by the api).

pub mod endpoint {
    use sea_orm::entity::prelude::*;

    /// A publisher's webhook endpoint. `secret` signs every delivery; after a rotation
    /// `previous_secret` signs too until `previous_secret_expires_at`. Deleted endpoints keep
    /// their row (`deleted_at`) so that their deliveries stay consistent, and send nothing.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "webhooks", table_name = "endpoint")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        pub url: String,
        pub description: String,
        /// Wire names of [`crate::webhooks::EventType`].
        pub event_types: Vec<String>,
        pub enabled: bool,
        pub disabled_reason: Option<String>,
        pub secret: String,
        pub previous_secret: Option<String>,
        pub previous_secret_expires_at: Option<DateTimeUtc>,
        /// The `RotateSecret` that made `secret` (none: the one drawn at registration).
        pub rotation_id: Option<Uuid>,
        /// Deliveries in a row whose every attempt failed (0 after any success).
        pub consecutive_failures: i32,
        /// The first failed attempt since the last success.
        pub failing_since: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    /// One event for one endpoint; its id is derived from both
    /// ([`crate::webhooks::delivery_id`]), the `webhook-id` is `msg_` and that id.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "webhooks", table_name = "delivery")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub endpoint_id: Uuid,
        pub event_id: Uuid,
        pub event_type: String,
        /// The JSON body, fixed when the delivery is recorded (every attempt signs these bytes).
        pub body: String,
        /// `PENDING`, `SUCCEEDED` or `FAILED`.
        pub status: String,
        /// Attempts of the current schedule (a redelivery starts a new one).
        pub attempts: i32,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub last_attempt_at: Option<DateTimeUtc>,
        pub last_status_code: Option<i32>,
        pub last_latency_ms: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attempt {
    use sea_orm::entity::prelude::*;

    /// One HTTP request of a delivery: what came back and how long it took.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "webhooks", table_name = "attempt")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub delivery_id: Uuid,
        pub attempted_at: DateTimeUtc,
        pub succeeded: bool,
        pub status_code: Option<i32>,
        pub latency_ms: i32,
        pub error: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_publisher {
    use sea_orm::entity::prelude::*;

    /// The lines of a paid order, per publisher (from `PaymentCaptured`): how the webhooks
    /// participant finds whose endpoints hear of events that name only the order.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "webhooks", table_name = "order_publisher")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub publisher_id: Uuid,
        /// The publisher's [`crate::ordering::OrderLine`]s, as JSON.
        pub lines: Json,
        pub currency: String,
        pub recorded_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

crate::messaging::messaging_entities!("webhooks");
