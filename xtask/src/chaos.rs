//! `cargo xtask chaos [--short]`: the fault harness. It runs the store as separate processes on
//! loopback (two api replicas, two replicas of each saga participant, a three-node NATS
//! JetStream cluster with R3 streams, a private PostgreSQL instance, a Redis namespace of its
//! own), drives a mixed workload through the api's GraphQL, first without faults and then while
//! it kills participants and the api (SIGKILL, restarted), stops a NATS node, restarts
//! PostgreSQL and wipes the Redis namespace. Its processes export their spans to the harness's
//! own OTLP collector ([`traces`]). Then it checks the store's invariants and prints
//! them as a table, with the faults applied, orders per second and place→settled latency with
//! and without faults. It fails when an invariant does not hold.
//!
//! Bounded: every wait has a deadline (the whole run takes a few minutes, `--short` about
//! a minute plus start-up). Everything it makes is announced to the [janitor](crate::janitor)
//! first, so it goes however the run ends (Ctrl-C included): processes, the PostgreSQL
//! instance and its data, the NATS data directories, the Redis namespace's keys. Logs stay in
//! `target/chaos/logs/` until the next run.

mod check;
mod client;
mod cluster;
mod traces;
mod workload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

use crate::cmd::Cmd;
use crate::janitor::Janitor;
use crate::services::{self, Kind, Services};
use check::Row;
use client::{Api, Sql};
use cluster::{PARTICIPANTS, REPLICAS, Stack};
use workload::{Phase, Size};

/// How long after the last fault every order must have settled.
const SETTLE: Duration = Duration::from_secs(60);
const ADMIN_EMAIL: &str = "chaos-admin@store.test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL of one saga participant replica, started again at once.
    KillParticipant,
    /// SIGKILL of one api replica, started again at once.
    KillApi,
    /// One NATS node stopped, started again after a while.
    StopNats,
    /// PostgreSQL stopped (`fast`, or `immediate`: a crash) and started again after a while.
    RestartPostgres(&'static str),
    /// Every key of the Redis namespace deleted.
    WipeRedis,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillParticipant => "kill -9 participant",
            Fault::KillApi => "kill -9 api",
            Fault::StopNats => "stop NATS node",
            Fault::RestartPostgres(_) => "restart PostgreSQL",
            Fault::WipeRedis => "wipe Redis namespace",
        }
    }
}

/// The shape of a run.
struct Plan {
    clean: Duration,
    faults: Duration,
    schedule: Vec<Fault>,
    /// How long a stopped NATS node or PostgreSQL stays down.
    outage: Duration,
    workers: usize,
    size: Size,
}

impl Plan {
    fn new(short: bool) -> Self {
        use Fault::*;
        if short {
            Plan {
                clean: Duration::from_secs(10),
                faults: Duration::from_secs(30),
                schedule: vec![
                    KillParticipant,
                    KillApi,
                    WipeRedis,
                    StopNats,
                    KillParticipant,
                    RestartPostgres("fast"),
                    KillParticipant,
                ],
                outage: Duration::from_secs(4),
                workers: 4,
                size: Size {
                    publishers: 2,
                    buyers: 6,
                    poor: 1,
                    digital: 16,
                    physical: 6,
                },
            }
        } else {
            Plan {
                clean: Duration::from_secs(30),
                faults: Duration::from_secs(150),
                schedule: vec![
                    KillParticipant,
                    KillParticipant,
                    KillApi,
                    KillParticipant,
                    WipeRedis,
                    KillParticipant,
                    StopNats,
                    KillParticipant,
                    KillParticipant,
                    KillApi,
                    RestartPostgres("fast"),
                    KillParticipant,
                    WipeRedis,
                    KillParticipant,
                    KillParticipant,
                    KillApi,
                    StopNats,
                    KillParticipant,
                    KillParticipant,
                    RestartPostgres("immediate"),
                    KillParticipant,
                    WipeRedis,
                    KillApi,
                    KillParticipant,
                ],
                outage: Duration::from_secs(8),
                workers: 6,
                size: Size {
                    publishers: 2,
                    buyers: 16,
                    poor: 2,
                    digital: 80,
                    physical: 12,
                },
            }
        }
    }
}

/// A fault as applied.
struct Applied {
    fault: Fault,
    target: String,
    /// Seconds after the fault phase began.
    at: f64,
    /// Until the target was back (ready).
    recovery: Duration,
    error: Option<String>,
}

/// `cargo xtask chaos`: finds (or starts) Redis, then [`run`].
pub fn command(short: bool) -> Result<()> {
    let services = services::ensure_only(&[Kind::Redis])?;
    if run(short, &services)? {
        Ok(())
    } else {
        anyhow::bail!("an invariant does not hold (see the table above)")
    }
}

/// The whole harness; `Ok(false)` when an invariant failed, an error when it could not run
/// (or could not clean up).
pub fn run(short: bool, services: &Services) -> Result<bool> {
    let started = Instant::now();
    // Started first: it is this very executable, which a build could replace meanwhile.
    let janitor = Janitor::spawn(&[])?;
    let redis_url = services
        .url(Kind::Redis)
        .context("no Redis was found or started")?
        .to_owned();
    let bin_dir = crate::dev::build_servers(&services.env(), false)?;
    let id = std::process::id();
    let mut stack = Stack::prepare(janitor, bin_dir, redis_url, id)?;
    let outcome = run_on(&mut stack, short, id, started);
    stack.shutdown();
    if outcome.is_err() {
        print_logs(&stack);
    }
    let logs = cluster::shown(&stack.logs);
    let purge_vars = vec![
        ("PURGE_REDIS_URL", stack.redis_url.clone()),
        ("PURGE_REDIS_NAMESPACE", stack.namespace.clone()),
    ];
    let (api, dir, namespace) = (stack.api_bin(), stack.dir.clone(), stack.namespace.clone());
    let Stack { janitor, .. } = stack;
    // After a normal end, check that nothing is left: no key of the namespace, no directory
    // (the PostgreSQL data and the NATS stores were in it).
    let cleaned = janitor.finish().and_then(|()| {
        crate::janitor::purge(&api, &purge_vars, true).context("the run left Redis keys behind")?;
        anyhow::ensure!(!dir.exists(), "{} is still there", dir.display());
        println!(
            "chaos: checked: no Redis keys {namespace}:*, no {}",
            cluster::shown(&dir)
        );
        Ok(())
    });
    let passed = match (outcome, cleaned) {
        (Ok(passed), Ok(())) => passed,
        (Err(error), Ok(())) | (Ok(_), Err(error)) => return Err(error),
        (Err(error), Err(cleanup)) => {
            eprintln!("error: {cleanup:#}");
            return Err(error);
        }
    };
    println!(
        "chaos: {} in {:.0?} (logs in {logs}/)",
        if passed { "passed" } else { "FAILED" },
        started.elapsed()
    );
    Ok(passed)
}

fn run_on(stack: &mut Stack, short: bool, id: u32, started: Instant) -> Result<bool> {
    let plan = Plan::new(short);
    // The store's services.
    stack.init_postgres()?;
    for i in 0..cluster::NATS_NODES {
        stack.start_nats(i)?;
    }
    for i in 0..cluster::NATS_NODES {
        stack.wait_nats(i)?;
    }
    let api = stack.api_bin();
    let secret = cluster::random_secret()?;
    // Every process exports its spans to the harness (batched for at most 200 ms).
    let collector = traces::Collector::start()?;
    let mut env: Vec<(&'static str, String)> = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
        ("DATABASE_URL", stack.database_url.clone()),
        ("REDIS_URL", stack.redis_url.clone()),
        ("REDIS_NAMESPACE", stack.namespace.clone()),
        ("NATS_STREAM_REPLICAS", "3".into()),
        (
            "OBJECT_STORE_DIR",
            crate::dev::path_string(&stack.dir.join("objects"))?,
        ),
        ("DOWNLOAD_LINK_SECRET", secret),
        ("TOP_UP_MAX_MINOR", "10000000".into()),
    ];
    for limit in [
        "RATE_LIMIT_SIGNIN_PER_EMAIL",
        "RATE_LIMIT_SIGNIN_PER_IP",
        "RATE_LIMIT_SIGNUP_PER_IP",
        "RATE_LIMIT_SIGNUP_PER_EMAIL",
        // The workload tops up and redeems far more often from one loopback address than a
        // person would; the limits themselves are tested in api/tests/it/abuse.rs.
        "RATE_LIMIT_TOPUP_PER_ACCOUNT",
        "RATE_LIMIT_TOPUP_PER_IP",
        "RATE_LIMIT_REDEEM_PER_ACCOUNT",
        "RATE_LIMIT_REDEEM_PER_IP",
    ] {
        env.push((limit, "100000/60".into()));
    }
    env.extend(crate::dev::jwt_keys(&api, &stack.dir.join("keys"), &env)?);
    stack.set_env(env);
    let admin_password = crate::dev::random_hex(16)?;
    Cmd::new(&api)
        .arg("migrate")
        .envs(&stack.command_env())
        .quiet()?;
    Cmd::new(&api)
        .args(["create-admin", "--email", ADMIN_EMAIL])
        .envs(&stack.command_env())
        .env("CREATE_ADMIN_PASSWORD", &admin_password)
        .quiet()?;
    // The api first: it creates the R3 streams.
    for i in 0..stack.procs.len() {
        stack.start_proc(i)?;
        if i + 1 == REPLICAS {
            for k in 0..REPLICAS {
                stack.wait_proc(k)?;
            }
        }
    }
    for i in REPLICAS..stack.procs.len() {
        stack.wait_proc(i)?;
    }
    println!(
        "chaos: store up in {:.0?}: PostgreSQL, 3 NATS nodes (R3 streams), {} api and {} participant processes, Redis namespace {}",
        started.elapsed(),
        REPLICAS,
        REPLICAS * PARTICIPANTS.len(),
        stack.namespace
    );

    let world = workload::setup(
        Api::new(stack.api_addrs()),
        ADMIN_EMAIL,
        &admin_password,
        &plan.size,
        &format!("{id}"),
    )?;
    println!(
        "chaos: {} publishers, {} buyers ({} poor), {} digital and {} physical editions",
        world.publishers.len(),
        world.buyers.len(),
        world.poor.len(),
        world.digital.len(),
        world.physical.len()
    );

    // The workload: a clean phase, then the fault phase.
    let phase = Mutex::new(Phase::Clean);
    let stop = AtomicBool::new(false);
    let faults: Mutex<Vec<Applied>> = Mutex::default();
    let windows: Mutex<HashMap<Phase, (f64, f64)>> = Mutex::default();
    let mut last_fault_end = Instant::now();
    let mut fault_error = None;
    std::thread::scope(|s| {
        for w in 0..plan.workers {
            let (world, phase, stop) = (&world, &phase, &stop);
            s.spawn(move || workload::worker(world, 0x5eed + w as u64, phase, stop));
        }
        let clean_start = epoch(SystemTime::now());
        println!("chaos: clean phase, {:.0?}", plan.clean);
        workload::pause(plan.clean, &stop);
        let fault_start_at = SystemTime::now();
        lock(&windows).insert(Phase::Clean, (clean_start, epoch(fault_start_at)));
        *lock(&phase) = Phase::Faults;
        println!(
            "chaos: fault phase, {:.0?}, {} faults",
            plan.faults,
            plan.schedule.len()
        );
        let result = inject(stack, &plan, &faults);
        match result {
            Ok(end) => last_fault_end = end,
            Err(error) => fault_error = Some(error),
        }
        stop.store(true, Ordering::Relaxed);
        lock(&windows).insert(
            Phase::Faults,
            (epoch(fault_start_at), epoch(SystemTime::now())),
        );
    });
    if let Some(error) = fault_error {
        return Err(error.context("applying the faults"));
    }
    println!("chaos: workload stopped; waiting for every order to settle");

    // Settle: every order terminal or legitimately waiting, within SETTLE of the last fault.
    let sql = Sql {
        psql: stack.psql(),
        url: stack.database_url.clone(),
    };
    let deadline = last_fault_end + SETTLE;
    let mut unsettled;
    loop {
        stack.revive()?;
        unsettled = {
            let journal = lock(&world.journal);
            check::unsettled(&sql, &journal)?
        };
        if unsettled.is_empty() || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_secs(1));
    }
    let settled_in_time = unsettled.is_empty();
    let settled_after = last_fault_end.elapsed();
    let exits: Vec<String> = stack
        .procs
        .iter()
        .filter(|p| p.unexpected_exits > 0)
        .map(|p| format!("{} ×{}", p.name, p.unexpected_exits))
        .collect();

    // Checks (read-only), with the store still up (the api answers the wallet reads).
    let redis = redis_addr(&stack.redis_url)?;
    let journal = lock(&world.journal);
    let cx = check::Context {
        sql: &sql,
        redis,
        namespace: &stack.namespace,
        world: &world,
        journal: &journal,
    };
    let mut rows = check::all(&cx, settled_in_time, &unsettled)?;
    rows.push(traced(&sql, &journal, &collector)?);
    let windows = lock(&windows).clone();
    let faults = std::mem::take(&mut *lock(&faults));
    let metrics = metrics(&sql, &journal, &windows)?;
    print_report(
        &plan,
        short,
        &faults,
        &rows,
        &metrics,
        &journal,
        settled_after,
        &exits,
    );
    Ok(rows.iter().all(|r| r.ok))
}

/// The trace of the first digital order of the clean phase that completed (placed before any
/// fault, so no kill cut its spans short).
fn traced(sql: &Sql, journal: &workload::Journal, collector: &traces::Collector) -> Result<Row> {
    let completed: std::collections::HashSet<String> = sql
        .rows("SELECT id FROM ordering.\"order\" WHERE status = 'COMPLETED'")?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    let first = journal
        .placed
        .iter()
        .filter(|p| p.phase == Phase::Clean && p.kind == workload::OrderKind::Digital)
        .filter(|p| completed.contains(&p.id))
        .min_by_key(|p| p.at);
    Ok(match first {
        Some(order) => traces::check(collector, &order.id, Duration::from_secs(30)),
        None => Row {
            name: "one order, one connected trace",
            ok: false,
            detail: "no digital order of the clean phase completed".into(),
        },
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn redis_addr(url: &str) -> Result<SocketAddr> {
    let (host, port) = services::host_port(url, 6379)?;
    crate::dev::connect_addr(&format!("{host}:{port}"))
}

/// Applies the plan's faults, spread over the fault phase; returns when the last one ended
/// (its target back). Processes found dead meanwhile are started again (and counted).
fn inject(stack: &mut Stack, plan: &Plan, applied: &Mutex<Vec<Applied>>) -> Result<Instant> {
    let begin = Instant::now();
    let spacing = plan.faults / u32::try_from(plan.schedule.len().max(1))?;
    let mut kills = 0_usize;
    let mut api_kills = 0_usize;
    let mut nats_stops = 0_usize;
    let mut last_end = Instant::now();
    for (n, fault) in plan.schedule.iter().copied().enumerate() {
        let slot = begin + spacing * u32::try_from(n)? + spacing / 2;
        while Instant::now() < slot {
            stack.revive()?;
            sleep(Duration::from_millis(200));
        }
        let at = begin.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let (target, result) = match fault {
            Fault::KillParticipant => {
                // Round the participants, then the replicas.
                let participant = kills % PARTICIPANTS.len();
                let replica = (kills / PARTICIPANTS.len()) % REPLICAS;
                kills += 1;
                let i = REPLICAS + participant * REPLICAS + replica;
                stack.kill_proc(i);
                let name = stack.procs[i].name.clone();
                (name, stack.start_proc(i).and_then(|()| stack.wait_proc(i)))
            }
            Fault::KillApi => {
                let i = api_kills % REPLICAS;
                api_kills += 1;
                stack.kill_proc(i);
                let name = stack.procs[i].name.clone();
                (name, stack.start_proc(i).and_then(|()| stack.wait_proc(i)))
            }
            Fault::StopNats => {
                let i = (nats_stops + 1) % cluster::NATS_NODES;
                nats_stops += 1;
                stack.stop_nats(i);
                outage(stack, plan.outage)?;
                let result = stack.start_nats(i).and_then(|()| stack.wait_nats(i));
                (format!("nats-{i}"), result)
            }
            Fault::RestartPostgres(mode) => {
                let result = stack.stop_postgres(mode).and_then(|()| {
                    outage(stack, plan.outage)?;
                    stack.start_postgres()
                });
                (format!("postgres (-m {mode})"), result)
            }
            Fault::WipeRedis => ("namespace".to_owned(), stack.wipe_redis()),
        };
        let recovery = t0.elapsed();
        last_end = Instant::now();
        println!(
            "chaos: t+{at:5.1}s {:<22} {target:<22} back in {:.1}s{}",
            fault.name(),
            recovery.as_secs_f64(),
            match &result {
                Ok(()) => String::new(),
                Err(e) => format!("  ({e:#})"),
            }
        );
        lock(applied).push(Applied {
            fault,
            target,
            at,
            recovery,
            error: result.err().map(|e| format!("{e:#}")),
        });
    }
    // The rest of the phase without new faults.
    let end = begin + plan.faults;
    while Instant::now() < end {
        stack.revive()?;
        sleep(Duration::from_millis(200));
    }
    Ok(last_end)
}

/// Waits out an outage, starting again any process that died meanwhile.
fn outage(stack: &mut Stack, length: Duration) -> Result<()> {
    let end = Instant::now() + length;
    while Instant::now() < end {
        stack.revive()?;
        sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Throughput and latency per phase.
struct Metrics {
    /// Per phase: orders placed, orders paid (completed or awaiting shipment) per second,
    /// orders settled per second, latency p50 and p99 (ms) of the harness's orders.
    phases: Vec<(Phase, usize, f64, f64, f64, f64)>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn metrics(
    sql: &Sql,
    journal: &workload::Journal,
    windows: &HashMap<Phase, (f64, f64)>,
) -> Result<Metrics> {
    // When each order first settled (paid: completed or awaiting shipment; or cancelled).
    let rows = sql.rows(
        "SELECT order_id, extract(epoch FROM min(occurred_at)), \
                (array_agg(step ORDER BY occurred_at))[1] \
         FROM ordering.order_step WHERE step IN ('COMPLETED', 'AWAITING_SHIPMENT', 'CANCELLED') \
         GROUP BY order_id",
    )?;
    let settled: HashMap<&str, (f64, bool)> = rows
        .iter()
        .filter_map(|r| {
            let at: f64 = r.get(1)?.parse().ok()?;
            Some((r.first()?.as_str(), (at, r.get(2)? != "CANCELLED")))
        })
        .collect();
    let mut phases = Vec::new();
    for phase in [Phase::Clean, Phase::Faults] {
        let Some(&(from, to)) = windows.get(&phase) else {
            continue;
        };
        let length = (to - from).max(1.0);
        let in_window = |at: f64| at >= from && at < to;
        let paid = settled
            .values()
            .filter(|(at, ok)| *ok && in_window(*at))
            .count();
        let all = settled.values().filter(|(at, _)| in_window(*at)).count();
        let placed: Vec<&workload::Placed> =
            journal.placed.iter().filter(|p| p.phase == phase).collect();
        let mut latencies: Vec<f64> = placed
            .iter()
            .filter_map(|p| {
                let (at, _) = settled.get(p.id.as_str())?;
                Some((at - epoch(p.at)) * 1000.0)
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        phases.push((
            phase,
            placed.len(),
            paid as f64 / length,
            all as f64 / length,
            quantile(&latencies, 0.5),
            quantile(&latencies, 0.99),
        ));
    }
    Ok(Metrics { phases })
}

#[expect(
    clippy::too_many_arguments,
    reason = "the report shows everything once"
)]
fn print_report(
    plan: &Plan,
    short: bool,
    faults: &[Applied],
    rows: &[Row],
    metrics: &Metrics,
    journal: &workload::Journal,
    settled_after: Duration,
    exits: &[String],
) {
    let rule = "-".repeat(100);
    println!();
    println!(
        "chaos {}: {} faults applied in {:.0?} (after a clean {:.0?})",
        if short { "--short" } else { "(full)" },
        faults.len(),
        plan.faults,
        plan.clean
    );
    let mut by_kind: Vec<(&str, usize, f64)> = Vec::new();
    for f in faults {
        match by_kind.iter_mut().find(|(k, _, _)| *k == f.fault.name()) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 = entry.2.max(f.recovery.as_secs_f64());
            }
            None => by_kind.push((f.fault.name(), 1, f.recovery.as_secs_f64())),
        }
    }
    for (kind, n, longest) in &by_kind {
        println!("  {n:>3} × {kind:<24} (longest until back: {longest:.1} s)");
    }
    for f in faults.iter().filter(|f| f.error.is_some()) {
        println!(
            "  note: {} of {} at t+{:.0}s: {}",
            f.fault.name(),
            f.target,
            f.at,
            f.error.as_deref().unwrap_or("")
        );
    }
    if !exits.is_empty() {
        println!(
            "  processes that exited by themselves (started again): {}",
            exits.join(", ")
        );
    }
    println!();
    println!(
        "{:<8} {:>7} {:>10} {:>12} {:>12} {:>12}",
        "phase", "placed", "paid/s", "settled/s", "p50 ms", "p99 ms"
    );
    for (phase, placed, paid, all, p50, p99) in &metrics.phases {
        println!(
            "{:<8} {placed:>7} {paid:>10.1} {all:>12.1} {p50:>12.0} {p99:>12.0}",
            match phase {
                Phase::Clean => "clean",
                Phase::Faults => "faults",
            }
        );
    }
    println!(
        "  (latency: placeOrder sent → the order first completed, awaited shipment or was cancelled; settled {:.1} s after the last fault)",
        settled_after.as_secs_f64()
    );
    println!(
        "  workload: {} orders, {} key replay groups, {} ships, {} cancels, {} ship/cancel races, {} refund requests ({} denied), {} download links, {} download/refund races, {} out-of-stock refusals, {} requests sent again after no answer",
        journal.placed.len(),
        journal.replay_groups,
        journal.ships.len(),
        journal.cancels.len(),
        journal.races,
        journal.refund_requests.len(),
        journal.denied,
        journal.downloads,
        journal.download_refund_races,
        journal.out_of_stock,
        journal.unanswered,
    );
    if !journal.surprises.is_empty() {
        println!("  unexpected answers ({}), e.g.:", journal.surprises.len());
        for s in journal.surprises.iter().take(5) {
            println!("    {s}");
        }
    }
    println!();
    println!("{rule}");
    println!("{:<62} {:<6} detail", "invariant", "result");
    println!("{rule}");
    for r in rows {
        println!(
            "{:<62} {:<6} {}",
            r.name,
            if r.ok { "PASS" } else { "FAIL" },
            r.detail
        );
    }
    println!("{rule}");
    let failed = rows.iter().filter(|r| !r.ok).count();
    println!(
        "{} of {} invariants hold{}",
        rows.len() - failed,
        rows.len(),
        if failed > 0 {
            format!("; {failed} FAILED")
        } else {
            String::new()
        }
    );
}

/// The end of each process's log, when the run could not finish.
fn print_logs(stack: &Stack) {
    for name in ["api-0", "ordering-0", "billing-0", "nats-0"] {
        let path = stack.logs.join(format!("{name}.log"));
        println!("----- the end of {} -----", cluster::shown(&path));
        println!("{}", services::tail(&path, 15));
    }
    println!("-----");
}

#[cfg(test)]
mod tests {
    use super::{Plan, quantile};

    #[test]
    fn quantiles_of_sorted_latencies() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn plans_apply_every_kind_of_fault() {
        for short in [true, false] {
            let plan = Plan::new(short);
            for name in [
                "kill -9 participant",
                "kill -9 api",
                "stop NATS node",
                "restart PostgreSQL",
                "wipe Redis namespace",
            ] {
                assert!(plan.schedule.iter().any(|f| f.name() == name), "{name}");
            }
            // The outages leave most of the phase to the other faults.
            let outages = plan
                .schedule
                .iter()
                .filter(|f| f.name() == "stop NATS node" || f.name() == "restart PostgreSQL")
                .count();
            assert!(plan.outage * u32::try_from(outages).unwrap_or(u32::MAX) <= plan.faults / 2);
        }
    }
}
