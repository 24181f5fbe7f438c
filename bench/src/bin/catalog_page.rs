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

#![recursion_limit = "256"]

use std::time::Instant;

use api::catalog::search::{self, Filter, Scope, Sort};
use bench::catalog::{self, page, quantile_ms as quantile};
use sea_orm::DatabaseConnection;

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
    if args.iter().any(|a| a == "--drop") {
        catalog::drop().await?;
        println!("dropped {}", catalog::DATABASE);
        return Ok(());
    }
    let store = catalog::open().await?;
    let db = &store.db;
    let schema = api::graphql::build_schema(store.state.clone());

    for (label, text) in [("browse (newest)", None), ("search \"game\"", Some("game"))] {
        for _ in 0..20 {
            page(&schema, text).await;
            bare(db, text).await?;
        }
        store.take_statements();
        page(&schema, text).await;
        let per_page = store.take_statements();
        let (mut full, mut base) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            bare(db, text).await?;
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
