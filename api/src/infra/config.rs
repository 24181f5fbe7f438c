//! Typed configuration, from the environment (or the equivalent flags). Every variable is listed
//! in `.env.example` with its default; the defaults run the store on one machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use domain::server::ServiceSettings;
use secrecy::SecretString;

/// Where the shared services are: the settings the saga takes too ([`ServiceSettings`], reached
/// through this struct as if they were its own fields), and the object store, which only the api
/// uses. Used by every subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub shared: ServiceSettings,
    /// Directory of the local object store (product images, builds); S3 in a cluster.
    #[arg(long, env = "OBJECT_STORE_DIR", default_value = "target/dev/objects")]
    pub object_store_dir: PathBuf,
}

impl std::ops::Deref for ServiceArgs {
    type Target = ServiceSettings;
    fn deref(&self) -> &ServiceSettings {
        &self.shared
    }
}

impl std::ops::DerefMut for ServiceArgs {
    fn deref_mut(&mut self) -> &mut ServiceSettings {
        &mut self.shared
    }
}

/// Configuration of `api serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Address the api listens on. Only the gateway should reach it.
    #[arg(long, env = "API_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,
    /// Address of `/metrics` (Prometheus), for the cluster's scraper only; unset: not served.
    #[arg(long, env = "API_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Shared secret the gateway sends in `X-Gateway-Secret`; without it `X-User-*` is ignored.
    #[arg(long, env = "GATEWAY_SECRET", hide_env_values = true)]
    pub gateway_secret: Option<String>,
    /// File holding the gateway secret (for mounted secrets); wins over `GATEWAY_SECRET`.
    #[arg(long, env = "GATEWAY_SECRET_FILE")]
    pub gateway_secret_file: Option<PathBuf>,
    /// PEM private key (RSA, PKCS#8 or PKCS#1) that signs access tokens.
    #[arg(long, env = "JWT_PRIVATE_KEY", hide_env_values = true)]
    pub jwt_private_key: Option<String>,
    /// File holding the PEM private key; wins over `JWT_PRIVATE_KEY`.
    #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
    pub jwt_private_key_file: Option<PathBuf>,
    /// Extra PEM public keys that verify tokens (old keys during a rotation), concatenated.
    #[arg(long, env = "JWT_PUBLIC_KEYS_FILE")]
    pub jwt_public_keys_file: Option<PathBuf>,
    /// `iss` of the access tokens.
    #[arg(long, env = "JWT_ISSUER", default_value = "store")]
    pub jwt_issuer: String,
    /// `aud` of the access tokens.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "store-api")]
    pub jwt_audience: String,
    /// Lifetime of an access token, seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 600)]
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, seconds (renewed by every rotation).
    #[arg(long, env = "REFRESH_TOKEN_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,
    /// For how long after a refresh the rotated token may be presented again and get the same
    /// new token (its answer was lost with a page or a connection), seconds; 0 turns it off.
    #[arg(long, env = "REFRESH_REUSE_GRACE_SECS", default_value_t = 15)]
    pub refresh_reuse_grace_secs: u64,
    /// How many password hashes may run at once (each takes ~19 MiB and one core).
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,
    /// Sign-in attempts per e-mail address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_SIGNIN_PER_EMAIL", default_value = "10/900", value_parser = parse_rate)]
    pub rate_signin_per_email: Rate,
    /// Sign-in attempts per client address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_SIGNIN_PER_IP", default_value = "60/900", value_parser = parse_rate)]
    pub rate_signin_per_ip: Rate,
    /// Sign-ups per client address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_SIGNUP_PER_IP", default_value = "20/3600", value_parser = parse_rate)]
    pub rate_signup_per_ip: Rate,
    /// Sign-ups per e-mail address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_SIGNUP_PER_EMAIL", default_value = "5/3600", value_parser = parse_rate)]
    pub rate_signup_per_email: Rate,
    /// Top-ups per account (card testing): `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_TOPUP_PER_ACCOUNT", default_value = "10/3600", value_parser = parse_rate)]
    pub rate_topup_per_account: Rate,
    /// Top-ups per client address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_TOPUP_PER_IP", default_value = "30/3600", value_parser = parse_rate)]
    pub rate_topup_per_ip: Rate,
    /// Gift-key redemptions per account (key guessing): `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_REDEEM_PER_ACCOUNT", default_value = "20/3600", value_parser = parse_rate)]
    pub rate_redeem_per_account: Rate,
    /// Gift-key redemptions per client address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_REDEEM_PER_IP", default_value = "60/3600", value_parser = parse_rate)]
    pub rate_redeem_per_ip: Rate,
    /// Token requests of API clients (`POST /oauth/token`) per client address: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_OAUTH_PER_IP", default_value = "60/600", value_parser = parse_rate)]
    pub rate_oauth_per_ip: Rate,
    /// Ownership tickets (`ownershipTicket`) per account: `COUNT/SECONDS`.
    #[arg(long, env = "RATE_LIMIT_TICKET_PER_ACCOUNT", default_value = "60/3600", value_parser = parse_rate)]
    pub rate_ticket_per_account: Rate,
    /// Whether requests that do not come from an API client (the browser app's: anonymous or a
    /// person signed in) may run only the web app's own documents (see `graphql::trusted`).
    #[arg(long, env = "GRAPHQL_TRUSTED_DOCUMENTS", default_value_t = false)]
    pub graphql_trusted_documents: bool,
    /// Deepest selection a GraphQL document may have.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub graphql_max_depth: usize,
    /// Deepest selection under `__schema` or `__type` (introspection only ever reaches
    /// introspection types; the standard introspection query of client libraries needs 13-15).
    #[arg(long, env = "GRAPHQL_MAX_INTROSPECTION_DEPTH", default_value_t = 16)]
    pub graphql_max_introspection_depth: usize,
    /// Largest complexity (fields, with list multipliers) of one GraphQL document.
    #[arg(long, env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = 1000)]
    pub graphql_max_complexity: usize,
    /// Most aliased fields in one GraphQL document.
    #[arg(long, env = "GRAPHQL_MAX_ALIASES", default_value_t = 30)]
    pub graphql_max_aliases: usize,
    /// Most tokens in one GraphQL document (counted before it is parsed).
    #[arg(long, env = "GRAPHQL_MAX_TOKENS", default_value_t = 5000)]
    pub graphql_max_tokens: usize,
    /// Most fragment spreads in one GraphQL document.
    #[arg(long, env = "GRAPHQL_MAX_FRAGMENT_SPREADS", default_value_t = 100)]
    pub graphql_max_fragment_spreads: usize,
    /// Most selections of one GraphQL document once its fragments are expanded (computed
    /// without expanding them).
    #[arg(long, env = "GRAPHQL_MAX_SELECTIONS", default_value_t = 2000)]
    pub graphql_max_selections: usize,
    /// Longest a GraphQL query or mutation may run (or wait for its document check), seconds.
    #[arg(long, env = "GRAPHQL_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub graphql_request_timeout_secs: u64,
    /// Documents checked at once on the blocking pool; default: number of cores.
    #[arg(long, env = "GRAPHQL_CHECK_CONCURRENCY")]
    pub graphql_check_concurrency: Option<usize>,
    /// How often an open WebSocket re-checks its session (sign-out everywhere, ban, role
    /// change), seconds; token expiry closes it at once.
    #[arg(long, env = "WS_SESSION_CHECK_SECS", default_value_t = 15)]
    pub ws_session_check_secs: u64,
    /// Largest request body, bytes.
    #[arg(long, env = "API_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Largest uploaded image, bytes.
    #[arg(long, env = "MAX_IMAGE_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_image_bytes: usize,
    /// Public URL prefix under which the gateway serves stored media (images).
    #[arg(long, env = "MEDIA_BASE_URL", default_value = "/media")]
    pub media_base_url: String,
    /// Largest build (installer, archive) a publisher may upload, bytes.
    #[arg(long, env = "MAX_BUILD_BYTES", default_value_t = 8 << 30)]
    pub max_build_bytes: u64,
    /// Secret of signed download links, the gateway's `GATEWAY_DOWNLOAD_SECRET` (>= 16
    /// characters). Without it no download link can be made.
    #[arg(long, env = "DOWNLOAD_LINK_SECRET", hide_env_values = true)]
    pub download_link_secret: Option<String>,
    /// File holding the download-link secret; wins over `DOWNLOAD_LINK_SECRET`.
    #[arg(long, env = "DOWNLOAD_LINK_SECRET_FILE")]
    pub download_link_secret_file: Option<PathBuf>,
    /// Lifetime of a signed download link, seconds.
    #[arg(long, env = "DOWNLOAD_LINK_TTL_SECS", default_value_t = 300)]
    pub download_link_ttl_secs: u64,
    /// Largest manifest of a chunked build (JSON, sent to `/graphql/upload`), bytes: about
    /// 100 bytes a chunk, so 8 MiB describe some 80 GB.
    #[arg(long, env = "MAX_MANIFEST_BYTES", default_value_t = 8 << 20)]
    pub max_manifest_bytes: usize,
    /// A chunk no build references is collected once nothing touched it for this long
    /// (uploaded, or claimed by a push), seconds.
    #[arg(long, env = "CHUNK_GC_GRACE_SECS", default_value_t = 24 * 3600)]
    pub chunk_gc_grace_secs: u64,
    /// How often `api serve` collects unreferenced chunks, seconds; 0: never (run
    /// `api gc-chunks` instead).
    #[arg(long, env = "CHUNK_GC_EVERY_SECS", default_value_t = 3600)]
    pub chunk_gc_every_secs: u64,
    /// Where the store is (ISO 3166-1 alpha-2): digital orders of a buyer who has not set a
    /// billing country are taxed here.
    #[arg(long, env = "STORE_COUNTRY", default_value = "DE")]
    pub store_country: String,
    /// Smallest wallet top-up, minor units.
    #[arg(long, env = "TOP_UP_MIN_MINOR", default_value_t = domain::billing::DEFAULT_MIN_TOP_UP)]
    pub top_up_min_minor: i64,
    /// Largest wallet top-up, minor units.
    #[arg(long, env = "TOP_UP_MAX_MINOR", default_value_t = domain::billing::DEFAULT_MAX_TOP_UP)]
    pub top_up_max_minor: i64,
    /// Days after completion within which a never-downloaded order is refunded at once (later,
    /// or downloaded: an admin decides).
    #[arg(long, env = "REFUND_WINDOW_DAYS", default_value_t = domain::refund::DEFAULT_WINDOW_DAYS)]
    pub refund_window_days: u32,
    /// Whether a downloaded order is still refunded at once within the window.
    #[arg(long, env = "REFUND_ALLOW_DOWNLOADED", default_value_t = false)]
    pub refund_allow_downloaded: bool,
    /// On first start, create this admin if no admin exists yet (with `BOOTSTRAP_ADMIN_PASSWORD`).
    #[arg(long, env = "BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,
    #[arg(long, env = "BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<String>,
}

/// A fixed-window limit: at most `count` events per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window: Duration,
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    let (count, secs) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected COUNT/SECONDS, e.g. 10/900"))?;
    let count: u32 = count.trim().parse().map_err(|e| format!("`{s}`: {e}"))?;
    let secs: u64 = secs.trim().parse().map_err(|e| format!("`{s}`: {e}"))?;
    if count == 0 || secs == 0 {
        return Err(format!("`{s}`: count and seconds must be positive"));
    }
    Ok(Rate {
        count,
        window: Duration::from_secs(secs),
    })
}

/// The resolved configuration of a running api.
#[derive(Clone, Debug)]
pub struct Config {
    pub services: ServiceArgs,
    pub listen_addr: SocketAddr,
    pub gateway_secret: Option<SecretString>,
    pub jwt: JwtConfig,
    pub refresh_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub password_hash_concurrency: usize,
    pub rates: Rates,
    pub limits: GraphqlLimits,
    pub bootstrap_admin: Option<(String, SecretString)>,
    pub media: MediaConfig,
    pub builds: BuildsConfig,
    pub currency: domain::money::Currency,
    /// Where orders of buyers without a billing country are taxed (`STORE_COUNTRY`).
    pub store_country: &'static str,
    /// Smallest and largest wallet top-up, minor units.
    pub top_up: (i64, i64),
    pub refund_policy: domain::refund::Policy,
}

#[derive(Clone, Debug)]
pub struct MediaConfig {
    pub max_image_bytes: usize,
    pub base_url: String,
}

/// Builds and their signed downloads (DESIGN §7).
#[derive(Clone, Debug)]
pub struct BuildsConfig {
    /// Largest build, bytes.
    pub max_bytes: u64,
    /// Shared with the gateway (`secure_link_md5`); `None`: downloads are not configured.
    pub link_secret: Option<SecretString>,
    pub link_ttl: Duration,
    /// Largest manifest of a chunked build, bytes.
    pub max_manifest_bytes: usize,
    /// Unreferenced chunks younger than this are kept.
    pub chunk_gc_grace: Duration,
    /// How often the api collects unreferenced chunks (`None`: never).
    pub chunk_gc_every: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct JwtConfig {
    pub private_key_pem: Option<SecretString>,
    pub extra_public_keys_pem: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub signin_per_email: Rate,
    pub signin_per_ip: Rate,
    pub signup_per_ip: Rate,
    pub signup_per_email: Rate,
    pub topup_per_account: Rate,
    pub topup_per_ip: Rate,
    pub redeem_per_account: Rate,
    pub redeem_per_ip: Rate,
    pub oauth_per_ip: Rate,
    pub ticket_per_account: Rate,
}

#[derive(Clone, Copy, Debug)]
pub struct GraphqlLimits {
    pub max_depth: usize,
    /// Deepest selection under `__schema` or `__type`.
    pub max_introspection_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_body_bytes: usize,
    pub max_tokens: usize,
    pub max_fragment_spreads: usize,
    pub max_selections: usize,
    /// Deadline of a query or mutation (and of its wait for a document check).
    pub request_timeout: Duration,
    /// Documents checked at once on the blocking pool.
    pub check_concurrency: usize,
    /// How often an open socket re-checks its session.
    pub ws_session_check: Duration,
    /// Only the web app's own documents for everyone but API clients.
    pub trusted_documents: bool,
}

fn read_secret_file(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    let s = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} from {}", path.display()))?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

impl ServeArgs {
    pub fn into_config(self) -> anyhow::Result<Config> {
        let gateway_secret = match (&self.gateway_secret_file, self.gateway_secret) {
            (Some(path), _) => Some(read_secret_file(path, "the gateway secret")?),
            (None, s) => s,
        };
        if let Some(s) = &gateway_secret
            && s.len() < 16
        {
            bail!("GATEWAY_SECRET must have at least 16 characters");
        }
        let download_link_secret =
            match (&self.download_link_secret_file, self.download_link_secret) {
                (Some(path), _) => Some(read_secret_file(path, "the download-link secret")?),
                (None, s) => s.filter(|s| !s.is_empty()),
            };
        if let Some(s) = &download_link_secret
            && s.len() < 16
        {
            bail!("DOWNLOAD_LINK_SECRET must have at least 16 characters");
        }
        if self.max_build_bytes == 0 {
            bail!("MAX_BUILD_BYTES must be positive");
        }
        if self.download_link_ttl_secs == 0 {
            bail!("DOWNLOAD_LINK_TTL_SECS must be positive");
        }
        let private_key_pem = match (&self.jwt_private_key_file, self.jwt_private_key) {
            (Some(path), _) => Some(read_secret_file(path, "the JWT private key")?),
            (None, k) => k,
        };
        let extra_public_keys_pem = match &self.jwt_public_keys_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading JWT public keys from {}", path.display()))?,
            ),
            None => None,
        };
        let bootstrap_admin = match (self.bootstrap_admin_email, self.bootstrap_admin_password) {
            (Some(e), Some(p)) => Some((e, SecretString::from(p))),
            (None, None) => None,
            _ => bail!("set both BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD, or neither"),
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let currency = self
            .services
            .currency()
            .map_err(|e| anyhow::anyhow!("STORE_CURRENCY: {e}"))?;
        let prefix = &self.services.nats_prefix;
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("NATS_PREFIX may hold only letters, digits, `_` and `-`");
        }
        if self.graphql_request_timeout_secs == 0 || self.ws_session_check_secs == 0 {
            bail!("GRAPHQL_REQUEST_TIMEOUT_SECS and WS_SESSION_CHECK_SECS must be positive");
        }
        if self.top_up_min_minor <= 0 || self.top_up_max_minor < self.top_up_min_minor {
            bail!("TOP_UP_MIN_MINOR must be positive and at most TOP_UP_MAX_MINOR");
        }
        let store_country = domain::country::find(&self.store_country)
            .ok_or_else(|| anyhow::anyhow!("STORE_COUNTRY must be a two-letter ISO 3166-1 code"))?
            .code;
        Ok(Config {
            currency,
            store_country,
            top_up: (self.top_up_min_minor, self.top_up_max_minor),
            refund_policy: domain::refund::Policy {
                window_days: self.refund_window_days,
                allow_downloaded: self.refund_allow_downloaded,
            },
            media: MediaConfig {
                max_image_bytes: self.max_image_bytes,
                base_url: self.media_base_url.trim_end_matches('/').to_owned(),
            },
            builds: BuildsConfig {
                max_bytes: self.max_build_bytes,
                link_secret: download_link_secret.map(SecretString::from),
                link_ttl: Duration::from_secs(self.download_link_ttl_secs),
                max_manifest_bytes: self.max_manifest_bytes,
                chunk_gc_grace: Duration::from_secs(self.chunk_gc_grace_secs),
                chunk_gc_every: (self.chunk_gc_every_secs > 0)
                    .then(|| Duration::from_secs(self.chunk_gc_every_secs)),
            },
            services: self.services,
            listen_addr: self.listen_addr,
            gateway_secret: gateway_secret.map(SecretString::from),
            jwt: JwtConfig {
                private_key_pem: private_key_pem.map(SecretString::from),
                extra_public_keys_pem,
                issuer: self.jwt_issuer,
                audience: self.jwt_audience,
                access_ttl: Duration::from_secs(self.access_token_ttl_secs),
            },
            refresh_ttl: Duration::from_secs(self.refresh_token_ttl_secs),
            refresh_reuse_grace: Duration::from_secs(self.refresh_reuse_grace_secs),
            password_hash_concurrency: self.password_hash_concurrency.unwrap_or(cores).max(1),
            rates: Rates {
                signin_per_email: self.rate_signin_per_email,
                signin_per_ip: self.rate_signin_per_ip,
                signup_per_ip: self.rate_signup_per_ip,
                signup_per_email: self.rate_signup_per_email,
                topup_per_account: self.rate_topup_per_account,
                topup_per_ip: self.rate_topup_per_ip,
                redeem_per_account: self.rate_redeem_per_account,
                redeem_per_ip: self.rate_redeem_per_ip,
                oauth_per_ip: self.rate_oauth_per_ip,
                ticket_per_account: self.rate_ticket_per_account,
            },
            limits: GraphqlLimits {
                max_depth: self.graphql_max_depth,
                max_introspection_depth: self.graphql_max_introspection_depth,
                trusted_documents: self.graphql_trusted_documents,
                max_complexity: self.graphql_max_complexity,
                max_aliases: self.graphql_max_aliases,
                max_body_bytes: self.max_body_bytes,
                max_tokens: self.graphql_max_tokens,
                max_fragment_spreads: self.graphql_max_fragment_spreads,
                max_selections: self.graphql_max_selections,
                request_timeout: Duration::from_secs(self.graphql_request_timeout_secs),
                check_concurrency: self.graphql_check_concurrency.unwrap_or(cores).max(1),
                ws_session_check: Duration::from_secs(self.ws_session_check_secs),
            },
            bootstrap_admin,
        })
    }
}

/// Parses the serve configuration from the environment alone (used by tests and tools).
pub fn serve_args_from_env() -> anyhow::Result<ServeArgs> {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        args: ServeArgs,
    }
    use clap::Parser;
    Ok(Only::try_parse_from(["api"])?.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("10/900"),
            Ok(Rate {
                count: 10,
                window: Duration::from_secs(900)
            })
        );
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("0/10").is_err());
        assert!(parse_rate("x/10").is_err());
    }
}
