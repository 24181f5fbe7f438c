use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE identity.account (
    id               uuid PRIMARY KEY,
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    email_normalized text NOT NULL UNIQUE CHECK (email_normalized = lower(email)),
    display_name     text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 64),
    role             text NOT NULL CHECK (role IN ('user', 'publisher', 'admin')),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'banned')),
    password_hash    text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid REFERENCES identity.account (id)
);
CREATE INDEX account_role_idx ON identity.account (role, id);

CREATE TABLE identity.audit_log (
    id          uuid PRIMARY KEY,
    actor_id    uuid REFERENCES identity.account (id),
    action      text NOT NULL,
    target_id   uuid REFERENCES identity.account (id),
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_target_idx ON identity.audit_log (target_id, occurred_at DESC);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS identity.audit_log;
DROP TABLE IF EXISTS identity.account;
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
