//! The store's single-page app: Leptos, rendered in the browser, built by trunk into `dist/`.
//!
//! Four bundles share this library, so that a visitor's first load carries only what the page
//! they land on needs: the `web` binary (`index.html`) routes the storefront, sign-in and
//! sign-up; the `product` binary (`product.html`) a product's page; the `account` binary
//! (`account.html`) the shopper's own pages (cart, checkout, orders, wallet, library, wishlist,
//! notifications); the `manage` binary (`manage.html`) the publisher's and the admin's
//! (`page::Bundle`). Each binary names
//! only its own router, and the release build's link-time optimisation leaves the other pages
//! out.

mod address;
mod api;
mod app;
mod components;
mod page;
mod pages;
mod state;
mod words;

/// Starts the store's bundle (`index.html`).
pub fn start_store() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::StoreApp);
}

/// Starts a product page's bundle (`product.html`).
pub fn start_product() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::ProductApp);
}

/// Starts the shopper's own pages' bundle (`account.html`).
pub fn start_account() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::AccountApp);
}

/// Starts the publisher's and admin's bundle (`manage.html`).
pub fn start_manage() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::ManageApp);
}
