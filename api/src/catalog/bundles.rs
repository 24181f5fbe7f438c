//! Bundles: a publisher groups editions of their own published products and sells them
//! together at a price of their own. The api alone writes `catalog.bundle` and
//! `catalog.bundle_item`.
//!
//! What a buyer pays is decided by [`quote`] (shown on the bundle page) and again by
//! `placeOrder` with the same function: the bundle's ratio times the list price
//! ([`part_list_price`]) of each part the buyer does not own yet, split per line so the lines
//! add up exactly ([`domain::catalog::bundle::price_parts`]). A part is owned when the buyer
//! has an unrevoked entitlement of its product, or the product is claimed by another order of
//! theirs that is alive or completed (`ordering.product_claim`). Running discounts on the parts
//! do not apply: a bundle is priced from list prices.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use domain::catalog::bundle::{self as rules, BundleError};
use domain::catalog::entity::{bundle, bundle_item, edition, product};
use domain::catalog::{self as catalog_rules, ProductStatus};
use domain::identity::Role;
use domain::library::entity::entitlement;
use domain::ordering::entity::product_claim;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// Most bundles listed at once (a publisher's, or those holding one product).
pub const MAX_LISTED: u64 = 100;

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> ApiError {
        ApiError::BadInput {
            field: e.field(),
            message: e.to_string(),
        }
    }
}

/// Where a bundle stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleStatus {
    /// Its publisher is putting it together; only they (and admins) see it.
    Draft,
    /// On sale.
    Published,
    /// No longer on sale; orders already placed keep it.
    Archived,
}

impl BundleStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            BundleStatus::Draft => "draft",
            BundleStatus::Published => "published",
            BundleStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<BundleStatus> {
        [
            BundleStatus::Draft,
            BundleStatus::Published,
            BundleStatus::Archived,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// The list price of one part of a bundle: every bundle price (its check, its quote, its
/// order) goes through this one function.
pub fn part_list_price(e: &edition::Model) -> i64 {
    e.price_minor
}

/// Fields of a new bundle.
#[derive(Clone, Debug)]
pub struct BundleInput {
    pub title: String,
    pub slug: Option<String>,
    pub description: String,
    pub price_minor: i64,
    pub edition_ids: Vec<Uuid>,
}

/// Changes to a bundle; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct BundlePatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub price_minor: Option<i64>,
    pub edition_ids: Option<Vec<Uuid>>,
}

/// One part of a bundle: the edition and its product.
#[derive(Clone, Debug)]
pub struct Part {
    pub edition: edition::Model,
    pub product: product::Model,
}

/// Whether `caller` may see the bundle: published or archived ones everyone (an archived one
/// is no longer sold), drafts their publisher and admins.
pub fn visible_to(b: &bundle::Model, caller: Option<&Principal>) -> bool {
    b.status != BundleStatus::Draft.as_str()
        || caller.is_some_and(|c| c.role == Role::Admin || c.id == b.publisher_id)
}

/// The parts of each of `bundles`, in their order, in two statements.
pub async fn parts_of(
    db: &impl ConnectionTrait,
    bundles: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<Part>>> {
    let mut out: HashMap<Uuid, Vec<Part>> = bundles.iter().map(|b| (*b, Vec::new())).collect();
    if bundles.is_empty() {
        return Ok(out);
    }
    let items = bundle_item::Entity::find()
        .filter(bundle_item::Column::BundleId.is_in(bundles.to_vec()))
        .order_by_asc(bundle_item::Column::BundleId)
        .order_by_asc(bundle_item::Column::Position)
        .all(db)
        .await?;
    let editions: Vec<Uuid> = items.iter().map(|i| i.edition_id).collect();
    let found = editions_with_products(db, &editions).await?;
    for i in items {
        if let Some((e, p)) = found.get(&i.edition_id) {
            out.entry(i.bundle_id).or_default().push(Part {
                edition: e.clone(),
                product: p.clone(),
            });
        }
    }
    Ok(out)
}

/// The parts of one bundle, in order.
pub async fn parts(db: &impl ConnectionTrait, bundle: Uuid) -> ApiResult<Vec<Part>> {
    Ok(parts_of(db, &[bundle])
        .await?
        .remove(&bundle)
        .unwrap_or_default())
}

async fn editions_with_products(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, (edition::Model, product::Model)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let of_product: sea_orm::RelationDef = edition::Entity::belongs_to(product::Entity)
        .from(edition::Column::ProductId)
        .to(product::Column::Id)
        .into();
    Ok(edition::Entity::find()
        .join(sea_orm::JoinType::InnerJoin, of_product)
        .select_also(product::Entity)
        .filter(edition::Column::Id.is_in(ids.to_vec()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(e, p)| Some((e.id, (e, p?))))
        .collect())
}

/// Checks the editions of a bundle of `publisher`: 2 to 20, none twice, each one the
/// publisher's own (`FORBIDDEN` otherwise), published and priced in the store's currency.
/// Physical ones then come from one publisher, so they ship as one parcel.
async fn checked_parts(
    state: &AppState,
    db: &impl ConnectionTrait,
    publisher: Uuid,
    editions: &[Uuid],
) -> ApiResult<Vec<Part>> {
    rules::check_items(editions)?;
    let found = editions_with_products(db, editions).await?;
    let mut out = Vec::with_capacity(editions.len());
    for id in editions {
        let (e, p) = found.get(id).ok_or(ApiError::NotFound("edition"))?;
        if p.publisher_id != publisher {
            return Err(ApiError::Forbidden(
                "a bundle holds only editions of its publisher's own products",
            ));
        }
        if p.status != ProductStatus::Published.as_str() {
            return Err(ApiError::BadInput {
                field: "editionIds",
                message: format!("“{}” is not published", p.title),
            });
        }
        if e.currency != state.config.currency.as_str() {
            return Err(ApiError::BadInput {
                field: "editionIds",
                message: format!(
                    "“{}” ({}) is not priced in {}",
                    p.title,
                    e.name,
                    state.config.currency.as_str()
                ),
            });
        }
        out.push(Part {
            edition: e.clone(),
            product: p.clone(),
        });
    }
    Ok(out)
}

fn list_prices(parts: &[Part]) -> Vec<i64> {
    parts.iter().map(|p| part_list_price(&p.edition)).collect()
}

async fn write_items(txn: &DatabaseTransaction, bundle: Uuid, editions: &[Uuid]) -> ApiResult<()> {
    bundle_item::Entity::delete_many()
        .filter(bundle_item::Column::BundleId.eq(bundle))
        .exec(txn)
        .await?;
    let rows = editions
        .iter()
        .enumerate()
        .map(|(i, e)| bundle_item::ActiveModel {
            bundle_id: Set(bundle),
            edition_id: Set(*e),
            position: Set(i16::try_from(i).unwrap_or(i16::MAX)),
        });
    bundle_item::Entity::insert_many(rows).exec(txn).await?;
    Ok(())
}

/// Publisher: creates a draft bundle of their editions.
pub async fn create(
    state: &AppState,
    me: &Principal,
    input: BundleInput,
) -> ApiResult<bundle::Model> {
    crate::catalog::require_publisher(me)?;
    let title = rules::parse_title(&input.title)?;
    let description = rules::parse_description(&input.description)?;
    let explicit = input.slug.is_some();
    let base_slug = match &input.slug {
        Some(s) => catalog_rules::parse_slug(s)?,
        None => catalog_rules::slugify(&title),
    };
    let now = Utc::now();
    for attempt in 0..5 {
        let slug = if attempt == 0 {
            base_slug.clone()
        } else {
            let suffix = &domain::id::new_id().simple().to_string()[26..];
            let stem: String = base_slug.chars().take(80 - suffix.len() - 1).collect();
            format!("{}-{suffix}", stem.trim_end_matches('-'))
        };
        let txn = state.db.begin().await?;
        let parts = checked_parts(state, &txn, me.id, &input.edition_ids).await?;
        rules::check_price(input.price_minor, &list_prices(&parts))?;
        let row = bundle::ActiveModel {
            id: Set(domain::id::new_id()),
            publisher_id: Set(me.id),
            slug: Set(slug),
            title: Set(title.clone()),
            description: Set(description.clone()),
            price_minor: Set(input.price_minor),
            currency: Set(state.config.currency.as_str().to_owned()),
            status: Set(BundleStatus::Draft.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            published_at: Set(None),
        };
        match row.insert(&txn).await {
            Ok(b) => {
                write_items(&txn, b.id, &input.edition_ids).await?;
                txn.commit().await?;
                tracing::info!(bundle.id = %b.id, publisher.id = %me.id, "bundle created");
                return Ok(b);
            }
            Err(e) if unique(&e) && !explicit => continue,
            Err(e) if unique(&e) => {
                return Err(ApiError::BadInput {
                    field: "slug",
                    message: "this slug is taken".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("could not find a free slug".into()))
}

fn unique(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Loads a bundle for a change by its publisher or an admin, locking the row.
async fn own_bundle(
    txn: &DatabaseTransaction,
    me: &Principal,
    id: Uuid,
) -> ApiResult<bundle::Model> {
    if !matches!(me.role, Role::Publisher | Role::Admin) {
        return Err(ApiError::Forbidden("only publishers manage bundles"));
    }
    let b = bundle::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(ApiError::NotFound("bundle"))?;
    if b.publisher_id != me.id && me.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "this bundle belongs to another publisher",
        ));
    }
    Ok(b)
}

/// Its publisher or an admin: changes a bundle (every rule is checked again on the whole).
pub async fn update(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    patch: BundlePatch,
) -> ApiResult<bundle::Model> {
    let txn = state.db.begin().await?;
    let current = own_bundle(&txn, me, id).await?;
    if current.status == BundleStatus::Archived.as_str() {
        return Err(ApiError::Conflict(
            "an archived bundle does not change".into(),
        ));
    }
    let editions = match &patch.edition_ids {
        Some(e) => e.clone(),
        None => {
            bundle_item::Entity::find()
                .select_only()
                .column(bundle_item::Column::EditionId)
                .filter(bundle_item::Column::BundleId.eq(id))
                .order_by_asc(bundle_item::Column::Position)
                .into_tuple()
                .all(&txn)
                .await?
        }
    };
    let parts = checked_parts(state, &txn, current.publisher_id, &editions).await?;
    let price_minor = patch.price_minor.unwrap_or(current.price_minor);
    rules::check_price(price_minor, &list_prices(&parts))?;
    let mut b: bundle::ActiveModel = current.into();
    if let Some(t) = &patch.title {
        b.title = Set(rules::parse_title(t)?);
    }
    if let Some(d) = &patch.description {
        b.description = Set(rules::parse_description(d)?);
    }
    b.price_minor = Set(price_minor);
    b.updated_at = Set(Utc::now());
    let b = b.update(&txn).await?;
    if patch.edition_ids.is_some() {
        write_items(&txn, id, &editions).await?;
    }
    txn.commit().await?;
    tracing::info!(bundle.id = %id, "bundle updated");
    Ok(b)
}

/// Its publisher or an admin: puts a bundle on sale (its parts and price checked again: a
/// part's product may have been unlisted, or its price lowered, since the draft).
pub async fn publish(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<bundle::Model> {
    set_status(state, me, id, BundleStatus::Published).await
}

/// Its publisher or an admin: takes a bundle off sale for good.
pub async fn archive(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<bundle::Model> {
    set_status(state, me, id, BundleStatus::Archived).await
}

async fn set_status(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    to: BundleStatus,
) -> ApiResult<bundle::Model> {
    let txn = state.db.begin().await?;
    let current = own_bundle(&txn, me, id).await?;
    let from = BundleStatus::parse(&current.status);
    if from == Some(to) {
        return Ok(current);
    }
    if from == Some(BundleStatus::Archived) {
        return Err(ApiError::Conflict(
            "an archived bundle does not change".into(),
        ));
    }
    let now = Utc::now();
    let mut b: bundle::ActiveModel = current.clone().into();
    if to == BundleStatus::Published {
        let editions: Vec<Uuid> = bundle_item::Entity::find()
            .select_only()
            .column(bundle_item::Column::EditionId)
            .filter(bundle_item::Column::BundleId.eq(id))
            .order_by_asc(bundle_item::Column::Position)
            .into_tuple()
            .all(&txn)
            .await?;
        let parts = checked_parts(state, &txn, current.publisher_id, &editions).await?;
        rules::check_price(current.price_minor, &list_prices(&parts))?;
        b.published_at = Set(Some(now));
    }
    b.status = Set(to.as_str().to_owned());
    b.updated_at = Set(now);
    let b = b.update(&txn).await?;
    txn.commit().await?;
    tracing::info!(bundle.id = %id, status = to.as_str(), "bundle status changed");
    Ok(b)
}

/// A bundle by id or slug (whatever its status: callers check [`visible_to`]).
pub async fn find(
    db: &impl ConnectionTrait,
    id: Option<Uuid>,
    slug: Option<&str>,
) -> ApiResult<Option<bundle::Model>> {
    let mut q = bundle::Entity::find();
    match (id, slug) {
        (Some(id), _) => q = q.filter(bundle::Column::Id.eq(id)),
        (None, Some(slug)) => q = q.filter(bundle::Column::Slug.eq(slug)),
        (None, None) => {
            return Err(ApiError::BadInput {
                field: "id",
                message: "give the bundle's id or its slug".into(),
            });
        }
    }
    Ok(q.one(db).await?)
}

/// The published bundles holding an edition of `product`, newest first.
pub async fn of_product(db: &impl ConnectionTrait, product: Uuid) -> ApiResult<Vec<bundle::Model>> {
    let editions: Vec<Uuid> = edition::Entity::find()
        .select_only()
        .column(edition::Column::Id)
        .filter(edition::Column::ProductId.eq(product))
        .into_tuple()
        .all(db)
        .await?;
    if editions.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = bundle_item::Entity::find()
        .select_only()
        .column(bundle_item::Column::BundleId)
        .distinct()
        .filter(bundle_item::Column::EditionId.is_in(editions))
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(bundle::Entity::find()
        .filter(bundle::Column::Id.is_in(ids))
        .filter(bundle::Column::Status.eq(BundleStatus::Published.as_str()))
        .order_by_desc(bundle::Column::CreatedAt)
        .limit(MAX_LISTED)
        .all(db)
        .await?)
}

/// A publisher's bundles, every status, newest first.
pub async fn of_publisher(
    db: &impl ConnectionTrait,
    publisher: Uuid,
) -> ApiResult<Vec<bundle::Model>> {
    Ok(bundle::Entity::find()
        .filter(bundle::Column::PublisherId.eq(publisher))
        .order_by_desc(bundle::Column::CreatedAt)
        .limit(MAX_LISTED)
        .all(db)
        .await?)
}

/// Which of `products` the account owns: an unrevoked entitlement, or a claim by one of its
/// orders that is alive or completed (`ordering.product_claim`).
pub async fn owned_or_claimed(
    db: &impl ConnectionTrait,
    account: Uuid,
    products: &[Uuid],
) -> ApiResult<HashSet<Uuid>> {
    if products.is_empty() {
        return Ok(HashSet::new());
    }
    let mut owned: HashSet<Uuid> = entitlement::Entity::find()
        .select_only()
        .column(entitlement::Column::ProductId)
        .distinct()
        .filter(entitlement::Column::AccountId.eq(account))
        .filter(entitlement::Column::ProductId.is_in(products.to_vec()))
        .filter(entitlement::Column::RevokedAt.is_null())
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let claimed: Vec<Uuid> = product_claim::Entity::find()
        .select_only()
        .column(product_claim::Column::ProductId)
        .filter(product_claim::Column::AccountId.eq(account))
        .filter(product_claim::Column::ProductId.is_in(products.to_vec()))
        .into_tuple()
        .all(db)
        .await?;
    owned.extend(claimed);
    Ok(owned)
}

/// One part of a bundle as a buyer would pay for it.
#[derive(Clone, Debug)]
pub struct QuotedPart {
    pub part: Part,
    pub list_price_minor: i64,
    /// The buyer has it already (not charged again).
    pub owned: bool,
    /// What the buyer pays for it, before tax; `None` when owned.
    pub price_minor: Option<i64>,
}

/// A bundle priced for one buyer (or for someone who owns none of it), in one currency.
#[derive(Clone, Debug)]
pub struct Quote {
    /// The currency of every amount of the quote.
    pub currency: domain::money::Currency,
    pub parts: Vec<QuotedPart>,
    /// The parts' list prices added up.
    pub list_total_minor: i64,
    /// What the buyer pays for the parts they do not own, before tax.
    pub price_minor: i64,
    pub owned_count: usize,
}

/// Prices `parts` of `bundle` for `buyer` (owning nothing when `None`) in `currency`. In
/// another currency than the bundle's, each part's list price is its regional one
/// ([`crate::catalog::prices::list_price`]) and the bundle costs its ratio (its price over its
/// parts' base list prices) of their sum, rounded half up.
pub async fn quote(
    db: &impl ConnectionTrait,
    bundle: &bundle::Model,
    parts: Vec<Part>,
    buyer: Option<Uuid>,
    currency: domain::money::Currency,
) -> ApiResult<Quote> {
    let owned = match buyer {
        Some(b) => {
            let products: Vec<Uuid> = parts.iter().map(|p| p.product.id).collect();
            owned_or_claimed(db, b, &products).await?
        }
        None => HashSet::new(),
    };
    let base_lists = list_prices(&parts);
    let (lists, bundle_price) = if bundle.currency == currency.as_str() {
        (base_lists, bundle.price_minor)
    } else {
        let ids: Vec<Uuid> = parts.iter().map(|p| p.edition.id).collect();
        let set = crate::catalog::prices::explicit(db, &ids).await?;
        let lists = parts
            .iter()
            .map(|p| {
                crate::catalog::prices::list_price(&p.edition, set.get(&p.edition.id), currency)
            })
            .collect::<ApiResult<Vec<i64>>>()?;
        let sum = |v: &[i64]| v.iter().fold(0i128, |a, p| a + i128::from(*p));
        let (base, there) = (sum(&base_lists), sum(&lists));
        let price = if base == 0 {
            0
        } else {
            let p = i128::from(bundle.price_minor) * there;
            i64::try_from((p * 2 + base) / (2 * base)).unwrap_or(i64::MAX)
        };
        (lists, price)
    };
    let flags: Vec<bool> = parts
        .iter()
        .map(|p| owned.contains(&p.product.id))
        .collect();
    let prices = rules::price_parts(bundle_price, &lists, &flags);
    let list_total_minor = lists.iter().fold(0i64, |a, p| a.saturating_add(*p));
    let price_minor = prices
        .iter()
        .flatten()
        .fold(0i64, |a, p| a.saturating_add(*p));
    let owned_count = flags.iter().filter(|o| **o).count();
    let parts = parts
        .into_iter()
        .zip(lists)
        .zip(flags.into_iter().zip(prices))
        .map(|((part, list), (owned, price))| QuotedPart {
            part,
            list_price_minor: list,
            owned,
            price_minor: price,
        })
        .collect();
    Ok(Quote {
        currency,
        parts,
        list_total_minor,
        price_minor,
        owned_count,
    })
}
