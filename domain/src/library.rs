//! Library: entitlements (what an account owns) and their license keys.

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
