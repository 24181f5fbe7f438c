//! What discounts cost the storefront (issue 21), in the same run, interleaved: the catalog's
//! 20-product page as it was asked for before discounts (baseline), the same page with what the
//! SPA now shows of a sale (the product's listing price, its list price and its sale, and each
//! edition's current price and running discount), and the "On sale" filter sorted by price. The
//! demo store (`bench::catalog`) has every sixth product on sale. Then regional prices: the
//! same page and filter asked by a visitor the gateway placed in Japan (prices in yen), with a
//! third of the editions priced in yen by their publishers and the rest at the suggested
//! conversion. Statements per page are counted on the pool.
//!
//! `cargo run --release -p bench --bin discounts_cost [-- ROUNDS]`

#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use bench::catalog::{self, quantile_ms};

const WITH_SALES: &str = "query($f: ProductFilter, $s: ProductSort!) { products(first: 20, filter: $f, sort: $s) { edges { cursor node { id slug title priceFrom { formatted } listPriceFrom { formatted } sale { percent endsAt } rating { average count } publisher { name } cover { url } editions { id kind name price { amountMinor formatted } currentPrice { amountMinor formatted } discount { percent endsAt } stock } } } pageInfo { hasNextPage endCursor } } }";

async fn run(schema: &api::graphql::StoreSchema, query: &str, vars: serde_json::Value) -> usize {
    run_from(schema, query, vars, None).await
}

/// A request as the gateway sends it for a visitor from `country`.
async fn run_from(
    schema: &api::graphql::StoreSchema,
    query: &str,
    vars: serde_json::Value,
    country: Option<&str>,
) -> usize {
    let mut req =
        async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(vars));
    if let Some(c) = country {
        req = req.data(api::infra::auth::caller::ClientCountry(Some(c.to_owned())));
    }
    let res = schema.execute(req).await;
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
    // A third of the editions priced in yen by their publishers (the rest: the suggestion).
    sea_orm::ConnectionTrait::execute_unprepared(
        &store.db,
        "INSERT INTO catalog.edition_price (edition_id, currency, amount_minor) \
         SELECT id, 'JPY', price_minor * 150 / 100 FROM catalog.edition \
         WHERE get_byte(uuid_send(id), 15) % 3 = 0 ON CONFLICT DO NOTHING",
    )
    .await?;
    let schema = api::graphql::build_schema(store.state.clone());
    let jp = Some("JP");
    let plain = serde_json::json!({});
    let all = serde_json::json!({ "s": "RELEVANCE" });
    let on_sale = serde_json::json!({ "f": { "onSale": true }, "s": "PRICE_ASC" });
    for _ in 0..30 {
        run(&schema, catalog::PAGE, plain.clone()).await;
        run(&schema, WITH_SALES, all.clone()).await;
        run(&schema, WITH_SALES, on_sale.clone()).await;
        run_from(&schema, WITH_SALES, all.clone(), jp).await;
        run_from(&schema, WITH_SALES, on_sale.clone(), jp).await;
    }
    let mut counts = [0; 5];
    let mut found = 0;
    store.take_statements();
    run(&schema, catalog::PAGE, plain.clone()).await;
    counts[0] = store.take_statements();
    run(&schema, WITH_SALES, all.clone()).await;
    counts[1] = store.take_statements();
    found += run(&schema, WITH_SALES, on_sale.clone()).await;
    counts[2] = store.take_statements();
    run_from(&schema, WITH_SALES, all.clone(), jp).await;
    counts[3] = store.take_statements();
    run_from(&schema, WITH_SALES, on_sale.clone(), jp).await;
    counts[4] = store.take_statements();
    let (mut before, mut sales, mut filtered) = (Vec::new(), Vec::new(), Vec::new());
    let (mut yen, mut yen_filtered) = (Vec::new(), Vec::new());
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
        let t = Instant::now();
        run_from(&schema, WITH_SALES, all.clone(), jp).await;
        yen.push(t.elapsed());
        let t = Instant::now();
        run_from(&schema, WITH_SALES, on_sale.clone(), jp).await;
        yen_filtered.push(t.elapsed());
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
    line(
        "with sales, in yen (regional prices)",
        &yen,
        counts[3],
        base,
    );
    line(
        "\"On sale\" by price, in yen",
        &yen_filtered,
        counts[4],
        base,
    );
    Ok(())
}
