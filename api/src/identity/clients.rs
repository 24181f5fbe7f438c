//! API clients of publishers (issue 16, "App credentials"): a publisher's server trades a client
//! id and secret for a short-lived access token (OAuth 2.0 client credentials, `POST
//! /oauth/token`, see `crate::http::oauth`) and then acts as its publisher within the client's
//! scopes.
//!
//! - **The secret** is 256 random bits (`scs_` and 43 base64url characters), shown once, kept
//!   only as its SHA-256. A slow password hash (argon2id, as for passwords) protects secrets of
//!   low entropy against an offline guess; a 256-bit random secret cannot be guessed offline from
//!   its digest whatever the hash, and argon2id would make every token request cost 19 MiB and
//!   tens of milliseconds of CPU (a cheap way to load the api). The digest is compared in
//!   constant time, and an unknown client id is checked against a dummy digest, so the answer
//!   and its time say nothing about which part was wrong.
//! - **Revocation** is immediate: every request with a client's token looks its client up (one
//!   primary-key read; [`active`]), so a revoked client's tokens stop working at once, not only
//!   at their expiry 10 minutes later. The same read records the last use (written at most once
//!   a minute per client).
//! - **Scopes** are granted at creation and never widened; a token request may ask for fewer.

use chrono::{DateTime, Utc};
use domain::identity::entity::api_client;
use domain::identity::{AccountStatus, MAX_CLIENT_NAME_LEN, Role, Scope};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::auth::jwt::AccessToken;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// The prefix of client secrets (lets secret scanners recognise a leaked one).
pub const SECRET_PREFIX: &str = "scs_";
/// Most clients a publisher may hold that are not revoked.
pub const MAX_ACTIVE_CLIENTS: u64 = 20;
/// The last use is written at most this often per client (seconds).
const LAST_USE_EVERY_SECS: i64 = 60;

/// An API client as its publisher sees it (never its secret).
#[derive(Clone, Debug)]
pub struct ApiClient {
    pub id: Uuid,
    pub publisher_id: Uuid,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<api_client::Model> for ApiClient {
    type Error = ApiError;
    fn try_from(m: api_client::Model) -> ApiResult<ApiClient> {
        Ok(ApiClient {
            scopes: Scope::parse_list(&m.scope)
                .map_err(|e| anyhow::anyhow!("stored scope of client {}: {e}", m.id))?,
            id: m.id,
            publisher_id: m.publisher_id,
            name: m.name,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
            last_used_at: m.last_used_at,
        })
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn new_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn publisher_only(me: &Principal) -> ApiResult<()> {
    if me.role == Role::Publisher {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only publishers have API clients"))
    }
}

/// Creates a client of the publisher `me`: the client and its secret (shown this once).
pub async fn create(
    state: &AppState,
    me: &Principal,
    name: &str,
    scopes: &[Scope],
) -> ApiResult<(ApiClient, String)> {
    publisher_only(me)?;
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_CLIENT_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::BadInput {
            field: "name",
            message: format!(
                "the name must have 1 to {MAX_CLIENT_NAME_LEN} characters, without control characters"
            ),
        });
    }
    if scopes.is_empty() {
        return Err(ApiError::BadInput {
            field: "scopes",
            message: "give the client at least one scope".to_owned(),
        });
    }
    let active = api_client::Entity::find()
        .filter(api_client::Column::PublisherId.eq(me.id))
        .filter(api_client::Column::RevokedAt.is_null())
        .count(&state.db)
        .await?;
    if active >= MAX_ACTIVE_CLIENTS {
        return Err(ApiError::Conflict(format!(
            "a publisher may hold at most {MAX_ACTIVE_CLIENTS} API clients; revoke one first"
        )));
    }
    let secret = new_secret();
    let model = api_client::ActiveModel {
        id: Set(domain::id::new_id()),
        publisher_id: Set(me.id),
        name: Set(name.to_owned()),
        secret_sha256: Set(digest(&secret).to_vec()),
        scope: Set(Scope::join(scopes)),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        last_used_at: Set(None),
    }
    .insert(&state.db)
    .await?;
    tracing::info!(client.id = %model.id, publisher.id = %me.id, "API client created");
    Ok((model.try_into()?, secret))
}

/// The clients of the publisher `me`, newest first (revoked ones too).
pub async fn list(state: &AppState, me: &Principal) -> ApiResult<Vec<ApiClient>> {
    publisher_only(me)?;
    api_client::Entity::find()
        .filter(api_client::Column::PublisherId.eq(me.id))
        .order_by_desc(api_client::Column::Id)
        .all(&state.db)
        .await?
        .into_iter()
        .map(ApiClient::try_from)
        .collect()
}

/// Revokes a client of `me` (again: no change). `NOT_FOUND` for another publisher's client.
pub async fn revoke(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<ApiClient> {
    publisher_only(me)?;
    let found = api_client::Entity::find_by_id(id)
        .filter(api_client::Column::PublisherId.eq(me.id))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("API client"))?;
    if found.revoked_at.is_some() {
        return found.try_into();
    }
    let mut model: api_client::ActiveModel = found.into();
    model.revoked_at = Set(Some(Utc::now()));
    let model = model.update(&state.db).await?;
    tracing::info!(client.id = %id, publisher.id = %me.id, "API client revoked");
    model.try_into()
}

/// Why a token request's client was refused (the client sees `invalid_client` for all of them,
/// `invalid_scope` for the last).
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong secret or revoked client.
    #[error("client authentication failed")]
    InvalidClient,
    /// The client's publisher is banned or no longer a publisher (`invalid_grant`).
    #[error("the client's publisher may no longer act")]
    PublisherInactive,
    /// The request asked for a scope the client was not granted.
    #[error("the client was not granted `{0}`")]
    InvalidScope(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Checks a client's id and secret and issues its access token for `requested` scopes (all of
/// its scopes when the request names none).
pub async fn token(
    state: &AppState,
    client_id: &str,
    secret: &str,
    requested: Option<&str>,
) -> Result<(AccessToken, Vec<Scope>), ClientAuthError> {
    let given = digest(secret);
    let found = match client_id.parse::<Uuid>() {
        Ok(id) => api_client::Entity::find_by_id(id)
            .one(&state.db)
            .await
            .map_err(ApiError::from)?,
        Err(_) => None,
    };
    // The same comparison whether or not the client exists.
    let stored = found
        .as_ref()
        .map_or([0u8; 32].to_vec(), |c| c.secret_sha256.clone());
    let secret_ok = constant_time_eq(&stored, &given) && found.is_some();
    let Some(client) = found.filter(|c| secret_ok && c.revoked_at.is_none()) else {
        return Err(ClientAuthError::InvalidClient);
    };
    let client: ApiClient = client.try_into()?;
    let scopes = match requested {
        None => client.scopes.clone(),
        Some(text) => {
            let asked = Scope::parse_list(text).map_err(|e| ClientAuthError::InvalidScope(e.0))?;
            if let Some(extra) = asked.iter().find(|s| !client.scopes.contains(s)) {
                return Err(ClientAuthError::InvalidScope(extra.as_str().to_owned()));
            }
            if asked.is_empty() {
                client.scopes.clone()
            } else {
                asked
            }
        }
    };
    // The publisher must still be an active publisher.
    let publisher = crate::identity::find(state, client.publisher_id).await?;
    let Some(publisher) =
        publisher.filter(|p| p.role == Role::Publisher && p.status == AccountStatus::Active)
    else {
        return Err(ClientAuthError::PublisherInactive);
    };
    let mut principal = publisher.principal();
    principal.name = client.name.clone();
    let token = state
        .keys
        .issue_for_client(&principal, client.id, &scopes)
        .map_err(ApiError::from)?;
    touch(state, client.id).await;
    tracing::info!(client.id = %client.id, "client token issued");
    Ok((token, scopes))
}

/// Whether a client's token may still be used: the client exists, belongs to `publisher` and is
/// not revoked. Records the use (at most once a minute).
pub async fn active(state: &AppState, client: Uuid, publisher: Uuid) -> ApiResult<bool> {
    let found = api_client::Entity::find_by_id(client)
        .one(&state.db)
        .await?;
    let Some(found) = found else {
        return Ok(false);
    };
    if found.publisher_id != publisher || found.revoked_at.is_some() {
        return Ok(false);
    }
    let stale = found
        .last_used_at
        .is_none_or(|t| (Utc::now() - t).num_seconds() >= LAST_USE_EVERY_SECS);
    if stale {
        touch(state, client).await;
    }
    Ok(true)
}

/// Records a use of the client now; a failure is logged, never fatal.
async fn touch(state: &AppState, client: Uuid) {
    let done = api_client::Entity::update_many()
        .col_expr(
            api_client::Column::LastUsedAt,
            sea_orm::prelude::Expr::value(Utc::now()),
        )
        .filter(api_client::Column::Id.eq(client))
        .exec(&state.db)
        .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, client.id = %client, "recording a client's last use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert!(constant_time_eq(&digest(&a), &digest(&a)));
        assert!(!constant_time_eq(&digest(&a), &digest(&b)));
    }
}
