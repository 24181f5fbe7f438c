//! Library: grants the digital lines of a paid order, each with its own license key; revokes
//! them (keys deactivated) when the order is cancelled or refunded; generates publishers' gift
//! keys and redeems them, each at most once.

use domain::billing::{PaymentCaptured, PaymentRefunded};
use domain::fulfillment::ShipmentDispatched;
use domain::library::entity::{entitlement, gift_key, gift_key_batch, revoked_order};
use domain::library::{
    GenerateGiftKeys, GiftKeysGenerated, ItemsGranted, KeyRedeemed, RedeemKey, RedeemRefusal,
    license_key,
};
use domain::messaging::Message;
use domain::refund::{EntitlementsRevoked, RefundApproved};
use rand::RngCore;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::Tx;
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
    let revoked = revoked_order::Entity::find_by_id(order)
        .one(tx.db())
        .await?
        .is_some();
    // A refunded order grants nothing, even when the refund overtook the payment's grant.
    let lines = if revoked { Vec::new() } else { lines };
    let mut ids = Vec::new();
    for (product_id, edition_id) in lines {
        // A line granted before keeps its entitlement: the no-op update returns that row.
        let granted = entitlement::Entity::insert(entitlement::ActiveModel {
            id: Set(domain::id::new_id()),
            account_id: Set(account),
            product_id: Set(product_id),
            edition_id: Set(edition_id),
            order_id: Set(Some(order)),
            license_key: Set(new_key()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([entitlement::Column::OrderId, entitlement::Column::EditionId])
                .update_column(entitlement::Column::OrderId)
                .to_owned(),
        )
        .exec_with_returning(tx.db())
        .await?;
        ids.push(granted.id);
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
    Ok(domain::library::entity::lock_order(tx.db(), order).await?)
}

/// A cancelled or refunded order loses what it granted (for a cancelled order: its digital
/// lines; its physical lines were never shipped, so never granted). The entitlements stay, with
/// `revoked_at`: their keys remain unique and are shown as deactivated. Returns every
/// entitlement of the order (also those revoked by an earlier delivery).
#[tracing::instrument(skip_all, fields(order.id = %order))]
async fn revoke(tx: &Tx, order: uuid::Uuid) -> Result<Vec<uuid::Uuid>, Failure> {
    lock_order(tx, order).await?;
    revoked_order::Entity::insert(revoked_order::ActiveModel {
        order_id: Set(order),
        ..Default::default()
    })
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .exec_without_returning(tx.db())
    .await?;
    let revoked = entitlement::Entity::update_many()
        .col_expr(entitlement::Column::RevokedAt, Expr::current_timestamp())
        .filter(entitlement::Column::OrderId.eq(order))
        .filter(entitlement::Column::RevokedAt.is_null())
        .exec(tx.db())
        .await?
        .rows_affected;
    let ids = entitlement::Entity::find()
        .select_only()
        .column(entitlement::Column::Id)
        .filter(entitlement::Column::OrderId.eq(order))
        .order_by_asc(entitlement::Column::Id)
        .into_tuple()
        .all(tx.db())
        .await?;
    tracing::info!(revoked, "entitlements revoked");
    Ok(ids)
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
    let created = gift_key_batch::Entity::insert(gift_key_batch::ActiveModel {
        id: Set(cmd.batch_id),
        publisher_id: Set(cmd.publisher_id),
        product_id: Set(cmd.product_id),
        edition_id: Set(cmd.edition_id),
        quantity: Set(cmd.quantity),
        label: Set(cmd.label.clone()),
        ..Default::default()
    })
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .exec_without_returning(tx.db())
    .await?;
    if created == 0 {
        return tx.commit(rt).await;
    }
    let keys = (0..cmd.quantity).map(|_| gift_key::ActiveModel {
        id: Set(domain::id::new_id()),
        batch_id: Set(cmd.batch_id),
        key: Set(new_key()),
        ..Default::default()
    });
    // One statement for the whole batch; a key colliding with any other fails the transaction
    // and the redelivery draws new keys.
    gift_key::Entity::insert_many(keys)
        .exec_without_returning(tx.db())
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
    // The key row is locked (not its batch, which never changes).
    let key = gift_key::Entity::find()
        .filter(gift_key::Column::Key.eq(cmd.key.as_str()))
        .lock_exclusive()
        .one(tx.db())
        .await?;
    let batch = match &key {
        Some(key) => {
            gift_key_batch::Entity::find_by_id(key.batch_id)
                .one(tx.db())
                .await?
        }
        None => None,
    };
    let outcome = match key.zip(batch) {
        None => Err(RedeemRefusal::UnknownKey),
        Some((key, batch)) => {
            let (product, edition) = (batch.product_id, batch.edition_id);
            let owned = entitlement::Entity::find()
                .filter(entitlement::Column::AccountId.eq(cmd.account_id))
                .filter(entitlement::Column::ProductId.eq(product))
                .filter(entitlement::Column::RevokedAt.is_null())
                .one(tx.db())
                .await?
                .is_some();
            if key.redeemed_by.is_some() {
                Err(RedeemRefusal::AlreadyRedeemed)
            } else if owned {
                Err(RedeemRefusal::AlreadyOwned)
            } else {
                gift_key::Entity::update_many()
                    .col_expr(gift_key::Column::RedeemedBy, Expr::val(cmd.account_id))
                    .col_expr(gift_key::Column::RedeemedAt, Expr::current_timestamp())
                    .filter(gift_key::Column::Id.eq(key.id))
                    .exec(tx.db())
                    .await?;
                let entitlement = domain::id::new_id();
                entitlement::Entity::insert(entitlement::ActiveModel {
                    id: Set(entitlement),
                    account_id: Set(cmd.account_id),
                    product_id: Set(product),
                    edition_id: Set(edition),
                    gift_key_id: Set(Some(key.id)),
                    license_key: Set(cmd.key.clone()),
                    ..Default::default()
                })
                .exec_without_returning(tx.db())
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
