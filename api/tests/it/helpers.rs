//! `TestApp::spawn()`: an api wired to its own database and Redis namespace.

pub mod gateway;
pub mod sdl;
pub mod target;
pub mod ws;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use api::AppState;
use api::infra::config::{Config, Rate};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use fred::prelude::*;
use http_body_util::BodyExt;
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tower::ServiceExt;

pub const GATEWAY_SECRET: &str = "test-gateway-secret-0123456789";
pub const PASSWORD: &str = "correct horse battery";

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/store".to_owned())
}

/// The URL of the database `name` on the server of `DATABASE_URL`.
pub fn server_url(name: &str) -> String {
    let (maintenance, _) =
        api::infra::db::split_database_url(&database_url()).expect("DATABASE_URL is valid");
    let (base, query) = maintenance
        .split_once('?')
        .map_or((maintenance.as_str(), None), |(b, q)| (b, Some(q)));
    let base = base.trim_end_matches("/postgres");
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The RSA key of this test process (generated once; RSA generation is slow).
pub fn test_private_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| {
        api::infra::auth::jwt::generate_key_pair()
            .expect("generate key")
            .0
    })
}

/// Name of the migrated template database for the current list of migrations.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let names = migration::migration_names().join(",");
            let hash: String = Sha256::digest(names.as_bytes())
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
            let name = format!("store_tpl_{hash}");
            let admin = Database::connect(server_url("postgres"))
                .await
                .expect("connect to PostgreSQL (is it running? see README)");
            // Serialise template creation across test processes.
            admin
                .execute_unprepared("SELECT pg_advisory_lock(73110)")
                .await
                .expect("lock");
            let exists = admin
                .query_one_raw(Statement::from_sql_and_values(
                    sea_orm::DatabaseBackend::Postgres,
                    "SELECT 1 FROM pg_database WHERE datname = $1",
                    [name.clone().into()],
                ))
                .await
                .expect("query")
                .is_some();
            if !exists {
                let building = format!("{name}_building");
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .await
                    .expect("drop stale");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {building}"))
                    .await
                    .expect("create template");
                let db = Database::connect(server_url(&building))
                    .await
                    .expect("connect template");
                migration::Migrator::up(&db, None)
                    .await
                    .expect("migrate template");
                db.close().await.expect("close");
                admin
                    .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await
                    .expect("rename template");
            }
            admin
                .execute_unprepared("SELECT pg_advisory_unlock(73110)")
                .await
                .expect("unlock");
            admin.close().await.ok();
            name
        })
        .await
}

async fn create_test_database() -> String {
    let tpl = template().await;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(server_url("postgres"))
        .await
        .expect("connect");
    let mut tries = 0;
    loop {
        match admin
            .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {tpl}"))
            .await
        {
            Ok(_) => break,
            // Another process may hold a connection to the template for a moment.
            Err(e) if tries < 50 && e.to_string().contains("being accessed") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("creating {name}: {e}"),
        }
    }
    admin.close().await.ok();
    name
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// SQL statements this app's pool has run (reset it before measuring).
    pub statements: Arc<AtomicUsize>,
    db_name: String,
    redis_url: String,
    pub namespace: String,
    nats_prefix: String,
    objects_dir: std::path::PathBuf,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Spawns with a configuration changed by `tweak` (limits, rates, TTLs).
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .with_test_writer()
                .try_init();
        }
        let db_name = create_test_database().await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let namespace = format!("test:{id}");
        let nats_prefix = format!("t{}", &id[..12]);
        let objects_dir = std::env::temp_dir().join(format!("store-test-{id}"));
        let mut args = api::infra::config::serve_args_from_env().expect("config");
        args.services.database_url = server_url(&db_name);
        args.services.database_max_connections = 5;
        args.services.redis_namespace = namespace.clone();
        args.services.nats_prefix = nats_prefix.clone();
        args.services.object_store_dir = objects_dir.clone();
        args.gateway_secret = Some(GATEWAY_SECRET.to_owned());
        args.gateway_secret_file = None;
        args.download_link_secret = Some(gateway::DOWNLOAD_SECRET.to_owned());
        args.download_link_secret_file = None;
        args.jwt_private_key = Some(test_private_key().to_owned());
        args.jwt_private_key_file = None;
        args.jwt_public_keys_file = None;
        args.bootstrap_admin_email = None;
        args.bootstrap_admin_password = None;
        let mut config = args.into_config().expect("config");
        // Every request of a test comes from one address: a crowd of buyers tops up from it.
        config.rates.topup_per_ip = rate(10_000, 3600);
        tweak(&mut config);
        let redis_url = config.services.redis_url.clone();
        let statements = Arc::new(AtomicUsize::new(0));
        let mut db = api::infra::db::connect(
            &config.services.database_url,
            config.services.database_max_connections,
        )
        .await
        .expect("connect database");
        let counter = statements.clone();
        db.set_metric_callback(move |info| {
            counter.fetch_add(1, Ordering::SeqCst);
            if std::env::var("TEST_SQL").is_ok() {
                eprintln!(
                    "SQL: {}",
                    info.statement.sql.chars().take(120).collect::<String>()
                );
            }
        });
        let state = AppState::connect_with_db(config, db)
            .await
            .expect("connect services");
        let router = api::http::router(state.clone());
        TestApp {
            state,
            router,
            statements,
            db_name,
            redis_url,
            namespace,
            nats_prefix,
            objects_dir,
        }
    }

    /// The URL of this test's database.
    pub fn database_url(&self) -> String {
        server_url(&self.db_name)
    }

    /// Serves the api on 127.0.0.1 (a free port) on a task of the test's runtime, as `api serve`
    /// does (with the peer address); returns the address.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the api");
        let addr = listener.local_addr().expect("local address");
        let app = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    /// Sends a raw HTTP request to the api.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    fn post() -> axum::http::request::Builder {
        Request::post("/graphql").header("content-type", "application/json")
    }

    /// Runs a GraphQL operation with optional bearer token; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = TestApp::post();
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (_, _, v) = self
            .send(req.body(Body::from(body)).expect("request"))
            .await;
        v
    }

    /// Like [`TestApp::gql`], but the status and headers too.
    pub async fn gql_http(
        &self,
        headers: &[(&str, &str)],
        query: &str,
        variables: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = TestApp::post();
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.send(req.body(Body::from(body)).expect("request"))
            .await
    }

    pub async fn sign_up(&self, email: &str, name: &str) -> Value {
        let v = self
            .gql(
                None,
                SIGN_UP,
                json!({ "input": { "email": email, "password": PASSWORD, "displayName": name } }),
            )
            .await;
        assert_no_errors(&v);
        v["data"]["signUp"].clone()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Value {
        self.gql(
            None,
            SIGN_IN,
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    /// An admin created the way an operator does (CLI path), signed in: its access token.
    pub async fn admin_token(&self) -> String {
        let email = format!("admin-{}@store.test", uuid::Uuid::new_v4().simple());
        api::identity::create_admin(&self.state.db, &self.state.hasher, &email, PASSWORD)
            .await
            .expect("create admin");
        let v = self.sign_in(&email, PASSWORD).await;
        assert_no_errors(&v);
        v["data"]["signIn"]["accessToken"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// A staff account (made as an admin or the CLI would), signed in: (access token, id).
    pub async fn staff(
        &self,
        email: &str,
        name: &str,
        role: domain::identity::Role,
    ) -> (String, String) {
        let new = api::identity::NewAccount::parse(email, PASSWORD, name, role).expect("valid");
        let account = api::identity::insert_account(&self.state.db, &self.state.hasher, new, None)
            .await
            .expect("staff account");
        let v = self.sign_in(email, PASSWORD).await;
        assert_no_errors(&v);
        let token = v["data"]["signIn"]["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        (token, account.id.to_string())
    }

    /// The `n` column of a one-row query.
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.one(sql, "n").await
    }

    /// The column `column` of a one-row query.
    pub async fn one<T: sea_orm::TryGetable>(&self, sql: &str, column: &str) -> T {
        self.state
            .db
            .query_one_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                sql,
            ))
            .await
            .expect("query")
            .expect("row")
            .try_get::<T>("", column)
            .unwrap_or_else(|e| panic!("{column}: {e}"))
    }

    /// The account id of the caller of `token`.
    pub async fn account_id(&self, token: &str) -> uuid::Uuid {
        let me = self.gql(Some(token), ME, json!({})).await;
        me["data"]["me"]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("account id in {me:#}"))
    }

    /// Creates a product of the publisher of `token` from `input` (a `CreateProductInput`),
    /// adds `editions` (`EditionInput`s, see [`digital`] and [`physical`]) and publishes it
    /// when `publish` is set. One path for every test that needs a product to exist: none of
    /// them needs the saga running for it.
    pub async fn create_product(
        &self,
        token: &str,
        input: Value,
        editions: &[Value],
        publish: bool,
    ) -> NewProduct {
        let v = self
            .gql(
                Some(token),
                "mutation($i: CreateProductInput!) { createProduct(input: $i) { id slug } }",
                json!({ "i": input }),
            )
            .await;
        assert_no_errors(&v);
        let created = &v["data"]["createProduct"];
        let id = created["id"].as_str().expect("id").to_owned();
        let slug = created["slug"].as_str().expect("slug").to_owned();
        let mut edition_ids = Vec::with_capacity(editions.len());
        for edition in editions {
            let e = self
                .gql(
                    Some(token),
                    "mutation($p: UUID!, $i: EditionInput!) { addEdition(productId: $p, input: $i) { id } }",
                    json!({ "p": id, "i": edition }),
                )
                .await;
            assert_no_errors(&e);
            edition_ids.push(
                e["data"]["addEdition"]["id"]
                    .as_str()
                    .expect("edition id")
                    .to_owned(),
            );
        }
        if publish {
            let p = self
                .gql(
                    Some(token),
                    "mutation($id: UUID!) { publishProduct(id: $id) { status } }",
                    json!({ "id": id }),
                )
                .await;
            assert_no_errors(&p);
        }
        NewProduct {
            id,
            slug,
            editions: edition_ids,
        }
    }

    /// Every key this app wrote to Redis with its value, as text (strings, hashes and sets).
    pub async fn redis_dump(&self) -> String {
        let redis = self.state.redis.next();
        let keys = api::infra::purge::scan_namespace(redis, &self.namespace)
            .await
            .expect("scan");
        let mut dump = String::new();
        for key in keys {
            let kind: String = redis.r#type(&key).await.expect("type");
            let value = match kind.as_str() {
                "string" => format!("{:?}", redis.get::<Option<String>, _>(&key).await),
                "hash" => format!(
                    "{:?}",
                    redis
                        .hgetall::<std::collections::HashMap<String, String>, _>(&key)
                        .await
                ),
                "set" => format!("{:?}", redis.smembers::<Vec<String>, _>(&key).await),
                other => format!("({other})"),
            };
            dump.push_str(&format!("{key:?} {value}\n"));
        }
        dump
    }

    pub async fn count_accounts(&self) -> i64 {
        self.scalar("SELECT count(*)::bigint AS n FROM identity.account")
            .await
    }
}

/// A product made by [`TestApp::create_product`].
pub struct NewProduct {
    pub id: String,
    pub slug: String,
    /// The ids of its editions, in the order they were given.
    pub editions: Vec<String>,
}

/// A SKU no other edition of this test process has (SKUs are unique in a database).
fn sku() -> String {
    static SKU: AtomicUsize = AtomicUsize::new(0);
    format!("T-{}", SKU.fetch_add(1, Ordering::SeqCst))
}

/// A digital `EditionInput` priced in EUR.
pub fn digital(name: &str, price: i64) -> Value {
    json!({ "kind": "DIGITAL", "name": name, "sku": sku(),
            "price": { "amountMinor": price, "currency": "EUR" } })
}

/// A physical `EditionInput` priced in EUR.
pub fn physical(name: &str, price: i64, weight_grams: i64) -> Value {
    json!({ "kind": "PHYSICAL", "name": name, "sku": sku(),
            "price": { "amountMinor": price, "currency": "EUR" }, "weightGrams": weight_grams })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Runs even when the test panicked: drop the database and this test's Redis keys on a
        // thread of its own (Drop cannot await, and the test's runtime may be shutting down).
        let database_url = server_url(&self.db_name);
        let redis_url = self.redis_url.clone();
        let namespace = self.namespace.clone();
        let nats_url = self.state.config.services.nats_url.clone();
        let nats_prefix = self.nats_prefix.clone();
        let _ = std::fs::remove_dir_all(&self.objects_dir);
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let _ = api::infra::purge::drop_database(&database_url).await;
                if let Ok(jetstream) = api::infra::purge::jetstream(&nats_url).await {
                    let _ = api::infra::purge::delete_streams(&jetstream, &nats_prefix).await;
                }
                // A Redis that does not answer (a test stopped its own) has nothing to clean.
                if let Ok(redis) = api::infra::redis::connect_now(&redis_url).await {
                    let _ = api::infra::purge::delete_namespace(redis.next(), &namespace).await;
                    let _ = redis.quit().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The saga participants of one test, on the test's runtime; stopped when dropped.
pub struct SagaHandle {
    task: tokio::task::JoinHandle<()>,
    pub rt: saga::Runtime,
}

impl Drop for SagaHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Saga settings for tests: quick retries, few deliveries.
pub fn saga_settings() -> saga::Settings {
    saga::Settings {
        max_deliver: 5,
        retry_base: std::time::Duration::from_millis(50),
        retry_max: std::time::Duration::from_millis(400),
        ack_wait: std::time::Duration::from_secs(5),
        concurrency: 8,
        ..saga::Settings::default()
    }
}

impl TestApp {
    /// Runs every saga participant with this test's database, NATS prefix and Redis namespace.
    pub async fn start_saga(&self, settings: saga::Settings) -> SagaHandle {
        let rt = self.saga_runtime(
            self.state.db.clone(),
            Arc::new(saga::infra::provider::Sandbox::default()),
            settings,
        );
        run_participants(&rt, &saga::Participant::ALL).await
    }

    /// A saga runtime on this test's bus, Redis namespace and currency, with `db` (the test's
    /// database, or a way to it the test controls) and `provider`.
    pub fn saga_runtime(
        &self,
        db: sea_orm::DatabaseConnection,
        provider: Arc<dyn saga::infra::provider::PaymentProvider>,
        settings: saga::Settings,
    ) -> saga::Runtime {
        saga::Runtime::new(
            db,
            self.state.bus.clone(),
            self.state.redis.clone(),
            self.namespace.clone(),
            provider,
            saga::Settings {
                currency: self.state.config.currency,
                ..settings
            },
        )
        .with_redis_health(self.state.redis_health.clone())
    }
}

/// Runs `participants` of `rt` (their consumers, outbox relays, and fulfillment's deadlines) on
/// the test's runtime until the handle is dropped. The consumers exist before it returns, so
/// nothing published afterwards is missed.
pub async fn run_participants(
    rt: &saga::Runtime,
    participants: &[saga::Participant],
) -> SagaHandle {
    let mut tasks = Vec::new();
    for &p in participants {
        tasks.extend(
            saga::infra::consumer::start(rt, p)
                .await
                .expect("consumers"),
        );
    }
    let handle_rt = rt.clone();
    let rt = rt.clone();
    let participants = participants.to_vec();
    let task = tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for t in tasks {
            set.spawn(t);
        }
        for &p in &participants {
            set.spawn(saga::infra::outbox::relay(rt.clone(), p));
        }
        if participants.contains(&saga::Participant::Fulfillment) {
            set.spawn(saga::fulfillment::deadlines(rt.clone()));
        }
        if participants.contains(&saga::Participant::Webhooks) {
            set.spawn(saga::webhooks::send::worker(rt.clone()));
        }
        while set.join_next().await.is_some() {}
    });
    SagaHandle {
        task,
        rt: handle_rt,
    }
}

/// A background task of the api (the catalog's outbox relay, the discount clock), running on
/// the test's runtime until dropped.
pub struct OutboxRelay(tokio::task::JoinHandle<()>);

impl Drop for OutboxRelay {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestApp {
    /// Runs the relay of the catalog's outbox as `api serve` does (not started by
    /// [`TestApp::spawn`]: without it, the catalog's events stay in its outbox).
    pub fn start_outbox_relay(&self) -> OutboxRelay {
        OutboxRelay(tokio::spawn(api::catalog::outbox::relay(
            self.state.clone(),
        )))
    }

    /// Runs the discount clock as `api serve` does (not started by [`TestApp::spawn`]).
    pub fn start_discount_clock(&self) -> OutboxRelay {
        OutboxRelay(tokio::spawn(api::catalog::discounts::clock(
            self.state.clone(),
        )))
    }

    /// Puts `product` (its first edition) in the library of the caller of `token`, as the
    /// library participant would after a paid order (test setup without running the saga).
    pub async fn grant_product(&self, token: &str, product: &str) {
        let account = self.account_id(token).await;
        let product: uuid::Uuid = product.parse().expect("product id");
        let mut key = [0u8; 20];
        key.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..16].repeat(2)[..20]);
        self.state
            .db
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "INSERT INTO library.entitlement (id, account_id, product_id, edition_id, order_id, license_key) \
                 SELECT $1, $2, $3, e.id, $4, $5 FROM catalog.edition e WHERE e.product_id = $3 LIMIT 1",
                [
                    uuid::Uuid::now_v7().into(),
                    account.into(),
                    product.into(),
                    uuid::Uuid::now_v7().into(),
                    domain::library::license_key(key).into(),
                ],
            ))
            .await
            .expect("grant");
    }
}

/// Polls `f` (every 50 ms, up to 20 s) until it gives a value.
pub async fn wait_until<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub fn assert_no_errors(v: &Value) {
    assert!(v.get("errors").is_none(), "unexpected errors: {v:#}");
}

/// The `extensions.code` of the first error.
pub fn error_code(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {v:#}"))
}

pub fn rate(count: u32, secs: u64) -> Rate {
    Rate {
        count,
        window: std::time::Duration::from_secs(secs),
    }
}

pub const SIGN_UP: &str = "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken refreshToken accessTokenExpiresAt refreshTokenExpiresAt account { id email displayName role status } } }";
pub const SIGN_IN: &str = "mutation($input: SignInInput!) { signIn(input: $input) { accessToken refreshToken account { id email role status } } }";
pub const REFRESH: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken account { id } } }";
pub const ME: &str = "{ me { id email displayName role status } }";

/// Percent-encodes `s` for a URL's query (every byte but the unreserved ones).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
