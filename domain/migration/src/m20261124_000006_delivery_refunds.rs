use sea_orm_migration::prelude::*;

/// Digital delivery and refunds (catalog, library, ordering, billing).
///
/// - catalog (api): builds of a product, uploaded to the object store with their SHA-256, one
///   current build per (product, platform); the first download of each entitlement.
/// - library (saga: library): entitlements are revoked, not deleted (their keys stay unique and
///   visibly deactivated); an entitlement comes from an order or from a redeemed gift key; gift
///   keys are generated in batches for publishers and redeemed at most once.
/// - ordering (saga: ordering): refund requests (one per order) and the `REFUNDED` status.
/// - billing (saga: billing): the publishers' revenue, an append-only ledger of sales (net of the
///   platform fee) and their reversals, at most one of each per (order, publisher).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE catalog.build (
    id            uuid PRIMARY KEY,
    product_id    uuid NOT NULL REFERENCES catalog.product (id),
    platform      text NOT NULL CHECK (platform ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    version_label text NOT NULL CHECK (length(version_label) BETWEEN 1 AND 64),
    release_notes text NOT NULL DEFAULT '' CHECK (length(release_notes) <= 20000),
    file_name     text NOT NULL CHECK (file_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    -- What the publisher announced, and what arrived (equal once READY).
    size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
    status        text NOT NULL CHECK (status IN ('UPLOADING', 'READY')),
    sha256        text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    is_current    boolean NOT NULL DEFAULT false,
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    uploaded_at   timestamptz,
    CHECK ((status = 'READY') = (sha256 IS NOT NULL AND uploaded_at IS NOT NULL)),
    CHECK (NOT is_current OR status = 'READY'),
    UNIQUE (product_id, platform, version_label)
);
CREATE UNIQUE INDEX build_current_idx ON catalog.build (product_id, platform) WHERE is_current;
CREATE INDEX build_product_idx ON catalog.build (product_id, platform, created_at DESC);

-- The first download link handed out for an entitlement (a link lets the bytes flow, so it
-- counts as the download that ends the no-questions refund).
CREATE TABLE catalog.download (
    entitlement_id uuid PRIMARY KEY,
    account_id     uuid NOT NULL,
    order_id       uuid,
    build_id       uuid NOT NULL REFERENCES catalog.build (id),
    first_at       timestamptz NOT NULL DEFAULT now(),
    links          integer NOT NULL DEFAULT 1 CHECK (links > 0),
    last_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX download_order_idx ON catalog.download (order_id);

ALTER TABLE library.entitlement ALTER COLUMN order_id DROP NOT NULL;
ALTER TABLE library.entitlement ADD COLUMN gift_key_id uuid;
ALTER TABLE library.entitlement ADD COLUMN revoked_at timestamptz;
ALTER TABLE library.entitlement ADD CONSTRAINT entitlement_source_check
    CHECK ((order_id IS NULL) <> (gift_key_id IS NULL));
CREATE UNIQUE INDEX entitlement_gift_idx ON library.entitlement (gift_key_id) WHERE gift_key_id IS NOT NULL;
CREATE INDEX entitlement_active_idx ON library.entitlement (account_id, product_id) WHERE revoked_at IS NULL;

CREATE TABLE library.gift_key_batch (
    id           uuid PRIMARY KEY,
    publisher_id uuid NOT NULL,
    product_id   uuid NOT NULL,
    edition_id   uuid NOT NULL,
    quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    label        text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gift_key_batch_publisher_idx ON library.gift_key_batch (publisher_id, created_at DESC);

CREATE TABLE library.gift_key (
    id           uuid PRIMARY KEY,
    batch_id     uuid NOT NULL REFERENCES library.gift_key_batch (id),
    key          text NOT NULL UNIQUE CHECK (key ~ '^[A-Z0-9]{5}(-[A-Z0-9]{5}){3}$'),
    redeemed_by  uuid,
    redeemed_at  timestamptz,
    CHECK ((redeemed_by IS NULL) = (redeemed_at IS NULL))
);
CREATE INDEX gift_key_batch_idx ON library.gift_key (batch_id);

ALTER TABLE ordering."order" DROP CONSTRAINT order_status_check;
ALTER TABLE ordering."order" ADD CONSTRAINT order_status_check
    CHECK (status IN ('PLACED', 'PAID', 'AWAITING_SHIPMENT', 'COMPLETED', 'CANCELLED', 'REFUNDED'));
ALTER TABLE ordering."order" ADD COLUMN completed_at timestamptz;
UPDATE ordering."order" SET completed_at = updated_at WHERE status = 'COMPLETED';

CREATE TABLE ordering.refund_request (
    id            uuid PRIMARY KEY,
    order_id      uuid NOT NULL UNIQUE REFERENCES ordering."order" (id),
    account_id    uuid NOT NULL,
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    -- Whether the request met the policy when it was made (then approved at once).
    within_policy boolean NOT NULL,
    policy_note   text NOT NULL,
    status        text NOT NULL CHECK (status IN ('PENDING_REVIEW', 'APPROVED', 'DENIED')),
    decided_by    uuid,
    decision_note text CHECK (length(decision_note) <= 2000),
    created_at    timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz,
    CHECK ((status = 'PENDING_REVIEW') = (decided_at IS NULL))
);
CREATE INDEX refund_request_pending_idx ON ordering.refund_request (created_at) WHERE status = 'PENDING_REVIEW';
CREATE INDEX refund_request_account_idx ON ordering.refund_request (account_id, created_at DESC);

CREATE TABLE billing.revenue_entry (
    id           uuid PRIMARY KEY,
    publisher_id uuid NOT NULL,
    order_id     uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('sale', 'reversal')),
    -- Signed: sales positive (or zero), reversals the exact negatives of their sales.
    gross_minor  bigint NOT NULL,
    fee_minor    bigint NOT NULL,
    net_minor    bigint NOT NULL CHECK (net_minor = gross_minor - fee_minor),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    fee_bps      integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'sale') = (gross_minor >= 0)),
    UNIQUE (kind, order_id, publisher_id)
);
CREATE INDEX revenue_publisher_idx ON billing.revenue_entry (publisher_id, created_at);
CREATE TRIGGER revenue_entry_append_only BEFORE UPDATE OR DELETE ON billing.revenue_entry
    FOR EACH ROW EXECUTE FUNCTION billing.append_only();
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS billing.revenue_entry;
DROP TABLE IF EXISTS ordering.refund_request;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS completed_at;
UPDATE ordering."order" SET status = 'COMPLETED' WHERE status = 'REFUNDED';
ALTER TABLE ordering."order" DROP CONSTRAINT order_status_check;
ALTER TABLE ordering."order" ADD CONSTRAINT order_status_check
    CHECK (status IN ('PLACED', 'PAID', 'AWAITING_SHIPMENT', 'COMPLETED', 'CANCELLED'));
DROP TABLE IF EXISTS library.gift_key;
DROP TABLE IF EXISTS library.gift_key_batch;
DELETE FROM library.entitlement WHERE revoked_at IS NOT NULL OR order_id IS NULL;
ALTER TABLE library.entitlement DROP CONSTRAINT IF EXISTS entitlement_source_check;
DROP INDEX IF EXISTS library.entitlement_gift_idx;
DROP INDEX IF EXISTS library.entitlement_active_idx;
ALTER TABLE library.entitlement DROP COLUMN IF EXISTS gift_key_id;
ALTER TABLE library.entitlement DROP COLUMN IF EXISTS revoked_at;
ALTER TABLE library.entitlement ALTER COLUMN order_id SET NOT NULL;
DROP TABLE IF EXISTS catalog.download;
DROP TABLE IF EXISTS catalog.build;
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
