//! Webhooks on the api side: publishers' endpoints and their delivery logs (the `webhooks`
//! schema, written only by the webhooks participant: the api checks, sends a command and waits
//! until the participant applied it).
//!
//! Only an endpoint's publisher (or an admin) sees it or acts on it; anyone else gets
//! `NOT_FOUND`, as for an endpoint that does not exist. A URL is checked here against the
//! [`TargetPolicy`] (shape and every address its host resolves to) and again by the participant
//! at every connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::identity::Role;
use domain::messaging::{Envelope, Message};
use domain::webhooks::entity::{attempt, delivery, endpoint};
use domain::webhooks::target::TargetPolicy;
use domain::webhooks::{
    DeleteEndpoint, EventType, Redeliver, RegisterEndpoint, RotateSecret, UpdateEndpoint,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// An endpoint as its owner sees it (never its secret, which is shown once).
pub type Endpoint = endpoint::Model;
/// A delivery of the log.
pub type Delivery = delivery::Model;
/// One attempt of a delivery.
pub type Attempt = attempt::Model;

/// The targets the api accepts at registration.
pub fn policy(state: &AppState) -> TargetPolicy {
    state.config.services.webhook_targets()
}

/// How long the api waits for the participant to apply a command.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// Publishes `data` as a command of the caller and waits until the webhooks participant has
/// handled it (its inbox holds the id), at most [`APPLY_WAIT`].
async fn command<T: Message>(
    state: &AppState,
    me: &Principal,
    data: T,
    about: Uuid,
) -> ApiResult<()> {
    let mut envelope = Envelope::new(data, about, Some(me.id));
    envelope.trace = Some(domain::bus::new_traceparent());
    state.bus.publish(&envelope).await?;
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        let handled = domain::webhooks::entity::inbox::Entity::find_by_id(envelope.id)
            .one(&state.db)
            .await?
            .is_some();
        if handled {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Unconfirmed(
                "the webhooks service did not confirm the change in time; it may still apply"
                    .into(),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadInput {
        field,
        message: message.into(),
    }
}

/// The URL, checked: `BAD_USER_INPUT` naming `url` when it may not be a target.
pub async fn check_url(state: &AppState, url: &str) -> ApiResult<String> {
    if url.len() > domain::webhooks::MAX_URL_LEN {
        return Err(bad(
            "url",
            format!("at most {} characters", domain::webhooks::MAX_URL_LEN),
        ));
    }
    let checked = policy(state)
        .check(url)
        .await
        .map_err(|e| bad("url", e.to_string()))?;
    Ok(checked.to_string())
}

fn check_description(d: &str) -> ApiResult<String> {
    let d = d.trim();
    if d.chars().count() > domain::webhooks::MAX_DESCRIPTION_LEN {
        return Err(bad(
            "description",
            format!(
                "at most {} characters",
                domain::webhooks::MAX_DESCRIPTION_LEN
            ),
        ));
    }
    Ok(d.to_owned())
}

fn check_types(types: &[EventType]) -> ApiResult<Vec<EventType>> {
    let mut types = types.to_vec();
    types.sort();
    types.dedup();
    if types.is_empty() {
        return Err(bad("eventTypes", "choose at least one event type"));
    }
    Ok(types)
}

/// The endpoint `id` if the caller may see it (its publisher, or an admin); `NOT_FOUND`
/// otherwise, whether it exists or not.
pub async fn endpoint_for(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<Endpoint> {
    endpoint::Entity::find_by_id(id)
        .filter(endpoint::Column::DeletedAt.is_null())
        .one(&state.db)
        .await?
        .filter(|e| e.publisher_id == me.id || me.role == Role::Admin)
        .ok_or(ApiError::NotFound("webhook endpoint"))
}

/// The live endpoints of `publisher`, newest first.
pub async fn endpoints_of(state: &AppState, publisher: Uuid) -> ApiResult<Vec<Endpoint>> {
    Ok(endpoint::Entity::find()
        .filter(endpoint::Column::PublisherId.eq(publisher))
        .filter(endpoint::Column::DeletedAt.is_null())
        .order_by_desc(endpoint::Column::CreatedAt)
        .order_by_desc(endpoint::Column::Id)
        .all(&state.db)
        .await?)
}

/// What registering an endpoint asks.
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
}

/// Registers an endpoint of the caller; returns it with its secret (the only time the secret
/// is shown, with [`rotate_secret`]).
#[tracing::instrument(skip_all, fields(publisher.id = %me.id))]
pub async fn create(
    state: &AppState,
    me: &Principal,
    input: NewEndpoint,
) -> ApiResult<(Endpoint, String)> {
    let event_types = check_types(&input.event_types)?;
    let description = check_description(&input.description)?;
    let url = check_url(state, &input.url).await?;
    let count = endpoint::Entity::find()
        .filter(endpoint::Column::PublisherId.eq(me.id))
        .filter(endpoint::Column::DeletedAt.is_null())
        .count(&state.db)
        .await?;
    if count >= domain::webhooks::MAX_ENDPOINTS {
        return Err(ApiError::Conflict(format!(
            "a publisher has at most {} webhook endpoints",
            domain::webhooks::MAX_ENDPOINTS
        )));
    }
    let id = domain::id::new_id();
    command(
        state,
        me,
        RegisterEndpoint {
            endpoint_id: id,
            publisher_id: me.id,
            url,
            description,
            event_types,
        },
        id,
    )
    .await?;
    let e = endpoint_for(state, me, id).await?;
    let secret = e.secret.clone();
    tracing::info!(endpoint.id = %id, "webhook endpoint created");
    Ok((e, secret))
}

/// What an update changes (`None`: unchanged).
#[derive(Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
}

pub async fn update(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    change: EndpointChange,
) -> ApiResult<Endpoint> {
    let e = endpoint_for(state, me, id).await?;
    let url = match change.url {
        Some(u) => Some(check_url(state, &u).await?),
        None => None,
    };
    let description = change
        .description
        .as_deref()
        .map(check_description)
        .transpose()?;
    let event_types = change.event_types.as_deref().map(check_types).transpose()?;
    command(
        state,
        me,
        UpdateEndpoint {
            endpoint_id: id,
            publisher_id: e.publisher_id,
            url,
            description,
            event_types,
            enabled: change.enabled,
        },
        id,
    )
    .await?;
    endpoint_for(state, me, id).await
}

/// A new secret for the endpoint; the previous one keeps signing for the overlap. Returns the
/// endpoint and the new secret.
pub async fn rotate_secret(
    state: &AppState,
    me: &Principal,
    id: Uuid,
) -> ApiResult<(Endpoint, String)> {
    let e = endpoint_for(state, me, id).await?;
    let rotation_id = domain::id::new_id();
    command(
        state,
        me,
        RotateSecret {
            endpoint_id: id,
            publisher_id: e.publisher_id,
            rotation_id,
        },
        id,
    )
    .await?;
    let e = endpoint_for(state, me, id).await?;
    if e.rotation_id != Some(rotation_id) {
        return Err(ApiError::Conflict(
            "the endpoint changed meanwhile; rotate again".into(),
        ));
    }
    let secret = e.secret.clone();
    tracing::info!(endpoint.id = %id, "webhook secret rotated");
    Ok((e, secret))
}

pub async fn delete(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<()> {
    let e = endpoint_for(state, me, id).await?;
    command(
        state,
        me,
        DeleteEndpoint {
            endpoint_id: id,
            publisher_id: e.publisher_id,
        },
        id,
    )
    .await
}

/// The endpoint's deliveries, newest first, after the cursor (created at, id).
pub async fn deliveries(
    state: &AppState,
    endpoint: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> ApiResult<Vec<Delivery>> {
    let mut q = delivery::Entity::find().filter(delivery::Column::EndpointId.eq(endpoint));
    if let Some((at, id)) = after {
        q = q.filter(Expr::cust_with_values(
            "(created_at, id) < ( $1 , $2 )",
            [sea_orm::Value::from(at), sea_orm::Value::from(id)],
        ));
    }
    Ok(q.order_by_desc(delivery::Column::CreatedAt)
        .order_by_desc(delivery::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?)
}

/// The attempts of `deliveries`, oldest first (one statement for a page of the log).
pub async fn attempts_of(state: &AppState, deliveries: &[Uuid]) -> ApiResult<Vec<Attempt>> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    Ok(attempt::Entity::find()
        .filter(attempt::Column::DeliveryId.is_in(deliveries.iter().copied()))
        .order_by_asc(attempt::Column::AttemptedAt)
        .order_by_asc(attempt::Column::Id)
        .all(&state.db)
        .await?)
}

/// The delivery `id` if the caller may see its endpoint.
pub async fn delivery_for(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<Delivery> {
    let d = delivery::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))?;
    endpoint_for(state, me, d.endpoint_id)
        .await
        .map_err(|_| ApiError::NotFound("webhook delivery"))?;
    Ok(d)
}

/// Schedules the delivery again now (same `webhook-id`, a fresh schedule).
pub async fn redeliver(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<Delivery> {
    let d = delivery_for(state, me, id).await?;
    let e = endpoint_for(state, me, d.endpoint_id).await?;
    command(
        state,
        me,
        Redeliver {
            delivery_id: id,
            endpoint_id: e.id,
            publisher_id: e.publisher_id,
        },
        id,
    )
    .await?;
    tracing::info!(delivery.id = %id, "webhook redelivery requested");
    delivery_for(state, me, id).await
}
