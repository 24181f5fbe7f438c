//! The demo store the catalog benchmarks read: its own database `store_bench_catalog` on the
//! server of `DATABASE_URL` (created, migrated and seeded on first use), the NATS prefix and
//! Redis namespace `bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sea_orm::{ConnectionTrait, DatabaseConnection};

/// The database's name.
pub const DATABASE: &str = "store_bench_catalog";

/// The api's state on the demo store, its pool, and the count of SQL statements the pool ran.
pub struct DemoStore {
    pub state: api::AppState,
    pub db: DatabaseConnection,
    pub statements: Arc<AtomicUsize>,
}

impl DemoStore {
    /// Statements run since the last call.
    pub fn take_statements(&self) -> usize {
        self.statements.swap(0, Ordering::SeqCst)
    }
}

/// The api's settings for a benchmark's own database `name` ([`crate::serve_args`], prefix
/// `bench`), migrated and seeded with the demo catalog; and the database's URL.
pub async fn seeded(name: &str) -> anyhow::Result<(api::infra::config::ServeArgs, String)> {
    let (serve, _) = crate::serve_args(name, "bench")?;
    let url = serve.services.database_url.clone();
    api::cli::migrate(&serve.services).await?;
    api::cli::seed_demo(&serve.services, api::cli::Pictures::First(0)).await?;
    Ok((serve, url))
}

/// Opens (and on first use makes) the demo store.
pub async fn open() -> anyhow::Result<DemoStore> {
    let (serve, bench_url) = seeded(DATABASE).await?;
    let statements = Arc::new(AtomicUsize::new(0));
    let mut db = api::infra::db::connect(&bench_url, 10).await?;
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let state = api::AppState::connect_with_db(serve.into_config()?, db.clone()).await?;
    Ok(DemoStore {
        state,
        db,
        statements,
    })
}

/// Drops the demo store's database.
pub async fn drop() -> anyhow::Result<()> {
    let (_, maintenance) = crate::serve_args(DATABASE, "bench")?;
    let admin = api::infra::db::connect(&maintenance, 1).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .await?;
    Ok(())
}

/// The storefront's 20-product page, as the SPA asks for it.
pub const PAGE: &str = "query($f: ProductFilter) { products(first: 20, filter: $f) { edges { cursor node { id slug title priceFrom { formatted } rating { average count } publisher { name } cover { url } editions { id kind name price { amountMinor formatted } stock } } } pageInfo { hasNextPage endCursor } } }";

/// Runs the page (filtered by `text`) on `schema`; panics on an error (a benchmark of a
/// failing page measures nothing).
pub async fn page(schema: &api::graphql::StoreSchema, text: Option<&str>) {
    let mut req = async_graphql::Request::new(PAGE);
    if let Some(t) = text {
        req = req.variables(async_graphql::Variables::from_json(
            serde_json::json!({ "f": { "text": t } }),
        ));
    }
    let res = schema.execute(req).await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
}

/// The `q` quantile of `v`, in milliseconds.
pub fn quantile_ms(v: &[std::time::Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
