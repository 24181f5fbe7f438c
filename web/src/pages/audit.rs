//! Admins: the audit log (`auditLog(first, after)`), newest first and paged by cursor, each
//! entry in plain words: who did what to whom, when, and why.

use leptos::prelude::*;

use crate::api;
use crate::api::queries::audit_log::{AuditAction, Role};
use crate::api::queries::{AuditLog as AuditLogQuery, audit_log};
use crate::api::session::enum_name;
use crate::components::{Empty, Loading, Mounted, short_time};
use crate::pages::notice::load_error;
use crate::pages::refunds::Pager;

const PAGE: i64 = 25;

type Entry = audit_log::AuditLogAuditLogNodes;

/// "a publisher", "an admin": the role as the end of a sentence.
fn role_words(role: Option<&Role>) -> &'static str {
    match role {
        Some(Role::USER) => "a user",
        Some(Role::PUBLISHER) => "a publisher",
        Some(Role::ADMIN) => "an admin",
        _ => "another role",
    }
}

/// One entry as a sentence: "ada@store.test banned bob@store.test — reason: chargebacks".
fn sentence(entry: &Entry) -> String {
    let actor = entry
        .actor
        .as_ref()
        .map_or("The system", |a| a.email.as_str());
    let target = entry
        .target
        .as_ref()
        .map_or("an account", |t| t.label.as_str());
    let role = role_words(entry.role.as_ref());
    let mut text = match &entry.action {
        AuditAction::ACCOUNT_CREATED => format!("{actor} created {target} as {role}"),
        AuditAction::ROLE_CHANGED => format!("{actor} made {target} {role}"),
        AuditAction::ACCOUNT_BANNED => format!("{actor} banned {target}"),
        AuditAction::ACCOUNT_REINSTATED => format!("{actor} reinstated {target}"),
        AuditAction::PRODUCT_UNLISTED => format!("{actor} took {target} off the store"),
        AuditAction::PRODUCT_RESTORED => format!("{actor} put {target} back in the store"),
        AuditAction::DISCOUNT_ENDED => format!("{actor} ended a discount on {target}"),
        // A kind of entry newer than this build of the app: still say who and whom.
        AuditAction::Other(code) => format!("{actor}: {code} on {target}"),
    };
    if let Some(reason) = entry.reason.as_deref().filter(|r| !r.is_empty()) {
        text.push_str(" — reason: ");
        text.push_str(reason);
    }
    text
}

#[component]
pub fn AuditLog() -> impl IntoView {
    let mounted = Mounted::new();
    let cursors = RwSignal::new(Vec::<Option<String>>::new());
    let after = RwSignal::new(None::<String>);
    let reload = RwSignal::new(0_u32);
    let entries = LocalResource::new(move || {
        reload.track();
        let variables = audit_log::Variables {
            first: PAGE,
            after: after.get(),
        };
        async move {
            api::request::<AuditLogQuery>(variables)
                .await
                .map(|data| data.audit_log)
        }
    });
    view! {
        <section class="page" aria-labelledby="audit-title">
            <h1 id="audit-title">"Audit log"</h1>
            <p class="muted">"What admins did to accounts and products, newest first."</p>
            <Transition fallback=|| view! { <Loading label="Loading the audit log…" /> }>
                {move || Suspend::new(async move {
                    match mounted.data(entries).await {
                        Err(error) => load_error(&error, reload).into_any(),
                        Ok(page) => {
                            let next = page.page_info.has_next_page.then_some(page.page_info.end_cursor).flatten();
                            let list = if page.nodes.is_empty() {
                                view! { <Empty title="Nothing yet"><p>"Admin actions appear here."</p></Empty> }.into_any()
                            } else {
                                view! {
                                    <ol class="list audit" aria-label="Audit log entries">
                                        {page.nodes.into_iter().map(|entry| {
                                            let text = sentence(&entry);
                                            view! {
                                                <li class="list__item audit__entry" data-action=enum_name(&entry.action)>
                                                    <span class="audit__text">{text}</span>
                                                    <time class="muted" datetime=entry.occurred_at.clone()>{short_time(&entry.occurred_at)}</time>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ol>
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
