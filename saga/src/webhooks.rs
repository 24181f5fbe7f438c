//! Webhooks: applies the api's commands about publishers' endpoints (it alone writes the
//! `webhooks` schema), records one delivery per (event, endpoint) for the events publishers
//! subscribe to, and sends them ([`send`]: signed, retried on a schedule kept in the database,
//! endpoints that keep failing disabled and their owners told) and keeps the log bounded
//! ([`prune`]: finished deliveries go after `WEBHOOKS_DELIVERY_RETENTION_DAYS`).
//!
//! A delivery's id is derived from the event's id and the endpoint's
//! ([`domain::webhooks::delivery_id`]), and inserted `ON CONFLICT DO NOTHING`: an event handled
//! twice (a redelivery that got past the inbox, a re-published outbox row with the same id)
//! still makes one delivery. Each publisher hears only of its own lines of an order.

pub mod prune;
pub mod send;

use chrono::{DateTime, Utc};
use domain::billing::{PaymentCaptured, PaymentRefunded};
use domain::catalog::BuildMadeCurrent;
use domain::fulfillment::ShipmentDispatched;
use domain::library::ItemsGranted;
use domain::messaging::Message;
use domain::ordering::OrderLine;
use domain::refund::{EntitlementsRevoked, OrderRefunded};
use domain::webhooks::entity::{delivery, endpoint, order_publisher};
use domain::webhooks::{
    DeleteEndpoint, DeliveryStatus, EventType, Redeliver, RegisterEndpoint, RotateSecret,
    UpdateEndpoint,
};
use rand::RngCore;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::{Value, json};
use sha2::Digest;
use uuid::Uuid;

use crate::infra::consumer::{Failure, Incoming, Registration};
use crate::infra::outbox::{Tx, stmt};
use crate::infra::runtime::{Participant, Runtime};

const ME: Participant = Participant::Webhooks;

/// What webhooks reacts to, registered with the consume loop: its commands and these events.
pub const REGISTRATION: Registration = Registration {
    participant: ME,
    events: &[
        "billing.payment_captured",
        "fulfillment.shipment_dispatched",
        "ordering.order_refunded",
        "library.items_granted",
        "library.entitlements_revoked",
        "billing.payment_refunded",
        "catalog.build_made_current",
    ],
    handle: |rt, msg| Box::pin(handle(rt, msg)),
};

pub async fn handle(rt: &Runtime, msg: &Incoming) -> Result<(), Failure> {
    match msg.kind() {
        RegisterEndpoint::TYPE => register(rt, msg, msg.data()?).await,
        UpdateEndpoint::TYPE => update(rt, msg, msg.data()?).await,
        RotateSecret::TYPE => rotate(rt, msg, msg.data()?).await,
        DeleteEndpoint::TYPE => delete(rt, msg, msg.data()?).await,
        Redeliver::TYPE => redeliver(rt, msg, msg.data()?).await,
        PaymentCaptured::TYPE => paid(rt, msg, msg.data()?).await,
        ShipmentDispatched::TYPE => shipped(rt, msg, msg.data()?).await,
        OrderRefunded::TYPE => refunded(rt, msg, msg.data()?).await,
        ItemsGranted::TYPE => granted(rt, msg, msg.data()?).await,
        EntitlementsRevoked::TYPE => {
            let ev: EntitlementsRevoked = msg.data()?;
            revoked(rt, msg, ev.order_id, false).await
        }
        PaymentRefunded::TYPE => {
            let ev: PaymentRefunded = msg.data()?;
            // A refund request settling was told by `EntitlementsRevoked`; a cancellation that
            // kept the digital lines revoked nothing.
            if ev.refund_request.is_some() || ev.digital_kept {
                return Tx::nothing(rt, ME, msg).await;
            }
            revoked(rt, msg, ev.order_id, true).await
        }
        BuildMadeCurrent::TYPE => {
            let ev: BuildMadeCurrent = msg.data()?;
            let data = json!({
                "productId": ev.product_id,
                "buildId": ev.build_id,
                "platform": ev.platform,
                "versionLabel": ev.version_label,
            });
            record(
                rt,
                msg,
                EventType::BuildMadeCurrent,
                vec![(ev.publisher_id, data)],
            )
            .await
        }
        other => Err(Failure::Poison(format!(
            "webhooks does not handle `{other}`"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Events → deliveries

/// An order line as a webhook tells it.
fn line_json(l: &OrderLine) -> Value {
    json!({
        "productId": l.product_id,
        "editionId": l.edition_id,
        "productTitle": l.product_title,
        "editionName": l.edition_name,
        "kind": l.kind,
        "quantity": l.quantity,
        "unitPriceMinor": l.unit_price_minor,
    })
}

/// The sum of `lines`' subtotals (saturating: the order's total was checked when placed).
fn amount(lines: &[&OrderLine]) -> i64 {
    lines
        .iter()
        .map(|l| l.subtotal().unwrap_or(i64::MAX))
        .fold(0i64, i64::saturating_add)
}

/// What each publisher hears of an order's money (paid or refunded): its own lines and their
/// sum, never the buyer.
fn money_payloads(
    order: Uuid,
    currency: domain::money::Currency,
    by: &std::collections::BTreeMap<Uuid, Vec<&OrderLine>>,
) -> Vec<(Uuid, Value)> {
    by.iter()
        .map(|(publisher, lines)| {
            let data = json!({
                "orderId": order,
                "currency": currency.as_str().to_owned(),
                "amountMinor": amount(lines),
                "lines": lines.iter().map(|l| line_json(l)).collect::<Vec<_>>(),
            });
            (*publisher, data)
        })
        .collect()
}

async fn paid(rt: &Runtime, msg: &Incoming, ev: PaymentCaptured) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let by = domain::ordering::by_publisher(&ev.lines);
    // Kept for the events that name only the order (grants, revocations).
    let rows = by.iter().map(|(publisher, lines)| {
        let owned: Vec<&OrderLine> = lines.clone();
        order_publisher::ActiveModel {
            order_id: Set(ev.order_id),
            publisher_id: Set(*publisher),
            lines: Set(serde_json::to_value(owned).unwrap_or(Value::Null)),
            currency: Set(ev.currency.as_str().to_owned()),
            ..Default::default()
        }
    });
    if !by.is_empty() {
        order_publisher::Entity::insert_many(rows)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .exec_without_returning(tx.db())
            .await?;
    }
    let per_publisher = money_payloads(ev.order_id, ev.currency, &by);
    insert_deliveries(&mut tx, msg, EventType::OrderPaid, per_publisher).await?;
    tx.commit(rt).await
}

async fn shipped(rt: &Runtime, msg: &Incoming, ev: ShipmentDispatched) -> Result<(), Failure> {
    let lines: Vec<Value> = ev
        .lines
        .iter()
        .filter(|l| l.publisher_id == ev.publisher_id)
        .map(|l| {
            json!({
                "productId": l.product_id,
                "editionId": l.edition_id,
                "quantity": l.quantity,
            })
        })
        .collect();
    let data = json!({
        "orderId": ev.order_id,
        "carrier": ev.carrier,
        "trackingNumber": ev.tracking_number,
        "lines": lines,
    });
    record(
        rt,
        msg,
        EventType::OrderShipped,
        vec![(ev.publisher_id, data)],
    )
    .await
}

async fn refunded(rt: &Runtime, msg: &Incoming, ev: OrderRefunded) -> Result<(), Failure> {
    let by = domain::ordering::by_publisher(&ev.lines);
    let per_publisher = money_payloads(ev.order_id, ev.currency, &by);
    record(rt, msg, EventType::OrderRefunded, per_publisher).await
}

/// The lines of a paid order by publisher, as recorded from its `PaymentCaptured`; `None`
/// while that event is not handled yet.
async fn order_lines(tx: &Tx, order: Uuid) -> Result<Option<Vec<(Uuid, Vec<OrderLine>)>>, Failure> {
    let rows = order_publisher::Entity::find()
        .filter(order_publisher::Column::OrderId.eq(order))
        .all(tx.db())
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let lines: Vec<OrderLine> = serde_json::from_value(r.lines)
            .map_err(|e| Failure::Poison(format!("stored lines do not decode: {e}")))?;
        out.push((r.publisher_id, lines));
    }
    Ok(Some(out))
}

/// `None` with a transient failure while the order's payment is not handled yet (its event
/// comes on another consumer); on the last delivery the event is told to no one rather than
/// dead-lettered (an order paid before webhooks existed).
async fn lines_or_wait(
    tx: &Tx,
    msg: &Incoming,
    order: Uuid,
) -> Result<Option<Vec<(Uuid, Vec<OrderLine>)>>, Failure> {
    match order_lines(tx, order).await? {
        Some(lines) => Ok(Some(lines)),
        None if msg.last_attempt => {
            tracing::warn!(order.id = %order, "no payment seen for the order; no webhook");
            Ok(None)
        }
        None => Err(Failure::Transient(anyhow::anyhow!(
            "the payment of order {order} is not handled yet"
        ))),
    }
}

async fn granted(rt: &Runtime, msg: &Incoming, ev: ItemsGranted) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let Some(by) = lines_or_wait(&tx, msg, ev.order_id).await? else {
        return tx.commit(rt).await;
    };
    let per_publisher = by
        .iter()
        .filter_map(|(publisher, lines)| {
            let lines: Vec<Value> = lines
                .iter()
                .filter(|l| l.is_physical() == ev.physical)
                .map(line_json)
                .collect();
            (!lines.is_empty()).then(|| {
                let data = json!({
                    "orderId": ev.order_id,
                    "physical": ev.physical,
                    "lines": lines,
                });
                (*publisher, data)
            })
        })
        .collect();
    insert_deliveries(&mut tx, msg, EventType::EntitlementGranted, per_publisher).await?;
    tx.commit(rt).await
}

/// Entitlements of an order revoked: all its lines after a refund, its digital lines after a
/// cancellation (`digital_only`: the boxes were never shipped, so never granted).
async fn revoked(
    rt: &Runtime,
    msg: &Incoming,
    order: Uuid,
    digital_only: bool,
) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let Some(by) = lines_or_wait(&tx, msg, order).await? else {
        return tx.commit(rt).await;
    };
    let per_publisher = by
        .iter()
        .filter_map(|(publisher, lines)| {
            let lines: Vec<Value> = lines
                .iter()
                .filter(|l| !digital_only || !l.is_physical())
                .map(line_json)
                .collect();
            (!lines.is_empty()).then(|| (*publisher, json!({ "orderId": order, "lines": lines })))
        })
        .collect();
    insert_deliveries(&mut tx, msg, EventType::EntitlementRevoked, per_publisher).await?;
    tx.commit(rt).await
}

/// Records the deliveries of one event in a transaction of its own.
async fn record(
    rt: &Runtime,
    msg: &Incoming,
    kind: EventType,
    per_publisher: Vec<(Uuid, Value)>,
) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    insert_deliveries(&mut tx, msg, kind, per_publisher).await?;
    tx.commit(rt).await
}

/// The body every attempt of a delivery sends (and signs).
pub fn body(kind: EventType, occurred_at: DateTime<Utc>, data: &Value) -> String {
    json!({
        "type": kind.as_str(),
        "timestamp": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// One delivery per enabled endpoint of each publisher subscribed to `kind`, due at once.
async fn insert_deliveries(
    tx: &mut Tx,
    msg: &Incoming,
    kind: EventType,
    per_publisher: Vec<(Uuid, Value)>,
) -> Result<(), Failure> {
    if per_publisher.is_empty() {
        return Ok(());
    }
    let publishers: Vec<Uuid> = per_publisher.iter().map(|(p, _)| *p).collect();
    let endpoints: Vec<(Uuid, Uuid)> = endpoint::Entity::find()
        .select_only()
        .column(endpoint::Column::Id)
        .column(endpoint::Column::PublisherId)
        .filter(endpoint::Column::PublisherId.is_in(publishers))
        .filter(endpoint::Column::Enabled.eq(true))
        .filter(endpoint::Column::DeletedAt.is_null())
        // `$1` stands apart: sea-query does not see a placeholder right after `[`.
        .filter(Expr::cust_with_values(
            "$1 = ANY(event_types)",
            [kind.as_str()],
        ))
        .into_tuple()
        .all(tx.db())
        .await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let event = msg.envelope.id;
    let rows: Vec<delivery::ActiveModel> = endpoints
        .iter()
        .filter_map(|(endpoint_id, publisher)| {
            let data = per_publisher
                .iter()
                .find(|(p, _)| p == publisher)
                .map(|(_, d)| d)?;
            Some(delivery::ActiveModel {
                id: Set(domain::webhooks::delivery_id(event, *endpoint_id, sha256)),
                endpoint_id: Set(*endpoint_id),
                event_id: Set(event),
                event_type: Set(kind.as_str().to_owned()),
                body: Set(body(kind, msg.envelope.occurred_at, data)),
                status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(Some(Utc::now())),
                ..Default::default()
            })
        })
        .collect();
    let n = rows.len();
    if n == 0 {
        return Ok(());
    }
    delivery::Entity::insert_many(rows)
        // The id is derived from (event, endpoint): a second recording of the event is a no-op.
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(tx.db())
        .await?;
    tracing::info!(event.id = %event, event.kind = kind.as_str(), deliveries = n, "webhook deliveries recorded");
    tx.after_commit(Box::new(|rt| {
        Box::pin(async move {
            rt.wake_webhooks();
        })
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commands

fn new_secret() -> String {
    domain::webhooks::signature::new_secret(|b| rand::rngs::OsRng.fill_bytes(b))
}

fn type_names(types: &[EventType]) -> Vec<String> {
    let mut names: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

#[tracing::instrument(skip_all, fields(endpoint.id = %cmd.endpoint_id))]
async fn register(rt: &Runtime, msg: &Incoming, cmd: RegisterEndpoint) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    endpoint::Entity::insert(endpoint::ActiveModel {
        id: Set(cmd.endpoint_id),
        publisher_id: Set(cmd.publisher_id),
        url: Set(cmd.url),
        description: Set(cmd.description),
        event_types: Set(type_names(&cmd.event_types)),
        enabled: Set(true),
        secret: Set(new_secret()),
        consecutive_failures: Set(0),
        ..Default::default()
    })
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .exec_without_returning(tx.db())
    .await?;
    tx.commit(rt).await?;
    tracing::info!("webhook endpoint registered");
    Ok(())
}

/// The publisher's live endpoint `id`, locked for the transaction.
async fn own_endpoint(
    tx: &Tx,
    id: Uuid,
    publisher: Uuid,
) -> Result<Option<endpoint::Model>, Failure> {
    Ok(endpoint::Entity::find_by_id(id)
        .filter(endpoint::Column::PublisherId.eq(publisher))
        .filter(endpoint::Column::DeletedAt.is_null())
        .lock_exclusive()
        .one(tx.db())
        .await?)
}

#[tracing::instrument(skip_all, fields(endpoint.id = %cmd.endpoint_id))]
async fn update(rt: &Runtime, msg: &Incoming, cmd: UpdateEndpoint) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let Some(current) = own_endpoint(&tx, cmd.endpoint_id, cmd.publisher_id).await? else {
        return tx.commit(rt).await;
    };
    let mut q = endpoint::Entity::update_many()
        .col_expr(endpoint::Column::UpdatedAt, Expr::current_timestamp())
        .filter(endpoint::Column::Id.eq(current.id));
    if let Some(url) = cmd.url {
        q = q.col_expr(endpoint::Column::Url, Expr::value(url));
    }
    if let Some(d) = cmd.description {
        q = q.col_expr(endpoint::Column::Description, Expr::value(d));
    }
    if let Some(types) = cmd.event_types {
        q = q.col_expr(
            endpoint::Column::EventTypes,
            Expr::value(type_names(&types)),
        );
    }
    match cmd.enabled {
        Some(true) if !current.enabled => {
            // A fresh start: the failures that disabled it are forgotten.
            q = q
                .col_expr(endpoint::Column::Enabled, Expr::value(true))
                .col_expr(
                    endpoint::Column::DisabledReason,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(endpoint::Column::ConsecutiveFailures, Expr::value(0))
                .col_expr(
                    endpoint::Column::FailingSince,
                    Expr::value(Option::<DateTime<Utc>>::None),
                );
            tx.after_commit(Box::new(|rt| {
                Box::pin(async move {
                    rt.wake_webhooks();
                })
            }));
        }
        Some(false) if current.enabled => {
            q = q
                .col_expr(endpoint::Column::Enabled, Expr::value(false))
                .col_expr(
                    endpoint::Column::DisabledReason,
                    Expr::value("disabled by its owner"),
                );
        }
        _ => {}
    }
    q.exec(tx.db()).await?;
    tx.commit(rt).await
}

#[tracing::instrument(skip_all, fields(endpoint.id = %cmd.endpoint_id))]
async fn rotate(rt: &Runtime, msg: &Incoming, cmd: RotateSecret) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    let Some(current) = own_endpoint(&tx, cmd.endpoint_id, cmd.publisher_id).await? else {
        return tx.commit(rt).await;
    };
    if current.rotation_id == Some(cmd.rotation_id) {
        return tx.commit(rt).await;
    }
    let overlap_ms =
        i64::try_from(rt.settings.webhooks.secret_overlap.as_millis()).unwrap_or(i64::MAX);
    // Raw: the expiry is the database's now plus the overlap.
    tx.db()
        .execute_raw(stmt(
            "UPDATE webhooks.endpoint SET previous_secret = secret, \
             previous_secret_expires_at = now() + $2 * interval '1 millisecond', \
             secret = $3, rotation_id = $4, updated_at = now() WHERE id = $1",
            [
                current.id.into(),
                overlap_ms.into(),
                new_secret().into(),
                cmd.rotation_id.into(),
            ],
        ))
        .await?;
    tx.commit(rt).await?;
    tracing::info!("webhook secret rotated");
    Ok(())
}

#[tracing::instrument(skip_all, fields(endpoint.id = %cmd.endpoint_id))]
async fn delete(rt: &Runtime, msg: &Incoming, cmd: DeleteEndpoint) -> Result<(), Failure> {
    let Some(tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    if own_endpoint(&tx, cmd.endpoint_id, cmd.publisher_id)
        .await?
        .is_none()
    {
        return tx.commit(rt).await;
    }
    endpoint::Entity::update_many()
        .col_expr(endpoint::Column::DeletedAt, Expr::current_timestamp())
        .col_expr(endpoint::Column::Enabled, Expr::value(false))
        .col_expr(endpoint::Column::UpdatedAt, Expr::current_timestamp())
        .filter(endpoint::Column::Id.eq(cmd.endpoint_id))
        .exec(tx.db())
        .await?;
    delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Failed.as_str()),
        )
        .col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::LastError, Expr::value("endpoint deleted"))
        .filter(delivery::Column::EndpointId.eq(cmd.endpoint_id))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .exec(tx.db())
        .await?;
    tx.commit(rt).await?;
    tracing::info!("webhook endpoint deleted");
    Ok(())
}

#[tracing::instrument(skip_all, fields(delivery.id = %cmd.delivery_id))]
async fn redeliver(rt: &Runtime, msg: &Incoming, cmd: Redeliver) -> Result<(), Failure> {
    let Some(mut tx) = Tx::begin(rt, ME, msg).await? else {
        return Ok(());
    };
    if own_endpoint(&tx, cmd.endpoint_id, cmd.publisher_id)
        .await?
        .is_none()
    {
        return tx.commit(rt).await;
    }
    // A fresh schedule from now; the same delivery, so the same `webhook-id`.
    delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Pending.as_str()),
        )
        .col_expr(delivery::Column::Attempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::current_timestamp())
        .filter(delivery::Column::Id.eq(cmd.delivery_id))
        .filter(delivery::Column::EndpointId.eq(cmd.endpoint_id))
        .exec(tx.db())
        .await?;
    tx.after_commit(Box::new(|rt| {
        Box::pin(async move {
            rt.wake_webhooks();
        })
    }));
    tx.commit(rt).await?;
    tracing::info!("webhook redelivery scheduled");
    Ok(())
}
