//! Statements per page: a page of orders or products costs the same number of SQL statements
//! whatever its size (every list field is loaded by a DataLoader for the whole page).
//!
//! The orders are real: placed through the api and carried by the saga (digital orders
//! completed, boxed ones awaiting shipment, some digital ones refunded), so every field the SPA
//! asks for has something to load. The saga is stopped before measuring, and the pool is
//! checked to be idle, so the count is exactly the statements of the one request.

use std::sync::atomic::Ordering;
use std::time::Duration;

use domain::identity::Role;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every field of an order the SPA asks for, on any of its pages (orders, order, refund,
/// admin orders and timeline).
const ORDER_FIELDS: &str = "id status cancelReason accountId createdAt total { formatted } \
     lines { productTitle editionName kind quantity subtotal { formatted } } \
     shipment { status carrier trackingNumber paidAt shippedAt \
       address { name country region city postalCode street phone } } \
     refundRequest { status reason withinPolicy policyNote decisionNote createdAt decidedAt } \
     timeline { step participant detail at }";

/// The SPA's storefront page (`Products`), with the publisher and the editions (with stock)
/// its product page asks for too.
const PRODUCTS: &str = "query($n: Int!) { products(first: $n) { pageInfo { hasNextPage endCursor } \
     nodes { id slug title genres platforms priceFrom { formatted } rating { average count } \
       cover { url srcset } publisher { name } \
       editions { id kind name price { amountMinor currency formatted } stock } } } }";

/// The SPA's library page (`LibraryPage`).
const LIBRARY: &str = "query($n: Int!) { library(first: $n) { pageInfo { hasNextPage endCursor } \
     nodes { id productId licenseKey grantedAt orderId product { slug title cover { url } } \
       edition { name kind } currentBuilds { id platform versionLabel fileName sizeBytes sha256 } } } }";

/// The SPA's publisher page (`PendingShipments`).
const PENDING: &str = "query($n: Int!) { pendingShipments(first: $n) { orderId paidAt \
     address { name country region city postalCode street phone } \
     lines { productTitle editionName quantity } } }";

const PLACE: &str = "mutation($l: [OrderLineInput!]!, $a: ShippingAddressInput, $k: String!) { placeOrder(lines: $l, shippingAddress: $a, idempotencyKey: $k) { id } }";
const REQUEST_REFUND: &str =
    "mutation($o: UUID!) { requestRefund(orderId: $o, reason: \"changed my mind\") { status } }";

const DIGITAL: usize = 40;
const BOXED: usize = 10;
const REFUNDED: usize = 5;

fn my_orders() -> String {
    format!(
        "query($n: Int!) {{ myOrders(first: $n) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {ORDER_FIELDS} }} }} }}"
    )
}

fn all_orders() -> String {
    format!(
        "query($n: Int!) {{ orders(first: $n) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {ORDER_FIELDS} }} }} }}"
    )
}

/// A published product with one edition: its edition id.
async fn product(app: &TestApp, publisher: &str, i: usize, physical: bool) -> String {
    let v = app
        .gql(
            Some(publisher),
            "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }",
            json!({ "i": { "title": format!("Game {i}"), "genres": ["action"], "platforms": ["windows"] } }),
        )
        .await;
    assert_no_errors(&v);
    let id = v["data"]["createProduct"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let input = if physical {
        json!({ "kind": "PHYSICAL", "name": "Box", "sku": format!("STMT-P{i}"),
                "price": { "amountMinor": 300, "currency": "EUR" }, "weightGrams": 500 })
    } else {
        json!({ "kind": "DIGITAL", "name": "Standard", "sku": format!("STMT-D{i}"),
                "price": { "amountMinor": 100, "currency": "EUR" } })
    };
    let e = app
        .gql(
            Some(publisher),
            "mutation($p: UUID!, $i: EditionInput!) { addEdition(productId: $p, input: $i) { id } }",
            json!({ "p": id, "i": input }),
        )
        .await;
    assert_no_errors(&e);
    let p = app
        .gql(
            Some(publisher),
            "mutation($id: UUID!) { publishProduct(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_no_errors(&p);
    e["data"]["addEdition"]["id"]
        .as_str()
        .expect("edition id")
        .to_owned()
}

fn address() -> Value {
    json!({ "name": "Ada Lovelace", "country": "DE", "region": "Berlin", "city": "Berlin",
            "postalCode": "10115", "street": "Invalidenstr. 1", "phone": "+49 30 1234567" })
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar(sql).await
}

/// The statements `query` costs at each page size in `sizes` (asserting it answers a full
/// page without errors).
async fn measure(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    field: &str,
    sizes: &[i64],
) -> Vec<usize> {
    let mut out = Vec::new();
    for &n in sizes {
        app.statements.store(0, Ordering::SeqCst);
        let v = app.gql(token, query, json!({ "n": n })).await;
        let ran = app.statements.load(Ordering::SeqCst);
        assert_no_errors(&v);
        let list = &v["data"][field];
        let nodes = list.get("nodes").unwrap_or(list).as_array().expect("nodes");
        assert_eq!(nodes.len(), usize::try_from(n).expect("size"), "{field}");
        out.push(ran);
    }
    out
}

#[tokio::test]
async fn a_page_costs_the_same_statements_whatever_its_size() {
    let app = TestApp::spawn_with(|c| c.services.database_max_connections = 12).await;
    let saga = app.start_saga(saga_settings()).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (publisher, _) = app
        .staff(
            &format!("pub-{tag}@publisher.test"),
            "Nebula",
            Role::Publisher,
        )
        .await;
    let buyer = app
        .sign_up(&format!("buyer-{tag}@user.test"), "Buyer")
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let admin = app.admin_token().await;

    // 49 digital products and one boxed one: a catalog page of 50.
    let mut digital = Vec::new();
    for i in 0..49 {
        digital.push(product(&app, &publisher, i, false).await);
    }
    let boxed = product(&app, &publisher, 49, true).await;
    let stock = app
        .gql(
            Some(&publisher),
            "mutation($e: UUID!) { setStock(editionId: $e, mode: SET, quantity: 20) { commandId } }",
            json!({ "e": boxed }),
        )
        .await;
    assert_no_errors(&stock);
    let top_up = app
        .gql(
            Some(&buyer),
            "mutation { topUpWallet(amount: 20000, paymentMethod: \"4242424242424242\", idempotencyKey: \"top\") { id } }",
            json!({}),
        )
        .await;
    assert_no_errors(&top_up);
    wait_until("the stock and the top-up", || async {
        let on_hand = count(
            &app,
            &format!(
                "SELECT coalesce((SELECT on_hand FROM fulfillment.inventory WHERE edition_id = '{boxed}'), 0)::bigint AS n"
            ),
        )
        .await;
        let balance = count(
            &app,
            "SELECT coalesce(sum(balance_minor), 0)::bigint AS n FROM billing.wallet",
        )
        .await;
        (on_hand == 20 && balance == 20_000).then_some(())
    })
    .await;

    // 40 digital orders and 10 boxed ones, placed a few at a time.
    let orders: Vec<(usize, Option<String>)> = (0..DIGITAL)
        .map(|i| (i, None))
        .chain((0..BOXED).map(|i| (DIGITAL + i, Some(boxed.clone()))))
        .collect();
    let placed: Vec<(Option<String>, String)> = futures::stream::iter(orders)
        .map(|(i, boxed)| {
            let (app, buyer, digital) = (&app, &buyer, &digital);
            async move {
                let (edition, address) = match &boxed {
                    Some(b) => (b.clone(), address()),
                    None => (digital[i].clone(), Value::Null),
                };
                let v = app
                    .gql(
                        Some(buyer),
                        PLACE,
                        json!({ "l": [{ "editionId": edition, "quantity": 1 }], "a": address, "k": format!("order-{i}") }),
                    )
                    .await;
                assert_no_errors(&v);
                let id = v["data"]["placeOrder"]["id"]
                    .as_str()
                    .expect("order id")
                    .to_owned();
                (boxed, id)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    wait_until("the orders to settle", || async {
        let completed = count(
            &app,
            r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'COMPLETED'"#,
        )
        .await;
        let waiting = count(
            &app,
            r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'AWAITING_SHIPMENT'"#,
        )
        .await;
        (completed == DIGITAL as i64 && waiting == BOXED as i64).then_some(())
    })
    .await;
    // A few digital orders refunded (within the policy: approved at once).
    for (_, id) in placed.iter().filter(|(b, _)| b.is_none()).take(REFUNDED) {
        let v = app
            .gql(Some(&buyer), REQUEST_REFUND, json!({ "o": id }))
            .await;
        assert_no_errors(&v);
    }
    wait_until("the refunds", || async {
        let refunded = count(
            &app,
            r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'REFUNDED'"#,
        )
        .await;
        (refunded == REFUNDED as i64).then_some(())
    })
    .await;

    // Stop the saga (it shares the pool, so its statements would be counted) and check that
    // nothing else runs statements: what is counted next is the request's alone.
    drop(saga);
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.statements.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.statements.load(Ordering::SeqCst),
        0,
        "the pool is not idle"
    );

    let sizes = [5, 50];
    let mine = measure(&app, Some(&buyer), &my_orders(), "myOrders", &sizes).await;
    let every = measure(&app, Some(&admin), &all_orders(), "orders", &sizes).await;
    let catalog = measure(&app, None, PRODUCTS, "products", &sizes).await;
    // The buyer owns the 35 digital products not refunded; the publisher has 10 boxes to ship.
    let library = measure(&app, Some(&buyer), LIBRARY, "library", &[5, 35]).await;
    let pending = measure(
        &app,
        Some(&publisher),
        PENDING,
        "pendingShipments",
        &[2, BOXED as i64],
    )
    .await;
    eprintln!(
        "statements per page of {sizes:?}: myOrders {mine:?}, orders (admin) {every:?}, \
         products {catalog:?}; library (5, 35) {library:?}; pendingShipments (2, 10) {pending:?}"
    );

    for (what, counts) in [
        ("myOrders", &mine),
        ("orders", &every),
        ("products", &catalog),
        ("library", &library),
        ("pendingShipments", &pending),
    ] {
        assert_eq!(
            counts[0], counts[1],
            "{what}: the statements grow with the page ({counts:?})"
        );
        assert!(counts[1] <= 8, "{what}: {counts:?} statements");
    }
}
