//! Ordering in GraphQL: `placeOrder`, `order(id)`, `myOrders`.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::identity::Role;
use uuid::Uuid;

use crate::graphql::catalog::types::{EditionKindGql, Money};
use crate::graphql::error::stored;
use crate::graphql::guard::{RoleGuard, acting};
use crate::graphql::loaders::{loader_error, loaders, page_nodes};
use crate::graphql::paging;
use crate::graphql::refund::RefundRequest;
use crate::graphql::shipment::Shipment;
use crate::infra::error::ApiError;
use crate::infra::state::AppState;
use crate::ordering::{self as service, LineInput, OrderRow};

/// Where the physical lines of an order go. Each field is checked on its own (a refusal names
/// it in `extensions.field`).
#[derive(InputObject, Clone, Debug)]
pub struct ShippingAddressInput {
    /// The recipient, 1–100 characters.
    pub name: String,
    /// ISO 3166-1 alpha-2 code, e.g. `DE`.
    pub country: String,
    /// State, province or county (may be empty).
    #[graphql(default)]
    pub region: String,
    /// The city or town.
    pub city: String,
    /// The postal code, as the country writes it.
    pub postal_code: String,
    /// Street and number, 1–200 characters.
    pub street: String,
    /// International format, e.g. `+49 30 1234567`.
    pub phone: String,
}

impl ShippingAddressInput {
    fn parse(&self) -> Result<domain::fulfillment::ShippingAddress, ApiError> {
        domain::fulfillment::ShippingAddress::parse(
            &self.name,
            &self.country,
            &self.region,
            &self.city,
            &self.postal_code,
            &self.street,
            &self.phone,
        )
        .map_err(|e| ApiError::BadInput {
            field: e.field,
            message: e.message,
        })
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct OrderLineInput {
    /// The id of the edition to buy.
    pub edition_id: Uuid,
    /// 1 for a digital edition.
    pub quantity: i32,
}

/// Where an order is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::ordering::OrderStatus")]
pub enum OrderStatus {
    /// Just placed: the payment (and, for boxed copies, the stock) is being checked.
    Placed,
    /// Paid; the items are being added to the buyer's library.
    Paid,
    /// Paid and the digital items delivered; the boxed copies wait for the publisher to ship
    /// them.
    AwaitingShipment,
    /// Everything delivered. Final, though a refund may still follow.
    Completed,
    /// Ended without a sale (`cancelReason` says why); nothing is charged. Final.
    Cancelled,
    /// Completed, then refunded: the items left the library, the payment is back in the
    /// wallet. Final.
    Refunded,
}

/// One step an order took (`TimelineStep.step`).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::ordering::TimelineStep")]
pub enum OrderStep {
    /// The order was created.
    Placed,
    /// The boxed copies were reserved from the stock.
    StockReserved,
    /// A boxed copy was out of stock; nothing was reserved or charged.
    StockUnavailable,
    /// The wallet was charged.
    PaymentCaptured,
    /// The payment did not go through (`detail` says why).
    PaymentDeclined,
    /// The digital items are in the buyer's library. Recorded for every paid order, also one
    /// without digital lines (then nothing was added).
    ItemsGranted,
    /// Paid; the boxed copies are held for the publisher to ship.
    ReadyToShip,
    /// The order waits for the publisher to ship it.
    AwaitingShipment,
    /// The parcel left (`detail`: carrier and tracking number).
    Shipped,
    /// The boxed copies are in the buyer's library.
    PhysicalItemsGranted,
    /// The payment went back to the wallet (cancelled before dispatch).
    PaymentRefunded,
    /// Everything delivered.
    Completed,
    /// The order ended without a sale (`detail` says why).
    Cancelled,
    /// The buyer asked for a refund (`detail`: the reason given).
    RefundRequested,
    /// The refund was approved, by the policy or an admin (`detail`: why).
    RefundApproved,
    /// An admin denied the refund (`detail`: the admin's note).
    RefundDenied,
    /// Refunded: the items left the library, the payment is back in the wallet.
    Refunded,
}

/// An order line with the price and names as they were when the order was placed.
#[derive(SimpleObject, Clone, Debug)]
pub struct OrderLine {
    pub edition_id: Uuid,
    pub product_id: Uuid,
    pub product_title: String,
    pub edition_name: String,
    pub kind: EditionKindGql,
    pub quantity: i32,
    /// What one copy cost, tax included.
    pub unit_price: Money,
    /// `unitPrice × quantity`: what the line cost, tax included.
    pub subtotal: Money,
    /// The tax in the line.
    pub tax: Money,
    /// The line without its tax.
    pub net: Money,
    /// The tax rate applied, in parts per million (190000 is 19 %); 0 where none was charged.
    pub tax_rate_ppm: i64,
    /// The rate as people write it, e.g. `19 %`.
    pub tax_rate: String,
    /// The bundle the line was bought in (its price is its share of the bundle's); `null`
    /// for a line bought on its own.
    pub bundle_id: Option<Uuid>,
}

/// The line as the schema shows it; an edition kind the domain does not know is an internal
/// error.
pub(crate) fn line(l: domain::ordering::OrderLine, currency: &str) -> Result<OrderLine, ApiError> {
    Ok(OrderLine {
        kind: stored("edition kind", &l.kind, domain::catalog::EditionKind::parse)?.into(),
        edition_id: l.edition_id,
        product_id: l.product_id,
        subtotal: Money::new(l.subtotal().unwrap_or(i64::MAX), currency),
        unit_price: Money::new(l.unit_price_minor, currency),
        tax: Money::new(l.tax().unwrap_or(0), currency),
        net: Money::new(l.net().unwrap_or(0), currency),
        tax_rate_ppm: l.tax_rate_ppm,
        tax_rate: domain::tax::percent_text(l.tax_rate_ppm),
        bundle_id: l.bundle_id,
        product_title: l.product_title,
        edition_name: l.edition_name,
        quantity: l.quantity,
    })
}

/// Who sells on a receipt: the store, as merchant of record, on behalf of each line's publisher.
const RECEIPT_SELLER: &str = "Store (merchant of record)";

/// A receipt of an order.
#[derive(SimpleObject, Clone, Debug)]
pub struct Receipt {
    /// The order's number as people read it (the first eight characters of its id).
    pub number: String,
    pub issued_at: DateTime<Utc>,
    /// Who sold: the store, on behalf of the publishers named on the lines.
    pub seller: String,
    /// Where the order was taxed (ISO 3166-1 alpha-2); `null` for orders placed before taxes
    /// were recorded.
    pub buyer_country: Option<String>,
    /// The country's English name.
    pub buyer_country_name: Option<String>,
    /// The US state, where the sales tax is the state's.
    pub buyer_state: Option<String>,
    /// Whether the prices had the tax in them (the EU, the UK, Norway, Switzerland) or it was
    /// added at checkout (the US).
    pub prices_include_tax: bool,
    /// Where the rate comes from, and its date.
    pub tax_source: Option<String>,
    pub lines: Vec<ReceiptLine>,
    /// The tax by rate.
    pub taxes: Vec<ReceiptTax>,
    pub net: Money,
    pub tax: Money,
    /// What was paid.
    pub total: Money,
}

/// A line of a receipt.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReceiptLine {
    pub product_title: String,
    pub edition_name: String,
    /// The publisher the store sold it for.
    pub publisher: String,
    pub quantity: i32,
    /// One copy, tax included.
    pub unit_price: Money,
    pub net: Money,
    pub tax: Money,
    pub total: Money,
    /// E.g. `19 %`.
    pub tax_rate: String,
}

/// The tax of the lines taxed at one rate.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReceiptTax {
    /// E.g. `19 %`.
    pub rate: String,
    pub net: Money,
    pub tax: Money,
}

/// One step of the saga as the order saw it.
#[derive(SimpleObject, Clone, Debug)]
pub struct TimelineStep {
    pub step: OrderStep,
    /// The participant that took the step.
    pub participant: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// An order. Right after `placeOrder` the ordering participant may not have stored it yet:
/// its status is then `PLACED`.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Order {
    pub id: Uuid,
    #[graphql(skip)]
    pub row: Option<OrderRow>,
}

impl Order {
    async fn current(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<OrderRow>> {
        if let Some(r) = &self.row {
            return Ok(Some(r.clone()));
        }
        let state = ctx.data::<AppState>()?;
        Ok(service::find_order(state, self.id).await?)
    }
}

#[ComplexObject]
impl Order {
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<OrderStatus> {
        let Some(row) = self.current(ctx).await? else {
            return Ok(OrderStatus::Placed);
        };
        Ok(stored(
            "order status",
            &row.status,
            domain::ordering::OrderStatus::parse,
        )?
        .into())
    }

    /// Why a cancelled order ended, e.g. `INSUFFICIENT_FUNDS`.
    async fn cancel_reason(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.current(ctx).await?.and_then(|r| r.cancel_reason))
    }

    async fn total(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        Ok(self
            .current(ctx)
            .await?
            .map(|r| Money::new(r.total_minor, &r.currency)))
    }

    async fn created_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.current(ctx).await?.map(|r| r.created_at))
    }

    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OrderLine>> {
        let state = ctx.data::<AppState>()?;
        let currency = self
            .current(ctx)
            .await?
            .map_or_else(|| state.config.currency.as_str().to_owned(), |r| r.currency);
        Ok(loaders(ctx)?
            .lines
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(|l| line(l, &currency))
            .collect::<Result<_, _>>()?)
    }

    /// The receipt: who sold what to whom, where it was taxed, at which rates, and the totals
    /// (net, tax, gross). `null` until the order is stored.
    async fn receipt(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Receipt>> {
        let Some(row) = self.current(ctx).await? else {
            return Ok(None);
        };
        let l = loaders(ctx)?;
        let lines = l
            .lines
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let mut receipt_lines = Vec::with_capacity(lines.len());
        let mut rates: Vec<ReceiptTax> = Vec::new();
        let (mut net, mut tax, mut gross) = (0_i64, 0_i64, 0_i64);
        let names = l
            .names
            .load_many(lines.iter().map(|line| line.publisher_id))
            .await
            .map_err(loader_error)?;
        for line in lines {
            let publisher = names.get(&line.publisher_id).cloned().unwrap_or_default();
            let (line_net, line_tax, line_gross) = (
                line.net().unwrap_or(0),
                line.tax().unwrap_or(0),
                line.subtotal().unwrap_or(0),
            );
            net += line_net;
            tax += line_tax;
            gross += line_gross;
            let rate = domain::tax::percent_text(line.tax_rate_ppm);
            match rates.iter_mut().find(|r| r.rate == rate) {
                Some(r) => {
                    r.net = Money::new(r.net.amount_minor + line_net, &row.currency);
                    r.tax = Money::new(r.tax.amount_minor + line_tax, &row.currency);
                }
                None => rates.push(ReceiptTax {
                    rate: rate.clone(),
                    net: Money::new(line_net, &row.currency),
                    tax: Money::new(line_tax, &row.currency),
                }),
            }
            receipt_lines.push(ReceiptLine {
                product_title: line.product_title.clone(),
                edition_name: line.edition_name.clone(),
                publisher,
                quantity: line.quantity,
                unit_price: Money::new(line.unit_price_minor, &row.currency),
                net: Money::new(line_net, &row.currency),
                tax: Money::new(line_tax, &row.currency),
                total: Money::new(line_gross, &row.currency),
                tax_rate: rate,
            });
        }
        let place = row.tax_country.clone().map(|country| domain::tax::Place {
            country,
            state: row.tax_state.clone(),
        });
        let rate = place.as_ref().and_then(domain::tax::Place::rate);
        Ok(Some(Receipt {
            number: row.id.simple().to_string()[..8].to_uppercase(),
            issued_at: row.created_at,
            seller: RECEIPT_SELLER.to_owned(),
            buyer_country: place.as_ref().map(|p| p.country.clone()),
            buyer_country_name: place
                .as_ref()
                .and_then(|p| domain::country::find(&p.country))
                .map(|c| c.name.to_owned()),
            buyer_state: place.and_then(|p| p.state),
            prices_include_tax: rate.is_none_or(|r| r.inclusive),
            tax_source: rate.map(|r| format!("{}, rates as of {}", r.source, r.as_of)),
            lines: receipt_lines,
            taxes: rates,
            net: Money::new(net, &row.currency),
            tax: Money::new(tax, &row.currency),
            total: Money::new(gross, &row.currency),
        }))
    }

    /// The shipment of the physical lines (address, carrier, tracking number); `null` for a
    /// digital order.
    async fn shipment(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Shipment>> {
        Ok(loaders(ctx)?
            .shipments
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .flatten()
            .map(Shipment::try_from)
            .transpose()?)
    }

    /// The order's refund request, if the buyer asked for one.
    async fn refund_request(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<RefundRequest>> {
        Ok(loaders(ctx)?
            .refunds
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .flatten()
            .map(Into::into))
    }

    /// The account that placed the order.
    async fn account_id(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Uuid>> {
        Ok(self.current(ctx).await?.map(|r| r.account_id))
    }

    /// Admins: the e-mail of the account that placed the order (`null` until the order is
    /// stored). A page of orders reads the e-mails of all its buyers in one statement.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn buyer_email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let Some(row) = self.current(ctx).await? else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .emails
            .load_one(row.account_id)
            .await
            .map_err(loader_error)?
            .flatten())
    }

    /// The saga's steps, oldest first.
    async fn timeline(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TimelineStep>> {
        Ok(loaders(ctx)?
            .timelines
            .load_one(self.id)
            .await
            .map_err(loader_error)?
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                Ok(TimelineStep {
                    step: stored(
                        "timeline step",
                        &s.step,
                        domain::ordering::TimelineStep::parse,
                    )?
                    .into(),
                    participant: s.participant,
                    detail: s.detail,
                    at: s.at,
                })
            })
            .collect::<Result<_, ApiError>>()?)
    }
}

/// A page of orders, with what its selection asks for loaded for the whole page at once.
async fn order_page(
    ctx: &Context<'_>,
    rows: Vec<OrderRow>,
    first: u64,
    after: bool,
) -> async_graphql::Result<Connection<String, Order>> {
    let shown = usize::try_from(first).unwrap_or(usize::MAX);
    let ids: Vec<Uuid> = rows.iter().take(shown).map(|r| r.id).collect();
    let buyers: Vec<Uuid> = rows.iter().take(shown).map(|r| r.account_id).collect();
    for node in page_nodes(ctx) {
        loaders(ctx)?
            .prime_orders(node, &ids, &buyers)
            .await
            .map_err(loader_error)?;
    }
    Ok(paging::page(
        rows,
        first,
        after,
        |r| paging::encode("order", &r.id.to_string()),
        |r| Order {
            id: r.id,
            row: Some(r),
        },
    ))
}

#[derive(Default)]
pub struct OrderingQuery;

#[Object]
impl OrderingQuery {
    /// An order of the caller (admins see every order).
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the order.")] id: Uuid,
    ) -> async_graphql::Result<Order> {
        let (state, me) = acting(ctx)?;
        let row = service::find_order(state, id)
            .await?
            .filter(|r| r.account_id == me.id || me.role == Role::Admin)
            .ok_or(ApiError::NotFound("order"))?;
        Ok(Order {
            id: row.id,
            row: Some(row),
        })
    }

    /// The caller's orders, newest first.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Order>> {
        let (state, me) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("order", after.as_deref())?;
        let rows = service::my_orders(state, me.id, cursor, first + 1).await?;
        order_page(ctx, rows, first, after.is_some()).await
    }
}

#[derive(Default)]
pub struct OrderingAdminQuery;

#[Object]
impl OrderingAdminQuery {
    /// Every order, newest first (admins), optionally of one status or one buyer.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only orders in this status (optional).")] status: Option<OrderStatus>,
        #[graphql(desc = "Only the orders of this buyer (optional).")] account_id: Option<Uuid>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Order>> {
        let (state, _) = acting(ctx)?;
        let status = status.map(|s| domain::ordering::OrderStatus::from(s).as_str());
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("order", after.as_deref())?;
        let rows = service::all_orders(state, status, account_id, cursor, first + 1).await?;
        order_page(ctx, rows, first, after.is_some()).await
    }
}

#[derive(Default)]
pub struct OrderingMutation;

#[Object]
impl OrderingMutation {
    /// Places an order, paid from the wallet. The answer comes at once (`PLACED`); the saga
    /// completes or cancels it moments later (see `orderUpdated`). An order with physical
    /// editions needs a `shippingAddress`, reserves the copies before payment (`OUT_OF_STOCK`
    /// when the stock is known to be short) and waits in `AWAITING_SHIPMENT` for the publisher
    /// to ship. The same `idempotencyKey` with the same input answers the same order; with
    /// other input it is a `CONFLICT`.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "What to buy: each line names an edition and how many copies. Leave it out (or empty) to buy a bundle with `bundleId`.",
            default
        )]
        lines: Vec<OrderLineInput>,
        #[graphql(
            desc = "A bundle to buy instead of `lines` (not both): the order's lines are the bundle's parts the buyer does not own yet, each at its share of the bundle's price (`Bundle.priceForYou`)."
        )]
        bundle_id: Option<Uuid>,
        #[graphql(desc = "Where to ship the physical editions; required when the order has any.")]
        shipping_address: Option<ShippingAddressInput>,
        #[graphql(
            desc = "Makes a retry safe: the same key with the same input answers the same order, with other input it is a `CONFLICT`. Letters, digits and `-_.:`, at most 100."
        )]
        idempotency_key: String,
    ) -> async_graphql::Result<Order> {
        let (state, me) = acting(ctx)?;
        let address = shipping_address
            .as_ref()
            .map(ShippingAddressInput::parse)
            .transpose()?;
        let lines: Vec<LineInput> = lines
            .into_iter()
            .map(|l| LineInput {
                edition_id: l.edition_id,
                quantity: l.quantity,
            })
            .collect();
        let basket = match bundle_id {
            Some(_) if !lines.is_empty() => {
                return Err(ApiError::BadInput {
                    field: "bundleId",
                    message: "give lines or a bundle, not both".into(),
                }
                .into());
            }
            Some(b) => service::Basket::Bundle(b),
            None => service::Basket::Lines(&lines),
        };
        let id = service::place_order(state, me, basket, address, &idempotency_key).await?;
        Ok(Order { id, row: None })
    }
}
