//! sea-orm entities of the `library` schema (written by the library participant; read by the
//! api).

pub mod entitlement {
    use sea_orm::entity::prelude::*;

    /// What an account owns: from an order (`order_id`) or a redeemed gift key
    /// (`gift_key_id`), exactly one of the two. Revoked, never deleted.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "library", table_name = "entitlement")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub product_id: Uuid,
        pub edition_id: Uuid,
        pub order_id: Option<Uuid>,
        #[sea_orm(unique)]
        pub license_key: String,
        pub granted_at: DateTimeUtc,
        pub gift_key_id: Option<Uuid>,
        pub revoked_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod revoked_order {
    use sea_orm::entity::prelude::*;

    /// An order whose grants were revoked: a later grant for it is refused.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "library", table_name = "revoked_order")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        pub revoked_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod gift_key_batch {
    use sea_orm::entity::prelude::*;

    /// A batch of gift keys a publisher asked for, for one edition.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "library", table_name = "gift_key_batch")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub publisher_id: Uuid,
        pub product_id: Uuid,
        pub edition_id: Uuid,
        pub quantity: i32,
        pub label: String,
        pub created_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod gift_key {
    use sea_orm::entity::prelude::*;

    /// One gift key of a batch, redeemed at most once.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "library", table_name = "gift_key")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub batch_id: Uuid,
        #[sea_orm(unique)]
        pub key: String,
        pub redeemed_by: Option<Uuid>,
        pub redeemed_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

crate::messaging::messaging_entities!("library");

/// Serialises the grants and the revocation of one order until the end of the transaction
/// (`pg_advisory_xact_lock` on the order): each statement after it sees what the other
/// committed.
pub async fn lock_order(
    db: &impl sea_orm::ConnectionTrait,
    order: uuid::Uuid,
) -> Result<(), sea_orm::DbErr> {
    // Raw: a transaction-scoped advisory lock, a function call on no table.
    db.execute_raw(crate::sql::stmt(
        "SELECT pg_advisory_xact_lock(hashtextextended('library.order:' || $1::text, 0))",
        [order.into()],
    ))
    .await?;
    Ok(())
}
