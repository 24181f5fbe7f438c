//! Gift keys: publishers generate a batch for an edition of their product
//! (`generateGiftKeys`), watch it until its keys are ready and copy them; anyone redeems a key
//! on the library page (`redeemKey`).

use std::collections::HashMap;
use std::time::Duration;

use domain::ErrorCode;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::api::ApiError;
use crate::api::queries::{
    GenerateGiftKeys, GiftKeyBatches, GiftKeyEditions, RedeemKey, RedeemedProduct,
    generate_gift_keys, gift_key_batches, gift_key_editions, redeem_key, redeemed_product,
};
use crate::api::session::enum_name;
use crate::components::{
    Empty, Loading, Mounted, copy_to_clipboard, focus_first_invalid, short_time,
};
use crate::page::Page;
use crate::pages::notice::{error_alert, load_error, ok_status};

/// How often batches still being generated are asked for again.
const POLL: Duration = Duration::from_secs(1);
/// The largest batch the API makes.
const MAX_KEYS: i64 = 1000;

type Batch = gift_key_batches::GiftKeyBatchesGiftKeyBatches;

fn generate_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Forbidden => Some("Only the product's publisher makes its gift keys."),
        ErrorCode::NotFound => Some("This edition no longer exists."),
        _ => None,
    }
}

/// The publisher's gift keys: the form for a new batch and every batch with its keys.
#[component]
pub fn GiftKeys() -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    let polling = StoredValue::new(false);
    // Batches asked for but not listed yet: the library participant writes a batch's row a
    // moment after `generateGiftKeys` answers, so the list is asked for again until it shows
    // every one of them (an empty or fully ready list says nothing about a batch not yet written).
    let awaited = StoredValue::new(Vec::<String>::new());
    let editions = LocalResource::new(|| async {
        api::request::<GiftKeyEditions>(gift_key_editions::Variables { first: 100 })
            .await
            .map(|data| data.my_products.nodes)
    });
    let batches = LocalResource::new(move || {
        reload.track();
        async move {
            let result = api::request::<GiftKeyBatches>(gift_key_batches::Variables {})
                .await
                .map(|data| data.gift_key_batches);
            if let Ok(list) = &result {
                awaited.update_value(|ids| ids.retain(|id| list.iter().all(|b| &b.id != id)));
            }
            let generating = result
                .as_ref()
                .is_ok_and(|list| list.iter().any(|b| !b.ready))
                || awaited
                    .try_with_value(|ids| !ids.is_empty())
                    .unwrap_or(false);
            // One timer at a time, however many loads overlap; none once the page is gone (the
            // answer can come after it was left, its stored values disposed).
            if generating && polling.try_get_value() == Some(false) {
                polling.set_value(true);
                set_timeout(
                    move || {
                        polling.try_set_value(false);
                        reload.try_update(|v| *v += 1);
                    },
                    POLL,
                );
            }
            result
        }
    });
    // Edition id → "Product · Edition", for the batches' headings.
    let names = Signal::derive(move || {
        editions
            .get()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|p| {
                let title = p.title;
                p.editions
                    .into_iter()
                    .map(move |e| (e.id, format!("{title} · {}", e.name)))
            })
            .collect::<HashMap<_, _>>()
    });
    view! {
        <section class="gift-keys" aria-labelledby="gift-keys-title">
            <h2 id="gift-keys-title">"Gift keys"</h2>
            <Transition fallback=|| view! { <Loading label="Loading your editions…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(editions).await {
                        Err(error) => error_alert(&error, generate_known).into_any(),
                        Ok(products) if products.iter().all(|p| p.editions.is_empty()) => view! {
                            <p class="muted">"Add an edition to a product to make gift keys for it."</p>
                        }.into_any(),
                        Ok(products) => view! { <GenerateForm products reload awaited /> }.into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=|| view! { <Loading label="Loading your gift keys…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(batches).await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(list) if list.is_empty() && awaited.with_value(|ids| !ids.is_empty()) => view! {
                            <p class="batch__pending" role="status">
                                <span class="spinner" aria-hidden="true"></span>
                                "Generating the keys…"
                            </p>
                        }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <Empty title="No gift keys yet">
                                <p>"Generate a batch above to hand out copies (press, giveaways)."</p>
                            </Empty>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="list batches">
                                {list.into_iter().map(|batch| view! { <BatchItem batch names /> }).collect_view()}
                            </ul>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn GenerateForm(
    products: Vec<gift_key_editions::GiftKeyEditionsMyProductsNodes>,
    reload: RwSignal<u32>,
    awaited: StoredValue<Vec<String>>,
) -> impl IntoView {
    let first = products
        .iter()
        .flat_map(|p| p.editions.first())
        .next()
        .map(|e| e.id.clone())
        .unwrap_or_default();
    let edition = RwSignal::new(first);
    let quantity = RwSignal::new("10".to_owned());
    let label = RwSignal::new(String::new());
    let invalid = RwSignal::new(None::<String>);
    let generate = Action::new_local(move |vars: &generate_gift_keys::Variables| {
        let vars = vars.clone();
        let count = vars.quantity;
        async move {
            let result = api::request::<GenerateGiftKeys>(vars).await;
            if let Ok(data) = &result {
                awaited.update_value(|ids| ids.push(data.generate_gift_keys.id.clone()));
                label.set(String::new());
                reload.update(|v| *v += 1);
            }
            result.map(|_| count)
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match quantity.get_untracked().trim().parse::<i64>() {
            Ok(n) if (1..=MAX_KEYS).contains(&n) => {
                invalid.set(None);
                generate.dispatch(generate_gift_keys::Variables {
                    edition_id: edition.get_untracked(),
                    quantity: n,
                    label: label.get_untracked().trim().to_owned(),
                });
            }
            _ => {
                invalid.set(Some(format!(
                    "Enter a number of keys from 1 to {MAX_KEYS}."
                )));
                focus_first_invalid();
            }
        }
    };
    let quantity_error = move || {
        invalid.get().or_else(|| {
            generate
                .value()
                .get()
                .and_then(Result::err)
                .filter(|e| e.field.as_deref() == Some("quantity"))
                .map(|e| e.message)
        })
    };
    view! {
        <form class="form form--card" novalidate=true aria-labelledby="gift-form-title" on:submit=on_submit>
            <h3 id="gift-form-title">"New batch"</h3>
            <div class="field">
                <label for="gift-edition">"Edition"</label>
                <select id="gift-edition" on:change=move |ev| edition.set(event_target_value(&ev))>
                    {products.into_iter().filter(|p| !p.editions.is_empty()).map(|p| view! {
                        <optgroup label=p.title>
                            {p.editions.into_iter().map(|e| {
                                let kind = enum_name(&e.kind).to_lowercase();
                                view! { <option value=e.id>{format!("{} ({kind})", e.name)}</option> }
                            }).collect_view()}
                        </optgroup>
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="gift-quantity">"Number of keys"</label>
                <input
                    id="gift-quantity"
                    class="qty"
                    type="number"
                    min="1"
                    max=MAX_KEYS.to_string()
                    required=true
                    aria-invalid=move || quantity_error().is_some().to_string()
                    aria-describedby="gift-quantity-error"
                    prop:value=quantity
                    on:input=move |ev| quantity.set(event_target_value(&ev))
                />
                <p class="field__error" id="gift-quantity-error">{quantity_error}</p>
            </div>
            <div class="field">
                <label for="gift-label">"Label (optional)"</label>
                <input
                    id="gift-label"
                    type="text"
                    maxlength="200"
                    autocomplete="off"
                    placeholder="Press, giveaway…"
                    prop:value=label
                    on:input=move |ev| label.set(event_target_value(&ev))
                />
            </div>
            <div aria-live="polite">
                {move || generate.value().get().map(|result| match result {
                    Ok(n) => ok_status(format!("Generating {n} keys: they appear below in a moment.")).into_any(),
                    Err(error) => error_alert(&error, generate_known).into_any(),
                })}
            </div>
            <button class="button button--primary" type="submit" disabled=move || generate.pending().get()>
                "Generate keys"
            </button>
        </form>
    }
}

#[component]
fn BatchItem(batch: Batch, names: Signal<HashMap<String, String>>) -> impl IntoView {
    let edition_id = batch.edition_id.clone();
    let title = move || {
        names
            .with(|n| n.get(&edition_id).cloned())
            .unwrap_or_else(|| {
                batch
                    .product
                    .as_ref()
                    .map(|p| p.title.clone())
                    .unwrap_or_else(|| "Gift keys".to_owned())
            })
    };
    let label = if batch.label.is_empty() {
        "No label".to_owned()
    } else {
        batch.label.clone()
    };
    let redeemed = batch.keys.iter().filter(|k| k.redeemed).count();
    let all = batch
        .keys
        .iter()
        .map(|k| k.key.clone())
        .collect::<Vec<_>>()
        .join("\n");
    let copied = RwSignal::new(None::<bool>);
    let copy = Action::new_local(move |text: &String| {
        let text = text.clone();
        async move { copied.set(Some(copy_to_clipboard(text).await)) }
    });
    let count = batch.keys.len();
    let heading_id = format!("batch-{}", batch.id);
    view! {
        <li class="list__item batch" aria-labelledby=heading_id.clone()>
            <div class="batch__head">
                <h3 class="batch__title" id=heading_id.clone()>{title}</h3>
                <p class="muted">
                    {format!("{label} · {} keys", batch.quantity)}
                    {batch.ready.then(|| format!(" · {redeemed} redeemed"))}
                    {batch.created_at.as_deref().map(|at| format!(" · {}", short_time(at)))}
                </p>
            </div>
            {if batch.ready {
                view! {
                    <div class="batch__actions">
                        <button class="button" type="button" on:click=move |_| { copy.dispatch(all.clone()); }>
                            "Copy all"
                            <span class="visually-hidden">{format!(" {count} keys ({label})")}</span>
                        </button>
                        <span role="status" class="muted">
                            {move || match copied.get() {
                                Some(true) => format!("Copied {count} keys"),
                                Some(false) => "Copy failed: select the keys below".to_owned(),
                                None => String::new(),
                            }}
                        </span>
                    </div>
                    <details class="batch__keys">
                        <summary>{format!("Show the {count} keys")}</summary>
                        <ul class="keys">
                            {batch.keys.into_iter().map(|k| view! {
                                <li class="keys__item">
                                    <code class="license__key">{k.key}</code>
                                    {if k.redeemed {
                                        view! {
                                            <span class="status status--ok">"Redeemed"</span>
                                            <span class="muted">{k.redeemed_at.as_deref().map(short_time).unwrap_or_default()}</span>
                                        }.into_any()
                                    } else {
                                        view! { <span class="muted">"Unused"</span> }.into_any()
                                    }}
                                </li>
                            }).collect_view()}
                        </ul>
                    </details>
                }.into_any()
            } else {
                view! {
                    <p class="batch__pending" role="status">
                        <span class="spinner" aria-hidden="true"></span>
                        "Generating the keys…"
                    </p>
                }.into_any()
            }}
        </li>
    }
}

/// What a redeemed key added.
#[derive(Debug, Clone, PartialEq)]
enum Redeemed {
    Product {
        title: String,
        slug: String,
    },
    /// Redeemed, but the product's name could not be read.
    Unnamed,
    /// Still being handled: a notification follows.
    Pending,
}

fn redeem_known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Conflict => {
            Some("This key was used already, or you already own its product. The key was not used.")
        }
        ErrorCode::NotFound => Some("No gift key matches this. Check it and try again."),
        ErrorCode::BadUserInput => Some(
            "This is not a gift key: a key has 20 letters and digits, like ACDEF-GHJKM-NPQRT-UVWXY.",
        ),
        _ => None,
    }
}

/// The "Redeem a key" form of the library; bumps `redeemed` when a product was added.
#[component]
pub fn RedeemKeyForm(redeemed: RwSignal<u32>) -> impl IntoView {
    let key = RwSignal::new(String::new());
    let empty = RwSignal::new(false);
    let redeem = Action::new_local(move |key: &String| {
        let key = key.clone();
        async move {
            let answer = api::request::<RedeemKey>(redeem_key::Variables { key })
                .await?
                .redeem_key;
            if answer.status != "REDEEMED" {
                return Ok::<_, ApiError>(Redeemed::Pending);
            }
            redeemed.update(|v| *v += 1);
            let Some(id) = answer.product_id else {
                return Ok(Redeemed::Unnamed);
            };
            Ok(
                match api::request::<RedeemedProduct>(redeemed_product::Variables { id }).await {
                    Ok(data) => Redeemed::Product {
                        title: data.product.title,
                        slug: data.product.slug,
                    },
                    Err(_) => Redeemed::Unnamed,
                },
            )
        }
    });
    Effect::new(move |_| match redeem.value().get() {
        Some(Ok(_)) => key.set(String::new()),
        Some(Err(_)) => focus_first_invalid(),
        None => {}
    });
    let refused = move || {
        empty.get()
            || redeem
                .value()
                .get()
                .is_some_and(|r| r.as_ref().is_err_and(|e| e.code.is_some()))
    };
    view! {
        <form
            class="form form--card redeem"
            novalidate=true
            aria-labelledby="redeem-title"
            on:submit=move |ev| {
                ev.prevent_default();
                let value = key.get_untracked().trim().to_owned();
                empty.set(value.is_empty());
                if value.is_empty() {
                    focus_first_invalid();
                } else {
                    redeem.dispatch(value);
                }
            }
        >
            <h2 id="redeem-title">"Redeem a key"</h2>
            <div class="field">
                <label for="redeem-key">"Gift key"</label>
                <input
                    id="redeem-key"
                    type="text"
                    autocomplete="off"
                    autocapitalize="characters"
                    spellcheck="false"
                    placeholder="XXXXX-XXXXX-XXXXX-XXXXX"
                    aria-invalid=move || refused().to_string()
                    aria-describedby="redeem-hint redeem-outcome"
                    prop:value=key
                    on:input=move |ev| key.set(event_target_value(&ev))
                />
                <p class="field__hint" id="redeem-hint">"Letters and digits; dashes and case do not matter."</p>
            </div>
            <div id="redeem-outcome" aria-live="polite">
                {move || empty.get().then(|| view! { <p class="field__error">"Enter the key first."</p> })}
                {move || redeem.value().get().map(|result| match result {
                    Ok(Redeemed::Product { title, slug }) => view! {
                        <p class="alert alert--ok" role="status">
                            <A href=Page::Product(slug).href()>{title.clone()}</A>
                            " is now in your library."
                        </p>
                    }.into_any(),
                    Ok(Redeemed::Unnamed) => ok_status("Redeemed: the product is now in your library.".to_owned()).into_any(),
                    Ok(Redeemed::Pending) => ok_status(
                        "The key is accepted and still being handled: a notification tells you when the product is in your library.".to_owned(),
                    ).into_any(),
                    Err(error) => error_alert(&error, redeem_known).into_any(),
                })}
            </div>
            <button class="button button--primary" type="submit" disabled=move || redeem.pending().get()>
                "Redeem"
            </button>
        </form>
    }
}
