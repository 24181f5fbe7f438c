//! sea-orm entities of the `billing` schema (written by the billing participant; read by the
//! api), and the statements on them that sea-orm cannot say.

pub mod wallet {
    use sea_orm::entity::prelude::*;

    /// An account's wallet. `balance_minor` is never negative (a CHECK) and `version` counts
    /// its ledger entries.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "wallet")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: Uuid,
        pub currency: String,
        pub balance_minor: i64,
        pub version: i64,
        pub frozen: bool,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ledger_entry {
    use sea_orm::entity::prelude::*;

    /// One movement of a wallet. Append-only (a trigger refuses updates and deletes); at most
    /// one per (kind, reference).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "ledger_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub kind: String,
        pub reference: Uuid,
        pub amount_minor: i64,
        pub balance_after: i64,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod top_up {
    use sea_orm::entity::prelude::*;

    /// A settled top-up (`CREDITED` or `DECLINED`).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "top_up")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub amount_minor: i64,
        pub currency: String,
        pub card_last4: String,
        pub status: String,
        pub reason: Option<String>,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod revenue_entry {
    use sea_orm::entity::prelude::*;

    /// A publisher's share of a sale (`sale`) or its reversal (`reversal`). Append-only; at
    /// most one of each per (order, publisher).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "billing", table_name = "revenue_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        pub order_id: Uuid,
        pub kind: String,
        pub gross_minor: i64,
        pub fee_minor: i64,
        pub net_minor: i64,
        pub currency: String,
        pub fee_bps: i32,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

crate::messaging::messaging_entities!("billing");
