//! The session. Both tokens live in `localStorage`, shared by the app's tabs: the refresh token,
//! and the access token with the moment it stops being usable and the account it belongs to. A
//! reload or a new tab therefore uses the stored access token while it is valid instead of
//! rotating the refresh token: each refresh token works once, presenting a used one ends the whole
//! session family, and a refresh cut off by a page load (its answer lost with the page) would do
//! exactly that on the next load.
//!
//! Refreshes are serialised within the tab (one shared future) and across tabs (Web Locks, when
//! the browser has them). Holding the lock, a refresh first looks again at what is stored:
//! when another tab has refreshed meanwhile, its token is used and nothing is sent. The new
//! refresh token is written to storage (before anything else) while the lock is still held.
//!
//! The lock is atomic, but `localStorage` is not: another tab's process sees a write some time
//! later, and on a busy machine that can be after the lock has passed to it. So the tab that
//! refreshed also records the trade (which refresh token it gave, what it got) in IndexedDB,
//! whose transactions every tab sees in commit order, before it lets the lock go; a tab that
//! holds the lock and still reads the old refresh token takes the recorded session instead of
//! presenting a used token a second time.

use std::cell::RefCell;
use std::rc::Rc;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::queries::{RefreshSession, SignOut, refresh_session};
use super::{ApiError, request_anonymous};

/// The `localStorage` key of the refresh token.
pub const REFRESH_KEY: &str = "store.refreshToken";
/// The `localStorage` key of the access token, its expiry and its account ([`Stored`]).
pub const SESSION_KEY: &str = "store.session";
const LOCK_NAME: &str = "store.refresh";
/// An access token this close to its end (milliseconds) is refreshed before use, so that it
/// does not expire on its way through the gateway.
const EXPIRY_MARGIN_MS: f64 = 60_000.0;

/// The signed-in account, as the UI needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `USER`, `PUBLISHER` or `ADMIN`.
    pub role: String,
}

/// A new pair of tokens and its account, from sign-in, sign-up or refresh.
pub struct NewSession {
    pub access_token: String,
    pub refresh_token: String,
    pub account: Account,
}

/// What `localStorage` keeps under [`SESSION_KEY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    access_token: String,
    /// When the token stops being usable, in this browser's clock (`Date.now()`, ms): the
    /// token's own lifetime (`exp - iat`) counted from when it arrived, so a wrong clock on
    /// the device does not matter.
    expires_at: f64,
    account: Account,
}

impl Stored {
    fn fresh(&self) -> bool {
        self.expires_at - js_sys::Date::now() > EXPIRY_MARGIN_MS
    }
}

type RefreshFuture = Shared<LocalBoxFuture<'static, Result<String, ApiError>>>;

thread_local! {
    static IN_FLIGHT: RefCell<Option<RefreshFuture>> = const { RefCell::new(None) };
    static ACCOUNT: RefCell<Option<RwSignal<Option<Account>>>> = const { RefCell::new(None) };
}

/// The signal the UI reads the account from; `App` creates it and hands it over once.
pub fn bind_account_signal(signal: RwSignal<Option<Account>>) {
    ACCOUNT.with(|slot| *slot.borrow_mut() = Some(signal));
}

fn set_account(account: Option<Account>) {
    if let Some(signal) = ACCOUNT.with(|slot| *slot.borrow()) {
        // Setting an equal account would rebuild whatever reads it.
        if signal.with_untracked(|current| *current != account) {
            signal.set(account);
        }
    }
}

/// The last refresh of this browser: the refresh token given and the session received.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Trade {
    gave: String,
    refresh_token: String,
    session: Stored,
}

/// The IndexedDB key of the last [`Trade`].
const TRADE_KEY: &str = "lastRefresh";

#[wasm_bindgen(inline_js = r#"
function open() {
  return new Promise((ok, fail) => {
    const r = indexedDB.open('store.session', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('kv');
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
}
export async function kv_get(key) {
  const db = await open();
  try {
    return await new Promise((ok, fail) => {
      const q = db.transaction('kv', 'readonly').objectStore('kv').get(key);
      q.onsuccess = () => ok(typeof q.result === 'string' ? q.result : null);
      q.onerror = () => fail(q.error);
    });
  } finally { db.close(); }
}
export async function kv_put(key, value) {
  const db = await open();
  try {
    await new Promise((ok, fail) => {
      const t = db.transaction('kv', 'readwrite');
      t.objectStore('kv').put(value, key);
      t.oncomplete = () => ok();
      t.onerror = () => fail(t.error);
      t.onabort = () => fail(t.error);
    });
  } finally { db.close(); }
}
"#)]
extern "C" {
    #[wasm_bindgen(catch)]
    async fn kv_get(key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn kv_put(key: &str, value: &str) -> Result<JsValue, JsValue>;
}

/// The session another tab received for `refresh_token`, if it traded that token and the
/// access token it got is still fresh. `None` also where IndexedDB is unavailable.
async fn traded(refresh_token: &str) -> Option<(String, Stored)> {
    let json = kv_get(TRADE_KEY).await.ok()?.as_string()?;
    let trade: Trade = serde_json::from_str(&json).ok()?;
    (trade.gave == refresh_token && trade.session.fresh())
        .then_some((trade.refresh_token, trade.session))
}

/// Records that `gave` was traded for `refresh_token` and `session` (best effort: without
/// IndexedDB the other tabs fall back to what `localStorage` shows them).
async fn record_trade(gave: String, refresh_token: String, session: Stored) {
    let trade = Trade {
        gave,
        refresh_token,
        session,
    };
    if let Ok(json) = serde_json::to_string(&trade) {
        let _ = kv_put(TRADE_KEY, &json).await;
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn stored_refresh_token() -> Option<String> {
    storage()?.get_item(REFRESH_KEY).ok()?
}

fn stored() -> Option<Stored> {
    let json = storage()?.get_item(SESSION_KEY).ok()??;
    serde_json::from_str(&json).ok()
}

/// How long an access token is valid (ms), from its `exp - iat`; 0 when it cannot be read.
fn lifetime_ms(token: &str) -> f64 {
    #[derive(Deserialize)]
    struct Claims {
        exp: f64,
        iat: f64,
    }
    let claims = token.split('.').nth(1).and_then(|payload| {
        let mut b64 = payload.replace('-', "+").replace('_', "/");
        while b64.len() % 4 != 0 {
            b64.push('=');
        }
        let json = web_sys::window()?.atob(&b64).ok()?;
        serde_json::from_str::<Claims>(&json).ok()
    });
    claims.map_or(0.0, |c| ((c.exp - c.iat) * 1000.0).max(0.0))
}

/// Whether a refresh token is stored (the user may be signed in after a reload).
pub fn has_stored_session() -> bool {
    stored_refresh_token().is_some()
}

/// The account of the stored session, when both tokens are stored (no request needed).
pub fn stored_account() -> Option<Account> {
    has_stored_session()
        .then(stored)
        .flatten()
        .map(|stored| stored.account)
}

/// Keeps a session that sign-in, sign-up or a refresh just returned. The refresh token is
/// written first: it is the one whose loss ends the session.
pub fn start(session: NewSession) {
    let expires_at = js_sys::Date::now() + lifetime_ms(&session.access_token);
    let stored = Stored {
        access_token: session.access_token,
        expires_at,
        account: session.account,
    };
    keep(&session.refresh_token, stored);
}

/// Writes a session to `localStorage` (the refresh token first) and shows its account.
fn keep(refresh_token: &str, stored: Stored) {
    let account = stored.account.clone();
    if let Some(storage) = storage() {
        // Storage can be full or disabled; the session then ends with the page.
        let _ = storage.set_item(REFRESH_KEY, refresh_token);
        let _ = storage.set_item(
            SESSION_KEY,
            &serde_json::to_string(&stored).unwrap_or_default(),
        );
    }
    set_account(Some(account));
}

/// Forgets the session locally (tokens and account).
pub fn clear() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(REFRESH_KEY);
        let _ = storage.remove_item(SESSION_KEY);
    }
    set_account(None);
}

/// Another tab changed the session (`storage` event): follow it here.
pub fn changed_elsewhere() {
    set_account(stored_account());
}

/// A usable access token: the stored one while it is valid, else a refreshed one; `None` for
/// visitors (and when the api refused the refresh: the session has ended). An error when the
/// session could not be renewed just now (the network, a `429`, a `5xx`): the session stays, and
/// sending the request anonymously instead would only earn a misleading "sign in".
pub async fn access_token_or_refresh() -> Result<Option<String>, ApiError> {
    if !has_stored_session() {
        return Ok(None);
    }
    match stored() {
        Some(stored) if stored.fresh() => Ok(Some(stored.access_token)),
        _ => match refresh(None).await {
            Ok(token) => Ok(Some(token)),
            Err(error) if error.is_unauthenticated() => Ok(None),
            Err(error) => Err(error),
        },
    }
}

/// A new access token, trading the stored refresh token for a new pair, once at a time; on a
/// refusal the session ends. `stale` is the token the gateway just refused (a `401`): a stored
/// token other than it, still valid, was refreshed by someone else meanwhile and is used as is.
pub async fn refresh(stale: Option<String>) -> Result<String, ApiError> {
    let future = IN_FLIGHT.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| {
                async move {
                    let result = with_lock(refresh_now(stale)).await.unwrap_or_else(|| {
                        Err(ApiError::new("The session could not be renewed.", None))
                    });
                    // Done: the next caller starts anew (and then finds the fresh token).
                    IN_FLIGHT.with(|slot| *slot.borrow_mut() = None);
                    result
                }
                .boxed_local()
                .shared()
            })
            .clone()
    });
    future.await
}

async fn refresh_now(stale: Option<String>) -> Result<String, ApiError> {
    // Read inside the lock: another tab may have rotated the tokens a moment ago.
    if let Some(stored) = stored().filter(|s| s.fresh() && Some(&s.access_token) != stale.as_ref())
    {
        set_account(Some(stored.account));
        return Ok(stored.access_token);
    }
    let Some(refresh_token) = stored_refresh_token() else {
        clear();
        return Err(ApiError::unauthenticated());
    };
    // This tab's storage may not show yet what the tab that held the lock before wrote.
    if let Some((successor, session)) = traded(&refresh_token).await {
        let access = session.access_token.clone();
        keep(&successor, session);
        return Ok(access);
    }
    let gave = refresh_token.clone();
    match request_anonymous::<RefreshSession>(refresh_session::Variables { refresh_token }).await {
        Ok(data) => {
            let p = data.refresh_session;
            let access = p.access_token.clone();
            let successor = p.refresh_token.clone();
            start(NewSession {
                access_token: p.access_token,
                refresh_token: p.refresh_token,
                account: Account {
                    id: p.account.id,
                    email: p.account.email,
                    display_name: p.account.display_name,
                    role: enum_name(&p.account.role),
                },
            });
            // Recorded before the lock is let go: the next holder sees it whatever its storage
            // shows.
            if let Some(session) = stored() {
                record_trade(gave, successor, session).await;
            }
            Ok(access)
        }
        Err(error) => {
            // Only the api refusing the token (`UNAUTHENTICATED`: unknown, expired, revoked or
            // already used) ends the session. A network error, a `429` of the gateway or a
            // `5xx` leave the stored session for the next try: forgetting it then signed the
            // user out although the server still held the session.
            if error.is_unauthenticated() {
                clear();
            }
            Err(error)
        }
    }
}

/// Runs `work` holding the cross-tab lock `store.refresh` (navigator.locks), or directly where
/// the browser has no Web Locks; `None` only if the lock was granted and then lost before the
/// work finished (the page is going away).
async fn with_lock<T: 'static>(work: impl Future<Output = T> + 'static) -> Option<T> {
    let Some((locks, request)) = web_locks() else {
        return Some(work.await);
    };
    let result = Rc::new(RefCell::new(None));
    let slot = Rc::clone(&result);
    let work = Rc::new(RefCell::new(Some(work.boxed_local())));
    let queued = Rc::clone(&work);
    let callback: Closure<dyn FnMut(JsValue) -> js_sys::Promise> =
        Closure::once(move |_lock: JsValue| {
            wasm_bindgen_futures::future_to_promise(async move {
                let work = queued.borrow_mut().take();
                if let Some(work) = work {
                    let value = work.await;
                    *slot.borrow_mut() = Some(value);
                }
                Ok(JsValue::UNDEFINED)
            })
        });
    let promise = request
        .call2(&locks, &JsValue::from_str(LOCK_NAME), callback.as_ref())
        .ok()
        .and_then(|value| value.dyn_into::<js_sys::Promise>().ok());
    if let Some(promise) = promise {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    drop(callback);
    let done = result.borrow_mut().take();
    if done.is_some() {
        return done;
    }
    // The lock could not be taken (the callback never ran): do the work without it.
    let work = work.borrow_mut().take();
    match work {
        Some(work) => Some(work.await),
        None => None,
    }
}

fn web_locks() -> Option<(JsValue, js_sys::Function)> {
    let navigator = web_sys::window()?.navigator();
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    if locks.is_undefined() || locks.is_null() {
        return None;
    }
    let request = js_sys::Reflect::get(&locks, &JsValue::from_str("request")).ok()?;
    Some((locks, request.dyn_into().ok()?))
}

/// Ends this session on the server (best effort) and locally. Holds the refresh lock, so it
/// neither races a refresh of this tab nor one of another tab.
pub async fn sign_out() {
    with_lock(async {
        if let Some(refresh_token) = stored_refresh_token() {
            let _ =
                request_anonymous::<SignOut>(super::queries::sign_out::Variables { refresh_token })
                    .await;
        }
        clear();
    })
    .await;
}

/// Ends every session of the account, on every device, then this one locally.
pub async fn sign_out_everywhere() {
    let _ = super::request::<super::queries::SignOutEverywhere>(
        super::queries::sign_out_everywhere::Variables {},
    )
    .await;
    clear();
}

/// The GraphQL name of a generated enum value (`USER`, `DIGITAL`…).
pub fn enum_name(value: &impl Serialize) -> String {
    // Its JSON is the name in quotes (written as text: a `serde_json::Value` would cost the
    // wasm its whole encoder).
    serde_json::to_string(value)
        .ok()
        .and_then(|json| {
            json.strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .map(str::to_owned)
        })
        .unwrap_or_default()
}
