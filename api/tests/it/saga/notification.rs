//! What the buyer is told: order updates and notifications pushed over the WebSocket.

use super::*;

#[tokio::test]
async fn subscriptions_push_order_updates_and_notifications() {
    let shop = shop(saga_settings()).await;
    let (_, ed) = shop.product("Live", 700, false).await;
    let app = &shop.app;
    let schema = api::graphql::build_schema(app.state.clone());
    let me = app.gql(Some(&shop.buyer), ME, json!({})).await;
    let buyer = api::infra::auth::Principal {
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
    let placed = shop.place(&shop.buyer, &[&ed], "order-1").await;
    let id = placed["data"]["placeOrder"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
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

// ---- Physical copies (issue 5) ----
