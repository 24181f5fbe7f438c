//! App-wide state: the signed-in account and the cart (kept in `localStorage`).

use domain::money::{Currency, Money};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::session::{self, Account};

const CART_KEY: &str = "store.cart";

/// Who is signed in; `None` when anonymous. `restoring` is true while a stored session whose
/// account is not known yet (stored by an older version of the app) is being refreshed.
#[derive(Clone, Copy)]
pub struct Auth {
    pub account: RwSignal<Option<Account>>,
    pub restoring: RwSignal<bool>,
}

impl Auth {
    pub fn signed_in(&self) -> bool {
        self.account.with(Option::is_some)
    }
}

/// The account state from context.
pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

/// Creates the account state from the stored session (no request: the stored access token is
/// used while valid and refreshed when a request needs it) and binds it to the session.
pub fn provide_auth() {
    let account = session::stored_account();
    let restoring = account.is_none() && session::has_stored_session();
    let auth = Auth {
        account: RwSignal::new(account),
        restoring: RwSignal::new(restoring),
    };
    session::bind_account_signal(auth.account);
    provide_context(auth);
    // Signing in or out in another tab changes the stored session: follow it here.
    let _ = window_event_listener(leptos::ev::storage, move |event| {
        let key = event.key();
        // `None`: the whole storage was cleared.
        if key.is_none()
            || key.as_deref() == Some(session::REFRESH_KEY)
            || key.as_deref() == Some(session::SESSION_KEY)
        {
            session::changed_elsewhere();
        }
    });
    if restoring {
        leptos::task::spawn_local(async move {
            let _ = session::refresh(None).await;
            auth.restoring.set(false);
        });
    }
}

/// One line of the cart: the edition and what it cost when it was added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartLine {
    pub edition_id: String,
    pub product_slug: String,
    pub product_title: String,
    pub edition_name: String,
    /// `DIGITAL` or `PHYSICAL`.
    pub kind: String,
    pub unit_price_minor: i64,
    pub currency: String,
    pub quantity: i64,
}

impl CartLine {
    pub fn is_physical(&self) -> bool {
        self.kind == "PHYSICAL"
    }
}

/// The cart, persisted in `localStorage` on every change.
#[derive(Clone, Copy)]
pub struct Cart(pub RwSignal<Vec<CartLine>>);

impl Cart {
    /// Adds an edition, or one more copy of a physical edition already in the cart.
    pub fn add(&self, line: CartLine) {
        self.0.update(
            |lines| match lines.iter_mut().find(|l| l.edition_id == line.edition_id) {
                Some(existing) if existing.is_physical() => existing.quantity += 1,
                Some(_) => {}
                None => lines.push(line),
            },
        );
    }

    pub fn remove(&self, edition_id: &str) {
        self.0
            .update(|lines| lines.retain(|l| l.edition_id != edition_id));
    }

    pub fn set_quantity(&self, edition_id: &str, quantity: i64) {
        self.0.update(|lines| {
            if let Some(line) = lines.iter_mut().find(|l| l.edition_id == edition_id) {
                line.quantity = quantity.clamp(1, 99);
            }
        });
    }

    pub fn clear(&self) {
        self.0.set(Vec::new());
    }

    /// Number of items (copies) in the cart.
    pub fn count(&self) -> i64 {
        self.0.with(|lines| lines.iter().map(|l| l.quantity).sum())
    }

    /// The total, formatted; `None` for an empty cart.
    pub fn total(&self) -> Option<String> {
        self.0.with(|lines| {
            let currency = Currency::parse(&lines.first()?.currency).ok()?;
            let minor = lines.iter().map(|l| l.unit_price_minor * l.quantity).sum();
            Some(Money { minor, currency }.format())
        })
    }
}

/// The cart from context.
pub fn use_cart() -> Cart {
    expect_context::<Cart>()
}

/// Loads the cart from `localStorage`, saves it on every change, and follows other tabs' changes.
pub fn provide_cart() {
    let cart = Cart(RwSignal::new(load_cart()));
    Effect::new(move |_| {
        let json = cart
            .0
            .with(|lines| serde_json::to_string(lines).unwrap_or_default());
        if let Some(storage) = storage() {
            let _ = storage.set_item(CART_KEY, &json);
        }
    });
    let _ = window_event_listener(leptos::ev::storage, move |event| {
        if event.key().as_deref() == Some(CART_KEY) {
            let lines = load_cart();
            if cart.0.with_untracked(|current| *current != lines) {
                cart.0.set(lines);
            }
        }
    });
    provide_context(cart);
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok()?
}

fn load_cart() -> Vec<CartLine> {
    storage()
        .and_then(|s| s.get_item(CART_KEY).ok()?)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// A fresh random key (UUID v4 from `crypto.randomUUID`) for an idempotent mutation.
pub fn idempotency_key() -> String {
    window()
        .crypto()
        .map(|crypto| crypto.random_uuid())
        .unwrap_or_else(|_| format!("{}-{}", js_sys::Date::now(), js_sys::Math::random()))
}

/// Formats minor units of `currency` (`1999`, `EUR` → `19.99 EUR`).
pub fn format_minor(minor: i64, currency: &str) -> String {
    Currency::parse(currency)
        .map(|currency| Money { minor, currency }.format())
        .unwrap_or_else(|_| format!("{minor} {currency}"))
}

/// Bumped when the caller's notifications change (one arrived, or they were read): the bell
/// asks for the unread count again.
#[derive(Clone, Copy)]
pub struct NotificationsChanged(pub RwSignal<u32>);

impl NotificationsChanged {
    pub fn bump(&self) {
        self.0.try_update(|n| *n += 1);
    }
}

/// The notification signal from context.
pub fn use_notifications_changed() -> NotificationsChanged {
    expect_context::<NotificationsChanged>()
}
