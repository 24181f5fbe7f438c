//! Refunds, publisher revenue and gift keys, end to end in-process: the api schema plus every
//! saga participant on the test's database, NATS prefix and Redis namespace.

use domain::identity::Role;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::saga::{
    LIBRARY, NOTIFICATIONS, Shop, check_invariants, kinds, outbox, publish_again, quiesce, shop,
    shop_with, steps,
};

pub(crate) const REQUEST: &str = "mutation($o: UUID!, $r: String!) { requestRefund(orderId: $o, reason: $r) { id status withinPolicy policyNote } }";
pub(crate) const DECIDE: &str = "mutation($o: UUID!, $a: Boolean!, $n: String!) { decideRefund(orderId: $o, approve: $a, note: $n) { id status decisionNote } }";
const REVENUE: &str = "{ publisherRevenue(days: 7) { gross { amountMinor } fee { amountMinor } net { amountMinor } refunded { amountMinor } sales refunds days { day net { amountMinor } sales refunds } } }";

/// A completed digital order of `price` for the shop's buyer (topped up with `money` first);
/// returns (product id, order id).
pub(crate) async fn completed_order(
    shop: &Shop,
    title: &str,
    price: i64,
    money: i64,
) -> (String, String) {
    let (product, edition) = shop.product(title, price, false).await;
    shop.fund(money, &format!("top-{title}")).await;
    let order = shop.completed(&[&edition], &format!("order-{title}")).await;
    (product, order)
}

async fn revenue(shop: &Shop) -> Value {
    let v = shop
        .app
        .gql(Some(&shop.publisher), REVENUE, json!({}))
        .await;
    assert_no_errors(&v);
    v["data"]["publisherRevenue"].clone()
}

/// Publishes every row of `ctx`'s outbox of `kind` again: once as the same envelope under a
/// new JetStream id (a redelivery), once as a new envelope (a duplicate event).
async fn republish(app: &TestApp, ctx: &str, kind: &str) -> usize {
    let rows = outbox(app, ctx, Some(kind)).await;
    for row in &rows {
        let mut fresh: Value = serde_json::from_str(&row.payload).expect("envelope");
        fresh["id"] = json!(uuid::Uuid::now_v7());
        for body in [
            row.payload.clone().into_bytes(),
            fresh.to_string().into_bytes(),
        ] {
            publish_again(app, &row.subject, kind, body).await;
        }
    }
    rows.len()
}

#[tokio::test]
async fn a_refund_inside_the_policy_revokes_credits_once_and_reverses_the_revenue() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (product, order) = completed_order(&shop, "Refundable", 1999, 5000).await;
    assert!(shop.owns(&product).await);
    assert_eq!(shop.balance().await, 5000 - 1999);
    // The sale: 1999 paid with 19 % German VAT in it (the store's country: the buyer set none),
    // so 1680 without it; 15 % fee (252), 1428 to the publisher.
    let sold = wait_until("the sale's revenue", || async {
        let r = revenue(&shop).await;
        (r["sales"] == 1).then_some(r)
    })
    .await;
    assert_eq!(sold["gross"]["amountMinor"], 1680);
    assert_eq!(sold["fee"]["amountMinor"], 252);
    assert_eq!(sold["net"]["amountMinor"], 1428);
    let days = sold["days"].as_array().expect("days");
    assert_eq!(days.len(), 7);
    assert_eq!(days[6]["net"]["amountMinor"], 1428, "today is the last day");

    // The same request twice at once (a double click): one request, approved by the policy.
    let ask = || {
        app.gql(
            Some(&shop.buyer),
            REQUEST,
            json!({ "o": order, "r": "Does not run on my machine" }),
        )
    };
    let (a, b) = tokio::join!(ask(), ask());
    assert_no_errors(&a);
    assert_no_errors(&b);
    assert_eq!(
        a["data"]["requestRefund"]["id"],
        b["data"]["requestRefund"]["id"]
    );
    assert_eq!(a["data"]["requestRefund"]["status"], "APPROVED");
    assert_eq!(a["data"]["requestRefund"]["withinPolicy"], true);

    let refunded = shop.reaches(&shop.buyer, &order, &["REFUNDED"]).await;
    let s = steps(&refunded);
    for step in [
        "COMPLETED",
        "REFUND_REQUESTED",
        "REFUND_APPROVED",
        "REFUNDED",
    ] {
        assert!(s.contains(&step.to_owned()), "{step} missing from {s:?}");
    }
    // The money is back once, the product gone from the library, its key deactivated.
    wait_until("the refund in the wallet", || async {
        (shop.balance().await == 5000).then_some(())
    })
    .await;
    assert!(!shop.owns(&product).await);
    // A revoked entitlement gets no download link.
    let link = app
        .gql(
            Some(&shop.buyer),
            "mutation($p: UUID!) { downloadLink(productId: $p, platform: \"windows\") { url } }",
            json!({ "p": product }),
        )
        .await;
    assert_eq!(error_code(&link), "FORBIDDEN");
    let lib = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    assert_eq!(lib["data"]["library"]["edges"], json!([]));
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*)::bigint AS n FROM library.entitlement WHERE order_id = '{order}' AND revoked_at IS NOT NULL"
        ))
        .await,
        1
    );
    // The publisher's revenue is reversed.
    let r = wait_until("the reversal", || async {
        let r = revenue(&shop).await;
        (r["refunds"] == 1).then_some(r)
    })
    .await;
    assert_eq!(r["net"]["amountMinor"], 0);
    assert_eq!(r["refunded"]["amountMinor"], 1428);
    assert_eq!(r["sales"], 1);
    // Buyer and publisher are told.
    wait_until("the buyer's notification", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        kinds(&v)
            .contains(&"ORDER_REFUNDED".to_owned())
            .then_some(())
    })
    .await;
    wait_until("the publisher's notification", || async {
        let v = app
            .gql(Some(&shop.publisher), NOTIFICATIONS, json!({}))
            .await;
        kinds(&v)
            .contains(&"SALE_REFUNDED".to_owned())
            .then_some(())
    })
    .await;

    // The compensation's events once more, redelivered and duplicated: nothing changes.
    let snapshot = || async {
        (
            app.scalar(
                "SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'refund'",
            )
            .await,
            app.scalar("SELECT count(*)::bigint AS n FROM billing.revenue_entry")
                .await,
            shop.balance().await,
            app.scalar("SELECT count(*)::bigint AS n FROM notification.notification")
                .await,
        )
    };
    let before = snapshot().await;
    assert_eq!(before.0, 1);
    assert_eq!(before.1, 2, "one sale and one reversal");
    assert!(republish(app, "ordering", "ordering.refund_approved").await > 0);
    assert!(republish(app, "library", "library.entitlements_revoked").await > 0);
    assert!(republish(app, "billing", "billing.payment_refunded").await > 0);
    assert!(republish(app, "ordering", "ordering.request_refund").await == 0);
    quiesce().await;
    // A duplicated request after the refund answers the same request and changes nothing.
    let again = ask().await;
    assert_no_errors(&again);
    assert_eq!(
        again["data"]["requestRefund"]["id"],
        a["data"]["requestRefund"]["id"]
    );
    quiesce().await;
    let after = snapshot().await;
    assert_eq!(before.0, after.0, "refunded twice");
    assert_eq!(before.1, after.1, "revenue reversed twice");
    assert_eq!(before.2, after.2);
    assert_eq!(
        shop.dead_letters(&["ordering", "billing", "library"]).await,
        0
    );
    check_invariants(app).await;

    // Refunded, the buyer may buy the game again.
    let edition: String = app
        .one(
            &format!("SELECT id::text AS id FROM catalog.edition WHERE product_id = '{product}'"),
            "id",
        )
        .await;
    shop.completed(&[&edition], "order-again").await;
    assert!(shop.owns(&product).await);
    check_invariants(app).await;
}

#[tokio::test]
async fn a_refund_outside_the_policy_waits_for_an_admin() {
    // A window of zero days: every request is outside the policy.
    let shop = shop_with(saga_settings(), |c| c.refund_policy.window_days = 0).await;
    let app = &shop.app;
    let admin = app.admin_token().await;
    let (product, order) = completed_order(&shop, "Late", 1500, 4000).await;
    let (denied_product, denied) = completed_order(&shop, "Later", 1000, 1000).await;
    let balance = shop.balance().await;

    let r = app
        .gql(
            Some(&shop.buyer),
            REQUEST,
            json!({ "o": order, "r": "Changed my mind" }),
        )
        .await;
    assert_no_errors(&r);
    assert_eq!(r["data"]["requestRefund"]["status"], "PENDING_REVIEW");
    assert_eq!(r["data"]["requestRefund"]["withinPolicy"], false);
    assert!(
        r["data"]["requestRefund"]["policyNote"]
            .as_str()
            .expect("note")
            .contains("0 days")
    );
    let d = app
        .gql(
            Some(&shop.buyer),
            REQUEST,
            json!({ "o": denied, "r": "Too hard" }),
        )
        .await;
    assert_no_errors(&d);
    wait_until("the buyer's notification", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        kinds(&v)
            .iter()
            .filter(|k| *k == "REFUND_REQUESTED")
            .count()
            .eq(&2)
            .then_some(())
    })
    .await;
    quiesce().await;
    // Nothing happened yet.
    assert_eq!(shop.balance().await, balance);
    assert!(shop.owns(&product).await);
    let o = shop.order(&shop.buyer, &order).await;
    assert_eq!(o["data"]["order"]["status"], "COMPLETED");

    // The review queue.
    let queue = app
        .gql(
            Some(&admin),
            "{ refundRequests(status: PENDING_REVIEW) { edges { node { orderId reason withinPolicy } } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&queue);
    let edges = queue["data"]["refundRequests"]["edges"]
        .as_array()
        .expect("edges");
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["node"]["orderId"], json!(order));
    assert_eq!(edges[0]["node"]["reason"], "Changed my mind");

    // Only admins decide.
    for token in [&shop.buyer, &shop.publisher] {
        let v = app
            .gql(
                Some(token),
                DECIDE,
                json!({ "o": order, "a": true, "n": "" }),
            )
            .await;
        assert_eq!(error_code(&v), "FORBIDDEN");
    }
    let v = app
        .gql(
            Some(&admin),
            DECIDE,
            json!({ "o": denied, "a": false, "n": "Played for 40 hours." }),
        )
        .await;
    assert_no_errors(&v);
    assert_eq!(v["data"]["decideRefund"]["status"], "DENIED");
    let v = app
        .gql(
            Some(&admin),
            DECIDE,
            json!({ "o": order, "a": true, "n": "Goodwill." }),
        )
        .await;
    assert_no_errors(&v);
    assert_eq!(v["data"]["decideRefund"]["status"], "APPROVED");

    let refunded = shop.reaches(&shop.buyer, &order, &["REFUNDED"]).await;
    assert!(steps(&refunded).contains(&"REFUND_APPROVED".to_owned()));
    wait_until("the refund in the wallet", || async {
        (shop.balance().await == balance + 1500).then_some(())
    })
    .await;
    assert!(!shop.owns(&product).await);
    wait_until("the denial's notification", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        kinds(&v)
            .contains(&"REFUND_DENIED".to_owned())
            .then_some(())
    })
    .await;
    // The denied order stays completed and owned; a decided request stays decided.
    let kept = shop.order(&shop.buyer, &denied).await;
    assert_eq!(kept["data"]["order"]["status"], "COMPLETED");
    assert!(steps(&kept["data"]["order"]).contains(&"REFUND_DENIED".to_owned()));
    assert!(shop.owns(&denied_product).await);
    let v = app
        .gql(
            Some(&admin),
            DECIDE,
            json!({ "o": denied, "a": true, "n": "" }),
        )
        .await;
    assert_eq!(error_code(&v), "CONFLICT");
    quiesce().await;
    assert_eq!(shop.balance().await, balance + 1500);
    check_invariants(app).await;
}

#[tokio::test]
async fn refund_requests_with_bad_input_change_nothing() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (_, order) = completed_order(&shop, "Kept", 500, 500).await;
    let stranger = app.sign_up("stranger@user.test", "Stranger").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    // Someone else's order does not exist for the caller; an empty reason is refused.
    let v = app
        .gql(
            Some(&stranger),
            REQUEST,
            json!({ "o": order, "r": "mine now" }),
        )
        .await;
    assert_eq!(error_code(&v), "NOT_FOUND");
    let v = app
        .gql(
            Some(&shop.buyer),
            REQUEST,
            json!({ "o": order, "r": "   " }),
        )
        .await;
    assert_eq!(error_code(&v), "BAD_USER_INPUT");
    let v = app
        .gql(None, REQUEST, json!({ "o": order, "r": "anonymous" }))
        .await;
    assert_eq!(error_code(&v), "UNAUTHENTICATED");
    // A cancelled order (no funds) cannot be refunded.
    let (_, edition) = shop.product("Too dear", 9999, false).await;
    let cancelled = shop.placed(&[&edition], "broke").await;
    assert_eq!(
        shop.settled(&shop.buyer, &cancelled).await["status"],
        "CANCELLED"
    );
    let v = app
        .gql(
            Some(&shop.buyer),
            REQUEST,
            json!({ "o": cancelled, "r": "why not" }),
        )
        .await;
    assert_eq!(error_code(&v), "CONFLICT");
    // Revenue: publishers see their own, admins name one, users none.
    let v = app.gql(Some(&shop.buyer), REVENUE, json!({})).await;
    assert_eq!(error_code(&v), "FORBIDDEN");
    let admin = app.admin_token().await;
    let v = app.gql(Some(&admin), REVENUE, json!({})).await;
    assert_eq!(error_code(&v), "BAD_USER_INPUT");
    quiesce().await;
    assert_eq!(
        app.scalar("SELECT count(*)::bigint AS n FROM ordering.refund_request")
            .await,
        0
    );
    let o = shop.order(&shop.buyer, &order).await;
    assert_eq!(o["data"]["order"]["status"], "COMPLETED");
    check_invariants(app).await;
}

const GENERATE: &str = "mutation($e: UUID!, $q: Int!) { generateGiftKeys(editionId: $e, quantity: $q, label: \"Press\") { id quantity } }";
const BATCHES: &str = "{ giftKeyBatches { id quantity label ready keys { key redeemed } } }";
const REDEEM: &str =
    "mutation($k: String!) { redeemKey(key: $k) { status productId entitlementId } }";

#[tokio::test]
async fn a_gift_key_redeems_exactly_once() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (product, edition) = shop.product("Giftable", 2500, false).await;

    // Only the product's publisher makes its keys.
    let v = app
        .gql(Some(&shop.buyer), GENERATE, json!({ "e": edition, "q": 3 }))
        .await;
    assert_eq!(error_code(&v), "FORBIDDEN");
    let (other, _) = app
        .staff("other@publisher.test", "Other Games", Role::Publisher)
        .await;
    let v = app
        .gql(Some(&other), GENERATE, json!({ "e": edition, "q": 3 }))
        .await;
    assert_eq!(error_code(&v), "FORBIDDEN");
    let v = app
        .gql(
            Some(&shop.publisher),
            GENERATE,
            json!({ "e": edition, "q": 0 }),
        )
        .await;
    assert_eq!(error_code(&v), "BAD_USER_INPUT");
    let v = app
        .gql(
            Some(&shop.publisher),
            GENERATE,
            json!({ "e": edition, "q": 3 }),
        )
        .await;
    assert_no_errors(&v);
    let batch = wait_until("the keys", || async {
        let v = app.gql(Some(&shop.publisher), BATCHES, json!({})).await;
        assert_no_errors(&v);
        let b = v["data"]["giftKeyBatches"][0].clone();
        (b["ready"] == true).then_some(b)
    })
    .await;
    let keys: Vec<String> = batch["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["key"].as_str().expect("key").to_owned())
        .collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| domain::library::is_license_key(k)));

    // Two people redeem the same key at once: exactly one gets the game.
    let second = app.sign_up("friend@user.test", "Friend").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let redeem = |token: String, key: String| async move {
        app.gql(Some(&token), REDEEM, json!({ "k": key })).await
    };
    let (a, b) = tokio::join!(
        redeem(shop.buyer.clone(), keys[0].clone()),
        redeem(second.clone(), keys[0].clone())
    );
    let outcomes = [&a, &b];
    let won: Vec<_> = outcomes
        .iter()
        .filter(|v| v["data"]["redeemKey"]["status"] == "REDEEMED")
        .collect();
    let lost: Vec<_> = outcomes
        .iter()
        .filter(|v| v["errors"][0]["extensions"]["code"] == "CONFLICT")
        .collect();
    assert_eq!((won.len(), lost.len()), (1, 1), "{a} {b}");
    assert_eq!(won[0]["data"]["redeemKey"]["productId"], json!(product));
    let winner = if a["data"]["redeemKey"]["status"] == "REDEEMED" {
        shop.buyer.clone()
    } else {
        second.clone()
    };
    let lib = app.gql(Some(&winner), LIBRARY, json!({})).await;
    assert_eq!(
        lib["data"]["library"]["edges"][0]["node"]["licenseKey"],
        json!(keys[0])
    );
    assert_eq!(
        lib["data"]["library"]["edges"][0]["node"]["product"]["title"],
        "Giftable"
    );

    // The winner owns the game: a second key of it stays unused.
    let spaced = keys[1].to_lowercase().replace('-', " ");
    let v = app.gql(Some(&winner), REDEEM, json!({ "k": spaced })).await;
    assert_eq!(error_code(&v), "CONFLICT");
    // The loser redeems it (typed in lower case without dashes).
    let loser = if winner == shop.buyer {
        second.clone()
    } else {
        shop.buyer.clone()
    };
    let v = app
        .gql(
            Some(&loser),
            REDEEM,
            json!({ "k": keys[1].to_lowercase().replace('-', "") }),
        )
        .await;
    assert_no_errors(&v);
    assert_eq!(v["data"]["redeemKey"]["status"], "REDEEMED");
    // Unknown and malformed keys.
    let v = app
        .gql(
            Some(&loser),
            REDEEM,
            json!({ "k": "AAAAA-AAAAA-AAAAA-AAAAA" }),
        )
        .await;
    assert_eq!(error_code(&v), "NOT_FOUND");
    let v = app
        .gql(Some(&loser), REDEEM, json!({ "k": "not a key" }))
        .await;
    assert_eq!(error_code(&v), "BAD_USER_INPUT");

    let v = app.gql(Some(&shop.publisher), BATCHES, json!({})).await;
    let redeemed = v["data"]["giftKeyBatches"][0]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["redeemed"] == true)
        .count();
    assert_eq!(redeemed, 2);
    assert_eq!(
        app.scalar(
            "SELECT count(*)::bigint AS n FROM library.entitlement WHERE gift_key_id IS NOT NULL"
        )
        .await,
        2
    );
    check_invariants(app).await;
}
