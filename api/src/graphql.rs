//! The GraphQL schema: one module per bounded context, merged at the root.

pub mod catalog;
pub mod error;
pub mod guard;
pub mod identity;
pub mod limits;
pub mod schema;

pub use schema::{StoreSchema, build_schema, sdl};
