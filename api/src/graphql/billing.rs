//! Billing in GraphQL: `wallet`, `topUpWallet`.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::billing as service;
use crate::graphql::catalog::types::Money;
use crate::graphql::error::stored;
use crate::graphql::guard::{RoleGuard, acting, client_addr};
use crate::graphql::paging;
use crate::infra::error::ApiError;
use crate::infra::state::AppState;

/// The caller's wallet. It holds one currency: its region's (`setBillingCountry`), or, while it
/// holds money, the currency of that money.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Wallet {
    pub balance: Money,
    pub currency: String,
    /// Number of ledger entries so far (the balance's version).
    pub version: i64,
    #[graphql(skip)]
    pub account: Uuid,
}

/// What moved money in or out of a wallet.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::billing::EntryKind")]
pub enum LedgerEntryKind {
    /// Money in from a top-up (`reference` is the top-up).
    Credit,
    /// Money out to pay an order (`reference` is the order).
    Debit,
    /// Money back for an order that was cancelled or refunded (`reference` is the order).
    Refund,
}

/// Where a top-up is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::billing::TopUpStatus")]
pub enum TopUpStatus {
    /// Requested; the payment provider has not answered yet.
    Pending,
    /// The money is in the wallet.
    Credited,
    /// The payment was refused (`reason` says why); nothing was charged.
    Declined,
}

/// One ledger entry of a wallet.
#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub kind: LedgerEntryKind,
    /// The order or top-up.
    pub reference: Uuid,
    /// Signed: negative for a debit.
    pub amount: Money,
    pub balance_after: Money,
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl Wallet {
    /// Ledger entries, newest first.
    async fn entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, LedgerEntry>> {
        let state = ctx.data::<AppState>()?;
        let first = paging::page_size(first)?;
        let before = paging::decode::<i64>("entry", after.as_deref())?;
        let rows = service::entries(state, self.account, before, first + 1).await?;
        Ok(paging::try_page(
            rows,
            first,
            after.is_some(),
            |e| paging::encode("entry", &e.version.to_string()),
            |e| {
                Ok(LedgerEntry {
                    id: e.id,
                    kind: stored(
                        "ledger entry kind",
                        &e.kind,
                        domain::billing::EntryKind::parse,
                    )?
                    .into(),
                    reference: e.reference,
                    amount: Money::new(e.amount_minor, &e.currency),
                    balance_after: Money::new(e.balance_after, &e.currency),
                    created_at: e.created_at,
                })
            },
        )?)
    }
}

/// A requested top-up: `PENDING` until billing settles it, then `CREDITED` or `DECLINED`.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct TopUp {
    pub id: Uuid,
    pub amount: Money,
}

#[ComplexObject]
impl TopUp {
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<TopUpStatus> {
        let state = ctx.data::<AppState>()?;
        let Some((_, row)) = service::find_top_up(state, self.id).await? else {
            return Ok(TopUpStatus::Pending);
        };
        Ok(stored(
            "top-up status",
            &row.status,
            domain::billing::TopUpStatus::parse,
        )?
        .into())
    }

    /// Why it was declined, e.g. `CARD_DECLINED`.
    async fn reason(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let state = ctx.data::<AppState>()?;
        Ok(service::find_top_up(state, self.id)
            .await?
            .and_then(|(_, r)| r.reason))
    }
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// The caller's wallet.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn wallet(&self, ctx: &Context<'_>) -> async_graphql::Result<Wallet> {
        let (state, me) = acting(ctx)?;
        let (b, (region, held)) = futures::future::try_join(
            service::balance(state, me.id),
            crate::identity::region_and_wallet(state, me.id),
        )
        .await?;
        let currency = match held {
            Some((c, balance)) if balance != 0 => c,
            _ => region.currency,
        }
        .as_str()
        .to_owned();
        Ok(Wallet {
            balance: Money::new(b.minor, &currency),
            currency,
            version: b.version,
            account: me.id,
        })
    }

    /// A top-up of the caller.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn top_up(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the top-up, as `topUpWallet` answered it.")] id: Uuid,
    ) -> async_graphql::Result<TopUp> {
        let (state, me) = acting(ctx)?;
        let (account, row) = service::find_top_up(state, id)
            .await?
            .ok_or(ApiError::NotFound("top-up"))?;
        if account != me.id {
            return Err(ApiError::NotFound("top-up").into());
        }
        Ok(TopUp {
            id,
            amount: Money::new(row.amount_minor, &row.currency),
        })
    }
}

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Adds money to the caller's wallet from a payment method. In the sandbox the payment
    /// method is a test card number: `4242424242424242` approves, `4000000000000002` declines,
    /// `4000000000000119` fails twice with a processing error, then approves. `amount` is in
    /// minor units of the wallet's currency (cents; yen have none): the buyer's region's.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn top_up_wallet(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            name = "amount",
            desc = "How much to add, in minor units of the wallet's currency (the `currency` of `wallet`); more than 0."
        )]
        amount_minor: i64,
        #[graphql(
            desc = "The payment method to charge; in the sandbox a test card number (see above)."
        )]
        payment_method: String,
        #[graphql(
            desc = "Makes a retry safe: the same key answers the same top-up and charges once. Letters, digits and `-_.:`, at most 100."
        )]
        idempotency_key: String,
    ) -> async_graphql::Result<TopUp> {
        let (state, me) = acting(ctx)?;
        let rates = state.config.rates;
        crate::infra::ratelimit::hit_account_and_address(
            state,
            "topup",
            me.id,
            &client_addr(ctx),
            rates.topup_per_account,
            rates.topup_per_ip,
            crate::infra::ratelimit::WithoutRedis::Refuse,
        )
        .await?;
        let (id, currency) =
            service::top_up(state, me, amount_minor, &payment_method, &idempotency_key).await?;
        Ok(TopUp {
            id,
            amount: Money::new(amount_minor, currency.as_str()),
        })
    }
}
