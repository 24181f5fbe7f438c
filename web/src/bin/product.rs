//! A product page's bundle: `/products/…` (`product.html`).

fn main() {
    web::start_product();
}
