//! Developer commands of the store: `cargo xtask dev` runs it, `cargo xtask test` checks it.
//! See [`USAGE`].

mod chaos;
mod cmd;
mod cycles;
mod deploy;
mod dev;
mod e2e;
mod gateway;
mod janitor;
mod services;
mod test;
mod web;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  dev [--release]                run the whole store on this machine until Ctrl-C: find or
                                 start PostgreSQL, Redis and NATS, build, migrate, seed the demo
                                 data, build the SPA, start the api and the nginx gateway
                                 (https://127.0.0.1:8443; nginx installed with apt-get when root)
  test [--quick] [--no-e2e] [--no-chaos] [-- ARGS...]
                                 cargo fmt --check, clippy (native and wasm32), deploy-check,
                                 `cargo test --workspace` against real services, then the
                                 browser test (as `e2e`) and `chaos --short`; --quick runs only
                                 the tests, --no-e2e skips the browser test, --no-chaos the
                                 fault harness, and ARGS (a filter for
                                 `cargo test --workspace ARGS...`) skip both
  e2e                            only the browser test of e2e/ (headless Chromium, playwright)
                                 against a whole store of its own: own database, Redis
                                 namespace, NATS prefix and free ports, removed afterwards;
                                 logs in target/e2e/logs/, screenshots in target/e2e/shots/
  chaos [--short]                the fault harness: the store as processes (2 api replicas, 2 of
                                 each saga participant, 3-node NATS JetStream with R3 streams,
                                 a private PostgreSQL, its own Redis namespace) under a mixed
                                 workload while participants and the api are killed, a NATS
                                 node stopped, PostgreSQL restarted and Redis wiped; prints the
                                 invariants as a table and fails if one does not hold. A few
                                 minutes; --short (about a minute) is a step of `test`
  build-web [--dist DIR]         build the SPA's release bundles (store, account, management)
                                 with their precompressed copies into DIR (the gateway image is
                                 built so); without --dist into web/dist as `dev` and `e2e` do,
                                 unless its sources did not change since the last build there
  services [status|start|stop]   show, start or stop the private service instances
  deploy-check                   validate k8s/ and compose.yaml offline (kustomize, Kubernetes
                                 and CRD schemas, docker compose config, no dangling names);
                                 a step of `test` too (tools pinned in k8s/tools/requirements.txt)
  cycles                         fail if a module imports a module that imports it (siblings
                                 at every level of every crate; also a test of `test`)
  help                           this text

Environment (defaults in brackets):
  DATABASE_URL   [postgres://postgres@127.0.0.1:5432/store]
  REDIS_URL      [redis://127.0.0.1:6379]
  NATS_URL       [nats://127.0.0.1:4222]  (JetStream must be enabled)
      A default that does not answer is replaced by a private instance under
      target/services/ on port 55432, 56379 or 54222 (installed with apt-get when root).
      XTASK_FORCE_PRIVATE=1 always uses the private instances.
  API_LISTEN_ADDR [127.0.0.1:8081 under `dev`: only the gateway should reach it]
  GATEWAY_* , JWT_ISSUER, JWT_AUDIENCE  the variables listed at the top of nginx.conf
      (e.g. GATEWAY_HTTPS_LISTEN [127.0.0.1:8443], GATEWAY_HTTP_LISTEN [127.0.0.1:8000],
      GATEWAY_TLS_CERT/GATEWAY_TLS_KEY [a local CA and certificate made in target/dev/tls/])
  JWT_PRIVATE_KEY_FILE, JWT_PUBLIC_KEY_FILE  [target/dev/keys/jwt-{private,public}.pem]
  GATEWAY_SECRET  [made once into target/dev/gateway-secret]
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    env::set_current_dir(root())
        .with_context(|| format!("cannot enter the workspace {}", root().display()))?;
    let args: Vec<String> = env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(());
    };
    match command.as_str() {
        "dev" => {
            let mut release = false;
            for arg in rest {
                match arg.as_str() {
                    "--release" => release = true,
                    other => bail!("unknown argument `{other}` for `dev`\n\n{USAGE}"),
                }
            }
            dev::run(release)
        }
        "test" => {
            let mut quick = false;
            let mut e2e = true;
            let mut chaos = true;
            let mut cargo_test_args: &[String] = &[];
            for (index, arg) in rest.iter().enumerate() {
                match arg.as_str() {
                    "--quick" => quick = true,
                    "--no-e2e" => e2e = false,
                    "--no-chaos" => chaos = false,
                    "--" => {
                        cargo_test_args = &rest[index + 1..];
                        break;
                    }
                    other => bail!(
                        "unknown argument `{other}` for `test` (cargo test arguments go after `--`)\n\n{USAGE}"
                    ),
                }
            }
            let whole = cargo_test_args.is_empty();
            test::run(quick, e2e && whole, chaos && whole, cargo_test_args)
        }
        "e2e" => match rest {
            [] => test::e2e_only(),
            _ => bail!("usage: cargo xtask e2e"),
        },
        "chaos" => match rest {
            [] => chaos::command(false),
            [flag] if flag == "--short" => chaos::command(true),
            _ => bail!("usage: cargo xtask chaos [--short]"),
        },
        "build-web" => match rest {
            [] => web::cached_spa().map(drop),
            [flag, dist] if flag == "--dist" => web::build_spa_to(&root().join(dist)),
            _ => bail!("usage: cargo xtask build-web [--dist DIR]"),
        },
        "deploy-check" => match rest {
            [] => deploy::check(),
            _ => bail!("usage: cargo xtask deploy-check"),
        },
        "cycles" => match rest {
            [] => cycles::command(),
            _ => bail!("usage: cargo xtask cycles"),
        },
        "services" => match rest {
            [] => services::status(),
            [action] if action == "status" => services::status(),
            [action] if action == "start" => services::ensure().map(drop),
            [action] if action == "stop" => services::stop_all(),
            _ => bail!("usage: cargo xtask services [status|start|stop]"),
        },
        // Internal: started by `dev` and `e2e` (see janitor.rs).
        "__janitor" => janitor::run(rest),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set, else `target/` in the workspace.
/// (Only built binaries are looked up here; xtask's own state always lives in the workspace's
/// `target/services/` and `target/dev/`.)
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}
