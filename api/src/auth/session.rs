//! Refresh sessions in Redis.
//!
//! A refresh token is 256 random bits (base64url), given to the client once and stored only as
//! its SHA-256: `{ns}:refresh:{sha256}` → hash `account family exp state`, expiring with the token.
//! Tokens of one sign-in form a *family*. Every refresh rotates: the presented token is marked
//! `rotated` (and kept until it would have expired) and a new one of the same family is issued.
//! Presenting a rotated token again means it was stolen or replayed, so the whole family is
//! revoked (`{ns}:refresh-family:{family}`), including the newest token. Each step is one Lua
//! script, so many concurrent refreshes of one token issue exactly one successor.
//!
//! One replay is not an attack: a refresh whose answer was lost (the page navigated away, the
//! connection dropped) leaves the client holding the rotated token, and ending the session for
//! it would sign the user out of every tab. So for a short grace (`REFRESH_REUSE_GRACE_SECS`,
//! 15 s by default) after a rotation, presenting the rotated token again returns *the same*
//! successor, as long as that successor has not been used itself. The successor is kept in the
//! rotated token's record only encrypted with a pad derived from the rotated token
//! (`SHA-256("successor:" ‖ token)`), which Redis never sees: reading Redis gives no usable token.
//! Once the successor has been rotated, or the grace has passed, a replay revokes the family as
//! before.
//!
//! Access tokens cannot be recalled, so ending every session of an account (sign-out everywhere,
//! a ban) also writes `{ns}:session-cut:{account}` = now, kept for one access-token lifetime:
//! access tokens issued at or before it are refused.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, SubsecRound, Utc};
use fred::prelude::*;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::error::{ApiError, ApiResult};
use crate::infra::redis::{KeySpace, RedisHealth};

const START: &str = r#"
redis.call('HSET', KEYS[1], 'account', ARGV[1], 'family', ARGV[2], 'exp', ARGV[4], 'state', 'live')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 'ok'
"#;

/// KEYS: old token, new token, family marker, account's sessions.
/// ARGV: account, family, ttl ms, new expiry (unix s), now (unix ms), grace ms, sealed successor.
/// Returns `ok`, `again <sealed successor> <its expiry>` (a replay within the grace), `reused`,
/// `revoked` or `missing`.
const ROTATE: &str = r#"
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'missing' end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'revoked' end
if state ~= 'live' then
  local record = redis.call('HMGET', KEYS[1], 'rotated_at', 'next', 'next_key')
  local rotated_at = tonumber(record[1])
  if rotated_at and record[2] and record[3]
     and tonumber(ARGV[5]) - rotated_at < tonumber(ARGV[6])
     and redis.call('HGET', record[3], 'state') == 'live' then
    return 'again ' .. record[2] .. ' ' .. redis.call('HGET', record[3], 'exp')
  end
  redis.call('SET', KEYS[3], 'reused', 'PX', ARGV[3])
  redis.call('SREM', KEYS[4], ARGV[2])
  return 'reused'
end
redis.call('HSET', KEYS[1], 'state', 'rotated', 'rotated_at', ARGV[5], 'next', ARGV[7], 'next_key', KEYS[2])
redis.call('HSET', KEYS[2], 'account', ARGV[1], 'family', ARGV[2], 'exp', ARGV[4], 'state', 'live')
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return 'ok'
"#;

/// KEYS: family marker, account's sessions. ARGV: family, ttl ms.
const END: &str = r#"
redis.call('SET', KEYS[1], 'signed-out', 'PX', ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
return 'ok'
"#;

/// KEYS: account's sessions, session cut. ARGV: family key prefix, ttl ms, now (unix s), cut ttl ms.
const END_ALL: &str = r#"
local families = redis.call('SMEMBERS', KEYS[1])
for _, f in ipairs(families) do
  redis.call('SET', ARGV[1] .. f, 'ended', 'PX', ARGV[2])
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return #families
"#;

/// A refresh token handed to the client.
#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Sessions {
    redis: Pool,
    health: RedisHealth,
    keys: KeySpace,
    ttl: Duration,
    access_ttl: Duration,
    reuse_grace: Duration,
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    B64.encode(bytes)
}

/// The pad that seals the successor of `token`: only who holds `token` can derive it.
fn successor_pad(token: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"successor:")
        .chain_update(token.as_bytes())
        .finalize()
        .into()
}

/// Seals (or opens: the same XOR) a successor token with the pad of the token it replaces.
/// Tokens are 32 bytes; anything else is not a token of ours and opens to `None`.
fn seal(token: &str, successor: &[u8]) -> Option<Vec<u8>> {
    (successor.len() == 32).then(|| {
        successor
            .iter()
            .zip(successor_pad(token))
            .map(|(byte, pad)| byte ^ pad)
            .collect()
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Sessions {
    pub fn new(
        redis: Pool,
        health: RedisHealth,
        keys: KeySpace,
        ttl: Duration,
        access_ttl: Duration,
        reuse_grace: Duration,
    ) -> Sessions {
        Sessions {
            redis,
            health,
            keys,
            ttl,
            access_ttl,
            reuse_grace,
        }
    }

    /// Sessions live only in Redis: while it is down, every operation on them is refused at
    /// once (`RATE_LIMITED`, temporarily unavailable) instead of waiting for a timeout.
    fn reachable(&self) -> ApiResult<()> {
        if self.health.is_up() {
            Ok(())
        } else {
            Err(ApiError::unavailable())
        }
    }

    /// When a token issued now expires, in whole seconds (as its record keeps it).
    fn expiry(&self) -> DateTime<Utc> {
        (Utc::now() + chrono::Duration::milliseconds(millis(self.ttl))).trunc_subsecs(0)
    }

    /// Starts a new session family for `account`.
    pub async fn start(&self, account: Uuid) -> ApiResult<RefreshToken> {
        self.reachable()?;
        let token = new_token();
        let family = domain::id::new_id().to_string();
        let expires_at = self.expiry();
        let account = account.to_string();
        let _: String = self
            .redis
            .eval(
                START,
                vec![
                    self.keys.refresh(&token_hash(&token)),
                    self.keys.sessions(&account),
                ],
                vec![
                    account.clone(),
                    family,
                    millis(self.ttl).to_string(),
                    expires_at.timestamp().to_string(),
                ],
            )
            .await?;
        Ok(RefreshToken { token, expires_at })
    }

    /// Rotates `token`: returns its account and a new token of the same family (or, replayed
    /// within the grace while that one is unused, the same new token again).
    pub async fn rotate(&self, token: &str) -> ApiResult<(Uuid, RefreshToken)> {
        self.reachable()?;
        let old_key = self.keys.refresh(&token_hash(token));
        let (account, family): (Option<String>, Option<String>) = self
            .redis
            .hmget(&old_key, vec!["account", "family"])
            .await?;
        let (Some(account), Some(family)) = (account, family) else {
            return Err(ApiError::SessionEnded);
        };
        let account_id: Uuid = account
            .parse()
            .map_err(|_| anyhow::anyhow!("corrupt refresh record"))?;
        let new = new_token();
        let sealed = B64.encode(
            seal(token, &B64.decode(&new).map_err(anyhow::Error::from)?)
                .ok_or_else(|| anyhow::anyhow!("a new token is 32 bytes"))?,
        );
        let expires_at = self.expiry();
        let outcome: String = self
            .redis
            .eval(
                ROTATE,
                vec![
                    old_key,
                    self.keys.refresh(&token_hash(&new)),
                    self.keys.refresh_family(&family),
                    self.keys.sessions(&account),
                ],
                vec![
                    account.clone(),
                    family.clone(),
                    millis(self.ttl).to_string(),
                    expires_at.timestamp().to_string(),
                    Utc::now().timestamp_millis().to_string(),
                    millis(self.reuse_grace).to_string(),
                    sealed,
                ],
            )
            .await?;
        if let Some(again) = outcome.strip_prefix("again ") {
            // The answer to the first rotation was lost: hand out the same successor, with the
            // expiry it was issued with.
            let corrupt = || anyhow::anyhow!("corrupt successor in refresh record");
            let (sealed, exp) = again.split_once(' ').ok_or_else(corrupt)?;
            let successor = B64
                .decode(sealed)
                .ok()
                .and_then(|sealed| seal(token, &sealed))
                .ok_or_else(corrupt)?;
            let expires_at = exp
                .parse()
                .ok()
                .and_then(|exp| DateTime::from_timestamp(exp, 0))
                .ok_or_else(corrupt)?;
            tracing::info!(account.id = %account_id, session.family = %family,
                "rotated refresh token presented again within the grace; same successor returned");
            return Ok((
                account_id,
                RefreshToken {
                    token: B64.encode(successor),
                    expires_at,
                },
            ));
        }
        match outcome.as_str() {
            "ok" => Ok((
                account_id,
                RefreshToken {
                    token: new,
                    expires_at,
                },
            )),
            "reused" => {
                tracing::warn!(account.id = %account_id, session.family = %family,
                    "refresh token reused; session family revoked");
                Err(ApiError::SessionEnded)
            }
            _ => Err(ApiError::SessionEnded),
        }
    }

    /// Ends the session family of `token` (sign-out). Unknown tokens are ignored: signing out
    /// twice is not an error.
    pub async fn end(&self, token: &str) -> ApiResult<Option<Uuid>> {
        self.reachable()?;
        let key = self.keys.refresh(&token_hash(token));
        let (account, family): (Option<String>, Option<String>) =
            self.redis.hmget(&key, vec!["account", "family"]).await?;
        let (Some(account), Some(family)) = (account, family) else {
            return Ok(None);
        };
        let _: String = self
            .redis
            .eval(
                END,
                vec![
                    self.keys.refresh_family(&family),
                    self.keys.sessions(&account),
                ],
                vec![family, millis(self.ttl).to_string()],
            )
            .await?;
        Ok(account.parse().ok())
    }

    /// Ends every session of `account` and refuses its access tokens issued until now.
    pub async fn end_all(&self, account: Uuid) -> ApiResult<u64> {
        self.reachable()?;
        self.end_all_now(account).await
    }

    /// [`Sessions::end_all`] even while the flag says Redis is down (the repair that runs when
    /// it answers again, before the flag goes up).
    pub async fn end_all_now(&self, account: Uuid) -> ApiResult<u64> {
        let account = account.to_string();
        let family_prefix = self.keys.refresh_family("");
        let cut_ttl =
            self.access_ttl + Duration::from_secs(crate::infra::auth::jwt::LEEWAY_SECS + 60);
        let ended: i64 = self
            .redis
            .eval(
                END_ALL,
                vec![
                    self.keys.sessions(&account),
                    self.keys.session_cut(&account),
                ],
                vec![
                    family_prefix,
                    millis(self.ttl).to_string(),
                    Utc::now().timestamp().to_string(),
                    millis(cut_ttl).to_string(),
                ],
            )
            .await?;
        Ok(u64::try_from(ended).unwrap_or(0))
    }

    /// Whether an access token of `account` issued at `iat` (unknown: `None`) is still good.
    /// `Unavailable` while Redis is down (see [`crate::infra::auth::access_allowed`] for the fallback).
    pub async fn access_allowed(&self, account: Uuid, iat: Option<i64>) -> ApiResult<bool> {
        self.reachable()?;
        let cut: Option<i64> = self
            .redis
            .get(self.keys.session_cut(&account.to_string()))
            .await?;
        Ok(match (cut, iat) {
            (None, _) => true,
            (Some(cut), Some(iat)) => iat > cut,
            (Some(_), None) => false,
        })
    }
}
