//! Discounts: publishers schedule a percentage off an edition for a window of time; the
//! publisher or an admin ends one early. The api alone writes `catalog.discount`.
//!
//! Two readers follow a discount differently:
//! - **what an order pays** ([`running`]): the discount whose window holds the instant of
//!   `placeOrder`, read from the window itself, so an order placed a moment before the end pays
//!   the discounted price and one placed after it the full one, whatever happens next;
//! - **the listing** (the product's `price_from_minor`, its sort key and the "on sale"
//!   filter): a projection the discount clock ([`clock`]) moves at each window's edge, within
//!   a second of it. Scheduling a discount that starts at once, or ending one, moves it in the
//!   same transaction. When a discount starts, those who wished for the product are told
//!   (`catalog.wished_item_on_sale`, through the catalog's outbox), once per discount.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::catalog::discount::{
    self as rules, DiscountError, WISHERS_PER_EVENT, WishedItemOnSale,
};
use domain::catalog::entity::{discount, edition, product, wishlist};
use domain::identity::Role;
use domain::messaging::Envelope;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// Where a discount stands at an instant, as its publisher sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscountStatus {
    Scheduled,
    Running,
    Ended,
    Cancelled,
}

pub fn status_at(d: &discount::Model, now: DateTime<Utc>) -> DiscountStatus {
    if d.cancelled_at.is_some() {
        DiscountStatus::Cancelled
    } else if d.ends_at <= now {
        DiscountStatus::Ended
    } else if d.starts_at <= now {
        DiscountStatus::Running
    } else {
        DiscountStatus::Scheduled
    }
}

impl From<DiscountError> for ApiError {
    fn from(e: DiscountError) -> ApiError {
        ApiError::BadInput {
            field: e.field(),
            message: e.to_string(),
        }
    }
}

const APPLIED_PENDING: &str = "pending";
const APPLIED_STARTED: &str = "started";
const APPLIED_ENDED: &str = "ended";

/// The discount of each of `editions` running at `at` (at most one each: the database refuses
/// overlapping windows).
pub async fn running(
    db: &impl ConnectionTrait,
    editions: &[Uuid],
    at: DateTime<Utc>,
) -> ApiResult<HashMap<Uuid, discount::Model>> {
    if editions.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(discount::Entity::find()
        .filter(discount::Column::EditionId.is_in(editions.iter().copied()))
        .filter(discount::Column::CancelledAt.is_null())
        .filter(discount::Column::StartsAt.lte(at))
        .filter(discount::Column::EndsAt.gt(at))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.edition_id, d))
        .collect())
}

/// Every discount of `editions`, cancelled ones included, newest window first.
pub async fn of_editions(
    db: &impl ConnectionTrait,
    editions: &[Uuid],
) -> ApiResult<Vec<discount::Model>> {
    Ok(discount::Entity::find()
        .filter(discount::Column::EditionId.is_in(editions.iter().copied()))
        .order_by_desc(discount::Column::StartsAt)
        .all(db)
        .await?)
}

fn overlaps(e: &sea_orm::DbErr) -> bool {
    // The exclusion constraint `discount_no_overlap` (SQLSTATE 23P01).
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
        || e.to_string().contains("discount_no_overlap")
}

/// Publisher: schedules `percent` off `edition_id` (theirs) from `starts_at` (now when left
/// out or past) until `ends_at`.
pub async fn schedule(
    state: &AppState,
    me: &Principal,
    edition_id: Uuid,
    percent: i32,
    starts_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
) -> ApiResult<discount::Model> {
    crate::catalog::require_publisher(me)?;
    let now = Utc::now();
    let s = rules::schedule(percent, starts_at, ends_at, now)?;
    let txn = state.db.begin().await?;
    let (e, p) = crate::catalog::own_edition(&txn, me, edition_id).await?;
    let starts_now = s.starts_at <= now;
    let row = discount::ActiveModel {
        id: Set(domain::id::new_id()),
        edition_id: Set(e.id),
        product_id: Set(p.id),
        percent: Set(s.percent),
        starts_at: Set(s.starts_at),
        ends_at: Set(s.ends_at),
        applied: Set(if starts_now {
            APPLIED_STARTED
        } else {
            APPLIED_PENDING
        }
        .to_owned()),
        created_by: Set(me.id),
        created_at: Set(now),
        cancelled_at: Set(None),
        ended_early_by: Set(None),
        ended_early_reason: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|err| {
        if overlaps(&err) {
            ApiError::Conflict(
                "another discount of this edition is scheduled in that time; end it or pick \
                 another window"
                    .into(),
            )
        } else {
            err.into()
        }
    })?;
    let told = if starts_now {
        crate::catalog::refresh_price_from(&txn, p.id).await?;
        tell_wishers(&txn, &row, &p, &e, me.id).await?
    } else {
        false
    };
    txn.commit().await?;
    if told {
        state.wake_outbox();
    }
    tracing::info!(discount.id = %row.id, edition.id = %e.id, percent = s.percent, "discount scheduled");
    Ok(row)
}

/// Ends a discount now: its publisher, or an admin (whose reason goes to the audit log). One
/// that has not started is cancelled; a running one ends at this instant.
pub async fn end(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    reason: Option<String>,
) -> ApiResult<discount::Model> {
    let reason = rules::parse_reason(reason.as_deref())?;
    if !matches!(me.role, Role::Publisher | Role::Admin) {
        return Err(ApiError::Forbidden(
            "only the product's publisher or an admin ends a discount",
        ));
    }
    let txn = state.db.begin().await?;
    // The discount first, then its product: the clock locks in the same order.
    let current = discount::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("discount"))?;
    let p = product::Entity::find_by_id(current.product_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("discount"))?;
    if me.role == Role::Publisher && p.publisher_id != me.id {
        // Another publisher's discount is not theirs to see either.
        return Err(ApiError::NotFound("discount"));
    }
    let now = Utc::now();
    let was = status_at(&current, now);
    if matches!(was, DiscountStatus::Ended | DiscountStatus::Cancelled) {
        return Err(ApiError::Conflict("this discount has already ended".into()));
    }
    let mut d: discount::ActiveModel = current.into();
    if was == DiscountStatus::Scheduled {
        d.cancelled_at = Set(Some(now));
    } else {
        d.ends_at = Set(now);
    }
    d.applied = Set(APPLIED_ENDED.to_owned());
    d.ended_early_by = Set(Some(me.id));
    d.ended_early_reason = Set(reason.clone());
    let updated = d.update(&txn).await?;
    crate::catalog::refresh_price_from(&txn, p.id).await?;
    if me.role == Role::Admin {
        crate::identity::audit_discount_end(&txn, me.id, p.id, updated.id, reason.as_deref())
            .await?;
    }
    txn.commit().await?;
    tracing::info!(discount.id = %id, by = %me.id, "discount ended early");
    Ok(updated)
}

/// Writes the events telling those who wished for `p` that `d` started, in `txn` (the
/// transaction that starts it). Whether anything was written.
async fn tell_wishers(
    txn: &DatabaseTransaction,
    d: &discount::Model,
    p: &product::Model,
    e: &edition::Model,
    actor: Uuid,
) -> ApiResult<bool> {
    if p.status != domain::catalog::ProductStatus::Published.as_str() {
        return Ok(false);
    }
    let wishers: Vec<Uuid> = wishlist::Entity::find()
        .select_only()
        .column(wishlist::Column::AccountId)
        .filter(wishlist::Column::ProductId.eq(p.id))
        .order_by_asc(wishlist::Column::AccountId)
        .into_tuple()
        .all(txn)
        .await?;
    for part in wishers.chunks(WISHERS_PER_EVENT) {
        let mut envelope = Envelope::new(
            WishedItemOnSale {
                discount_id: d.id,
                product_id: p.id,
                product_title: p.title.clone(),
                edition_name: e.name.clone(),
                percent: d.percent,
                ends_at: d.ends_at,
                accounts: part.to_vec(),
            },
            p.id,
            Some(actor),
        );
        envelope.trace = Some(domain::bus::new_traceparent());
        crate::catalog::outbox::write(txn, &envelope).await?;
    }
    Ok(!wishers.is_empty())
}

/// Most window edges one pass of the clock follows (the rest wait for the next pass).
const CLOCK_BATCH: u64 = 200;

/// One pass of the discount clock at `now`: every discount whose start or end passed and the
/// listing has not followed yet is marked so, its products' listing prices are recomputed and,
/// for a start, the wishers told; all in one transaction. Replicas share the work (`SKIP
/// LOCKED`). Returns how many discounts moved.
pub async fn follow_edges(state: &AppState, now: DateTime<Utc>) -> ApiResult<usize> {
    let due = || {
        Condition::all()
            .add(discount::Column::Applied.ne(APPLIED_ENDED))
            .add(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(discount::Column::Applied.eq(APPLIED_PENDING))
                            .add(discount::Column::StartsAt.lte(now)),
                    )
                    .add(discount::Column::EndsAt.lte(now))
                    .add(discount::Column::CancelledAt.is_not_null()),
            )
    };
    // Most passes find nothing: one plain read, no transaction.
    let any = discount::Entity::find()
        .select_only()
        .column(discount::Column::Id)
        .filter(due())
        .limit(1)
        .into_tuple::<Uuid>()
        .one(&state.db)
        .await?;
    if any.is_none() {
        return Ok(0);
    }
    let txn = state.db.begin().await?;
    let rows = discount::Entity::find()
        .filter(due())
        .order_by_asc(discount::Column::Id)
        .limit(CLOCK_BATCH)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .all(&txn)
        .await?;
    let ended = |d: &discount::Model| d.cancelled_at.is_some() || d.ends_at <= now;
    let (done, started): (Vec<&discount::Model>, Vec<&discount::Model>) =
        rows.iter().partition(|d| ended(d));
    for (to, ids) in [(APPLIED_ENDED, &done), (APPLIED_STARTED, &started)] {
        if ids.is_empty() {
            continue;
        }
        discount::Entity::update_many()
            .col_expr(discount::Column::Applied, Expr::value(to))
            .filter(discount::Column::Id.is_in(ids.iter().map(|d| d.id)))
            .exec(&txn)
            .await?;
    }
    // The wishers of discounts that start now (not of one already started and now ended).
    let starting: Vec<&discount::Model> = started
        .into_iter()
        .filter(|d| d.applied == APPLIED_PENDING)
        .collect();
    let mut told = false;
    if !starting.is_empty() {
        let editions: HashMap<Uuid, edition::Model> = edition::Entity::find()
            .filter(edition::Column::Id.is_in(starting.iter().map(|d| d.edition_id)))
            .all(&txn)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
        let products: HashMap<Uuid, product::Model> = product::Entity::find()
            .filter(product::Column::Id.is_in(starting.iter().map(|d| d.product_id)))
            .all(&txn)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        for d in starting {
            if let (Some(e), Some(p)) = (editions.get(&d.edition_id), products.get(&d.product_id)) {
                told |= tell_wishers(&txn, d, p, e, d.created_by).await?;
            }
        }
    }
    let products: BTreeSet<Uuid> = rows.iter().map(|d| d.product_id).collect();
    for p in products {
        crate::catalog::refresh_price_from(&txn, p).await?;
    }
    txn.commit().await?;
    if told {
        state.wake_outbox();
    }
    if !rows.is_empty() {
        tracing::info!(
            discounts = rows.len(),
            "the listing followed discount edges"
        );
    }
    Ok(rows.len())
}

/// Follows discount edges forever, about once a second (`api serve` runs it).
pub async fn clock(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = follow_edges(&state, Utc::now()).await {
            tracing::warn!(error = %e, "the discount clock could not follow an edge; retrying");
        }
    }
}
