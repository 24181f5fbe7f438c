//! Admins: every order (`orders(status, accountId, first, after)`), filtered by status or buyer
//! and paged by cursor; each order opens to its lines and the saga's timeline.

use std::collections::HashSet;

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::api::queries::Domain;
use crate::api::queries::admin_orders::OrderStatus as Status;
use crate::api::queries::{
    AdminOrderTimeline, AdminOrders as OrdersQuery, BuyerSearch, admin_order_timeline,
    admin_orders, buyer_search,
};
use crate::api::session::enum_name;
use crate::components::{Debounce, Empty, Loading, Mounted, short_time};
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

/// The buyer whose orders are shown: picked from the search by e-mail, or an account id typed
/// as it is (support often has one from a ticket).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Buyer {
    id: String,
    /// The e-mail, `None` for an id typed by hand.
    email: Option<String>,
}

#[component]
pub fn AdminOrders() -> impl IntoView {
    let mounted = Mounted::new();
    let status = RwSignal::new(None::<Status>);
    let buyer = RwSignal::new(None::<Buyer>);
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
            account_id: buyer.with(|b| b.as_ref().map(|b| b.id.clone())),
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
    let pick = Callback::new(move |picked: Option<Buyer>| {
        restart();
        buyer.set(picked);
    });
    view! {
        <section class="page" aria-labelledby="admin-orders-title">
            <h1 id="admin-orders-title">"All orders"</h1>
            <form
                class="filters"
                role="search"
                aria-label="Filter the orders"
                on:submit=move |ev| ev.prevent_default()
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
                <BuyerPicker buyer pick />
            </form>
            <Transition fallback=|| view! { <Loading label="Loading the orders…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(orders).await {
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

/// The buyer filter: typing part of an e-mail (or name) lists matching accounts, picking one
/// shows only their orders; a whole account id filters at once; an empty box shows every buyer.
#[component]
fn BuyerPicker(buyer: RwSignal<Option<Buyer>>, pick: Callback<Option<Buyer>>) -> impl IntoView {
    let mounted = Mounted::new();
    let typed = RwSignal::new(String::new());
    let search = RwSignal::new(String::new());
    let debounce = Debounce::new();
    let matches = LocalResource::new(move || {
        let text = search.get();
        async move {
            if text.is_empty() {
                return Ok(Vec::new());
            }
            api::request::<BuyerSearch>(buyer_search::Variables { search: text })
                .await
                .map(|data| data.accounts.nodes)
        }
    });
    let set_search = move |text: String| {
        debounce.cancel();
        search.set(text);
    };
    let on_input = move |ev: leptos::ev::Event| {
        let text = event_target_value(&ev);
        typed.set(text.clone());
        let trimmed = text.trim().to_owned();
        if trimmed.is_empty() {
            set_search(String::new());
            if buyer.with_untracked(Option::is_some) {
                pick.run(None);
            }
        } else if looks_like_uuid(&trimmed) {
            set_search(String::new());
            pick.run(Some(Buyer {
                id: trimmed.to_lowercase(),
                email: None,
            }));
        } else {
            debounce.run(move || search.set(trimmed));
        }
    };
    let choose = move |id: String, email: String| {
        typed.set(email.clone());
        set_search(String::new());
        pick.run(Some(Buyer {
            id,
            email: Some(email),
        }));
    };
    let clear = move |_| {
        typed.set(String::new());
        set_search(String::new());
        pick.run(None);
    };
    let open = move || search.with(|s| !s.is_empty());
    view! {
        <div class="field buyer-picker">
            <label for="orders-buyer">"Buyer"</label>
            <input
                id="orders-buyer"
                type="search"
                autocomplete="off"
                spellcheck="false"
                placeholder="Any buyer: type an e-mail or an account id"
                aria-describedby="orders-buyer-hint"
                aria-controls="orders-buyer-matches"
                aria-expanded=move || open().to_string()
                prop:value=typed
                on:input=on_input
            />
            <p class="field__hint" id="orders-buyer-hint" aria-live="polite">
                {move || match buyer.get() {
                    None => view! { "Showing every buyer's orders." }.into_any(),
                    Some(Buyer { email, id }) => view! {
                        {format!("Showing the orders of {}. ", email.unwrap_or(id))}
                        <button class="button button--ghost" type="button" on:click=clear>"Show all buyers"</button>
                    }.into_any(),
                }}
            </p>
            <div id="orders-buyer-matches" class="buyer-picker__matches" hidden=move || !open()>
                <Transition fallback=|| view! { <Loading label="Looking up buyers…" /> }>
                    {move || Suspend::new(async move {
                        match mounted.data(matches).await {
                            Err(error) => error_alert(&error, general).into_any(),
                            Ok(found) if found.is_empty() => view! { <p class="muted">"No account matches this."</p> }.into_any(),
                            Ok(found) => view! {
                                <ul class="list" aria-label="Matching buyers">
                                    {found.into_iter().map(|a| {
                                        let (id, email) = (a.id.clone(), a.email.clone());
                                        view! {
                                            <li>
                                                <button class="button button--ghost" type="button" on:click=move |_| choose(id.clone(), email.clone())>
                                                    {a.email.clone()}
                                                    <span class="muted">{format!(" ({})", a.display_name)}</span>
                                                </button>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </div>
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
                    "Buyer "
                    {match (order.buyer_email, order.account_id) {
                        (Some(email), _) => view! { <span>{email}</span> }.into_any(),
                        (None, Some(id)) => view! { <code>{id}</code> }.into_any(),
                        (None, None) => view! { "unknown" }.into_any(),
                    }}
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
    let mounted = Mounted::new();
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
                match mounted.data(order).await {
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
