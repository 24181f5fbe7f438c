//! The app shell: router, header (navigation, cart, notification bell, account), footer.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::{Outlet, ParentRoute, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;

use crate::api::queries::{NotificationReceived, UnreadCount, notification_received, unread_count};
use crate::api::ws;
use crate::api::{self, session};
use crate::components::{Loading, PageLink, SignedIn, use_bundle};
use crate::page::{Bundle, Page};
use crate::pages;
use crate::state::{
    NotificationsChanged, provide_auth, provide_cart, use_auth, use_cart, use_notifications_changed,
};

/// The store's name, shown in the header and the footer.
const STORE_NAME: &str = "Store";
/// How often the bell asks for the unread count.
const BELL_POLL: Duration = Duration::from_secs(20);

/// What a visitor comes to (the `web` bundle, `index.html`), mounted on `<body>`.
#[component]
pub fn StoreApp() -> impl IntoView {
    provide_app_state(Bundle::Store);
    view! {
        <Router>
            <Routes fallback=|| view! { <Layout><Elsewhere /></Layout> }>
                <ParentRoute path=path!("") view=|| view! { <Layout><Outlet /></Layout> }>
                    <Route path=path!("") view=pages::store::Storefront />
                    <Route path=path!("sign-in") view=pages::auth::SignIn />
                    <Route path=path!("sign-up") view=pages::auth::SignUp />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// A product's page (the `product` bundle, `product.html`), mounted on `<body>`.
#[component]
pub fn ProductApp() -> impl IntoView {
    provide_app_state(Bundle::Product);
    view! {
        <Router>
            <Routes fallback=|| view! { <Layout><Elsewhere /></Layout> }>
                <ParentRoute path=path!("") view=|| view! { <Layout><Outlet /></Layout> }>
                    <Route path=path!("products/:slug") view=pages::product::ProductPage />
                    <Route path=path!("bundles/:slug") view=pages::bundle::BundlePage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The shopper's own pages (the `account` bundle, `account.html`), mounted on `<body>`.
#[component]
pub fn AccountApp() -> impl IntoView {
    provide_app_state(Bundle::Account);
    view! {
        <Router>
            <Routes fallback=|| view! { <Layout><Elsewhere /></Layout> }>
                <ParentRoute path=path!("") view=|| view! { <Layout><Outlet /></Layout> }>
                    <Route path=path!("cart") view=pages::cart::CartPage />
                    <Route path=path!("checkout") view=pages::cart::Checkout />
                    <Route path=path!("orders") view=|| view! { <SignedIn><pages::orders::Orders /></SignedIn> } />
                    <Route path=path!("orders/:id") view=|| view! { <SignedIn><pages::orders::OrderPage /></SignedIn> } />
                    <Route path=path!("orders/:id/receipt") view=|| view! { <SignedIn><pages::orders::ReceiptPage /></SignedIn> } />
                    <Route path=path!("wallet") view=|| view! { <SignedIn><pages::wallet::WalletPage /></SignedIn> } />
                    <Route path=path!("library") view=|| view! { <SignedIn><pages::library::Library /></SignedIn> } />
                    <Route path=path!("wishlist") view=|| view! { <SignedIn><pages::library::Wishlist /></SignedIn> } />
                    <Route path=path!("notifications") view=|| view! { <SignedIn><pages::notifications::Notifications /></SignedIn> } />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The publisher's and the admin's pages (the `manage` bundle, `manage.html`), mounted on
/// `<body>`.
#[component]
pub fn ManageApp() -> impl IntoView {
    provide_app_state(Bundle::Manage);
    view! {
        <Router>
            <Routes fallback=|| view! { <Layout><Elsewhere /></Layout> }>
                <ParentRoute path=path!("") view=|| view! { <Layout><Outlet /></Layout> }>
                    <Route path=path!("publisher") view=|| view! { <SignedIn><pages::publisher::Publisher /></SignedIn> } />
                    <Route path=path!("admin") view=|| view! { <SignedIn><pages::admin::Admin /></SignedIn> } />
                    <Route path=path!("admin/orders") view=|| view! { <SignedIn><pages::admin_orders::AdminOrders /></SignedIn> } />
                    <Route path=path!("admin/refunds") view=|| view! { <SignedIn><pages::refunds::AdminRefunds /></SignedIn> } />
                    <Route path=path!("admin/audit") view=|| view! { <SignedIn><pages::audit::AuditLog /></SignedIn> } />
                    <Route path=path!("admin/operations") view=|| view! { <SignedIn><pages::operations::Operations /></SignedIn> } />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// What every page of either bundle finds in its context.
fn provide_app_state(bundle: Bundle) {
    crossing::arrived(bundle);
    provide_context(bundle);
    provide_auth();
    provide_cart();
    provide_context(NotificationsChanged(RwSignal::new(0)));
}

/// A path no route of this bundle serves: the other bundle's page (loaded in full, as the
/// router of this one cannot show it), else "Page not found".
#[component]
fn Elsewhere() -> impl IntoView {
    let here = use_bundle();
    let location = leptos_router::hooks::use_location();
    move || {
        let path = location.pathname.get();
        if Bundle::of_path(&path) != here {
            // The router keeps the query without its `?` (and the fragment with its `#`).
            let search = location.search.get_untracked();
            let target = format!(
                "{path}{}{search}{}",
                if search.is_empty() { "" } else { "?" },
                location.hash.get_untracked()
            );
            if crossing::leave(&target) {
                return view! { <Loading /> }.into_any();
            }
        }
        view! { <NotFound /> }.into_any()
    }
}

/// Going to the other bundle: a full page load, guarded against a loop (a server that answers
/// the other bundle's path with this bundle's page, as `trunk serve` would).
mod crossing {
    use crate::page::Bundle;

    /// `sessionStorage` key: the path this tab is loading in full to reach the other bundle.
    const KEY: &str = "store.crossing";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.session_storage().ok()?
    }

    /// At start: the page reached its bundle, so a crossing to it has ended.
    pub fn arrived(bundle: Bundle) {
        let path = web_sys::window().and_then(|w| w.location().pathname().ok());
        if path.is_some_and(|path| Bundle::of_path(&path) == bundle)
            && let Some(storage) = storage()
        {
            let _ = storage.remove_item(KEY);
        }
    }

    /// Loads `target` in full (replacing the entry the router pushed for it); false when this
    /// tab has just tried that and was served this bundle again.
    pub fn leave(target: &str) -> bool {
        let Some(window) = web_sys::window() else {
            return false;
        };
        let storage = storage();
        let tried = storage
            .as_ref()
            .and_then(|s| s.get_item(KEY).ok().flatten())
            .is_some_and(|tried| tried == target);
        if let Some(storage) = &storage {
            let _ = if tried {
                storage.remove_item(KEY)
            } else {
                storage.set_item(KEY, target)
            };
        }
        !tried && window.location().replace(target).is_ok()
    }
}

/// The tab's title of a path, until the page names itself more precisely (a product, an order).
fn title_of(path: &str) -> &'static str {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        "" => "",
        "products" => "Product",
        "sign-in" => "Sign in",
        "sign-up" => "Create an account",
        "cart" => "Cart",
        "checkout" => "Checkout",
        "orders" if path.trim_end_matches('/') == "/orders" => "Your orders",
        "orders" if path.trim_end_matches('/').ends_with("/receipt") => "Receipt",
        "orders" => "Order",
        "wallet" => "Wallet",
        "library" => "Library",
        "wishlist" => "Wishlist",
        "notifications" => "Notifications",
        "publisher" => "Publisher",
        "admin" => match path.trim_end_matches('/') {
            "/admin/orders" => "All orders",
            "/admin/refunds" => "Refund requests",
            "/admin/audit" => "Audit log",
            "/admin/operations" => "Operations",
            _ => "Admin",
        },
        _ => "Page not found",
    }
}

/// Header, the page, footer.
#[component]
fn Layout(children: Children) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        crate::words::set_title(title_of(&location.pathname.get()));
    });
    view! {
        <a class="skip-link" href="#main">
            "Skip to content"
        </a>
        <Header />
        <main id="main" class="site-main container" tabindex="-1">
            {children()}
        </main>
        <Footer />
    }
}

#[component]
fn Header() -> impl IntoView {
    let auth = use_auth();
    let cart = use_cart();
    let role = move || {
        auth.account
            .with(|a| a.as_ref().map(|a| a.role.clone()).unwrap_or_default())
    };
    view! {
        <header class="site-header">
            <div class="container site-header__inner">
                <PageLink page=Page::Store class="brand">
                    {STORE_NAME}
                </PageLink>
                <nav aria-label="Main">
                    <ul class="nav">
                        <li>
                            <PageLink page=Page::Store exact=true class="nav__link">
                                "Store"
                            </PageLink>
                        </li>
                        <Show when=move || auth.signed_in()>
                            <li>
                                <PageLink page=Page::Library class="nav__link">
                                    "Library"
                                </PageLink>
                            </li>
                            <li>
                                <PageLink page=Page::Wallet class="nav__link">
                                    "Wallet"
                                </PageLink>
                            </li>
                            <li>
                                <Bell />
                            </li>
                        </Show>
                        <Show when=move || role() == "PUBLISHER">
                            <li>
                                <PageLink page=Page::Publisher class="nav__link">
                                    "Publisher"
                                </PageLink>
                            </li>
                        </Show>
                        <Show when=move || role() == "ADMIN">
                            <li>
                                <PageLink page=Page::Admin exact=true class="nav__link">
                                    "Admin"
                                </PageLink>
                            </li>
                            <li>
                                <PageLink page=Page::AdminOrders class="nav__link">
                                    "All orders"
                                </PageLink>
                            </li>
                            <li>
                                <PageLink page=Page::AdminRefunds class="nav__link">
                                    "Refunds"
                                </PageLink>
                            </li>
                            <li>
                                <PageLink page=Page::AdminAudit class="nav__link">
                                    "Audit log"
                                </PageLink>
                            </li>
                            <li>
                                <PageLink page=Page::AdminOperations class="nav__link">
                                    "Operations"
                                </PageLink>
                            </li>
                        </Show>
                        <li>
                            <PageLink page=Page::Cart class="nav__link nav__cart">
                                "Cart"
                                <span class="badge" aria-label="items in the cart">
                                    {move || cart.count()}
                                </span>
                            </PageLink>
                        </li>
                        <li>
                            <AccountMenu />
                        </li>
                    </ul>
                </nav>
            </div>
        </header>
    }
}

/// "Sign in" for visitors; for the signed-in, a menu with their pages and the sign-outs.
#[component]
fn AccountMenu() -> impl IntoView {
    let auth = use_auth();
    let navigate = use_navigate();
    let sign_out = Action::new_local(move |everywhere: &bool| {
        let everywhere = *everywhere;
        async move {
            if everywhere {
                session::sign_out_everywhere().await;
            } else {
                session::sign_out().await;
            }
        }
    });
    Effect::new(move |_| {
        if sign_out.version().get() > 0 && !sign_out.pending().get() {
            navigate(&Page::Store.href(), Default::default());
        }
    });
    // The menu closes when a page is chosen (it would stay open over the next page).
    let menu = NodeRef::<leptos::html::Details>::new();
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        location.pathname.track();
        if let Some(details) = menu.get_untracked() {
            details.set_open(false);
        }
    });
    view! {
        {move || match auth.account.get() {
            Some(account) => {
                view! {
                    <details class="account" node_ref=menu>
                        <summary class="nav__link">{account.display_name}</summary>
                        <ul class="account__menu">
                            <li><PageLink page=Page::Orders>"Orders"</PageLink></li>
                            <li><PageLink page=Page::Wishlist>"Wishlist"</PageLink></li>
                            <li>
                                <button class="link" type="button" on:click=move |_| { sign_out.dispatch(false); }>
                                    "Sign out"
                                </button>
                            </li>
                            <li>
                                <button class="link" type="button" on:click=move |_| { sign_out.dispatch(true); }>
                                    "Sign out everywhere"
                                </button>
                            </li>
                        </ul>
                    </details>
                }
                    .into_any()
            }
            None if auth.restoring.get() => {
                view! { <span class="account account--restoring" aria-busy="true">"…"</span> }.into_any()
            }
            None => {
                view! {
                    <PageLink page=Page::SignIn class="nav__link nav__link--primary">
                        "Sign in"
                    </PageLink>
                }
                    .into_any()
            }
        }}
    }
}

/// The notification bell with the live unread count: a subscription to new notifications, and a
/// poll every [`BELL_POLL`] in case the socket is down.
#[component]
fn Bell() -> impl IntoView {
    let changed = use_notifications_changed();
    let tick = changed.0;
    let live = StoredValue::new_local(None::<ws::Handle>);
    Effect::new(move |_| {
        let handle = ws::subscribe_resuming::<NotificationReceived>(
            notification_received::Variables {},
            move |_| changed.bump(),
            move || changed.bump(),
        );
        live.set_value(Some(handle));
    });
    let count = LocalResource::new(move || {
        tick.track();
        async move {
            api::request::<UnreadCount>(unread_count::Variables {})
                .await
                .map(|data| data.unread_notification_count)
                .unwrap_or(0)
        }
    });
    if let Ok(handle) = set_interval_with_handle(move || changed.bump(), BELL_POLL) {
        on_cleanup(move || handle.clear());
    }
    let unread = move || count.get().unwrap_or(0);
    view! {
        <PageLink page=Page::Notifications class="nav__link bell">
            <svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
                <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
                <path d="M13.73 21a2 2 0 0 1-3.46 0" />
            </svg>
            <span class="visually-hidden">"Notifications"</span>
            <Show when=move || { unread() > 0 }>
                <span class="badge badge--alert" aria-label="unread">
                    {unread}
                </span>
            </Show>
        </PageLink>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="page">
            <h1>"Page not found"</h1>
            <p>
                <PageLink page=Page::Store>"Back to the store"</PageLink>
            </p>
        </section>
    }
}

#[component]
fn Footer() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <div class="container site-footer__inner">
                <p>{STORE_NAME}</p>
                <p>{concat!("Free software, licensed ", env!("CARGO_PKG_LICENSE"), ".")}</p>
            </div>
        </footer>
    }
}
