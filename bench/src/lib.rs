//! Benchmark programs (`cargo run --release -p bench --bin NAME`). Not part of the test run: they
//! measure, they do not assert. Each reports its figures as ratios against a baseline measured in
//! the same run, so the numbers mean something on any machine.
// Executing the whole GraphQL schema (`catalog::page`) needs a deeper layout computation.
#![recursion_limit = "256"]

pub mod catalog;

/// The URL of database `name` on the server of `maintenance` (a URL of its `postgres` database).
pub fn database_url(maintenance: &str, name: &str) -> String {
    let server = maintenance.split('?').next().unwrap_or(maintenance);
    format!("{}/{name}", server.trim_end_matches("/postgres"))
}

/// The api's settings for a benchmark: its own database `database` on the server of
/// `DATABASE_URL`, its own NATS prefix and Redis namespace `prefix`, a fresh signing key, no
/// gateway; and the URL of the server's `postgres` database (to create or drop `database`).
pub fn serve_args(
    database: &str,
    prefix: &str,
) -> anyhow::Result<(api::infra::config::ServeArgs, String)> {
    let mut serve = api::infra::config::serve_args_from_env()?;
    let (maintenance, _) = api::infra::db::split_database_url(&serve.services.database_url)?;
    serve.services.database_url = database_url(&maintenance, database);
    serve.services.nats_prefix = prefix.to_owned();
    serve.services.redis_namespace = prefix.to_owned();
    serve.services.object_store_dir = std::env::temp_dir().join("store-bench-objects");
    serve.jwt_private_key = Some(api::infra::auth::jwt::generate_key_pair()?.0);
    serve.jwt_private_key_file = None;
    serve.gateway_secret = None;
    serve.gateway_secret_file = None;
    Ok((serve, maintenance))
}
