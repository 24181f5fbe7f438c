//! Metrics of a server process, in the Prometheus text format (issue 17).
//!
//! Each process (the api, a saga process) installs one recorder ([`install`]) and serves
//! [`render`] at `/metrics` on an internal address the public gateway never proxies (the api's
//! `API_METRICS_ADDR`, a saga process's `SAGA_HEALTH_ADDR`). Series are named `store_*`; labels
//! take only values from small fixed sets (a participant, a message kind, an error code, an
//! operation of the app), never an id.
//!
//! Gauges that describe the database or the broker (backlogs, lag, orders by state) are
//! sampled when they are scraped, by the process that owns what they describe.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of every `*_seconds` histogram: 1 ms to 5 min.
const SECONDS_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs this process's recorder (once; later calls do nothing). `None` if another
/// recorder was installed first, by something other than this function.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder is installed already");
                    None
                }
            }
        })
        .as_ref()
}

/// Every series of the process, in the Prometheus text format.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// Forever: folds the histograms' recent samples into their buckets, so a process nobody
/// scrapes does not keep them all.
pub async fn upkeep() {
    let Some(handle) = install() else {
        return;
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}

/// A connection pool's use: `store_db_pool_connections{state="idle"|"in_use"}` and
/// `store_db_pool_max_connections`.
pub fn record_pool(db: &sea_orm::DatabaseConnection) {
    let pool = db.get_postgres_connection_pool();
    let size = f64::from(pool.size());
    // `usize` → `f64`: a pool has a few dozen connections.
    let idle = pool.num_idle() as f64;
    metrics::gauge!("store_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("store_db_pool_connections", "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!("store_db_pool_max_connections")
        .set(f64::from(pool.options().get_max_connections()));
}

/// A label value from a message kind or a code: itself when it is a plain identifier of at
/// most 64 characters (`[a-z0-9_.]`), `other` otherwise (a label never carries free text).
pub fn label(value: &str) -> String {
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if plain {
        value.to_owned()
    } else {
        "other".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_plain_identifiers_or_other() {
        assert_eq!(
            label("billing.payment_captured"),
            "billing.payment_captured"
        );
        assert_eq!(label("Robert'); DROP"), "other");
        assert_eq!(label(""), "other");
        assert_eq!(label(&"a".repeat(65)), "other");
    }
}
