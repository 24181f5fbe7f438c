use sea_orm_migration::prelude::*;

/// webhooks (saga): the index the pruning of the delivery log walks (finished deliveries,
/// oldest first; see `saga/src/webhooks/prune.rs`), so each bounded batch reads only what it
/// removes instead of scanning the log.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX delivery_finished_idx ON webhooks.delivery (created_at) \
                 WHERE status <> 'PENDING'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS webhooks.delivery_finished_idx")
            .await?;
        Ok(())
    }
}
