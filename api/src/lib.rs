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
pub mod ordering;
pub mod refund;
pub mod seed;

pub use infra::{error::ApiError, state::AppState};
