//! The store's single-page app: Leptos, rendered in the browser, built by trunk into `dist/`.

mod api;
mod app;
mod components;
mod page;
mod pages;
mod state;
mod words;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
