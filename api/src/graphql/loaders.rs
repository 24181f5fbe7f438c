//! Every DataLoader of the schema, in one place, so that a page costs the same number of SQL
//! statements whatever its size.
//!
//! One [`Loaders`] is made for each operation by the [`PerOperation`] extension (an HTTP request,
//! each operation of a WebSocket, and each event of a subscription, so a subscription never
//! answers from an earlier event's cache); no resolver builds its own. A list resolver primes
//! the loaders for its whole page at once from its look-ahead (`prime_*`, next to each
//! context's loaders), so each field of each item is then answered from the cache and the count
//! of statements does not depend on timing. Every loader answers every key it is asked for (an
//! empty list or `None` for a missing row), so a missing row is cached too and never costs a
//! statement of its own.

pub mod catalog;
pub mod fulfillment;
pub mod identity;
pub mod library;
pub mod ordering;
pub mod refund;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Context, Lookahead, Response};
use domain::catalog::entity::{edition, product};
use sea_orm::sea_query::ValueType;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, Iterable, ModelTrait, PrimaryKeyToColumn,
    PrimaryKeyTrait, QueryFilter,
};
use uuid::Uuid;

use crate::infra::error::ApiError;
use crate::infra::state::AppState;

/// A loader with a cache for the operation and no batching delay: list resolvers prime the
/// loaders with every key of the page at once (`load_many`), so waiting for more keys would
/// only add latency (tokio's timer rounds any delay up to a millisecond, per loader level).
pub type Cached<T> = DataLoader<T, HashMapCache>;

fn cached<T: Loader<Uuid>>(loader: T) -> Cached<T> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default()).delay(Duration::ZERO)
}

/// Rows of an entity keyed by one `uuid` column, by that key (an unknown id answers `None`):
/// the one loader of every "this row by its id" field, whatever the entity.
pub struct ById<E> {
    db: DatabaseConnection,
    entity: PhantomData<E>,
}

impl<E> ById<E> {
    pub fn new(db: DatabaseConnection) -> ById<E> {
        ById {
            db,
            entity: PhantomData,
        }
    }
}

impl<E> Loader<Uuid> for ById<E>
where
    E: EntityTrait,
    E::PrimaryKey: PrimaryKeyTrait<ValueType = Uuid>,
    E::Model: Sync + 'static,
{
    type Value = Option<E::Model>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut map: HashMap<Uuid, Self::Value> = keys.iter().map(|k| (*k, None)).collect();
        // A `Uuid` primary key is one column.
        let Some(key) = E::PrimaryKey::iter().next() else {
            return Ok(map);
        };
        let id = key.into_column();
        let rows = E::find()
            .filter(id.is_in(keys.iter().copied()))
            .all(&self.db)
            .await
            .map_err(|e| Arc::new(ApiError::from(e)))?;
        for row in rows {
            let key = <Uuid as ValueType>::try_from(row.get(id)).map_err(|e| {
                Arc::new(ApiError::Internal(anyhow::anyhow!(
                    "the primary key of a {} row: {e}",
                    E::default().table_name()
                )))
            })?;
            map.insert(key, Some(row));
        }
        Ok(map)
    }
}

/// The loaders of one operation.
pub struct Loaders {
    /// Editions of products, cheapest first.
    pub editions: Cached<catalog::EditionsByProduct>,
    /// Editions by id.
    pub edition: Cached<ById<edition::Entity>>,
    /// Products by id.
    pub product: Cached<ById<product::Entity>>,
    /// Public names of accounts.
    pub names: Cached<catalog::AccountNames>,
    /// E-mails of accounts (the buyers of orders, for admins).
    pub emails: Cached<identity::AccountEmails>,
    /// Stock of physical editions.
    pub stock: Cached<catalog::Stock>,
    /// The discount running on editions at the operation's instant.
    pub running_discounts: Cached<catalog::RunningDiscounts>,
    /// Every discount of editions.
    pub discounts: Cached<catalog::DiscountsByEdition>,
    /// The prices publishers set for editions, by currency.
    pub edition_prices: Cached<catalog::EditionPrices>,
    /// The viewer's region (prices' currency), resolved once.
    pub region: tokio::sync::OnceCell<crate::identity::Region>,
    /// Builds of products, newest first.
    pub builds: Cached<catalog::BuildsByProduct>,
    /// Lines of orders.
    pub lines: Cached<ordering::LinesByOrder>,
    /// Timelines of orders.
    pub timelines: Cached<ordering::TimelineByOrder>,
    /// Shipments of orders.
    pub shipments: Cached<fulfillment::ShipmentByOrder>,
    /// Refund requests of orders.
    pub refunds: Cached<refund::RefundByOrder>,
}

impl Loaders {
    /// Empty loaders reading `db`.
    pub fn new(db: &DatabaseConnection) -> Loaders {
        Loaders {
            editions: cached(catalog::EditionsByProduct(db.clone())),
            edition: cached(ById::new(db.clone())),
            product: cached(ById::new(db.clone())),
            names: cached(catalog::AccountNames(db.clone())),
            emails: cached(identity::AccountEmails(db.clone())),
            stock: cached(catalog::Stock(db.clone())),
            running_discounts: cached(catalog::RunningDiscounts(db.clone(), chrono::Utc::now())),
            discounts: cached(catalog::DiscountsByEdition(db.clone())),
            edition_prices: cached(catalog::EditionPrices(db.clone())),
            region: tokio::sync::OnceCell::new(),
            builds: cached(catalog::BuildsByProduct(db.clone())),
            lines: cached(ordering::LinesByOrder(db.clone())),
            timelines: cached(ordering::TimelineByOrder(db.clone())),
            shipments: cached(fulfillment::ShipmentByOrder(db.clone())),
            refunds: cached(refund::RefundByOrder(db.clone())),
        }
    }
}

/// The loaders of the operation `ctx` belongs to.
pub fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>()
}

/// Turns a loader's shared error back into a GraphQL error with its code.
pub fn loader_error(e: Arc<ApiError>) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    e.as_ref().extend()
}

/// The look-ahead of the items of a connection (`nodes`, and `edges.node`), those selected.
pub fn page_nodes<'a>(ctx: &'a Context<'_>) -> Vec<Lookahead<'a>> {
    let look = ctx.look_ahead();
    [look.field("nodes"), look.field("edges").field("node")]
        .into_iter()
        .filter(Lookahead::exists)
        .collect()
}

/// The extension that gives each operation its own [`Loaders`] (see the module's doc).
pub struct PerOperation;

impl ExtensionFactory for PerOperation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerOperation)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for PerOperation {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        match ctx.data_opt::<AppState>() {
            Some(state) => {
                let mut data = async_graphql::Data::default();
                data.insert(Loaders::new(&state.db));
                next.run_with_data(ctx, operation_name, data).await
            }
            None => next.run(ctx, operation_name).await,
        }
    }
}
