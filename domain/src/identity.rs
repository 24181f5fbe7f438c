//! Identity: accounts, roles, credentials' rules, and the scopes of API clients.

mod model;
mod scope;
pub use model::*;
pub use scope::*;

#[cfg(feature = "server")]
pub mod entity;
