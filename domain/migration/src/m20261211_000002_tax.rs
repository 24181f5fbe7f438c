use sea_orm_migration::prelude::*;

/// Tax (issue 21): where an order is taxed and the tax in each line.
///
/// - `identity.account.billing_country` / `billing_state`: the buyer's place for digital
///   orders (`setBillingCountry`); written by the api.
/// - `ordering.order.tax_country` / `tax_state`: the place the order was taxed at, and
///   `ordering.order_line.unit_tax_minor` / `tax_rate_ppm`: the tax in one copy's price and its
///   rate; written by the ordering participant from `ordering.place`. Orders placed before read
///   no place and no tax.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE identity.account
    ADD COLUMN billing_country text CHECK (billing_country ~ '^[A-Z]{2}$'),
    ADD COLUMN billing_state text CHECK (billing_state ~ '^[A-Z0-9]{1,3}$');
ALTER TABLE ordering."order"
    ADD COLUMN tax_country text,
    ADD COLUMN tax_state text;
ALTER TABLE ordering.order_line
    ADD COLUMN unit_tax_minor bigint NOT NULL DEFAULT 0 CHECK (unit_tax_minor >= 0),
    ADD COLUMN tax_rate_ppm integer NOT NULL DEFAULT 0 CHECK (tax_rate_ppm >= 0);
"#;

const DOWN: &str = r#"
ALTER TABLE ordering.order_line DROP COLUMN IF EXISTS unit_tax_minor, DROP COLUMN IF EXISTS tax_rate_ppm;
ALTER TABLE ordering."order" DROP COLUMN IF EXISTS tax_country, DROP COLUMN IF EXISTS tax_state;
ALTER TABLE identity.account DROP COLUMN IF EXISTS billing_country, DROP COLUMN IF EXISTS billing_state;
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
