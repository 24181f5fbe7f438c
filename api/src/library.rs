//! Library on the api side: what an account owns (`library.entitlement`, written by the library
//! participant).

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::ordering::stmt;
use crate::state::AppState;

/// An entitlement.
#[derive(Clone, Debug)]
pub struct Item {
    pub id: Uuid,
    pub product_id: Uuid,
    pub edition_id: Uuid,
    pub order_id: Uuid,
    pub license_key: String,
    pub granted_at: chrono::DateTime<chrono::Utc>,
}

/// The account's entitlements, newest first, after the cursor (an entitlement id).
pub async fn items(
    state: &AppState,
    account: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<Item>> {
    let rows = state
        .db
        .query_all_raw(stmt(
            "SELECT id, product_id, edition_id, order_id, license_key, granted_at FROM library.entitlement \
             WHERE account_id = $1 AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            [
                account.into(),
                after.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Item {
                id: r.try_get("", "id")?,
                product_id: r.try_get("", "product_id")?,
                edition_id: r.try_get("", "edition_id")?,
                order_id: r.try_get("", "order_id")?,
                license_key: r.try_get("", "license_key")?,
                granted_at: r.try_get("", "granted_at")?,
            })
        })
        .collect()
}

/// Whether the account owns the product.
pub async fn owns(state: &AppState, account: Uuid, product: Uuid) -> ApiResult<bool> {
    Ok(state
        .db
        .query_one_raw(stmt(
            "SELECT 1 AS one FROM library.entitlement WHERE account_id = $1 AND product_id = $2 LIMIT 1",
            [account.into(), product.into()],
        ))
        .await?
        .is_some())
}
