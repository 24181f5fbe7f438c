//! The shopper's own pages' bundle: cart, checkout, orders, wallet, library, wishlist and
//! notifications (`account.html`).

fn main() {
    web::start_account();
}
