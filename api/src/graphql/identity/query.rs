use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object};
use uuid::Uuid;

use super::types::{
    Account, AccountStatusGql, AuditEntry, RoleGql, account_cursor, parse_account_cursor,
};
use crate::graphql::guard::{RoleGuard, caller};
use crate::graphql::paging;
use crate::identity::{self, AccountFilter, AuditFilter};
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

/// Largest page of a list.
pub const MAX_PAGE: i32 = 100;

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in caller; `null` when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        let state = ctx.data::<AppState>()?;
        Ok(identity::me(state, caller(ctx)).await?.map(Account::from))
    }

    /// Admin: accounts, newest first, searched by e-mail or name.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only accounts whose e-mail or display name contains this text, in any case (optional)."
        )]
        search: Option<String>,
        #[graphql(desc = "Only accounts of this role (optional).")] role: Option<RoleGql>,
        #[graphql(desc = "Only accounts of this status (optional).")] status: Option<
            AccountStatusGql,
        >,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Account>> {
        let state = ctx.data::<AppState>()?;
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::BadInput {
                field: "first",
                message: format!("first must be between 1 and {MAX_PAGE}"),
            }
            .into());
        }
        let after = after.as_deref().map(parse_account_cursor).transpose()?;
        if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
            return Err(ApiError::BadInput {
                field: "search",
                message: "the search text must have at most 200 characters".into(),
            }
            .into());
        }
        let filter = AccountFilter {
            search,
            role: role.map(Into::into),
            status: status.map(Into::into),
        };
        let (rows, more) =
            identity::list_accounts(state, &filter, after, u64::try_from(first).unwrap_or(20))
                .await?;
        let mut conn = Connection::new(after.is_some(), more);
        conn.edges.extend(
            rows.into_iter()
                .map(|a| Edge::new(account_cursor(a.id), Account::from(a))),
        );
        Ok(conn)
    }

    /// Admin: one account.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the account.")] id: Uuid,
    ) -> async_graphql::Result<Option<Account>> {
        let state = ctx.data::<AppState>()?;
        Ok(identity::find(state, id).await?.map(Account::from))
    }

    /// Admin: the audit log, newest first: who did what to whom, and why. `actorId` keeps the
    /// entries of one admin, `targetId` those about one account.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
        #[graphql(desc = "Only the entries of what this admin did (optional).")] actor_id: Option<
            Uuid,
        >,
        #[graphql(desc = "Only the entries about this account (optional).")] target_id: Option<
            Uuid,
        >,
    ) -> async_graphql::Result<Connection<String, AuditEntry>> {
        let state = ctx.data::<AppState>()?;
        let first = paging::page_size(first)?;
        let after = paging::decode::<Uuid>("audit", after.as_deref())?;
        let filter = AuditFilter {
            actor: actor_id,
            target: target_id,
        };
        let (rows, more) = identity::audit_entries(state, filter, after, first).await?;
        let mut conn = Connection::new(after.is_some(), more);
        conn.edges.extend(rows.into_iter().map(|e| {
            Edge::new(
                paging::encode("audit", &e.id.to_string()),
                AuditEntry::from(e),
            )
        }));
        Ok(conn)
    }
}
