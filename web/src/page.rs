//! Every page of the app and its address: what the router serves (`app.rs`) and what the pages
//! and components link to, apart from both so that neither imports the other.
//!
//! The app is four bundles (four wasm files, see `lib.rs`), and the gateway serves each
//! bundle's page for the paths [`Bundle::of_path`] gives it (`product.html`, `account.html`,
//! `manage.html`, and `index.html` for every other path), so both must agree (nginx.conf, "the
//! SPA").

/// Every page of the app, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Store,
    Product(String),
    /// A bundle's page, by its slug.
    Bundle(String),
    SignIn,
    SignUp,
    Cart,
    Checkout,
    Orders,
    Order(String),
    /// An order's receipt (printable).
    Receipt(String),
    Wallet,
    Library,
    Wishlist,
    Notifications,
    Publisher,
    Admin,
    AdminOrders,
    AdminRefunds,
    AdminAudit,
    AdminOperations,
}

impl Page {
    /// The page's path.
    pub fn href(&self) -> String {
        match self {
            Page::Store => "/".to_owned(),
            Page::Product(slug) => format!("/products/{slug}"),
            Page::Bundle(slug) => format!("/bundles/{slug}"),
            Page::SignIn => "/sign-in".to_owned(),
            Page::SignUp => "/sign-up".to_owned(),
            Page::Cart => "/cart".to_owned(),
            Page::Checkout => "/checkout".to_owned(),
            Page::Orders => "/orders".to_owned(),
            Page::Order(id) => format!("/orders/{id}"),
            Page::Receipt(id) => format!("/orders/{id}/receipt"),
            Page::Wallet => "/wallet".to_owned(),
            Page::Library => "/library".to_owned(),
            Page::Wishlist => "/wishlist".to_owned(),
            Page::Notifications => "/notifications".to_owned(),
            Page::Publisher => "/publisher".to_owned(),
            Page::Admin => "/admin".to_owned(),
            Page::AdminOrders => "/admin/orders".to_owned(),
            Page::AdminRefunds => "/admin/refunds".to_owned(),
            Page::AdminAudit => "/admin/audit".to_owned(),
            Page::AdminOperations => "/admin/operations".to_owned(),
        }
    }
}

/// One of the app's bundles: each has the router of its own pages only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundle {
    /// What a visitor comes to (`index.html`): the storefront, sign-in and sign-up, "Page not
    /// found".
    Store,
    /// A product's page (`product.html`): `/products/…` and a bundle's, `/bundles/…`, the
    /// other pages a visitor lands on (a
    /// shared link, a search engine), so it carries neither the storefront nor sign-in.
    Product,
    /// The shopper's own pages (`account.html`): cart, checkout, orders, wallet, library,
    /// wishlist, notifications.
    Account,
    /// The publisher's and the admin's pages (`manage.html`): `/publisher…`, `/admin…`.
    Manage,
}

impl Bundle {
    /// The bundle that serves `path` (a pathname, without query or fragment).
    pub fn of_path(path: &str) -> Bundle {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "cart" | "checkout" | "orders" | "wallet" | "library" | "wishlist"
            | "notifications" => Bundle::Account,
            "publisher" | "admin" => Bundle::Manage,
            "products" | "bundles" => Bundle::Product,
            _ => Bundle::Store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Bundle, Page};

    #[test]
    fn each_page_has_its_bundle() {
        for page in [
            Page::Publisher,
            Page::Admin,
            Page::AdminOrders,
            Page::AdminRefunds,
            Page::AdminAudit,
            Page::AdminOperations,
        ] {
            assert_eq!(Bundle::of_path(&page.href()), Bundle::Manage, "{page:?}");
        }
        for page in [
            Page::Cart,
            Page::Checkout,
            Page::Orders,
            Page::Order("admin".to_owned()),
            Page::Wallet,
            Page::Library,
            Page::Wishlist,
            Page::Notifications,
        ] {
            assert_eq!(Bundle::of_path(&page.href()), Bundle::Account, "{page:?}");
        }
        for page in [
            Page::Product("publisher".to_owned()),
            Page::Product("cart".to_owned()),
            Page::Bundle("trilogy".to_owned()),
        ] {
            assert_eq!(Bundle::of_path(&page.href()), Bundle::Product, "{page:?}");
        }
        for page in [Page::Store, Page::SignIn, Page::SignUp] {
            assert_eq!(Bundle::of_path(&page.href()), Bundle::Store, "{page:?}");
        }
        // Only whole first segments.
        assert_eq!(Bundle::of_path("/publishers"), Bundle::Store);
        assert_eq!(Bundle::of_path("/administration"), Bundle::Store);
        assert_eq!(Bundle::of_path("/cartography"), Bundle::Store);
        assert_eq!(Bundle::of_path("/productsale"), Bundle::Store);
        assert_eq!(Bundle::of_path("/admin/"), Bundle::Manage);
    }
}
