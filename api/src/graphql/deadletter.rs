//! Dead letters in GraphQL (admins): `deadLetters`, `replayDeadLetter`.

use async_graphql::connection::Connection;
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::deadletter as service;
use crate::graphql::guard::RoleGuard;
use crate::graphql::paging;
use crate::infra::state::AppState;

/// A message a participant could not handle.
#[derive(SimpleObject, Clone, Debug)]
pub struct DeadLetter {
    pub id: Uuid,
    pub participant: String,
    pub message_id: Option<Uuid>,
    pub subject: String,
    pub kind: Option<String>,
    /// The message as received (JSON, or whatever arrived).
    pub payload: String,
    pub error: String,
    pub deliveries: i32,
    pub failed_at: DateTime<Utc>,
    pub replayed_at: Option<DateTime<Utc>>,
}

impl From<service::DeadLetter> for DeadLetter {
    fn from(d: service::DeadLetter) -> DeadLetter {
        DeadLetter {
            id: d.id,
            participant: d.participant,
            message_id: d.message_id,
            subject: d.subject,
            kind: d.kind,
            payload: d.payload,
            error: d.error,
            deliveries: d.deliveries,
            failed_at: d.failed_at,
            replayed_at: d.replayed_at,
        }
    }
}

#[derive(Default)]
pub struct DeadLetterQuery;

#[Object]
impl DeadLetterQuery {
    /// Dead letters of every participant, newest first.
    #[graphql(guard = "RoleGuard::admin()")]
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many items to return, at most 100.")] first: i32,
        #[graphql(
            desc = "The `endCursor` of the page before (`pageInfo.endCursor`); omit it for the first page."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, DeadLetter>> {
        let state = ctx.data::<AppState>()?;
        let first = paging::page_size(first)?;
        let cursor = paging::decode::<Uuid>("dead-letter", after.as_deref())?;
        let rows = service::list(state, cursor, first + 1).await?;
        Ok(paging::page(
            rows,
            first,
            after.is_some(),
            |r| paging::encode("dead-letter", &r.id.to_string()),
            DeadLetter::from,
        ))
    }
}

#[derive(Default)]
pub struct DeadLetterMutation;

#[Object]
impl DeadLetterMutation {
    /// Sends a dead letter to its participant again; the participant marks it replayed when it
    /// handles it (`replayedAt`).
    #[graphql(guard = "RoleGuard::admin()")]
    async fn replay_dead_letter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the dead letter to send again.")] id: Uuid,
    ) -> async_graphql::Result<DeadLetter> {
        let state = ctx.data::<AppState>()?;
        Ok(service::replay(state, id).await?.into())
    }
}
