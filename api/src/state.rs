//! What every request shares.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::jwt::Keys;
use crate::auth::password::Hasher;
use crate::auth::session::Sessions;
use crate::config::Config;
use crate::redis::KeySpace;

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub redis: fred::prelude::Pool,
    pub keyspace: KeySpace,
    pub nats: async_nats::Client,
    pub keys: Arc<Keys>,
    pub hasher: Hasher,
    pub sessions: Sessions,
}

impl AppState {
    /// Connects to PostgreSQL, Redis and NATS and loads the keys.
    pub async fn connect(config: Config) -> anyhow::Result<AppState> {
        use anyhow::Context;
        let db = crate::db::connect(
            &config.services.database_url,
            config.services.database_max_connections,
        )
        .await?;
        let redis = crate::redis::connect(&config.services.redis_url).await?;
        let nats = async_nats::ConnectOptions::new()
            .name("store-api")
            .connect(config.services.nats_url.as_str())
            .await
            .context("connecting to NATS")?;
        Self::from_parts(config, db, redis, nats)
    }

    pub fn from_parts(
        config: Config,
        db: DatabaseConnection,
        redis: fred::prelude::Pool,
        nats: async_nats::Client,
    ) -> anyhow::Result<AppState> {
        let keys = Arc::new(Keys::from_config(&config.jwt)?);
        let keyspace = KeySpace::new(config.services.redis_namespace.clone());
        let sessions = Sessions::new(
            redis.clone(),
            keyspace.clone(),
            config.refresh_ttl,
            config.jwt.access_ttl,
        );
        Ok(AppState {
            hasher: Hasher::new(config.password_hash_concurrency),
            config: Arc::new(config),
            db,
            redis,
            keyspace,
            nats,
            keys,
            sessions,
        })
    }
}
