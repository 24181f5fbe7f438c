//! The store's single-page app: Leptos, rendered in the browser, built by trunk into `dist/`.
//!
//! Two bundles share this library, so that a shopper's first load carries no publisher or admin
//! page: the `web` binary (`index.html`) routes the store's pages, the `manage` binary
//! (`manage.html`) the publisher's and the admin's (`page::Bundle`). Each binary names only its
//! own router, and the release build's link-time optimisation leaves the other pages out.

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

/// Starts the publisher's and admin's bundle (`manage.html`).
pub fn start_manage() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::ManageApp);
}
