//! A product: cover and screenshots, editions with prices and stock, rating, reviews, add to
//! cart, wishlist, and a review form for owners.

use domain::catalog::{GENRES, PLATFORMS};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use wasm_bindgen::JsCast;

use crate::api::queries::{
    AddToWishlist, OwnsProduct, ProductPage as ProductQuery, Reviews, WriteReview, add_to_wishlist,
    owns_product, product_page, reviews, write_review,
};
use crate::api::session::enum_name;
use crate::api::{self, ApiError};
use crate::components::{
    CoverPlaceholder, Loading, Markdown, Mounted, PageLink, SalePrice, Stars, error_fallback,
    sale_ends, short_time,
};
use crate::page::Page;
use crate::state::{CartLine, use_auth, use_cart};

type Product = product_page::ProductPageProduct;

fn labels(vocabulary: &[(&str, &str)], slugs: &[String]) -> String {
    slugs
        .iter()
        .map(|slug| {
            vocabulary
                .iter()
                .find(|(s, _)| s == slug)
                .map_or(slug.as_str(), |(_, label)| label)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One picture of the gallery: the cover or a screenshot.
#[derive(Clone, Debug)]
struct Picture {
    url: String,
    /// The stored copies (`url 320w, …`), when the api made them.
    srcset: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    /// Alternative text, and the thumbnail's name.
    label: String,
}

/// What the shown picture takes of the viewport: the media column is about 40 % of the page
/// (at most 1200 px wide) on wide screens, the whole width on phones.
const STAGE_SIZES: &str = "(max-width: 720px) 100vw, 480px";
/// A thumbnail's width.
const THUMB_SIZES: &str = "96px";

/// The cover and the screenshots: one shown large, the others as thumbnails. Left and Right
/// arrows move between them (on the large picture or a thumbnail, which then takes the focus);
/// the thumbnails are buttons, reachable with Tab. Only the first picture loads at once.
#[component]
fn Gallery(pictures: Vec<Picture>) -> impl IntoView {
    let count = pictures.len();
    let (current, set_current) = signal(0usize);
    let shown = {
        let pictures = pictures.clone();
        move || pictures.get(current.get()).cloned()
    };
    let go = move |step: isize, focus_thumb: bool| {
        let next = (current.get_untracked() as isize + step).rem_euclid(count.max(1) as isize);
        let next = usize::try_from(next).unwrap_or(0);
        set_current.set(next);
        if focus_thumb {
            let thumb = document()
                .get_element_by_id(&format!("gallery-thumb-{next}"))
                .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
            if let Some(thumb) = thumb {
                let _ = thumb.focus();
            }
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent, focus_thumb: bool| {
        let step = match ev.key().as_str() {
            "ArrowRight" => 1,
            "ArrowLeft" => -1,
            _ => return,
        };
        ev.prevent_default();
        go(step, focus_thumb);
    };
    view! {
        <section class="gallery" aria-roledescription="gallery" aria-label="Pictures">
            <figure
                class="gallery__stage"
                tabindex="0"
                aria-label=move || format!("Picture {} of {count}; Left and Right arrows show the others", current.get() + 1)
                on:keydown=move |ev| on_key(ev, false)
            >
                {move || shown().map(|p| view! {
                    <img
                        class="gallery__image"
                        src=p.url
                        srcset=p.srcset
                        sizes=STAGE_SIZES
                        width=p.width
                        height=p.height
                        alt=p.label
                        fetchpriority="high"
                    />
                })}
                <figcaption class="gallery__count" aria-live="polite">
                    {move || format!("{} / {count}", current.get() + 1)}
                </figcaption>
            </figure>
            <Show when=move || { count > 1 }>
                <ul class="gallery__thumbs">
                    {pictures
                        .iter()
                        .enumerate()
                        .map(|(i, p)| view! {
                            <li>
                                <button
                                    type="button"
                                    id=format!("gallery-thumb-{i}")
                                    class="gallery__thumb"
                                    aria-label=format!("Show picture {} of {count}: {}", i + 1, p.label)
                                    aria-current=move || (current.get() == i).then_some("true")
                                    on:click=move |_| set_current.set(i)
                                    on:keydown=move |ev| on_key(ev, true)
                                >
                                    <img
                                        src=p.url.clone()
                                        srcset=p.srcset.clone()
                                        sizes=THUMB_SIZES
                                        alt=""
                                        loading="lazy"
                                        decoding="async"
                                    />
                                </button>
                            </li>
                        })
                        .collect_view()}
                </ul>
            </Show>
        </section>
    }
}

#[component]
pub fn ProductPage() -> impl IntoView {
    let mounted = Mounted::new();
    let params = use_params_map();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let product = LocalResource::new(move || {
        let slug = slug();
        async move {
            api::request::<ProductQuery>(product_page::Variables { slug })
                .await
                .map(|data| data.product)
        }
    });
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    match mounted.data(product).await {
                        Err(error) if error.code == Some(domain::ErrorCode::NotFound) => {
                            crate::words::set_title("Product not found");
                            Ok(view! { <ProductNotFound /> }.into_any())
                        }
                        result => result.map(|product| view! { <ProductView product /> }.into_any()),
                    }
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// A product address that leads nowhere (a mistyped link, or a product no longer sold).
#[component]
fn ProductNotFound() -> impl IntoView {
    view! {
        <section class="page not-found" aria-labelledby="not-found-title">
            <h1 id="not-found-title">"This product is not here"</h1>
            <p>"The link may be mistyped, or the product is no longer sold in the store."</p>
            <p><PageLink page=Page::Store>"Browse the store"</PageLink></p>
        </section>
    }
}

#[component]
fn ProductView(product: Product) -> impl IntoView {
    let auth = use_auth();
    let product_id = product.id.clone();
    let wishlist = Action::new_local(move |id: &String| {
        let product_id = id.clone();
        async move { api::request::<AddToWishlist>(add_to_wishlist::Variables { product_id }).await }
    });
    let Product {
        id,
        slug,
        title,
        description,
        genres,
        platforms,
        release_date,
        age_rating,
        system_requirements,
        publisher,
        editions,
        rating,
        cover,
        screenshots,
        bundles,
    } = product;
    crate::words::set_title(&title);
    // Whether the signed-in caller owns it: then the page says so instead of selling it again.
    let owns = {
        let product_id = product_id.clone();
        LocalResource::new(move || {
            let signed_in = auth.signed_in();
            let product_id = product_id.clone();
            async move {
                if !signed_in {
                    return false;
                }
                api::request::<OwnsProduct>(owns_product::Variables { product_id })
                    .await
                    .is_ok_and(|data| data.owns_product)
            }
        })
    };
    let owned = Signal::derive(move || owns.get().unwrap_or(false));
    view! {
        <article class="product" aria-labelledby="product-title">
            <nav class="breadcrumbs" aria-label="Breadcrumbs">
                <PageLink page=Page::Store>"Store"</PageLink>
                " › "
                <span aria-current="page">{title.clone()}</span>
            </nav>
            <div class="product__top">
                <div class="product__media">
                    {
                        let pictures: Vec<Picture> = cover
                            .map(|c| Picture {
                                url: c.url,
                                srcset: c.srcset,
                                width: c.width,
                                height: c.height,
                                label: format!("Cover of {title}"),
                            })
                            .into_iter()
                            .chain(screenshots.into_iter().enumerate().map(|(i, s)| Picture {
                                url: s.url,
                                srcset: s.srcset,
                                width: s.width,
                                height: s.height,
                                label: format!("Screenshot {} of {title}", i + 1),
                            }))
                            .collect();
                        if pictures.is_empty() {
                            view! { <CoverPlaceholder title=title.clone() /> }.into_any()
                        } else {
                            view! { <Gallery pictures /> }.into_any()
                        }
                    }
                </div>
                <div class="product__summary">
                    <h1 id="product-title">{title.clone()}</h1>
                    <p class="product__publisher">"by " {publisher.name}</p>
                    <Stars average=rating.average count=rating.count />
                    <dl class="facts">
                        <dt>"Genres"</dt>
                        <dd>{labels(&GENRES, &genres)}</dd>
                        <dt>"Platforms"</dt>
                        <dd>{labels(&PLATFORMS, &platforms)}</dd>
                        {release_date.map(|d| view! { <dt>"Released"</dt><dd>{d}</dd> })}
                        {age_rating.map(|a| view! { <dt>"Age rating"</dt><dd>{format!("PEGI {a}")}</dd> })}
                    </dl>
                    // Owned: the digital editions are not sold again (checkout would refuse them);
                    // boxed copies still are (a second box, a gift).
                    {move || {
                        let shown: Vec<_> = if owned.get() {
                            editions.iter().filter(|e| enum_name(&e.kind) == "PHYSICAL").cloned().collect()
                        } else {
                            editions.clone()
                        };
                        let (slug, title) = (slug.clone(), title.clone());
                        view! {
                            {owned.get().then(|| view! {
                                <div class="owned alert alert--ok" role="status">
                                    <p><strong>"In your library"</strong></p>
                                    <p>
                                        "You own this. "
                                        <PageLink page=Page::Library>"Download or play it from your library"</PageLink>
                                        "."
                                    </p>
                                </div>
                            })}
                            {(!owned.get() || !shown.is_empty()).then(|| view! { <Editions editions=shown slug title /> })}
                        }
                    }}
                    {(!bundles.is_empty()).then(|| view! {
                        <p class="product__bundles">
                            "Part of bundle: "
                            {bundles
                                .into_iter()
                                .enumerate()
                                .map(|(i, b)| view! {
                                    {(i > 0).then_some(", ")}
                                    <PageLink page=Page::Bundle(b.slug)>{b.title}</PageLink>
                                    {format!(" ({})", b.price.formatted)}
                                })
                                .collect_view()}
                        </p>
                    })}
                    <Show when=move || auth.signed_in()>
                        <button
                            class="button button--ghost"
                            type="button"
                            disabled=move || wishlist.pending().get() || wishlist.value().with(|v| matches!(v, Some(Ok(_))))
                            on:click={
                                let product_id = product_id.clone();
                                move |_| {
                                    wishlist.dispatch(product_id.clone());
                                }
                            }
                        >
                            {move || match wishlist.value().get() {
                                Some(Ok(_)) => "♥ On your wishlist",
                                _ => "♡ Add to wishlist",
                            }}
                        </button>
                    </Show>
                    {move || wishlist.value().get().and_then(Result::err).map(|e| view! { <p class="alert alert--error" role="alert">{e.message}</p> })}
                </div>
            </div>
            <section class="product__text">
                <h2>"About"</h2>
                <Markdown text=description />
                <Show when={
                    let empty = system_requirements.trim().is_empty();
                    move || !empty
                }>
                    <h2>"System requirements"</h2>
                    <Markdown text=system_requirements.clone() />
                </Show>
            </section>
            <ReviewsSection product_id=id owned />
        </article>
    }
}

#[component]
fn Editions(
    editions: Vec<product_page::ProductPageProductEditions>,
    slug: String,
    title: String,
) -> impl IntoView {
    let cart = use_cart();
    if editions.is_empty() {
        return view! { <p class="state state--empty">"Not on sale at the moment."</p> }.into_any();
    }
    view! {
        <ul class="editions" aria-label="Editions">
            {editions
                .into_iter()
                .map(|edition| {
                    let kind = enum_name(&edition.kind);
                    let physical = kind == "PHYSICAL";
                    let out_of_stock = physical && edition.stock.unwrap_or(0) <= 0;
                    let stock = match (physical, edition.stock) {
                        (false, _) => "Digital · instant delivery".to_owned(),
                        (true, Some(n)) if n > 0 => format!("Physical · {n} in stock"),
                        (true, _) => "Physical · out of stock".to_owned(),
                    };
                    let line = CartLine {
                        edition_id: edition.id.clone(),
                        product_slug: slug.clone(),
                        product_title: title.clone(),
                        edition_name: edition.name.clone(),
                        kind,
                        unit_price_minor: edition.current_price.amount_minor,
                        currency: edition.price.currency.clone(),
                        quantity: 1,
                    };
                    let edition_id = edition.id.clone();
                    let in_cart = move || cart.0.with(|lines| lines.iter().any(|l| l.edition_id == edition_id));
                    view! {
                        <li class="edition">
                            <div>
                                <p class="edition__name">{edition.name}</p>
                                <p class="edition__stock">{stock}</p>
                            </div>
                            <div class="edition__price">
                                {match edition.discount {
                                    Some(d) => {
                                        view! {
                                            <SalePrice
                                                now=edition.current_price.formatted.clone()
                                                list=edition.price.formatted.clone()
                                                percent=d.percent
                                            />
                                            <p class="edition__sale-ends" title=short_time(&d.ends_at)>
                                                {sale_ends(&d.ends_at)}
                                            </p>
                                        }
                                        .into_any()
                                    }
                                    None => edition.price.formatted.clone().into_any(),
                                }}
                            </div>
                            <button
                                class="button button--primary"
                                type="button"
                                disabled=out_of_stock
                                on:click=move |_| cart.add(line.clone())
                            >
                                {move || if in_cart() { "Add another" } else { "Add to cart" }}
                            </button>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
        <Show when=move || { cart.count() > 0 }>
            <p><PageLink page=Page::Cart>"Go to the cart"</PageLink></p>
        </Show>
    }
    .into_any()
}

#[component]
fn ReviewsSection(product_id: String, owned: Signal<bool>) -> impl IntoView {
    let mounted = Mounted::new();
    let written = RwSignal::new(0_u32);
    let list = {
        let product_id = product_id.clone();
        LocalResource::new(move || {
            written.track();
            let product_id = product_id.clone();
            async move {
                api::request::<Reviews>(reviews::Variables {
                    product_id,
                    first: 20,
                    after: None,
                })
                .await
                .map(|data| data.reviews.nodes)
            }
        })
    };
    view! {
        <section class="reviews" aria-labelledby="reviews-title">
            <h2 id="reviews-title">"Reviews"</h2>
            <Show when=move || owned.get()>
                <ReviewForm product_id=product_id.clone() written />
            </Show>
            <Transition fallback=|| view! { <Loading label="Loading reviews…" /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(list).await.map(|reviews| {
                            if reviews.is_empty() {
                                return view! { <p class="state state--empty">"No reviews yet."</p> }.into_any();
                            }
                            view! {
                                <ul class="review-list">
                                    {reviews
                                        .into_iter()
                                        .map(|r| view! {
                                            <li class="review">
                                                <p class="review__head">
                                                    <Stars average=Some(r.rating as f64) count=1 bare=true />
                                                    " " <strong>{r.author_name}</strong>
                                                    " · " <time datetime=r.created_at.clone()>{short_time(&r.created_at)}</time>
                                                </p>
                                                <p>{r.body}</p>
                                            </li>
                                        })
                                        .collect_view()}
                                </ul>
                            }
                            .into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn ReviewForm(product_id: String, written: RwSignal<u32>) -> impl IntoView {
    let rating = RwSignal::new(String::from("5"));
    let body = RwSignal::new(String::new());
    let save = Action::new_local(move |(product_id, rating, body): &(String, i64, String)| {
        let vars = write_review::Variables {
            product_id: product_id.clone(),
            rating: *rating,
            body: (!body.trim().is_empty()).then(|| body.clone()),
        };
        async move {
            let result = api::request::<WriteReview>(vars).await.map(|_| ());
            if result.is_ok() {
                written.update(|n| *n += 1);
            }
            result
        }
    });
    view! {
        <form
            class="form form--inline"
            on:submit=move |ev| {
                ev.prevent_default();
                let stars = rating.get_untracked().parse().unwrap_or(5);
                save.dispatch((product_id.clone(), stars, body.get_untracked()));
            }
        >
            <h3>"Your review"</h3>
            <div class="field">
                <label for="rating">"Rating"</label>
                <select id="rating" on:change=move |ev| rating.set(event_target_value(&ev)) prop:value=rating>
                    {(1..=5).rev().map(|n| view! { <option value=n.to_string()>{format!("{n} / 5")}</option> }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="review-body">"Review"</label>
                <textarea id="review-body" rows="4" prop:value=body on:input=move |ev| body.set(event_target_value(&ev))></textarea>
            </div>
            <button class="button" type="submit" disabled=move || save.pending().get()>"Save review"</button>
            {move || save.value().get().map(|r: Result<(), ApiError>| match r {
                Ok(()) => view! { <p class="alert alert--ok" role="status">"Thank you for your review."</p> }.into_any(),
                Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
            })}
        </form>
    }
}
