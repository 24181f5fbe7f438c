//! The GraphQL schema: one module per bounded context, merged at the root.

pub mod billing;
pub mod catalog;
pub mod deadletter;
pub mod error;
pub mod fulfillment;
pub mod guard;
pub mod identity;
pub mod library;
pub mod limits;
pub mod loaders;
pub mod metrics;
pub mod notification;
pub mod operations;
pub mod ordering;
pub mod paging;
pub mod refund;
pub mod revenue;
pub mod schema;
pub mod scopes;
pub mod shield;
pub mod shipment;
pub mod subscription;
pub mod trusted;
pub mod variables;
pub mod webhooks;

pub use schema::{StoreSchema, build_schema, build_schema_without_metrics, sdl};
