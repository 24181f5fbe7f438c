//! Fulfillment: inventory of physical editions, reservations, shipments.

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
