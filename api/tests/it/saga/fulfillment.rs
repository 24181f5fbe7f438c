//! Physical copies: stock reserved and released, shipping by the publisher, cancelling before
//! dispatch, reminders and the shipping deadline, redelivered physical events.

use super::*;

/// A mixed order: the box is reserved, the order paid, the digital line granted at once, and
/// the order waits for the publisher. Bad addresses and short stock are refused at placement.
#[tokio::test]
async fn a_mixed_order_reserves_pays_grants_digital_and_awaits_shipment() {
    let shop = shop(saga_settings()).await;
    let (_, boxed) = shop.product("Boxed Saga", 3000, true).await;
    let (_, digital) = shop.product("Soundtrack", 500, false).await;
    let app = &shop.app;
    shop.stock(&boxed, 3).await;
    shop.fund(10_000, "top-1").await;

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
    let id = order_id(&placed);
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
    let id = order_id(&placed);
    let order = shop.settled(&shop.buyer, &id).await;
    wait_until("the release", || async {
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
    wait_until("64 top-ups", || async {
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

impl Shop {
    /// `shipOrder` of `order` as the caller of `token`.
    async fn ship(&self, token: &str, order: &str, carrier: &str, tracking: &str) -> Value {
        self.app
            .gql(
                Some(token),
                SHIP,
                json!({ "o": order, "c": carrier, "t": tracking }),
            )
            .await
    }
}
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
    shop.fund(5000, "top-1").await;
    // The publisher's live list of orders to ship.
    let publisher = api::infra::auth::Principal {
        id: app.account_id(&shop.publisher).await,
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
    let id = order_id(&placed);
    shop.reaches(&shop.buyer, &id, &["AWAITING_SHIPMENT"]).await;
    let library_before = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;

    let pending = app.gql(Some(&shop.publisher), PENDING, json!({})).await;
    let rival_pending = app.gql(Some(&rival), PENDING, json!({})).await;
    let by_rival = shop.ship(&rival, &id, "DHL", "RIVAL-1").await;
    let by_buyer = shop.ship(&shop.buyer, &id, "DHL", "BUYER-1").await;
    let no_tracking = shop.ship(&shop.publisher, &id, "DHL", "  ").await;
    let shipped = shop
        .ship(&shop.publisher, &id, "DHL", "JJD0099887766")
        .await;
    shop.settled(&shop.buyer, &id).await;
    // Fulfillment's dispatch and library's grant of the box (which the dispatch causes) reach
    // ordering in either order, and the grant completes the order: the dispatch's step may come
    // a moment after the completion. The buyer's timeline ends up with both.
    let order = wait_until("the dispatch in the order's timeline", || async {
        let o = shop.order(&shop.buyer, &id).await["data"]["order"].clone();
        steps(&o).iter().any(|s| s == "SHIPPED").then_some(o)
    })
    .await;
    let again = shop
        .ship(&shop.publisher, &id, "DHL", "JJD0099887766")
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
    let dispatched_note = wait_until("the dispatch notification", || async {
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
        self.fund(money, &format!("top-{key}")).await;
        let placed = self
            .place_shipped(&self.buyer, lines, Some(address()), key)
            .await;
        let id = order_id(&placed);
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
    wait_until("the refund", || async {
        (shop.balance().await == 10_000).then_some(())
    })
    .await;
    let again = app.gql(Some(&shop.buyer), CANCEL, json!({ "o": id })).await;
    let other = another_publisher(app, "Nosy").await;
    let foreign = app.gql(Some(&other), CANCEL, json!({ "o": id })).await;
    let ship_after = shop.ship(&shop.publisher, &id, "UPS", "1Z999").await;
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
        let tracking = format!("RACE{round}");
        let (cancel, ship) = futures::join!(
            app.gql(Some(&shop.buyer), CANCEL, json!({ "o": id })),
            shop.ship(&shop.publisher, &id, "DHL", &tracking),
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
    let to_ship = wait_until("the publisher's order-to-ship notification", || async {
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
    let reminded = wait_until("the reminder", || async {
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
    wait_until("the refund", || async {
        (shop.balance().await == 8000).then_some(())
    })
    .await;
    let buyer_notes = wait_until("the buyer's notifications", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        let k = kinds(&v);
        (k.contains(&"PAYMENT_REFUNDED".to_owned()) && k.contains(&"ORDER_CANCELLED".to_owned()))
            .then_some(v)
    })
    .await;
    let ship_late = shop.ship(&shop.publisher, &id, "DHL", "LATE1").await;
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
    let shipped = shop.ship(&shop.publisher, &id, "DHL", "ECHO1").await;
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
    let contexts = ["ordering", "billing", "fulfillment", "library"];
    shop.republish_outboxes(&contexts).await;
    quiesce().await;
    quiesce().await;
    let after = counts().await;
    let order = shop.settled(&shop.buyer, &id).await;

    assert_eq!(before, after);
    assert_eq!(before.3, (2, 0));
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(shop.dead_letters(&contexts).await, 0);
    check_invariants(app).await;
    check_stock(app).await;
}
