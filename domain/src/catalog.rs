//! Catalog: products, editions, reviews, wishlists.

mod model;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
