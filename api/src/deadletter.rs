//! Dead letters of every participant, read-only for the api, and their replay: the stored
//! message is published again to `cmd.<participant>.replay` with a new `Nats-Msg-Id`; the
//! participant handles it like the original and marks the dead letter replayed.

use domain::bus::RawMessage;
use domain::{billing, fulfillment, library, notification, ordering};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, Order, Query, SelectStatement, TableRef, UnionType,
};
use sea_orm::{EntityName, FromQueryResult};
use uuid::Uuid;

use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// A dead letter of some participant (`<participant>.dead_letter`).
#[derive(Clone, Debug, FromQueryResult)]
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

/// The columns of a dead letter. Every participant's `dead_letter` has the same (one macro writes
/// their entities), so one participant's names serve for all.
type Column = billing::entity::dead_letter::Column;

/// The dead-letter table of `participant` (a name of [`migration::MESSAGING_SCHEMAS`]).
fn table_of(participant: &str) -> Option<TableRef> {
    Some(match participant {
        "ordering" => ordering::entity::dead_letter::Entity.table_ref(),
        "billing" => billing::entity::dead_letter::Entity.table_ref(),
        "fulfillment" => fulfillment::entity::dead_letter::Entity.table_ref(),
        "library" => library::entity::dead_letter::Entity.table_ref(),
        "notification" => notification::entity::dead_letter::Entity.table_ref(),
        "webhooks" => domain::webhooks::entity::dead_letter::Entity.table_ref(),
        _ => return None,
    })
}

/// Every participant's dead letters, in one statement: `SELECT * FROM (<each participant's,
/// UNION ALL>) d`, each row with its participant's name.
fn all_dead_letters() -> ApiResult<SelectStatement> {
    let mut union: Option<SelectStatement> = None;
    for p in migration::MESSAGING_SCHEMAS {
        let table = table_of(p)
            .ok_or_else(|| anyhow::anyhow!("participant {p} has no dead-letter entity"))?;
        let select = Query::select()
            .expr_as(Expr::val(p), Alias::new("participant"))
            .columns([
                Column::Id,
                Column::MessageId,
                Column::Subject,
                Column::Kind,
                Column::Payload,
                Column::Error,
                Column::Deliveries,
                Column::FailedAt,
                Column::ReplayedAt,
            ])
            .from(table)
            .to_owned();
        match &mut union {
            None => union = Some(select),
            Some(u) => {
                u.union(UnionType::All, select);
            }
        }
    }
    let union = union.ok_or_else(|| anyhow::anyhow!("no participants"))?;
    Ok(Query::select()
        .column(Asterisk)
        .from_subquery(union, Alias::new("d"))
        .to_owned())
}

async fn query(state: &AppState, select: &SelectStatement) -> ApiResult<Vec<DeadLetter>> {
    let statement = state.db.get_database_backend().build(select);
    Ok(DeadLetter::find_by_statement(statement)
        .all(&state.db)
        .await?)
}

/// Newest first, after the cursor (a dead-letter id; ids are time-ordered).
pub async fn list(state: &AppState, after: Option<Uuid>, limit: u64) -> ApiResult<Vec<DeadLetter>> {
    let mut select = all_dead_letters()?;
    if let Some(after) = after {
        select.and_where(Expr::col(Column::Id).lt(after));
    }
    select.order_by(Column::Id, Order::Desc).limit(limit);
    query(state, &select).await
}

pub async fn find(state: &AppState, id: Uuid) -> ApiResult<Option<DeadLetter>> {
    let mut select = all_dead_letters()?;
    select.and_where(Expr::col(Column::Id).eq(id));
    Ok(query(state, &select).await?.into_iter().next())
}

/// Publishes the dead letter again for its participant.
pub async fn replay(state: &AppState, id: Uuid) -> ApiResult<DeadLetter> {
    let dl = find(state, id)
        .await?
        .ok_or(ApiError::NotFound("dead letter"))?;
    let subject = format!("cmd.{}.replay", dl.participant);
    let msg_id = domain::id::new_id().to_string();
    let replay_of = dl.id.to_string();
    // Not SQL: the dead letter's stored payload goes back to NATS as it was.
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
