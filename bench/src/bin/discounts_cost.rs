//! What discounts cost the storefront (issue 21), in the same run, interleaved: the catalog's
//! 20-product page as it was asked for before discounts (baseline), the same page with what the
//! SPA now shows of a sale (the product's listing price, its list price and its sale, and each
//! edition's current price and running discount), and the "On sale" filter sorted by price. The
//! demo store (`bench::catalog`) has every sixth product on sale. Statements per page are
//! counted on the pool.
//!
//! `cargo run --release -p bench --bin discounts_cost [-- ROUNDS]`

#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use bench::catalog::{self, quantile_ms};

const WITH_SALES: &str = "query($f: ProductFilter, $s: ProductSort!) { products(first: 20, filter: $f, sort: $s) { edges { cursor node { id slug title priceFrom { formatted } listPriceFrom { formatted } sale { percent endsAt } rating { average count } publisher { name } cover { url } editions { id kind name price { amountMinor formatted } currentPrice { amountMinor formatted } discount { percent endsAt } stock } } } pageInfo { hasNextPage endCursor } } }";

async fn run(schema: &api::graphql::StoreSchema, query: &str, vars: serde_json::Value) -> usize {
    let res = schema
        .execute(
            async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(vars)),
        )
        .await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    let json = res.data.into_json().unwrap_or_default();
    json["products"]["edges"].as_array().map_or(0, Vec::len)
}

fn line(label: &str, v: &[Duration], statements: usize, base: f64) {
    let median = quantile_ms(v, 0.5);
    println!(
        "  {label:<48} {statements:>2} statements  median {median:6.3} ms  p90 {:6.3} ms  {:.3}x",
        quantile_ms(v, 0.9),
        median / base
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let store = catalog::open().await?;
    let schema = api::graphql::build_schema(store.state.clone());
    let plain = serde_json::json!({});
    let all = serde_json::json!({ "s": "RELEVANCE" });
    let on_sale = serde_json::json!({ "f": { "onSale": true }, "s": "PRICE_ASC" });
    for _ in 0..30 {
        run(&schema, catalog::PAGE, plain.clone()).await;
        run(&schema, WITH_SALES, all.clone()).await;
        run(&schema, WITH_SALES, on_sale.clone()).await;
    }
    let mut counts = [0; 3];
    let mut found = 0;
    store.take_statements();
    run(&schema, catalog::PAGE, plain.clone()).await;
    counts[0] = store.take_statements();
    run(&schema, WITH_SALES, all.clone()).await;
    counts[1] = store.take_statements();
    found += run(&schema, WITH_SALES, on_sale.clone()).await;
    counts[2] = store.take_statements();
    let (mut before, mut sales, mut filtered) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        run(&schema, catalog::PAGE, plain.clone()).await;
        before.push(t.elapsed());
        let t = Instant::now();
        run(&schema, WITH_SALES, all.clone()).await;
        sales.push(t.elapsed());
        let t = Instant::now();
        run(&schema, WITH_SALES, on_sale.clone()).await;
        filtered.push(t.elapsed());
    }
    let base = quantile_ms(&before, 0.5);
    println!("catalog page (20 products, in-process), {rounds} rounds each, interleaved:");
    line("before discounts (baseline)", &before, counts[0], base);
    line(
        "with sale prices and running discounts",
        &sales,
        counts[1],
        base,
    );
    line(
        &format!("\"On sale\" by price ({found} products)"),
        &filtered,
        counts[2],
        base,
    );
    Ok(())
}
