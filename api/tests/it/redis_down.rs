//! Redis down (issue 22): a store whose Redis dies keeps serving, degraded, and repairs Redis's
//! derived state when it comes back. The test runs a redis-server of its own on a free port (the
//! machine's Redis is never touched), the api and every participant against it, kills it, and
//! checks what a user sees: the catalog, a digital order paid from a funded wallet and landing in
//! the library, the balance read from PostgreSQL, sign-in refused with `RATE_LIMITED`, a ban
//! holding, `/readyz` degraded (api and participants); then restarts it on the same port and
//! checks the balance rebuilt in Redis, the ban's session cut made, and everything `ok` again.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use fred::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::saga::{LIBRARY, NOTIFICATIONS, shop_with};

/// A redis-server of this test's own, without persistence; killed when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port; returns once it accepts connections.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server (Debian package redis-server)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on port {} did not start",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` over plain HTTP/1.0: the status and the JSON body.
async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, Value)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.ok()?;
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let body = raw.split("\r\n\r\n").nth(1)?;
    Some((status, serde_json::from_str(body).ok()?))
}

const PRODUCTS: &str = "{ products(first: 20) { edges { node { title } } } }";
const BALANCE: &str = "{ wallet { balance { amountMinor } } }";

#[tokio::test]
async fn without_redis_the_store_serves_degraded_and_rebuilds_when_it_returns() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let shop = shop_with(saga_settings(), |c| c.services.redis_url = url).await;
    let app = &shop.app;
    let saga_health = {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let rt = shop
            .saga
            .as_ref()
            .expect("the shop runs the saga")
            .rt
            .clone();
        tokio::spawn(saga::infra::health::serve(
            addr,
            rt,
            saga::Participant::ALL.to_vec(),
            app.state.nats.clone(),
        ));
        addr
    };
    let api_ready = || async {
        let (status, _, body) = app
            .send(Request::get("/readyz").body(Body::empty()).expect("req"))
            .await;
        (status.as_u16(), body)
    };
    let (_, edition) = shop.product("Lantern Keeper", 1_500, false).await;
    let me = app.gql(Some(&shop.buyer), ME, json!({})).await;
    let account = me["data"]["me"]["id"].as_str().expect("id").to_owned();
    let email = me["data"]["me"]["email"]
        .as_str()
        .expect("email")
        .to_owned();
    shop.fund(5_000, "fund-before").await;
    let admin = app.admin_token().await;
    let banned = app.sign_up("banned-while-down@user.test", "Banned").await;
    let banned_token = banned["accessToken"].as_str().expect("token").to_owned();
    let banned_id = banned["account"]["id"].as_str().expect("id").to_owned();
    let ledger = format!(
        "SELECT coalesce(sum(amount_minor), 0)::bigint AS n FROM billing.ledger_entry WHERE account_id = '{account}'"
    );

    // Redis dies under the running api and participants.
    redis.kill();
    let degraded =
        json!({ "status": "degraded", "postgres": "ok", "redis": "unavailable", "nats": "ok" });
    wait_until("the api's /readyz to say degraded", || async {
        (api_ready().await == (200, degraded.clone())).then_some(())
    })
    .await;
    // The participants' answer also names their consumers.
    let mut saga_degraded = degraded.clone();
    saga_degraded["consumers"] = json!("ok");
    saga_degraded["missingConsumers"] = json!([]);
    wait_until("the participants' /readyz to say degraded", || async {
        (http_get(saga_health, "/readyz").await == Some((200, saga_degraded.clone()))).then_some(())
    })
    .await;

    let catalog = app.gql(None, PRODUCTS, json!({})).await;
    assert_no_errors(&catalog);
    assert!(catalog.to_string().contains("Lantern Keeper"), "{catalog}");

    let order = shop.placed(&[&edition], "order-while-down").await;
    let replayed = shop
        .place(&shop.buyer, &[&edition], "order-while-down")
        .await;
    assert_no_errors(&replayed);
    let settled = shop.settled(&shop.buyer, &order).await;
    let library = app.gql(Some(&shop.buyer), LIBRARY, json!({})).await;
    let balance = app.gql(Some(&shop.buyer), BALANCE, json!({})).await;
    let unread_in_table = format!(
        "SELECT count(*)::bigint AS n FROM notification.notification WHERE account_id = '{account}' AND read_at IS NULL"
    );
    let unread = wait_until("the unread count of the order's notification", || async {
        let v = app.gql(Some(&shop.buyer), NOTIFICATIONS, json!({})).await;
        let n = v["data"]["unreadNotificationCount"].as_i64()?;
        (n > 0 && n == app.scalar(&unread_in_table).await).then_some(n)
    })
    .await;
    let sign_in = app.sign_in(&email, PASSWORD).await;
    let ban = app
        .gql(
            Some(&admin),
            "mutation($id: UUID!) { setAccountStatus(accountId: $id, status: BANNED) { status } }",
            json!({ "id": banned_id }),
        )
        .await;
    let banned_me = app.gql(Some(&banned_token), ME, json!({})).await;
    let orders_of_key = app
        .scalar(
            "SELECT count(*)::bigint AS n FROM ordering.\"order\" WHERE idempotency_key = 'order-while-down'",
        )
        .await;

    assert_eq!(settled["status"], "COMPLETED", "{settled}");
    assert_eq!(replayed["data"]["placeOrder"]["id"], order.as_str());
    assert_eq!(orders_of_key, 1);
    assert!(library.to_string().contains("Lantern Keeper"), "{library}");
    assert_no_errors(&balance);
    assert_eq!(balance["data"]["wallet"]["balance"]["amountMinor"], 3_500);
    assert_eq!(app.scalar(&ledger).await, 3_500);
    assert!(unread > 0);
    assert_no_errors(&ban);
    assert_eq!(
        error_code(&banned_me),
        "UNAUTHENTICATED",
        "a ban holds without Redis"
    );
    assert_eq!(error_code(&sign_in), "RATE_LIMITED");
    assert_eq!(sign_in["errors"][0]["extensions"]["retryAfterSeconds"], 5);
    let message = sign_in["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("temporarily unavailable"), "{message}");

    // Redis comes back, empty, on the same port.
    redis.restart();
    wait_until("the api's /readyz to say ok", || async {
        let ok = json!({ "status": "ok", "postgres": "ok", "redis": "ok", "nats": "ok" });
        (api_ready().await == (200, ok)).then_some(())
    })
    .await;
    let check = api::infra::redis::connect_now(&redis.url())
        .await
        .expect("the test's redis");
    let cached: Option<String> = check
        .get(domain::keys::balance(
            &app.namespace,
            account.parse().expect("uuid"),
        ))
        .await
        .expect("GET balance");
    let balance_after = app.gql(Some(&shop.buyer), BALANCE, json!({})).await;
    let sign_in_after = app.sign_in(&email, PASSWORD).await;
    let banned_me_after = app.gql(Some(&banned_token), ME, json!({})).await;
    let _ = check.quit().await;

    let cached = cached.as_deref().and_then(domain::keys::parse_balance);
    assert_eq!(cached.map(|(minor, _)| minor), Some(3_500), "{cached:?}");
    assert_eq!(
        balance_after["data"]["wallet"]["balance"]["amountMinor"],
        app.scalar(&ledger).await
    );
    assert_no_errors(&sign_in_after);
    assert_eq!(
        error_code(&banned_me_after),
        "UNAUTHENTICATED",
        "the ban's session cut, made when Redis came back"
    );
    assert_eq!(
        http_get(saga_health, "/readyz")
            .await
            .map(|(s, b)| (s, b["status"].clone())),
        Some((200, json!("ok")))
    );
}

/// An api started while Redis is down starts degraded (it does not wait for Redis nor fail), and
/// becomes `ok` once a Redis answers on its address.
#[tokio::test]
async fn the_api_starts_without_redis_and_comes_up_when_redis_does() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn_with(|c| c.services.redis_url = url).await;
    let ready = || async {
        let (status, _, body) = app
            .send(Request::get("/readyz").body(Body::empty()).expect("req"))
            .await;
        (status.as_u16(), body["status"].clone())
    };

    let at_start = ready().await;
    let catalog = app.gql(None, PRODUCTS, json!({})).await;
    let mut redis = OwnRedis { port, child: None };
    redis.restart();
    wait_until("the api's /readyz to say ok", || async {
        (ready().await == (200, json!("ok"))).then_some(())
    })
    .await;

    assert_eq!(at_start, (200, json!("degraded")));
    assert_no_errors(&catalog);
}

/// A command to a Redis that does not answer fails within the command timeout (500 ms), both
/// when the pool never connected and when its Redis died under it, instead of waiting for a
/// reconnection.
#[tokio::test]
async fn a_dead_redis_costs_a_command_at_most_half_a_second() {
    let mut redis = OwnRedis::start();
    let never = api::infra::redis::connect(&format!("redis://127.0.0.1:{}", free_port()))
        .await
        .expect("a pool");
    let died = api::infra::redis::connect_now(&redis.url())
        .await
        .expect("a pool");
    redis.kill();
    let timed = |pool: Pool| async move {
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            pool.get::<Option<String>, _>("redis-down:probe"),
        )
        .await;
        (answer.map(|r| r.is_err()), started.elapsed())
    };

    let (never_failed, never_took) = timed(never).await;
    let (died_failed, died_took) = timed(died).await;

    assert_eq!(never_failed, Ok(true), "took {never_took:?}");
    assert_eq!(died_failed, Ok(true), "took {died_took:?}");
    assert!(never_took < Duration::from_millis(900), "{never_took:?}");
    assert!(died_took < Duration::from_millis(900), "{died_took:?}");
}
