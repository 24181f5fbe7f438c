//! What a server process tells its operator: logs with `tracing` to stderr, and, when an
//! OpenTelemetry collector is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), its spans exported with OTLP over HTTP, so that one
//! order can be followed from `placeOrder` through every participant as one trace.
//!
//! The trace travels in the envelope and in the `traceparent` header of every NATS message
//! ([`crate::bus`]): a sender writes the context of its current span ([`current_traceparent`]),
//! and a consumer opens its span as that context's child ([`adopt`]). Without a collector
//! nothing is exported, and the `traceparent` of messages is still written (random span ids)
//! so that logs keep their `trace.id`.
//!
//! The exporter follows the standard variables (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`
//! by default or `http/json`; `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`). Spans are batched and
//! sent from a thread of their own; a collector that is down costs dropped spans, never a
//! request.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How long one export may take before it is given up (its spans dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The process's telemetry, once [`init`]ed; [`Telemetry::shutdown`] sends what is still
/// batched before the process ends.
#[must_use = "shut it down at the end, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Whether spans are exported: a collector endpoint is configured.
pub fn exporting() -> bool {
    let set = |v: Result<String, std::env::VarError>| v.is_ok_and(|v| !v.trim().is_empty());
    set(std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        || set(std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Logs to stderr (human-readable by default, JSON with `LOG_FORMAT=json`, filtered by
/// `RUST_LOG`: default `info`, the database drivers at `warn`) and, when [`exporting`], spans
/// to the collector as `service` (unless `OTEL_SERVICE_NAME` names it). Must run inside the
/// tokio runtime (the exporter sends on it).
pub fn init(service: &str) -> Telemetry {
    let (provider, failed) = if exporting() {
        match provider(service, None) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    subscriber(provider.as_ref()).init();
    if let Some(e) = failed {
        tracing::error!(error = %e, "traces are not exported: the OTLP exporter could not be built");
    } else if provider.is_some() {
        tracing::info!(service, "exporting traces with OTLP");
    }
    Telemetry { provider }
}

/// The subscriber [`init`] installs: the logs, and the spans of `provider` when there is one.
pub fn subscriber(
    provider: Option<&SdkTracerProvider>,
) -> impl tracing::Subscriber + Send + Sync + 'static {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let spans = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("store")));
    let readable = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let structured = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(readable)
        .with(structured)
        .with(spans)
}

impl Telemetry {
    /// Sends the spans still batched (waiting at most the export timeout), then stops the
    /// exporter.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The exporter's thread sends on the runtime: wait for it off the runtime's threads.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            eprintln!("traces: the last spans could not be sent: {e}");
        }
    }
}

/// The exporting side of [`init`]: spans batched to the collector at `endpoint` (its base URL,
/// e.g. `http://127.0.0.1:4318`; `None`: the `OTEL_EXPORTER_OTLP_*` variables'), as `service`
/// unless `OTEL_SERVICE_NAME` says otherwise. Must run inside the tokio runtime.
pub fn provider(
    service: &str,
    endpoint: Option<&str>,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OnRuntime::new()?);
    if let Some(base) = endpoint {
        builder = builder.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
    }
    let exporter = builder.build()?;
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The exporter's HTTP client: the batch processor runs on a thread of its own, outside the
/// tokio runtime, so each request is sent by a task on the runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl OnRuntime {
    fn new() -> Result<Self, opentelemetry_otlp::ExporterBuildError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            opentelemetry_otlp::ExporterBuildError::InternalFailure(format!(
                "no tokio runtime: {e}"
            ))
        })?;
        let client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| opentelemetry_otlp::ExporterBuildError::InternalFailure(e.to_string()))?;
        Ok(OnRuntime { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut answer = http::Response::new(body);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok::<_, reqwest::Error>(answer)
        });
        Ok(sent.await??)
    }
}

/// The W3C `traceparent` of the current span, when spans are exported (`None` otherwise, or
/// outside any span).
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// Makes `span` a child of the sender's span named by `traceparent` (when spans are exported
/// and it is a valid one), so that the handling of a message joins the trace of its sender.
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        // Refused only when the span is not exported (no OpenTelemetry layer): nothing to do.
        let _ = span.set_parent(cx);
    }
}
