use sea_orm_migration::prelude::*;

/// One schema per bounded context (DESIGN §2). Tables of a context live only in its schema.
pub const SCHEMAS: [&str; 7] = [
    "identity",
    "catalog",
    "ordering",
    "billing",
    "fulfillment",
    "library",
    "notification",
];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for schema in SCHEMAS {
            db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for schema in SCHEMAS.iter().rev() {
            db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await?;
        }
        Ok(())
    }
}
