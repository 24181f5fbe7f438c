//! The session: the access token lives in memory only, the refresh token in `localStorage` so a
//! reload keeps the user signed in. Refreshes are serialised within the tab (one shared future)
//! and across tabs (Web Locks, when the browser has them): each refresh token works once, and
//! presenting a used one ends the whole session.

use std::cell::RefCell;
use std::rc::Rc;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::queries::{RefreshSession, SignOut, refresh_session};
use super::{ApiError, request_anonymous};

/// The `localStorage` key of the refresh token.
pub const REFRESH_KEY: &str = "store.refreshToken";
const LOCK_NAME: &str = "store.refresh";

/// The signed-in account, as the UI needs it.
#[derive(Debug, Clone, PartialEq)]
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

type RefreshFuture = Shared<LocalBoxFuture<'static, Result<String, ApiError>>>;

thread_local! {
    static ACCESS_TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
    static IN_FLIGHT: RefCell<Option<RefreshFuture>> = const { RefCell::new(None) };
    static ACCOUNT: RefCell<Option<RwSignal<Option<Account>>>> = const { RefCell::new(None) };
}

/// The signal the UI reads the account from; `App` creates it and hands it over once.
pub fn bind_account_signal(signal: RwSignal<Option<Account>>) {
    ACCOUNT.with(|slot| *slot.borrow_mut() = Some(signal));
}

fn set_account(account: Option<Account>) {
    if let Some(signal) = ACCOUNT.with(|slot| *slot.borrow()) {
        signal.set(account);
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn stored_refresh_token() -> Option<String> {
    storage()?.get_item(REFRESH_KEY).ok()?
}

fn store_refresh_token(token: Option<&str>) {
    if let Some(storage) = storage() {
        // Storage can be full or disabled; the session then lasts as long as the tab.
        let _ = match token {
            Some(token) => storage.set_item(REFRESH_KEY, token),
            None => storage.remove_item(REFRESH_KEY),
        };
    }
}

/// Whether a refresh token is stored (the user may be signed in after a reload).
pub fn has_stored_session() -> bool {
    stored_refresh_token().is_some()
}

/// Keeps a session that sign-in, sign-up or a refresh just returned.
pub fn start(session: NewSession) {
    ACCESS_TOKEN.with(|slot| *slot.borrow_mut() = Some(session.access_token));
    store_refresh_token(Some(&session.refresh_token));
    set_account(Some(session.account));
}

/// Forgets the session locally (tokens and account).
pub fn clear() {
    ACCESS_TOKEN.with(|slot| *slot.borrow_mut() = None);
    store_refresh_token(None);
    set_account(None);
}

/// The access token in memory, if any.
pub fn access_token() -> Option<String> {
    ACCESS_TOKEN.with(|slot| slot.borrow().clone())
}

/// Another tab signed out (it removed the refresh token): forget the session here too.
pub fn signed_out_elsewhere() {
    ACCESS_TOKEN.with(|slot| *slot.borrow_mut() = None);
    set_account(None);
}

/// The access token, refreshing first when only a refresh token is at hand (after a reload).
pub async fn access_token_or_refresh() -> Option<String> {
    if let Some(token) = ACCESS_TOKEN.with(|slot| slot.borrow().clone()) {
        return Some(token);
    }
    if !has_stored_session() {
        return None;
    }
    refresh().await.ok()
}

/// Trades the stored refresh token for a new pair, once at a time; on failure the session ends.
pub async fn refresh() -> Result<String, ApiError> {
    let future = IN_FLIGHT.with(|slot| {
        slot.borrow_mut()
            .get_or_insert_with(|| with_lock(refresh_now()).boxed_local().shared())
            .clone()
    });
    let result = future.await;
    IN_FLIGHT.with(|slot| *slot.borrow_mut() = None);
    result
}

async fn refresh_now() -> Result<String, ApiError> {
    // Read inside the lock: another tab may have rotated the token a moment ago.
    let Some(refresh_token) = stored_refresh_token() else {
        clear();
        return Err(ApiError::unauthenticated());
    };
    match request_anonymous::<RefreshSession>(refresh_session::Variables { refresh_token }).await {
        Ok(data) => {
            let p = data.refresh_session;
            let access = p.access_token.clone();
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
            Ok(access)
        }
        Err(error) => {
            // Only a refused token ends the session; a network error leaves it for the next try.
            if error.code.is_some() {
                clear();
            }
            Err(error)
        }
    }
}

/// Runs `work` holding the cross-tab lock `store.refresh` (navigator.locks), or directly where
/// the browser has no Web Locks.
async fn with_lock(
    work: impl Future<Output = Result<String, ApiError>> + 'static,
) -> Result<String, ApiError> {
    let Some((locks, request)) = web_locks() else {
        return work.await;
    };
    let result = Rc::new(RefCell::new(None));
    let slot = Rc::clone(&result);
    let callback: Closure<dyn FnMut(JsValue) -> js_sys::Promise> =
        Closure::once(move |_lock: JsValue| {
            wasm_bindgen_futures::future_to_promise(async move {
                *slot.borrow_mut() = Some(work.await);
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
    result
        .borrow_mut()
        .take()
        .unwrap_or_else(|| Err(ApiError::unauthenticated()))
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

/// Ends this session on the server (best effort) and locally.
pub async fn sign_out() {
    if let Some(refresh_token) = stored_refresh_token() {
        let _ = request_anonymous::<SignOut>(super::queries::sign_out::Variables { refresh_token })
            .await;
    }
    clear();
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
pub fn enum_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
