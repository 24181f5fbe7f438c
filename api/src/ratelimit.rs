//! Fixed-window rate limits in Redis (`{ns}:rl:{bucket}:{subject}`), shared by every api replica.

use fred::prelude::*;
use sha2::{Digest, Sha256};

use crate::auth::caller::ClientAddr;
use crate::config::Rate;
use crate::error::{ApiError, ApiResult};
use crate::redis::KeySpace;
use crate::state::AppState;

/// Counts one event and reports whether the window is still under its limit. Atomic: the counter
/// and its expiry are set in one script, so a crash never leaves a counter without a TTL.
const HIT: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"#;

/// A subject that must not appear in Redis as is (an e-mail address) is hashed.
pub fn hashed(subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Records one attempt of `bucket` by `subject`; `RateLimited` once over `rate`.
pub async fn hit(
    redis: &Pool,
    keys: &KeySpace,
    bucket: &str,
    subject: &str,
    rate: Rate,
) -> ApiResult<()> {
    let window_ms = i64::try_from(rate.window.as_millis()).unwrap_or(i64::MAX);
    let (count, ttl_ms): (i64, i64) = redis
        .eval(HIT, vec![keys.rate_limit(bucket, subject)], vec![window_ms])
        .await?;
    if count > i64::from(rate.count) {
        let retry_after_secs = u64::try_from(ttl_ms.max(0))
            .unwrap_or(0)
            .div_ceil(1000)
            .max(1);
        tracing::info!(rate_limit.bucket = bucket, retry_after_secs, "rate limited");
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    Ok(())
}

/// Counts one `action` (`topup`, `redeem`) of `account` from `client` against its per-address
/// and its per-account limit: buckets `{action}-ip` and `{action}-account`. The resolver calls it,
/// so it holds on every transport (HTTP, upload, WebSocket), behind the gateway's own limit.
pub async fn hit_account_and_address(
    state: &AppState,
    action: &str,
    account: uuid::Uuid,
    client: &ClientAddr,
    per_account: Rate,
    per_address: Rate,
) -> ApiResult<()> {
    hit(
        &state.redis,
        &state.keyspace,
        &format!("{action}-ip"),
        &client.0,
        per_address,
    )
    .await?;
    hit(
        &state.redis,
        &state.keyspace,
        &format!("{action}-account"),
        &account.to_string(),
        per_account,
    )
    .await
}
