//! sea-orm entities of the `identity` schema (written by the api only).

pub mod account {
    use sea_orm::entity::prelude::*;

    /// A person or an organisation that signs in. `email_normalized` is unique.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "identity", table_name = "account")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub email: String,
        #[sea_orm(unique)]
        pub email_normalized: String,
        pub display_name: String,
        pub role: String,
        pub status: String,
        pub password_hash: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub created_by: Option<Uuid>,
        /// Where the buyer is taxed for digital orders (ISO 3166-1 alpha-2), and the US state.
        pub billing_country: Option<String>,
        pub billing_state: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;

    /// What an admin did, to whom, and when. Append-only.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "identity", table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub actor_id: Option<Uuid>,
        pub action: String,
        pub target_id: Option<Uuid>,
        pub detail: Json,
        pub occurred_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_client {
    use sea_orm::entity::prelude::*;

    /// An API client of a publisher (OAuth 2.0 client credentials). The secret is kept only as
    /// its SHA-256 (`secret_sha256`): it is 256 random bits, so no slow hash is needed (see
    /// `api/src/identity/clients.rs`). `scope` is a space-separated list of [`crate::identity::Scope`]s.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "identity", table_name = "api_client")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        pub name: String,
        pub secret_sha256: Vec<u8>,
        pub scope: String,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
        pub last_used_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod publisher_buyer {
    use sea_orm::entity::prelude::*;

    /// The opaque id under which a publisher knows a buyer (the `sub` of the buyer's ownership
    /// tickets for that publisher's products): random, one per (publisher, account), so that
    /// publishers cannot correlate buyers across each other.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "identity", table_name = "publisher_buyer")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub publisher_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: Uuid,
        pub buyer_id: String,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
