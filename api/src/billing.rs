//! Billing on the api side: the wallet's balance (derived in Redis, rebuilt from PostgreSQL on a
//! miss or read from it while Redis is down), its ledger, and `topUpWallet` (published as `cmd.billing.top_up`).

use domain::billing::TopUp;
use domain::billing::entity::{ledger_entry, revenue_entry, top_up, wallet};
use domain::messaging::Envelope;
use fred::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::idempotency::{self, Record};
use crate::infra::state::AppState;

/// A balance and the ledger version it reflects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Balance {
    pub minor: i64,
    pub version: i64,
}

/// The balance from `balance:{account}`, or on a miss from the wallet row (then cached with a
/// compare-and-set on the version, so an older snapshot never overwrites a newer one). While
/// Redis is down, from the wallet row (the ledger's running sum, the truth) alone.
pub async fn balance(state: &AppState, account: Uuid) -> ApiResult<Balance> {
    let key = domain::keys::balance(state.keyspace.namespace(), account);
    let cached = crate::infra::redis::optional::<Option<String>>(
        &state.redis_health,
        "GET balance",
        state.redis.get(&key),
    )
    .await
    .flatten();
    if let Some((minor, version)) = cached.as_deref().and_then(domain::keys::parse_balance) {
        return Ok(Balance { minor, version });
    }
    let b = balance_from_db(state, account).await?;
    crate::infra::redis::optional::<i64>(
        &state.redis_health,
        "cache balance",
        state.redis.eval(
            domain::keys::SET_BALANCE_LUA,
            vec![key],
            vec![
                b.minor.to_string(),
                b.version.to_string(),
                domain::keys::BALANCE_TTL_SECS.to_string(),
            ],
        ),
    )
    .await;
    Ok(b)
}

pub async fn balance_from_db(state: &AppState, account: Uuid) -> ApiResult<Balance> {
    let wallet = wallet::Entity::find_by_id(account).one(&state.db).await?;
    Ok(match wallet {
        Some(w) => Balance {
            minor: w.balance_minor,
            version: w.version,
        },
        None => Balance {
            minor: 0,
            version: 0,
        },
    })
}

/// A ledger entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: Uuid,
    pub kind: String,
    pub reference: Uuid,
    pub amount_minor: i64,
    pub balance_after: i64,
    pub version: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The currency of the movement.
    pub currency: String,
}

/// Ledger entries, newest first, with versions below `before`.
pub async fn entries(
    state: &AppState,
    account: Uuid,
    before: Option<i64>,
    limit: u64,
) -> ApiResult<Vec<Entry>> {
    let mut query =
        ledger_entry::Entity::find().filter(ledger_entry::Column::AccountId.eq(account));
    if let Some(before) = before {
        query = query.filter(ledger_entry::Column::Version.lt(before));
    }
    let rows = query
        .order_by_desc(ledger_entry::Column::Version)
        .limit(limit)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|e| Entry {
            id: e.id,
            kind: e.kind,
            reference: e.reference,
            amount_minor: e.amount_minor,
            balance_after: e.balance_after,
            version: e.version,
            created_at: e.created_at,
            currency: e.currency,
        })
        .collect())
}

/// Asks billing to top the wallet up; returns the top-up id (derived from the key) and its
/// currency.
pub async fn top_up(
    state: &AppState,
    me: &Principal,
    amount_minor: i64,
    payment_method: &str,
    key: &str,
) -> ApiResult<(Uuid, domain::money::Currency)> {
    idempotency::check_key(key)?;
    // In the currency of the buyer's region (the wallet's, while it holds money); the limits
    // are the store's, converted.
    let currency = crate::identity::shopping_region(state, me.id)
        .await?
        .currency;
    let limit = |m| domain::money::convert(m, state.config.currency, currency).unwrap_or(m);
    let (min, max) = (limit(state.config.top_up.0), limit(state.config.top_up.1));
    if !domain::billing::check_top_up(amount_minor, min, max) {
        let fmt = |m| domain::money::Money { minor: m, currency }.format();
        return Err(ApiError::BadInput {
            field: "amount",
            message: format!("a top-up is between {} and {}", fmt(min), fmt(max)),
        });
    }
    let method = payment_method.trim();
    if method.is_empty() || method.len() > 64 {
        return Err(ApiError::BadInput {
            field: "paymentMethod",
            message: "the payment method must have 1 to 64 characters".into(),
        });
    }
    let input_hash = idempotency::hash(&["topUpWallet", &amount_minor.to_string(), method]);
    if let Some(id) = idempotency::lookup(state, me.id, key, &input_hash).await? {
        return Ok((id, currency));
    }
    let top_up_id = idempotency::derived_id("top-up", me.id, key);
    let record = Record {
        hash: input_hash,
        id: top_up_id,
    };
    if let Some(id) = idempotency::claim(state, me.id, key, &record).await? {
        return Ok((id, currency));
    }
    let mut envelope = Envelope::new(
        TopUp {
            top_up_id,
            account_id: me.id,
            amount_minor,
            currency,
            payment_method: method.to_owned(),
        },
        top_up_id,
        Some(me.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    if let Err(e) = state
        .bus
        .publish_with_id(&envelope, &top_up_id.to_string())
        .await
    {
        idempotency::release(state, me.id, key).await;
        return Err(e.into());
    }
    tracing::info!(top_up.id = %top_up_id, card.last4 = %domain::billing::last4(method), "top-up requested");
    Ok((top_up_id, currency))
}

/// A top-up as billing recorded it (`None` while it is pending).
#[derive(Clone, Debug)]
pub struct TopUpRow {
    pub status: String,
    pub reason: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
}

pub async fn find_top_up(state: &AppState, id: Uuid) -> ApiResult<Option<(Uuid, TopUpRow)>> {
    let row = top_up::Entity::find_by_id(id).one(&state.db).await?;
    Ok(row.map(|t| {
        (
            t.account_id,
            TopUpRow {
                status: t.status,
                reason: t.reason,
                amount_minor: t.amount_minor,
                currency: t.currency,
            },
        )
    }))
}

/// A publisher's revenue on one day (UTC): sales and refunds, net of the platform fee.
pub use revenue_entry::Day as RevenueDay;

/// A publisher's revenue over the last `days` days (each day present, oldest first) and
/// all-time totals, from `billing.revenue_entry`.
#[derive(Clone, Debug)]
pub struct Revenue {
    pub days: Vec<RevenueDay>,
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub net_minor: i64,
    pub refunded_minor: i64,
    pub sales: i64,
    pub refunds: i64,
}

/// Longest period of the revenue chart, days.
pub const MAX_REVENUE_DAYS: i32 = 366;

/// The revenue of `publisher` in `currency` (each currency's figures are apart: sales in yen
/// and in euros do not add up).
pub async fn revenue(
    state: &AppState,
    publisher: Uuid,
    days: i32,
    currency: domain::money::Currency,
) -> ApiResult<Revenue> {
    if !(1..=MAX_REVENUE_DAYS).contains(&days) {
        return Err(ApiError::BadInput {
            field: "days",
            message: format!("between 1 and {MAX_REVENUE_DAYS} days"),
        });
    }
    let c = currency.as_str();
    let (days, totals) = futures::future::try_join(
        revenue_entry::by_day(&state.db, publisher, days, c),
        revenue_entry::totals(&state.db, publisher, c),
    )
    .await?;
    Ok(Revenue {
        days,
        gross_minor: totals.gross_minor,
        fee_minor: totals.fee_minor,
        net_minor: totals.net_minor,
        refunded_minor: totals.refunded_minor,
        sales: totals.sales,
        refunds: totals.refunds,
    })
}
