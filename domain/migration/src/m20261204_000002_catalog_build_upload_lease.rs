use sea_orm_migration::prelude::*;

/// catalog (api): a build upload reserves its build with a lease instead of holding a row lock
/// (and so a PostgreSQL connection and transaction) for the whole transfer. The lease is taken
/// and renewed in short statements; a crashed upload's lease runs out and the build can be
/// uploaded again.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE catalog.build ADD COLUMN upload_lease uuid;
ALTER TABLE catalog.build ADD COLUMN upload_lease_until timestamptz;
ALTER TABLE catalog.build ADD CONSTRAINT build_upload_lease_check
    CHECK ((upload_lease IS NULL) = (upload_lease_until IS NULL)
           AND (upload_lease IS NULL OR status = 'UPLOADING'));
"#;

const DOWN: &str = r#"
ALTER TABLE catalog.build DROP CONSTRAINT IF EXISTS build_upload_lease_check;
ALTER TABLE catalog.build DROP COLUMN IF EXISTS upload_lease_until;
ALTER TABLE catalog.build DROP COLUMN IF EXISTS upload_lease;
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
