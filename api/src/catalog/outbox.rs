//! The catalog's outbox (`catalog.outbox`, the api its only writer): the events of catalog
//! changes (`catalog.build_made_current`) are written in the transaction of the change
//! ([`write`]) and published by the relay `api serve` runs ([`relay`]), the same
//! [`domain::outbox`] relay as the saga participants': in order per correlation (the product),
//! with `Nats-Msg-Id` = the event id, shared by the api's replicas.

use domain::messaging::{Envelope, Message};
use sea_orm::ConnectionTrait;

use crate::infra::error::ApiResult;
use crate::infra::state::AppState;

/// The schema of the catalog's outbox.
pub const SCHEMA: &str = "catalog";

/// Writes `envelope` to the catalog's outbox in `txn`, the transaction of the change it tells
/// of; the caller wakes the relay after the commit ([`AppState::wake_outbox`]).
pub async fn write<T: Message>(
    txn: &impl ConnectionTrait,
    envelope: &Envelope<T>,
) -> ApiResult<()> {
    let row = domain::outbox::Row::new(envelope).map_err(domain::bus::BusError::from)?;
    domain::outbox::insert(txn, SCHEMA, &[row]).await?;
    Ok(())
}

/// Publishes the catalog's outbox forever: at once when woken after a commit that wrote to it,
/// otherwise every second (what another replica wrote, what a crash left behind).
pub async fn relay(state: AppState) {
    domain::outbox::relay(&state.db, &state.bus, SCHEMA, &state.outbox_waker).await;
}
