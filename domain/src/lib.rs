#![doc = include_str!("../README.md")]

pub mod address;
pub mod billing;
#[cfg(feature = "server")]
pub mod bus;
pub mod catalog;
pub mod country;
pub mod error_code;
pub mod fulfillment;
#[cfg(feature = "server")]
pub mod health;
pub mod id;
pub mod identity;
pub mod keys;
pub mod library;
pub mod messaging;
pub mod money;
pub mod notification;
pub mod ordering;
#[cfg(feature = "server")]
pub mod redis;
pub mod refund;
#[cfg(feature = "server")]
pub mod sql;

pub use error_code::ErrorCode;
