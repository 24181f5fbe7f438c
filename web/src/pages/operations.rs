//! Admins: how the store runs (`operations`): each participant's consumers and how far they
//! lag, its outbox backlog and dead letters (replayed below), the orders waiting and since
//! when, and the last reconciliation with what it found.

use leptos::prelude::*;

use crate::api;
use crate::api::queries::operations::{DriftAction, OperationsOperations};
use crate::api::queries::{Domain, Operations as OperationsQuery, operations};
use crate::components::{Empty, Loading, Mounted, short_time};
use crate::pages::admin::DeadLetterList;
use crate::pages::notice::load_error;
use crate::words;

/// A participant's health in a word, for its badge.
fn participant_state(
    p: &operations::OperationsOperationsParticipants,
) -> (&'static str, &'static str) {
    let lag: i64 = p.consumers.iter().map(|c| c.pending + c.ack_pending).sum();
    if p.dead_letters_waiting > 0 {
        ("Dead letters waiting", "status status--bad")
    } else if lag > 1000 || p.outbox_backlog > 1000 {
        ("Behind", "status status--pending")
    } else {
        ("Keeping up", "status status--ok")
    }
}

fn participants_view(ops: &OperationsOperations) -> impl IntoView + use<> {
    let rows = ops.participants.clone();
    view! {
        <table class="table ops__participants" aria-label="Participants">
            <thead>
                <tr>
                    <th scope="col">"Participant"</th>
                    <th scope="col">"State"</th>
                    <th scope="col">"Waiting to be delivered"</th>
                    <th scope="col">"Delivered, not done"</th>
                    <th scope="col">"Redelivered"</th>
                    <th scope="col">"Events not published"</th>
                    <th scope="col">"Dead letters"</th>
                </tr>
            </thead>
            <tbody>
                {rows.into_iter().map(|p| {
                    let (state, class) = participant_state(&p);
                    let pending: i64 = p.consumers.iter().map(|c| c.pending).sum();
                    let ack_pending: i64 = p.consumers.iter().map(|c| c.ack_pending).sum();
                    let redelivered: i64 = p.consumers.iter().map(|c| c.redelivered).sum();
                    let backlog = match &p.oldest_unpublished_at {
                        Some(at) => format!("{} (oldest {})", p.outbox_backlog, short_time(at)),
                        None => p.outbox_backlog.to_string(),
                    };
                    let consumers = p.consumers.iter().map(|c| format!("{}: {} waiting", c.name, c.pending)).collect::<Vec<_>>().join("\n");
                    view! {
                        <tr data-participant=p.name.clone()>
                            <th scope="row" title=consumers>{p.name.clone()}</th>
                            <td><span class=class>{state}</span></td>
                            <td class="num">{pending}</td>
                            <td class="num">{ack_pending}</td>
                            <td class="num">{redelivered}</td>
                            <td class="num">{backlog}</td>
                            <td class="num">{p.dead_letters_waiting}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn orders_view(ops: &OperationsOperations) -> impl IntoView + use<> {
    let rows = ops.open_orders.clone();
    view! {
        <ul class="list ops__orders" aria-label="Orders waiting">
            {rows.into_iter().map(|o| {
                let state = words::order_status(o.status.domain());
                let since = o.oldest_at.as_deref().map(|at| format!(", the oldest since {}", short_time(at))).unwrap_or_default();
                view! {
                    <li class="list__item">
                        <span><strong>{o.count}</strong> " · " {state}</span>
                        <span class="muted">{since}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

fn reconciliation_view(ops: &OperationsOperations) -> impl IntoView + use<> {
    let Some(run) = ops.last_reconciliation.clone() else {
        return view! {
            <Empty title="No reconciliation yet"><p>"The first pass runs a few minutes after the saga starts."</p></Empty>
        }
        .into_any();
    };
    let when = match &run.finished_at {
        Some(at) => format!("Last pass {}", short_time(at)),
        None => format!(
            "A pass started {} and has not finished",
            short_time(&run.started_at)
        ),
    };
    let summary = format!(
        "{} wallets, {} orders and {} editions checked: {} repaired, {} for a person to look at.",
        run.wallets, run.orders, run.editions, run.repaired, run.reported
    );
    let findings = if run.findings.is_empty() {
        view! { <p class="ops__clean">"Everything adds up."</p> }.into_any()
    } else {
        view! {
            <ul class="list ops__findings" aria-label="Findings">
                {run.findings.into_iter().map(|f| {
                    let what = f.kind.domain().map_or("Something else", |k| k.words());
                    let (done, class) = match f.action {
                        DriftAction::REPAIRED => ("Repaired", "status status--ok"),
                        _ => ("Reported", "status status--bad"),
                    };
                    view! {
                        <li class="list__item">
                            <div>
                                <p><span class=class>{done}</span> " " {capitalised(what)}</p>
                                <p class="muted"><code>{f.subject}</code> " · " {f.detail}</p>
                            </div>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <p>{when} ". " {summary}</p>
        {findings}
    }
    .into_any()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[component]
pub fn Operations() -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    let ops = LocalResource::new(move || {
        reload.track();
        async move {
            api::request::<OperationsQuery>(operations::Variables {})
                .await
                .map(|data| data.operations)
        }
    });
    view! {
        <section class="page" aria-labelledby="ops-title">
            <h1 id="ops-title">"Operations"</h1>
            <p class="muted">"How the store runs right now."</p>
            <button class="button" type="button" on:click=move |_| reload.update(|n| *n += 1)>"Refresh"</button>
            <Transition fallback=|| view! { <Loading label="Loading the operations view…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(ops).await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(ops) => view! {
                            <section aria-labelledby="ops-participants">
                                <h2 id="ops-participants">"Participants"</h2>
                                {participants_view(&ops)}
                            </section>
                            <section aria-labelledby="ops-orders">
                                <h2 id="ops-orders">"Orders waiting"</h2>
                                {orders_view(&ops)}
                            </section>
                            <section aria-labelledby="ops-reconciliation">
                                <h2 id="ops-reconciliation">"Reconciliation"</h2>
                                {reconciliation_view(&ops)}
                            </section>
                        }.into_any(),
                    }
                })}
            </Transition>
            <DeadLetterList />
        </section>
    }
}
