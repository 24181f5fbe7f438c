//! The janitor: a second xtask process that cleans up after `dev` and `e2e`, however they end.
//!
//! On Ctrl-C the terminal sends SIGINT to its whole foreground process group. The children
//! started by `dev` or `e2e` (api, saga, gateway, the browser test) stay in xtask's process
//! group, so they receive that SIGINT themselves and shut down.
//!
//! xtask cannot catch SIGINT (std has no signal API, unsafe code is forbidden in this workspace
//! and xtask takes no dependency for it), so it dies at once. The cleanup is therefore done by
//! the janitor (`xtask __janitor <services>`), started early in a process group of its own, so
//! no Ctrl-C reaches it. Its standard input is a pipe from xtask, on which xtask writes one
//! line per thing to clean up, *before* it makes that thing:
//!
//! - `<pid>`: a child to wait for, then to stop (SIGTERM, then SIGKILL) if it lingers;
//! - `api <path>`: the api binary that removes the resources announced after it (`api purge`,
//!   see [`purge`]);
//! - `database <url>`: a PostgreSQL database to drop (`DROP DATABASE … WITH (FORCE)`);
//! - `redis <url> <namespace>`: a Redis namespace whose keys (`<namespace>:*`) to delete;
//! - `nats <url> <prefix>`: a NATS subject prefix whose JetStream streams (`<prefix>_*`) to
//!   delete;
//! - `postgres <data directory>`: a private PostgreSQL instance to stop (`pg_ctl stop -m
//!   immediate`; `cargo xtask chaos` runs one);
//! - `dir <path>`: a directory to remove.
//!
//! When xtask ends, in whatever way (Ctrl-C, a failed step, even SIGKILL), the kernel closes the
//! pipe and the janitor reads end-of-file. It then waits for the children to exit (they got the
//! SIGINT too), sends SIGTERM and then SIGKILL to any that lingers, removes the resources in
//! the order they were announced, and finally stops the private service instances named on its
//! command line (those that *this run* started; instances found running are left alone). On a
//! normal end xtask stops its children itself, then closes the pipe and waits for the janitor,
//! so the output stays in order.

use std::env;
use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::services::{self, Kind};

/// How long a child may take to exit after SIGINT/SIGTERM before it gets a harder signal.
pub const GRACE: Duration = Duration::from_secs(10);

/// The janitor seen from the process it cleans up after.
pub struct Janitor {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Janitor {
    /// Starts the janitor, which stops the private instances `started` when we end.
    pub fn spawn(started: &[Kind]) -> Result<Self> {
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

    fn tell(&mut self, line: &str) -> Result<()> {
        let pipe = self.pipe.as_mut().context("the janitor has finished")?;
        writeln!(pipe, "{line}").context("cannot talk to the janitor")
    }

    /// Tells the janitor about a child to wait for (and to stop if it lingers).
    pub fn watch(&mut self, child: &Child) -> Result<()> {
        self.tell(&child.id().to_string())
    }

    /// The api binary whose `purge` removes the databases, namespaces and prefixes announced
    /// after this.
    pub fn api(&mut self, path: &Path) -> Result<()> {
        let path = path.to_str().context("the api's path is not UTF-8")?;
        self.tell(&format!("api {path}"))
    }

    /// A database to drop; `url` names it.
    pub fn database(&mut self, url: &str) -> Result<()> {
        self.tell(&format!("database {url}"))
    }

    /// A Redis namespace to empty.
    pub fn redis(&mut self, url: &str, namespace: &str) -> Result<()> {
        self.tell(&format!("redis {url} {namespace}"))
    }

    /// A NATS subject prefix whose streams to delete.
    pub fn nats(&mut self, url: &str, prefix: &str) -> Result<()> {
        self.tell(&format!("nats {url} {prefix}"))
    }

    /// A private PostgreSQL instance to stop, by its data directory.
    pub fn postgres(&mut self, data: &Path) -> Result<()> {
        let data = data
            .to_str()
            .context("a PostgreSQL data directory to stop is not UTF-8")?;
        self.tell(&format!("postgres {data}"))
    }

    /// A directory to remove.
    pub fn dir(&mut self, path: &Path) -> Result<()> {
        let path = path
            .to_str()
            .context("a directory to clean up is not UTF-8")?;
        self.tell(&format!("dir {path}"))
    }

    /// Closes the pipe, which makes the janitor clean up, and waits for it; fails if it could
    /// not clean everything.
    pub fn finish(mut self) -> Result<()> {
        drop(self.pipe.take());
        let status = self.child.wait().context("waiting for the janitor")?;
        if !status.success() {
            bail!("the cleanup was incomplete (see above)");
        }
        Ok(())
    }
}

/// One thing to clean up, as announced on the pipe.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Api(String),
    Database(String),
    Redis(String, String),
    Nats(String, String),
    Postgres(String),
    Dir(String),
}

fn parse(line: &str, pids: &mut Vec<u32>, tasks: &mut Vec<Task>) {
    let line = line.trim();
    if let Ok(pid) = line.parse::<u32>() {
        pids.push(pid);
        return;
    }
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let mut args = rest.split_whitespace();
    let task = match word {
        "database" => args.next().map(|url| Task::Database(url.to_owned())),
        "redis" => args
            .next()
            .zip(args.next())
            .map(|(url, ns)| Task::Redis(url.to_owned(), ns.to_owned())),
        "nats" => args
            .next()
            .zip(args.next())
            .map(|(url, prefix)| Task::Nats(url.to_owned(), prefix.to_owned())),
        "api" if !rest.is_empty() => Some(Task::Api(rest.to_owned())),
        "postgres" if !rest.is_empty() => Some(Task::Postgres(rest.to_owned())),
        "dir" if !rest.is_empty() => Some(Task::Dir(rest.to_owned())),
        _ => None,
    };
    match task {
        Some(task) => tasks.push(task),
        None => eprintln!("janitor: ignoring `{line}`"),
    }
}

/// `xtask __janitor <service>...`: the janitor itself (see the module documentation). Reads
/// what to clean up from stdin until end-of-file, then stops those children, removes those
/// resources and stops the named services.
pub fn run(args: &[String]) -> Result<()> {
    let kinds = args
        .iter()
        .map(|name| Kind::from_name(name).with_context(|| format!("unknown service {name}")))
        .collect::<Result<Vec<_>>>()?;
    let mut pids = Vec::new();
    let mut tasks = Vec::new();
    // Ends when every writer of the pipe is gone, i.e. when our parent has ended.
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        parse(&line, &mut pids, &mut tasks);
    }
    // The children got the terminal's SIGINT too (if that is why the parent ended): give them
    // time to shut down, then insist.
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
    let mut failed = false;
    let mut api = None;
    for task in &tasks {
        if let Task::Api(path) = task {
            api = Some(Path::new(path));
        } else if let Err(error) = clean(task, api) {
            eprintln!("cleanup: {error:#}");
            failed = true;
        }
    }
    for kind in kinds.into_iter().rev() {
        match services::stop(kind) {
            Ok(Some(_)) => println!(
                "{:<9} stopped  (private instance started by this run)",
                kind.name()
            ),
            Ok(None) => {}
            Err(error) => {
                eprintln!("{error:#}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("the cleanup was incomplete");
    }
    Ok(())
}

/// `api purge` (with `--check`, only looks): removes the database, Redis namespace and NATS
/// prefix that `vars` name (`PURGE_DATABASE_URL`, `PURGE_REDIS_URL` and
/// `PURGE_REDIS_NAMESPACE`, `PURGE_NATS_URL` and `PURGE_NATS_PREFIX`), or with `check` fails
/// when one is still there. Variables rather than arguments: no URL shows in a process list.
pub fn purge(api: &Path, vars: &[(&str, String)], check: bool) -> Result<()> {
    let mut purge = Cmd::new(api).arg("purge");
    if check {
        purge = purge.arg("--check");
    }
    purge.envs(vars).env("RUST_LOG", "warn").run()
}

fn clean(task: &Task, api: Option<&Path>) -> Result<()> {
    let vars = match task {
        Task::Database(url) => vec![("PURGE_DATABASE_URL", url.clone())],
        Task::Redis(url, namespace) => vec![
            ("PURGE_REDIS_URL", url.clone()),
            ("PURGE_REDIS_NAMESPACE", namespace.clone()),
        ],
        Task::Nats(url, prefix) => vec![
            ("PURGE_NATS_URL", url.clone()),
            ("PURGE_NATS_PREFIX", prefix.clone()),
        ],
        Task::Postgres(data) => {
            if !Path::new(data).join("postmaster.pid").exists() {
                return Ok(());
            }
            let bin = services::pg_bin_dir().context("pg_ctl is not installed")?;
            services::as_postgres(bin.join("pg_ctl"))
                .args(["-D", data, "-m", "immediate", "-w", "stop"])
                .quiet()?;
            println!(
                "cleanup: stopped the PostgreSQL of {}",
                services::shown_path(Path::new(data))
            );
            return Ok(());
        }
        Task::Dir(path) => {
            match std::fs::remove_dir_all(path) {
                Ok(()) => println!("cleanup: removed {}", services::shown_path(Path::new(path))),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error).with_context(|| format!("cannot remove {path}")),
            }
            return Ok(());
        }
        Task::Api(_) => return Ok(()),
    };
    let api = api.context("no api binary was announced to remove it with")?;
    purge(api, &vars, false)
}

#[cfg(test)]
mod tests {
    use super::{Task, parse};

    #[test]
    fn lines_name_pids_and_resources() {
        let (mut pids, mut tasks) = (Vec::new(), Vec::new());
        for line in [
            "42",
            "api /w/target/debug/api",
            "database postgres://postgres@127.0.0.1:5432/store_e2e_1",
            "redis redis://127.0.0.1:6379 e2e:1",
            "nats nats://127.0.0.1:4222 e2e_1",
            "postgres /tmp/pg/data",
            "dir /tmp/a b",
            "bogus",
        ] {
            parse(line, &mut pids, &mut tasks);
        }
        assert_eq!(pids, [42]);
        assert_eq!(
            tasks,
            [
                Task::Api("/w/target/debug/api".into()),
                Task::Database("postgres://postgres@127.0.0.1:5432/store_e2e_1".into()),
                Task::Redis("redis://127.0.0.1:6379".into(), "e2e:1".into()),
                Task::Nats("nats://127.0.0.1:4222".into(), "e2e_1".into()),
                Task::Postgres("/tmp/pg/data".into()),
                Task::Dir("/tmp/a b".into()),
            ]
        );
    }
}
