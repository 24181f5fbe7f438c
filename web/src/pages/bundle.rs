//! A bundle: its editions with covers and links, the list total struck through, the bundle's
//! price, what the signed-in shopper pays for the parts they do not own yet ("You own 1 of 3 —
//! pay X for the rest"), the shipping address when a boxed copy is among the rest, and a Buy
//! button that places the order and goes to it.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::address::{self, AddressFields, AddressForm};
use crate::api::queries::{BundlePage as BundleQuery, BuyBundle, bundle_page, buy_bundle};
use crate::api::session::enum_name;
use crate::api::{self, ApiError};
use crate::components::{
    CoverPlaceholder, FieldErrors, Loading, Markdown, Mounted, PageLink, error_fallback,
    focus_first_invalid, place_error,
};
use crate::page::Page;
use crate::state::{idempotency_key, use_auth};

type Bundle = bundle_page::BundlePageBundle;

#[component]
pub fn BundlePage() -> impl IntoView {
    let params = use_params_map();
    let auth = use_auth();
    let slug = move || params.with(|p| p.get("slug").unwrap_or_default());
    let mounted = Mounted::new();
    let bundle = LocalResource::new(move || {
        let slug = slug();
        // Asked again when the shopper signs in or out: the price for them changes.
        let _ = auth.signed_in();
        async move {
            api::request::<BundleQuery>(bundle_page::Variables { slug })
                .await
                .map(|data| data.bundle)
        }
    });
    view! {
        <Transition fallback=|| view! { <Loading /> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    match mounted.data(bundle).await {
                        Err(error) if error.code == Some(domain::ErrorCode::NotFound) => {
                            crate::words::set_title("Bundle not found");
                            Ok(view! {
                                <section class="page not-found" aria-labelledby="not-found-title">
                                    <h1 id="not-found-title">"This bundle is not here"</h1>
                                    <p>"The link may be mistyped, or the bundle is no longer sold."</p>
                                    <p><PageLink page=Page::Store>"Browse the store"</PageLink></p>
                                </section>
                            }
                            .into_any())
                        }
                        result => result.map(|bundle| view! { <BundleView bundle /> }.into_any()),
                    }
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn BundleView(bundle: Bundle) -> impl IntoView {
    let auth = use_auth();
    crate::words::set_title(&bundle.title);
    let key = StoredValue::new(idempotency_key());
    // A boxed part the shopper lacks is shipped: the order then needs an address.
    let boxed = bundle
        .items
        .iter()
        .any(|i| !i.owned && enum_name(&i.edition.kind) == "PHYSICAL");
    let address = AddressForm::new();
    let fields = RwSignal::new(FieldErrors::new());
    let buy = Action::new_local(move |bundle_id: &String| {
        let vars = buy_bundle::Variables {
            bundle_id: bundle_id.clone(),
            shipping_address: boxed.then(|| address.typed().into()),
            idempotency_key: key.get_value(),
        };
        async move {
            let result = api::request::<BuyBundle>(vars).await;
            match &result {
                // The order page is in the shopper's bundle: a full page load.
                Ok(data) => {
                    let href = Page::Order(data.place_order.id.clone()).href();
                    let _ = window().location().assign(&href);
                }
                // A refusal is final for this key: the next try is a new order.
                Err(_) => key.set_value(idempotency_key()),
            }
            // An address field the API refused is marked at the field (the error is `None`).
            result
                .map(|_| ())
                .map_err(|error: ApiError| place_error(&error, fields, &address::field_names()))
        }
    });
    let on_sale = enum_name(&bundle.status) == "PUBLISHED";
    let owned = bundle.owned_count;
    let count = bundle.item_count;
    let everything_owned = owned >= count;
    let id = bundle.id.clone();
    view! {
        <article class="product bundle" aria-labelledby="bundle-title">
            <nav class="breadcrumbs" aria-label="Breadcrumbs">
                <PageLink page=Page::Store>"Store"</PageLink>
                " › "
                <span aria-current="page">{bundle.title.clone()}</span>
            </nav>
            <h1 id="bundle-title">{bundle.title.clone()}</h1>
            <p class="product__publisher">"Bundle by " {bundle.publisher.name.clone()}</p>
            <div class="bundle__price" aria-label="Price">
                <s class="bundle__list" aria-label="Bought one by one">{bundle.list_total.formatted.clone()}</s>
                " "
                <strong class="bundle__now">{bundle.price.formatted.clone()}</strong>
                " "
                <span class="sale-price__badge">{format!("−{}%", bundle.savings_percent)}</span>
            </div>
            {(owned > 0).then(|| {
                let text = if everything_owned {
                    format!("You own all {count} of these.")
                } else {
                    format!("You own {owned} of {count} — pay {} for the rest.", bundle.price_for_you.formatted)
                };
                view! { <p class="bundle__yours alert alert--ok" role="status">{text}</p> }
            })}
            {if !on_sale {
                view! { <p class="state state--empty">"This bundle is not on sale."</p> }.into_any()
            } else if everything_owned {
                view! { <p><PageLink page=Page::Library>"Go to your library"</PageLink></p> }.into_any()
            } else {
                view! {
                    <Show
                        when=move || auth.signed_in()
                        fallback=|| view! { <p><PageLink page=Page::SignIn>"Sign in to buy this bundle"</PageLink></p> }
                    >
                        <form class="form bundle__buy" novalidate=true on:submit={
                            let id = id.clone();
                            move |ev: leptos::ev::SubmitEvent| {
                                ev.prevent_default();
                                if boxed {
                                    let errors = address.errors();
                                    let ok = errors.is_empty();
                                    fields.set(errors);
                                    if !ok {
                                        focus_first_invalid();
                                        return;
                                    }
                                }
                                buy.dispatch(id.clone());
                            }
                        }>
                            {boxed.then(|| view! { <AddressFields address errors=fields /> })}
                            <button
                                class="button button--primary"
                                type="submit"
                                disabled=move || buy.pending().get() || buy.value().with(|v| matches!(v, Some(Ok(()))))
                            >
                                {format!("Buy for {}", bundle.price_for_you.formatted)}
                            </button>
                        </form>
                    </Show>
                }
                .into_any()
            }}
            {move || buy.value().get().and_then(Result::err).flatten().map(|message| view! {
                <p class="alert alert--error" role="alert">{message}</p>
            })}
            <ul class="bundle__items" aria-label="In this bundle">
                {bundle
                    .items
                    .into_iter()
                    .map(|item| {
                        let title = item.product.title.clone();
                        let cover = match item.product.cover {
                            Some(c) => view! {
                                <img
                                    class="bundle__cover"
                                    src=c.url
                                    srcset=c.srcset
                                    sizes="96px"
                                    width=c.width
                                    height=c.height
                                    alt=""
                                    loading="lazy"
                                />
                            }
                            .into_any(),
                            None => view! { <CoverPlaceholder title=title.clone() /> }.into_any(),
                        };
                        let kind = if enum_name(&item.edition.kind) == "PHYSICAL" { "Boxed copy" } else { "Digital" };
                        view! {
                            <li class="bundle__item">
                                <div class="bundle__thumb">{cover}</div>
                                <div>
                                    <p class="bundle__title">
                                        <PageLink page=Page::Product(item.product.slug.clone())>{title}</PageLink>
                                    </p>
                                    <p class="edition__stock">{format!("{} · {kind}", item.edition.name)}</p>
                                </div>
                                <div class="edition__price">
                                    {if item.owned {
                                        view! { <span class="bundle__owned">"Owned"</span> }.into_any()
                                    } else {
                                        view! { <span>{item.list_price.formatted}</span> }.into_any()
                                    }}
                                </div>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
            <section class="product__text">
                <Markdown text=bundle.description />
            </section>
        </article>
    }
}

address::address_input!(buy_bundle::ShippingAddressInput);
