//! Every page of the app and its address: what the router serves (`app.rs`) and what the pages
//! and components link to, apart from both so that neither imports the other.

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
