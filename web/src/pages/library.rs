//! What the caller owns (license keys with a copy button), and their wishlist.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::api::queries::{
    LibraryPage, RemoveFromWishlist, Wishlist as WishlistQuery, library_page, remove_from_wishlist,
    wishlist,
};
use crate::api::session::enum_name;
use crate::components::{
    CoverPlaceholder, Empty, Loading, Mounted, copy_to_clipboard, error_fallback, short_time,
};
use crate::page::Page;
use crate::pages::downloads::Downloads;
use crate::pages::giftkeys::RedeemKeyForm;

/// The most entitlements the library page reads (pages of [`LIBRARY_PAGE`]).
const LIBRARY_MAX_PAGES: usize = 20;
const LIBRARY_PAGE: i64 = 100;

type Item = library_page::LibraryPageLibraryNodes;

/// One product of the library with every edition of it the caller holds.
#[derive(Clone, Debug, PartialEq)]
struct Owned {
    product_id: String,
    title: String,
    slug: Option<String>,
    cover: Option<String>,
    /// When the newest of its editions arrived (RFC 3339), for "recently added".
    latest: String,
    items: Vec<Item>,
}

/// Groups entitlements by product (a product bought twice, or as two editions, is one entry),
/// keeping each product's editions oldest first.
fn group(items: Vec<Item>) -> Vec<Owned> {
    let mut products: Vec<Owned> = Vec::new();
    for item in items {
        match products
            .iter_mut()
            .find(|p| p.product_id == item.product_id)
        {
            Some(owned) => {
                if item.granted_at > owned.latest {
                    owned.latest = item.granted_at.clone();
                }
                owned.items.push(item);
            }
            None => {
                let (title, slug, cover) = item
                    .product
                    .as_ref()
                    .map(|p| {
                        (
                            p.title.clone(),
                            Some(p.slug.clone()),
                            p.cover.as_ref().map(|c| c.url.clone()),
                        )
                    })
                    .unwrap_or_else(|| ("Unavailable product".to_owned(), None, None));
                products.push(Owned {
                    product_id: item.product_id.clone(),
                    title,
                    slug,
                    cover,
                    latest: item.granted_at.clone(),
                    items: vec![item],
                });
            }
        }
    }
    for owned in &mut products {
        owned.items.sort_by(|a, b| a.granted_at.cmp(&b.granted_at));
    }
    products
}

/// Every page of the caller's library (up to [`LIBRARY_MAX_PAGES`]).
async fn whole_library() -> Result<Vec<Item>, api::ApiError> {
    let mut items = Vec::new();
    let mut after = None;
    for _ in 0..LIBRARY_MAX_PAGES {
        let page = api::request::<LibraryPage>(library_page::Variables {
            first: LIBRARY_PAGE,
            after,
        })
        .await?
        .library;
        items.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(cursor)) => after = Some(cursor),
            _ => break,
        }
    }
    Ok(items)
}

#[component]
pub fn Library() -> impl IntoView {
    let mounted = Mounted::new();
    // Bumped when a redeemed gift key added a product.
    let redeemed = RwSignal::new(0_u32);
    let search = RwSignal::new(String::new());
    let sort = RwSignal::new("recent".to_owned());
    let items = LocalResource::new(move || {
        redeemed.track();
        async { whole_library().await.map(group) }
    });
    view! {
        <section class="page" aria-labelledby="library-title">
            <h1 id="library-title">"Library"</h1>
            <RedeemKeyForm redeemed />
            <div class="filters filters--inline" role="search" aria-label="Your library">
                <div class="field">
                    <label for="library-search">"Find in your library"</label>
                    <input
                        id="library-search"
                        type="search"
                        autocomplete="off"
                        prop:value=search
                        on:input=move |ev| search.set(event_target_value(&ev))
                    />
                </div>
                <div class="field">
                    <label for="library-sort">"Sort"</label>
                    <select id="library-sort" prop:value=move || sort.get() on:change=move |ev| sort.set(event_target_value(&ev))>
                        <option value="recent">"Recently added"</option>
                        <option value="title">"Title, A to Z"</option>
                    </select>
                </div>
            </div>
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(items).await.map(|products| {
                            if products.is_empty() {
                                return view! {
                                    <Empty title="Nothing here yet">
                                        <p>"What you buy appears here with its license key. " <A href=Page::Store.href()>"Browse the store"</A></p>
                                    </Empty>
                                }.into_any();
                            }
                            let shown = move || {
                                let needle = search.get().trim().to_lowercase();
                                let mut list: Vec<Owned> = products
                                    .iter()
                                    .filter(|p| needle.is_empty() || p.title.to_lowercase().contains(&needle))
                                    .cloned()
                                    .collect();
                                if sort.get() == "title" {
                                    list.sort_by_key(|p| p.title.to_lowercase());
                                } else {
                                    list.sort_by(|a, b| b.latest.cmp(&a.latest));
                                }
                                list
                            };
                            view! {
                                {move || {
                                    let list = shown();
                                    if list.is_empty() {
                                        view! { <p class="state state--empty" role="status">"Nothing in your library matches this."</p> }.into_any()
                                    } else {
                                        view! {
                                            <ul class="library">
                                                {list.into_iter().map(|owned| view! { <LibraryCard owned /> }).collect_view()}
                                            </ul>
                                        }.into_any()
                                    }
                                }}
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn LibraryCard(owned: Owned) -> impl IntoView {
    let Owned {
        product_id,
        title,
        slug,
        cover,
        items,
        ..
    } = owned;
    // Builds are per product: any of its entitlements carries them.
    let builds = items
        .iter()
        .map(|i| i.current_builds.clone())
        .find(|b| !b.is_empty())
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
                <ul class="library__editions">
                    {items.into_iter().map(|item| view! { <EditionKey item /> }).collect_view()}
                </ul>
                <Downloads product_id=product_id builds />
            </div>
        </li>
    }
}

/// One edition the caller holds: its name, since when, its license key and its order.
#[component]
fn EditionKey(item: Item) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let key = item.license_key.clone();
    let copy = Action::new_local(move |key: &String| {
        let key = key.clone();
        async move { copied.set(Some(copy_to_clipboard(key).await)) }
    });
    let edition = item
        .edition
        .map(|e| format!("{} · {}", e.name, enum_name(&e.kind).to_lowercase()))
        .unwrap_or_default();
    view! {
        <li class="library__edition">
            <p class="muted">
                {edition} " · " {format!("since {}", short_time(&item.granted_at))}
                {item.order_id.map(|id| view! { " · " <A href=Page::Order(id.clone()).href()>{format!("order {}", crate::words::order_number(&id))}</A> })}
            </p>
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
        </li>
    }
}

#[component]
pub fn Wishlist() -> impl IntoView {
    let mounted = Mounted::new();
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
                        mounted.data(items).await.map(|items| {
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
