//! Throughput and latency of the digital order saga, in-process: the api's `placeOrder` service
//! and every saga participant on one runtime, against real PostgreSQL, Redis and NATS. Reports
//! orders completed per second and the place→completed latency (median, p99), beside the
//! machine's `pgbench` commit rate (TPC-B-like, measured in the same run) as the baseline: a
//! completed order costs about a dozen transactions across four participants.
//!
//! Uses its own databases `store_bench_saga` and `store_bench_pgbench` (recreated each run) on
//! the server of `DATABASE_URL`, the NATS prefix `benchsaga` and the Redis namespace
//! `benchsaga`.
//!
//! `cargo run --release -p bench --bin order_saga [-- BUYERS PRODUCTS]` (default 20 × 50 = 1000
//! orders). Named apart from the `saga` binary, which shares the target directory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// `pgbench` commits per second on a scratch database (scale 10, 8 clients, 10 s).
fn pgbench(maintenance_url: &str) -> anyhow::Result<f64> {
    let base = maintenance_url
        .split('?')
        .next()
        .unwrap_or(maintenance_url)
        .trim_end_matches("/postgres")
        .to_owned();
    let url = format!("{base}/store_bench_pgbench");
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", &url])
        .output()
        .context("running pgbench -i (is pgbench installed?)")?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = std::process::Command::new("pgbench")
        .args(["-c", "8", "-j", "2", "-T", "10", &url])
        .output()
        .context("running pgbench")?;
    let out = String::from_utf8_lossy(&run.stdout);
    out.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .with_context(|| format!("no tps in pgbench output: {out}"))
}

async fn recreate(maintenance: &str, name: &str) -> anyhow::Result<()> {
    let admin = api::infra::db::connect(maintenance, 1).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await.ok();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let buyers = args.first().copied().unwrap_or(20);
    let products = args.get(1).copied().unwrap_or(50);
    let total = buyers * products;

    let mut serve = api::infra::config::serve_args_from_env()?;
    let (maintenance, _) = api::infra::db::split_database_url(&serve.services.database_url)?;
    recreate(&maintenance, "store_bench_saga").await?;
    recreate(&maintenance, "store_bench_pgbench").await?;
    let base = maintenance
        .split('?')
        .next()
        .unwrap_or(&maintenance)
        .trim_end_matches("/postgres")
        .to_owned();
    serve.services.database_url = format!("{base}/store_bench_saga");
    serve.services.nats_prefix = "benchsaga".to_owned();
    serve.services.redis_namespace = "benchsaga".to_owned();
    serve.services.object_store_dir = std::env::temp_dir().join("store-bench-objects");
    serve.jwt_private_key = Some(api::infra::auth::jwt::generate_key_pair()?.0);
    serve.jwt_private_key_file = None;
    serve.gateway_secret = None;
    serve.gateway_secret_file = None;
    serve.top_up_max_minor = 100_000_000;
    api::cli::migrate(&serve.services).await?;
    let db = api::infra::db::connect(&serve.services.database_url, 30).await?;
    let state = api::AppState::connect_with_db(serve.into_config()?, db.clone()).await?;
    // Start from empty streams.
    for s in ["CMD", "EVT"] {
        let _ = state
            .bus
            .jetstream()
            .delete_stream(state.bus.stream_name(s))
            .await;
    }
    state.bus.ensure_streams(1).await?;

    // Setup: a publisher, products with one digital edition each, buyers with money.
    let publisher = Uuid::now_v7();
    db.execute_raw(stmt(
        "INSERT INTO identity.account (id, email, email_normalized, display_name, role, password_hash) \
         VALUES ($1, 'bench@publisher.test', 'bench@publisher.test', 'Bench', 'publisher', '$argon2id$bench')",
        vec![publisher.into()],
    ))
    .await?;
    let mut editions = Vec::new();
    for i in 0..products {
        let (p, e) = (Uuid::now_v7(), Uuid::now_v7());
        db.execute_raw(stmt(
            "INSERT INTO catalog.product (id, publisher_id, slug, title, status, currency, published_at) \
             VALUES ($1, $2, $3, $4, 'published', 'EUR', now())",
            vec![
                p.into(),
                publisher.into(),
                format!("bench-{i}").into(),
                format!("Bench {i}").into(),
            ],
        ))
        .await?;
        db.execute_raw(stmt(
            "INSERT INTO catalog.edition (id, product_id, kind, name, sku, price_minor, currency) \
             VALUES ($1, $2, 'digital', 'Standard', $3, 999, 'EUR')",
            vec![e.into(), p.into(), format!("BENCH-{i}").into()],
        ))
        .await?;
        editions.push(e);
    }
    let rt = saga::Runtime::new(
        db.clone(),
        state.bus.clone(),
        state.redis.clone(),
        "benchsaga".to_owned(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        saga::Settings::default(),
    );
    let participants = saga::spawn(rt, saga::Participant::ALL.to_vec());
    let principals: Vec<api::infra::auth::Principal> = (0..buyers)
        .map(|i| api::infra::auth::Principal {
            id: Uuid::now_v7(),
            role: domain::identity::Role::User,
            name: format!("buyer {i}"),
        })
        .collect();
    for p in &principals {
        api::billing::top_up(
            &state,
            p,
            999 * products as i64,
            "4242424242424242",
            "bench",
        )
        .await?;
    }
    let funded = Instant::now();
    loop {
        let n: i64 = db
            .query_one_raw(stmt(
                "SELECT count(*)::bigint AS n FROM billing.top_up",
                vec![],
            ))
            .await?
            .map(|r| r.try_get("", "n"))
            .transpose()?
            .unwrap_or(0);
        if n as usize == buyers {
            break;
        }
        anyhow::ensure!(
            funded.elapsed() < Duration::from_secs(60),
            "the top-ups did not settle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Completion times, from the live events.
    let completed: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let mut sub = state
        .nats
        .subscribe(state.bus.subject("evt.ordering.order_completed.*"))
        .await?;
    let sink = completed.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(id) = m
                .subject
                .as_str()
                .rsplit('.')
                .next()
                .and_then(|s| s.parse().ok())
                && let Ok(mut map) = sink.lock()
            {
                map.entry(id).or_insert_with(Instant::now);
            }
        }
    });

    println!("saga: {buyers} buyers × {products} products = {total} digital orders, 32 in flight");
    let start = Instant::now();
    let placed: Vec<(Uuid, Instant)> = futures::stream::iter(
        principals
            .iter()
            .flat_map(|p| editions.iter().map(move |e| (p, *e))),
    )
    .map(|(p, e)| {
        let state = &state;
        async move {
            let t = Instant::now();
            let lines = [api::ordering::LineInput {
                edition_id: e,
                quantity: 1,
            }];
            let id = api::ordering::place_order(state, p, &lines, None, &format!("o-{e}")).await?;
            Ok::<_, api::ApiError>((id, t))
        }
    })
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    loop {
        let done = completed.lock().map(|m| m.len()).unwrap_or(0);
        if done >= total {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "only {done} of {total} orders completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.elapsed();
    let latencies: Vec<Duration> = {
        let map = completed
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned lock"))?;
        placed
            .iter()
            .filter_map(|(id, t)| map.get(id).map(|c| c.duration_since(*t)))
            .collect()
    };
    participants.abort();
    let rate = total as f64 / elapsed.as_secs_f64();
    let tps = pgbench(&maintenance)?;
    println!(
        "  orders completed per second         {rate:8.1}   ({total} in {:.2} s)",
        elapsed.as_secs_f64()
    );
    println!(
        "  place→completed latency            median {:7.1} ms   p99 {:7.1} ms",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99)
    );
    println!("  baseline: pgbench commits/s         {tps:8.1}   (scale 10, 8 clients, 10 s)");
    println!(
        "  ratio: {:.1} pgbench transactions per completed order",
        tps / rate
    );
    Ok(())
}
