//! The subcommands of the `api` binary.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use domain::identity::Role;

use crate::identity::{self, NewAccount};
use crate::infra::auth::password::Hasher;
use crate::infra::config::{ServeArgs, ServiceArgs};
use crate::infra::error::ApiError;

#[derive(Parser)]
#[command(name = "api", version, about = "The store's GraphQL api")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serves GraphQL over HTTP.
    Serve(Box<ServeArgs>),
    /// Creates the database if missing and applies every pending migration.
    Migrate(ServiceArgs),
    /// Creates the demo accounts and the 160-product demo catalog (idempotent) and prints their
    /// sign-ins; with `--products N`, then grows the catalog to N products with generated ones.
    SeedDemo {
        #[command(flatten)]
        services: ServiceArgs,
        /// Grow the catalog to this many products (bulk-generated, published, one digital
        /// edition each), e.g. `--products 100000` to try the store at scale.
        #[arg(long)]
        products: Option<u64>,
        /// Draw the covers and screenshots of the newest N demo products only (0: none); all
        /// by default (about a minute on two cores the first time, nothing once drawn).
        #[arg(long)]
        pictures: Option<usize>,
    },
    /// Creates an admin account (the first admin never comes from the public API).
    CreateAdmin {
        #[command(flatten)]
        services: ServiceArgs,
        #[arg(long)]
        email: String,
        /// The password (or `CREATE_ADMIN_PASSWORD`, which stays out of the shell history).
        #[arg(long, env = "CREATE_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Writes a new RSA-2048 key pair for access tokens into DIR, unless one is already there.
    GenKeys {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Writes the public keys that verify access tokens as the gateway reads them: a JSON object
    /// `{ "<kid>": "<SPKI PEM>" }` (the keys come from the same settings as `serve`).
    GatewayKeys {
        #[command(flatten)]
        keys: Box<ServeArgs>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints the GraphQL schema (SDL).
    ExportSchema,
    /// Deletes the chunks of chunked builds that no build references and that no push touched
    /// for the grace period (`api serve` does it every `CHUNK_GC_EVERY_SECS` too).
    GcChunks {
        #[command(flatten)]
        services: ServiceArgs,
        /// Keep unreferenced chunks touched within this many seconds.
        #[arg(long, env = "CHUNK_GC_GRACE_SECS", default_value_t = 24 * 3600)]
        grace_secs: u64,
    },
    /// Removes what a throwaway store made (a database, a Redis namespace's keys, a NATS
    /// prefix's streams), or with `--check` only lists what is left of them.
    Purge(PurgeArgs),
}

/// What `api purge` removes. Only what is named here: none falls back on `DATABASE_URL`,
/// `REDIS_NAMESPACE` or `NATS_PREFIX`, so the store's own data is never a default.
#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    /// PostgreSQL URL of a database to drop (`WITH (FORCE)`): never the server's own
    /// (`postgres`, `template0`, `template1`) nor the configured one (`DATABASE_URL`'s).
    #[arg(long, env = "PURGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis URL of the namespace to empty.
    #[arg(
        long,
        env = "PURGE_REDIS_URL",
        hide_env_values = true,
        requires = "redis_namespace"
    )]
    pub redis_url: Option<String>,
    /// Redis namespace whose keys (`{namespace}:*`) to delete.
    #[arg(long, env = "PURGE_REDIS_NAMESPACE", requires = "redis_url")]
    pub redis_namespace: Option<String>,
    /// NATS URL of the prefix's streams.
    #[arg(
        long,
        env = "PURGE_NATS_URL",
        hide_env_values = true,
        requires = "nats_prefix"
    )]
    pub nats_url: Option<String>,
    /// NATS subject prefix whose JetStream streams (`{prefix}_*`) to delete.
    #[arg(long, env = "PURGE_NATS_PREFIX", requires = "nats_url")]
    pub nats_prefix: Option<String>,
    /// Removes nothing: fails, listing them, when any of these is still there.
    #[arg(long)]
    pub check: bool,
}

/// `api purge`: removes (or with `--check` looks for) each thing named, going on after a
/// failure; fails when one could not be removed, or with `--check` when one is still there.
pub async fn purge(args: &PurgeArgs) -> anyhow::Result<()> {
    let mut left = Vec::new();
    let mut failed = 0;
    let mut outcome = |part: &str, result: anyhow::Result<()>| {
        if let Err(e) = result {
            eprintln!("purge: {part}: {e:#}");
            failed += 1;
        }
    };
    if let Some(url) = &args.database_url {
        outcome("database", purge_database(url, args.check, &mut left).await);
    }
    if let (Some(url), Some(namespace)) = (&args.redis_url, &args.redis_namespace) {
        outcome(
            "redis",
            purge_redis(url, namespace, args.check, &mut left).await,
        );
    }
    if let (Some(url), Some(prefix)) = (&args.nats_url, &args.nats_prefix) {
        outcome("nats", purge_nats(url, prefix, args.check, &mut left).await);
    }
    if failed > 0 {
        anyhow::bail!("purge: {failed} part(s) failed");
    }
    if !left.is_empty() {
        anyhow::bail!("still there: {}", left.join("; "));
    }
    Ok(())
}

async fn purge_database(url: &str, check: bool, left: &mut Vec<String>) -> anyhow::Result<()> {
    let (_, name) = crate::infra::db::split_database_url(url)?;
    if check {
        if crate::infra::purge::database_exists(url).await? {
            left.push(format!("the database {name}"));
        } else {
            println!("purge: no database {name}");
        }
        return Ok(());
    }
    let configured = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| domain::server::DEFAULT_DATABASE_URL.to_owned());
    if let Ok((_, configured)) = crate::infra::db::split_database_url(&configured) {
        anyhow::ensure!(
            name != configured,
            "refusing to drop `{name}`: it is the configured database (DATABASE_URL)"
        );
    }
    if crate::infra::purge::drop_database(url).await? {
        println!("purge: dropped the database {name}");
    } else {
        println!("purge: no database {name}");
    }
    Ok(())
}

async fn purge_redis(
    url: &str,
    namespace: &str,
    check: bool,
    left: &mut Vec<String>,
) -> anyhow::Result<()> {
    use fred::prelude::*;
    let redis = crate::infra::redis::connect_now(url).await?;
    let result = if check {
        crate::infra::purge::namespace_keys(redis.next(), namespace)
            .await
            .map(|keys| match keys.len() {
                0 => println!("purge: no Redis keys {namespace}:*"),
                n => left.push(format!("{n} Redis keys {namespace}:*")),
            })
    } else {
        crate::infra::purge::delete_namespace(redis.next(), namespace)
            .await
            .map(|n| println!("purge: deleted {n} Redis keys {namespace}:*"))
    };
    redis.quit().await.ok();
    result
}

async fn purge_nats(
    url: &str,
    prefix: &str,
    check: bool,
    left: &mut Vec<String>,
) -> anyhow::Result<()> {
    let jetstream = crate::infra::purge::jetstream(url).await?;
    if check {
        let streams = crate::infra::purge::prefix_streams(&jetstream, prefix).await?;
        if streams.is_empty() {
            println!("purge: no NATS streams {prefix}_*");
        } else {
            left.push(format!("the NATS streams {}", streams.join(", ")));
        }
    } else {
        let streams = crate::infra::purge::delete_streams(&jetstream, prefix).await?;
        println!(
            "purge: deleted the NATS streams of prefix {prefix} [{}]",
            streams.join(", ")
        );
    }
    Ok(())
}

/// Names of the files `gen-keys` writes.
pub const PRIVATE_KEY_FILE: &str = "jwt-private.pem";
pub const PUBLIC_KEY_FILE: &str = "jwt-public.pem";

pub async fn migrate(services: &ServiceArgs) -> anyhow::Result<()> {
    crate::infra::db::ensure_database(&services.database_url).await?;
    let db = crate::infra::db::connect(&services.database_url, 2).await?;
    crate::infra::db::migrate(&db).await?;
    db.close().await.ok();
    println!("database migrated");
    Ok(())
}

pub async fn create_admin(
    services: &ServiceArgs,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let db = crate::infra::db::connect(&services.database_url, 2).await?;
    match identity::create_admin(&db, &Hasher::new(1), email, password).await {
        Ok(a) => {
            println!("admin {} created (id {})", a.email, a.id);
            Ok(())
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_))) => Err(anyhow::anyhow!("{e}")),
        Err(e) => Err(e).context("creating the admin"),
    }
}

/// Demo accounts: (role, e-mail, name, password). The passwords are public: demo data only.
pub const DEMO_ACCOUNTS: [(Role, &str, &str, &str); 5] = [
    (
        Role::Admin,
        "admin@store.test",
        "Ada Admin",
        "admin-demo-password",
    ),
    (
        Role::Publisher,
        "nebula@store.test",
        "Nebula Games",
        "publisher-demo-password",
    ),
    (
        Role::Publisher,
        "atlas@store.test",
        "Atlas Interactive",
        "publisher-demo-password",
    ),
    (
        Role::User,
        "alice@store.test",
        "Alice",
        "user-demo-password",
    ),
    (Role::User, "bob@store.test", "Bob", "user-demo-password"),
];

/// Largest demo picture, bytes (each is far smaller; `MAX_IMAGE_BYTES` is the api's setting).
const DEMO_MAX_IMAGE_BYTES: usize = 5 << 20;

/// Which demo products `seed-demo` draws pictures for (those that have none yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pictures {
    All,
    /// The newest `n` (the storefront's first page); `First(0)`: none.
    First(usize),
}

pub async fn seed_demo(services: &ServiceArgs, pictures: Pictures) -> anyhow::Result<()> {
    let parallel = std::thread::available_parallelism().map_or(2, usize::from);
    let db = crate::infra::db::connect(&services.database_url, (parallel + 1) as u32).await?;
    let hasher = Hasher::new(2);
    println!("demo accounts (e-mail / password):");
    for (role, email, name, password) in DEMO_ACCOUNTS {
        let new = NewAccount::parse(email, password, name, role)?;
        let state = match identity::insert_account(&db, &hasher, new, None).await {
            Ok(_) => "created",
            Err(ApiError::Conflict(_)) => "exists",
            Err(e) => return Err(e).context("seeding demo accounts"),
        };
        println!(
            "  {:<10} {email:<22} {password:<24} ({state})",
            role.as_str()
        );
    }
    let nats = async_nats::connect(services.nats_url.as_str())
        .await
        .context("connecting to NATS")?;
    let bus = crate::infra::bus::Bus::new(nats, &services.nats_prefix);
    bus.ensure_streams(services.nats_stream_replicas).await?;
    let currency = services
        .currency()
        .map_err(|e| anyhow::anyhow!("STORE_CURRENCY: {e}"))?;
    let created = crate::seed::catalog(&db, &bus, currency).await?;
    println!(
        "demo catalog: {created} products created ({} in all)",
        crate::seed::DEMO_PRODUCTS
    );
    let limit = match pictures {
        Pictures::All => crate::seed::DEMO_PRODUCTS,
        Pictures::First(n) => n,
    };
    if limit > 0 {
        let started = std::time::Instant::now();
        let objects = crate::infra::objects::local(&services.object_store_dir)?;
        let drawn = crate::seed::pictures(&db, objects, DEMO_MAX_IMAGE_BYTES, limit, parallel)
            .await
            .context("drawing the demo pictures")?;
        println!(
            "demo pictures: {drawn} products got a cover and {} screenshots in {:.1} s",
            demo_art::SCREENSHOTS,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// `api seed-demo --products N`, after the demo seed: grows the catalog to `total` products.
pub async fn seed_products(services: &ServiceArgs, total: u64) -> anyhow::Result<()> {
    let db = crate::infra::db::connect(&services.database_url, 2).await?;
    let currency = services
        .currency()
        .map_err(|e| anyhow::anyhow!("STORE_CURRENCY: {e}"))?;
    let started = std::time::Instant::now();
    let made = crate::seed::bulk_catalog(&db, total, currency)
        .await
        .context("generating products")?;
    println!(
        "generated catalog: {made} products made in {:.1} s ({total} wanted in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn gen_keys(dir: &Path) -> anyhow::Result<()> {
    let private = dir.join(PRIVATE_KEY_FILE);
    let public = dir.join(PUBLIC_KEY_FILE);
    if private.exists() && public.exists() {
        println!("keys already in {}", dir.display());
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (private_pem, public_pem) = crate::infra::auth::jwt::generate_key_pair()?;
    write_private(&private, &private_pem)?;
    std::fs::write(&public, public_pem).with_context(|| format!("writing {}", public.display()))?;
    println!("wrote {} and {}", private.display(), public.display());
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(pem.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))
}

/// `api gateway-keys --out FILE`: the kid → SPKI PEM map the gateway's njs script preloads.
pub fn gateway_keys(args: ServeArgs, out: &Path) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let keys = crate::infra::auth::jwt::Keys::from_config(&config.jwt)?;
    let map: serde_json::Map<String, serde_json::Value> = keys
        .public_pems()
        .into_iter()
        .map(|(kid, pem)| (kid, serde_json::Value::String(pem)))
        .collect();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&map).context("encoding the keys")?;
    std::fs::write(out, text + "\n").with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} verifying key(s) to {}", map.len(), out.display());
    Ok(())
}

/// `api gc-chunks`: one collection of unreferenced chunks (see
/// [`crate::catalog::chunks::collect_garbage`]).
pub async fn gc_chunks(services: &ServiceArgs, grace_secs: u64) -> anyhow::Result<()> {
    let db = crate::infra::db::connect(&services.database_url, 2).await?;
    let objects = crate::infra::objects::local(&services.object_store_dir)?;
    let done = crate::catalog::chunks::collect_garbage(
        &db,
        &objects,
        std::time::Duration::from_secs(grace_secs),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("collecting chunks")?;
    db.close().await.ok();
    println!(
        "{} unreferenced chunk(s) deleted ({} bytes stored)",
        done.chunks, done.stored_bytes
    );
    Ok(())
}
