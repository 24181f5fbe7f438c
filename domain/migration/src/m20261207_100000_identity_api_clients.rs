use sea_orm_migration::prelude::*;

/// identity (api): API clients of publishers (OAuth 2.0 client credentials, issue 16) and the
/// opaque per-publisher buyer ids of ownership tickets.
///
/// - `api_client`: the secret only as its SHA-256 (32 bytes); its scopes as an OAuth `scope` string from a fixed set; a
///   revoked client keeps its row (its tokens are refused, its name and last use stay visible).
///   Listed per publisher, newest first.
/// - `publisher_buyer`: one random id per (publisher, account), made when the account first asks
///   a ticket for a product of that publisher; `ownsProduct(productId, buyerId)` maps it back,
///   and only within that publisher.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE identity.api_client (
    id uuid PRIMARY KEY,
    publisher_id uuid NOT NULL REFERENCES identity.account (id),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    -- space-separated, as an OAuth `scope` string
    scope text NOT NULL CHECK (scope ~ '^((sales:read|catalog:read|catalog:write|shipments:write|ownership:read)( |$))*$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_client_publisher_idx ON identity.api_client (publisher_id, id DESC);

CREATE TABLE identity.publisher_buyer (
    publisher_id uuid NOT NULL REFERENCES identity.account (id),
    account_id uuid NOT NULL REFERENCES identity.account (id),
    buyer_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (publisher_id, account_id),
    UNIQUE (publisher_id, buyer_id)
);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS identity.publisher_buyer;
DROP TABLE IF EXISTS identity.api_client;
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
