#![doc = include_str!("../README.md")]

pub mod error_code;
pub mod id;
pub mod identity;

pub use error_code::ErrorCode;
