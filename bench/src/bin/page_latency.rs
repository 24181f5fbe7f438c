//! Latency of two GraphQL pages over HTTP, served by two `api` binaries in the same run: the
//! current one (`API_BIN`) and a baseline built from another commit (`BASELINE_API_BIN`; see
//! `bench/pages.sh`, which builds both, the baseline from `BASELINE`, default `9e996a1`, the
//! commit before the DataLoaders). The pages:
//!
//! - `myOrders(first: 50)` of a buyer with 50 orders of three lines each, asking for every order
//!   field the SPA asks for on any of its order pages (lines, shipment with its address, refund
//!   request, timeline), as the statement-count test does (`api/tests/it/statements.rs`);
//! - the storefront's first page, 50 products of the demo catalog (sort `RELEVANCE`, empty
//!   filter), with the storefront card's fields and the publisher and editions (with stock) its
//!   product page asks for too.
//!
//! Both binaries serve the same database, Redis namespace and NATS prefix, on free loopback
//! ports; the buyer is authenticated as the gateway does it (`X-Gateway-Secret` and `X-User-*`),
//! the catalog page is anonymous. Each page is first checked to answer the same data from both
//! binaries (the order of an object's fields may differ), then warmed up, then measured in rounds alternating the two binaries (the order
//! flips every round): ROUNDS × REQUESTS sequential requests per page and binary, one client on
//! one keep-alive connection. Printed: p50, p99 and mean per page and binary, in ms, and
//! current/baseline.
//!
//! The fixture: the database `store_bench_pages` on the server of `DATABASE_URL` (dropped and
//! created each run, migrated by `API_BIN migrate`, seeded by `API_BIN seed-demo --pictures 50`),
//! and in it one buyer whose orders are placed through the api's own `place_order` and carried
//! by the saga participants run in-process (as `order_saga` does): 40 digital orders (three
//! editions each; five then refunded through `refund::request`) and 10 with a boxed edition
//! and two digital ones (five then shipped through `ship_order`), so every order has its
//! timeline and the page has shipments and refund requests to load. The saga is stopped before
//! measuring. At the end (also after a failure) the apis are stopped, the database dropped and
//! the Redis namespace and NATS streams (`benchpages`) removed.
//!
//! `API_BIN=… BASELINE_API_BIN=… cargo run --release -p bench --bin page_latency [-- ROUNDS
//! [REQUESTS]]` (defaults 5 and 200), or simply `bench/pages.sh [ROUNDS [REQUESTS]]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use domain::catalog::entity::{edition, product};
use domain::identity::Role;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The benchmark's own database, Redis namespace and NATS prefix.
const DATABASE: &str = "store_bench_pages";
const NAMESPACE: &str = "benchpages";
const GATEWAY_SECRET: &str = "bench-pages-gateway-secret-0123456789";

/// Orders of the buyer: digital ones (three digital editions each) and boxed ones (a boxed
/// edition and two digital ones); of them, this many refunded and shipped.
const DIGITAL: usize = 40;
const BOXED: usize = 10;
const REFUNDED: usize = 5;
const SHIPPED: usize = 5;
/// Requests per page and binary before measuring.
const WARM_UP: usize = 50;

/// Every field of an order the SPA asks for on any of its pages (orders, order, refund, admin
/// orders and timeline): the same as `api/tests/it/statements.rs`.
const MY_ORDERS: &str = "query($n: Int!) { myOrders(first: $n) { pageInfo { hasNextPage endCursor } \
     nodes { id status cancelReason accountId createdAt total { formatted } \
     lines { productTitle editionName kind quantity subtotal { formatted } } \
     shipment { status carrier trackingNumber paidAt shippedAt \
       address { name country region city postalCode street phone } } \
     refundRequest { status reason withinPolicy policyNote decisionNote createdAt decidedAt } \
     timeline { step participant detail at } } } }";

/// The SPA's storefront page (`Products` in `web/queries/catalog.graphql`), with the publisher
/// and the editions (with stock) its product page asks for too.
const PRODUCTS: &str = "query($filter: ProductFilter, $sort: ProductSort!, $n: Int!) { \
     products(filter: $filter, sort: $sort, first: $n) { pageInfo { hasNextPage endCursor } \
     nodes { id slug title genres platforms priceFrom { formatted } rating { average count } \
       cover { url srcset } publisher { name } \
       editions { id kind name price { amountMinor currency formatted } stock } } } }";

/// One page to measure: its request body and headers, and the field whose nodes it lists.
struct Page {
    name: &'static str,
    field: &'static str,
    body: Vec<u8>,
    headers: String,
}

/// An `api serve` child process and its address.
struct Api {
    label: &'static str,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

/// One keep-alive HTTP/1.1 connection to an api.
struct Conn {
    io: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            io: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    /// `POST /graphql` with `body` and the extra header lines `headers` (each ending in
    /// `\r\n`): the status and the body of the answer.
    async fn post(&mut self, headers: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{headers}\r\n",
            self.host,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.io.get_mut().write_all(&request).await?;

        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            ensure!(
                self.io.read_line(&mut line).await? > 0,
                "connection closed in the headers"
            );
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.io.read_line(&mut line).await?;
                let size = usize::from_str_radix(
                    line.trim_end().split(';').next().unwrap_or_default(),
                    16,
                )
                .with_context(|| format!("bad chunk size {line:?}"))?;
                let start = out.len();
                out.resize(start + size, 0);
                self.io.read_exact(&mut out[start..]).await?;
                line.clear();
                self.io.read_line(&mut line).await?; // the chunk's CRLF, or the last one
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = length.context("an answer with neither length nor chunks")?;
            out.resize(length, 0);
            self.io.read_exact(&mut out).await?;
        }
        Ok((status, out))
    }
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one_raw(stmt(sql, vec![]))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

/// Polls `done` every 100 ms until it holds, failing after `limit` with `what`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    while !done().await? {
        ensure!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Runs `bin ARGS` with the benchmark's environment, failing with its output if it fails.
async fn run_bin(bin: &Path, env: &[(&str, String)], args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .with_context(|| format!("running {}", bin.display()))?;
    ensure!(
        out.status.success(),
        "{} {}: {}\n{}",
        bin.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// Starts `bin serve` on a free loopback port and waits until it answers `/healthz`.
async fn start_api(
    label: &'static str,
    bin: &Path,
    env: &[(&str, String)],
    work: &Path,
) -> anyhow::Result<Api> {
    let addr = free_port()?;
    let log = work.join(format!("{label}.log"));
    let file = std::fs::File::create(&log)?;
    let child = Command::new(bin)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("API_LISTEN_ADDR", addr.to_string())
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut api = Api {
        label,
        child,
        addr,
        log,
    };
    let start = Instant::now();
    loop {
        if let Some(status) = api.child.try_wait()? {
            bail!(
                "the {label} api exited ({status}): {}",
                std::fs::read_to_string(&api.log).unwrap_or_default()
            );
        }
        if let Ok(mut s) = TcpStream::connect(addr).await {
            let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            if s.write_all(req.as_bytes()).await.is_ok()
                && s.read_to_string(&mut answer).await.is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return Ok(api);
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            api.child.kill().await.ok();
            bail!("the {label} api did not answer /healthz within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// p50, p99 and mean of `v` (ms).
fn stats(v: &[f64]) -> [f64; 3] {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    [
        quantile(&s, 0.5),
        quantile(&s, 0.99),
        s.iter().sum::<f64>() / s.len().max(1) as f64,
    ]
}

/// The buyer, the orders and what followed them, through the api's services and the saga.
async fn fixture(
    serve: api::infra::config::ServeArgs,
    database_url: &str,
) -> anyhow::Result<api::infra::auth::Principal> {
    let db = api::infra::db::connect(database_url, 10).await?;
    let state = api::AppState::connect_with_db(serve.into_config()?, db.clone()).await?;
    let rt = saga::Runtime::new(
        db.clone(),
        state.bus.clone(),
        state.redis.clone(),
        NAMESPACE.to_owned(),
        Arc::new(saga::infra::provider::Sandbox::default()),
        saga::Settings::default(),
    );
    let participants = saga::spawn(rt, saga::Participant::ALL.to_vec());
    let result = orders(&state, &db).await;
    participants.abort();
    participants.await.ok();
    result
}

async fn orders(
    state: &api::AppState,
    db: &sea_orm::DatabaseConnection,
) -> anyhow::Result<api::infra::auth::Principal> {
    let hasher = api::infra::auth::password::Hasher::new(1);
    let new = api::identity::NewAccount::parse(
        "bench-buyer@user.test",
        "bench-buyer-password",
        "Bench Buyer",
        Role::User,
    )?;
    let account = api::identity::insert_account(db, &hasher, new, None).await?;
    let buyer = api::infra::auth::Principal {
        id: account.id,
        role: Role::User,
        name: "Bench Buyer".to_owned(),
    };

    // The demo catalog, newest first: each product's standard digital edition, and its boxed
    // one if it has one.
    let mut products = product::Entity::find().all(db).await?;
    products.sort_by(|a, b| {
        b.published_at
            .cmp(&a.published_at)
            .then(a.slug.cmp(&b.slug))
    });
    let editions = edition::Entity::find().all(db).await?;
    let edition_of = |p: Uuid, kind: &str, name: Option<&str>| {
        editions
            .iter()
            .find(|e| e.product_id == p && e.kind == kind && name.is_none_or(|n| e.name == n))
    };
    let digital: Vec<&edition::Model> = products
        .iter()
        .filter_map(|p| edition_of(p.id, "digital", Some("Standard")))
        .collect();
    let boxed: Vec<(&edition::Model, Uuid)> = products
        .iter()
        .filter_map(|p| edition_of(p.id, "physical", None).map(|e| (e, p.publisher_id)))
        .take(BOXED)
        .collect();
    ensure!(
        digital.len() >= 3 * DIGITAL + 2 * BOXED && boxed.len() == BOXED,
        "the demo catalog is smaller than expected ({} digital, {} boxed editions)",
        digital.len(),
        boxed.len()
    );
    let physical = editions.iter().filter(|e| e.kind == "physical").count() as i64;
    wait_for(
        "the demo stock (the seed's stock commands)",
        Duration::from_secs(120),
        || async move {
            Ok(count(
                db,
                "SELECT count(*)::bigint AS n FROM fulfillment.inventory",
            )
            .await?
                == physical)
        },
    )
    .await?;

    // Lines of each order; the boxed ones with an address.
    let mut next = digital.iter();
    let mut take = |n: usize| next.by_ref().take(n).copied().collect::<Vec<_>>();
    let mut planned: Vec<(Vec<api::ordering::LineInput>, Option<Uuid>, i64)> = Vec::new();
    for _ in 0..DIGITAL {
        let lines = take(3);
        let total = lines.iter().map(|e| e.price_minor).sum();
        let lines = lines
            .iter()
            .map(|e| api::ordering::LineInput {
                edition_id: e.id,
                quantity: 1,
            })
            .collect();
        planned.push((lines, None, total));
    }
    for (b, publisher) in &boxed {
        let lines = take(2);
        let total = b.price_minor + lines.iter().map(|e| e.price_minor).sum::<i64>();
        let lines = std::iter::once(api::ordering::LineInput {
            edition_id: b.id,
            quantity: 1,
        })
        .chain(lines.iter().map(|e| api::ordering::LineInput {
            edition_id: e.id,
            quantity: 1,
        }))
        .collect();
        planned.push((lines, Some(*publisher), total));
    }
    let money: i64 = planned.iter().map(|(_, _, t)| t).sum();
    api::billing::top_up(state, &buyer, money, "4242424242424242", "bench-top-up").await?;
    wait_for("the top-up", Duration::from_secs(60), || async move {
        Ok(count(
            db,
            "SELECT coalesce(sum(balance_minor), 0)::bigint AS n FROM billing.wallet",
        )
        .await?
            == money)
    })
    .await?;

    let address = domain::fulfillment::ShippingAddress {
        name: "Ada Lovelace".into(),
        country: "DE".into(),
        region: "Berlin".into(),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        street: "Invalidenstr. 1".into(),
        phone: "+49 30 1234567".into(),
    };
    let placed: Vec<(Uuid, Option<Uuid>)> = futures::stream::iter(planned.into_iter().enumerate())
        .map(|(i, (lines, publisher, _))| {
            let (buyer, address) = (&buyer, address.clone());
            async move {
                let address = publisher.map(|_| address);
                let id = api::ordering::place_order(
                    state,
                    buyer,
                    api::ordering::Basket::Lines(&lines),
                    address,
                    &format!("bench-order-{i}"),
                )
                .await?;
                Ok::<_, api::ApiError>((id, publisher))
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let settled = |completed: i64, waiting: i64| async move {
        let c = count(
            db,
            r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'COMPLETED'"#,
        )
        .await?;
        let w = count(
            db,
            r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'AWAITING_SHIPMENT'"#,
        )
        .await?;
        Ok::<_, anyhow::Error>(c == completed && w == waiting)
    };
    wait_for("the orders to settle", Duration::from_secs(180), || {
        settled(DIGITAL as i64, BOXED as i64)
    })
    .await?;

    // Some boxed orders shipped by their publisher, some digital ones refunded.
    for (n, (order, publisher)) in placed
        .iter()
        .filter_map(|(o, p)| p.map(|p| (*o, p)))
        .take(SHIPPED)
        .enumerate()
    {
        let publisher = api::infra::auth::Principal {
            id: publisher,
            role: Role::Publisher,
            name: "Publisher".to_owned(),
        };
        api::fulfillment::ship_order(state, &publisher, order, "DHL", &format!("JD{n:08}")).await?;
    }
    for (order, _) in placed.iter().filter(|(_, p)| p.is_none()).take(REFUNDED) {
        api::refund::request(state, &buyer, *order, "changed my mind").await?;
    }
    wait_for(
        "the shipments and refunds",
        Duration::from_secs(120),
        || async move {
            let shipped = count(
                db,
                "SELECT count(*)::bigint AS n FROM fulfillment.shipment WHERE status = 'SHIPPED'",
            )
            .await?;
            let refunded = count(
                db,
                r#"SELECT count(*)::bigint AS n FROM ordering."order" WHERE status = 'REFUNDED'"#,
            )
            .await?;
            Ok(shipped == SHIPPED as i64 && refunded == REFUNDED as i64)
        },
    )
    .await?;
    Ok(buyer)
}

/// Sends `page` to `api` once: the body, checked to be a full page without errors.
async fn answer(conn: &mut Conn, page: &Page, label: &str) -> anyhow::Result<Vec<u8>> {
    let (status, body) = conn.post(&page.headers, &page.body).await?;
    let v: Value = serde_json::from_slice(&body)?;
    ensure!(
        status == 200 && v.get("errors").is_none(),
        "{label}, {}: {status} {v}",
        page.name
    );
    let nodes = v["data"][page.field]["nodes"]
        .as_array()
        .map_or(0, Vec::len);
    ensure!(nodes == 50, "{label}, {}: {nodes} nodes, not 50", page.name);
    Ok(body)
}

/// `n` requests of `page`, each timed (ms); every answer must be 200 and as long as `expected`.
async fn measure(
    conn: &mut Conn,
    page: &Page,
    expected: &[u8],
    n: usize,
    out: &mut Vec<f64>,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let t = Instant::now();
        let (status, body) = conn.post(&page.headers, &page.body).await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        // Same length: the same answer (the order of an object's fields may vary).
        ensure!(
            status == 200 && body.len() == expected.len(),
            "{}: an answer differs from the first one: {}",
            page.name,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

async fn bench(
    apis: &[Api; 2],
    pages: &[Page],
    rounds: usize,
    requests: usize,
) -> anyhow::Result<()> {
    let mut conns = [
        Conn::open(apis[0].addr).await?,
        Conn::open(apis[1].addr).await?,
    ];
    let mut expected = Vec::new();
    for page in pages {
        let a = answer(&mut conns[0], page, apis[0].label).await?;
        let b = answer(&mut conns[1], page, apis[1].label).await?;
        // The same data; the order of an object's fields may differ between the binaries.
        let (va, vb): (Value, Value) = (serde_json::from_slice(&a)?, serde_json::from_slice(&b)?);
        if va != vb {
            let nodes = |v: &Value| v["data"][page.field]["nodes"].as_array().cloned();
            let (na, nb) = (
                nodes(&va).unwrap_or_default(),
                nodes(&vb).unwrap_or_default(),
            );
            let first = na.iter().zip(&nb).position(|(x, y)| x != y);
            bail!(
                "{}: the two binaries answer differently; first differing node {first:?}:\n{}\n{}",
                page.name,
                first.and_then(|i| na.get(i)).unwrap_or(&Value::Null),
                first.and_then(|i| nb.get(i)).unwrap_or(&Value::Null),
            );
        }
        println!("{}: {} bytes, the same from both", page.name, a.len());
        for conn in &mut conns {
            let mut sink = Vec::new();
            measure(conn, page, &a, WARM_UP, &mut sink).await?;
        }
        expected.push(a);
    }
    // times[page][api]
    let mut times = vec![[Vec::new(), Vec::new()]; pages.len()];
    for round in 0..rounds {
        for (p, page) in pages.iter().enumerate() {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for a in order {
                measure(
                    &mut conns[a],
                    page,
                    &expected[p],
                    requests,
                    &mut times[p][a],
                )
                .await?;
            }
        }
    }
    println!();
    println!(
        "{rounds} rounds × {requests} sequential requests per page and binary, one client, \
         keep-alive, after {WARM_UP} warm-up requests; {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<18} {:<9} {:>9} {:>9} {:>9}",
        "page", "binary", "p50 ms", "p99 ms", "mean ms"
    );
    for (p, page) in pages.iter().enumerate() {
        let [base, cur] = [stats(&times[p][0]), stats(&times[p][1])];
        for (a, s) in [(0, base), (1, cur)] {
            println!(
                "{:<18} {:<9} {:>9.2} {:>9.2} {:>9.2}",
                page.name, apis[a].label, s[0], s[1], s[2]
            );
        }
        println!(
            "{:<18} {:<9} {:>8.2}x {:>8.2}x {:>8.2}x",
            page.name,
            "cur/base",
            cur[0] / base[0],
            cur[1] / base[1],
            cur[2] / base[2]
        );
    }
    Ok(())
}

/// Removes the benchmark's database, Redis namespace and NATS streams.
async fn purge(serve: &api::infra::config::ServeArgs, database_url: &str) -> anyhow::Result<()> {
    api::cli::purge(&api::cli::PurgeArgs {
        database_url: Some(database_url.to_owned()),
        redis_url: Some(serve.services.redis_url.clone()),
        redis_namespace: Some(NAMESPACE.to_owned()),
        nats_url: Some(serve.services.nats_url.clone()),
        nats_prefix: Some(NAMESPACE.to_owned()),
        check: false,
    })
    .await
}

fn bin_from_env(name: &str, default: Option<&str>) -> anyhow::Result<PathBuf> {
    let path = match (std::env::var_os(name), default) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => bail!("{name} is not set: the path of an api binary (see bench/pages.sh)"),
    };
    ensure!(path.is_file(), "{name}: no file at {}", path.display());
    Ok(path)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .with_context(|| format!("`{a}`: expected a number"))
        })
        .collect::<anyhow::Result<_>>()?;
    let rounds = args.first().copied().unwrap_or(5).max(1);
    let requests = args.get(1).copied().unwrap_or(200).max(1);
    let current = bin_from_env("API_BIN", Some("target/release/api"))?;
    let baseline = bin_from_env("BASELINE_API_BIN", None)?;

    let mut serve = api::infra::config::serve_args_from_env()?;
    let (maintenance, _) = api::infra::db::split_database_url(&serve.services.database_url)?;
    let server = maintenance.split('?').next().unwrap_or(&maintenance);
    let database_url = format!("{}/{DATABASE}", server.trim_end_matches("/postgres"));
    let work = std::env::temp_dir().join(format!("store-bench-pages-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let (private_key, _) = api::infra::auth::jwt::generate_key_pair()?;
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url.clone()),
        ("DATABASE_MAX_CONNECTIONS", "10".to_owned()),
        ("REDIS_URL", serve.services.redis_url.clone()),
        ("REDIS_NAMESPACE", NAMESPACE.to_owned()),
        ("NATS_URL", serve.services.nats_url.clone()),
        ("NATS_PREFIX", NAMESPACE.to_owned()),
        ("STORE_CURRENCY", serve.services.store_currency.clone()),
        (
            "OBJECT_STORE_DIR",
            work.join("objects").display().to_string(),
        ),
        ("GATEWAY_SECRET", GATEWAY_SECRET.to_owned()),
        ("JWT_PRIVATE_KEY", private_key.clone()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    serve.services.database_url = database_url.clone();
    serve.services.redis_namespace = NAMESPACE.to_owned();
    serve.services.nats_prefix = NAMESPACE.to_owned();
    serve.services.object_store_dir = work.join("objects");
    serve.jwt_private_key = Some(private_key);
    serve.jwt_private_key_file = None;
    serve.gateway_secret = None;
    serve.gateway_secret_file = None;
    serve.top_up_max_minor = i64::MAX / 4;

    purge(&serve, &database_url).await?;
    let mut apis: Vec<Api> = Vec::new();
    let result = async {
        let t = Instant::now();
        run_bin(&current, &env, &["migrate"]).await?;
        run_bin(&current, &env, &["seed-demo", "--pictures", "50"]).await?;
        let buyer = fixture(serve.clone(), &database_url).await?;
        println!(
            "fixture: demo catalog and {} orders of one buyer in {:.1} s",
            DIGITAL + BOXED,
            t.elapsed().as_secs_f64()
        );
        apis.push(start_api("baseline", &baseline, &env, &work).await?);
        apis.push(start_api("current", &current, &env, &work).await?);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let pages = [
            Page {
                name: "myOrders(50)",
                field: "myOrders",
                body: serde_json::to_vec(&json!({ "query": MY_ORDERS, "variables": { "n": 50 } }))?,
                headers: format!(
                    "x-gateway-secret: {GATEWAY_SECRET}\r\nx-user-id: {}\r\nx-user-role: user\r\n\
                     x-user-name: {}\r\nx-user-token-iat: {now}\r\n",
                    buyer.id, buyer.name
                ),
            },
            Page {
                name: "catalog page(50)",
                field: "products",
                body: serde_json::to_vec(&json!({ "query": PRODUCTS,
                    "variables": { "filter": {}, "sort": "RELEVANCE", "n": 50 } }))?,
                headers: format!("x-gateway-secret: {GATEWAY_SECRET}\r\n"),
            },
        ];
        let pair: &[Api; 2] = apis.as_slice().try_into().context("two apis")?;
        bench(pair, &pages, rounds, requests).await
    }
    .await;
    for api in &mut apis {
        api.child.kill().await.ok();
    }
    if result.is_err() {
        for api in &apis {
            eprintln!(
                "--- {} api log ({}):\n{}",
                api.label,
                api.log.display(),
                std::fs::read_to_string(&api.log).unwrap_or_default()
            );
        }
    }
    let cleaned = purge(&serve, &database_url).await;
    std::fs::remove_dir_all(&work).ok();
    result.and(cleaned)
}
