//! A WebSocket does not outlive its session (issue 13): every operation re-checks it, and the
//! server closes the socket (with its subscriptions) when the token expires or the session is
//! cut by a sign-out everywhere or a ban: 4403 for both, which the reference `graphql-ws` client
//! retries, renewing its token in `connectionParams` (4401 would be final for it; see
//! `spec::graphql_ws_client_renews_an_expired_token_by_reconnecting`).

use std::time::Duration;

use serde_json::json;

use crate::helpers::ws::{Frame, Ws};
use crate::helpers::*;

const NOTIFICATIONS: &str = "subscription { notificationReceived { kind } }";
const TOP_UP: &str = "mutation { topUpWallet(amount: 1000, paymentMethod: \"4242424242424242\", idempotencyKey: \"ws\") { id } }";

fn token(v: &serde_json::Value) -> String {
    v["accessToken"].as_str().expect("token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_on_a_socket_rechecks_the_session() {
    // No periodic check within the test: only the per-operation one can refuse.
    let app = TestApp::spawn_with(|c| c.limits.ws_session_check = Duration::from_secs(3600)).await;
    let addr = app.serve().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let access = token(&user);
    let mut ws = Ws::open(addr, &[], Some(&access)).await;
    let before = ws.run(ME, json!({})).await;

    let cut = app
        .gql(Some(&access), "mutation { signOutEverywhere }", json!({}))
        .await;
    let me = ws.run(ME, json!({})).await;
    let top_up = ws.run(TOP_UP, json!({})).await;
    let wish = ws
        .run(
            "mutation { addToWishlist(productId: \"00000000-0000-0000-0000-000000000000\") }",
            json!({}),
        )
        .await;

    assert_eq!(before["data"]["me"]["email"], "ada@example.org");
    assert_no_errors(&cut);
    for v in [&me, &top_up, &wish] {
        assert_eq!(error_code(v), "UNAUTHENTICATED", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_session_closes_the_socket_and_stops_its_subscriptions() {
    let app = TestApp::spawn_with(|c| c.limits.ws_session_check = Duration::from_millis(50)).await;
    let addr = app.serve().await;
    let admin = app.admin_token().await;
    let ada = app.sign_up("ada@example.org", "Ada").await;
    let bob = app.sign_up("bob@example.org", "Bob").await;
    let bob_id = bob["account"]["id"].as_str().expect("id").to_owned();
    let mut ada_ws = Ws::open(addr, &[], Some(&token(&ada))).await;
    let mut bob_ws = Ws::open(addr, &[], Some(&token(&bob))).await;
    ada_ws.subscribe(NOTIFICATIONS, json!({})).await;
    bob_ws.subscribe(NOTIFICATIONS, json!({})).await;

    let signed_out = app
        .gql(
            Some(&token(&ada)),
            "mutation { signOutEverywhere }",
            json!({}),
        )
        .await;
    let ada_closed = ada_ws.closed().await;
    let banned = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { setAccountStatus(accountId: $id, status: BANNED) { status } }",
            json!({ "id": bob_id }),
        )
        .await;
    let bob_closed = bob_ws.closed().await;

    assert_no_errors(&signed_out);
    assert_no_errors(&banned);
    assert_eq!(ada_closed.map(|c| c.0), Some(4403), "sign-out everywhere");
    assert_eq!(bob_closed.map(|c| c.0), Some(4403), "ban");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closes_when_its_token_expires() {
    let app = TestApp::spawn_with(|c| {
        c.jwt.access_ttl = Duration::from_secs(2);
        c.limits.ws_session_check = Duration::from_secs(3600);
    })
    .await;
    let addr = app.serve().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let mut ws = Ws::open(addr, &[], Some(&token(&user))).await;
    ws.subscribe(NOTIFICATIONS, json!({})).await;

    let closed = ws.closed().await;
    let after = ws.next().await;

    assert_eq!(closed.map(|c| c.0), Some(4403));
    assert!(matches!(after, Frame::Closed(_)), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_cuts_the_sessions_as_a_ban_does() {
    let app = TestApp::spawn_with(|c| c.limits.ws_session_check = Duration::from_millis(50)).await;
    let addr = app.serve().await;
    let admin = app.admin_token().await;
    let ada = app.sign_up("ada@example.org", "Ada").await;
    let ada_id = ada["account"]["id"].as_str().expect("id").to_owned();
    let old_token = token(&ada);
    let mut ws = Ws::open(addr, &[], Some(&old_token)).await;
    ws.subscribe(NOTIFICATIONS, json!({})).await;

    let changed = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { setAccountRole(accountId: $id, role: PUBLISHER) { role } }",
            json!({ "id": ada_id }),
        )
        .await;
    let closed = ws.closed().await;
    let (old_status, _, _) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {old_token}")),
            ],
            ME,
            json!({}),
        )
        .await;
    let again = app.sign_in("ada@example.org", PASSWORD).await;
    let own = app
        .gql(
            Some(&admin),
            "mutation { setAccountRole(accountId: \"00000000-0000-0000-0000-000000000000\", role: USER) { role } }",
            json!({}),
        )
        .await;

    assert_eq!(
        changed["data"]["setAccountRole"]["role"], "PUBLISHER",
        "{changed}"
    );
    assert_eq!(closed.map(|c| c.0), Some(4403));
    assert_eq!(old_status, 401, "the old token (old role) is refused");
    assert_eq!(again["data"]["signIn"]["account"]["role"], "PUBLISHER");
    assert_eq!(error_code(&own), "NOT_FOUND");
}
