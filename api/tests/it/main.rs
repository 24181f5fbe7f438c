//! Integration tests of the api against real PostgreSQL, Redis and NATS (one binary, as in
//! crates.io). Each test gets its own database cloned from a migrated template and its own Redis
//! namespace, so tests run in parallel and leave nothing behind.

mod abuse;
mod admin;
mod attack;
mod bad_input;
mod bombs;
mod builds;
mod catalog;
mod catalog_scale;
mod chunks;
mod clients;
mod durability;
mod edge;
mod entities;
mod fuzz;
mod gateway;
mod helpers;
mod money;
mod ops;
mod purge;
mod redis_down;
mod refunds;
mod retention;
mod saga;
mod schema;
mod sessions;
mod signup;
mod sockets;
mod spec;
mod statements;
mod tokens;
mod webhooks;
