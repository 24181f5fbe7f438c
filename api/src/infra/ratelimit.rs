//! Fixed-window rate limits in Redis (`{ns}:rl:{bucket}:{subject}`), shared by every api replica.
//!
//! Without Redis a limit cannot count. Each caller says what then happens ([`WithoutRedis`]):
//! sign-in, sign-up and top-ups (guessing passwords, testing cards) are refused; the others let
//! the request through.

use fred::prelude::*;
use sha2::{Digest, Sha256};

use crate::infra::auth::caller::ClientAddr;
use crate::infra::config::Rate;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::redis::{KeySpace, RedisHealth};
use crate::infra::state::AppState;

/// What a limit does while Redis is out of reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithoutRedis {
    /// Refuse: `RATE_LIMITED`, the service is temporarily unavailable.
    Refuse,
    /// Let the request through uncounted.
    Allow,
}

/// Where the counters live and whether they can be reached.
#[derive(Clone, Copy)]
pub struct Counters<'a> {
    pub redis: &'a Pool,
    pub health: &'a RedisHealth,
    pub keys: &'a KeySpace,
}

impl<'a> Counters<'a> {
    pub fn of(state: &'a AppState) -> Counters<'a> {
        Counters {
            redis: &state.redis,
            health: &state.redis_health,
            keys: &state.keyspace,
        }
    }
}

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

/// Records one attempt of `bucket` by `subject`; `RateLimited` once over `rate`. Without Redis,
/// what `without` says.
pub async fn hit(
    counters: Counters<'_>,
    bucket: &str,
    subject: &str,
    rate: Rate,
    without: WithoutRedis,
) -> ApiResult<()> {
    let unreachable = || match without {
        WithoutRedis::Refuse => {
            tracing::info!(rate_limit.bucket = bucket, "refused: Redis is down");
            Err(ApiError::unavailable())
        }
        WithoutRedis::Allow => Ok(()),
    };
    if !counters.health.is_up() {
        return unreachable();
    }
    let window_ms = i64::try_from(rate.window.as_millis()).unwrap_or(i64::MAX);
    let counted: Result<(i64, i64), _> = counters
        .redis
        .eval(
            HIT,
            vec![counters.keys.rate_limit(bucket, subject)],
            vec![window_ms],
        )
        .await;
    let (count, ttl_ms) = match counted {
        Ok(c) => c,
        Err(e) if crate::infra::redis::unreachable(&e) => {
            tracing::warn!(error = %e, rate_limit.bucket = bucket, "Redis is out of reach");
            return unreachable();
        }
        Err(e) => return Err(ApiError::Redis(e)),
    };
    if count > i64::from(rate.count) {
        let retry_after_secs = u64::try_from(ttl_ms.max(0))
            .unwrap_or(0)
            .div_ceil(1000)
            .max(1);
        tracing::info!(rate_limit.bucket = bucket, retry_after_secs, "rate limited");
        metrics::counter!("store_rate_limit_refusals_total", "bucket" => domain::metrics::label(bucket))
            .increment(1);
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
    without: WithoutRedis,
) -> ApiResult<()> {
    hit(
        Counters::of(state),
        &format!("{action}-ip"),
        &client.0,
        per_address,
        without,
    )
    .await?;
    hit(
        Counters::of(state),
        &format!("{action}-account"),
        &account.to_string(),
        per_account,
        without,
    )
    .await
}
