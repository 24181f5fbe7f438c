//! A product page's bundle: `/products/…` and `/bundles/…` (`product.html`).

fn main() {
    web::start_product();
}
