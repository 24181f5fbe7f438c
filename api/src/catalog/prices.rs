//! Regional prices: what an edition costs in each currency the store sells in.
//!
//! An edition has one base price, in the store's currency (`STORE_CURRENCY`), which the
//! listing projection (`priceFrom`, price sort and filters) follows. In every other currency
//! it costs what its publisher set (`catalog.edition_price`, [`set_edition_prices`]), or, where
//! they set nothing, the suggested conversion of the base price at the table's rate
//! (`domain/data/exchange_rates.csv`, [`domain::money::suggested_price`]). A running discount
//! takes its percentage off the price of the currency, whichever it is. The api alone writes
//! `catalog.edition_price`.

use std::collections::HashMap;

use chrono::Utc;
use domain::catalog::entity::{edition, edition_price};
use domain::money::{self, Currency};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// The prices a publisher set, by edition, then by currency.
pub type Explicit = HashMap<Uuid, HashMap<Currency, i64>>;

/// The prices set for `editions` (one statement).
pub async fn explicit(db: &impl ConnectionTrait, editions: &[Uuid]) -> ApiResult<Explicit> {
    let mut out: Explicit = editions.iter().map(|e| (*e, HashMap::new())).collect();
    if editions.is_empty() {
        return Ok(out);
    }
    let rows = edition_price::Entity::find()
        .filter(edition_price::Column::EditionId.is_in(editions.to_vec()))
        .all(db)
        .await?;
    for row in rows {
        if let Ok(c) = Currency::parse(&row.currency) {
            out.entry(row.edition_id)
                .or_default()
                .insert(c, row.amount_minor);
        }
    }
    Ok(out)
}

/// An edition's base price and currency, as stored.
pub fn base(e: &edition::Model) -> ApiResult<(i64, Currency)> {
    let c = Currency::parse(&e.currency)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored currency: {err}")))?;
    Ok((e.price_minor, c))
}

/// The list price (before discounts) of `e` in `to`: the base price in its own currency, the
/// publisher's price where one is set, else the suggested conversion.
pub fn list_price(
    e: &edition::Model,
    set: Option<&HashMap<Currency, i64>>,
    to: Currency,
) -> ApiResult<i64> {
    let (minor, from) = base(e)?;
    if let Some(p) = set.and_then(|s| s.get(&to)).filter(|_| from != to) {
        return Ok(*p);
    }
    money::suggested_price(minor, from, to).ok_or(ApiError::BadInput {
        field: "currency",
        message: money::MoneyError::Unsupported(to.as_str().to_owned()).to_string(),
    })
}

/// A currency a caller asked for by code: one the store sells in, else `BAD_USER_INPUT`.
pub fn requested(code: &str, field: &'static str) -> ApiResult<Currency> {
    Currency::parse_supported(code).map_err(|e| ApiError::BadInput {
        field,
        message: e.to_string(),
    })
}

/// Publisher: sets the prices of `edition_id` (theirs) in other currencies than its base
/// price's, replacing those set before; a currency left out sells at the suggested
/// conversion again. Each currency must be one the store sells in, at most once, and not the
/// base price's (that one is `updateEdition`'s); each amount 0 ..= the currency's maximum.
/// Orders placed before keep their prices.
pub async fn set_edition_prices(
    state: &AppState,
    me: &Principal,
    edition_id: Uuid,
    prices: &[(String, i64)],
) -> ApiResult<Explicit> {
    let mut checked: Vec<(Currency, i64)> = Vec::with_capacity(prices.len());
    for (code, minor) in prices {
        let c = requested(code, "prices")?;
        if checked.iter().any(|(x, _)| *x == c) {
            return Err(ApiError::BadInput {
                field: "prices",
                message: format!("{} is given twice", c.as_str()),
            });
        }
        let max = money::max_price_minor(c);
        if !(0..=max).contains(minor) {
            return Err(ApiError::BadInput {
                field: "prices",
                message: format!(
                    "a price in {} is between 0 and {}",
                    c.as_str(),
                    money::Money {
                        minor: max,
                        currency: c
                    }
                    .format()
                ),
            });
        }
        checked.push((c, *minor));
    }
    let txn = state.db.begin().await?;
    let (e, _) = crate::catalog::own_edition(&txn, me, edition_id).await?;
    let (_, base) = base(&e)?;
    if let Some((c, _)) = checked.iter().find(|(c, _)| *c == base) {
        return Err(ApiError::BadInput {
            field: "prices",
            message: format!(
                "{} is the base price's currency; change the base price with updateEdition",
                c.as_str()
            ),
        });
    }
    edition_price::Entity::delete_many()
        .filter(edition_price::Column::EditionId.eq(e.id))
        .exec(&txn)
        .await?;
    if !checked.is_empty() {
        let now = Utc::now();
        edition_price::Entity::insert_many(checked.iter().map(|(c, minor)| {
            edition_price::ActiveModel {
                edition_id: sea_orm::ActiveValue::Set(e.id),
                currency: sea_orm::ActiveValue::Set(c.as_str().to_owned()),
                amount_minor: sea_orm::ActiveValue::Set(*minor),
                updated_at: sea_orm::ActiveValue::Set(now),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                edition_price::Column::EditionId,
                edition_price::Column::Currency,
            ])
            .update_columns([
                edition_price::Column::AmountMinor,
                edition_price::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await?;
    tracing::info!(edition.id = %e.id, currencies = checked.len(), "regional prices set");
    explicit(&state.db, &[e.id]).await
}
