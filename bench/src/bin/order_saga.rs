//! Throughput and latency of the digital order saga, in-process: the api's `placeOrder` service
//! and every saga participant on one runtime, against real PostgreSQL, Redis and NATS. Reports
//! orders completed per second and the place→completed latency (median, p99), beside the
//! machine's `pgbench` commit rate (TPC-B-like, measured in the same run, before and after each
//! round; the median of those runs) as the baseline, and
//! the transactions the store's database committed per order (`pg_stat_database.xact_commit`
//! of its database over the run).
//!
//! Two ways of handling deliveries run in interleaved rounds: one delivery per transaction
//! (`batch_max` 1, 16 at once per consumer: what the participants did before batching) and the
//! default batches.
//!
//! Uses its own databases `store_bench_saga` and `store_bench_pgbench` (recreated for each
//! run) on the server of `DATABASE_URL`, the NATS prefix `benchsaga` and the Redis namespace
//! `benchsaga`.
//!
//! `cargo run --release -p bench --bin order_saga [-- BUYERS PRODUCTS ROUNDS]` (default
//! 20 × 50 = 1000 orders, 2 rounds). Named apart from the `saga` binary, which shares the
//! target directory.

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

/// The URL of the scratch database `pgbench` runs on.
fn pgbench_url(maintenance_url: &str) -> String {
    bench::database_url(maintenance_url, "store_bench_pgbench")
}

/// Creates `pgbench`'s tables (scale 10) on a fresh scratch database.
async fn pgbench_init(maintenance_url: &str) -> anyhow::Result<()> {
    recreate(maintenance_url, "store_bench_pgbench").await?;
    let init = std::process::Command::new("pgbench")
        .args(["-i", "-q", "-s", "10", &pgbench_url(maintenance_url)])
        .output()
        .context("running pgbench -i (is pgbench installed?)")?;
    anyhow::ensure!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    Ok(())
}

/// `pgbench` commits per second on the scratch database (8 clients, 10 s).
fn pgbench(maintenance_url: &str) -> anyhow::Result<f64> {
    let url = pgbench_url(maintenance_url);
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

/// Transactions committed in the current database so far (the server's statistics).
async fn xact_commit(db: &sea_orm::DatabaseConnection) -> anyhow::Result<i64> {
    db.query_one_raw(stmt(
        "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
        vec![],
    ))
    .await?
    .map(|r| r.try_get::<i64>("", "n"))
    .transpose()?
    .context("no statistics for the database")
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

/// CPU time (user + system) a process used so far, from `/proc/<pid>/stat` (in the kernel's
/// fixed USER_HZ of 100 ticks per second); with `children`, also that of its children that
/// ended and were waited for.
fn cpu_of(pid: &str, children: bool) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // utime, stime, cutime, cstime are fields 14–17 of the line: 11–14 after the name and state.
    let ticks: u64 = fields.get(10..if children { 14 } else { 12 })?.iter().sum();
    Some(Duration::from_millis(ticks * 10))
}

/// The CPU time the PostgreSQL server behind `db` used so far (its postmaster, the children
/// that ended and every live one), when it runs on this machine: `None` otherwise.
async fn postgres_cpu(db: &sea_orm::DatabaseConnection) -> anyhow::Result<Option<Duration>> {
    let backend: i32 = db
        .query_one_raw(stmt("SELECT pg_backend_pid() AS pid", vec![]))
        .await?
        .map(|r| r.try_get("", "pid"))
        .transpose()?
        .context("no backend pid")?;
    let parent = |pid: &str| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)
            .map(str::to_owned)
    };
    let Some(postmaster) = parent(&backend.to_string()) else {
        return Ok(None);
    };
    let mut total = cpu_of(&postmaster, true).unwrap_or_default();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.bytes().all(|b| b.is_ascii_digit()) && parent(&pid).as_deref() == Some(&postmaster) {
            total += cpu_of(&pid, false).unwrap_or_default();
        }
    }
    Ok(Some(total))
}

/// The CPU time the NATS servers on this machine (every `nats-server` process) used so far.
fn nats_cpu() -> Duration {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.bytes().all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "nats-server")
        {
            total += cpu_of(&pid, false).unwrap_or_default();
        }
    }
    total
}

/// `settings` with `SAGA_CONCURRENCY` and `SAGA_BATCH_MAX` when they are set (to try other
/// values of the batched mode without building again).
fn tuned(mut settings: saga::Settings) -> saga::Settings {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    if let Some(n) = var("SAGA_CONCURRENCY") {
        settings.concurrency = n;
    }
    if let Some(n) = var("SAGA_BATCH_MAX") {
        settings.batch_max = n;
    }
    settings
}

/// How the participants handle deliveries in one run.
struct Mode {
    name: &'static str,
    settings: saga::Settings,
}

/// What one run measured.
struct Figures {
    rate: f64,
    median_ms: f64,
    p99_ms: f64,
    commits: i64,
    total: usize,
    /// CPU time of this process (the api's service and every participant) over the orders.
    store_cpu: Duration,
    /// CPU time of PostgreSQL over the orders, when it runs on this machine.
    postgres_cpu: Option<Duration>,
    /// CPU time of the NATS servers on this machine over the orders.
    nats_cpu: Duration,
    /// Orders placed (`placeOrder` answered) per second: the rate the saga was offered.
    placed_rate: f64,
    /// Deliveries per batch committed (of two or more).
    batch_size: f64,
    /// Deliveries that left a batch to go alone (a row lock another transaction held).
    alone: u64,
    /// Median time of `SELECT 1` on the shared pool, and of a NATS round trip, while placing.
    probe_pg_ms: f64,
    probe_nats_ms: f64,
}

/// Milliseconds of `cpu` per order.
fn per_order(cpu: Duration, orders: usize) -> f64 {
    cpu.as_secs_f64() * 1000.0 / orders.max(1) as f64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let buyers = args.first().copied().unwrap_or(20);
    let products = args.get(1).copied().unwrap_or(50);
    let rounds = args.get(2).copied().unwrap_or(2).max(1);
    // `ORDER_SAGA_BATCHED_ONLY=1` skips the mode of one delivery per transaction (quicker runs
    // while working on the batched one).
    let batched_only = std::env::var("ORDER_SAGA_BATCHED_ONLY").is_ok_and(|v| v == "1");
    let modes = [
        Mode {
            name: "one delivery per transaction",
            settings: saga::Settings {
                concurrency: 16,
                batch_max: 1,
                ..saga::Settings::default()
            },
        },
        Mode {
            name: "batched (the default)",
            settings: tuned(saga::Settings::default()),
        },
    ];
    let modes: Vec<Mode> = modes
        .into_iter()
        .filter(|m| !batched_only || m.settings.batch_max > 1)
        .collect();
    println!(
        "saga: {buyers} buyers × {products} products = {} digital orders, 32 in flight, {rounds} interleaved rounds",
        buyers * products
    );
    let mut results: Vec<Vec<Figures>> = modes.iter().map(|_| Vec::new()).collect();
    // The baseline runs before and after each round (its rate drifts by tens of percent from
    // one run to the next on a small machine): the median of those runs is the figure.
    let maintenance = api::infra::db::split_database_url(
        &api::infra::config::serve_args_from_env()?
            .services
            .database_url,
    )?
    .0;
    pgbench_init(&maintenance).await?;
    let mut baseline = vec![pgbench(&maintenance)?];
    for round in 0..rounds {
        for (mode, out) in modes.iter().zip(&mut results) {
            let f = run(mode, buyers, products).await?;
            println!(
                "  round {} {:<30} {:7.1} orders/s (placed {:6.1}/s)   median {:6.1} ms   p99 {:7.1} ms   {:5.1} commits/order   CPU/order: store {:.2} ms, NATS {:.2} ms, PostgreSQL {}   {:.1} deliveries/batch, {} alone   probes: SELECT 1 {:.1} ms, NATS {:.1} ms",
                round + 1,
                mode.name,
                f.rate,
                f.placed_rate,
                f.median_ms,
                f.p99_ms,
                f.commits as f64 / f.total as f64,
                per_order(f.store_cpu, f.total),
                per_order(f.nats_cpu, f.total),
                f.postgres_cpu.map_or("n/a".to_owned(), |c| format!(
                    "{:.2} ms",
                    per_order(c, f.total)
                )),
                f.batch_size,
                f.alone,
                f.probe_pg_ms,
                f.probe_nats_ms,
            );
            out.push(f);
        }
        baseline.push(pgbench(&maintenance)?);
    }
    let runs: Vec<String> = baseline.iter().map(|t| format!("{t:.0}")).collect();
    baseline.sort_by(f64::total_cmp);
    let tps = baseline[baseline.len() / 2];
    println!(
        "  baseline: pgbench commits/s {tps:8.1}   (median of {} runs: {}; scale 10, 8 clients, 10 s each)",
        runs.len(),
        runs.join(", ")
    );
    for (mode, figures) in modes.iter().zip(&results) {
        let n = figures.len() as f64;
        let rate = figures.iter().map(|f| f.rate).sum::<f64>() / n;
        let median = figures.iter().map(|f| f.median_ms).sum::<f64>() / n;
        let p99 = figures.iter().map(|f| f.p99_ms).sum::<f64>() / n;
        let commits = figures
            .iter()
            .map(|f| f.commits as f64 / f.total as f64)
            .sum::<f64>()
            / n;
        let store = figures
            .iter()
            .map(|f| per_order(f.store_cpu, f.total))
            .sum::<f64>()
            / n;
        let nats = figures
            .iter()
            .map(|f| per_order(f.nats_cpu, f.total))
            .sum::<f64>()
            / n;
        let postgres = figures
            .iter()
            .map(|f| f.postgres_cpu.map(|c| per_order(c, f.total)))
            .sum::<Option<f64>>()
            .map_or("n/a".to_owned(), |c| format!("{:.2} ms", c / n));
        println!(
            "  {:<30} {rate:7.1} orders/s   {:5.1} pgbench transactions per order   median {median:6.1} ms   p99 {p99:7.1} ms   {commits:5.1} commits/order   CPU/order: store {store:.2} ms, NATS {nats:.2} ms, PostgreSQL {postgres}",
            mode.name,
            tps / rate,
        );
    }
    Ok(())
}

/// One run: a fresh database and streams, the participants in `mode`, every order placed and
/// completed.
async fn run(mode: &Mode, buyers: usize, products: usize) -> anyhow::Result<Figures> {
    let total = buyers * products;
    let (mut serve, maintenance) = bench::serve_args("store_bench_saga", "benchsaga")?;
    recreate(&maintenance, "store_bench_saga").await?;
    serve.top_up_max_minor = 100_000_000;
    api::cli::migrate(&serve.services).await?;
    let database_url = serve.services.database_url.clone();
    let db = api::infra::db::connect(&database_url, 30).await?;
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
        mode.settings.clone(),
    );
    let counters = rt.counters.clone();
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

    // An idle backend writes its statistics within 10 s: wait until the setup's are in.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let commits_before = xact_commit(&db).await?;
    let store_cpu_before = cpu_of("self", false).unwrap_or_default();
    let postgres_cpu_before = postgres_cpu(&db).await?;
    let nats_cpu_before = nats_cpu();
    let counted_before = (counters.batches(), counters.batched(), counters.alone());
    // While the orders are placed: how long a trivial statement on the shared pool and a round
    // trip to NATS on the shared connection take (what every step waits for besides its work).
    let probing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = tokio::spawn({
        let (db, nats, probing) = (db.clone(), state.nats.clone(), probing.clone());
        async move {
            let (mut pg, mut bus) = (Vec::new(), Vec::new());
            while probing.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                if db
                    .query_one_raw(stmt("SELECT 1 AS n", vec![]))
                    .await
                    .is_ok()
                {
                    pg.push(t.elapsed());
                }
                let t = Instant::now();
                if nats.flush().await.is_ok() {
                    bus.push(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (pg, bus)
        }
    });
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
            let id = api::ordering::place_order(
                state,
                p,
                api::ordering::Basket::Lines(&lines),
                None,
                &format!("o-{e}"),
            )
            .await?;
            Ok::<_, api::ApiError>((id, t))
        }
    })
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    let placed_in = start.elapsed();
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
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
    let store_cpu = cpu_of("self", false).unwrap_or_default() - store_cpu_before;
    let nats_cpu = nats_cpu().saturating_sub(nats_cpu_before);
    let (probe_pg, probe_nats) = probe.await.unwrap_or_default();
    let batches = counters.batches() - counted_before.0;
    let batched = counters.batched() - counted_before.1;
    let alone = counters.alone() - counted_before.2;
    let postgres_cpu = match (postgres_cpu_before, postgres_cpu(&db).await?) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
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
    // Backends write their statistics when they end: close every connection, then read.
    drop(state);
    db.close().await.ok();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = api::infra::db::connect(&database_url, 1).await?;
    let commits_at_end = xact_commit(&db).await?;
    db.close().await.ok();
    let figures = Figures {
        rate: total as f64 / elapsed.as_secs_f64(),
        median_ms: quantile(&latencies, 0.5),
        p99_ms: quantile(&latencies, 0.99),
        commits: commits_at_end - commits_before,
        total,
        store_cpu,
        postgres_cpu,
        nats_cpu,
        placed_rate: total as f64 / placed_in.as_secs_f64(),
        batch_size: batched as f64 / batches.max(1) as f64,
        alone,
        probe_pg_ms: quantile(&probe_pg, 0.5),
        probe_nats_ms: quantile(&probe_nats, 0.5),
    };
    Ok(figures)
}
