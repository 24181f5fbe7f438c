//! Liveness and readiness over HTTP (`SAGA_HEALTH_ADDR`), for the cluster's probes:
//! `/healthz` answers while the process runs; `/readyz` answers 200 when PostgreSQL and NATS
//! answer and every durable consumer of the process exists (`"status":"degraded"` while Redis
//! is down, see [`domain::health`]), 503 otherwise. `/metrics` serves the process's metrics in
//! the Prometheus text format ([`crate::infra::metrics`]); like the probes, it is for the
//! cluster only.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use domain::health::Readiness;
use domain::redis::RedisHealth;
use sea_orm::DatabaseConnection;

use crate::infra::runtime::{ConsumerHealth, Participant, Runtime};

#[derive(Clone)]
struct Deps {
    db: DatabaseConnection,
    redis: RedisHealth,
    nats: async_nats::Client,
    consumers: ConsumerHealth,
    /// The runtime and the participants of the process, for `/metrics`.
    rt: Runtime,
    participants: Vec<Participant>,
}

async fn metrics(State(d): State<Deps>) -> ([(header::HeaderName, &'static str); 1], String) {
    crate::infra::metrics::sample(&d.rt, &d.participants).await;
    (
        [(header::CONTENT_TYPE, domain::metrics::CONTENT_TYPE)],
        domain::metrics::render(),
    )
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

/// The probes' routes and `/metrics`, for a process running `participants` on `rt`.
pub fn router(rt: &Runtime, participants: &[Participant], nats: async_nats::Client) -> Router {
    domain::metrics::install();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Deps {
            db: rt.db.clone(),
            redis: rt.redis_health.clone(),
            nats,
            consumers: rt.consumers.clone(),
            rt: rt.clone(),
            participants: participants.to_vec(),
        })
}

/// Serves the probes and the metrics on `addr` until the process ends.
pub async fn serve(
    addr: SocketAddr,
    rt: Runtime,
    participants: Vec<Participant>,
    nats: async_nats::Client,
) -> anyhow::Result<()> {
    let app = router(&rt, &participants, nats);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the health address {addr}"))?;
    tracing::info!(%addr, "health and metrics endpoints listening");
    axum::serve(listener, app).await.context("serving health")
}
