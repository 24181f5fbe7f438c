//! Notifications in GraphQL: `notifications`, `unreadNotificationCount`,
//! `markNotificationsRead`.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::paging;
use crate::notification as service;

#[derive(SimpleObject, Clone, Debug)]
pub struct Notification {
    pub id: Uuid,
    /// `ORDER_COMPLETED`, `ORDER_CANCELLED`, `WALLET_CREDITED`, `TOP_UP_DECLINED`, `SALE`.
    pub kind: String,
    pub title: String,
    pub body: String,
    pub order_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

impl From<service::Row> for Notification {
    fn from(r: service::Row) -> Notification {
        Notification {
            id: r.id,
            kind: r.kind,
            title: r.title,
            body: r.body,
            order_id: r.order_id,
            created_at: r.created_at,
            read: r.read_at.is_some(),
        }
    }
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The caller's notifications, newest first.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Notification>> {
        let (state, me) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("notification", after.as_deref())?;
        let rows = service::list(state, me.id, cursor, first + 1).await?;
        Ok(paging::page(
            rows,
            first,
            after.is_some(),
            |r| paging::encode("notification", &r.id.to_string()),
            Notification::from,
        ))
    }

    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let (state, me) = acting(ctx)?;
        Ok(service::unread(state, me.id).await?)
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks every notification received so far as read.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn mark_notifications_read(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let (state, me) = acting(ctx)?;
        service::mark_read(state, me.id).await?;
        Ok(true)
    }
}
