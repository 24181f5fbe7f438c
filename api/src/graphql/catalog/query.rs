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
        loaders(ctx)?
            .prime_products(node, &models)
            .await
            .map_err(loader_error)?;
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
