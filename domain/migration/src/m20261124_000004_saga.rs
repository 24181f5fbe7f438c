use sea_orm_migration::prelude::*;

/// The order saga (DESIGN §3–§4): the tables of ordering, billing, library and notification,
/// and in every participant's schema (fulfillment included) the messaging tables:
///
/// - `inbox`: ids of handled messages, written in the transaction of the state change, so a
///   redelivered message changes nothing;
/// - `outbox`: events to publish, written in that same transaction and published by a relay
///   (`Nats-Msg-Id` = the event id) that marks them published after JetStream's ack;
/// - `dead_letter`: messages that can never succeed (or ran out of deliveries), for admins to
///   see and replay.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Contexts with a saga participant.
pub const PARTICIPANTS: [&str; 5] = [
    "ordering",
    "billing",
    "fulfillment",
    "library",
    "notification",
];

/// The `outbox` table of `ctx`: events to publish, written in the transaction of the state
/// change and marked published by a relay. Also the catalog's (the api's outbox, migration
/// `m20261210_000001_catalog_outbox`), so every outbox has the same shape.
pub(crate) fn outbox_table(ctx: &str) -> String {
    format!(
        r#"
CREATE TABLE {ctx}.outbox (
    id             uuid PRIMARY KEY,
    subject        text NOT NULL,
    kind           text NOT NULL,
    correlation_id uuid NOT NULL,
    trace          text,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX outbox_unpublished_idx ON {ctx}.outbox (created_at) WHERE published_at IS NULL;
"#
    )
}

fn messaging_tables(ctx: &str) -> String {
    let outbox = outbox_table(ctx);
    format!(
        r#"
CREATE TABLE {ctx}.inbox (
    message_id uuid PRIMARY KEY,
    kind       text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now()
);

{outbox}

CREATE TABLE {ctx}.dead_letter (
    id                uuid PRIMARY KEY,
    message_id        uuid,
    subject           text NOT NULL,
    kind              text,
    payload           text NOT NULL,
    error             text NOT NULL,
    deliveries        integer NOT NULL,
    failed_at         timestamptz NOT NULL DEFAULT now(),
    replayed_at       timestamptz,
    replay_message_id text
);
CREATE INDEX dead_letter_failed_idx ON {ctx}.dead_letter (failed_at DESC);
"#
    )
}

const UP: &str = r#"
CREATE TABLE ordering."order" (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL,
    idempotency_key text NOT NULL,
    status          text NOT NULL CHECK (status IN ('PLACED', 'PAID', 'COMPLETED', 'CANCELLED')),
    paid            boolean NOT NULL DEFAULT false,
    granted         boolean NOT NULL DEFAULT false,
    cancel_reason   text,
    total_minor     bigint NOT NULL CHECK (total_minor >= 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    needs_shipping  boolean NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, idempotency_key)
);
CREATE INDEX order_account_idx ON ordering."order" (account_id, id DESC);

CREATE TABLE ordering.order_line (
    order_id         uuid NOT NULL REFERENCES ordering."order" (id),
    line_no          integer NOT NULL,
    edition_id       uuid NOT NULL,
    product_id       uuid NOT NULL,
    publisher_id     uuid NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('digital', 'physical')),
    product_title    text NOT NULL,
    edition_name     text NOT NULL,
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    quantity         integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line_no),
    UNIQUE (order_id, edition_id)
);
CREATE INDEX order_line_publisher_idx ON ordering.order_line (publisher_id);

-- The order's timeline: one row per saga step, written by ordering as it learns of it.
CREATE TABLE ordering.order_step (
    id          uuid PRIMARY KEY,
    order_id    uuid NOT NULL REFERENCES ordering."order" (id),
    step        text NOT NULL,
    participant text NOT NULL,
    detail      text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, step)
);

CREATE TABLE billing.wallet (
    account_id    uuid PRIMARY KEY,
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Never negative: the database refuses, whatever the code does.
    balance_minor bigint NOT NULL DEFAULT 0 CHECK (balance_minor >= 0),
    -- Bumped with every ledger entry; equals the number of entries.
    version       bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    frozen        boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Append-only: rows are only ever inserted (see the trigger), and each debit, credit or
-- refund happens at most once per order or top-up.
CREATE TABLE billing.ledger_entry (
    id            uuid PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES billing.wallet (account_id),
    kind          text NOT NULL CHECK (kind IN ('credit', 'debit', 'refund')),
    reference     uuid NOT NULL,
    -- Signed: credits and refunds positive, debits negative or zero.
    amount_minor  bigint NOT NULL CHECK ((kind = 'debit') = (amount_minor <= 0)),
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, reference),
    UNIQUE (account_id, version)
);
CREATE INDEX ledger_account_idx ON billing.ledger_entry (account_id, version DESC);

CREATE FUNCTION billing.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing.ledger_entry is append-only';
END $$;
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON billing.ledger_entry
    FOR EACH ROW EXECUTE FUNCTION billing.append_only();

CREATE TABLE billing.top_up (
    id            uuid PRIMARY KEY,
    account_id    uuid NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    currency      text NOT NULL,
    card_last4    text NOT NULL,
    status        text NOT NULL CHECK (status IN ('CREDITED', 'DECLINED')),
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX top_up_account_idx ON billing.top_up (account_id, created_at DESC);

CREATE TABLE library.entitlement (
    id           uuid PRIMARY KEY,
    account_id   uuid NOT NULL,
    product_id   uuid NOT NULL,
    edition_id   uuid NOT NULL,
    order_id     uuid NOT NULL,
    license_key  text NOT NULL UNIQUE CHECK (license_key ~ '^[A-Z0-9]{5}(-[A-Z0-9]{5}){3}$'),
    granted_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, edition_id)
);
CREATE INDEX entitlement_account_idx ON library.entitlement (account_id, granted_at DESC, id DESC);
CREATE INDEX entitlement_owner_idx ON library.entitlement (account_id, product_id);

CREATE TABLE notification.notification (
    id         uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    kind       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    order_id   uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX notification_account_idx ON notification.notification (account_id, id DESC);
CREATE INDEX notification_unread_idx ON notification.notification (account_id) WHERE read_at IS NULL;
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS notification.notification;
DROP TABLE IF EXISTS library.entitlement;
DROP TABLE IF EXISTS billing.top_up;
DROP TABLE IF EXISTS billing.ledger_entry;
DROP FUNCTION IF EXISTS billing.append_only();
DROP TABLE IF EXISTS billing.wallet;
DROP TABLE IF EXISTS ordering.order_step;
DROP TABLE IF EXISTS ordering.order_line;
DROP TABLE IF EXISTS ordering."order";
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(UP).await?;
        for ctx in PARTICIPANTS {
            db.execute_unprepared(&messaging_tables(ctx)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for ctx in PARTICIPANTS {
            db.execute_unprepared(&format!(
                "DROP TABLE IF EXISTS {ctx}.dead_letter; DROP TABLE IF EXISTS {ctx}.outbox; \
                 DROP TABLE IF EXISTS {ctx}.inbox;"
            ))
            .await?;
        }
        db.execute_unprepared(DOWN).await?;
        Ok(())
    }
}
