//! What the caller owns (license keys with a copy button), and their wishlist.

use leptos::prelude::*;
use leptos_router::components::A;
use wasm_bindgen::{JsCast, JsValue};

use crate::api;
use crate::api::queries::{
    LibraryPage, RemoveFromWishlist, Wishlist as WishlistQuery, library_page, remove_from_wishlist,
    wishlist,
};
use crate::api::session::enum_name;
use crate::app::Page;
use crate::components::{CoverPlaceholder, Empty, Loading, error_fallback, short_time};
use crate::pages::downloads::Downloads;
use crate::pages::giftkeys::RedeemKeyForm;

/// Copies `text` with `navigator.clipboard.writeText`; false when the browser refuses.
pub(crate) async fn copy_to_clipboard(text: String) -> bool {
    let navigator = window().navigator();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")) else {
        return false;
    };
    let Ok(write) = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText")) else {
        return false;
    };
    let Ok(write) = write.dyn_into::<js_sys::Function>() else {
        return false;
    };
    match write
        .call1(&clipboard, &JsValue::from_str(&text))
        .map(js_sys::Promise::from)
    {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.is_ok(),
        Err(_) => false,
    }
}

#[component]
pub fn Library() -> impl IntoView {
    // Bumped when a redeemed gift key added a product.
    let redeemed = RwSignal::new(0_u32);
    let items = LocalResource::new(move || {
        redeemed.track();
        async {
            api::request::<LibraryPage>(library_page::Variables {
                first: 100,
                after: None,
            })
            .await
            .map(|data| data.library.nodes)
        }
    });
    view! {
        <section class="page" aria-labelledby="library-title">
            <h1 id="library-title">"Library"</h1>
            <RedeemKeyForm redeemed />
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        items.await.map(|items| {
                            if items.is_empty() {
                                return view! {
                                    <Empty title="Nothing here yet">
                                        <p>"What you buy appears here with its license key. " <A href=Page::Store.href()>"Browse the store"</A></p>
                                    </Empty>
                                }.into_any();
                            }
                            view! {
                                <ul class="library">
                                    {items.into_iter().map(|item| view! { <LibraryCard item /> }).collect_view()}
                                </ul>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn LibraryCard(item: library_page::LibraryPageLibraryNodes) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let key = item.license_key.clone();
    let copy = Action::new_local(move |key: &String| {
        let key = key.clone();
        async move { copied.set(Some(copy_to_clipboard(key).await)) }
    });
    let (title, slug, cover) = item
        .product
        .map(|p| (p.title, Some(p.slug), p.cover.map(|c| c.url)))
        .unwrap_or_else(|| ("Unavailable product".to_owned(), None, None));
    let edition = item
        .edition
        .map(|e| format!("{} · {}", e.name, enum_name(&e.kind).to_lowercase()))
        .unwrap_or_default();
    view! {
        <li class="library__item">
            <div class="library__cover">
                {match cover {
                    Some(url) => view! { <img src=url alt="" loading="lazy" /> }.into_any(),
                    None => view! { <CoverPlaceholder title=title.clone() /> }.into_any(),
                }}
            </div>
            <div class="library__body">
                <h2 class="library__title">
                    {match slug {
                        Some(slug) => view! { <A href=Page::Product(slug).href()>{title}</A> }.into_any(),
                        None => view! { <span>{title}</span> }.into_any(),
                    }}
                </h2>
                <p class="muted">{edition} " · " {format!("since {}", short_time(&item.granted_at))}</p>
                <div class="license">
                    <span class="muted" id=format!("key-{}", item.id)>"License key"</span>
                    <code class="license__key" aria-labelledby=format!("key-{}", item.id)>{item.license_key}</code>
                    <button class="button button--ghost" type="button" on:click=move |_| { copy.dispatch(key.clone()); }>
                        "Copy"
                    </button>
                    <span role="status" class="muted">
                        {move || match copied.get() {
                            Some(true) => "Copied",
                            Some(false) => "Copy failed: select the key",
                            None => "",
                        }}
                    </span>
                </div>
                <Downloads product_id=item.product_id builds=item.current_builds />
                {item.order_id.map(|id| view! { <p><A href=Page::Order(id).href()>"Order"</A></p> })}
            </div>
        </li>
    }
}

#[component]
pub fn Wishlist() -> impl IntoView {
    let version = RwSignal::new(0_u32);
    let items = LocalResource::new(move || {
        version.track();
        async move {
            api::request::<WishlistQuery>(wishlist::Variables { first: 100 })
                .await
                .map(|data| data.wishlist.nodes)
        }
    });
    let remove = Action::new_local(move |product_id: &String| {
        let product_id = product_id.clone();
        async move {
            let result =
                api::request::<RemoveFromWishlist>(remove_from_wishlist::Variables { product_id })
                    .await;
            version.update(|v| *v += 1);
            result.map(|_| ())
        }
    });
    view! {
        <section class="page" aria-labelledby="wishlist-title">
            <h1 id="wishlist-title">"Wishlist"</h1>
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        items.await.map(|items| {
                            if items.is_empty() {
                                return view! { <Empty title="Your wishlist is empty"><p><A href=Page::Store.href()>"Browse the store"</A></p></Empty> }.into_any();
                            }
                            view! {
                                <ul class="list">
                                    {items.into_iter().map(|p| {
                                        let id = p.id.clone();
                                        view! {
                                            <li class="list__item">
                                                <A href=Page::Product(p.slug).href()>{p.title}</A>
                                                <span>{p.price_from.map(|m| m.formatted).unwrap_or_default()}</span>
                                                <button class="button button--ghost" type="button" on:click=move |_| { remove.dispatch(id.clone()); }>"Remove"</button>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}
