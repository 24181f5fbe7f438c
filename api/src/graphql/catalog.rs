//! Catalog in GraphQL: the storefront's queries, publishers' product management, moderation,
//! reviews and wishlists.

pub mod loaders;
pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::CatalogMutation;
pub use query::CatalogQuery;
