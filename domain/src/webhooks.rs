//! Webhooks (issue 16): publishers' endpoints that receive signed events of their products,
//! following the Standard Webhooks conventions (<https://www.standardwebhooks.com/>):
//! `webhook-id`, `webhook-timestamp`, `webhook-signature` = `v1,` + base64 of HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` with the endpoint's secret (`whsec_` + base64 of its bytes).
//!
//! The webhooks participant owns the `webhooks` schema: it applies the api's commands
//! (register, update, rotate the secret, delete, redeliver), records one delivery per
//! (event, endpoint) and sends them with retries.

mod events;
mod model;
pub use events::*;
pub use model::*;

#[cfg(feature = "server")]
pub mod entity;
#[cfg(feature = "server")]
pub mod signature;
#[cfg(feature = "server")]
pub mod target;
