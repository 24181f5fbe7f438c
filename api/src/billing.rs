//! Billing on the api side: the wallet's balance (derived in Redis, rebuilt from PostgreSQL on a
//! miss or read from it while Redis is down), its ledger, and `topUpWallet` (published as `cmd.billing.top_up`).

use domain::billing::TopUp;
use domain::messaging::Envelope;
use domain::sql::stmt;
use fred::prelude::*;
use sea_orm::ConnectionTrait;
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
        state,
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
        state,
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
    let row = state
        .db
        .query_one_raw(stmt(
            "SELECT balance_minor, version FROM billing.wallet WHERE account_id = $1",
            [account.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => Balance {
            minor: r.try_get("", "balance_minor")?,
            version: r.try_get("", "version")?,
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
}

/// Ledger entries, newest first, with versions below `before`.
pub async fn entries(
    state: &AppState,
    account: Uuid,
    before: Option<i64>,
    limit: u64,
) -> ApiResult<Vec<Entry>> {
    let rows = state
        .db
        .query_all_raw(stmt(
            "SELECT id, kind, reference, amount_minor, balance_after, version, created_at FROM billing.ledger_entry \
             WHERE account_id = $1 AND ($2::bigint IS NULL OR version < $2) ORDER BY version DESC LIMIT $3",
            [
                account.into(),
                before.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Entry {
                id: r.try_get("", "id")?,
                kind: r.try_get("", "kind")?,
                reference: r.try_get("", "reference")?,
                amount_minor: r.try_get("", "amount_minor")?,
                balance_after: r.try_get("", "balance_after")?,
                version: r.try_get("", "version")?,
                created_at: r.try_get("", "created_at")?,
            })
        })
        .collect()
}

/// Asks billing to top the wallet up; returns the top-up id (derived from the key).
pub async fn top_up(
    state: &AppState,
    me: &Principal,
    amount_minor: i64,
    payment_method: &str,
    key: &str,
) -> ApiResult<Uuid> {
    idempotency::check_key(key)?;
    let (min, max) = state.config.top_up;
    if !domain::billing::check_top_up(amount_minor, min, max) {
        let fmt = |m| {
            domain::money::Money {
                minor: m,
                currency: state.config.currency,
            }
            .format()
        };
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
        return Ok(id);
    }
    let top_up_id = idempotency::derived_id("top-up", me.id, key);
    let record = Record {
        hash: input_hash,
        id: top_up_id,
    };
    if let Some(id) = idempotency::claim(state, me.id, key, &record).await? {
        return Ok(id);
    }
    let mut envelope = Envelope::new(
        TopUp {
            top_up_id,
            account_id: me.id,
            amount_minor,
            currency: state.config.currency,
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
    Ok(top_up_id)
}

/// A top-up as billing recorded it (`None` while it is pending).
#[derive(Clone, Debug)]
pub struct TopUpRow {
    pub status: String,
    pub reason: Option<String>,
    pub amount_minor: i64,
}

pub async fn find_top_up(state: &AppState, id: Uuid) -> ApiResult<Option<(Uuid, TopUpRow)>> {
    let row = state
        .db
        .query_one_raw(stmt(
            "SELECT account_id, status, reason, amount_minor FROM billing.top_up WHERE id = $1",
            [id.into()],
        ))
        .await?;
    row.map(|r| {
        Ok((
            r.try_get("", "account_id")?,
            TopUpRow {
                status: r.try_get("", "status")?,
                reason: r.try_get("", "reason")?,
                amount_minor: r.try_get("", "amount_minor")?,
            },
        ))
    })
    .transpose()
}

/// A publisher's revenue on one day (UTC): sales and refunds, net of the platform fee.
#[derive(Clone, Debug)]
pub struct RevenueDay {
    pub day: chrono::NaiveDate,
    pub gross_minor: i64,
    pub fee_minor: i64,
    pub net_minor: i64,
    pub sales: i64,
    pub refunds: i64,
}

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

pub async fn revenue(state: &AppState, publisher: Uuid, days: i32) -> ApiResult<Revenue> {
    if !(1..=MAX_REVENUE_DAYS).contains(&days) {
        return Err(ApiError::BadInput {
            field: "days",
            message: format!("between 1 and {MAX_REVENUE_DAYS} days"),
        });
    }
    let rows = state
        .db
        .query_all_raw(stmt(
            "SELECT d::date AS day, \
                    COALESCE(sum(e.gross_minor), 0)::bigint AS gross, \
                    COALESCE(sum(e.fee_minor), 0)::bigint AS fee, \
                    COALESCE(sum(e.net_minor), 0)::bigint AS net, \
                    count(*) FILTER (WHERE e.kind = 'sale') AS sales, \
                    count(*) FILTER (WHERE e.kind = 'reversal') AS refunds \
             FROM generate_series((now() AT TIME ZONE 'UTC')::date - ($2::int - 1), (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d \
             LEFT JOIN billing.revenue_entry e ON e.publisher_id = $1 \
                  AND (e.created_at AT TIME ZONE 'UTC')::date = d::date \
             GROUP BY d ORDER BY d",
            [publisher.into(), days.into()],
        ))
        .await?;
    let days = rows
        .into_iter()
        .map(|r| {
            Ok(RevenueDay {
                day: r.try_get("", "day")?,
                gross_minor: r.try_get("", "gross")?,
                fee_minor: r.try_get("", "fee")?,
                net_minor: r.try_get("", "net")?,
                sales: r.try_get("", "sales")?,
                refunds: r.try_get("", "refunds")?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let totals = state
        .db
        .query_one_raw(stmt(
            "SELECT COALESCE(sum(gross_minor), 0)::bigint AS gross, COALESCE(sum(fee_minor), 0)::bigint AS fee, \
                    COALESCE(sum(net_minor), 0)::bigint AS net, \
                    COALESCE(-sum(net_minor) FILTER (WHERE kind = 'reversal'), 0)::bigint AS refunded, \
                    count(*) FILTER (WHERE kind = 'sale') AS sales, count(*) FILTER (WHERE kind = 'reversal') AS refunds \
             FROM billing.revenue_entry WHERE publisher_id = $1",
            [publisher.into()],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("an aggregate returned no row"))?;
    Ok(Revenue {
        days,
        gross_minor: totals.try_get("", "gross")?,
        fee_minor: totals.try_get("", "fee")?,
        net_minor: totals.try_get("", "net")?,
        refunded_minor: totals.try_get("", "refunded")?,
        sales: totals.try_get("", "sales")?,
        refunds: totals.try_get("", "refunds")?,
    })
}
