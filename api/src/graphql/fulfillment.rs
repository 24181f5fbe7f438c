//! Fulfillment in GraphQL: a publisher's `pendingShipments` and `shipOrder`; an order's
//! `shipment` (tracking) lives on `Order`.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::fulfillment::{self as service, ShipmentRow};
use crate::graphql::error::stored;
use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::ordering::{Order, OrderLine, line};
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

/// Where the physical lines of an order go.
#[derive(SimpleObject, Clone, Debug)]
pub struct ShippingAddress {
    pub name: String,
    pub country: String,
    pub region: String,
    pub city: String,
    pub postal_code: String,
    pub street: String,
    pub phone: String,
}

impl From<domain::fulfillment::ShippingAddress> for ShippingAddress {
    fn from(a: domain::fulfillment::ShippingAddress) -> ShippingAddress {
        ShippingAddress {
            name: a.name,
            country: a.country,
            region: a.region,
            city: a.city,
            postal_code: a.postal_code,
            street: a.street,
            phone: a.phone,
        }
    }
}

/// Where the shipment of an order's boxed copies is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::fulfillment::ShipmentStatus")]
pub enum ShipmentStatus {
    /// The copies are reserved from the stock; the payment is pending.
    Reserved,
    /// Paid; waiting for the publisher to ship the parcel.
    AwaitingShipment,
    /// The parcel left (`carrier` and `trackingNumber` say where it is).
    Shipped,
    /// The reservation was given back (payment declined, order cancelled or out of stock);
    /// nothing will be shipped.
    Released,
}

/// The shipment of an order's physical lines.
#[derive(SimpleObject, Clone, Debug)]
pub struct Shipment {
    pub status: ShipmentStatus,
    pub address: ShippingAddress,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
}

impl TryFrom<ShipmentRow> for Shipment {
    type Error = ApiError;

    fn try_from(s: ShipmentRow) -> Result<Shipment, ApiError> {
        Ok(Shipment {
            status: stored(
                "shipment status",
                &s.status,
                domain::fulfillment::ShipmentStatus::parse,
            )?
            .into(),
            address: s.address.into(),
            carrier: s.carrier,
            tracking_number: s.tracking_number,
            paid_at: s.paid_at,
            shipped_at: s.shipped_at,
        })
    }
}

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
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<PendingShipment>> {
        let (state, me) = acting(ctx)?;
        let first = crate::graphql::paging::page_size(first)?;
        let rows = service::pending_shipments(state, me.id, first).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let currency = state.config.currency.as_str().to_owned();
            let lines = service::publisher_lines(state, r.order_id, me.id)
                .await?
                .into_iter()
                .map(|l| line(l, &currency))
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
        order_id: Uuid,
        carrier: String,
        tracking_number: String,
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
        order_id: Uuid,
    ) -> async_graphql::Result<Order> {
        let (state, me) = acting(ctx)?;
        service::cancel_order(state, me, order_id).await?;
        Ok(Order {
            id: order_id,
            row: None,
        })
    }
}

/// The shipment of an order, for `Order.shipment`.
pub async fn of_order(state: &AppState, order: Uuid) -> async_graphql::Result<Option<Shipment>> {
    Ok(service::shipment(state, order)
        .await?
        .map(Shipment::try_from)
        .transpose()?)
}
