//! The catalog at scale (issue 19): on a bulk-generated catalog of thousands of products (the
//! `api seed-demo --products N` generator), search stays relevant, edits show at once, facet
//! counts kept by the catalog stay exact, and filtered keyset pages neither repeat nor skip.
//! These check answers, not speed (the benchmark `bench --bin catalog_scale` measures that).

use std::collections::HashSet;

use domain::identity::Role;
use serde_json::{Value, json};

use crate::catalog::{LIST, titles};
use crate::helpers::*;

/// Generated products per test: enough that the sort walks hit their budget and a plan over
/// every product would differ from an indexed one, small enough to seed in seconds.
const PRODUCTS: u64 = 5_000;

const FACETS: &str = "query($f: ProductFilter) { facets(filter: $f) { genres { value count } platforms { value count } tags { value count } editionKinds { value count } } }";

/// A publisher, signed in: (token, id).
async fn publisher(app: &TestApp) -> (String, String) {
    app.staff("scale@publisher.test", "Scale Games", Role::Publisher)
        .await
}

/// Bulk-generates the catalog up to `PRODUCTS` (plus what is already there).
async fn seed(app: &TestApp) {
    let have = app
        .scalar("SELECT count(*) AS n FROM catalog.product")
        .await;
    api::seed::bulk_catalog(
        &app.state.db,
        PRODUCTS + u64::try_from(have).expect("count"),
        app.state.config.currency,
    )
    .await
    .expect("bulk seed");
}

/// Creates a product with a digital (and optionally a physical) edition; publishes it unless
/// `publish` is false. Returns its id.
async fn product(
    app: &TestApp,
    token: &str,
    input: Value,
    physical: bool,
    publish: bool,
) -> String {
    let mut editions = vec![digital("Standard", 1999)];
    if physical {
        editions.push(crate::helpers::physical("Box", 4999, 900));
    }
    app.create_product(token, input, &editions, publish)
        .await
        .id
}

async fn set_status(app: &TestApp, token: &str, id: &str, mutation: &str) {
    let v = app
        .gql(
            Some(token),
            &format!("mutation($id: UUID!) {{ {mutation}(id: $id) {{ status }} }}"),
            json!({ "id": id }),
        )
        .await;
    assert_no_errors(&v);
}

/// Every page of a listing, `first` at a time: the titles in order.
async fn walk(app: &TestApp, filter: Value, sort: &str, first: i64) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let v = app
            .gql(
                None,
                LIST,
                json!({ "f": filter, "s": sort, "first": first, "after": after }),
            )
            .await;
        assert_no_errors(&v);
        seen.extend(titles(&v));
        if v["data"]["products"]["pageInfo"]["hasNextPage"] != true {
            return seen;
        }
        after = v["data"]["products"]["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn catalog_at_scale_search_forgives_typos_and_ranks_title_matches_first() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app).await;
    product(
        &app,
        &token,
        json!({ "title": "Zanzibar Lighthouse", "genres": ["puzzle"], "platforms": ["linux"] }),
        false,
        true,
    )
    .await;
    product(
        &app,
        &token,
        json!({ "title": "Quiet Meadow", "genres": ["simulation"], "platforms": ["linux"],
                "description": "Keep the legacy of your grandparents' farm alive." }),
        false,
        true,
    )
    .await;
    seed(&app).await;

    let typo = walk(&app, json!({ "text": "zanzibr" }), "RELEVANCE", 20).await;
    let frontier = app
        .gql(
            None,
            LIST,
            json!({ "f": { "text": "frontir" }, "first": 20 }),
        )
        .await;
    let legacy = walk(&app, json!({ "text": "legacy" }), "RELEVANCE", 50).await;

    assert_eq!(
        typo.first().map(String::as_str),
        Some("Zanzibar Lighthouse")
    );
    let frontier = titles(&frontier);
    assert_eq!(frontier.len(), 20);
    assert!(
        frontier.iter().all(|t| t.contains("Frontier")),
        "{frontier:?}"
    );
    let in_title = |t: &String| t.to_lowercase().split(' ').any(|w| w == "legacy");
    let first_other = legacy
        .iter()
        .position(|t| !in_title(t))
        .expect("matches outside titles too");
    assert!(first_other > 50, "many titles say legacy: {first_other}");
    assert!(
        legacy[first_other..].iter().all(|t| !in_title(t)),
        "every title match comes before the other matches"
    );
    assert!(legacy.contains(&"Quiet Meadow".to_owned()));
    let unique: HashSet<_> = legacy.iter().collect();
    assert_eq!(unique.len(), legacy.len(), "no product twice");
    let expected = app
        .scalar("SELECT count(*) AS n FROM catalog.product WHERE status = 'published' AND search @@ websearch_to_tsquery('english', 'legacy')")
        .await;
    assert_eq!(legacy.len() as i64, expected, "every match, once");
}

#[tokio::test]
async fn catalog_at_scale_an_edited_product_is_found_under_its_new_title_at_once() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app).await;
    let id = product(
        &app,
        &token,
        json!({ "title": "Plain Working Title", "genres": ["indie"], "platforms": ["windows"] }),
        false,
        true,
    )
    .await;
    seed(&app).await;
    let find = |text: &'static str| {
        let app = &app;
        async move {
            let v = app
                .gql(None, LIST, json!({ "f": { "text": text }, "first": 5 }))
                .await;
            assert_no_errors(&v);
            titles(&v)
        }
    };

    let edited = app
        .gql(
            Some(&token),
            "mutation($id: UUID!) { updateProduct(id: $id, input: { title: \"Xylophone Odyssey\" }) { title } }",
            json!({ "id": id }),
        )
        .await;
    assert_no_errors(&edited);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    let found = loop {
        let found = find("xylophone").await;
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::task::yield_now().await;
    };
    let typo = find("xylofone odysey").await;
    let old = find("plain working title").await;

    assert_eq!(found, vec!["Xylophone Odyssey"], "found within a second");
    assert_eq!(typo.first().map(String::as_str), Some("Xylophone Odyssey"));
    assert!(!old.contains(&"Plain Working Title".to_owned()), "{old:?}");
}

/// The facets the catalog would count now, straight from its products (the source of truth).
async fn counted(app: &TestApp, genre: Option<&str>) -> Value {
    let only = genre
        .map(|g| format!("AND '{g}' = ANY (p.genres)"))
        .unwrap_or_default();
    let list = |sql: String| async move {
        let rows = sea_orm::ConnectionTrait::query_all_raw(
            &app.state.db,
            sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Postgres, sql),
        )
        .await
        .expect("count");
        Value::Array(
            rows.iter()
                .map(|r| {
                    json!({ "value": r.try_get::<String>("", "v").expect("v"),
                            "count": r.try_get::<i64>("", "n").expect("n") })
                })
                .collect(),
        )
    };
    let of = |column: &str, limit: &str| {
        format!(
            "SELECT v, count(*) AS n FROM catalog.product p, unnest(p.{column}) v \
             WHERE p.status = 'published' {only} GROUP BY v ORDER BY n DESC, v COLLATE \"C\" {limit}"
        )
    };
    json!({
        "genres": list(of("genres", "")).await,
        "platforms": list(of("platforms", "")).await,
        "tags": list(of("tags", "LIMIT 40")).await,
        "editionKinds": list(format!(
            "SELECT e.kind AS v, count(DISTINCT p.id) AS n FROM catalog.product p \
             JOIN catalog.edition e ON e.product_id = p.id WHERE p.status = 'published' {only} \
             GROUP BY e.kind ORDER BY n DESC, e.kind COLLATE \"C\""
        ))
        .await,
    })
}

async fn facets(app: &TestApp, filter: Value) -> Value {
    let v = app.gql(None, FACETS, json!({ "f": filter })).await;
    assert_no_errors(&v);
    v["data"]["facets"].clone()
}

#[tokio::test]
async fn catalog_at_scale_facet_counts_follow_every_product_change() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app).await;
    seed(&app).await;
    let before = facets(&app, json!({})).await;
    let input = json!({ "title": "Counted Twice", "genres": ["horror", "rpg"],
                        "platforms": ["switch"], "tags": ["zz-unique-tag"] });

    let draft = product(&app, &token, input, true, false).await;
    let with_draft = facets(&app, json!({})).await;
    set_status(&app, &token, &draft, "publishProduct").await;
    let published = facets(&app, json!({})).await;
    let published_truth = counted(&app, None).await;
    let horror = facets(&app, json!({ "genre": "horror" })).await;
    let horror_truth = counted(&app, Some("horror")).await;
    set_status(&app, &token, &draft, "unlistProduct").await;
    let unlisted = facets(&app, json!({})).await;
    let unlisted_truth = counted(&app, None).await;

    assert_eq!(before, unlisted_truth, "the generated catalog is counted");
    assert_eq!(with_draft, before, "a draft is not counted");
    assert_eq!(published, published_truth);
    assert_ne!(published, before);
    assert_eq!(horror, horror_truth, "filtered facets are counted too");
    assert_eq!(unlisted, unlisted_truth);
    assert_eq!(unlisted, before);
}

#[tokio::test]
async fn catalog_at_scale_rare_and_common_filters_page_without_repeats_or_gaps() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app).await;
    let mut boxed = Vec::new();
    for i in 0..3 {
        let title = format!("Boxed Edition {i}");
        let id = product(
            &app,
            &token,
            json!({ "title": title, "genres": ["racing"], "platforms": ["linux"] }),
            true,
            true,
        )
        .await;
        // Older than every generated product: past the stretch a newest-first walk reads.
        app.scalar(&format!(
            "WITH u AS (UPDATE catalog.product SET published_at = timestamptz '2020-01-01' + interval '{i} day' \
             WHERE id = '{id}' RETURNING 1) SELECT count(*) AS n FROM u"
        ))
        .await;
        boxed.push(title);
    }
    seed(&app).await;

    let rare = walk(&app, json!({ "editionKind": "PHYSICAL" }), "NEWEST", 2).await;
    let strategy = walk(&app, json!({ "genre": "strategy" }), "PRICE_ASC", 100).await;
    let strategy_count = app
        .scalar("SELECT count(*) AS n FROM catalog.product WHERE status = 'published' AND 'strategy' = ANY (genres)")
        .await;
    let newest = app
        .gql(None, LIST, json!({ "s": "NEWEST", "first": 20 }))
        .await;
    let second = app
        .gql(
            None,
            LIST,
            json!({ "s": "NEWEST", "first": 20, "after": newest["data"]["products"]["pageInfo"]["endCursor"] }),
        )
        .await;

    assert_eq!(rare, boxed.iter().rev().cloned().collect::<Vec<_>>());
    let unique: HashSet<_> = strategy.iter().collect();
    assert_eq!(unique.len(), strategy.len(), "no repeats");
    assert_eq!(strategy.len() as i64, strategy_count, "no gaps");
    let (a, b) = (titles(&newest), titles(&second));
    assert_eq!((a.len(), b.len()), (20, 20));
    assert!(a.iter().all(|t| !b.contains(t)));
}

const PRICED: &str = "query($f: ProductFilter, $s: ProductSort!, $first: Int!, $after: String) { products(filter: $f, sort: $s, first: $first, after: $after) { nodes { id title priceFrom { amountMinor } } pageInfo { hasNextPage endCursor } } }";

/// Every page of a listing, `first` at a time, as a shopper sees it: (id, title, price).
async fn listing(
    app: &TestApp,
    filter: Value,
    sort: &str,
    first: i64,
) -> Vec<(String, String, i64)> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let v = app
            .gql(
                None,
                PRICED,
                json!({ "f": filter, "s": sort, "first": first, "after": after }),
            )
            .await;
        assert_no_errors(&v);
        let products = &v["data"]["products"];
        for n in products["nodes"].as_array().expect("nodes") {
            seen.push((
                n["id"].as_str().expect("id").to_owned(),
                n["title"].as_str().expect("title").to_owned(),
                n["priceFrom"]["amountMinor"].as_i64().unwrap_or(0),
            ));
        }
        if products["pageInfo"]["hasNextPage"] != true {
            return seen;
        }
        after = products["pageInfo"]["endCursor"].clone();
    }
}

/// The ids of the published products `condition` selects, in `order`, straight from the
/// products (the source of truth).
async fn truth(app: &TestApp, condition: &str, order: &str) -> Vec<String> {
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        &app.state.db,
        sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "SELECT id::text AS id FROM catalog.product \
                 WHERE status = 'published' AND {condition} ORDER BY {order}"
            ),
        ),
    )
    .await
    .expect("truth");
    rows.iter()
        .map(|r| r.try_get::<String>("", "id").expect("id"))
        .collect()
}

fn ids(list: &[(String, String, i64)]) -> Vec<String> {
    list.iter().map(|(id, _, _)| id.clone()).collect()
}

#[tokio::test]
async fn catalog_at_scale_a_genre_listing_pages_every_product_once_in_order_through_changes() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app).await;
    let mover = product(
        &app,
        &token,
        json!({ "title": "Price Mover", "genres": ["strategy"], "platforms": ["linux"] }),
        false,
        true,
    )
    .await;
    let joiner = product(
        &app,
        &token,
        json!({ "title": "Genre Joiner", "genres": ["puzzle"], "platforms": ["linux"] }),
        true,
        true,
    )
    .await;
    let leaver = product(
        &app,
        &token,
        json!({ "title": "Soon Unlisted", "genres": ["rpg", "strategy"], "platforms": ["switch"] }),
        true,
        true,
    )
    .await;
    seed(&app).await;
    let strategy = "'strategy' = ANY (genres)";
    let by_price = "coalesce(price_from_minor, 0), id";

    let before = listing(&app, json!({ "genre": "strategy" }), "PRICE_ASC", 37).await;
    let before_truth = truth(&app, strategy, by_price).await;
    // The mover becomes the cheapest, the joiner a strategy game; the leaver leaves the store.
    let v = app
        .gql(
            None,
            "query($id: UUID!) { product(id: $id) { editions { id } } }",
            json!({ "id": mover }),
        )
        .await;
    assert_no_errors(&v);
    let edition = v["data"]["product"]["editions"][0]["id"].clone();
    let v = app
        .gql(
            Some(&token),
            "mutation($id: UUID!) { updateEdition(id: $id, input: { price: { amountMinor: 99, currency: \"EUR\" } }) { id } }",
            json!({ "id": edition }),
        )
        .await;
    assert_no_errors(&v);
    let v = app
        .gql(
            Some(&token),
            "mutation($id: UUID!) { updateProduct(id: $id, input: { genres: [\"puzzle\", \"strategy\"] }) { id } }",
            json!({ "id": joiner }),
        )
        .await;
    assert_no_errors(&v);
    set_status(&app, &token, &leaver, "unlistProduct").await;
    let after = listing(&app, json!({ "genre": "strategy" }), "PRICE_ASC", 37).await;
    let after_truth = truth(&app, strategy, by_price).await;
    // Other orders and filters over the same genre: every sort's walk, and the walk checking
    // a further filter (with the fallback to the filters' indexes when it is rare).
    let mut others = Vec::new();
    for (filter, sort, condition, order) in [
        (
            json!({ "genre": "strategy" }),
            "NEWEST",
            strategy.to_owned(),
            "listed_at DESC, id DESC",
        ),
        (
            json!({ "genre": "strategy" }),
            "PRICE_DESC",
            strategy.to_owned(),
            "price_sort DESC, id DESC",
        ),
        (
            json!({ "genre": "strategy" }),
            "RATING",
            strategy.to_owned(),
            "rating_avg DESC, id DESC",
        ),
        (
            json!({ "genre": "strategy", "platform": "linux", "maxPrice": 1999 }),
            "PRICE_ASC",
            format!("{strategy} AND 'linux' = ANY (platforms) AND price_from_minor <= 1999"),
            by_price,
        ),
        (
            json!({ "platform": "linux", "editionKind": "PHYSICAL" }),
            "NEWEST",
            "'linux' = ANY (platforms) AND 'physical' = ANY (edition_kinds)".to_owned(),
            "listed_at DESC, id DESC",
        ),
        (
            json!({ "editionKind": "PHYSICAL" }),
            "PRICE_DESC",
            "'physical' = ANY (edition_kinds)".to_owned(),
            "price_sort DESC, id DESC",
        ),
        (
            json!({ "genre": "strategy", "text": "legacy" }),
            "PRICE_ASC",
            format!("{strategy} AND search @@ websearch_to_tsquery('english', 'legacy')"),
            by_price,
        ),
    ] {
        let seen = listing(&app, filter.clone(), sort, 29).await;
        others.push((
            filter,
            sort,
            ids(&seen),
            truth(&app, &condition, order).await,
        ));
    }

    let titles = |l: &[(String, String, i64)]| -> Vec<String> {
        l.iter().map(|(_, t, _)| t.clone()).collect()
    };
    assert!(before_truth.len() > 500, "a genre of hundreds of products");
    assert_eq!(
        ids(&before),
        before_truth,
        "every product of the genre once, in price order"
    );
    assert!(titles(&before).contains(&"Soon Unlisted".to_owned()));
    assert!(!titles(&before).contains(&"Genre Joiner".to_owned()));
    assert_eq!(ids(&after), after_truth, "the same after the changes");
    assert_eq!(
        after.first().map(|p| (p.1.as_str(), p.2)),
        Some(("Price Mover", 99))
    );
    assert!(after.windows(2).all(|w| w[0].2 <= w[1].2), "cheapest first");
    assert!(titles(&after).contains(&"Genre Joiner".to_owned()));
    assert!(!titles(&after).contains(&"Soon Unlisted".to_owned()));
    assert_eq!(after.len(), before.len(), "one joined, one left");
    for (filter, sort, seen, truth) in others {
        assert!(!truth.is_empty(), "{filter} {sort}: matches something");
        assert_eq!(seen, truth, "{filter} {sort}");
    }
}
