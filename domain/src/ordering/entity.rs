//! sea-orm entities of the `ordering` schema (written by the ordering participant; read by the
//! api). The refund requests, also in this schema, are in [`crate::refund::entity`].

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::model::OrderLine;

pub mod order {
    use sea_orm::entity::prelude::*;

    /// An order: its status and the facts the saga has learnt of it (`ordering."order"`).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "ordering", table_name = "order")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_id: Uuid,
        pub idempotency_key: String,
        pub status: String,
        pub paid: bool,
        pub granted: bool,
        pub cancel_reason: Option<String>,
        pub total_minor: i64,
        pub currency: String,
        pub needs_shipping: bool,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub reserved: bool,
        pub shipped: bool,
        pub delivered: bool,
        pub refunded: bool,
        pub ready: bool,
        pub completed_at: Option<DateTimeUtc>,
        /// Where the order was taxed (`None` before taxes were recorded).
        pub tax_country: Option<String>,
        pub tax_state: Option<String>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_line {
    use sea_orm::entity::prelude::*;

    /// One line of an order, a price snapshot (`line_no` keeps the order of the request).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "ordering", table_name = "order_line")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub line_no: i32,
        pub edition_id: Uuid,
        pub product_id: Uuid,
        pub publisher_id: Uuid,
        pub kind: String,
        pub product_title: String,
        pub edition_name: String,
        pub unit_price_minor: i64,
        pub quantity: i32,
        /// The tax in one copy's price (`unit_price_minor` is what the buyer paid for it).
        pub unit_tax_minor: i64,
        /// The rate, parts per million.
        pub tax_rate_ppm: i32,
        /// The bundle the line was bought in (`None`: bought on its own).
        pub bundle_id: Option<Uuid>,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_step {
    use sea_orm::entity::prelude::*;

    /// One step of an order's timeline, at most one per (order, step).
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "ordering", table_name = "order_step")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub order_id: Uuid,
        pub step: String,
        pub participant: String,
        pub detail: Option<String>,
        pub occurred_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod product_claim {
    use sea_orm::entity::prelude::*;

    /// One claim per (buyer, digital product): the order that holds it.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(schema_name = "ordering", table_name = "product_claim")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_id: Uuid,
        pub order_id: Uuid,
        pub claimed_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

crate::messaging::messaging_entities!("ordering");

impl From<order_line::Model> for OrderLine {
    fn from(l: order_line::Model) -> OrderLine {
        OrderLine {
            edition_id: l.edition_id,
            product_id: l.product_id,
            publisher_id: l.publisher_id,
            kind: l.kind,
            product_title: l.product_title,
            edition_name: l.edition_name,
            unit_price_minor: l.unit_price_minor,
            quantity: l.quantity,
            unit_tax_minor: l.unit_tax_minor,
            tax_rate_ppm: i64::from(l.tax_rate_ppm),
            bundle_id: l.bundle_id,
        }
    }
}

/// The lines of `order`, in their order (read by the api and by the participants).
pub async fn load_lines(db: &impl ConnectionTrait, order: Uuid) -> Result<Vec<OrderLine>, DbErr> {
    Ok(order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(order))
        .order_by_asc(order_line::Column::LineNo)
        .all(db)
        .await?
        .into_iter()
        .map(OrderLine::from)
        .collect())
}
