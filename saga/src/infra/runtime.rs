//! What every participant shares: database, bus, Redis, the payment provider, the settings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::bus::Bus;
use domain::money::Currency;
use domain::outbox::{Handoff, Row};
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::infra::provider::PaymentProvider;

/// The participants (one per context that reacts to messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Participant {
    Ordering,
    Billing,
    Fulfillment,
    Library,
    Notification,
    Webhooks,
}

impl Participant {
    pub const ALL: [Participant; 6] = [
        Participant::Ordering,
        Participant::Billing,
        Participant::Fulfillment,
        Participant::Library,
        Participant::Notification,
        Participant::Webhooks,
    ];

    /// The context's name: its schema, its durable consumers' prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Participant::Ordering => "ordering",
            Participant::Billing => "billing",
            Participant::Fulfillment => "fulfillment",
            Participant::Library => "library",
            Participant::Notification => "notification",
            Participant::Webhooks => "webhooks",
        }
    }

    pub fn parse(s: &str) -> Option<Participant> {
        Participant::ALL.into_iter().find(|p| p.name() == s)
    }

    fn index(self) -> usize {
        match self {
            Participant::Ordering => 0,
            Participant::Billing => 1,
            Participant::Fulfillment => 2,
            Participant::Library => 3,
            Participant::Notification => 4,
            Participant::Webhooks => 5,
        }
    }

    /// The subject an admin's replay of one of this participant's dead letters goes to.
    pub fn replay_subject(self) -> String {
        format!("cmd.{}.replay", self.name())
    }
}

/// The participants' clock: real time plus an offset that tests move forward (deadlines).
#[derive(Clone, Debug, Default)]
pub struct Clock(Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let offset = self.0.load(std::sync::atomic::Ordering::SeqCst);
        chrono::Utc::now() + chrono::Duration::milliseconds(offset)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Tunables of the consumers (environment variables of `saga run`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deliveries of one message before it goes to the dead letters.
    pub max_deliver: i64,
    /// Delay before the first redelivery after a transient failure; doubled each time.
    pub retry_base: Duration,
    /// Longest delay between redeliveries.
    pub retry_max: Duration,
    /// How long JetStream waits for an ack (or a progress ack, sent every half of it while a
    /// handler runs) before redelivering: how long a message in flight at a crash waits.
    pub ack_wait: Duration,
    /// How far back in time a newly created consumer of events starts.
    pub new_consumer_backlog: Duration,
    /// How long published outbox rows and handled inbox rows are kept (zero: forever); longer
    /// than `new_consumer_backlog` by a day ([`domain::retention`]).
    pub messaging_retention: Duration,
    /// Lanes of each participant: batches it handles at once (each in its own transaction),
    /// every delivery in the lane of the account it concerns.
    pub concurrency: usize,
    /// Most deliveries handled in one transaction: whatever is waiting when a batch starts,
    /// up to this many (one when the store is quiet).
    pub batch_max: usize,
    /// The store's currency (wallets are in it).
    pub currency: Currency,
    /// Replicas of the streams, when this process creates them.
    pub stream_replicas: usize,
    /// How long a publisher has to ship a paid order: reminded at half, cancelled with a
    /// refund at the end.
    pub shipping_deadline: Duration,
    /// How often fulfillment looks for orders past half or all of their deadline.
    pub deadline_sweep: Duration,
    /// How long a reservation waits for its payment before fulfillment releases it and
    /// cancels the order (refunding whatever was charged).
    pub reservation_deadline: Duration,
    /// The platform's fee on each sale, basis points (billing).
    pub platform_fee_bps: u32,
    pub clock: Clock,
    /// The webhooks participant's delivery worker.
    pub webhooks: WebhookSettings,
}

/// How the webhooks participant delivers (environment variables `WEBHOOKS_*` of `saga run`).
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Which targets it may connect to (checked again at every connection).
    pub targets: domain::webhooks::target::TargetPolicy,
    /// The delays after each failed attempt; the delivery fails when they are spent.
    pub schedule: Vec<Duration>,
    /// Longest wait for an answer (connection included).
    pub request_timeout: Duration,
    /// How long the previous secret keeps signing after a rotation.
    pub secret_overlap: Duration,
    /// Deliveries in a row whose every attempt failed before the endpoint is disabled.
    pub disable_after_failed_deliveries: u32,
    /// How long an endpoint may fail every attempt (no success since) before it is disabled.
    pub disable_after_failing: Duration,
    /// Deliveries claimed (and sent at once) per transaction.
    pub batch: usize,
    /// Claiming loops per process.
    pub workers: usize,
    /// How long a finished delivery (succeeded, or failed for good) and its attempts stay in
    /// the log after its last attempt; zero keeps them forever. Deliveries still retrying are
    /// never removed.
    pub delivery_retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> WebhookSettings {
        WebhookSettings {
            targets: Default::default(),
            schedule: domain::webhooks::retry_schedule(1.0),
            request_timeout: Duration::from_secs(10),
            secret_overlap: Duration::from_secs(domain::webhooks::DEFAULT_SECRET_OVERLAP_SECS),
            disable_after_failed_deliveries:
                domain::webhooks::DEFAULT_DISABLE_AFTER_FAILED_DELIVERIES,
            disable_after_failing: Duration::from_secs(
                domain::webhooks::DEFAULT_DISABLE_AFTER_FAILING_SECS,
            ),
            batch: 32,
            workers: 2,
            delivery_retention: Duration::from_secs(
                domain::webhooks::DEFAULT_DELIVERY_RETENTION_DAYS * 86_400,
            ),
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_deliver: 10,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(60),
            ack_wait: Duration::from_secs(5),
            new_consumer_backlog: Duration::from_secs(24 * 3600),
            messaging_retention: Duration::from_secs(
                domain::retention::DEFAULT_RETENTION_DAYS * 86_400,
            ),
            concurrency: 4,
            batch_max: 32,
            currency: Currency::EUR,
            stream_replicas: 1,
            shipping_deadline: Duration::from_secs(
                domain::fulfillment::DEFAULT_SHIPPING_DEADLINE_SECS,
            ),
            deadline_sweep: Duration::from_secs(60),
            reservation_deadline: Duration::from_secs(
                domain::fulfillment::DEFAULT_RESERVATION_DEADLINE_SECS,
            ),
            platform_fee_bps: domain::billing::DEFAULT_PLATFORM_FEE_BPS,
            clock: Clock::default(),
            webhooks: WebhookSettings::default(),
        }
    }
}

impl Settings {
    /// The delay before delivery number `delivered + 1`: exponential, capped.
    pub fn backoff(&self, delivered: i64) -> Duration {
        let exp = u32::try_from(delivered.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.retry_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.retry_max)
    }
}

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Runtime {
    pub db: DatabaseConnection,
    pub bus: Bus,
    pub redis: fred::prelude::Pool,
    /// Prefix of every Redis key (`REDIS_NAMESPACE`).
    pub redis_ns: String,
    /// Whether Redis answers. Participants only refresh derived state there, after their
    /// commit: while it is down they skip that (the api rebuilds it when Redis is back).
    pub redis_health: domain::redis::RedisHealth,
    pub provider: Arc<dyn PaymentProvider>,
    pub settings: Arc<Settings>,
    /// The consumers that are missing right now (readiness).
    pub consumers: ConsumerHealth,
    /// What the consume loops counted.
    pub counters: Counters,
    /// What each participant's relay is handed (rows committed, or a wake).
    relays: Arc<[Handoff; 6]>,
    /// Wakes the webhooks participant's delivery worker (new or rescheduled deliveries).
    webhook_waker: Arc<Notify>,
}

impl Runtime {
    pub fn new(
        db: DatabaseConnection,
        bus: Bus,
        redis: fred::prelude::Pool,
        redis_ns: String,
        provider: Arc<dyn PaymentProvider>,
        settings: Settings,
    ) -> Runtime {
        Runtime {
            db,
            bus,
            redis,
            redis_ns,
            redis_health: domain::redis::RedisHealth::default(),
            provider,
            settings: Arc::new(settings),
            consumers: ConsumerHealth::default(),
            counters: Counters::default(),
            relays: Arc::new(std::array::from_fn(|_| Handoff::default())),
            webhook_waker: Arc::new(Notify::new()),
        }
    }

    /// Shares `health` (kept by a watcher of Redis, see [`domain::redis::watch`]) instead of
    /// assuming Redis is always up.
    pub fn with_redis_health(mut self, health: domain::redis::RedisHealth) -> Runtime {
        self.redis_health = health;
        self
    }

    /// Tells the relay of `p` that its outbox has new rows it was not handed: it looks at the
    /// table at once.
    pub fn wake_relay(&self, p: Participant) {
        self.relays[p.index()].wake();
    }

    /// Hands the relay of `p` the outbox rows of a transaction just committed: it publishes
    /// them without reading them back.
    pub fn hand_over(&self, p: Participant, rows: Vec<Row>) {
        self.relays[p.index()].committed(rows);
    }

    pub(crate) fn relay_handoff(&self, p: Participant) -> &Handoff {
        &self.relays[p.index()]
    }

    /// Tells the webhooks delivery worker that deliveries are due.
    pub fn wake_webhooks(&self) {
        self.webhook_waker.notify_waiters();
        self.webhook_waker.notify_one();
    }

    pub(crate) fn webhook_waker(&self) -> &Notify {
        &self.webhook_waker
    }

    /// Creates (or updates) the streams.
    pub async fn ensure_streams(&self) -> anyhow::Result<()> {
        self.bus
            .ensure_streams(self.settings.stream_replicas)
            .await
            .context("creating the JetStream streams")
    }
}

/// Counts kept by the consume loops of a process since it started.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    batched: Arc<std::sync::atomic::AtomicU64>,
    batches: Arc<std::sync::atomic::AtomicU64>,
    alone: Arc<std::sync::atomic::AtomicU64>,
}

impl Counters {
    /// Batches committed (of two deliveries or more).
    pub fn batches(&self) -> u64 {
        self.batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Deliveries that left a batch to be handled alone after it (a row lock another
    /// transaction held, the same message twice in the batch).
    pub fn alone(&self) -> u64 {
        self.alone.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn add_alone(&self) {
        self.alone
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Deliveries handled in a transaction shared with others (a batch).
    pub fn batched(&self) -> u64 {
        self.batched.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn add_batched(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.batched
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The durable consumers a participant process found missing and has not created again yet;
/// `/readyz` answers 503 while any is.
#[derive(Clone, Debug, Default)]
pub struct ConsumerHealth(Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>);

impl ConsumerHealth {
    pub(crate) fn missing(&self, name: &str) {
        self.with(|set| set.insert(name.to_owned()));
    }

    pub(crate) fn present(&self, name: &str) {
        self.with(|set| set.remove(name));
    }

    /// The missing consumers' names, sorted.
    pub fn missing_now(&self) -> Vec<String> {
        self.with(|set| set.iter().cloned().collect())
    }

    fn with<T>(&self, f: impl FnOnce(&mut std::collections::BTreeSet<String>) -> T) -> T {
        // A poisoned lock still holds a usable set: a panic elsewhere must not hide readiness.
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}
