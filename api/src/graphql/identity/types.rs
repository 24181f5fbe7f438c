use async_graphql::{Enum, InputObject, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::identity::{Account as AccountRow, AuthSession};
use crate::infra::error::ApiError;

/// What an account may do.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "Role")]
pub enum RoleGql {
    User,
    Publisher,
    Admin,
}

impl From<domain::identity::Role> for RoleGql {
    fn from(r: domain::identity::Role) -> Self {
        use domain::identity::Role;
        match r {
            Role::User => RoleGql::User,
            Role::Publisher => RoleGql::Publisher,
            Role::Admin => RoleGql::Admin,
        }
    }
}

impl From<RoleGql> for domain::identity::Role {
    fn from(r: RoleGql) -> Self {
        use domain::identity::Role;
        match r {
            RoleGql::User => Role::User,
            RoleGql::Publisher => Role::Publisher,
            RoleGql::Admin => Role::Admin,
        }
    }
}

/// Roles an admin can give a new account (users sign up themselves).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum StaffRole {
    Publisher,
    Admin,
}

impl From<StaffRole> for domain::identity::Role {
    fn from(r: StaffRole) -> Self {
        match r {
            StaffRole::Publisher => domain::identity::Role::Publisher,
            StaffRole::Admin => domain::identity::Role::Admin,
        }
    }
}

/// Whether an account may sign in.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "AccountStatus")]
pub enum AccountStatusGql {
    Active,
    Banned,
}

impl From<domain::identity::AccountStatus> for AccountStatusGql {
    fn from(s: domain::identity::AccountStatus) -> Self {
        match s {
            domain::identity::AccountStatus::Active => AccountStatusGql::Active,
            domain::identity::AccountStatus::Banned => AccountStatusGql::Banned,
        }
    }
}

impl From<AccountStatusGql> for domain::identity::AccountStatus {
    fn from(s: AccountStatusGql) -> Self {
        match s {
            AccountStatusGql::Active => domain::identity::AccountStatus::Active,
            AccountStatusGql::Banned => domain::identity::AccountStatus::Banned,
        }
    }
}

/// An account. Only its owner and admins ever receive one.
#[derive(SimpleObject, Clone, Debug)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: RoleGql,
    pub status: AccountStatusGql,
    pub created_at: DateTime<Utc>,
    /// Where the account is taxed for digital orders (ISO 3166-1 alpha-2); `null` until set
    /// (orders are then taxed where the store is).
    pub billing_country: Option<String>,
    /// The US state, for an account billed in the United States.
    pub billing_state: Option<String>,
}

impl From<AccountRow> for Account {
    fn from(a: AccountRow) -> Self {
        Account {
            id: a.id,
            email: a.email,
            display_name: a.display_name,
            role: a.role.into(),
            status: a.status.into(),
            created_at: a.created_at,
            billing_country: a.billing_country,
            billing_state: a.billing_state,
        }
    }
}

/// A signed-in session: a short-lived access token for `Authorization: Bearer`, and a refresh
/// token to get the next one (each refresh token works once).
#[derive(SimpleObject, Clone, Debug)]
pub struct AuthPayload {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub account: Account,
}

impl From<AuthSession> for AuthPayload {
    fn from(s: AuthSession) -> Self {
        AuthPayload {
            access_token_expires_at: DateTime::from_timestamp(s.access.claims.exp, 0)
                .unwrap_or_default(),
            access_token: s.access.token,
            refresh_token: s.refresh.token,
            refresh_token_expires_at: s.refresh.expires_at,
            account: s.account.into(),
        }
    }
}

#[derive(InputObject)]
pub struct SignUpInput {
    /// The e-mail address to sign in with; one account per address.
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// The name shown to others, 1 to 64 characters.
    pub display_name: String,
}

#[derive(InputObject)]
pub struct SignInInput {
    /// The e-mail address of the account.
    pub email: String,
    /// The account's password.
    pub password: String,
}

#[derive(InputObject)]
pub struct CreateAccountInput {
    /// The e-mail address the account signs in with; one account per address.
    pub email: String,
    /// The account's password, 10 to 256 characters.
    pub password: String,
    /// The name shown to others (a publisher's name on the storefront), 1 to 64 characters.
    pub display_name: String,
    /// `PUBLISHER` or `ADMIN` (users sign up themselves).
    pub role: StaffRole,
}

/// Opaque cursor of an account in a list.
pub fn account_cursor(id: Uuid) -> String {
    B64.encode(format!("account:{id}"))
}

pub fn parse_account_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    let bad = || ApiError::BadInput {
        field: "after",
        message: "the cursor is not valid".into(),
    };
    let raw = B64.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix("account:")
        .and_then(|id| id.parse().ok())
        .ok_or_else(bad)
}

/// What an admin did.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// Made a publisher or admin account (`role` says which).
    AccountCreated,
    /// Gave an account another role (`role` is the new one).
    RoleChanged,
    /// Banned an account, with a `reason`.
    AccountBanned,
    /// Let a banned account sign in again, with a `reason`.
    AccountReinstated,
    /// Took a product off the store, with the `reason` its publisher reads (`target`: the
    /// product, labelled with its title).
    ProductUnlisted,
    /// Put an unlisted product back in the store.
    ProductRestored,
    /// Ended a publisher's discount early, with a `reason` (`target`: the product).
    DiscountEnded,
}

impl From<crate::identity::AuditAction> for AuditAction {
    fn from(a: crate::identity::AuditAction) -> Self {
        use crate::identity::AuditAction as A;
        match a {
            A::AccountCreated => AuditAction::AccountCreated,
            A::RoleChanged => AuditAction::RoleChanged,
            A::AccountBanned => AuditAction::AccountBanned,
            A::AccountReinstated => AuditAction::AccountReinstated,
            A::ProductUnlisted => AuditAction::ProductUnlisted,
            A::ProductRestored => AuditAction::ProductRestored,
            A::DiscountEnded => AuditAction::DiscountEnded,
        }
    }
}

/// An account as the audit log names it.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditAccount {
    pub id: Uuid,
    pub email: String,
}

/// What an action was done to: an account, labelled with its e-mail, or a product (moderation),
/// labelled with its title.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditTarget {
    pub id: Uuid,
    /// Words that name the target for a person (an account's e-mail, a product's title).
    pub label: String,
}

/// One entry of the audit log. Only admins ever receive one.
#[derive(SimpleObject, Clone, Debug)]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// Who did it; `null` for an action taken outside the API.
    pub actor: Option<AuditAccount>,
    pub action: AuditAction,
    pub target: Option<AuditTarget>,
    /// The role given (`ACCOUNT_CREATED`, `ROLE_CHANGED`).
    pub role: Option<RoleGql>,
    /// Why, as the admin wrote it (bans, reinstatements, unlistings).
    pub reason: Option<String>,
}

impl From<crate::identity::AuditEntry> for AuditEntry {
    fn from(e: crate::identity::AuditEntry) -> Self {
        AuditEntry {
            id: e.id,
            occurred_at: e.occurred_at,
            actor: e.actor.map(|(id, email)| AuditAccount { id, email }),
            action: e.action.into(),
            target: e.target.map(|(id, label)| AuditTarget { id, label }),
            role: e.role.map(Into::into),
            reason: e.reason,
        }
    }
}
