//! Admins: every order (`orders(status, accountId, first, after)`), filtered by status or buyer
//! and paged by cursor; each order opens to its lines and the saga's timeline.

use std::collections::HashSet;

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::api::queries::Domain;
use crate::api::queries::admin_orders::OrderStatus as Status;
use crate::api::queries::{
    AdminOrderTimeline, AdminOrders as OrdersQuery, admin_order_timeline, admin_orders,
};
use crate::api::session::enum_name;
use crate::components::{Empty, Loading, focus_first_invalid, short_time};
use crate::page::Page;
use crate::pages::notice::{error_alert, general, load_error};
use crate::pages::refunds::{Pager, status_text};
use crate::words;

const PAGE: i64 = 20;

/// Every order status, as the API filters them.
const STATUSES: [Status; 6] = [
    Status::PLACED,
    Status::PAID,
    Status::AWAITING_SHIPMENT,
    Status::COMPLETED,
    Status::CANCELLED,
    Status::REFUNDED,
];

/// `8-4-4-4-12` hex digits.
fn looks_like_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[component]
pub fn AdminOrders() -> impl IntoView {
    let status = RwSignal::new(None::<Status>);
    let account = RwSignal::new(String::new());
    let account_filter = RwSignal::new(None::<String>);
    let account_invalid = RwSignal::new(false);
    let cursors = RwSignal::new(Vec::<Option<String>>::new());
    let after = RwSignal::new(None::<String>);
    let reload = RwSignal::new(0_u32);
    // Which orders are open, kept here rather than in each row: a filter or a page that brings
    // an order back shows it as the admin left it, even when the row was opened while the list
    // was still being replaced.
    let opened = RwSignal::new(HashSet::<String>::new());
    let orders = LocalResource::new(move || {
        reload.track();
        let variables = admin_orders::Variables {
            status: status.get(),
            account_id: account_filter.get(),
            first: PAGE,
            after: after.get(),
        };
        async move {
            api::request::<OrdersQuery>(variables)
                .await
                .map(|data| data.orders)
        }
    });
    let restart = move || {
        cursors.set(Vec::new());
        after.set(None);
    };
    view! {
        <section class="page" aria-labelledby="admin-orders-title">
            <h1 id="admin-orders-title">"All orders"</h1>
            <form
                class="filters"
                role="search"
                aria-label="Filter the orders"
                on:submit=move |ev| {
                    ev.prevent_default();
                    let id = account.get_untracked().trim().to_owned();
                    let valid = id.is_empty() || looks_like_uuid(&id);
                    account_invalid.set(!valid);
                    if valid {
                        restart();
                        account_filter.set(Some(id).filter(|a| !a.is_empty()));
                    } else {
                        focus_first_invalid();
                    }
                }
            >
                <div class="field">
                    <label for="orders-status">"Status"</label>
                    <select
                        id="orders-status"
                        prop:value=move || status.with(|s| s.as_ref().map(enum_name).unwrap_or_default())
                        on:change=move |ev| {
                            restart();
                            let value = event_target_value(&ev);
                            status.set(STATUSES.into_iter().find(|s| enum_name(s) == value));
                        }
                    >
                        <option value="">"All"</option>
                        {STATUSES.iter().map(|s| view! { <option value=enum_name(s)>{words::order_status(s.domain())}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="orders-account">"Buyer account id"</label>
                    <input
                        id="orders-account"
                        type="search"
                        autocomplete="off"
                        spellcheck="false"
                        placeholder="Any buyer"
                        aria-invalid=move || account_invalid.get().to_string()
                        aria-describedby="orders-account-error"
                        prop:value=account
                        on:input=move |ev| account.set(event_target_value(&ev))
                    />
                    <p class="field__error" id="orders-account-error">
                        {move || account_invalid.get().then_some("An account id looks like 0193a5c2-7d41-7c3e-9f1a-2b3c4d5e6f70.")}
                    </p>
                </div>
                <button class="button" type="submit">"Filter"</button>
            </form>
            <Transition fallback=|| view! { <Loading label="Loading the orders…" /> }>
                {move || Suspend::new(async move {
                    match orders.await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(page) => {
                            let next = page.page_info.has_next_page.then_some(page.page_info.end_cursor).flatten();
                            let list = if page.nodes.is_empty() {
                                view! { <Empty title="No orders match"><p>"Try another status or buyer."</p></Empty> }.into_any()
                            } else {
                                view! {
                                    <ul class="list admin-orders">
                                        {page.nodes.into_iter().map(|order| view! { <OrderRow order opened /> }).collect_view()}
                                    </ul>
                                }.into_any()
                            };
                            view! { {list} <Pager cursors after next /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn OrderRow(
    order: admin_orders::AdminOrdersOrdersNodes,
    opened: RwSignal<HashSet<String>>,
) -> impl IntoView {
    let key = order.id.clone();
    let open = Memo::new(move |_| opened.with(|o| o.contains(&key)));
    let toggle_id = order.id.clone();
    let short = order.id.chars().take(8).collect::<String>();
    let panel_id = format!("order-detail-{}", order.id);
    let id = order.id.clone();
    let items = order
        .lines
        .iter()
        .map(|l| {
            let kind = words::edition_kind(l.kind.domain());
            if l.quantity > 1 {
                format!(
                    "{} × {} ({}, {kind})",
                    l.quantity, l.product_title, l.edition_name
                )
            } else {
                format!("{} ({}, {kind})", l.product_title, l.edition_name)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    view! {
        <li class="list__item admin-order">
            <div class="admin-order__summary">
                <button
                    class="disclosure"
                    type="button"
                    aria-expanded=move || open.get().to_string()
                    aria-controls=panel_id.clone()
                    on:click=move |_| opened.update(|o| {
                        if !o.remove(&toggle_id) {
                            o.insert(toggle_id.clone());
                        }
                    })
                >
                    {format!("Order {short}")}
                </button>
                <span class=words::status_class(order.status.domain()) data-status=enum_name(&order.status)>{words::order_status(order.status.domain())}</span>
                <span>{order.total.map(|t| t.formatted).unwrap_or_default()}</span>
                <span class="muted">{order.created_at.as_deref().map(short_time).unwrap_or_default()}</span>
                <p class="muted admin-order__items">{items}</p>
                <p class="muted admin-order__buyer">
                    "Buyer " <code>{order.account_id.unwrap_or_else(|| "unknown".to_owned())}</code>
                </p>
            </div>
            <div id=panel_id class="admin-order__detail" hidden=move || !open.get()>
                <Show when=move || open.get()>
                    <OrderDetail id=id.clone() />
                </Show>
            </div>
        </li>
    }
}

#[component]
fn OrderDetail(id: String) -> impl IntoView {
    let reload = RwSignal::new(0_u32);
    let order_id = id.clone();
    let order = LocalResource::new(move || {
        reload.track();
        let id = order_id.clone();
        async move {
            api::request::<AdminOrderTimeline>(admin_order_timeline::Variables { id })
                .await
                .map(|data| data.order)
        }
    });
    view! {
        <Transition fallback=|| view! { <Loading label="Loading the timeline…" /> }>
            {move || Suspend::new(async move {
                match order.await {
                    Err(error) if error.code.is_some() => error_alert(&error, general).into_any(),
                    Err(error) => load_error(&error, reload).into_any(),
                    Ok(order) => view! {
                        {order.cancel_reason.map(|r| view! { <p>"Cancelled: " <code>{r}</code></p> })}
                        {order.refund_request.map(|r| view! { <p>{format!("Refund request: {}", status_text(&enum_name(&r.status)).0.to_lowercase())}</p> })}
                        <h3 class="visually-hidden">"Timeline"</h3>
                        <ol class="timeline" aria-label="Timeline">
                            {order.timeline.into_iter().map(|s| view! {
                                <li class="timeline__step" data-step=enum_name(&s.step)>
                                    <time datetime=s.at.clone()>{short_time(&s.at)}</time>
                                    " "
                                    <strong>{words::timeline_step(s.step.domain(), true).unwrap_or_default()}</strong>
                                    <span class="muted">{format!(" by {}", s.participant)}</span>
                                    {s.detail.map(|d| view! { <p class="timeline__detail">{d}</p> })}
                                </li>
                            }).collect_view()}
                        </ol>
                        <p><A href=Page::Order(order.id).href()>"Open the order page"</A></p>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
