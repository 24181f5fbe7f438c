//! The cart (kept in `localStorage`) and the checkout: one idempotency key per checkout, so a
//! double click or a retry answers the same order.

use domain::ErrorCode;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::address::{self, AddressFields, AddressForm, country_code};
use crate::api;
use crate::api::queries::{
    BillingCountry as BillingQuery, PlaceOrder, SetBillingCountry, billing_country, place_order,
    set_billing_country,
};
use crate::components::{Empty, FieldErrors, Loading, focus_first_invalid, place_error};
use crate::page::Page;
use crate::state::{CartLine, format_minor, idempotency_key, use_auth, use_cart};

#[component]
pub fn CartPage() -> impl IntoView {
    let cart = use_cart();
    view! {
        <section class="page" aria-labelledby="cart-title">
            <h1 id="cart-title">"Your cart"</h1>
            {move || {
                if cart.0.with(Vec::is_empty) {
                    return view! {
                        <Empty title="Your cart is empty">
                            <p><A href=Page::Store.href()>"Browse the store"</A></p>
                        </Empty>
                    }
                    .into_any();
                }
                view! {
                    <CartLines editable=true />
                    <div class="actions">
                        <A href=Page::Checkout.href() attr:class="button button--primary">"Checkout"</A>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}

/// The cart's lines as a table, with quantity and remove controls when `editable`.
#[component]
fn CartLines(editable: bool) -> impl IntoView {
    let cart = use_cart();
    view! {
        <table class="table cart">
            <caption class="visually-hidden">"Items in the cart"</caption>
            <thead>
                <tr>
                    <th scope="col">"Item"</th>
                    <th scope="col">"Quantity"</th>
                    <th scope="col" class="num">"Price"</th>
                    {editable.then(|| view! { <th scope="col"><span class="visually-hidden">"Remove"</span></th> })}
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || cart.0.get()
                    key=|line| (line.edition_id.clone(), line.quantity)
                    let(line)
                >
                    {
                        let id = line.edition_id.clone();
                        let id_remove = id.clone();
                        let physical = line.is_physical();
                        let label = format!("Quantity of {}", line.product_title);
                        view! {
                            <tr>
                                <td>
                                    <A href=Page::Product(line.product_slug.clone()).href()>{line.product_title.clone()}</A>
                                    <span class="muted">{format!(" · {}", line.edition_name)}</span>
                                </td>
                                <td>
                                    {if editable && physical {
                                        view! {
                                            <input
                                                class="qty"
                                                type="number"
                                                min="1"
                                                max="99"
                                                aria-label=label
                                                prop:value=line.quantity.to_string()
                                                on:change=move |ev| {
                                                    let n = event_target_value(&ev).parse().unwrap_or(1);
                                                    cart.set_quantity(&id, n);
                                                }
                                            />
                                        }
                                        .into_any()
                                    } else {
                                        view! { <span>{line.quantity}</span> }.into_any()
                                    }}
                                </td>
                                <td class="num">{format_minor(line.unit_price_minor * line.quantity, &line.currency)}</td>
                                {editable.then(|| view! {
                                    <td>
                                        <button class="button button--ghost" type="button" on:click=move |_| cart.remove(&id_remove)>
                                            "Remove"
                                        </button>
                                    </td>
                                })}
                            </tr>
                        }
                    }
                </For>
            </tbody>
            <tfoot>
                <tr>
                    <th scope="row" colspan="2">"Total"</th>
                    <td class="num"><strong>{move || cart.total().unwrap_or_default()}</strong></td>
                    {editable.then(|| view! { <td></td> })}
                </tr>
            </tfoot>
        </table>
    }
}

#[component]
pub fn Checkout() -> impl IntoView {
    let auth = use_auth();
    let cart = use_cart();
    let navigate = use_navigate();
    // One key for this checkout: every retry of the same cart answers the same order.
    let key = StoredValue::new(idempotency_key());
    let address = AddressForm::new();
    let fields = RwSignal::new(FieldErrors::new());
    let alert = RwSignal::new(None::<String>);
    let physical = Memo::new(move |_| cart.0.with(|lines| lines.iter().any(CartLine::is_physical)));
    let place = Action::new_local(move |(): &()| {
        let lines = cart.0.get_untracked();
        let navigate = navigate.clone();
        let idempotency_key = key.get_value();
        let shipping_address = physical.get_untracked().then(|| address.typed().into());
        async move {
            let lines = lines
                .iter()
                .map(|l| place_order::OrderLineInput {
                    edition_id: l.edition_id.clone(),
                    quantity: l.quantity,
                })
                .collect();
            let result = api::request::<PlaceOrder>(place_order::Variables {
                lines,
                shipping_address,
                idempotency_key,
            })
            .await;
            match result {
                Ok(data) => {
                    cart.clear();
                    navigate(&Page::Order(data.place_order.id).href(), Default::default());
                }
                Err(error) => {
                    if error.code == Some(ErrorCode::Conflict) {
                        // The key answered another cart or address: the next try is a new order.
                        key.set_value(crate::state::idempotency_key());
                    }
                    alert.set(place_error(&error, fields, &address::field_names()));
                }
            }
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        alert.set(None);
        if physical.get_untracked() {
            let errors = address.errors();
            let ok = errors.is_empty();
            fields.set(errors);
            if !ok {
                focus_first_invalid();
                return;
            }
        } else {
            fields.set(FieldErrors::new());
        }
        place.dispatch(());
    };
    view! {
        <section class="page" aria-labelledby="checkout-title">
            <h1 id="checkout-title">"Checkout"</h1>
            {move || {
                if cart.0.with(Vec::is_empty) && !place.pending().get() {
                    return view! {
                        <Empty title="Nothing to check out">
                            <p><A href=Page::Store.href()>"Browse the store"</A></p>
                        </Empty>
                    }
                    .into_any();
                }
                if auth.restoring.get() {
                    return view! { <Loading /> }.into_any();
                }
                if !auth.signed_in() {
                    let next = format!("{}?next={}", Page::SignIn.href(), Page::Checkout.href());
                    return view! {
                        <div class="state">
                            <p>"Sign in to place your order; your cart stays as it is."</p>
                            <p><A href=next attr:class="button button--primary">"Sign in"</A></p>
                        </div>
                    }
                    .into_any();
                }
                view! {
                    <CartLines editable=false />
                    <form class="form checkout" on:submit=on_submit novalidate=true aria-labelledby="checkout-title">
                        <Show when=move || physical.get()>
                            <AddressFields address errors=fields />
                        </Show>
                        <Show when=move || !physical.get()>
                            <BillingCountry />
                        </Show>
                        <p class="muted">"Paid from your wallet. "<A href=Page::Wallet.href()>"Top up"</A></p>
                        {move || alert.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
                        <div class="actions">
                            <button class="button button--primary" type="submit" disabled=move || place.pending().get()>
                                {move || if place.pending().get() { "Placing the order…" } else { "Place order" }}
                            </button>
                        </div>
                    </form>
                }
                .into_any()
            }}
        </section>
    }
}

/// Where digital items are taxed: the account's billing country (the store's until set), and
/// a way to change it (a country by name or code; in the US, the state). `on_saved` runs after
/// each change: the page's amounts may be in another currency now.
#[component]
pub fn BillingCountry(#[prop(optional)] on_saved: Option<Callback<()>>) -> impl IntoView {
    let saved = RwSignal::new(None::<(String, Option<String>)>);
    let loaded = LocalResource::new(move || async move {
        api::request::<BillingQuery>(billing_country::Variables {})
            .await
            .ok()
    });
    let chosen = move || {
        loaded
            .get()
            .flatten()
            .and_then(|d| d.me)
            .and_then(|me| me.billing_country.map(|c| (c, me.billing_state)))
    };
    // The currency follows the region: asked again after each change.
    let money = move || {
        loaded.get().flatten().map(|d| {
            let taxed = if d.region.prices_include_tax {
                "tax included"
            } else {
                "tax added at checkout"
            };
            format!("Prices are in {}, {taxed}.", d.region.currency)
        })
    };
    let country = RwSignal::new(String::new());
    let us_state = RwSignal::new(String::new());
    let answer = RwSignal::new(None::<Result<(), String>>);
    let save = Action::new_local(move |(c, s): &(String, Option<String>)| {
        let vars = set_billing_country::Variables {
            country: c.clone(),
            state: s.clone(),
        };
        async move {
            match api::request::<SetBillingCountry>(vars).await {
                Ok(d) => {
                    let b = d.set_billing_country;
                    saved.try_set(b.billing_country.map(|c| (c, b.billing_state)));
                    answer.try_set(Some(Ok(())));
                    loaded.refetch();
                    if let Some(saved) = on_saved {
                        saved.try_run(());
                    }
                }
                Err(e) => {
                    answer.try_set(Some(Err(e.message)));
                }
            }
        }
    });
    let current = move || saved.get().or_else(chosen);
    let described = move || match current() {
        Some((code, state)) => {
            let name = domain::country::find(&code).map_or(code.clone(), |c| c.name.to_owned());
            match state {
                Some(s) => format!("{name} ({s})"),
                None => name,
            }
        }
        None => "the store's country, until you set yours".to_owned(),
    };
    view! {
        <fieldset class="form form--card billing">
            <legend>"Billing country"</legend>
            <p class="muted billing__now">"Digital items are taxed in " {described} ". " {money}</p>
            <div class="billing__row">
                <label for="billing-country">"Country"</label>
                <input id="billing-country" type="text" autocomplete="country-name" prop:value=country
                    on:input=move |ev| country.set(event_target_value(&ev)) />
                <label for="billing-state">"US state (if in the US)"</label>
                <input id="billing-state" type="text" class="qty" maxlength="2" prop:value=us_state
                    on:input=move |ev| us_state.set(event_target_value(&ev)) />
                <button class="button" type="button" disabled=move || save.pending().get()
                    on:click=move |_| {
                        let code = country_code(&country.get_untracked());
                        let s = us_state.get_untracked().trim().to_owned();
                        save.dispatch((code, (!s.is_empty()).then_some(s)));
                    }>"Save"</button>
            </div>
            {move || match answer.get() {
                Some(Ok(())) => view! { <p class="alert alert--ok" role="status">"Saved."</p> }.into_any(),
                Some(Err(m)) => view! { <p class="alert alert--error" role="alert">{m}</p> }.into_any(),
                None => ().into_any(),
            }}
        </fieldset>
    }
}

address::address_input!(place_order::ShippingAddressInput);
