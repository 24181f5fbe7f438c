//! The `Bundle` object: its price in the viewer's currency, its items, what the viewer already
//! owns of it. A child of `types` because `Product.bundles` and `Bundle.items` name each other.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, SimpleObject};
use chrono::{DateTime, Utc};
use domain::catalog::entity::bundle;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{Edition, Money, Product, Publisher, price_currency};
use crate::catalog::bundles::{self, BundleStatus, Part, Quote};
use crate::graphql::guard::catalog_viewer;
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

/// Where a bundle stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "BundleStatus")]
pub enum BundleStatusGql {
    /// Being put together; only its publisher and admins see it.
    Draft,
    /// On sale.
    Published,
    /// No longer on sale.
    Archived,
}

impl BundleStatusGql {
    fn from_stored(s: &str) -> BundleStatusGql {
        match BundleStatus::parse(s) {
            Some(BundleStatus::Published) => BundleStatusGql::Published,
            Some(BundleStatus::Archived) => BundleStatusGql::Archived,
            _ => BundleStatusGql::Draft,
        }
    }
}

/// Editions of one publisher sold together at a price of their own. A buyer who owns some of
/// them pays only for the rest, at the bundle's ratio of their list prices ("complete the
/// bundle").
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Bundle {
    pub id: Uuid,
    pub slug: String,
    pub title: String,
    /// Markdown.
    pub description: String,
    pub status: BundleStatusGql,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub model: bundle::Model,
    #[graphql(skip)]
    parts: Vec<Part>,
    /// The quote for the viewer, computed once per object.
    #[graphql(skip)]
    mine: Arc<OnceCell<Quote>>,
    /// The quote for someone who owns nothing.
    #[graphql(skip)]
    whole: Arc<OnceCell<Quote>>,
}

impl Bundle {
    pub fn new(model: bundle::Model, parts: Vec<Part>) -> Bundle {
        Bundle {
            id: model.id,
            slug: model.slug.clone(),
            title: model.title.clone(),
            description: model.description.clone(),
            status: BundleStatusGql::from_stored(&model.status),
            created_at: model.created_at,
            published_at: model.published_at,
            model,
            parts,
            mine: Arc::default(),
            whole: Arc::default(),
        }
    }

    /// Bundles with their parts, loaded in two statements.
    pub async fn many(
        state: &AppState,
        models: Vec<bundle::Model>,
    ) -> Result<Vec<Bundle>, ApiError> {
        let ids: Vec<Uuid> = models.iter().map(|b| b.id).collect();
        let mut parts = bundles::parts_of(&state.db, &ids).await?;
        Ok(models
            .into_iter()
            .map(|m| {
                let p = parts.remove(&m.id).unwrap_or_default();
                Bundle::new(m, p)
            })
            .collect())
    }

    /// The quote in the viewer's currency (their region's) for someone who owns nothing.
    async fn whole(&self, ctx: &Context<'_>) -> async_graphql::Result<&Quote> {
        let state = ctx.data::<AppState>()?;
        let currency = price_currency(ctx, None).await?;
        Ok(self
            .whole
            .get_or_try_init(|| {
                bundles::quote(&state.db, &self.model, self.parts.clone(), None, currency)
            })
            .await?)
    }

    async fn mine(&self, ctx: &Context<'_>) -> async_graphql::Result<&Quote> {
        let Some(me) = catalog_viewer(ctx) else {
            return self.whole(ctx).await;
        };
        let state = ctx.data::<AppState>()?;
        let currency = price_currency(ctx, None).await?;
        Ok(self
            .mine
            .get_or_try_init(|| {
                bundles::quote(
                    &state.db,
                    &self.model,
                    self.parts.clone(),
                    Some(me.id),
                    currency,
                )
            })
            .await?)
    }
}

/// One edition of a bundle.
#[derive(SimpleObject, Clone)]
pub struct BundleItem {
    pub edition: Edition,
    pub product: Product,
    /// The edition's list price (before discounts; a bundle is priced from list prices).
    pub list_price: Money,
    /// The viewer owns the product already (or has it in another order): it is not charged
    /// again. Always false signed out.
    pub owned: bool,
    /// What the viewer pays for it in this bundle, before tax; `null` when owned.
    pub price_for_you: Option<Money>,
}

#[ComplexObject]
impl Bundle {
    async fn publisher(&self, ctx: &Context<'_>) -> async_graphql::Result<Publisher> {
        Publisher::load(ctx, self.model.publisher_id).await
    }

    /// What the whole bundle costs, before tax (never more than `listTotal`), in the viewer's
    /// currency: its ratio of the parts' prices there.
    async fn price(&self, ctx: &Context<'_>) -> async_graphql::Result<Money> {
        let q = self.whole(ctx).await?;
        Ok(Money::new(q.price_minor, q.currency.as_str()))
    }

    /// Its editions' list prices added up: what they cost bought one by one.
    async fn list_total(&self, ctx: &Context<'_>) -> async_graphql::Result<Money> {
        let q = self.whole(ctx).await?;
        Ok(Money::new(q.list_total_minor, q.currency.as_str()))
    }

    /// How much less than `listTotal` the bundle costs, in whole percent (rounded down).
    async fn savings_percent(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let q = self.whole(ctx).await?;
        if q.list_total_minor <= 0 {
            return Ok(0);
        }
        let saved =
            i128::from(q.list_total_minor - q.price_minor) * 100 / i128::from(q.list_total_minor);
        Ok(i32::try_from(saved).unwrap_or(0))
    }

    /// Its editions, in the publisher's order, priced for the viewer.
    async fn items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<BundleItem>> {
        let q = self.mine(ctx).await?;
        Ok(q.parts
            .iter()
            .map(|p| BundleItem {
                edition: Edition::from(p.part.edition.clone()),
                product: Product::from(p.part.product.clone()),
                list_price: Money::new(p.list_price_minor, q.currency.as_str()),
                owned: p.owned,
                price_for_you: p.price_minor.map(|m| Money::new(m, q.currency.as_str())),
            })
            .collect())
    }

    /// What the viewer pays for the editions they do not own yet, before tax (sales tax is
    /// added at checkout where prices do not include it). Signed out, the whole price.
    async fn price_for_you(&self, ctx: &Context<'_>) -> async_graphql::Result<Money> {
        let q = self.mine(ctx).await?;
        Ok(Money::new(q.price_minor, q.currency.as_str()))
    }

    /// The editions of the bundle the viewer owns already (empty signed out).
    async fn owned_items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Uuid>> {
        Ok(self
            .mine(ctx)
            .await?
            .parts
            .iter()
            .filter(|p| p.owned)
            .map(|p| p.part.edition.id)
            .collect())
    }

    /// How many of its editions the viewer owns already.
    async fn owned_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        Ok(i32::try_from(self.mine(ctx).await?.owned_count).unwrap_or(0))
    }

    /// How many editions it holds.
    async fn item_count(&self) -> i32 {
        i32::try_from(self.parts.len()).unwrap_or(0)
    }
}

/// The published bundles holding an edition of `product` (`Product.bundles`).
pub async fn of_product(ctx: &Context<'_>, product: Uuid) -> async_graphql::Result<Vec<Bundle>> {
    let state = ctx.data::<AppState>()?;
    let models = bundles::of_product(&state.db, product).await?;
    Ok(Bundle::many(state, models).await?)
}
