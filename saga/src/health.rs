//! Liveness and readiness over HTTP (`SAGA_HEALTH_ADDR`), for the cluster's probes:
//! `/healthz` answers while the process runs; `/readyz` answers 200 when PostgreSQL and NATS
//! answer and every durable consumer of the process exists (`"status":"degraded"` while Redis
//! is down, see [`domain::health`]), 503 otherwise.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use domain::health::Readiness;
use domain::redis::RedisHealth;
use sea_orm::DatabaseConnection;

use crate::infra::runtime::ConsumerHealth;

#[derive(Clone)]
struct Deps {
    db: DatabaseConnection,
    redis: RedisHealth,
    nats: async_nats::Client,
    consumers: ConsumerHealth,
}

async fn readyz(State(d): State<Deps>) -> (StatusCode, Json<serde_json::Value>) {
    let t = Duration::from_secs(2);
    let postgres = tokio::time::timeout(t, d.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let found = Readiness {
        postgres,
        redis: d.redis.is_up(),
        nats: d.nats.connection_state() == async_nats::connection::State::Connected,
    };
    let missing = d.consumers.missing_now();
    let mut body = found.body();
    body["consumers"] = if missing.is_empty() { "ok" } else { "missing" }.into();
    body["missingConsumers"] = missing.clone().into();
    let status = if found.ready() && missing.is_empty() {
        StatusCode::OK
    } else {
        if found.ready() {
            body["status"] = "unavailable".into();
        }
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// The probes' routes.
pub fn router(
    db: DatabaseConnection,
    redis: RedisHealth,
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
    redis: RedisHealth,
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
