//! Fulfillment: stock of physical editions (`cmd.fulfillment.adjust_stock`). Reservations and
//! shipments come with the physical-orders issue.

use domain::fulfillment::{AdjustStock, MAX_STOCK, StockMode};
use domain::messaging::Message;
use sea_orm::ConnectionTrait;

use crate::consumer::{Failure, Incoming};
use crate::outbox::{Tx, stmt};
use crate::runtime::{Participant, Runtime};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    match msg.kind() {
        AdjustStock::TYPE => adjust(rt, msg, msg.data()?).await,
        other => Err(Failure::Poison(format!(
            "fulfillment does not handle `{other}`"
        ))),
    }
}

/// Applies a stock change; the stock on hand never drops below what is reserved.
async fn adjust(rt: &Runtime, msg: &Incoming, cmd: AdjustStock) -> Result<(), Failure> {
    if cmd.quantity.abs() > MAX_STOCK {
        return Err(Failure::Poison("the stock change is too large".into()));
    }
    let Some(tx) = Tx::begin(rt, Participant::Fulfillment, msg).await? else {
        return Ok(());
    };
    let sql = match cmd.mode {
        StockMode::Set => {
            "INSERT INTO fulfillment.inventory (edition_id, on_hand) VALUES ($1, GREATEST($2, 0)) \
             ON CONFLICT (edition_id) DO UPDATE SET on_hand = LEAST(GREATEST($2, inventory.reserved), 2000000000), \
             version = inventory.version + 1, updated_at = now()"
        }
        StockMode::Add => {
            "INSERT INTO fulfillment.inventory (edition_id, on_hand) VALUES ($1, GREATEST($2, 0)) \
             ON CONFLICT (edition_id) DO UPDATE SET on_hand = LEAST(GREATEST(inventory.on_hand + $2, inventory.reserved), 2000000000), \
             version = inventory.version + 1, updated_at = now()"
        }
    };
    tx.txn
        .execute_raw(stmt(sql, [cmd.edition_id.into(), cmd.quantity.into()]))
        .await?;
    tx.commit(rt).await
}
