//! Bundles in GraphQL: `bundle(id|slug)`, `myBundles` for publishers, and the publisher's
//! `createBundle`, `updateBundle`, `publishBundle`, `archiveBundle`. Bought with
//! `placeOrder(bundleId: …)`; the `Bundle` object itself is `types::bundle`.

use async_graphql::{Context, InputObject, Object};
use domain::catalog::entity::bundle;
use uuid::Uuid;

use super::types::bundle::Bundle;
use crate::catalog::bundles::{self, BundleInput, BundlePatch};
use crate::graphql::guard::{RoleGuard, acting, catalog_viewer};
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

#[derive(Default)]
pub struct BundleQuery;

#[Object]
impl BundleQuery {
    /// A bundle by id or slug: published and archived ones for everyone, drafts for their
    /// publisher and admins (`NOT_FOUND` otherwise).
    async fn bundle(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The bundle's id (give this or `slug`).")] id: Option<Uuid>,
        #[graphql(desc = "The bundle's slug (give this or `id`).")] slug: Option<String>,
    ) -> async_graphql::Result<Bundle> {
        let state = ctx.data::<AppState>()?;
        let found = bundles::find(&state.db, id, slug.as_deref()).await?;
        match found {
            Some(b) if bundles::visible_to(&b, catalog_viewer(ctx)) => {
                let parts = bundles::parts(&state.db, b.id).await?;
                Ok(Bundle::new(b, parts))
            }
            _ => Err(ApiError::NotFound("bundle").into()),
        }
    }

    /// Publisher: their bundles, every status, newest first (at most 100).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn my_bundles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Bundle>> {
        let (state, me) = acting(ctx)?;
        let models = bundles::of_publisher(&state.db, me.id).await?;
        Ok(Bundle::many(state, models).await?)
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateBundleInput {
    /// 1 to 200 characters.
    pub title: String,
    /// Its storefront address; made from the title when left out.
    pub slug: Option<String>,
    /// Markdown, at most 5000 characters.
    #[graphql(default)]
    pub description: String,
    /// What the whole bundle costs, in minor units of the store's currency, before tax: more
    /// than zero and less than its editions' list prices added up.
    pub price_minor: i64,
    /// 2 to 20 editions of the caller's own published products, each once, in the order the
    /// bundle page shows them.
    pub edition_ids: Vec<Uuid>,
}

/// Changes to a bundle; a field left out keeps its value.
#[derive(InputObject, Clone, Debug, Default)]
pub struct UpdateBundleInput {
    /// The new title (the same rules as a product's).
    pub title: Option<String>,
    /// The new description.
    pub description: Option<String>,
    /// The new price of the whole bundle, in minor units of the store's currency, before tax:
    /// above zero and below its editions' list prices added up.
    pub price_minor: Option<i64>,
    /// The whole new list of editions (the same rules as at creation).
    pub edition_ids: Option<Vec<Uuid>>,
}

#[derive(Default)]
pub struct BundleMutation;

async fn with_parts(state: &AppState, b: bundle::Model) -> async_graphql::Result<Bundle> {
    let parts = bundles::parts(&state.db, b.id).await?;
    Ok(Bundle::new(b, parts))
}

#[Object]
impl BundleMutation {
    /// Publisher: a new bundle of their editions, as a draft. Editions of another publisher's
    /// product are `FORBIDDEN`; an unpublished one, a repeated one, fewer than 2 or more than
    /// 20, or a price not below the editions' list prices added up are `BAD_USER_INPUT`.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn create_bundle(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The bundle's title, price and editions.")] input: CreateBundleInput,
    ) -> async_graphql::Result<Bundle> {
        let (state, me) = acting(ctx)?;
        let b = bundles::create(
            state,
            me,
            BundleInput {
                title: input.title,
                slug: input.slug,
                description: input.description,
                price_minor: input.price_minor,
                edition_ids: input.edition_ids,
            },
        )
        .await?;
        with_parts(state, b).await
    }

    /// The bundle's publisher or an admin: changes it (the rules of `createBundle` apply to
    /// the result). Orders already placed keep their prices.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn update_bundle(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The bundle to change.")] id: Uuid,
        #[graphql(desc = "The fields to change; a field left out keeps its value.")]
        input: UpdateBundleInput,
    ) -> async_graphql::Result<Bundle> {
        let (state, me) = acting(ctx)?;
        let b = bundles::update(
            state,
            me,
            id,
            BundlePatch {
                title: input.title,
                description: input.description,
                price_minor: input.price_minor,
                edition_ids: input.edition_ids,
            },
        )
        .await?;
        with_parts(state, b).await
    }

    /// The bundle's publisher or an admin: puts it on sale (its editions and price are
    /// checked again).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn publish_bundle(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The bundle to put on sale.")] id: Uuid,
    ) -> async_graphql::Result<Bundle> {
        let (state, me) = acting(ctx)?;
        let b = bundles::publish(state, me, id).await?;
        with_parts(state, b).await
    }

    /// The bundle's publisher or an admin: takes it off sale for good (buyers keep what they
    /// bought).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn archive_bundle(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The bundle to take off sale.")] id: Uuid,
    ) -> async_graphql::Result<Bundle> {
        let (state, me) = acting(ctx)?;
        let b = bundles::archive(state, me, id).await?;
        with_parts(state, b).await
    }
}
