//! sea-orm entities of the `fulfillment` schema (written by the fulfillment participant only;
//! the api reads the stock and the shipments).

pub mod inventory {
    use sea_orm::entity::prelude::*;

    /// The stock of a physical edition: `reserved` never exceeds `on_hand`.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "fulfillment", table_name = "inventory")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub edition_id: Uuid,
        pub on_hand: i32,
        pub reserved: i32,
        pub version: i64,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod shipment {
    use sea_orm::entity::prelude::*;

    /// The shipment of an order with physical lines: where it goes and where it is.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "fulfillment", table_name = "shipment")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        pub account_id: Uuid,
        pub status: String,
        pub address: Json,
        pub carrier: Option<String>,
        pub tracking_number: Option<String>,
        pub release_reason: Option<String>,
        pub created_at: DateTimeUtc,
        pub paid_at: Option<DateTimeUtc>,
        pub shipped_at: Option<DateTimeUtc>,
        pub released_at: Option<DateTimeUtc>,
        pub reminded_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reservation {
    use sea_orm::entity::prelude::*;

    /// The reserved quantity of one physical line of a shipment.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "fulfillment", table_name = "reservation")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub edition_id: Uuid,
        pub product_id: Uuid,
        pub publisher_id: Uuid,
        pub quantity: i32,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

crate::messaging::messaging_entities!("fulfillment");
