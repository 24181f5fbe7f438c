use sea_orm_migration::prelude::*;

/// Signed webhooks (issue 16): the `webhooks` schema, written only by the webhooks participant:
/// endpoints, deliveries (one per event and endpoint, the retry schedule in `next_attempt_at`),
/// attempts (the log), the publishers of paid orders, and the messaging tables.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE SCHEMA IF NOT EXISTS webhooks;

CREATE TABLE webhooks.endpoint (
    id                         uuid PRIMARY KEY,
    publisher_id               uuid NOT NULL,
    url                        text NOT NULL CHECK (length(url) <= 2048),
    description                text NOT NULL DEFAULT '',
    event_types                text[] NOT NULL,
    enabled                    boolean NOT NULL DEFAULT true,
    disabled_reason            text,
    secret                     text NOT NULL,
    previous_secret            text,
    previous_secret_expires_at timestamptz,
    rotation_id                uuid,
    consecutive_failures       integer NOT NULL DEFAULT 0,
    failing_since              timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    deleted_at                 timestamptz
);
CREATE INDEX endpoint_publisher_idx ON webhooks.endpoint (publisher_id, created_at DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE webhooks.delivery (
    id               uuid PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhooks.endpoint (id),
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    body             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_status_code integer,
    last_latency_ms  integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id),
    CHECK ((status = 'PENDING') = (next_attempt_at IS NOT NULL))
);
CREATE INDEX delivery_due_idx ON webhooks.delivery (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX delivery_endpoint_idx ON webhooks.delivery (endpoint_id, created_at DESC, id DESC);

CREATE TABLE webhooks.attempt (
    id           uuid PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES webhooks.delivery (id),
    attempted_at timestamptz NOT NULL DEFAULT now(),
    succeeded    boolean NOT NULL,
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text
);
CREATE INDEX attempt_delivery_idx ON webhooks.attempt (delivery_id, attempted_at);

CREATE TABLE webhooks.order_publisher (
    order_id     uuid NOT NULL,
    publisher_id uuid NOT NULL,
    lines        jsonb NOT NULL,
    currency     text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, publisher_id)
);

CREATE TABLE webhooks.inbox (
    message_id uuid PRIMARY KEY,
    kind       text NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhooks.outbox (
    id             uuid PRIMARY KEY,
    subject        text NOT NULL,
    kind           text NOT NULL,
    correlation_id uuid NOT NULL,
    trace          text,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);
CREATE INDEX outbox_unpublished_idx ON webhooks.outbox (created_at) WHERE published_at IS NULL;

CREATE TABLE webhooks.dead_letter (
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
CREATE INDEX dead_letter_failed_idx ON webhooks.dead_letter (failed_at DESC);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP SCHEMA IF EXISTS webhooks CASCADE")
            .await?;
        Ok(())
    }
}
