//! Catalog: products, editions, reviews, wishlists, and the manifests of chunked builds.

pub mod bundle;
pub mod discount;
mod events;
pub mod manifest;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
