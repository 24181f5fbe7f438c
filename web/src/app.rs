//! The app shell: router, header (navigation, cart, notification bell, account), footer.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::{A, Outlet, ParentRoute, Route, Router, Routes};
use leptos_router::hooks::use_navigate;
use leptos_router::path;

use crate::api::queries::{NotificationReceived, UnreadCount, notification_received, unread_count};
use crate::api::ws;
use crate::api::{self, session};
use crate::components::SignedIn;
use crate::page::Page;
use crate::pages;
use crate::state::{
    NotificationsChanged, provide_auth, provide_cart, use_auth, use_cart, use_notifications_changed,
};

/// The store's name, shown in the header and the footer.
const STORE_NAME: &str = "Store";
/// How often the bell asks for the unread count.
const BELL_POLL: Duration = Duration::from_secs(20);

/// The whole app, mounted on `<body>`.
#[component]
pub fn App() -> impl IntoView {
    provide_auth();
    provide_cart();
    provide_context(NotificationsChanged(RwSignal::new(0)));
    view! {
        <Router>
            <Routes fallback=|| view! { <Layout><NotFound /></Layout> }>
                <ParentRoute path=path!("") view=|| view! { <Layout><Outlet /></Layout> }>
                    <Route path=path!("") view=pages::store::Storefront />
                    <Route path=path!("products/:slug") view=pages::product::ProductPage />
                    <Route path=path!("sign-in") view=pages::auth::SignIn />
                    <Route path=path!("sign-up") view=pages::auth::SignUp />
                    <Route path=path!("cart") view=pages::cart::CartPage />
                    <Route path=path!("checkout") view=pages::cart::Checkout />
                    <Route path=path!("orders") view=|| view! { <SignedIn><pages::orders::Orders /></SignedIn> } />
                    <Route path=path!("orders/:id") view=|| view! { <SignedIn><pages::orders::OrderPage /></SignedIn> } />
                    <Route path=path!("wallet") view=|| view! { <SignedIn><pages::wallet::WalletPage /></SignedIn> } />
                    <Route path=path!("library") view=|| view! { <SignedIn><pages::library::Library /></SignedIn> } />
                    <Route path=path!("wishlist") view=|| view! { <SignedIn><pages::library::Wishlist /></SignedIn> } />
                    <Route path=path!("notifications") view=|| view! { <SignedIn><pages::notifications::Notifications /></SignedIn> } />
                    <Route path=path!("publisher") view=|| view! { <SignedIn><pages::publisher::Publisher /></SignedIn> } />
                    <Route path=path!("admin") view=|| view! { <SignedIn><pages::admin::Admin /></SignedIn> } />
                    <Route path=path!("admin/orders") view=|| view! { <SignedIn><pages::admin_orders::AdminOrders /></SignedIn> } />
                    <Route path=path!("admin/refunds") view=|| view! { <SignedIn><pages::refunds::AdminRefunds /></SignedIn> } />
                    <Route path=path!("admin/audit") view=|| view! { <SignedIn><pages::audit::AuditLog /></SignedIn> } />
                </ParentRoute>
            </Routes>
        </Router>
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
                <A href="/" attr:class="brand">
                    {STORE_NAME}
                </A>
                <nav aria-label="Main">
                    <ul class="nav">
                        <li>
                            <A href="/" exact=true attr:class="nav__link">
                                "Store"
                            </A>
                        </li>
                        <Show when=move || auth.signed_in()>
                            <li>
                                <A href=Page::Library.href() attr:class="nav__link">
                                    "Library"
                                </A>
                            </li>
                            <li>
                                <A href=Page::Wallet.href() attr:class="nav__link">
                                    "Wallet"
                                </A>
                            </li>
                            <li>
                                <Bell />
                            </li>
                        </Show>
                        <Show when=move || role() == "PUBLISHER">
                            <li>
                                <A href=Page::Publisher.href() attr:class="nav__link">
                                    "Publisher"
                                </A>
                            </li>
                        </Show>
                        <Show when=move || role() == "ADMIN">
                            <li>
                                <A href=Page::Admin.href() exact=true attr:class="nav__link">
                                    "Admin"
                                </A>
                            </li>
                            <li>
                                <A href=Page::AdminOrders.href() attr:class="nav__link">
                                    "All orders"
                                </A>
                            </li>
                            <li>
                                <A href=Page::AdminRefunds.href() attr:class="nav__link">
                                    "Refunds"
                                </A>
                            </li>
                            <li>
                                <A href=Page::AdminAudit.href() attr:class="nav__link">
                                    "Audit log"
                                </A>
                            </li>
                        </Show>
                        <li>
                            <A href=Page::Cart.href() attr:class="nav__link nav__cart">
                                "Cart"
                                <span class="badge" aria-label="items in the cart">
                                    {move || cart.count()}
                                </span>
                            </A>
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
                            <li><A href=Page::Orders.href()>"Orders"</A></li>
                            <li><A href=Page::Wishlist.href()>"Wishlist"</A></li>
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
                    <A href=Page::SignIn.href() attr:class="nav__link nav__link--primary">
                        "Sign in"
                    </A>
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
        <A href=Page::Notifications.href() attr:class="nav__link bell">
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
        </A>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="page">
            <h1>"Page not found"</h1>
            <p>
                <A href="/">"Back to the store"</A>
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
