use sea_orm_migration::prelude::*;

/// Physical orders (reservations and shipments in `fulfillment`, `AWAITING_SHIPMENT` in
/// `ordering`) and the product claims of ordering.
///
/// Ordering: one claim per (buyer, digital product). The ordering participant writes the claim
/// in the transaction that creates the order, so PostgreSQL serialises concurrent orders of the
/// same buyer for the same product: the second one finds the claim and is refused before any
/// payment (`ALREADY_OWNED_OR_PENDING`). The claim is deleted when its order is cancelled and
/// kept when it completes (the buyer owns the product then).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE ordering.product_claim (
    account_id uuid NOT NULL,
    product_id uuid NOT NULL,
    order_id   uuid NOT NULL REFERENCES ordering."order" (id),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, product_id)
);
CREATE INDEX product_claim_order_idx ON ordering.product_claim (order_id);

-- Orders placed before this migration: the oldest order that is not cancelled holds the claim.
INSERT INTO ordering.product_claim (account_id, product_id, order_id, claimed_at)
SELECT DISTINCT ON (o.account_id, l.product_id) o.account_id, l.product_id, o.id, o.created_at
FROM ordering."order" o
JOIN ordering.order_line l ON l.order_id = o.id
WHERE o.status <> 'CANCELLED' AND l.kind = 'digital'
ORDER BY o.account_id, l.product_id, o.id
ON CONFLICT DO NOTHING;

ALTER TABLE ordering."order" DROP CONSTRAINT order_status_check;
ALTER TABLE ordering."order" ADD CONSTRAINT order_status_check
    CHECK (status IN ('PLACED', 'PAID', 'AWAITING_SHIPMENT', 'COMPLETED', 'CANCELLED'));
ALTER TABLE ordering."order" ADD COLUMN reserved boolean NOT NULL DEFAULT false;
ALTER TABLE ordering."order" ADD COLUMN shipped boolean NOT NULL DEFAULT false;
ALTER TABLE ordering."order" ADD COLUMN delivered boolean NOT NULL DEFAULT false;
ALTER TABLE ordering."order" ADD COLUMN refunded boolean NOT NULL DEFAULT false;
ALTER TABLE ordering."order" ADD COLUMN ready boolean NOT NULL DEFAULT false;

-- Orders whose grants were revoked (refunded): a grant arriving after the revocation is
-- refused, whatever order the two events arrive in.
CREATE TABLE library.revoked_order (
    order_id   uuid PRIMARY KEY,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

-- One shipment per order with physical lines: where it goes and where it is. Created by the
-- fulfillment participant when it handles `OrderPlaced` (RELEASED at once when the stock
-- was short).
CREATE TABLE fulfillment.shipment (
    order_id        uuid PRIMARY KEY,
    account_id      uuid NOT NULL,
    status          text NOT NULL
                    CHECK (status IN ('RESERVED', 'AWAITING_SHIPMENT', 'SHIPPED', 'RELEASED')),
    address         jsonb NOT NULL,
    carrier         text CHECK (length(carrier) <= 100),
    tracking_number text CHECK (length(tracking_number) <= 100),
    release_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    paid_at         timestamptz,
    shipped_at      timestamptz,
    released_at     timestamptz,
    -- When the publisher was reminded that the shipping deadline is half gone.
    reminded_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'SHIPPED') = (shipped_at IS NOT NULL)),
    CHECK (status <> 'SHIPPED' OR (carrier IS NOT NULL AND tracking_number IS NOT NULL))
);
CREATE INDEX shipment_waiting_idx ON fulfillment.shipment (paid_at) WHERE status = 'AWAITING_SHIPMENT';

-- The reserved quantity of each physical line (held in inventory.reserved while the shipment
-- is RESERVED or AWAITING_SHIPMENT).
CREATE TABLE fulfillment.reservation (
    order_id     uuid NOT NULL REFERENCES fulfillment.shipment (order_id),
    edition_id   uuid NOT NULL,
    product_id   uuid NOT NULL,
    publisher_id uuid NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, edition_id)
);
CREATE INDEX reservation_publisher_idx ON fulfillment.reservation (publisher_id);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS fulfillment.reservation;
DROP TABLE IF EXISTS fulfillment.shipment;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS reserved;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS shipped;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS delivered;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS refunded;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS ready;
DROP TABLE IF EXISTS library.revoked_order;
ALTER TABLE ordering."order" DROP CONSTRAINT order_status_check;
ALTER TABLE ordering."order" ADD CONSTRAINT order_status_check
    CHECK (status IN ('PLACED', 'PAID', 'COMPLETED', 'CANCELLED'));
DROP TABLE IF EXISTS ordering.product_claim;
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
