use async_graphql::{Context, Object, Upload};
use domain::fulfillment::StockMode;
use sea_orm::EntityTrait;
use std::io::Read;
use uuid::Uuid;

use super::types::{
    CreateProductInput, Edition, EditionInput, ImageKind, ModerationAction, MoneyInput, Product,
    Review, StockCommand, StockModeGql, UpdateEditionInput, UpdateProductInput,
};
use crate::catalog::{self, EditionPatch, ImageSlot, ProductInput, ProductPatch};
use crate::graphql::guard::{RoleGuard, acting};
use crate::infra::error::ApiError;
use domain::catalog::ProductStatus;

#[derive(Default)]
pub struct CatalogMutation;

fn maybe<T>(m: async_graphql::MaybeUndefined<T>) -> Option<Option<T>> {
    match m {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[Object]
impl CatalogMutation {
    /// Publisher: a new product, as a draft.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The product's title and what the storefront shows of it; only the title is required."
        )]
        input: CreateProductInput,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        let input = ProductInput {
            title: input.title,
            slug: input.slug,
            description: input.description,
            genres: input.genres,
            platforms: input.platforms,
            tags: input.tags,
            release_date: input.release_date,
            age_rating: input.age_rating,
            system_requirements: input.system_requirements,
        };
        Ok(catalog::create_product(state, me, input).await?.into())
    }

    /// Publisher: changes their product's fields.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's product to change.")] id: Uuid,
        #[graphql(desc = "The fields to change; a field left out keeps its value.")]
        input: UpdateProductInput,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        let patch = ProductPatch {
            title: input.title,
            slug: input.slug,
            description: input.description,
            genres: input.genres,
            platforms: input.platforms,
            tags: input.tags,
            release_date: maybe(input.release_date),
            age_rating: maybe(input.age_rating),
            system_requirements: input.system_requirements,
        };
        Ok(catalog::update_product(state, me, id, patch).await?.into())
    }

    /// Publisher: puts their product on sale (it needs an edition).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn publish_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's product to put on sale.")] id: Uuid,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        Ok(catalog::set_status(state, me, id, ProductStatus::Published)
            .await?
            .into())
    }

    /// Publisher: takes their product off the store (owners keep what they bought).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn unlist_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's product to take off the store.")] id: Uuid,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        Ok(catalog::set_status(state, me, id, ProductStatus::Unlisted)
            .await?
            .into())
    }

    /// Admin: unlists any product with a reason its publisher sees, or restores it.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn moderate_product(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product to moderate.")] id: Uuid,
        #[graphql(
            desc = "`UNLIST` to hide the product from the store, `RESTORE` to put it back on sale."
        )]
        action: ModerationAction,
        #[graphql(desc = "Why, shown to the publisher and kept in the audit log (optional).")]
        reason: Option<String>,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        let unlist = action == ModerationAction::Unlist;
        Ok(catalog::moderate(state, me, id, unlist, reason)
            .await?
            .into())
    }

    /// Publisher: a new edition of their product.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn add_edition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's product that gets the edition.")] product_id: Uuid,
        #[graphql(desc = "The edition's kind, name, SKU, price and (physical) weight.")]
        input: EditionInput,
    ) -> async_graphql::Result<Edition> {
        let (state, me) = acting(ctx)?;
        let input = catalog::EditionInput {
            kind: input.kind.into(),
            name: input.name,
            sku: input.sku,
            price_minor: input.price.amount_minor,
            currency: input.price.currency,
            weight_grams: input.weight_grams,
        };
        Ok(catalog::add_edition(state, me, product_id, input)
            .await?
            .into())
    }

    /// Publisher: changes an edition (name, SKU, price, weight).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn update_edition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the edition to change.")] id: Uuid,
        #[graphql(desc = "The fields to change; a field left out keeps its value.")]
        input: UpdateEditionInput,
    ) -> async_graphql::Result<Edition> {
        let (state, me) = acting(ctx)?;
        let patch = EditionPatch {
            name: input.name,
            sku: input.sku,
            price_minor: input.price.as_ref().map(|p| p.amount_minor),
            currency: input.price.map(|p| p.currency),
            weight_grams: input.weight_grams,
        };
        Ok(catalog::update_edition(state, me, id, patch).await?.into())
    }

    /// Publisher: sets an edition's prices in currencies other than its base price's,
    /// replacing those set before. A currency left out sells at the suggested conversion of
    /// the base price (`Edition.prices` shows both); an empty list clears them all. Orders
    /// placed before keep their prices.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn set_edition_prices(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the edition.")] edition_id: Uuid,
        #[graphql(
            desc = "One price per currency the store sells in (see `currencies`), in minor units of it; not the base price's currency."
        )]
        prices: Vec<MoneyInput>,
    ) -> async_graphql::Result<Edition> {
        let (state, me) = acting(ctx)?;
        if prices.len() > 64 {
            return Err(ApiError::BadInput {
                field: "prices",
                message: "at most 64 prices".into(),
            }
            .into());
        }
        let asked: Vec<(String, i64)> = prices
            .into_iter()
            .map(|p| (p.currency, p.amount_minor))
            .collect();
        catalog::prices::set_edition_prices(state, me, edition_id, &asked).await?;
        let e = domain::catalog::entity::edition::Entity::find_by_id(edition_id)
            .one(&state.db)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::NotFound("edition"))?;
        Ok(e.into())
    }

    /// Publisher: removes an edition of a product that is still a draft.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn remove_edition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the edition to remove.")] id: Uuid,
    ) -> async_graphql::Result<bool> {
        let (state, me) = acting(ctx)?;
        catalog::remove_edition(state, me, id).await?;
        Ok(true)
    }

    /// Publisher: changes the stock of a physical edition. Fulfillment applies the change
    /// (never below what is reserved); the product page shows it once applied.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn set_stock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a physical edition of the caller's product.")] edition_id: Uuid,
        #[graphql(
            desc = "`SET` makes `quantity` the stock on hand; `ADD` adds it (negative to take away)."
        )]
        mode: StockModeGql,
        #[graphql(desc = "The new stock on hand (`SET`, at least 0) or the change to it (`ADD`).")]
        quantity: i64,
        #[graphql(
            desc = "Makes a retry safe: the same key with the same change is applied once (an `ADD` sent twice adds once) and answers the same command; with another change it is a `CONFLICT`. Letters, digits and `-_.:`, at most 100."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<StockCommand> {
        let (state, me) = acting(ctx)?;
        let m = match mode {
            StockModeGql::Set => StockMode::Set,
            StockModeGql::Add => StockMode::Add,
        };
        let envelope = catalog::adjust_stock(
            state,
            me,
            edition_id,
            m,
            quantity,
            idempotency_key.as_deref(),
        )
        .await?;
        Ok(StockCommand {
            command_id: envelope.id,
            edition_id,
            mode,
            quantity,
        })
    }

    /// Publisher: uploads a cover or a screenshot (PNG, JPEG or WebP; multipart request).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn upload_product_image(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's product that gets the image.")] product_id: Uuid,
        #[graphql(desc = "`COVER` replaces the product's cover; `SCREENSHOT` adds a screenshot.")]
        kind: ImageKind,
        #[graphql(
            desc = "The image file (PNG, JPEG or WebP, at most `MAX_IMAGE_BYTES`), as a part of the multipart request."
        )]
        file: Upload,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        let max = state.config.media.max_image_bytes;
        let upload = file.value(ctx).map_err(|_| ApiError::BadInput {
            field: "file",
            message: "the file is missing from the request".into(),
        })?;
        let mut bytes = Vec::new();
        upload
            .into_read()
            .take(u64::try_from(max).unwrap_or(u64::MAX) + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading an upload: {e}")))?;
        let slot = match kind {
            ImageKind::Cover => ImageSlot::Cover,
            ImageKind::Screenshot => ImageSlot::Screenshot,
        };
        Ok(catalog::attach_image(state, me, product_id, slot, bytes)
            .await?
            .into())
    }

    /// Publisher: removes an image (by its key) from their product.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn remove_product_image(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's product that holds the image.")] product_id: Uuid,
        #[graphql(desc = "The `key` of the image to remove, as `Image.key` gives it.")] key: String,
    ) -> async_graphql::Result<Product> {
        let (state, me) = acting(ctx)?;
        Ok(catalog::detach_image(state, me, product_id, &key)
            .await?
            .into())
    }

    /// Writes or rewrites the caller's review (rating 1–5) of a product they own.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn write_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a product the caller owns.")] product_id: Uuid,
        #[graphql(desc = "The rating, from 1 (worst) to 5 (best).")] rating: i32,
        #[graphql(desc = "The text of the review (optional, at most 5000 characters).")]
        body: Option<String>,
    ) -> async_graphql::Result<Review> {
        let (state, me) = acting(ctx)?;
        Ok(
            catalog::write_review(state, me, product_id, rating, body.as_deref().unwrap_or(""))
                .await?
                .into(),
        )
    }

    /// Deletes the caller's review of a product; `false` when there was none.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn delete_review(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product whose review by the caller is deleted.")]
        product_id: Uuid,
    ) -> async_graphql::Result<bool> {
        let (state, me) = acting(ctx)?;
        Ok(catalog::delete_review(state, me, product_id).await?)
    }

    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn add_to_wishlist(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a published product to add to the caller's wishlist.")]
        product_id: Uuid,
    ) -> async_graphql::Result<bool> {
        let (state, me) = acting(ctx)?;
        catalog::add_to_wishlist(state, me, product_id).await?;
        Ok(true)
    }

    /// `false` when the product was not on the wishlist.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn remove_from_wishlist(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product to take off the caller's wishlist.")]
        product_id: Uuid,
    ) -> async_graphql::Result<bool> {
        let (state, me) = acting(ctx)?;
        Ok(catalog::remove_from_wishlist(state, me, product_id).await?)
    }
}
