//! Fulfillment: inventory of physical editions, reservations, shipments.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::messaging::Message;

/// How a stock change applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockMode {
    /// The stock on hand becomes `quantity` (never below what is reserved).
    Set,
    /// `quantity` (may be negative) is added to the stock on hand.
    Add,
}

/// Largest stock change or level accepted at once.
pub const MAX_STOCK: i64 = 1_000_000;

/// `cmd.fulfillment.adjust_stock`: a publisher changes the stock of a physical edition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustStock {
    pub edition_id: Uuid,
    pub product_id: Uuid,
    pub publisher_id: Uuid,
    pub mode: StockMode,
    pub quantity: i64,
}

impl Message for AdjustStock {
    const TYPE: &'static str = "fulfillment.adjust_stock";
    const VERSION: u32 = 1;
    fn subject(&self) -> String {
        "cmd.fulfillment.adjust_stock".to_owned()
    }
}

#[cfg(feature = "server")]
pub mod entity {
    //! Entities of the `fulfillment` schema (written by the fulfillment participant only).

    pub mod inventory {
        use sea_orm::entity::prelude::*;

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
}
