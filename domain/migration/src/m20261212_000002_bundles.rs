use sea_orm_migration::prelude::*;

/// Bundles (issue 21): a publisher's editions sold together at a price of their own.
///
/// - `catalog.bundle`: the bundle, its publisher, price (in the store's base currency) and
///   status (`draft` → `published` → `archived`); written by the api only.
/// - `catalog.bundle_item`: its editions (2 to 20, each once, the publisher's own; checked by
///   the api), in the order the publisher gave (`position`).
/// - `ordering.order_line.bundle_id`: the bundle a line was bought in (`NULL` for a line bought
///   on its own); written by the ordering participant from `ordering.place`.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE catalog.bundle (
    id uuid PRIMARY KEY,
    publisher_id uuid NOT NULL,
    slug text NOT NULL UNIQUE,
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    price_minor bigint NOT NULL CHECK (price_minor > 0),
    currency text NOT NULL,
    status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
-- A publisher's bundles, newest first (the dashboard).
CREATE INDEX bundle_publisher_idx ON catalog.bundle (publisher_id, created_at DESC);

CREATE TABLE catalog.bundle_item (
    bundle_id uuid NOT NULL REFERENCES catalog.bundle (id) ON DELETE CASCADE,
    edition_id uuid NOT NULL REFERENCES catalog.edition (id) ON DELETE CASCADE,
    position smallint NOT NULL,
    PRIMARY KEY (bundle_id, edition_id)
);
-- The bundles an edition is in (`Product.bundles`).
CREATE INDEX bundle_item_edition_idx ON catalog.bundle_item (edition_id);

ALTER TABLE ordering.order_line ADD COLUMN bundle_id uuid;
"#;

const DOWN: &str = r#"
ALTER TABLE ordering.order_line DROP COLUMN IF EXISTS bundle_id;
DROP TABLE IF EXISTS catalog.bundle_item;
DROP TABLE IF EXISTS catalog.bundle;
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
