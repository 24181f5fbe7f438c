//! Repairing Redis's derived state after an outage: the watcher of Redis's health and what it
//! rebuilds from PostgreSQL when Redis comes back.

use chrono::{DateTime, Utc};
use fred::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use domain::billing::entity::wallet;
use domain::identity::AccountStatus;
use domain::identity::entity::audit_log;
use domain::notification::entity::notification;

use crate::infra::state::AppState;

/// Runs the watcher of Redis's health for the api's lifetime (see [`domain::redis::watch`]).
pub fn spawn_watcher(state: &AppState) {
    let pool = state.redis.clone();
    let health = state.redis_health.clone();
    let state = state.clone();
    tokio::spawn(domain::redis::watch(pool, health, move |last_seen_up| {
        let state = state.clone();
        async move { rebuild(&state, last_seen_up).await }
    }));
}

/// How far before the last good ping a write may have started and still have missed Redis (a
/// transaction's `now()` is its start; the participant refreshes Redis after its commit).
const REBUILD_MARGIN_SECS: i64 = 60;

/// Repairs the derived state after Redis was away since `last_seen_up` (`None`: unknown, so
/// everything): the balance of each wallet that changed is written again from PostgreSQL (the
/// version check keeps a newer value a participant wrote meanwhile), and the unread counters of
/// accounts whose notifications changed are dropped (the next read counts them from the table),
/// and the sessions of accounts banned or given another role meanwhile are cut.
/// A Redis that lost everything needs none of it (misses are read from PostgreSQL); one that
/// kept its data would otherwise serve what it held before the outage.
pub async fn rebuild(
    state: &AppState,
    last_seen_up: Option<DateTime<Utc>>,
) -> Result<(), RebuildError> {
    let since = last_seen_up.map(|t| t - chrono::Duration::seconds(REBUILD_MARGIN_SECS));
    let ns = state.keyspace.namespace();
    let mut changed_wallets = wallet::Entity::find().select_only().columns([
        wallet::Column::AccountId,
        wallet::Column::BalanceMinor,
        wallet::Column::Version,
    ]);
    if let Some(since) = since {
        changed_wallets = changed_wallets.filter(wallet::Column::UpdatedAt.gte(since));
    }
    let wallets: Vec<(Uuid, i64, i64)> = changed_wallets.into_tuple().all(&state.db).await?;
    for &(account, balance, version) in &wallets {
        let _: i64 = state
            .redis
            .eval(
                domain::keys::SET_BALANCE_LUA,
                vec![domain::keys::balance(ns, account)],
                vec![
                    balance.to_string(),
                    version.to_string(),
                    domain::keys::BALANCE_TTL_SECS.to_string(),
                ],
            )
            .await?;
    }
    let mut changed_readers = notification::Entity::find()
        .select_only()
        .column(notification::Column::AccountId)
        .distinct();
    if let Some(since) = since {
        changed_readers = changed_readers.filter(
            Condition::any()
                .add(notification::Column::CreatedAt.gte(since))
                .add(notification::Column::ReadAt.gte(since)),
        );
    }
    let readers: Vec<Uuid> = changed_readers.into_tuple().all(&state.db).await?;
    for chunk in readers.chunks(500) {
        let keys: Vec<String> = chunk
            .iter()
            .map(|&account| domain::keys::unread(ns, account))
            .collect();
        let _: i64 = state.redis.del(keys).await?;
    }
    // Bans and role changes made meanwhile could not cut their sessions: cut them now. Only
    // access tokens still alive matter (a refresh reads the account from PostgreSQL).
    let token_life = state.config.jwt.access_ttl
        + std::time::Duration::from_secs(
            crate::infra::auth::jwt::LEEWAY_SECS + REBUILD_MARGIN_SECS as u64,
        );
    let alive_since = Utc::now() - chrono::Duration::from_std(token_life).unwrap_or_default();
    let cut_since = since.map_or(alive_since, |s| s.max(alive_since));
    // A role change, or a status change whose `detail` says it went to banned.
    let cut: Vec<Uuid> = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::TargetId)
        .distinct()
        .filter(audit_log::Column::OccurredAt.gte(cut_since))
        .filter(audit_log::Column::TargetId.is_not_null())
        .filter(
            Condition::any()
                .add(audit_log::Column::Action.eq("account.set_role"))
                .add(
                    Condition::all()
                        .add(audit_log::Column::Action.eq("account.set_status"))
                        .add(went_to_banned()),
                ),
        )
        .into_tuple()
        .all(&state.db)
        .await?;
    for &account in &cut {
        state
            .sessions
            .end_all_now(account)
            .await
            .map_err(|e| RebuildError::Sessions(e.to_string()))?;
    }
    tracing::info!(
        wallets = wallets.len(),
        unread_counters = readers.len(),
        sessions_cut = cut.len(),
        "rebuilt Redis's derived state"
    );
    Ok(())
}

/// `detail->>'to' = 'banned'`: an `account.set_status` entry that banned its target.
fn went_to_banned() -> Expr {
    // Here only: `ExprTrait` in scope makes `Ord::max` of timestamps ambiguous.
    use sea_orm::sea_query::ExprTrait as _;
    use sea_orm::sea_query::extension::postgres::PgExpr as _;
    Expr::col((audit_log::Entity, audit_log::Column::Detail))
        .cast_json_field("to")
        .eq(AccountStatus::Banned.as_str())
}

/// Why [`rebuild`] stopped (it is tried again on the next ping).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("reading PostgreSQL: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("writing Redis: {0}")]
    Redis(#[from] Error),
    #[error("cutting sessions: {0}")]
    Sessions(String),
}
