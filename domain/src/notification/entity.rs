//! sea-orm entities of the `notification` schema (written by the notification participant;
//! read and marked read by the api).

pub mod notification {
    use sea_orm::entity::prelude::*;

    /// One notification of an account; `read_at` is set when the account has read it.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "notification", table_name = "notification")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub kind: String,
        pub title: String,
        pub body: String,
        pub order_id: Option<Uuid>,
        pub created_at: DateTimeUtc,
        pub read_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

crate::messaging::messaging_entities!("notification");
