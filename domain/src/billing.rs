//! Billing: wallets, the append-only ledger, top-ups and the payment provider's rules.

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
