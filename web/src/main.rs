//! The store's bundle: every page but the publisher's and the admin's (`index.html`).

fn main() {
    web::start_store();
}
