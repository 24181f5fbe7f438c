//! API clients on the publisher dashboard (issue 16): the publisher names a client and picks its
//! scopes; the secret is shown once, beside the client id and a `curl` line for the token; each
//! client shows its scopes and last use and can be revoked.

use domain::ErrorCode;
use leptos::prelude::*;

use crate::api;
use crate::api::queries::{
    ApiClients as ApiClientsQuery, CreateApiClient, RevokeApiClient, api_clients,
    create_api_client, revoke_api_client,
};
use crate::components::{
    Empty, Loading, Mounted, copy_to_clipboard, focus_first_invalid, short_time,
};
use crate::pages::notice::{error_alert, load_error};

type Scope = api_clients::ApiScope;
type Client = api_clients::ApiClientsApiClients;

fn known(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::Conflict => Some("You hold the most API clients allowed: revoke one first."),
        ErrorCode::NotFound => Some("This client no longer exists."),
        _ => None,
    }
}

/// The same scope as the mutation's own copy of the enum (each operation has its own type).
fn for_create(scope: &Scope) -> Option<create_api_client::ApiScope> {
    use create_api_client::ApiScope as C;
    Some(match scope {
        Scope::SALES_READ => C::SALES_READ,
        Scope::CATALOG_READ => C::CATALOG_READ,
        Scope::CATALOG_WRITE => C::CATALOG_WRITE,
        Scope::SHIPMENTS_WRITE => C::SHIPMENTS_WRITE,
        Scope::OWNERSHIP_READ => C::OWNERSHIP_READ,
        Scope::WEBHOOKS_READ => C::WEBHOOKS_READ,
        Scope::WEBHOOKS_WRITE => C::WEBHOOKS_WRITE,
        Scope::Other(_) => return None,
    })
}

/// The publisher's API clients: the form for a new one and the list.
#[component]
pub fn ApiClients() -> impl IntoView {
    let mounted = Mounted::new();
    let reload = RwSignal::new(0_u32);
    let data = LocalResource::new(move || {
        reload.track();
        async move { api::request::<ApiClientsQuery>(api_clients::Variables {}).await }
    });
    // The client just created, with its secret: kept here, outside the list that reloads (and
    // remakes the form) once it is created, so the secret stays on screen.
    let created = RwSignal::new(None::<create_api_client::CreateApiClientCreateApiClient>);
    view! {
        <section class="api-clients" aria-labelledby="api-clients-title">
            <h2 id="api-clients-title">"API clients"</h2>
            <p class="muted">
                "Your own servers sign in as an API client (OAuth 2.0 client credentials at "
                <code>"/oauth/token"</code>
                ") and act for you within the scopes you give them."
            </p>
            <div aria-live="polite">
                {move || created.get().map(|created| view! { <Secret created /> })}
            </div>
            <Transition fallback=|| view! { <Loading label="Loading your API clients…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(data).await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(d) => view! {
                            <NewClient scopes=d.api_scopes reload created />
                            {if d.api_clients.is_empty() {
                                view! {
                                    <Empty title="No API clients yet">
                                        <p>"Create one above for your game server or your shop's back office."</p>
                                    </Empty>
                                }.into_any()
                            } else {
                                view! {
                                    <ul class="list api-clients__list">
                                        {d.api_clients.into_iter().map(|client| view! { <ClientItem client reload /> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn NewClient(
    scopes: Vec<api_clients::ApiClientsApiScopes>,
    reload: RwSignal<u32>,
    created: RwSignal<Option<create_api_client::CreateApiClientCreateApiClient>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let chosen = RwSignal::new(Vec::<String>::new());
    let invalid = RwSignal::new(None::<String>);
    let offered = StoredValue::new(scopes.clone());
    let create = Action::new_local(move |vars: &create_api_client::Variables| {
        let vars = vars.clone();
        async move {
            let result = api::request::<CreateApiClient>(vars).await;
            if let Ok(d) = &result {
                created.set(Some(d.create_api_client.clone()));
                name.set(String::new());
                chosen.set(Vec::new());
                reload.update(|v| *v += 1);
            }
            result.map(|_| ())
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let picked = chosen.get_untracked();
        let scopes: Vec<_> = offered.with_value(|all| {
            all.iter()
                .filter(|s| picked.contains(&s.name))
                .filter_map(|s| for_create(&s.scope))
                .collect()
        });
        let text = name.get_untracked().trim().to_owned();
        if text.is_empty() || scopes.is_empty() {
            invalid.set(Some(
                "Name the client and give it at least one scope.".to_owned(),
            ));
            focus_first_invalid();
            return;
        }
        invalid.set(None);
        create.dispatch(create_api_client::Variables { name: text, scopes });
    };
    view! {
        <form class="form form--card" novalidate=true aria-labelledby="client-form-title" on:submit=on_submit>
            <h3 id="client-form-title">"New API client"</h3>
            <div class="field">
                <label for="client-name">"Name"</label>
                <input
                    id="client-name"
                    type="text"
                    maxlength="64"
                    autocomplete="off"
                    placeholder="Game server"
                    aria-invalid=move || invalid.get().is_some().to_string()
                    aria-describedby="client-error"
                    prop:value=name
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
            </div>
            <fieldset class="field">
                <legend>"Scopes"</legend>
                {scopes.into_iter().map(|s| {
                    let id = format!("scope-{}", s.name.replace(':', "-"));
                    let value = s.name.clone();
                    let checked = {
                        let value = value.clone();
                        move || chosen.with(|c| c.contains(&value))
                    };
                    view! {
                        <div class="checkbox">
                            <input
                                id=id.clone()
                                type="checkbox"
                                prop:checked=checked
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    let value = value.clone();
                                    chosen.update(|c| {
                                        c.retain(|x| x != &value);
                                        if on {
                                            c.push(value);
                                        }
                                    });
                                }
                            />
                            <label for=id><code>{s.name.clone()}</code>" — "{s.description}</label>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            <p class="field__error" id="client-error">{move || invalid.get()}</p>
            <div aria-live="polite">
                {move || create.value().get().and_then(Result::err).map(|error| error_alert(&error, known))}
            </div>
            <button class="button button--primary" type="submit" disabled=move || create.pending().get()>
                "Create client"
            </button>
        </form>
    }
}

/// The new client's credentials: the only time the secret is shown.
#[component]
fn Secret(created: create_api_client::CreateApiClientCreateApiClient) -> impl IntoView {
    let id = created.client.id.clone();
    let secret = created.client_secret.clone();
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    let curl =
        format!("curl -s {origin}/oauth/token -u '{id}:{secret}' -d grant_type=client_credentials");
    let copied = RwSignal::new(None::<bool>);
    let copy = Action::new_local(move |text: &String| {
        let text = text.clone();
        async move { copied.set(Some(copy_to_clipboard(text).await)) }
    });
    let both = format!("client_id={id}\nclient_secret={secret}");
    view! {
        <div class="alert alert--ok secret" role="status">
            <p>
                <strong>{format!("“{}” is ready. ", created.client.name)}</strong>
                "Copy the secret now: it is not shown again (the store keeps only its hash)."
            </p>
            <dl class="secret__values">
                <dt>"Client id"</dt>
                <dd><code>{id.clone()}</code></dd>
                <dt>"Client secret"</dt>
                <dd><code class="secret__value">{secret.clone()}</code></dd>
                <dt>"Scopes"</dt>
                <dd><code>{created.client.scope.clone()}</code></dd>
                <dt>"A token"</dt>
                <dd><code>{curl}</code></dd>
            </dl>
            <button class="button" type="button" on:click=move |_| { copy.dispatch(both.clone()); }>
                "Copy id and secret"
            </button>
            <span class="muted">
                {move || match copied.get() {
                    Some(true) => "Copied",
                    Some(false) => "Copy failed: select the values above",
                    None => "",
                }}
            </span>
        </div>
    }
}

#[component]
fn ClientItem(client: Client, reload: RwSignal<u32>) -> impl IntoView {
    let id = client.id.clone();
    let revoke = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move {
            let result = api::request::<RevokeApiClient>(revoke_api_client::Variables { id }).await;
            if result.is_ok() {
                reload.update(|v| *v += 1);
            }
            result.map(|_| ())
        }
    });
    let heading = format!("client-{}", client.id);
    let revoked = client.revoked_at.is_some();
    let last_use = client.last_used_at.as_deref().map_or_else(
        || "never used".to_owned(),
        |at| format!("last used {}", short_time(at)),
    );
    let name = client.name.clone();
    view! {
        <li class="list__item api-client" aria-labelledby=heading.clone()>
            <h3 id=heading.clone()>{client.name.clone()}</h3>
            <p class="muted">
                <code>{client.id.clone()}</code>
                " · "<code>{client.scope.clone()}</code>
                {format!(" · created {} · {last_use}", short_time(&client.created_at))}
            </p>
            {if revoked {
                view! {
                    <p class="status">{format!("Revoked {}", client.revoked_at.as_deref().map(short_time).unwrap_or_default())}</p>
                }.into_any()
            } else {
                view! {
                    <button class="button button--danger" type="button" disabled=move || revoke.pending().get()
                        on:click=move |_| { revoke.dispatch(id.clone()); }>
                        "Revoke"
                        <span class="visually-hidden">{format!(" {name}")}</span>
                    </button>
                }.into_any()
            }}
            <div aria-live="polite">
                {move || revoke.value().get().and_then(Result::err).map(|error| error_alert(&error, known))}
            </div>
        </li>
    }
}
