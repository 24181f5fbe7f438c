//! API clients and ownership tickets in GraphQL (issue 16): a publisher's `apiClients`,
//! `createApiClient` (the secret shown once), `revokeApiClient`; a buyer's `ownershipTicket`.
//! `ownsProduct(productId, buyerId)` for publishers is in `graphql::library`.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::identity::Scope;
use uuid::Uuid;

use crate::graphql::guard::{RoleGuard, acting};
use crate::identity::{clients, tickets};
use crate::infra::ratelimit;

/// What an API client may do in its publisher's name (its OAuth `scope` in brackets).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiScope {
    /// `sales:read`: revenue and the live feed of sales (`publisherRevenue`, `salesFeed`).
    SalesRead,
    /// `catalog:read`: the publisher's own products, drafts included (`myProducts`,
    /// `stockCommand`).
    CatalogRead,
    /// `catalog:write`: create and change products, editions, stock, images and builds.
    CatalogWrite,
    /// `shipments:write`: orders to ship and shipping them (`pendingShipments`, `shipOrder`,
    /// `shipmentsUpdated`).
    ShipmentsWrite,
    /// `ownership:read`: whether a buyer who presented a ticket owns a product
    /// (`ownsProduct(productId, buyerId)`).
    OwnershipRead,
    /// `webhooks:read`: the publisher's webhook endpoints and their delivery logs
    /// (`webhookEndpoints`, `webhookEndpoint`).
    WebhooksRead,
    /// `webhooks:write`: register, change and delete webhook endpoints, rotate their secrets,
    /// send a delivery again (`createWebhookEndpoint`, `updateWebhookEndpoint`,
    /// `deleteWebhookEndpoint`, `rotateWebhookSecret`, `redeliverWebhook`).
    WebhooksWrite,
}

impl From<ApiScope> for Scope {
    fn from(s: ApiScope) -> Scope {
        match s {
            ApiScope::SalesRead => Scope::SalesRead,
            ApiScope::CatalogRead => Scope::CatalogRead,
            ApiScope::CatalogWrite => Scope::CatalogWrite,
            ApiScope::ShipmentsWrite => Scope::ShipmentsWrite,
            ApiScope::OwnershipRead => Scope::OwnershipRead,
            ApiScope::WebhooksRead => Scope::WebhooksRead,
            ApiScope::WebhooksWrite => Scope::WebhooksWrite,
        }
    }
}

impl From<Scope> for ApiScope {
    fn from(s: Scope) -> ApiScope {
        match s {
            Scope::SalesRead => ApiScope::SalesRead,
            Scope::CatalogRead => ApiScope::CatalogRead,
            Scope::CatalogWrite => ApiScope::CatalogWrite,
            Scope::ShipmentsWrite => ApiScope::ShipmentsWrite,
            Scope::OwnershipRead => ApiScope::OwnershipRead,
            Scope::WebhooksRead => ApiScope::WebhooksRead,
            Scope::WebhooksWrite => ApiScope::WebhooksWrite,
        }
    }
}

/// A scope as offered when creating a client.
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiScopeInfo {
    pub scope: ApiScope,
    /// The scope as written in OAuth `scope` strings, e.g. `sales:read`.
    pub name: String,
    pub description: String,
}

/// An API client of the caller (never its secret).
#[derive(SimpleObject, Clone, Debug)]
pub struct ApiClient {
    /// The `client_id` of token requests.
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    /// The scopes as an OAuth `scope` string, e.g. `sales:read ownership:read`.
    pub scope: String,
    pub created_at: DateTime<Utc>,
    /// When it was revoked; its tokens stop working at once and it gets no new ones.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last token request or request made with one of its tokens (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<clients::ApiClient> for ApiClient {
    fn from(c: clients::ApiClient) -> ApiClient {
        ApiClient {
            id: c.id,
            name: c.name,
            scope: Scope::join(&c.scopes),
            scopes: c.scopes.into_iter().map(ApiScope::from).collect(),
            created_at: c.created_at,
            revoked_at: c.revoked_at,
            last_used_at: c.last_used_at,
        }
    }
}

/// A new client and its secret: the only time the secret is shown.
#[derive(SimpleObject, Clone, Debug)]
pub struct CreatedApiClient {
    pub client: ApiClient,
    /// The `client_secret` of token requests. Store it now: the store keeps only its hash.
    pub client_secret: String,
}

/// A short-lived, signed proof that the caller owns one product, for that product's publisher.
#[derive(SimpleObject, Clone, Debug)]
pub struct OwnershipTicket {
    /// The RS256 JWT to hand to the publisher (see the README, "Ownership tickets").
    pub ticket: String,
    pub product_id: Uuid,
    /// The ticket's audience (`aud`): the product's publisher.
    pub publisher_id: Uuid,
    /// The ticket's `sub`: the caller's id for this publisher only.
    pub buyer_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct ClientQuery;

#[Object]
impl ClientQuery {
    /// The scopes an API client can be given.
    async fn api_scopes(&self) -> Vec<ApiScopeInfo> {
        Scope::ALL
            .into_iter()
            .map(|s| ApiScopeInfo {
                scope: s.into(),
                name: s.as_str().to_owned(),
                description: s.description().to_owned(),
            })
            .collect()
    }

    /// Publishers: their API clients, newest first, revoked ones included.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn api_clients(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiClient>> {
        let (state, me) = acting(ctx)?;
        Ok(clients::list(state, me)
            .await?
            .into_iter()
            .map(ApiClient::from)
            .collect())
    }
}

#[derive(Default)]
pub struct ClientMutation;

#[Object]
impl ClientMutation {
    /// Publishers: a new API client with the given scopes. The answer holds its secret, shown
    /// this once. At most 20 clients that are not revoked.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn create_api_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A name to recognise the client by (1 to 64 characters).")] name: String,
        #[graphql(desc = "What the client may do; at least one scope.")] scopes: Vec<ApiScope>,
    ) -> async_graphql::Result<CreatedApiClient> {
        let (state, me) = acting(ctx)?;
        let scopes: Vec<Scope> = scopes.into_iter().map(Scope::from).collect();
        let (client, secret) = clients::create(state, me, &name, &scopes).await?;
        Ok(CreatedApiClient {
            client: client.into(),
            client_secret: secret,
        })
    }

    /// Publishers: revokes one of their API clients. Its tokens stop working at once; asking
    /// again changes nothing.
    #[graphql(guard = "RoleGuard::publisher()")]
    async fn revoke_api_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id (`client_id`) of the client to revoke.")] id: Uuid,
    ) -> async_graphql::Result<ApiClient> {
        let (state, me) = acting(ctx)?;
        Ok(clients::revoke(state, me, id).await?.into())
    }

    /// A ticket proving that the caller owns the product, valid 5 minutes, for the product's
    /// publisher only (`FORBIDDEN` unless the caller owns it; `RATE_LIMITED` past
    /// `RATE_LIMIT_TICKET_PER_ACCOUNT` tickets of one account).
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn ownership_ticket(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The product the ticket speaks of (and no other).")] product_id: Uuid,
    ) -> async_graphql::Result<OwnershipTicket> {
        let (state, me) = acting(ctx)?;
        // Per caller, before anything is looked up or written (a first ticket for a publisher
        // makes the buyer's id for it). Without Redis tickets are still issued: a ticket
        // guesses nothing, the limit only bounds the signing a client can ask for.
        ratelimit::hit(
            ratelimit::Counters::of(state),
            "ticket-account",
            &me.id.to_string(),
            state.config.rates.ticket_per_account,
            ratelimit::WithoutRedis::Allow,
        )
        .await?;
        let t = tickets::issue(state, me, product_id).await?;
        Ok(OwnershipTicket {
            publisher_id: t
                .claims
                .aud
                .parse()
                .map_err(|e| crate::infra::error::ApiError::Internal(anyhow::anyhow!("{e}")))?,
            buyer_id: t.claims.sub,
            product_id: t.claims.product,
            expires_at: DateTime::from_timestamp(t.claims.exp, 0).unwrap_or_else(Utc::now),
            ticket: t.token,
        })
    }
}
