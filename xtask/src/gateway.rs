//! The nginx gateway for `cargo xtask dev` and `e2e`: installs nginx and its modules when missing, makes a
//! local CA and a server certificate, and renders the repository's `nginx.conf` template.
//!
//! The template's variables are the `${NAME}`s listed in its header comment (the one list, also
//! read by the gateway tests). Rendering follows envsubst: only those names are replaced, so
//! nginx's own `$variables` stay. Each value is taken from the environment variable of the same
//! name when it is set, else from the dev default below.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::services;

/// Debian packages of the gateway (and of its tests: curl and openssl drive them).
const PACKAGES: [&str; 7] = [
    "nginx",
    "libnginx-mod-http-js",
    "libnginx-mod-http-lua",
    "libnginx-mod-http-brotli-filter",
    "libnginx-mod-http-brotli-static",
    "openssl",
    "curl",
];
const NGINX: &str = "/usr/sbin/nginx";
const MODULES: [&str; 5] = [
    "/usr/lib/nginx/modules/ngx_http_js_module.so",
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
    "/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so",
    "/usr/lib/nginx/modules/ngx_http_brotli_static_module.so",
];

/// Dev addresses: the api on loopback only, the gateway in front of it.
pub const DEV_API_LISTEN: &str = "127.0.0.1:8081";
pub const DEV_HTTPS_LISTEN: &str = "127.0.0.1:8443";
pub const DEV_HTTP_LISTEN: &str = "127.0.0.1:8000";

fn installed() -> bool {
    Path::new(NGINX).exists()
        && MODULES.iter().all(|m| Path::new(m).exists())
        && ["/usr/bin/openssl", "/usr/bin/curl"]
            .iter()
            .all(|p| Path::new(p).exists())
}

/// Installs nginx, its njs and brotli modules, openssl and curl when one is missing (as root,
/// with apt-get), or fails naming the packages.
pub fn ensure_installed() -> Result<()> {
    if installed() {
        return Ok(());
    }
    if !services::is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!(
            "the gateway needs nginx with njs: install the Debian packages {} \
             (`sudo apt-get install {}`; as root, xtask installs them itself)",
            PACKAGES.join(", "),
            PACKAGES.join(" "),
        );
    }
    println!("installing {} (the gateway)", PACKAGES.join(", "));
    Cmd::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Cmd::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    if !installed() {
        bail!(
            "{} installed, yet nginx or a module is missing",
            PACKAGES.join(" ")
        );
    }
    Ok(())
}

/// The `${NAME}`s listed in the header comment of the template.
pub fn variables(template: &str) -> Vec<String> {
    template
        .lines()
        .take_while(|line| line.starts_with('#') || line.trim().is_empty())
        .filter_map(|line| {
            let rest = line
                .trim_start_matches('#')
                .trim_start()
                .strip_prefix("${")?;
            let (name, _) = rest.split_once('}')?;
            Some(name.to_owned())
        })
        .collect()
}

/// Replaces every listed `${NAME}` with its value; every listed name needs one.
pub fn render(template: &str, values: &[(String, String)]) -> Result<String> {
    let mut out = template.to_owned();
    for name in variables(template) {
        let Some((_, value)) = values.iter().find(|(key, _)| *key == name) else {
            bail!("nginx.conf: no value for ${{{name}}}");
        };
        out = out.replace(&format!("${{{name}}}"), value);
    }
    Ok(out)
}

/// Days the dev server certificate lives: Mozilla's "intermediate" profile (and the browsers'
/// limit for publicly trusted certificates) wants at most 366.
const SERVER_CERT_DAYS: u32 = 365;

/// Whether the certificate at `cert` is fit to keep: valid for at least one more day, and not
/// valid for longer than a certificate made today may live (one made by an older xtask, with
/// 825 days, is made again).
fn cert_is_current(cert: &Path) -> bool {
    let valid_for = |secs: u64| {
        Cmd::new("openssl")
            .args(["x509", "-noout", "-in"])
            .arg(cert)
            .args(["-checkend", &secs.to_string()])
            .succeeds()
    };
    valid_for(86_400) && !valid_for((u64::from(SERVER_CERT_DAYS) + 1) * 86_400)
}

/// The certificate and key of the gateway: `GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY` when set, else
/// a server certificate for localhost and 127.0.0.1 signed by a local CA, both made under
/// `target/dev/tls/`: the CA once (ten years), the server certificate for
/// [`SERVER_CERT_DAYS`] and again when it is about to expire.
fn tls() -> Result<(PathBuf, PathBuf)> {
    if let (Ok(cert), Ok(key)) = (env::var("GATEWAY_TLS_CERT"), env::var("GATEWAY_TLS_KEY")) {
        return Ok((cert.into(), key.into()));
    }
    let dir = crate::root().join("target/dev/tls");
    let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let have_ca = ca_cert.is_file() && ca_key.is_file();
    if !(have_ca && cert.is_file() && key.is_file() && cert_is_current(&cert)) {
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ext = dir.join("server.ext");
        fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n",
        )?;
        let csr = dir.join("server.csr");
        // The CA the developer has trusted stays; only the server certificate is renewed.
        if !have_ca {
            Cmd::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650"])
                .args(["-subj", "/CN=Store local development CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE,pathlen:0"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_cert)
                .quiet()?;
        }
        Cmd::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .quiet()?;
        Cmd::new("openssl")
            .args([
                "x509",
                "-req",
                "-days",
                &SERVER_CERT_DAYS.to_string(),
                "-in",
            ])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .args(["-CAcreateserial", "-extfile"])
            .arg(&ext)
            .arg("-out")
            .arg(&cert)
            .quiet()?;
        let _ = fs::remove_file(&csr);
        println!(
            "gateway: made a certificate for localhost/127.0.0.1 ({SERVER_CERT_DAYS} days) in {}",
            dir.display()
        );
    }
    println!(
        "gateway: to trust it, add {} to your browser's authorities, or system-wide: \
         `sudo cp {} /usr/local/share/ca-certificates/store-dev-ca.crt && sudo update-ca-certificates`; \
         curl: `curl --cacert {} ...`",
        ca_cert.display(),
        ca_cert.display(),
        ca_cert.display(),
    );
    Ok((cert, key))
}

/// Where a gateway keeps its files, and the values it must use whatever the environment says.
pub struct Site {
    /// nginx's prefix directory: the rendered nginx.conf, `run/`, the keys file.
    pub prefix: PathBuf,
    /// Template values that win over the environment and the dev defaults.
    pub fixed: Vec<(&'static str, String)>,
}

impl Site {
    /// The gateway of `cargo xtask dev`: files in `target/dev/gateway`, every value from the
    /// environment or its dev default.
    pub fn dev() -> Self {
        Self {
            prefix: crate::root().join("target/dev/gateway"),
            fixed: Vec::new(),
        }
    }
}

/// A rendered gateway: nginx's prefix directory and configuration file.
pub struct Rendered {
    pub prefix: PathBuf,
    pub conf: PathBuf,
    pub https_listen: String,
}

/// Writes `<site.prefix>/nginx.conf` from the template, the keys file of `api gateway-keys`
/// (`keys_file`) and the api's address. Each value comes from `site.fixed`, else from the
/// environment variable of its name, else from the dev default.
pub fn prepare(
    site: &Site,
    api_upstream: &str,
    keys_file: &Path,
    spa: &Path,
    gateway_secret: &str,
) -> Result<Rendered> {
    let root = crate::root();
    let value = |name: &str, default: String| {
        site.fixed
            .iter()
            .find(|(fixed, _)| *fixed == name)
            .map(|(_, value)| value.clone())
            .or_else(|| env::var(name).ok())
            .unwrap_or(default)
    };
    let (cert, key) = tls()?;
    let text = |p: &Path| p.display().to_string();
    let https_listen = value("GATEWAY_HTTPS_LISTEN", DEV_HTTPS_LISTEN.into());
    let https_port = https_listen.rsplit(':').next().unwrap_or("8443").to_owned();
    let defaults: Vec<(&str, String)> = vec![
        ("GATEWAY_HTTPS_LISTEN", https_listen.clone()),
        ("GATEWAY_HTTP_LISTEN", DEV_HTTP_LISTEN.to_owned()),
        ("GATEWAY_PUBLIC_HTTPS_PORT", https_port),
        ("GATEWAY_RUN_DIR", text(&site.prefix.join("run"))),
        ("GATEWAY_ACCESS_LOG", "/dev/stdout".to_owned()),
        ("GATEWAY_ERROR_LOG", "/dev/stderr".to_owned()),
        ("GATEWAY_TLS_CERT", text(&cert)),
        ("GATEWAY_TLS_KEY", text(&key)),
        // HSTS on localhost would follow the browser to every other local port: off in dev.
        ("GATEWAY_HSTS_MAX_AGE", "0".to_owned()),
        ("GATEWAY_NJS_DIR", text(&root.join("gateway"))),
        ("GATEWAY_KEYS_FILE", text(keys_file)),
        ("JWT_ISSUER", "store".to_owned()),
        ("JWT_AUDIENCE", "store-api".to_owned()),
        ("API_UPSTREAM", api_upstream.to_owned()),
        ("GATEWAY_SECRET", gateway_secret.to_owned()),
        ("GATEWAY_SPA_DIR", text(spa)),
        // The api's OBJECT_STORE_DIR: the api signs links to its builds/.
        (
            "GATEWAY_DOWNLOADS_DIR",
            text(&root.join(
                env::var("OBJECT_STORE_DIR").unwrap_or_else(|_| "target/dev/objects".into()),
            )),
        ),
        // The api gets the same value as DOWNLOAD_LINK_SECRET (dev.rs).
        ("GATEWAY_DOWNLOAD_SECRET", gateway_secret.to_owned()),
        (
            "GATEWAY_MAX_BUILD_BYTES",
            env::var("MAX_BUILD_BYTES").unwrap_or_else(|_| "8g".into()),
        ),
        ("GATEWAY_MAX_BODY", "256k".to_owned()),
        ("GATEWAY_MAX_UPLOAD", "11m".to_owned()),
        // The api's OBJECT_STORE_DIR (its default, relative to the workspace root).
        (
            "GATEWAY_MEDIA_DIR",
            text(&root.join(
                env::var("OBJECT_STORE_DIR").unwrap_or_else(|_| "target/dev/objects".into()),
            )),
        ),
        // No proxy in front in dev: X-Forwarded-For is never believed, not even from loopback.
        ("GATEWAY_TRUSTED_PROXIES", "unix:".to_owned()),
        ("GATEWAY_AUTH_RATE", "10r/m".to_owned()),
        ("GATEWAY_AUTH_BURST", "10".to_owned()),
    ];
    let values: Vec<(String, String)> = defaults
        .into_iter()
        .map(|(name, default)| (name.to_owned(), value(name, default)))
        .collect();
    let resolved = |name: &str| {
        values
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| PathBuf::from(value))
            .unwrap_or_default()
    };
    for dir in [
        resolved("GATEWAY_RUN_DIR"),
        resolved("GATEWAY_DOWNLOADS_DIR"),
        resolved("GATEWAY_MEDIA_DIR").join("products"),
    ] {
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // The token verifier's socket (see "Token cache" in nginx.conf): one left behind by a gateway
    // that was killed would stop this one from binding it.
    let socket = resolved("GATEWAY_RUN_DIR").join("verify.sock");
    if socket.exists() {
        fs::remove_file(&socket)
            .with_context(|| format!("cannot remove the stale {}", socket.display()))?;
    }
    let template_path = root.join("nginx.conf");
    let template = fs::read_to_string(&template_path)
        .with_context(|| format!("cannot read {}", template_path.display()))?;
    let rendered = render(&template, &values)?;
    let conf = site.prefix.join("nginx.conf");
    // It holds the gateway secret: owner-only.
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&conf)
        .and_then(|mut file| file.write_all(rendered.as_bytes()))
        .with_context(|| format!("cannot write {}", conf.display()))?;
    Cmd::new(NGINX)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(&site.prefix)
        .arg("-c")
        .arg(&conf)
        .run()
        .context("the rendered gateway configuration is invalid")?;
    Ok(Rendered {
        prefix: site.prefix.clone(),
        conf,
        https_listen,
    })
}

/// The command that runs the gateway in the foreground.
pub fn command(rendered: &Rendered) -> Cmd {
    Cmd::new(NGINX)
        .arg("-p")
        .arg(&rendered.prefix)
        .arg("-c")
        .arg(&rendered.conf)
        .args(["-g", "daemon off;"])
}

#[cfg(test)]
mod tests {
    use super::{render, variables};

    #[test]
    fn renders_only_the_listed_names() -> anyhow::Result<()> {
        let template = "# vars:\n#   ${A}  one\n#   ${B_2}  two\n\nx ${A} $host ${B_2} ${C} $A\n";
        assert_eq!(variables(template), ["A", "B_2"]);
        let values = [
            ("A".to_owned(), "1".to_owned()),
            ("B_2".to_owned(), "2".to_owned()),
        ];
        let out = render(template, &values)?;
        assert!(out.ends_with("x 1 $host 2 ${C} $A\n"), "{out}");
        assert!(render(template, &values[..1]).is_err());
        Ok(())
    }

    #[test]
    fn the_repository_template_has_its_list() -> anyhow::Result<()> {
        let template = std::fs::read_to_string(crate::root().join("nginx.conf"))?;
        let names = variables(&template);
        for name in ["GATEWAY_SECRET", "API_UPSTREAM", "GATEWAY_KEYS_FILE"] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        Ok(())
    }
}
