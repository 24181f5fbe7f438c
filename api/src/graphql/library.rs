//! Library in GraphQL: `library`, `ownsProduct`, gift keys (`generateGiftKeys`,
//! `giftKeyBatches`, `redeemKey`).

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::catalog::entity::edition;
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::graphql::catalog::types::{Edition, Product};
use crate::graphql::guard::{RoleGuard, acting, client_addr};
use crate::graphql::loaders::{loader_error, loaders, page_nodes};
use crate::graphql::paging;
use crate::infra::error::ApiError;
use crate::infra::state::AppState;
use crate::library as service;

/// Something the caller owns.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct LibraryItem {
    pub id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    /// The order that bought it; `null` for a product added with a gift key.
    pub order_id: Option<Uuid>,
    /// `XXXXX-XXXXX-XXXXX-XXXXX`, unique.
    pub license_key: String,
    pub granted_at: DateTime<Utc>,
}

#[ComplexObject]
impl LibraryItem {
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        product_by_id(ctx, self.product_id).await
    }

    /// The current build of each platform of the product (what `downloadLink` gives without
    /// a `buildId`), by platform.
    async fn current_builds(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::catalog::builds::Build>> {
        crate::graphql::catalog::builds::current_builds(ctx, self.product_id).await
    }

    async fn edition(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Edition>> {
        Ok(loaders(ctx)?
            .edition
            .load_one(self.edition_id)
            .await
            .map_err(loader_error)?
            .flatten()
            .map(Edition::from))
    }
}

/// A product by id, through the operation's loader.
async fn product_by_id(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Product>> {
    Ok(loaders(ctx)?
        .product
        .load_one(id)
        .await
        .map_err(loader_error)?
        .flatten()
        .map(Product::from))
}

#[derive(Default)]
pub struct LibraryQuery;

#[Object]
impl LibraryQuery {
    /// What the caller owns, newest first.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn library(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, LibraryItem>> {
        let (state, me) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("item", after.as_deref())?;
        let rows = service::items(state, me.id, cursor, first + 1).await?;
        let owned: Vec<(Uuid, Uuid)> = rows
            .iter()
            .take(usize::try_from(first).unwrap_or(usize::MAX))
            .map(|r| (r.product_id, r.edition_id))
            .collect();
        for node in page_nodes(ctx) {
            loaders(ctx)?
                .prime_owned(node, &owned)
                .await
                .map_err(loader_error)?;
        }
        Ok(paging::page(
            rows,
            first,
            after.is_some(),
            |r| paging::encode("item", &r.id.to_string()),
            |r| LibraryItem {
                id: r.id,
                product_id: r.product_id,
                edition_id: r.edition_id,
                order_id: r.order_id,
                license_key: r.license_key,
                granted_at: r.granted_at,
            },
        ))
    }

    /// Whether the caller owns the product (false for anonymous callers). With `buyerId`: the
    /// product's publisher (or its API client with `ownership:read`) asks whether the buyer it
    /// knows by that id (the `sub` of the buyer's ownership ticket) owns the product now;
    /// `FORBIDDEN` for a product of another publisher, false for an id it never saw.
    async fn owns_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product.")] product_id: Uuid,
        #[graphql(
            desc = "Publishers: the buyer's id for this publisher, as the `sub` of an ownership ticket."
        )]
        buyer_id: Option<String>,
    ) -> async_graphql::Result<bool> {
        let state = ctx.data::<AppState>()?;
        let caller = crate::graphql::guard::caller(ctx).principal();
        match (caller, buyer_id) {
            (Some(me), Some(buyer)) => {
                if me.role != domain::identity::Role::Publisher {
                    return Err(ApiError::Forbidden(
                        "only the product's publisher may ask who owns it",
                    )
                    .into());
                }
                Ok(
                    crate::identity::tickets::owns_as_publisher(state, me.id, product_id, &buyer)
                        .await?,
                )
            }
            (Some(me), None) => Ok(service::owns(state, me.id, product_id).await?),
            (None, Some(_)) => Err(ApiError::SignInRequired.into()),
            (None, None) => Ok(false),
        }
    }
}

/// One gift key of a batch.
#[derive(SimpleObject, Clone, Debug)]
pub struct GiftKey {
    /// `XXXXX-XXXXX-XXXXX-XXXXX`.
    pub key: String,
    pub redeemed: bool,
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// A batch of gift keys for one edition of a publisher's product.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct GiftKeyBatch {
    pub id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    pub quantity: i32,
    pub label: String,
    pub created_at: Option<DateTime<Utc>>,
    /// Empty while they are being generated.
    pub keys: Vec<GiftKey>,
}

#[ComplexObject]
impl GiftKeyBatch {
    /// `false` while the keys are being generated (moments after `generateGiftKeys`).
    async fn ready(&self) -> bool {
        self.keys.len() == usize::try_from(self.quantity).unwrap_or(0)
    }

    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        product_by_id(ctx, self.product_id).await
    }
}

/// The outcome of `redeemKey`.
#[derive(SimpleObject, Clone, Debug)]
pub struct Redemption {
    /// `REDEEMED`, or `PENDING` when the answer takes longer than a few seconds (it then
    /// arrives as a notification).
    pub status: String,
    /// The new library item (when redeemed).
    pub entitlement_id: Option<Uuid>,
    pub product_id: Option<Uuid>,
}

#[derive(Default)]
pub struct GiftKeyQuery;

#[Object]
impl GiftKeyQuery {
    /// The caller's batches of gift keys, newest first (publishers).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn gift_key_batches(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only the batches of this product (optional).")] product_id: Option<Uuid>,
    ) -> async_graphql::Result<Vec<GiftKeyBatch>> {
        let (state, me) = acting(ctx)?;
        let batches = service::batches(state, me.id, product_id).await?;
        let owned: Vec<(Uuid, Uuid)> = batches
            .iter()
            .map(|b| (b.product_id, b.edition_id))
            .collect();
        loaders(ctx)?
            .prime_owned(ctx.look_ahead(), &owned)
            .await
            .map_err(loader_error)?;
        let ids: Vec<Uuid> = batches.iter().map(|b| b.id).collect();
        let mut keys: std::collections::HashMap<Uuid, Vec<GiftKey>> =
            std::collections::HashMap::new();
        for k in service::batch_keys(state, &ids).await? {
            keys.entry(k.batch_id).or_default().push(GiftKey {
                key: k.key,
                redeemed: k.redeemed_at.is_some(),
                redeemed_at: k.redeemed_at,
            });
        }
        Ok(batches
            .into_iter()
            .map(|b| GiftKeyBatch {
                keys: keys.remove(&b.id).unwrap_or_default(),
                id: b.id,
                product_id: b.product_id,
                edition_id: b.edition_id,
                quantity: b.quantity,
                label: b.label,
                created_at: Some(b.created_at),
            })
            .collect())
    }
}

#[derive(Default)]
pub struct LibraryMutation;

#[Object]
impl LibraryMutation {
    /// Makes a batch of 1–1000 gift keys for an edition of the caller's product. Each key adds
    /// the product to the library of whoever redeems it first. The keys appear moments later
    /// (`ready`).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn generate_gift_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of an edition of the caller's product that the keys grant.")]
        edition_id: Uuid,
        #[graphql(desc = "How many keys to make, from 1 to 1000.")] quantity: i32,
        #[graphql(
            default,
            desc = "A name for the batch, for the publisher's own bookkeeping (e.g. a giveaway's name)."
        )]
        label: String,
    ) -> async_graphql::Result<GiftKeyBatch> {
        let (state, me) = acting(ctx)?;
        let id = service::generate_gift_keys(state, me, edition_id, quantity, &label).await?;
        let edition = edition::Entity::find_by_id(edition_id)
            .one(&state.db)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("edition"))?;
        Ok(GiftKeyBatch {
            id,
            product_id: edition.product_id,
            edition_id,
            quantity,
            label: label.trim().to_owned(),
            created_at: None,
            keys: Vec::new(),
        })
    }

    /// Adds the product of a gift key to the caller's library, once per key (any case, with
    /// or without dashes). `NOT_FOUND` for an unknown key, `CONFLICT` for a key redeemed
    /// already or a product the caller owns (the key then stays unused).
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn redeem_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The gift key, in any case, with or without dashes.")] key: String,
    ) -> async_graphql::Result<Redemption> {
        let (state, me) = acting(ctx)?;
        let rates = state.config.rates;
        crate::infra::ratelimit::hit_account_and_address(
            state,
            "redeem",
            me.id,
            &client_addr(ctx),
            rates.redeem_per_account,
            rates.redeem_per_ip,
            crate::infra::ratelimit::WithoutRedis::Allow,
        )
        .await?;
        Ok(match service::redeem(state, me, &key).await? {
            service::Redemption::Redeemed(entitlement, product) => Redemption {
                status: "REDEEMED".into(),
                entitlement_id: Some(entitlement),
                product_id: Some(product),
            },
            service::Redemption::Pending(_) => Redemption {
                status: "PENDING".into(),
                entitlement_id: None,
                product_id: None,
            },
        })
    }
}
