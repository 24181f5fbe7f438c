//! Library: grants the digital lines of a paid order, each with its own license key.

use domain::billing::{PaymentCaptured, PaymentRefunded};
use domain::fulfillment::ShipmentDispatched;
use domain::library::{ItemsGranted, license_key};
use domain::messaging::Message;
use rand::RngCore;
use sea_orm::ConnectionTrait;

use crate::consumer::{Failure, Incoming};
use crate::outbox::{Tx, stmt};
use crate::runtime::{Participant, Runtime};

const ME: Participant = Participant::Library;

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
        PaymentRefunded::TYPE => revoke(rt, msg, msg.data()?).await,
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

/// A refunded order loses what it granted (its digital lines; its physical lines were never
/// shipped, so never granted).
#[tracing::instrument(skip_all, fields(order.id = %ev.order_id))]
async fn revoke(rt: &Runtime, msg: &Incoming, ev: PaymentRefunded) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    tx.txn
        .execute_raw(stmt(
            "INSERT INTO library.revoked_order (order_id) VALUES ($1) ON CONFLICT DO NOTHING",
            [ev.order_id.into()],
        ))
        .await?;
    let revoked = tx
        .txn
        .execute_raw(stmt(
            "DELETE FROM library.entitlement WHERE order_id = $1",
            [ev.order_id.into()],
        ))
        .await?
        .rows_affected();
    tx.commit(rt).await?;
    tracing::info!(revoked, "entitlements revoked");
    Ok(())
}
