//! Money and messages (issue 14): JetStream de-duplication, one answer per refund decision and
//! per idempotency key, no refund of what was downloaded (through a cancel or a race), and the
//! grant and revoke of one order kept apart. End to end in-process: the api schema plus every
//! saga participant on the test's database, NATS prefix and Redis namespace.

use domain::bus::RawMessage;
use serde_json::json;

use crate::helpers::*;
use crate::refunds::{DECIDE, REQUEST, completed_order, reaches};
use crate::saga::{check_invariants, shop_with, wait_for};

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
        wait_for("the request to be recorded", || async {
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
        let settled = wait_for("the decision", || async {
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
            reaches(&shop, &order, "REFUNDED").await;
        } else {
            assert_eq!(told, Some("DENIED"));
            reaches(&shop, &order, "COMPLETED").await;
        }
    }
    check_invariants(app).await;
}
