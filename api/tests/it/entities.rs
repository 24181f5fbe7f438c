//! Every sea-orm entity of `domain` against the migrated database: its columns (name,
//! nullability, a coarse type) are those of its table in `information_schema.columns`, and every
//! table of a context has an entity. A misspelt column, a forgotten `Option`, a column a
//! migration added but no entity knows: each fails here rather than at the first query.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::ColumnType;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IdenStatic, Iterable};

use crate::helpers::*;

/// One column as the test compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    nullable: bool,
    /// A coarse type: `uuid`, `text`, `bigint`, `integer`, `smallint`, `boolean`, `timestamptz`,
    /// `date`, `json`, `array`, `double`, `tsvector`, or the database's own name.
    ty: String,
}

/// `schema.table` of an entity.
type Table = String;

/// The columns of entity `E`, by name.
fn entity_columns<E: EntityTrait>() -> (Table, BTreeMap<String, Column>) {
    let entity = E::default();
    let table = format!(
        "{}.{}",
        entity.schema_name().unwrap_or("public"),
        entity.table_name()
    );
    let columns = E::Column::iter()
        .map(|c| {
            let def = c.def();
            let column = Column {
                nullable: def.is_null(),
                ty: entity_type(def.get_column_type()),
            };
            (c.as_str().to_owned(), column)
        })
        .collect();
    (table, columns)
}

fn entity_type(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Uuid => "uuid",
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => "text",
        ColumnType::BigInteger => "bigint",
        ColumnType::Integer => "integer",
        ColumnType::SmallInteger => "smallint",
        ColumnType::Boolean => "boolean",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        ColumnType::Date => "date",
        ColumnType::Json | ColumnType::JsonBinary => "json",
        ColumnType::Array(_) => "array",
        ColumnType::Double => "double",
        ColumnType::VarBinary(_) | ColumnType::Binary(_) | ColumnType::Blob => "bytea",
        other => return format!("{other:?}"),
    }
    .to_owned()
}

fn database_type(data_type: &str) -> String {
    match data_type {
        "text" | "character varying" | "character" => "text",
        "timestamp with time zone" => "timestamptz",
        "json" | "jsonb" => "json",
        "ARRAY" => "array",
        "double precision" => "double",
        other => other,
    }
    .to_owned()
}

/// Every entity of `domain`, as (`schema.table`, columns).
macro_rules! entities {
    ($($($segment:ident)::+),+ $(,)?) => {
        vec![$(entity_columns::<$($segment)::+::Entity>()),+]
    };
}

/// The schemas of the bounded contexts (migration `m20261124_000001_context_schemas`, and
/// `webhooks` from `m20261208_000001_webhooks`).
const SCHEMAS: [&str; 8] = [
    "identity",
    "catalog",
    "ordering",
    "billing",
    "fulfillment",
    "library",
    "notification",
    "webhooks",
];

/// Tables of a context that no entity maps: catalog's search read model, kept by triggers and
/// read only by the search's SQL.
const WITHOUT_ENTITY: [&str; 2] = ["catalog.facet_count", "catalog.search_word"];

/// Columns a table has and its entity leaves out on purpose, besides generated ones (which no
/// entity may write): `catalog.product.edition_kinds` is kept by a trigger from the editions and
/// read only by the search's SQL.
const LEFT_OUT: [&str; 1] = ["catalog.product.edition_kinds"];

#[tokio::test]
async fn every_entity_matches_its_table() {
    use domain::{
        billing, catalog, fulfillment, identity, library, notification, ordering, refund, webhooks,
    };

    let app = TestApp::spawn().await;
    let rows = app
        .state
        .db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT c.table_schema, c.table_name, c.column_name, c.is_nullable, c.data_type, \
                    c.is_generated \
             FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = ANY($1) AND t.table_type = 'BASE TABLE'",
            [SCHEMAS.map(str::to_owned).to_vec().into()],
        ))
        .await
        .expect("information_schema");
    let mut database: BTreeMap<Table, BTreeMap<String, (Column, bool)>> = BTreeMap::new();
    for row in rows {
        let get = |c: &str| row.try_get::<String>("", c).expect(c);
        let column = Column {
            nullable: get("is_nullable") == "YES",
            ty: database_type(&get("data_type")),
        };
        let generated = get("is_generated") == "ALWAYS";
        database
            .entry(format!("{}.{}", get("table_schema"), get("table_name")))
            .or_default()
            .insert(get("column_name"), (column, generated));
    }

    let entities = entities![
        identity::entity::account,
        identity::entity::audit_log,
        identity::entity::api_client,
        identity::entity::publisher_buyer,
        catalog::entity::product,
        catalog::entity::facet_listing,
        catalog::entity::discount,
        catalog::entity::bundle,
        catalog::entity::bundle_item,
        catalog::entity::edition,
        catalog::entity::edition_price,
        catalog::entity::review,
        catalog::entity::wishlist,
        catalog::entity::refund_gate,
        catalog::entity::build,
        catalog::entity::chunk,
        catalog::entity::build_file,
        catalog::entity::build_chunk,
        catalog::entity::download,
        catalog::entity::stock_command,
        catalog::entity::outbox,
        ordering::entity::order,
        ordering::entity::order_line,
        ordering::entity::order_step,
        ordering::entity::product_claim,
        ordering::entity::inbox,
        ordering::entity::outbox,
        ordering::entity::dead_letter,
        refund::entity::refund_request,
        billing::entity::wallet,
        billing::entity::ledger_entry,
        billing::entity::top_up,
        billing::entity::revenue_entry,
        billing::entity::inbox,
        billing::entity::outbox,
        billing::entity::dead_letter,
        fulfillment::entity::inventory,
        fulfillment::entity::shipment,
        fulfillment::entity::reservation,
        fulfillment::entity::inbox,
        fulfillment::entity::outbox,
        fulfillment::entity::dead_letter,
        library::entity::entitlement,
        library::entity::revoked_order,
        library::entity::gift_key_batch,
        library::entity::gift_key,
        library::entity::inbox,
        library::entity::outbox,
        library::entity::dead_letter,
        notification::entity::notification,
        notification::entity::inbox,
        notification::entity::outbox,
        notification::entity::dead_letter,
        webhooks::entity::endpoint,
        webhooks::entity::delivery,
        webhooks::entity::attempt,
        webhooks::entity::order_publisher,
        webhooks::entity::inbox,
        webhooks::entity::outbox,
        webhooks::entity::dead_letter,
    ];

    let mut problems = Vec::new();
    let mut mapped = BTreeSet::new();
    for (table, columns) in &entities {
        if !mapped.insert(table.clone()) {
            problems.push(format!("{table}: two entities"));
        }
        let Some(actual) = database.get(table) else {
            problems.push(format!("{table}: no such table"));
            continue;
        };
        for (name, column) in columns {
            match actual.get(name) {
                None => problems.push(format!("{table}.{name}: no such column")),
                Some((db, _)) if db != column => {
                    problems.push(format!(
                        "{table}.{name}: the entity says {column:?}, the table {db:?}"
                    ));
                }
                Some(_) => {}
            }
        }
        for (name, (_, generated)) in actual {
            let full = format!("{table}.{name}");
            if !columns.contains_key(name) && !generated && !LEFT_OUT.contains(&full.as_str()) {
                problems.push(format!("{full}: a column no entity field maps"));
            }
        }
    }
    for table in database.keys() {
        if !mapped.contains(table) && !WITHOUT_ENTITY.contains(&table.as_str()) {
            problems.push(format!("{table}: a table without an entity"));
        }
    }
    assert!(
        problems.is_empty(),
        "entities and tables differ:\n{}",
        problems.join("\n")
    );
}
