//! Liveness and readiness over HTTP (`SAGA_HEALTH_ADDR`), for the cluster's probes:
//! `/healthz` answers while the process runs; `/readyz` when PostgreSQL, Redis and NATS answer
//! and every durable consumer of the process exists.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;

use crate::runtime::ConsumerHealth;

#[derive(Clone)]
struct Deps {
    db: DatabaseConnection,
    redis: fred::prelude::Pool,
    nats: async_nats::Client,
    consumers: ConsumerHealth,
}

async fn readyz(State(d): State<Deps>) -> (StatusCode, Json<serde_json::Value>) {
    use fred::interfaces::ClientLike;
    let t = Duration::from_secs(2);
    let pg = tokio::time::timeout(t, d.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = tokio::time::timeout(t, d.redis.ping::<String>(None))
        .await
        .is_ok_and(|r| r.is_ok());
    let nats = d.nats.connection_state() == async_nats::connection::State::Connected;
    let missing = d.consumers.missing_now();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "postgres": word(pg),
        "redis": word(redis),
        "nats": word(nats),
        "consumers": if missing.is_empty() { "ok" } else { "missing" },
        "missingConsumers": missing,
    });
    let status = if pg && redis && nats && missing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The probes' routes.
pub fn router(
    db: DatabaseConnection,
    redis: fred::prelude::Pool,
    nats: async_nats::Client,
    consumers: ConsumerHealth,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Deps {
            db,
            redis,
            nats,
            consumers,
        })
}

/// Serves the probes on `addr` until the process ends.
pub async fn serve(
    addr: SocketAddr,
    db: DatabaseConnection,
    redis: fred::prelude::Pool,
    nats: async_nats::Client,
    consumers: ConsumerHealth,
) -> anyhow::Result<()> {
    let app = router(db, redis, nats, consumers);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the health address {addr}"))?;
    tracing::info!(%addr, "health endpoints listening");
    axum::serve(listener, app).await.context("serving health")
}
