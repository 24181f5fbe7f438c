//! What every participant stands on and none of them owns: the runtime and its settings, the
//! consume loop and its batches, the outbox and its relay, the payment provider port, and
//! health.
//!
//! Nothing here imports a participant; each participant registers itself with the consume loop.

pub mod batch;
pub mod consumer;
pub mod health;
pub mod metrics;
pub mod outbox;
pub mod provider;
pub mod runtime;
