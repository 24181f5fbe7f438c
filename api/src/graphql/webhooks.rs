//! Webhooks in GraphQL: a publisher's endpoints (`webhookEndpoints`, `webhookEndpoint`,
//! `createWebhookEndpoint`, `updateWebhookEndpoint`, `rotateWebhookSecret`,
//! `deleteWebhookEndpoint`) and their delivery logs (`WebhookEndpoint.deliveries`,
//! `redeliverWebhook`).

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::graphql::error::stored;
use crate::graphql::guard::{RoleGuard, acting, publisher_in_view};
use crate::graphql::paging;
use crate::infra::error::ApiError;
use crate::webhooks as service;

/// An event a webhook endpoint can receive (the body's `type` is its wire name, given with
/// each value).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::webhooks::EventType")]
pub enum WebhookEventType {
    /// `order.paid`: an order with products of yours was paid.
    OrderPaid,
    /// `order.shipped`: you shipped the boxed copies of an order.
    OrderShipped,
    /// `order.refunded`: an order with products of yours was refunded.
    OrderRefunded,
    /// `entitlement.granted`: products of yours entered a buyer's library.
    EntitlementGranted,
    /// `entitlement.revoked`: products of yours left a buyer's library.
    EntitlementRevoked,
    /// `build.made_current`: a build of your product became the current one of its platform.
    BuildMadeCurrent,
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::webhooks::DeliveryStatus")]
pub enum WebhookDeliveryStatus {
    /// Not delivered yet; `nextAttemptAt` says when it is tried (again).
    Pending,
    /// The endpoint answered with a 2xx status.
    Succeeded,
    /// Every attempt of the schedule failed (about three days); `redeliverWebhook` tries again.
    Failed,
}

/// A webhook endpoint of a publisher. Its signing secret is shown only by
/// `createWebhookEndpoint` and `rotateWebhookSecret`.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub publisher_id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<WebhookEventType>,
    /// Disabled endpoints receive nothing (their owner's choice, or they kept failing).
    pub enabled: bool,
    /// Why it is disabled.
    pub disabled_reason: Option<String>,
    /// Until then the secret before the last rotation signs too (a second `v1,` signature).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Deliveries in a row whose every attempt failed.
    pub consecutive_failures: i32,
    /// Failing every attempt since then (no success since).
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<service::Endpoint> for WebhookEndpoint {
    type Error = ApiError;

    fn try_from(e: service::Endpoint) -> Result<WebhookEndpoint, ApiError> {
        let event_types = e
            .event_types
            .iter()
            .map(|t| {
                stored("webhook event type", t, domain::webhooks::EventType::parse).map(Into::into)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebhookEndpoint {
            id: e.id,
            publisher_id: e.publisher_id,
            url: e.url,
            description: e.description,
            event_types,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            previous_secret_expires_at: e.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            consecutive_failures: e.consecutive_failures,
            failing_since: e.failing_since,
            created_at: e.created_at,
        })
    }
}

#[ComplexObject]
impl WebhookEndpoint {
    /// The delivery log, newest first.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many deliveries to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, WebhookDelivery>> {
        let (state, _) = acting(ctx)?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<DeliveryCursor>("delivery", after.as_deref())?;
        let rows =
            service::deliveries(state, self.id, cursor.map(|c| (c.at, c.id)), first + 1).await?;
        let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
        let attempts = service::attempts_of(state, &ids).await?;
        Ok(paging::try_page(
            rows,
            first,
            after.is_some(),
            |d| {
                paging::encode(
                    "delivery",
                    &format!("{}_{}", d.created_at.timestamp_micros(), d.id),
                )
            },
            |d| WebhookDelivery::build(d, &attempts),
        )?)
    }
}

/// The cursor of the delivery log: (created at, id).
struct DeliveryCursor {
    at: DateTime<Utc>,
    id: Uuid,
}

impl std::str::FromStr for DeliveryCursor {
    type Err = ();

    fn from_str(s: &str) -> Result<DeliveryCursor, ()> {
        let (micros, id) = s.split_once('_').ok_or(())?;
        let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| ())?).ok_or(())?;
        Ok(DeliveryCursor {
            at,
            id: id.parse().map_err(|_| ())?,
        })
    }
}

/// One HTTP request of a delivery.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookAttempt {
    pub attempted_at: DateTime<Utc>,
    /// A 2xx answer.
    pub succeeded: bool,
    /// The endpoint's HTTP status; `null` when none came (timeout, connection refused).
    pub status_code: Option<i32>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: i32,
    /// What went wrong, in words.
    pub error: Option<String>,
}

/// One event for one endpoint, and what became of it.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookDelivery {
    pub id: Uuid,
    /// The `webhook-id` header of every attempt (receivers de-duplicate on it).
    pub webhook_id: String,
    pub event_type: WebhookEventType,
    pub status: WebhookDeliveryStatus,
    /// Attempts of the current schedule (a redelivery starts a new one).
    pub attempts: i32,
    /// When it is tried next (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_latency_ms: Option<i32>,
    pub last_error: Option<String>,
    /// The JSON body every attempt sends: `{"type", "timestamp", "data"}`.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    /// Every attempt, oldest first (redeliveries included).
    pub attempt_log: Vec<WebhookAttempt>,
}

impl WebhookDelivery {
    fn build(
        d: service::Delivery,
        attempts: &[service::Attempt],
    ) -> Result<WebhookDelivery, ApiError> {
        Ok(WebhookDelivery {
            id: d.id,
            webhook_id: domain::webhooks::webhook_id(d.id),
            event_type: stored(
                "webhook event type",
                &d.event_type,
                domain::webhooks::EventType::parse,
            )?
            .into(),
            status: stored(
                "webhook delivery status",
                &d.status,
                domain::webhooks::DeliveryStatus::parse,
            )?
            .into(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            last_latency_ms: d.last_latency_ms,
            last_error: d.last_error,
            payload: d.body,
            created_at: d.created_at,
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(|a| WebhookAttempt {
                    attempted_at: a.attempted_at,
                    succeeded: a.succeeded,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                })
                .collect(),
        })
    }
}

/// An endpoint and its signing secret (`whsec_…`), shown this once: keep it.
#[derive(SimpleObject, Clone, Debug)]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    /// `whsec_` followed by base64 of the key bytes; verify each delivery's
    /// `webhook-signature` with it.
    pub secret: String,
}

/// A new webhook endpoint.
#[derive(InputObject, Clone, Debug)]
pub struct CreateWebhookEndpointInput {
    /// Where deliveries are POSTed: `https` (plain `http` only to hosts the store allows), a
    /// host that resolves to public addresses only.
    pub url: String,
    /// A note for yourself, at most 200 characters.
    #[graphql(default)]
    pub description: String,
    /// The events it receives (at least one).
    pub event_types: Vec<WebhookEventType>,
}

/// Changes of a webhook endpoint; a field left out stays as it is.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateWebhookEndpointInput {
    /// A new URL (checked as at creation).
    pub url: Option<String>,
    /// A new note, at most 200 characters.
    pub description: Option<String>,
    /// The events it receives from now on (at least one).
    pub event_types: Option<Vec<WebhookEventType>>,
    /// `true` enables it again (forgetting its failures), `false` disables it.
    pub enabled: Option<bool>,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// A publisher's webhook endpoints, newest first: the caller's own, or (admins) those of
    /// `publisherId`.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Admins: whose endpoints; publishers may leave it out (their own).")]
        publisher_id: Option<Uuid>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let (state, me) = acting(ctx)?;
        let publisher = publisher_in_view(
            me,
            publisher_id,
            "a publisher sees only their own endpoints",
        )?;
        Ok(service::endpoints_of(state, publisher)
            .await?
            .into_iter()
            .map(WebhookEndpoint::try_from)
            .collect::<Result<_, _>>()?)
    }

    /// One webhook endpoint of the caller (admins: any); `NOT_FOUND` for anyone else's.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the endpoint.")] id: Uuid,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let (state, me) = acting(ctx)?;
        Ok(service::endpoint_for(state, me, id).await?.try_into()?)
    }
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Registers a webhook endpoint for events of the caller's products; the answer holds its
    /// signing secret, shown only this once.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint's URL, events and description.")]
        input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let (state, me) = acting(ctx)?;
        let (e, secret) = service::create(
            state,
            me,
            service::NewEndpoint {
                url: input.url,
                description: input.description,
                event_types: input.event_types.into_iter().map(Into::into).collect(),
            },
        )
        .await?;
        Ok(WebhookEndpointWithSecret {
            endpoint: e.try_into()?,
            secret,
        })
    }

    /// Changes a webhook endpoint of the caller (admins: any).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the endpoint.")] id: Uuid,
        #[graphql(desc = "What changes.")] input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let (state, me) = acting(ctx)?;
        let change = service::EndpointChange {
            url: input.url,
            description: input.description,
            event_types: input
                .event_types
                .map(|ts| ts.into_iter().map(Into::into).collect()),
            enabled: input.enabled,
        };
        Ok(service::update(state, me, id, change).await?.try_into()?)
    }

    /// A new signing secret, shown this once. For the overlap (24 hours by default) every
    /// delivery carries a signature with the previous secret too, so receivers can switch
    /// without losing one.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the endpoint.")] id: Uuid,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let (state, me) = acting(ctx)?;
        let (e, secret) = service::rotate_secret(state, me, id).await?;
        Ok(WebhookEndpointWithSecret {
            endpoint: e.try_into()?,
            secret,
        })
    }

    /// Deletes a webhook endpoint: nothing more is sent to it.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the endpoint.")] id: Uuid,
    ) -> async_graphql::Result<bool> {
        let (state, me) = acting(ctx)?;
        service::delete(state, me, id).await?;
        Ok(true)
    }

    /// Sends a delivery of the log again, now (same `webhook-id`, a fresh timestamp and
    /// signature, a fresh retry schedule).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the delivery (`WebhookDelivery.id`).")] delivery_id: Uuid,
    ) -> async_graphql::Result<WebhookDelivery> {
        let (state, me) = acting(ctx)?;
        let d = service::redeliver(state, me, delivery_id).await?;
        let attempts = service::attempts_of(state, &[d.id]).await?;
        Ok(WebhookDelivery::build(d, &attempts)?)
    }
}
