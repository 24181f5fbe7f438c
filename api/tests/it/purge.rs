//! `api purge`, the cleanup of `cargo xtask e2e`: it removes exactly what it is told (a database,
//! a Redis namespace's keys, a NATS prefix's streams) and `--check` lists what is left.

use std::process::{Command, Output};

use async_nats::jetstream::stream;
use fred::prelude::*;
use sea_orm::{ConnectionTrait, Database};

use crate::helpers::server_url;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Runs the api binary's `purge` on `id`'s database, namespace and prefix.
fn purge(id: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("purge")
        .args(extra)
        .env("PURGE_DATABASE_URL", server_url(id))
        .env("PURGE_REDIS_URL", redis_url())
        .env("PURGE_REDIS_NAMESPACE", id)
        .env("PURGE_NATS_URL", nats_url())
        .env("PURGE_NATS_PREFIX", id)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run api purge")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn purge_removes_what_it_names_and_nothing_else() {
    let id = format!("purge_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let other = format!("{id}x");
    let admin = Database::connect(server_url("postgres"))
        .await
        .expect("connect");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {id}"))
        .await
        .expect("create database");
    let redis = api::infra::redis::connect(&redis_url())
        .await
        .expect("redis");
    for key in [format!("{id}:a"), format!("{id}:b:c"), format!("{other}:a")] {
        let _: () = redis
            .set(key, 1, Some(Expiration::EX(60)), None, false)
            .await
            .expect("set");
    }
    let jetstream = api::infra::purge::jetstream(&nats_url())
        .await
        .expect("nats");
    for prefix in [&id, &other] {
        jetstream
            .create_stream(stream::Config {
                name: format!("{prefix}_CMD"),
                subjects: vec![format!("{prefix}.cmd.>")],
                storage: stream::StorageType::Memory,
                ..stream::Config::default()
            })
            .await
            .expect("create stream");
    }

    let before = purge(&id, &["--check"]);
    let purged = purge(&id, &[]);
    let after = purge(&id, &["--check"]);
    let others_keys = api::infra::purge::namespace_keys(redis.next(), &other)
        .await
        .expect("scan");
    let others_streams = api::infra::purge::prefix_streams(&jetstream, &other)
        .await
        .expect("streams");
    let refused = Command::new(env!("CARGO_BIN_EXE_api"))
        .args(["purge", "--database-url", &server_url("postgres")])
        .output()
        .expect("run api purge");

    assert!(!before.status.success(), "{}", text(&before));
    for left in [
        format!("the database {id}"),
        format!("2 Redis keys {id}:*"),
        format!("the NATS streams {id}_CMD"),
    ] {
        assert!(text(&before).contains(&left), "{left}: {}", text(&before));
    }
    assert!(purged.status.success(), "{}", text(&purged));
    assert!(after.status.success(), "{}", text(&after));
    assert_eq!(others_keys, [format!("{other}:a")]);
    assert_eq!(others_streams, [format!("{other}_CMD")]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("server's own"),
        "{}",
        text(&refused)
    );

    assert_eq!(
        api::infra::purge::delete_namespace(redis.next(), &other)
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        api::infra::purge::delete_streams(&jetstream, &other)
            .await
            .expect("delete"),
        [format!("{other}_CMD")]
    );
    assert!(
        !api::infra::purge::drop_database(&server_url(&id))
            .await
            .expect("drop")
    );
    admin.close().await.ok();
    redis.quit().await.ok();
}
