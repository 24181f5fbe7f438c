//! Webhook delivery: latency (event published → the receiver has it) and throughput of the
//! webhooks participant against a receiver on loopback that verifies each signature and answers
//! 200 at once. Only the webhooks participant runs (in-process, its default settings: 2 delivery
//! loops of 32), on real PostgreSQL, Redis and NATS; the events are `PaymentCaptured`s published
//! straight to the bus, each for one publisher with one endpoint subscribed to `order.paid`.
//!
//! Two phases: one event at a time (the next published once the last arrived: the latency of a
//! quiet store), then a burst of events published as fast as the bus takes them (deliveries per
//! second, and the latency under that load).
//!
//! Uses its own database `store_bench_webhooks` (recreated), the NATS prefix `benchhooks` and
//! the Redis namespace `benchhooks`.
//!
//! `cargo run --release -p bench --bin webhooks [-- QUIET BURST]` (default 200 and 2000).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::messaging::Envelope;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// What the receiver saw: arrival time by order id, and refused signatures.
#[derive(Default)]
struct Seen {
    arrived: Mutex<HashMap<Uuid, Instant>>,
    key: Mutex<Vec<u8>>,
    bad: std::sync::atomic::AtomicUsize,
}

async fn receive(State(seen): State<Arc<Seen>>, h: HeaderMap, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let header = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let key = seen.key.lock().map(|k| k.clone()).unwrap_or_default();
    let ok = domain::webhooks::signature::verify(
        &key,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        chrono_now(),
    )
    .is_ok();
    if !ok {
        seen.bad.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    }
    let order = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["orderId"].as_str().and_then(|s| s.parse().ok()));
    if let (Some(order), Ok(mut map)) = (order, seen.arrived.lock()) {
        map.entry(order).or_insert(now);
    }
    StatusCode::OK
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn paid(order: Uuid, publisher: Uuid) -> Envelope<domain::billing::PaymentCaptured> {
    Envelope::new(
        domain::billing::PaymentCaptured {
            order_id: order,
            account_id: Uuid::now_v7(),
            amount_minor: 999,
            currency: domain::money::Currency::EUR,
            lines: vec![domain::ordering::OrderLine {
                edition_id: Uuid::now_v7(),
                product_id: Uuid::now_v7(),
                publisher_id: publisher,
                kind: "digital".into(),
                product_title: "Bench".into(),
                edition_name: "Standard".into(),
                unit_price_minor: 999,
                quantity: 1,
                unit_tax_minor: 0,
                tax_rate_ppm: 0,
                bundle_id: None,
            }],
        },
        order,
        None,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let quiet = args.first().copied().unwrap_or(200);
    let burst = args.get(1).copied().unwrap_or(2000);

    // A fresh database, streams and namespace.
    let mut serve = api::infra::config::serve_args_from_env()?;
    let (maintenance, _) = api::infra::db::split_database_url(&serve.services.database_url)?;
    let admin = api::infra::db::connect(&maintenance, 1).await?;
    admin
        .execute_unprepared("DROP DATABASE IF EXISTS store_bench_webhooks WITH (FORCE)")
        .await?;
    admin
        .execute_unprepared("CREATE DATABASE store_bench_webhooks")
        .await?;
    admin.close().await.ok();
    serve.services.database_url = bench::database_url(&maintenance, "store_bench_webhooks");
    api::cli::migrate(&serve.services).await?;
    let db = api::infra::db::connect(&serve.services.database_url, 10).await?;
    let nats = async_nats::connect(serve.services.nats_url.as_str())
        .await
        .context("connecting to NATS")?;
    let bus = domain::bus::Bus::new(nats, "benchhooks");
    for s in ["CMD", "EVT"] {
        let _ = bus.jetstream().delete_stream(bus.stream_name(s)).await;
    }
    bus.ensure_streams(1).await?;
    let (redis, _) = domain::redis::connect(&serve.services.redis_url, 2).await?;

    // The receiver, and an endpoint of one publisher pointing at it.
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let publisher = Uuid::now_v7();
    let secret = domain::webhooks::signature::new_secret(|b| {
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
    });
    *seen.key.lock().map_err(|_| anyhow::anyhow!("lock"))? =
        domain::webhooks::signature::secret_bytes(&secret)?;
    db.execute_raw(Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "INSERT INTO webhooks.endpoint (id, publisher_id, url, event_types, secret) \
         VALUES ($1, $2, $3, ARRAY['order.paid'], $4)",
        [
            Uuid::now_v7().into(),
            publisher.into(),
            format!("http://{addr}/hook").into(),
            secret.into(),
        ],
    ))
    .await?;

    let settings = saga::Settings {
        webhooks: saga::WebhookSettings {
            targets: domain::webhooks::target::TargetPolicy {
                allow_private: true,
                http_hosts: vec!["127.0.0.1".into()],
            },
            ..saga::WebhookSettings::default()
        },
        ..saga::Settings::default()
    };
    let rt = saga::Runtime::new(
        db.clone(),
        bus.clone(),
        redis,
        "benchhooks".to_owned(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        settings,
    );
    let participants = saga::spawn(rt, vec![saga::Participant::Webhooks]);

    let arrived = |id: &Uuid| seen.arrived.lock().ok().and_then(|m| m.get(id).copied());
    let wait_all = |ids: Vec<Uuid>, bound: Duration| {
        let seen = seen.clone();
        async move {
            let start = Instant::now();
            loop {
                let n = seen
                    .arrived
                    .lock()
                    .map(|m| ids.iter().filter(|i| m.contains_key(i)).count())
                    .unwrap_or(0);
                if n == ids.len() {
                    return Ok(());
                }
                anyhow::ensure!(
                    start.elapsed() < bound,
                    "only {n} of {} webhooks arrived",
                    ids.len()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };

    // Warm up (consumers created, connections open).
    let warm = Uuid::now_v7();
    bus.publish(&paid(warm, publisher)).await?;
    wait_all(vec![warm], Duration::from_secs(60)).await?;

    // Phase 1: one at a time.
    let mut quiet_latency = Vec::with_capacity(quiet);
    for _ in 0..quiet {
        let order = Uuid::now_v7();
        let t = Instant::now();
        bus.publish(&paid(order, publisher)).await?;
        wait_all(vec![order], Duration::from_secs(30)).await?;
        if let Some(at) = arrived(&order) {
            quiet_latency.push(at.duration_since(t));
        }
    }

    // Phase 2: a burst.
    let orders: Vec<Uuid> = (0..burst).map(|_| Uuid::now_v7()).collect();
    let start = Instant::now();
    let published: Vec<(Uuid, Instant)> = futures::stream::iter(orders.iter().copied())
        .map(|order| {
            let bus = &bus;
            async move {
                let t = Instant::now();
                bus.publish(&paid(order, publisher)).await?;
                Ok::<_, domain::bus::BusError>((order, t))
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let published_in = start.elapsed();
    wait_all(orders.clone(), Duration::from_secs(600)).await?;
    let last = published
        .iter()
        .filter_map(|(o, _)| arrived(o))
        .max()
        .unwrap_or_else(Instant::now);
    let elapsed = last.duration_since(start);
    let burst_latency: Vec<Duration> = published
        .iter()
        .filter_map(|(o, t)| arrived(o).map(|a| a.duration_since(*t)))
        .collect();
    // The last batch records its attempts after its sends: wait for every delivery's record.
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            Ok::<i64, anyhow::Error>(
                db.query_one_raw(Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    sql,
                ))
                .await?
                .map(|r| r.try_get("", "n"))
                .transpose()?
                .unwrap_or(0),
            )
        }
    };
    let recorded = Instant::now();
    while count("SELECT count(*)::bigint AS n FROM webhooks.delivery WHERE status <> 'SUCCEEDED'")
        .await?
        > 0
    {
        anyhow::ensure!(
            recorded.elapsed() < Duration::from_secs(60),
            "deliveries not recorded as succeeded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    participants.abort();

    let attempts: i64 = db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*)::bigint AS n FROM webhooks.attempt",
        ))
        .await?
        .map(|r| r.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);
    println!("webhooks: one endpoint on loopback that verifies and answers 200 at once");
    println!(
        "  quiet ({quiet} events, one at a time):  p50 {:6.1} ms   p99 {:6.1} ms",
        quantile(&quiet_latency, 0.5),
        quantile(&quiet_latency, 0.99)
    );
    println!(
        "  burst ({burst} events, published in {:.2} s): {:7.1} deliveries/s   p50 {:7.1} ms   p99 {:7.1} ms",
        published_in.as_secs_f64(),
        burst as f64 / elapsed.as_secs_f64(),
        quantile(&burst_latency, 0.5),
        quantile(&burst_latency, 0.99)
    );
    println!(
        "  attempts recorded: {attempts} for {} events; refused signatures: {}",
        quiet + burst + 1,
        seen.bad.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}
