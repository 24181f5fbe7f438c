use sea_orm_migration::prelude::*;

/// Regional prices (issue 21): what an edition costs in a currency other than its base price's.
///
/// `catalog.edition_price` holds the prices a publisher set per currency; a currency without a
/// row sells at the suggested conversion of the base price (`domain::money::suggested_price`).
/// Written by the api (`setEditionPrices`), as the rest of the catalog.
///
/// `billing.ledger_entry.currency`: the currency of each movement. A wallet holds one currency
/// at a time but may change it while empty, so each entry says its own; entries made before
/// are their wallet's (the append-only trigger is set aside for that one backfill).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE TABLE catalog.edition_price (
    edition_id uuid NOT NULL REFERENCES catalog.edition (id) ON DELETE CASCADE,
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount_minor bigint NOT NULL CHECK (amount_minor >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (edition_id, currency)
);
ALTER TABLE billing.ledger_entry ADD COLUMN currency text;
ALTER TABLE billing.ledger_entry DISABLE TRIGGER ledger_entry_append_only;
UPDATE billing.ledger_entry e SET currency = w.currency
    FROM billing.wallet w WHERE w.account_id = e.account_id;
ALTER TABLE billing.ledger_entry ENABLE TRIGGER ledger_entry_append_only;
ALTER TABLE billing.ledger_entry ALTER COLUMN currency SET NOT NULL,
    ADD CONSTRAINT ledger_entry_currency CHECK (currency ~ '^[A-Z]{3}$');
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS catalog.edition_price;
ALTER TABLE billing.ledger_entry DROP COLUMN IF EXISTS currency;
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
