//! sea-orm entity of the refund requests. The table lives in the `ordering` schema (the ordering
//! participant writes it; the api reads it), so refunds have no messaging tables of their own.

pub mod refund_request {
    use sea_orm::entity::prelude::*;

    /// One refund request per order: why, whether it met the policy, and the decision.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "ordering", table_name = "refund_request")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub order_id: Uuid,
        pub account_id: Uuid,
        pub reason: String,
        pub within_policy: bool,
        pub policy_note: String,
        pub status: String,
        pub decided_by: Option<Uuid>,
        pub decision_note: Option<String>,
        pub created_at: DateTimeUtc,
        pub decided_at: Option<DateTimeUtc>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
