//! Liveness and readiness over HTTP (`SAGA_HEALTH_ADDR`), for the cluster's probes:
//! `/healthz` answers while the process runs; `/readyz` when PostgreSQL, Redis and NATS answer.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sea_orm::DatabaseConnection;

#[derive(Clone)]
struct Deps {
    db: DatabaseConnection,
    redis: fred::prelude::Pool,
    nats: async_nats::Client,
}

async fn readyz(State(d): State<Deps>) -> (StatusCode, String) {
    use fred::interfaces::ClientLike;
    let t = Duration::from_secs(2);
    let pg = tokio::time::timeout(t, d.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = tokio::time::timeout(t, d.redis.ping::<String>(None))
        .await
        .is_ok_and(|r| r.is_ok());
    let nats = d.nats.connection_state() == async_nats::connection::State::Connected;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = format!(
        "{{\"postgres\":\"{}\",\"redis\":\"{}\",\"nats\":\"{}\"}}",
        word(pg),
        word(redis),
        word(nats)
    );
    let status = if pg && redis && nats {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// Serves the probes on `addr` until the process ends.
pub async fn serve(
    addr: SocketAddr,
    db: DatabaseConnection,
    redis: fred::prelude::Pool,
    nats: async_nats::Client,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Deps { db, redis, nats });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the health address {addr}"))?;
    tracing::info!(%addr, "health endpoints listening");
    axum::serve(listener, app).await.context("serving health")
}
