//! Ownership tickets (issue 16): a signed-in buyer's client asks for a short-lived proof that
//! the buyer owns one product, to show to that product's publisher (a game's own server, say),
//! which checks it offline with the store's JWK set or online with `ownsProduct(productId,
//! buyerId)` as its own API client.
//!
//! A ticket is an RS256 JWT signed with the access-token key, header `typ`
//! [`TICKET_TYPE`](crate::infra::auth::jwt::TICKET_TYPE), claims:
//! - `iss`: the store (`JWT_ISSUER`);
//! - `aud`: the product's publisher id, so a ticket shown to another publisher fails its audience
//!   check (and it is never this api's audience: a ticket is no access token);
//! - `sub`: the buyer's id *for that publisher*: random, one per (publisher, account), so two
//!   publishers cannot tell that they share a buyer, and the raw account id never leaves;
//! - `product`: the one product the ticket speaks of; nothing about any other;
//! - `iat`, `nbf`, `exp` (`TICKET_TTL_SECS`, 5 minutes) and a random `jti`, which a publisher
//!   may remember until `exp` to refuse a replay.

use chrono::Utc;
use domain::catalog::entity::product;
use domain::identity::entity::publisher_buyer;
use rand::RngCore;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::OnConflict};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// How long a ticket is valid (seconds).
pub const TICKET_TTL_SECS: i64 = 300;

/// The claims of an ownership ticket (see the module's doc).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TicketClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub product: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// An issued ticket.
#[derive(Clone, Debug)]
pub struct Ticket {
    pub token: String,
    pub claims: TicketClaims,
}

fn new_buyer_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "b_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The id under which `publisher` knows `account`, made on first use. Two concurrent calls
/// agree: the insert keeps the first row and both read it.
pub async fn buyer_id(state: &AppState, publisher: Uuid, account: Uuid) -> ApiResult<String> {
    let row = publisher_buyer::ActiveModel {
        publisher_id: sea_orm::ActiveValue::Set(publisher),
        account_id: sea_orm::ActiveValue::Set(account),
        buyer_id: sea_orm::ActiveValue::Set(new_buyer_id()),
        created_at: sea_orm::ActiveValue::Set(Utc::now()),
    };
    publisher_buyer::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                publisher_buyer::Column::PublisherId,
                publisher_buyer::Column::AccountId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
    let found = publisher_buyer::Entity::find_by_id((publisher, account))
        .one(&state.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the buyer id just written is gone"))?;
    Ok(found.buyer_id)
}

/// The account that `publisher` knows as `buyer`, if any (only that publisher's ids map).
pub async fn account_of(state: &AppState, publisher: Uuid, buyer: &str) -> ApiResult<Option<Uuid>> {
    Ok(publisher_buyer::Entity::find()
        .filter(publisher_buyer::Column::PublisherId.eq(publisher))
        .filter(publisher_buyer::Column::BuyerId.eq(buyer))
        .one(&state.db)
        .await?
        .map(|r| r.account_id))
}

/// The publisher of a product (`NOT_FOUND` when there is none).
pub async fn publisher_of(state: &AppState, product_id: Uuid) -> ApiResult<Uuid> {
    product::Entity::find_by_id(product_id)
        .one(&state.db)
        .await?
        .map(|p| p.publisher_id)
        .ok_or(ApiError::NotFound("product"))
}

/// A ticket for `me`'s ownership of `product_id`: `FORBIDDEN` unless `me` owns it (an
/// entitlement that is not revoked), `NOT_FOUND` for no such product.
pub async fn issue(state: &AppState, me: &Principal, product_id: Uuid) -> ApiResult<Ticket> {
    let publisher = publisher_of(state, product_id).await?;
    if !crate::library::owns(state, me.id, product_id).await? {
        return Err(ApiError::Forbidden(
            "only an owner of the product gets a ticket for it",
        ));
    }
    let sub = buyer_id(state, publisher, me.id).await?;
    let now = Utc::now().timestamp();
    let claims = TicketClaims {
        iss: state.keys.issuer().to_owned(),
        aud: publisher.to_string(),
        sub,
        product: product_id,
        iat: now,
        nbf: now,
        exp: now + TICKET_TTL_SECS,
        jti: domain::id::new_id(),
    };
    let token = state.keys.sign_ticket(&claims)?;
    tracing::info!(product.id = %product_id, "ownership ticket issued");
    Ok(Ticket { token, claims })
}

/// Whether the buyer `publisher` knows as `buyer` owns `product_id` now, asked by that
/// publisher (or its API client): `FORBIDDEN` when the product is another publisher's, false
/// for a buyer id this publisher never saw.
pub async fn owns_as_publisher(
    state: &AppState,
    publisher: Uuid,
    product_id: Uuid,
    buyer: &str,
) -> ApiResult<bool> {
    if publisher_of(state, product_id).await? != publisher {
        return Err(ApiError::Forbidden(
            "only the product's publisher may ask who owns it",
        ));
    }
    match account_of(state, publisher, buyer).await? {
        Some(account) => crate::library::owns(state, account, product_id).await,
        None => Ok(false),
    }
}
