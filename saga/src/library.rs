//! Library: grants the digital lines of a paid order, each with its own license key.

use domain::billing::PaymentCaptured;
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
        PaymentCaptured::TYPE => grant(rt, msg, msg.data()?).await,
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

/// One entitlement per digital line (`UNIQUE (order_id, edition_id)`). A license key that
/// collides (≈ 2⁻⁹² per pair) fails the transaction, and the redelivery draws new keys.
#[tracing::instrument(skip_all, fields(order.id = %ev.order_id))]
async fn grant(rt: &Runtime, msg: &Incoming, ev: PaymentCaptured) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let mut ids = Vec::new();
    for line in ev.lines.iter().filter(|l| !l.is_physical()) {
        let row = tx
            .txn
            .query_one_raw(stmt(
                "INSERT INTO library.entitlement (id, account_id, product_id, edition_id, order_id, license_key) \
                 VALUES ($1,$2,$3,$4,$5,$6) \
                 ON CONFLICT (order_id, edition_id) DO UPDATE SET order_id = EXCLUDED.order_id RETURNING id",
                [
                    domain::id::new_id().into(),
                    ev.account_id.into(),
                    line.product_id.into(),
                    line.edition_id.into(),
                    ev.order_id.into(),
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
            order_id: ev.order_id,
            account_id: ev.account_id,
            entitlement_ids: ids,
        },
        msg,
    )?;
    tx.commit(rt).await?;
    tracing::info!("items granted");
    Ok(())
}
