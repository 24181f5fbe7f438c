//! The caller's orders, and one order with its status and the saga's timeline (polled until the
//! order is final).

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::queries::Domain;
use crate::api::queries::{
    CancelOrder, MyOrders, OrderPage as OrderQuery, OrderReceipt, OrderUpdated, cancel_order,
    my_orders, order_page, order_receipt, order_updated,
};
use crate::api::session::enum_name;
use crate::api::ws;
use crate::api::{self, ApiError};
use crate::components::{Empty, Loading, Mounted, error_fallback, short_time};
use crate::page::Page;
use crate::words;
use domain::catalog::EditionKind;
use domain::ordering::OrderStatus;

/// How often an unfinished order is asked for again, in case the subscription is down.
const POLL: Duration = Duration::from_secs(4);
/// The same for an order waiting for its publisher to ship (that can take days).
const POLL_AWAITING_SHIPMENT: Duration = Duration::from_secs(30);

/// What a cancel reason means to the buyer (support sees the code on the admin pages).
fn reason_text(code: &str) -> String {
    let text = match code {
        "INSUFFICIENT_FUNDS" => "Your wallet did not cover the order",
        "WALLET_FROZEN" => "Your wallet is frozen; contact support",
        "OUT_OF_STOCK" => "An item went out of stock",
        "PAYMENT_DECLINED" => "The payment was declined",
        "CANCELLED_BY_BUYER" => "You cancelled the order; the payment went back to your wallet",
        "SHIPPING_DEADLINE_PASSED" => {
            "The publisher did not ship in time; the payment went back to your wallet"
        }
        _ => "The order could not be completed",
    };
    format!("{text}.")
}

#[component]
pub fn Orders() -> impl IntoView {
    let mounted = Mounted::new();
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
                        mounted.data(orders).await.map(|orders| {
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
                                            <A href=Page::Order(o.id.clone()).href()>{format!("Order {}", words::order_number(&o.id))}</A>
                                            <span class=words::status_class(o.status.domain()) data-status=enum_name(&o.status)>{words::order_status(o.status.domain())}</span>
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
    let mounted = Mounted::new();
    let tick = RwSignal::new(0_u32);
    // Live: every saga event about the order refetches it (the subscription ends with the page).
    let live = StoredValue::new_local(None::<ws::Handle>);
    Effect::new(move |_| {
        let order_id = params.with(|p| p.get("id").unwrap_or_default());
        let refetch = move || {
            tick.try_update(|t| *t += 1);
        };
        let handle = ws::subscribe_resuming::<OrderUpdated>(
            order_updated::Variables { order_id },
            move |_| refetch(),
            refetch,
        );
        live.set_value(Some(handle));
    });
    let order = LocalResource::new(move || {
        tick.track();
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            let order = api::request::<OrderQuery>(order_page::Variables { id })
                .await?
                .order;
            let status = order.status.domain();
            if !words::is_final(status) {
                let wait = if status == Some(OrderStatus::AwaitingShipment) {
                    POLL_AWAITING_SHIPMENT
                } else {
                    POLL
                };
                set_timeout(
                    move || {
                        tick.try_update(|t| *t += 1);
                    },
                    wait,
                );
            }
            Ok::<_, ApiError>(order)
        }
    });
    // Kept here, not in the view: a refetch rebuilds the view and must not forget them.
    let cancel = Cancel {
        confirming: RwSignal::new(false),
        action: Action::new_local(move |order_id: &String| {
            let order_id = order_id.clone();
            async move {
                let result = api::request::<CancelOrder>(cancel_order::Variables { order_id })
                    .await
                    .map(|_| ());
                tick.try_update(|t| *t += 1);
                result
            }
        }),
    };
    // The refund panel loads data of its own: it is made once the order is final (and again
    // when that changes), not with every refetch of the order, which would drop it while its
    // request is still pending (and the disposed resource would panic when awaited).
    let settled = Memo::new(move |_| {
        order
            .get()
            .and_then(Result::ok)
            .filter(|o| words::is_final(o.status.domain()))
            .map(|o| (o.id, o.status))
    });
    view! {
        <section class="page" aria-labelledby="order-title">
            <Transition fallback=|| view! { <Loading label="Loading the order…" /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move { mounted.data(order).await.map(|order| view! { <OrderView order cancel /> }) })}
                </ErrorBoundary>
            </Transition>
            {move || settled.get().map(|(order_id, _)| view! { <crate::pages::refunds::RefundPanel order_id /> })}
        </section>
    }
}

/// The buyer's cancellation of an order awaiting shipment: asked, then confirmed.
#[derive(Clone, Copy)]
struct Cancel {
    confirming: RwSignal<bool>,
    action: Action<String, Result<(), ApiError>>,
}

#[component]
fn ShipmentView(
    shipment: order_page::OrderPageOrderShipment,
    order_id: String,
    awaiting: bool,
    cancel: Cancel,
) -> impl IntoView {
    let a = shipment.address;
    let place = [a.postal_code, a.city]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let country = [a.region, a.country]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let order_for_cancel = order_id;
    view! {
        <section class="shipment" aria-labelledby="shipment-title">
            <h2 id="shipment-title">"Shipping"</h2>
            <dl class="facts shipment__facts">
                <dt>"Status"</dt>
                <dd class="shipment__status" data-status=enum_name(&shipment.status)>{words::shipment_status(shipment.status.domain())}</dd>
                <dt>"Ship to"</dt>
                <dd>
                    <address>
                        {a.name}<br />{a.street}<br />{place}<br />{country}<br />{a.phone}
                    </address>
                </dd>
                {shipment.carrier.map(|c| view! { <dt>"Carrier"</dt><dd class="shipment__carrier">{c}</dd> })}
                {shipment.tracking_number.map(|t| view! { <dt>"Tracking number"</dt><dd><code class="shipment__tracking">{t}</code></dd> })}
                {shipment.shipped_at.map(|t| view! { <dt>"Shipped"</dt><dd><time datetime=t.clone()>{short_time(&t)}</time></dd> })}
            </dl>
            {awaiting.then(|| view! {
                <div class="cancel-order">
                    {move || {
                        let order_id = order_for_cancel.clone();
                        if matches!(cancel.action.value().get(), Some(Ok(()))) {
                            view! {
                                <p class="alert" role="status">"Cancellation requested: the order ends and the refund follows in a moment."</p>
                            }
                            .into_any()
                        } else if cancel.confirming.get() {
                            view! {
                                <div class="alert" role="group" aria-labelledby="cancel-question">
                                    <p id="cancel-question">"Cancel this order? The payment goes back to your wallet and the copies back to the stock."</p>
                                    <div class="actions">
                                        <button
                                            class="button button--danger"
                                            type="button"
                                            disabled=move || cancel.action.pending().get()
                                            on:click=move |_| {
                                                cancel.action.dispatch(order_id.clone());
                                                cancel.confirming.set(false);
                                            }
                                        >
                                            "Yes, cancel the order"
                                        </button>
                                        <button class="button button--ghost" type="button" on:click=move |_| cancel.confirming.set(false)>
                                            "Keep the order"
                                        </button>
                                    </div>
                                </div>
                            }
                            .into_any()
                        } else {
                            view! {
                                <button
                                    class="button"
                                    type="button"
                                    disabled=move || cancel.action.pending().get()
                                    on:click=move |_| cancel.confirming.set(true)
                                >
                                    {move || if cancel.action.pending().get() { "Cancelling…" } else { "Cancel order" }}
                                </button>
                            }
                            .into_any()
                        }
                    }}
                </div>
            })}
            {move || cancel.action.value().get().and_then(Result::err).map(|e| view! {
                <p class="alert alert--error" role="alert">{e.message}</p>
            })}
        </section>
    }
}

#[component]
fn OrderView(order: order_page::OrderPageOrder, cancel: Cancel) -> impl IntoView {
    let status = order.status.domain();
    let done = words::is_final(status);
    let awaiting = status == Some(OrderStatus::AwaitingShipment);
    let order_id = order.id.clone();
    // Library grants only digital lines: a boxed-only order's `ITEMS_GRANTED` granted nothing.
    let has_digital = order
        .lines
        .iter()
        .any(|l| l.kind.domain() != Some(EditionKind::Physical));
    words::set_title(&format!("Order {}", words::order_number(&order.id)));
    view! {
        <h1 id="order-title">{format!("Order {}", words::order_number(&order.id))}</h1>
        <p class="muted order__meta">
            {order.created_at.as_deref().map(|at| format!("Placed {} · ", short_time(at)))}
            {words::items(order.lines.iter().map(|l| usize::try_from(l.quantity).unwrap_or(0)).sum())}
        </p>
        <p class="order__status" role="status" aria-live="polite">
            <span class=words::status_class(status) data-status=enum_name(&order.status)>{words::order_status(status)}</span>
            {(!done).then(|| view! { <span class="spinner" aria-hidden="true"></span> })}
        </p>
        {order.cancel_reason.map(|r| view! { <p class="alert alert--error">{reason_text(&r)}</p> })}
        {(status == Some(OrderStatus::Completed)).then(|| view! {
            <p class="alert alert--ok">"Thank you! Your items are in your " <A href=Page::Library.href()>"library"</A> "."</p>
        })}
        {(status.is_some_and(|s| s != OrderStatus::Cancelled)).then(|| view! {
            <p><A href=Page::Receipt(order_id.clone()).href()>"Receipt"</A></p>
        })}
        <table class="table">
            <caption class="visually-hidden">"Order lines"</caption>
            <thead><tr><th scope="col">"Item"</th><th scope="col">"Qty"</th><th scope="col" class="num">"Subtotal"</th></tr></thead>
            <tbody>
                {order.lines.into_iter().map(|l| view! {
                    <tr>
                        <td>{l.product_title}<span class="muted">{format!(" · {} ({})", l.edition_name, words::edition_kind(l.kind.domain()))}</span></td>
                        <td>{l.quantity}</td>
                        <td class="num">{l.subtotal.formatted}</td>
                    </tr>
                }).collect_view()}
            </tbody>
            <tfoot><tr><th scope="row" colspan="2">"Total"</th><td class="num">{order.total.map(|t| t.formatted).unwrap_or_default()}</td></tr></tfoot>
        </table>
        {order.shipment.map(|shipment| view! { <ShipmentView shipment order_id awaiting cancel /> })}
        <h2>"Timeline"</h2>
        <ol class="timeline">
            {order.timeline.into_iter().filter_map(|s| {
                let text = words::timeline_step(s.step.domain(), has_digital)?;
                Some(view! {
                    <li class="timeline__step" data-step=enum_name(&s.step)>
                        <time datetime=s.at.clone()>{short_time(&s.at)}</time>
                        " "
                        <strong>{text}</strong>
                        {s.detail.map(|d| view! { <p class="timeline__detail">{d}</p> })}
                    </li>
                })
            }).collect_view()}
        </ol>
    }
}

/// An order's receipt: who sold what to whom, where it was taxed, the tax by rate and the
/// totals, laid out to print (or save as PDF from the print dialog).
#[component]
pub fn ReceiptPage() -> impl IntoView {
    let params = use_params_map();
    let mounted = Mounted::new();
    let receipt = LocalResource::new(move || {
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            api::request::<OrderReceipt>(order_receipt::Variables { id })
                .await
                .map(|data| (data.order.id, data.order.receipt))
        }
    });
    view! {
        <section class="page receipt" aria-labelledby="receipt-title">
            <Transition fallback=|| view! { <Loading label="Loading the receipt…" /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(receipt).await.map(|(id, r)| match r {
                            Some(r) => view! { <ReceiptView id receipt=r /> }.into_any(),
                            None => view! { <p class="state">"The order is not stored yet; try again in a moment."</p> }.into_any(),
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

#[component]
fn ReceiptView(id: String, receipt: order_receipt::OrderReceiptOrderReceipt) -> impl IntoView {
    let r = receipt;
    words::set_title(&format!("Receipt {}", r.number));
    let place = match (&r.buyer_country_name, &r.buyer_state) {
        (Some(name), Some(state)) => format!("{name} ({state})"),
        (Some(name), None) => name.clone(),
        _ => "not recorded".to_owned(),
    };
    let tax_words = if r.prices_include_tax {
        "Prices include tax"
    } else {
        "Tax added to the prices"
    };
    view! {
        <h1 id="receipt-title">{format!("Receipt {}", r.number)}</h1>
        <dl class="receipt__facts">
            <dt>"Date"</dt><dd>{short_time(&r.issued_at)}</dd>
            <dt>"Seller"</dt><dd>{r.seller}</dd>
            <dt>"Taxed in"</dt><dd class="receipt__place">{place}</dd>
            <dt>"Tax"</dt><dd>{tax_words}</dd>
        </dl>
        <table class="table receipt__lines">
            <caption class="visually-hidden">"What you bought"</caption>
            <thead>
                <tr>
                    <th scope="col">"Item"</th>
                    <th scope="col">"Qty"</th>
                    <th scope="col" class="num">"Net"</th>
                    <th scope="col" class="num">"Tax"</th>
                    <th scope="col" class="num">"Total"</th>
                </tr>
            </thead>
            <tbody>
                {r.lines.into_iter().map(|l| view! {
                    <tr>
                        <td>
                            {l.product_title}
                            <span class="muted">{format!(" · {} · sold for {}", l.edition_name, l.publisher)}</span>
                        </td>
                        <td>{l.quantity}</td>
                        <td class="num">{l.net.formatted}</td>
                        <td class="num">{format!("{} ({})", l.tax.formatted, l.tax_rate)}</td>
                        <td class="num">{l.total.formatted}</td>
                    </tr>
                }).collect_view()}
            </tbody>
            <tfoot>
                {r.taxes.into_iter().map(|t| view! {
                    <tr>
                        <th scope="row" colspan="2">{format!("Tax at {}", t.rate)}</th>
                        <td class="num">{t.net.formatted}</td>
                        <td class="num">{t.tax.formatted}</td>
                        <td></td>
                    </tr>
                }).collect_view()}
                <tr class="receipt__total">
                    <th scope="row" colspan="2">"Total paid"</th>
                    <td class="num">{r.net.formatted}</td>
                    <td class="num">{r.tax.formatted}</td>
                    <td class="num">{r.total.formatted}</td>
                </tr>
            </tfoot>
        </table>
        {r.tax_source.map(|s| view! { <p class="muted">{format!("Tax rate: {s}.")}</p> })}
        <p class="receipt__actions">
            <button class="button" type="button" on:click=move |_| {
                if let Some(w) = web_sys::window() {
                    let _ = w.print();
                }
            }>"Print or save as PDF"</button>
            " "
            <A href=Page::Order(id).href()>"Back to the order"</A>
        </p>
    }
}
