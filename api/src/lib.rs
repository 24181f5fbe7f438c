//! The store's api: a GraphQL server (async-graphql on axum) behind the nginx gateway.
//!
//! It writes only the `identity` and `catalog` contexts; everything that belongs to the order saga
//! is published to NATS JetStream. Queries may read every context's tables.
//!
//! Module map: one module per bounded context (`identity`, `catalog` with its builds and
//! search, `ordering`, `billing`, `fulfillment`, `library`, `notification`, `refund`,
//! `deadletter`, `webhooks`), each holding that context's reads and the writes the api owns; [`graphql`]
//! (schema, errors, guards, loaders, one part per context); [`http`] (axum routes, uploads);
//! [`infra`] (configuration, shared state, authentication and sessions, database, Redis, bus,
//! object storage, idempotency, rate limits, purging a throwaway store, the error type), which
//! imports no context; [`cli`] (the subcommands other than `serve`) and [`seed`] (demo data).

pub mod billing;
pub mod catalog;
pub mod cli;
pub mod deadletter;
pub mod fulfillment;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod infra;
pub mod library;
pub mod notification;
pub mod operations;
pub mod ordering;
pub mod refund;
pub mod seed;
pub mod webhooks;

pub use infra::{error::ApiError, state::AppState};
