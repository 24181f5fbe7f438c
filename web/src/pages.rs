//! The app's pages, one module per area.

pub mod admin;
pub mod admin_orders;
pub mod audit;
pub mod auth;
pub mod builds;
pub mod bundle;
pub mod cart;
pub mod clients;
pub mod downloads;
pub mod giftkeys;
pub mod library;
pub mod notice;
pub mod notifications;
pub mod operations;
pub mod orders;
pub mod product;
pub mod publisher;
pub mod publisher_bundles;
pub mod refunds;
pub mod revenue;
pub mod store;
pub mod wallet;
pub mod webhooks;
