//! What every context of the api stands on and none of them owns: configuration, the shared
//! request state, authentication, the database, Redis, the bus, object storage, idempotency,
//! rate limits, purging a throwaway store, and the one error type the edge maps to GraphQL.
//!
//! Nothing here imports a context module; contexts and the GraphQL layer import from here.

pub mod auth;
pub mod bus;
pub mod config;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod objects;
pub mod purge;
pub mod ratelimit;
pub mod redis;
pub mod state;
