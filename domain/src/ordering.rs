//! Ordering: orders, their lines (a price snapshot) and the order state machine of the saga
//! (DESIGN §4).
//!
//! The state machine is a pure function, [`apply`]: (state, event) → (state, effects). It is
//! written for a message system that delivers *at least once and in any order*: every event may
//! arrive twice and the facts of an order may arrive in any order; the end state and the
//! terminal event it emits are the same for every order of arrival (see the property tests).

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
#[cfg(feature = "server")]
pub use entity::load_lines;
