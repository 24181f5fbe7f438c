//! Redis: derived and ephemeral state only (DESIGN §5). Every key is under a configurable
//! namespace so that deployments, and tests, never see each other's keys.
//!
//! The store degrades rather than fails without Redis: [`RedisHealth`] (kept by a watcher that
//! pings every 500 ms) tells the callers whether to try it. Balances and unread counters are then
//! read from PostgreSQL, idempotency falls back to what the ordering tables know, sign-in,
//! sign-up, refresh, sign-out and top-ups are refused with `RATE_LIMITED` (they need Redis's
//! sessions or limits), other rate limits let requests through. When Redis answers again,
//! [`crate::infra::state::rebuild`] repairs the derived state before the flag goes up.

use fred::prelude::*;

pub use domain::redis::RedisHealth;

/// Builds keys under one namespace: `{ns}:{kind}:{id}`.
#[derive(Clone, Debug)]
pub struct KeySpace {
    ns: String,
}

impl KeySpace {
    pub fn new(ns: impl Into<String>) -> KeySpace {
        KeySpace { ns: ns.into() }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Refresh token record, by the SHA-256 of the token.
    pub fn refresh(&self, token_hash: &str) -> String {
        format!("{}:refresh:{token_hash}", self.ns)
    }

    /// Revocation marker of a session family.
    pub fn refresh_family(&self, family: &str) -> String {
        format!("{}:refresh-family:{family}", self.ns)
    }

    /// The session families of an account (for "sign out everywhere" and bans).
    pub fn sessions(&self, account: &str) -> String {
        format!("{}:sessions:{account}", self.ns)
    }

    /// Access tokens of the account issued before this Unix time are refused.
    pub fn session_cut(&self, account: &str) -> String {
        format!("{}:session-cut:{account}", self.ns)
    }

    /// A rate-limit counter.
    pub fn rate_limit(&self, bucket: &str, subject: &str) -> String {
        format!("{}:rl:{bucket}:{subject}", self.ns)
    }
}

/// Connects a small pool, waiting at most [`domain::redis::CONNECT_TIMEOUT`]: an unreachable
/// Redis does not stop the api (it starts degraded and the pool reconnects in the background).
/// Every command fails within [`domain::redis::COMMAND_TIMEOUT`] while Redis is away.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    Ok(connect_reporting(url).await?.0)
}

/// Like [`connect`], and whether Redis answered.
pub async fn connect_reporting(url: &str) -> anyhow::Result<(Pool, bool)> {
    Ok(domain::redis::connect(url, 4).await?)
}

/// Like [`connect`], but an unreachable Redis is an error (commands that exist only to act on
/// Redis, such as `api purge`).
pub async fn connect_now(url: &str) -> anyhow::Result<Pool> {
    let (pool, connected) = connect_reporting(url).await?;
    if !connected {
        pool.quit().await.ok();
        anyhow::bail!("connecting to Redis at {url}: no answer");
    }
    Ok(pool)
}

/// Whether a Redis error means Redis is out of reach (down, restarting, too slow), as opposed
/// to a command Redis refused.
pub fn unreachable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Backpressure
    )
}

/// Runs a Redis command for derived state that PostgreSQL can replace: `None` when Redis is
/// known to be down (without trying) or the command failed (logged), and the caller falls back.
pub async fn optional<T>(
    health: &RedisHealth,
    what: &'static str,
    command: impl Future<Output = Result<T, Error>>,
) -> Option<T> {
    if !health.is_up() {
        return None;
    }
    match command.await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, redis.command = what, "Redis failed; falling back");
            None
        }
    }
}
