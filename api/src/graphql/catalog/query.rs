use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::catalog::entity::{product, review};
use domain::catalog::{GENRES, PLATFORMS};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::types::{
    FacetValue, Facets, Product, ProductFilter, ProductSort, ProductStatusGql, Review,
    StockCommandStatus, Vocabulary,
};
use crate::catalog::search::{self, Scope, Sort};
use crate::catalog::visible_to;
use crate::graphql::guard::{RoleGuard, acting, catalog_viewer, principal};
use crate::graphql::identity::query::MAX_PAGE;
use crate::graphql::loaders::{loader_error, loaders, page_nodes};
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

#[derive(Default)]
pub struct CatalogQuery;

/// Where a shopper is, as prices and taxes follow it.
#[derive(async_graphql::SimpleObject, Clone, Debug)]
pub struct ShopperRegion {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// The country's English name.
    pub country_name: String,
    /// The US state, when one was chosen.
    pub state: Option<String>,
    /// The ISO 4217 code prices are shown and orders paid in.
    pub currency: String,
    /// Whether prices there include the tax (EU, UK, Norway, Switzerland, Japan) or the tax is
    /// added at checkout (US states).
    pub prices_include_tax: bool,
    /// The tax rate of digital goods there (`19 %`), when the store's table has one.
    pub tax_rate: Option<String>,
}

/// A currency the store sells in.
#[derive(async_graphql::SimpleObject, Clone, Debug)]
pub struct CurrencyInfo {
    /// The ISO 4217 code.
    pub code: String,
    /// Digits after the decimal point (0 for JPY).
    pub minor_digits: i32,
    /// Units of it one euro buys, as a decimal (the rate that suggests regional prices).
    pub per_euro: String,
    pub rate_source: String,
    pub rate_as_of: String,
}

fn page_size(first: i32) -> Result<u64, ApiError> {
    if (1..=MAX_PAGE).contains(&first) {
        Ok(u64::try_from(first).unwrap_or(20))
    } else {
        Err(ApiError::BadInput {
            field: "first",
            message: format!("first must be between 1 and {MAX_PAGE}"),
        })
    }
}

fn sort_of(s: ProductSort) -> Sort {
    match s {
        ProductSort::Relevance => Sort::Relevance,
        ProductSort::Newest => Sort::Newest,
        ProductSort::PriceAsc => Sort::PriceAsc,
        ProductSort::PriceDesc => Sort::PriceDesc,
        ProductSort::Rating => Sort::Rating,
    }
}

async fn list(
    ctx: &Context<'_>,
    scope: Scope,
    filter: search::Filter,
    sort: ProductSort,
    first: i32,
    after: Option<String>,
) -> async_graphql::Result<Connection<String, Product>> {
    let state = ctx.data::<AppState>()?;
    let first = page_size(first)?;
    let page = search::products(
        &state.db,
        &scope,
        &filter,
        sort_of(sort),
        first,
        after.as_deref(),
    )
    .await?;
    let models: Vec<_> = page.items.iter().map(|(m, _)| m.clone()).collect();
    for node in page_nodes(ctx) {
        let wants_prices = crate::graphql::loaders::Loaders::wants_prices(&node);
        loaders(ctx)?
            .prime_products(node, &models)
            .await
            .map_err(loader_error)?;
        if wants_prices {
            let to = crate::graphql::catalog::types::price_currency(ctx, None).await?;
            loaders(ctx)?
                .prime_prices(&models, to)
                .await
                .map_err(loader_error)?;
        }
    }
    let mut conn = Connection::new(after.is_some(), page.has_next);
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|(m, cursor)| Edge::new(cursor, Product::from(m))),
    );
    Ok(conn)
}

#[Object]
impl CatalogQuery {
    /// The storefront: published products, filtered, sorted and paged by cursor.
    #[graphql(cache_control(max_age = 60))]
    async fn products(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Search text and filters (genre, platform, edition kind, price range, publisher); all optional."
        )]
        filter: Option<ProductFilter>,
        #[graphql(
            default_with = "ProductSort::Relevance",
            desc = "The order of the results; `RELEVANCE` ranks by the search text, newest first without one."
        )]
        sort: ProductSort,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Product>> {
        let filter = filter.unwrap_or_default().into();
        list(ctx, Scope::Public, filter, sort, first, after).await
    }

    /// One product by id or slug. Published products are public; their publisher and admins
    /// see every state.
    #[graphql(cache_control(max_age = 60))]
    async fn product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product (give this or `slug`).")] id: Option<Uuid>,
        #[graphql(
            desc = "The slug of the product, as in its storefront address (give this or `id`)."
        )]
        slug: Option<String>,
    ) -> async_graphql::Result<Product> {
        let state = ctx.data::<AppState>()?;
        let q = match (id, slug) {
            (Some(id), None) => product::Entity::find_by_id(id),
            (None, Some(slug)) => product::Entity::find().filter(product::Column::Slug.eq(slug)),
            _ => {
                return Err(ApiError::BadInput {
                    field: "id",
                    message: "give either an id or a slug".into(),
                }
                .into());
            }
        };
        let found = q.one(&state.db).await.map_err(ApiError::from)?;
        match found {
            Some(p) if visible_to(&p, catalog_viewer(ctx)) => Ok(p.into()),
            _ => Err(ApiError::NotFound("product").into()),
        }
    }

    /// Genre, platform, tag and edition-kind counts of the published products matching `filter`.
    #[graphql(cache_control(max_age = 60))]
    async fn facets(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The same filter as `products` takes; the counts are those of the matching products."
        )]
        filter: Option<ProductFilter>,
    ) -> async_graphql::Result<Facets> {
        let state = ctx.data::<AppState>()?;
        let f = search::facets(&state.db, &filter.unwrap_or_default().into()).await?;
        let conv = |v: Vec<search::FacetCount>| {
            v.into_iter()
                .map(|c| FacetValue {
                    value: c.value,
                    count: c.count,
                })
                .collect()
        };
        Ok(Facets {
            genres: conv(f.genres),
            platforms: conv(f.platforms),
            tags: conv(f.tags),
            edition_kinds: conv(f.edition_kinds),
        })
    }

    /// Where the viewer shops: the country (and US state) that sets the currency prices are
    /// shown and paid in and the tax of digital orders. A signed-in account's is the one it
    /// chose (`setBillingCountry`) or signed up from; a visitor's is their country as the
    /// gateway placed them; else the store's.
    async fn region(&self, ctx: &Context<'_>) -> async_graphql::Result<ShopperRegion> {
        let r = super::types::viewer_region(ctx).await?;
        let rate = r.tax_place().rate();
        Ok(ShopperRegion {
            country: r.country.clone(),
            country_name: domain::country::find(&r.country)
                .map_or_else(|| r.country.clone(), |c| c.name.to_owned()),
            state: r.state.clone(),
            currency: r.currency.as_str().to_owned(),
            prices_include_tax: domain::tax::prices_include_tax(&r.country),
            tax_rate: rate.map(|t| t.percent_text()),
        })
    }

    /// The currencies the store sells in, each with the rate that suggests regional prices
    /// from a base price (`domain/data/exchange_rates.csv`, with its source and date).
    #[graphql(cache_control(max_age = 3600))]
    async fn currencies(&self) -> Vec<CurrencyInfo> {
        domain::money::exchange_rates()
            .iter()
            .map(|r| CurrencyInfo {
                code: r.currency.as_str().to_owned(),
                minor_digits: i32::try_from(r.currency.exponent()).unwrap_or(2),
                per_euro: {
                    let whole = r.per_eur_micros / 1_000_000;
                    let frac = format!("{:06}", r.per_eur_micros % 1_000_000);
                    let frac = frac.trim_end_matches('0');
                    if frac.is_empty() {
                        whole.to_string()
                    } else {
                        format!("{whole}.{frac}")
                    }
                },
                rate_source: r.source.clone(),
                rate_as_of: r.as_of.clone(),
            })
            .collect()
    }

    /// Every genre the catalog files products under.
    #[graphql(cache_control(max_age = 3600))]
    async fn genres(&self) -> Vec<Vocabulary> {
        GENRES
            .iter()
            .map(|(slug, label)| Vocabulary {
                slug: (*slug).to_owned(),
                label: (*label).to_owned(),
            })
            .collect()
    }

    /// Every platform products may run on.
    #[graphql(cache_control(max_age = 3600))]
    async fn platforms(&self) -> Vec<Vocabulary> {
        PLATFORMS
            .iter()
            .map(|(slug, label)| Vocabulary {
                slug: (*slug).to_owned(),
                label: (*label).to_owned(),
            })
            .collect()
    }

    /// Reviews of a published product, newest first.
    #[graphql(cache_control(max_age = 60))]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a published product.")] product_id: Uuid,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Review>> {
        let state = ctx.data::<AppState>()?;
        let first = page_size(first)?;
        let mut q = review::Entity::find()
            .filter(review::Column::ProductId.eq(product_id))
            .order_by_desc(review::Column::Id)
            .limit(first + 1);
        if let Some(a) = &after {
            let id: Uuid = B64
                .decode(a)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("review:").and_then(|i| i.parse().ok()))
                .ok_or(ApiError::BadInput {
                    field: "after",
                    message: "the cursor is not valid".into(),
                })?;
            q = q.filter(review::Column::Id.lt(id));
        }
        let mut rows = q.all(&state.db).await.map_err(ApiError::from)?;
        let more = rows.len() as u64 > first;
        rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
        if page_nodes(ctx)
            .iter()
            .any(|node| node.field("authorName").exists())
        {
            loaders(ctx)?
                .names
                .load_many(rows.iter().map(|r| r.author_id))
                .await
                .map_err(loader_error)?;
        }
        let mut conn = Connection::new(after.is_some(), more);
        conn.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(B64.encode(format!("review:{}", r.id)), Review::from(r))),
        );
        Ok(conn)
    }

    /// Publisher: their own products in every state, newest first. `search`: only those whose
    /// title contains this text, in any case (part of a word matches, for searching as one
    /// types; at most 100 characters, empty is no filter).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn my_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Filters as for `products` (optional).")] filter: Option<ProductFilter>,
        #[graphql(
            desc = "Only products whose title contains this text, in any case (at most 100 characters; optional)."
        )]
        search: Option<String>,
        #[graphql(
            default_with = "ProductSort::Newest",
            desc = "The order of the results (newest first by default)."
        )]
        sort: ProductSort,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Product>> {
        let me = principal(ctx)?.id;
        let filter = search::Filter {
            title_contains: search,
            ..filter.unwrap_or_default().into()
        };
        list(ctx, Scope::Publisher(me), filter, sort, first, after).await
    }

    /// Publisher: whether fulfillment has applied one of their stock commands (`setStock`'s
    /// `commandId`). Another publisher's command is `NOT_FOUND`.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn stock_command(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `commandId` that `setStock` answered.")] command_id: Uuid,
    ) -> async_graphql::Result<StockCommandStatus> {
        let (state, me) = acting(ctx)?;
        Ok(crate::catalog::stock_command_state(state, me, command_id)
            .await?
            .into())
    }

    /// Admin: every product, optionally of one status (moderation).
    #[graphql(guard = "RoleGuard::admin()")]
    async fn all_products(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only products in this status (optional; every status when left out).")]
        status: Option<ProductStatusGql>,
        #[graphql(desc = "Filters as for `products` (optional).")] filter: Option<ProductFilter>,
        #[graphql(
            default_with = "ProductSort::Newest",
            desc = "The order of the results (newest first by default)."
        )]
        sort: ProductSort,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Product>> {
        let scope = Scope::All(status.map(Into::into));
        let filter = filter.unwrap_or_default().into();
        list(ctx, scope, filter, sort, first, after).await
    }

    /// The caller's wishlist (published products only).
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn wishlist(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Product>> {
        let me = principal(ctx)?.id;
        list(
            ctx,
            Scope::Wishlist(me),
            search::Filter::default(),
            ProductSort::Newest,
            first,
            after,
        )
        .await
    }
}
