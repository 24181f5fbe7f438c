//! Requests and errors per GraphQL operation and error code, with their latency (issue 17).
//!
//! `store_graphql_requests_total{operation, outcome}` and
//! `store_graphql_request_duration_seconds{operation}`. The operation is one of the app's
//! (its trusted documents' names, [`crate::graphql::trusted::app_operation`]) or `other`: a
//! third party's operation names are free text and would make a series each. The outcome is
//! `ok`, or the `extensions.code` of the response's first error (`OTHER` for a code the api
//! does not know). Subscriptions count their setup only.
//!
//! It also opens each request's span, `graphql {operation}`: the root of the trace that the
//! commands it sends carry through the saga ([`domain::telemetry`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextRequest,
};
use async_graphql::{Request, Response, ServerResult, Value};
use domain::ErrorCode;
use tracing::Instrument as _;

/// The extension (see the module's doc).
pub struct Metrics;

impl ExtensionFactory for Metrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(MetricsRequest::default())
    }
}

/// One request: the operation it names, once known.
#[derive(Default)]
struct MetricsRequest {
    operation: Mutex<Option<&'static str>>,
}

impl MetricsRequest {
    fn name(&self, name: Option<&str>) {
        if let Some(known) = name.and_then(crate::graphql::trusted::app_operation)
            && let Ok(mut operation) = self.operation.lock()
        {
            *operation = Some(known);
            // Before any resolver runs: a span's name is fixed once its trace context is used.
            tracing::Span::current().record("otel.name", format!("graphql {known}"));
        }
    }
}

fn outcome(response: &Response) -> &'static str {
    let Some(error) = response.errors.first() else {
        return "ok";
    };
    let code = error.extensions.as_ref().and_then(|e| match e.get("code") {
        Some(Value::String(s)) => ErrorCode::parse(s),
        Some(Value::Enum(s)) => ErrorCode::parse(s.as_str()),
        _ => None,
    });
    code.map_or("OTHER", ErrorCode::as_str)
}

#[async_graphql::async_trait::async_trait]
impl Extension for MetricsRequest {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        // The request's span: the root of the trace of whatever it sends to the saga.
        let span = tracing::info_span!(
            "graphql",
            otel.name = tracing::field::Empty,
            otel.kind = "server",
            graphql.operation = tracing::field::Empty,
            graphql.outcome = tracing::field::Empty,
        );
        let response = next.run(ctx).instrument(span.clone()).await;
        let operation = self
            .operation
            .lock()
            .ok()
            .and_then(|o| *o)
            .unwrap_or("other");
        span.record("graphql.operation", operation);
        span.record("graphql.outcome", outcome(&response));
        metrics::counter!(
            "store_graphql_requests_total",
            "operation" => operation,
            "outcome" => outcome(&response),
        )
        .increment(1);
        metrics::histogram!("store_graphql_request_duration_seconds", "operation" => operation)
            .record(started.elapsed());
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.name(request.operation_name.as_deref());
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        self.name(operation_name);
        next.run(ctx, operation_name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::ServerError;

    #[test]
    fn the_outcome_is_ok_or_a_known_code() {
        assert_eq!(outcome(&Response::new(Value::Null)), "ok");
        let mut coded = ServerError::new("no", None);
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", "FORBIDDEN");
        coded.extensions = Some(ext);
        assert_eq!(outcome(&Response::from_errors(vec![coded])), "FORBIDDEN");
        let mut free = ServerError::new("no", None);
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", "SOMETHING'); DROP");
        free.extensions = Some(ext);
        assert_eq!(outcome(&Response::from_errors(vec![free])), "OTHER");
    }
}
