//! Catalog: products, editions, reviews, wishlists, and the manifests of chunked builds.

pub mod manifest;
mod model;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
