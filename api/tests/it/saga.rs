//! The order saga end to end, in-process: the api schema plus every participant on the test's
//! runtime, database, NATS prefix and Redis namespace. After each test the ledger invariants
//! are checked (sum of entries = balance, at most one debit per order, no grant without a
//! debit).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::identity::Role;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const PLACE: &str = "mutation($l: [OrderLineInput!]!, $k: String!) { placeOrder(lines: $l, idempotencyKey: $k) { id status } }";
pub(crate) const ORDER: &str = "query($id: UUID!) { order(id: $id) { id status cancelReason total { amountMinor } lines { productTitle quantity unitPrice { amountMinor } } timeline { step participant detail } } }";
const TOP_UP: &str = "mutation($a: Int!, $m: String!, $k: String!) { topUpWallet(amount: $a, paymentMethod: $m, idempotencyKey: $k) { id status } }";
pub(crate) const WALLET: &str = "{ wallet { balance { amountMinor } currency version entries(first: 10) { edges { node { kind amount { amountMinor } balanceAfter { amountMinor } } } } } }";
pub(crate) const LIBRARY: &str = "{ library(first: 50) { edges { node { licenseKey grantedAt product { title } edition { name } } } } }";
pub(crate) const NOTIFICATIONS: &str =
    "{ notifications(first: 20) { edges { node { kind title read } } } unreadNotificationCount }";
const DEAD_LETTERS: &str = "{ deadLetters(first: 20) { edges { node { id participant kind error deliveries replayedAt } } } }";

pub(crate) const CARD_OK: &str = "4242424242424242";
const CARD_DECLINED: &str = "4000000000000002";
const CARD_FLAKY: &str = "4000000000000119";

static SKU: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) struct Shop {
    pub(crate) app: TestApp,
    _saga: SagaHandle,
    pub(crate) publisher: String,
    pub(crate) buyer: String,
}

/// An app with the saga running, a publisher and a buyer (tokens).
pub(crate) async fn shop(settings: saga::Settings) -> Shop {
    shop_with(settings, |_| {}).await
}

/// Like [`shop`], with a tweak of the api's configuration.
pub(crate) async fn shop_with(
    settings: saga::Settings,
    tweak: impl FnOnce(&mut api::infra::config::Config),
) -> Shop {
    let app = TestApp::spawn_with(|c| {
        c.services.database_max_connections = 12;
        tweak(c);
    })
    .await;
    let saga = app.start_saga(settings).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (publisher, _) = app
        .staff(
            &format!("pub-{tag}@publisher.test"),
            "Nebula Games",
            Role::Publisher,
        )
        .await;
    let buyer = app
        .sign_up(&format!("buyer-{tag}@user.test"), "Buyer")
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    Shop {
        app,
        _saga: saga,
        publisher,
        buyer,
    }
}

impl Shop {
    /// A published product with one edition; returns (product id, edition id).
    pub(crate) async fn product(
        &self,
        title: &str,
        price: i64,
        physical: bool,
    ) -> (String, String) {
        let app = &self.app;
        let v = app
            .gql(
                Some(&self.publisher),
                "mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }",
                json!({ "i": { "title": title, "genres": ["action"], "platforms": ["windows"] } }),
            )
            .await;
        assert_no_errors(&v);
        let id = v["data"]["createProduct"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let n = SKU.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let input = if physical {
            json!({ "kind": "PHYSICAL", "name": "Box", "sku": format!("SAGA-P{n}"),
                    "price": { "amountMinor": price, "currency": "EUR" }, "weightGrams": 500 })
        } else {
            json!({ "kind": "DIGITAL", "name": "Standard", "sku": format!("SAGA-D{n}"),
                    "price": { "amountMinor": price, "currency": "EUR" } })
        };
        let e = app
            .gql(
                Some(&self.publisher),
                "mutation($p: UUID!, $i: EditionInput!) { addEdition(productId: $p, input: $i) { id } }",
                json!({ "p": id, "i": input }),
            )
            .await;
        assert_no_errors(&e);
        let edition = e["data"]["addEdition"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let p = app
            .gql(
                Some(&self.publisher),
                "mutation($id: UUID!) { publishProduct(id: $id) { status } }",
                json!({ "id": id }),
            )
            .await;
        assert_no_errors(&p);
        (id, edition)
    }

    pub(crate) async fn place(&self, token: &str, editions: &[&str], key: &str) -> Value {
        let lines: Vec<Value> = editions
            .iter()
            .map(|e| json!({ "editionId": e, "quantity": 1 }))
            .collect();
        self.app
            .gql(Some(token), PLACE, json!({ "l": lines, "k": key }))
            .await
    }

    pub(crate) async fn top_up(&self, amount: i64, card: &str, key: &str) -> Value {
        self.app
            .gql(
                Some(&self.buyer),
                TOP_UP,
                json!({ "a": amount, "m": card, "k": key }),
            )
            .await
    }

    pub(crate) async fn balance(&self) -> i64 {
        let v = self.app.gql(Some(&self.buyer), WALLET, json!({})).await;
        assert_no_errors(&v);
        v["data"]["wallet"]["balance"]["amountMinor"]
            .as_i64()
            .expect("balance")
    }

    /// Waits until the order reaches a final status; returns the order.
    pub(crate) async fn settled(&self, token: &str, id: &str) -> Value {
        wait_for(&format!("order {id} to settle"), || async {
            let v = self.app.gql(Some(token), ORDER, json!({ "id": id })).await;
            let status = v["data"]["order"]["status"].as_str().unwrap_or("");
            (status == "COMPLETED" || status == "CANCELLED").then(|| v["data"]["order"].clone())
        })
        .await
    }

    async fn sql_i64(&self, sql: &str) -> i64 {
        self.app.scalar(sql).await
    }
}

/// Polls `f` (every 50 ms, up to 20 s) until it gives a value.
pub(crate) async fn wait_for<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets in-flight messages settle (for checks that something did *not* happen).
pub(crate) async fn quiesce() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// The ledger invariants, over every wallet of the test's database.
pub(crate) async fn check_invariants(app: &TestApp) {
    let broken_sums = app.scalar("SELECT count(*)::bigint AS n FROM billing.wallet w WHERE w.balance_minor <> \
         (SELECT coalesce(sum(amount_minor), 0) FROM billing.ledger_entry e WHERE e.account_id = w.account_id) \
         OR w.version <> (SELECT count(*) FROM billing.ledger_entry e WHERE e.account_id = w.account_id)",
    )
    .await;
    assert_eq!(
        broken_sums, 0,
        "a wallet's balance is not the sum of its ledger"
    );
    let double_debits = app.scalar("SELECT count(*)::bigint AS n FROM (SELECT reference FROM billing.ledger_entry WHERE kind = 'debit' \
         GROUP BY reference HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(double_debits, 0, "an order was debited twice");
    let unpaid_grants = app.scalar("SELECT count(*)::bigint AS n FROM library.entitlement g WHERE g.order_id IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM billing.ledger_entry e WHERE e.kind = 'debit' AND e.reference = g.order_id)",
    )
    .await;
    assert_eq!(
        unpaid_grants, 0,
        "an entitlement was granted without a debit"
    );
    let negative = app
        .scalar("SELECT count(*)::bigint AS n FROM billing.wallet WHERE balance_minor < 0")
        .await;
    assert_eq!(negative, 0);
    let twice_alive = app.scalar(r#"SELECT count(*)::bigint AS n FROM (SELECT o.account_id, l.product_id FROM ordering."order" o
           JOIN ordering.order_line l ON l.order_id = o.id WHERE o.status NOT IN ('CANCELLED', 'REFUNDED') AND l.kind = 'digital'
           GROUP BY 1, 2 HAVING count(*) > 1) d"#,
    )
    .await;
    assert_eq!(
        twice_alive, 0,
        "a buyer has a digital product in two orders that are not cancelled"
    );
    let owned_twice = app
        .scalar(
            "SELECT count(*)::bigint AS n FROM (SELECT 1 FROM library.entitlement g \
         JOIN catalog.edition e ON e.id = g.edition_id WHERE e.kind = 'digital' AND g.revoked_at IS NULL \
         GROUP BY g.account_id, g.product_id HAVING count(*) > 1) d",
        )
        .await;
    assert_eq!(
        owned_twice, 0,
        "a buyer was granted a digital product twice"
    );
}

pub(crate) fn kinds(v: &Value) -> Vec<String> {
    v["data"]["notifications"]["edges"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["node"]["kind"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_paid_digital_order_completes_into_the_library() {
    let shop = shop(saga_settings()).await;
    let (game, game_ed) = shop.product("Star Courier", 1999, false).await;
    let (_, tool_ed) = shop.product("Pixel Forge", 999, false).await;
    let app = &shop.app;

    let t = shop.top_up(5000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    wait_for("the top-up", || async {
        (shop.balance().await == 5000).then_some(())
    })
    .await;
    let placed = shop
        .place(&shop.buyer, &[&game_ed, &tool_ed], "order-1")
        .await;
    assert_no_errors(&placed);
    assert_eq!(placed["data"]["placeOrder"]["status"], "PLACED");
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let order = shop.settled(&shop.buyer, &id).await;
    let again = shop.place(&shop.buyer, &[&game_ed], "order-2").await;
    let review = app
        .gql(
            Some(&shop.buyer),
            "mutation($p: UUID!) { writeReview(productId: $p, rating: 5) { rating } }",
            json!({ "p": game }),
        )
        .await;
    let owns = app
        .gql(
            Some(&shop.buyer),
            "query($p: UUID!) { ownsProduct(productId: $p) }",
            json!({ "p": game }),
        )
        .await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    let wallet = app.gql(Some(&shop.buyer), WALLET, json!({})).await;
    let notes = wait_for("two notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        (kinds(&v).len() == 2).then_some(v)
    })
    .await;
    let sales = wait_for("the sale notification", || async {
        let v = app
            .gql(Some(&shop.publisher), NOTIFICATIONS, json!({}))
            .await;
        (kinds(&v) == ["SALE"]).then_some(v)
    })
    .await;
    let marked = app
        .gql(
            Some(&shop.buyer),
            "mutation { markNotificationsRead }",
            json!({}),
        )
        .await;
    let unread_after = app
        .gql(Some(&shop.buyer), "{ unreadNotificationCount }", json!({}))
        .await;

    assert_eq!(order["status"], "COMPLETED", "{order:#}");
    assert_eq!(order["total"]["amountMinor"], 2998);
    let steps: Vec<&str> = order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    assert_eq!(
        steps,
        ["PLACED", "PAYMENT_CAPTURED", "ITEMS_GRANTED", "COMPLETED"]
    );
    assert_eq!(error_code(&again), "CONFLICT");
    assert_no_errors(&review);
    assert_eq!(owns["data"]["ownsProduct"], true);
    let items = library["data"]["library"]["edges"]
        .as_array()
        .expect("items");
    assert_eq!(items.len(), 2);
    let keys: HashSet<&str> = items
        .iter()
        .map(|i| i["node"]["licenseKey"].as_str().expect("key"))
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| domain::library::is_license_key(k)),
        "{keys:?}"
    );
    assert_eq!(wallet["data"]["wallet"]["balance"]["amountMinor"], 2002);
    assert_eq!(wallet["data"]["wallet"]["version"], 2);
    assert_eq!(
        wallet["data"]["wallet"]["entries"]["edges"][0]["node"]["amount"]["amountMinor"],
        -2998
    );
    let mut buyer_kinds = kinds(&notes);
    buyer_kinds.sort();
    assert_eq!(buyer_kinds, ["ORDER_COMPLETED", "WALLET_CREDITED"]);
    assert_eq!(notes["data"]["unreadNotificationCount"], 2);
    assert_eq!(sales["data"]["unreadNotificationCount"], 1);
    assert_eq!(marked["data"]["markNotificationsRead"], true);
    assert_eq!(unread_after["data"]["unreadNotificationCount"], 0);
    wait_for("notifications marked read", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        v["data"]["notifications"]["edges"]
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["node"]["read"] == true))
            .then_some(())
    })
    .await;
    check_invariants(app).await;
}

#[tokio::test]
async fn insufficient_funds_cancel_the_order_and_charge_nothing() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Deep Space", 4999, false).await;
    let app = &shop.app;

    let t = shop.top_up(1000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    wait_for("the top-up", || async {
        (shop.balance().await == 1000).then_some(())
    })
    .await;
    let placed = shop.place(&shop.buyer, &[&ed], "order-1").await;
    assert_no_errors(&placed);
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let order = shop.settled(&shop.buyer, &id).await;
    let notes = wait_for("two notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        (kinds(&v).len() == 2).then_some(v)
    })
    .await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancelReason"], "INSUFFICIENT_FUNDS");
    let steps: Vec<&str> = order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["step"].as_str().expect("step"))
        .collect();
    assert_eq!(steps, ["PLACED", "PAYMENT_DECLINED", "CANCELLED"]);
    assert_eq!(shop.balance().await, 1000);
    assert!(kinds(&notes).contains(&"ORDER_CANCELLED".to_owned()));
    assert_eq!(library["data"]["library"]["edges"], json!([]));
    check_invariants(app).await;
}

#[tokio::test]
async fn bad_input_and_duplicates_publish_nothing_new() {
    let shop = shop(saga_settings()).await;
    let (digital_product, digital) = shop.product("Mono", 500, false).await;
    let (_, physical) = shop.product("Boxed", 500, true).await;
    let app = &shop.app;
    let other = app.sign_up("other@user.test", "Other").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();

    let first = shop.place(&shop.buyer, &[&digital], "dup").await;
    let replay = shop.place(&shop.buyer, &[&digital], "dup").await;
    let other_input = shop.place(&shop.buyer, &[&physical], "dup").await;
    let unknown = shop
        .place(&shop.buyer, &[&uuid::Uuid::new_v4().to_string()], "k1")
        .await;
    let zero = app
        .gql(
            Some(&shop.buyer),
            PLACE,
            json!({ "l": [{ "editionId": digital, "quantity": 0 }], "k": "k2" }),
        )
        .await;
    let two_digital = app
        .gql(
            Some(&shop.buyer),
            PLACE,
            json!({ "l": [{ "editionId": digital, "quantity": 2 }], "k": "k3" }),
        )
        .await;
    let absurd = app
        .gql(
            Some(&shop.buyer),
            PLACE,
            json!({ "l": [{ "editionId": physical, "quantity": 1000000 }], "k": "k4" }),
        )
        .await;
    let boxed = shop.place(&shop.buyer, &[&physical], "k5").await;
    let anonymous = app
        .gql(
            None,
            PLACE,
            json!({ "l": [{ "editionId": digital, "quantity": 1 }], "k": "k6" }),
        )
        .await;
    let id = first["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    shop.settled(&shop.buyer, &id).await;
    let foreign = app.gql(Some(&other), ORDER, json!({ "id": id })).await;
    let too_small = shop.top_up(499, CARD_OK, "t1").await;
    let too_big = shop.top_up(50_001, CARD_OK, "t2").await;
    let declined = shop.top_up(2000, CARD_DECLINED, "t3").await;
    let declined_id = declined["data"]["topUpWallet"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let declined_status = wait_for("the declined top-up", || async {
        let v = app
            .gql(
                Some(&shop.buyer),
                "query($id: UUID!) { topUp(id: $id) { status reason } }",
                json!({ "id": declined_id }),
            )
            .await;
        (v["data"]["topUp"]["status"] == "DECLINED").then_some(v)
    })
    .await;
    let not_owner_review = app
        .gql(
            Some(&shop.buyer),
            "mutation($p: UUID!) { writeReview(productId: $p, rating: 4) { rating } }",
            json!({ "p": digital_product }),
        )
        .await;
    quiesce().await;

    assert_no_errors(&first);
    assert_eq!(error_code(&not_owner_review), "FORBIDDEN");
    assert_eq!(first, replay);
    assert_eq!(error_code(&other_input), "CONFLICT");
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    assert_eq!(error_code(&zero), "BAD_USER_INPUT");
    assert_eq!(error_code(&two_digital), "BAD_USER_INPUT");
    assert_eq!(error_code(&absurd), "BAD_USER_INPUT");
    assert_eq!(error_code(&boxed), "BAD_USER_INPUT");
    assert!(
        boxed["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("physical")),
        "{boxed:#}"
    );
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert_eq!(error_code(&too_small), "BAD_USER_INPUT");
    assert_eq!(error_code(&too_big), "BAD_USER_INPUT");
    assert_eq!(declined_status["data"]["topUp"]["reason"], "CARD_DECLINED");
    assert_eq!(
        shop.sql_i64(r#"SELECT count(*)::bigint AS n FROM ordering."order""#)
            .await,
        1
    );
    assert_eq!(shop.balance().await, 0);
    check_invariants(app).await;
}

/// The same buyer orders the same product N times at once (different idempotency keys, money
/// for all of them): ordering's claim on (buyer, product) lets exactly one through; the others
/// are cancelled before any payment. A cancelled order gives its claim back.
///
/// Through `placeOrder` the api may already refuse late requests (`CONFLICT`, the read side
/// sees the first order's entitlement); the same burst as raw `cmd.ordering.place` commands (as
/// requests that all slipped past the api's check) shows that ordering alone decides.
#[tokio::test]
async fn concurrent_orders_of_one_product_are_charged_and_granted_once() {
    const N: usize = 8;
    let shop = shop(saga_settings()).await;
    let (product, ed) = shop.product("Twin Peaks", 500, false).await;
    let (other_product, other_ed) = shop.product("Twin Lakes", 500, false).await;
    let app = &shop.app;
    let me = app.gql(Some(&shop.buyer), ME, json!({})).await;
    let account: uuid::Uuid = me["data"]["me"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("account id");

    // No money yet: cancelled, and the claim is given back.
    let broke = shop.place(&shop.buyer, &[&ed], "broke").await;
    assert_no_errors(&broke);
    let broke_id = broke["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let broke_order = shop.settled(&shop.buyer, &broke_id).await;
    let t = shop.top_up(5000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    wait_for("the top-up", || async {
        (shop.balance().await == 5000).then_some(())
    })
    .await;

    // N placeOrder at once.
    let answers = futures::future::join_all((0..N).map(|k| {
        let (shop, ed) = (&shop, &ed);
        async move { shop.place(&shop.buyer, &[ed], &format!("twin-{k}")).await }
    }))
    .await;
    // N commands at once, straight to ordering.
    let line = domain::ordering::OrderLine {
        edition_id: other_ed.parse().expect("uuid"),
        product_id: other_product.parse().expect("uuid"),
        publisher_id: scalar_uuid(
            app,
            &format!("SELECT publisher_id AS id FROM catalog.product WHERE id = '{other_product}'"),
        )
        .await,
        kind: "digital".into(),
        product_title: "Twin Lakes".into(),
        edition_name: "Standard".into(),
        unit_price_minor: 500,
        quantity: 1,
    };
    let raw_ids: Vec<uuid::Uuid> = (0..N).map(|_| uuid::Uuid::now_v7()).collect();
    let published = futures::future::join_all(raw_ids.iter().enumerate().map(|(k, id)| {
        let envelope = domain::messaging::Envelope::new(
            domain::ordering::PlaceOrder {
                order_id: *id,
                account_id: account,
                idempotency_key: format!("raw-{k}"),
                currency: domain::money::Currency::EUR,
                lines: vec![line.clone()],
                shipping_address: None,
            },
            *id,
            Some(account),
        );
        async move { app.state.bus.publish(&envelope).await }
    }))
    .await;

    let mut orders = Vec::new();
    let mut refused_at_placement = 0;
    for a in &answers {
        if a.get("errors").is_some() {
            assert_eq!(error_code(a), "CONFLICT", "{a:#}");
            refused_at_placement += 1;
            continue;
        }
        let id = a["data"]["placeOrder"]["id"].as_str().expect("id");
        orders.push(shop.settled(&shop.buyer, id).await);
    }
    let mut raw_orders = Vec::new();
    for (p, id) in published.iter().zip(&raw_ids) {
        assert!(p.is_ok(), "{p:?}");
        raw_orders.push(shop.settled(&shop.buyer, &id.to_string()).await);
    }
    quiesce().await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;

    assert_eq!(broke_order["status"], "CANCELLED");
    assert_eq!(broke_order["cancelReason"], "INSUFFICIENT_FUNDS");
    for (orders, expected_refused) in [
        (&orders, N - 1 - refused_at_placement),
        (&raw_orders, N - 1),
    ] {
        let completed = orders.iter().filter(|o| o["status"] == "COMPLETED").count();
        let refused: Vec<&Value> = orders
            .iter()
            .filter(|o| {
                o["status"] == "CANCELLED" && o["cancelReason"] == "ALREADY_OWNED_OR_PENDING"
            })
            .collect();
        assert_eq!(completed, 1, "{orders:#?}");
        assert_eq!(refused.len(), expected_refused, "{orders:#?}");
        for o in &refused {
            let steps: Vec<&str> = o["timeline"]
                .as_array()
                .expect("timeline")
                .iter()
                .map(|s| s["step"].as_str().expect("step"))
                .collect();
            assert_eq!(steps, ["PLACED", "CANCELLED"], "{o:#}");
        }
    }
    assert_eq!(shop.balance().await, 4000);
    assert_eq!(
        shop.sql_i64("SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'debit'")
            .await,
        2
    );
    for p in [&product, &other_product] {
        assert_eq!(
            shop.sql_i64(&format!(
                "SELECT count(*)::bigint AS n FROM library.entitlement WHERE product_id = '{p}'"
            ))
            .await,
            1
        );
        assert_eq!(
            shop.sql_i64(&format!(
                "SELECT count(*)::bigint AS n FROM ordering.product_claim c JOIN ordering.\"order\" o \
                 ON o.id = c.order_id WHERE c.product_id = '{p}' AND o.status = 'COMPLETED'"
            ))
            .await,
            1
        );
    }
    assert_eq!(
        library["data"]["library"]["edges"].as_array().map(Vec::len),
        Some(2)
    );
    check_invariants(app).await;
}

async fn scalar_uuid(app: &TestApp, sql: &str) -> uuid::Uuid {
    app.state
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            sql,
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<uuid::Uuid>("", "id")
        .expect("id")
}

#[tokio::test]
async fn two_hundred_keys_replayed_five_times_make_two_hundred_orders() {
    let shop = shop(saga_settings()).await;
    // No money: every order is cancelled, so the same product can be ordered 200 times.
    let (_, ed) = shop.product("Crowd", 100, false).await;
    let requests: Vec<usize> = (0..200).flat_map(|k| std::iter::repeat_n(k, 5)).collect();

    let answers: Vec<(usize, Value)> = futures::stream::iter(requests)
        .map(|k| {
            let shop = &shop;
            let ed = ed.clone();
            async move {
                (
                    k,
                    shop.place(&shop.buyer, &[&ed], &format!("key-{k}")).await,
                )
            }
        })
        .buffer_unordered(40)
        .collect()
        .await;
    let mut ids: HashMap<usize, HashSet<String>> = HashMap::new();
    for (k, v) in &answers {
        assert_no_errors(v);
        let id = v["data"]["placeOrder"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        ids.entry(*k).or_default().insert(id);
    }
    wait_for("200 settled orders", || async {
        let n = shop
            .sql_i64(
                r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'CANCELLED'"#,
            )
            .await;
        (n == 200).then_some(())
    })
    .await;
    quiesce().await;

    assert_eq!(ids.len(), 200);
    assert!(
        ids.values().all(|s| s.len() == 1),
        "a key answered two orders"
    );
    let distinct: HashSet<&String> = ids.values().flatten().collect();
    assert_eq!(distinct.len(), 200);
    assert_eq!(
        shop.sql_i64(r#"SELECT count(*)::bigint AS n FROM ordering."order""#)
            .await,
        200
    );
    assert_eq!(
        shop.sql_i64(
            "SELECT count(*)::bigint AS n FROM ordering.order_step WHERE step = 'CANCELLED'"
        )
        .await,
        200
    );
    check_invariants(&shop.app).await;
}

#[tokio::test]
async fn redelivered_and_republished_messages_change_nothing() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Echo", 1500, false).await;
    let app = &shop.app;
    let t = shop.top_up(3000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    wait_for("the top-up", || async {
        (shop.balance().await == 3000).then_some(())
    })
    .await;
    let placed = shop.place(&shop.buyer, &[&ed], "order-1").await;
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    shop.settled(&shop.buyer, &id).await;
    wait_for("the notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        (kinds(&v).len() == 2).then_some(())
    })
    .await;
    let counts = || async {
        (
            shop.sql_i64("SELECT count(*)::bigint AS n FROM billing.ledger_entry")
                .await,
            shop.sql_i64("SELECT count(*)::bigint AS n FROM library.entitlement")
                .await,
            shop.sql_i64("SELECT count(*)::bigint AS n FROM notification.notification")
                .await,
            shop.sql_i64("SELECT count(*)::bigint AS n FROM ordering.order_step")
                .await,
            shop.balance().await,
        )
    };
    let before = counts().await;

    // Every event once more, as a new JetStream message (a new Msg-Id defeats the duplicate
    // window): a redelivery as the consumers see it.
    for ctx in ["ordering", "billing", "library", "notification"] {
        let rows = app
            .state
            .db
            .query_all_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT subject, kind, payload::text AS payload FROM {ctx}.outbox"),
            ))
            .await
            .expect("outbox");
        for r in rows {
            let subject: String = r.try_get("", "subject").expect("subject");
            let kind: String = r.try_get("", "kind").expect("kind");
            let payload: String = r.try_get("", "payload").expect("payload");
            let msg_id = uuid::Uuid::new_v4().to_string();
            app.state
                .bus
                .publish_raw(domain::bus::RawMessage {
                    subject: &subject,
                    msg_id: &msg_id,
                    kind: &kind,
                    correlation_id: None,
                    trace: None,
                    replay_of: None,
                    payload: payload.into_bytes(),
                })
                .await
                .expect("publish");
        }
        // And the relay publishes its whole outbox again (as after a crash before the mark).
        app.state
            .db
            .execute_unprepared(&format!("UPDATE {ctx}.outbox SET published_at = NULL"))
            .await
            .expect("reset outbox");
    }
    wait_for("the relays to publish again", || async {
        let n = shop
            .sql_i64(
                "SELECT (SELECT count(*) FROM ordering.outbox WHERE published_at IS NULL) + \
                 (SELECT count(*) FROM billing.outbox WHERE published_at IS NULL) + \
                 (SELECT count(*) FROM library.outbox WHERE published_at IS NULL) + \
                 (SELECT count(*) FROM notification.outbox WHERE published_at IS NULL) AS n",
            )
            .await;
        (n == 0).then_some(())
    })
    .await;
    quiesce().await;
    let after = counts().await;
    let order = shop.settled(&shop.buyer, &id).await;

    assert_eq!(before, after);
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(
        shop.sql_i64("SELECT count(*)::bigint AS n FROM (SELECT 1 FROM ordering.dead_letter UNION ALL SELECT 1 FROM billing.dead_letter UNION ALL SELECT 1 FROM library.dead_letter UNION ALL SELECT 1 FROM notification.dead_letter) d").await,
        0
    );
    check_invariants(app).await;
}

#[tokio::test]
async fn poison_and_exhausted_messages_reach_the_dead_letters_and_replay() {
    let shop = shop(saga::Settings {
        max_deliver: 2,
        ..saga_settings()
    })
    .await;
    let app = &shop.app;
    let admin = app.admin_token().await;

    // Poison: not an envelope at all.
    app.state
        .bus
        .publish_raw(domain::bus::RawMessage {
            subject: "cmd.billing.top_up",
            msg_id: "poison-1",
            kind: "billing.top_up",
            correlation_id: None,
            trace: None,
            replay_of: None,
            payload: b"{ not json".to_vec(),
        })
        .await
        .expect("publish");
    // Exhausted: the flaky card fails twice, which is every delivery allowed here.
    let t = shop.top_up(2500, CARD_FLAKY, "flaky").await;
    assert_no_errors(&t);
    let letters = wait_for("two dead letters", || async {
        let v = app.gql(Some(&admin), DEAD_LETTERS, json!({})).await;
        (v["data"]["deadLetters"]["edges"].as_array().map(Vec::len) == Some(2)).then_some(v)
    })
    .await;
    let by_user = app.gql(Some(&shop.buyer), DEAD_LETTERS, json!({})).await;
    let edges = letters["data"]["deadLetters"]["edges"]
        .as_array()
        .expect("edges");
    let flaky = edges
        .iter()
        .find(|e| e["node"]["deliveries"] == 2)
        .expect("the exhausted top-up");
    let poison = edges
        .iter()
        .find(|e| e["node"]["deliveries"] == 1)
        .expect("the poison message");
    let flaky_id = flaky["node"]["id"].as_str().expect("id").to_owned();
    let balance_before = shop.balance().await;
    let replay = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { replayDeadLetter(id: $id) { id participant } }",
            json!({ "id": flaky_id }),
        )
        .await;
    wait_for("the replayed top-up", || async {
        (shop.balance().await == 2500).then_some(())
    })
    .await;
    let replayed = wait_for("the dead letter marked replayed", || async {
        let v = app.gql(Some(&admin), DEAD_LETTERS, json!({})).await;
        v["data"]["deadLetters"]["edges"].as_array().and_then(|a| {
            a.iter()
                .find(|e| {
                    e["node"]["id"] == flaky_id.as_str() && !e["node"]["replayedAt"].is_null()
                })
                .cloned()
        })
    })
    .await;

    assert_eq!(error_code(&by_user), "FORBIDDEN");
    assert_eq!(poison["node"]["participant"], "billing");
    assert!(
        poison["node"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not an envelope")),
        "{poison:#}"
    );
    assert_eq!(flaky["node"]["participant"], "billing");
    assert_eq!(balance_before, 0);
    assert_no_errors(&replay);
    assert_eq!(replayed["node"]["kind"], "billing.top_up");
    check_invariants(app).await;
}

#[tokio::test]
async fn subscriptions_push_order_updates_and_notifications() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Live", 700, false).await;
    let app = &shop.app;
    let schema = api::graphql::build_schema(app.state.clone());
    let me = app.gql(Some(&shop.buyer), ME, json!({})).await;
    let buyer = api::infra::auth::Principal {
        id: me["data"]["me"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid"),
        role: Role::User,
        name: "Buyer".into(),
    };
    // Poll the stream at once: the NATS subscription starts on the first poll.
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let mut stream = schema.execute_stream(
        async_graphql::Request::new("subscription { notificationReceived { kind title } }")
            .data(api::infra::auth::Caller::Account(buyer.clone())),
    );
    tokio::spawn(async move {
        while let Some(r) = stream.next().await {
            let _ = tx.send(r);
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let anonymous = schema
        .execute_stream(async_graphql::Request::new(
            "subscription { notificationReceived { kind } }",
        ))
        .next()
        .await
        .expect("an answer");

    let t = shop.top_up(1000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    let first = tokio::time::timeout(Duration::from_secs(20), notes.recv())
        .await
        .expect("a notification in time")
        .expect("a notification");
    let placed = shop.place(&shop.buyer, &[&ed], "order-1").await;
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut updates = schema.execute_stream(
        async_graphql::Request::new(format!(
            "subscription {{ orderUpdated(orderId: \"{id}\") {{ event order {{ status }} }} }}"
        ))
        .data(api::infra::auth::Caller::Account(buyer)),
    );
    let mut events = Vec::new();
    loop {
        let u = tokio::time::timeout(Duration::from_secs(20), updates.next())
            .await
            .expect("an update in time")
            .expect("an update");
        let v = u.data.into_json().expect("json");
        events.push(
            v["orderUpdated"]["event"]
                .as_str()
                .expect("event")
                .to_owned(),
        );
        if v["orderUpdated"]["order"]["status"] == "COMPLETED" {
            break;
        }
    }

    assert!(
        anonymous
            .errors
            .first()
            .is_some_and(|e| e.message.contains("sign in"))
    );
    let first = first.data.into_json().expect("json");
    assert_eq!(first["notificationReceived"]["kind"], "WALLET_CREDITED");
    assert_eq!(
        events.first().map(String::as_str),
        Some("current"),
        "{events:?}"
    );
    check_invariants(app).await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame as JSON; `None` when the socket closes or 20 s pass.
async fn next_json(ws: &mut Socket) -> Option<Value> {
    use tokio_tungstenite::tungstenite::Message as Ws;
    match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
        Ok(Some(Ok(Ws::Text(t)))) => serde_json::from_str(&t).ok(),
        _ => None,
    }
}

/// The WebSocket transport: graphql-transport-ws at `/graphql/ws`, the bearer token in the
/// `connection_init` payload; a bad token there is refused.
#[tokio::test]
async fn notifications_arrive_over_the_websocket() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message as Ws;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let shop = shop(saga_settings()).await;
    let addr = shop.app.serve().await;
    let connect = |token: String| async move {
        let mut req = format!("ws://{addr}/graphql/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        ws.send(Ws::text(
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })
                .to_string(),
        ))
        .await
        .expect("init");
        ws
    };
    let mut ws = connect(shop.buyer.clone()).await;
    let ack = next_json(&mut ws).await;
    ws.send(Ws::text(
        json!({ "id": "1", "type": "subscribe",
                "payload": { "query": "subscription { notificationReceived { kind title } }" } })
        .to_string(),
    ))
    .await
    .expect("subscribe");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = shop.top_up(1500, CARD_OK, "ws-top-up").await;
    assert_no_errors(&t);
    let pushed = next_json(&mut ws).await;
    let mut bad = connect("not-a-token".into()).await;
    let refused = next_json(&mut bad).await;

    assert_eq!(ack.expect("an ack")["type"], "connection_ack");
    let pushed = pushed.expect("a notification");
    assert_eq!(pushed["type"], "next", "{pushed:#}");
    assert_eq!(
        pushed["payload"]["data"]["notificationReceived"]["kind"],
        "WALLET_CREDITED"
    );
    assert!(
        refused.is_none_or(|v| v["type"] != "connection_ack"),
        "a bad token was accepted"
    );
    check_invariants(&shop.app).await;
}

// ---- Physical copies (issue 5) ----

const PLACE_SHIPPED: &str = "mutation($l: [OrderLineInput!]!, $a: ShippingAddressInput, $k: String!) { placeOrder(lines: $l, shippingAddress: $a, idempotencyKey: $k) { id status } }";

fn address() -> Value {
    json!({ "name": "Ada Lovelace", "country": "de", "region": "Berlin", "city": "Berlin",
            "postalCode": "10115", "street": "Invalidenstr. 1", "phone": "+49 30 1234567" })
}

impl Shop {
    /// Sets the stock of a physical edition and waits until fulfillment applied it.
    async fn stock(&self, edition: &str, quantity: i64) {
        let v = self
            .app
            .gql(
                Some(&self.publisher),
                "mutation($e: UUID!, $q: Int!) { setStock(editionId: $e, mode: SET, quantity: $q) { commandId } }",
                json!({ "e": edition, "q": quantity }),
            )
            .await;
        assert_no_errors(&v);
        wait_for("the stock", || async {
            (self.inventory(edition).await.0 == quantity).then_some(())
        })
        .await;
    }

    /// (on hand, reserved) of an edition.
    async fn inventory(&self, edition: &str) -> (i64, i64) {
        let on_hand = self
            .sql_i64(&format!(
                "SELECT coalesce((SELECT on_hand FROM fulfillment.inventory WHERE edition_id = '{edition}'), -1)::bigint AS n"
            ))
            .await;
        let reserved = self
            .sql_i64(&format!(
                "SELECT coalesce((SELECT reserved FROM fulfillment.inventory WHERE edition_id = '{edition}'), 0)::bigint AS n"
            ))
            .await;
        (on_hand, reserved)
    }

    async fn place_shipped(
        &self,
        token: &str,
        lines: &[(&str, i32)],
        address: Option<Value>,
        key: &str,
    ) -> Value {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(e, q)| json!({ "editionId": e, "quantity": q }))
            .collect();
        self.app
            .gql(
                Some(token),
                PLACE_SHIPPED,
                json!({ "l": lines, "a": address, "k": key }),
            )
            .await
    }

    /// Waits until the order has one of `statuses`.
    async fn reaches(&self, token: &str, id: &str, statuses: &[&str]) -> Value {
        wait_for(&format!("order {id} to reach {statuses:?}"), || async {
            let v = self.app.gql(Some(token), ORDER, json!({ "id": id })).await;
            let status = v["data"]["order"]["status"].as_str().unwrap_or("");
            statuses
                .contains(&status)
                .then(|| v["data"]["order"].clone())
        })
        .await
    }
}

/// Stock invariants: nothing reserved beyond what is on hand, and `reserved` is the sum of the
/// reservations of shipments still holding stock.
async fn check_stock(app: &TestApp) {
    let broken = app.scalar("SELECT count(*)::bigint AS n FROM fulfillment.inventory i WHERE i.reserved < 0 OR i.reserved > i.on_hand \
         OR i.reserved <> (SELECT coalesce(sum(r.quantity), 0) FROM fulfillment.reservation r \
            JOIN fulfillment.shipment s ON s.order_id = r.order_id \
            WHERE r.edition_id = i.edition_id AND s.status IN ('RESERVED', 'AWAITING_SHIPMENT'))",
    )
    .await;
    assert_eq!(broken, 0, "the inventory disagrees with the reservations");
}

fn steps(order: &Value) -> Vec<String> {
    order["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|s| s["step"].as_str().expect("step").to_owned())
        .collect()
}

/// A mixed order: the box is reserved, the order paid, the digital line granted at once, and
/// the order waits for the publisher. Bad addresses and short stock are refused at placement.
#[tokio::test]
async fn a_mixed_order_reserves_pays_grants_digital_and_awaits_shipment() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Boxed Saga", 3000, true).await;
    let (_, digital) = shop.product("Soundtrack", 500, false).await;
    let app = &shop.app;
    shop.stock(&boxed, 3).await;
    let t = shop.top_up(10_000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    wait_for("the top-up", || async {
        (shop.balance().await == 10_000).then_some(())
    })
    .await;

    let no_address = shop
        .place_shipped(&shop.buyer, &[(&boxed, 1)], None, "a1")
        .await;
    let mut bad_phone = address();
    bad_phone["phone"] = json!("030 1234567");
    let bad_phone = shop
        .place_shipped(&shop.buyer, &[(&boxed, 1)], Some(bad_phone), "a2")
        .await;
    let mut bad_country = address();
    bad_country["country"] = json!("Germany");
    let bad_country = shop
        .place_shipped(&shop.buyer, &[(&boxed, 1)], Some(bad_country), "a3")
        .await;
    let address_without_box = shop
        .place_shipped(&shop.buyer, &[(&digital, 1)], Some(address()), "a4")
        .await;
    let placed = shop
        .place_shipped(
            &shop.buyer,
            &[(&boxed, 2), (&digital, 1)],
            Some(address()),
            "mixed",
        )
        .await;
    assert_no_errors(&placed);
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let order = shop
        .reaches(&shop.buyer, &id, &["AWAITING_SHIPMENT", "CANCELLED"])
        .await;
    let too_many = shop
        .place_shipped(&shop.buyer, &[(&boxed, 2)], Some(address()), "more")
        .await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    quiesce().await;

    assert_eq!(error_code(&no_address), "BAD_USER_INPUT");
    assert_eq!(
        no_address["errors"][0]["extensions"]["field"],
        "shippingAddress"
    );
    assert_eq!(error_code(&bad_phone), "BAD_USER_INPUT");
    assert_eq!(bad_phone["errors"][0]["extensions"]["field"], "phone");
    assert_eq!(bad_country["errors"][0]["extensions"]["field"], "country");
    assert_eq!(
        address_without_box["errors"][0]["extensions"]["field"],
        "shippingAddress"
    );
    assert_eq!(order["status"], "AWAITING_SHIPMENT", "{order:#}");
    assert_eq!(order["total"]["amountMinor"], 6500);
    let s = steps(&order);
    for expected in [
        "PLACED",
        "STOCK_RESERVED",
        "PAYMENT_CAPTURED",
        "ITEMS_GRANTED",
        "AWAITING_SHIPMENT",
    ] {
        assert!(s.iter().any(|x| x == expected), "{s:?}");
    }
    assert_eq!(error_code(&too_many), "OUT_OF_STOCK");
    assert_eq!(shop.inventory(&boxed).await, (3, 2));
    assert_eq!(shop.balance().await, 3500);
    // Only the digital line is in the library until the box ships.
    assert_eq!(
        library["data"]["library"]["edges"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        shop.sql_i64(&format!(
            "SELECT count(*)::bigint AS n FROM fulfillment.shipment WHERE order_id = '{id}' \
             AND status = 'AWAITING_SHIPMENT' AND address->>'country' = 'DE'"
        ))
        .await,
        1
    );
    check_invariants(app).await;
    check_stock(app).await;
}

/// A declined payment gives the reserved copies back.
#[tokio::test]
async fn a_declined_payment_releases_the_stock() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Expensive Box", 9000, true).await;
    shop.stock(&boxed, 2).await;
    let placed = shop
        .place_shipped(&shop.buyer, &[(&boxed, 2)], Some(address()), "poor")
        .await;
    assert_no_errors(&placed);
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let order = shop.settled(&shop.buyer, &id).await;
    wait_for("the release", || async {
        (shop.inventory(&boxed).await == (2, 0)).then_some(())
    })
    .await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancelReason"], "INSUFFICIENT_FUNDS");
    let s = steps(&order);
    assert_eq!(
        s,
        ["PLACED", "STOCK_RESERVED", "PAYMENT_DECLINED", "CANCELLED"]
    );
    assert_eq!(
        shop.sql_i64(&format!(
            "SELECT count(*)::bigint AS n FROM fulfillment.shipment WHERE order_id = '{id}' \
             AND status = 'RELEASED' AND release_reason = 'INSUFFICIENT_FUNDS'"
        ))
        .await,
        1
    );
    check_invariants(&shop.app).await;
    check_stock(&shop.app).await;
}

/// 64 buyers with money order one copy each of an edition with 10 in stock, all at once:
/// exactly 10 orders are reserved and paid; the others are refused (`OUT_OF_STOCK` at
/// placement, or cancelled `OUT_OF_STOCK` by the saga) and charged nothing. No overselling.
#[tokio::test]
async fn sixty_four_buyers_cannot_oversell_ten_copies() {
    const BUYERS: usize = 64;
    const STOCK: i64 = 10;
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Limited Edition", 2000, true).await;
    let app = &shop.app;
    shop.stock(&boxed, STOCK).await;
    // Accounts straight in the table (no password hashing per buyer), tokens from the api's key.
    let mut tokens = Vec::with_capacity(BUYERS);
    for n in 0..BUYERS {
        let id = uuid::Uuid::now_v7();
        let email = format!("crowd-{n}-{}@user.test", id.simple());
        app.state
            .db
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "INSERT INTO identity.account (id, email, email_normalized, display_name, role, status, password_hash, created_at, updated_at) \
                 SELECT $1, $2, $2, $3, 'user', 'active', password_hash, now(), now() FROM identity.account LIMIT 1",
                [id.into(), email.into(), format!("Buyer {n}").into()],
            ))
            .await
            .expect("account");
        let token = app
            .state
            .keys
            .issue(&api::infra::auth::Principal {
                id,
                role: Role::User,
                name: format!("Buyer {n}"),
            })
            .expect("token");
        tokens.push(token.token);
    }
    let top_ups = futures::future::join_all(tokens.iter().map(|t| {
        app.gql(
            Some(t),
            TOP_UP,
            json!({ "a": 5000, "m": CARD_OK, "k": "crowd-top-up" }),
        )
    }))
    .await;
    for t in &top_ups {
        assert_no_errors(t);
    }
    wait_for("64 top-ups", || async {
        let n = shop
            .sql_i64("SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'credit'")
            .await;
        (n == BUYERS as i64).then_some(())
    })
    .await;

    let answers = futures::future::join_all(tokens.iter().map(|t| {
        let (shop, boxed) = (&shop, &boxed);
        async move {
            shop.place_shipped(t, &[(boxed, 1)], Some(address()), "one-box")
                .await
        }
    }))
    .await;
    let mut refused_at_placement = 0;
    let mut orders = Vec::new();
    for (t, a) in tokens.iter().zip(&answers) {
        if a.get("errors").is_some() {
            assert_eq!(error_code(a), "OUT_OF_STOCK", "{a:#}");
            refused_at_placement += 1;
            continue;
        }
        let id = a["data"]["placeOrder"]["id"].as_str().expect("id");
        orders.push(
            shop.reaches(t, id, &["AWAITING_SHIPMENT", "CANCELLED"])
                .await,
        );
    }
    quiesce().await;

    let awaiting = orders
        .iter()
        .filter(|o| o["status"] == "AWAITING_SHIPMENT")
        .count();
    let out_of_stock = orders
        .iter()
        .filter(|o| o["status"] == "CANCELLED" && o["cancelReason"] == "OUT_OF_STOCK")
        .count();
    assert_eq!(awaiting, STOCK as usize, "{orders:#?}");
    assert_eq!(out_of_stock + refused_at_placement, BUYERS - STOCK as usize);
    assert_eq!(shop.inventory(&boxed).await, (STOCK, STOCK));
    assert_eq!(
        shop.sql_i64("SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'debit'")
            .await,
        STOCK
    );
    assert_eq!(
        shop.sql_i64("SELECT count(*)::bigint AS n FROM billing.wallet WHERE balance_minor = 3000")
            .await,
        STOCK
    );
    check_invariants(app).await;
    check_stock(app).await;
}

const SHIP: &str = "mutation($o: UUID!, $c: String!, $t: String!) { shipOrder(orderId: $o, carrier: $c, trackingNumber: $t) { id status } }";
const PENDING: &str = "{ pendingShipments { orderId paidAt address { name country city } lines { productTitle quantity } } }";
const SHIPMENT: &str = "query($id: UUID!) { order(id: $id) { status shipment { status carrier trackingNumber shippedAt } } }";

/// A publisher account of its own, signed in: its token.
async fn another_publisher(app: &TestApp, name: &str) -> String {
    let email = format!("pub-{}@publisher.test", uuid::Uuid::new_v4().simple());
    app.staff(&email, name, Role::Publisher).await.0
}

/// The publisher sees the order to ship, ships it (another publisher and the buyer may not),
/// the box enters the buyer's library, the order completes, the copy leaves the stock.
#[tokio::test]
async fn shipping_puts_the_box_in_the_library_and_completes_the_order() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Collector Box", 4000, true).await;
    let app = &shop.app;
    let rival = another_publisher(app, "Rival Games").await;
    shop.stock(&boxed, 2).await;
    let t = shop.top_up(5000, CARD_OK, "top-1").await;
    assert_no_errors(&t);
    wait_for("the top-up", || async {
        (shop.balance().await == 5000).then_some(())
    })
    .await;
    // The publisher's live list of orders to ship.
    let me = app.gql(Some(&shop.publisher), ME, json!({})).await;
    let publisher = api::infra::auth::Principal {
        id: me["data"]["me"]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid"),
        role: Role::Publisher,
        name: "Nebula Games".into(),
    };
    let schema = api::graphql::build_schema(app.state.clone());
    let mut feed = schema.execute_stream(
        async_graphql::Request::new("subscription { shipmentsUpdated { event orderId } }")
            .data(api::infra::auth::Caller::Account(publisher)),
    );
    let (feed_tx, mut feed_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(r) = feed.next().await {
            let _ = feed_tx.send(r.data.into_json().expect("json"));
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let placed = shop
        .place_shipped(&shop.buyer, &[(&boxed, 1)], Some(address()), "box")
        .await;
    assert_no_errors(&placed);
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    shop.reaches(&shop.buyer, &id, &["AWAITING_SHIPMENT"]).await;
    let library_before = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;

    let pending = app.gql(Some(&shop.publisher), PENDING, json!({})).await;
    let rival_pending = app.gql(Some(&rival), PENDING, json!({})).await;
    let by_rival = app
        .gql(
            Some(&rival),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "RIVAL-1" }),
        )
        .await;
    let by_buyer = app
        .gql(
            Some(&shop.buyer),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "BUYER-1" }),
        )
        .await;
    let no_tracking = app
        .gql(
            Some(&shop.publisher),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "  " }),
        )
        .await;
    let shipped = app
        .gql(
            Some(&shop.publisher),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "JJD0099887766" }),
        )
        .await;
    let order = shop.settled(&shop.buyer, &id).await;
    let again = app
        .gql(
            Some(&shop.publisher),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "JJD0099887766" }),
        )
        .await;
    let tracking = app
        .gql(Some(&shop.buyer), SHIPMENT, json!({ "id": id }))
        .await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    let pending_after = app.gql(Some(&shop.publisher), PENDING, json!({})).await;
    let mut feed_events = Vec::new();
    while feed_events.len() < 2 {
        let v = tokio::time::timeout(Duration::from_secs(20), feed_rx.recv())
            .await
            .expect("a shipment update in time")
            .expect("a shipment update");
        assert_eq!(v["shipmentsUpdated"]["orderId"], id.as_str());
        feed_events.push(
            v["shipmentsUpdated"]["event"]
                .as_str()
                .expect("event")
                .to_owned(),
        );
    }
    let dispatched_note = wait_for("the dispatch notification", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        kinds(&v)
            .contains(&"SHIPMENT_DISPATCHED".to_owned())
            .then_some(v)
    })
    .await;

    assert_no_errors(&pending);
    let p = &pending["data"]["pendingShipments"];
    assert_eq!(p.as_array().map(Vec::len), Some(1), "{pending:#}");
    assert_eq!(p[0]["orderId"], id.as_str());
    assert_eq!(p[0]["address"]["country"], "DE");
    assert_eq!(p[0]["lines"][0]["productTitle"], "Collector Box");
    assert_eq!(rival_pending["data"]["pendingShipments"], json!([]));
    assert_eq!(error_code(&by_rival), "FORBIDDEN");
    assert_eq!(error_code(&by_buyer), "FORBIDDEN");
    assert_eq!(error_code(&no_tracking), "BAD_USER_INPUT");
    assert_no_errors(&shipped);
    assert_eq!(order["status"], "COMPLETED", "{order:#}");
    let s = steps(&order);
    for expected in [
        "AWAITING_SHIPMENT",
        "SHIPPED",
        "PHYSICAL_ITEMS_GRANTED",
        "COMPLETED",
    ] {
        assert!(s.iter().any(|x| x == expected), "{s:?}");
    }
    assert_eq!(error_code(&again), "CONFLICT");
    let shipment = &tracking["data"]["order"]["shipment"];
    assert_eq!(shipment["status"], "SHIPPED");
    assert_eq!(shipment["carrier"], "DHL");
    assert_eq!(shipment["trackingNumber"], "JJD0099887766");
    assert_eq!(library_before["data"]["library"]["edges"], json!([]));
    assert_eq!(
        library["data"]["library"]["edges"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(pending_after["data"]["pendingShipments"], json!([]));
    assert_eq!(shop.inventory(&boxed).await, (1, 0));
    assert_eq!(shop.balance().await, 1000);
    assert_eq!(
        feed_events,
        [
            "fulfillment.ready_to_ship",
            "fulfillment.shipment_dispatched"
        ]
    );
    assert!(
        dispatched_note["data"]["notifications"]["edges"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["node"]["kind"] == "SHIPMENT_DISPATCHED"))
    );
    check_invariants(app).await;
    check_stock(app).await;
}

const CANCEL: &str = "mutation($o: UUID!) { cancelOrder(orderId: $o) { id } }";

impl Shop {
    /// Tops the buyer up and places a paid order awaiting shipment; returns its id.
    async fn awaiting_order(&self, lines: &[(&str, i32)], money: i64, key: &str) -> String {
        let t = self.top_up(money, CARD_OK, &format!("top-{key}")).await;
        assert_no_errors(&t);
        wait_for("the top-up", || async {
            (self.balance().await >= money).then_some(())
        })
        .await;
        let placed = self
            .place_shipped(&self.buyer, lines, Some(address()), key)
            .await;
        assert_no_errors(&placed);
        let id = placed["data"]["placeOrder"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        self.reaches(&self.buyer, &id, &["AWAITING_SHIPMENT"]).await;
        id
    }
}

/// The buyer cancels a mixed order before dispatch: stock back, one refund, the digital line
/// leaves the library, `CANCELLED`. Cancelling again is a `CONFLICT` and refunds nothing more.
#[tokio::test]
async fn cancelling_before_dispatch_refunds_once_and_restocks() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Big Box", 3000, true).await;
    let (_, digital) = shop.product("Big Soundtrack", 1000, false).await;
    let app = &shop.app;
    shop.stock(&boxed, 5).await;
    let id = shop
        .awaiting_order(&[(&boxed, 2), (&digital, 1)], 10_000, "mixed")
        .await;
    let library_before = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    let (on_hand_before, reserved_before) = shop.inventory(&boxed).await;
    let balance_before = shop.balance().await;

    let cancelled = app.gql(Some(&shop.buyer), CANCEL, json!({ "o": id })).await;
    let order = shop.settled(&shop.buyer, &id).await;
    wait_for("the refund", || async {
        (shop.balance().await == 10_000).then_some(())
    })
    .await;
    let again = app.gql(Some(&shop.buyer), CANCEL, json!({ "o": id })).await;
    let other = another_publisher(app, "Nosy").await;
    let foreign = app.gql(Some(&other), CANCEL, json!({ "o": id })).await;
    let ship_after = app
        .gql(
            Some(&shop.publisher),
            SHIP,
            json!({ "o": id, "c": "UPS", "t": "1Z999" }),
        )
        .await;
    quiesce().await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;

    assert_eq!((on_hand_before, reserved_before), (5, 2));
    assert_eq!(balance_before, 3000);
    assert_eq!(
        library_before["data"]["library"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_no_errors(&cancelled);
    assert_eq!(order["status"], "CANCELLED", "{order:#}");
    assert_eq!(order["cancelReason"], "CANCELLED_BY_BUYER");
    assert!(steps(&order).iter().any(|s| s == "PAYMENT_REFUNDED"));
    assert_eq!(error_code(&again), "CONFLICT");
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert_eq!(error_code(&ship_after), "CONFLICT");
    assert_eq!(shop.inventory(&boxed).await, (5, 0));
    assert_eq!(shop.balance().await, 10_000);
    assert_eq!(
        shop.sql_i64(&format!(
            "SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'refund' AND reference = '{id}'"
        ))
        .await,
        1
    );
    assert_eq!(library["data"]["library"]["edges"], json!([]));
    check_invariants(app).await;
    check_stock(app).await;
}

/// A cancel and a ship of the same order at the same moment: exactly one wins, the other gets
/// `CONFLICT`, and money and stock agree with the winner.
#[tokio::test]
async fn a_cancel_racing_a_ship_has_exactly_one_winner() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Race Box", 1000, true).await;
    let app = &shop.app;
    shop.stock(&boxed, 10).await;
    for round in 0..3 {
        let id = shop
            .awaiting_order(&[(&boxed, 1)], 1000, &format!("race-{round}"))
            .await;
        let (cancel, ship) = futures::join!(
            app.gql(Some(&shop.buyer), CANCEL, json!({ "o": id })),
            app.gql(
                Some(&shop.publisher),
                SHIP,
                json!({ "o": id, "c": "DHL", "t": format!("RACE{round}") }),
            ),
        );
        let order = shop.settled(&shop.buyer, &id).await;
        let cancel_won = cancel.get("errors").is_none();
        let ship_won = ship.get("errors").is_none();
        assert!(cancel_won ^ ship_won, "{cancel:#} {ship:#}");
        let loser = if cancel_won { &ship } else { &cancel };
        assert_eq!(error_code(loser), "CONFLICT");
        let refunds = shop
            .sql_i64(&format!(
                "SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'refund' AND reference = '{id}'"
            ))
            .await;
        if cancel_won {
            assert_eq!(order["status"], "CANCELLED", "{order:#}");
            assert_eq!(refunds, 1);
        } else {
            assert_eq!(order["status"], "COMPLETED", "{order:#}");
            assert_eq!(refunds, 0);
        }
    }
    quiesce().await;
    let shipped = shop
        .sql_i64("SELECT count(*)::bigint AS n FROM fulfillment.shipment WHERE status = 'SHIPPED'")
        .await;
    assert_eq!(shop.inventory(&boxed).await, (10 - shipped, 0));
    check_invariants(app).await;
    check_stock(app).await;
}

/// The shipping deadline, on an injected clock: nothing at first, a reminder to the publisher
/// at half the time, and at the deadline the order is cancelled with a full refund and the
/// copies go back to the stock. Everyone hears about it.
#[tokio::test]
async fn an_unshipped_order_is_reminded_then_cancelled_and_refunded_at_the_deadline() {
    let clock = saga::Clock::default();
    let shop = shop(saga::Settings {
        shipping_deadline: Duration::from_secs(3600),
        deadline_sweep: Duration::from_millis(100),
        clock: clock.clone(),
        ..saga_settings()
    })
    .await;
    let (_, boxed) = shop.product("Slow Box", 2500, true).await;
    let app = &shop.app;
    shop.stock(&boxed, 4).await;
    let id = shop.awaiting_order(&[(&boxed, 3)], 8000, "slow").await;
    let to_ship = wait_for("the publisher's order-to-ship notification", || async {
        let v = app
            .gql(Some(&shop.publisher), NOTIFICATIONS, json!({}))
            .await;
        kinds(&v)
            .contains(&"SHIPMENT_TO_SEND".to_owned())
            .then_some(v)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early = shop
        .sql_i64(
            "SELECT count(*)::bigint AS n FROM fulfillment.shipment WHERE reminded_at IS NOT NULL",
        )
        .await;

    clock.advance(Duration::from_secs(1801));
    let reminded = wait_for("the reminder", || async {
        let v = app
            .gql(Some(&shop.publisher), NOTIFICATIONS, json!({}))
            .await;
        kinds(&v)
            .contains(&"SHIPPING_REMINDER".to_owned())
            .then_some(v)
    })
    .await;
    let still = app.gql(Some(&shop.buyer), ORDER, json!({ "id": id })).await;

    clock.advance(Duration::from_secs(1800));
    let order = shop.settled(&shop.buyer, &id).await;
    wait_for("the refund", || async {
        (shop.balance().await == 8000).then_some(())
    })
    .await;
    let buyer_notes = wait_for("the buyer's notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        let k = kinds(&v);
        (k.contains(&"PAYMENT_REFUNDED".to_owned()) && k.contains(&"ORDER_CANCELLED".to_owned()))
            .then_some(v)
    })
    .await;
    let ship_late = app
        .gql(
            Some(&shop.publisher),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "LATE1" }),
        )
        .await;
    quiesce().await;

    assert_eq!(early, 0);
    assert_eq!(
        kinds(&to_ship)
            .iter()
            .filter(|k| *k == "SHIPMENT_TO_SEND")
            .count(),
        1
    );
    assert_eq!(
        kinds(&reminded)
            .iter()
            .filter(|k| *k == "SHIPPING_REMINDER")
            .count(),
        1
    );
    assert_eq!(still["data"]["order"]["status"], "AWAITING_SHIPMENT");
    assert_eq!(order["status"], "CANCELLED", "{order:#}");
    assert_eq!(order["cancelReason"], "SHIPPING_DEADLINE_PASSED");
    assert!(kinds(&buyer_notes).contains(&"PAYMENT_REFUNDED".to_owned()));
    assert_eq!(error_code(&ship_late), "CONFLICT");
    assert_eq!(shop.inventory(&boxed).await, (4, 0));
    assert_eq!(
        shop.sql_i64(&format!(
            "SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'refund' AND reference = '{id}'"
        ))
        .await,
        1
    );
    check_invariants(app).await;
    check_stock(app).await;
}

/// Every event of a shipped mixed order (fulfillment's included) delivered once more under a
/// new message id, and every outbox published again: nothing changes (no second reservation,
/// debit, grant or stock movement).
#[tokio::test]
async fn redelivered_physical_events_change_nothing() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Echo Box", 2000, true).await;
    let (_, digital) = shop.product("Echo Tunes", 500, false).await;
    let app = &shop.app;
    shop.stock(&boxed, 3).await;
    let id = shop
        .awaiting_order(&[(&boxed, 1), (&digital, 1)], 5000, "echo")
        .await;
    let shipped = app
        .gql(
            Some(&shop.publisher),
            SHIP,
            json!({ "o": id, "c": "DHL", "t": "ECHO1" }),
        )
        .await;
    assert_no_errors(&shipped);
    shop.settled(&shop.buyer, &id).await;
    quiesce().await;
    let counts = || async {
        (
            shop.sql_i64("SELECT count(*)::bigint AS n FROM billing.ledger_entry")
                .await,
            shop.sql_i64("SELECT count(*)::bigint AS n FROM library.entitlement")
                .await,
            shop.sql_i64("SELECT count(*)::bigint AS n FROM ordering.order_step")
                .await,
            shop.inventory(&boxed).await,
            shop.sql_i64("SELECT count(*)::bigint AS n FROM fulfillment.reservation")
                .await,
            shop.balance().await,
        )
    };
    let before = counts().await;
    for ctx in ["ordering", "billing", "fulfillment", "library"] {
        let rows = app
            .state
            .db
            .query_all_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                format!("SELECT subject, kind, payload::text AS payload FROM {ctx}.outbox"),
            ))
            .await
            .expect("outbox");
        for r in rows {
            let subject: String = r.try_get("", "subject").expect("subject");
            let kind: String = r.try_get("", "kind").expect("kind");
            let payload: String = r.try_get("", "payload").expect("payload");
            let msg_id = uuid::Uuid::new_v4().to_string();
            app.state
                .bus
                .publish_raw(domain::bus::RawMessage {
                    subject: &subject,
                    msg_id: &msg_id,
                    kind: &kind,
                    correlation_id: None,
                    trace: None,
                    replay_of: None,
                    payload: payload.into_bytes(),
                })
                .await
                .expect("publish");
        }
        app.state
            .db
            .execute_unprepared(&format!("UPDATE {ctx}.outbox SET published_at = NULL"))
            .await
            .expect("reset outbox");
    }
    quiesce().await;
    quiesce().await;
    let after = counts().await;
    let order = shop.settled(&shop.buyer, &id).await;

    assert_eq!(before, after);
    assert_eq!(before.3, (2, 0));
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(
        shop.sql_i64("SELECT count(*)::bigint AS n FROM (SELECT 1 FROM ordering.dead_letter UNION ALL SELECT 1 FROM billing.dead_letter UNION ALL SELECT 1 FROM fulfillment.dead_letter UNION ALL SELECT 1 FROM library.dead_letter) d").await,
        0
    );
    check_invariants(app).await;
    check_stock(app).await;
}

/// A message whose deliveries get no answer at all (the participant died while handling it:
/// no ack, no nak, no dead letter written) is never dropped, however many times that happens:
/// JetStream delivers it again after the ack wait, past `max_deliver`, and a participant that
/// runs again handles it; nothing reaches the dead letters.
#[tokio::test]
async fn a_message_whose_deliveries_get_no_answer_is_delivered_until_handled() {
    use async_nats::jetstream::consumer::PullConsumer;
    let app = TestApp::spawn().await;
    let rt = app.saga_runtime(
        app.state.db.clone(),
        std::sync::Arc::new(saga::infra::provider::Sandbox::default()),
        saga::Settings {
            max_deliver: 2,
            ack_wait: Duration::from_secs(1),
            ..saga_settings()
        },
    );
    // The notification participant's consumers exist, but nothing runs them: every delivery
    // is "lost in a crash".
    drop(
        saga::infra::consumer::start(&rt, saga::Participant::Notification)
            .await
            .expect("consumers"),
    );

    let cmd = domain::notification::MarkRead {
        account_id: uuid::Uuid::now_v7(),
        up_to: chrono::Utc::now(),
    };
    let env = domain::messaging::Envelope::new(cmd, uuid::Uuid::now_v7(), None);
    app.state.bus.publish(&env).await.expect("publish");
    let stream_name = app.state.bus.stream_name("CMD");
    let stream = app
        .state
        .bus
        .jetstream()
        .get_stream(&stream_name)
        .await
        .expect("stream");
    let consumer: PullConsumer = stream
        .get_consumer("notification-cmd_notification")
        .await
        .expect("consumer");
    // Twice the deliveries a failing message is allowed, each unanswered: each pull waits
    // for the ack deadline of the one before to pass.
    for delivery in 1..=4 {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(10))
            .messages()
            .await
            .expect("fetch");
        let msg = batch
            .next()
            .await
            .unwrap_or_else(|| panic!("delivery {delivery}"))
            .expect("message");
        assert_eq!(msg.info().expect("info").delivered, delivery);
    }
    // The participant runs again: the fifth delivery is handled.
    let tasks = saga::infra::consumer::start(&rt, saga::Participant::Notification)
        .await
        .expect("consumers");
    let running = tokio::spawn(futures::future::join_all(tasks));
    wait_for("the message to be handled", || async {
        let n = app
            .scalar(&format!(
                "SELECT count(*)::bigint AS n FROM notification.inbox WHERE message_id = '{}'",
                env.id
            ))
            .await;
        (n == 1).then_some(())
    })
    .await;
    assert_eq!(
        app.scalar("SELECT count(*)::bigint AS n FROM notification.dead_letter")
            .await,
        0
    );
    wait_for("the work queue to empty", || async {
        let info = stream.get_info().await.expect("info");
        (info.state.messages == 0).then_some(())
    })
    .await;
    running.abort();
}
