//! What every request shares.

pub mod rebuild;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Notify;

use crate::infra::auth::jwt::Keys;
use crate::infra::auth::password::Hasher;
use crate::infra::auth::session::Sessions;
use crate::infra::bus::Bus;
use crate::infra::config::Config;
use crate::infra::redis::{KeySpace, RedisHealth};
use object_store::ObjectStore;

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub redis: fred::prelude::Pool,
    /// Whether Redis answers (kept by [`rebuild::spawn_watcher`]); while it is down the
    /// api serves from PostgreSQL or refuses what needs Redis.
    pub redis_health: RedisHealth,
    pub keyspace: KeySpace,
    pub nats: async_nats::Client,
    pub keys: Arc<Keys>,
    pub hasher: Hasher,
    pub sessions: Sessions,
    pub bus: Bus,
    pub objects: Arc<dyn ObjectStore>,
    /// Wakes this process's relay of the catalog's outbox ([`crate::catalog::outbox::relay`]).
    pub outbox_waker: Arc<Notify>,
}

impl AppState {
    /// Connects to PostgreSQL, Redis and NATS, loads the keys, and creates or updates the
    /// JetStream streams. Redis may be down: the api then starts degraded, and the watcher of
    /// Redis's health (started here) brings it back when Redis answers.
    pub async fn connect(config: Config) -> anyhow::Result<AppState> {
        let db = crate::infra::db::connect(
            &config.services.database_url,
            config.services.database_max_connections,
        )
        .await?;
        Self::connect_with_db(config, db).await
    }

    /// Like [`AppState::connect`], with a database pool made by the caller (tests count its
    /// statements).
    pub async fn connect_with_db(
        config: Config,
        db: DatabaseConnection,
    ) -> anyhow::Result<AppState> {
        use anyhow::Context;
        let (redis, redis_up) =
            crate::infra::redis::connect_reporting(&config.services.redis_url).await?;
        let nats = async_nats::ConnectOptions::new()
            .name("store-api")
            .connect(config.services.nats_url.as_str())
            .await
            .context("connecting to NATS")?;
        let state = Self::from_parts(config, db, redis, nats)?;
        state.redis_health.set(redis_up);
        rebuild::spawn_watcher(&state);
        state
            .bus
            .ensure_streams(state.config.services.nats_stream_replicas)
            .await?;
        Ok(state)
    }

    pub fn from_parts(
        config: Config,
        db: DatabaseConnection,
        redis: fred::prelude::Pool,
        nats: async_nats::Client,
    ) -> anyhow::Result<AppState> {
        let keys = Arc::new(Keys::from_config(&config.jwt)?);
        let bus = Bus::new(nats.clone(), &config.services.nats_prefix);
        let objects = crate::infra::objects::local(&config.services.object_store_dir)?;
        let keyspace = KeySpace::new(config.services.redis_namespace.clone());
        let redis_health = RedisHealth::default();
        let sessions = Sessions::new(
            redis.clone(),
            redis_health.clone(),
            keyspace.clone(),
            config.refresh_ttl,
            config.jwt.access_ttl,
            config.refresh_reuse_grace,
        );
        Ok(AppState {
            hasher: Hasher::new(config.password_hash_concurrency),
            config: Arc::new(config),
            db,
            redis,
            redis_health,
            keyspace,
            nats,
            keys,
            sessions,
            bus,
            objects,
            outbox_waker: Arc::new(Notify::new()),
        })
    }

    /// Tells the relay of the catalog's outbox that a commit wrote to it.
    pub fn wake_outbox(&self) {
        self.outbox_waker.notify_one();
    }
}
