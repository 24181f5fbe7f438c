//! `cargo xtask dev`: runs the whole store on this machine until Ctrl-C.
//!
//! Ctrl-C reaches the api, the gateway and the saga participants directly (they stay in xtask's
//! process group); the [janitor](crate::janitor) then stops whatever lingers and the private
//! service instances this run started. When the api exits by itself, this process stops the
//! other children, closes the janitor's pipe and waits for it, so the output stays in order.

use std::env;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::janitor::{GRACE, Janitor};
use crate::services;

/// The api listens on loopback only; the gateway is the way in (see `gateway::DEV_*`).
const DEFAULT_LISTEN_ADDR: &str = crate::gateway::DEV_API_LISTEN;
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(release: bool) -> Result<()> {
    let services = services::ensure()?;
    crate::gateway::ensure_installed()?;
    let mut janitor = Janitor::spawn(&services.started())?;
    let mut env = services.env();

    let bin_dir = build_servers(&env, release)?;
    let api = bin_dir.join("api");

    if env::var_os("JWT_PRIVATE_KEY_FILE").is_none() {
        // Made once, kept across runs.
        env.extend(jwt_keys(
            &api,
            &crate::root().join("target/dev/keys"),
            &env,
        )?);
    }
    let secret = match env::var("GATEWAY_SECRET") {
        Ok(secret) => secret,
        Err(_) => gateway_secret()?,
    };
    env.push(("GATEWAY_SECRET", secret.clone()));
    // Download links: the api signs with what the gateway checks (gateway.rs's default for
    // GATEWAY_DOWNLOAD_SECRET is the gateway secret).
    env.push((
        "DOWNLOAD_LINK_SECRET",
        env::var("GATEWAY_DOWNLOAD_SECRET").unwrap_or_else(|_| secret.clone()),
    ));
    let listen = env::var("API_LISTEN_ADDR").unwrap_or_else(|_| DEFAULT_LISTEN_ADDR.to_owned());
    env.push(("API_LISTEN_ADDR", listen.clone()));
    // The api's /metrics, beside it (the saga's are on SAGA_HEALTH_ADDR, 127.0.0.1:9090).
    env.push((
        "API_METRICS_ADDR",
        env::var("API_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9091".to_owned()),
    ));

    migrate_and_seed(&api, &env, None)?;

    // The release bundles, as a shopper gets them (the debug wasm is 27 MB): built again only
    // when the web app's sources changed.
    let spa = crate::web::cached_spa()?;

    let site = crate::gateway::Site::dev();
    let gateway = prepare_gateway(&api, &env, &site, &listen, &spa, &secret)?;

    let mut children = start_store(&bin_dir, &env, &gateway, &mut janitor, None)?;
    let health = wait_http_ok(connect_addr(&listen)?, "/healthz", "the api", &mut children);
    if health.is_ok() {
        let direct = format!("http://{}", connect_addr(&listen)?);
        let base = format!("https://{}", connect_addr(&gateway.https_listen)?);
        let ca = crate::root().join("target/dev/tls/ca.crt");
        println!();
        println!("The store is running (stop it with Ctrl-C):");
        println!("  the store (SPA + GraphQL, through the gateway):  {base}/");
        println!("  GraphQL endpoint:                               {base}/graphql");
        println!(
            "  GraphiQL (api directly, loopback only; the gateway's CSP blocks it): {direct}/graphql"
        );
        println!("  demo accounts:   printed above by `api seed-demo`");
        println!("Try it:");
        println!(
            "  curl -s --cacert {} {base}/graphql -H 'content-type: application/json' -d '{{\"query\":\"{{ __typename }}\"}}'",
            ca.display()
        );
        println!();
    }
    let result = health.and_then(|()| wait_any(&mut children));
    stop_children(&mut children);
    let cleaned = janitor.finish();
    result.and(cleaned)
}

/// Builds the api and the saga binaries; returns the directory holding them.
pub fn build_servers(env: &[(&str, String)], release: bool) -> Result<PathBuf> {
    let mut build = Cmd::new("cargo").args(["build", "-p", "api", "-p", "saga"]);
    if release {
        build = build.arg("--release");
    }
    build.envs(env).run()?;
    Ok(crate::target_dir().join(if release { "release" } else { "debug" }))
}

/// Makes the RS256 key pair of access tokens in `dir` unless it is there (`api gen-keys`);
/// returns the variables that point the api at it.
pub fn jwt_keys(
    api: &Path,
    dir: &Path,
    env: &[(&str, String)],
) -> Result<Vec<(&'static str, String)>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Cmd::new(api)
        .args(["gen-keys", "--dir"])
        .arg(dir)
        .envs(env)
        .run()?;
    Ok(vec![
        (
            "JWT_PRIVATE_KEY_FILE",
            path_string(&dir.join("jwt-private.pem"))?,
        ),
        (
            "JWT_PUBLIC_KEY_FILE",
            path_string(&dir.join("jwt-public.pem"))?,
        ),
    ])
}

/// Creates the database if missing, applies the migrations and seeds the demo accounts and
/// catalog (idempotent; prints the demo accounts and their passwords), with the pictures of
/// the newest `pictures` products (`None`: all of them, about a minute on two cores the first
/// time; products that have pictures are skipped).
pub fn migrate_and_seed(api: &Path, env: &[(&str, String)], pictures: Option<usize>) -> Result<()> {
    Cmd::new(api).arg("migrate").envs(env).run()?;
    let seed = Cmd::new(api).arg("seed-demo");
    let seed = match pictures {
        Some(n) => seed.args(["--pictures", &n.to_string()]),
        None => seed,
    };
    seed.envs(env).run()
}

/// The gateway: the public keys as its njs reads them (`api gateway-keys`, into the site's
/// prefix directory), then nginx.conf rendered for `site` in front of the api at `listen`.
pub fn prepare_gateway(
    api: &Path,
    env: &[(&str, String)],
    site: &crate::gateway::Site,
    listen: &str,
    spa: &Path,
    secret: &str,
) -> Result<crate::gateway::Rendered> {
    fs::create_dir_all(&site.prefix)
        .with_context(|| format!("cannot create {}", site.prefix.display()))?;
    let keys_file = site.prefix.join("keys.json");
    Cmd::new(api)
        .arg("gateway-keys")
        .arg("--out")
        .arg(&keys_file)
        .envs(env)
        .run()?;
    let upstream = connect_addr(listen)?.to_string();
    crate::gateway::prepare(site, &upstream, &keys_file, spa, secret)
}

/// Starts every long-running process of the store: the api, the gateway and the saga
/// participants, each announced to the janitor. They stay in our process group, so a Ctrl-C in
/// the terminal reaches each of them directly (see [`crate::janitor`]). With `logs`, each
/// writes its output to `<logs>/<name>.log` instead of ours.
pub fn start_store(
    bin_dir: &Path,
    env: &[(&str, String)],
    gateway: &crate::gateway::Rendered,
    janitor: &mut Janitor,
    logs: Option<&Path>,
) -> Result<Vec<(&'static str, Child)>> {
    let commands = [
        ("api", Cmd::new(bin_dir.join("api")).arg("serve").envs(env)),
        ("gateway", crate::gateway::command(gateway)),
        // Every saga participant in one process (`saga run <participant>` runs one, as in a
        // cluster).
        (
            "saga",
            Cmd::new(bin_dir.join("saga"))
                .args(["run", "all"])
                .envs(env),
        ),
    ];
    let mut children = Vec::new();
    for (name, mut command) in commands {
        if let Some(dir) = logs {
            let path = dir.join(format!("{name}.log"));
            let log =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            command = command
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
        }
        let child = command.spawn()?;
        let watched = janitor.watch(&child);
        children.push((name, child));
        if let Err(error) = watched {
            stop_children(&mut children);
            return Err(error);
        }
    }
    Ok(children)
}

/// Waits until `GET path` at `addr` answers 200, failing early if a child exits.
pub fn wait_http_ok(
    addr: SocketAddr,
    path: &str,
    what: &str,
    children: &mut [(&str, Child)],
) -> Result<()> {
    let deadline = Instant::now() + HEALTH_TIMEOUT;
    while !http_ok(addr, path) {
        check_running(children)?;
        if Instant::now() >= deadline {
            bail!("{what} did not answer GET http://{addr}{path} within {HEALTH_TIMEOUT:?}");
        }
        sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Whether `GET path` answers with status 200 (raw HTTP/1.1 over TCP).
pub fn http_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // Read the whole (small) response up to the server's close: closing with unread data would
    // make the server see a connection reset.
    let mut response = Vec::new();
    let answered = stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_ok()
        && stream.write_all(request.as_bytes()).is_ok()
        && (&stream).take(64 * 1024).read_to_end(&mut response).is_ok();
    // "HTTP/1.1 200 OK"
    answered && String::from_utf8_lossy(&response).split_whitespace().nth(1) == Some("200")
}

/// The address to reach a listen address at (an unspecified address means loopback).
pub fn connect_addr(listen: &str) -> Result<SocketAddr> {
    let mut addr = listen
        .to_socket_addrs()
        .with_context(|| format!("bad API_LISTEN_ADDR {listen}"))?
        .next()
        .with_context(|| format!("API_LISTEN_ADDR {listen} resolves to nothing"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// Fails if a child has exited.
pub fn check_running(children: &mut [(&str, Child)]) -> Result<()> {
    for (name, child) in children.iter_mut() {
        if let Some(status) = child.try_wait()? {
            bail!("the {name} exited ({status})");
        }
    }
    Ok(())
}

/// Waits until one child exits: an error unless it exited successfully.
fn wait_any(children: &mut [(&str, Child)]) -> Result<()> {
    loop {
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                if status.success() {
                    println!("the {name} exited");
                    return Ok(());
                }
                bail!("the {name} exited ({status})");
            }
        }
        sleep(Duration::from_millis(200));
    }
}

/// Stops the children that still run: SIGTERM, then SIGKILL after a grace period.
pub fn stop_children(children: &mut [(&str, Child)]) {
    for (_, child) in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            services::send_signal(child.id(), "TERM");
        }
    }
    let deadline = Instant::now() + GRACE;
    for (name, child) in children.iter_mut() {
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                eprintln!("the {name} does not stop; killing it");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            sleep(Duration::from_millis(100));
        }
    }
}

/// The gateway's shared secret: 32 random bytes in hex, made once into `target/dev/gateway-secret`.
fn gateway_secret() -> Result<String> {
    let path = crate::root().join("target/dev/gateway-secret");
    if let Ok(secret) = fs::read_to_string(&path) {
        let secret = secret.trim();
        if secret.len() == 64 && secret.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Ok(secret.to_owned());
        }
    }
    let secret = random_hex(32)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{secret}"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

/// `bytes` random bytes (from /dev/urandom) in hex.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut random = vec![0_u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut source| source.read_exact(&mut random))
        .context("cannot read /dev/urandom")?;
    Ok(random
        .iter()
        .fold(String::with_capacity(2 * bytes), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
}

pub fn path_string(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::connect_addr;

    #[test]
    fn unspecified_listen_addresses_are_reached_on_loopback() -> anyhow::Result<()> {
        assert_eq!(connect_addr("0.0.0.0:8080")?.to_string(), "127.0.0.1:8080");
        assert_eq!(connect_addr("[::]:8080")?.to_string(), "[::1]:8080");
        assert_eq!(
            connect_addr("127.0.0.1:9000")?.to_string(),
            "127.0.0.1:9000"
        );
        Ok(())
    }
}
