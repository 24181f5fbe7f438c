//! Catalog: search, filters, pagination, authorization, moderation, statement counts, stock
//! commands, uploads, reviews and wishlists.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use api::cli::Pictures;
use axum::body::Body;
use axum::http::Request;
use domain::identity::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::*;

const CREATE: &str =
    "mutation($i: CreateProductInput!) { createProduct(input: $i) { id slug status } }";
const ADD_EDITION: &str = "mutation($p: UUID!, $i: EditionInput!) { addEdition(productId: $p, input: $i) { id kind price { amountMinor formatted } } }";
const PUBLISH: &str = "mutation($id: UUID!) { publishProduct(id: $id) { status } }";
pub(crate) const LIST: &str = "query($f: ProductFilter, $s: ProductSort = RELEVANCE, $first: Int = 20, $after: String) { products(filter: $f, sort: $s, first: $first, after: $after) { edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }";

/// A publisher account (made as an admin would), signed in: (token, id).
async fn publisher(app: &TestApp, name: &str) -> (String, String) {
    let email = format!("{}@publisher.test", name.to_lowercase().replace(' ', "-"));
    app.staff(&email, name, Role::Publisher).await
}

async fn user(app: &TestApp, name: &str) -> String {
    let v = app
        .sign_up(&format!("{}@user.test", name.to_lowercase()), name)
        .await;
    v["accessToken"].as_str().expect("token").to_owned()
}

struct Spec<'a> {
    title: &'a str,
    genres: &'a [&'a str],
    platforms: &'a [&'a str],
    tags: &'a [&'a str],
    description: &'a str,
    price: i64,
    physical: bool,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Spec {
            title: "Untitled",
            genres: &["action"],
            platforms: &["windows"],
            tags: &[],
            description: "",
            price: 1999,
            physical: false,
        }
    }
}

/// Creates, prices and publishes a product; returns its id.
async fn product(app: &TestApp, token: &str, spec: Spec<'_>) -> String {
    let mut editions = vec![digital("Standard", spec.price)];
    if spec.physical {
        editions.push(physical("Collector's box", spec.price + 3000, 1200));
    }
    app.create_product(
        token,
        json!({ "title": spec.title, "genres": spec.genres, "platforms": spec.platforms,
                "tags": spec.tags, "description": spec.description }),
        &editions,
        true,
    )
    .await
    .id
}

/// The titles of a `products` page, in order.
pub(crate) fn titles(v: &Value) -> Vec<String> {
    v["data"]["products"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no products in {v:#}"))
        .iter()
        .map(|e| e["node"]["title"].as_str().expect("title").to_owned())
        .collect()
}

async fn search(app: &TestApp, filter: Value) -> Vec<String> {
    let v = app
        .gql(None, LIST, json!({ "f": filter, "first": 50 }))
        .await;
    assert_no_errors(&v);
    titles(&v)
}

#[tokio::test]
async fn search_finds_titles_despite_typos_and_ranks_the_best_match_first() {
    let app = TestApp::spawn().await;
    let (pubr, _) = publisher(&app, "Nebula").await;
    product(
        &app,
        &pubr,
        Spec {
            title: "The Witcher",
            tags: &["open world", "fantasy"],
            description: "Hunt monsters for coin.",
            ..Spec::default()
        },
    )
    .await;
    product(
        &app,
        &pubr,
        Spec {
            title: "Meadow Farm",
            tags: &["cozy", "farming"],
            description: "Grow turnips. No witchers here.",
            ..Spec::default()
        },
    )
    .await;
    product(
        &app,
        &pubr,
        Spec {
            title: "Star Pilot",
            tags: &["space"],
            ..Spec::default()
        },
    )
    .await;

    let exact = search(&app, json!({ "text": "witcher" })).await;
    let typo = search(&app, json!({ "text": "wticher" })).await;
    let by_tag = search(&app, json!({ "text": "cozy" })).await;
    let none = search(&app, json!({ "text": "zzqqxx" })).await;

    assert_eq!(exact.first().map(String::as_str), Some("The Witcher"));
    assert!(
        exact.contains(&"Meadow Farm".to_owned()),
        "the description mentions witchers"
    );
    assert_eq!(
        typo.first().map(String::as_str),
        Some("The Witcher"),
        "{typo:?}"
    );
    assert!(!typo.contains(&"Star Pilot".to_owned()));
    assert_eq!(by_tag, vec!["Meadow Farm"]);
    assert!(none.is_empty());
}

#[tokio::test]
async fn filters_narrow_the_storefront() {
    let app = TestApp::spawn().await;
    let (a, _) = publisher(&app, "Nebula").await;
    let (b, b_id) = publisher(&app, "Atlas").await;
    product(
        &app,
        &a,
        Spec {
            title: "Cheap Linux Puzzle",
            genres: &["puzzle"],
            platforms: &["linux"],
            price: 499,
            ..Spec::default()
        },
    )
    .await;
    product(
        &app,
        &a,
        Spec {
            title: "Boxed Racer",
            genres: &["racing"],
            platforms: &["windows", "playstation-5"],
            price: 5999,
            physical: true,
            ..Spec::default()
        },
    )
    .await;
    product(
        &app,
        &b,
        Spec {
            title: "Atlas Strategy",
            genres: &["strategy", "puzzle"],
            platforms: &["macos"],
            price: 2999,
            ..Spec::default()
        },
    )
    .await;

    let puzzle = search(&app, json!({ "genre": "puzzle" })).await;
    let linux = search(&app, json!({ "platform": "linux" })).await;
    let physical = search(&app, json!({ "editionKind": "PHYSICAL" })).await;
    let mid = search(&app, json!({ "minPrice": 1000, "maxPrice": 6000 })).await;
    let by_b = search(&app, json!({ "publisherId": b_id })).await;
    let combined = search(&app, json!({ "genre": "puzzle", "maxPrice": 1000 })).await;
    let inverted = app
        .gql(
            None,
            LIST,
            json!({ "f": { "minPrice": 10, "maxPrice": 1 } }),
        )
        .await;

    let set = |v: Vec<String>| v.into_iter().collect::<HashSet<_>>();
    assert_eq!(
        set(puzzle),
        set(vec!["Cheap Linux Puzzle".into(), "Atlas Strategy".into()])
    );
    assert_eq!(linux, vec!["Cheap Linux Puzzle"]);
    assert_eq!(physical, vec!["Boxed Racer"]);
    assert_eq!(
        set(mid),
        set(vec!["Boxed Racer".into(), "Atlas Strategy".into()])
    );
    assert_eq!(by_b, vec!["Atlas Strategy"]);
    assert_eq!(combined, vec!["Cheap Linux Puzzle"]);
    assert_eq!(error_code(&inverted), "BAD_USER_INPUT");
}

/// Walks every page of a listing, inserting `insert` new products after the first page.
async fn walk(app: &TestApp, token: &str, sort: &str, insert: &[(&str, i64)]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut page = 0;
    loop {
        let v = app
            .gql(None, LIST, json!({ "s": sort, "first": 3, "after": after }))
            .await;
        assert_no_errors(&v);
        seen.extend(titles(&v));
        if page == 0 {
            for (title, price) in insert {
                product(
                    app,
                    token,
                    Spec {
                        title,
                        price: *price,
                        ..Spec::default()
                    },
                )
                .await;
            }
        }
        page += 1;
        if v["data"]["products"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = v["data"]["products"]["pageInfo"]["endCursor"].clone();
    }
    seen
}

#[tokio::test]
async fn cursor_pages_neither_repeat_nor_skip_when_products_are_added() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app, "Nebula").await;
    let original: Vec<String> = (0..8).map(|i| format!("Original {i}")).collect();
    for (i, t) in original.iter().enumerate() {
        product(
            &app,
            &token,
            Spec {
                title: t,
                price: 1000 + 100 * i as i64,
                ..Spec::default()
            },
        )
        .await;
    }

    let newest = walk(
        &app,
        &token,
        "NEWEST",
        &[("Newer A", 5000), ("Newer B", 5000)],
    )
    .await;
    let cheapest = walk(
        &app,
        &token,
        "PRICE_ASC",
        &[("Cheap A", 100), ("Pricey B", 9000)],
    )
    .await;

    for seen in [&newest, &cheapest] {
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
        for t in &original {
            assert!(seen.contains(t), "{t} skipped: {seen:?}");
        }
    }
    assert_eq!(newest[0], "Original 7", "newest first");
    assert!(
        !newest.contains(&"Newer A".to_owned()),
        "inserted before the first cursor: not in later pages"
    );
    assert_eq!(cheapest[0], "Original 0");
    assert!(
        cheapest.contains(&"Pricey B".to_owned()),
        "sorts after the cursor, so it appears"
    );
    assert!(
        !cheapest.contains(&"Cheap A".to_owned()),
        "sorts before the cursor, so it does not"
    );
    let wrong_sort = app
        .gql(None, LIST, json!({ "s": "PRICE_DESC", "first": 3, "after": "bmV3fDF8MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw" }))
        .await;
    assert_eq!(error_code(&wrong_sort), "BAD_USER_INPUT");
}

#[tokio::test]
async fn drafts_are_private_and_every_mutation_checks_role_and_ownership() {
    let app = TestApp::spawn().await;
    let (owner, _) = publisher(&app, "Nebula").await;
    let (other, _) = publisher(&app, "Atlas").await;
    let shopper = user(&app, "Alice").await;
    let admin = app.admin_token().await;
    let draft = app
        .gql(
            Some(&owner),
            CREATE,
            json!({ "i": { "title": "Secret Draft" } }),
        )
        .await;
    let id = draft["data"]["createProduct"]["id"].clone();
    let slug = draft["data"]["createProduct"]["slug"].clone();
    let edition = app
        .gql(Some(&owner), ADD_EDITION, json!({ "p": id, "i": { "kind": "PHYSICAL", "name": "Box", "sku": "SECRET-1", "price": { "amountMinor": 100, "currency": "EUR" }, "weightGrams": 10 } }))
        .await;
    let edition_id = edition["data"]["addEdition"]["id"].clone();
    let by_slug = "query($s: String) { product(slug: $s) { title status } }";

    let public_list = search(&app, json!({})).await;
    let public_get = app.gql(None, by_slug, json!({ "s": slug })).await;
    let owner_get = app.gql(Some(&owner), by_slug, json!({ "s": slug })).await;
    let admin_get = app.gql(Some(&admin), by_slug, json!({ "s": slug })).await;

    assert!(public_list.is_empty());
    assert_eq!(error_code(&public_get), "NOT_FOUND");
    assert_eq!(owner_get["data"]["product"]["status"], "DRAFT");
    assert_eq!(admin_get["data"]["product"]["title"], "Secret Draft");

    // Every publisher mutation on this product: (document, variables).
    let ops: Vec<(&str, Value)> = vec![
        (
            "mutation($id: UUID!) { updateProduct(id: $id, input: { title: \"Mine now\" }) { id } }",
            json!({ "id": id }),
        ),
        (PUBLISH, json!({ "id": id })),
        (
            "mutation($id: UUID!) { unlistProduct(id: $id) { id } }",
            json!({ "id": id }),
        ),
        (
            ADD_EDITION,
            json!({ "p": id, "i": { "kind": "DIGITAL", "name": "X", "sku": "HIJACK-1", "price": { "amountMinor": 1, "currency": "EUR" } } }),
        ),
        (
            "mutation($id: UUID!) { updateEdition(id: $id, input: { name: \"X\" }) { id } }",
            json!({ "id": edition_id }),
        ),
        (
            "mutation($id: UUID!) { removeEdition(id: $id) }",
            json!({ "id": edition_id }),
        ),
        (
            "mutation($id: UUID!) { setStock(editionId: $id, mode: SET, quantity: 5) { commandId } }",
            json!({ "id": edition_id }),
        ),
        (
            "mutation($id: UUID!) { removeProductImage(productId: $id, key: \"x\") { id } }",
            json!({ "id": id }),
        ),
    ];
    for (doc, vars) in &ops {
        let anonymous = app.gql(None, doc, vars.clone()).await;
        let as_user = app.gql(Some(&shopper), doc, vars.clone()).await;
        let as_admin = app.gql(Some(&admin), doc, vars.clone()).await;
        let as_other = app.gql(Some(&other), doc, vars.clone()).await;
        assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{doc}");
        assert_eq!(error_code(&as_user), "FORBIDDEN", "{doc}");
        assert_eq!(error_code(&as_admin), "FORBIDDEN", "{doc}");
        assert_eq!(error_code(&as_other), "FORBIDDEN", "{doc}");
    }
    let create_as_user = app
        .gql(Some(&shopper), CREATE, json!({ "i": { "title": "Nope" } }))
        .await;
    let moderate_as_publisher = app
        .gql(Some(&owner), "mutation($id: UUID!) { moderateProduct(id: $id, action: UNLIST, reason: \"x\") { id } }", json!({ "id": id }))
        .await;
    let unknown = app
        .gql(
            Some(&owner),
            PUBLISH,
            json!({ "id": "01a20f51-7302-7237-c732-663693eef723" }),
        )
        .await;
    let unchanged = app.gql(Some(&owner), by_slug, json!({ "s": slug })).await;

    assert_eq!(error_code(&create_as_user), "FORBIDDEN");
    assert_eq!(error_code(&moderate_as_publisher), "FORBIDDEN");
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    assert_eq!(unchanged["data"]["product"]["title"], "Secret Draft");
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM catalog.edition")
            .await,
        1
    );
}

#[tokio::test]
async fn admins_unlist_with_a_reason_the_publisher_sees_and_only_admins_restore() {
    let app = TestApp::spawn().await;
    let (owner, _) = publisher(&app, "Nebula").await;
    let admin = app.admin_token().await;
    let id = product(
        &app,
        &owner,
        Spec {
            title: "Questionable Game",
            ..Spec::default()
        },
    )
    .await;
    let moderate = "mutation($id: UUID!, $a: ModerationAction!, $r: String) { moderateProduct(id: $id, action: $a, reason: $r) { status moderationReason } }";
    let mine = "{ myProducts { edges { node { title status moderationReason } } } }";

    let no_reason = app
        .gql(Some(&admin), moderate, json!({ "id": id, "a": "UNLIST" }))
        .await;
    let unlisted = app
        .gql(
            Some(&admin),
            moderate,
            json!({ "id": id, "a": "UNLIST", "r": "Misleading screenshots" }),
        )
        .await;
    let public = search(&app, json!({})).await;
    let seen_by_owner = app.gql(Some(&owner), mine, json!({})).await;
    let republish = app.gql(Some(&owner), PUBLISH, json!({ "id": id })).await;
    let restored = app
        .gql(Some(&admin), moderate, json!({ "id": id, "a": "RESTORE" }))
        .await;
    let public_again = search(&app, json!({})).await;

    assert_eq!(error_code(&no_reason), "BAD_USER_INPUT");
    assert_eq!(unlisted["data"]["moderateProduct"]["status"], "UNLISTED");
    assert!(public.is_empty());
    let node = &seen_by_owner["data"]["myProducts"]["edges"][0]["node"];
    assert_eq!(node["status"], "UNLISTED");
    assert_eq!(node["moderationReason"], "Misleading screenshots");
    assert_eq!(error_code(&republish), "FORBIDDEN");
    assert_eq!(restored["data"]["moderateProduct"]["status"], "PUBLISHED");
    assert_eq!(
        restored["data"]["moderateProduct"]["moderationReason"],
        Value::Null
    );
    assert_eq!(public_again, vec!["Questionable Game"]);

    // Both moderations are in the audit log, with the product and the reason; the refused
    // one (no reason) is not.
    let log = app
        .gql(
            Some(&admin),
            "{ auditLog(first: 10) { edges { node { action reason actor { email } target { id label } } } } }",
            json!({}),
        )
        .await;
    let entries: Vec<(String, String, String, Value)> = log["data"]["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| &e["node"])
        .filter(|n| {
            n["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("PRODUCT_"))
        })
        .map(|n| {
            (
                n["action"].as_str().unwrap_or_default().to_owned(),
                n["target"]["id"].as_str().unwrap_or_default().to_owned(),
                n["target"]["label"].as_str().unwrap_or_default().to_owned(),
                n["reason"].clone(),
            )
        })
        .collect();
    let id = id.to_string();
    assert_eq!(
        entries,
        vec![
            (
                "PRODUCT_RESTORED".to_owned(),
                id.clone(),
                "Questionable Game".to_owned(),
                Value::Null
            ),
            (
                "PRODUCT_UNLISTED".to_owned(),
                id,
                "Questionable Game".to_owned(),
                json!("Misleading screenshots")
            ),
        ],
        "{log}"
    );
}

#[tokio::test]
async fn bad_catalog_input_names_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app, "Nebula").await;
    let first = app
        .gql(
            Some(&token),
            CREATE,
            json!({ "i": { "title": "Taken", "slug": "taken" } }),
        )
        .await;
    let id = first["data"]["createProduct"]["id"].clone();
    app.gql(Some(&token), ADD_EDITION, json!({ "p": id, "i": { "kind": "DIGITAL", "name": "Std", "sku": "TAKEN-1", "price": { "amountMinor": 100, "currency": "EUR" } } }))
        .await;
    let edition = |kind: &str, price: i64, currency: &str, sku: &str, weight: Value| json!({ "p": id, "i": { "kind": kind, "name": "E", "sku": sku, "price": { "amountMinor": price, "currency": currency }, "weightGrams": weight } });
    let cases: Vec<(&str, Value, &str)> = vec![
        (CREATE, json!({ "i": { "title": "   " } }), "title"),
        (
            CREATE,
            json!({ "i": { "title": "Again", "slug": "taken" } }),
            "slug",
        ),
        (
            CREATE,
            json!({ "i": { "title": "Bad Slug", "slug": "Bad Slug!" } }),
            "slug",
        ),
        (
            CREATE,
            json!({ "i": { "title": "Genre", "genres": ["cooking"] } }),
            "genres",
        ),
        (
            CREATE,
            json!({ "i": { "title": "Age", "ageRating": 15 } }),
            "ageRating",
        ),
        (
            ADD_EDITION,
            edition("DIGITAL", -1, "EUR", "NEW-1", Value::Null),
            "price",
        ),
        (
            ADD_EDITION,
            edition("DIGITAL", 100_000_001, "EUR", "NEW-1", Value::Null),
            "price",
        ),
        (
            ADD_EDITION,
            edition("DIGITAL", 100, "USD", "NEW-1", Value::Null),
            "currency",
        ),
        (
            ADD_EDITION,
            edition("DIGITAL", 100, "EUR", "TAKEN-1", Value::Null),
            "sku",
        ),
        (
            ADD_EDITION,
            edition("PHYSICAL", 100, "EUR", "NEW-1", Value::Null),
            "weightGrams",
        ),
        (
            ADD_EDITION,
            edition("DIGITAL", 100, "EUR", "NEW-1", json!(500)),
            "weightGrams",
        ),
    ];

    for (doc, vars, field) in cases {
        let v = app.gql(Some(&token), doc, vars).await;
        assert_eq!(error_code(&v), "BAD_USER_INPUT", "{field}: {v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field, "{v}");
    }
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM catalog.product")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM catalog.edition")
            .await,
        1
    );
}

#[tokio::test]
async fn a_page_of_fifty_products_costs_a_bounded_number_of_statements() {
    let app = TestApp::spawn().await;
    let (a, _) = publisher(&app, "Nebula").await;
    let (b, _) = publisher(&app, "Atlas").await;
    for i in 0..50 {
        let token = if i % 2 == 0 { &a } else { &b };
        let title = format!("Game {i}");
        product(
            &app,
            token,
            Spec {
                title: &title,
                physical: i % 3 == 0,
                ..Spec::default()
            },
        )
        .await;
    }
    let page = "query($n: Int) { products(first: $n) { edges { node { title publisher { name } rating { average count } priceFrom { formatted } editions { name kind price { formatted } stock } } } } }";

    let mut statements = Vec::new();
    for n in [5, 50] {
        app.statements.store(0, Ordering::SeqCst);
        let v = app.gql(None, page, json!({ "n": n })).await;
        assert_no_errors(&v);
        assert_eq!(titles(&v).len(), n as usize);
        statements.push(app.statements.load(Ordering::SeqCst));
    }

    // products + editions + publisher names + stock, whatever the page size.
    assert_eq!(statements, vec![4, 4]);
}

#[tokio::test]
async fn stock_changes_are_sent_to_fulfillment_and_stock_is_read_from_inventory() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app, "Nebula").await;
    let id = product(
        &app,
        &token,
        Spec {
            title: "Boxed",
            physical: true,
            ..Spec::default()
        },
    )
    .await;
    let page = app
        .gql(
            None,
            "query($id: UUID) { product(id: $id) { editions { id kind stock } } }",
            json!({ "id": id }),
        )
        .await;
    let editions = page["data"]["product"]["editions"]
        .as_array()
        .expect("editions")
        .clone();
    let physical = editions
        .iter()
        .find(|e| e["kind"] == "PHYSICAL")
        .expect("physical");
    let digital = editions
        .iter()
        .find(|e| e["kind"] == "DIGITAL")
        .expect("digital");
    let set_stock = "mutation($id: UUID!, $m: StockMode!, $q: Int!) { setStock(editionId: $id, mode: $m, quantity: $q) { commandId quantity } }";

    let sent = app
        .gql(
            Some(&token),
            set_stock,
            json!({ "id": physical["id"], "m": "SET", "q": 12 }),
        )
        .await;
    let on_digital = app
        .gql(
            Some(&token),
            set_stock,
            json!({ "id": digital["id"], "m": "SET", "q": 12 }),
        )
        .await;
    let negative = app
        .gql(
            Some(&token),
            set_stock,
            json!({ "id": physical["id"], "m": "SET", "q": -1 }),
        )
        .await;
    let js = async_nats::jetstream::new(app.state.nats.clone());
    let stream = js
        .get_stream(app.state.bus.stream_name("CMD"))
        .await
        .expect("stream");
    let message = stream
        .get_last_raw_message_by_subject(&app.state.bus.subject("cmd.fulfillment.adjust_stock"))
        .await
        .expect("a command was published");
    let envelope: Value = serde_json::from_slice(&message.payload).expect("json");

    assert_no_errors(&sent);
    assert_eq!(error_code(&on_digital), "BAD_USER_INPUT");
    assert_eq!(error_code(&negative), "BAD_USER_INPUT");
    assert_eq!(envelope["type"], "fulfillment.adjust_stock");
    assert_eq!(envelope["id"], sent["data"]["setStock"]["commandId"]);
    assert_eq!(envelope["data"]["edition_id"], physical["id"]);
    assert_eq!(envelope["data"]["mode"], "set");
    assert_eq!(envelope["data"]["quantity"], 12);
    assert_eq!(physical["stock"], 0, "nothing applied yet");
    assert_eq!(digital["stock"], Value::Null);

    // What the fulfillment participant will write; the product page shows what is free.
    app.state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO fulfillment.inventory (edition_id, on_hand, reserved) VALUES ('{}', 12, 3)",
            physical["id"].as_str().expect("id")
        ))
        .await
        .expect("inventory");
    let after = app
        .gql(
            None,
            "query($id: UUID) { product(id: $id) { editions { kind stock } } }",
            json!({ "id": id }),
        )
        .await;
    let stock: Vec<_> = after["data"]["product"]["editions"]
        .as_array()
        .expect("editions")
        .iter()
        .filter(|e| e["kind"] == "PHYSICAL")
        .map(|e| e["stock"].clone())
        .collect();
    assert_eq!(stock, vec![json!(9)]);
}

fn multipart(product_id: &str, filename: &str, bytes: &[u8], preflight: bool) -> Request<Body> {
    let boundary = "----storetestboundary";
    let operations = json!({
        "query": "mutation($f: Upload!, $p: UUID!) { uploadProductImage(productId: $p, kind: COVER, file: $f) { cover { key url } } }",
        "variables": { "f": null, "p": product_id },
    });
    let mut body = Vec::new();
    body.extend_from_slice(format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.f\"]}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
    ).as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = Request::post("/graphql").header(
        "content-type",
        format!("multipart/form-data; boundary={boundary}"),
    );
    if preflight {
        req = req.header("apollo-require-preflight", "true");
    }
    req.body(Body::from(body)).expect("request")
}

#[tokio::test]
async fn publishers_upload_images_and_bad_files_are_refused() {
    let app = TestApp::spawn_with(|c| c.media.max_image_bytes = 64 * 1024).await;
    let (token, _) = publisher(&app, "Nebula").await;
    let id = product(
        &app,
        &token,
        Spec {
            title: "Pictured",
            ..Spec::default()
        },
    )
    .await;
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 200]].concat();
    let auth = format!("Bearer {token}");
    let with_auth = |mut r: Request<Body>| {
        r.headers_mut()
            .insert("authorization", auth.parse().expect("header"));
        r
    };

    let (ok_status, _, ok) = app
        .send(with_auth(multipart(&id, "cover.png", &png, true)))
        .await;
    let (_, _, not_image) = app
        .send(with_auth(multipart(
            &id,
            "evil.png",
            b"<svg onload=alert(1)>",
            true,
        )))
        .await;
    let big = [b"\x89PNG\r\n\x1a\n".as_slice(), &vec![0u8; 70 * 1024]].concat();
    let (_, _, too_big) = app
        .send(with_auth(multipart(&id, "big.png", &big, true)))
        .await;
    let (no_preflight_status, _, _) = app
        .send(with_auth(multipart(&id, "cover.png", &png, false)))
        .await;

    assert_eq!(ok_status, 200);
    assert_no_errors(&ok);
    let key = ok["data"]["uploadProductImage"]["cover"]["key"]
        .as_str()
        .expect("key");
    assert!(
        key.starts_with(&format!("products/{id}/")) && key.ends_with(".png"),
        "{key}"
    );
    assert_eq!(
        ok["data"]["uploadProductImage"]["cover"]["url"],
        format!("/media/{key}")
    );
    let stored =
        std::fs::read(app.state.config.services.object_store_dir.join(key)).expect("stored");
    assert_eq!(stored, png);
    assert_eq!(error_code(&not_image), "BAD_USER_INPUT");
    assert_eq!(not_image["errors"][0]["extensions"]["field"], "file");
    assert_eq!(error_code(&too_big), "BAD_USER_INPUT");
    assert_eq!(no_preflight_status, 400);
}

#[tokio::test]
async fn one_review_per_person_keeps_the_rating_summary_exact() {
    let app = TestApp::spawn().await;
    let (owner, _) = publisher(&app, "Nebula").await;
    let alice = user(&app, "Alice").await;
    let bob = user(&app, "Bob").await;
    let id = product(
        &app,
        &owner,
        Spec {
            title: "Reviewed",
            ..Spec::default()
        },
    )
    .await;
    // Only owners review (the library context decides ownership).
    app.grant_product(&alice, &id).await;
    app.grant_product(&bob, &id).await;
    let write = "mutation($p: UUID!, $r: Int!, $b: String) { writeReview(productId: $p, rating: $r, body: $b) { rating body authorName } }";
    let summary = "query($id: UUID) { product(id: $id) { rating { average count } } reviews(productId: $id) { edges { node { rating authorName } } } }";

    app.gql(
        Some(&alice),
        write,
        json!({ "p": id, "r": 5, "b": "Great" }),
    )
    .await;
    app.gql(Some(&bob), write, json!({ "p": id, "r": 2 })).await;
    let rewrite = app
        .gql(Some(&alice), write, json!({ "p": id, "r": 3, "b": "Good" }))
        .await;
    let bad = app
        .gql(Some(&alice), write, json!({ "p": id, "r": 6 }))
        .await;
    let own = app
        .gql(Some(&owner), write, json!({ "p": id, "r": 5 }))
        .await;
    let anonymous = app.gql(None, write, json!({ "p": id, "r": 5 })).await;
    let v = app.gql(None, summary, json!({ "id": id })).await;

    assert_eq!(rewrite["data"]["writeReview"]["authorName"], "Alice");
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(error_code(&own), "FORBIDDEN");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(
        v["data"]["product"]["rating"],
        json!({ "average": 2.5, "count": 2 })
    );
    assert_eq!(
        v["data"]["reviews"]["edges"].as_array().map(Vec::len),
        Some(2)
    );

    let deleted = app
        .gql(
            Some(&bob),
            "mutation($p: UUID!) { deleteReview(productId: $p) }",
            json!({ "p": id }),
        )
        .await;
    let after = app.gql(None, summary, json!({ "id": id })).await;
    assert_eq!(deleted["data"]["deleteReview"], true);
    assert_eq!(
        after["data"]["product"]["rating"],
        json!({ "average": 3.0, "count": 1 })
    );
}

#[tokio::test]
async fn wishlists_and_facets() {
    let app = TestApp::spawn().await;
    let (owner, _) = publisher(&app, "Nebula").await;
    let alice = user(&app, "Alice").await;
    let a = product(
        &app,
        &owner,
        Spec {
            title: "Wanted",
            genres: &["rpg", "action"],
            platforms: &["linux"],
            tags: &["co-op"],
            physical: true,
            ..Spec::default()
        },
    )
    .await;
    product(
        &app,
        &owner,
        Spec {
            title: "Other",
            genres: &["rpg"],
            platforms: &["windows"],
            ..Spec::default()
        },
    )
    .await;
    let draft = app
        .gql(Some(&owner), CREATE, json!({ "i": { "title": "Hidden" } }))
        .await;
    let add = "mutation($p: UUID!) { addToWishlist(productId: $p) }";
    let list = "{ wishlist { edges { node { title } } } }";

    app.gql(Some(&alice), add, json!({ "p": a })).await;
    let twice = app.gql(Some(&alice), add, json!({ "p": a })).await;
    let hidden = app
        .gql(
            Some(&alice),
            add,
            json!({ "p": draft["data"]["createProduct"]["id"] }),
        )
        .await;
    let listed = app.gql(Some(&alice), list, json!({})).await;
    let removed = app
        .gql(
            Some(&alice),
            "mutation($p: UUID!) { removeFromWishlist(productId: $p) }",
            json!({ "p": a }),
        )
        .await;
    let empty = app.gql(Some(&alice), list, json!({})).await;
    let facets = app
        .gql(None, "{ facets { genres { value count } platforms { value count } tags { value count } editionKinds { value count } } }", json!({}))
        .await;

    assert_eq!(twice["data"]["addToWishlist"], true);
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    assert_eq!(
        listed["data"]["wishlist"]["edges"][0]["node"]["title"],
        "Wanted"
    );
    assert_eq!(removed["data"]["removeFromWishlist"], true);
    assert_eq!(empty["data"]["wishlist"]["edges"], json!([]));
    let f = &facets["data"]["facets"];
    assert_eq!(
        f["genres"],
        json!([{ "value": "rpg", "count": 2 }, { "value": "action", "count": 1 }])
    );
    assert_eq!(
        f["platforms"],
        json!([{ "value": "linux", "count": 1 }, { "value": "windows", "count": 1 }])
    );
    assert_eq!(f["tags"], json!([{ "value": "co-op", "count": 1 }]));
    assert_eq!(
        f["editionKinds"],
        json!([{ "value": "digital", "count": 2 }, { "value": "physical", "count": 1 }])
    );
}

#[tokio::test]
async fn the_demo_seed_makes_a_catalog_once() {
    let app = TestApp::spawn().await;
    // Pictures for a few products only: all 160 take a minute (`cargo xtask dev` draws them).
    api::cli::seed_demo(&app.state.config.services, Pictures::First(3))
        .await
        .expect("seed");
    api::cli::seed_demo(&app.state.config.services, Pictures::First(3))
        .await
        .expect("seed again");

    let products = app
        .scalar("SELECT count(*) AS n FROM catalog.product WHERE status = 'published'")
        .await;
    let physical = app
        .scalar(
            "SELECT count(DISTINCT product_id) AS n FROM catalog.edition WHERE kind = 'physical'",
        )
        .await;
    let publishers = app
        .scalar("SELECT count(DISTINCT publisher_id) AS n FROM catalog.product")
        .await;
    let genres = app
        .scalar("SELECT count(DISTINCT g) AS n FROM catalog.product, unnest(genres) g")
        .await;
    let page = app
        .gql(None, LIST, json!({ "first": 20, "s": "RATING" }))
        .await;

    assert_eq!(products, 160);
    assert!(physical > 20, "{physical}");
    assert_eq!(publishers, 2);
    assert!(genres >= 12, "{genres}");
    assert_eq!(titles(&page).len(), 20);
    assert_demo_pictures(&app).await;
}

/// The newest demo products have a drawn cover and screenshots (once each, though seeded twice,
/// and the second seed drew the next ones), with the smaller copies their `srcset` names, all
/// in the object store the gateway serves.
async fn assert_demo_pictures(app: &TestApp) {
    let pictured = app
        .scalar(
            "SELECT count(*) AS n FROM catalog.product \
             WHERE cover_image IS NOT NULL AND cardinality(screenshots) = 3",
        )
        .await;
    let other = app
        .scalar(
            "SELECT count(*) AS n FROM catalog.product \
             WHERE cover_image IS NOT NULL OR cardinality(screenshots) > 0",
        )
        .await;
    assert_eq!((pictured, other), (6, 6), "a cover and 3 screenshots each");
    let newest_pictured = app
        .scalar(
            "SELECT count(*) AS n FROM (SELECT cover_image FROM catalog.product \
             ORDER BY published_at DESC LIMIT 6) p WHERE cover_image IS NOT NULL",
        )
        .await;
    assert_eq!(newest_pictured, 6, "the newest products get pictures first");
    let newest = app
        .gql(None, LIST, json!({ "first": 1, "s": "NEWEST" }))
        .await["data"]["products"]["edges"][0]["node"]["id"]
        .clone();
    let v = app
        .gql(
            None,
            "query($id: UUID!) { product(id: $id) { title \
             cover { key url width height srcset } \
             screenshots { key url width height srcset } } }",
            json!({ "id": newest }),
        )
        .await;
    let p = &v["data"]["product"];
    assert!(p["title"].is_string(), "{v}");
    assert_eq!(
        (p["cover"]["width"].clone(), p["cover"]["height"].clone()),
        (json!(600), json!(900))
    );
    let shots = p["screenshots"].as_array().expect("screenshots");
    assert_eq!(shots.len(), 3);
    let dir = &app.state.config.services.object_store_dir;
    for image in std::iter::once(&p["cover"]).chain(shots) {
        let key = image["key"].as_str().expect("key");
        assert!(key.ends_with(".png"), "{key}");
        assert_eq!(image["url"], format!("/media/{key}"));
        let srcset = image["srcset"].as_str().expect("srcset");
        let mut widths = Vec::new();
        for candidate in srcset.split(", ") {
            let (url, width) = candidate.split_once(' ').expect("url and width");
            let path = url.strip_prefix("/media/").expect("a media url");
            let bytes = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            let decoded = image::load_from_memory(&bytes).expect("a picture");
            assert_eq!(format!("{}w", decoded.width()), width, "{url}");
            widths.push(decoded.width());
        }
        assert_eq!(
            widths.last().copied(),
            image["width"].as_u64().map(|w| w as u32)
        );
        assert!(widths.len() >= 2, "{srcset}");
    }
}

const MY_PRODUCTS: &str = "query($s: String, $first: Int = 20, $after: String) { myProducts(search: $s, first: $first, after: $after) { edges { node { title } } pageInfo { hasNextPage endCursor } } }";

/// The titles of a `myProducts` page, in order.
fn my_titles(v: &Value) -> Vec<String> {
    v["data"]["myProducts"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no products in {v:#}"))
        .iter()
        .map(|e| e["node"]["title"].as_str().expect("title").to_owned())
        .collect()
}

#[tokio::test]
async fn publishers_search_their_own_titles_by_any_part_in_any_case() {
    let app = TestApp::spawn().await;
    let (mine, _) = publisher(&app, "Nebula").await;
    let (theirs, _) = publisher(&app, "Atlas").await;
    for title in [
        "Star Frontier",
        "Starling 100%",
        "Dark_Star",
        "Moon 100 Base",
        "DarkXStar",
    ] {
        let spec = Spec {
            title,
            ..Spec::default()
        };
        product(&app, &mine, spec).await;
    }
    product(
        &app,
        &theirs,
        Spec {
            title: "Star of Another",
            ..Spec::default()
        },
    )
    .await;
    let search = |s: Value, first: i64, after: Value| {
        let (app, mine) = (&app, &mine);
        async move {
            app.gql(
                Some(mine),
                MY_PRODUCTS,
                json!({ "s": s, "first": first, "after": after }),
            )
            .await
        }
    };

    let part = search(json!("sTaR"), 20, Value::Null).await;
    let percent = search(json!("100%"), 20, Value::Null).await;
    let underscore = search(json!("k_s"), 20, Value::Null).await;
    let blank = search(json!("  "), 20, Value::Null).await;
    let first_page = search(json!("star"), 2, Value::Null).await;
    let cursor = first_page["data"]["myProducts"]["pageInfo"]["endCursor"].clone();
    let second_page = search(json!("star"), 2, cursor).await;
    let too_long = search(json!("x".repeat(101)), 20, Value::Null).await;
    let anonymous = app.gql(None, MY_PRODUCTS, json!({ "s": "star" })).await;

    // Newest first; another publisher's products never show.
    assert_eq!(
        my_titles(&part),
        ["DarkXStar", "Dark_Star", "Starling 100%", "Star Frontier"]
    );
    // `%` and `_` are text, not wildcards.
    assert_eq!(my_titles(&percent), ["Starling 100%"]);
    assert_eq!(my_titles(&underscore), ["Dark_Star"]);
    assert_eq!(my_titles(&blank).len(), 5, "a blank search is no filter");
    assert_eq!(my_titles(&first_page), ["DarkXStar", "Dark_Star"]);
    assert_eq!(
        first_page["data"]["myProducts"]["pageInfo"]["hasNextPage"],
        true
    );
    assert_eq!(my_titles(&second_page), ["Starling 100%", "Star Frontier"]);
    assert_eq!(
        second_page["data"]["myProducts"]["pageInfo"]["hasNextPage"],
        false
    );
    assert_eq!(error_code(&too_long), "BAD_USER_INPUT");
    assert_eq!(too_long["errors"][0]["extensions"]["field"], "search");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

const STOCK_COMMAND: &str = "query($id: UUID!) { stockCommand(commandId: $id) }";

#[tokio::test]
async fn a_publisher_follows_their_stock_command_until_fulfillment_applies_it() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app, "Nebula").await;
    let (other, _) = publisher(&app, "Atlas").await;
    let boxed = app
        .create_product(
            &token,
            json!({ "title": "Boxed", "genres": ["action"], "platforms": ["windows"] }),
            &[physical("Box", 4999, 900)],
            true,
        )
        .await;
    let set_stock = "mutation($id: UUID!, $q: Int!, $k: String) { setStock(editionId: $id, mode: SET, quantity: $q, idempotencyKey: $k) { commandId } }";
    let sent = app
        .gql(
            Some(&token),
            set_stock,
            json!({ "id": boxed.editions[0], "q": 7, "k": "stock-1" }),
        )
        .await;
    assert_no_errors(&sent);
    let command = sent["data"]["setStock"]["commandId"].clone();
    let state = |token: String, id: Value| {
        let app = &app;
        async move {
            app.gql(Some(&token), STOCK_COMMAND, json!({ "id": id }))
                .await
        }
    };

    let before = state(token.clone(), command.clone()).await;
    let by_other = state(other.clone(), command.clone()).await;
    let unknown = state(token.clone(), json!(uuid::Uuid::now_v7())).await;
    let user_token = user(&app, "Shopper").await;
    let by_user = state(user_token, command.clone()).await;
    let _fulfillment = {
        let rt = app.saga_runtime(
            app.state.db.clone(),
            std::sync::Arc::new(saga::infra::provider::Sandbox::default()),
            saga_settings(),
        );
        run_participants(&rt, &[saga::Participant::Fulfillment]).await
    };
    wait_until("the stock command to be applied", || {
        let (token, command) = (token.clone(), command.clone());
        let state = &state;
        async move {
            let v = state(token, command).await;
            (v["data"]["stockCommand"] == "APPLIED").then_some(())
        }
    })
    .await;
    let on_hand: i64 = app
        .one(
            &format!(
                "SELECT on_hand::int8 AS n FROM fulfillment.inventory WHERE edition_id = '{}'",
                boxed.editions[0]
            ),
            "n",
        )
        .await;
    // A retry with the same key is the same command, already applied.
    let retried = app
        .gql(
            Some(&token),
            set_stock,
            json!({ "id": boxed.editions[0], "q": 7, "k": "stock-1" }),
        )
        .await;

    assert_eq!(before["data"]["stockCommand"], "PENDING");
    assert_eq!(error_code(&by_other), "NOT_FOUND");
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    assert_eq!(error_code(&by_user), "FORBIDDEN");
    assert_eq!(on_hand, 7);
    assert_eq!(retried["data"]["setStock"]["commandId"], command);
    let again = state(token.clone(), command.clone()).await;
    assert_eq!(again["data"]["stockCommand"], "APPLIED");
}

#[tokio::test]
async fn a_stock_command_fulfillment_gave_up_on_is_failed_until_replayed() {
    let app = TestApp::spawn().await;
    let (token, _) = publisher(&app, "Nebula").await;
    let boxed = app
        .create_product(
            &token,
            json!({ "title": "Boxed", "genres": ["action"], "platforms": ["windows"] }),
            &[physical("Box", 4999, 900)],
            true,
        )
        .await;
    let sent = app
        .gql(
            Some(&token),
            "mutation($id: UUID!) { setStock(editionId: $id, mode: ADD, quantity: 3) { commandId } }",
            json!({ "id": boxed.editions[0] }),
        )
        .await;
    assert_no_errors(&sent);
    let command = sent["data"]["setStock"]["commandId"]
        .as_str()
        .expect("command id")
        .to_owned();
    // What the consumer writes when it gives up on a message (no participant runs here).
    let dead_letter = |replayed: &str| {
        format!(
            "INSERT INTO fulfillment.dead_letter (id, message_id, subject, kind, payload, error, deliveries, replayed_at) \
             VALUES ('{}', '{command}', 'cmd.fulfillment.adjust_stock', 'fulfillment.adjust_stock', '{{}}', 'poison', 1, {replayed})",
            uuid::Uuid::now_v7()
        )
    };

    app.state
        .db
        .execute_unprepared(&dead_letter("NULL"))
        .await
        .expect("dead letter");
    let failed = app
        .gql(Some(&token), STOCK_COMMAND, json!({ "id": command }))
        .await;
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE fulfillment.dead_letter SET replayed_at = now() WHERE message_id = '{command}'"
        ))
        .await
        .expect("replayed");
    let replayed = app
        .gql(Some(&token), STOCK_COMMAND, json!({ "id": command }))
        .await;

    assert_eq!(failed["data"]["stockCommand"], "FAILED");
    assert_eq!(replayed["data"]["stockCommand"], "PENDING");
}
