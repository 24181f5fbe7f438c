//! The cart (kept in `localStorage`) and the checkout: one idempotency key per checkout, so a
//! double click or a retry answers the same order.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api::queries::{PlaceOrder, place_order};
use crate::api::{self, ApiError};
use crate::app::Page;
use crate::components::Empty;
use crate::state::{format_minor, idempotency_key, use_auth, use_cart};

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
    let place = Action::new_local(move |(): &()| {
        let lines = cart.0.get_untracked();
        let navigate = navigate.clone();
        let idempotency_key = key.get_value();
        async move {
            let lines = lines
                .iter()
                .map(|l| place_order::OrderLineInput {
                    edition_id: l.edition_id.clone(),
                    quantity: l.quantity,
                })
                .collect();
            let order = api::request::<PlaceOrder>(place_order::Variables {
                lines,
                idempotency_key,
            })
            .await?
            .place_order;
            cart.clear();
            navigate(&Page::Order(order.id).href(), Default::default());
            Ok::<_, ApiError>(())
        }
    });
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
                let physical = cart.0.with(|lines| lines.iter().any(|l| l.is_physical()));
                view! {
                    <CartLines editable=false />
                    {physical.then(|| view! {
                        <p class="alert">"Physical editions ship to the address on your account."</p>
                    })}
                    <p class="muted">"Paid from your wallet. "<A href=Page::Wallet.href()>"Top up"</A></p>
                    {move || place.value().get().and_then(Result::err).map(|e| view! {
                        <p class="alert alert--error" role="alert">{e.message}</p>
                    })}
                    <div class="actions">
                        <button
                            class="button button--primary"
                            type="button"
                            disabled=move || place.pending().get()
                            on:click=move |_| {
                                place.dispatch(());
                            }
                        >
                            {move || if place.pending().get() { "Placing the order…" } else { "Place order" }}
                        </button>
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}
