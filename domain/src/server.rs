//! What every server process of the store (`api`, `saga`) shares before it does its own work:
//! where the services are ([`ServiceSettings`], from the environment) and when to stop
//! ([`shutdown`]); its logs and traces are [`crate::telemetry`]'s. Server only.

use std::time::Duration;

use crate::money::{Currency, MoneyError};

/// `DATABASE_URL` when unset: the store's database on the local PostgreSQL.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/store";

/// Where the shared services are, and the settings every process reads the same way (the api
/// and each saga participant take the same variables).
#[derive(clap::Args, Clone, Debug)]
pub struct ServiceSettings {
    /// PostgreSQL URL of the store's database (created by `api migrate` if missing).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Largest number of pooled PostgreSQL connections of this process (20 for the api; `saga`
    /// sets its own default, 10).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    /// Redis URL (derived and ephemeral state only).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of every Redis key this deployment writes (`{namespace}:refresh:…`).
    #[arg(long, env = "REDIS_NAMESPACE", default_value = "store")]
    pub redis_namespace: String,
    /// NATS URL (JetStream must be enabled).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Prefix of every subject (`{prefix}.cmd.…`) and stream name (`{prefix}_CMD`); empty for none.
    #[arg(long, env = "NATS_PREFIX", default_value = "")]
    pub nats_prefix: String,
    /// Replicas of the CMD and EVT streams (3 in a cluster).
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1)]
    pub nats_stream_replicas: usize,
    /// Currency of every price in the store.
    #[arg(long, env = "STORE_CURRENCY", default_value = "EUR")]
    pub store_currency: String,
    /// Webhook endpoints may be on private, loopback, link-local and other special-purpose
    /// addresses (development and tests only: in production this opens the internal network
    /// to whoever registers an endpoint).
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE_TARGETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhooks_allow_private_targets: bool,
    /// Hosts webhook endpoints may reach over plain `http` (comma-separated, as in the URL);
    /// every other endpoint must use `https`.
    #[arg(
        long,
        env = "WEBHOOKS_HTTP_HOSTS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub webhooks_http_hosts: Vec<String>,
    /// Days a published outbox row and a handled message's inbox row are kept (every outbox
    /// and inbox; `domain::retention`); 0 keeps them forever. The inbox's must be longer than
    /// `SAGA_NEW_CONSUMER_BACKLOG_SECS` by a day (`saga run` refuses less).
    #[arg(long, env = "MESSAGING_RETENTION_DAYS", default_value_t = crate::retention::DEFAULT_RETENTION_DAYS)]
    pub messaging_retention_days: u64,
}

impl ServiceSettings {
    /// `STORE_CURRENCY`, checked: one the store sells in (`domain/data/exchange_rates.csv`).
    pub fn currency(&self) -> Result<Currency, MoneyError> {
        Currency::parse_supported(&self.store_currency)
    }

    /// `MESSAGING_RETENTION_DAYS` (zero: forever).
    pub fn messaging_retention(&self) -> Duration {
        Duration::from_secs(self.messaging_retention_days.saturating_mul(86_400))
    }

    /// Where webhooks may go (`WEBHOOKS_ALLOW_PRIVATE_TARGETS`, `WEBHOOKS_HTTP_HOSTS`).
    pub fn webhook_targets(&self) -> crate::webhooks::target::TargetPolicy {
        crate::webhooks::target::TargetPolicy {
            allow_private: self.webhooks_allow_private_targets,
            http_hosts: self
                .webhooks_http_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what a cluster sends before it stops a pod).
pub async fn shutdown() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
