use sea_orm_migration::prelude::*;

use crate::m20261124_000004_saga::outbox_table;

/// catalog (issue 16): `catalog.outbox`, the api's outbox, shaped as every participant's. The
/// transaction that makes a build current writes its `catalog.build_made_current` event there,
/// and the api's relay publishes it: a crash between the commit and the publish no longer loses
/// the event. No inbox or dead letters: the api consumes no events.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(&outbox_table("catalog"))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS catalog.outbox;")
            .await?;
        Ok(())
    }
}
