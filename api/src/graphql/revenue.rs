//! Publisher revenue in GraphQL: `publisherRevenue` (the dashboard's figures and chart).

use async_graphql::{Context, Object, SimpleObject};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::billing as service;
use crate::graphql::catalog::types::Money;
use crate::graphql::guard::{RoleGuard, acting, publisher_in_view};

/// A publisher's revenue on one day (UTC).
#[derive(SimpleObject, Clone, Debug)]
pub struct RevenueDay {
    pub day: NaiveDate,
    /// Sales minus refunds, before the platform fee.
    pub gross: Money,
    pub fee: Money,
    /// What the publisher earned that day (negative when refunds outweigh sales).
    pub net: Money,
    pub sales: i64,
    pub refunds: i64,
}

/// A publisher's revenue: what each completed sale earned after the platform fee, with
/// refunds reversed.
#[derive(SimpleObject, Clone, Debug)]
pub struct PublisherRevenue {
    pub publisher_id: Uuid,
    /// The currency of these figures.
    pub currency: String,
    /// Every currency the publisher has revenue in, the most sales first (ask for each with
    /// `currency`).
    pub currencies: Vec<String>,
    /// All time, refunds deducted.
    pub gross: Money,
    pub fee: Money,
    pub net: Money,
    /// Net revenue given back by refunds, all time.
    pub refunded: Money,
    pub sales: i64,
    pub refunds: i64,
    /// Every day of the period, oldest first (days without sales are zero).
    pub days: Vec<RevenueDay>,
}

#[derive(Default)]
pub struct RevenueQuery;

#[Object]
impl RevenueQuery {
    /// The caller's revenue over the last `days` days (1–366); admins pass `publisherId`.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn publisher_revenue(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default = 30,
            desc = "How many days back from today the figures cover, from 1 to 366."
        )]
        days: i32,
        #[graphql(
            desc = "Admins: the publisher whose revenue to show (publishers get their own)."
        )]
        publisher_id: Option<Uuid>,
        #[graphql(
            desc = "The currency of the figures (an ISO 4217 code the store sells in); the store's when left out."
        )]
        currency: Option<String>,
    ) -> async_graphql::Result<PublisherRevenue> {
        let (state, me) = acting(ctx)?;
        let publisher =
            publisher_in_view(me, publisher_id, "a publisher sees only their own revenue")?;
        let currency = match currency {
            Some(code) => crate::catalog::prices::requested(&code, "currency")?,
            None => state.config.currency,
        };
        let (r, currencies) =
            futures::future::try_join(service::revenue(state, publisher, days, currency), async {
                Ok(
                    domain::billing::entity::revenue_entry::currencies(&state.db, publisher)
                        .await?,
                )
            })
            .await?;
        let c = currency.as_str();
        Ok(PublisherRevenue {
            publisher_id: publisher,
            currency: c.to_owned(),
            currencies,
            gross: Money::new(r.gross_minor, c),
            fee: Money::new(r.fee_minor, c),
            net: Money::new(r.net_minor, c),
            refunded: Money::new(r.refunded_minor, c),
            sales: r.sales,
            refunds: r.refunds,
            days: r
                .days
                .into_iter()
                .map(|d| RevenueDay {
                    day: d.day,
                    gross: Money::new(d.gross_minor, c),
                    fee: Money::new(d.fee_minor, c),
                    net: Money::new(d.net_minor, c),
                    sales: d.sales,
                    refunds: d.refunds,
                })
                .collect(),
        })
    }
}
