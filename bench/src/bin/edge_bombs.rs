//! A catalog page while the api is under attack (issue 13): the latency of the storefront's
//! first page, asked by 4 clients, without and with 4 attackers sending refused documents in a
//! loop (fragment bombs: wider, deeper, inline, many operations, many aliases, a long argument
//! list, deep list nesting). Rounds alternate the two phases, so both see the same machine. It
//! prints the page's median and p99 in each phase, their ratio, and the time to refusal of
//! each attack document (median and p99) with the number of refusals sent.
//!
//! The api is the release binary beside this one (`cargo build --release -p api`, or
//! `API_BIN=path`), served as its own process over HTTP on loopback (no gateway: what is
//! measured is the api's answer), on its own database `store_bench_edge` of the server of
//! `DATABASE_URL` (created, migrated and seeded with the demo catalog, dropped at the end with
//! its Redis namespace and NATS streams, `api purge`).
//!
//! `cargo build --release -p api -p bench && target/release/edge_bombs [ROUNDS] [REQUESTS]`
//! (defaults 5 rounds of 300 page requests per phase)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

const PAGE: &str = "{ products(first: 20) { edges { cursor node { id slug title priceFrom { formatted } rating { average count } publisher { name } editions { id kind name price { amountMinor formatted } stock } } } pageInfo { hasNextPage endCursor } } }";
const CLIENTS: usize = 4;
const ATTACKERS: usize = 4;
const DATABASE: &str = "store_bench_edge";
const PREFIX: &str = "benchedge";

/// `levels` fragments on Query, each spreading the next one `fan_out` times (inside inline
/// fragments when `inline`), the last selecting a page of products.
fn spreads(levels: usize, fan_out: usize, inline: bool) -> String {
    let mut doc = String::from("query { ...L0 }");
    for level in 0..levels {
        let next = format!("...L{}", level + 1);
        let body = match (level + 1 == levels, inline) {
            (true, _) => "products(first: 100) { edges { node { id title } } }".to_owned(),
            (false, false) => vec![next; fan_out].join(" "),
            (false, true) => vec![format!("... on Query {{ {next} }}"); fan_out].join(" "),
        };
        doc.push_str(&format!(" fragment L{level} on Query {{ {body} }}"));
    }
    doc
}

/// The attack: each document with its name.
fn attack() -> Vec<(&'static str, String)> {
    let operations: String = (0..200)
        .map(|i| format!("query Op{i} {{ ...L0 }} "))
        .collect();
    let shared = spreads(4, 8, false);
    let fragments = shared.trim_start_matches("query { ...L0 }");
    vec![
        ("ten levels of ten spreads", spreads(10, 10, false)),
        ("wide: 4 levels of 60", spreads(4, 60, false)),
        ("deep: 40 levels of 2", spreads(40, 2, false)),
        ("inline fragments", spreads(12, 6, true)),
        ("200 operations", format!("{operations}{fragments}")),
        (
            "400 aliases",
            format!(
                "{{ {} }}",
                (0..400)
                    .map(|i| format!("a{i}: products(first: 100) {{ totalCount }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        (
            "6,000 arguments",
            format!(
                "{{ products({}first: 1) {{ totalCount }} }}",
                "first: 1, ".repeat(6000)
            ),
        ),
        (
            "5,000 nested lists",
            format!(
                "{{ products(first: {}1{}) {{ totalCount }} }}",
                "[".repeat(5000),
                "]".repeat(5000)
            ),
        ),
    ]
}

/// One HTTP/1.1 POST of `body` to `/graphql`, a connection each; the status and the time to the
/// whole answer.
async fn post(addr: SocketAddr, body: &str) -> anyhow::Result<(u16, Duration)> {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let took = started.elapsed();
    let status = String::from_utf8_lossy(&answer[..answer.len().min(32)])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, took))
}

fn ms(v: &mut [Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

/// `requests` page requests from [`CLIENTS`] clients; their latencies.
async fn pages(addr: SocketAddr, requests: usize) -> anyhow::Result<Vec<Duration>> {
    let body = Arc::new(json!({ "query": PAGE }).to_string());
    let tasks = (0..CLIENTS).map(|c| {
        let body = body.clone();
        tokio::spawn(async move {
            let mut took = Vec::new();
            for _ in (c..requests).step_by(CLIENTS) {
                let (status, t) = post(addr, &body).await?;
                if status != 200 {
                    bail!("the catalog page answered {status}");
                }
                took.push(t);
            }
            Ok(took)
        })
    });
    let mut all = Vec::with_capacity(requests);
    for task in futures::future::join_all(tasks).await {
        all.extend(task??);
    }
    Ok(all)
}

type Refusals = Arc<Mutex<Vec<Vec<Duration>>>>;

/// Attackers sending every document of [`attack`] in turn until `stop`.
fn attackers(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    refusals: Refusals,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let docs: Arc<Vec<String>> = Arc::new(
        attack()
            .into_iter()
            .map(|(_, d)| json!({ "query": d }).to_string())
            .collect(),
    );
    (0..ATTACKERS)
        .map(|a| {
            let (docs, stop, refusals) = (docs.clone(), stop.clone(), refusals.clone());
            tokio::spawn(async move {
                let mut i = a;
                while !stop.load(Ordering::Relaxed) {
                    let which = i % docs.len();
                    let (status, took) = post(addr, &docs[which]).await?;
                    if status != 400 {
                        bail!("attack document {which} answered {status}, not a refusal");
                    }
                    refusals.lock().await[which].push(took);
                    i += 1;
                }
                Ok(())
            })
        })
        .collect()
}

fn api_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("API_BIN") {
        return Ok(path.into());
    }
    let beside = std::env::current_exe()?
        .parent()
        .context("the bench has no directory")?
        .join("api");
    if !beside.exists() {
        bail!(
            "{} is missing: cargo build --release -p api (or API_BIN=path)",
            beside.display()
        );
    }
    Ok(beside)
}

async fn api(bin: &PathBuf, env: &[(String, String)], args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(bin)
        .args(args)
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("api {args:?} failed: {status}");
    }
    Ok(())
}

async fn run(addr: SocketAddr, rounds: usize, requests: usize) -> anyhow::Result<()> {
    let docs = attack();
    let mut quiet = Vec::new();
    let mut attacked = Vec::new();
    let refusals: Refusals = Arc::new(Mutex::new(vec![Vec::new(); docs.len()]));
    pages(addr, CLIENTS * 10).await?; // warm-up
    for round in 1..=rounds {
        let mut q = pages(addr, requests).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let running = attackers(addr, stop.clone(), refusals.clone());
        let mut a = pages(addr, requests).await?;
        stop.store(true, Ordering::Relaxed);
        for r in futures::future::join_all(running).await {
            r??;
        }
        println!(
            "round {round}: page p50/p99 {:.2}/{:.2} ms quiet, {:.2}/{:.2} ms under attack",
            ms(&mut q, 0.5),
            ms(&mut q, 0.99),
            ms(&mut a, 0.5),
            ms(&mut a, 0.99)
        );
        quiet.extend(q);
        attacked.extend(a);
    }
    let (q50, q99) = (ms(&mut quiet, 0.5), ms(&mut quiet, 0.99));
    let (a50, a99) = (ms(&mut attacked, 0.5), ms(&mut attacked, 0.99));
    println!();
    println!(
        "catalog page, {CLIENTS} clients, {} requests per phase:",
        quiet.len()
    );
    println!("  quiet          p50 {q50:8.2} ms   p99 {q99:8.2} ms");
    println!("  under attack   p50 {a50:8.2} ms   p99 {a99:8.2} ms   ({ATTACKERS} attackers)");
    println!(
        "  ratio          p50 {:8.2}×      p99 {:8.2}×",
        a50 / q50,
        a99 / q99
    );
    println!();
    println!("time to refusal (400, GRAPHQL_VALIDATION_FAILED), under the same load:");
    let mut refusals = refusals.lock().await;
    for ((what, doc), took) in docs.iter().zip(refusals.iter_mut()) {
        println!(
            "  {what:28} {:>6} bytes  ×{:<6} p50 {:7.2} ms  p99 {:7.2} ms",
            json!({ "query": doc }).to_string().len(),
            took.len(),
            ms(took, 0.5),
            ms(took, 0.99)
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rounds = args.first().copied().unwrap_or(5);
    let requests = args.get(1).copied().unwrap_or(300);
    let bin = api_binary()?;
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    let keys = std::env::temp_dir().join(format!("store-bench-edge-{}", std::process::id()));
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", format!("{server}/{DATABASE}")),
        ("REDIS_NAMESPACE", PREFIX.into()),
        ("NATS_PREFIX", PREFIX.into()),
        ("API_LISTEN_ADDR", addr.to_string()),
        (
            "JWT_PRIVATE_KEY_FILE",
            keys.join("jwt-private.pem").display().to_string(),
        ),
        (
            "OBJECT_STORE_DIR",
            keys.join("objects").display().to_string(),
        ),
        ("RUST_LOG", "error".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    api(
        &bin,
        &env,
        &["gen-keys", "--dir", &keys.display().to_string()],
    )
    .await?;
    api(&bin, &env, &["migrate"]).await?;
    api(&bin, &env, &["seed-demo", "--pictures", "0"]).await?;
    let mut serve: Child = Command::new(&bin)
        .arg("serve")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
                .await?;
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await?;
            if answer.starts_with(b"HTTP/1.1 200") {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outcome = if ready {
        run(addr, rounds, requests).await
    } else {
        Err(anyhow::anyhow!("the api did not become healthy"))
    };
    serve.kill().await?;
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let nats = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let database = format!("{server}/{DATABASE}");
    // `purge` never drops the database it is configured with.
    let mut purge_env = env.clone();
    purge_env.push(("DATABASE_URL".into(), format!("{server}/postgres")));
    api(
        &bin,
        &purge_env,
        &[
            "purge",
            "--database-url",
            &database,
            "--redis-url",
            &redis,
            "--redis-namespace",
            PREFIX,
            "--nats-url",
            &nats,
            "--nats-prefix",
            PREFIX,
        ],
    )
    .await?;
    std::fs::remove_dir_all(&keys).ok();
    outcome
}
