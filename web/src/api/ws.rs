//! GraphQL subscriptions over WebSocket (`graphql-transport-ws`) at `/graphql/ws`, with the access
//! token in `connection_init`. A subscription lives as long as its [`Subscription`] handle
//! (pages keep it until their cleanup).
//!
//! The socket comes back by itself: when it closes without being asked to (the network, a
//! restarted api or gateway), it is opened again after a growing delay with jitter
//! ([`BACKOFF_BASE`] doubling up to [`BACKOFF_MAX`]), at once when the browser comes back
//! online, and with a refreshed token when the api refused the one sent. A ping every
//! [`KEEPALIVE`] notices a connection that died silently. Whatever happened while the socket was
//! down is not replayed: `on_resume` tells the page to fetch its data again (pages also poll
//! slowly, in case the socket cannot come back at all).

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use graphql_client::GraphQLQuery;
use leptos::leptos_dom::helpers::{
    IntervalHandle, TimeoutHandle, WindowListenerHandle, set_interval_with_handle,
    set_timeout_with_handle, window_event_listener_untyped,
};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::session;

const PROTOCOL: &str = "graphql-transport-ws";
const ID: &str = "1";
/// The first delay before reopening a socket that closed.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest delay between two attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the client pings an open socket.
const KEEPALIVE: Duration = Duration::from_secs(20);
/// A socket silent for this long (no pong, no message) is taken for dead and reopened.
const SILENCE_LIMIT_MS: f64 = 45_000.0;
/// The close codes that say the token was refused or ran out, after which the socket is opened
/// again with a refreshed token: the api's 4403 (a refused `connection_init` token, an expired
/// token, a session cut), 4401 (older apis, at expiry) and async-graphql's own 1002.
const CLOSE_TOKEN_REFUSED: [u16; 3] = [4403, 4401, 1002];

/// A running subscription; dropping it (or [`Subscription::close`]) ends it.
#[derive(Default)]
pub struct Subscription {
    socket: Option<WebSocket>,
    closed: bool,
    /// Attempts since the last acknowledged connection.
    attempt: u32,
    /// Whether a connection was acknowledged once (a later one is a resume).
    acked_once: bool,
    /// The token the api refused last: the next attempt refreshes it first.
    refused_token: Option<String>,
    /// `Date.now()` of the last message from the server.
    last_seen: f64,
    retry: Option<TimeoutHandle>,
    keepalive: Option<IntervalHandle>,
    _on_open: Option<Closure<dyn FnMut()>>,
    _on_message: Option<Closure<dyn FnMut(MessageEvent)>>,
    _on_close: Option<Closure<dyn FnMut(CloseEvent)>>,
    _online: Option<WindowListenerHandle>,
    start: Option<Rc<Start>>,
}

impl Subscription {
    /// Says `complete` and closes the socket; no reconnection follows.
    pub fn close(&mut self) {
        self.closed = true;
        if let Some(retry) = self.retry.take() {
            retry.clear();
        }
        if let Some(keepalive) = self.keepalive.take() {
            keepalive.clear();
        }
        if let Some(online) = self._online.take() {
            online.remove();
        }
        self.drop_socket(true);
    }

    /// Detaches the handlers from the current socket and closes it.
    fn drop_socket(&mut self, say_complete: bool) {
        if let Some(socket) = self.socket.take() {
            socket.set_onopen(None);
            socket.set_onmessage(None);
            socket.set_onclose(None);
            if say_complete && socket.ready_state() == WebSocket::OPEN {
                let complete = Outgoing::<()> {
                    id: Some(ID),
                    kind: "complete",
                    payload: None,
                };
                let _ = socket.send_with_str(&serde_json::to_string(&complete).unwrap_or_default());
            }
            let _ = socket.close();
        }
        self._on_open = None;
        self._on_message = None;
        self._on_close = None;
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
    subscribe_resuming::<Q>(variables, on_next, || {})
}

/// As [`subscribe`], and calls `on_resume` each time the socket is back after a break (the page
/// fetches again what it may have missed).
pub fn subscribe_resuming<Q>(
    variables: Q::Variables,
    on_next: impl Fn(Q::ResponseData) + 'static,
    on_resume: impl Fn() + 'static,
) -> Handle
where
    Q: GraphQLQuery + 'static,
{
    let handle: Handle = Rc::default();
    let subscribe = Outgoing {
        id: Some(ID),
        kind: "subscribe",
        payload: Some(super::body::<Q>(variables)),
    };
    let start = Rc::new(Start {
        subscribe: serde_json::to_string(&subscribe).unwrap_or_default(),
        on_next: Box::new(move |text| {
            let data = serde_json::from_str::<Next<Q::ResponseData>>(text)
                .ok()
                .and_then(|next| next.payload?.data);
            if let Some(data) = data {
                on_next(data);
            }
        }),
        on_resume: Box::new(on_resume),
    });
    // Back online: try again at once.
    let online = {
        let weak = Rc::downgrade(&handle);
        let start = Rc::clone(&start);
        window_event_listener_untyped("online", move |_| {
            if let Some(sub) = weak.upgrade() {
                let reopen = {
                    let mut s = sub.borrow_mut();
                    let waiting = s.socket.is_none() && !s.closed;
                    if waiting {
                        if let Some(retry) = s.retry.take() {
                            retry.clear();
                        }
                        s.attempt = 0;
                    }
                    waiting
                };
                if reopen {
                    connect(Rc::downgrade(&sub), Rc::clone(&start));
                }
            }
        })
    };
    handle.borrow_mut()._online = Some(online);
    // The keepalive: ping, and reopen a socket that went silent.
    let keepalive = {
        let weak = Rc::downgrade(&handle);
        set_interval_with_handle(
            move || {
                let Some(sub) = weak.upgrade() else {
                    return;
                };
                let mut s = sub.borrow_mut();
                let Some(socket) = s.socket.clone() else {
                    return;
                };
                if socket.ready_state() != WebSocket::OPEN {
                    return;
                }
                if js_sys::Date::now() - s.last_seen > SILENCE_LIMIT_MS {
                    // onclose does not fire for a socket closed this way (handlers detached).
                    s.drop_socket(false);
                    drop(s);
                    schedule(&sub, Rc::downgrade(&sub), None);
                } else {
                    let _ = socket.send_with_str(r#"{"type":"ping"}"#);
                }
            },
            KEEPALIVE,
        )
        .ok()
    };
    handle.borrow_mut().keepalive = keepalive;
    handle.borrow_mut().start = Some(Rc::clone(&start));
    connect(Rc::downgrade(&handle), start);
    handle
}

/// What a (re)connection needs: the `subscribe` message and the callbacks (`on_next` gets the
/// whole `next` message, and decodes its payload as its operation's type).
struct Start {
    subscribe: String,
    on_next: Box<dyn Fn(&str)>,
    on_resume: Box<dyn Fn()>,
}

/// A message the client sends (`connection_init`, `subscribe`). Messages are typed both ways,
/// never a `serde_json::Value`, whose encoder and decoder would weigh on the wasm.
#[derive(Serialize)]
struct Outgoing<'a, P> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

/// `connection_init`'s payload: the access token.
#[derive(Serialize)]
struct Init {
    #[serde(rename = "Authorization")]
    authorization: String,
}

/// The type of a message the server sends (the rest of it is skipped).
#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
}

/// A `next` message: the operation's result.
#[derive(Deserialize)]
struct Next<D> {
    payload: Option<Payload<D>>,
}

/// A result's data (its errors are not shown: the page fetches again on its own).
#[derive(Deserialize)]
struct Payload<D> {
    data: Option<D>,
}

/// Opens a socket for the subscription (after getting a token) and wires its handlers.
fn connect(weak: Weak<RefCell<Subscription>>, start: Rc<Start>) {
    leptos::task::spawn_local(async move {
        let Some(sub) = weak.upgrade() else {
            return;
        };
        let refused = sub.borrow_mut().refused_token.take();
        drop(sub);
        let token = match refused {
            // The api refused this token: a new one (or the one another tab got meanwhile).
            Some(stale) => session::refresh(Some(stale)).await.ok(),
            None => session::access_token_or_refresh().await.ok().flatten(),
        };
        let Some(sub) = weak.upgrade() else {
            return;
        };
        let Some(token) = token else {
            // The session could not be renewed just now (network, an overloaded store): try
            // again later. Signed out (the session ended): nothing to subscribe to.
            if session::has_stored_session() {
                schedule(&sub, weak, None);
            }
            return;
        };
        // Closed meanwhile, or another attempt (back online) already opened a socket.
        if sub.borrow().closed || sub.borrow().socket.is_some() {
            return;
        }
        let Some(socket) = open_socket() else {
            schedule(&sub, weak, None);
            return;
        };
        let init = serde_json::to_string(&Outgoing {
            id: None,
            kind: "connection_init",
            payload: Some(Init {
                authorization: format!("Bearer {token}"),
            }),
        })
        .unwrap_or_default();

        let on_open = {
            let socket = socket.clone();
            Closure::<dyn FnMut()>::new(move || {
                let _ = socket.send_with_str(&init);
            })
        };
        let on_message = {
            let socket = socket.clone();
            let weak = weak.clone();
            let start = Rc::clone(&start);
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let Some(sub) = weak.upgrade() else {
                    return;
                };
                sub.borrow_mut().last_seen = js_sys::Date::now();
                let Some(text) = event.data().as_string() else {
                    return;
                };
                let Ok(message) = serde_json::from_str::<Incoming>(&text) else {
                    return;
                };
                match message.kind.as_str() {
                    "connection_ack" => {
                        let resumed = {
                            let mut s = sub.borrow_mut();
                            s.attempt = 0;
                            std::mem::replace(&mut s.acked_once, true)
                        };
                        let _ = socket.send_with_str(&start.subscribe);
                        if resumed {
                            (start.on_resume)();
                        }
                    }
                    "ping" => {
                        let _ = socket.send_with_str(r#"{"type":"pong"}"#);
                    }
                    "next" => (start.on_next)(&text),
                    _ => {}
                }
            })
        };
        let on_close = {
            let weak = weak.clone();
            let token = token.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                let Some(sub) = weak.upgrade() else {
                    return;
                };
                let refused = {
                    let mut s = sub.borrow_mut();
                    let refused = CLOSE_TOKEN_REFUSED.contains(&event.code());
                    s.socket = None;
                    refused
                };
                schedule(&sub, weak.clone(), refused.then(|| token.clone()));
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut s = sub.borrow_mut();
        s.last_seen = js_sys::Date::now();
        s.socket = Some(socket);
        s._on_open = Some(on_open);
        s._on_message = Some(on_message);
        s._on_close = Some(on_close);
    });
}

/// Opens the socket again after the backoff delay, unless the subscription was closed.
fn schedule(sub: &Handle, weak: Weak<RefCell<Subscription>>, refused_token: Option<String>) {
    let mut s = sub.borrow_mut();
    if s.closed {
        return;
    }
    let Some(start) = s.start.clone() else {
        return;
    };
    if refused_token.is_some() {
        s.refused_token = refused_token;
    }
    let delay = backoff(s.attempt);
    s.attempt = s.attempt.saturating_add(1);
    if let Some(retry) = s.retry.take() {
        retry.clear();
    }
    s.retry = set_timeout_with_handle(
        move || {
            if let Some(sub) = weak.upgrade() {
                sub.borrow_mut().retry = None;
                connect(Rc::downgrade(&sub), start);
            }
        },
        delay,
    )
    .ok();
}

/// The delay before attempt `attempt` (0-based): `BACKOFF_BASE · 2^attempt`, at most
/// `BACKOFF_MAX`, with "full jitter" in its upper half so that many clients do not come back
/// all at once after the api restarts.
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(2_u32.saturating_pow(attempt.min(16)))
        .min(BACKOFF_MAX);
    let ms = ceiling.as_millis() as f64;
    Duration::from_millis((ms / 2.0 + js_sys::Math::random() * ms / 2.0) as u64)
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
