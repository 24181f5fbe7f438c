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

async fn ensure_wallet(tx: &Tx, rt: &Runtime, account: Uuid) -> Result<(), Failure> {
    wallet::Entity::insert(wallet::ActiveModel {
        account_id: Set(account),
        currency: Set(rt.settings.currency.as_str().to_owned()),
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
    account: Uuid,
    kind: EntryKind,
    reference: Uuid,
    amount: i64,
    (balance_after, version): (i64, i64),
) -> Result<(), Failure> {
    ledger_entry::Entity::insert(ledger_entry::ActiveModel {
        id: Set(domain::id::new_id()),
        account_id: Set(account),
        kind: Set(kind.as_str().to_owned()),
        reference: Set(reference),
        amount_minor: Set(amount),
        balance_after: Set(balance_after),
        version: Set(version),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Whether `account`'s wallet is frozen (a missing wallet is not).
async fn frozen(db: &impl ConnectionTrait, account: Uuid) -> Result<bool, Failure> {
    Ok(wallet::Entity::find_by_id(account)
        .one(db)
        .await?
        .is_some_and(|w| w.frozen))
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
) -> Result<Option<(i64, i64)>, Failure> {
    // A debit needs a wallet that is not frozen; none may make the balance negative.
    let mut allowed =
        sea_orm::Condition::all().add(Expr::col(wallet::Column::BalanceMinor).add(amount).gte(0));
    if amount < 0 {
        allowed = allowed.add(wallet::Column::Frozen.eq(false));
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
    let after = (w.balance_minor, w.version);
    append_entry(tx.db(), account, kind, reference, amount, after).await?;
    Ok(Some(after))
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
    if ev.currency != rt.settings.currency {
        tx.emit(declined(DeclineReason::CurrencyMismatch), msg)?;
        return tx.commit(rt).await;
    }
    // The debit, unless this order's is there already (the order's payable event may come
    // twice under two message ids), in one statement; a wallet that does not exist refuses.
    let posted = post(
        &tx,
        ev.account_id,
        EntryKind::Debit,
        ev.order_id,
        -ev.total_minor,
        true,
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
            let reason = if frozen(tx.db(), ev.account_id).await? {
                DeclineReason::WalletFrozen
            } else {
                DeclineReason::InsufficientFunds
            };
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
    // A frozen wallet takes no new money: the card is not charged. Only on the first
    // delivery: a redelivery may follow a charge that was made before a crash, and money
    // charged is always credited (a frozen wallet cannot spend it).
    let frozen = match &msg.batch {
        // What the deliveries before it in its batch changed counts too.
        Some(batch) => frozen(&batch.txn, cmd.account_id).await?,
        None => frozen(&rt.db, cmd.account_id).await?,
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
    let outcome = if frozen && msg.delivered == 1 {
        tracing::info!("the wallet is frozen; the card is not charged");
        ChargeOutcome::Declined(DeclineReason::WalletFrozen.as_str().to_owned())
    } else {
        rt.provider
            .charge(&charge)
            .await
            .map_err(|e| Failure::Transient(anyhow!(e)))?
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
            ensure_wallet(&tx, rt, cmd.account_id).await?;
            let Some((balance, version)) = post(
                &tx,
                cmd.account_id,
                EntryKind::Credit,
                cmd.top_up_id,
                cmd.amount_minor,
                false,
            )
            .await?
            else {
                return Err(Failure::Poison("the wallet refused a credit".into()));
            };
            tx.emit(
                WalletCredited {
                    top_up_id: cmd.top_up_id,
                    account_id: cmd.account_id,
                    amount_minor: cmd.amount_minor,
                    currency: cmd.currency,
                    balance_minor: balance,
                },
                msg,
            )?;
            tx.after_commit(refresh_balance(cmd.account_id, balance, version));
            tx.commit(rt).await?;
            tracing::info!(amount_minor = cmd.amount_minor, "wallet credited");
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
    let (amount, digital_kept) = match what {
        Refunded::Everything => (paid, false),
        Refunded::AllButDigital => {
            let lines = domain::ordering::load_lines(tx.db(), order).await?;
            let (amount, kept) = domain::billing::cancellation_refund(&lines, paid, false);
            record_revenue(&tx, rt, order, &kept, rt.settings.currency).await?;
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
                currency: rt.settings.currency,
                reason,
                refund_request,
                digital_kept,
            },
            msg,
        )?;
        return tx.commit(rt).await;
    }
    // A refund is owed even to a frozen wallet: credit it directly.
    let w = move_balance(tx.db(), account, amount, sea_orm::Condition::all())
        .await?
        .ok_or_else(|| Failure::Transient(anyhow!("no wallet for {account}")))?;
    let (balance, version, currency) = (w.balance_minor, w.version, w.currency);
    let after = (balance, version);
    append_entry(tx.db(), account, EntryKind::Refund, order, amount, after).await?;
    tx.emit(
        PaymentRefunded {
            order_id: order,
            account_id: account,
            amount_minor: amount,
            currency: Currency::parse(&currency).map_err(|e| Failure::Poison(e.to_string()))?,
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
    ensure_wallet(&tx, rt, ev.account_id).await?;
    // The balance stays; the version counts the entry.
    let w = move_balance(tx.db(), ev.account_id, 0, sea_orm::Condition::all())
        .await?
        .ok_or_else(|| Failure::Transient(anyhow!("no wallet for {}", ev.account_id)))?;
    let (balance, version) = (w.balance_minor, w.version);
    let after = (balance, version);
    append_entry(tx.db(), ev.account_id, EntryKind::Debit, order, 0, after).await?;
    tx.emit(
        PaymentRefunded {
            order_id: order,
            account_id: ev.account_id,
            amount_minor: 0,
            currency: rt.settings.currency,
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
