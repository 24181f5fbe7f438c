//! Refunds: on the order page, the buyer's "Request a refund" form for a completed digital order
//! and the request's state (`requestRefund`, `Order.refundRequest`); for admins, the review
//! queue with Approve / Deny and a note (`refundRequests`, `decideRefund`).

use domain::ErrorCode;
use domain::catalog::EditionKind;
use domain::ordering::OrderStatus;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::api::ApiError;
use crate::api::queries::Domain;
use crate::api::queries::{
    DecideRefund, OrderRefund, RefundOrderSummary, RefundRequests, RequestRefund, decide_refund,
    order_refund, refund_order_summary, refund_requests, request_refund,
};
use crate::api::session::enum_name;
use crate::components::{Empty, Loading, Mounted, focus_first_invalid, short_time};
use crate::page::Page;
use crate::pages::notice::{error_alert, load_error};
use crate::state::use_auth;

/// Admins' page size.
const PAGE: i64 = 20;
/// How often an approved refund is looked at until the order is refunded.
const REFUNDING_POLL: std::time::Duration = std::time::Duration::from_secs(3);
/// How often a request waiting for an admin is looked at.
const REVIEW_POLL: std::time::Duration = std::time::Duration::from_secs(20);

/// What a refund request's status means to people.
pub(crate) fn status_text(status: &str) -> (&'static str, &'static str) {
    match status {
        "PENDING_REVIEW" => ("Waiting for review", "status status--pending"),
        "APPROVED" => ("Approved", "status status--ok"),
        "DENIED" => ("Denied", "status status--bad"),
        _ => ("Unknown", "status"),
    }
}

fn request_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Conflict => Some(
            "This order cannot be refunded here: only completed orders without boxed copies can.",
        ),
        ErrorCode::Forbidden | ErrorCode::NotFound => {
            Some("Only the buyer of this order can ask for its refund.")
        }
        _ => None,
    }
}

/// The refund part of an order page: the request's state, or the form to make one. It loads
/// the order's refund fields itself (the order page renders it anew on every update).
#[component]
pub fn RefundPanel(order_id: String) -> impl IntoView {
    let reload = RwSignal::new(0_u32);
    // Set when `requestRefund` answered: the refund participant writes the request's row a
    // moment later, so the order is asked for again until it shows one (or is refunded).
    let awaited = StoredValue::new(false);
    let id = order_id.clone();
    let order = LocalResource::new(move || {
        reload.track();
        let id = id.clone();
        async move {
            let order = api::request::<OrderRefund>(order_refund::Variables { id })
                .await
                .map(|data| data.order);
            // Approved but not refunded yet (the saga finishes in moments), or waiting for an
            // admin (a denial changes nothing else on the page): look again.
            let request = order
                .as_ref()
                .ok()
                .filter(|o| o.status.domain() != Some(OrderStatus::Refunded))
                .and_then(|o| o.refund_request.as_ref())
                .map(|r| enum_name(&r.status));
            if order.as_ref().is_ok_and(|o| {
                o.status.domain() == Some(OrderStatus::Refunded) || o.refund_request.is_some()
            }) {
                awaited.set_value(false);
            }
            // The answer may come after the order page was left (the panel, and `awaited` with
            // it, disposed): then there is nothing to look at again.
            let wait = match request.as_deref() {
                _ if awaited.is_disposed() => None,
                Some("APPROVED") => Some(REFUNDING_POLL),
                Some("PENDING_REVIEW") => Some(REVIEW_POLL),
                _ if awaited.try_get_value().unwrap_or(false) => Some(REFUNDING_POLL),
                _ => None,
            };
            if let Some(wait) = wait {
                set_timeout(
                    move || {
                        reload.try_update(|v| *v += 1);
                    },
                    wait,
                );
            }
            order
        }
    });
    let auth = use_auth();
    view! {
        // No `Transition` here: a suspense nested in the order page's own one is mounted after
        // the page's other sections once it resolves. The resource's latest value instead.
        <div class="refund-panel">
            {move || {
                order.get().map(|result| {
                    match result {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(order) => {
                            let mine = auth.account.with_untracked(|a| {
                                a.as_ref().map(|a| a.id.clone()) == order.account_id
                            });
                            let physical = order
                                .lines
                                .iter()
                                .any(|l| l.kind.domain() == Some(EditionKind::Physical));
                            match (order.refund_request, order.status.domain()) {
                                (Some(request), status) => view! {
                                    <RequestState request refunded=status == Some(OrderStatus::Refunded) />
                                }.into_any(),
                                (None, Some(OrderStatus::Refunded)) => view! {
                                    <section class="refund" aria-labelledby="refund-title">
                                        <h2 id="refund-title">"Refund"</h2>
                                        <p class="alert alert--ok">"This order was refunded: the payment is back in the wallet."</p>
                                    </section>
                                }.into_any(),
                                (None, Some(OrderStatus::Completed)) if mine && awaited.get_value() => view! {
                                    <section class="refund" aria-labelledby="refund-title">
                                        <h2 id="refund-title">"Refund request"</h2>
                                        <p class="batch__pending" role="status">
                                            <span class="spinner" aria-hidden="true"></span>
                                            "Sending your request…"
                                        </p>
                                    </section>
                                }.into_any(),
                                (None, Some(OrderStatus::Completed)) if mine && !physical => view! {
                                    <RequestForm order_id=order.id reload awaited />
                                }.into_any(),
                                (None, Some(OrderStatus::Completed)) if mine => view! {
                                    <p class="muted refund__note">"Orders with boxed copies are not refunded online: contact the store."</p>
                                }.into_any(),
                                _ => ().into_any(),
                            }
                        }
                    }
                })
            }}
        </div>
    }
}

#[component]
fn RequestState(
    request: order_refund::OrderRefundOrderRefundRequest,
    refunded: bool,
) -> impl IntoView {
    let status = enum_name(&request.status);
    let (text, class) = status_text(&status);
    let outcome = match (status.as_str(), refunded) {
        (_, true) => {
            "Refunded: the payment is back in your wallet and the items left your library."
        }
        ("APPROVED", false) => "Approved: the refund is on its way (moments).",
        ("PENDING_REVIEW", _) => {
            "An admin looks at it soon; you get a notification with the decision."
        }
        ("DENIED", _) => "The refund was denied.",
        _ => "",
    };
    view! {
        <section class="refund" aria-labelledby="refund-title">
            <h2 id="refund-title">"Refund request"</h2>
            <p role="status">
                <span class=class>{text}</span>
                " "
                {outcome}
            </p>
            <dl class="facts refund__facts">
                <dt>"Asked"</dt>
                <dd><time datetime=request.created_at.clone()>{short_time(&request.created_at)}</time></dd>
                <dt>"Reason"</dt>
                <dd>{request.reason}</dd>
                <dt>"Policy"</dt>
                <dd>
                    {request.policy_note}
                    {if request.within_policy { " (within the refund policy)" } else { " (outside the refund policy)" }}
                </dd>
                {request.decision_note.filter(|n| !n.trim().is_empty()).map(|note| view! {
                    <dt>"Decision"</dt>
                    <dd>{note}</dd>
                })}
                {request.decided_at.map(|at| view! {
                    <dt>"Decided"</dt>
                    <dd><time datetime=at.clone()>{short_time(&at)}</time></dd>
                })}
            </dl>
        </section>
    }
}

#[component]
fn RequestForm(
    order_id: String,
    reload: RwSignal<u32>,
    awaited: StoredValue<bool>,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let empty = RwSignal::new(false);
    let request = Action::new_local(move |(order_id, reason): &(String, String)| {
        let variables = request_refund::Variables {
            order_id: order_id.clone(),
            reason: reason.clone(),
        };
        async move {
            let result = api::request::<RequestRefund>(variables).await.map(|_| ());
            if result.is_ok() {
                awaited.set_value(true);
                reload.update(|v| *v += 1);
            }
            result
        }
    });
    Effect::new(move |_| {
        if request.value().get().is_some_and(|r| r.is_err()) {
            focus_first_invalid();
        }
    });
    let refused = move || {
        empty.get()
            || request.value().get().is_some_and(|r| {
                r.is_err_and(|e: ApiError| e.code == Some(ErrorCode::BadUserInput))
            })
    };
    view! {
        <form
            class="form form--card refund"
            novalidate=true
            aria-labelledby="refund-title"
            on:submit=move |ev| {
                ev.prevent_default();
                let text = reason.get_untracked().trim().to_owned();
                empty.set(text.is_empty());
                if text.is_empty() {
                    focus_first_invalid();
                } else {
                    request.dispatch((order_id.clone(), text));
                }
            }
        >
            <h2 id="refund-title">"Request a refund"</h2>
            <p class="field__hint">
                "Within 14 days of the purchase and before the first download, a refund is approved at once; otherwise an admin decides."
            </p>
            <div class="field">
                <label for="refund-reason">"Reason"</label>
                <textarea
                    id="refund-reason"
                    rows="3"
                    maxlength="1000"
                    required=true
                    aria-invalid=move || refused().to_string()
                    aria-describedby="refund-outcome"
                    prop:value=reason
                    on:input=move |ev| reason.set(event_target_value(&ev))
                ></textarea>
            </div>
            <div id="refund-outcome" aria-live="polite">
                {move || empty.get().then(|| view! { <p class="field__error">"Tell us why, in a few words."</p> })}
                {move || request.value().get().and_then(Result::err).map(|error| error_alert(&error, request_known))}
            </div>
            <button class="button button--primary" type="submit" disabled=move || request.pending().get()>
                "Request a refund"
            </button>
        </form>
    }
}

fn decide_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Conflict => Some("This request was decided already."),
        ErrorCode::NotFound => Some("This refund request no longer exists."),
        ErrorCode::Forbidden => Some("Only admins decide refunds."),
        _ => None,
    }
}

/// Admins: refund requests, the ones waiting for review first.
#[component]
pub fn AdminRefunds() -> impl IntoView {
    let status = RwSignal::new("PENDING_REVIEW".to_owned());
    // The cursors of the pages before the current one (paging forward pushes).
    let cursors = RwSignal::new(Vec::<Option<String>>::new());
    let after = RwSignal::new(None::<String>);
    let reload = RwSignal::new(0_u32);
    let notice = RwSignal::new(None::<String>);
    // Orders decided on this page whose request the refund participant has not updated yet:
    // they show no buttons, and the list is asked for again until none is left.
    let decided = StoredValue::new(std::collections::HashSet::<String>::new());
    let mounted = Mounted::new();
    let requests = LocalResource::new(move || {
        reload.track();
        let status = match status.get().as_str() {
            "PENDING_REVIEW" => Some(refund_requests::RefundStatus::PENDING_REVIEW),
            "APPROVED" => Some(refund_requests::RefundStatus::APPROVED),
            "DENIED" => Some(refund_requests::RefundStatus::DENIED),
            _ => None,
        };
        let after = after.get();
        async move {
            api::request::<RefundRequests>(refund_requests::Variables {
                status,
                first: PAGE,
                after,
            })
            .await
            .map(|data| {
                let page = data.refund_requests;
                decided.update_value(|ids| {
                    ids.retain(|id| {
                        page.nodes
                            .iter()
                            .any(|r| &r.order_id == id && enum_name(&r.status) == "PENDING_REVIEW")
                    });
                });
                // Not once the page is gone (its stored values with it).
                if decided
                    .try_with_value(|ids| !ids.is_empty())
                    .unwrap_or(false)
                {
                    set_timeout(
                        move || {
                            reload.try_update(|v| *v += 1);
                        },
                        REFUNDING_POLL,
                    );
                }
                page
            })
        }
    });
    view! {
        <section class="page" aria-labelledby="refunds-title">
            <h1 id="refunds-title">"Refund requests"</h1>
            <div class="filters filters--inline">
                <div class="field">
                    <label for="refund-status">"Status"</label>
                    <select
                        id="refund-status"
                        prop:value=move || status.get()
                        on:change=move |ev| {
                            cursors.set(Vec::new());
                            after.set(None);
                            status.set(event_target_value(&ev));
                        }
                    >
                        <option value="PENDING_REVIEW">"Waiting for review"</option>
                        <option value="APPROVED">"Approved"</option>
                        <option value="DENIED">"Denied"</option>
                        <option value="">"All"</option>
                    </select>
                </div>
            </div>
            <div aria-live="polite">
                {move || notice.get().map(|text| view! { <p class="alert alert--ok" role="status">{text}</p> })}
            </div>
            <Transition fallback=|| view! { <Loading label="Loading the refund requests…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(requests).await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(page) => {
                            let next = page.page_info.has_next_page.then_some(page.page_info.end_cursor).flatten();
                            let list = if page.nodes.is_empty() {
                                view! {
                                    <Empty title="No refund requests here">
                                        <p>"Requests outside the refund policy wait here for a decision."</p>
                                    </Empty>
                                }.into_any()
                            } else {
                                view! {
                                    <ul class="list refund-requests">
                                        {page.nodes.into_iter().map(|request| view! { <RequestCard request reload notice decided /> }).collect_view()}
                                    </ul>
                                }.into_any()
                            };
                            view! {
                                {list}
                                <Pager cursors after next />
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

/// "Previous" / "Next" over cursor pages.
#[component]
pub fn Pager(
    cursors: RwSignal<Vec<Option<String>>>,
    after: RwSignal<Option<String>>,
    next: Option<String>,
) -> impl IntoView {
    let has_previous = move || cursors.with(|c| !c.is_empty());
    let has_next = next.is_some();
    view! {
        <nav class="pager" aria-label="Pages">
            <button
                class="button"
                type="button"
                disabled=move || !has_previous()
                on:click=move |_| {
                    let previous = cursors.try_update(|c| c.pop()).flatten().flatten();
                    after.set(previous);
                }
            >
                "Previous"
            </button>
            <button
                class="button"
                type="button"
                disabled=!has_next
                on:click=move |_| {
                    if let Some(cursor) = next.clone() {
                        let current = after.get_untracked();
                        cursors.update(|c| c.push(current));
                        after.set(Some(cursor));
                    }
                }
            >
                "Next"
            </button>
        </nav>
    }
}

#[component]
fn RequestCard(
    request: refund_requests::RefundRequestsRefundRequestsNodes,
    reload: RwSignal<u32>,
    notice: RwSignal<Option<String>>,
    decided: StoredValue<std::collections::HashSet<String>>,
) -> impl IntoView {
    let status = enum_name(&request.status);
    let (text, class) = status_text(&status);
    let sent = decided.with_value(|ids| ids.contains(&request.order_id));
    let pending = status == "PENDING_REVIEW" && !sent;
    let order_id = request.order_id.clone();
    let summary_id = order_id.clone();
    let summary = LocalResource::new(move || {
        let id = summary_id.clone();
        async move {
            api::request::<RefundOrderSummary>(refund_order_summary::Variables { id })
                .await
                .map(|data| data.order)
        }
    });
    let heading_id = format!("refund-{}", request.id);
    view! {
        <li class="list__item refund-request" aria-labelledby=heading_id.clone()>
            <div class="refund-request__body">
                <h2 class="refund-request__title" id=heading_id.clone()>
                    <A href=Page::Order(order_id.clone()).href()>{format!("Order {}", &order_id[..8.min(order_id.len())])}</A>
                    " "
                    <span class=class>{text}</span>
                </h2>
                <p class="muted">
                    {format!("Asked {}", short_time(&request.created_at))}
                    {if request.within_policy { " · within the policy" } else { " · outside the policy" }}
                </p>
                <p class="refund-request__order">
                    {move || match summary.get() {
                        None => "…".to_owned(),
                        Some(Err(_)) => "The order could not be loaded.".to_owned(),
                        Some(Ok(order)) => {
                            let items = order
                                .lines
                                .iter()
                                .map(|l| format!("{} ({})", l.product_title, l.edition_name))
                                .collect::<Vec<_>>()
                                .join(", ");
                            let total = order.total.map(|t| t.formatted).unwrap_or_default();
                            let bought = order
                                .created_at
                                .as_deref()
                                .map(|at| format!(" · bought {}", short_time(at)))
                                .unwrap_or_default();
                            format!("{items} · {total}{bought}")
                        }
                    }}
                </p>
                <dl class="facts">
                    <dt>"Reason"</dt>
                    <dd>{request.reason}</dd>
                    <dt>"Policy"</dt>
                    <dd>{request.policy_note}</dd>
                    {request.decision_note.filter(|n| !n.trim().is_empty()).map(|note| view! {
                        <dt>"Decision"</dt>
                        <dd>{note}</dd>
                    })}
                </dl>
            </div>
            {pending.then(|| view! { <Decide order_id=request.order_id.clone() reload notice decided /> })}
            {(sent && status == "PENDING_REVIEW").then(|| view! {
                <p class="batch__pending" role="status">
                    <span class="spinner" aria-hidden="true"></span>
                    "Decision sent: recording it…"
                </p>
            })}
        </li>
    }
}

#[component]
fn Decide(
    order_id: String,
    reload: RwSignal<u32>,
    notice: RwSignal<Option<String>>,
    decided: StoredValue<std::collections::HashSet<String>>,
) -> impl IntoView {
    let note = RwSignal::new(String::new());
    let note_id = format!("note-{order_id}");
    let decide = Action::new_local(move |(order_id, approve): &(String, bool)| {
        let variables = decide_refund::Variables {
            order_id: order_id.clone(),
            approve: *approve,
            note: note.get_untracked().trim().to_owned(),
        };
        let short = variables.order_id.chars().take(8).collect::<String>();
        let approve = variables.approve;
        async move {
            let order_id = variables.order_id.clone();
            let result = api::request::<DecideRefund>(variables).await.map(|_| ());
            if result.is_ok() {
                decided.update_value(|ids| {
                    ids.insert(order_id);
                });
                notice.set(Some(if approve {
                    format!("Approved the refund of order {short}: it is being refunded.")
                } else {
                    format!("Denied the refund of order {short}.")
                }));
            }
            reload.update(|v| *v += 1);
            result
        }
    });
    let approve_id = order_id.clone();
    view! {
        <div class="decide">
            <div class="field">
                <label for=note_id.clone()>"Note for the buyer (optional)"</label>
                <textarea
                    id=note_id
                    rows="2"
                    maxlength="1000"
                    prop:value=note
                    on:input=move |ev| note.set(event_target_value(&ev))
                ></textarea>
            </div>
            <div class="decide__buttons">
                <button
                    class="button button--primary"
                    type="button"
                    disabled=move || decide.pending().get()
                    on:click=move |_| { decide.dispatch((approve_id.clone(), true)); }
                >
                    "Approve"
                </button>
                <button
                    class="button"
                    type="button"
                    disabled=move || decide.pending().get()
                    on:click=move |_| { decide.dispatch((order_id.clone(), false)); }
                >
                    "Deny"
                </button>
            </div>
            <div aria-live="polite">
                {move || decide.value().get().and_then(Result::err).map(|error| error_alert(&error, decide_known))}
            </div>
        </div>
    }
}
