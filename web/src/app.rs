//! The app shell: header, main content, footer. One page until `leptos_router` comes in.

use domain::identity::MIN_PASSWORD_LEN;
use leptos::prelude::*;

/// The store's name, shown in the header and the footer.
const STORE_NAME: &str = "Store";

/// The whole app, mounted on `<body>`.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">
            "Skip to content"
        </a>
        <Header />
        <main id="main" class="site-main" tabindex="-1">
            <Hero />
        </main>
        <Footer />
    }
}

/// The store's name and the main navigation.
#[component]
fn Header() -> impl IntoView {
    view! {
        <header class="site-header">
            <div class="container site-header__inner">
                <a class="brand" href="/">
                    {STORE_NAME}
                </a>
                <nav aria-label="Main">
                    <ul class="nav">
                        <li>
                            <a class="nav__link" href="/" aria-current="page">
                                "Store"
                            </a>
                        </li>
                        <li>
                            <a class="nav__link" href="/library">
                                "Library"
                            </a>
                        </li>
                        <li>
                            <a class="nav__link nav__link--primary" href="/sign-in">
                                "Sign in"
                            </a>
                        </li>
                    </ul>
                </nav>
            </div>
        </header>
    }
}

/// The landing section: the store is not open yet, and says so.
#[component]
fn Hero() -> impl IntoView {
    view! {
        <section class="hero" aria-labelledby="hero-title">
            <div class="container">
                <p class="hero__eyebrow">"Games and programs"</p>
                <h1 id="hero-title" class="hero__title">
                    "The store is opening soon"
                </h1>
                <p class="hero__lead">
                    "We are getting the catalogue ready. Once we open, you will be able to browse "
                    "games and programs, buy them, and find everything you own in your library."
                </p>
                <p class="hero__note">
                    {format!(
                        "You will sign in with your e-mail address and a password of at least \
                         {MIN_PASSWORD_LEN} characters.",
                    )}
                </p>
            </div>
        </section>
    }
}

/// The store's name and the licence the app is published under.
#[component]
fn Footer() -> impl IntoView {
    view! {
        <footer class="site-footer">
            <div class="container site-footer__inner">
                <p>{STORE_NAME}</p>
                <p>{concat!("Free software, licensed ", env!("CARGO_PKG_LICENSE"), ".")}</p>
            </div>
        </footer>
    }
}
