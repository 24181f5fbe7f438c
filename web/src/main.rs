//! The store's bundle: the storefront, the product pages, sign-in and sign-up (`index.html`).

fn main() {
    web::start_store();
}
