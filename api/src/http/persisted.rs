//! Automatic persisted queries: Apollo's `extensions.persistedQuery` protocol (version 1), over
//! POST and GET, so that a client sends a document's SHA-256 instead of the document, and a GET of
//! a catalog read is a short URL a CDN can cache.
//!
//! - `extensions.persistedQuery = {"version": 1, "sha256Hash": H}` without `query`: the document
//!   registered under `H` runs. Unknown: `PERSISTED_QUERY_NOT_FOUND` (message
//!   `PersistedQueryNotFound`, which Apollo's and urql's links recognise), and the client sends
//!   the request again with the document.
//! - With `query` as well: `H` must be the lowercase hex SHA-256 of the document (400
//!   `BAD_REQUEST` otherwise); the document is registered once it passed the precheck (so no
//!   document the store would refuse is ever kept) and runs as usual.
//! - The web app's own documents are known by hash from the start ([`crate::graphql::trusted`]);
//!   others live in Redis under `{ns}:apq:{H}` for [`TTL_SECS`], shared by every api replica.
//!   Without Redis nothing is found or kept: clients fall back to sending their documents.
//! - Redis is not a dump for strangers: a document over [`MAX_DOCUMENT_BYTES`] is run but not
//!   kept, and one client address registers at most [`REGISTRATIONS_PER_HOUR`] documents an
//!   hour (the next ones run but are not kept). A store's own clients send a few dozen
//!   documents, registered on the first miss of each; a flood of distinct documents from one
//!   address costs Redis at most that many a day.

use fred::prelude::*;

use crate::infra::auth::caller::ClientAddr;
use crate::infra::config::Rate;
use crate::infra::ratelimit::{self, WithoutRedis};
use crate::infra::state::AppState;

/// How long a registered document is kept (seconds): a day. A client that finds it gone sends it
/// again.
pub const TTL_SECS: i64 = 24 * 3600;

/// Largest document kept (bytes). The SPA's largest operation is about 2 KB.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

/// Documents one client address may register in an hour.
pub const REGISTRATIONS_PER_HOUR: u32 = 60;

/// The message of an unknown hash (code `PERSISTED_QUERY_NOT_FOUND`), as the protocol's clients
/// expect it.
pub const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";

/// The hash a request names, when it uses the protocol.
pub fn requested_hash(request: &async_graphql::Request) -> Result<Option<String>, String> {
    use async_graphql::Value;
    let Some(persisted) = request.extensions.get("persistedQuery") else {
        return Ok(None);
    };
    let Value::Object(fields) = persisted else {
        return Err("`extensions.persistedQuery` must be a map".to_owned());
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_i64() == Some(1) => {}
        _ => return Err("`extensions.persistedQuery.version` must be 1".to_owned()),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(h))
            if h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(Some(h.clone()))
        }
        _ => {
            Err("`extensions.persistedQuery.sha256Hash` must be 64 lowercase hex digits".to_owned())
        }
    }
}

pub use crate::graphql::trusted::hash_of;

fn key(state: &AppState, hash: &str) -> String {
    format!("{}:apq:{hash}", state.keyspace.namespace())
}

/// The document registered under `hash`, if any: one of the web app's own documents (known to
/// every replica, see [`crate::graphql::trusted`]), else one registered in Redis (none without
/// Redis).
pub async fn lookup(state: &AppState, hash: &str) -> Option<String> {
    if let Some(document) = crate::graphql::trusted::document(hash) {
        return Some(document.to_owned());
    }
    crate::infra::redis::optional::<Option<String>>(
        &state.redis_health,
        "read a persisted query",
        state.redis.get(key(state, hash)),
    )
    .await
    .flatten()
}

/// Registers `query` under its hash, sent by `client` (best effort: without Redis, too big, or
/// over the address's hourly count, it is simply not kept).
pub async fn register(state: &AppState, hash: &str, query: &str, client: &ClientAddr) {
    if query.len() > MAX_DOCUMENT_BYTES {
        tracing::debug!(bytes = query.len(), "persisted query not kept: too big");
        return;
    }
    let rate = Rate {
        count: REGISTRATIONS_PER_HOUR,
        window: std::time::Duration::from_secs(3600),
    };
    let counters = ratelimit::Counters::of(state);
    let allowed = ratelimit::hit(counters, "apq", &client.0, rate, WithoutRedis::Allow).await;
    if allowed.is_err() {
        tracing::info!("persisted query not kept: the address registered enough this hour");
        return;
    }
    crate::infra::redis::optional::<()>(
        &state.redis_health,
        "keep a persisted query",
        state.redis.set(
            key(state, hash),
            query,
            Some(Expiration::EX(TTL_SECS)),
            None,
            false,
        ),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_lowercase_hex_sha256_of_the_document() {
        assert_eq!(
            hash_of("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }
}
