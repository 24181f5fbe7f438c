//! `cargo xtask dev`: runs the whole store on this machine until Ctrl-C.
//!
//! # How Ctrl-C stops everything
//!
//! On Ctrl-C the terminal sends SIGINT to its whole foreground process group. The children
//! started here (the api, later the gateway and saga participants) stay in xtask's process
//! group, so they receive that SIGINT themselves and shut down.
//!
//! xtask cannot catch SIGINT (std has no signal API, unsafe code is forbidden in this workspace
//! and xtask takes no dependency for it), so it dies at once. The cleanup is therefore done by
//! a *janitor*: a second xtask process (`xtask __janitor <services>`) started at the beginning
//! in a process group of its own, so no Ctrl-C reaches it. Its standard input is a pipe from
//! this process, on which this process writes the PID of each child it starts. When this
//! process ends, in whatever way (Ctrl-C, a failed step, the api exiting, even SIGKILL), the
//! kernel closes the pipe and the janitor reads end-of-file. It then waits for the children to
//! exit (they got the SIGINT too), sends SIGTERM and then SIGKILL to any that lingers, and
//! finally stops the private service instances that *this run* started (instances that were
//! found running, private or not, are left alone). When the api exits by itself, this process
//! stops the other children, closes the pipe and waits for the janitor, so the output stays in
//! order.

use std::env;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::services::{self, Kind};

/// The api listens on loopback only; the gateway is the way in (see `gateway::DEV_*`).
const DEFAULT_LISTEN_ADDR: &str = crate::gateway::DEV_API_LISTEN;
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child may take to exit after SIGINT/SIGTERM before it gets a harder signal.
const GRACE: Duration = Duration::from_secs(10);

pub fn run(release: bool) -> Result<()> {
    let services = services::ensure()?;
    crate::gateway::ensure_installed()?;
    let mut janitor = Janitor::spawn(&services.started())?;
    let mut env = services.env();

    let mut build = Cmd::new("cargo").args(["build", "-p", "api", "-p", "saga"]);
    if release {
        build = build.arg("--release");
    }
    build.envs(&env).run()?;
    let bin_dir = crate::target_dir().join(if release { "release" } else { "debug" });
    let api = bin_dir.join("api");

    if env::var_os("JWT_PRIVATE_KEY_FILE").is_none() {
        let keys = crate::root().join("target/dev/keys");
        fs::create_dir_all(&keys).with_context(|| format!("cannot create {}", keys.display()))?;
        // Creates the key pair only if it is absent.
        Cmd::new(&api)
            .args(["gen-keys", "--dir"])
            .arg(&keys)
            .envs(&env)
            .run()?;
        env.push((
            "JWT_PRIVATE_KEY_FILE",
            path_string(&keys.join("jwt-private.pem"))?,
        ));
        env.push((
            "JWT_PUBLIC_KEY_FILE",
            path_string(&keys.join("jwt-public.pem"))?,
        ));
    }
    let secret = match env::var("GATEWAY_SECRET") {
        Ok(secret) => secret,
        Err(_) => gateway_secret()?,
    };
    env.push(("GATEWAY_SECRET", secret.clone()));
    let listen = env::var("API_LISTEN_ADDR").unwrap_or_else(|_| DEFAULT_LISTEN_ADDR.to_owned());
    env.push(("API_LISTEN_ADDR", listen.clone()));

    // Creates the database if missing and applies the migrations.
    Cmd::new(&api).arg("migrate").envs(&env).run()?;
    // Idempotent; prints the demo accounts and their passwords.
    Cmd::new(&api).arg("seed-demo").envs(&env).run()?;

    crate::web::ensure_web_tools()?;
    let spa = crate::web::build_spa(release)?;

    // The gateway: the public keys as its njs reads them, then nginx.conf rendered for here.
    let keys_file = crate::root().join("target/dev/gateway/keys.json");
    Cmd::new(&api)
        .arg("gateway-keys")
        .arg("--out")
        .arg(&keys_file)
        .envs(&env)
        .run()?;
    let upstream = connect_addr(&listen)?.to_string();
    let gateway = crate::gateway::prepare(&upstream, &keys_file, &spa, &secret)?;

    // Every long-running process of the store. They stay in our process group, so a Ctrl-C
    // in the terminal reaches each of them directly (see the module documentation).
    let mut children = Vec::new();
    let api_child = Cmd::new(&api).arg("serve").envs(&env).spawn()?;
    janitor.watch(&api_child)?;
    children.push(("api", api_child));
    let gateway_child = crate::gateway::command(&gateway).spawn()?;
    janitor.watch(&gateway_child)?;
    children.push(("gateway", gateway_child));
    // Every saga participant in one process (`saga run <participant>` runs one, as in a cluster).
    let saga_child = Cmd::new(bin_dir.join("saga"))
        .args(["run", "all"])
        .envs(&env)
        .spawn()?;
    janitor.watch(&saga_child)?;
    children.push(("saga", saga_child));

    let health = wait_healthy(&listen, &mut children);
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
    janitor.finish();
    result
}

/// Waits until `GET /healthz` answers 200, failing early if a child exits.
fn wait_healthy(listen: &str, children: &mut [(&str, Child)]) -> Result<()> {
    let addr = connect_addr(listen)?;
    let deadline = Instant::now() + HEALTH_TIMEOUT;
    while !healthy(addr) {
        check_running(children)?;
        if Instant::now() >= deadline {
            bail!("the api did not answer GET http://{addr}/healthz within {HEALTH_TIMEOUT:?}");
        }
        sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Whether `GET /healthz` answers with status 200 (raw HTTP/1.1 over TCP).
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
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
fn connect_addr(listen: &str) -> Result<SocketAddr> {
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
fn check_running(children: &mut [(&str, Child)]) -> Result<()> {
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
fn stop_children(children: &mut [(&str, Child)]) {
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
    let mut bytes = [0_u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    let secret = bytes
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
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

fn path_string(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The janitor seen from `dev` (see the module documentation).
struct Janitor {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Janitor {
    /// Starts the janitor, which stops the private instances `started` when we end.
    fn spawn(started: &[Kind]) -> Result<Self> {
        let exe = env::current_exe().context("cannot find the xtask executable")?;
        let mut child = Cmd::new(exe)
            .arg("__janitor")
            .args(started.iter().map(|kind| kind.name()))
            .stdin(Stdio::piped())
            .own_process_group()
            .spawn_quiet()?;
        let pipe = child.stdin.take();
        Ok(Self { child, pipe })
    }

    /// Tells the janitor about a child to wait for (and to stop if it lingers).
    fn watch(&mut self, child: &Child) -> Result<()> {
        let pipe = self.pipe.as_mut().context("the janitor has finished")?;
        writeln!(pipe, "{}", child.id()).context("cannot talk to the janitor")
    }

    /// Closes the pipe, which makes the janitor clean up, and waits for it.
    fn finish(mut self) {
        drop(self.pipe.take());
        let _ = self.child.wait();
    }
}

/// `xtask __janitor <service>...`: the janitor itself (see the module documentation). Reads
/// child PIDs from stdin until end-of-file, then stops those children and the named services.
pub fn janitor(args: &[String]) -> Result<()> {
    let kinds = args
        .iter()
        .map(|name| Kind::from_name(name).with_context(|| format!("unknown service {name}")))
        .collect::<Result<Vec<_>>>()?;
    let mut pids = Vec::new();
    // Ends when every writer of the pipe is gone, i.e. when `dev` has ended.
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Ok(pid) = line.trim().parse::<u32>() {
            pids.push(pid);
        }
    }
    // The children got the terminal's SIGINT too (if that is why `dev` ended): give them time
    // to shut down, then insist.
    let deadline = Instant::now() + GRACE;
    for &pid in &pids {
        let left = deadline.saturating_duration_since(Instant::now());
        if !services::wait_gone(pid, left) {
            services::send_signal(pid, "TERM");
        }
    }
    for &pid in &pids {
        if !services::wait_gone(pid, GRACE) {
            services::send_signal(pid, "KILL");
        }
    }
    let mut result = Ok(());
    for kind in kinds.into_iter().rev() {
        match services::stop(kind) {
            Ok(Some(_)) => println!(
                "{:<9} stopped  (private instance started by this run)",
                kind.name()
            ),
            Ok(None) => {}
            Err(error) => result = Err(error),
        }
    }
    result
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
