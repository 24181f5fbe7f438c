//! Finds PostgreSQL, Redis and NATS (with JetStream), or runs private instances of them.
//!
//! Each service is configured by one environment variable, with a loopback default:
//! `DATABASE_URL`, `REDIS_URL`, `NATS_URL`. If the configured server answers, it is used as is.
//! If it does not and the variable has its default value, a private instance is started under
//! `target/services/<name>/` on another port (55432, 56379, 54222), and the changed URL is passed
//! to every command xtask runs afterwards ([`Services::env`]). Missing server binaries are
//! installed with apt-get when xtask runs as root.
//!
//! Private instances keep running after `cargo xtask test` (the next run is faster);
//! `cargo xtask services stop` stops them. `XTASK_FORCE_PRIVATE=1` skips discovery and always
//! uses the private instances.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::cmd::Cmd;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Redis,
    Nats,
}

impl Kind {
    pub const ALL: [Self; 3] = [Self::Postgres, Self::Redis, Self::Nats];

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Nats => "nats",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn env_var(self) -> &'static str {
        match self {
            Self::Postgres => "DATABASE_URL",
            Self::Redis => "REDIS_URL",
            Self::Nats => "NATS_URL",
        }
    }

    fn default_url(self) -> &'static str {
        match self {
            Self::Postgres => "postgres://postgres@127.0.0.1:5432/store",
            Self::Redis => "redis://127.0.0.1:6379",
            Self::Nats => "nats://127.0.0.1:4222",
        }
    }

    /// The port of a URL that names none.
    fn default_port(self) -> u16 {
        match self {
            Self::Postgres => 5432,
            Self::Redis => 6379,
            Self::Nats => 4222,
        }
    }

    fn private_port(self) -> u16 {
        match self {
            Self::Postgres => 55432,
            Self::Redis => 56379,
            Self::Nats => 54222,
        }
    }

    fn private_url(self) -> String {
        let port = self.private_port();
        match self {
            Self::Postgres => format!("postgres://postgres@127.0.0.1:{port}/store"),
            Self::Redis => format!("redis://127.0.0.1:{port}"),
            Self::Nats => format!("nats://127.0.0.1:{port}"),
        }
    }

    /// The Debian package with the server.
    fn package(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::Redis => "redis-server",
            Self::Nats => "nats-server",
        }
    }

    /// `target/services/<name>`.
    fn dir(self) -> PathBuf {
        crate::root().join("target/services").join(self.name())
    }

    /// The file holding the PID of the private instance, and a word its command line contains.
    fn pid_file(self) -> Option<(PathBuf, &'static str)> {
        match self {
            Self::Postgres => Some((pg_data_dir()?.join("postmaster.pid"), "postgres")),
            Self::Redis => Some((self.dir().join("redis.pid"), "redis-server")),
            Self::Nats => Some((self.dir().join("nats.pid"), "nats-server")),
        }
    }

    fn log_file(self) -> PathBuf {
        match self {
            Self::Postgres => pg_data_dir()
                .and_then(|data| Some(data.parent()?.join("postgres.log")))
                .unwrap_or_else(|| self.dir().join("postgres.log")),
            Self::Redis => self.dir().join("redis.log"),
            Self::Nats => self.dir().join("nats.log"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The configured server answered.
    Found,
    /// A private instance was already running.
    Reused,
    /// A private instance was started by this run.
    Started,
}

pub struct Service {
    pub kind: Kind,
    pub url: String,
    pub origin: Origin,
}

/// The services to use, one per [`Kind`].
pub struct Services(Vec<Service>);

impl Services {
    /// The environment every child process gets: `DATABASE_URL`, `REDIS_URL`, `NATS_URL`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.0
            .iter()
            .map(|service| (service.kind.env_var(), service.url.clone()))
            .collect()
    }

    /// The URL of the service of `kind`, if it was ensured.
    pub fn url(&self, kind: Kind) -> Option<&str> {
        self.0
            .iter()
            .find(|service| service.kind == kind)
            .map(|service| service.url.as_str())
    }

    /// The private instances this run started.
    pub fn started(&self) -> Vec<Kind> {
        self.0
            .iter()
            .filter(|service| service.origin == Origin::Started)
            .map(|service| service.kind)
            .collect()
    }
}

/// Finds each service or starts a private instance of it, printing one line per service.
pub fn ensure() -> Result<Services> {
    ensure_only(&Kind::ALL)
}

/// [`ensure`] for some of the services only (`cargo xtask chaos` runs its own PostgreSQL and
/// NATS and needs only Redis).
pub fn ensure_only(kinds: &[Kind]) -> Result<Services> {
    let force =
        env::var("XTASK_FORCE_PRIVATE").is_ok_and(|value| !value.is_empty() && value != "0");
    let mut services = Vec::new();
    let mut private = Vec::new();
    for kind in kinds.iter().copied() {
        let url = env::var(kind.env_var()).unwrap_or_else(|_| kind.default_url().to_owned());
        if force {
            private.push((kind, "XTASK_FORCE_PRIVATE is set".to_owned()));
            continue;
        }
        match probe(kind, &url) {
            Ok(note) => {
                report(kind, "found", &url, &note);
                services.push(Service {
                    kind,
                    url,
                    origin: Origin::Found,
                });
            }
            Err(why) if url == kind.default_url() => private.push((kind, format!("{why:#}"))),
            Err(why) => bail!(
                "{}={} cannot be used: {why:#}\nStart that server, or unset {} to let xtask run a private instance.",
                kind.env_var(),
                redact(&url),
                kind.env_var(),
            ),
        }
    }

    let mut to_start = Vec::new();
    for (kind, why) in private {
        if private_running(kind)? {
            let url = kind.private_url();
            report(kind, "reused", &url, &format!("private instance; {why}"));
            services.push(Service {
                kind,
                url,
                origin: Origin::Reused,
            });
        } else {
            to_start.push((kind, why));
        }
    }

    install_missing(&to_start.iter().map(|(kind, _)| *kind).collect::<Vec<_>>())?;
    for (kind, why) in to_start {
        let place = start(kind)?;
        wait_ready(kind)?;
        let url = kind.private_url();
        report(
            kind,
            "started",
            &url,
            &format!("private instance, {place}; {why}"),
        );
        services.push(Service {
            kind,
            url,
            origin: Origin::Started,
        });
    }
    services.sort_by_key(|service| Kind::ALL.iter().position(|kind| *kind == service.kind));
    Ok(Services(services))
}

/// `cargo xtask services stop`: stops every private instance that runs.
pub fn stop_all() -> Result<()> {
    for kind in Kind::ALL.into_iter().rev() {
        match stop(kind)? {
            Some(pid) => println!("{:<9} stopped  private instance (pid {pid})", kind.name()),
            None => println!("{:<9} -        no private instance runs", kind.name()),
        }
    }
    Ok(())
}

/// `cargo xtask services status`: what discovery would find, and which private instances run.
pub fn status() -> Result<()> {
    for kind in Kind::ALL {
        let url = env::var(kind.env_var()).unwrap_or_else(|_| kind.default_url().to_owned());
        let configured = match probe(kind, &url) {
            Ok(note) if note.is_empty() => "answers".to_owned(),
            Ok(note) => format!("answers, {note}"),
            Err(why) => format!("{why:#}"),
        };
        let private = match kind.pid_file().and_then(|_| owned_pid(kind)) {
            Some(pid) => format!("{} (pid {pid})", kind.private_url()),
            None => "not running".to_owned(),
        };
        println!(
            "{:<9} {}={} {configured}\n{:<9} private: {private}",
            kind.name(),
            kind.env_var(),
            redact(&url),
            "",
        );
    }
    Ok(())
}

/// Stops the private instance of `kind` if it runs; returns its PID.
pub fn stop(kind: Kind) -> Result<Option<u32>> {
    let Some(pid) = owned_pid(kind) else {
        return Ok(None);
    };
    // SIGINT is PostgreSQL's "fast" shutdown (what `pg_ctl stop -m fast` sends); Redis and NATS
    // shut down cleanly on SIGTERM.
    let signal = if kind == Kind::Postgres {
        "INT"
    } else {
        "TERM"
    };
    send_signal(pid, signal);
    if !wait_gone(pid, STOP_TIMEOUT) {
        send_signal(pid, "KILL");
        if !wait_gone(pid, Duration::from_secs(5)) {
            bail!("cannot stop the private {} (pid {pid})", kind.name());
        }
    }
    if kind == Kind::Nats {
        // Nobody else removes it (PostgreSQL and Redis remove their own).
        let _ = fs::remove_file(kind.dir().join("nats.pid"));
    }
    Ok(Some(pid))
}

fn report(kind: Kind, verb: &str, url: &str, note: &str) {
    let url = redact(url);
    if note.is_empty() {
        println!("{:<9} {verb:<8} {url}", kind.name());
    } else {
        println!("{:<9} {verb:<8} {url}  ({note})", kind.name());
    }
}

// ---------------------------------------------------------------------------------------------
// Probing

/// Checks that the server of `url` answers (and, for NATS, has JetStream); returns a note.
fn probe(kind: Kind, url: &str) -> Result<String> {
    let (host, port) = host_port(url, kind.default_port())?;
    let stream = connect(&host, port)?;
    if kind == Kind::Postgres && url == kind.default_url() {
        postgres_admits(stream, "postgres", "store")
            .with_context(|| format!("the PostgreSQL at {host}:{port} cannot be used"))?;
        return Ok(String::new());
    }
    if kind == Kind::Nats {
        if !nats_jetstream(stream)? {
            bail!("the NATS server at {host}:{port} does not have JetStream enabled");
        }
        return Ok("JetStream enabled".to_owned());
    }
    Ok(String::new())
}

/// Host and port of a URL such as `scheme://user:password@host:port/path?query`. For a list of
/// servers (`nats://a:4222,nats://b:4222`), the first one.
pub fn host_port(url: &str, default_port: u16) -> Result<(String, u16)> {
    let first = url.split(',').next().unwrap_or(url).trim();
    let rest = first.split_once("://").map_or(first, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .with_context(|| format!("malformed address in {}", redact(url)))?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        bail!("{} names no TCP host", redact(url));
    }
    let port = match port {
        Some(port) => port
            .parse()
            .with_context(|| format!("bad port in {}", redact(url)))?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

pub fn connect(host: &str, port: u16) -> Result<TcpStream> {
    let addrs = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?;
    addrs
        .into_iter()
        .find_map(|addr| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).ok())
        .ok_or_else(|| anyhow!("nothing answers at {host}:{port}"))
}

/// Checks that PostgreSQL lets `user` in without a password, by sending a protocol 3.0 startup
/// message and reading the answer (then dropping the connection).
///
/// Only for the default URL, which has no password: a fresh Debian machine may run the cluster
/// of the `postgresql` package on 5432, which wants a password over TCP. Such a server answers,
/// but must not be "found"; a private instance is used instead. (A missing database is fine:
/// `api migrate` creates it.)
fn postgres_admits(stream: TcpStream, user: &str, database: &str) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut body = 196_608_i32.to_be_bytes().to_vec(); // protocol 3.0
    for part in ["user", user, "database", database] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let length = i32::try_from(body.len() + 4)?;
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    (&stream).write_all(&message)?;

    let mut reader = BufReader::new(stream.take(64 * 1024));
    loop {
        let mut header = [0_u8; 5];
        reader
            .read_exact(&mut header)
            .context("no answer to a startup message (is it PostgreSQL?)")?;
        let [tag, length @ ..] = header;
        let length = usize::try_from(i32::from_be_bytes(length))?.saturating_sub(4);
        let mut body = vec![0_u8; length.min(8 * 1024)];
        reader.read_exact(&mut body)?;
        match tag {
            // Authentication: 0 is "ok"; anything else asks for a password of some kind.
            b'R' => match body.get(..4) {
                Some([0, 0, 0, 0]) => {}
                _ => bail!(
                    "it asks user {user} for a password (e.g. the cluster of Debian's postgresql package)"
                ),
            },
            // ErrorResponse: fields of a type byte and a NUL-terminated string.
            b'E' => {
                let fields: Vec<&[u8]> = body.split(|byte| *byte == 0).collect();
                let field = |code: u8| {
                    fields
                        .iter()
                        .find(|field| field.first() == Some(&code))
                        .map(|field| String::from_utf8_lossy(&field[1..]).into_owned())
                        .unwrap_or_default()
                };
                // 3D000: the database does not exist yet. Anything else (no such role, no
                // pg_hba.conf entry, ...) means the default URL does not work there.
                if field(b'C') == "3D000" {
                    return Ok(());
                }
                bail!("{}", field(b'M'));
            }
            // A notice before authentication: read on.
            b'N' => {}
            // Parameter status, backend key, ready for query: authenticated.
            _ => return Ok(()),
        }
    }
}

/// Reads the `INFO {json}` line a NATS server sends first; says whether JetStream is enabled.
fn nats_jetstream(stream: TcpStream) -> Result<bool> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream.take(64 * 1024))
        .read_line(&mut line)
        .context("no NATS INFO line within 2 s (is it a NATS server?)")?;
    if !line.starts_with("INFO ") {
        bail!("not a NATS server (it did not start with an INFO line)");
    }
    Ok(line.contains("\"jetstream\":true"))
}

/// The URL with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The PostgreSQL URL with its database replaced by `name` (the query, if any, kept).
pub fn with_database(url: &str, name: &str) -> Result<String> {
    let (_, rest) = url
        .split_once("://")
        .with_context(|| format!("{} is not a URL", redact(url)))?;
    let end = url.len() - rest.len() + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (server, tail) = url.split_at(end);
    let query = tail.find(['?', '#']).map_or("", |at| &tail[at..]);
    Ok(format!("{server}/{name}{query}"))
}

// ---------------------------------------------------------------------------------------------
// Private instances

/// Whether the private instance of `kind` already runs (left over from an earlier run).
fn private_running(kind: Kind) -> Result<bool> {
    let port = kind.private_port();
    let Ok(stream) = connect("127.0.0.1", port) else {
        return Ok(false);
    };
    if owned_pid(kind).is_none() {
        bail!(
            "port {port} (for a private {}) is in use by a process xtask did not start (no live \
             process in the PID file under {}); stop it, or set {} to a server to use",
            kind.name(),
            kind.dir().display(),
            kind.env_var(),
        );
    }
    if kind == Kind::Nats && !nats_jetstream(stream)? {
        bail!(
            "the private NATS server on port {port} runs without JetStream; run `cargo xtask services stop`"
        );
    }
    Ok(true)
}

/// The PID of the running private instance of `kind`, from its PID file, if that process lives
/// and is the expected server.
fn owned_pid(kind: Kind) -> Option<u32> {
    let (file, word) = kind.pid_file()?;
    let pid = fs::read_to_string(file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()?;
    let command_line = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    (alive(pid) && String::from_utf8_lossy(&command_line).contains(word)).then_some(pid)
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (command) state ...`; the command may contain spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Sends a signal with the shell's `kill` builtin (the `kill` program is not installed
/// everywhere, and unsafe code is forbidden here).
pub fn send_signal(pid: u32, signal: &str) {
    let _ = Cmd::new("sh")
        .args(["-c", "kill -s \"$0\" \"$1\" 2>/dev/null", signal])
        .arg(pid.to_string())
        .succeeds();
}

/// Waits until the process is gone; says whether it went in time.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(100));
    }
    true
}

/// Starts the private instance of `kind`; returns where it keeps its files.
fn start(kind: Kind) -> Result<String> {
    match kind {
        Kind::Postgres => start_postgres(),
        Kind::Redis => start_redis(),
        Kind::Nats => start_nats(),
    }
}

/// Waits until the private instance answers (for NATS: with JetStream).
fn wait_ready(kind: Kind) -> Result<()> {
    let port = kind.private_port();
    let started = Instant::now();
    loop {
        if let Ok(stream) = connect("127.0.0.1", port)
            && (kind != Kind::Nats || nats_jetstream(stream).unwrap_or(false))
        {
            return Ok(());
        }
        let gone = started.elapsed() > Duration::from_secs(3) && owned_pid(kind).is_none();
        if gone || started.elapsed() > READY_TIMEOUT {
            let log = kind.log_file();
            bail!(
                "the private {} {} on 127.0.0.1:{port}; the end of {}:\n{}",
                kind.name(),
                if gone {
                    "exited instead of listening"
                } else {
                    "did not answer within 20 s"
                },
                log.display(),
                tail(&log, 20),
            );
        }
        sleep(Duration::from_millis(100));
    }
}

fn start_redis() -> Result<String> {
    let redis = find_program("redis-server").context("redis-server is not installed")?;
    let dir = Kind::Redis.dir();
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // With `--daemonize yes` the server forks, detaches from the terminal (so Ctrl-C does not
    // reach it) and points its stdio at /dev/null; the command returns once it has forked.
    Cmd::new(redis)
        .args(["--port", &Kind::Redis.private_port().to_string()])
        .args(["--bind", "127.0.0.1", "--daemonize", "yes"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(&dir)
        .arg("--pidfile")
        .arg(dir.join("redis.pid"))
        .arg("--logfile")
        .arg(dir.join("redis.log"))
        .quiet()?;
    Ok(format!("files in {}", shown_path(&dir)))
}

fn start_nats() -> Result<String> {
    let nats = find_program("nats-server").context("nats-server is not installed")?;
    let dir = Kind::Nats.dir();
    let store = dir.join("js");
    fs::create_dir_all(&store).with_context(|| format!("cannot create {}", store.display()))?;
    let log_path = dir.join("nats.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    // nats-server does not daemonize: run it in a process group of its own (so the SIGINT of a
    // Ctrl-C in the terminal does not reach it) and leave it running; dropping the `Child`
    // neither waits for it nor kills it.
    let child = Cmd::new(nats)
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &Kind::Nats.private_port().to_string(),
            "-sd",
        ])
        .arg(&store)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .own_process_group()
        .spawn_quiet()?;
    let pid_file = dir.join("nats.pid");
    fs::write(&pid_file, format!("{}\n", child.id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    Ok(format!("files in {}", shown_path(&dir)))
}

/// PostgreSQL refuses to run as root: as root, `initdb` and `pg_ctl` run as the `postgres` user
/// (`runuser`), which must own the directories and be able to reach them.
fn start_postgres() -> Result<String> {
    let base = pg_base()?;
    let data = base.join("data");
    let log = base.join("postgres.log");
    let bin = pg_bin_dir().context("the PostgreSQL server is not installed")?;
    if !data.join("PG_VERSION").is_file() {
        fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o700))?;
        if is_root() {
            chown_postgres(&data)?;
        }
        as_postgres(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .quiet()
            .context("initdb failed")?;
    }
    // Listen on 127.0.0.1 only, with the Unix socket inside the data directory (so it clashes
    // with nothing in /var/run/postgresql). `-w` waits until the server accepts connections;
    // pg_ctl starts the server in a session of its own, so Ctrl-C in the terminal does not reach it.
    let options = format!(
        "-p {} -h 127.0.0.1 -k '{}'",
        Kind::Postgres.private_port(),
        data.display()
    );
    as_postgres(bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-o", &options, "-w", "start"])
        .quiet()
        .with_context(|| format!("the end of {}:\n{}", log.display(), tail(&log, 20)))?;
    Ok(format!("data in {}", shown_path(&base)))
}

/// The data directory of the private PostgreSQL, if it has been created.
fn pg_data_dir() -> Option<PathBuf> {
    [Kind::Postgres.dir(), pg_external_base()]
        .into_iter()
        .map(|base| base.join("data"))
        .find(|data| data.join("PG_VERSION").is_file())
}

/// Where an instance that the `postgres` user could not keep under `target/` keeps its files.
fn pg_external_base() -> PathBuf {
    // FNV-1a of the workspace path: one directory per checkout.
    let hash = crate::root()
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    PathBuf::from(format!("/var/tmp/xtask-postgres-{hash:016x}"))
}

/// The directory holding the private PostgreSQL's `data/` and `postgres.log`, created if needed:
/// `target/services/postgres`, unless we are root and the `postgres` user cannot reach it (the
/// checkout lives under a directory others cannot enter, such as /root); then a directory of
/// its own under /var/tmp.
fn pg_base() -> Result<PathBuf> {
    if let Some(base) = pg_data_dir().as_deref().and_then(Path::parent) {
        return Ok(base.to_owned());
    }
    let local = Kind::Postgres.dir();
    fs::create_dir_all(&local).with_context(|| format!("cannot create {}", local.display()))?;
    if !is_root() {
        return Ok(local);
    }
    let postgres_uid = postgres_uid()?;
    chown_postgres(&local)?;
    let reachable = Cmd::new("runuser")
        .args(["-u", "postgres", "--", "test", "-w"])
        .arg(&local)
        .current_dir("/")
        .succeeds();
    if reachable {
        return Ok(local);
    }
    let external = pg_external_base();
    match fs::create_dir(&external) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create {}", external.display()));
        }
    }
    let metadata = fs::symlink_metadata(&external)?;
    if !metadata.is_dir() || ![0, postgres_uid].contains(&metadata.uid()) {
        bail!(
            "{} exists and is not a directory of root or postgres",
            external.display()
        );
    }
    fs::set_permissions(&external, fs::Permissions::from_mode(0o700))?;
    chown_postgres(&external)?;
    println!(
        "note: the postgres user cannot reach {} (a parent directory is closed to others), so \
         the private PostgreSQL keeps its files in {}",
        local.display(),
        external.display(),
    );
    Ok(external)
}

/// A PostgreSQL program, run as the `postgres` user when we are root.
pub fn as_postgres(program: PathBuf) -> Cmd {
    let cmd = if is_root() {
        Cmd::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
    } else {
        Cmd::new(program)
    };
    // The postgres user may not be allowed into the current directory.
    cmd.current_dir("/")
}

pub fn chown_postgres(path: &Path) -> Result<()> {
    Cmd::new("chown").arg("postgres:").arg(path).quiet()
}

fn postgres_uid() -> Result<u32> {
    Cmd::new("id")
        .args(["-u", "postgres"])
        .read()
        .ok()
        .and_then(|uid| uid.trim().parse().ok())
        .context(
            "PostgreSQL refuses to run as root and there is no `postgres` user to run it as \
             (the Debian package `postgresql` creates it)",
        )
}

/// The directory with `initdb` and `pg_ctl`: the newest /usr/lib/postgresql/<major>/bin (the one
/// matching an existing data directory first), else the directory of `pg_ctl` on the PATH.
pub fn pg_bin_dir() -> Option<PathBuf> {
    let usable =
        |dir: &Path| is_executable(&dir.join("initdb")) && is_executable(&dir.join("pg_ctl"));
    let wanted = pg_data_dir()
        .and_then(|data| fs::read_to_string(data.join("PG_VERSION")).ok())
        .map(|version| {
            Path::new("/usr/lib/postgresql")
                .join(version.trim())
                .join("bin")
        });
    if let Some(dir) = wanted.filter(|dir| usable(dir)) {
        return Some(dir);
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            usable(&bin).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin);
    newest.or_else(|| {
        let pg_ctl = find_program("pg_ctl")?;
        let dir = fs::canonicalize(pg_ctl).ok()?.parent()?.to_owned();
        usable(&dir).then_some(dir)
    })
}

/// Installs the servers of `kinds` that are missing (as root, with apt-get), or fails with a
/// message that names the packages.
fn install_missing(kinds: &[Kind]) -> Result<()> {
    let missing: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|kind| !installed(*kind))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|kind| kind.package()).collect();
    let names: Vec<&str> = missing.iter().map(|kind| kind.name()).collect();
    let vars: Vec<&str> = missing.iter().map(|kind| kind.env_var()).collect();
    if !is_root() || find_program("apt-get").is_none() {
        bail!(
            "a private {} is needed but not installed: install the Debian package(s) {} \
             (`sudo apt-get install {}`; as root, xtask installs them itself), or set {} to \
             running server(s)",
            names.join(", "),
            packages.join(", "),
            packages.join(" "),
            vars.join(", "),
        );
    }
    println!(
        "installing {} (needed for private instances)",
        packages.join(", ")
    );
    Cmd::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Cmd::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    if let Some(kind) = missing.iter().find(|kind| !installed(**kind)) {
        bail!(
            "{} installed, yet the {} server cannot be found",
            kind.package(),
            kind.name()
        );
    }
    Ok(())
}

fn installed(kind: Kind) -> bool {
    match kind {
        Kind::Postgres => pg_bin_dir().is_some(),
        Kind::Redis => find_program("redis-server").is_some(),
        Kind::Nats => find_program("nats-server").is_some(),
    }
}

/// A program on the PATH or in the usual system directories (a non-root PATH often lacks the
/// sbin ones, where Debian puts nats-server).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    let system = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    env::split_paths(&path)
        .chain(system.into_iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

pub fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Cmd::new("id")
            .arg("-u")
            .read()
            .is_ok_and(|uid| uid.trim() == "0")
    })
}

/// The last `lines` lines of a log file (or a note that it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("({error})"),
    }
}

/// A path as shown to the user: relative to the workspace root when inside it.
pub fn shown_path(path: &Path) -> String {
    path.strip_prefix(crate::root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{host_port, redact, with_database};

    #[test]
    fn host_and_port_of_urls() -> anyhow::Result<()> {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/store", 1)?,
            ("127.0.0.1".into(), 5432)
        );
        assert_eq!(
            host_port("postgres://u:p@ss@db.example:6000/x?sslmode=require", 1)?,
            ("db.example".into(), 6000)
        );
        assert_eq!(
            host_port("redis://localhost", 6379)?,
            ("localhost".into(), 6379)
        );
        assert_eq!(host_port("redis://[::1]:7000/0", 1)?, ("::1".into(), 7000));
        assert_eq!(
            host_port("nats://a:4223,nats://b:4224", 1)?,
            ("a".into(), 4223)
        );
        assert_eq!(host_port("127.0.0.1:4222", 1)?, ("127.0.0.1".into(), 4222));
        assert!(host_port("postgres:///store", 5432).is_err());
        Ok(())
    }

    #[test]
    fn database_urls() -> anyhow::Result<()> {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/store?sslmode=disable",
                "store_e2e_1"
            )?,
            "postgres://postgres@127.0.0.1:5432/store_e2e_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u:p%40ss@db/x", "postgres")?,
            "postgres://u:p%40ss@db/postgres"
        );
        assert_eq!(
            with_database("postgres://db:5432", "y")?,
            "postgres://db:5432/y"
        );
        assert!(with_database("db:5432/x", "y").is_err());
        Ok(())
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:secret@db/store"),
            "postgres://app:***@db/store"
        );
        assert_eq!(
            redact("postgres://postgres@db/store"),
            "postgres://postgres@db/store"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
