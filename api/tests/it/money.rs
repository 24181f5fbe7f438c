//! Money and messages (issue 14): JetStream de-duplication, one answer per refund decision and
//! per idempotency key, no refund of what was downloaded (through a cancel or a race), and the
//! grant and revoke of one order kept apart. End to end in-process: the api schema plus every
//! saga participant on the test's database, NATS prefix and Redis namespace.

use domain::bus::RawMessage;
use serde_json::json;

use crate::helpers::*;
use crate::refunds::{DECIDE, REQUEST, completed_order};
use crate::saga::{Shop, address, check_invariants, order_id, shop_with};

/// Two publishes of one message id inside the duplicate window: JetStream stores the first and
/// reports the second as a duplicate of it; another id is stored.
#[tokio::test]
async fn one_message_id_published_twice_is_stored_once() {
    let app = TestApp::spawn().await;
    let raw = |id: &'static str, byte: u8| RawMessage {
        subject: "evt.test.dedup.one",
        msg_id: id,
        kind: "test.dedup",
        correlation_id: None,
        trace: None,
        replay_of: None,
        payload: vec![byte],
    };

    let first = app.state.bus.publish_raw(raw("dedup-1", 1)).await;
    let again = app.state.bus.publish_raw(raw("dedup-1", 2)).await;
    let other = app.state.bus.publish_raw(raw("dedup-2", 3)).await;

    let (first, again, other) = (
        first.expect("publish"),
        again.expect("publish"),
        other.expect("publish"),
    );
    assert!(!first.duplicate);
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.sequence, first.sequence);
    assert!(!other.duplicate);
    assert_eq!(other.sequence, first.sequence + 1);
}

/// An admin approves and denies one pending request at the same instant (two tabs), three
/// times: one call succeeds, the other gets `CONFLICT`, and what the winner was told is what
/// happened (never `DENIED` while the order is refunded).
#[tokio::test]
async fn two_concurrent_refund_decisions_give_one_success_and_one_conflict() {
    let shop = shop_with(saga_settings(), |c| c.refund_policy.window_days = 0).await;
    let app = &shop.app;
    let admin = app.admin_token().await;
    for round in 0..3 {
        let (_, order) = completed_order(&shop, &format!("Decided{round}"), 700, 700).await;
        let asked = app
            .gql(
                Some(&shop.buyer),
                REQUEST,
                json!({ "o": order, "r": "Not what I expected" }),
            )
            .await;
        assert_no_errors(&asked);
        wait_until("the request to be recorded", || async {
            (app.scalar(&format!(
                "SELECT count(*)::bigint AS n FROM ordering.refund_request WHERE order_id = '{order}'"
            ))
            .await
                == 1)
                .then_some(())
        })
        .await;

        let decide = |approve: bool| {
            app.gql(
                Some(&admin),
                DECIDE,
                json!({ "o": order, "a": approve, "n": format!("round {round}") }),
            )
        };
        let (approve, deny) = tokio::join!(decide(true), decide(false));
        let settled = wait_until("the decision", || async {
            let n = app
                .scalar(&format!(
                    "SELECT CASE status WHEN 'APPROVED' THEN 1 WHEN 'DENIED' THEN 2 ELSE 0 END::bigint AS n \
                     FROM ordering.refund_request WHERE order_id = '{order}'"
                ))
                .await;
            (n != 0).then_some(n)
        })
        .await;

        let approved = approve.get("errors").is_none();
        let denied = deny.get("errors").is_none();
        assert!(approved ^ denied, "{approve:#} {deny:#}");
        let (winner, loser) = if approved {
            (&approve, &deny)
        } else {
            (&deny, &approve)
        };
        assert_eq!(error_code(loser), "CONFLICT", "{loser:#}");
        let told = winner["data"]["decideRefund"]["status"].as_str();
        if settled == 1 {
            assert_eq!(told, Some("APPROVED"));
            shop.reaches(&shop.buyer, &order, &["REFUNDED"]).await;
        } else {
            assert_eq!(told, Some("DENIED"));
            shop.reaches(&shop.buyer, &order, &["COMPLETED"]).await;
        }
    }
    check_invariants(app).await;
}

/// Five `placeOrder` calls with one key and one input, sent together (staggered by a few
/// milliseconds, so that the later ones arrive while the first one's order takes its last copy
/// and grants its digital line), over many rounds: every call answers the same order, never
/// `CONFLICT` ("you already own …") nor `OUT_OF_STOCK`, and each key makes one order.
#[tokio::test]
async fn five_concurrent_calls_with_one_key_answer_one_order() {
    let shop = shop_with(saga_settings(), |_| {}).await;
    let app = &shop.app;
    const ROUNDS: usize = 12;
    shop.fund(2 * 100 * ROUNDS as i64, "fund-replays").await;
    for round in 0..ROUNDS {
        let (_, digital) = shop.product(&format!("Replayed{round}"), 100, false).await;
        let (_, boxed) = shop
            .product(&format!("ReplayedBox{round}"), 100, true)
            .await;
        shop.stock(&boxed, 1).await;
        let key = format!("replay-{round}");
        let lines = [(digital.as_str(), 1), (boxed.as_str(), 1)];

        let calls = (0..5u64).map(|i| {
            let (shop, lines, key) = (&shop, &lines, &key);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(i * i * 15)).await;
                shop.place_shipped(&shop.buyer, lines, Some(address()), key)
                    .await
            }
        });
        let answers = futures::future::join_all(calls).await;

        let ids: Vec<String> = answers.iter().map(order_id).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let order = ids[0].clone();
        shop.reaches(&shop.buyer, &order, &["AWAITING_SHIPMENT"])
            .await;
        assert_eq!(
            app.scalar(&format!(
                r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE idempotency_key = '{key}'"#
            ))
            .await,
            1
        );
    }
    check_invariants(app).await;
}

const CREATE_BUILD: &str =
    "mutation($i: CreateBuildInput!) { createBuild(input: $i) { id uploadPath } }";
const SET_CURRENT: &str = "mutation($b: UUID!) { setCurrentBuild(buildId: $b) { id isCurrent } }";
const LINK: &str =
    "mutation($p: UUID!) { downloadLink(productId: $p, platform: \"windows\") { url } }";
const CANCEL: &str = "mutation($o: UUID!) { cancelOrder(orderId: $o) { id } }";

/// Announces, uploads (straight to the api) and makes current a small Windows build of
/// `product`, so that its owners can ask for download links.
async fn ready_build(shop: &Shop, product: &str) {
    let bytes = b"MZ a tiny game".to_vec();
    let v = shop
        .app
        .gql(
            Some(&shop.publisher),
            CREATE_BUILD,
            json!({ "i": { "productId": product, "platform": "windows", "versionLabel": "1.0.0",
                           "releaseNotes": "First.", "fileName": "game.exe", "sizeBytes": bytes.len() } }),
        )
        .await;
    assert_no_errors(&v);
    let build = v["data"]["createBuild"].clone();
    let path = build["uploadPath"].as_str().expect("upload path");
    let put = axum::http::Request::put(path)
        .header("authorization", format!("Bearer {}", shop.publisher))
        .header("content-length", bytes.len())
        .body(axum::body::Body::from(bytes))
        .expect("request");
    let (status, _, body) = shop.app.send(put).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    let current = shop
        .app
        .gql(
            Some(&shop.publisher),
            SET_CURRENT,
            json!({ "b": build["id"] }),
        )
        .await;
    assert_no_errors(&current);
}

/// A mixed order (a box and a digital edition) whose digital build was downloaded, cancelled
/// before dispatch: the box is refunded and restocked, the digital line stays in the library,
/// paid (its publisher earns it), and is still downloadable.
#[tokio::test]
async fn cancelling_a_mixed_order_refunds_the_box_and_keeps_a_downloaded_digital_line() {
    let shop = shop_with(saga_settings(), |_| {}).await;
    let app = &shop.app;
    let (_, boxed) = shop.product("KeptBox", 3000, true).await;
    let (game, digital) = shop.product("KeptGame", 1000, false).await;
    ready_build(&shop, &game).await;
    shop.stock(&boxed, 5).await;
    shop.fund(10_000, "fund-kept").await;
    let placed = shop
        .place_shipped(
            &shop.buyer,
            &[(&boxed, 1), (&digital, 1)],
            Some(address()),
            "kept",
        )
        .await;
    let order = order_id(&placed);
    shop.reaches(&shop.buyer, &order, &["AWAITING_SHIPMENT"])
        .await;
    let first_link = app.gql(Some(&shop.buyer), LINK, json!({ "p": game })).await;
    assert_no_errors(&first_link);

    let cancelled = app
        .gql(Some(&shop.buyer), CANCEL, json!({ "o": order }))
        .await;
    let done = shop.reaches(&shop.buyer, &order, &["CANCELLED"]).await;
    wait_until("the refund of the box", || async {
        (shop.balance().await == 9000).then_some(())
    })
    .await;
    let link_after = app.gql(Some(&shop.buyer), LINK, json!({ "p": game })).await;
    let again = shop.place(&shop.buyer, &[&digital], "kept-again").await;

    assert_no_errors(&cancelled);
    assert_eq!(done["cancelReason"], "CANCELLED_BY_BUYER");
    assert!(
        shop.owns(&game).await,
        "the downloaded game left the library"
    );
    assert_no_errors(&link_after);
    assert_eq!(error_code(&again), "CONFLICT", "{again:#}");
    assert_eq!(
        app.scalar(&format!(
            "SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM billing.ledger_entry \
             WHERE kind = 'refund' AND reference = '{order}'"
        ))
        .await,
        3000
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT coalesce(sum(gross_minor), 0)::bigint AS n FROM billing.revenue_entry \
             WHERE kind = 'sale' AND order_id = '{order}'"
        ))
        .await,
        840,
        "the kept digital line is a sale of its publisher (1000 with 19 % VAT in it: 840 net)"
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT (on_hand * 10 + reserved)::bigint AS n FROM fulfillment.inventory WHERE edition_id = '{boxed}'"
        ))
        .await,
        50
    );
    check_invariants(app).await;
}

/// `requestRefund` and the first `downloadLink` of a completed order sent at the same instant,
/// 30 times: never both a refund and a link. Either the link wins (the request then waits for
/// an admin, the order stays completed) or the refund does (the link is a `CONFLICT`, and the
/// order ends refunded).
#[tokio::test]
async fn a_refund_and_a_first_download_at_the_same_instant_never_both_succeed() {
    let shop = shop_with(saga_settings(), |_| {}).await;
    let app = &shop.app;
    const ROUNDS: usize = 30;
    shop.fund(100 * ROUNDS as i64, "fund-race").await;
    let (mut refunds, mut links) = (Vec::new(), 0);
    for round in 0..ROUNDS {
        let (game, edition) = shop.product(&format!("Raced{round}"), 100, false).await;
        ready_build(&shop, &game).await;
        let order = shop.completed(&[&edition], &format!("raced-{round}")).await;

        let (refund, link) = tokio::join!(
            app.gql(
                Some(&shop.buyer),
                REQUEST,
                json!({ "o": order, "r": "Changed my mind" }),
            ),
            app.gql(Some(&shop.buyer), LINK, json!({ "p": game })),
        );

        assert_no_errors(&refund);
        let approved = refund["data"]["requestRefund"]["status"] == "APPROVED";
        let linked = link.get("errors").is_none();
        assert!(
            approved ^ linked,
            "round {round}: refund {refund:#}, link {link:#}"
        );
        if approved {
            // `CONFLICT` at the gate, or `FORBIDDEN` should the revocation already be done.
            assert!(
                matches!(error_code(&link), "CONFLICT" | "FORBIDDEN"),
                "{link:#}"
            );
            refunds.push(order);
        } else {
            assert_eq!(refund["data"]["requestRefund"]["status"], "PENDING_REVIEW");
            links += 1;
        }
    }
    for order in &refunds {
        shop.reaches(&shop.buyer, order, &["REFUNDED"]).await;
    }
    eprintln!(
        "refund won {} of {ROUNDS} rounds, the link {links}",
        refunds.len()
    );
    assert_eq!(
        app.scalar(
            r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'REFUNDED'"#
        )
        .await,
        refunds.len() as i64
    );
    assert_eq!(
        app.scalar(
            "SELECT count(*)::bigint AS n FROM catalog.download d JOIN library.entitlement g \
             ON g.id = d.entitlement_id WHERE g.revoked_at IS NOT NULL"
        )
        .await,
        0,
        "a refunded purchase was downloaded"
    );
    check_invariants(app).await;
}

/// The payment's grant and a cancellation's revocation of one order arriving together, for 60
/// orders at once: whichever library handles first, no order is left with its items granted.
#[tokio::test]
async fn a_grant_and_a_revocation_of_one_order_never_leave_it_granted() {
    use domain::billing::{PaymentCaptured, PaymentRefunded};
    use domain::messaging::Envelope;
    use domain::money::Currency;
    use domain::ordering::OrderLine;
    use uuid::Uuid;

    let app = TestApp::spawn().await;
    let _saga = app.start_saga(saga_settings()).await;
    let account = Uuid::now_v7();
    let orders: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    let mut envelopes = Vec::new();
    for &order in &orders {
        let line = OrderLine {
            edition_id: Uuid::now_v7(),
            product_id: Uuid::now_v7(),
            publisher_id: Uuid::now_v7(),
            kind: "digital".into(),
            product_title: "Raced".into(),
            edition_name: "Standard".into(),
            unit_price_minor: 100,
            quantity: 1,
            unit_tax_minor: 0,
            tax_rate_ppm: 0,
            bundle_id: None,
        };
        let captured = Envelope::new(
            PaymentCaptured {
                order_id: order,
                account_id: account,
                amount_minor: 100,
                currency: Currency::EUR,
                lines: vec![line],
            },
            order,
            None,
        );
        let refunded = Envelope::new(
            PaymentRefunded {
                order_id: order,
                account_id: account,
                amount_minor: 100,
                currency: Currency::EUR,
                reason: "CANCELLED_BY_BUYER".into(),
                refund_request: None,
                digital_kept: false,
            },
            order,
            None,
        );
        envelopes.push((captured, refunded));
    }
    let ids: Vec<Uuid> = envelopes.iter().flat_map(|(c, r)| [c.id, r.id]).collect();

    let bus = &app.state.bus;
    futures::future::join_all(envelopes.iter().map(|(c, r)| async move {
        let (a, b) = tokio::join!(bus.publish(c), bus.publish(r));
        a.expect("publish");
        b.expect("publish");
    }))
    .await;
    let in_list = ids
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    wait_until("library to handle every message", || async {
        (app.scalar(&format!(
            "SELECT count(*)::bigint AS n FROM library.inbox WHERE message_id IN ({in_list})"
        ))
        .await
            == ids.len() as i64)
            .then_some(())
    })
    .await;

    let orders_list = orders
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*)::bigint AS n FROM library.entitlement \
             WHERE order_id IN ({orders_list}) AND revoked_at IS NULL"
        ))
        .await,
        0,
        "a cancelled order's items stayed in the library"
    );
}

/// A reservation whose payment does not come (billing is stuck on the buyer's wallet) past the
/// reservation deadline, on an injected clock: the copies go back to the stock while billing is
/// still stuck; when billing comes back and charges after all, the charge is refunded and the
/// order ends cancelled. Nothing is lost or kept twice.
#[tokio::test]
async fn an_unpaid_reservation_is_released_at_its_deadline_and_the_order_cancelled() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let clock = saga::Clock::default();
    let shop = crate::saga::shop(saga::Settings {
        reservation_deadline: std::time::Duration::from_secs(600),
        deadline_sweep: std::time::Duration::from_millis(100),
        clock: clock.clone(),
        ..saga_settings()
    })
    .await;
    let app = &shop.app;
    let (_, boxed) = shop.product("LateBox", 2500, true).await;
    shop.stock(&boxed, 3).await;
    shop.fund(5000, "fund-late").await;
    let account = app.account_id(&shop.buyer).await;
    let inventory = || async {
        app.scalar(&format!(
            "SELECT (on_hand * 10 + reserved)::bigint AS n FROM fulfillment.inventory WHERE edition_id = '{boxed}'"
        ))
        .await
    };
    // Billing cannot touch the wallet until this transaction ends.
    let stuck = app.state.db.begin().await.expect("begin");
    stuck
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT 1 FROM billing.wallet WHERE account_id = $1 FOR UPDATE",
            [account.into()],
        ))
        .await
        .expect("lock the wallet");
    let placed = shop
        .place_shipped(&shop.buyer, &[(&boxed, 2)], Some(address()), "late")
        .await;
    let order = order_id(&placed);
    wait_until("the reservation", || async {
        (inventory().await == 32).then_some(())
    })
    .await;
    let before_deadline = shop.order(&shop.buyer, &order).await["data"]["order"]["status"].clone();

    clock.advance(std::time::Duration::from_secs(601));
    wait_until("the copies back in the stock", || async {
        (inventory().await == 30).then_some(())
    })
    .await;
    stuck.rollback().await.expect("unlock the wallet");
    let done = shop.reaches(&shop.buyer, &order, &["CANCELLED"]).await;
    wait_until("the wallet as it was", || async {
        (shop.balance().await == 5000).then_some(())
    })
    .await;
    crate::saga::quiesce().await;

    assert_eq!(before_deadline, "PLACED");
    assert_eq!(done["cancelReason"], "PAYMENT_DEADLINE_PASSED", "{done:#}");
    assert_eq!(shop.balance().await, 5000);
    assert_eq!(inventory().await, 30);
    // Billing charged after all and gave it back, or took the order's one debit with nothing.
    assert_eq!(
        app.scalar(&format!(
            "SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM billing.ledger_entry WHERE reference = '{order}'"
        ))
        .await,
        0
    );
    assert!(
        app.scalar(&format!(
            "SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE reference = '{order}' AND kind = 'refund'"
        ))
        .await
            <= 1
    );
    check_invariants(app).await;
}
