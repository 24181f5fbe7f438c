//! The store under test, as processes on loopback: a private PostgreSQL instance, a three-node
//! NATS JetStream cluster, two api replicas and two replicas of each saga participant, plus the
//! faults the harness applies to them (SIGKILL and restart, a NATS node stopped and restarted,
//! PostgreSQL restarted, the Redis namespace wiped).
//!
//! Every process is announced to the [janitor](crate::janitor) before it can outlive us, and so
//! are the PostgreSQL instance (stopped with `pg_ctl`) and the directories (removed).

use std::fs::{self, File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::dev::{self, http_ok};
use crate::janitor::Janitor;
use crate::services;

/// The saga participants, each run as its own process (`saga run <participant>`).
pub const PARTICIPANTS: [&str; 5] = [
    "ordering",
    "billing",
    "fulfillment",
    "library",
    "notification",
];
/// Replicas of the api and of each participant.
pub const REPLICAS: usize = 2;
/// NATS nodes (streams are R3).
pub const NATS_NODES: usize = 3;
/// How long a (re)started process or service may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A long-running process of the store.
pub struct Proc {
    pub name: String,
    /// `api serve` or `saga run <participant>`.
    args: Vec<String>,
    /// `API_LISTEN_ADDR` or `SAGA_HEALTH_ADDR`: where `/readyz` answers.
    pub addr: SocketAddr,
    is_api: bool,
    child: Option<Child>,
    /// Exits nobody asked for (found dead and started again).
    pub unexpected_exits: u32,
}

pub struct NatsNode {
    pub client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct Stack {
    pub dir: PathBuf,
    pub logs: PathBuf,
    bin_dir: PathBuf,
    pg_bin: PathBuf,
    pg_data: PathBuf,
    pg_port: u16,
    pub database_url: String,
    pub redis_url: String,
    pub namespace: String,
    pub nats: Vec<NatsNode>,
    pub procs: Vec<Proc>,
    /// The environment every process of the store gets (plus its own address and NATS node).
    env: Vec<(&'static str, String)>,
    pub janitor: Janitor,
}

/// `n` ports nothing listens on (the kernel's picks, held together so they differ).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Stack {
    /// Makes the run's directories, announcing them to the janitor first.
    pub fn prepare(
        mut janitor: Janitor,
        bin_dir: PathBuf,
        redis_url: String,
        id: u32,
    ) -> Result<Self> {
        let dir = crate::root().join(format!("target/chaos/run-{id}"));
        let logs = crate::root().join("target/chaos/logs");
        janitor.api(&bin_dir.join("api"))?;
        let namespace = format!("chaos:{id}");
        janitor.redis(&redis_url, &namespace)?;
        // PostgreSQL keeps its data in the run's directory, or where the postgres user can
        // reach it: stopped (either) before the directories go.
        let external = PathBuf::from(format!("/var/tmp/xtask-chaos-{id}"));
        janitor.postgres(&dir.join("pg/data"))?;
        janitor.postgres(&external.join("data"))?;
        janitor.dir(&dir)?;
        janitor.dir(&external)?;
        let _ = fs::remove_dir_all(&logs);
        for d in [&dir, &logs] {
            fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let pg_bin = services::pg_bin_dir().context("the PostgreSQL server is not installed")?;
        // The postgres user must reach the data directory (as root, PostgreSQL runs as it).
        let mut pg_base = dir.join("pg");
        fs::create_dir_all(&pg_base)?;
        if services::is_root() {
            services::chown_postgres(&pg_base)?;
            let reachable = Cmd::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&pg_base)
                .current_dir("/")
                .succeeds();
            if !reachable {
                pg_base = external;
                fs::create_dir_all(&pg_base)?;
                services::chown_postgres(&pg_base)?;
            }
        }
        let pg_data = pg_base.join("data");

        let ports = free_ports(1 + 3 * NATS_NODES + REPLICAS * (1 + PARTICIPANTS.len()))?;
        let mut ports = ports.into_iter();
        let mut next = || ports.next().context("too few ports");
        let pg_port = next()?;
        let mut nats = Vec::new();
        let node_ports: Vec<(u16, u16, u16)> = (0..NATS_NODES)
            .map(|_| Ok((next()?, next()?, next()?)))
            .collect::<Result<_>>()?;
        for (i, (client, route, monitor)) in node_ports.iter().enumerate() {
            let store = dir.join(format!("nats-{i}"));
            fs::create_dir_all(&store)?;
            let routes: Vec<String> = node_ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (_, r, _))| format!("\"nats-route://127.0.0.1:{r}\""))
                .collect();
            let config = dir.join(format!("nats-{i}.conf"));
            fs::write(
                &config,
                format!(
                    "server_name: n{i}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n\
                     jetstream {{\n  store_dir: \"{}\"\n}}\n\
                     cluster {{\n  name: chaos\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                    store.display(),
                    routes.join(", ")
                ),
            )
            .with_context(|| format!("cannot write {}", config.display()))?;
            nats.push(NatsNode {
                client_port: *client,
                monitor_port: *monitor,
                config,
                child: None,
            });
        }
        let mut procs = Vec::new();
        for r in 0..REPLICAS {
            procs.push(Proc {
                name: format!("api-{r}"),
                args: vec!["serve".into()],
                addr: loopback(next()?),
                is_api: true,
                child: None,
                unexpected_exits: 0,
            });
        }
        for participant in PARTICIPANTS {
            for r in 0..REPLICAS {
                procs.push(Proc {
                    name: format!("{participant}-{r}"),
                    args: vec!["run".into(), participant.into()],
                    addr: loopback(next()?),
                    is_api: false,
                    child: None,
                    unexpected_exits: 0,
                });
            }
        }
        let database_url = format!("postgres://postgres@127.0.0.1:{pg_port}/store");
        Ok(Self {
            dir,
            logs,
            bin_dir,
            pg_bin,
            pg_data,
            pg_port,
            database_url,
            redis_url,
            namespace,
            nats,
            procs,
            env: Vec::new(),
            janitor,
        })
    }

    pub fn api_bin(&self) -> PathBuf {
        self.bin_dir.join("api")
    }

    pub fn psql(&self) -> PathBuf {
        self.pg_bin.join("psql")
    }

    /// The api replicas' addresses.
    pub fn api_addrs(&self) -> Vec<SocketAddr> {
        self.procs
            .iter()
            .filter(|p| p.is_api)
            .map(|p| p.addr)
            .collect()
    }

    fn log(&self, name: &str) -> Result<File> {
        let path = self.logs.join(format!("{name}.log"));
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    // -----------------------------------------------------------------------------------------
    // PostgreSQL

    /// `initdb` (as the postgres user when root) and the first start.
    pub fn init_postgres(&mut self) -> Result<()> {
        fs::create_dir_all(&self.pg_data)?;
        fs::set_permissions(
            &self.pg_data,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        if services::is_root() {
            services::chown_postgres(&self.pg_data)?;
        }
        services::as_postgres(self.pg_bin.join("initdb"))
            .arg("-D")
            .arg(&self.pg_data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .quiet()
            .context("initdb failed")?;
        self.start_postgres()
    }

    pub fn start_postgres(&self) -> Result<()> {
        // fsync off: only an operating-system crash could lose data, and the harness kills
        // processes, not the machine. Enough connections for every replica's pool.
        let options = format!(
            "-p {} -h 127.0.0.1 -k '{}' -c max_connections=300 -c fsync=off",
            self.pg_port,
            self.pg_data.display()
        );
        let log = self
            .pg_data
            .parent()
            .unwrap_or(&self.pg_data)
            .join("postgres.log");
        services::as_postgres(self.pg_bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.pg_data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .quiet()
            .with_context(|| {
                format!(
                    "the end of {}:\n{}",
                    log.display(),
                    services::tail(&log, 20)
                )
            })
    }

    /// `pg_ctl stop`: `fast` (clean) or `immediate` (a crash, recovered from the WAL).
    pub fn stop_postgres(&self, mode: &str) -> Result<()> {
        services::as_postgres(self.pg_bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.pg_data)
            .args(["-m", mode, "-w", "-t", "60", "stop"])
            .quiet()
    }

    // -----------------------------------------------------------------------------------------
    // NATS

    pub fn start_nats(&mut self, i: usize) -> Result<()> {
        let log = self.log(&format!("nats-{i}"))?;
        let nats = services::find_program("nats-server").context("nats-server is not installed")?;
        let child = Cmd::new(nats)
            .arg("-c")
            .arg(&self.nats[i].config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn_quiet()?;
        self.janitor.watch(&child)?;
        self.nats[i].child = Some(child);
        Ok(())
    }

    pub fn nats_up(&self, i: usize) -> bool {
        self.nats[i].child.is_some()
    }

    /// Waits until node `i` says it is healthy (`/healthz`: JetStream current).
    pub fn wait_nats(&self, i: usize) -> Result<()> {
        let addr = loopback(self.nats[i].monitor_port);
        wait_until(READY_TIMEOUT, || http_ok(addr, "/healthz"))
            .with_context(|| format!("NATS node {i} did not become healthy"))
    }

    /// Stops node `i` (SIGTERM, SIGKILL if it lingers).
    pub fn stop_nats(&mut self, i: usize) {
        if let Some(child) = self.nats[i].child.take() {
            stop_child(child, "TERM");
        }
    }

    /// The URL of a running node, preferring node `hint`.
    fn nats_url(&self, hint: usize) -> String {
        let n = self.nats.len();
        let i = (0..n)
            .map(|k| (hint + k) % n)
            .find(|&i| self.nats_up(i))
            .unwrap_or(hint % n);
        format!("nats://127.0.0.1:{}", self.nats[i].client_port)
    }

    // -----------------------------------------------------------------------------------------
    // The store's processes

    pub fn set_env(&mut self, env: Vec<(&'static str, String)>) {
        self.env = env;
    }

    /// Starts process `i` (connected to a running NATS node).
    pub fn start_proc(&mut self, i: usize) -> Result<()> {
        let nats_url = self.nats_url(i);
        let log = self.log(&self.procs[i].name)?;
        let proc = &self.procs[i];
        let (program, addr_var) = if proc.is_api {
            (self.bin_dir.join("api"), "API_LISTEN_ADDR")
        } else {
            (self.bin_dir.join("saga"), "SAGA_HEALTH_ADDR")
        };
        let child = Cmd::new(program)
            .args(&proc.args)
            .envs(&self.env)
            .env("NATS_URL", nats_url)
            .env(addr_var, proc.addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn_quiet()?;
        self.janitor.watch(&child)?;
        self.procs[i].child = Some(child);
        Ok(())
    }

    /// Waits until process `i` answers `/readyz` (PostgreSQL and NATS reached, Redis maybe). A
    /// process that exits before (e.g. its start-up request to JetStream timed out while the
    /// cluster was busy) is started again, a few times.
    pub fn wait_proc(&mut self, i: usize) -> Result<()> {
        let addr = self.procs[i].addr;
        let name = self.procs[i].name.clone();
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut starts = 1;
        loop {
            if http_ok(addr, "/readyz") {
                return Ok(());
            }
            if let Some(child) = self.procs[i].child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.procs[i].child = None;
                let log = self.logs.join(format!("{name}.log"));
                if starts >= 4 || Instant::now() >= deadline {
                    bail!(
                        "{name} exited ({status}) before it was ready, {starts} times; the end of its log:\n{}",
                        services::tail(&log, 15)
                    );
                }
                let why = services::tail(&log, 200)
                    .lines()
                    .rfind(|line| line.starts_with("Error"))
                    .unwrap_or("")
                    .to_owned();
                println!(
                    "chaos: {name} exited ({status}) before it was ready ({why}); starting it again"
                );
                starts += 1;
                self.start_proc(i)?;
                continue;
            }
            if Instant::now() >= deadline {
                bail!("{name} was not ready within {READY_TIMEOUT:?}");
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL of process `i` (waited for).
    pub fn kill_proc(&mut self, i: usize) {
        if let Some(mut child) = self.procs[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again, and counts, the processes found dead that nobody stopped.
    pub fn revive(&mut self) -> Result<Vec<String>> {
        let mut revived = Vec::new();
        for i in 0..self.procs.len() {
            let exited = match self.procs[i].child.as_mut() {
                Some(child) => child.try_wait()?.is_some(),
                None => false,
            };
            if exited {
                self.procs[i].child = None;
                self.procs[i].unexpected_exits += 1;
                revived.push(self.procs[i].name.clone());
                self.start_proc(i)?;
            }
        }
        Ok(revived)
    }

    /// Deletes every key of the namespace (`api purge`).
    pub fn wipe_redis(&self) -> Result<()> {
        Cmd::new(self.api_bin())
            .arg("purge")
            .env("PURGE_REDIS_URL", &self.redis_url)
            .env("PURGE_REDIS_NAMESPACE", &self.namespace)
            .env("RUST_LOG", "warn")
            .quiet()
    }

    /// Stops everything this stack started (processes, NATS, PostgreSQL); the janitor removes
    /// the rest when it finishes.
    pub fn shutdown(&mut self) {
        let children: Vec<Child> = self
            .procs
            .iter_mut()
            .filter_map(|p| p.child.take())
            .chain(self.nats.iter_mut().filter_map(|n| n.child.take()))
            .collect();
        for child in &children {
            services::send_signal(child.id(), "TERM");
        }
        for child in children {
            stop_child(child, "TERM");
        }
        let _ = self.stop_postgres("fast");
    }

    /// `(variable, value)` pairs for the api commands run outside the stack (migrate, …).
    pub fn command_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self.env.clone();
        env.push(("NATS_URL", self.nats_url(0)));
        env
    }
}

/// Sends `signal`, waits up to the janitor's grace period, then SIGKILL.
fn stop_child(mut child: Child, signal: &str) {
    if matches!(child.try_wait(), Ok(None)) {
        services::send_signal(child.id(), signal);
        if !services::wait_gone(child.id(), crate::janitor::GRACE) {
            let _ = child.kill();
        }
    }
    let _ = child.wait();
}

/// Polls `ready` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() >= deadline {
            bail!("not within {timeout:?}");
        }
        sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Paths as the report shows them.
pub fn shown(path: &Path) -> String {
    services::shown_path(path)
}

/// Keeps `dev` in use for the shared helpers (random secrets, key pairs).
pub fn random_secret() -> Result<String> {
    dev::random_hex(32)
}
