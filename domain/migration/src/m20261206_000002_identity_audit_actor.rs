use sea_orm_migration::prelude::*;

/// identity (api): the audit log page is read newest first by id (time-ordered UUIDs), filtered
/// by actor or by target (`auditLog(actorId:, targetId:, after:)`). The actor filter had no
/// index (each page read the whole log) and the target's ordered by time, not by id: both are
/// now (column, id) so a page is an index range.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE INDEX audit_log_actor_idx ON identity.audit_log (actor_id, id DESC);
DROP INDEX identity.audit_log_target_idx;
CREATE INDEX audit_log_target_idx ON identity.audit_log (target_id, id DESC);
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS identity.audit_log_actor_idx;
DROP INDEX IF EXISTS identity.audit_log_target_idx;
CREATE INDEX audit_log_target_idx ON identity.audit_log (target_id, occurred_at DESC);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
