//! Signed webhooks end to end: the api, every saga participant (webhooks included) and a
//! receiver on loopback that verifies each delivery as a publisher's server would (Standard
//! Webhooks: the HMAC recomputed and compared in constant time, a timestamp within five
//! minutes, a (webhook-id, timestamp) seen before refused as a replay).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::identity::Role;
use domain::webhooks::signature::{self, VerifyError};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::clients::{client_token, create_client};
use crate::helpers::*;
use crate::saga::{Shop, shop_with};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// A publisher's webhook receiver on 127.0.0.1.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

#[derive(Default)]
struct ReceiverState {
    /// The secrets it verifies with (any one may match).
    keys: Mutex<Vec<Vec<u8>>>,
    /// Answer 500 to this many more requests.
    fail_next: AtomicUsize,
    /// Hold the next request (no answer) until released.
    hold_next: std::sync::atomic::AtomicBool,
    release: tokio::sync::Notify,
    /// (webhook-id, timestamp) pairs accepted: the same pair again is a replay.
    seen: Mutex<HashSet<(String, String)>>,
    log: Mutex<Vec<Received>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    pub fn trust(&self, secret: &str) {
        let key = signature::secret_bytes(secret).expect("a whsec_ secret");
        self.state.keys.lock().expect("lock").push(key);
    }

    /// The next request gets no answer until [`Receiver::release`] (a request in flight).
    pub fn hold_next(&self) {
        self.state.hold_next.store(true, Ordering::SeqCst);
    }

    pub fn release(&self) {
        self.state.release.notify_waiters();
    }

    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn log(&self) -> Vec<Received> {
        self.state.log.lock().expect("lock").clone()
    }

    /// Requests of `type` it accepted (2xx).
    pub fn accepted(&self, kind: &str) -> Vec<Received> {
        self.log()
            .into_iter()
            .filter(|r| r.status == 200 && r.json()["type"] == kind)
            .collect()
    }

    /// Waits for the first accepted request of `kind` whose data matches `pred`.
    pub async fn wait_for(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> Received {
        wait_until(&format!("a verified {kind} webhook"), || async {
            self.accepted(kind)
                .into_iter()
                .find(|r| pred(&r.json()["data"]))
        })
        .await
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// What a publisher's server does with a delivery.
async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut got = Received {
        id: header(&headers, "webhook-id"),
        timestamp: header(&headers, "webhook-timestamp"),
        signature: header(&headers, "webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    if state.hold_next.swap(false, Ordering::SeqCst) {
        got.status = 0;
        state.log.lock().expect("lock").push(got);
        state.release.notified().await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let status = if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        match verify(&state, &got, chrono::Utc::now().timestamp()) {
            Ok(()) => StatusCode::OK,
            Err(Refusal::Replay) => StatusCode::CONFLICT,
            Err(Refusal::Signature(_)) => StatusCode::BAD_REQUEST,
        }
    };
    got.status = status.as_u16();
    state.log.lock().expect("lock").push(got);
    status
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Signature(VerifyError),
    Replay,
}

/// Standard Webhooks verification with any trusted key, then the replay check.
fn verify(state: &ReceiverState, r: &Received, now: i64) -> Result<(), Refusal> {
    let keys = state.keys.lock().expect("lock").clone();
    let mut last = VerifyError::NoMatch;
    let mut ok = false;
    for key in &keys {
        match signature::verify(
            key,
            &r.id,
            &r.timestamp,
            &r.signature,
            r.body.as_bytes(),
            now,
        ) {
            Ok(()) => {
                ok = true;
                break;
            }
            Err(e) => last = e,
        }
    }
    if !ok {
        return Err(Refusal::Signature(last));
    }
    let fresh = state
        .seen
        .lock()
        .expect("lock")
        .insert((r.id.clone(), r.timestamp.clone()));
    if fresh { Ok(()) } else { Err(Refusal::Replay) }
}

/// Saga settings for webhook tests: loopback targets allowed, a retry schedule in
/// milliseconds, a short request timeout.
fn settings() -> saga::Settings {
    saga::Settings {
        webhooks: saga::WebhookSettings {
            targets: loopback_allowed(),
            schedule: vec![
                Duration::from_millis(20),
                Duration::from_millis(40),
                Duration::from_millis(80),
            ],
            request_timeout: Duration::from_secs(2),
            ..saga::WebhookSettings::default()
        },
        ..saga_settings()
    }
}

fn loopback_allowed() -> domain::webhooks::target::TargetPolicy {
    domain::webhooks::target::TargetPolicy {
        allow_private: true,
        http_hosts: vec!["127.0.0.1".into()],
    }
}

async fn webhook_shop(settings: saga::Settings) -> Shop {
    shop_with(settings, |c| {
        c.services.webhooks_allow_private_targets = true;
        c.services.webhooks_http_hosts = vec!["127.0.0.1".into()];
    })
    .await
}

const CREATE: &str = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret endpoint { id url enabled eventTypes } } }";
const LOG: &str = "query($id: UUID!) { webhookEndpoint(id: $id) { id enabled disabledReason previousSecretExpiresAt deliveries(first: 20) { edges { node { id webhookId eventType status attempts nextAttemptAt lastStatusCode lastLatencyMs payload attemptLog { succeeded statusCode latencyMs error } } } } } }";
const REDELIVER: &str =
    "mutation($d: UUID!) { redeliverWebhook(deliveryId: $d) { id webhookId status } }";

/// Registers an endpoint of the shop's publisher for `types` at the receiver; returns (id,
/// secret) and makes the receiver trust the secret.
async fn register(shop: &Shop, rx: &Receiver, types: &[&str]) -> (String, String) {
    let v = shop
        .app
        .gql(
            Some(&shop.publisher),
            CREATE,
            json!({ "i": { "url": rx.url, "description": "test receiver", "eventTypes": types } }),
        )
        .await;
    assert_no_errors(&v);
    let created = &v["data"]["createWebhookEndpoint"];
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(signature::secret_bytes(&secret).expect("secret").len() >= 24);
    rx.trust(&secret);
    (
        created["endpoint"]["id"].as_str().expect("id").to_owned(),
        secret,
    )
}

/// The endpoint's delivery log as its publisher sees it.
async fn log(shop: &Shop, token: &str, endpoint: &str) -> Value {
    shop.app
        .gql(Some(token), LOG, json!({ "id": endpoint }))
        .await
}

fn deliveries(log: &Value) -> Vec<Value> {
    log["data"]["webhookEndpoint"]["deliveries"]["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default()
}

/// Waits until the log shows a delivery of `kind` for `order` with `status`.
async fn logged(shop: &Shop, endpoint: &str, kind: &str, order: &str, status: &str) -> Value {
    wait_until(
        &format!("a {status} {kind} delivery in the log"),
        || async {
            let v = log(shop, &shop.publisher, endpoint).await;
            assert_no_errors(&v);
            deliveries(&v).into_iter().find(|d| {
                d["eventType"] == kind
                    && d["status"] == status
                    && serde_json::from_str::<Value>(d["payload"].as_str().unwrap_or("{}"))
                        .is_ok_and(|p| p["data"]["orderId"] == order)
            })
        },
    )
    .await
}

#[tokio::test]
async fn webhooks_deliver_a_paid_order_signed_to_its_publisher_only() {
    // Setup: a receiver, an endpoint for paid orders and grants, a product, a funded buyer.
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    let (endpoint, _) = register(&shop, &rx, &["ORDER_PAID", "ENTITLEMENT_GRANTED"]).await;
    let (product, edition) = shop.product("Hooked", 1500, false).await;
    shop.fund(5000, "fund-1").await;

    // Exercise: an order of the product.
    let order = shop.completed(&[&edition], "order-1").await;

    // Check: the paid order and the grant reached the receiver, verified.
    let paid = rx.wait_for("order.paid", |d| d["orderId"] == order).await;
    let body = paid.json();
    assert_eq!(body["data"]["lines"][0]["productId"], product.as_str());
    assert_eq!(body["data"]["amountMinor"], 1500);
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(paid.id.starts_with("msg_"), "{}", paid.id);
    assert_eq!(paid.signature.split(' ').count(), 1);
    rx.wait_for("entitlement.granted", |d| d["orderId"] == order)
        .await;
    let logged = logged(&shop, &endpoint, "ORDER_PAID", &order, "SUCCEEDED").await;
    assert_eq!(logged["webhookId"], paid.id.as_str());
    assert_eq!(logged["attempts"], 1);
    assert_eq!(logged["lastStatusCode"], 200);
    assert!(logged["nextAttemptAt"].is_null());

    // A replay of the captured request: the receiver refuses it (the same id and timestamp
    // again), and once five minutes have passed its timestamp alone refuses it.
    let client = reqwest::Client::new();
    let replay = client
        .post(&rx.url)
        .header("webhook-id", &paid.id)
        .header("webhook-timestamp", &paid.timestamp)
        .header("webhook-signature", &paid.signature)
        .body(paid.body.clone())
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status().as_u16(), 409);
    let key = rx.state.keys.lock().expect("lock")[0].clone();
    let ts: i64 = paid.timestamp.parse().expect("unix seconds");
    let late = signature::verify(
        &key,
        &paid.id,
        &paid.timestamp,
        &paid.signature,
        paid.body.as_bytes(),
        ts + 301,
    );
    assert_eq!(late, Err(VerifyError::OutsideTolerance));
    let early = signature::verify(
        &key,
        &paid.id,
        &paid.timestamp,
        &paid.signature,
        paid.body.as_bytes(),
        ts - 301,
    );
    assert_eq!(early, Err(VerifyError::OutsideTolerance));
    let tampered = paid.body.replace("1500", "1");
    assert_eq!(
        signature::verify(
            &key,
            &paid.id,
            &paid.timestamp,
            &paid.signature,
            tampered.as_bytes(),
            ts
        ),
        Err(VerifyError::NoMatch)
    );
    let forged = signature::verify(
        &key,
        "msg_other",
        &paid.timestamp,
        &paid.signature,
        paid.body.as_bytes(),
        ts,
    );
    assert_eq!(forged, Err(VerifyError::NoMatch));

    // Another publisher neither sees the endpoint nor redelivers from it; a buyer may not ask.
    let (other, _) = shop
        .app
        .staff("other-webhooks@publisher.test", "Other", Role::Publisher)
        .await;
    let seen = log(&shop, &other, &endpoint).await;
    assert_eq!(error_code(&seen), "NOT_FOUND");
    let listed = shop
        .app
        .gql(Some(&other), "{ webhookEndpoints { id } }", json!({}))
        .await;
    assert_no_errors(&listed);
    assert_eq!(listed["data"]["webhookEndpoints"], json!([]));
    let delivery = logged["id"].as_str().expect("delivery id");
    let stolen = shop
        .app
        .gql(Some(&other), REDELIVER, json!({ "d": delivery }))
        .await;
    assert_eq!(error_code(&stolen), "NOT_FOUND");
    let changed = shop
        .app
        .gql(
            Some(&other),
            "mutation($id: UUID!) { updateWebhookEndpoint(id: $id, input: {enabled: false}) { id } }",
            json!({ "id": endpoint }),
        )
        .await;
    assert_eq!(error_code(&changed), "NOT_FOUND");
    let rotated = shop
        .app
        .gql(
            Some(&other),
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({ "id": endpoint }),
        )
        .await;
    assert_eq!(error_code(&rotated), "NOT_FOUND");
    let buyer = log(&shop, &shop.buyer, &endpoint).await;
    assert_eq!(error_code(&buyer), "FORBIDDEN");
    // The owner's endpoint is still enabled, and exactly one paid delivery was accepted.
    let mine = log(&shop, &shop.publisher, &endpoint).await;
    assert_eq!(mine["data"]["webhookEndpoint"]["enabled"], true);
    assert_eq!(
        rx.accepted("order.paid")
            .iter()
            .filter(|r| r.id == paid.id)
            .count(),
        1
    );
}

#[tokio::test]
async fn webhooks_retry_after_failures_and_redeliver_from_the_log() {
    // Setup: a receiver that answers 500 twice before it accepts.
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    let (endpoint, _) = register(&shop, &rx, &["ORDER_PAID"]).await;
    let (_, edition) = shop.product("Flaky", 900, false).await;
    shop.fund(5000, "fund-1").await;
    rx.fail_next(2);

    // Exercise: an order.
    let order = shop.completed(&[&edition], "order-1").await;

    // Check: one success after two failures, all three in the log, one accepted request.
    let delivered = logged(&shop, &endpoint, "ORDER_PAID", &order, "SUCCEEDED").await;
    let codes: Vec<Value> = delivered["attemptLog"]
        .as_array()
        .expect("attempt log")
        .iter()
        .map(|a| a["statusCode"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![json!(500), json!(500), json!(200)],
        "{delivered:#}"
    );
    assert_eq!(delivered["attempts"], 3);
    let webhook_id = delivered["webhookId"]
        .as_str()
        .expect("webhook id")
        .to_owned();
    let requests: Vec<Received> = rx
        .log()
        .into_iter()
        .filter(|r| r.id == webhook_id)
        .collect();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests.iter().filter(|r| r.status == 200).count(), 1);
    // Every retry carries the same body and id with a valid signature of its own.
    assert!(requests.iter().all(|r| r.body == requests[0].body));

    // Exercise: a redelivery from the log, once the clock is past the last timestamp.
    let last: i64 = requests[2].timestamp.parse().expect("unix seconds");
    wait_until("the next second", || async {
        (chrono::Utc::now().timestamp() > last).then_some(())
    })
    .await;
    let again = shop
        .app
        .gql(
            Some(&shop.publisher),
            REDELIVER,
            json!({ "d": delivered["id"] }),
        )
        .await;
    assert_no_errors(&again);
    assert_eq!(
        again["data"]["redeliverWebhook"]["webhookId"],
        webhook_id.as_str()
    );

    // Check: it arrives again with the same id, a fresh timestamp and signature, verified.
    let redelivered = wait_until("the redelivery", || async {
        rx.log()
            .into_iter()
            .filter(|r| r.id == webhook_id && r.status == 200)
            .nth(1)
    })
    .await;
    assert!(redelivered.timestamp.parse::<i64>().expect("seconds") > last);
    assert_ne!(redelivered.signature, requests[2].signature);
    assert_eq!(redelivered.body, requests[2].body);
    let after = wait_until("the log to show the redelivery", || async {
        let v = log(&shop, &shop.publisher, &endpoint).await;
        deliveries(&v).into_iter().find(|d| {
            d["id"] == delivered["id"]
                && d["status"] == "SUCCEEDED"
                && d["attemptLog"].as_array().is_some_and(|a| a.len() == 4)
        })
    })
    .await;
    assert_eq!(after["attempts"], 1);
}

#[tokio::test]
async fn webhooks_sign_with_both_secrets_during_a_rotation() {
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    let (endpoint, old) = register(&shop, &rx, &["ORDER_PAID"]).await;
    let (_, edition) = shop.product("Rotating", 700, false).await;
    let (_, second) = shop.product("Rotating Two", 800, false).await;
    shop.fund(5000, "fund-1").await;

    // Exercise: rotate, then an order.
    let v = shop
        .app
        .gql(
            Some(&shop.publisher),
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id) { secret endpoint { previousSecretExpiresAt } } }",
            json!({ "id": endpoint }),
        )
        .await;
    assert_no_errors(&v);
    let new = v["data"]["rotateWebhookSecret"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new, old);
    assert!(v["data"]["rotateWebhookSecret"]["endpoint"]["previousSecretExpiresAt"].is_string());
    // The publisher's server learns the new secret (and keeps the old one during the overlap).
    rx.trust(&new);
    let order = shop.completed(&[&edition], "order-1").await;

    // Check: two signatures, the new secret's first; each verifies with its own secret only.
    let paid = rx.wait_for("order.paid", |d| d["orderId"] == order).await;
    let sigs: Vec<&str> = paid.signature.split(' ').collect();
    assert_eq!(sigs.len(), 2, "{}", paid.signature);
    let new_key = signature::secret_bytes(&new).expect("new");
    let old_key = signature::secret_bytes(&old).expect("old");
    let ts: i64 = paid.timestamp.parse().expect("seconds");
    let check = |key: &[u8], sig: &str| {
        signature::verify(
            key,
            &paid.id,
            &paid.timestamp,
            sig,
            paid.body.as_bytes(),
            ts,
        )
    };
    assert_eq!(check(&new_key, sigs[0]), Ok(()));
    assert_eq!(check(&old_key, sigs[1]), Ok(()));
    assert_eq!(check(&new_key, sigs[1]), Err(VerifyError::NoMatch));
    assert_eq!(check(&old_key, sigs[0]), Err(VerifyError::NoMatch));
    // A receiver that already switched to the new secret alone accepts it as well.
    assert_eq!(check(&new_key, &paid.signature), Ok(()));

    // After the overlap only the new secret signs (the overlap ended by hand: the participant
    // reads the expiry from its table).
    shop.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE webhooks.endpoint SET previous_secret_expires_at = now() WHERE id = '{endpoint}'"
        ))
        .await
        .expect("end the overlap");
    let later = shop.completed(&[&second], "order-2").await;
    let paid = rx.wait_for("order.paid", |d| d["orderId"] == later).await;
    assert_eq!(paid.signature.split(' ').count(), 1);
}

#[tokio::test]
async fn webhooks_refuse_private_targets_unless_allowed() {
    // The api's defaults: no private targets, https only.
    let app = TestApp::spawn().await;
    let (publisher, _) = app
        .staff("hooks@publisher.test", "Hooks", Role::Publisher)
        .await;
    for url in [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://[::ffff:169.254.169.254]/latest/meta-data",
        "https://10.0.0.8/hook",
        "https://100.64.1.1/hook",
        "https://[fd00::1]/hook",
        "https://0x7f000001/hook",
        "http://hooks.example.com/hook",
        "https://user:pass@hooks.example.com/hook",
        "not a url",
    ] {
        let v = app
            .gql(
                Some(&publisher),
                CREATE,
                json!({ "i": { "url": url, "eventTypes": ["ORDER_PAID"] } }),
            )
            .await;
        assert_eq!(error_code(&v), "BAD_USER_INPUT", "{url}: {v:#}");
        assert_eq!(v["errors"][0]["extensions"]["field"], "url", "{url}");
    }
    let none = app
        .gql(
            Some(&publisher),
            CREATE,
            json!({ "i": { "url": "https://hooks.example.com/x", "eventTypes": [] } }),
        )
        .await;
    assert_eq!(error_code(&none), "BAD_USER_INPUT");
    assert_eq!(
        app.scalar("SELECT count(*)::bigint AS n FROM webhooks.endpoint")
            .await,
        0
    );

    // The participant checks again when it connects: a loopback endpoint (allowed when it was
    // registered) is not reached by a participant whose policy forbids it.
    let policy = domain::webhooks::target::TargetPolicy::default();
    let client = saga::webhooks::send::client(&saga::WebhookSettings {
        targets: policy,
        ..saga::WebhookSettings::default()
    })
    .expect("client");
    let rx = Receiver::start().await;
    let by_name = rx.url.replace("127.0.0.1", "localhost");
    let err = client.post(&by_name).send().await.expect_err("refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    assert!(rx.log().is_empty());
}

#[tokio::test]
async fn webhooks_disable_an_endpoint_that_keeps_failing_and_tell_its_owner() {
    let mut s = settings();
    s.webhooks.disable_after_failed_deliveries = 1;
    s.webhooks.schedule = vec![Duration::from_millis(10)];
    let shop = webhook_shop(s).await;
    let rx = Receiver::start().await;
    let (endpoint, _) = register(&shop, &rx, &["ORDER_PAID"]).await;
    let (_, edition) = shop.product("Broken", 500, false).await;
    shop.fund(5000, "fund-1").await;
    rx.fail_next(usize::MAX);

    let order = shop.completed(&[&edition], "order-1").await;

    let failed = logged(&shop, &endpoint, "ORDER_PAID", &order, "FAILED").await;
    assert_eq!(failed["attempts"], 2);
    let disabled = wait_until("the endpoint to be disabled", || async {
        let v = log(&shop, &shop.publisher, &endpoint).await;
        (v["data"]["webhookEndpoint"]["enabled"] == false).then_some(v)
    })
    .await;
    assert!(disabled["data"]["webhookEndpoint"]["disabledReason"].is_string());
    wait_until("the owner's notification", || async {
        let v = shop
            .app
            .gql(
                Some(&shop.publisher),
                "{ notifications(first: 20) { edges { node { kind body } } } }",
                json!({}),
            )
            .await;
        v["data"]["notifications"]["edges"]
            .as_array()
            .and_then(|e| {
                e.iter()
                    .find(|n| n["node"]["kind"] == "WEBHOOK_ENDPOINT_DISABLED")
                    .cloned()
            })
    })
    .await;
}

#[tokio::test]
async fn webhooks_two_replicas_send_each_delivery_once() {
    // Setup: the saga with its webhooks participant, plus a second replica of that participant
    // on its own runtime (its own worker loops), sharing the database.
    let shop = webhook_shop(settings()).await;
    let replica_rt = shop.app.saga_runtime(
        shop.app.state.db.clone(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        settings(),
    );
    let _replica = run_participants(&replica_rt, &[saga::Participant::Webhooks]).await;
    let rx = Receiver::start().await;
    register(&shop, &rx, &["ORDER_PAID"]).await;
    let mut editions = Vec::new();
    for i in 0..8 {
        editions.push(shop.product(&format!("Twice {i}"), 100, false).await.1);
    }
    shop.fund(5000, "fund-1").await;

    // Exercise: eight orders, each paid.
    let mut orders = Vec::new();
    for (i, e) in editions.iter().enumerate() {
        orders.push(shop.placed(&[e], &format!("order-{i}")).await);
    }

    // Check: each reached the receiver in exactly one request.
    wait_until("every order.paid", || async {
        let got = rx.accepted("order.paid");
        orders
            .iter()
            .all(|o| {
                got.iter()
                    .any(|r| r.json()["data"]["orderId"] == o.as_str())
            })
            .then_some(())
    })
    .await;
    let log = rx.log();
    let mut ids: Vec<&str> = log.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "a delivery was sent twice: {log:#?}");
    assert_eq!(ids.len(), orders.len());

    // The log pages through all of them, newest first, three at a time.
    let page = "query($id: UUID!, $after: String) { webhookEndpoint(id: $id) { deliveries(first: 3, after: $after) { edges { node { webhookId createdAt } } pageInfo { hasNextPage endCursor } } } }";
    let endpoint: String = shop
        .app
        .one("SELECT id::text AS id FROM webhooks.endpoint", "id")
        .await;
    let (mut seen, mut after, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let v = shop
            .app
            .gql(
                Some(&shop.publisher),
                page,
                json!({ "id": endpoint, "after": after }),
            )
            .await;
        assert_no_errors(&v);
        let d = &v["data"]["webhookEndpoint"]["deliveries"];
        for e in d["edges"].as_array().expect("edges") {
            seen.push(e["node"]["webhookId"].as_str().expect("id").to_owned());
        }
        pages += 1;
        if d["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = d["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), orders.len());
}

#[tokio::test]
async fn webhooks_tell_a_build_made_current() {
    // Setup: the store (participants and the api's outbox relay), an endpoint for build
    // events, a build whose file arrived.
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    let (endpoint, _) = register(&shop, &rx, &["BUILD_MADE_CURRENT"]).await;
    let (product, _) = shop.product("Patched", 500, false).await;
    let v = shop
        .app
        .gql(
            Some(&shop.publisher),
            "mutation($i: CreateBuildInput!) { createBuild(input: $i) { id } }",
            json!({ "i": { "productId": product, "platform": "windows", "versionLabel": "1.2.0",
                           "fileName": "patched.zip", "sizeBytes": 4 } }),
        )
        .await;
    assert_no_errors(&v);
    let build = v["data"]["createBuild"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Setup shortcut: the file arrived (as the upload would leave it).
    shop.app
        .state
        .db
        .execute_unprepared(&format!(
            "UPDATE catalog.build SET status = 'READY', sha256 = repeat('a', 64), uploaded_at = now() \
             WHERE id = '{build}'"
        ))
        .await
        .expect("ready");

    // Exercise: the publisher makes it current.
    let current = shop
        .app
        .gql(
            Some(&shop.publisher),
            "mutation($b: UUID!) { setCurrentBuild(buildId: $b) { isCurrent } }",
            json!({ "b": build }),
        )
        .await;
    assert_no_errors(&current);

    // Check: the event went through the catalog's outbox (one row, published by the relay)
    // and reached the publisher's server once, verified, and its delivery log.
    let got = rx
        .wait_for("build.made_current", |d| d["buildId"] == build.as_str())
        .await;
    let data = &got.json()["data"];
    assert_eq!(data["productId"], product.as_str());
    assert_eq!(data["platform"], "windows");
    assert_eq!(data["versionLabel"], "1.2.0");
    let logged = wait_until("the delivery in the log", || async {
        let v = log(&shop, &shop.publisher, &endpoint).await;
        assert_no_errors(&v);
        let done: Vec<Value> = deliveries(&v)
            .into_iter()
            .filter(|d| d["eventType"] == "BUILD_MADE_CURRENT" && d["status"] == "SUCCEEDED")
            .collect();
        (!done.is_empty()).then_some(done)
    })
    .await;
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["webhookId"], got.id.as_str());
    assert_eq!(rx.accepted("build.made_current").len(), 1);
    let rows = crate::saga::outbox(&shop.app, "catalog", None).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, "catalog.build_made_current");
    let published = shop
        .app
        .scalar("SELECT count(*)::bigint AS n FROM catalog.outbox WHERE published_at IS NOT NULL")
        .await;
    assert_eq!(published, 1);
}

#[tokio::test]
async fn webhooks_tell_a_refund_and_the_revoked_entitlements() {
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    register(
        &shop,
        &rx,
        &[
            "ORDER_REFUNDED",
            "ENTITLEMENT_GRANTED",
            "ENTITLEMENT_REVOKED",
        ],
    )
    .await;
    let (product, edition) = shop.product("Returned", 1200, false).await;
    shop.fund(5000, "fund-1").await;
    let order = shop.completed(&[&edition], "order-1").await;
    rx.wait_for("entitlement.granted", |d| d["orderId"] == order.as_str())
        .await;

    // A refund within the policy (not downloaded, just bought).
    let v = shop
        .app
        .gql(
            Some(&shop.buyer),
            crate::refunds::REQUEST,
            json!({ "o": order, "r": "changed my mind" }),
        )
        .await;
    assert_no_errors(&v);

    let refunded = rx
        .wait_for("order.refunded", |d| d["orderId"] == order.as_str())
        .await;
    assert_eq!(refunded.json()["data"]["amountMinor"], 1200);
    let revoked = rx
        .wait_for("entitlement.revoked", |d| d["orderId"] == order.as_str())
        .await;
    assert_eq!(
        revoked.json()["data"]["lines"][0]["productId"],
        product.as_str()
    );
}

#[tokio::test]
async fn webhooks_tell_a_shipment() {
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    register(&shop, &rx, &["ORDER_SHIPPED"]).await;
    let (_, edition) = shop.product("Boxed", 2500, true).await;
    shop.stock(&edition, 5).await;
    shop.fund(5000, "fund-1").await;
    let placed = shop
        .place_shipped(
            &shop.buyer,
            &[(&edition, 1)],
            Some(crate::saga::address()),
            "order-1",
        )
        .await;
    let order = crate::saga::order_id(&placed);
    shop.reaches(&shop.buyer, &order, &["AWAITING_SHIPMENT"])
        .await;

    let v = shop
        .app
        .gql(
            Some(&shop.publisher),
            "mutation($o: UUID!, $c: String!, $t: String!) { shipOrder(orderId: $o, carrier: $c, trackingNumber: $t) { id } }",
            json!({ "o": order, "c": "DHL", "t": "JJD000390007" }),
        )
        .await;
    assert_no_errors(&v);

    let shipped = rx
        .wait_for("order.shipped", |d| d["orderId"] == order.as_str())
        .await;
    let data = &shipped.json()["data"];
    assert_eq!(data["carrier"], "DHL");
    assert_eq!(data["trackingNumber"], "JJD000390007");
    assert_eq!(data["lines"][0]["editionId"], edition.as_str());
    assert_eq!(data["lines"][0]["quantity"], 1);
}

#[tokio::test]
async fn webhooks_survive_a_crash_in_the_middle_of_a_delivery() {
    // Setup: a receiver that holds the first request: the participant is sending when it dies.
    let mut shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    let (endpoint, _) = register(&shop, &rx, &["ORDER_PAID"]).await;
    let (_, edition) = shop.product("Crashing", 300, false).await;
    shop.fund(5000, "fund-1").await;
    rx.hold_next();
    let order = shop.completed(&[&edition], "order-1").await;
    let held = wait_until("the request in flight", || async {
        rx.log().into_iter().find(|r| r.status == 0)
    })
    .await;

    // Exercise: the participants die mid-request (their claim rolls back), then come back.
    shop.stop_saga();
    rx.release();
    shop.start_saga(settings()).await;

    // Check: the delivery is not lost: sent again with the same webhook-id and recorded once,
    // with the one attempt that got an answer.
    let done = logged(&shop, &endpoint, "ORDER_PAID", &order, "SUCCEEDED").await;
    assert_eq!(done["webhookId"], held.id.as_str());
    assert_eq!(done["attempts"], 1, "{done:#}");
    assert_eq!(done["attemptLog"].as_array().map(Vec::len), Some(1));
    let accepted: Vec<Received> = rx
        .accepted("order.paid")
        .into_iter()
        .filter(|r| r.id == held.id)
        .collect();
    assert_eq!(accepted.len(), 1);
}

#[tokio::test]
async fn webhooks_api_clients_need_the_webhooks_scopes() {
    // Setup: three API clients of the shop's publisher: one for sales only, one that may
    // manage webhook endpoints, one that may read them.
    let shop = webhook_shop(settings()).await;
    let rx = Receiver::start().await;
    let (sales, sales_secret) = create_client(&shop.app, &shop.publisher, &["SALES_READ"]).await;
    let (writer, writer_secret) =
        create_client(&shop.app, &shop.publisher, &["WEBHOOKS_WRITE"]).await;
    let (reader, reader_secret) =
        create_client(&shop.app, &shop.publisher, &["WEBHOOKS_READ"]).await;
    let sales = client_token(&shop.app, &sales, &sales_secret, None).await;
    let writer = client_token(&shop.app, &writer, &writer_secret, None).await;
    let reader = client_token(&shop.app, &reader, &reader_secret, None).await;
    let input = json!({ "i": { "url": rx.url, "description": "from my server", "eventTypes": ["ORDER_PAID"] } });
    let list = "{ webhookEndpoints { id url description } }";

    // Exercise
    let by_sales = shop.app.gql(Some(&sales), CREATE, input.clone()).await;
    let listed_by_sales = shop.app.gql(Some(&sales), list, json!({})).await;
    let endpoints_after_refusal = shop
        .app
        .scalar("SELECT count(*) AS n FROM webhooks.endpoint")
        .await;
    let by_writer = shop.app.gql(Some(&writer), CREATE, input).await;
    let listed_by_writer = shop.app.gql(Some(&writer), list, json!({})).await;
    let listed_by_reader = shop.app.gql(Some(&reader), list, json!({})).await;
    let deleted_by_reader = shop
        .app
        .gql(
            Some(&reader),
            "mutation($id: UUID!) { deleteWebhookEndpoint(id: $id) }",
            json!({ "id": by_writer["data"]["createWebhookEndpoint"]["endpoint"]["id"] }),
        )
        .await;
    let listed_by_publisher = shop.app.gql(Some(&shop.publisher), list, json!({})).await;

    // Check: a client without the scopes is refused before anything runs; with
    // `webhooks:write` it registers an endpoint of its publisher (and gets the secret), which
    // `webhooks:read` lists and cannot delete.
    assert_eq!(error_code(&by_sales), "FORBIDDEN", "{by_sales}");
    assert!(
        by_sales["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("webhooks:write")),
        "{by_sales}"
    );
    assert_eq!(error_code(&listed_by_sales), "FORBIDDEN");
    assert_eq!(endpoints_after_refusal, 0);
    assert_no_errors(&by_writer);
    let created = &by_writer["data"]["createWebhookEndpoint"];
    assert!(
        created["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{by_writer}"
    );
    assert_eq!(created["endpoint"]["url"], rx.url.as_str());
    assert_eq!(
        error_code(&listed_by_writer),
        "FORBIDDEN",
        "reading needs webhooks:read"
    );
    assert_no_errors(&listed_by_reader);
    assert_eq!(
        listed_by_reader["data"]["webhookEndpoints"][0]["id"],
        created["endpoint"]["id"]
    );
    assert_eq!(error_code(&deleted_by_reader), "FORBIDDEN");
    assert_no_errors(&listed_by_publisher);
    assert_eq!(
        listed_by_publisher["data"]["webhookEndpoints"],
        listed_by_reader["data"]["webhookEndpoints"],
        "the client's endpoint is its publisher's"
    );
}

/// Inserts a delivery of `endpoint` as the participant records one: `created_days` and
/// `last_attempt_days` ago (no attempt: `None`), with `attempts` rows in its log.
async fn old_delivery(
    app: &TestApp,
    endpoint: uuid::Uuid,
    status: &str,
    created_days: i64,
    last_attempt_days: Option<i64>,
    attempts: usize,
) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    let next = if status == "PENDING" {
        "now() + interval '1 hour'"
    } else {
        "NULL"
    };
    let last = last_attempt_days.map_or("NULL".to_owned(), |d| {
        format!("now() - interval '{d} days'")
    });
    let sql = format!(
        "INSERT INTO webhooks.delivery (id, endpoint_id, event_id, event_type, body, status, attempts, next_attempt_at, last_attempt_at, created_at) \
         VALUES ('{id}', '{endpoint}', '{event}', 'order.paid', '{{\"type\":\"order.paid\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",\"data\":{{}}}}', '{status}', {attempts}, {next}, {last}, now() - interval '{created_days} days')",
        event = uuid::Uuid::now_v7(),
    );
    app.state
        .db
        .execute_unprepared(&sql)
        .await
        .expect("a delivery");
    for _ in 0..attempts {
        app.state
            .db
            .execute_unprepared(&format!(
                "INSERT INTO webhooks.attempt (id, delivery_id, attempted_at, succeeded, status_code, latency_ms) \
                 VALUES ('{}', '{id}', now() - interval '{} days', {}, 200, 5)",
                uuid::Uuid::now_v7(),
                last_attempt_days.unwrap_or(created_days),
                status == "SUCCEEDED",
            ))
            .await
            .expect("an attempt");
    }
    id
}

#[tokio::test]
async fn webhooks_prune_finished_deliveries_past_the_retention_and_keep_those_retrying() {
    // Setup: a publisher's endpoint and its log, 30 days kept: four finished deliveries past
    // it (succeeded, failed, failed without an attempt when its endpoint went), and three to
    // keep: one as old but still retrying, one as old but redelivered yesterday, a recent one.
    let app = TestApp::spawn().await;
    let (publisher, publisher_id) = app
        .staff("hooks@publisher.test", "Hooks", Role::Publisher)
        .await;
    let endpoint = uuid::Uuid::now_v7();
    app.state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO webhooks.endpoint (id, publisher_id, url, event_types, secret) \
             VALUES ('{endpoint}', '{publisher_id}', 'https://hooks.example.com/store', '{{order.paid}}', 'whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0')"
        ))
        .await
        .expect("an endpoint");
    let mut gone = Vec::new();
    gone.push(old_delivery(&app, endpoint, "SUCCEEDED", 40, Some(40), 1).await);
    gone.push(old_delivery(&app, endpoint, "FAILED", 45, Some(33), 3).await);
    gone.push(old_delivery(&app, endpoint, "FAILED", 50, None, 0).await);
    gone.push(old_delivery(&app, endpoint, "SUCCEEDED", 31, Some(31), 2).await);
    let retrying = old_delivery(&app, endpoint, "PENDING", 60, Some(59), 4).await;
    let redelivered = old_delivery(&app, endpoint, "SUCCEEDED", 40, Some(1), 2).await;
    let recent = old_delivery(&app, endpoint, "SUCCEEDED", 2, Some(2), 1).await;
    let mut settings = settings();
    settings.webhooks.delivery_retention = Duration::from_secs(30 * 86_400);
    let rt = app.saga_runtime(
        app.state.db.clone(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        settings,
    );
    let retention = rt.settings.webhooks.delivery_retention;

    // Exercise: one batch of two, then the rest batch after batch, then once more.
    let first = saga::webhooks::prune::prune_batch(&rt, retention, 2)
        .await
        .expect("a batch");
    let left_after_first = app
        .scalar("SELECT count(*) AS n FROM webhooks.delivery")
        .await;
    let rest = saga::webhooks::prune::prune(&rt, retention, 2)
        .await
        .expect("prune");
    let again = saga::webhooks::prune::prune(&rt, retention, 2)
        .await
        .expect("prune");

    // Check: what is left, in the database and in the log its publisher reads.
    assert_eq!((first, left_after_first), (2, 5), "a batch is bounded");
    assert_eq!((rest, again), (2, 0));
    let kept = |sql: &'static str| {
        let app = &app;
        async move {
            let ids: String = app.one(sql, "ids").await;
            let mut ids: Vec<String> = ids.split(',').map(str::to_owned).collect();
            ids.sort();
            ids
        }
    };
    let mut expected: Vec<String> = [retrying, redelivered, recent]
        .iter()
        .map(ToString::to_string)
        .collect();
    expected.sort();
    assert_eq!(
        kept("SELECT string_agg(id::text, ',') AS ids FROM webhooks.delivery").await,
        expected
    );
    assert_eq!(
        kept("SELECT string_agg(DISTINCT delivery_id::text, ',') AS ids FROM webhooks.attempt")
            .await,
        expected,
        "the attempts of pruned deliveries went with them"
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS n FROM webhooks.attempt")
            .await,
        4 + 2 + 1,
        "the kept deliveries keep every attempt"
    );
    let seen = app
        .gql(Some(&publisher), LOG, json!({ "id": endpoint }))
        .await;
    assert_no_errors(&seen);
    let mut listed: Vec<String> = deliveries(&seen)
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, expected);
    assert!(gone.iter().all(|g| !listed.contains(&g.to_string())));
}

#[tokio::test]
async fn webhooks_an_idle_worker_waits_for_the_next_due_delivery() {
    // Setup: a store with no webhook delivery at all.
    let app = TestApp::spawn().await;
    let rt = app.saga_runtime(
        app.state.db.clone(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        settings(),
    );

    // Exercise: when is the next delivery due?
    let next = saga::webhooks::send::next_due_in(&rt)
        .await
        .expect("the next due delivery");

    // Check: none is, so the worker sleeps until woken (this read "due now" once, and the
    // idle worker looked at the database again at once, for ever).
    assert_eq!(next, None);
}
