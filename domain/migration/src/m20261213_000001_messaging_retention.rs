use sea_orm_migration::prelude::*;

use crate::MESSAGING_SCHEMAS;

/// Every outbox and inbox (the participants' and the catalog's outbox): a BRIN index on the time
/// a row was written, which the pruning of rows past the retention walks
/// (`domain::retention::prune`). Rows are appended in time
/// order, so a BRIN index costs an insert almost nothing and still lets a batch read only the
/// old pages instead of scanning the table.
#[derive(DeriveMigrationName)]
pub struct Migration;

fn schemas() -> impl Iterator<Item = (&'static str, bool)> {
    MESSAGING_SCHEMAS
        .iter()
        .map(|s| (*s, true))
        .chain(std::iter::once(("catalog", false)))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (schema, inbox) in schemas() {
            db.execute_unprepared(&format!(
                "CREATE INDEX outbox_created_brin ON {schema}.outbox USING brin (created_at)"
            ))
            .await?;
            if inbox {
                db.execute_unprepared(&format!(
                    "CREATE INDEX inbox_handled_brin ON {schema}.inbox USING brin (handled_at)"
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (schema, _) in schemas() {
            db.execute_unprepared(&format!(
                "DROP INDEX IF EXISTS {schema}.outbox_created_brin; \
                 DROP INDEX IF EXISTS {schema}.inbox_handled_brin;"
            ))
            .await?;
        }
        Ok(())
    }
}
