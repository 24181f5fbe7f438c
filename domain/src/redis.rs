//! Redis connections that fail fast, and a watcher of Redis's health, shared by the api and the
//! saga participants (`server` feature only).
//!
//! Redis holds only derived and ephemeral state (DESIGN §5), so the store keeps serving without
//! it: a process starts whether Redis answers or not, a command to a dead Redis gives up after
//! [`COMMAND_TIMEOUT`] instead of waiting for a reconnection, the pool reconnects by itself when
//! Redis is back, and [`watch`] keeps a flag ([`RedisHealth`]) that lets callers go straight to
//! PostgreSQL (or refuse) while Redis is down instead of paying the timeout on every request.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;

/// How long opening a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long any command may take, reconnection included, before it fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How often [`watch`] pings Redis.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// A Redis URL or pool that cannot be used at all (unlike an unreachable server, which only
/// makes the process start degraded).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("parsing REDIS_URL: {0}")]
    Url(Error),
    #[error("building the Redis pool: {0}")]
    Pool(Error),
}

/// Builds a pool of `size` connections and starts connecting it, waiting at most
/// [`CONNECT_TIMEOUT`] for it. A Redis that does not answer is not an error: the pool keeps
/// reconnecting in the background (every 2 s at most) and its commands fail within
/// [`COMMAND_TIMEOUT`] until then. Returns the pool and whether it connected.
pub async fn connect(url: &str, size: usize) -> Result<(Pool, bool), RedisSetupError> {
    let mut config = Config::from_url(url).map_err(RedisSetupError::Url)?;
    // Run the reconnection policy on the first connection too, instead of failing it.
    config.fail_fast = false;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = CONNECT_TIMEOUT;
            c.internal_command_timeout = CONNECT_TIMEOUT;
            // A server that stops answering without closing its sockets (a partition) is
            // dropped and reconnected like one that closed them.
            c.unresponsive = UnresponsiveConfig {
                max_timeout: Some(Duration::from_secs(2)),
                interval: Duration::from_millis(500),
            };
        })
        .with_performance_config(|p| {
            p.default_command_timeout = COMMAND_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .build_pool(size)
        .map_err(RedisSetupError::Pool)?;
    // The connection tasks run until the pool quits; dropping their handle does not stop them.
    drop(pool.connect());
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, pool.wait_for_connect())
        .await
        .is_ok_and(|r| r.is_ok());
    if !connected {
        tracing::warn!("Redis is unreachable; starting degraded (it is retried in the background)");
    }
    Ok((pool, connected))
}

/// Whether Redis answered the last ping of [`watch`]. Cheap to clone: every clone shares one flag.
#[derive(Clone, Debug)]
pub struct RedisHealth {
    up: Arc<AtomicBool>,
}

impl RedisHealth {
    pub fn new(up: bool) -> RedisHealth {
        RedisHealth {
            up: Arc::new(AtomicBool::new(up)),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Sets the flag; returns what it was.
    pub fn set(&self, up: bool) -> bool {
        self.up.swap(up, Ordering::Relaxed)
    }
}

impl Default for RedisHealth {
    /// Up: a process assumes Redis answers until a ping says otherwise.
    fn default() -> RedisHealth {
        RedisHealth::new(true)
    }
}

/// Whether one ping of `pool` is answered within [`COMMAND_TIMEOUT`].
pub async fn ping(pool: &Pool) -> bool {
    tokio::time::timeout(COMMAND_TIMEOUT, pool.ping::<String>(None))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Pings `pool` every [`WATCH_INTERVAL`] forever, keeping `health` and logging each change once.
///
/// When Redis answers again after an outage (or for the first time, when the process started
/// without it), `on_return` runs before the flag goes up, given the last time Redis was seen
/// answering (`None`: not since the process started); it repairs what the outage left stale.
/// Until it succeeds the flag stays down (callers keep using PostgreSQL) and it is tried again
/// on the next ping.
pub async fn watch<F, Fut, E>(pool: Pool, health: RedisHealth, mut on_return: F)
where
    F: FnMut(Option<DateTime<Utc>>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut last_seen_up: Option<DateTime<Utc>> = health.is_up().then(Utc::now);
    let mut ticks = tokio::time::interval(WATCH_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = std::time::Instant::now();
        let answers = ping(&pool).await;
        if answers {
            metrics::histogram!("store_redis_ping_seconds").record(started.elapsed());
        }
        metrics::gauge!("store_redis_up").set(if answers { 1.0 } else { 0.0 });
        match (health.is_up(), answers) {
            (true, true) => last_seen_up = Some(Utc::now()),
            (true, false) => {
                health.set(false);
                tracing::warn!(
                    "Redis is down: serving from PostgreSQL, sign-in and top-ups refused until it is back"
                );
            }
            (false, true) => match on_return(last_seen_up).await {
                Ok(()) => {
                    health.set(true);
                    last_seen_up = Some(Utc::now());
                    tracing::warn!(
                        "Redis is back: derived state rebuilt, serving from Redis again"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis is back but rebuilding its derived state failed; retrying");
                }
            },
            (false, false) => {}
        }
    }
}
