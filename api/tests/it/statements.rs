//! Statements per page: a page of orders or products costs the same number of SQL statements
//! whatever its size (every list field is loaded by a DataLoader for the whole page).
//!
//! The orders are real: placed through the api and carried by the saga (digital orders
//! completed, boxed ones awaiting shipment, some digital ones refunded), so every field the SPA
//! asks for has something to load. The saga is stopped before measuring, and the pool is
//! checked to be idle, so the count is exactly the statements of the one request. The admin's
//! page of orders names each buyer by e-mail: one statement for all of a page's buyers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::*;
use crate::saga::{address, order_id, shop, shop_with};

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
    let mut shop = shop(saga_settings()).await;
    let (buyer, publisher) = (shop.buyer.clone(), shop.publisher.clone());
    let app = &shop.app;
    let admin = app.admin_token().await;

    // 49 digital products and one boxed one: a catalog page of 50.
    let mut digital = Vec::new();
    for i in 0..49 {
        digital.push(shop.product(&format!("Game {i}"), 100, false).await.1);
    }
    let (_, boxed) = shop.product("Game 49", 300, true).await;
    shop.stock(&boxed, 20).await;
    shop.fund(20_000, "top").await;

    // 40 digital orders and 10 boxed ones, placed a few at a time.
    let orders: Vec<(usize, Option<String>)> = (0..DIGITAL)
        .map(|i| (i, None))
        .chain((0..BOXED).map(|i| (DIGITAL + i, Some(boxed.clone()))))
        .collect();
    let placed: Vec<(Option<String>, String)> = futures::stream::iter(orders)
        .map(|(i, boxed)| {
            let (shop, digital) = (&shop, &digital);
            async move {
                let (edition, address) = match &boxed {
                    Some(b) => (b.as_str(), Some(address())),
                    None => (digital[i].as_str(), None),
                };
                let v = shop
                    .place_shipped(&shop.buyer, &[(edition, 1)], address, &format!("order-{i}"))
                    .await;
                (boxed, order_id(&v))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    wait_until("the orders to settle", || async {
        let completed = app.scalar(r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'COMPLETED'"#)
        .await;
        let waiting = app.scalar(r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'AWAITING_SHIPMENT'"#)
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
        let refunded = app
            .scalar(
                r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'REFUNDED'"#,
            )
            .await;
        (refunded == REFUNDED as i64).then_some(())
    })
    .await;

    // Stop the saga (it shares the pool, so its statements would be counted) and check that
    // nothing else runs statements: what is counted next is the request's alone.
    shop.stop_saga();
    let app = &shop.app;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.statements.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.statements.load(Ordering::SeqCst),
        0,
        "the pool is not idle"
    );

    let sizes = [5, 50];
    let mine = measure(app, Some(&buyer), &my_orders(), "myOrders", &sizes).await;
    let every = measure(app, Some(&admin), &all_orders(), "orders", &sizes).await;
    let catalog = measure(app, None, PRODUCTS, "products", &sizes).await;
    // The buyer owns the 35 digital products not refunded; the publisher has 10 boxes to ship.
    let library = measure(app, Some(&buyer), LIBRARY, "library", &[5, 35]).await;
    let pending = measure(
        app,
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

/// The admin's orders page names each order's buyer by e-mail (`buyerEmail`): a page of orders
/// of many buyers shows each its own buyer's address, and reads them all in one statement.
#[tokio::test]
async fn a_page_of_orders_of_many_buyers_shows_each_buyers_email_in_one_statement() {
    const BUYERS: usize = 12;
    let mut shop = shop_with(saga_settings(), |c| {
        c.rates.signup_per_ip = rate(1_000, 3600);
    })
    .await;
    let app = &shop.app;
    let admin = app.admin_token().await;
    let (_, edition) = shop.product("Many Buyers", 100, false).await;

    // Each buyer places one order (with an empty wallet: it ends cancelled, but it is an order).
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut emails = std::collections::HashMap::new();
    let mut tokens = Vec::new();
    for i in 0..BUYERS {
        let email = format!("many-{i}-{tag}@user.test");
        let token = app.sign_up(&email, &format!("Buyer {i}")).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        emails.insert(app.account_id(&token).await.to_string(), email);
        order_id(&shop.place(&token, &[&edition], &format!("many-{i}")).await);
        tokens.push(token);
    }
    wait_until("every buyer's order to be stored", || async {
        let stored = app
            .scalar(r#"SELECT count(*)::bigint AS n FROM ordering."order""#)
            .await;
        (stored == BUYERS as i64).then_some(())
    })
    .await;
    // As above: the saga stopped and the pool idle, so what is counted is the request's alone.
    shop.stop_saga();
    let app = &shop.app;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.statements.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.statements.load(Ordering::SeqCst),
        0,
        "the pool is not idle"
    );

    let page = |fields: &str| {
        format!("query($n: Int!) {{ orders(first: $n) {{ nodes {{ id accountId {fields} }} }} }}")
    };
    let with_emails = measure(app, Some(&admin), &page("buyerEmail"), "orders", &[3, 12]).await;
    let without = measure(app, Some(&admin), &page(""), "orders", &[3, 12]).await;
    let v = app
        .gql(Some(&admin), &page("buyerEmail"), json!({ "n": BUYERS }))
        .await;
    let mine = app
        .gql(
            Some(&tokens[0]),
            "{ myOrders(first: 5) { nodes { id buyerEmail } } }",
            json!({}),
        )
        .await;

    assert_no_errors(&v);
    let nodes = v["data"]["orders"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), BUYERS);
    for node in nodes {
        let account = node["accountId"].as_str().expect("accountId");
        assert_eq!(
            node["buyerEmail"].as_str(),
            emails.get(account).map(String::as_str),
            "{node}"
        );
    }
    let distinct: std::collections::HashSet<_> =
        nodes.iter().map(|n| n["buyerEmail"].clone()).collect();
    assert_eq!(distinct.len(), BUYERS, "each order shows its own buyer");
    eprintln!("statements per page of 3 and 12: with e-mails {with_emails:?}, without {without:?}");
    assert_eq!(
        with_emails[0], with_emails[1],
        "the e-mails cost a statement per buyer"
    );
    assert_eq!(
        with_emails[1],
        without[1] + 1,
        "the buyers' e-mails are one statement for the page"
    );
    assert_eq!(error_code(&mine), "FORBIDDEN", "{mine}");
}
