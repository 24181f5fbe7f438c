//! What operators see (issue 17): `/metrics` of the api and of a saga process, and
//! reconciliation repairing what is derived and reporting what is not.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fred::interfaces::KeysInterface as _;
use serde_json::json;
use tower::ServiceExt as _;

use crate::helpers::{assert_no_errors, saga_settings, wait_until};
use crate::saga::{CARD_OK, shop};

/// The text `router` answers at `/metrics`.
async fn scrape(router: axum::Router) -> String {
    let res = router
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("metrics");
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()[axum::http::header::CONTENT_TYPE]
        .to_str()
        .expect("content type")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .expect("body");
    String::from_utf8(body.to_vec()).expect("utf-8")
}

/// The value of the series `name{labels…}` whose labels include every one of `labels`
/// (`None`: no such series).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            (n == name
                && labels
                    .iter()
                    .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\""))))
            .then(|| v.parse::<f64>().ok())
            .flatten()
        })
        .reduce(f64::max)
}

const TOP_UP: &str = "mutation($a: Int!, $m: String!, $k: String!) { topUpWallet(amount: $a, paymentMethod: $m, idempotencyKey: $k) { id status } }";

/// After a paid order, the api's series count the GraphQL requests by operation and outcome
/// (with their latency) and the saga process's count the deliveries each participant handled,
/// with the gauges sampled at the scrape: open orders, outbox backlogs, consumers' pending
/// messages, the pool. A third party's operation name never becomes a label.
#[tokio::test]
async fn metrics_of_the_api_and_a_saga_process_move_after_an_order() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let api_metrics = || api::http::metrics_router(app.state.clone());
    let rt = shop.saga.as_ref().expect("saga").rt.clone();
    let nats = app.state.bus.jetstream().client();
    let saga_metrics = || saga::infra::health::router(&rt, &saga::Participant::ALL, nats.clone());

    let before = scrape(api_metrics()).await;
    let ok_before = value(
        &before,
        "store_graphql_requests_total",
        &[("operation", "other"), ("outcome", "ok")],
    )
    .unwrap_or(0.0);
    let handled = |text: &str| {
        value(
            text,
            "store_saga_deliveries_total",
            &[
                ("participant", "billing"),
                ("kind", "ordering.order_placed"),
                ("outcome", "handled"),
            ],
        )
        .unwrap_or(0.0)
    };
    let handled_before = handled(&scrape(saga_metrics()).await);

    let (_, edition) = shop.product("Metered Quest", 1_000, false).await;
    shop.fund(5_000, "fund-metrics").await;
    let order = shop.completed(&[edition.as_str()], "order-metrics").await;
    assert!(!order.is_empty());
    // A third party names its operation as it likes: it is counted as `other`.
    let named = app
        .gql(
            Some(&shop.buyer),
            "query EvilName_8d1f { wallet { currency } }",
            json!({}),
        )
        .await;
    assert_no_errors(&named);
    // A refusal counts under its code.
    let refused = app
        .gql(
            Some(&shop.buyer),
            "{ deadLetters(first: 1) { nodes { id } } }",
            json!({}),
        )
        .await;
    let code = refused["errors"][0]["extensions"]["code"]
        .as_str()
        .expect("a code")
        .to_owned();

    let after = scrape(api_metrics()).await;
    let ok_after = value(
        &after,
        "store_graphql_requests_total",
        &[("operation", "other"), ("outcome", "ok")],
    )
    .expect("requests by operation and outcome");
    assert!(ok_after >= ok_before + 4.0, "{ok_before} → {ok_after}");
    assert!(
        value(
            &after,
            "store_graphql_requests_total",
            &[("outcome", code.as_str())]
        )
        .is_some(),
        "no series for the refusal's code {code}"
    );
    assert!(
        !after.contains("EvilName_8d1f"),
        "an operation name became a label"
    );
    assert!(
        value(
            &after,
            "store_graphql_request_duration_seconds_count",
            &[("operation", "other")]
        )
        .is_some_and(|n| n >= 4.0)
    );
    assert!(value(&after, "store_db_pool_connections", &[("state", "idle")]).is_some());
    // The api's own outbox (the catalog's build events) is sampled at its scrape.
    assert!(
        value(
            &after,
            "store_outbox_backlog",
            &[("participant", "catalog")]
        )
        .is_some()
    );

    let saga_text = wait_until("the order in the saga's metrics", || async {
        let text = scrape(saga_metrics()).await;
        (handled(&text) > handled_before).then_some(text)
    })
    .await;
    for (name, labels) in [
        (
            "store_saga_step_latency_seconds_count",
            &[("participant", "library")][..],
        ),
        ("store_orders_open", &[("state", "PLACED")][..]),
        ("store_orders_oldest_open_seconds", &[("state", "PAID")][..]),
        ("store_outbox_backlog", &[("participant", "ordering")][..]),
        (
            "store_outbox_oldest_seconds",
            &[("participant", "billing")][..],
        ),
        (
            "store_saga_dead_letters_waiting",
            &[("participant", "fulfillment")][..],
        ),
        ("store_consumer_pending", &[("participant", "billing")][..]),
        (
            "store_consumer_ack_pending",
            &[("participant", "library")][..],
        ),
        ("store_webhook_deliveries_pending", &[][..]),
        ("store_db_pool_connections", &[("state", "in_use")][..]),
    ] {
        assert!(
            value(&saga_text, name, labels).is_some(),
            "no {name} {labels:?} in the saga's metrics"
        );
    }
}

/// Reconciliation repairs a cached balance that Redis got wrong (the wallet's own is right),
/// and reports, without touching it, a wallet whose row no longer adds up to its ledger: the
/// admins get a notification, once.
#[tokio::test]
async fn reconciliation_repairs_a_cached_balance_and_reports_a_wallet_that_does_not_add_up() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let rt = shop.saga.as_ref().expect("saga").rt.clone();
    let admin = app.admin_token().await;
    shop.fund(3_000, "fund-reconcile").await;
    let buyer = app.account_id(&shop.buyer).await;
    // A second buyer with money.
    let other_token = app
        .sign_up(
            &format!("other-{}@user.test", uuid::Uuid::new_v4().simple()),
            "Other",
        )
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_no_errors(
        &app.gql(
            Some(&other_token),
            TOP_UP,
            json!({ "a": 2_000, "m": CARD_OK, "k": "other-fund" }),
        )
        .await,
    );
    let other = app.account_id(&other_token).await;
    wait_until("the second top-up", || async {
        let n = app
            .scalar(&format!(
                "SELECT count(*) AS n FROM billing.ledger_entry WHERE account_id = '{other}'"
            ))
            .await;
        (n == 1).then_some(())
    })
    .await;
    let settings = saga::reconcile::ReconcileSettings {
        grace: std::time::Duration::ZERO,
        ..Default::default()
    };
    let clean = saga::reconcile::run_once(&rt, settings)
        .await
        .expect("a pass");
    assert!(
        clean.found.is_empty(),
        "a consistent store has findings: {:?}",
        clean.found
    );
    assert!(clean.wallets >= 2);

    // Redis gets the buyer's balance wrong (same version, another amount)…
    let key = domain::keys::balance(&app.namespace, buyer);
    let version = app
        .scalar(&format!(
            "SELECT version AS n FROM billing.wallet WHERE account_id = '{buyer}'"
        ))
        .await;
    let _: () = app
        .state
        .redis
        .set(&key, format!("999999:{version}"), None, None, false)
        .await
        .expect("corrupt the cached balance");
    // …and the second wallet's row no longer adds up to its ledger.
    app.scalar(&format!(
        "WITH w AS (UPDATE billing.wallet SET balance_minor = balance_minor + 500 \
         WHERE account_id = '{other}' RETURNING 1) SELECT count(*) AS n FROM w"
    ))
    .await;

    let found = saga::reconcile::run_once(&rt, settings)
        .await
        .expect("a pass");
    assert_eq!(
        found.count(domain::reconcile::DriftKind::CachedBalance),
        1,
        "{:?}",
        found.found
    );
    assert_eq!(
        found.count(domain::reconcile::DriftKind::WalletLedger),
        1,
        "{:?}",
        found.found
    );
    assert_eq!(found.found.len(), 2, "{:?}", found.found);
    assert_eq!(found.told, 1, "only the wallet is for a person");

    // Repaired: Redis holds the wallet's balance, and the buyer sees it.
    let cached: Option<String> = app.state.redis.get(&key).await.expect("get");
    assert_eq!(cached.as_deref(), Some(format!("3000:{version}").as_str()));
    assert_eq!(shop.balance().await, 3_000);
    // Reported, never rewritten: the wallet row keeps what it was changed to.
    let row = app
        .scalar(&format!(
            "SELECT balance_minor AS n FROM billing.wallet WHERE account_id = '{other}'"
        ))
        .await;
    assert_eq!(row, 2_500);
    let notes = wait_until("the admin's notification", || async {
        let v = app
            .gql(
                Some(&admin),
                "{ notifications(first: 10) { nodes { kind title body } } }",
                json!({}),
            )
            .await;
        assert_no_errors(&v);
        let nodes = v["data"]["notifications"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (!nodes.is_empty()).then_some(nodes)
    })
    .await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["kind"], "DRIFT_FOUND");
    let body = notes[0]["body"].as_str().expect("body");
    assert!(
        body.contains(&other.to_string()) && body.contains("2500"),
        "{body}"
    );
    // The buyer is told nothing.
    let buyer_notes = app
        .gql(
            Some(&shop.buyer),
            "{ notifications(first: 10) { nodes { kind } } }",
            json!({}),
        )
        .await;
    assert!(!buyer_notes.to_string().contains("DRIFT_FOUND"));

    // The next pass finds the wallet again, and does not tell the admins twice.
    let again = saga::reconcile::run_once(&rt, settings)
        .await
        .expect("a pass");
    assert_eq!(again.count(domain::reconcile::DriftKind::WalletLedger), 1);
    assert_eq!(again.count(domain::reconcile::DriftKind::CachedBalance), 0);
    assert_eq!(again.told, 0);
    let runs = app
        .scalar("SELECT count(*) AS n FROM reconcile.run WHERE finished_at IS NOT NULL")
        .await;
    assert_eq!(runs, 3);
    let findings = app
        .scalar("SELECT count(*) AS n FROM reconcile.finding")
        .await;
    assert_eq!(findings, 3);

    // The operations page shows the last pass, and each participant's consumers and backlog.
    let page = app.gql(Some(&admin), OPERATIONS, json!({})).await;
    assert_no_errors(&page);
    let ops = &page["data"]["operations"];
    let last = &ops["lastReconciliation"];
    assert_eq!(last["reported"], 1, "{last}");
    assert_eq!(last["findings"][0]["kind"], "WALLET_LEDGER");
    assert_eq!(last["findings"][0]["action"], "REPORTED");
    assert_eq!(last["findings"][0]["subject"], other.to_string());
    let participants = ops["participants"].as_array().expect("participants");
    let names: Vec<&str> = participants
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ordering",
            "billing",
            "fulfillment",
            "library",
            "notification",
            "webhooks"
        ]
    );
    let billing = &participants[1];
    assert!(
        billing["consumers"]
            .as_array()
            .is_some_and(|c| !c.is_empty()
                && c.iter().all(|c| c["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("billing-")))),
        "{billing}"
    );
    assert_eq!(ops["openOrders"].as_array().map(Vec::len), Some(3), "{ops}");
    // Only admins.
    let refused = app.gql(Some(&shop.buyer), OPERATIONS, json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
}

const OPERATIONS: &str = "{ operations { participants { name outboxBacklog deadLettersWaiting \
    consumers { name pending ackPending redelivered } } openOrders { status count oldestAt } \
    lastReconciliation { wallets reported repaired findings { kind action subject detail } } } }";

/// A paid digital line whose entitlement is gone, and stock whose reserved count lost step with
/// its reservations, are reported (never repaired).
#[tokio::test]
async fn reconciliation_reports_a_missing_entitlement_and_stock_out_of_step() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let rt = shop.saga.as_ref().expect("saga").rt.clone();
    let (game, digital) = shop.product("Reconciled Runner", 700, false).await;
    let (_, boxed) = shop.product("Reconciled Box", 900, true).await;
    shop.stock(&boxed, 5).await;
    shop.fund(5_000, "fund-lines").await;
    let order = shop.completed(&[digital.as_str()], "order-lines").await;
    let settings = saga::reconcile::ReconcileSettings {
        grace: std::time::Duration::ZERO,
        ..Default::default()
    };
    let clean = saga::reconcile::run_once(&rt, settings)
        .await
        .expect("a pass");
    assert!(clean.found.is_empty(), "{:?}", clean.found);
    assert!(clean.orders >= 1 && clean.editions >= 1, "{clean:?}");

    app.scalar(&format!(
        "WITH d AS (DELETE FROM library.entitlement WHERE order_id = '{order}' RETURNING 1) SELECT count(*) AS n FROM d"
    ))
    .await;
    app.scalar(&format!(
        "WITH u AS (UPDATE fulfillment.inventory SET reserved = reserved + 2 WHERE edition_id = '{boxed}' RETURNING 1) \
         SELECT count(*) AS n FROM u"
    ))
    .await;
    let found = saga::reconcile::run_once(&rt, settings)
        .await
        .expect("a pass");
    assert_eq!(
        found.count(domain::reconcile::DriftKind::MissingEntitlement),
        1,
        "{:?}",
        found.found
    );
    assert_eq!(
        found.count(domain::reconcile::DriftKind::Stock),
        1,
        "{:?}",
        found.found
    );
    assert_eq!(found.found.len(), 2, "{:?}", found.found);
    let (on_hand, reserved) = shop.inventory(&boxed).await;
    assert_eq!((on_hand, reserved), (5, 2), "the stock was rewritten");
    assert!(!shop.owns(&game).await, "the entitlement was put back");
}
