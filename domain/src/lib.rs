#![doc = include_str!("../README.md")]

pub mod catalog;
pub mod error_code;
pub mod fulfillment;
pub mod id;
pub mod identity;
pub mod messaging;
pub mod money;

pub use error_code::ErrorCode;
