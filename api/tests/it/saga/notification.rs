//! What the buyer is told: order updates and notifications pushed over the WebSocket.

use super::*;

#[tokio::test]
async fn subscriptions_push_order_updates_and_notifications() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Live", 700, false).await;
    let app = &shop.app;
    let schema = api::graphql::build_schema(app.state.clone());
    let buyer = api::infra::auth::Principal {
        id: app.account_id(&shop.buyer).await,
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
    let id = shop.placed(&[&ed], "order-1").await;
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

/// The WebSocket transport: graphql-transport-ws at `/graphql/ws`, the bearer token in the
/// `connection_init` payload; a bad token there is refused.
#[tokio::test]
async fn notifications_arrive_over_the_websocket() {
    use crate::helpers::ws::{Frame, Ws};

    let shop = shop(saga_settings()).await;
    let addr = shop.app.serve().await;
    let connect = |token: String| async move {
        let mut ws = Ws::connect(addr, &[]).await;
        ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        ws
    };
    // The next frame as JSON; `None` when the socket closes or 20 s pass.
    let json_of = |frame: Frame| match frame {
        Frame::Json(v) => Some(v),
        Frame::Closed(_) | Frame::Silent => None,
    };
    let mut ws = connect(shop.buyer.clone()).await;
    let ack = json_of(ws.next().await);
    ws.subscribe(
        "subscription { notificationReceived { kind title } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = shop.top_up(1500, CARD_OK, "ws-top-up").await;
    assert_no_errors(&t);
    let pushed = json_of(ws.next().await);
    let mut bad = connect("not-a-token".into()).await;
    let refused = json_of(bad.next().await);

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
