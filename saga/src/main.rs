//! `saga run <participant>|all`: the saga participants of the store.
//!
//! Every participant is a set of durable JetStream pull consumers writing only its own
//! context's schema. `all` runs every participant in this process (one machine);
//! `saga run billing` runs one (a Deployment per participant in a cluster).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use domain::server::ServiceSettings;
use saga::{Participant, Runtime, Settings};

#[derive(Parser)]
#[command(name = "saga", version, about = "The store's saga participants")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one participant, or every participant in this process.
    Run {
        #[arg(value_enum)]
        participant: Which,
        #[command(flatten)]
        config: Config,
    },
    /// Runs one reconciliation pass and exits (a cluster schedules it): wallets against their
    /// ledgers and Redis, paid lines against entitlements, stock against reservations.
    Reconcile {
        #[command(flatten)]
        config: Config,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    All,
    Ordering,
    Billing,
    Fulfillment,
    Library,
    Notification,
    Webhooks,
}

/// Configuration, from the environment: the services as the api reads them, and the
/// participants' own settings.
#[derive(clap::Args, Clone, Debug)]
struct Config {
    #[command(flatten)]
    services: ServiceSettings,
    /// Address of the health endpoints (`/healthz`, `/readyz`) for the cluster's probes, and of
    /// `/metrics` (Prometheus) for its scraper; never exposed through the public gateway.
    #[arg(long, env = "SAGA_HEALTH_ADDR", default_value = "127.0.0.1:9090")]
    health_addr: std::net::SocketAddr,
    /// Deliveries of a message that keeps failing (not for want of PostgreSQL) before it goes
    /// to the dead letters.
    #[arg(long, env = "SAGA_MAX_DELIVER", default_value_t = 10)]
    max_deliver: i64,
    /// First retry delay after a transient failure, ms (doubled per delivery).
    #[arg(long, env = "SAGA_RETRY_BASE_MS", default_value_t = 500)]
    retry_base_ms: u64,
    /// Longest retry delay, ms.
    #[arg(long, env = "SAGA_RETRY_MAX_MS", default_value_t = 60_000)]
    retry_max_ms: u64,
    /// Seconds JetStream waits for an ack before redelivering (handlers send progress acks
    /// every half of it): how long a message in flight at a crash waits.
    #[arg(long, env = "SAGA_ACK_WAIT_SECS", default_value_t = 5)]
    ack_wait_secs: u64,
    /// How far back, in seconds, a newly created consumer of events starts (an existing one
    /// goes on where it stopped).
    #[arg(long, env = "SAGA_NEW_CONSUMER_BACKLOG_SECS", default_value_t = 86_400)]
    new_consumer_backlog_secs: u64,
    /// Lanes of each participant: batches it handles at once, each in its own transaction (the
    /// deliveries of one account always go to the same lane).
    #[arg(long, env = "SAGA_CONCURRENCY", default_value_t = 4)]
    concurrency: usize,
    /// Most deliveries one batch (one transaction) handles: whatever is waiting, up to this.
    #[arg(long, env = "SAGA_BATCH_MAX", default_value_t = 32)]
    batch_max: usize,
    /// Seconds a publisher has to ship a paid order (reminded at half, cancelled with a refund
    /// at the end); at least 60.
    #[arg(long, env = "SHIPPING_DEADLINE_SECS", default_value_t = domain::fulfillment::DEFAULT_SHIPPING_DEADLINE_SECS)]
    shipping_deadline_secs: u64,
    /// Seconds between two looks for orders past half or all of their shipping deadline.
    #[arg(long, env = "SHIPPING_DEADLINE_SWEEP_SECS", default_value_t = 60)]
    deadline_sweep_secs: u64,
    /// Seconds a reservation waits for its payment before it is released and the order
    /// cancelled (whatever was charged refunded); at least 60.
    #[arg(long, env = "RESERVATION_DEADLINE_SECS", default_value_t = domain::fulfillment::DEFAULT_RESERVATION_DEADLINE_SECS)]
    reservation_deadline_secs: u64,
    /// The platform's fee on each sale, basis points (1500 = 15 %); the publisher earns the rest.
    #[arg(long, env = "PLATFORM_FEE_BPS", default_value_t = domain::billing::DEFAULT_PLATFORM_FEE_BPS,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    platform_fee_bps: u32,
    /// Multiplies the webhook retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, then 10 h six
    /// times); below 1 for tests and demonstrations only.
    #[arg(long, env = "WEBHOOKS_BACKOFF_SCALE", default_value_t = 1.0)]
    webhooks_backoff_scale: f64,
    /// Seconds a webhook endpoint has to answer (connection included).
    #[arg(long, env = "WEBHOOKS_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    webhooks_request_timeout_secs: u64,
    /// Seconds the previous signing secret keeps signing after a rotation.
    #[arg(long, env = "WEBHOOKS_SECRET_OVERLAP_SECS", default_value_t = domain::webhooks::DEFAULT_SECRET_OVERLAP_SECS)]
    webhooks_secret_overlap_secs: u64,
    /// Deliveries in a row whose every attempt failed before an endpoint is disabled.
    #[arg(long, env = "WEBHOOKS_DISABLE_AFTER_FAILED_DELIVERIES", default_value_t = domain::webhooks::DEFAULT_DISABLE_AFTER_FAILED_DELIVERIES)]
    webhooks_disable_after_failed_deliveries: u32,
    /// Seconds an endpoint may fail every attempt (no success since) before it is disabled.
    #[arg(long, env = "WEBHOOKS_DISABLE_AFTER_FAILING_SECS", default_value_t = domain::webhooks::DEFAULT_DISABLE_AFTER_FAILING_SECS)]
    webhooks_disable_after_failing_secs: u64,
    /// Webhook deliveries claimed and sent at once per transaction.
    #[arg(long, env = "WEBHOOKS_BATCH", default_value_t = 32)]
    webhooks_batch: usize,
    /// Webhook delivery loops per process.
    #[arg(long, env = "WEBHOOKS_WORKERS", default_value_t = 2)]
    webhooks_workers: usize,
    /// Days a finished webhook delivery and its attempts stay in the log (0: forever).
    #[arg(long, env = "WEBHOOKS_DELIVERY_RETENTION_DAYS", default_value_t = domain::webhooks::DEFAULT_DELIVERY_RETENTION_DAYS)]
    webhooks_delivery_retention_days: u64,
    /// Seconds between two reconciliation passes of `saga run all` (0: none; a cluster runs
    /// `saga reconcile` on a schedule instead).
    #[arg(long, env = "RECONCILE_EVERY_SECS", default_value_t = 600)]
    reconcile_every_secs: u64,
    /// Seconds an order or entitlement may still be in its saga before reconciliation checks it.
    #[arg(long, env = "RECONCILE_GRACE_SECS", default_value_t = 300)]
    reconcile_grace_secs: u64,
    /// How far back, in seconds, reconciliation checks orders and entitlements.
    #[arg(long, env = "RECONCILE_WINDOW_SECS", default_value_t = 7 * 24 * 3600)]
    reconcile_window_secs: u64,
}

impl Config {
    fn reconcile(&self) -> saga::reconcile::ReconcileSettings {
        saga::reconcile::ReconcileSettings {
            grace: Duration::from_secs(self.reconcile_grace_secs),
            window: Duration::from_secs(self.reconcile_window_secs.max(1)),
        }
    }
}

/// The pool size of a saga process when `DATABASE_MAX_CONNECTIONS` is unset (the api's is 20).
const DEFAULT_DATABASE_MAX_CONNECTIONS: &str = "10";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pool_default = |cmd: clap::Command| {
        cmd.mut_arg("database_max_connections", |arg| {
            arg.default_value(DEFAULT_DATABASE_MAX_CONNECTIONS)
        })
    };
    let matches = Cli::command()
        .mut_subcommand("run", pool_default)
        .mut_subcommand("reconcile", pool_default)
        .get_matches();
    let command = Cli::from_arg_matches(&matches)?.command;
    let telemetry = domain::telemetry::init(&service_name(&command));
    let result = run(command).await;
    telemetry.shutdown().await;
    result
}

/// The process as traces name it: `store-saga` for every participant in one process,
/// `store-saga-{participant}` for one, `store-reconcile` for a reconciliation pass.
fn service_name(command: &Command) -> String {
    match command {
        Command::Run {
            participant: Which::All,
            ..
        } => "store-saga".to_owned(),
        Command::Run { participant, .. } => match participant.to_possible_value() {
            Some(name) => format!("store-saga-{}", name.get_name()),
            None => "store-saga".to_owned(),
        },
        Command::Reconcile { .. } => "store-reconcile".to_owned(),
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let (participant, config) = match command {
        Command::Run {
            participant,
            config,
        } => (participant, config),
        Command::Reconcile { config } => {
            let (rt, _) = connect(&config).await?;
            let report = saga::reconcile::run_once(&rt, config.reconcile()).await?;
            println!(
                "reconciliation {}: {} wallets, {} orders, {} editions; {} refreshed; found {:?}; {} told",
                report.run_id,
                report.wallets,
                report.orders,
                report.editions,
                report.refreshed,
                report.found,
                report.told
            );
            return Ok(());
        }
    };
    let selected: Vec<Participant> = match participant {
        Which::All => Participant::ALL.to_vec(),
        Which::Ordering => vec![Participant::Ordering],
        Which::Billing => vec![Participant::Billing],
        Which::Fulfillment => vec![Participant::Fulfillment],
        Which::Library => vec![Participant::Library],
        Which::Notification => vec![Participant::Notification],
        Which::Webhooks => vec![Participant::Webhooks],
    };
    let (rt, nats) = connect(&config).await?;
    rt.ensure_streams().await?;
    domain::metrics::install();
    tokio::spawn(domain::metrics::upkeep());
    let health = tokio::spawn(saga::infra::health::serve(
        config.health_addr,
        rt.clone(),
        selected.clone(),
        nats,
    ));
    tokio::spawn(async move {
        if let Ok(Err(e)) = health.await {
            tracing::error!(error = %format!("{e:#}"), "health endpoints stopped");
        }
    });
    if participant == Which::All && config.reconcile_every_secs > 0 {
        tokio::spawn(saga::reconcile::periodically(
            rt.clone(),
            config.reconcile(),
            Duration::from_secs(config.reconcile_every_secs),
        ));
    }
    saga::run(rt, &selected, domain::server::shutdown()).await
}

async fn connect(c: &Config) -> anyhow::Result<(Runtime, async_nats::Client)> {
    let services = &c.services;
    let currency = services
        .currency()
        .map_err(|e| anyhow::anyhow!("STORE_CURRENCY: {e}"))?;
    let messaging_retention = services.messaging_retention();
    if !domain::retention::inbox_retention_is_safe(
        messaging_retention,
        Duration::from_secs(c.new_consumer_backlog_secs),
    ) {
        anyhow::bail!(
            "MESSAGING_RETENTION_DAYS ({}) must be 0 or longer than SAGA_NEW_CONSUMER_BACKLOG_SECS \
             ({} s) by a day: a consumer created anew would get messages whose inbox rows are gone",
            services.messaging_retention_days,
            c.new_consumer_backlog_secs
        );
    }
    let mut opts = sea_orm::ConnectOptions::new(services.database_url.clone());
    opts.max_connections(services.database_max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(opts)
        .await
        .context("connecting to PostgreSQL")?;
    // Redis may be down: the participants start anyway (they only refresh derived state there).
    let (redis, redis_up) = domain::redis::connect(&services.redis_url, 2).await?;
    let redis_health = domain::redis::RedisHealth::new(redis_up);
    tokio::spawn(domain::redis::watch(
        redis.clone(),
        redis_health.clone(),
        // The api rebuilds the derived state when Redis is back.
        |_| async { Ok::<(), std::convert::Infallible>(()) },
    ));
    let nats = async_nats::ConnectOptions::new()
        .name("store-saga")
        .connect(services.nats_url.as_str())
        .await
        .context("connecting to NATS")?;
    let bus = domain::bus::Bus::new(nats.clone(), &services.nats_prefix);
    let settings = Settings {
        max_deliver: c.max_deliver.max(1),
        retry_base: Duration::from_millis(c.retry_base_ms),
        retry_max: Duration::from_millis(c.retry_max_ms),
        ack_wait: Duration::from_secs(c.ack_wait_secs.max(1)),
        new_consumer_backlog: Duration::from_secs(c.new_consumer_backlog_secs),
        messaging_retention,
        concurrency: c.concurrency.max(1),
        batch_max: c.batch_max.max(1),
        currency,
        stream_replicas: services.nats_stream_replicas,
        shipping_deadline: Duration::from_secs(c.shipping_deadline_secs.max(60)),
        deadline_sweep: Duration::from_secs(c.deadline_sweep_secs.max(1)),
        reservation_deadline: Duration::from_secs(c.reservation_deadline_secs.max(60)),
        platform_fee_bps: c.platform_fee_bps,
        clock: saga::Clock::default(),
        webhooks: saga::WebhookSettings {
            targets: services.webhook_targets(),
            schedule: domain::webhooks::retry_schedule(c.webhooks_backoff_scale),
            request_timeout: Duration::from_secs(c.webhooks_request_timeout_secs.clamp(1, 60)),
            secret_overlap: Duration::from_secs(c.webhooks_secret_overlap_secs),
            disable_after_failed_deliveries: c.webhooks_disable_after_failed_deliveries.max(1),
            disable_after_failing: Duration::from_secs(c.webhooks_disable_after_failing_secs),
            batch: c.webhooks_batch.clamp(1, 500),
            workers: c.webhooks_workers.clamp(1, 16),
            delivery_retention: Duration::from_secs(
                c.webhooks_delivery_retention_days.saturating_mul(86_400),
            ),
        },
    };
    let rt = Runtime::new(
        db,
        bus,
        redis,
        services.redis_namespace.clone(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        settings,
    )
    .with_redis_health(redis_health);
    Ok((rt, nats))
}
