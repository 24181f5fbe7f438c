//! The storefront: search as you type, facets, sorting and "load more" by cursor.

use std::time::Duration;

use domain::catalog::{GENRES, PLATFORMS};
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::queries::{Facets, Products, facets, products};
use crate::api::{self, ApiError};
use crate::components::{
    CoverPlaceholder, Debounce, Empty, Loading, Mounted, SalePrice, Stars, error_fallback,
};
use crate::page::Page;

/// Products per request.
const PAGE_SIZE: i64 = 24;

type Card = products::ProductsProductsNodes;

/// What the shopper filters by.
#[derive(Debug, Clone, Default, PartialEq)]
struct Filter {
    text: String,
    genre: String,
    platform: String,
    /// `""`, `DIGITAL` or `PHYSICAL`.
    kind: String,
    /// Whole currency units, as typed.
    min_price: String,
    max_price: String,
    /// Only products on sale now.
    on_sale: bool,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A price as typed (`12`, `12.5`, `12,50`) in minor units (cents), rounded to the cent;
/// `None` for anything else. Whole digits, not `f64` parsing: that would bring the float parser
/// and its tables (about 8 KB compressed) into the storefront's wasm for two boxes.
fn price_minor(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, fraction) = s.split_once(['.', ',']).unwrap_or((s, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // The first three decimals, rounded to two.
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |n, b| n * 10 + i64::from(b - b'0'));
    let cents = (thousandths + 5) / 10;
    whole.checked_mul(100)?.checked_add(cents)
}

impl Filter {
    fn for_products(&self) -> products::ProductFilter {
        products::ProductFilter {
            text: non_empty(&self.text),
            genre: non_empty(&self.genre),
            platform: non_empty(&self.platform),
            edition_kind: match self.kind.as_str() {
                "DIGITAL" => Some(products::EditionKind::DIGITAL),
                "PHYSICAL" => Some(products::EditionKind::PHYSICAL),
                _ => None,
            },
            min_price: price_minor(&self.min_price),
            max_price: price_minor(&self.max_price),
            publisher_id: None,
            on_sale: self.on_sale,
        }
    }

    fn for_facets(&self) -> facets::ProductFilter {
        let f = self.for_products();
        facets::ProductFilter {
            text: f.text,
            genre: None,
            platform: None,
            edition_kind: None,
            min_price: f.min_price,
            max_price: f.max_price,
            publisher_id: None,
            on_sale: f.on_sale,
        }
    }
}

fn sort_of(value: &str) -> products::ProductSort {
    match value {
        "NEWEST" => products::ProductSort::NEWEST,
        "PRICE_ASC" => products::ProductSort::PRICE_ASC,
        "PRICE_DESC" => products::ProductSort::PRICE_DESC,
        "RATING" => products::ProductSort::RATING,
        _ => products::ProductSort::RELEVANCE,
    }
}

fn label(vocabulary: &[(&str, &'static str)], slug: &str) -> String {
    vocabulary
        .iter()
        .find(|(s, _)| *s == slug)
        .map_or_else(|| slug.to_owned(), |(_, label)| (*label).to_owned())
}

#[component]
pub fn Storefront() -> impl IntoView {
    let mounted = Mounted::new();
    // The filters live in the address (`?q=…&genre=…`), so Back and shared links keep them.
    let query = use_query_map();
    let from_query = |key: &str| query.with_untracked(|q| q.get(key)).unwrap_or_default();
    let filter = RwSignal::new(Filter {
        text: from_query("q"),
        genre: from_query("genre"),
        platform: from_query("platform"),
        kind: from_query("kind"),
        min_price: from_query("min"),
        max_price: from_query("max"),
        on_sale: from_query("sale") == "1",
    });
    let sort = RwSignal::new(
        Some(from_query("sort"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "RELEVANCE".to_owned()),
    );
    let search_text = RwSignal::new(filter.with_untracked(|f| f.text.clone()));
    let navigate = use_navigate();
    Effect::new(move |first: Option<()>| {
        let f = filter.get();
        let sort = sort.get();
        if first.is_none() {
            return;
        }
        let pairs = [
            ("q", f.text.as_str()),
            ("genre", f.genre.as_str()),
            ("platform", f.platform.as_str()),
            ("kind", f.kind.as_str()),
            ("min", f.min_price.as_str()),
            ("max", f.max_price.as_str()),
            ("sale", if f.on_sale { "1" } else { "" }),
            (
                "sort",
                if sort == "RELEVANCE" {
                    ""
                } else {
                    sort.as_str()
                },
            ),
        ];
        let search = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", js_sys::encode_uri_component(v.trim())))
            .collect::<Vec<_>>()
            .join("&");
        let url = if search.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{search}")
        };
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    });
    let debounce = Debounce::new();

    // Further pages, appended by "load more"; reset whenever the first page is refetched.
    let more = RwSignal::new(Vec::<Card>::new());
    let next_cursor = RwSignal::new(None::<String>);

    let first_page = LocalResource::new(move || {
        let filter = filter.get().for_products();
        let sort = sort_of(&sort.get());
        async move {
            let data = api::request::<Products>(products::Variables {
                filter: Some(filter),
                sort,
                first: PAGE_SIZE,
                after: None,
            })
            .await?;
            more.set(Vec::new());
            let page = data.products;
            next_cursor.set(
                page.page_info
                    .has_next_page
                    .then_some(page.page_info.end_cursor)
                    .flatten(),
            );
            Ok::<_, ApiError>(page.nodes)
        }
    });
    let facet_counts = LocalResource::new(move || {
        let filter = filter.get().for_facets();
        async move {
            api::request::<Facets>(facets::Variables {
                filter: Some(filter),
            })
            .await
            .ok()
            .map(|data| data.facets)
        }
    });

    let load_more = Action::new_local(move |cursor: &String| {
        let filter = filter.get_untracked().for_products();
        let sort = sort_of(&sort.get_untracked());
        let after = Some(cursor.clone());
        async move {
            let data = api::request::<Products>(products::Variables {
                filter: Some(filter),
                sort,
                first: PAGE_SIZE,
                after,
            })
            .await?;
            let page = data.products;
            more.update(|cards| cards.extend(page.nodes));
            next_cursor.set(
                page.page_info
                    .has_next_page
                    .then_some(page.page_info.end_cursor)
                    .flatten(),
            );
            Ok::<_, ApiError>(())
        }
    });

    let on_search = move |ev: leptos::ev::Event| {
        let text = event_target_value(&ev);
        search_text.set(text.clone());
        debounce.run(move || filter.update(|f| f.text = text));
    };

    // (value, count) pairs of one facet, empty until the counts arrive.
    let facet_options = move |genres: bool| -> Vec<(String, i64)> {
        facet_counts
            .get()
            .flatten()
            .map(|f| {
                if genres {
                    f.genres.into_iter().map(|v| (v.value, v.count)).collect()
                } else {
                    f.platforms
                        .into_iter()
                        .map(|v| (v.value, v.count))
                        .collect()
                }
            })
            .unwrap_or_default()
    };

    view! {
        <section class="storefront" aria-labelledby="store-title">
            <h1 id="store-title" class="page-title">
                "Games and programs"
            </h1>
            <form class="filters" role="search" on:submit=move |ev| ev.prevent_default()>
                <div class="field field--search">
                    <label for="search">"Search"</label>
                    <input
                        id="search"
                        type="search"
                        placeholder="Title, genre, tag…"
                        autocomplete="off"
                        prop:value=search_text
                        on:input=on_search
                    />
                </div>
                <div class="field">
                    <label for="genre">"Genre"</label>
                    <select
                        id="genre"
                        on:change=move |ev| filter.update(|f| f.genre = event_target_value(&ev))
                    >
                        <option value="">"All genres"</option>
                        {move || {
                            let selected = filter.with(|f| f.genre.clone());
                            vocabulary_options(&GENRES, &facet_options(true), &selected)
                        }}
                    </select>
                </div>
                <div class="field">
                    <label for="platform">"Platform"</label>
                    <select
                        id="platform"
                        on:change=move |ev| filter.update(|f| f.platform = event_target_value(&ev))
                    >
                        <option value="">"All platforms"</option>
                        {move || {
                            let selected = filter.with(|f| f.platform.clone());
                            vocabulary_options(&PLATFORMS, &facet_options(false), &selected)
                        }}
                    </select>
                </div>
                <fieldset class="field field--kind">
                    <legend>"Edition"</legend>
                    {[("", "Any"), ("DIGITAL", "Digital"), ("PHYSICAL", "Physical")]
                        .into_iter()
                        .map(|(value, name)| {
                            view! {
                                <label class="chip">
                                    <input
                                        type="radio"
                                        name="kind"
                                        value=value
                                        prop:checked=move || filter.with(|f| f.kind == value)
                                        on:change=move |_| filter.update(|f| f.kind = value.to_owned())
                                    />
                                    {name}
                                </label>
                            }
                        })
                        .collect_view()}
                </fieldset>
                <label class="chip chip--toggle">
                    <input
                        type="checkbox"
                        name="sale"
                        prop:checked=move || filter.with(|f| f.on_sale)
                        on:change=move |ev| filter.update(|f| f.on_sale = event_target_checked(&ev))
                    />
                    "On sale"
                </label>
                <div class="field field--price">
                    <label for="min-price">"Price from"</label>
                    <input
                        id="min-price"
                        type="number"
                        min="0"
                        step="1"
                        inputmode="decimal"
                        prop:value=move || filter.with(|f| f.min_price.clone())
                        on:change=move |ev| filter.update(|f| f.min_price = event_target_value(&ev))
                    />
                    <label for="max-price">"to"</label>
                    <input
                        id="max-price"
                        type="number"
                        min="0"
                        step="1"
                        inputmode="decimal"
                        prop:value=move || filter.with(|f| f.max_price.clone())
                        on:change=move |ev| filter.update(|f| f.max_price = event_target_value(&ev))
                    />
                </div>
                <div class="field">
                    <label for="sort">"Sort by"</label>
                    <select id="sort" on:change=move |ev| sort.set(event_target_value(&ev))>
                        {[
                            ("RELEVANCE", "Best match"),
                            ("NEWEST", "Newest"),
                            ("PRICE_ASC", "Price: low to high"),
                            ("PRICE_DESC", "Price: high to low"),
                            ("RATING", "Rating"),
                        ]
                            .into_iter()
                            .map(|(value, name)| {
                                view! {
                                    <option value=value selected=move || sort.with(|s| s == value)>
                                        {name}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </div>
            </form>

            <Transition fallback=|| view! { <Loading label="Loading the catalogue…" /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(first_page)
                            .await
                            .map(|mut cards| {
                                if cards.is_empty() {
                                    return view! {
                                        <Empty title="No products match">
                                            <p>"Try other words or fewer filters."</p>
                                        </Empty>
                                    }
                                        .into_any();
                                }
                                // The first screen of cards at once, the others in a task
                                // of their own: on a slow phone neither blocks the page long.
                                let rest = cards.split_off(cards.len().min(FIRST_BATCH));
                                let later = RwSignal::new(Vec::<Card>::new());
                                if !rest.is_empty() {
                                    set_timeout(move || { later.try_set(rest); }, Duration::ZERO);
                                }
                                view! {
                                    <ul class="grid" aria-live="polite">
                                        {cards
                                            .into_iter()
                                            .enumerate()
                                            .map(|(n, card)| {
                                                let first_row = n < FIRST_ROW;
                                                view! { <ProductCard card first_row /> }
                                            })
                                            .collect_view()}
                                        {move || {
                                            later.get()
                                                .into_iter()
                                                .map(|card| view! { <ProductCard card first_row=false /> })
                                                .collect_view()
                                        }}
                                        {move || {
                                            more.get()
                                                .into_iter()
                                                .map(|card| view! { <ProductCard card first_row=false /> })
                                                .collect_view()
                                        }}
                                    </ul>
                                }
                                    .into_any()
                            })
                    })}
                </ErrorBoundary>
            </Transition>
            {move || {
                load_more
                    .value()
                    .get()
                    .and_then(Result::err)
                    .map(|error| view! { <p class="alert alert--error" role="alert">{error.message}</p> })
            }}
            <Show when=move || next_cursor.with(Option::is_some)>
                <div class="load-more">
                    <button
                        class="button"
                        type="button"
                        disabled=move || load_more.pending().get()
                        on:click=move |_| {
                            if let Some(cursor) = next_cursor.get_untracked() {
                                load_more.dispatch(cursor);
                            }
                        }
                    >
                        {move || if load_more.pending().get() { "Loading…" } else { "Load more" }}
                    </button>
                </div>
            </Show>
        </section>
    }
}

/// How wide a card's cover is shown: two cards a row on phones, about 15 rem (13 rem at least)
/// on wider screens.
const CARD_COVER_SIZES: &str = "(max-width: 600px) 50vw, 260px";

/// Cards whose covers are on the first screen of a phone (two a row): loaded at once, the first
/// one first (it is the page's largest paint), while the others wait until they come near.
const FIRST_ROW: usize = 2;

/// Cards rendered with the answer; the rest of the page of cards follows in the next task
/// (a task of more than 50 ms counts against the page in Lighthouse's total blocking time, and
/// its phone runs four times slower than this machine).
const FIRST_BATCH: usize = 8;

#[component]
fn ProductCard(card: Card, first_row: bool) -> impl IntoView {
    let href = Page::Product(card.slug.clone()).href();
    let genres = card
        .genres
        .iter()
        .take(2)
        .map(|g| label(&GENRES, g))
        .collect::<Vec<_>>()
        .join(" · ");
    view! {
        <li class="card">
            // A product's page is a bundle of its own (`product.html`): a full page load.
            <a href=href class="card__link" rel="external">
                <div class="card__cover">
                    {match card.cover {
                        Some(cover) => {
                            view! {
                                <img
                                    src=cover.url
                                    srcset=cover.srcset
                                    sizes=CARD_COVER_SIZES
                                    alt=""
                                    loading=if first_row { "eager" } else { "lazy" }
                                    fetchpriority=if first_row { "high" } else { "auto" }
                                    decoding="async"
                                />
                            }
                            .into_any()
                        }
                        None => view! { <CoverPlaceholder title=card.title.clone() /> }.into_any(),
                    }}
                </div>
                <div class="card__body">
                    <h2 class="card__title">{card.title}</h2>
                    <p class="card__meta">{genres}</p>
                    <Stars average=card.rating.average count=card.rating.count />
                    <p class="card__price">
                        {match (card.price_from, card.list_price_from, card.sale) {
                            (Some(now), Some(list), Some(sale)) => {
                                view! {
                                    <SalePrice now=now.formatted list=list.formatted percent=sale.percent prefix="from" />
                                }
                                .into_any()
                            }
                            (Some(now), _, _) => format!("from {}", now.formatted).into_any(),
                            (None, _, _) => "Not available yet".into_any(),
                        }}
                    </p>
                </div>
            </a>
        </li>
    }
}

/// The `<option>`s of a vocabulary (genres, platforms), each with its facet count.
fn vocabulary_options(
    vocabulary: &'static [(&'static str, &'static str)],
    counts: &[(String, i64)],
    selected: &str,
) -> impl IntoView + use<> {
    vocabulary
        .iter()
        .map(|(slug, name)| {
            let count = counts
                .iter()
                .find(|(value, _)| value == slug)
                .map_or(0, |(_, count)| *count);
            view! {
                <option value=*slug selected=selected == *slug>
                    {format!("{name} ({count})")}
                </option>
            }
        })
        .collect_view()
}

#[cfg(test)]
mod tests {
    use super::price_minor;

    #[test]
    fn prices_as_typed_in_cents() {
        assert_eq!(price_minor("12"), Some(1200));
        assert_eq!(price_minor(" 12.5 "), Some(1250));
        assert_eq!(price_minor("12,50"), Some(1250));
        assert_eq!(price_minor("0.994"), Some(99));
        assert_eq!(price_minor("0.995"), Some(100));
        assert_eq!(price_minor(".5"), Some(50));
        assert_eq!(price_minor("7."), Some(700));
        for nonsense in ["", ".", "-1", "1e3", "abc", "1.2.3", "99999999999999999999"] {
            assert_eq!(price_minor(nonsense), None, "{nonsense}");
        }
    }
}
