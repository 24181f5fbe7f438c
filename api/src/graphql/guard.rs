//! Role guards. Ownership checks live next to the data they protect.

use async_graphql::{Context, Guard};
use domain::identity::Role;

use crate::infra::auth::caller::ClientAddr;
use crate::infra::auth::{Caller, Principal};
use crate::infra::error::ApiError;

/// The caller of the current request.
pub fn caller<'a>(ctx: &'a Context<'_>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&Caller::Anonymous)
}

/// Who a catalog read is for: the signed-in caller, except an API client without
/// `catalog:read`, which sees the catalog as the public does (no drafts, no builds in the making,
/// no moderation notes of its publisher: the public catalog needs no scope, its publisher's
/// unpublished view does).
pub fn catalog_viewer<'a>(ctx: &'a Context<'_>) -> Option<&'a Principal> {
    let me = caller(ctx).principal()?;
    match ctx.data_opt::<crate::infra::auth::ClientGrant>() {
        Some(grant) if !grant.allows(domain::identity::Scope::CatalogRead) => None,
        _ => Some(me),
    }
}

/// The client's address (`unknown` when the transport did not give one).
pub fn client_addr(ctx: &Context<'_>) -> ClientAddr {
    ctx.data_opt::<ClientAddr>()
        .cloned()
        .unwrap_or_else(|| ClientAddr("unknown".into()))
}

/// The signed-in caller, or `UNAUTHENTICATED`.
pub fn principal<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    caller(ctx).principal().ok_or(ApiError::SignInRequired)
}

/// The shared state and the signed-in caller: what every authorised resolver starts with.
/// Whose data a publisher-facing read shows: an admin names the publisher (`BAD_USER_INPUT`
/// without one); a publisher sees its own (`FORBIDDEN` for another's, saying `what`).
pub fn publisher_in_view(
    me: &Principal,
    publisher_id: Option<uuid::Uuid>,
    what: &'static str,
) -> Result<uuid::Uuid, ApiError> {
    match (me.role, publisher_id) {
        (Role::Admin, Some(p)) => Ok(p),
        (Role::Admin, None) => Err(ApiError::BadInput {
            field: "publisherId",
            message: "admins name the publisher".into(),
        }),
        (_, Some(p)) if p != me.id => Err(ApiError::Forbidden(what)),
        _ => Ok(me.id),
    }
}

pub fn acting<'a>(
    ctx: &'a Context<'_>,
) -> async_graphql::Result<(&'a crate::infra::state::AppState, &'a Principal)> {
    Ok((
        ctx.data::<crate::infra::state::AppState>()?,
        principal(ctx)?,
    ))
}

/// Lets through only signed-in callers whose role is one of `roles`.
pub struct RoleGuard {
    roles: &'static [Role],
}

impl RoleGuard {
    pub const fn admin() -> RoleGuard {
        RoleGuard {
            roles: &[Role::Admin],
        }
    }

    pub const fn publisher() -> RoleGuard {
        RoleGuard {
            roles: &[Role::Publisher],
        }
    }

    pub const fn publisher_or_admin() -> RoleGuard {
        RoleGuard {
            roles: &[Role::Publisher, Role::Admin],
        }
    }

    pub const fn signed_in() -> RoleGuard {
        RoleGuard { roles: &Role::ALL }
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let p = principal(ctx)?;
        if self.roles.contains(&p.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your role may not do this").into())
        }
    }
}
