//! A store to attack: a real api (its own database, Redis namespace and NATS prefix) on a runtime
//! of its own, behind the real nginx gateway (`helpers::gateway`), with probes of its `/healthz`
//! and WebSocket clients that go through the gateway's TLS.
//!
//! The api runs on its own two-worker runtime, as `api serve` does on two cores, so that a
//! request that holds a worker (the case the attack suite is about) cannot hold the test's own
//! runtime, and the test can end (the runtime is shut down without waiting) even then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::infra::config::Config;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::TestApp;
use super::gateway::Gateway;

/// How long a `/healthz` probe may take before it counts as unanswered. The budget is
/// 100 ms; on a shared two-core machine running the whole test suite a healthy api sometimes
/// needs longer, so the assertion is that every probe is answered within this generous bound
/// while the attack is in flight, and the latencies are printed (`--nocapture`).
pub const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(2);
/// The budget for `/healthz` under attack; `ATTACK_STRICT=1` asserts it.
pub const HEALTHZ_BUDGET: Duration = Duration::from_millis(100);

/// The api (on its runtime) and the gateway in front of it.
pub struct Target {
    pub api: SocketAddr,
    pub gw: Gateway,
    /// An admin's, a publisher's and a user's access tokens (made before the attack).
    pub admin_token: String,
    pub publisher_token: String,
    pub user_token: String,
    pub user_id: String,
    app: Option<TestApp>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Target {
    /// Starts the api with `tweak` applied to its configuration and the gateway with
    /// `gateway_overrides` (nginx.conf variables).
    pub async fn start(
        tweak: impl FnOnce(&mut Config) + Send + 'static,
        gateway_overrides: &[(&str, &str)],
    ) -> Target {
        let (app, api, runtime, admin, publisher, user) = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("api-under-attack")
                .enable_all()
                .build()
                .expect("api runtime");
            let (app, api, admin, publisher, user) = runtime.block_on(async move {
                let app = TestApp::spawn_with(tweak).await;
                let api = app.serve().await;
                let admin = app
                    .staff("admin@attack.test", "Admin", domain::identity::Role::Admin)
                    .await;
                let publisher = app
                    .staff(
                        "publisher@attack.test",
                        "Pub",
                        domain::identity::Role::Publisher,
                    )
                    .await;
                let signed_up = app.sign_up("user@attack.test", "User").await;
                let user = (
                    signed_up["accessToken"].as_str().expect("token").to_owned(),
                    signed_up["account"]["id"].as_str().expect("id").to_owned(),
                );
                (app, api, admin.0, publisher.0, user)
            });
            (app, api, runtime, admin, publisher, user)
        })
        .await
        .expect("api thread");
        let gw = Gateway::start(api, gateway_overrides);
        Target {
            api,
            gw,
            admin_token: admin,
            publisher_token: publisher,
            user_token: user.0,
            user_id: user.1,
            app: Some(app),
            runtime: Some(runtime),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // The app first (it drops its database and keys on a thread of its own), then the
        // runtime, without waiting for a worker that may still be busy with an attack.
        drop(self.app.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One GET /healthz straight to the api: its latency, or why it failed.
pub async fn probe_healthz(api: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(api)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&answer);
        if text.starts_with("HTTP/1.1 200") && text.ends_with("ok") {
            Ok(())
        } else {
            Err(format!("answer: {text}"))
        }
    };
    match tokio::time::timeout(HEALTHZ_TIMEOUT, attempt).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {HEALTHZ_TIMEOUT:?}")),
    }
}

/// What the `/healthz` probes saw while an attack ran.
#[derive(Debug, Default)]
pub struct Availability {
    pub latencies: Vec<Duration>,
    pub failures: Vec<String>,
}

impl Availability {
    pub fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }

    /// Every probe answered (within [`HEALTHZ_TIMEOUT`]; within [`HEALTHZ_BUDGET`] under
    /// `ATTACK_STRICT=1`), and at least one ran while the attack was in flight.
    pub fn assert_available(&self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: /healthz did not answer while the attack ran: {:?}",
            self.failures
        );
        assert!(
            !self.latencies.is_empty(),
            "{what}: no /healthz probe ran during the attack"
        );
        if std::env::var("ATTACK_STRICT").is_ok_and(|v| v == "1") {
            assert!(
                self.max() <= HEALTHZ_BUDGET,
                "{what}: /healthz took {:?} (budget {HEALTHZ_BUDGET:?})",
                self.max()
            );
        }
    }
}

/// Runs `attack` while probing `/healthz` of `api` back to back; the attack's output and what
/// the probes saw. Probing starts with the attack and stops when it ends (at least one probe).
pub async fn while_probing<T, F>(api: SocketAddr, attack: F) -> (T, Availability)
where
    F: Future<Output = T>,
{
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Availability::default();
            loop {
                match probe_healthz(api).await {
                    Ok(latency) => seen.latencies.push(latency),
                    Err(e) => seen.failures.push(e),
                }
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let out = attack.await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = prober.await.expect("prober");
    (out, seen)
}

/// Accepts the gateway's self-signed test certificate (the tests talk to their own nginx).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws socket through the gateway's TLS (`wss://…/graphql/ws`), initialised
/// with `token` in `connection_init` when given; the `connection_ack` (or what came instead).
pub async fn ws_connect(gw: &Gateway, token: Option<&str>) -> (Socket, Option<Value>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", gw.https))
        .await
        .expect("connect to the gateway");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS");
    let mut req = format!("wss://127.0.0.1:{}/graphql/ws", gw.https)
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls)
        .await
        .expect("WebSocket handshake through the gateway");
    let payload = token.map_or_else(
        || json!({}),
        |t| json!({ "Authorization": format!("Bearer {t}") }),
    );
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": payload }).to_string(),
    ))
    .await
    .expect("connection_init");
    let ack = ws_next(&mut ws, Duration::from_secs(10)).await;
    (ws, ack)
}

/// What a socket says next, as JSON: a text frame, or `{"closed": code}` when the server closes
/// it; `None` when nothing comes within `wait`.
pub async fn ws_next(ws: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match next {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).ok(),
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1005, |f| u16::from(f.code));
                return Some(json!({ "closed": code }));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Some(json!({ "closed": format!("{e}") })),
            None => return Some(json!({ "closed": "end of stream" })),
        }
    }
}

/// Runs one operation over `ws` as subscription `id` and returns its first answer (`next`,
/// `error`, or the close).
pub async fn ws_operation(ws: &mut Socket, id: &str, query: &str, variables: Value) -> Value {
    let sent = ws
        .send(Message::text(
            json!({ "id": id, "type": "subscribe",
                    "payload": { "query": query, "variables": variables } })
            .to_string(),
        ))
        .await;
    if let Err(e) = sent {
        return json!({ "closed": format!("{e}") });
    }
    loop {
        let Some(v) = ws_next(ws, Duration::from_secs(20)).await else {
            return json!({ "timeout": true });
        };
        if v["type"] == "ping" {
            let _ = ws
                .send(Message::text(json!({ "type": "pong" }).to_string()))
                .await;
            continue;
        }
        if v.get("closed").is_some() || v["id"] == id {
            return v;
        }
    }
}
