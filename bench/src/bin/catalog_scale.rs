//! The storefront at Steam's scale (issue 19): the five storefront queries and the second
//! page (cursor) of each, in-process (the GraphQL schema executed directly, no HTTP, as
//! `catalog_page` does), on a 160-product catalog (the baseline) and on a 100,000-product one,
//! measured in the same rounds (interleaved, so both see the same machine); then the
//! throughput at 16 concurrent clients of the newest page and of a typo search, on both.
//!
//! Both catalogs live in databases of their own on the server of `DATABASE_URL`,
//! `store_bench_scale_small` and `store_bench_scale_large`, created, migrated and seeded by the
//! bench (`api seed-demo`, then `api seed-demo --products N` for the large one) and dropped at
//! the end (`--keep` keeps them for `EXPLAIN`, `--drop` only drops them). NATS prefix `bench`.
//!
//! `cargo run --release -p bench --bin catalog_scale [-- ROUNDS] [--products N] [--keep|--drop]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use api::graphql::StoreSchema;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

/// The storefront's page (web/queries/catalog.graphql `Products`).
const PAGE: &str = "query($f: ProductFilter, $s: ProductSort!, $after: String) { products(filter: $f, sort: $s, first: 20, after: $after) { pageInfo { hasNextPage endCursor } nodes { id slug title genres platforms priceFrom { formatted } rating { average count } cover { url } } } }";
const FACETS: &str = "{ facets { genres { value count } platforms { value count } } }";
const DATABASES: [&str; 2] = ["store_bench_scale_small", "store_bench_scale_large"];
const CLIENTS: usize = 16;
const THROUGHPUT_SECS: u64 = 5;

/// One storefront query: a page (filter, sort) or the facets.
#[derive(Clone)]
struct Query {
    label: &'static str,
    page: Option<(Value, &'static str)>,
}

fn queries() -> Vec<Query> {
    vec![
        Query {
            label: "newest first",
            page: Some((Value::Null, "NEWEST")),
        },
        Query {
            label: "typo search \"frontir\", relevance",
            page: Some((json!({ "text": "frontir" }), "RELEVANCE")),
        },
        Query {
            label: "word search \"harbor\", relevance",
            page: Some((json!({ "text": "harbor" }), "RELEVANCE")),
        },
        Query {
            label: "genre \"strategy\", price ascending",
            page: Some((json!({ "genre": "strategy" }), "PRICE_ASC")),
        },
        Query {
            label: "facets (genres, platforms)",
            page: None,
        },
    ]
}

/// A catalog under test: its schema and pool.
struct Store {
    schema: StoreSchema,
}

impl Store {
    /// Runs `query` (after `after` for a page); returns the page's end cursor.
    async fn run(&self, query: &Query, after: Option<&str>) -> anyhow::Result<Option<String>> {
        let req = match &query.page {
            Some((filter, sort)) => {
                async_graphql::Request::new(PAGE).variables(async_graphql::Variables::from_json(
                    json!({ "f": filter, "s": sort, "after": after }),
                ))
            }
            None => async_graphql::Request::new(FACETS),
        };
        let res = self.schema.execute(req).await;
        anyhow::ensure!(res.errors.is_empty(), "{}: {:?}", query.label, res.errors);
        let data = res.data.into_json()?;
        if query.page.is_some() {
            let nodes = data["products"]["nodes"].as_array().map_or(0, Vec::len);
            // The small catalog has fewer than 20 matches for some searches (8 for "frontir"),
            // and then no second page: the same statements run, over fewer rows.
            anyhow::ensure!(
                after.is_some() || nodes > 0,
                "{}: no product found",
                query.label
            );
        }
        Ok(data["products"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned))
    }
}

async fn drop_databases(maintenance: &str) -> anyhow::Result<()> {
    let admin = api::infra::db::connect(maintenance, 1).await?;
    for name in DATABASES {
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}

/// Creates, migrates and seeds one catalog (`products` in all when given).
async fn store(name: &str, products: Option<u64>) -> anyhow::Result<Store> {
    let (serve, url) = bench::catalog::seeded(name).await?;
    if let Some(n) = products {
        api::cli::seed_products(&serve.services, n).await?;
    }
    let db = api::infra::db::connect(&url, 20).await?;
    db.execute_unprepared("VACUUM ANALYZE").await?;
    let count = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) AS n FROM catalog.product WHERE status = 'published'",
        ))
        .await?
        .context("count")?
        .try_get::<i64>("", "n")?;
    println!("{name}: {count} published products");
    let state = api::AppState::connect_with_db(serve.into_config()?, db.clone()).await?;
    Ok(Store {
        schema: api::graphql::build_schema(state),
    })
}

fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// Requests per second of `query` from `CLIENTS` concurrent clients for `THROUGHPUT_SECS`.
async fn throughput(store: &Arc<Store>, query: &Query) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    let started = Instant::now();
    for _ in 0..CLIENTS {
        let (store, query, done, stop) = (store.clone(), query.clone(), done.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                store.run(&query, None).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(THROUGHPUT_SECS)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let products: u64 = flag("--products")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let rounds: usize = args
        .iter()
        .enumerate()
        .filter(|(i, _)| flag("--products").is_none_or(|p| *i != p + 1))
        .find_map(|(_, a)| a.parse().ok())
        .unwrap_or(200);
    let services = api::infra::config::serve_args_from_env()?.services;
    let (maintenance, _) = api::infra::db::split_database_url(&services.database_url)?;
    drop_databases(&maintenance).await?;
    if flag("--drop").is_some() {
        println!("dropped {}", DATABASES.join(", "));
        return Ok(());
    }

    let small = Arc::new(store(DATABASES[0], None).await?);
    let started = Instant::now();
    let large = Arc::new(store(DATABASES[1], Some(products)).await?);
    println!(
        "seeded and analysed the large catalog in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Every query and, for pages, the page after the first (its cursor read once per store).
    let queries = queries();
    let mut cases: Vec<(String, Query, [Option<String>; 2])> = Vec::new();
    for q in &queries {
        cases.push((q.label.to_owned(), q.clone(), [None, None]));
    }
    for q in queries.iter().filter(|q| q.page.is_some()) {
        let after = [small.run(q, None).await?, large.run(q, None).await?];
        cases.push((format!("{}, page 2", q.label), q.clone(), after));
    }
    // Warm-up, then `rounds` rounds; each round runs every case on both stores, alternating
    // which goes first.
    for _ in 0..20 {
        for (_, q, after) in &cases {
            small.run(q, after[0].as_deref()).await?;
            large.run(q, after[1].as_deref()).await?;
        }
    }
    let mut times = vec![[Vec::new(), Vec::new()]; cases.len()];
    for round in 0..rounds {
        for (i, (_, q, after)) in cases.iter().enumerate() {
            for s in [round % 2, 1 - round % 2] {
                let store = if s == 0 { &small } else { &large };
                let t = Instant::now();
                store.run(q, after[s].as_deref()).await?;
                if let Some(v) = times.get_mut(i).and_then(|t| t.get_mut(s)) {
                    v.push(t.elapsed());
                }
            }
        }
    }

    println!(
        "\nGraphQL storefront queries (20-product page), in-process, {rounds} rounds, sequential"
    );
    println!(
        "| query | 160: median | 160: p99 | {products}: median | {products}: p99 | growth (median) |"
    );
    println!("|---|---|---|---|---|---|");
    for ((label, _, _), [s, l]) in cases.iter().zip(&times) {
        let (s50, l50) = (quantile(s, 0.5), quantile(l, 0.5));
        println!(
            "| {label} | {s50:.2} ms | {:.2} ms | {l50:.2} ms | {:.2} ms | {:.2}x |",
            quantile(s, 0.99),
            quantile(l, 0.99),
            l50 / s50
        );
    }

    println!("\nthroughput, {CLIENTS} concurrent clients, {THROUGHPUT_SECS} s each");
    println!("| query | 160 | {products} | ratio |");
    println!("|---|---|---|---|");
    for q in queries.iter().take(2) {
        let s = throughput(&small, q).await?;
        let l = throughput(&large, q).await?;
        println!(
            "| {} | {s:.0} req/s | {l:.0} req/s | {:.2}x |",
            q.label,
            l / s
        );
    }

    if flag("--keep").is_none() {
        drop(small);
        drop(large);
        drop_databases(&maintenance).await?;
        println!("\ndropped {}", DATABASES.join(", "));
    }
    Ok(())
}
