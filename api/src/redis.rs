//! Redis: derived and ephemeral state only (DESIGN §5). Every key is under a configurable
//! namespace so that deployments, and tests, never see each other's keys.
//!
//! The store degrades rather than fails without Redis: [`RedisHealth`] (kept by a watcher that
//! pings every 500 ms) tells the callers whether to try it. Balances and unread counters are then
//! read from PostgreSQL, idempotency falls back to what the ordering tables know, sign-in,
//! sign-up, refresh, sign-out and top-ups are refused with `RATE_LIMITED` (they need Redis's
//! sessions or limits), other rate limits let requests through. When Redis answers again,
//! [`rebuild`] repairs the derived state before the flag goes up.

use chrono::{DateTime, Utc};
use fred::prelude::*;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

pub use domain::redis::RedisHealth;
use domain::sql::stmt;

use crate::infra::state::AppState;

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
    state: &AppState,
    what: &'static str,
    command: impl Future<Output = Result<T, Error>>,
) -> Option<T> {
    if !state.redis_health.is_up() {
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

/// Runs the watcher of Redis's health for the api's lifetime (see [`domain::redis::watch`]).
pub fn spawn_watcher(state: &AppState) {
    let pool = state.redis.clone();
    let health = state.redis_health.clone();
    let state = state.clone();
    tokio::spawn(domain::redis::watch(pool, health, move |last_seen_up| {
        let state = state.clone();
        async move { rebuild(&state, last_seen_up).await }
    }));
}

/// How far before the last good ping a write may have started and still have missed Redis (a
/// transaction's `now()` is its start; the participant refreshes Redis after its commit).
const REBUILD_MARGIN_SECS: i64 = 60;

/// Repairs the derived state after Redis was away since `last_seen_up` (`None`: unknown, so
/// everything): the balance of each wallet that changed is written again from PostgreSQL (the
/// version check keeps a newer value a participant wrote meanwhile), and the unread counters of
/// accounts whose notifications changed are dropped (the next read counts them from the table),
/// and the sessions of accounts banned or given another role meanwhile are cut.
/// A Redis that lost everything needs none of it (misses are read from PostgreSQL); one that
/// kept its data would otherwise serve what it held before the outage.
pub async fn rebuild(
    state: &AppState,
    last_seen_up: Option<DateTime<Utc>>,
) -> Result<(), RebuildError> {
    let since = last_seen_up.map(|t| t - chrono::Duration::seconds(REBUILD_MARGIN_SECS));
    let ns = state.keyspace.namespace();
    let wallets = state
        .db
        .query_all_raw(stmt(
            "SELECT account_id, balance_minor, version FROM billing.wallet \
             WHERE $1::timestamptz IS NULL OR updated_at >= $1",
            [since.into()],
        ))
        .await?;
    for w in &wallets {
        let account: Uuid = w.try_get("", "account_id")?;
        let balance: i64 = w.try_get("", "balance_minor")?;
        let version: i64 = w.try_get("", "version")?;
        let _: i64 = state
            .redis
            .eval(
                domain::keys::SET_BALANCE_LUA,
                vec![domain::keys::balance(ns, account)],
                vec![
                    balance.to_string(),
                    version.to_string(),
                    domain::keys::BALANCE_TTL_SECS.to_string(),
                ],
            )
            .await?;
    }
    let readers = state
        .db
        .query_all_raw(stmt(
            "SELECT DISTINCT account_id FROM notification.notification \
             WHERE $1::timestamptz IS NULL OR created_at >= $1 OR read_at >= $1",
            [since.into()],
        ))
        .await?;
    for chunk in readers.chunks(500) {
        let keys = chunk
            .iter()
            .map(|r| Ok(domain::keys::unread(ns, r.try_get("", "account_id")?)))
            .collect::<Result<Vec<String>, sea_orm::DbErr>>()?;
        let _: i64 = state.redis.del(keys).await?;
    }
    // Bans and role changes made meanwhile could not cut their sessions: cut them now. Only
    // access tokens still alive matter (a refresh reads the account from PostgreSQL).
    let token_life = state.config.jwt.access_ttl
        + std::time::Duration::from_secs(
            crate::infra::auth::jwt::LEEWAY_SECS + REBUILD_MARGIN_SECS as u64,
        );
    let alive_since = Utc::now() - chrono::Duration::from_std(token_life).unwrap_or_default();
    let cut_since = since.map_or(alive_since, |s| s.max(alive_since));
    let cut = state
        .db
        .query_all_raw(stmt(
            "SELECT DISTINCT target_id FROM identity.audit_log WHERE occurred_at >= $1 \
             AND target_id IS NOT NULL AND (action = 'account.set_role' \
             OR (action = 'account.set_status' AND detail->>'to' = 'banned'))",
            [cut_since.into()],
        ))
        .await?;
    for row in &cut {
        let account: Uuid = row.try_get("", "target_id")?;
        state
            .sessions
            .end_all_now(account)
            .await
            .map_err(|e| RebuildError::Sessions(e.to_string()))?;
    }
    tracing::info!(
        wallets = wallets.len(),
        unread_counters = readers.len(),
        sessions_cut = cut.len(),
        "rebuilt Redis's derived state"
    );
    Ok(())
}

/// Why [`rebuild`] stopped (it is tried again on the next ping).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("reading PostgreSQL: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("writing Redis: {0}")]
    Redis(#[from] Error),
    #[error("cutting sessions: {0}")]
    Sessions(String),
}
