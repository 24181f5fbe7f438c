//! The store's api: a GraphQL server (async-graphql on axum) behind the nginx gateway.
//!
//! It writes only the `identity` and `catalog` contexts; everything that belongs to the order saga
//! is published to NATS JetStream. Queries may read every context's tables.
//!
//! Module map: [`config`] (typed configuration from the environment), [`state`] (what every
//! request shares), [`auth`] (passwords, access tokens, refresh sessions, callers),
//! [`identity`] (account rules and storage), [`graphql`] (schema, errors, guards),
//! [`http`] (axum routes), [`cli`] (the subcommands other than `serve`), [`purge`] (removing
//! what a throwaway store made).

pub mod auth;
pub mod billing;
pub mod builds;
pub mod bus;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod deadletter;
pub mod error;
pub mod fulfillment;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod library;
pub mod notification;
pub mod objects;
pub mod ordering;
pub mod purge;
pub mod ratelimit;
pub mod redis;
pub mod refund;
pub mod seed;
pub mod state;

pub use error::ApiError;
pub use state::AppState;
