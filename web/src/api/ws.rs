//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`) at `/graphql/ws`, with the access
//! token in `connection_init`. A subscription lives as long as its [`Subscription`] handle
//! (pages keep it until their cleanup); pages still poll slowly in case the socket drops.

use std::cell::RefCell;
use std::rc::Rc;

use graphql_client::{GraphQLQuery, Response};
use serde_json::json;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, WebSocket};

use super::session;

const PROTOCOL: &str = "graphql-transport-ws";
const ID: &str = "1";

/// A running subscription; dropping it (or [`Subscription::close`]) ends it.
#[derive(Default)]
pub struct Subscription {
    socket: Option<WebSocket>,
    closed: bool,
    _on_open: Option<Closure<dyn FnMut()>>,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
}

impl Subscription {
    /// Says `complete` and closes the socket.
    pub fn close(&mut self) {
        self.closed = true;
        if let Some(socket) = self.socket.take() {
            if socket.ready_state() == WebSocket::OPEN {
                let _ = socket.send_with_str(&json!({ "id": ID, "type": "complete" }).to_string());
            }
            let _ = socket.close();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.close();
    }
}

/// Shared handle, so the page can close it on cleanup while the socket is still being opened.
pub type Handle = Rc<RefCell<Subscription>>;

/// Subscribes to `Q` as the signed-in user and calls `on_next` with each result.
pub fn subscribe<Q>(variables: Q::Variables, on_next: impl Fn(Q::ResponseData) + 'static) -> Handle
where
    Q: GraphQLQuery + 'static,
{
    let handle: Handle = Rc::default();
    let slot = Rc::clone(&handle);
    leptos::task::spawn_local(async move {
        let Some(token) = session::access_token_or_refresh().await else {
            return;
        };
        if slot.borrow().closed {
            return;
        }
        let Some(socket) = open_socket() else {
            return;
        };
        let subscribe =
            json!({ "id": ID, "type": "subscribe", "payload": Q::build_query(variables) })
                .to_string();
        let init = json!({
            "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") },
        })
        .to_string();

        let on_open = {
            let socket = socket.clone();
            Closure::<dyn FnMut()>::new(move || {
                let _ = socket.send_with_str(&init);
            })
        };
        let on_message = {
            let socket = socket.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Some(text) = event.data().as_string() else {
                    return;
                };
                let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
                    return;
                };
                match message.get("type").and_then(|t| t.as_str()) {
                    Some("connection_ack") => {
                        let _ = socket.send_with_str(&subscribe);
                    }
                    Some("ping") => {
                        let _ = socket.send_with_str(r#"{"type":"pong"}"#);
                    }
                    Some("next") => {
                        let data = message
                            .get("payload")
                            .cloned()
                            .and_then(|p| {
                                serde_json::from_value::<Response<Q::ResponseData>>(p).ok()
                            })
                            .and_then(|r| r.data);
                        if let Some(data) = data {
                            on_next(data);
                        }
                    }
                    _ => {}
                }
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let mut sub = slot.borrow_mut();
        sub.socket = Some(socket);
        sub._on_open = Some(on_open);
        sub._on_message = Some(on_message);
    });
    handle
}

fn open_socket() -> Option<WebSocket> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let url = format!("{scheme}://{}/graphql/ws", location.host().ok()?);
    WebSocket::new_with_str(&url, PROTOCOL).ok()
}
