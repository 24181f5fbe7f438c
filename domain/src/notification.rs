//! Notification: what an account is told about (orders, wallet, sales), and in what words
//! ([`Notifies`]).

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
