//! The wallet: balance, top-up with the sandbox's test cards as hints, and the ledger.

use std::time::Duration;

use leptos::prelude::*;

use crate::api::queries::Domain;
use crate::api::queries::{
    TopUpStatus, TopUpWallet, WalletPage as WalletQuery, top_up_status, top_up_wallet, wallet_page,
};
use crate::api::{self, ApiError};
use crate::components::{Empty, Loading, Mounted, error_fallback, short_time};
use crate::state::idempotency_key;
use domain::billing::{EntryKind, TopUpStatus as Status};

/// The sandbox's test cards, shown as hints.
const TEST_CARDS: [(&str, &str); 3] = [
    ("4242424242424242", "approves"),
    ("4000000000000002", "is declined"),
    ("4000000000000119", "fails twice, then approves"),
];

#[component]
pub fn WalletPage() -> impl IntoView {
    let mounted = Mounted::new();
    let version = RwSignal::new(0_u32);
    let wallet = LocalResource::new(move || {
        version.track();
        async move {
            api::request::<WalletQuery>(wallet_page::Variables { first: 50 })
                .await
                .map(|data| data.wallet)
        }
    });
    // The wallet's currency (its region's): what a top-up is typed in.
    let currency = Signal::derive(move || {
        wallet
            .get()
            .and_then(Result::ok)
            .map_or_else(|| "EUR".to_owned(), |w| w.currency)
    });
    view! {
        <section class="page" aria-labelledby="wallet-title">
            <h1 id="wallet-title">"Wallet"</h1>
            <div class="wallet">
                <div class="wallet__main">
                <Transition fallback=|| view! { <Loading /> }>
                    <ErrorBoundary fallback=error_fallback>
                        {move || Suspend::new(async move {
                            mounted.data(wallet).await.map(|w| view! {
                                <div class="wallet__balance">
                                    <p class="muted">"Balance"</p>
                                    <p class="wallet__amount" aria-live="polite">{w.balance.formatted}</p>
                                </div>
                                <h2>"History"</h2>
                                {if w.entries.nodes.is_empty() {
                                    view! { <Empty title="No transactions yet"><p>"Top up to start shopping."</p></Empty> }.into_any()
                                } else {
                                    view! {
                                        <table class="table">
                                            <caption class="visually-hidden">"Ledger"</caption>
                                            <thead><tr>
                                                <th scope="col">"Date"</th><th scope="col">"Kind"</th>
                                                <th scope="col" class="num">"Amount"</th><th scope="col" class="num">"Balance"</th>
                                            </tr></thead>
                                            <tbody>
                                                {w.entries.nodes.into_iter().map(|e| view! {
                                                    <tr>
                                                        <td>{short_time(&e.created_at)}</td>
                                                        <td>{ledger_text(e.kind.domain(), &e.reference)}</td>
                                                        <td class="num">{e.amount.formatted}</td>
                                                        <td class="num">{e.balance_after.formatted}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                            })
                        })}
                    </ErrorBoundary>
                </Transition>
                </div>
                <div class="wallet__side">
                    <TopUpForm version currency />
                    // A new region may turn an empty wallet to another currency: the balance
                    // and the top-up's currency are asked again.
                    <crate::pages::cart::BillingCountry on_saved=Callback::new(move |()| {
                        version.try_update(|v| *v += 1);
                    }) />
                </div>
            </div>
        </section>
    }
}

#[component]
fn TopUpForm(version: RwSignal<u32>, currency: Signal<String>) -> impl IntoView {
    let amount = RwSignal::new(String::from("50"));
    let card = RwSignal::new(String::from(TEST_CARDS[0].0));
    let error = RwSignal::new(None::<String>);
    // One key per top-up the user means to make; a new one after each settled top-up.
    let key = StoredValue::new(idempotency_key());
    let top_up = Action::new_local(move |(minor, card): &(i64, String)| {
        let vars = top_up_wallet::Variables {
            amount: *minor,
            payment_method: card.clone(),
            idempotency_key: key.get_value(),
        };
        async move {
            let mut top_up = api::request::<TopUpWallet>(vars).await?.top_up_wallet;
            let (mut status, mut reason) = (top_up.status.domain(), top_up.reason.take());
            // Billing settles it moments later: ask a few times.
            for _ in 0..20 {
                if status != Some(Status::Pending) {
                    break;
                }
                crate::components::sleep(Duration::from_millis(700)).await;
                let now = api::request::<TopUpStatus>(top_up_status::Variables {
                    id: top_up.id.clone(),
                })
                .await?
                .top_up;
                (status, reason) = (now.status.domain(), now.reason);
            }
            key.set_value(idempotency_key());
            version.update(|v| *v += 1);
            Ok::<_, ApiError>((status, reason, top_up.amount.formatted))
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let code = domain::money::Currency::parse(&currency.get_untracked())
            .unwrap_or(domain::money::Currency::EUR);
        let minor = domain::money::parse_amount(&amount.get_untracked(), code);
        let card_number: String = card
            .get_untracked()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        match minor {
            None => error.set(Some(format!(
                "Enter an amount in {}{}.",
                code.as_str(),
                if code.exponent() == 0 {
                    ", without decimals"
                } else {
                    ""
                }
            ))),
            Some(_) if card_number.len() < 12 => error.set(Some("Enter a card number.".to_owned())),
            Some(minor) => {
                top_up.dispatch((minor, card_number));
            }
        }
    };
    view! {
        <form class="form wallet__topup" on:submit=on_submit novalidate=true aria-labelledby="topup-title">
            <h2 id="topup-title">"Top up"</h2>
            <div class="field">
                <label for="amount">{move || format!("Amount ({})", currency.get())}</label>
                <input id="amount" type="number" min="1" inputmode="decimal" required=true
                    step=move || if domain::money::Currency::parse(&currency.get()).is_ok_and(|c| c.exponent() == 0) { "1" } else { "0.01" }
                    prop:value=amount on:input=move |ev| amount.set(event_target_value(&ev)) />
            </div>
            <div class="field">
                <label for="card">"Card number"</label>
                <input id="card" type="text" inputmode="numeric" autocomplete="cc-number" required=true aria-describedby="card-hint"
                    prop:value=card on:input=move |ev| card.set(event_target_value(&ev)) />
                <div class="field__hint" id="card-hint">
                    <p>"Sandbox test cards:"</p>
                    <ul>
                        {TEST_CARDS.into_iter().map(|(number, what)| view! {
                            <li>
                                <button type="button" class="link" on:click=move |_| card.set(number.to_owned())>
                                    <code>{number}</code>
                                </button>
                                {format!(" {what}")}
                            </li>
                        }).collect_view()}
                    </ul>
                </div>
            </div>
            {move || error.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
            <button class="button button--primary" type="submit" disabled=move || top_up.pending().get()>
                {move || if top_up.pending().get() { "Processing…" } else { "Top up" }}
            </button>
            {move || top_up.value().get().map(|result| match result {
                Ok((Some(Status::Credited), _, amount)) => view! {
                    <p class="alert alert--ok" role="status">{format!("{amount} added to your wallet.")}</p>
                }.into_any(),
                Ok((Some(Status::Declined), reason, _)) => view! {
                    <p class="alert alert--error" role="alert">{format!("Declined: {}.", crate::words::decline_reason(reason.as_deref().unwrap_or_default()))}</p>
                }.into_any(),
                Ok((status, _, _)) => view! {
                    <p class="alert" role="status">{format!("Your top-up {}: check back in a moment.", crate::words::top_up_status(status))}</p>
                }.into_any(),
                Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
            })}
        </form>
    }
}

/// A ledger entry as the wallet's owner reads it: what it was and for which order, with a link.
fn ledger_text(kind: Option<EntryKind>, reference: &str) -> impl IntoView + use<> {
    let what = crate::words::ledger_kind(kind);
    match kind {
        Some(EntryKind::Debit | EntryKind::Refund) => {
            let of = if kind == Some(EntryKind::Debit) {
                " for order "
            } else {
                " of order "
            };
            let href = crate::page::Page::Order(reference.to_owned()).href();
            let number = crate::words::order_number(reference);
            view! {
                {what}
                {of}
                <leptos_router::components::A href=href>
                    {number}
                </leptos_router::components::A>
            }
            .into_any()
        }
        _ => view! { {what} }.into_any(),
    }
}
