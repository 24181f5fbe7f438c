//! Messages that outlive their failures (issue 14): a message waits out PostgreSQL being
//! unreachable for as many deliveries as that takes; a deleted consumer comes back by itself
//! while the participant says it is not ready; a new consumer of events does not replay the
//! past; a retried stock change applies once; a frozen wallet's card is not charged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::*;
use crate::saga::{CARD_OK, WALLET, quiesce, shop};

const TOP_UP: &str = "mutation($a: Int!, $m: String!, $k: String!) { topUpWallet(amount: $a, paymentMethod: $m, idempotencyKey: $k) { id status } }";
const TOP_UP_STATUS: &str = "query($id: UUID!) { topUp(id: $id) { status reason } }";

/// A TCP proxy in front of PostgreSQL that the test can cut: every connection through it is
/// dropped and new ones are closed at once, as a participant sees a database that went away.
struct Cuttable {
    addr: SocketAddr,
    up: watch::Sender<bool>,
}

impl Cuttable {
    async fn to(target: SocketAddr) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (up, rx) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*rx.borrow() {
                    continue;
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Cuttable { addr, up }
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// A connection to the test's database through `proxy`, failing fast while it is cut.
fn through(app: &TestApp, proxy: &Cuttable) -> DatabaseConnection {
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let options: PgConnectOptions = app
        .database_url()
        .parse::<PgConnectOptions>()
        .expect("database url")
        .host(&proxy.addr.ip().to_string())
        .port(proxy.addr.port());
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(options);
    sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
}

/// The PostgreSQL server of the tests (host and port of `DATABASE_URL`).
fn postgres_addr(app: &TestApp) -> SocketAddr {
    use sea_orm::sqlx::postgres::PgConnectOptions;
    let options: PgConnectOptions = app.database_url().parse().expect("database url");
    let host = match options.get_host() {
        "localhost" => "127.0.0.1",
        h => h,
    };
    format!("{host}:{}", options.get_port())
        .parse()
        .expect("PostgreSQL on an IP address")
}

fn runtime(app: &TestApp, db: DatabaseConnection, settings: saga::Settings) -> saga::Runtime {
    app.saga_runtime(
        db,
        Arc::new(saga::infra::provider::Sandbox::default()),
        settings,
    )
}

async fn buyer(app: &TestApp) -> String {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    app.sign_up(&format!("buyer-{tag}@user.test"), "Buyer")
        .await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn balance(app: &TestApp, token: &str) -> i64 {
    let v = app.gql(Some(token), WALLET, json!({})).await;
    assert_no_errors(&v);
    v["data"]["wallet"]["balance"]["amountMinor"]
        .as_i64()
        .expect("balance")
}

async fn dead_letters(app: &TestApp, participant: &str) -> i64 {
    app.scalar(&format!(
        "SELECT count(*)::bigint AS n FROM {participant}.dead_letter"
    ))
    .await
}

/// Deliveries the consumer has made so far (first deliveries and redeliveries).
async fn deliveries(app: &TestApp, stream: &str, consumer: &str) -> u64 {
    let stream = app
        .state
        .bus
        .jetstream()
        .get_stream(app.state.bus.stream_name(stream))
        .await
        .expect("stream");
    stream
        .consumer_info(consumer)
        .await
        .map_or(0, |i| i.delivered.consumer_sequence)
}

/// Billing loses PostgreSQL while a top-up is waiting: the command is delivered again and
/// again, far past `max_deliver`, without reaching the dead letters (it could not be stored
/// there anyway) or being dropped; once PostgreSQL is back the wallet is credited, once.
#[tokio::test]
async fn a_top_up_waits_out_postgresql_being_unreachable_however_many_deliveries_it_takes() {
    let app = TestApp::spawn().await;
    let proxy = Cuttable::to(postgres_addr(&app)).await;
    let rt = runtime(
        &app,
        through(&app, &proxy),
        saga::Settings {
            max_deliver: 2,
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_millis(200),
            ack_wait: Duration::from_secs(2),
            ..saga_settings()
        },
    );
    let _billing = run_participants(&rt, &[saga::Participant::Billing]).await;
    let token = buyer(&app).await;

    proxy.cut();
    let asked = app
        .gql(
            Some(&token),
            TOP_UP,
            json!({ "a": 2500, "m": CARD_OK, "k": "while-pg-is-away" }),
        )
        .await;
    assert_no_errors(&asked);
    let id = asked["data"]["topUpWallet"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Three times the deliveries a failing message is allowed.
    wait_until("six deliveries of the top-up", || async {
        (deliveries(&app, "CMD", "billing-cmd_billing").await >= 6).then_some(())
    })
    .await;
    // Still pending: billing has not recorded it, the wallet holds nothing.
    let pending = app
        .gql(Some(&token), TOP_UP_STATUS, json!({ "id": id }))
        .await;
    assert_eq!(error_code(&pending), "NOT_FOUND", "{pending}");
    assert_eq!(balance(&app, &token).await, 0);

    proxy.restore();
    let done = wait_until("the top-up to be credited", || async {
        let v = app
            .gql(Some(&token), TOP_UP_STATUS, json!({ "id": id }))
            .await;
        v["data"]["topUp"]["status"].is_string().then_some(v)
    })
    .await;
    assert_eq!(done["data"]["topUp"]["status"], "CREDITED", "{done}");
    wait_until("the balance", || async {
        (balance(&app, &token).await == 2500).then_some(())
    })
    .await;
    assert_eq!(dead_letters(&app, "billing").await, 0);
    assert_eq!(
        app.scalar("SELECT count(*)::bigint AS n FROM billing.ledger_entry WHERE kind = 'credit'")
            .await,
        1
    );
}

async fn readyz(addr: SocketAddr) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.expect("connect health");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: health\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The command stream (and with it every consumer on it) disappears under running
/// participants: `/readyz` answers 503 naming the missing consumers while they cannot be
/// created, and once the stream is back they are created again by themselves and a top-up
/// made then is credited, with no restart.
#[tokio::test]
async fn a_lost_consumer_is_created_again_and_the_participant_is_not_ready_meanwhile() {
    let app = TestApp::spawn().await;
    let rt = runtime(&app, app.state.db.clone(), saga_settings());
    let _billing = run_participants(&rt, &[saga::Participant::Billing]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let health = listener.local_addr().expect("address");
    let nats = app.state.bus.jetstream().client();
    let router = saga::infra::health::router(&rt, &[saga::Participant::Billing], nats);
    tokio::spawn(async move { axum::serve(listener, router).await });
    let token = buyer(&app).await;
    assert_eq!(readyz(health).await.0, 200);

    app.state
        .bus
        .jetstream()
        .delete_stream(app.state.bus.stream_name("CMD"))
        .await
        .expect("delete the command stream");
    let (status, body) = wait_until("readiness to drop", || async {
        let (status, body) = readyz(health).await;
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["consumers"], "missing", "{body}");
    let missing = body["missingConsumers"].to_string();
    assert!(missing.contains("billing-cmd_billing"), "{body}");

    rt.ensure_streams().await.expect("streams back");
    wait_until("readiness to come back", || async {
        (readyz(health).await.0 == 200).then_some(())
    })
    .await;
    let asked = app
        .gql(
            Some(&token),
            TOP_UP,
            json!({ "a": 1500, "m": CARD_OK, "k": "after-the-loss" }),
        )
        .await;
    assert_no_errors(&asked);
    wait_until("the top-up through the new consumer", || async {
        (balance(&app, &token).await == 1500).then_some(())
    })
    .await;
}

/// A consumer of events created now starts `new_consumer_backlog` back, not at the first event
/// of the stream: an event older than that is not handled, one published after is.
#[tokio::test]
async fn a_new_consumer_of_events_does_not_replay_the_past() {
    let app = TestApp::spawn().await;
    let account = uuid::Uuid::now_v7();
    let credited = |top_up: uuid::Uuid, amount: i64| {
        let ev = domain::billing::WalletCredited {
            top_up_id: top_up,
            account_id: account,
            amount_minor: amount,
            currency: app.state.config.currency,
            balance_minor: amount,
        };
        domain::messaging::Envelope::new(ev, top_up, Some(account))
    };
    let old = credited(uuid::Uuid::now_v7(), 100);
    app.state.bus.publish(&old).await.expect("publish");
    let rt = runtime(
        &app,
        app.state.db.clone(),
        saga::Settings {
            new_consumer_backlog: Duration::ZERO,
            ..saga_settings()
        },
    );
    let _notification = run_participants(&rt, &[saga::Participant::Notification]).await;
    let new = credited(uuid::Uuid::now_v7(), 200);
    app.state.bus.publish(&new).await.expect("publish");
    let inbox = |id: uuid::Uuid| {
        format!("SELECT count(*)::bigint AS n FROM notification.inbox WHERE message_id = '{id}'")
    };
    wait_until("the new event", || async {
        (app.scalar(&inbox(new.id)).await == 1).then_some(())
    })
    .await;
    assert_eq!(
        app.scalar(&inbox(old.id)).await,
        0,
        "the old event was replayed"
    );
}

const SET_STOCK: &str = "mutation($e: UUID!, $m: StockMode!, $q: Int!, $k: String) { setStock(editionId: $e, mode: $m, quantity: $q, idempotencyKey: $k) { commandId } }";

/// A publisher's `ADD 5` sent three times with one key (two of them at the same instant, as
/// a client retrying after a lost answer does) adds 5 once and answers one command; the key
/// with another change is a `CONFLICT`; without a key every call is a change of its own.
#[tokio::test]
async fn a_retried_stock_change_with_one_key_applies_once() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (_, edition) = shop.product("Boxed Retry", 2000, true).await;
    let on_hand = || async {
        app.scalar(&format!(
            "SELECT coalesce((SELECT on_hand FROM fulfillment.inventory WHERE edition_id = '{edition}'), -1)::bigint AS n"
        ))
        .await
    };
    let call = |mode: &'static str, q: i64, key: Option<&'static str>| {
        app.gql(
            Some(&shop.publisher),
            SET_STOCK,
            json!({ "e": edition, "m": mode, "q": q, "k": key }),
        )
    };
    let first = call("SET", 10, Some("stock-set-1")).await;
    assert_no_errors(&first);
    wait_until("the stock", || async {
        (on_hand().await == 10).then_some(())
    })
    .await;

    let (a, b) = tokio::join!(
        call("ADD", 5, Some("stock-add-1")),
        call("ADD", 5, Some("stock-add-1"))
    );
    let c = call("ADD", 5, Some("stock-add-1")).await;
    for v in [&a, &b, &c] {
        assert_no_errors(v);
    }
    let id = &a["data"]["setStock"]["commandId"];
    assert_eq!(&b["data"]["setStock"]["commandId"], id);
    assert_eq!(&c["data"]["setStock"]["commandId"], id);
    let other = call("ADD", 7, Some("stock-add-1")).await;
    assert_eq!(error_code(&other), "CONFLICT", "{other}");

    // A marker change without a key, then everything has been applied.
    let marker = call("ADD", 1, None).await;
    assert_no_errors(&marker);
    let unkeyed = call("ADD", 1, None).await;
    assert_no_errors(&unkeyed);
    assert_ne!(
        marker["data"]["setStock"]["commandId"],
        unkeyed["data"]["setStock"]["commandId"]
    );
    wait_until("the changes", || async {
        (on_hand().await == 17).then_some(())
    })
    .await;
    quiesce().await;
    assert_eq!(on_hand().await, 17, "10 + 5 once + 1 + 1");
}

/// A top-up into a frozen wallet is declined at once with `WALLET_FROZEN`: the card is not
/// charged, the balance stays, the buyer is told, and nothing is retried or dead-lettered.
#[tokio::test]
async fn a_top_up_into_a_frozen_wallet_is_declined_without_charging_the_card() {
    let app = TestApp::spawn().await;
    let sandbox = Arc::new(saga::infra::provider::Sandbox::default());
    let rt = app.saga_runtime(app.state.db.clone(), sandbox.clone(), saga_settings());
    let _saga = run_participants(&rt, &saga::Participant::ALL).await;
    let token = buyer(&app).await;
    let first = app
        .gql(
            Some(&token),
            TOP_UP,
            json!({ "a": 1000, "m": CARD_OK, "k": "before-the-freeze" }),
        )
        .await;
    assert_no_errors(&first);
    wait_until("the first top-up", || async {
        (balance(&app, &token).await == 1000).then_some(())
    })
    .await;
    app.state
        .db
        .execute_unprepared("UPDATE billing.wallet SET frozen = true")
        .await
        .expect("freeze");

    let asked = app
        .gql(
            Some(&token),
            TOP_UP,
            json!({ "a": 5000, "m": CARD_OK, "k": "into-the-freeze" }),
        )
        .await;
    assert_no_errors(&asked);
    let id: uuid::Uuid = asked["data"]["topUpWallet"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let done = wait_until("the decision", || async {
        let v = app
            .gql(Some(&token), TOP_UP_STATUS, json!({ "id": id }))
            .await;
        v["data"]["topUp"]["status"].is_string().then_some(v)
    })
    .await;
    assert_eq!(done["data"]["topUp"]["status"], "DECLINED", "{done}");
    assert_eq!(done["data"]["topUp"]["reason"], "WALLET_FROZEN", "{done}");
    assert_eq!(sandbox.attempts(id), 0, "the card was charged");
    assert_eq!(balance(&app, &token).await, 1000);
    let told = wait_until("the notification", || async {
        let v = app
            .gql(
                Some(&token),
                "{ notifications(first: 5) { edges { node { title body } } } }",
                json!({}),
            )
            .await;
        let text = v["data"]["notifications"].to_string();
        text.contains("frozen").then_some(text)
    })
    .await;
    assert!(told.contains("your card was not charged"), "{told}");
    quiesce().await;
    assert_eq!(dead_letters(&app, "billing").await, 0);
    assert_eq!(sandbox.attempts(id), 0);
}
