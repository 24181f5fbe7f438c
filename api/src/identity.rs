//! Identity: accounts, sign-up, sign-in, sessions, and admin management. The api is the only
//! writer of the `identity` schema.

pub mod clients;
pub mod tickets;

use chrono::{DateTime, Utc};
use domain::identity::entity::{account, audit_log};
use domain::identity::{AccountStatus, DisplayName, Email, Password, Role};
use domain::money::Currency;
use sea_orm::prelude::Expr;
use sea_orm::sea_query::SimpleExpr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::infra::auth::caller::{ClientAddr, ClientCountry};
use crate::infra::auth::jwt::AccessToken;
use crate::infra::auth::password::Hasher;
use crate::infra::auth::session::RefreshToken;
use crate::infra::auth::{Caller, Principal};
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::ratelimit::{self, Counters, WithoutRedis};
use crate::infra::state::AppState;

/// An account as the rest of the api sees it (role and status parsed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the account is taxed for digital orders (`setBillingCountry`).
    pub billing_country: Option<String>,
    pub billing_state: Option<String>,
}

impl TryFrom<account::Model> for Account {
    type Error = ApiError;
    fn try_from(m: account::Model) -> ApiResult<Account> {
        Ok(Account {
            role: Role::parse(&m.role).map_err(|e| anyhow::anyhow!("stored role: {e}"))?,
            status: AccountStatus::parse(&m.status)
                .map_err(|e| anyhow::anyhow!("stored status: {e}"))?,
            id: m.id,
            email: m.email,
            display_name: m.display_name,
            created_at: m.created_at,
            updated_at: m.updated_at,
            billing_country: m.billing_country,
            billing_state: m.billing_state,
        })
    }
}

impl Account {
    pub fn principal(&self) -> Principal {
        Principal {
            id: self.id,
            role: self.role,
            name: self.display_name.clone(),
        }
    }
}

/// What a successful sign-up, sign-in or refresh hands to the client.
#[derive(Clone, Debug)]
pub struct AuthSession {
    pub access: AccessToken,
    pub refresh: RefreshToken,
    pub account: Account,
}

/// Input of account creation, already validated.
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub display_name: DisplayName,
    pub role: Role,
    /// The account's region from the start (sign-up: the country the gateway placed the
    /// client in), else none until it chooses one.
    pub country: Option<String>,
}

impl NewAccount {
    pub fn parse(email: &str, password: &str, display_name: &str, role: Role) -> ApiResult<Self> {
        Ok(NewAccount {
            country: None,
            email: Email::parse(email)?,
            password: Password::parse(password)?,
            display_name: DisplayName::parse(display_name)?,
            role,
        })
    }
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Inserts an account (and, when an admin made it, an audit entry) in one transaction.
pub async fn insert_account(
    db: &DatabaseConnection,
    hasher: &Hasher,
    new: NewAccount,
    created_by: Option<Uuid>,
) -> ApiResult<Account> {
    let hash = hasher.hash(new.password.expose()).await?;
    let now = Utc::now();
    let id = domain::id::new_id();
    let txn = db.begin().await?;
    let model = account::ActiveModel {
        id: Set(id),
        email: Set(new.email.as_str().to_owned()),
        email_normalized: Set(new.email.normalized()),
        display_name: Set(new.display_name.into_inner()),
        role: Set(new.role.as_str().to_owned()),
        status: Set(AccountStatus::Active.as_str().to_owned()),
        password_hash: Set(hash),
        created_at: Set(now),
        updated_at: Set(now),
        created_by: Set(created_by),
        billing_country: Set(new.country),
        billing_state: Set(None),
    };
    let inserted = match model.insert(&txn).await {
        Ok(m) => m,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "an account with this e-mail address already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(actor) = created_by {
        audit(
            &txn,
            actor,
            "account.create",
            Some(id),
            serde_json::json!({ "role": new.role.as_str() }),
        )
        .await?;
    }
    txn.commit().await?;
    inserted.try_into()
}

/// Writes one audit entry (the one writer of `identity.audit_log`). `target` is an account;
/// anything else an entry is about goes in `detail`.
async fn audit(
    db: &impl ConnectionTrait,
    actor: Uuid,
    action: &str,
    target: Option<Uuid>,
    detail: serde_json::Value,
) -> ApiResult<()> {
    audit_log::ActiveModel {
        id: Set(domain::id::new_id()),
        actor_id: Set(Some(actor)),
        action: Set(action.to_owned()),
        target_id: Set(target),
        detail: Set(detail),
        occurred_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Records a moderation of `product` by `actor` in the audit log, in the moderation's own
/// transaction `db`. The product's id is kept in the entry's detail (`target_id` names
/// accounts only), with the reason the publisher was given.
pub(crate) async fn audit_moderation(
    db: &impl ConnectionTrait,
    actor: Uuid,
    product: Uuid,
    unlisted: bool,
    reason: Option<&str>,
) -> ApiResult<()> {
    let action = if unlisted {
        "product.unlist"
    } else {
        "product.restore"
    };
    let detail = serde_json::json!({ "product": product, "reason": reason });
    audit(db, actor, action, None, detail).await
}

/// Records that admin `actor` ended `discount` of `product` early, in that change's
/// transaction `db`.
pub(crate) async fn audit_discount_end(
    db: &impl ConnectionTrait,
    actor: Uuid,
    product: Uuid,
    discount: Uuid,
    reason: Option<&str>,
) -> ApiResult<()> {
    let detail = serde_json::json!({ "product": product, "discount": discount, "reason": reason });
    audit(db, actor, "discount.end", None, detail).await
}

/// What an admin did, as the audit log reads back: each kind of stored `action` (and, for a
/// status change, which way it went), so that readers never match on the stored strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    AccountCreated,
    RoleChanged,
    AccountBanned,
    AccountReinstated,
    ProductUnlisted,
    ProductRestored,
    DiscountEnded,
}

/// One entry of the audit log, decoded, with the e-mails of its actor and target.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub action: AuditAction,
    /// `None` for an action taken outside the API (none is recorded so far).
    pub actor: Option<(Uuid, String)>,
    /// An account with its e-mail, or a moderated product with its title.
    pub target: Option<(Uuid, String)>,
    /// The role given: on account creation and role change.
    pub role: Option<Role>,
    /// Why, when the admin said (bans and reinstatements).
    pub reason: Option<String>,
}

/// Which entries of the audit log to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<Uuid>,
    pub target: Option<Uuid>,
}

fn decode_audit(row: &audit_log::Model) -> ApiResult<(AuditAction, Option<Role>)> {
    let text = |key: &str| row.detail.get(key).and_then(serde_json::Value::as_str);
    let unknown = || {
        ApiError::Internal(anyhow::anyhow!(
            "the audit log holds an unknown action: {:?} {}",
            row.action,
            row.detail
        ))
    };
    match row.action.as_str() {
        "account.create" => Ok((
            AuditAction::AccountCreated,
            text("role").and_then(|r| Role::parse(r).ok()),
        )),
        "account.set_role" => Ok((
            AuditAction::RoleChanged,
            text("to").and_then(|r| Role::parse(r).ok()),
        )),
        "account.set_status" => match text("to").map(AccountStatus::parse) {
            Some(Ok(AccountStatus::Banned)) => Ok((AuditAction::AccountBanned, None)),
            Some(Ok(AccountStatus::Active)) => Ok((AuditAction::AccountReinstated, None)),
            _ => Err(unknown()),
        },
        "product.unlist" => Ok((AuditAction::ProductUnlisted, None)),
        "product.restore" => Ok((AuditAction::ProductRestored, None)),
        "discount.end" => Ok((AuditAction::DiscountEnded, None)),
        _ => Err(unknown()),
    }
}

/// Admin: one page of the audit log, newest first, after the entry `after` (ids are
/// time-ordered), and whether more follow. Two statements whatever the page's size: the
/// entries, then the e-mails of everyone they name.
pub async fn audit_entries(
    state: &AppState,
    filter: AuditFilter,
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<AuditEntry>, bool)> {
    let mut q = audit_log::Entity::find();
    if let Some(actor) = filter.actor {
        q = q.filter(audit_log::Column::ActorId.eq(actor));
    }
    if let Some(target) = filter.target {
        q = q.filter(audit_log::Column::TargetId.eq(target));
    }
    if let Some(after) = after {
        q = q.filter(audit_log::Column::Id.lt(after));
    }
    let mut rows = q
        .order_by_desc(audit_log::Column::Id)
        .limit(first + 1)
        .all(&state.db)
        .await?;
    let more = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let mut ids: Vec<Uuid> = rows
        .iter()
        .flat_map(|r| [r.actor_id, r.target_id])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let emails: std::collections::HashMap<Uuid, String> = if ids.is_empty() {
        Default::default()
    } else {
        account::Entity::find()
            .filter(account::Column::Id.is_in(ids))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|a| (a.id, a.email))
            .collect()
    };
    // Both columns reference `identity.account`, so an id without an account cannot be stored.
    let named = |id: Option<Uuid>| {
        id.map(|id| {
            let email = emails.get(&id).cloned().unwrap_or_default();
            (id, email)
        })
    };
    // Moderation entries name a product in their detail: one more statement for their titles.
    let product_of = |row: &audit_log::Model| {
        row.detail
            .get("product")
            .and_then(serde_json::Value::as_str)
            .and_then(|id| id.parse::<Uuid>().ok())
    };
    let product_ids: Vec<Uuid> = rows.iter().filter_map(product_of).collect();
    let titles: std::collections::HashMap<Uuid, String> = if product_ids.is_empty() {
        Default::default()
    } else {
        use domain::catalog::entity::product;
        product::Entity::find()
            .filter(product::Column::Id.is_in(product_ids))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|p| (p.id, p.title))
            .collect()
    };
    let entries = rows
        .iter()
        .map(|row| {
            let (action, role) = decode_audit(row)?;
            let target = match action {
                AuditAction::ProductUnlisted
                | AuditAction::ProductRestored
                | AuditAction::DiscountEnded => product_of(row).map(|id| {
                    let title = titles.get(&id).cloned();
                    (id, title.unwrap_or_else(|| "a removed product".to_owned()))
                }),
                _ => named(row.target_id),
            };
            Ok(AuditEntry {
                id: row.id,
                occurred_at: row.occurred_at,
                action,
                actor: named(row.actor_id),
                target,
                role,
                reason: row
                    .detail
                    .get("reason")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((entries, more))
}

async fn issue(state: &AppState, account: Account) -> ApiResult<AuthSession> {
    let refresh = state.sessions.start(account.id).await?;
    let access = state.keys.issue(&account.principal())?;
    Ok(AuthSession {
        access,
        refresh,
        account,
    })
}

/// Public sign-up: always a `user`, whatever else the request says.
pub async fn sign_up(
    state: &AppState,
    email: &str,
    password: &str,
    display_name: &str,
    client: &ClientAddr,
    country: &ClientCountry,
) -> ApiResult<AuthSession> {
    let rates = state.config.rates;
    ratelimit::hit(
        Counters::of(state),
        "signup-ip",
        &client.0,
        rates.signup_per_ip,
        WithoutRedis::Refuse,
    )
    .await?;
    let mut new = NewAccount::parse(email, password, display_name, Role::User)?;
    new.country = country
        .0
        .as_deref()
        .and_then(domain::country::find)
        .map(|c| c.code.to_owned());
    ratelimit::hit(
        Counters::of(state),
        "signup-email",
        &ratelimit::hashed(&new.email.normalized()),
        rates.signup_per_email,
        WithoutRedis::Refuse,
    )
    .await?;
    let account = insert_account(&state.db, &state.hasher, new, None).await?;
    tracing::info!(account.id = %account.id, "account signed up");
    issue(state, account).await
}

pub async fn find_by_email(state: &AppState, email: &Email) -> ApiResult<Option<account::Model>> {
    Ok(account::Entity::find()
        .filter(account::Column::EmailNormalized.eq(email.normalized()))
        .one(&state.db)
        .await?)
}

pub async fn find(state: &AppState, id: Uuid) -> ApiResult<Option<Account>> {
    account::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .map(Account::try_from)
        .transpose()
}

/// Sign-in. A wrong e-mail and a wrong password answer the same, in about the same time.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    client: &ClientAddr,
) -> ApiResult<AuthSession> {
    let rates = state.config.rates;
    ratelimit::hit(
        Counters::of(state),
        "signin-ip",
        &client.0,
        rates.signin_per_ip,
        WithoutRedis::Refuse,
    )
    .await?;
    let normalized = email.trim().to_lowercase();
    ratelimit::hit(
        Counters::of(state),
        "signin-email",
        &ratelimit::hashed(&normalized),
        rates.signin_per_email,
        WithoutRedis::Refuse,
    )
    .await?;
    let found = match Email::parse(email) {
        Ok(e) => find_by_email(state, &e).await?,
        Err(_) => None,
    };
    let Some(model) = found else {
        state.hasher.verify_decoy(password).await?;
        return Err(ApiError::InvalidCredentials);
    };
    if !state.hasher.verify(password, &model.password_hash).await? {
        return Err(ApiError::InvalidCredentials);
    }
    let account = Account::try_from(model)?;
    if account.status == AccountStatus::Banned {
        // The password was right, so saying why does not help an attacker guess.
        return Err(ApiError::Forbidden("this account is suspended"));
    }
    tracing::info!(account.id = %account.id, "signed in");
    issue(state, account).await
}

/// Rotates a refresh token into a new session pair.
pub async fn refresh(state: &AppState, token: &str) -> ApiResult<AuthSession> {
    let (account_id, refresh) = state.sessions.rotate(token).await?;
    let account = match find(state, account_id).await? {
        Some(a) if a.status == AccountStatus::Active => a,
        _ => {
            state.sessions.end_all(account_id).await?;
            return Err(ApiError::SessionEnded);
        }
    };
    let access = state.keys.issue(&account.principal())?;
    Ok(AuthSession {
        access,
        refresh,
        account,
    })
}

/// Admin: lists accounts, newest first, filtered by a search text (e-mail or name), role, status.
pub struct AccountFilter {
    pub search: Option<String>,
    pub role: Option<Role>,
    pub status: Option<AccountStatus>,
}

/// An `ILIKE` pattern matching text that contains `s` literally (PostgreSQL's default escape
/// character is the backslash).
pub(crate) fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// One page of accounts (newest first) after the account `after`, and whether more follow.
pub async fn list_accounts(
    state: &AppState,
    filter: &AccountFilter,
    after: Option<Uuid>,
    first: u64,
) -> ApiResult<(Vec<Account>, bool)> {
    let mut q = account::Entity::find();
    if let Some(text) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = like_pattern(text);
        let cond: SimpleExpr = Expr::cust_with_values(
            "(email_normalized ILIKE $1 OR display_name ILIKE $1)",
            [pattern],
        );
        q = q.filter(cond);
    }
    if let Some(role) = filter.role {
        q = q.filter(account::Column::Role.eq(role.as_str()));
    }
    if let Some(status) = filter.status {
        q = q.filter(account::Column::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        q = q.filter(account::Column::Id.lt(after));
    }
    let mut rows = q
        .order_by_desc(account::Column::Id)
        .limit(first + 1)
        .all(&state.db)
        .await?;
    let more = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let accounts = rows
        .into_iter()
        .map(Account::try_from)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((accounts, more))
}

/// Admin: bans or reinstates an account. A ban ends every session of the account at once.
pub async fn set_status(
    state: &AppState,
    actor: &Principal,
    target: Uuid,
    status: AccountStatus,
    reason: Option<String>,
) -> ApiResult<Account> {
    if target == actor.id && status == AccountStatus::Banned {
        return Err(ApiError::BadInput {
            field: "accountId",
            message: "an admin cannot ban themselves".into(),
        });
    }
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::BadInput {
            field: "reason",
            message: "the reason must have at most 500 characters".into(),
        });
    }
    let txn = state.db.begin().await?;
    let Some(model) = account::Entity::find_by_id(target)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Err(ApiError::NotFound("account"));
    };
    let before = model.status.clone();
    let mut active: account::ActiveModel = model.into();
    active.status = Set(status.as_str().to_owned());
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    audit(
        &txn,
        actor.id,
        "account.set_status",
        Some(target),
        serde_json::json!({ "from": before, "to": status.as_str(), "reason": reason }),
    )
    .await?;
    txn.commit().await?;
    if status == AccountStatus::Banned {
        let ended = cut_sessions(state, target).await?;
        tracing::info!(account.id = %target, sessions.ended = ended, "account banned");
    }
    updated.try_into()
}

/// Admin: gives an account another role. Like a ban, it ends every session of the account at
/// once, so that no access token still carries the old role.
pub async fn set_role(
    state: &AppState,
    actor: &Principal,
    target: Uuid,
    role: Role,
) -> ApiResult<Account> {
    if target == actor.id {
        return Err(ApiError::BadInput {
            field: "accountId",
            message: "an admin cannot change their own role".into(),
        });
    }
    let txn = state.db.begin().await?;
    let Some(model) = account::Entity::find_by_id(target)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Err(ApiError::NotFound("account"));
    };
    let before = model.role.clone();
    if before == role.as_str() {
        return model.try_into();
    }
    let mut active: account::ActiveModel = model.into();
    active.role = Set(role.as_str().to_owned());
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    audit(
        &txn,
        actor.id,
        "account.set_role",
        Some(target),
        serde_json::json!({ "from": before, "to": role.as_str() }),
    )
    .await?;
    txn.commit().await?;
    let ended = cut_sessions(state, target).await?;
    tracing::info!(account.id = %target, role = role.as_str(), sessions.ended = ended, "account role changed");
    updated.try_into()
}

/// Ends the sessions of an account an admin just banned or gave another role. Without Redis the
/// change (committed, and in the audit log) still stands: the account's status is checked in
/// PostgreSQL meanwhile, and the sessions are cut when Redis is back
/// ([`crate::infra::state::rebuild::rebuild`]).
async fn cut_sessions(state: &AppState, account: Uuid) -> ApiResult<u64> {
    match state.sessions.end_all(account).await {
        Err(e) if e.is_unavailable() => {
            tracing::warn!(account.id = %account, "Redis is down: the sessions are cut when it is back");
            Ok(0)
        }
        other => other,
    }
}

/// The caller's account, `None` for anonymous callers.
pub async fn me(state: &AppState, caller: &Caller) -> ApiResult<Option<Account>> {
    match caller.principal() {
        Some(p) => find(state, p.id).await,
        None => Ok(None),
    }
}

/// Where a shopper is, for prices and tax: the account's chosen country (`setBillingCountry`,
/// or the country it signed up from), a visitor's country as the gateway placed it, else the
/// store's (`STORE_COUNTRY`). The currency is that country's where the store sells in it,
/// else the store's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// The US state, when the account chose one.
    pub state: Option<String>,
    pub currency: Currency,
}

impl Region {
    pub fn of(state: &AppState, country: Option<&str>, us_state: Option<String>) -> Region {
        let country = country
            .and_then(domain::country::find)
            .map_or(state.config.store_country, |c| c.code);
        Region {
            country: country.to_owned(),
            state: us_state.filter(|_| country == "US"),
            currency: domain::money::currency_of_country(country).unwrap_or(state.config.currency),
        }
    }

    /// The place an order of this region is taxed at.
    pub fn tax_place(&self) -> domain::tax::Place {
        domain::tax::Place {
            country: self.country.clone(),
            state: self.state.clone(),
        }
    }
}

/// The region of `account` (signed in), else of a visitor from `country`.
pub async fn region(
    state: &AppState,
    account: Option<Uuid>,
    country: &ClientCountry,
) -> ApiResult<Region> {
    let Some(id) = account else {
        return Ok(Region::of(state, country.0.as_deref(), None));
    };
    let chosen: Option<(Option<String>, Option<String>)> = account::Entity::find_by_id(id)
        .select_only()
        .column(account::Column::BillingCountry)
        .column(account::Column::BillingState)
        .into_tuple()
        .one(&state.db)
        .await?;
    let (country, us_state) = chosen.unwrap_or_default();
    Ok(Region::of(state, country.as_deref(), us_state))
}

/// The buyer's region and their wallet's currency and balance (if they have a wallet), in one
/// statement.
pub async fn region_and_wallet(
    state: &AppState,
    account: Uuid,
) -> ApiResult<(Region, Option<(Currency, i64)>)> {
    let row = state
        .db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT a.billing_country, a.billing_state, w.currency, w.balance_minor \
             FROM identity.account a LEFT JOIN billing.wallet w ON w.account_id = a.id \
             WHERE a.id = $1",
            [account.into()],
        ))
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    let country: Option<String> = row.try_get("", "billing_country")?;
    let us_state: Option<String> = row.try_get("", "billing_state")?;
    let held: Option<String> = row.try_get("", "currency")?;
    let balance: Option<i64> = row.try_get("", "balance_minor")?;
    let region = Region::of(state, country.as_deref(), us_state);
    let wallet = match (held, balance) {
        (Some(c), Some(b)) => Some((
            Currency::parse(&c)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored wallet currency: {e}")))?,
            b,
        )),
        _ => None,
    };
    Ok((region, wallet))
}

/// The region a signed-in buyer pays in: `CONFLICT` while their wallet holds money in another
/// currency (a wallet holds one currency, so that money must be spent in its region first).
pub async fn shopping_region(state: &AppState, account: Uuid) -> ApiResult<Region> {
    let (region, wallet) = region_and_wallet(state, account).await?;
    wallet_takes(wallet, region.currency)?;
    Ok(region)
}

/// `CONFLICT` unless a wallet of `wallet`'s currency and balance can pay and be paid in
/// `currency`: it is empty, or holds that currency (a wallet holds one currency at a time).
fn wallet_takes(wallet: Option<(Currency, i64)>, currency: Currency) -> ApiResult<()> {
    match wallet {
        Some((held, balance)) if held != currency && balance != 0 => {
            Err(ApiError::Conflict(format!(
                "your wallet holds {}; a region that pays in {} can be chosen once the wallet \
                 is spent (a wallet holds one currency)",
                domain::money::Money {
                    minor: balance,
                    currency: held
                }
                .format(),
                currency.as_str()
            )))
        }
        _ => Ok(()),
    }
}

/// Sets where the caller is taxed for digital orders: an ISO 3166-1 alpha-2 country and, in
/// the US, the two-letter state (the sales tax is the state's); orders placed before keep
/// theirs.
pub async fn set_billing_country(
    state: &AppState,
    me: &Principal,
    country: &str,
    us_state: Option<&str>,
) -> ApiResult<Account> {
    let country = domain::country::find(country.trim()).ok_or(ApiError::BadInput {
        field: "country",
        message: "the country must be a two-letter ISO 3166-1 code such as DE or US".into(),
    })?;
    let us_state = us_state
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty());
    match (country.code, &us_state) {
        ("US", None) => {
            return Err(ApiError::BadInput {
                field: "state",
                message:
                    "in the United States, give the two-letter state (sales tax is the state's)"
                        .into(),
            });
        }
        ("US", Some(s)) if s.len() != 2 || !s.chars().all(|c| c.is_ascii_uppercase()) => {
            return Err(ApiError::BadInput {
                field: "state",
                message: "the state must be its two-letter code, such as WA".into(),
            });
        }
        (_, Some(_)) if country.code != "US" => {
            return Err(ApiError::BadInput {
                field: "state",
                message: "a state is given only for the United States".into(),
            });
        }
        _ => {}
    }
    // A wallet holds one currency: money in it keeps the region in that currency.
    let currency =
        domain::money::currency_of_country(country.code).unwrap_or(state.config.currency);
    let (_, wallet) = region_and_wallet(state, me.id).await?;
    wallet_takes(wallet, currency)?;
    let updated = account::Entity::update_many()
        .col_expr(
            account::Column::BillingCountry,
            Expr::value(country.code.to_owned()),
        )
        .col_expr(account::Column::BillingState, Expr::value(us_state))
        .col_expr(account::Column::UpdatedAt, Expr::current_timestamp())
        .filter(account::Column::Id.eq(me.id))
        .exec_with_returning(&state.db)
        .await?;
    updated
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("account"))?
        .try_into()
}

/// `api create-admin` and first-start bootstrap: creates an admin outside the public API.
pub async fn create_admin(
    db: &DatabaseConnection,
    hasher: &Hasher,
    email: &str,
    password: &str,
) -> ApiResult<Account> {
    let name = email.split('@').next().unwrap_or("admin");
    let new = NewAccount::parse(email, password, name, Role::Admin)?;
    insert_account(db, hasher, new, None).await
}

/// On first start, when `BOOTSTRAP_ADMIN_*` is set and no admin exists yet, creates that admin.
pub async fn bootstrap_admin(state: &AppState) -> ApiResult<Option<Account>> {
    let Some((email, password)) = state.config.bootstrap_admin.clone() else {
        return Ok(None);
    };
    let any_admin = account::Entity::find()
        .filter(account::Column::Role.eq(Role::Admin.as_str()))
        .one(&state.db)
        .await?
        .is_some();
    if any_admin {
        return Ok(None);
    }
    create_admin(&state.db, &state.hasher, &email, password.expose_secret())
        .await
        .map(Some)
}

/// Whether an access token of `account` issued at `iat` (unknown: `None`) is still good: no
/// session cut in Redis (sign-out everywhere, ban, role change) since it was issued. While Redis
/// is down the cut cannot be read; the account's status in PostgreSQL decides instead, so a ban
/// still holds, while a sign-out everywhere (itself refused while Redis is down) made before the
/// outage is not seen until Redis is back (at most one access token's life).
pub async fn access_allowed(state: &AppState, account: Uuid, iat: Option<i64>) -> ApiResult<bool> {
    match state.sessions.access_allowed(account, iat).await {
        Err(e) if e.is_unavailable() => Ok(find(state, account)
            .await?
            .is_some_and(|a| a.status == AccountStatus::Active)),
        other => other,
    }
}
