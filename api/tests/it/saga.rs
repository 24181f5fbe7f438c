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

const PLACE: &str = "mutation($l: [OrderLineInput!]!, $k: String!) { placeOrder(lines: $l, idempotencyKey: $k) { id status } }";
const ORDER: &str = "query($id: UUID!) { order(id: $id) { id status cancelReason total { amountMinor } lines { productTitle quantity unitPrice { amountMinor } } timeline { step participant detail } } }";
const TOP_UP: &str = "mutation($a: Int!, $m: String!, $k: String!) { topUpWallet(amount: $a, paymentMethod: $m, idempotencyKey: $k) { id status } }";
const WALLET: &str = "{ wallet { balance { amountMinor } currency version entries(first: 10) { edges { node { kind amount { amountMinor } balanceAfter { amountMinor } } } } } }";
const LIBRARY: &str = "{ library(first: 50) { edges { node { licenseKey grantedAt product { title } edition { name } } } } }";
const NOTIFICATIONS: &str =
    "{ notifications(first: 20) { edges { node { kind title read } } } unreadNotificationCount }";
const DEAD_LETTERS: &str = "{ deadLetters(first: 20) { edges { node { id participant kind error deliveries replayedAt } } } }";

const CARD_OK: &str = "4242424242424242";
const CARD_DECLINED: &str = "4000000000000002";
const CARD_FLAKY: &str = "4000000000000119";

static SKU: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Shop {
    app: TestApp,
    _saga: SagaHandle,
    publisher: String,
    buyer: String,
}

/// An app with the saga running, a publisher and a buyer (tokens).
async fn shop(settings: saga::Settings) -> Shop {
    let app = TestApp::spawn_with(|c| c.services.database_max_connections = 12).await;
    let saga = app.start_saga(settings).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("pub-{tag}@publisher.test");
    let new = api::identity::NewAccount::parse(&email, PASSWORD, "Nebula Games", Role::Publisher)
        .expect("valid");
    api::identity::insert_account(&app.state.db, &app.state.hasher, new, None)
        .await
        .expect("publisher");
    let v = app.sign_in(&email, PASSWORD).await;
    assert_no_errors(&v);
    let publisher = v["data"]["signIn"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
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
    async fn product(&self, title: &str, price: i64, physical: bool) -> (String, String) {
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

    async fn place(&self, token: &str, editions: &[&str], key: &str) -> Value {
        let lines: Vec<Value> = editions
            .iter()
            .map(|e| json!({ "editionId": e, "quantity": 1 }))
            .collect();
        self.app
            .gql(Some(token), PLACE, json!({ "l": lines, "k": key }))
            .await
    }

    async fn top_up(&self, amount: i64, card: &str, key: &str) -> Value {
        self.app
            .gql(
                Some(&self.buyer),
                TOP_UP,
                json!({ "a": amount, "m": card, "k": key }),
            )
            .await
    }

    async fn balance(&self) -> i64 {
        let v = self.app.gql(Some(&self.buyer), WALLET, json!({})).await;
        assert_no_errors(&v);
        v["data"]["wallet"]["balance"]["amountMinor"]
            .as_i64()
            .expect("balance")
    }

    /// Waits until the order reaches a final status; returns the order.
    async fn settled(&self, token: &str, id: &str) -> Value {
        wait_for(&format!("order {id} to settle"), || async {
            let v = self.app.gql(Some(token), ORDER, json!({ "id": id })).await;
            let status = v["data"]["order"]["status"].as_str().unwrap_or("");
            (status == "COMPLETED" || status == "CANCELLED").then(|| v["data"]["order"].clone())
        })
        .await
    }

    async fn sql_i64(&self, sql: &str) -> i64 {
        scalar(&self.app, sql).await
    }
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    app.state
        .db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            sql,
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n")
}

/// Polls `f` (every 50 ms, up to 20 s) until it gives a value.
async fn wait_for<T, F, Fut>(what: &str, f: F) -> T
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
async fn quiesce() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// The ledger invariants, over every wallet of the test's database.
async fn check_invariants(app: &TestApp) {
    let broken_sums = scalar(
        app,
        "SELECT count(*)::bigint AS n FROM billing.wallet w WHERE w.balance_minor <> \
         (SELECT coalesce(sum(amount_minor), 0) FROM billing.ledger_entry e WHERE e.account_id = w.account_id) \
         OR w.version <> (SELECT count(*) FROM billing.ledger_entry e WHERE e.account_id = w.account_id)",
    )
    .await;
    assert_eq!(
        broken_sums, 0,
        "a wallet's balance is not the sum of its ledger"
    );
    let double_debits = scalar(
        app,
        "SELECT count(*)::bigint AS n FROM (SELECT reference FROM billing.ledger_entry WHERE kind = 'debit' \
         GROUP BY reference HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(double_debits, 0, "an order was debited twice");
    let unpaid_grants = scalar(
        app,
        "SELECT count(*)::bigint AS n FROM library.entitlement g WHERE NOT EXISTS \
         (SELECT 1 FROM billing.ledger_entry e WHERE e.kind = 'debit' AND e.reference = g.order_id)",
    )
    .await;
    assert_eq!(
        unpaid_grants, 0,
        "an entitlement was granted without a debit"
    );
    let negative = scalar(
        app,
        "SELECT count(*)::bigint AS n FROM billing.wallet WHERE balance_minor < 0",
    )
    .await;
    assert_eq!(negative, 0);
}

fn kinds(v: &Value) -> Vec<String> {
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
    let buyer = api::auth::Principal {
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
            .data(api::auth::Caller::Account(buyer.clone())),
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
        .data(api::auth::Caller::Account(buyer)),
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
