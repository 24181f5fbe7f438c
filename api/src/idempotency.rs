//! Idempotency keys of mutations that publish commands (DESIGN §5): `idem:{account}:{key}`
//! holds the hash of the first request's input and its answer for 24 hours.
//!
//! The same key with the same input answers what the first request answered; with another input
//! it is a `CONFLICT`. Concurrent replays race on `SET NX`: one wins, the others read its
//! record. Redis holds no truth here: the thing created has an id derived from (account, key),
//! the command's `Nats-Msg-Id` is that id, and the participant's unique constraints refuse a
//! second creation, so a flushed Redis still yields one order or top-up per key.
//!
//! While Redis is down, [`lookup`] and [`claim`] answer `Unavailable` at once; `placeOrder` then
//! goes on without the record (its replays are recognised from the order itself), top-ups are
//! refused before they get here.

use fred::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// How long an idempotency record lives.
pub const TTL_SECS: i64 = 24 * 3600;

/// Largest idempotency key, characters.
pub const MAX_KEY_LEN: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// `sha256(operation, input)`.
    pub hash: String,
    /// What the first request created.
    pub id: Uuid,
}

/// Hex SHA-256 of `parts`, separated.
pub fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the thing `operation` creates for (account, key).
pub fn derived_id(operation: &str, account: Uuid, key: &str) -> Uuid {
    domain::keys::derived_id(operation, account, key, |b| Sha256::digest(b).into())
}

/// Checks the key's shape.
pub fn check_key(key: &str) -> ApiResult<()> {
    let ok = !key.is_empty()
        && key.chars().count() <= MAX_KEY_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadInput {
            field: "idempotencyKey",
            message: format!(
                "the idempotency key must be 1 to {MAX_KEY_LEN} letters, digits, `-`, `_`, `.` or `:`"
            ),
        })
    }
}

fn key(state: &AppState, account: Uuid, key: &str) -> String {
    domain::keys::idempotency(state.keyspace.namespace(), account, key)
}

/// What an earlier request with this key did: `Some(id)` when it had the same input,
/// `CONFLICT` when it had another.
pub async fn lookup(
    state: &AppState,
    account: Uuid,
    idem_key: &str,
    input_hash: &str,
) -> ApiResult<Option<Uuid>> {
    reachable(state)?;
    let raw: Option<String> = state.redis.get(key(state, account, idem_key)).await?;
    match raw.and_then(|r| serde_json::from_str::<Record>(&r).ok()) {
        Some(r) if r.hash == input_hash => Ok(Some(r.id)),
        Some(_) => Err(reused()),
        None => Ok(None),
    }
}

fn reachable(state: &AppState) -> ApiResult<()> {
    if state.redis_health.is_up() {
        Ok(())
    } else {
        Err(ApiError::unavailable())
    }
}

pub fn reused() -> ApiError {
    ApiError::Conflict("this idempotency key was used for another request".into())
}

/// Claims the key for `record`; when another request claimed it first, answers like
/// [`lookup`] for that request.
pub async fn claim(
    state: &AppState,
    account: Uuid,
    idem_key: &str,
    record: &Record,
) -> ApiResult<Option<Uuid>> {
    reachable(state)?;
    let value = serde_json::to_string(record).map_err(anyhow::Error::from)?;
    let set: Option<String> = state
        .redis
        .set(
            key(state, account, idem_key),
            value,
            Some(Expiration::EX(TTL_SECS)),
            Some(SetOptions::NX),
            false,
        )
        .await?;
    if set.is_some() {
        return Ok(None);
    }
    lookup(state, account, idem_key, &record.hash).await
}

/// Forgets a claim whose command could not be published, so that a retry can proceed.
pub async fn release(state: &AppState, account: Uuid, idem_key: &str) {
    if !state.redis_health.is_up() {
        return;
    }
    let res: Result<i64, _> = state.redis.del(key(state, account, idem_key)).await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "could not release an idempotency key");
    }
}
