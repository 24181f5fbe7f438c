//! The caller's orders, and one order with its status and the saga's timeline (polled until the
//! order is final).

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::queries::{
    MyOrders, OrderPage as OrderQuery, OrderUpdated, my_orders, order_page, order_updated,
};
use crate::api::ws;
use crate::api::{self, ApiError};
use crate::app::Page;
use crate::components::{Empty, Loading, error_fallback, short_time};

/// How often an unfinished order is asked for again, in case the subscription is down.
const POLL: Duration = Duration::from_secs(4);

fn is_final(status: &str) -> bool {
    matches!(status, "COMPLETED" | "CANCELLED")
}

/// What a cancel reason means to the buyer (the code stays visible for support).
fn reason_text(code: &str) -> String {
    let text = match code {
        "INSUFFICIENT_FUNDS" => "Your wallet did not cover the order",
        "OUT_OF_STOCK" => "An item went out of stock",
        "PAYMENT_DECLINED" => "The payment was declined",
        _ => "The order could not be completed",
    };
    format!("{text} ({code}).")
}

fn status_class(status: &str) -> &'static str {
    match status {
        "COMPLETED" => "status status--ok",
        "CANCELLED" => "status status--bad",
        _ => "status status--pending",
    }
}

#[component]
pub fn Orders() -> impl IntoView {
    let orders = LocalResource::new(|| async {
        api::request::<MyOrders>(my_orders::Variables {
            first: 50,
            after: None,
        })
        .await
        .map(|data| data.my_orders.nodes)
    });
    view! {
        <section class="page" aria-labelledby="orders-title">
            <h1 id="orders-title">"Your orders"</h1>
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        orders.await.map(|orders| {
                            if orders.is_empty() {
                                return view! {
                                    <Empty title="No orders yet">
                                        <p><A href=Page::Store.href()>"Browse the store"</A></p>
                                    </Empty>
                                }
                                .into_any();
                            }
                            view! {
                                <ul class="list">
                                    {orders.into_iter().map(|o| view! {
                                        <li class="list__item">
                                            <A href=Page::Order(o.id.clone()).href()>{format!("Order {}", &o.id[..8.min(o.id.len())])}</A>
                                            <span class=status_class(&o.status)>{o.status.clone()}</span>
                                            <span>{o.total.map(|t| t.formatted).unwrap_or_default()}</span>
                                            <span class="muted">{o.created_at.as_deref().map(short_time).unwrap_or_default()}</span>
                                        </li>
                                    }).collect_view()}
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
pub fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let tick = RwSignal::new(0_u32);
    // Live: every saga event about the order refetches it (the subscription ends with the page).
    let live = StoredValue::new_local(None::<ws::Handle>);
    Effect::new(move |_| {
        let order_id = params.with(|p| p.get("id").unwrap_or_default());
        let handle =
            ws::subscribe::<OrderUpdated>(order_updated::Variables { order_id }, move |_| {
                tick.try_update(|t| *t += 1);
            });
        live.set_value(Some(handle));
    });
    let order = LocalResource::new(move || {
        tick.track();
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            let order = api::request::<OrderQuery>(order_page::Variables { id })
                .await?
                .order;
            if !is_final(&order.status) {
                set_timeout(
                    move || {
                        tick.try_update(|t| *t += 1);
                    },
                    POLL,
                );
            }
            Ok::<_, ApiError>(order)
        }
    });
    view! {
        <section class="page" aria-labelledby="order-title">
            <Transition fallback=|| view! { <Loading label="Loading the order…" /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move { order.await.map(|order| view! { <OrderView order /> }) })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn OrderView(order: order_page::OrderPageOrder) -> impl IntoView {
    let done = is_final(&order.status);
    view! {
        <h1 id="order-title">"Order " <code>{order.id.clone()}</code></h1>
        <p class="order__status" role="status" aria-live="polite">
            <span class=status_class(&order.status)>{order.status.clone()}</span>
            {(!done).then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
        </p>
        {order.cancel_reason.map(|r| view! { <p class="alert alert--error">{reason_text(&r)}</p> })}
        {(order.status == "COMPLETED").then(|| view! {
            <p class="alert alert--ok">"Thank you! Your items are in your " <A href=Page::Library.href()>"library"</A> "."</p>
        })}
        <table class="table">
            <caption class="visually-hidden">"Order lines"</caption>
            <thead><tr><th scope="col">"Item"</th><th scope="col">"Qty"</th><th scope="col" class="num">"Subtotal"</th></tr></thead>
            <tbody>
                {order.lines.into_iter().map(|l| view! {
                    <tr>
                        <td>{l.product_title}<span class="muted">{format!(" · {} ({})", l.edition_name, l.kind.to_lowercase())}</span></td>
                        <td>{l.quantity}</td>
                        <td class="num">{l.subtotal.formatted}</td>
                    </tr>
                }).collect_view()}
            </tbody>
            <tfoot><tr><th scope="row" colspan="2">"Total"</th><td class="num">{order.total.map(|t| t.formatted).unwrap_or_default()}</td></tr></tfoot>
        </table>
        <h2>"Timeline"</h2>
        <ol class="timeline">
            {order.timeline.into_iter().map(|s| view! {
                <li class="timeline__step">
                    <time datetime=s.at.clone()>{short_time(&s.at)}</time>
                    <strong>{s.step}</strong>
                    <span class="muted">{format!(" by {}", s.participant)}</span>
                    {s.detail.map(|d| view! { <p class="timeline__detail">{d}</p> })}
                </li>
            }).collect_view()}
        </ol>
    }
}
