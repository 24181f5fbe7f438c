//! Delivery of messages: redelivered and republished messages change nothing, poison and
//! exhausted ones reach the dead letters and replay, unanswered ones are redelivered, a
//! backlog handled in batches gives what one-by-one handling gives, replicas that start
//! together share the consumers they both create, the relay publishes the rows it is handed
//! and those a crash left in the table.

use super::*;

#[tokio::test]
async fn redelivered_and_republished_messages_change_nothing() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Echo", 1500, false).await;
    let app = &shop.app;
    shop.fund(3000, "top-1").await;
    let id = shop.placed(&[&ed], "order-1").await;
    shop.settled(&shop.buyer, &id).await;
    wait_until("the notifications", || async {
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

    // Every event once more (a redelivery as the consumers see it), and every outbox
    // published again by its relay.
    let contexts = ["ordering", "billing", "library", "notification"];
    shop.republish_outboxes(&contexts).await;
    quiesce().await;
    let after = counts().await;
    let order = shop.settled(&shop.buyer, &id).await;

    assert_eq!(before, after);
    assert_eq!(order["status"], "COMPLETED");
    assert_eq!(shop.dead_letters(&contexts).await, 0);
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
    let letters = wait_until("two dead letters", || async {
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
    wait_until("the replayed top-up", || async {
        (shop.balance().await == 2500).then_some(())
    })
    .await;
    let replayed = wait_until("the dead letter marked replayed", || async {
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
    wait_until("the message to be handled", || async {
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
    wait_until("the work queue to empty", || async {
        let info = stream.get_info().await.expect("info");
        (info.state.messages == 0).then_some(())
    })
    .await;
    running.abort();
}

/// A backlog (the participants were down while orders came in) is handled in batches, one
/// transaction each, every handler in a savepoint: each delivery behaves as if it were alone.
/// The wallet covers all orders but one, so the debits of one batch must see each other; a
/// message that is not an envelope sits among them and goes to the dead letters alone; the
/// cached balance is refreshed after the batch's commit.
#[tokio::test]
async fn a_backlog_handled_in_batches_behaves_as_one_by_one() {
    const ORDERS: usize = 12;
    const PRICE: i64 = 700;
    let batched = saga::Settings {
        concurrency: 1,
        batch_max: 8,
        ..saga_settings()
    };
    let mut shop = shop(batched.clone()).await;
    let mut editions = Vec::new();
    for i in 0..ORDERS {
        editions.push(shop.product(&format!("Backlog {i}"), PRICE, false).await.1);
    }
    // Enough for all but one.
    shop.fund(PRICE * (ORDERS as i64 - 1), "backlog-top-up")
        .await;

    shop.stop_saga();
    let mut ids = Vec::new();
    for (i, e) in editions.iter().enumerate() {
        ids.push(shop.placed(&[e], &format!("backlog-{i}")).await);
    }
    shop.app
        .state
        .bus
        .publish_raw(domain::bus::RawMessage {
            subject: "evt.ordering.order_placed.00000000-0000-0000-0000-000000000000",
            msg_id: "backlog-poison",
            kind: "ordering.order_placed",
            correlation_id: None,
            trace: None,
            replay_of: None,
            payload: b"{ not an envelope".to_vec(),
        })
        .await
        .expect("publish");
    // A command whose handler fails after it began writing (a physical line and no address):
    // rolled back to its savepoint in the middle of a batch, and out of the inbox again, so
    // that a replay of its dead letter would be handled.
    let bad = domain::messaging::Envelope::new(
        domain::ordering::PlaceOrder {
            order_id: uuid::Uuid::now_v7(),
            account_id: uuid::Uuid::now_v7(),
            idempotency_key: "backlog-bad".into(),
            currency: domain::money::Currency::EUR,
            lines: vec![domain::ordering::OrderLine {
                edition_id: uuid::Uuid::now_v7(),
                product_id: uuid::Uuid::now_v7(),
                publisher_id: uuid::Uuid::now_v7(),
                kind: "physical".into(),
                product_title: "Boxed".into(),
                edition_name: "Box".into(),
                unit_price_minor: PRICE,
                quantity: 1,
                unit_tax_minor: 0,
                tax_rate_ppm: 0,
                bundle_id: None,
            }],
            shipping_address: None,
            tax_place: None,
        },
        uuid::Uuid::now_v7(),
        None,
    );
    shop.app.state.bus.publish(&bad).await.expect("publish");
    shop.start_saga(batched).await;

    let mut statuses = Vec::new();
    for id in &ids {
        let order = shop.settled(&shop.buyer, id).await;
        statuses.push(order["status"].as_str().unwrap_or("").to_owned());
    }
    let completed = statuses.iter().filter(|s| *s == "COMPLETED").count();
    assert_eq!(
        (completed, statuses.len() - completed),
        (ORDERS - 1, 1),
        "every order the wallet covered completes, the one it did not is cancelled: {statuses:?}"
    );
    let app = &shop.app;
    assert_eq!(shop.balance().await, 0, "the balance the api shows (Redis)");
    assert_eq!(
        app.scalar("SELECT balance_minor AS n FROM billing.wallet")
            .await,
        0,
        "the wallet row"
    );
    assert_eq!(
        app.scalar("SELECT count(*)::bigint AS n FROM library.entitlement")
            .await,
        ORDERS as i64 - 1
    );
    // The poison goes to billing's and fulfillment's dead letters, the bad command to
    // ordering's, and nothing else does.
    let all = [
        "ordering",
        "billing",
        "fulfillment",
        "library",
        "notification",
    ];
    wait_until(
        "the poison in two dead letters, the bad command in one",
        || async { (shop.dead_letters(&all).await == 3).then_some(()) },
    )
    .await;
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*)::bigint AS n FROM ordering.dead_letter WHERE message_id = '{}'",
            bad.id
        ))
        .await,
        1,
        "the bad command is a dead letter of ordering"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT (SELECT count(*) FROM ordering.inbox WHERE message_id = '{}') \
                  + (SELECT count(*) FROM ordering.\"order\" WHERE id = '{}') AS n",
            bad.id, bad.data.order_id
        ))
        .await,
        0,
        "nothing of the failed handler stays: no inbox row, no order"
    );
    // The backlog was handled in batches, not one by one (12 place commands, then 12 events at
    // each step, waiting together).
    assert!(
        shop.batched_deliveries() >= ORDERS as u64,
        "only {} deliveries were handled in batches",
        shop.batched_deliveries()
    );
    check_invariants(app).await;
}

/// Replicas of a participant that start at once (a rollout, a scale-up) all find its
/// consumers missing and all create them; the server takes one create of each consumer of
/// events and refuses the others (their start times differ). Every replica must start, on
/// the consumers the first one created. Several rounds, each on a fresh subject prefix where
/// no consumer exists yet.
#[tokio::test]
async fn replicas_starting_together_all_start_on_one_set_of_consumers() {
    const ROUNDS: usize = 10;
    let app = TestApp::spawn().await;
    let participant = saga::Participant::Notification;

    for round in 0..ROUNDS {
        // Under the test's prefix: the test's clean-up deletes these streams even after a panic.
        let prefix = format!("{}_r{round}", app.state.bus.prefix());
        let replica = || {
            let mut rt = app.saga_runtime(
                app.state.db.clone(),
                std::sync::Arc::new(saga::infra::provider::Sandbox::default()),
                saga_settings(),
            );
            rt.bus = domain::bus::Bus::new(app.state.nats.clone(), &prefix);
            rt
        };
        let (one, two) = (replica(), replica());
        one.ensure_streams().await.expect("streams");

        let (first, second) = tokio::join!(
            saga::infra::consumer::start(&one, participant),
            saga::infra::consumer::start(&two, participant),
        );

        let first = first.unwrap_or_else(|e| panic!("round {round}, one replica: {e:#}"));
        let second = second.unwrap_or_else(|e| panic!("round {round}, the other: {e:#}"));
        assert_eq!(first.len(), second.len(), "round {round}");
        let mut consumers = 0;
        for stream in ["CMD", "EVT"] {
            let info = one
                .bus
                .jetstream()
                .get_stream(one.bus.stream_name(stream))
                .await
                .expect("stream")
                .get_info()
                .await
                .expect("stream info");
            consumers += info.state.consumer_count;
        }
        assert_eq!(consumers, first.len(), "round {round}: one consumer each");
        api::infra::purge::delete_streams(one.bus.jetstream(), &prefix)
            .await
            .expect("delete the round's streams");
    }
}

/// The participants' relay is handed the rows of each commit and publishes them at once, in
/// order per correlation, then marks them published; a row nobody handed over (its writer died
/// between the commit and the publish, or it was another replica's) goes out with one of the
/// relay's looks at the table.
#[tokio::test]
async fn the_relay_publishes_what_it_is_handed_and_what_a_crash_left() {
    use sea_orm::TransactionTrait;

    // Setup: no saga; a subscription to ordering's events and a relay of ordering's outbox.
    let app = TestApp::spawn().await;
    let mut events = app
        .state
        .nats
        .subscribe(app.state.bus.subject("evt.ordering.>"))
        .await
        .expect("subscribe");
    let handoff = std::sync::Arc::new(domain::outbox::Handoff::default());
    let relay = {
        let (db, bus, handoff) = (app.state.db.clone(), app.state.bus.clone(), handoff.clone());
        tokio::spawn(async move {
            domain::outbox::relay_handed_over(&db, &bus, "ordering", &handoff).await;
        })
    };
    let event = |order: uuid::Uuid, reason: &str| {
        let data = domain::ordering::OrderCancelled {
            order_id: order,
            account_id: uuid::Uuid::now_v7(),
            reason: reason.to_owned(),
        };
        let envelope = domain::messaging::Envelope::new(data, order, None);
        domain::outbox::Row::new(&envelope).expect("a row")
    };
    let write = |rows: Vec<domain::outbox::Row>| {
        let db = app.state.db.clone();
        async move {
            let txn = db.begin().await.expect("begin");
            domain::outbox::insert(&txn, "ordering", &rows)
                .await
                .expect("insert");
            txn.commit().await.expect("commit");
            rows
        }
    };

    // Exercise: two commits of one order and one of another, each handed over after its
    // commit; then a row committed and never handed over.
    let (first, second) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let mut handed = Vec::new();
    for rows in [
        vec![event(first, "one"), event(second, "a")],
        vec![event(first, "two"), event(first, "three")],
    ] {
        let rows = write(rows).await;
        handed.extend(rows.iter().map(|r| r.id));
        handoff.committed(rows);
    }
    let orphan = write(vec![event(second, "left by a crash")]).await[0].id;

    // Check: every row arrives, those of one order in the order they were written, and every
    // row is marked published. A plain subscription also sees a second publish of a row (the
    // relay's first look may take a row that is handed over too; JetStream stores it once), so
    // each row counts at its first arrival.
    let mut arrived: Vec<(String, String)> = Vec::new();
    while arrived.len() < 5 {
        let msg = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("the events within 20 s")
            .expect("a message");
        let envelope: Value = serde_json::from_slice(&msg.payload).expect("an envelope");
        if arrived.iter().any(|(id, _)| envelope["id"] == id.as_str()) {
            continue;
        }
        arrived.push((
            envelope["id"].as_str().unwrap_or_default().to_owned(),
            envelope["data"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    let ids: HashSet<&str> = arrived.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 5, "{arrived:?}");
    assert!(ids.contains(orphan.to_string().as_str()));
    assert!(
        handed
            .iter()
            .all(|id| ids.contains(id.to_string().as_str()))
    );
    let of_first: Vec<&str> = arrived
        .iter()
        .map(|(_, reason)| reason.as_str())
        .filter(|r| ["one", "two", "three"].contains(r))
        .collect();
    assert_eq!(of_first, ["one", "two", "three"]);
    wait_until("every row marked published", || async {
        (app.scalar("SELECT count(*)::bigint AS n FROM ordering.outbox WHERE published_at IS NULL")
            .await
            == 0)
            .then_some(())
    })
    .await;
    relay.abort();
}
