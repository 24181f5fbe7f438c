//! Authentication: password hashing, access tokens (RS256 JWT), refresh sessions, and the caller
//! of a request.

pub mod caller;
pub mod jwt;
pub mod password;
pub mod session;

pub use caller::{Caller, Principal};

use uuid::Uuid;

use crate::infra::error::ApiResult;
use crate::infra::state::AppState;

/// Whether an access token of `account` issued at `iat` (unknown: `None`) is still good: no
/// session cut in Redis (sign-out everywhere, ban, role change) since it was issued. While Redis
/// is down the cut cannot be read; the account's status in PostgreSQL decides instead, so a ban
/// still holds, while a sign-out everywhere (itself refused while Redis is down) made before the
/// outage is not seen until Redis is back (at most one access token's life).
pub async fn access_allowed(state: &AppState, account: Uuid, iat: Option<i64>) -> ApiResult<bool> {
    match state.sessions.access_allowed(account, iat).await {
        Err(e) if e.is_unavailable() => Ok(crate::identity::find(state, account)
            .await?
            .is_some_and(|a| a.status == domain::identity::AccountStatus::Active)),
        other => other,
    }
}
