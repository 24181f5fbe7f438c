use sea_orm_migration::prelude::*;

/// reconcile (the reconciler, issue 17), and an index of ordering's for the operators' view.
///
/// - `reconcile.run`: one row per reconciliation pass, with what it looked at and found.
/// - `reconcile.finding`: what a pass found, append-only apart from `reported_at` (set once
///   the admins were told, so a crash between a pass and its report tells them on the next
///   pass). `action` says whether the reconciler repaired it (a derived copy) or only reported
///   it (the source of truth is in question).
/// - `ordering.order_open_idx`: the open orders, for the metrics' and the operations page's
///   "how many wait, and since when", however many orders have ended.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE SCHEMA IF NOT EXISTS reconcile;

CREATE TABLE reconcile.run (
    id          uuid PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    wallets     integer NOT NULL DEFAULT 0,
    orders      integer NOT NULL DEFAULT 0,
    editions    integer NOT NULL DEFAULT 0,
    repaired    integer NOT NULL DEFAULT 0,
    reported    integer NOT NULL DEFAULT 0
);
CREATE INDEX run_started_idx ON reconcile.run (started_at DESC);

CREATE TABLE reconcile.finding (
    id          uuid PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES reconcile.run (id),
    kind        text NOT NULL CHECK (kind IN ('CACHED_BALANCE', 'WALLET_LEDGER', 'MISSING_ENTITLEMENT', 'UNPAID_ENTITLEMENT', 'STOCK')),
    subject     text NOT NULL,
    detail      text NOT NULL,
    action      text NOT NULL CHECK (action IN ('REPAIRED', 'REPORTED')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    reported_at timestamptz
);
CREATE INDEX finding_run_idx ON reconcile.finding (run_id);
CREATE INDEX finding_unreported_idx ON reconcile.finding (created_at) WHERE action = 'REPORTED' AND reported_at IS NULL;
CREATE INDEX finding_subject_idx ON reconcile.finding (kind, subject, created_at DESC);

CREATE INDEX IF NOT EXISTS order_open_idx ON ordering."order" (status, created_at)
    WHERE status IN ('PLACED', 'PAID', 'AWAITING_SHIPMENT');
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS ordering.order_open_idx;
DROP TABLE IF EXISTS reconcile.finding;
DROP TABLE IF EXISTS reconcile.run;
DROP SCHEMA IF EXISTS reconcile;
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
