//! Live updates (graphql-transport-ws at `/graphql/ws`), fed by core NATS subscriptions on the
//! `evt.` subjects of this deployment: JetStream stores those events, and every plain
//! subscriber on the subject sees them too. A subscription only ever sees its caller's events.

use std::time::Duration;

use async_graphql::{Context, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use domain::identity::Role;
use domain::messaging::Envelope;
use domain::notification::NotificationCreated;
use domain::ordering::OrderCompleted;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::graphql::catalog::types::Money;
use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::notification::Notification;
use crate::graphql::ordering::{Order, OrderLine};
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

/// Something happened to an order.
#[derive(SimpleObject, Clone, Debug)]
pub struct OrderUpdate {
    /// The event's type, e.g. `billing.payment_captured`, `ordering.order_completed`.
    pub event: String,
    pub at: DateTime<Utc>,
    pub order: Order,
}

/// Something changed in a publisher's list of orders to ship.
#[derive(SimpleObject, Clone, Debug)]
pub struct ShipmentUpdate {
    /// `fulfillment.ready_to_ship` (a new order to ship), `fulfillment.shipment_dispatched`
    /// or `fulfillment.shipment_cancelled` (it left the list).
    pub event: String,
    pub order_id: Uuid,
    pub at: DateTime<Utc>,
}

/// A publisher's sale: the lines of one completed order that are theirs.
#[derive(SimpleObject, Clone, Debug)]
pub struct Sale {
    pub order_id: Uuid,
    pub lines: Vec<OrderLine>,
    pub amount: Money,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Subscription;

async fn subscribe(state: &AppState, subject: &str) -> Result<async_nats::Subscriber, ApiError> {
    state
        .nats
        .subscribe(state.bus.subject(subject))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("subscribing to {subject}: {e}")))
}

#[Subscription]
impl Subscription {
    /// Each new notification of the caller.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn notification_received(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Notification>> {
        let (state, me) = acting(ctx)?;
        let sub = subscribe(state, &format!("evt.notification.created.{}", me.id)).await?;
        Ok(sub.filter_map(|m| async move {
            let env: Envelope<NotificationCreated> = serde_json::from_slice(&m.payload).ok()?;
            Some(Notification {
                id: env.data.notification_id,
                kind: env.data.kind.into(),
                title: env.data.title,
                body: env.data.body,
                order_id: env.data.order_id,
                created_at: env.occurred_at,
                read: false,
            })
        }))
    }

    /// One of the caller's orders (admins: any order): first as it is now (`event: "current"`),
    /// then once per saga event about it.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the order to follow.")] order_id: Uuid,
    ) -> async_graphql::Result<impl Stream<Item = OrderUpdate>> {
        let (state, me) = acting(ctx)?;
        // Subscribe first, so nothing is missed while the order is checked.
        let sub = subscribe(state, &format!("evt.*.*.{order_id}")).await?;
        // Right after `placeOrder` the participant may not have stored the order yet.
        let mut found = None;
        for _ in 0..20 {
            found = crate::ordering::find_order(state, order_id).await?;
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let current = match found {
            Some(o) if o.account_id == me.id || me.role == Role::Admin => o,
            _ => return Err(ApiError::NotFound("order").into()),
        };
        // First the order as it is now (event `current`), then every event after it.
        let first = OrderUpdate {
            event: "current".to_owned(),
            at: current.updated_at,
            order: Order {
                id: order_id,
                row: None,
            },
        };
        let events = sub.filter_map(move |m| async move {
            let env: Envelope<serde_json::Value> = serde_json::from_slice(&m.payload).ok()?;
            Some(OrderUpdate {
                event: env.kind,
                at: env.occurred_at,
                order: Order {
                    id: order_id,
                    row: None,
                },
            })
        });
        Ok(futures::stream::once(async move { first }).chain(events))
    }

    /// Publishers: the live side of `pendingShipments`: one update each time an order of
    /// theirs starts or stops waiting for shipment (refetch `pendingShipments` on it).
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn shipments_updated(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ShipmentUpdate>> {
        let (state, me) = acting(ctx)?;
        let me = me.id;
        let state = state.clone();
        let sub = subscribe(&state, "evt.fulfillment.*.*").await?;
        Ok(sub.filter_map(move |m| {
            let state = state.clone();
            async move {
                let env: Envelope<serde_json::Value> = serde_json::from_slice(&m.payload).ok()?;
                if !matches!(
                    env.kind.as_str(),
                    "fulfillment.ready_to_ship"
                        | "fulfillment.shipment_dispatched"
                        | "fulfillment.shipment_cancelled"
                ) {
                    return None;
                }
                let order: Uuid = env.data["order_id"].as_str()?.parse().ok()?;
                // Only orders with lines of this publisher.
                let lines = crate::fulfillment::publisher_lines(&state, order, me)
                    .await
                    .ok()?;
                (!lines.is_empty()).then_some(ShipmentUpdate {
                    event: env.kind,
                    order_id: order,
                    at: env.occurred_at,
                })
            }
        }))
    }

    /// Publishers: each completed sale of their products.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn sales_feed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Sale>> {
        let (state, me) = acting(ctx)?;
        let me = me.id;
        let sub = subscribe(state, "evt.ordering.order_completed.*").await?;
        Ok(sub.filter_map(move |m| async move {
            let env: Envelope<OrderCompleted> = serde_json::from_slice(&m.payload).ok()?;
            let currency = env.data.currency.as_str().to_owned();
            let mine: Vec<domain::ordering::OrderLine> = env
                .data
                .lines
                .into_iter()
                .filter(|l| l.publisher_id == me)
                .collect();
            if mine.is_empty() {
                return None;
            }
            let amount = domain::ordering::total(&mine).unwrap_or(i64::MAX);
            Some(Sale {
                order_id: env.data.order_id,
                lines: mine
                    .into_iter()
                    .map(|l| crate::graphql::ordering::line(l, &currency))
                    .collect::<Result<_, _>>()
                    .inspect_err(|e| tracing::error!(error = %e, "a sale is not pushed"))
                    .ok()?,
                amount: Money::new(amount, &currency),
                at: env.occurred_at,
            })
        }))
    }
}
