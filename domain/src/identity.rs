//! Identity: accounts, roles, credentials' rules.

mod model;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
