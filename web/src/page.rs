//! Every page of the app and its address: what the router serves (`app.rs`) and what the pages
//! and components link to, apart from both so that neither imports the other.
//!
//! The app is two bundles (two wasm files, see `lib.rs`): the store's pages, and the
//! publisher's and admin's ([`Bundle::Manage`]). The gateway serves `manage.html` for the paths
//! [`Bundle::of_path`] gives to `Manage` and `index.html` for every other one, so both must
//! agree (nginx.conf, "the SPA").

/// Every page of the app, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Store,
    Product(String),
    SignIn,
    SignUp,
    Cart,
    Checkout,
    Orders,
    Order(String),
    Wallet,
    Library,
    Wishlist,
    Notifications,
    Publisher,
    Admin,
    AdminOrders,
    AdminRefunds,
    AdminAudit,
}

impl Page {
    /// The page's path.
    pub fn href(&self) -> String {
        match self {
            Page::Store => "/".to_owned(),
            Page::Product(slug) => format!("/products/{slug}"),
            Page::SignIn => "/sign-in".to_owned(),
            Page::SignUp => "/sign-up".to_owned(),
            Page::Cart => "/cart".to_owned(),
            Page::Checkout => "/checkout".to_owned(),
            Page::Orders => "/orders".to_owned(),
            Page::Order(id) => format!("/orders/{id}"),
            Page::Wallet => "/wallet".to_owned(),
            Page::Library => "/library".to_owned(),
            Page::Wishlist => "/wishlist".to_owned(),
            Page::Notifications => "/notifications".to_owned(),
            Page::Publisher => "/publisher".to_owned(),
            Page::Admin => "/admin".to_owned(),
            Page::AdminOrders => "/admin/orders".to_owned(),
            Page::AdminRefunds => "/admin/refunds".to_owned(),
            Page::AdminAudit => "/admin/audit".to_owned(),
        }
    }
}

/// One of the app's two bundles: each has the router of its own pages only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundle {
    /// Shoppers' pages (`index.html`): the storefront, products, cart, orders, account.
    Store,
    /// The publisher's and the admin's pages (`manage.html`): `/publisher…`, `/admin…`.
    Manage,
}

impl Bundle {
    /// The bundle that serves `path` (a pathname, without query or fragment).
    pub fn of_path(path: &str) -> Bundle {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "publisher" | "admin" => Bundle::Manage,
            _ => Bundle::Store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Bundle, Page};

    #[test]
    fn the_management_pages_are_the_manage_bundles() {
        for page in [
            Page::Publisher,
            Page::Admin,
            Page::AdminOrders,
            Page::AdminRefunds,
            Page::AdminAudit,
        ] {
            assert_eq!(Bundle::of_path(&page.href()), Bundle::Manage, "{page:?}");
        }
        for page in [
            Page::Store,
            Page::Product("publisher".to_owned()),
            Page::SignIn,
            Page::Cart,
            Page::Checkout,
            Page::Orders,
            Page::Order("admin".to_owned()),
            Page::Wallet,
            Page::Library,
            Page::Notifications,
        ] {
            assert_eq!(Bundle::of_path(&page.href()), Bundle::Store, "{page:?}");
        }
        // Only whole first segments.
        assert_eq!(Bundle::of_path("/publishers"), Bundle::Store);
        assert_eq!(Bundle::of_path("/administration"), Bundle::Store);
        assert_eq!(Bundle::of_path("/admin/"), Bundle::Manage);
    }
}
