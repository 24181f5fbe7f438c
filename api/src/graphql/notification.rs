//! Notifications in GraphQL: `notifications`, `unreadNotificationCount`,
//! `markNotificationsRead`.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::graphql::error::stored;
use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::paging;
use crate::infra::error::ApiError;
use crate::notification as service;

/// What a notification is about (its `title` and `body` say it in words).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::notification::NotificationKind")]
pub enum NotificationKind {
    /// To a buyer: an order is complete.
    OrderCompleted,
    /// To a buyer: an order was cancelled (e.g. the payment did not go through).
    OrderCancelled,
    /// To a buyer: a top-up reached the wallet.
    WalletCredited,
    /// To a buyer: a top-up was declined.
    TopUpDeclined,
    /// To a publisher: a product of theirs was sold.
    Sale,
    /// To a publisher: a paid order waits for them to ship it.
    ShipmentToSend,
    /// To a publisher: half the time to ship an order is gone.
    ShippingReminder,
    /// To a buyer: the parcel left (with the tracking number).
    ShipmentDispatched,
    /// To a buyer: the payment of a cancelled order went back to the wallet.
    PaymentRefunded,
    /// To a buyer: a refund request waits for an admin to decide.
    RefundRequested,
    /// To a buyer: an admin denied the refund request.
    RefundDenied,
    /// To a buyer: the order is refunded (its items left the library, the money is back).
    OrderRefunded,
    /// To a publisher: a sale of theirs was refunded (its revenue reversed).
    SaleRefunded,
    /// To a publisher: a batch of gift keys is ready.
    GiftKeysReady,
    /// To the account that redeemed a gift key: the product is in the library.
    KeyRedeemed,
    /// To a publisher: a webhook endpoint kept failing and was disabled.
    WebhookEndpointDisabled,
    /// To an admin: reconciliation found a difference a person must look at.
    DriftFound,
    /// To a buyer: a product on their wishlist went on sale.
    WishlistOnSale,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub order_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

impl TryFrom<service::Row> for Notification {
    type Error = ApiError;

    fn try_from(r: service::Row) -> Result<Notification, ApiError> {
        Ok(Notification {
            id: r.id,
            kind: stored(
                "notification kind",
                &r.kind,
                domain::notification::NotificationKind::parse,
            )?
            .into(),
            title: r.title,
            body: r.body,
            order_id: r.order_id,
            created_at: r.created_at,
            read: r.read_at.is_some(),
        })
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
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Notification>> {
        let (state, me) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("notification", after.as_deref())?;
        let rows = service::list(state, me.id, cursor, first + 1).await?;
        Ok(paging::try_page(
            rows,
            first,
            after.is_some(),
            |r| paging::encode("notification", &r.id.to_string()),
            Notification::try_from,
        )?)
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
