//! Webhooks on the publisher dashboard: register an endpoint (its secret shown once), rotate its
//! secret, enable or disable it, read its delivery log and send a delivery again.

use domain::ErrorCode;
use leptos::prelude::*;

use crate::api;
use crate::api::queries::{
    CreateWebhookEndpoint, DeleteWebhookEndpoint, RedeliverWebhook, RotateWebhookSecret,
    UpdateWebhookEndpoint, WebhookDeliveries, WebhookEndpoints, create_webhook_endpoint,
    delete_webhook_endpoint, redeliver_webhook, rotate_webhook_secret, update_webhook_endpoint,
    webhook_deliveries, webhook_endpoints,
};
use crate::api::session::enum_name;
use crate::components::{
    Empty, Loading, Mounted, copy_to_clipboard, focus_first_invalid, short_time,
};
use crate::pages::notice::{error_alert, load_error, ok_status};

type Endpoint = webhook_endpoints::WebhookEndpointsWebhookEndpoints;
type EventType = create_webhook_endpoint::WebhookEventType;

/// The event types, as the form offers them: (value, label).
fn event_types() -> [(EventType, &'static str); 6] {
    [
        (EventType::ORDER_PAID, "Order paid"),
        (EventType::ORDER_SHIPPED, "Order shipped"),
        (EventType::ORDER_REFUNDED, "Order refunded"),
        (EventType::ENTITLEMENT_GRANTED, "Entitlement granted"),
        (EventType::ENTITLEMENT_REVOKED, "Entitlement revoked"),
        (EventType::BUILD_MADE_CURRENT, "Build made current"),
    ]
}

fn known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::NotFound => Some("This endpoint no longer exists."),
        ErrorCode::Conflict => Some("You have as many endpoints as allowed; delete one first."),
        ErrorCode::Timeout => {
            Some("The change is taking longer than usual; reload in a moment to see it.")
        }
        _ => None,
    }
}

/// The publisher's webhook endpoints and the form for a new one.
#[component]
pub fn Webhooks() -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    let endpoints = LocalResource::new(move || {
        reload.track();
        async move {
            api::request::<WebhookEndpoints>(webhook_endpoints::Variables {})
                .await
                .map(|data| data.webhook_endpoints)
        }
    });
    // The secret of the endpoint just created or rotated: shown once, until dismissed.
    let secret = RwSignal::new(None::<String>);
    view! {
        <section class="webhooks" aria-labelledby="webhooks-title">
            <h2 id="webhooks-title">"Webhooks"</h2>
            <p class="muted">
                "Your server hears of your sales as they happen: each event is POSTed as JSON and \
                 signed (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature)."
            </p>
            {move || secret.get().map(|s| view! { <SecretShown secret=s dismiss=secret /> })}
            <NewEndpoint reload secret />
            <Transition fallback=|| view! { <Loading label="Loading your webhook endpoints…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(endpoints).await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <Empty title="No webhook endpoints yet">
                                <p>"Add one above to receive your sales as they happen."</p>
                            </Empty>
                        }.into_any(),
                        Ok(list) => view! {
                            <ul class="list webhooks__list">
                                {list.into_iter().map(|endpoint| view! { <EndpointItem endpoint reload secret /> }).collect_view()}
                            </ul>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// A signing secret, shown once with a copy button.
#[component]
fn SecretShown(secret: String, dismiss: RwSignal<Option<String>>) -> impl IntoView {
    let copied = RwSignal::new(None::<bool>);
    let text = secret.clone();
    let copy = Action::new_local(move |text: &String| {
        let text = text.clone();
        async move { copied.set(Some(copy_to_clipboard(text).await)) }
    });
    view! {
        <div class="alert alert--ok webhooks__secret" role="status">
            <p>"The signing secret, shown only now: keep it where your server reads it."</p>
            <code class="license__key">{secret}</code>
            <button class="button" type="button" on:click=move |_| { copy.dispatch(text.clone()); }>"Copy"</button>
            <span class="muted">{move || match copied.get() {
                Some(true) => "Copied",
                Some(false) => "Copy failed: select the secret",
                None => "",
            }}</span>
            <button class="button" type="button" on:click=move |_| dismiss.set(None)>"Done"</button>
        </div>
    }
}

#[component]
fn NewEndpoint(reload: RwSignal<u32>, secret: RwSignal<Option<String>>) -> impl IntoView {
    let url = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let chosen = RwSignal::new(vec![EventType::ORDER_PAID]);
    let invalid = RwSignal::new(None::<String>);
    let create = Action::new_local(move |vars: &create_webhook_endpoint::Variables| {
        let vars = vars.clone();
        async move {
            let data = api::request::<CreateWebhookEndpoint>(vars).await?;
            secret.set(Some(data.create_webhook_endpoint.secret));
            url.set(String::new());
            description.set(String::new());
            reload.update(|v| *v += 1);
            Ok::<_, api::ApiError>(())
        }
    });
    let url_error = move || {
        invalid.get().or_else(|| {
            create
                .value()
                .get()
                .and_then(Result::err)
                .filter(|e| e.field.as_deref() == Some("url"))
                .map(|e| e.message)
        })
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let target = url.get_untracked().trim().to_owned();
        if target.is_empty() {
            invalid.set(Some(
                "Enter the URL your server receives webhooks at.".into(),
            ));
            focus_first_invalid();
            return;
        }
        invalid.set(None);
        create.dispatch(create_webhook_endpoint::Variables {
            input: create_webhook_endpoint::CreateWebhookEndpointInput {
                url: target,
                description: description.get_untracked().trim().to_owned(),
                event_types: chosen.get_untracked(),
            },
        });
    };
    view! {
        <form class="form form--card" novalidate=true aria-labelledby="webhook-form-title" on:submit=on_submit>
            <h3 id="webhook-form-title">"New endpoint"</h3>
            <div class="field">
                <label for="webhook-url">"URL (https)"</label>
                <input
                    id="webhook-url"
                    type="url"
                    autocomplete="off"
                    placeholder="https://example.com/store-webhooks"
                    aria-invalid=move || url_error().is_some().to_string()
                    aria-describedby="webhook-url-error"
                    prop:value=url
                    on:input=move |ev| url.set(event_target_value(&ev))
                />
                <p class="field__error" id="webhook-url-error">{url_error}</p>
            </div>
            <div class="field">
                <label for="webhook-description">"Description (optional)"</label>
                <input
                    id="webhook-description"
                    type="text"
                    maxlength="200"
                    autocomplete="off"
                    prop:value=description
                    on:input=move |ev| description.set(event_target_value(&ev))
                />
            </div>
            <fieldset class="field">
                <legend>"Events"</legend>
                {event_types().into_iter().map(|(kind, label)| {
                    let id = format!("webhook-event-{}", enum_name(&kind).to_lowercase());
                    let for_id = id.clone();
                    let value = kind.clone();
                    let toggled = kind.clone();
                    view! {
                        <label class="webhook__check" for=for_id>
                            <input
                                id=id
                                type="checkbox"
                                prop:checked=move || chosen.with(|c| c.contains(&value))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    chosen.update(|c| {
                                        c.retain(|k| k != &toggled);
                                        if on {
                                            c.push(toggled.clone());
                                        }
                                    });
                                }
                            />
                            {label}
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <div aria-live="polite">
                {move || create.value().get().and_then(Result::err).filter(|e| e.field.as_deref() != Some("url")).map(|error| error_alert(&error, known))}
            </div>
            <button class="button button--primary" type="submit" disabled=move || create.pending().get()>
                "Add endpoint"
            </button>
        </form>
    }
}

#[component]
fn EndpointItem(
    endpoint: Endpoint,
    reload: RwSignal<u32>,
    secret: RwSignal<Option<String>>,
) -> impl IntoView {
    let id = endpoint.id.clone();
    let enabled = endpoint.enabled;
    let toggle = {
        let id = id.clone();
        Action::new_local(move |_: &()| {
            let id = id.clone();
            async move {
                api::request::<UpdateWebhookEndpoint>(update_webhook_endpoint::Variables {
                    id,
                    input: update_webhook_endpoint::UpdateWebhookEndpointInput {
                        url: None,
                        description: None,
                        event_types: None,
                        enabled: Some(!enabled),
                    },
                })
                .await?;
                reload.update(|v| *v += 1);
                Ok::<_, api::ApiError>(())
            }
        })
    };
    let rotate = {
        let id = id.clone();
        Action::new_local(move |_: &()| {
            let id = id.clone();
            async move {
                let data =
                    api::request::<RotateWebhookSecret>(rotate_webhook_secret::Variables { id })
                        .await?;
                secret.set(Some(data.rotate_webhook_secret.secret));
                reload.update(|v| *v += 1);
                Ok::<_, api::ApiError>(())
            }
        })
    };
    let delete = {
        let id = id.clone();
        Action::new_local(move |_: &()| {
            let id = id.clone();
            async move {
                api::request::<DeleteWebhookEndpoint>(delete_webhook_endpoint::Variables { id })
                    .await?;
                reload.update(|v| *v += 1);
                Ok::<_, api::ApiError>(())
            }
        })
    };
    let open = RwSignal::new(false);
    let heading = format!("webhook-{}", endpoint.id);
    let labelled_by = heading.clone();
    let events = endpoint
        .event_types
        .iter()
        .map(|t| enum_name(t).to_lowercase().replace('_', " "))
        .collect::<Vec<_>>()
        .join(", ");
    let error = move || {
        [
            toggle.value().get(),
            rotate.value().get(),
            delete.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(Result::err)
    };
    view! {
        <li class="list__item webhook" aria-labelledby=labelled_by>
            <h3 class="webhook__url" id=heading>{endpoint.url.clone()}</h3>
            <p class="muted">
                {events}
                {(!endpoint.description.is_empty()).then(|| format!(" · {}", endpoint.description))}
                {format!(" · since {}", short_time(&endpoint.created_at))}
            </p>
            {if endpoint.enabled {
                view! { <span class="status status--ok">"Enabled"</span> }.into_any()
            } else {
                view! {
                    <span class="status status--bad">"Disabled"</span>
                    <span class="muted">{endpoint.disabled_reason.clone().map(|r| format!(" ({r})")).unwrap_or_default()}</span>
                }.into_any()
            }}
            {endpoint.previous_secret_expires_at.as_deref().map(|at| view! {
                <p class="muted">{format!("The previous secret signs too until {}.", short_time(at))}</p>
            })}
            <div class="webhook__actions">
                <button class="button" type="button" on:click=move |_| open.update(|o| *o = !*o) aria-expanded=move || open.get().to_string()>
                    {move || if open.get() { "Hide deliveries" } else { "Show deliveries" }}
                </button>
                <button class="button" type="button" disabled=move || toggle.pending().get() on:click=move |_| { toggle.dispatch(()); }>
                    {if enabled { "Disable" } else { "Enable" }}
                </button>
                <button class="button" type="button" disabled=move || rotate.pending().get() on:click=move |_| { rotate.dispatch(()); }>
                    "Rotate secret"
                </button>
                <button class="button" type="button" disabled=move || delete.pending().get() on:click=move |_| { delete.dispatch(()); }>
                    "Delete"
                </button>
            </div>
            <div aria-live="polite">{move || error().map(|e| error_alert(&e, known))}</div>
            {move || open.get().then(|| view! { <DeliveryLog endpoint=id.clone() /> })}
        </li>
    }
}

/// The delivery log of one endpoint (the latest 50), with a Redeliver button on each.
#[component]
fn DeliveryLog(endpoint: String) -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    let log = LocalResource::new(move || {
        reload.track();
        let id = endpoint.clone();
        async move {
            api::request::<WebhookDeliveries>(webhook_deliveries::Variables {
                id,
                first: 50,
                after: None,
            })
            .await
            .map(|data| {
                data.webhook_endpoint
                    .deliveries
                    .edges
                    .into_iter()
                    .map(|e| e.node)
                    .collect::<Vec<_>>()
            })
        }
    });
    let redeliver = Action::new_local(move |delivery_id: &String| {
        let delivery_id = delivery_id.clone();
        async move {
            api::request::<RedeliverWebhook>(redeliver_webhook::Variables { delivery_id }).await?;
            reload.update(|v| *v += 1);
            Ok::<_, api::ApiError>(())
        }
    });
    view! {
        <div aria-live="polite">
            {move || redeliver.value().get().map(|r| match r {
                Ok(()) => ok_status("Sent again: the log shows the attempt in a moment.".to_owned()).into_any(),
                Err(error) => error_alert(&error, known).into_any(),
            })}
        </div>
        <button class="button" type="button" on:click=move |_| reload.update(|v| *v += 1)>"Refresh"</button>
        <Transition fallback=|| view! { <Loading label="Loading the deliveries…" /> }>
            {move || Suspend::new(async move {
                match mounted.data(log).await {
                    Err(error) => load_error(&error, reload).into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"Nothing delivered yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="table webhook__log">
                            <caption class="visually-hidden">"Deliveries, newest first"</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"Event"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col" class="num">"Attempts"</th>
                                    <th scope="col" class="num">"Last answer"</th>
                                    <th scope="col" class="num">"Latency"</th>
                                    <th scope="col">"Next attempt"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr>
                            </thead>
                            <tbody>
                                {list.into_iter().map(|d| {
                                    let id = d.id.clone();
                                    view! {
                                        <tr>
                                            <th scope="row">
                                                {enum_name(&d.event_type).to_lowercase().replace('_', " ")}
                                                <br /><code class="muted">{d.webhook_id.clone()}</code>
                                            </th>
                                            <td>{enum_name(&d.status).to_lowercase()}</td>
                                            <td class="num">{d.attempts}</td>
                                            <td class="num">{d.last_status_code.map(|c| c.to_string()).or(d.last_error.clone()).unwrap_or_default()}</td>
                                            <td class="num">{d.last_latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_default()}</td>
                                            <td>{d.next_attempt_at.as_deref().map(short_time).unwrap_or_default()}</td>
                                            <td>
                                                <button class="button" type="button" disabled=move || redeliver.pending().get() on:click=move |_| { redeliver.dispatch(id.clone()); }>
                                                    "Redeliver"
                                                </button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
