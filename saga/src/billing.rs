//! Billing: debits wallets for placed orders and credits them for top-ups.
//!
//! The balance lives in `billing.wallet` and changes only in the transaction that appends the
//! matching ledger entry; `UNIQUE (kind, reference)` makes each debit or credit happen at most
//! once per order or top-up, and `CHECK (balance_minor >= 0)` keeps it from ever going
//! negative. After a commit the derived `balance:{account}` in Redis is refreshed (best effort;
//! the api rebuilds it from the wallet on a miss, and after an outage of Redis, during which
//! the refresh is skipped).

use anyhow::anyhow;
use domain::billing::entity::{ledger_entry, revenue_entry, top_up, wallet};
use domain::billing::{
    DeclineReason, EntryKind, PaymentCaptured, PaymentDeclined, PaymentRefunded, TopUp,
    TopUpDeclined, TopUpStatus, WalletCredited,
};
use domain::fulfillment::{PAYMENT_DEADLINE_PASSED, ShipmentCancelled, StockReserved};
use domain::messaging::Message;
use domain::money::Currency;
use domain::ordering::{OrderCompleted, OrderLine, OrderPlaced};
use domain::refund::EntitlementsRevoked;
use fred::interfaces::LuaInterface;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityName, EntityTrait, QueryFilter,
    QuerySelect,
};
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::{AfterCommit, Tx};
use crate::infra::provider::{Charge, ChargeOutcome};
use crate::infra::runtime::{Participant, Runtime};

const ME: Participant = Participant::Billing;

/// What billing reacts to, registered with the consume loop: its commands and these events.
pub const REGISTRATION: Registration = Registration {
    participant: ME,
    events: &[
        "ordering.order_placed",
        "ordering.order_completed",
        "fulfillment.stock_reserved",
        "fulfillment.shipment_cancelled",
        "library.entitlements_revoked",
    ],
    handle: |rt, msg| Box::pin(handle(rt, msg)),
};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    match msg.kind() {
        OrderPlaced::TYPE => {
            let ev: OrderPlaced = msg.data()?;
            if ev.needs_shipping {
                // Debited on `StockReserved`, once fulfillment holds the physical lines.
                return Tx::nothing(rt, ME, msg).await;
            }
            let order = Payable {
                order_id: ev.order_id,
                account_id: ev.account_id,
                lines: ev.lines,
                total_minor: ev.total_minor,
                currency: ev.currency,
            };
            debit(rt, msg, order).await
        }
        StockReserved::TYPE => {
            let ev: StockReserved = msg.data()?;
            let order = Payable {
                order_id: ev.order_id,
                account_id: ev.account_id,
                lines: ev.lines,
                total_minor: ev.total_minor,
                currency: ev.currency,
            };
            debit(rt, msg, order).await
        }
        TopUp::TYPE => top_up(rt, msg, msg.data()?).await,
        ShipmentCancelled::TYPE => {
            let ev: ShipmentCancelled = msg.data()?;
            let what = if ev.refund_digital {
                Refunded::Everything
            } else {
                Refunded::AllButDigital
            };
            refund(rt, msg, ev.order_id, ev.reason, None, what).await
        }
        EntitlementsRevoked::TYPE => {
            let ev: EntitlementsRevoked = msg.data()?;
            let reason = domain::billing::REFUND_APPROVED.to_owned();
            let request = Some(ev.request_id);
            refund(rt, msg, ev.order_id, reason, request, Refunded::Everything).await
        }
        OrderCompleted::TYPE => record_sale(rt, msg, msg.data()?).await,
        other => Err(Failure::Poison(format!(
            "billing does not handle `{other}`"
        ))),
    }
}

async fn ensure_wallet(tx: &Tx, account: Uuid, currency: Currency) -> Result<(), Failure> {
    wallet::Entity::insert(wallet::ActiveModel {
        account_id: Set(account),
        currency: Set(currency.as_str().to_owned()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(wallet::Column::AccountId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(tx.db())
    .await?;
    Ok(())
}

/// The wallet of `account`, made in `currency` when missing; with `turn`, an empty wallet in
/// another currency turns to this one (a wallet holds one currency, and only money pins it):
/// the currency the wallet holds after. The wallet's row stays locked until the transaction
/// ends, so no other top-up or refund turns it to another currency in between.
async fn wallet_in(
    tx: &Tx,
    account: Uuid,
    currency: Currency,
    turn: bool,
) -> Result<Currency, Failure> {
    ensure_wallet(tx, account, currency).await?;
    if turn {
        let switched = wallet::Entity::update_many()
            .col_expr(wallet::Column::Currency, Expr::value(currency.as_str()))
            .col_expr(wallet::Column::UpdatedAt, Expr::current_timestamp())
            .filter(wallet::Column::AccountId.eq(account))
            .filter(wallet::Column::BalanceMinor.eq(0))
            .filter(wallet::Column::Currency.ne(currency.as_str()))
            .exec(tx.db())
            .await?;
        if switched.rows_affected > 0 {
            return Ok(currency);
        }
    }
    let held = wallet::Entity::find_by_id(account)
        .lock_exclusive()
        .one(tx.db())
        .await?
        .ok_or_else(|| Failure::Transient(anyhow!("no wallet for {account}")))?;
    stored_currency(&held.currency)
}

fn stored_currency(code: &str) -> Result<Currency, Failure> {
    Currency::parse(code).map_err(|e| Failure::Poison(format!("stored currency: {e}")))
}

/// `amount` of `from` in `to` (the exchange table's rate): what a wallet in `to` is credited
/// for money that came in `from`, which happens only when the wallet changed its currency in
/// between (a refund of an order paid before, or a charge redelivered after a crash).
fn credited_in(amount: i64, from: Currency, to: Currency) -> Result<i64, Failure> {
    domain::money::convert(amount, from, to).ok_or_else(|| {
        Failure::Poison(format!(
            "no exchange rate between {} and {}",
            from.as_str(),
            to.as_str()
        ))
    })
}

/// Adds `amount` (signed) to the balance of `account`'s wallet and bumps its version, when
/// `allowed` (a condition on the wallet) holds: the wallet after, `None` when it does not.
async fn move_balance(
    db: &impl ConnectionTrait,
    account: Uuid,
    amount: i64,
    allowed: sea_orm::Condition,
) -> Result<Option<wallet::Model>, Failure> {
    let updated = wallet::Entity::update_many()
        .col_expr(
            wallet::Column::BalanceMinor,
            Expr::col(wallet::Column::BalanceMinor).add(amount),
        )
        .col_expr(
            wallet::Column::Version,
            Expr::col(wallet::Column::Version).add(1),
        )
        .col_expr(wallet::Column::UpdatedAt, Expr::current_timestamp())
        .filter(wallet::Column::AccountId.eq(account))
        .filter(allowed)
        .exec_with_returning(db)
        .await?;
    Ok(updated.into_iter().next())
}

/// Appends the ledger entry of a wallet that is now at `balance_after`, version `version`.
async fn append_entry(
    db: &impl ConnectionTrait,
    kind: EntryKind,
    reference: Uuid,
    amount: i64,
    after: &wallet::Model,
) -> Result<(), Failure> {
    ledger_entry::Entity::insert(ledger_entry::ActiveModel {
        id: Set(domain::id::new_id()),
        account_id: Set(after.account_id),
        kind: Set(kind.as_str().to_owned()),
        reference: Set(reference),
        amount_minor: Set(amount),
        balance_after: Set(after.balance_minor),
        version: Set(after.version),
        currency: Set(after.currency.clone()),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Why `account`'s wallet takes no new money in `currency`, if it does not: it is frozen, or
/// it holds money in another currency (a missing wallet takes any).
async fn refuses_money(
    db: &impl ConnectionTrait,
    account: Uuid,
    currency: Currency,
) -> Result<Option<DeclineReason>, Failure> {
    Ok(match wallet::Entity::find_by_id(account).one(db).await? {
        Some(w) if w.frozen => Some(DeclineReason::WalletFrozen),
        Some(w) if w.currency != currency.as_str() && w.balance_minor != 0 => {
            Some(DeclineReason::CurrencyMismatch)
        }
        _ => None,
    })
}

/// Why a wallet refused a debit in `currency`.
async fn refusal(
    db: &impl ConnectionTrait,
    account: Uuid,
    currency: Currency,
) -> Result<DeclineReason, Failure> {
    Ok(match wallet::Entity::find_by_id(account).one(db).await? {
        Some(w) if w.frozen => DeclineReason::WalletFrozen,
        Some(w) if w.currency != currency.as_str() => DeclineReason::CurrencyMismatch,
        _ => DeclineReason::InsufficientFunds,
    })
}

/// Moves `amount` (signed) into the wallet and appends the ledger entry; `None` when the
/// wallet refuses (a debit from a frozen wallet, or one that would make the balance negative)
/// or, with `once`, when the entry of `(kind, reference)` is there already (checked in the same
/// statement as the move: the caller tells which with [`already_posted`] when it matters).
/// A credit is never refused: money the card gave is the buyer's, frozen or not.
async fn post(
    tx: &Tx,
    account: Uuid,
    kind: EntryKind,
    reference: Uuid,
    amount: i64,
    once: bool,
    currency: Currency,
) -> Result<Option<(i64, i64)>, Failure> {
    // A debit needs a wallet that is not frozen and holds the order's currency; none may make
    // the balance negative.
    let mut allowed =
        sea_orm::Condition::all().add(Expr::col(wallet::Column::BalanceMinor).add(amount).gte(0));
    if amount < 0 {
        allowed = allowed
            .add(wallet::Column::Frozen.eq(false))
            .add(wallet::Column::Currency.eq(currency.as_str()));
    }
    if once {
        let posted = Query::select()
            .expr(Expr::val(1))
            .from(ledger_entry::Entity.table_ref())
            .and_where(ledger_entry::Column::Kind.eq(kind.as_str()))
            .and_where(ledger_entry::Column::Reference.eq(reference))
            .to_owned();
        allowed = allowed.add(Expr::exists(posted).not());
    }
    let Some(w) = move_balance(tx.db(), account, amount, allowed).await? else {
        return Ok(None);
    };
    append_entry(tx.db(), kind, reference, amount, &w).await?;
    Ok(Some((w.balance_minor, w.version)))
}

async fn already_posted(tx: &Tx, kind: EntryKind, reference: Uuid) -> Result<bool, Failure> {
    Ok(ledger_entry::Entity::find()
        .filter(ledger_entry::Column::Kind.eq(kind.as_str()))
        .filter(ledger_entry::Column::Reference.eq(reference))
        .one(tx.db())
        .await?
        .is_some())
}

/// Refreshes `balance:{account}` once the change that made it is committed.
fn refresh_balance(account: Uuid, balance: i64, version: i64) -> AfterCommit {
    Box::new(move |rt| Box::pin(async move { cache_balance(&rt, account, balance, version).await }))
}

/// Refreshes `balance:{account}` (never overwriting a newer version).
pub async fn cache_balance(rt: &Runtime, account: Uuid, balance: i64, version: i64) {
    if !rt.redis_health.is_up() {
        return;
    }
    let key = domain::keys::balance(&rt.redis_ns, account);
    let res: Result<i64, _> = rt
        .redis
        .eval(
            domain::keys::SET_BALANCE_LUA,
            vec![key],
            vec![
                balance.to_string(),
                version.to_string(),
                domain::keys::BALANCE_TTL_SECS.to_string(),
            ],
        )
        .await;
    if let Err(e) = res {
        tracing::warn!(error = %e, "could not refresh the cached balance");
    }
}

/// An order to debit (from `OrderPlaced` without shipping, or `StockReserved`).
struct Payable {
    order_id: Uuid,
    account_id: Uuid,
    lines: Vec<OrderLine>,
    total_minor: i64,
    currency: Currency,
}

#[tracing::instrument(skip_all, fields(order.id = %ev.order_id))]
async fn debit(rt: &Runtime, msg: &Incoming, ev: Payable) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let declined = |reason| PaymentDeclined {
        order_id: ev.order_id,
        account_id: ev.account_id,
        reason,
    };
    // The debit, unless this order's is there already (the order's payable event may come
    // twice under two message ids), in one statement; a wallet that does not exist refuses.
    let posted = post(
        &tx,
        ev.account_id,
        EntryKind::Debit,
        ev.order_id,
        -ev.total_minor,
        true,
        ev.currency,
    )
    .await?;
    match posted {
        Some((balance, version)) => {
            tx.emit(
                PaymentCaptured {
                    order_id: ev.order_id,
                    account_id: ev.account_id,
                    amount_minor: ev.total_minor,
                    currency: ev.currency,
                    lines: ev.lines,
                },
                msg,
            )?;
            tx.after_commit(refresh_balance(ev.account_id, balance, version));
            tx.commit(rt).await?;
            tracing::info!(amount_minor = ev.total_minor, "payment captured");
            Ok(())
        }
        None => {
            if already_posted(&tx, EntryKind::Debit, ev.order_id).await? {
                return tx.commit(rt).await;
            }
            let reason = refusal(tx.db(), ev.account_id, ev.currency).await?;
            tracing::info!(reason = reason.as_str(), "payment declined");
            tx.emit(declined(reason), msg)?;
            tx.commit(rt).await
        }
    }
}

#[tracing::instrument(skip_all, fields(top_up.id = %cmd.top_up_id))]
async fn top_up(rt: &Runtime, msg: &Incoming, cmd: TopUp) -> Result<(), Failure> {
    if cmd.amount_minor <= 0 {
        return Err(Failure::Poison("a top-up must be positive".into()));
    }
    // A frozen wallet, or one holding money in another currency, takes no new money: the
    // card is not charged. Only on the first delivery: a redelivery may follow a charge that
    // was made before a crash, and money charged is always credited (a frozen wallet cannot
    // spend it; money in another currency is credited at the exchange table's rate).
    let refused = match &msg.batch {
        // What the deliveries before it in its batch changed counts too.
        Some(batch) => refuses_money(&batch.txn, cmd.account_id, cmd.currency).await?,
        None => refuses_money(&rt.db, cmd.account_id, cmd.currency).await?,
    };
    // The provider is called outside the transaction (it may be slow); it is idempotent by
    // the top-up id, so a redelivery that calls it again charges nothing twice.
    let charge = Charge {
        top_up_id: cmd.top_up_id,
        amount_minor: cmd.amount_minor,
        currency: cmd.currency.as_str().to_owned(),
        payment_method: cmd.payment_method.clone(),
        attempt: u32::try_from(msg.delivered).unwrap_or(u32::MAX),
    };
    let outcome = match refused.filter(|_| msg.delivered == 1) {
        Some(reason) => {
            tracing::info!(
                reason = reason.as_str(),
                "the wallet takes no new money; the card is not charged"
            );
            ChargeOutcome::Declined(reason.as_str().to_owned())
        }
        None => rt
            .provider
            .charge(&charge)
            .await
            .map_err(|e| Failure::Transient(anyhow!(e)))?,
    };
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let (status, reason) = match &outcome {
        ChargeOutcome::Approved => (TopUpStatus::Credited, None),
        ChargeOutcome::Declined(r) => (TopUpStatus::Declined, Some(r.clone())),
    };
    let recorded = top_up::Entity::insert(top_up::ActiveModel {
        id: Set(cmd.top_up_id),
        account_id: Set(cmd.account_id),
        amount_minor: Set(cmd.amount_minor),
        currency: Set(cmd.currency.as_str().to_owned()),
        card_last4: Set(domain::billing::last4(&cmd.payment_method)),
        status: Set(status.as_str().to_owned()),
        reason: Set(reason.clone()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(top_up::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(tx.db())
    .await?;
    if recorded == 0 {
        // The same top-up sent again (another message id): already settled.
        return tx.commit(rt).await;
    }
    match outcome {
        ChargeOutcome::Approved => {
            let held = wallet_in(&tx, cmd.account_id, cmd.currency, true).await?;
            let amount = credited_in(cmd.amount_minor, cmd.currency, held)?;
            let Some((balance, version)) = post(
                &tx,
                cmd.account_id,
                EntryKind::Credit,
                cmd.top_up_id,
                amount,
                false,
                held,
            )
            .await?
            else {
                return Err(Failure::Poison("the wallet refused a credit".into()));
            };
            tx.emit(
                WalletCredited {
                    top_up_id: cmd.top_up_id,
                    account_id: cmd.account_id,
                    amount_minor: amount,
                    currency: held,
                    balance_minor: balance,
                },
                msg,
            )?;
            tx.after_commit(refresh_balance(cmd.account_id, balance, version));
            tx.commit(rt).await?;
            tracing::info!(
                amount_minor = amount,
                currency = held.as_str(),
                "wallet credited"
            );
            Ok(())
        }
        ChargeOutcome::Declined(reason) => {
            tx.emit(
                TopUpDeclined {
                    top_up_id: cmd.top_up_id,
                    account_id: cmd.account_id,
                    amount_minor: cmd.amount_minor,
                    reason,
                },
                msg,
            )?;
            tx.commit(rt).await
        }
    }
}

/// What a refund gives back of an order's debit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refunded {
    /// The whole debit.
    Everything,
    /// A cancellation before dispatch where the refund policy keeps the digital lines with
    /// the buyer (downloaded, or out of the window): the boxes only.
    AllButDigital,
}

/// Gives the debit of an order back: a `refund` entry (`UNIQUE (kind, reference)`: at most
/// once per order) → `PaymentRefunded`. For a cancelled order (before dispatch) that is the
/// physical lines, plus the digital ones when the policy allowed it; the digital lines the
/// buyer keeps are a sale, recorded for their publishers in the same transaction. For a refund
/// request of a completed order (`refund_request`) the whole debit goes back and the
/// publishers' revenue of the sale is reversed in the same transaction.
#[tracing::instrument(skip_all, fields(order.id = %order))]
async fn refund(
    rt: &Runtime,
    msg: &Incoming,
    order: Uuid,
    reason: String,
    refund_request: Option<Uuid>,
    what: Refunded,
) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    if already_posted(&tx, EntryKind::Refund, order).await? {
        return tx.commit(rt).await;
    }
    let debit = ledger_entry::Entity::find()
        .filter(ledger_entry::Column::Kind.eq(EntryKind::Debit.as_str()))
        .filter(ledger_entry::Column::Reference.eq(order))
        .one(tx.db())
        .await?;
    let Some(debit) = debit else {
        if refund_request.is_none() && reason == PAYMENT_DEADLINE_PASSED {
            return void_debit(rt, tx, msg, order, reason).await;
        }
        // Only paid orders are cancelled or refunded; the debit must be there.
        return Err(Failure::Transient(anyhow!(
            "no debit of order {order} to refund"
        )));
    };
    if refund_request.is_some() {
        reverse_revenue(&tx, order).await?;
    }
    let account = debit.account_id;
    let paid = -debit.amount_minor;
    let paid_in = stored_currency(&debit.currency)?;
    let (amount, digital_kept) = match what {
        Refunded::Everything => (paid, false),
        Refunded::AllButDigital => {
            let lines = domain::ordering::load_lines(tx.db(), order).await?;
            let (amount, kept) = domain::billing::cancellation_refund(&lines, paid, false);
            record_revenue(&tx, rt, order, &kept, paid_in).await?;
            (amount, !kept.is_empty())
        }
    };
    if amount == 0 {
        // A free order (or nothing but kept lines): nothing to give back (a refund entry must
        // be positive).
        tx.emit(
            PaymentRefunded {
                order_id: order,
                account_id: account,
                amount_minor: 0,
                currency: paid_in,
                reason,
                refund_request,
                digital_kept,
            },
            msg,
        )?;
        return tx.commit(rt).await;
    }
    // A refund is owed even to a frozen wallet: credit it directly, in the wallet's currency
    // (an empty wallet may have turned to another one since the order was paid; the refund is
    // then converted at the exchange table's rate rather than turning it back).
    let held = wallet_in(&tx, account, paid_in, false).await?;
    let amount = credited_in(amount, paid_in, held)?;
    let w = move_balance(tx.db(), account, amount, sea_orm::Condition::all())
        .await?
        .ok_or_else(|| Failure::Transient(anyhow!("no wallet for {account}")))?;
    let (balance, version) = (w.balance_minor, w.version);
    append_entry(tx.db(), EntryKind::Refund, order, amount, &w).await?;
    tx.emit(
        PaymentRefunded {
            order_id: order,
            account_id: account,
            amount_minor: amount,
            currency: held,
            reason,
            refund_request,
            digital_kept,
        },
        msg,
    )?;
    tx.after_commit(refresh_balance(account, balance, version));
    tx.commit(rt).await?;
    tracing::info!(amount_minor = amount, digital_kept, "payment refunded");
    Ok(())
}

/// An order cancelled before billing charged it (its reservation waited too long for the
/// payment): a debit of zero takes the order's one debit (`UNIQUE (kind, reference)`), so the
/// `StockReserved` still on its way charges nothing, and `PaymentRefunded` of zero cancels the
/// order. Were the charge first, the refund would have found it and given it back.
async fn void_debit(
    rt: &Runtime,
    mut tx: Tx,
    msg: &Incoming,
    order: Uuid,
    reason: String,
) -> Result<(), Failure> {
    let ev: ShipmentCancelled = msg.data()?;
    ensure_wallet(&tx, ev.account_id, rt.settings.currency).await?;
    // The balance stays; the version counts the entry.
    let w = move_balance(tx.db(), ev.account_id, 0, sea_orm::Condition::all())
        .await?
        .ok_or_else(|| Failure::Transient(anyhow!("no wallet for {}", ev.account_id)))?;
    let (balance, version) = (w.balance_minor, w.version);
    append_entry(tx.db(), EntryKind::Debit, order, 0, &w).await?;
    tx.emit(
        PaymentRefunded {
            order_id: order,
            account_id: ev.account_id,
            amount_minor: 0,
            currency: stored_currency(&w.currency)?,
            reason,
            refund_request: None,
            digital_kept: false,
        },
        msg,
    )?;
    tx.after_commit(refresh_balance(ev.account_id, balance, version));
    tx.commit(rt).await?;
    tracing::info!("an unpaid order was cancelled: it will never be charged");
    Ok(())
}

/// Each publisher of a completed order earns its lines minus the platform fee: one `sale` row
/// per (order, publisher), at most once (`UNIQUE (kind, order_id, publisher_id)`).
#[tracing::instrument(skip_all, fields(order.id = %ev.order_id))]
async fn record_sale(rt: &Runtime, msg: &Incoming, ev: OrderCompleted) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    record_revenue(&tx, rt, ev.order_id, &ev.lines, ev.currency).await?;
    tx.commit(rt).await?;
    tracing::info!("revenue recorded");
    Ok(())
}

/// The `sale` rows of `lines` of `order`, one per publisher, at most once.
async fn record_revenue(
    tx: &Tx,
    rt: &Runtime,
    order: Uuid,
    lines: &[OrderLine],
    currency: Currency,
) -> Result<(), Failure> {
    let bps = rt.settings.platform_fee_bps;
    for (publisher, gross, fee, net) in domain::billing::revenue_shares(lines, bps) {
        revenue_entry::Entity::insert(revenue_entry::ActiveModel {
            id: Set(domain::id::new_id()),
            publisher_id: Set(publisher),
            order_id: Set(order),
            kind: Set(SALE.to_owned()),
            gross_minor: Set(gross),
            fee_minor: Set(fee),
            net_minor: Set(net),
            currency: Set(currency.as_str().to_owned()),
            fee_bps: Set(i32::try_from(bps).unwrap_or(10_000)),
            ..Default::default()
        })
        .on_conflict(once_per_order_and_publisher())
        .exec_without_returning(tx.db())
        .await?;
    }
    Ok(())
}

/// The exact negatives of the order's `sale` rows (the fee of the day of the sale, whatever
/// the fee is now). The sale is recorded when billing handles `OrderCompleted`, which a refund
/// (only of completed orders) may overtake: then this waits for it (retried).
async fn reverse_revenue(tx: &Tx, order: Uuid) -> Result<(), Failure> {
    let sales = revenue_entry::Entity::find()
        .filter(revenue_entry::Column::OrderId.eq(order))
        .filter(revenue_entry::Column::Kind.eq(SALE))
        .all(tx.db())
        .await?;
    if sales.is_empty() {
        return Err(Failure::Transient(anyhow!(
            "the sale of order {order} is not recorded yet"
        )));
    }
    let reversals = sales.into_iter().map(|sale| revenue_entry::ActiveModel {
        id: Set(domain::id::new_id()),
        publisher_id: Set(sale.publisher_id),
        order_id: Set(sale.order_id),
        kind: Set(REVERSAL.to_owned()),
        gross_minor: Set(-sale.gross_minor),
        fee_minor: Set(-sale.fee_minor),
        net_minor: Set(-sale.net_minor),
        currency: Set(sale.currency),
        fee_bps: Set(sale.fee_bps),
        ..Default::default()
    });
    revenue_entry::Entity::insert_many(reversals)
        .on_conflict(once_per_order_and_publisher())
        .exec_without_returning(tx.db())
        .await?;
    Ok(())
}

/// `revenue_entry.kind` of a publisher's share of a sale, and of its reversal.
const SALE: &str = "sale";
const REVERSAL: &str = "reversal";

/// A sale, or its reversal, is recorded at most once per (order, publisher): a second one is
/// ignored.
fn once_per_order_and_publisher() -> OnConflict {
    OnConflict::columns([
        revenue_entry::Column::Kind,
        revenue_entry::Column::OrderId,
        revenue_entry::Column::PublisherId,
    ])
    .do_nothing()
    .to_owned()
}
