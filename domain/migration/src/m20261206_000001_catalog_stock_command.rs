use sea_orm_migration::prelude::*;

/// catalog (api): the stock commands a publisher sent, by message id, so the api can tell a
/// publisher (and only that publisher) whether fulfillment applied one: the command's id is
/// looked up in `fulfillment.inbox` (applied) and `fulfillment.dead_letter` (failed), which the
/// api only reads. The api is the only writer of this table.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE catalog.stock_command (
    -- The id of the `cmd.fulfillment.adjust_stock` message.
    id           uuid PRIMARY KEY,
    publisher_id uuid NOT NULL REFERENCES identity.account (id),
    edition_id   uuid NOT NULL REFERENCES catalog.edition (id) ON DELETE CASCADE,
    mode         text NOT NULL CHECK (mode IN ('SET', 'ADD')),
    quantity     bigint NOT NULL,
    sent_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_command_edition_idx ON catalog.stock_command (edition_id);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS catalog.stock_command;
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
