//! Ordering on the api side: checking and publishing `placeOrder`, reading orders. The
//! `ordering` schema is written only by the ordering participant.

use std::collections::HashMap;

use domain::catalog::entity::{edition, product};
use domain::catalog::{EditionKind, ProductStatus};
use domain::fulfillment::ShippingAddress;
use domain::fulfillment::entity::inventory;
use domain::library::entity::entitlement;
use domain::messaging::Envelope;
use domain::ordering::entity::{order, order_line, order_step};
use domain::ordering::{LineError, OrderLine, PlaceOrder, check_lines};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::idempotency::{self, Record};
use crate::infra::state::AppState;

/// A requested line.
#[derive(Clone, Debug)]
pub struct LineInput {
    pub edition_id: Uuid,
    pub quantity: i32,
}

fn line_error(e: LineError) -> ApiError {
    ApiError::BadInput {
        field: "lines",
        message: e.to_string(),
    }
}

/// What `placeOrder` buys: lines of editions, or one bundle (its parts the buyer does not own
/// yet, at their share of the bundle's price).
#[derive(Clone, Copy, Debug)]
pub enum Basket<'a> {
    Lines(&'a [LineInput]),
    Bundle(Uuid),
}

/// Places an order: checks the lines, snapshots prices, publishes `cmd.ordering.place` with
/// `Nats-Msg-Id` = the order id (derived from the account and the idempotency key), and returns
/// the order id. The participant creates the order a moment later.
pub async fn place_order(
    state: &AppState,
    me: &Principal,
    basket: Basket<'_>,
    address: Option<ShippingAddress>,
    key: &str,
) -> ApiResult<Uuid> {
    idempotency::check_key(key)?;
    let joined = match basket {
        Basket::Lines(lines) => {
            if lines.is_empty() || lines.len() > domain::ordering::MAX_LINES {
                return Err(line_error(LineError::LineCount));
            }
            let canonical: Vec<String> = lines
                .iter()
                .map(|l| format!("{}x{}", l.edition_id, l.quantity))
                .collect();
            canonical.join(",")
        }
        Basket::Bundle(b) => format!("bundle:{b}"),
    };
    // Digital orders hash as before addresses existed (stored records stay valid).
    let address_json = address
        .as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default());
    let input_hash = match &address_json {
        Some(a) => idempotency::hash(&["placeOrder", &joined, a]),
        None => idempotency::hash(&["placeOrder", &joined]),
    };
    let order_id = idempotency::derived_id("order", me.id, key);
    if let Some(id) = replayed(state, me.id, key, &input_hash, order_id, basket).await? {
        return Ok(id);
    }
    // The buyer's region sets the currency (and, for digital orders, the tax); a wallet holds
    // one currency, so money in another one must be spent in its region first.
    let region = crate::identity::shopping_region(state, me.id).await?;
    let currency = region.currency;
    let (mut snapshot, product_ids) = match basket {
        Basket::Lines(lines) => lines_snapshot(state, lines, currency).await?,
        Basket::Bundle(b) => bundle_snapshot(state, me, b, currency).await?,
    };
    // The tax of where the order is supplied: where it ships to, else the buyer's region;
    // each line's price becomes what the buyer pays for it.
    let place = tax_place(&region, address.as_ref())?;
    let rate = place.rate();
    for line in &mut snapshot {
        let t = domain::tax::unit_tax(line.unit_price_minor, rate);
        line.unit_price_minor = t.gross_minor;
        line.unit_tax_minor = t.tax_minor;
        line.tax_rate_ppm = t.rate_ppm;
    }
    let physical: Vec<&OrderLine> = snapshot.iter().filter(|l| l.is_physical()).collect();
    match (physical.is_empty(), address.is_some()) {
        (false, false) => {
            return Err(ApiError::BadInput {
                field: "shippingAddress",
                message: "an order with physical editions needs a shipping address".into(),
            });
        }
        (true, true) => {
            return Err(ApiError::BadInput {
                field: "shippingAddress",
                message: "only orders with physical editions take a shipping address".into(),
            });
        }
        _ => {}
    }
    if physical
        .iter()
        .any(|l| l.publisher_id != physical[0].publisher_id)
    {
        return Err(ApiError::BadInput {
            field: "lines",
            message: "the physical editions of one order must come from one publisher (they \
                      ship in one parcel); order the others separately"
                .into(),
        });
    }
    if let Err(refused) = available_to(state, me.id, &snapshot, &physical, &product_ids).await {
        // A copy of this very request may have won the race and its order taken the last
        // copies or put the product in the library by now: the answer is then that order.
        if let Some(id) = replayed(state, me.id, key, &input_hash, order_id, basket).await? {
            tracing::info!(order.id = %id, "a concurrent replay of the request placed the order");
            return Ok(id);
        }
        return Err(refused);
    }
    let record = Record {
        hash: input_hash,
        id: order_id,
    };
    match idempotency::claim(state, me.id, key, &record).await {
        Ok(Some(id)) => return Ok(id),
        Ok(None) => {}
        // Without Redis the order goes out unclaimed: copies of this request publish the same
        // order id as `Nats-Msg-Id` (JetStream stores one) and ordering creates that id once.
        Err(e) if e.is_unavailable() => {}
        Err(e) => return Err(e),
    }
    let mut envelope = Envelope::new(
        PlaceOrder {
            order_id,
            account_id: me.id,
            idempotency_key: key.to_owned(),
            currency,
            lines: snapshot,
            shipping_address: address,
            tax_place: Some(place),
        },
        order_id,
        Some(me.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    if let Err(e) = state
        .bus
        .publish_with_id(&envelope, &order_id.to_string())
        .await
    {
        idempotency::release(state, me.id, key).await;
        return Err(e.into());
    }
    tracing::info!(order.id = %order_id, "order placed");
    Ok(order_id)
}

/// The lines of an order of editions, priced at this instant in `currency` (the publisher's
/// price there or the suggested conversion, less a running discount), before tax, and the
/// products they are of.
async fn lines_snapshot(
    state: &AppState,
    lines: &[LineInput],
    currency: domain::money::Currency,
) -> ApiResult<(Vec<OrderLine>, Vec<Uuid>)> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.edition_id).collect();
    // Each edition with its product, in one query.
    let of_product: sea_orm::RelationDef = edition::Entity::belongs_to(product::Entity)
        .from(edition::Column::ProductId)
        .to(product::Column::Id)
        .into();
    let found: HashMap<Uuid, (edition::Model, product::Model)> = edition::Entity::find()
        .join(sea_orm::JoinType::InnerJoin, of_product)
        .select_also(product::Entity)
        .filter(edition::Column::Id.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .filter_map(|(e, p)| Some((e.id, (e, p?))))
        .collect();
    let product_ids: Vec<Uuid> = found.values().map(|(_, p)| p.id).collect();
    // The price is the one at this instant, in the buyer's currency: the publisher's price
    // there (or the suggested conversion), less the discount whose window holds it, if any.
    let edition_ids: Vec<Uuid> = found.keys().copied().collect();
    let (discounts, set_prices) = futures::future::try_join(
        crate::catalog::discounts::running(&state.db, &edition_ids, chrono::Utc::now()),
        async {
            if currency == state.config.currency {
                Ok(crate::catalog::prices::Explicit::new())
            } else {
                crate::catalog::prices::explicit(&state.db, &edition_ids).await
            }
        },
    )
    .await?;
    let mut shape = Vec::with_capacity(lines.len());
    let mut snapshot = Vec::with_capacity(lines.len());
    for l in lines {
        let Some((e, p)) = found
            .get(&l.edition_id)
            .filter(|(_, p)| p.status == ProductStatus::Published.as_str())
        else {
            return Err(ApiError::NotFound("edition"));
        };
        let physical = EditionKind::parse(&e.kind) == Some(EditionKind::Physical);
        shape.push((l.edition_id, l.quantity, physical));
        let list = crate::catalog::prices::list_price(e, set_prices.get(&e.id), currency)?;
        snapshot.push(OrderLine {
            edition_id: e.id,
            product_id: p.id,
            publisher_id: p.publisher_id,
            kind: e.kind.clone(),
            product_title: p.title.clone(),
            edition_name: e.name.clone(),
            unit_price_minor: discounts.get(&e.id).map_or(list, |d| {
                domain::catalog::discount::discounted(list, d.percent)
            }),
            quantity: l.quantity,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: None,
        });
    }
    check_lines(&shape).map_err(line_error)?;
    Ok((snapshot, product_ids))
}

/// The lines of an order of a bundle: each part the buyer does not own yet (an entitlement,
/// or a claim by another order), at its share of the bundle's price, before tax. A bundle
/// not on sale is `NOT_FOUND`; one whose parts the buyer all owns is `CONFLICT`.
async fn bundle_snapshot(
    state: &AppState,
    me: &Principal,
    bundle_id: Uuid,
    currency: domain::money::Currency,
) -> ApiResult<(Vec<OrderLine>, Vec<Uuid>)> {
    use crate::catalog::bundles;
    let bundle = bundles::find(&state.db, Some(bundle_id), None)
        .await?
        .filter(|b| b.status == bundles::BundleStatus::Published.as_str())
        .ok_or(ApiError::NotFound("bundle"))?;
    let parts = bundles::parts(&state.db, bundle.id).await?;
    if parts
        .iter()
        .any(|p| p.product.status != ProductStatus::Published.as_str())
    {
        return Err(ApiError::Conflict(
            "a part of this bundle is no longer on sale".into(),
        ));
    }
    let quote = bundles::quote(&state.db, &bundle, parts, Some(me.id), currency).await?;
    let mut snapshot = Vec::with_capacity(quote.parts.len());
    let mut product_ids = Vec::with_capacity(quote.parts.len());
    for q in quote.parts {
        let Some(price) = q.price_minor else {
            continue;
        };
        let (e, p) = (q.part.edition, q.part.product);
        product_ids.push(p.id);
        snapshot.push(OrderLine {
            edition_id: e.id,
            product_id: p.id,
            publisher_id: p.publisher_id,
            kind: e.kind,
            product_title: p.title,
            edition_name: e.name,
            unit_price_minor: price,
            quantity: 1,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: Some(bundle.id),
        });
    }
    if snapshot.is_empty() {
        return Err(ApiError::Conflict(
            "you own everything in this bundle".into(),
        ));
    }
    Ok((snapshot, product_ids))
}

/// Where an order is taxed: the country (and US state) it ships to, else the buyer's region
/// (the country they chose, else the store's). A US buyer's digital order needs their state
/// (the sales tax is the state's).
fn tax_place(
    region: &crate::identity::Region,
    address: Option<&ShippingAddress>,
) -> ApiResult<domain::tax::Place> {
    if let Some(a) = address {
        let code = a.region.trim().to_ascii_uppercase();
        let us_state =
            (a.country == "US" && code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()))
                .then_some(code);
        return Ok(domain::tax::Place {
            country: a.country.clone(),
            state: us_state,
        });
    }
    if region.country == "US" && region.state.is_none() {
        return Err(ApiError::BadInput {
            field: "state",
            message: "choose your state with setBillingCountry first: sales tax in the United \
                      States is the state's"
                .into(),
        });
    }
    Ok(region.tax_place())
}

/// What an earlier request with this key did: its order when the input was the same,
/// `CONFLICT` when it was another. Redis is asked first; when it lost the record (or is down),
/// the order itself (created by ordering from the first request) remembers its lines.
async fn replayed(
    state: &AppState,
    account: Uuid,
    key: &str,
    input_hash: &str,
    order_id: Uuid,
    basket: Basket<'_>,
) -> ApiResult<Option<Uuid>> {
    match idempotency::lookup(state, account, key, input_hash).await {
        Ok(Some(id)) => return Ok(Some(id)),
        Ok(None) => {}
        // Redis is down: the order, once created, is the record.
        Err(e) if e.is_unavailable() => {}
        Err(e) => return Err(e),
    }
    let Some(existing) = existing_lines(state, order_id).await? else {
        return Ok(None);
    };
    let same = match basket {
        Basket::Lines(lines) => {
            let mut asked: Vec<(Uuid, i32, Option<Uuid>)> = lines
                .iter()
                .map(|l| (l.edition_id, l.quantity, None))
                .collect();
            asked.sort();
            existing == asked
        }
        Basket::Bundle(b) => existing.iter().all(|(_, _, of)| *of == Some(b)),
    };
    if same {
        Ok(Some(order_id))
    } else {
        Err(idempotency::reused())
    }
}

/// Whether the read side can serve the order: stock for each physical line, and no digital
/// product the buyer owns already (a boxed copy may be bought again).
///
/// Both read state the order itself changes (its reservation, its grants). A request that
/// finds them changed must look again for its own earlier copy before refusing (see
/// [`place_order`]): the claim in Redis comes before the publish, the publish before the order,
/// the order before its reservation and grants, so whoever sees those sees the claim or the
/// order too.
async fn available_to(
    state: &AppState,
    account: Uuid,
    snapshot: &[OrderLine],
    physical: &[&OrderLine],
    product_ids: &[Uuid],
) -> ApiResult<()> {
    if let Some(short) = short_of_stock(state, physical).await? {
        return Err(ApiError::OutOfStock(format!(
            "“{}” ({}) is out of stock",
            short.product_title, short.edition_name
        )));
    }
    let owned = owned_products(state, account, product_ids).await?;
    if let Some(p) = snapshot
        .iter()
        .find(|l| !l.is_physical() && owned.contains(&l.product_id))
    {
        return Err(ApiError::Conflict(format!(
            "you already own “{}”",
            p.product_title
        )));
    }
    Ok(())
}

/// The first physical line the read side already knows cannot be served (no inventory row, or
/// fewer copies available than asked). Fulfillment decides for good when it reserves.
async fn short_of_stock<'a>(
    state: &AppState,
    physical: &[&'a OrderLine],
) -> ApiResult<Option<&'a OrderLine>> {
    if physical.is_empty() {
        return Ok(None);
    }
    let ids: Vec<Uuid> = physical.iter().map(|l| l.edition_id).collect();
    let available: HashMap<Uuid, i32> = inventory::Entity::find()
        .filter(inventory::Column::EditionId.is_in(ids))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|i| (i.edition_id, i.on_hand - i.reserved))
        .collect();
    Ok(physical
        .iter()
        .find(|l| available.get(&l.edition_id).copied().unwrap_or(0) < l.quantity)
        .copied())
}

/// The (edition, quantity, bundle) of each line of an existing order, sorted.
async fn existing_lines(
    state: &AppState,
    order: Uuid,
) -> ApiResult<Option<Vec<(Uuid, i32, Option<Uuid>)>>> {
    let mut out: Vec<(Uuid, i32, Option<Uuid>)> = order_line::Entity::find()
        .select_only()
        .columns([
            order_line::Column::EditionId,
            order_line::Column::Quantity,
            order_line::Column::BundleId,
        ])
        .filter(order_line::Column::OrderId.eq(order))
        .into_tuple()
        .all(&state.db)
        .await?;
    if out.is_empty() {
        return Ok(None);
    }
    out.sort();
    Ok(Some(out))
}

/// Which of `products` the account owns (has an entitlement for).
pub async fn owned_products(
    state: &AppState,
    account: Uuid,
    products: &[Uuid],
) -> ApiResult<Vec<Uuid>> {
    if products.is_empty() {
        return Ok(Vec::new());
    }
    Ok(entitlement::Entity::find()
        .select_only()
        .column(entitlement::Column::ProductId)
        .distinct()
        .filter(entitlement::Column::AccountId.eq(account))
        .filter(entitlement::Column::ProductId.is_in(products.to_vec()))
        .filter(entitlement::Column::RevokedAt.is_null())
        .into_tuple()
        .all(&state.db)
        .await?)
}

/// An order as the read side sees it.
#[derive(Clone, Debug)]
pub struct OrderRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub total_minor: i64,
    pub currency: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Where the order was taxed (`None` for orders placed before taxes were recorded).
    pub tax_country: Option<String>,
    pub tax_state: Option<String>,
}

impl From<order::Model> for OrderRow {
    fn from(o: order::Model) -> OrderRow {
        OrderRow {
            id: o.id,
            account_id: o.account_id,
            status: o.status,
            cancel_reason: o.cancel_reason,
            total_minor: o.total_minor,
            currency: o.currency,
            created_at: o.created_at,
            updated_at: o.updated_at,
            tax_country: o.tax_country,
            tax_state: o.tax_state,
        }
    }
}

pub async fn find_order(state: &AppState, id: Uuid) -> ApiResult<Option<OrderRow>> {
    let row = order::Entity::find_by_id(id).one(&state.db).await?;
    Ok(row.map(OrderRow::from))
}

/// The caller's orders, newest first, after the cursor `after` (an order id).
pub async fn my_orders(
    state: &AppState,
    account: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<OrderRow>> {
    let mut query = order::Entity::find().filter(order::Column::AccountId.eq(account));
    if let Some(after) = after {
        query = query.filter(order::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(order::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    Ok(rows.into_iter().map(OrderRow::from).collect())
}

/// Every order (admins), newest first, optionally of one status or one buyer.
pub async fn all_orders(
    state: &AppState,
    status: Option<&str>,
    account: Option<Uuid>,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<OrderRow>> {
    let mut query = order::Entity::find();
    if let Some(status) = status {
        query = query.filter(order::Column::Status.eq(status));
    }
    if let Some(account) = account {
        query = query.filter(order::Column::AccountId.eq(account));
    }
    if let Some(after) = after {
        query = query.filter(order::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(order::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    Ok(rows.into_iter().map(OrderRow::from).collect())
}

pub async fn order_lines(state: &AppState, order: Uuid) -> ApiResult<Vec<OrderLine>> {
    Ok(domain::ordering::load_lines(&state.db, order).await?)
}

/// The lines of each of `orders`, in line order, in one statement. Every order asked for has an
/// entry: an unknown order (or one the participant has not stored yet) has no lines.
pub async fn lines_of(
    db: &impl ConnectionTrait,
    orders: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<OrderLine>>> {
    let mut out: HashMap<Uuid, Vec<OrderLine>> =
        orders.iter().map(|id| (*id, Vec::new())).collect();
    if orders.is_empty() {
        return Ok(out);
    }
    let rows = order_line::Entity::find()
        .filter(order_line::Column::OrderId.is_in(orders.to_vec()))
        .order_by_asc(order_line::Column::OrderId)
        .order_by_asc(order_line::Column::LineNo)
        .all(db)
        .await?;
    for l in rows {
        out.entry(l.order_id).or_default().push(OrderLine::from(l));
    }
    Ok(out)
}

/// One step of an order's timeline.
#[derive(Clone, Debug)]
pub struct Step {
    pub step: String,
    pub participant: String,
    pub detail: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The timeline of each of `orders`, oldest step first, in one statement. Every order asked
/// for has an entry (empty when it has no steps yet).
pub async fn timelines_of(
    db: &impl ConnectionTrait,
    orders: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<Step>>> {
    let mut out: HashMap<Uuid, Vec<Step>> = orders.iter().map(|id| (*id, Vec::new())).collect();
    if orders.is_empty() {
        return Ok(out);
    }
    let rows = order_step::Entity::find()
        .filter(order_step::Column::OrderId.is_in(orders.to_vec()))
        .order_by_asc(order_step::Column::OccurredAt)
        .order_by_asc(order_step::Column::Id)
        .all(db)
        .await?;
    for s in rows {
        out.entry(s.order_id).or_default().push(Step {
            step: s.step,
            participant: s.participant,
            detail: s.detail,
            at: s.occurred_at,
        });
    }
    Ok(out)
}
