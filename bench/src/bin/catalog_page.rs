//! Time of a 20-product catalog page, in-process (the GraphQL schema executed directly, no
//! HTTP), on the 160-product demo catalog, and the SQL statements it issues. Baseline, measured
//! in the same run and interleaved with it: the page's products statement alone
//! (`catalog::search::products`), i.e. what the page would cost with no GraphQL and no
//! related rows.
//!
//! Uses its own database `store_bench_catalog` on the server of `DATABASE_URL` (created,
//! migrated and seeded on first use; `--drop` removes it) and the NATS prefix `bench`.
//!
//! `cargo run --release -p bench --bin catalog_page [-- ROUNDS] [--drop]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api::catalog::search::{self, Filter, Scope, Sort};
use api::graphql::StoreSchema;
use sea_orm::{ConnectionTrait, DatabaseConnection};

const PAGE: &str = "query($f: ProductFilter) { products(first: 20, filter: $f) { edges { cursor node { id slug title priceFrom { formatted } rating { average count } publisher { name } cover { url } editions { id kind name price { amountMinor formatted } stock } } } pageInfo { hasNextPage endCursor } } }";

fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

async fn page(schema: &StoreSchema, text: Option<&str>) {
    let mut req = async_graphql::Request::new(PAGE);
    if let Some(t) = text {
        req = req.variables(async_graphql::Variables::from_json(
            serde_json::json!({ "f": { "text": t } }),
        ));
    }
    let res = schema.execute(req).await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
}

async fn bare(db: &DatabaseConnection, text: Option<&str>) -> anyhow::Result<()> {
    let filter = Filter {
        text: text.map(str::to_owned),
        ..Filter::default()
    };
    let p = search::products(db, &Scope::Public, &filter, Sort::Relevance, 20, None).await?;
    assert_eq!(p.items.len(), 20);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let mut serve = api::infra::config::serve_args_from_env()?;
    let (maintenance, _) = api::infra::db::split_database_url(&serve.services.database_url)?;
    if args.iter().any(|a| a == "--drop") {
        let admin = api::infra::db::connect(&maintenance, 1).await?;
        admin
            .execute_unprepared("DROP DATABASE IF EXISTS store_bench_catalog WITH (FORCE)")
            .await?;
        println!("dropped store_bench_catalog");
        return Ok(());
    }
    let bench_url = format!(
        "{}/store_bench_catalog",
        maintenance
            .split('?')
            .next()
            .unwrap_or(&maintenance)
            .trim_end_matches("/postgres")
    );
    serve.services.database_url = bench_url.clone();
    serve.services.nats_prefix = "bench".to_owned();
    serve.services.redis_namespace = "bench".to_owned();
    serve.services.object_store_dir = std::env::temp_dir().join("store-bench-objects");
    serve.jwt_private_key = Some(api::infra::auth::jwt::generate_key_pair()?.0);
    serve.jwt_private_key_file = None;
    serve.gateway_secret = None;
    serve.gateway_secret_file = None;
    api::cli::migrate(&serve.services).await?;
    api::cli::seed_demo(&serve.services, api::cli::Pictures::First(0)).await?;

    let statements = Arc::new(AtomicUsize::new(0));
    let mut db = api::infra::db::connect(&bench_url, 10).await?;
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let state = api::AppState::connect_with_db(serve.into_config()?, db.clone()).await?;
    let schema = api::graphql::build_schema(state);

    for (label, text) in [("browse (newest)", None), ("search \"game\"", Some("game"))] {
        for _ in 0..20 {
            page(&schema, text).await;
            bare(&db, text).await?;
        }
        statements.store(0, Ordering::SeqCst);
        page(&schema, text).await;
        let per_page = statements.load(Ordering::SeqCst);
        let (mut full, mut base) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            bare(&db, text).await?;
            base.push(t.elapsed());
            let t = Instant::now();
            page(&schema, text).await;
            full.push(t.elapsed());
        }
        let (b50, f50) = (quantile(&base, 0.5), quantile(&full, 0.5));
        println!("{label}: 20-product page, {rounds} rounds, {per_page} SQL statements per page");
        println!(
            "  baseline (products statement only)  median {b50:6.2} ms  p90 {:6.2} ms  1.00x",
            quantile(&base, 0.9)
        );
        println!(
            "  GraphQL page, in-process            median {f50:6.2} ms  p90 {:6.2} ms  {:.2}x",
            quantile(&full, 0.9),
            f50 / b50
        );
    }
    Ok(())
}
