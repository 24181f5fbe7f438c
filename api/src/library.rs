//! Library on the api side: what an account owns (`library.entitlement`, written by the library
//! participant).

use domain::library::entity::{entitlement, gift_key, gift_key_batch};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::infra::error::ApiResult;
use crate::infra::state::AppState;

/// An entitlement.
#[derive(Clone, Debug)]
pub struct Item {
    pub id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    /// `None` for a product added with a gift key.
    pub order_id: Option<Uuid>,
    pub license_key: String,
    pub granted_at: chrono::DateTime<chrono::Utc>,
}

/// The account's active entitlements (revoked ones, of refunded or cancelled orders, are gone
/// from the library), newest first, after the cursor (an entitlement id).
pub async fn items(
    state: &AppState,
    account: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<Item>> {
    let mut query = entitlement::Entity::find()
        .filter(entitlement::Column::AccountId.eq(account))
        .filter(entitlement::Column::RevokedAt.is_null());
    if let Some(after) = after {
        query = query.filter(entitlement::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(entitlement::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|e| Item {
            id: e.id,
            product_id: e.product_id,
            edition_id: e.edition_id,
            order_id: e.order_id,
            license_key: e.license_key,
            granted_at: e.granted_at,
        })
        .collect())
}

/// Whether the account owns the product (an entitlement that is not revoked).
pub async fn owns(state: &AppState, account: Uuid, product: Uuid) -> ApiResult<bool> {
    Ok(entitlement::Entity::find()
        .filter(entitlement::Column::AccountId.eq(account))
        .filter(entitlement::Column::ProductId.eq(product))
        .filter(entitlement::Column::RevokedAt.is_null())
        .one(&state.db)
        .await?
        .is_some())
}

/// A batch of gift keys as the read side sees it (`keys` is empty until the library
/// participant generated them).
#[derive(Clone, Debug)]
pub struct Batch {
    pub id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    pub quantity: i32,
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One gift key of a batch.
#[derive(Clone, Debug)]
pub struct GiftKey {
    pub batch_id: Uuid,
    pub key: String,
    pub redeemed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Asks library for `quantity` gift keys of an edition of the caller's product (admins: any
/// product); returns the batch id. The keys appear moments later (`giftKeyBatches`).
pub async fn generate_gift_keys(
    state: &AppState,
    me: &crate::infra::auth::Principal,
    edition_id: Uuid,
    quantity: i32,
    label: &str,
) -> ApiResult<Uuid> {
    use domain::catalog::entity::{edition, product};
    let max = domain::library::MAX_GIFT_KEYS;
    if !(1..=max).contains(&quantity) {
        return Err(crate::infra::error::ApiError::BadInput {
            field: "quantity",
            message: format!("a batch holds 1 to {max} keys"),
        });
    }
    let label = label.trim();
    if label.chars().count() > 200 {
        return Err(crate::infra::error::ApiError::BadInput {
            field: "label",
            message: "at most 200 characters".into(),
        });
    }
    let edition = edition::Entity::find_by_id(edition_id)
        .one(&state.db)
        .await?
        .ok_or(crate::infra::error::ApiError::NotFound("edition"))?;
    let product = product::Entity::find_by_id(edition.product_id)
        .one(&state.db)
        .await?
        .ok_or(crate::infra::error::ApiError::NotFound("product"))?;
    if product.publisher_id != me.id && me.role != domain::identity::Role::Admin {
        return Err(crate::infra::error::ApiError::Forbidden(
            "only the product's publisher makes its keys",
        ));
    }
    let batch_id = domain::id::new_id();
    let mut envelope = domain::messaging::Envelope::new(
        domain::library::GenerateGiftKeys {
            batch_id,
            publisher_id: product.publisher_id,
            product_id: product.id,
            edition_id,
            quantity,
            label: label.to_owned(),
        },
        batch_id,
        Some(me.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    state.bus.publish(&envelope).await?;
    tracing::info!(batch.id = %batch_id, quantity, "gift keys requested");
    Ok(batch_id)
}

/// The publisher's batches, newest first (optionally of one product).
pub async fn batches(
    state: &AppState,
    publisher: Uuid,
    product: Option<Uuid>,
) -> ApiResult<Vec<Batch>> {
    let mut query =
        gift_key_batch::Entity::find().filter(gift_key_batch::Column::PublisherId.eq(publisher));
    if let Some(product) = product {
        query = query.filter(gift_key_batch::Column::ProductId.eq(product));
    }
    let rows = query
        .order_by_desc(gift_key_batch::Column::Id)
        .limit(100)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|b| Batch {
            id: b.id,
            product_id: b.product_id,
            edition_id: b.edition_id,
            quantity: b.quantity,
            label: b.label,
            created_at: b.created_at,
        })
        .collect())
}

/// The keys of `batches`, in one statement (a page of batches is one round trip), in a stable
/// order.
pub async fn batch_keys(state: &AppState, batches: &[Uuid]) -> ApiResult<Vec<GiftKey>> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let rows = gift_key::Entity::find()
        .filter(gift_key::Column::BatchId.is_in(batches.to_vec()))
        .order_by_asc(gift_key::Column::Id)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|k| GiftKey {
            batch_id: k.batch_id,
            key: k.key,
            redeemed_at: k.redeemed_at,
        })
        .collect())
}

/// How long `redeemKey` waits for the library participant's answer.
const REDEEM_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The outcome of a redemption.
#[derive(Clone, Debug)]
pub enum Redemption {
    /// The product is in the library (entitlement, product).
    Redeemed(Uuid, Uuid),
    /// The library participant has not answered in time; the outcome arrives as a
    /// notification.
    Pending(Uuid),
}

/// Redeems a gift key for the caller: publishes `cmd.library.redeem_key` and waits (briefly)
/// for the participant's answer, which decides exactly once per key. Refusals are errors:
/// `NOT_FOUND` for an unknown key, `CONFLICT` for a used key or an owned product.
pub async fn redeem(
    state: &AppState,
    me: &crate::infra::auth::Principal,
    key: &str,
) -> ApiResult<Redemption> {
    use domain::library::{KeyRedeemed, RedeemKey, RedeemRefusal};
    use futures::StreamExt;
    // People type keys: any case, spaces, with or without dashes.
    let compact: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let normalised = compact
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    if !domain::library::is_license_key(&normalised) {
        return Err(crate::infra::error::ApiError::BadInput {
            field: "key",
            message: "a key looks like XXXXX-XXXXX-XXXXX-XXXXX".into(),
        });
    }
    let redemption_id = domain::id::new_id();
    let mut answers = state
        .nats
        .subscribe(
            state
                .bus
                .subject(&format!("evt.library.key_redeemed.{redemption_id}")),
        )
        .await
        .map_err(|e| anyhow::anyhow!("subscribing to the redemption's answer: {e}"))?;
    let mut envelope = domain::messaging::Envelope::new(
        RedeemKey {
            redemption_id,
            account_id: me.id,
            key: normalised,
        },
        redemption_id,
        Some(me.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    state.bus.publish(&envelope).await?;
    let answer = tokio::time::timeout(REDEEM_WAIT, answers.next()).await;
    let Ok(Some(msg)) = answer else {
        return Ok(Redemption::Pending(redemption_id));
    };
    let ev: domain::messaging::Envelope<KeyRedeemed> = serde_json::from_slice(&msg.payload)
        .map_err(|e| anyhow::anyhow!("decoding the redemption's answer: {e}"))?;
    match ev.data.outcome {
        Ok((entitlement, product)) => Ok(Redemption::Redeemed(entitlement, product)),
        Err(RedeemRefusal::UnknownKey) => Err(crate::infra::error::ApiError::NotFound("gift key")),
        Err(RedeemRefusal::AlreadyRedeemed) => Err(crate::infra::error::ApiError::Conflict(
            "this key was redeemed already".into(),
        )),
        Err(RedeemRefusal::AlreadyOwned) => Err(crate::infra::error::ApiError::Conflict(
            "you own this product already; the key stays unused".into(),
        )),
    }
}
