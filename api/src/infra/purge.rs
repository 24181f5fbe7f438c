//! Removing what a throwaway store made: a PostgreSQL database, the keys of a Redis namespace
//! and the JetStream streams of a NATS subject prefix; and finding what is left of them. Used by
//! `api purge` (which `cargo xtask e2e` runs after its browser test) and by the integration
//! tests' cleanup.

use anyhow::{Context, bail, ensure};
use fred::prelude::*;
use fred::types::Key;
use futures::TryStreamExt;
use sea_orm::{ConnectionTrait, Statement};

/// The server's own databases, never dropped.
const SERVER_DATABASES: [&str; 3] = ["postgres", "template0", "template1"];

/// Keys per SCAN page and per DEL.
const BATCH: usize = 1000;

/// The URL of the `postgres` database of `url`'s server, and the name of the database `url`
/// names, refused when it is one of the server's own.
fn maintenance_and_name(url: &str) -> anyhow::Result<(String, String)> {
    let (maintenance, name) = crate::infra::db::split_database_url(url)?;
    ensure!(
        !SERVER_DATABASES.contains(&name.as_str()),
        "refusing to touch the database `{name}`: it is the server's own"
    );
    Ok((maintenance, name))
}

async fn exists(admin: &impl ConnectionTrait, name: &str) -> anyhow::Result<bool> {
    // Raw: catalog introspection (`pg_database`), which no entity maps.
    let found = admin
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .context("looking for the database")?;
    Ok(found.is_some())
}

/// Whether the database `url` names exists (asked on the server's `postgres` database).
pub async fn database_exists(url: &str) -> anyhow::Result<bool> {
    let (maintenance, name) = maintenance_and_name(url)?;
    let admin = crate::infra::db::connect(&maintenance, 1).await?;
    let found = exists(&admin, &name).await;
    admin.close().await.ok();
    found
}

/// Drops the database `url` names, closing its connections (`WITH (FORCE)`); returns whether
/// it was there.
pub async fn drop_database(url: &str) -> anyhow::Result<bool> {
    let (maintenance, name) = maintenance_and_name(url)?;
    let admin = crate::infra::db::connect(&maintenance, 1).await?;
    let dropped = async {
        let found = exists(&admin, &name).await?;
        // The name is checked by `split_database_url`: letters, digits, `_` and `-`.
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .with_context(|| format!("dropping the database {name}"))?;
        Ok(found)
    }
    .await;
    admin.close().await.ok();
    dropped
}

/// `namespace:*` as a SCAN pattern, the namespace's glob characters escaped.
pub fn namespace_pattern(namespace: &str) -> anyhow::Result<String> {
    ensure!(!namespace.is_empty(), "refusing an empty Redis namespace");
    let mut pattern = String::with_capacity(namespace.len() + 2);
    for c in namespace.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(":*");
    Ok(pattern)
}

/// Every key of `namespace` (a pattern-free one: see `namespace_pattern`).
pub async fn scan_namespace(redis: &Client, namespace: &str) -> anyhow::Result<Vec<Key>> {
    let pattern = namespace_pattern(namespace)?;
    redis
        .scan_buffered(pattern, Some(BATCH as u32), None)
        .try_collect()
        .await
        .context("scanning the Redis keys")
}

/// The keys of `namespace` (`namespace:*`).
pub async fn namespace_keys(redis: &Client, namespace: &str) -> anyhow::Result<Vec<String>> {
    let keys = scan_namespace(redis, namespace).await?;
    Ok(keys
        .iter()
        .map(|key| key.as_str_lossy().into_owned())
        .collect())
}

/// Deletes every key of `namespace` (`namespace:*`); returns how many.
pub async fn delete_namespace(redis: &Client, namespace: &str) -> anyhow::Result<u64> {
    let keys = scan_namespace(redis, namespace).await?;
    let mut deleted = 0;
    for batch in keys.chunks(BATCH) {
        let n: u64 = redis
            .del(batch.to_vec())
            .await
            .context("deleting Redis keys")?;
        deleted += n;
    }
    Ok(deleted)
}

/// A subject prefix to clean up after: one non-empty token (an empty one would mean every
/// stream).
fn prefix_token(prefix: &str) -> anyhow::Result<&str> {
    ensure!(
        !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "refusing the NATS prefix {prefix:?}: one token of letters, digits, `_` and `-`"
    );
    Ok(prefix)
}

/// The JetStream streams of `prefix`: those named `{prefix}_…` (`{prefix}_CMD`, `{prefix}_EVT`).
pub async fn prefix_streams(
    jetstream: &async_nats::jetstream::Context,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let own = format!("{}_", prefix_token(prefix)?);
    let names: Vec<String> = jetstream
        .stream_names()
        .try_collect()
        .await
        .context("listing the JetStream streams")?;
    Ok(names
        .into_iter()
        .filter(|name| name.starts_with(&own))
        .collect())
}

/// Deletes the JetStream streams of `prefix` (with their consumers); returns their names.
pub async fn delete_streams(
    jetstream: &async_nats::jetstream::Context,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::DeleteStreamErrorKind;

    let mut deleted = Vec::new();
    for name in prefix_streams(jetstream, prefix).await? {
        match jetstream.delete_stream(&name).await {
            Ok(_) => deleted.push(name),
            // Gone meanwhile.
            Err(e)
                if matches!(e.kind(), DeleteStreamErrorKind::JetStream(ref js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND) => {}
            Err(e) => bail!("deleting the stream {name}: {e}"),
        }
    }
    Ok(deleted)
}

/// Connects to NATS for JetStream's API.
pub async fn jetstream(url: &str) -> anyhow::Result<async_nats::jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .context("connecting to NATS")?;
    Ok(async_nats::jetstream::new(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(namespace_pattern("e2e:1").expect("ok"), "e2e:1:*");
        assert_eq!(namespace_pattern("a*[").expect("ok"), "a\\*\\[:*");
        assert!(namespace_pattern("").is_err());
        assert!(prefix_token("").is_err());
        assert!(prefix_token("a.b").is_err());
        assert!(prefix_token(">").is_err());
        assert_eq!(prefix_token("e2e_1").expect("ok"), "e2e_1");
        assert!(maintenance_and_name("postgres://h/postgres").is_err());
        assert!(maintenance_and_name("postgres://h/template1?x=y").is_err());
        assert!(maintenance_and_name("postgres://h/store_e2e_1").is_ok());
    }
}
