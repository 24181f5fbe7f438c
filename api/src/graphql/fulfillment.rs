//! Fulfillment in GraphQL: a publisher's `pendingShipments` and `shipOrder`, a buyer's
//! `cancelOrder`; an order's `shipment` (tracking, see [`crate::graphql::shipment`]) lives on
//! `Order`.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::fulfillment as service;
use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::loaders::{loader_error, loaders};
use crate::graphql::ordering::{Order, OrderLine, line};
use crate::graphql::shipment::ShippingAddress;

/// An order a publisher has to ship: the address and the lines that are theirs.
#[derive(SimpleObject, Clone, Debug)]
pub struct PendingShipment {
    pub order_id: Uuid,
    pub paid_at: Option<DateTime<Utc>>,
    pub address: ShippingAddress,
    pub lines: Vec<OrderLine>,
}

#[derive(Default)]
pub struct FulfillmentQuery;

#[Object]
impl FulfillmentQuery {
    /// Publishers: their orders awaiting shipment, oldest payment first.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn pending_shipments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, desc = "How many orders to return, at most 100.")] first: i32,
    ) -> async_graphql::Result<Vec<PendingShipment>> {
        let (state, me) = acting(ctx)?;
        let first = crate::graphql::paging::page_size(first)?;
        let rows = service::pending_shipments(state, me.id, first).await?;
        let mut lines = loaders(ctx)?
            .lines
            .load_many(rows.iter().map(|r| r.order_id))
            .await
            .map_err(loader_error)?;
        let currency = state.config.currency.as_str();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // The physical lines that are the caller's (the parcel is theirs to ship).
            let lines = lines
                .remove(&r.order_id)
                .unwrap_or_default()
                .into_iter()
                .filter(|l| service::ships(l, me.id))
                .map(|l| line(l, currency))
                .collect::<Result<_, _>>()?;
            out.push(PendingShipment {
                order_id: r.order_id,
                paid_at: r.paid_at,
                address: r.address.into(),
                lines,
            });
        }
        Ok(out)
    }
}

#[derive(Default)]
pub struct FulfillmentMutation;

#[Object]
impl FulfillmentMutation {
    /// Publishers: the parcel of an order of theirs left, with this carrier and tracking
    /// number. The physical lines then enter the buyer's library and the order completes.
    /// `CONFLICT` when the order no longer awaits shipment (e.g. the buyer cancelled first),
    /// `FORBIDDEN` for another publisher's order.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn ship_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of an order of the caller's products that awaits shipment.")]
        order_id: Uuid,
        #[graphql(
            desc = "The carrier that took the parcel, as the buyer should read it (e.g. `DHL`)."
        )]
        carrier: String,
        #[graphql(desc = "The carrier's tracking number of the parcel.")] tracking_number: String,
    ) -> async_graphql::Result<Order> {
        let (state, me) = acting(ctx)?;
        service::ship_order(state, me, order_id, &carrier, &tracking_number).await?;
        Ok(Order {
            id: order_id,
            row: None,
        })
    }

    /// Buyers: cancels an order of theirs that awaits shipment. The copies go back to the
    /// stock and their price back to the wallet (`PaymentRefunded`), and the order ends
    /// `CANCELLED` (`CANCELLED_BY_BUYER`) moments later. Its digital lines follow the refund
    /// policy: never downloaded and within the refund window, they leave the library and are
    /// refunded too; otherwise they stay in the library, paid. `CONFLICT` when the parcel
    /// already left (or the order is not awaiting shipment).
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the caller's order that awaits shipment.")] order_id: Uuid,
    ) -> async_graphql::Result<Order> {
        let (state, me) = acting(ctx)?;
        service::cancel_order(state, me, order_id).await?;
        Ok(Order {
            id: order_id,
            row: None,
        })
    }
}
