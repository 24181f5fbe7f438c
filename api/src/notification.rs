//! Notifications on the api side: reading them, the unread counter (derived in Redis, rebuilt
//! from the table on a miss, counted in it while Redis is down) and `markNotificationsRead` (published to the notification
//! participant, the table's only writer).

use domain::messaging::Envelope;
use domain::notification::MarkRead;
use domain::notification::entity::notification;
use fred::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
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
    let mut query =
        notification::Entity::find().filter(notification::Column::AccountId.eq(account));
    if let Some(after) = after {
        query = query.filter(notification::Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(notification::Column::Id)
        .limit(limit)
        .all(&state.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|n| Row {
            id: n.id,
            kind: n.kind,
            title: n.title,
            body: n.body,
            order_id: n.order_id,
            created_at: n.created_at,
            read_at: n.read_at,
        })
        .collect())
}

/// The unread count: Redis, or on a miss the table (then cached); the table while Redis is down.
pub async fn unread(state: &AppState, account: Uuid) -> ApiResult<i64> {
    let key = domain::keys::unread(state.keyspace.namespace(), account);
    let cached = crate::infra::redis::optional::<Option<i64>>(
        &state.redis_health,
        "GET unread",
        state.redis.get(&key),
    )
    .await
    .flatten();
    if let Some(n) = cached {
        return Ok(n);
    }
    let unread = notification::Entity::find()
        .filter(notification::Column::AccountId.eq(account))
        .filter(notification::Column::ReadAt.is_null())
        .count(&state.db)
        .await?;
    let n = i64::try_from(unread).unwrap_or(i64::MAX);
    crate::infra::redis::optional::<()>(
        &state.redis_health,
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
        &state.redis_health,
        "zero unread",
        state
            .redis
            .set(&key, 0, Some(Expiration::EX(UNREAD_TTL_SECS)), None, false),
    )
    .await;
    Ok(())
}
