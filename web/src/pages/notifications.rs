//! The caller's notifications, newest first; opening the page marks them read.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api;
use crate::api::queries::{
    MarkNotificationsRead, NotificationList, mark_notifications_read, notification_list,
};
use crate::components::{Empty, Loading, Mounted, error_fallback, short_time};
use crate::page::Page;
use crate::state::use_notifications_changed;

#[component]
pub fn Notifications() -> impl IntoView {
    let mounted = Mounted::new();
    let changed = use_notifications_changed();
    let list = LocalResource::new(move || async move {
        let nodes = api::request::<NotificationList>(notification_list::Variables { first: 50 })
            .await
            .map(|data| data.notifications.nodes)?;
        if nodes.iter().any(|n| !n.read) {
            let _ =
                api::request::<MarkNotificationsRead>(mark_notifications_read::Variables {}).await;
            changed.bump();
        }
        Ok::<_, api::ApiError>(nodes)
    });
    view! {
        <section class="page" aria-labelledby="notifications-title">
            <h1 id="notifications-title">"Notifications"</h1>
            <Transition fallback=|| view! { <Loading /> }>
                <ErrorBoundary fallback=error_fallback>
                    {move || Suspend::new(async move {
                        mounted.data(list).await.map(|nodes| {
                            if nodes.is_empty() {
                                return view! { <Empty title="No notifications"><p>"Order and wallet news appear here."</p></Empty> }.into_any();
                            }
                            view! {
                                <ul class="list">
                                    {nodes.into_iter().map(|n| view! {
                                        <li class=if n.read { "list__item" } else { "list__item list__item--unread" }>
                                            <div>
                                                <p><strong>{n.title}</strong></p>
                                                <p>{n.body}</p>
                                                {n.order_id.map(|id| view! { <A href=Page::Order(id).href()>"View the order"</A> })}
                                            </div>
                                            <time class="muted" datetime=n.created_at.clone()>{short_time(&n.created_at)}</time>
                                        </li>
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
