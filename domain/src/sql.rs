//! Raw SQL helpers shared by the api and the saga participants (server only).

use sea_orm::{DbBackend, Statement, Value};

/// A PostgreSQL statement with positional parameters.
pub fn stmt(sql: impl Into<String>, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
