//! Discounts in GraphQL: publishers schedule and end them, everyone sees the running one and
//! the price it gives (`Edition.discount`, `Edition.currentPrice`), publishers and admins every
//! one of an edition (`Edition.discounts`).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::catalog::entity::discount;
use uuid::Uuid;

use crate::catalog::discounts::{self, DiscountStatus};
use crate::graphql::guard::{RoleGuard, acting};

/// Where a discount stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "DiscountStatus")]
pub enum DiscountStatusGql {
    /// Its window has not begun.
    Scheduled,
    /// On now: orders placed now pay the discounted price.
    Running,
    /// Its window is over (or it was ended early).
    Ended,
    /// Ended before it began.
    Cancelled,
}

impl From<DiscountStatus> for DiscountStatusGql {
    fn from(s: DiscountStatus) -> Self {
        match s {
            DiscountStatus::Scheduled => DiscountStatusGql::Scheduled,
            DiscountStatus::Running => DiscountStatusGql::Running,
            DiscountStatus::Ended => DiscountStatusGql::Ended,
            DiscountStatus::Cancelled => DiscountStatusGql::Cancelled,
        }
    }
}

/// A timed percentage off one edition.
#[derive(SimpleObject, Clone, Debug)]
pub struct Discount {
    pub id: Uuid,
    pub edition_id: Uuid,
    pub product_id: Uuid,
    /// Percent off the edition's price, 1 to 95.
    pub percent: i32,
    pub starts_at: DateTime<Utc>,
    /// When it ends (or ended: an early end moves it to that instant).
    pub ends_at: DateTime<Utc>,
    pub status: DiscountStatusGql,
    /// Why it was ended early, when whoever ended it said.
    pub ended_early_reason: Option<String>,
}

impl Discount {
    pub fn at(d: discount::Model, now: DateTime<Utc>) -> Discount {
        Discount {
            status: discounts::status_at(&d, now).into(),
            id: d.id,
            edition_id: d.edition_id,
            product_id: d.product_id,
            percent: i32::from(d.percent),
            starts_at: d.starts_at,
            ends_at: d.ends_at,
            ended_early_reason: d.ended_early_reason,
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct ScheduleDiscountInput {
    /// The caller's edition to discount.
    pub edition_id: Uuid,
    /// Percent off, 1 to 95.
    pub percent: i32,
    /// When it begins; left out or in the past, it begins now. At most 366 days ahead.
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends: after it begins, at most 92 days later.
    pub ends_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct DiscountMutation;

#[Object]
impl DiscountMutation {
    /// Publisher: schedules a discount on their edition. At most one discount of an edition
    /// runs at any time: a window overlapping another's is `CONFLICT`. Orders placed inside the
    /// window pay the discounted price; the storefront lists it within a second of its start
    /// (at once when it starts now), and those who wished for the product are told.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn schedule_discount(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The edition, the percentage and the window.")]
        input: ScheduleDiscountInput,
    ) -> async_graphql::Result<Discount> {
        let (state, me) = acting(ctx)?;
        let d = discounts::schedule(
            state,
            me,
            input.edition_id,
            input.percent,
            input.starts_at,
            input.ends_at,
        )
        .await?;
        Ok(Discount::at(d, Utc::now()))
    }

    /// The discount's publisher or an admin: ends it now (one not begun is cancelled). Orders
    /// placed from now on pay the full price. An admin's reason goes to the audit log.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn end_discount(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The discount to end.")] id: Uuid,
        #[graphql(desc = "Why (optional, at most 500 characters); the publisher sees it.")]
        reason: Option<String>,
    ) -> async_graphql::Result<Discount> {
        let (state, me) = acting(ctx)?;
        let d = discounts::end(state, me, id, reason).await?;
        Ok(Discount::at(d, Utc::now()))
    }
}
