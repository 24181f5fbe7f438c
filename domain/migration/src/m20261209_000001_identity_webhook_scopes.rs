use sea_orm_migration::prelude::*;

/// identity (api): the `webhooks:read` and `webhooks:write` scopes of API clients (a publisher's
/// server reads and manages its webhook endpoints). The CHECK on `api_client.scope` names every
/// scope, so it is replaced by one that names these two as well.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE identity.api_client DROP CONSTRAINT api_client_scope_check;
ALTER TABLE identity.api_client ADD CONSTRAINT api_client_scope_check
    CHECK (scope ~ '^((sales:read|catalog:read|catalog:write|shipments:write|ownership:read|webhooks:read|webhooks:write)( |$))*$');
"#;

/// Down: clients holding a webhooks scope lose it (their other scopes stay), then the old
/// CHECK comes back.
const DOWN: &str = r#"
ALTER TABLE identity.api_client DROP CONSTRAINT api_client_scope_check;
UPDATE identity.api_client
   SET scope = btrim(regexp_replace(regexp_replace(scope, 'webhooks:(read|write)', '', 'g'), ' +', ' ', 'g'))
 WHERE scope ~ 'webhooks:';
ALTER TABLE identity.api_client ADD CONSTRAINT api_client_scope_check
    CHECK (scope ~ '^((sales:read|catalog:read|catalog:write|shipments:write|ownership:read)( |$))*$');
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
