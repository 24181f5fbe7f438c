//! Placing digital orders: paid into the library, refused for want of money, bad input and
//! duplicate keys publish nothing, concurrent orders are charged and granted once.

use super::*;

#[tokio::test]
async fn a_paid_digital_order_completes_into_the_library() {
    let shop = shop(saga_settings()).await;
    let (game, game_ed) = shop.product("Star Courier", 1999, false).await;
    let (_, tool_ed) = shop.product("Pixel Forge", 999, false).await;
    let app = &shop.app;

    shop.fund(5000, "top-1").await;
    let placed = shop
        .place(&shop.buyer, &[&game_ed, &tool_ed], "order-1")
        .await;
    let id = order_id(&placed);
    assert_eq!(placed["data"]["placeOrder"]["status"], "PLACED");
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
    let notes = wait_until("two notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        (kinds(&v).len() == 2).then_some(v)
    })
    .await;
    let sales = wait_until("the sale notification", || async {
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
    assert_eq!(
        steps(&order),
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
    wait_until("notifications marked read", || async {
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

    shop.fund(1000, "top-1").await;
    let id = shop.placed(&[&ed], "order-1").await;
    let order = shop.settled(&shop.buyer, &id).await;
    let notes = wait_until("two notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        (kinds(&v).len() == 2).then_some(v)
    })
    .await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;

    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["cancelReason"], "INSUFFICIENT_FUNDS");
    assert_eq!(steps(&order), ["PLACED", "PAYMENT_DECLINED", "CANCELLED"]);
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
    let buyer = Some(shop.buyer.as_str());
    let zero = shop.place_lines(buyer, &[(&digital, 0)], "k2").await;
    let two_digital = shop.place_lines(buyer, &[(&digital, 2)], "k3").await;
    let absurd = shop
        .place_lines(buyer, &[(&physical, 1_000_000)], "k4")
        .await;
    let boxed = shop.place(&shop.buyer, &[&physical], "k5").await;
    let anonymous = shop.place_lines(None, &[(&digital, 1)], "k6").await;
    let id = first["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    shop.settled(&shop.buyer, &id).await;
    let foreign = shop.order(&other, &id).await;
    let too_small = shop.top_up(499, CARD_OK, "t1").await;
    let too_big = shop.top_up(50_001, CARD_OK, "t2").await;
    let declined = shop.top_up(2000, CARD_DECLINED, "t3").await;
    let declined_id = declined["data"]["topUpWallet"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let declined_status = wait_until("the declined top-up", || async {
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
    let account = app.account_id(&shop.buyer).await;

    // No money yet: cancelled, and the claim is given back.
    let broke_id = shop.placed(&[&ed], "broke").await;
    let broke_order = shop.settled(&shop.buyer, &broke_id).await;
    shop.fund(5000, "top-1").await;

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
        publisher_id: app
            .one(
                &format!("SELECT publisher_id FROM catalog.product WHERE id = '{other_product}'"),
                "publisher_id",
            )
            .await,
        kind: "digital".into(),
        product_title: "Twin Lakes".into(),
        edition_name: "Standard".into(),
        unit_price_minor: 500,
        quantity: 1,
        unit_tax_minor: 0,
        tax_rate_ppm: 0,
        bundle_id: None,
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
                tax_place: None,
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
            assert_eq!(steps(o), ["PLACED", "CANCELLED"], "{o:#}");
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
        ids.entry(*k).or_default().insert(order_id(v));
    }
    wait_until("200 settled orders", || async {
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
