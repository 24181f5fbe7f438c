use sea_orm_migration::prelude::*;

/// catalog (issue 21): timed discounts on editions.
///
/// - `catalog.discount`: one row per scheduled discount. At most one discount of an edition
///   runs at any instant: an exclusion constraint refuses overlapping windows (`btree_gist`
///   gives the uuid its `=` under GiST), so two concurrent schedules cannot both win. Ending a
///   discount early moves its `ends_at` to the moment it ended (`ended_early_*` keep who and
///   why); a discount that had not started yet is cancelled instead and leaves the constraint.
/// - `applied` is how far the product's listing price has followed the discount (`pending` →
///   `started` → `ended`); the api's discount clock moves it at the window's edges. Orders
///   never read it: `placeOrder` prices by the window itself.
/// - `product.list_price_from_minor`, `sale_percent`, `sale_ends_at`: the listing of a product
///   on sale (the cheapest edition's price before the discount, the deepest running discount and
///   when the first one ends), beside `price_from_minor`, which becomes the cheapest price a
///   buyer pays now (and so `price_sort` and the price filters with it).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE catalog.discount (
    id uuid PRIMARY KEY,
    edition_id uuid NOT NULL REFERENCES catalog.edition (id) ON DELETE CASCADE,
    product_id uuid NOT NULL REFERENCES catalog.product (id) ON DELETE CASCADE,
    percent smallint NOT NULL CHECK (percent BETWEEN 1 AND 95),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    applied text NOT NULL DEFAULT 'pending' CHECK (applied IN ('pending', 'started', 'ended')),
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz,
    ended_early_by uuid,
    ended_early_reason text,
    CHECK (ends_at > starts_at),
    CONSTRAINT discount_no_overlap EXCLUDE USING gist (
        edition_id WITH =,
        tstzrange(starts_at, ends_at) WITH &&
    ) WHERE (cancelled_at IS NULL)
);

-- The discounts of an edition, newest first (the product page, the publisher's list).
CREATE INDEX discount_edition_idx ON catalog.discount (edition_id, starts_at DESC);
-- The discount clock's work: windows whose edge the listing has not followed yet.
CREATE INDEX discount_due_idx ON catalog.discount (starts_at, ends_at) WHERE applied <> 'ended';

ALTER TABLE catalog.product
    ADD COLUMN list_price_from_minor bigint,
    ADD COLUMN sale_percent smallint,
    ADD COLUMN sale_ends_at timestamptz;

UPDATE catalog.product SET list_price_from_minor = price_from_minor;

-- "On sale" in the storefront's filters.
CREATE INDEX product_on_sale_idx ON catalog.product (price_sort, id)
    WHERE status = 'published' AND sale_percent IS NOT NULL;
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS catalog.product_on_sale_idx;
ALTER TABLE catalog.product
    DROP COLUMN IF EXISTS list_price_from_minor,
    DROP COLUMN IF EXISTS sale_percent,
    DROP COLUMN IF EXISTS sale_ends_at;
DROP TABLE IF EXISTS catalog.discount;
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
