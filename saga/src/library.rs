//! Library: grants the digital lines of a paid order, each with its own license key; revokes
//! them (keys deactivated) when the order is cancelled or refunded; generates publishers' gift
//! keys and redeems them, each at most once.

use domain::billing::{PaymentCaptured, PaymentRefunded};
use domain::fulfillment::ShipmentDispatched;
use domain::library::{
    GenerateGiftKeys, GiftKeysGenerated, ItemsGranted, KeyRedeemed, RedeemKey, RedeemRefusal,
    license_key,
};
use domain::messaging::Message;
use domain::refund::{EntitlementsRevoked, RefundApproved};
use rand::RngCore;
use sea_orm::ConnectionTrait;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::{Tx, stmt};
use crate::infra::runtime::{Participant, Runtime};

const ME: Participant = Participant::Library;

/// What library reacts to, registered with the consume loop: its commands and these events.
pub const REGISTRATION: Registration = Registration {
    participant: ME,
    events: &[
        "billing.payment_captured",
        "fulfillment.shipment_dispatched",
        "billing.payment_refunded",
        "ordering.refund_approved",
    ],
    handle: |rt, msg| Box::pin(handle(rt, msg)),
};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    match msg.kind() {
        PaymentCaptured::TYPE => {
            let ev: PaymentCaptured = msg.data()?;
            let lines = ev
                .lines
                .iter()
                .filter(|l| !l.is_physical())
                .map(|l| (l.product_id, l.edition_id))
                .collect();
            grant(rt, msg, ev.order_id, ev.account_id, lines, false).await
        }
        PaymentRefunded::TYPE => {
            let ev: PaymentRefunded = msg.data()?;
            let Some(tx) = Tx::begin(rt, ME, msg).await? else {
                return Ok(());
            };
            if ev.digital_kept {
                // Only the boxes were refunded (never granted: they were not shipped).
                tracing::info!(order.id = %ev.order_id, "digital lines kept; nothing to revoke");
            } else {
                revoke(&tx, ev.order_id).await?;
            }
            tx.commit(rt).await
        }
        RefundApproved::TYPE => {
            let ev: RefundApproved = msg.data()?;
            let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
                return Ok(());
            };
            let entitlement_ids = revoke(&tx, ev.order_id).await?;
            tx.emit(
                EntitlementsRevoked {
                    request_id: ev.request_id,
                    order_id: ev.order_id,
                    account_id: ev.account_id,
                    entitlement_ids,
                },
                msg,
            )?;
            tx.commit(rt).await
        }
        GenerateGiftKeys::TYPE => generate_gift_keys(rt, msg, msg.data()?).await,
        RedeemKey::TYPE => redeem(rt, msg, msg.data()?).await,
        ShipmentDispatched::TYPE => {
            let ev: ShipmentDispatched = msg.data()?;
            let lines = ev
                .lines
                .iter()
                .map(|l| (l.product_id, l.edition_id))
                .collect();
            grant(rt, msg, ev.order_id, ev.account_id, lines, true).await
        }
        other => Err(Failure::Poison(format!(
            "library does not handle `{other}`"
        ))),
    }
}

fn new_key() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    license_key(bytes)
}

/// One entitlement per line (`UNIQUE (order_id, edition_id)`): the digital lines once paid,
/// the physical lines once shipped (a boxed copy carries its key too). A license key that
/// collides (≈ 2⁻⁹² per pair) fails the transaction, and the redelivery draws new keys.
#[tracing::instrument(skip_all, fields(order.id = %order))]
async fn grant(
    rt: &Runtime,
    msg: &Incoming,
    order: uuid::Uuid,
    account: uuid::Uuid,
    lines: Vec<(uuid::Uuid, uuid::Uuid)>,
    physical: bool,
) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    lock_order(&tx, order).await?;
    let revoked = tx
        .txn
        .query_one_raw(stmt(
            "SELECT 1 AS one FROM library.revoked_order WHERE order_id = $1",
            [order.into()],
        ))
        .await?
        .is_some();
    // A refunded order grants nothing, even when the refund overtook the payment's grant.
    let lines = if revoked { Vec::new() } else { lines };
    let mut ids = Vec::new();
    for (product_id, edition_id) in lines {
        let row = tx
            .txn
            .query_one_raw(stmt(
                "INSERT INTO library.entitlement (id, account_id, product_id, edition_id, order_id, license_key) \
                 VALUES ($1,$2,$3,$4,$5,$6) \
                 ON CONFLICT (order_id, edition_id) DO UPDATE SET order_id = EXCLUDED.order_id RETURNING id",
                [
                    domain::id::new_id().into(),
                    account.into(),
                    product_id.into(),
                    edition_id.into(),
                    order.into(),
                    new_key().into(),
                ],
            ))
            .await?;
        if let Some(r) = row {
            ids.push(r.try_get("", "id")?);
        }
    }
    tx.emit(
        ItemsGranted {
            order_id: order,
            account_id: account,
            entitlement_ids: ids,
            physical,
        },
        msg,
    )?;
    tx.commit(rt).await?;
    tracing::info!("items granted");
    Ok(())
}

/// Serialises the grants and the revocation of one order until the end of the transaction.
/// Without it a grant could read "not revoked", then a revocation commit (finding nothing to
/// revoke yet), then the grant commit: a refunded order's items would stay in the library.
/// Under the lock each statement after it sees what the other committed.
async fn lock_order(tx: &Tx, order: uuid::Uuid) -> Result<(), Failure> {
    tx.txn
        .execute_raw(stmt(
            "SELECT pg_advisory_xact_lock(hashtextextended('library.order:' || $1::text, 0))",
            [order.into()],
        ))
        .await?;
    Ok(())
}

/// A cancelled or refunded order loses what it granted (for a cancelled order: its digital
/// lines; its physical lines were never shipped, so never granted). The entitlements stay, with
/// `revoked_at`: their keys remain unique and are shown as deactivated. Returns every
/// entitlement of the order (also those revoked by an earlier delivery).
#[tracing::instrument(skip_all, fields(order.id = %order))]
async fn revoke(tx: &Tx, order: uuid::Uuid) -> Result<Vec<uuid::Uuid>, Failure> {
    lock_order(tx, order).await?;
    tx.txn
        .execute_raw(stmt(
            "INSERT INTO library.revoked_order (order_id) VALUES ($1) ON CONFLICT DO NOTHING",
            [order.into()],
        ))
        .await?;
    let revoked = tx
        .txn
        .execute_raw(stmt(
            "UPDATE library.entitlement SET revoked_at = now() WHERE order_id = $1 AND revoked_at IS NULL",
            [order.into()],
        ))
        .await?
        .rows_affected();
    let rows = tx
        .txn
        .query_all_raw(stmt(
            "SELECT id FROM library.entitlement WHERE order_id = $1 ORDER BY id",
            [order.into()],
        ))
        .await?;
    tracing::info!(revoked, "entitlements revoked");
    rows.iter()
        .map(|r| r.try_get("", "id").map_err(Failure::from))
        .collect()
}

/// A batch of gift keys for one edition (the batch id makes a repeated command one batch).
#[tracing::instrument(skip_all, fields(batch.id = %cmd.batch_id))]
async fn generate_gift_keys(
    rt: &Runtime,
    msg: &Incoming,
    cmd: GenerateGiftKeys,
) -> Result<(), Failure> {
    if !(1..=domain::library::MAX_GIFT_KEYS).contains(&cmd.quantity) {
        return Err(Failure::Poison(format!(
            "a batch holds 1 to {} keys",
            domain::library::MAX_GIFT_KEYS
        )));
    }
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let created = tx
        .txn
        .execute_raw(stmt(
            "INSERT INTO library.gift_key_batch (id, publisher_id, product_id, edition_id, quantity, label) \
             VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            [
                cmd.batch_id.into(),
                cmd.publisher_id.into(),
                cmd.product_id.into(),
                cmd.edition_id.into(),
                cmd.quantity.into(),
                cmd.label.clone().into(),
            ],
        ))
        .await?
        .rows_affected();
    if created == 0 {
        return tx.commit(rt).await;
    }
    let ids: Vec<uuid::Uuid> = (0..cmd.quantity).map(|_| domain::id::new_id()).collect();
    let keys: Vec<String> = (0..cmd.quantity).map(|_| new_key()).collect();
    // One statement for the whole batch; a key colliding with any other fails the transaction
    // and the redelivery draws new keys.
    tx.txn
        .execute_raw(stmt(
            "INSERT INTO library.gift_key (id, batch_id, key) SELECT i, $1, k FROM unnest($2::uuid[], $3::text[]) AS t(i, k)",
            [cmd.batch_id.into(), ids.into(), keys.into()],
        ))
        .await?;
    tx.emit(
        GiftKeysGenerated {
            batch_id: cmd.batch_id,
            publisher_id: cmd.publisher_id,
            product_id: cmd.product_id,
            quantity: cmd.quantity,
        },
        msg,
    )?;
    tx.commit(rt).await?;
    tracing::info!(quantity = cmd.quantity, "gift keys generated");
    Ok(())
}

/// Redeems a gift key: the key row is locked, so of two accounts redeeming one key at once
/// exactly one gets the entitlement (and the key stays unused when the account owns the
/// product already).
#[tracing::instrument(skip_all, fields(redemption.id = %cmd.redemption_id))]
async fn redeem(rt: &Runtime, msg: &Incoming, cmd: RedeemKey) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let key = tx
        .txn
        .query_one_raw(stmt(
            "SELECT k.id, k.redeemed_by, b.product_id, b.edition_id FROM library.gift_key k \
             JOIN library.gift_key_batch b ON b.id = k.batch_id WHERE k.key = $1 FOR UPDATE OF k",
            [cmd.key.clone().into()],
        ))
        .await?;
    let outcome = match key {
        None => Err(RedeemRefusal::UnknownKey),
        Some(row) => {
            let key_id: uuid::Uuid = row.try_get("", "id")?;
            let redeemed_by: Option<uuid::Uuid> = row.try_get("", "redeemed_by")?;
            let product: uuid::Uuid = row.try_get("", "product_id")?;
            let edition: uuid::Uuid = row.try_get("", "edition_id")?;
            let owned = tx
                .txn
                .query_one_raw(stmt(
                    "SELECT 1 AS one FROM library.entitlement WHERE account_id = $1 AND product_id = $2 AND revoked_at IS NULL",
                    [cmd.account_id.into(), product.into()],
                ))
                .await?
                .is_some();
            if redeemed_by.is_some() {
                Err(RedeemRefusal::AlreadyRedeemed)
            } else if owned {
                Err(RedeemRefusal::AlreadyOwned)
            } else {
                tx.txn
                    .execute_raw(stmt(
                        "UPDATE library.gift_key SET redeemed_by = $2, redeemed_at = now() WHERE id = $1",
                        [key_id.into(), cmd.account_id.into()],
                    ))
                    .await?;
                let entitlement = domain::id::new_id();
                tx.txn
                    .execute_raw(stmt(
                        "INSERT INTO library.entitlement (id, account_id, product_id, edition_id, gift_key_id, license_key) \
                         VALUES ($1,$2,$3,$4,$5,$6)",
                        [
                            entitlement.into(),
                            cmd.account_id.into(),
                            product.into(),
                            edition.into(),
                            key_id.into(),
                            cmd.key.clone().into(),
                        ],
                    ))
                    .await?;
                Ok((entitlement, product))
            }
        }
    };
    tracing::info!(redeemed = outcome.is_ok(), "gift key");
    tx.emit(
        KeyRedeemed {
            redemption_id: cmd.redemption_id,
            account_id: cmd.account_id,
            outcome,
        },
        msg,
    )?;
    tx.commit(rt).await
}
