//! Catalog: products, editions, reviews and wishlists (the api is the only writer of the
//! `catalog` schema), and the search read side.

pub mod archive;
pub mod builds;
pub mod bundles;
pub mod chunks;
pub mod discounts;
pub mod outbox;
pub mod prices;
pub mod search;

use chrono::{NaiveDate, Utc};
use domain::catalog::entity::{edition, product, review, stock_command, wishlist};
use domain::catalog::{self as rules, Actor, CatalogError, EditionKind, Ownership, ProductStatus};
use domain::fulfillment::{AdjustStock, MAX_STOCK, StockMode};
use domain::identity::Role;
use domain::messaging::Envelope;
use domain::money::{Currency, Money};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// Fields of a new product.
#[derive(Clone, Debug, Default)]
pub struct ProductInput {
    pub title: String,
    pub slug: Option<String>,
    pub description: String,
    pub genres: Vec<String>,
    pub platforms: Vec<String>,
    pub tags: Vec<String>,
    pub release_date: Option<NaiveDate>,
    pub age_rating: Option<i32>,
    pub system_requirements: String,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProductPatch {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub genres: Option<Vec<String>>,
    pub platforms: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub release_date: Option<Option<NaiveDate>>,
    pub age_rating: Option<Option<i32>>,
    pub system_requirements: Option<String>,
}

#[derive(Clone, Debug)]
pub struct EditionInput {
    pub kind: EditionKind,
    pub name: String,
    pub sku: String,
    pub price_minor: i64,
    pub currency: String,
    pub weight_grams: Option<i32>,
}

#[derive(Clone, Debug, Default)]
pub struct EditionPatch {
    pub name: Option<String>,
    pub sku: Option<String>,
    pub price_minor: Option<i64>,
    pub currency: Option<String>,
    pub weight_grams: Option<i32>,
}

fn unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// A unique violation is the client's `BAD_USER_INPUT` on `field`; other errors stay internal.
fn taken(field: &'static str, message: &str) -> impl FnOnce(sea_orm::DbErr) -> ApiError {
    move |e| {
        if unique_violation(&e) {
            ApiError::BadInput {
                field,
                message: message.to_owned(),
            }
        } else {
            e.into()
        }
    }
}

fn price(state: &AppState, minor: i64, currency: &str) -> ApiResult<Money> {
    let currency = Currency::parse(currency).map_err(CatalogError::Price)?;
    if currency != state.config.currency {
        return Err(ApiError::BadInput {
            field: "currency",
            message: format!(
                "prices in this store are in {}",
                state.config.currency.as_str()
            ),
        });
    }
    Ok(Money::price(minor, currency).map_err(CatalogError::Price)?)
}

/// Only publishers edit products, and only their own.
pub fn require_publisher(p: &Principal) -> ApiResult<()> {
    if p.role == Role::Publisher {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only publishers manage products"))
    }
}

/// Loads a product for a change by its publisher, locking the row for the transaction.
async fn own_product(
    txn: &DatabaseTransaction,
    me: &Principal,
    id: Uuid,
) -> ApiResult<product::Model> {
    require_publisher(me)?;
    let p = product::Entity::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    if p.publisher_id != me.id {
        return Err(ApiError::Forbidden(
            "this product belongs to another publisher",
        ));
    }
    Ok(p)
}

/// Sets the product's listing prices from its editions and their started discounts (the
/// discount clock's projection, [`discounts`]): `price_from_minor` the cheapest price a buyer
/// pays now, `list_price_from_minor` the cheapest before discounts, `sale_percent` the deepest
/// running discount and `sale_ends_at` the first end. One statement, in the caller's
/// transaction.
pub(crate) async fn refresh_price_from(
    txn: &DatabaseTransaction,
    product_id: Uuid,
) -> ApiResult<()> {
    // Raw: an aggregate over a left join feeding an UPDATE … FROM, which sea-query does not
    // build. The rounding is `domain::catalog::discount::discounted`'s (half up).
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "UPDATE catalog.product p SET price_from_minor = s.now_min, \
             list_price_from_minor = s.list_min, sale_percent = s.pct, sale_ends_at = s.ends, \
             updated_at = now() \
         FROM (SELECT min(CASE WHEN d.percent IS NULL THEN e.price_minor \
                          ELSE (e.price_minor * (100 - d.percent) + 50) / 100 END) AS now_min, \
                      min(e.price_minor) AS list_min, max(d.percent) AS pct, \
                      min(d.ends_at) AS ends \
               FROM catalog.edition e \
               LEFT JOIN catalog.discount d ON d.edition_id = e.id AND d.applied = 'started' \
               WHERE e.product_id = $1) s \
         WHERE p.id = $1",
        [product_id.into()],
    ))
    .await?;
    Ok(())
}

/// Creates a draft product of the calling publisher. Without a slug, one is made from the title
/// (with a suffix if taken); a slug given explicitly must be free.
pub async fn create_product(
    state: &AppState,
    me: &Principal,
    input: ProductInput,
) -> ApiResult<product::Model> {
    require_publisher(me)?;
    let title = rules::parse_title(&input.title)?;
    let explicit = input.slug.is_some();
    let base_slug = match &input.slug {
        Some(s) => rules::parse_slug(s)?,
        None => rules::slugify(&title),
    };
    let genres = rules::parse_genres(&input.genres)?;
    let platforms = rules::parse_platforms(&input.platforms)?;
    let tags = rules::parse_tags(&input.tags)?;
    let description = rules::parse_description(&input.description)?;
    let requirements = rules::parse_system_requirements(&input.system_requirements)?;
    let age_rating = input.age_rating.map(rules::parse_age_rating).transpose()?;
    let now = Utc::now();
    for attempt in 0..5 {
        let slug = if attempt == 0 {
            base_slug.clone()
        } else {
            let suffix = &domain::id::new_id().simple().to_string()[26..];
            let stem: String = base_slug.chars().take(80 - suffix.len() - 1).collect();
            format!("{}-{suffix}", stem.trim_end_matches('-'))
        };
        let model = product::ActiveModel {
            id: Set(domain::id::new_id()),
            publisher_id: Set(me.id),
            slug: Set(slug),
            title: Set(title.clone()),
            description: Set(description.clone()),
            genres: Set(genres.clone()),
            platforms: Set(platforms.clone()),
            tags: Set(tags.clone()),
            release_date: Set(input.release_date),
            age_rating: Set(age_rating),
            cover_image: Set(None),
            screenshots: Set(vec![]),
            system_requirements: Set(requirements.clone()),
            status: Set(ProductStatus::Draft.as_str().to_owned()),
            moderation_reason: Set(None),
            moderated_by: Set(None),
            price_from_minor: Set(None),
            list_price_from_minor: Set(None),
            sale_percent: Set(None),
            sale_ends_at: Set(None),
            currency: Set(state.config.currency.as_str().to_owned()),
            rating_count: Set(0),
            rating_sum: Set(0),
            published_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match model.insert(&state.db).await {
            Ok(m) => {
                tracing::info!(product.id = %m.id, publisher.id = %me.id, "product created");
                return Ok(m);
            }
            Err(e) if unique_violation(&e) && !explicit => continue,
            Err(e) => return Err(taken("slug", "this slug is taken by another product")(e)),
        }
    }
    Err(ApiError::BadInput {
        field: "slug",
        message: "could not find a free slug; give one explicitly".into(),
    })
}

pub async fn update_product(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    patch: ProductPatch,
) -> ApiResult<product::Model> {
    let txn = state.db.begin().await?;
    let current = own_product(&txn, me, id).await?;
    let mut p: product::ActiveModel = current.into();
    if let Some(t) = &patch.title {
        p.title = Set(rules::parse_title(t)?);
    }
    if let Some(s) = &patch.slug {
        p.slug = Set(rules::parse_slug(s)?);
    }
    if let Some(d) = &patch.description {
        p.description = Set(rules::parse_description(d)?);
    }
    if let Some(g) = &patch.genres {
        p.genres = Set(rules::parse_genres(g)?);
    }
    if let Some(pl) = &patch.platforms {
        p.platforms = Set(rules::parse_platforms(pl)?);
    }
    if let Some(t) = &patch.tags {
        p.tags = Set(rules::parse_tags(t)?);
    }
    if let Some(r) = patch.release_date {
        p.release_date = Set(r);
    }
    if let Some(a) = patch.age_rating {
        p.age_rating = Set(a.map(rules::parse_age_rating).transpose()?);
    }
    if let Some(r) = &patch.system_requirements {
        p.system_requirements = Set(rules::parse_system_requirements(r)?);
    }
    p.updated_at = Set(Utc::now());
    let updated = p
        .update(&txn)
        .await
        .map_err(taken("slug", "this slug is taken by another product"))?;
    txn.commit().await?;
    Ok(updated)
}

async fn edition_count(txn: &DatabaseTransaction, product_id: Uuid) -> ApiResult<usize> {
    let n = edition::Entity::find()
        .filter(edition::Column::ProductId.eq(product_id))
        .count(txn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn status_of(p: &product::Model) -> ApiResult<ProductStatus> {
    ProductStatus::parse(&p.status)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored product status {}", p.status)))
}

/// The publisher publishes or unlists their product.
pub async fn set_status(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    to: ProductStatus,
) -> ApiResult<product::Model> {
    let txn = state.db.begin().await?;
    let current = own_product(&txn, me, id).await?;
    let from = status_of(&current)?;
    let editions = edition_count(&txn, id).await?;
    rules::transition(
        from,
        to,
        Actor::Owner,
        current.moderation_reason.is_some(),
        editions,
    )?;
    let first_publish = current.published_at.is_none() && to == ProductStatus::Published;
    let mut p: product::ActiveModel = current.into();
    p.status = Set(to.as_str().to_owned());
    if first_publish {
        p.published_at = Set(Some(Utc::now()));
    }
    p.updated_at = Set(Utc::now());
    let updated = p.update(&txn).await?;
    txn.commit().await?;
    tracing::info!(product.id = %id, status = to.as_str(), "product status changed");
    Ok(updated)
}

/// Admin moderation: unlist any product with a reason its publisher sees, or restore it.
pub async fn moderate(
    state: &AppState,
    admin: &Principal,
    id: Uuid,
    unlist: bool,
    reason: Option<String>,
) -> ApiResult<product::Model> {
    if admin.role != Role::Admin {
        return Err(ApiError::Forbidden("only admins moderate products"));
    }
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if unlist && reason.is_none() {
        return Err(ApiError::BadInput {
            field: "reason",
            message: "say why the product is unlisted; its publisher will see it".into(),
        });
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(ApiError::BadInput {
            field: "reason",
            message: "the reason must have at most 1000 characters".into(),
        });
    }
    let txn = state.db.begin().await?;
    let current = product::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let from = status_of(&current)?;
    let editions = edition_count(&txn, id).await?;
    let to = if unlist {
        ProductStatus::Unlisted
    } else {
        ProductStatus::Published
    };
    rules::transition(
        from,
        to,
        Actor::Admin,
        current.moderation_reason.is_some(),
        editions,
    )?;
    let first_publish = current.published_at.is_none() && to == ProductStatus::Published;
    let mut p: product::ActiveModel = current.into();
    p.status = Set(to.as_str().to_owned());
    p.moderation_reason = Set(if unlist { reason.clone() } else { None });
    p.moderated_by = Set(if unlist { Some(admin.id) } else { None });
    if first_publish {
        p.published_at = Set(Some(Utc::now()));
    }
    p.updated_at = Set(Utc::now());
    let updated = p.update(&txn).await?;
    crate::identity::audit_moderation(&txn, admin.id, id, unlist, reason.as_deref()).await?;
    txn.commit().await?;
    tracing::info!(product.id = %id, admin.id = %admin.id, unlisted = unlist, "product moderated");
    Ok(updated)
}

pub async fn add_edition(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    input: EditionInput,
) -> ApiResult<edition::Model> {
    let name = rules::parse_edition_name(&input.name)?;
    let sku = rules::parse_sku(&input.sku)?;
    let money = price(state, input.price_minor, &input.currency)?;
    let weight = rules::check_weight(input.kind, input.weight_grams)?;
    let txn = state.db.begin().await?;
    own_product(&txn, me, product_id).await?;
    let now = Utc::now();
    let model = edition::ActiveModel {
        id: Set(domain::id::new_id()),
        product_id: Set(product_id),
        kind: Set(input.kind.as_str().to_owned()),
        name: Set(name),
        sku: Set(sku),
        price_minor: Set(money.minor),
        currency: Set(money.currency.as_str().to_owned()),
        weight_grams: Set(weight),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let created = model
        .insert(&txn)
        .await
        .map_err(taken("sku", "this SKU is already used"))?;
    refresh_price_from(&txn, product_id).await?;
    txn.commit().await?;
    Ok(created)
}

/// Loads an edition and its product for a change by the product's publisher.
pub(crate) async fn own_edition(
    txn: &DatabaseTransaction,
    me: &Principal,
    id: Uuid,
) -> ApiResult<(edition::Model, product::Model)> {
    require_publisher(me)?;
    let e = edition::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or(ApiError::NotFound("edition"))?;
    let p = own_product(txn, me, e.product_id).await?;
    Ok((e, p))
}

pub async fn update_edition(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    patch: EditionPatch,
) -> ApiResult<edition::Model> {
    let txn = state.db.begin().await?;
    let (current, _) = own_edition(&txn, me, id).await?;
    let kind = EditionKind::parse(&current.kind)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored edition kind")))?;
    let mut e: edition::ActiveModel = current.clone().into();
    if let Some(n) = &patch.name {
        e.name = Set(rules::parse_edition_name(n)?);
    }
    if let Some(s) = &patch.sku {
        e.sku = Set(rules::parse_sku(s)?);
    }
    if patch.price_minor.is_some() || patch.currency.is_some() {
        let minor = patch.price_minor.unwrap_or(current.price_minor);
        let currency = patch.currency.as_deref().unwrap_or(&current.currency);
        let money = price(state, minor, currency)?;
        e.price_minor = Set(money.minor);
        e.currency = Set(money.currency.as_str().to_owned());
    }
    if let Some(w) = patch.weight_grams {
        e.weight_grams = Set(rules::check_weight(kind, Some(w))?);
    }
    e.updated_at = Set(Utc::now());
    let updated = e
        .update(&txn)
        .await
        .map_err(taken("sku", "this SKU is already used"))?;
    refresh_price_from(&txn, updated.product_id).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Editions can be removed while their product is a draft; a product that was on sale keeps
/// its editions (orders and libraries refer to them) and is unlisted instead.
pub async fn remove_edition(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    let (e, p) = own_edition(&txn, me, id).await?;
    if status_of(&p)? != ProductStatus::Draft {
        return Err(ApiError::Conflict(
            "editions of a product that was published stay; unlist the product instead".into(),
        ));
    }
    edition::Entity::delete_by_id(e.id).exec(&txn).await?;
    refresh_price_from(&txn, p.id).await?;
    txn.commit().await?;
    Ok(())
}

/// Asks fulfillment to change the stock of a physical edition (`cmd.fulfillment.adjust_stock`).
/// The fulfillment participant applies it (never below what is reserved).
pub async fn adjust_stock(
    state: &AppState,
    me: &Principal,
    edition_id: Uuid,
    mode: StockMode,
    quantity: i64,
    idempotency_key: Option<&str>,
) -> ApiResult<Envelope<AdjustStock>> {
    if let Some(key) = idempotency_key {
        crate::infra::idempotency::check_key(key)?;
    }
    let valid = match mode {
        StockMode::Set => (0..=MAX_STOCK).contains(&quantity),
        StockMode::Add => quantity != 0 && quantity.abs() <= MAX_STOCK,
    };
    if !valid {
        return Err(ApiError::BadInput {
            field: "quantity",
            message: format!(
                "set a stock between 0 and {MAX_STOCK}, or add a non-zero change of at most {MAX_STOCK}"
            ),
        });
    }
    let txn = state.db.begin().await?;
    let (e, p) = own_edition(&txn, me, edition_id).await?;
    txn.commit().await?;
    if e.kind != EditionKind::Physical.as_str() {
        return Err(ApiError::BadInput {
            field: "editionId",
            message: "only physical editions have stock".into(),
        });
    }
    let mut envelope = Envelope::new(
        AdjustStock {
            edition_id,
            product_id: p.id,
            publisher_id: me.id,
            mode,
            quantity,
        },
        edition_id,
        Some(me.id),
    );
    let Some(key) = idempotency_key else {
        record_stock_command(state, me, &envelope).await?;
        state.bus.publish(&envelope).await?;
        return Ok(envelope);
    };
    // With a key, the command's id comes from (publisher, key): a retried `ADD` is one
    // message to JetStream's de-duplication and to fulfillment's inbox, so it adds once.
    let mode_word = match mode {
        StockMode::Set => "SET",
        StockMode::Add => "ADD",
    };
    let input_hash = crate::infra::idempotency::hash(&[
        "setStock",
        &edition_id.to_string(),
        mode_word,
        &quantity.to_string(),
    ]);
    envelope.id = crate::infra::idempotency::derived_id("set-stock", me.id, key);
    if crate::infra::idempotency::lookup(state, me.id, key, &input_hash)
        .await?
        .is_some()
    {
        return Ok(envelope);
    }
    let record = crate::infra::idempotency::Record {
        hash: input_hash,
        id: envelope.id,
    };
    if crate::infra::idempotency::claim(state, me.id, key, &record)
        .await?
        .is_some()
    {
        return Ok(envelope);
    }
    if let Err(e) = record_stock_command(state, me, &envelope).await {
        crate::infra::idempotency::release(state, me.id, key).await;
        return Err(e);
    }
    if let Err(e) = state
        .bus
        .publish_with_id(&envelope, &envelope.id.to_string())
        .await
    {
        crate::infra::idempotency::release(state, me.id, key).await;
        return Err(e.into());
    }
    Ok(envelope)
}

/// Records whose stock command `envelope` is, before it is published: fulfillment may apply it
/// at once, and its publisher asks about it by id. A retry of a keyed command is the same id
/// (recorded once).
async fn record_stock_command(
    state: &AppState,
    me: &Principal,
    envelope: &Envelope<AdjustStock>,
) -> ApiResult<()> {
    let mode = match envelope.data.mode {
        StockMode::Set => "SET",
        StockMode::Add => "ADD",
    };
    stock_command::Entity::insert(stock_command::ActiveModel {
        id: Set(envelope.id),
        publisher_id: Set(me.id),
        edition_id: Set(envelope.data.edition_id),
        mode: Set(mode.to_owned()),
        quantity: Set(envelope.data.quantity),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(stock_command::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    Ok(())
}

/// Where a stock command is: fulfillment has not handled it yet, applied it, or gave up on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockCommandState {
    Pending,
    Applied,
    Failed,
}

/// The state of the caller's stock command `id`, read from fulfillment's inbox (handled, in the
/// transaction of the stock change) and dead letters (never applied; a replayed one is pending
/// again until handled). Another publisher's command is not found.
pub async fn stock_command_state(
    state: &AppState,
    me: &Principal,
    id: Uuid,
) -> ApiResult<StockCommandState> {
    use domain::fulfillment::entity::{dead_letter, inbox};
    require_publisher(me)?;
    stock_command::Entity::find_by_id(id)
        .filter(stock_command::Column::PublisherId.eq(me.id))
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("stock command"))?;
    if inbox::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .is_some()
    {
        return Ok(StockCommandState::Applied);
    }
    let failed = dead_letter::Entity::find()
        .filter(dead_letter::Column::MessageId.eq(id))
        .filter(dead_letter::Column::ReplayedAt.is_null())
        .count(&state.db)
        .await?;
    Ok(if failed > 0 {
        StockCommandState::Failed
    } else {
        StockCommandState::Pending
    })
}

/// Whether `account` owns `product`: an entitlement in its library covers it.
pub async fn ownership(state: &AppState, account: Uuid, product: Uuid) -> ApiResult<Ownership> {
    Ok(if crate::library::owns(state, account, product).await? {
        Ownership::Owned
    } else {
        Ownership::NotOwned
    })
}

async fn published_product(
    db: &impl ConnectionTrait,
    id: Uuid,
    lock: bool,
) -> ApiResult<product::Model> {
    let mut q = product::Entity::find_by_id(id);
    if lock {
        q = q.lock_exclusive();
    }
    q.one(db)
        .await?
        .filter(|p| p.status == ProductStatus::Published.as_str())
        .ok_or(ApiError::NotFound("product"))
}

/// Writes (or rewrites) the caller's review of a product; one per person and product.
pub async fn write_review(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    rating: i32,
    body: &str,
) -> ApiResult<review::Model> {
    let rating = rules::parse_rating(rating)?;
    let body = rules::parse_review_body(body)?;
    let txn = state.db.begin().await?;
    // Locking the product serialises reviews of it, so the rating sums stay exact.
    let p = published_product(&txn, product_id, true).await?;
    if p.publisher_id == me.id {
        return Err(ApiError::Forbidden(
            "publishers cannot review their own products",
        ));
    }
    if !rules::may_review(ownership(state, me.id, product_id).await?) {
        return Err(ApiError::Forbidden(
            "only owners of a product can review it",
        ));
    }
    let existing = review::Entity::find()
        .filter(review::Column::ProductId.eq(product_id))
        .filter(review::Column::AuthorId.eq(me.id))
        .one(&txn)
        .await?;
    let now = Utc::now();
    let (saved, sum_delta, count_delta) = match existing {
        Some(old) => {
            let delta = i32::from(rating) - i32::from(old.rating);
            let mut r: review::ActiveModel = old.into();
            r.rating = Set(rating);
            r.body = Set(body);
            r.updated_at = Set(now);
            (r.update(&txn).await?, delta, 0)
        }
        None => {
            let r = review::ActiveModel {
                id: Set(domain::id::new_id()),
                product_id: Set(product_id),
                author_id: Set(me.id),
                rating: Set(rating),
                body: Set(body),
                created_at: Set(now),
                updated_at: Set(now),
            };
            (r.insert(&txn).await?, i32::from(rating), 1)
        }
    };
    product::Entity::update_many()
        .col_expr(
            product::Column::RatingSum,
            Expr::col(product::Column::RatingSum).add(sum_delta),
        )
        .col_expr(
            product::Column::RatingCount,
            Expr::col(product::Column::RatingCount).add(count_delta),
        )
        .filter(product::Column::Id.eq(product_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(saved)
}

pub async fn delete_review(state: &AppState, me: &Principal, product_id: Uuid) -> ApiResult<bool> {
    let txn = state.db.begin().await?;
    product::Entity::find_by_id(product_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let Some(old) = review::Entity::find()
        .filter(review::Column::ProductId.eq(product_id))
        .filter(review::Column::AuthorId.eq(me.id))
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    review::Entity::delete_by_id(old.id).exec(&txn).await?;
    product::Entity::update_many()
        .col_expr(
            product::Column::RatingSum,
            Expr::col(product::Column::RatingSum).sub(i32::from(old.rating)),
        )
        .col_expr(
            product::Column::RatingCount,
            Expr::col(product::Column::RatingCount).sub(1),
        )
        .filter(product::Column::Id.eq(product_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

pub async fn add_to_wishlist(state: &AppState, me: &Principal, product_id: Uuid) -> ApiResult<()> {
    published_product(&state.db, product_id, false).await?;
    // Adding a product already on the list changes nothing (`added_at` stays the first time).
    wishlist::Entity::insert(wishlist::ActiveModel {
        account_id: Set(me.id),
        product_id: Set(product_id),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([wishlist::Column::AccountId, wishlist::Column::ProductId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    Ok(())
}

pub async fn remove_from_wishlist(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
) -> ApiResult<bool> {
    let res = wishlist::Entity::delete_many()
        .filter(wishlist::Column::AccountId.eq(me.id))
        .filter(wishlist::Column::ProductId.eq(product_id))
        .exec(&state.db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Which image of a product an upload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSlot {
    Cover,
    Screenshot,
}

/// Stores an image in the object store and attaches it to the product (`uploadProductImage`).
pub async fn attach_image(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    slot: ImageSlot,
    bytes: Vec<u8>,
) -> ApiResult<product::Model> {
    store_image(
        &state.db,
        state.objects.as_ref(),
        state.config.media.max_image_bytes,
        me,
        product_id,
        slot,
        bytes,
    )
    .await
}

/// The one way an image joins a product, for uploads and the demo seed alike: checks its size,
/// format and the caller's ownership, stores it and its smaller copies (see
/// [`crate::infra::objects`]), then records its key on the product.
pub async fn store_image(
    db: &DatabaseConnection,
    objects: &dyn object_store::ObjectStore,
    max_bytes: usize,
    me: &Principal,
    product_id: Uuid,
    slot: ImageSlot,
    bytes: Vec<u8>,
) -> ApiResult<product::Model> {
    if bytes.len() > max_bytes {
        return Err(ApiError::BadInput {
            field: "file",
            message: format!("the image is larger than {} KiB", max_bytes / 1024),
        });
    }
    let Some(format) = crate::infra::objects::ImageFormat::sniff(&bytes) else {
        return Err(ApiError::BadInput {
            field: "file",
            message: "upload a PNG, JPEG or WebP image".into(),
        });
    };
    // Check ownership before writing anything.
    {
        let txn = db.begin().await?;
        let p = own_product(&txn, me, product_id).await?;
        if slot == ImageSlot::Screenshot && p.screenshots.len() >= rules::MAX_SCREENSHOTS {
            return Err(CatalogError::TooManyScreenshots.into());
        }
        txn.commit().await?;
    }
    let (bytes, prepared) = tokio::task::spawn_blocking(move || {
        let prepared = crate::infra::objects::prepare_image(&bytes, format);
        (bytes, prepared)
    })
    .await
    .map_err(|e| anyhow::anyhow!("preparing an image: {e}"))?;
    let key = crate::infra::objects::image_key(product_id, domain::id::new_id(), &prepared);
    use object_store::ObjectStoreExt;
    // The copies first: once the original is attached, every copy its name promises exists.
    for (width, copy) in prepared.variants {
        let Some(copy_key) = crate::infra::objects::variant_key(&key, width) else {
            continue;
        };
        objects
            .put(
                &object_store::path::Path::from(copy_key.as_str()),
                copy.into(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("storing an image: {e}"))?;
    }
    objects
        .put(&object_store::path::Path::from(key.as_str()), bytes.into())
        .await
        .map_err(|e| anyhow::anyhow!("storing an image: {e}"))?;
    let txn = db.begin().await?;
    let current = own_product(&txn, me, product_id).await?;
    let mut screenshots = current.screenshots.clone();
    let mut p: product::ActiveModel = current.into();
    match slot {
        ImageSlot::Cover => p.cover_image = Set(Some(key)),
        ImageSlot::Screenshot => {
            if screenshots.len() >= rules::MAX_SCREENSHOTS {
                return Err(CatalogError::TooManyScreenshots.into());
            }
            screenshots.push(key);
            p.screenshots = Set(screenshots);
        }
    }
    p.updated_at = Set(Utc::now());
    let updated = p.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Detaches an image (by its key) from the product; the stored object stays for caches.
pub async fn detach_image(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    key: &str,
) -> ApiResult<product::Model> {
    let txn = state.db.begin().await?;
    let current = own_product(&txn, me, product_id).await?;
    let mut p: product::ActiveModel = current.clone().into();
    if current.cover_image.as_deref() == Some(key) {
        p.cover_image = Set(None);
    } else if current.screenshots.iter().any(|s| s == key) {
        p.screenshots = Set(current
            .screenshots
            .into_iter()
            .filter(|s| s != key)
            .collect());
    } else {
        return Err(ApiError::NotFound("image"));
    }
    p.updated_at = Set(Utc::now());
    let updated = p.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Whether `caller` may see `p`: everyone sees published products; its publisher and admins
/// see it in every state.
pub fn visible_to(p: &product::Model, caller: Option<&Principal>) -> bool {
    p.status == ProductStatus::Published.as_str()
        || caller.is_some_and(|c| c.role == Role::Admin || c.id == p.publisher_id)
}
