//! Admin: accounts (search, create a publisher or admin, ban and reinstate), product moderation,
//! and dead letters with replay.

use domain::identity::{DisplayName, Email, Password};
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::queries::Domain as _;
use crate::api::queries::{
    AdminAccounts, AdminProducts, CreateAccount, DeadLetters, ModerateProduct, ReplayDeadLetter,
    SetAccountStatus, admin_accounts, admin_products, create_account, dead_letters,
    moderate_product, replay_dead_letter, set_account_status,
};
use crate::api::session::enum_name;
use crate::api::{self, ApiError};
use crate::components::{Debounce, Empty, Loading, Mounted, error_fallback, short_time};
use crate::page::Page;
use crate::words;

#[component]
pub fn Admin() -> impl IntoView {
    view! {
        <section class="page" aria-labelledby="admin-title">
            <h1 id="admin-title">"Administration"</h1>
            <Accounts />
            <Moderation />
            <DeadLetterList />
        </section>
    }
}

fn alert(result: Option<Result<(), ApiError>>, ok: &'static str) -> impl IntoView + use<> {
    result.map(|r| match r {
        Ok(()) => view! { <p class="alert alert--ok" role="status">{ok}</p> }.into_any(),
        Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
    })
}

/// Accounts per page.
const ACCOUNTS_PAGE: i64 = 50;
/// Products shown a page at a time in moderation.
const PRODUCTS_PAGE: i64 = 20;

type AccountRow = admin_accounts::AdminAccountsAccountsNodes;

#[component]
fn Accounts() -> impl IntoView {
    let mounted = Mounted::new();
    let search = RwSignal::new(String::new());
    let version = RwSignal::new(0_u32);
    // The cursors of the pages before the current one (paging forward pushes).
    let cursors = RwSignal::new(Vec::<Option<String>>::new());
    let after = RwSignal::new(None::<String>);
    // What is in the search box, and the search whose results are on screen: the list is busy
    // (`aria-busy`) until they agree, so nobody pages through the results of a half-typed word.
    let typed = RwSignal::new(String::new());
    let shown = RwSignal::new(None::<String>);
    let accounts = LocalResource::new(move || {
        version.track();
        let raw = search.get();
        let query = Some(raw.clone()).filter(|s| !s.trim().is_empty());
        let after = after.get();
        async move {
            let page = api::request::<AdminAccounts>(admin_accounts::Variables {
                search: query,
                first: ACCOUNTS_PAGE,
                after,
            })
            .await
            .map(|data| data.accounts);
            // A late answer to an older search is not what is on screen.
            // (The page may be gone by now, its search box with it.)
            if search.try_get_untracked().is_some_and(|s| s == raw) {
                shown.set(Some(raw));
            }
            page
        }
    });
    let busy = move || {
        let typed = typed.get();
        shown.with(|s| s.as_deref() != Some(typed.as_str()))
    };
    let debounce = Debounce::new();
    let on_input = move |ev: leptos::ev::Event| {
        let text = event_target_value(&ev);
        typed.set(text.clone());
        debounce.run(move || {
            cursors.set(Vec::new());
            after.set(None);
            search.set(text);
        });
    };
    let notice = RwSignal::new(None::<Result<String, ApiError>>);
    view! {
        <section aria-labelledby="accounts-title">
            <h2 id="accounts-title">"Accounts"</h2>
            <CreateAccountForm version />
            <div class="field" role="search">
                <label for="account-search">"Search by e-mail or name"</label>
                <input id="account-search" type="search" autocomplete="off" on:input=on_input />
            </div>
            <div aria-live="polite">
                {move || notice.get().map(|r| match r {
                    Ok(text) => view! { <p class="alert alert--ok" role="status">{text}</p> }.into_any(),
                    Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
                })}
            </div>
            <div id="account-results" aria-busy=move || busy().to_string()>
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(accounts).await.map(|page| {
                            let next = page.page_info.has_next_page.then_some(page.page_info.end_cursor).flatten();
                            if page.nodes.is_empty() {
                                return view! {
                                    <Empty title="No account matches this"><p>"Try part of the e-mail or the name."</p></Empty>
                                    <crate::pages::refunds::Pager cursors after next />
                                }.into_any();
                            }
                            view! {
                                <table class="table">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Name"</th>
                                            <th scope="col">"E-mail"</th>
                                            <th scope="col">"Role"</th>
                                            <th scope="col">"Status"</th>
                                            <th scope="col">
                                                <span class="visually-hidden">"Action"</span>
                                            </th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {page.nodes.into_iter().map(|account| view! { <AccountRowView account version notice /> }).collect_view()}
                                    </tbody>
                                </table>
                                <crate::pages::refunds::Pager cursors after next />
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
            </div>
        </section>
    }
}

/// A role as people say it (the code stays in the API).
fn role_word(code: &str) -> &'static str {
    match code {
        "USER" => "Shopper",
        "PUBLISHER" => "Publisher",
        "ADMIN" => "Admin",
        _ => "Other",
    }
}

/// One account with Ban / Reinstate, each asked again with a reason (kept in the audit log).
#[component]
fn AccountRowView(
    account: AccountRow,
    version: RwSignal<u32>,
    notice: RwSignal<Option<Result<String, ApiError>>>,
) -> impl IntoView {
    let status = enum_name(&account.status);
    let banned = status == "BANNED";
    let id = account.id.clone();
    let who = account.email.clone();
    let set_status = Action::new_local(move |reason: &String| {
        let vars = set_account_status::Variables {
            account_id: id.clone(),
            status: if banned {
                set_account_status::AccountStatus::ACTIVE
            } else {
                set_account_status::AccountStatus::BANNED
            },
            reason: Some(reason.clone()),
        };
        let who = who.clone();
        async move {
            let result = api::request::<SetAccountStatus>(vars).await.map(|_| {
                if banned {
                    format!("{who} is reinstated.")
                } else {
                    format!("{who} is banned and signed out everywhere.")
                }
            });
            notice.set(Some(result));
            version.update(|v| *v += 1);
        }
    });
    let reason_id = format!("reason-{}", account.id);
    let verb = if banned { "Reinstate" } else { "Ban" };
    let what = account.email.clone();
    view! {
        <tr>
            <td>{account.display_name}</td>
            <td>{account.email.clone()}</td>
            <td>{role_word(&enum_name(&account.role))}</td>
            <td>{if banned { "Banned" } else { "Active" }}</td>
            <td>
                <AskAgain
                    verb
                    what
                    reason_id
                    why=Some("Why? (kept in the audit log)")
                    confirm=format!("{verb} the account")
                    pending=set_status.pending().into()
                    act=Callback::new(move |why: String| { set_status.dispatch(why); })
                />
            </td>
        </tr>
    }
}

/// An admin action asked again: its button opens a group with the reason box (when `why`
/// labels one: then a reason is required), the confirming button and Cancel. `act` gets the
/// trimmed reason (empty when none is asked).
#[component]
fn AskAgain(
    verb: &'static str,
    /// What the action is done to, for the group's accessible name.
    what: String,
    reason_id: String,
    why: Option<&'static str>,
    confirm: String,
    pending: Signal<bool>,
    act: Callback<String>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let missing = RwSignal::new(false);
    let asks = why.is_some();
    view! {
        <Show
            when=move || confirming.get()
            fallback=move || view! {
                <button class="button button--ghost" type="button" on:click=move |_| confirming.set(true)>
                    {verb}
                </button>
            }
        >
            <div class="confirm" role="group" aria-label=format!("{verb} {what}")>
                {why.map(|label| view! {
                    <label for=reason_id.clone()>{label}</label>
                    <input
                        id=reason_id.clone()
                        type="text"
                        maxlength="500"
                        aria-invalid=move || missing.get().to_string()
                        prop:value=reason
                        on:input=move |ev| reason.set(event_target_value(&ev))
                    />
                    {move || missing.get().then(|| view! { <p class="field__error">"Give a reason first."</p> })}
                })}
                <button
                    class="button button--danger"
                    type="button"
                    disabled=move || pending.get()
                    on:click=move |_| {
                        let why = reason.get_untracked().trim().to_owned();
                        let refused = asks && why.is_empty();
                        missing.set(refused);
                        if !refused {
                            act.run(why);
                        }
                    }
                >
                    {confirm.clone()}
                </button>
                <button class="button button--ghost" type="button" on:click=move |_| confirming.set(false)>
                    "Cancel"
                </button>
            </div>
        </Show>
    }
}

#[component]
fn CreateAccountForm(version: RwSignal<u32>) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new(String::from("PUBLISHER"));
    let invalid = RwSignal::new(None::<String>);
    let create = Action::new_local(move |input: &create_account::CreateAccountInput| {
        let input = input.clone();
        async move {
            let result = api::request::<CreateAccount>(create_account::Variables { input })
                .await
                .map(|_| ());
            version.update(|v| *v += 1);
            result
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let checked = (|| {
            let email = Email::parse(&email.get_untracked()).map_err(|e| e.to_string())?;
            let name = DisplayName::parse(&name.get_untracked()).map_err(|e| e.to_string())?;
            let password = Password::parse(&password.get_untracked()).map_err(|e| e.to_string())?;
            Ok::<_, String>((email, name, password))
        })();
        match checked {
            Err(message) => invalid.set(Some(message)),
            Ok((email, name, password)) => {
                invalid.set(None);
                create.dispatch(create_account::CreateAccountInput {
                    email: email.as_str().to_owned(),
                    display_name: name.as_str().to_owned(),
                    password: password.expose().to_owned(),
                    role: if role.get_untracked() == "ADMIN" {
                        create_account::StaffRole::ADMIN
                    } else {
                        create_account::StaffRole::PUBLISHER
                    },
                });
            }
        }
    };
    view! {
        <form class="form form--card" on:submit=on_submit novalidate=true aria-labelledby="create-account-title">
            <h3 id="create-account-title">"Create a publisher or admin"</h3>
            <div class="field">
                <label for="new-email">"E-mail"</label>
                <input id="new-email" type="email" autocomplete="off" prop:value=email on:input=move |ev| email.set(event_target_value(&ev)) />
            </div>
            <div class="field">
                <label for="new-name">"Name"</label>
                <input id="new-name" type="text" autocomplete="off" prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
            </div>
            <div class="field">
                <label for="new-password">"Initial password"</label>
                <input id="new-password" type="password" autocomplete="new-password" prop:value=password on:input=move |ev| password.set(event_target_value(&ev)) />
            </div>
            <div class="field">
                <label for="new-role">"Role"</label>
                <select id="new-role" on:change=move |ev| role.set(event_target_value(&ev))>
                    <option value="PUBLISHER">"Publisher"</option>
                    <option value="ADMIN">"Admin"</option>
                </select>
            </div>
            {move || invalid.get().map(|m| view! { <p class="alert alert--error" role="alert">{m}</p> })}
            {move || alert(create.value().get(), "Account created.")}
            <button class="button button--primary" type="submit" disabled=move || create.pending().get()>
                "Create account"
            </button>
        </form>
    }
}

/// Products a page at a time: an admin unlists one only after saying why (the publisher sees the
/// reason on their dashboard), and restores one after confirming.
#[component]
fn Moderation() -> impl IntoView {
    let mounted = Mounted::new();
    let version = RwSignal::new(0_u32);
    let cursors = RwSignal::new(Vec::<Option<String>>::new());
    let after = RwSignal::new(None::<String>);
    let products = LocalResource::new(move || {
        version.track();
        let after = after.get();
        async move {
            api::request::<AdminProducts>(admin_products::Variables {
                status: None,
                first: PRODUCTS_PAGE,
                after,
            })
            .await
            .map(|data| data.all_products)
        }
    });
    let notice = RwSignal::new(None::<Result<String, ApiError>>);
    view! {
        <section aria-labelledby="moderation-title">
            <h2 id="moderation-title">"Products"</h2>
            <div aria-live="polite">
                {move || notice.get().map(|r| match r {
                    Ok(text) => view! { <p class="alert alert--ok" role="status">{text}</p> }.into_any(),
                    Err(e) => view! { <p class="alert alert--error" role="alert">{e.message}</p> }.into_any(),
                })}
            </div>
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(products).await.map(|page| {
                            let next = page.page_info.has_next_page.then_some(page.page_info.end_cursor).flatten();
                            view! {
                                <ul class="list">
                                    {page.nodes.into_iter().map(|product| view! { <ProductRow product version notice /> }).collect_view()}
                                </ul>
                                <crate::pages::refunds::Pager cursors after next />
                            }
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

/// One product with Unlist (asked again, with the reason the publisher will read) or Restore.
#[component]
fn ProductRow(
    product: admin_products::AdminProductsAllProductsNodes,
    version: RwSignal<u32>,
    notice: RwSignal<Option<Result<String, ApiError>>>,
) -> impl IntoView {
    let status = product.status.domain();
    let unlisted = status == Some(domain::catalog::ProductStatus::Unlisted);
    let status_text = format!(
        "{}{}",
        words::product_status(status, product.moderation_reason.is_some()),
        product
            .moderation_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let id = product.id.clone();
    let title = product.title.clone();
    let moderate = Action::new_local(move |reason: &String| {
        let vars = moderate_product::Variables {
            id: id.clone(),
            action: if unlisted {
                moderate_product::ModerationAction::RESTORE
            } else {
                moderate_product::ModerationAction::UNLIST
            },
            reason: (!unlisted).then(|| reason.clone()),
        };
        let title = title.clone();
        async move {
            let result = api::request::<ModerateProduct>(vars).await.map(|_| {
                if unlisted {
                    format!("{title} is back in the store.")
                } else {
                    format!("{title} is taken off the store.")
                }
            });
            notice.set(Some(result));
            version.update(|v| *v += 1);
        }
    });
    let reason_id = format!("unlist-reason-{}", product.id);
    let verb = if unlisted { "Restore" } else { "Unlist" };
    let what = product.title.clone();
    view! {
        <li class="list__item">
            <A href=Page::Product(product.slug).href()>{product.title.clone()}</A>
            <span class="muted">{product.publisher.name}</span>
            <span>{status_text}</span>
            <AskAgain
                verb
                what
                reason_id
                why=(!unlisted).then_some("Why? (the publisher reads this; kept in the audit log)")
                confirm=if unlisted { "Put it back in the store" } else { "Take it off the store" }.to_owned()
                pending=moderate.pending().into()
                act=Callback::new(move |why: String| { moderate.dispatch(why); })
            />
        </li>
    }
}

#[component]
pub fn DeadLetterList() -> impl IntoView {
    let mounted = Mounted::new();
    let version = RwSignal::new(0_u32);
    let letters = LocalResource::new(move || {
        version.track();
        async move {
            api::request::<DeadLetters>(dead_letters::Variables { first: 50 })
                .await
                .map(|data| data.dead_letters.nodes)
        }
    });
    let replay = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move {
            let result = api::request::<ReplayDeadLetter>(replay_dead_letter::Variables { id })
                .await
                .map(|_| ());
            version.update(|v| *v += 1);
            result
        }
    });
    view! {
        <section aria-labelledby="dead-letters-title">
            <h2 id="dead-letters-title">"Dead letters"</h2>
            {move || alert(replay.value().get(), "Sent again.")}
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(letters).await.map(|letters| {
                            if letters.is_empty() {
                                return view! { <Empty title="No dead letters"><p>"Every message was handled."</p></Empty> }.into_any();
                            }
                            view! {
                                <ul class="list">
                                    {letters.into_iter().map(|d| {
                                        let id = d.id.clone();
                                        view! {
                                            <li class="list__item">
                                                <div>
                                                    <p><strong>{d.participant}</strong> " · " <code>{d.subject}</code></p>
                                                    <p class="muted">{format!("{} · {} deliveries · {}", d.kind.unwrap_or_default(), d.deliveries, short_time(&d.failed_at))}</p>
                                                    <p>{d.error}</p>
                                                </div>
                                                {match d.replayed_at {
                                                    Some(at) => view! { <span class="muted">{format!("replayed {}", short_time(&at))}</span> }.into_any(),
                                                    None => view! {
                                                        <button class="button" type="button" on:click=move |_| { replay.dispatch(id.clone()); }>"Replay"</button>
                                                    }.into_any(),
                                                }}
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any()
                        })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}
