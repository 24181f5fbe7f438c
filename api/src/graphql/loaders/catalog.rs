//! Catalog's loaders: editions by product, publishers' and reviewers' names, stock and builds;
//! and the priming of a product list. Products and editions by id are [`super::ById`].

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Lookahead;
use async_graphql::dataloader::Loader;
use domain::catalog::entity::{discount, edition, product};
use domain::fulfillment::entity::inventory;
use domain::identity::entity::account;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::Loaders;
use crate::infra::error::ApiError;

/// Editions of products, cheapest first.
pub struct EditionsByProduct(pub DatabaseConnection);

impl Loader<Uuid> for EditionsByProduct {
    type Value = Vec<edition::Model>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = edition::Entity::find()
            .filter(edition::Column::ProductId.is_in(keys.iter().copied()))
            .order_by_asc(edition::Column::PriceMinor)
            .order_by_asc(edition::Column::Id)
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut map: HashMap<Uuid, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            map.entry(row.product_id).or_default().push(row);
        }
        Ok(map)
    }
}

/// The discount of each edition running at the instant of the operation.
pub struct RunningDiscounts(pub DatabaseConnection, pub chrono::DateTime<chrono::Utc>);

impl Loader<Uuid> for RunningDiscounts {
    type Value = discount::Model;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::catalog::discounts::running(&self.0, keys, self.1)
            .await
            .map_err(Arc::new)
    }
}

/// The prices publishers set for editions in other currencies than the base price's.
pub struct EditionPrices(pub DatabaseConnection);

impl Loader<Uuid> for EditionPrices {
    type Value = HashMap<domain::money::Currency, i64>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        crate::catalog::prices::explicit(&self.0, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Every discount of editions, newest window first.
pub struct DiscountsByEdition(pub DatabaseConnection);

impl Loader<Uuid> for DiscountsByEdition {
    type Value = Vec<discount::Model>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = crate::catalog::discounts::of_editions(&self.0, keys)
            .await
            .map_err(Arc::new)?;
        let mut map: HashMap<Uuid, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            map.entry(row.edition_id).or_default().push(row);
        }
        Ok(map)
    }
}

/// Public names of accounts (publishers, reviewers); empty for an unknown account.
pub struct AccountNames(pub DatabaseConnection);

impl Loader<Uuid> for AccountNames {
    type Value = String;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, String>, Self::Error> {
        let rows: Vec<(Uuid, String)> = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .column(account::Column::DisplayName)
            .filter(account::Column::Id.is_in(keys.iter().copied()))
            .into_tuple()
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut map: HashMap<Uuid, String> = keys.iter().map(|k| (*k, String::new())).collect();
        map.extend(rows);
        Ok(map)
    }
}

/// Stock available to order (on hand minus reserved) of physical editions; no row means 0.
pub struct Stock(pub DatabaseConnection);

impl Loader<Uuid> for Stock {
    type Value = i32;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, i32>, Self::Error> {
        let rows = inventory::Entity::find()
            .filter(inventory::Column::EditionId.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        let mut map: HashMap<Uuid, i32> = keys.iter().map(|k| (*k, 0)).collect();
        map.extend(
            rows.into_iter()
                .map(|r| (r.edition_id, (r.on_hand - r.reserved).max(0))),
        );
        Ok(map)
    }
}

/// Builds of products, newest first (every status; resolvers filter what the caller may see).
pub struct BuildsByProduct(pub DatabaseConnection);

impl Loader<Uuid> for BuildsByProduct {
    type Value = Vec<crate::catalog::builds::Build>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = crate::catalog::builds::of_products(&self.0, keys)
            .await
            .map_err(Arc::new)?;
        let mut map: HashMap<Uuid, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            map.entry(row.product_id).or_default().push(row);
        }
        Ok(map)
    }
}

impl Loaders {
    /// Whether the items of a product page select a price.
    pub fn wants_prices(node: &Lookahead<'_>) -> bool {
        let editions = node.field("editions");
        node.field("priceFrom").exists()
            || node.field("listPriceFrom").exists()
            || editions.field("price").exists()
            || editions.field("currentPrice").exists()
    }

    /// Primes what the prices of a page in `to` need where `to` is not the products' base
    /// currency: their editions, the prices set for them and their running discounts (three
    /// statements, whatever the page's size).
    pub async fn prime_prices(
        &self,
        products: &[product::Model],
        to: domain::money::Currency,
    ) -> Result<(), Arc<ApiError>> {
        let foreign: Vec<Uuid> = products
            .iter()
            .filter(|p| p.currency != to.as_str())
            .map(|p| p.id)
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        let loaded = self.editions.load_many(foreign).await?;
        let ids: Vec<Uuid> = loaded.values().flatten().map(|e| e.id).collect();
        futures::future::try_join(
            self.edition_prices.load_many(ids.iter().copied()),
            self.running_discounts.load_many(ids.iter().copied()),
        )
        .await?;
        Ok(())
    }

    /// Loads, in one statement per kind, what the selection `node` of a product list asks for
    /// (editions and their stock, publishers' names, builds).
    pub async fn prime_products(
        &self,
        node: Lookahead<'_>,
        products: &[product::Model],
    ) -> Result<(), Arc<ApiError>> {
        let ids: Vec<Uuid> = products.iter().map(|p| p.id).collect();
        let editions = node.field("editions");
        let (loaded, _, _) = futures::future::try_join3(
            async {
                if editions.exists() {
                    self.editions.load_many(ids.iter().copied()).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if node.field("publisher").exists() {
                    self.names
                        .load_many(products.iter().map(|p| p.publisher_id))
                        .await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
            async {
                if node.field("builds").exists() {
                    self.builds.load_many(ids.iter().copied()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
        )
        .await?;
        if let Some(loaded) = loaded
            && editions.field("stock").exists()
        {
            let physical = loaded
                .values()
                .flatten()
                .filter(|e| e.kind == domain::catalog::EditionKind::Physical.as_str())
                .map(|e| e.id);
            self.stock.load_many(physical).await?;
        }
        Ok(())
    }
}
