//! PostgreSQL: connecting, creating the database, migrating.

use std::time::Duration;

use anyhow::{Context, bail};
use migration::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

/// Connects a pool to `url`.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .context("connecting to PostgreSQL")
}

/// Splits `postgres://…/name?opts` into the URL of the server's `postgres` database and `name`.
pub fn split_database_url(url: &str) -> anyhow::Result<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let Some((server, name)) = base.rsplit_once('/') else {
        bail!("DATABASE_URL has no database name");
    };
    if name.is_empty() || server.ends_with('/') && !server.contains("//") {
        bail!("DATABASE_URL has no database name");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("database name `{name}` must be ASCII letters, digits, `_` or `-`");
    }
    let maintenance = match query {
        Some(q) => format!("{server}/postgres?{q}"),
        None => format!("{server}/postgres"),
    };
    Ok((maintenance, name.to_owned()))
}

/// Creates the database of `url` if it does not exist (connecting to the server's `postgres`
/// database to do so).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    let (maintenance, name) = split_database_url(url)?;
    let admin = connect(&maintenance, 1).await?;
    // Raw: catalog introspection (`pg_database`), which no entity maps.
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.clone().into()],
        ))
        .await?
        .is_some();
    if !exists {
        // Two processes may race here; "already exists" is success.
        match admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e).context("creating the database"),
        }
    }
    admin.close().await.ok();
    Ok(())
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    migration::Migrator::up(db, None)
        .await
        .context("applying migrations")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_split() {
        let (m, n) = split_database_url("postgres://u:p@h:5432/store?sslmode=disable").expect("ok");
        assert_eq!(m, "postgres://u:p@h:5432/postgres?sslmode=disable");
        assert_eq!(n, "store");
        assert!(split_database_url("postgres://h:5432/bad;name").is_err());
    }
}
