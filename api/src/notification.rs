//! Notifications on the api side: reading them, the unread counter (derived in Redis, rebuilt
//! from the table on a miss, counted in it while Redis is down) and `markNotificationsRead` (published to the notification
//! participant, the table's only writer).

use domain::messaging::Envelope;
use domain::notification::MarkRead;
use domain::sql::stmt;
use fred::prelude::*;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::infra::error::ApiResult;
use crate::infra::state::AppState;

/// Seconds an unread counter lives in Redis.
const UNREAD_TTL_SECS: i64 = 600;

#[derive(Clone, Debug)]
pub struct Row {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub order_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn list(
    state: &AppState,
    account: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> ApiResult<Vec<Row>> {
    let rows = state
        .db
        .query_all_raw(stmt(
            "SELECT id, kind, title, body, order_id, created_at, read_at FROM notification.notification \
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
            Ok(Row {
                id: r.try_get("", "id")?,
                kind: r.try_get("", "kind")?,
                title: r.try_get("", "title")?,
                body: r.try_get("", "body")?,
                order_id: r.try_get("", "order_id")?,
                created_at: r.try_get("", "created_at")?,
                read_at: r.try_get("", "read_at")?,
            })
        })
        .collect()
}

/// The unread count: Redis, or on a miss the table (then cached); the table while Redis is down.
pub async fn unread(state: &AppState, account: Uuid) -> ApiResult<i64> {
    let key = domain::keys::unread(state.keyspace.namespace(), account);
    let cached =
        crate::infra::redis::optional::<Option<i64>>(state, "GET unread", state.redis.get(&key))
            .await
            .flatten();
    if let Some(n) = cached {
        return Ok(n);
    }
    let n: i64 = state
        .db
        .query_one_raw(stmt(
            "SELECT count(*)::bigint AS n FROM notification.notification WHERE account_id = $1 AND read_at IS NULL",
            [account.into()],
        ))
        .await?
        .map(|r| r.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);
    crate::infra::redis::optional::<()>(
        state,
        "cache unread",
        state
            .redis
            .set(&key, n, Some(Expiration::EX(UNREAD_TTL_SECS)), None, false),
    )
    .await;
    Ok(n)
}

/// Marks everything up to now read: publishes the command and zeroes the counter at once (the
/// participant drops it again after its commit, and the next read rebuilds it). Without Redis
/// the count comes from the table, which shows the change once the participant committed it.
pub async fn mark_read(state: &AppState, account: Uuid) -> ApiResult<()> {
    let mut envelope = Envelope::new(
        MarkRead {
            account_id: account,
            up_to: chrono::Utc::now(),
        },
        account,
        Some(account),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    state.bus.publish(&envelope).await?;
    let key = domain::keys::unread(state.keyspace.namespace(), account);
    crate::infra::redis::optional::<()>(
        state,
        "zero unread",
        state
            .redis
            .set(&key, 0, Some(Expiration::EX(UNREAD_TTL_SECS)), None, false),
    )
    .await;
    Ok(())
}
