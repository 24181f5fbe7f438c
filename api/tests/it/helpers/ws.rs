//! A graphql-transport-ws client for tests: `Ws::open(addr, headers, init token)`.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What the server sent next.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    /// The socket closed, with the close code and reason when there was a close frame.
    Closed(Option<(u16, String)>),
    /// Nothing within 20 s.
    Silent,
}

pub struct Ws {
    socket: Socket,
    next_id: u64,
}

impl Ws {
    /// Opens `/graphql/ws` on `addr` with extra upgrade headers, sends `connection_init` (with
    /// the token, if any) and waits for the acknowledgement.
    pub async fn open(addr: SocketAddr, headers: &[(&str, &str)], token: Option<&str>) -> Ws {
        let mut ws = Ws::connect(addr, headers).await;
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        match ws.next().await {
            Frame::Json(v) if v["type"] == "connection_ack" => ws,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    /// Opens the socket only.
    pub async fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> Ws {
        let mut req = format!("ws://{addr}/graphql/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        for (k, v) in headers {
            req.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        let (socket, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        Ws { socket, next_id: 0 }
    }

    pub async fn send(&mut self, v: Value) {
        self.socket
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// The next frame (pings answered by the library are skipped).
    pub async fn next(&mut self) -> Frame {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), self.socket.next()).await {
                Err(_) => return Frame::Silent,
                Ok(None) => return Frame::Closed(None),
                Ok(Some(Err(_))) => return Frame::Closed(None),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Frame::Json(serde_json::from_str(&t).expect("json frame"));
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Frame::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Starts an operation; its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({ "id": id, "type": "subscribe",
                          "payload": { "query": query, "variables": variables } }))
            .await;
        id
    }

    /// Runs a query or mutation: the `payload` of its `next` (a GraphQL response), or of its
    /// `error` as `{ "errors": [...] }`.
    pub async fn run(&mut self, query: &str, variables: Value) -> Value {
        let id = self.subscribe(query, variables).await;
        loop {
            match self.next().await {
                Frame::Json(v) if v["id"] == id.as_str() && v["type"] == "next" => {
                    return v["payload"].clone();
                }
                Frame::Json(v) if v["id"] == id.as_str() && v["type"] == "error" => {
                    return json!({ "errors": v["payload"] });
                }
                Frame::Json(_) => {}
                other => panic!("expected the answer of operation {id}, got {other:?}"),
            }
        }
    }

    /// Reads until the socket closes; its close code and reason.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        loop {
            match self.next().await {
                Frame::Json(_) => {}
                Frame::Closed(c) => return c,
                Frame::Silent => panic!("the socket stayed open"),
            }
        }
    }
}
