//! Dead letters of every participant, read-only for the api, and their replay: the stored
//! message is published again to `cmd.<participant>.replay` with a new `Nats-Msg-Id`; the
//! participant handles it like the original and marks the dead letter replayed.

use domain::bus::RawMessage;
use domain::sql::stmt;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub id: Uuid,
    pub participant: String,
    pub message_id: Option<Uuid>,
    pub subject: String,
    pub kind: Option<String>,
    pub payload: String,
    pub error: String,
    pub deliveries: i32,
    pub failed_at: chrono::DateTime<chrono::Utc>,
    pub replayed_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn union() -> String {
    migration::PARTICIPANTS
        .iter()
        .map(|p| {
            format!(
                "SELECT '{p}' AS participant, id, message_id, subject, kind, payload, error, deliveries, \
                 failed_at, replayed_at FROM {p}.dead_letter"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

fn row(r: &sea_orm::QueryResult) -> ApiResult<DeadLetter> {
    Ok(DeadLetter {
        id: r.try_get("", "id")?,
        participant: r.try_get("", "participant")?,
        message_id: r.try_get("", "message_id")?,
        subject: r.try_get("", "subject")?,
        kind: r.try_get("", "kind")?,
        payload: r.try_get("", "payload")?,
        error: r.try_get("", "error")?,
        deliveries: r.try_get("", "deliveries")?,
        failed_at: r.try_get("", "failed_at")?,
        replayed_at: r.try_get("", "replayed_at")?,
    })
}

/// Newest first, after the cursor (a dead-letter id; ids are time-ordered).
pub async fn list(state: &AppState, after: Option<Uuid>, limit: u64) -> ApiResult<Vec<DeadLetter>> {
    let sql = format!(
        "SELECT * FROM ({}) d WHERE ($1::uuid IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        union()
    );
    let rows = state
        .db
        .query_all_raw(stmt(
            &sql,
            [
                after.into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    rows.iter().map(row).collect()
}

pub async fn find(state: &AppState, id: Uuid) -> ApiResult<Option<DeadLetter>> {
    let sql = format!("SELECT * FROM ({}) d WHERE id = $1", union());
    let r = state.db.query_one_raw(stmt(&sql, [id.into()])).await?;
    r.as_ref().map(row).transpose()
}

/// Publishes the dead letter again for its participant.
pub async fn replay(state: &AppState, id: Uuid) -> ApiResult<DeadLetter> {
    let dl = find(state, id)
        .await?
        .ok_or(ApiError::NotFound("dead letter"))?;
    let subject = format!("cmd.{}.replay", dl.participant);
    let msg_id = domain::id::new_id().to_string();
    let replay_of = dl.id.to_string();
    state
        .bus
        .publish_raw(RawMessage {
            subject: &subject,
            msg_id: &msg_id,
            kind: dl.kind.as_deref().unwrap_or("unknown"),
            correlation_id: None,
            trace: None,
            replay_of: Some(&replay_of),
            payload: dl.payload.clone().into_bytes(),
        })
        .await?;
    tracing::info!(dead_letter.id = %id, participant = %dl.participant, "dead letter replayed");
    Ok(dl)
}
