use sea_orm_migration::prelude::*;

/// The refund gate (catalog, written by the api only): one row per order where a refund of the
/// order and the first download of its builds exclude each other. And (fulfillment) an index for
/// the sweep of reservations that waited too long for their payment.
///
/// The first download link of an order sets `downloaded_at` unless a refund or a cancellation
/// has claimed the order; a refund (or a cancellation that gives the digital lines back) claims
/// it only while `downloaded_at` is empty. Both are single `INSERT … ON CONFLICT DO UPDATE …
/// WHERE` statements on this row, so of a download and a refund sent at the same instant
/// exactly one wins. Downloads recorded before the gate existed are carried over.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE catalog.refund_gate (
    order_id      uuid PRIMARY KEY,
    -- The first download link handed out for a line of the order.
    downloaded_at timestamptz,
    -- What took the order's digital lines back: a refund request, or a cancellation before
    -- dispatch that refunds them.
    claim         text CHECK (claim IN ('REFUND', 'CANCEL')),
    claimed_at    timestamptz,
    CHECK ((claim IS NULL) = (claimed_at IS NULL))
);
INSERT INTO catalog.refund_gate (order_id, downloaded_at)
SELECT order_id, min(first_at) FROM catalog.download WHERE order_id IS NOT NULL GROUP BY order_id;

CREATE INDEX shipment_reserved_idx ON fulfillment.shipment (created_at) WHERE status = 'RESERVED';
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS fulfillment.shipment_reserved_idx;
DROP TABLE IF EXISTS catalog.refund_gate;
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
