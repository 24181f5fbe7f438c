use async_graphql::{Context, Object};
use uuid::Uuid;

use super::types::{
    Account, AccountStatusGql, AuthPayload, CreateAccountInput, RoleGql, SignInInput, SignUpInput,
};
use crate::graphql::guard::{RoleGuard, acting};
use crate::identity::{self, NewAccount};
use crate::infra::auth::caller::{ClientAddr, ClientCountry};
use crate::infra::state::AppState;

#[derive(Default)]
pub struct IdentityMutation;

fn client(ctx: &Context<'_>) -> ClientAddr {
    ctx.data_opt::<ClientAddr>()
        .cloned()
        .unwrap_or_else(|| ClientAddr("unknown".into()))
}

#[Object]
impl IdentityMutation {
    /// Creates a `USER` account and signs it in. Publishers and admins are created by admins.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The new account's e-mail, password (10 to 256 characters) and display name."
        )]
        input: SignUpInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.data::<AppState>()?;
        let session = identity::sign_up(
            state,
            &input.email,
            &input.password,
            &input.display_name,
            &client(ctx),
            &ctx.data_opt::<ClientCountry>().cloned().unwrap_or_default(),
        )
        .await?;
        Ok(session.into())
    }

    /// Signs in with e-mail and password.
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The e-mail and password of the account.")] input: SignInInput,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.data::<AppState>()?;
        let session = identity::sign_in(state, &input.email, &input.password, &client(ctx)).await?;
        Ok(session.into())
    }

    /// Trades a refresh token for a new pair. The old refresh token stops working; presenting it
    /// again ends the whole session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the session, as the last `AuthPayload` gave it.")]
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        let state = ctx.data::<AppState>()?;
        Ok(identity::refresh(state, &refresh_token).await?.into())
    }

    /// Ends the session of this refresh token. Always `true`: signing out twice is fine.
    async fn sign_out(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token of the session to end.")] refresh_token: String,
    ) -> async_graphql::Result<bool> {
        let state = ctx.data::<AppState>()?;
        state.sessions.end(&refresh_token).await?;
        Ok(true)
    }

    /// Sets where the caller is taxed for digital orders (physical ones are taxed where they
    /// ship to): the country, and in the US the state. Orders placed before keep their tax.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn set_billing_country(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A two-letter ISO 3166-1 country code, such as DE or US.")]
        country: String,
        #[graphql(
            desc = "In the United States, the two-letter state (such as WA); otherwise left out."
        )]
        state: Option<String>,
    ) -> async_graphql::Result<Account> {
        let (app, me) = acting(ctx)?;
        Ok(
            identity::set_billing_country(app, me, &country, state.as_deref())
                .await?
                .into(),
        )
    }

    /// Ends every session of the caller, on every device. Returns how many were ended.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn sign_out_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let (state, me) = acting(ctx)?;
        Ok(state.sessions.end_all(me.id).await?)
    }

    /// Admin: creates a publisher or admin account.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn create_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The e-mail, password, display name and role (`PUBLISHER` or `ADMIN`) of the new account."
        )]
        input: CreateAccountInput,
    ) -> async_graphql::Result<Account> {
        let (state, actor) = acting(ctx)?;
        let new = NewAccount::parse(
            &input.email,
            &input.password,
            &input.display_name,
            input.role.into(),
        )?;
        let account =
            identity::insert_account(&state.db, &state.hasher, new, Some(actor.id)).await?;
        tracing::info!(account.id = %account.id, actor.id = %actor.id, role = account.role.as_str(), "account created by admin");
        Ok(account.into())
    }

    /// Admin: gives an account another role, ending every session of the account at once (its
    /// tokens carried the old role); it signs in again with the new one.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn set_account_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the account whose role changes.")] account_id: Uuid,
        #[graphql(desc = "The role the account gets.")] role: RoleGql,
    ) -> async_graphql::Result<Account> {
        let (state, actor) = acting(ctx)?;
        Ok(identity::set_role(state, actor, account_id, role.into())
            .await?
            .into())
    }

    /// Admin: bans (ending every session at once) or reinstates an account.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn set_account_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the account to ban or reinstate.")] account_id: Uuid,
        #[graphql(desc = "`BANNED` to ban the account, `ACTIVE` to reinstate it.")]
        status: AccountStatusGql,
        #[graphql(desc = "Why, as recorded in the audit log (optional).")] reason: Option<String>,
    ) -> async_graphql::Result<Account> {
        let (state, actor) = acting(ctx)?;
        Ok(
            identity::set_status(state, actor, account_id, status.into(), reason)
                .await?
                .into(),
        )
    }
}
