//! The priming of a library page and of a list of gift-key batches (their products, editions
//! and builds come from catalog's loaders).

use std::sync::Arc;

use async_graphql::Lookahead;
use uuid::Uuid;

use super::Loaders;
use crate::infra::error::ApiError;

impl Loaders {
    /// Loads, in one statement per kind, what the selection `node` of a list of (product,
    /// edition) pairs asks for: `product` (and what its selection asks for, see
    /// [`Loaders::prime_products`]), `edition`, `currentBuilds`.
    pub async fn prime_owned(
        &self,
        node: Lookahead<'_>,
        items: &[(Uuid, Uuid)],
    ) -> Result<(), Arc<ApiError>> {
        let products = || items.iter().map(|(p, _)| *p);
        let product = node.field("product");
        let (loaded, _, _) = futures::future::try_join3(
            async {
                if product.exists() {
                    self.product.load_many(products()).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if node.field("edition").exists() {
                    self.edition
                        .load_many(items.iter().map(|(_, e)| *e))
                        .await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
            async {
                if node.field("currentBuilds").exists() {
                    self.builds.load_many(products()).await?;
                }
                Ok::<_, Arc<ApiError>>(())
            },
        )
        .await?;
        if let Some(loaded) = loaded {
            let models: Vec<_> = loaded.into_values().flatten().collect();
            self.prime_products(product, &models).await?;
        }
        Ok(())
    }
}
