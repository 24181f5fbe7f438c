//! Catalog in GraphQL: the storefront's queries, publishers' product management, moderation,
//! reviews, wishlists, and builds and downloads.

pub mod builds;
pub mod bundles;
pub mod chunks;
pub mod discounts;
pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::CatalogMutation;
pub use query::CatalogQuery;
