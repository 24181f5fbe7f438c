//! Publishing commands and events to NATS JetStream: the shared implementation lives in
//! [`domain::bus`] (behind its `server` feature) so that the saga participants name streams and
//! subjects exactly as the api does.

pub use domain::bus::*;
