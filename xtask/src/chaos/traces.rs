//! One order, one trace: a small OpenTelemetry collector (OTLP over HTTP with JSON bodies, the
//! `/v1/traces` path) that every process of the harness's store exports its spans to, and the
//! check that a digital order placed through the api left one connected trace: one root (the
//! api's `placeOrder` request), every other span's parent in the trace, and the handling of
//! its messages by ordering, billing, library and notification in it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::check::Row;

/// The participants a completed digital order passes through.
const EXPECTED: [&str; 4] = ["ordering", "billing", "library", "notification"];
/// The kind of the command `placeOrder` sends.
const PLACE_KIND: &str = "ordering.place";
/// The largest request body the collector reads.
const MAX_BODY: usize = 64 << 20;

/// One span as received.
#[derive(Clone, Debug)]
pub struct Span {
    pub service: String,
    pub trace: String,
    pub id: String,
    pub parent: String,
    pub name: String,
    pub attributes: HashMap<String, String>,
}

/// The collector: listens on loopback until the harness ends.
pub struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    pub fn start() -> Result<Collector> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the OTLP collector")?;
        let addr = listener.local_addr()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    // A process killed by the harness drops its connection: not worth a line.
                    let killed = |e: &anyhow::Error| {
                        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                            matches!(
                                io.kind(),
                                std::io::ErrorKind::ConnectionReset
                                    | std::io::ErrorKind::BrokenPipe
                                    | std::io::ErrorKind::UnexpectedEof
                            )
                        })
                    };
                    match serve(stream, &kept) {
                        Err(e) if !killed(&e) => eprintln!("chaos: OTLP collector: {e:#}"),
                        _ => {}
                    }
                });
            }
        });
        Ok(Collector { addr, spans })
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` of the store's processes.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Answers the requests of one connection (kept alive by the exporter) until it closes.
fn serve(stream: TcpStream, spans: &Mutex<Vec<Span>>) -> Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0_usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().context("content-length")?;
            }
        }
        anyhow::ensure!(length <= MAX_BODY, "a body of {length} bytes");
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let status = if request_line.starts_with("POST /v1/traces ") {
            let value: Value = serde_json::from_slice(&body).context("an OTLP/JSON body")?;
            let received = parse(&value);
            spans
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(received);
            "200 OK"
        } else {
            "404 Not Found"
        };
        write!(
            writer,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
        )?;
        writer.flush()?;
    }
}

/// The spans of an `ExportTraceServiceRequest` in its JSON form.
fn parse(request: &Value) -> Vec<Span> {
    let list = |v: &Value, key: &str| v.get(key).and_then(Value::as_array).cloned();
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut spans = Vec::new();
    for resource in list(request, "resourceSpans").unwrap_or_default() {
        let service = resource
            .get("resource")
            .map(attributes)
            .and_then(|mut a| a.remove("service.name"))
            .unwrap_or_default();
        for scope in list(&resource, "scopeSpans").unwrap_or_default() {
            for span in list(&scope, "spans").unwrap_or_default() {
                spans.push(Span {
                    service: service.clone(),
                    trace: text(&span, "traceId"),
                    id: text(&span, "spanId"),
                    parent: text(&span, "parentSpanId"),
                    name: text(&span, "name"),
                    attributes: attributes(&span),
                });
            }
        }
    }
    spans
}

/// `attributes` of an OTLP object, every value as text.
fn attributes(of: &Value) -> HashMap<String, String> {
    of.get("attributes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
            let value = kv.get("value")?.as_object()?.values().next()?;
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            Some((key, value))
        })
        .collect()
}

/// Waits (at most `patience`) until the spans of `order`'s saga are in, then checks that they
/// make one connected trace rooted at the api.
pub fn check(collector: &Collector, order: &str, patience: Duration) -> Row {
    let deadline = Instant::now() + patience;
    loop {
        let verdict = one_trace(&collector.spans(), order);
        if verdict.is_ok() || Instant::now() >= deadline {
            let (ok, detail) = match verdict {
                Ok(detail) => (true, detail),
                Err(why) => (false, format!("order {order}: {why}")),
            };
            return Row {
                name: "one order, one connected trace",
                ok,
                detail,
            };
        }
        sleep(Duration::from_millis(250));
    }
}

fn one_trace(spans: &[Span], order: &str) -> Result<String, String> {
    let of_order = |s: &&Span| s.attributes.get("order.id").map(String::as_str) == Some(order);
    let place = spans
        .iter()
        .filter(of_order)
        .find(|s| s.attributes.get("message.kind").map(String::as_str) == Some(PLACE_KIND))
        .ok_or("no span of the handling of its placeOrder command")?;
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace == place.trace).collect();
    let ids: HashSet<&str> = trace.iter().map(|s| s.id.as_str()).collect();
    let roots: Vec<&&Span> = trace.iter().filter(|s| s.parent.is_empty()).collect();
    let [root] = roots.as_slice() else {
        return Err(format!("{} roots in trace {}", roots.len(), place.trace));
    };
    if root.service != "store-api" || !root.name.starts_with("graphql") {
        return Err(format!(
            "the root is {:?} of {:?}, not the api's request",
            root.name, root.service
        ));
    }
    if let Some(orphan) = trace
        .iter()
        .find(|s| !s.parent.is_empty() && !ids.contains(s.parent.as_str()))
    {
        return Err(format!(
            "span {:?} of {} has a parent outside the trace",
            orphan.name, orphan.service
        ));
    }
    let handled: BTreeSet<&str> = trace
        .iter()
        .copied()
        .filter(of_order)
        .filter_map(|s| s.attributes.get("participant").map(String::as_str))
        .collect();
    let missing: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|p| !handled.contains(p))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no span of {} in trace {}",
            missing.join(", "),
            place.trace
        ));
    }
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    Ok(format!(
        "order {order}: {} spans from {} processes ({}), one root ({})",
        trace.len(),
        services.len(),
        services.into_iter().collect::<Vec<_>>().join(", "),
        root.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(service: &str, id: &str, parent: &str, participant: Option<&str>) -> Span {
        let mut attributes = HashMap::from([("order.id".to_owned(), "o1".to_owned())]);
        if let Some(p) = participant {
            attributes.insert("participant".into(), p.into());
            if p == "ordering" && parent == "a" {
                attributes.insert("message.kind".into(), PLACE_KIND.into());
            }
        }
        Span {
            service: service.into(),
            trace: "t".into(),
            id: id.into(),
            parent: parent.into(),
            name: if parent.is_empty() {
                "graphql PlaceOrder"
            } else {
                "handle"
            }
            .into(),
            attributes,
        }
    }

    fn saga() -> Vec<Span> {
        vec![
            span("store-api", "a", "", None),
            span("store-saga-ordering", "b", "a", Some("ordering")),
            span("store-saga-billing", "c", "b", Some("billing")),
            span("store-saga-library", "d", "c", Some("library")),
            span("store-saga-notification", "e", "d", Some("notification")),
        ]
    }

    fn refusal(spans: &[Span]) -> String {
        match one_trace(spans, "o1") {
            Ok(fine) => panic!("accepted: {fine}"),
            Err(why) => why,
        }
    }

    #[test]
    fn a_connected_trace_passes_and_a_broken_one_does_not() {
        assert!(one_trace(&saga(), "o1").is_ok());
        let mut orphan = saga();
        orphan[3].parent = "zz".into();
        assert!(refusal(&orphan).contains("parent outside"));
        let mut two_roots = saga();
        two_roots[2].parent = String::new();
        assert!(refusal(&two_roots).contains("2 roots"));
        let mut missing = saga();
        missing.truncate(4);
        assert!(refusal(&missing).contains("notification"));
    }

    #[test]
    fn otlp_json_is_read() {
        let body = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "store-api"}}]},
            "scopeSpans": [{"spans": [{"traceId": "ab", "spanId": "cd", "parentSpanId": "",
                "name": "graphql", "attributes": [{"key": "delivered", "value": {"intValue": "2"}}]}]}]
        }]});
        let spans = parse(&body);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].service, "store-api");
        assert_eq!(spans[0].attributes["delivered"], "2");
    }
}
