//! DataLoaders: every list resolver loads related rows in one statement per kind, whatever the
//! page size (editions, publishers, stock).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use domain::catalog::entity::edition;
use domain::fulfillment::entity::inventory;
use domain::identity::entity::account;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

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
        let mut map: HashMap<Uuid, Vec<edition::Model>> = HashMap::new();
        for row in rows {
            map.entry(row.product_id).or_default().push(row);
        }
        Ok(map)
    }
}

/// Public names of accounts (publishers, reviewers).
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
        Ok(rows.into_iter().collect())
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
        Ok(rows
            .into_iter()
            .map(|r| (r.edition_id, (r.on_hand - r.reserved).max(0)))
            .collect())
    }
}

/// The loaders of one request. Their caches live as long as the request, so a list resolver
/// can prime them for the whole page (see [`Loaders::prime_products`]) and every item's field
/// is then answered from the cache: the statement count of a page does not depend on timing.
pub struct Loaders {
    pub editions: DataLoader<EditionsByProduct, HashMapCache>,
    pub names: DataLoader<AccountNames, HashMapCache>,
    pub stock: DataLoader<Stock, HashMapCache>,
    pub builds: DataLoader<crate::graphql::builds::BuildsByProduct, HashMapCache>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection) -> Loaders {
        // No batching delay: list resolvers prime the loaders with every key of the page at
        // once (`load_many`), so waiting for more keys would only add latency (tokio's timer
        // rounds any delay up to a millisecond, per loader level).
        Loaders {
            editions: DataLoader::with_cache(
                EditionsByProduct(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            )
            .delay(Duration::ZERO),
            names: DataLoader::with_cache(
                AccountNames(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            )
            .delay(Duration::ZERO),
            stock: DataLoader::with_cache(Stock(db.clone()), tokio::spawn, HashMapCache::default())
                .delay(Duration::ZERO),
            builds: DataLoader::with_cache(
                crate::graphql::builds::BuildsByProduct(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            )
            .delay(Duration::ZERO),
        }
    }

    /// Loads, in one statement each, what the selection of a product list asks for.
    pub async fn prime_products(
        &self,
        node: async_graphql::Lookahead<'_>,
        products: &[domain::catalog::entity::product::Model],
    ) -> Result<(), Arc<ApiError>> {
        let ids: Vec<Uuid> = products.iter().map(|p| p.id).collect();
        let editions = node.field("editions");
        let publishers: Vec<Uuid> = products.iter().map(|p| p.publisher_id).collect();
        let want_publisher = node.field("publisher").exists();
        if node.field("builds").exists() {
            self.builds.load_many(ids.iter().copied()).await?;
        }
        let (loaded, _) = futures::future::try_join(
            async {
                if editions.exists() {
                    self.editions.load_many(ids).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if want_publisher {
                    self.names.load_many(publishers).await.map(Some)
                } else {
                    Ok(None)
                }
            },
        )
        .await?;
        if let Some(loaded) = loaded
            && editions.field("stock").exists()
        {
            let physical: Vec<Uuid> = loaded
                .values()
                .flatten()
                .filter(|e| e.kind == domain::catalog::EditionKind::Physical.as_str())
                .map(|e| e.id)
                .collect();
            let found = self.stock.load_many(physical.iter().copied()).await?;
            // Editions without an inventory row have no stock: cache the zero too.
            self.stock
                .feed_many(
                    physical
                        .into_iter()
                        .filter(|id| !found.contains_key(id))
                        .map(|id| (id, 0)),
                )
                .await;
        }
        Ok(())
    }
}

/// Turns a loader's shared error back into a GraphQL error with its code.
pub fn loader_error(e: Arc<ApiError>) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    e.as_ref().extend()
}
