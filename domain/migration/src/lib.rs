//! PostgreSQL migrations of the store. Each bounded context owns one schema; a migration that
//! touches a context says so in its name. DDL is written as SQL: constraints (checks, partial and
//! expression indexes) are part of the design and read best as the database sees them.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_context_schemas;
mod m20261124_000002_identity;
mod m20261124_000003_catalog;
mod m20261124_000004_saga;
mod m20261124_000005_physical_orders;
mod m20261124_000006_delivery_refunds;
mod m20261204_000001_refund_gate;
mod m20261204_000002_catalog_build_upload_lease;
mod m20261204_100000_catalog_scale;
mod m20261205_100000_catalog_facet_listing;
mod m20261206_000001_catalog_stock_command;
mod m20261206_000002_identity_audit_actor;
mod m20261207_000001_catalog_chunks;
mod m20261207_100000_identity_api_clients;
mod m20261208_000001_webhooks;
mod m20261209_000001_identity_webhook_scopes;
mod m20261209_000002_webhooks_delivery_retention;
mod m20261209_100000_reconcile;
mod m20261210_000001_catalog_outbox;
mod m20261211_000001_catalog_discounts;
mod m20261211_000002_tax;
mod m20261212_000001_regional_prices;
mod m20261212_000002_bundles;
mod m20261213_000001_messaging_retention;

pub use m20261124_000004_saga::PARTICIPANTS;

/// Every schema with a saga participant's messaging tables (inbox, outbox, dead letters): the
/// first five, then those added since.
pub const MESSAGING_SCHEMAS: [&str; 6] = [
    PARTICIPANTS[0],
    PARTICIPANTS[1],
    PARTICIPANTS[2],
    PARTICIPANTS[3],
    PARTICIPANTS[4],
    "webhooks",
];

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_context_schemas::Migration),
            Box::new(m20261124_000002_identity::Migration),
            Box::new(m20261124_000003_catalog::Migration),
            Box::new(m20261124_000004_saga::Migration),
            Box::new(m20261124_000005_physical_orders::Migration),
            Box::new(m20261124_000006_delivery_refunds::Migration),
            Box::new(m20261204_000001_refund_gate::Migration),
            Box::new(m20261204_000002_catalog_build_upload_lease::Migration),
            Box::new(m20261204_100000_catalog_scale::Migration),
            Box::new(m20261205_100000_catalog_facet_listing::Migration),
            Box::new(m20261206_000001_catalog_stock_command::Migration),
            Box::new(m20261206_000002_identity_audit_actor::Migration),
            Box::new(m20261207_000001_catalog_chunks::Migration),
            Box::new(m20261207_100000_identity_api_clients::Migration),
            Box::new(m20261208_000001_webhooks::Migration),
            Box::new(m20261209_000001_identity_webhook_scopes::Migration),
            Box::new(m20261209_000002_webhooks_delivery_retention::Migration),
            Box::new(m20261209_100000_reconcile::Migration),
            Box::new(m20261210_000001_catalog_outbox::Migration),
            Box::new(m20261211_000001_catalog_discounts::Migration),
            Box::new(m20261211_000002_tax::Migration),
            Box::new(m20261212_000001_regional_prices::Migration),
            Box::new(m20261212_000002_bundles::Migration),
            Box::new(m20261213_000001_messaging_retention::Migration),
        ]
    }
}

/// Names of the applied-or-pending migrations, in order. Tests key their template database on
/// this list so a new migration invalidates old templates.
pub fn migration_names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}
