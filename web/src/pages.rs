//! The app's pages, one module per area.

pub mod admin;
pub mod auth;
pub mod cart;
pub mod library;
pub mod notifications;
pub mod orders;
pub mod product;
pub mod publisher;
pub mod store;
pub mod wallet;
