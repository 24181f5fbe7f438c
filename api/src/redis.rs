//! Redis: derived and ephemeral state only (DESIGN §5). Every key is under a configurable
//! namespace so that deployments, and tests, never see each other's keys.

use anyhow::Context;
use fred::prelude::*;

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

/// Connects a small pool and waits until it is usable.
pub async fn connect(url: &str) -> anyhow::Result<Pool> {
    let config = Config::from_url(url).context("parsing REDIS_URL")?;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = std::time::Duration::from_secs(5);
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build_pool(4)
        .context("building the Redis pool")?;
    pool.init().await.context("connecting to Redis")?;
    Ok(pool)
}
