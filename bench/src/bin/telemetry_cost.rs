//! What metrics and traces cost (issue 17), with them on and off in the same run, interleaved:
//!
//! - **The catalog page** (the storefront's 20-product page, in-process, on the demo store of
//!   `catalog_page`): the schema without the request metrics and spans (baseline), with them
//!   (the metrics recorder installed, spans going nowhere: the store without a collector), and
//!   with spans exported too (the store's own subscriber with the OTLP exporter, sending to a
//!   loopback collector that accepts and drops them).
//! - **A saga delivery**: what the consumer adds to every delivery, against decoding the
//!   delivery's envelope (baseline, which every delivery does): counting it
//!   (`saga::infra::metrics::settled`), and its span joined to the sender's trace, with a step
//!   span inside and the `traceparent` of an event it emits (exported, and not).
//!
//! `cargo run --release -p bench --bin telemetry_cost [-- ROUNDS]`

#![recursion_limit = "256"]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bench::catalog::{self, page, quantile_ms};
use domain::messaging::Envelope;
use saga::Participant;
use tracing::Dispatch;
use tracing::instrument::WithSubscriber as _;

/// A loopback OTLP collector that drops what it gets; returns its base URL and the bytes it got.
async fn collector() -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let received = Arc::new(AtomicUsize::new(0));
    let counted = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            counted.fetch_add(body.len(), Ordering::Relaxed);
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}"), received))
}

fn line(label: &str, v: &[Duration], base: f64) {
    let median = quantile_ms(v, 0.5);
    println!(
        "  {label:<44} median {median:6.3} ms  p90 {:6.3} ms  {:.3}x",
        quantile_ms(v, 0.9),
        median / base
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    domain::metrics::install();
    let (endpoint, received) = collector().await?;
    let provider = domain::telemetry::provider("bench", Some(&endpoint))?;
    let exported = Dispatch::new(domain::telemetry::subscriber(Some(&provider)));
    let plain = Dispatch::new(domain::telemetry::subscriber(None));

    // The catalog page.
    let store = catalog::open().await?;
    let bare = api::graphql::build_schema_without_metrics(store.state.clone());
    let full = api::graphql::build_schema(store.state.clone());
    for _ in 0..30 {
        page(&bare, None).with_subscriber(plain.clone()).await;
        page(&full, None).with_subscriber(plain.clone()).await;
        page(&full, None).with_subscriber(exported.clone()).await;
    }
    let (mut off, mut metrics, mut traced) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        page(&bare, None).with_subscriber(plain.clone()).await;
        off.push(t.elapsed());
        let t = Instant::now();
        page(&full, None).with_subscriber(plain.clone()).await;
        metrics.push(t.elapsed());
        let t = Instant::now();
        page(&full, None).with_subscriber(exported.clone()).await;
        traced.push(t.elapsed());
    }
    let base = quantile_ms(&off, 0.5);
    println!("catalog page (20 products, in-process), {rounds} rounds each, interleaved:");
    line("without metrics or spans (baseline)", &off, base);
    line("with metrics, spans not exported", &metrics, base);
    line("with metrics and spans exported (OTLP)", &traced, base);

    // A saga delivery.
    let mut envelope = Envelope::new(
        domain::catalog::BuildMadeCurrent {
            build_id: uuid::Uuid::now_v7(),
            product_id: uuid::Uuid::now_v7(),
            publisher_id: uuid::Uuid::now_v7(),
            platform: "linux".to_owned(),
            version_label: "1.4.2".to_owned(),
        },
        uuid::Uuid::now_v7(),
        None,
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    let bytes = serde_json::to_vec(&envelope)?;
    let deliveries = rounds * 100;
    let decode =
        || -> anyhow::Result<Envelope<serde_json::Value>> { Ok(serde_json::from_slice(&bytes)?) };
    let span_work = |e: &Envelope<serde_json::Value>| {
        let span =
            saga::infra::consumer::handling_span(Participant::Billing, e, e.trace.as_deref(), 1);
        let _entered = span.enter();
        let step = tracing::info_span!("charge", order.id = %e.correlation_id);
        let _step = step.enter();
        std::hint::black_box(domain::bus::child_traceparent(e.trace.as_deref()));
    };
    let time = |f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<Duration> {
        let t = Instant::now();
        for _ in 0..deliveries {
            f()?;
        }
        Ok(t.elapsed() / u32::try_from(deliveries)?)
    };
    let (mut base_d, mut counted, mut spans_off, mut spans_on) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        base_d.push(time(&|| decode().map(|e| drop(std::hint::black_box(e))))?);
        counted.push(time(&|| {
            saga::infra::metrics::settled(
                Participant::Billing,
                &decode()?,
                saga::infra::metrics::Outcome::Handled,
            );
            Ok(())
        })?);
        spans_off.push(tracing::dispatcher::with_default(&plain, || {
            time(&|| decode().map(|e| span_work(&e)))
        })?);
        spans_on.push(tracing::dispatcher::with_default(&exported, || {
            time(&|| decode().map(|e| span_work(&e)))
        })?);
    }
    let us = |v: &[Duration]| quantile_ms(v, 0.5) * 1000.0;
    let b = us(&base_d);
    println!("saga delivery, {deliveries} × 5 runs, median µs per delivery:");
    println!("  decoding its envelope (baseline)             {b:7.2} µs  1.00x");
    for (label, v) in [
        ("+ counting it (metrics)", &counted),
        ("+ its spans, not exported", &spans_off),
        ("+ its spans, exported (OTLP)", &spans_on),
    ] {
        let m = us(v);
        println!(
            "  {label:<44} {m:7.2} µs  {:.2}x  (+{:.2} µs)",
            m / b,
            m - b
        );
    }
    // Everything sent before the figures count as exported.
    tokio::task::spawn_blocking(move || provider.shutdown()).await??;
    println!(
        "the collector received {:.1} MB of spans",
        received.load(Ordering::Relaxed) as f64 / 1e6
    );
    Ok(())
}
