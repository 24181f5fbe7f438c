//! The gateway test harness: the real nginx with the repository's `nginx.conf` (rendered as
//! `cargo xtask dev` renders it) and curl to talk to it. Used by the gateway and build tests.
//!
//! nginx, its njs module, curl and openssl must be installed (`cargo xtask test` installs them);
//! if one is missing these tests fail, they never skip.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{GATEWAY_SECRET, test_private_key};

pub const DOWNLOAD_SECRET: &str = "test-download-secret";

pub fn repo_root() -> &'static Path {
    let api = Path::new(env!("CARGO_MANIFEST_DIR"));
    api.parent().unwrap_or(api)
}

/// Fails (never skips) when a program the gateway tests need is missing.
pub fn require(program: &str) {
    let found = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {program} || test -x /usr/sbin/{program}"),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is not installed: the gateway tests run the real nginx. Run `cargo xtask \
         test` (as root it installs nginx libnginx-mod-http-js libnginx-mod-http-lua \
         libnginx-mod-http-brotli-filter curl openssl) or install those Debian packages."
    );
}

pub fn nginx_program() -> String {
    require("nginx");
    assert!(
        Path::new("/usr/lib/nginx/modules/ngx_http_js_module.so").exists(),
        "the nginx njs module is missing: install the Debian package libnginx-mod-http-js \
         (`cargo xtask test` does it when run as root)"
    );
    assert!(
        Path::new("/usr/lib/nginx/modules/ngx_http_lua_module.so").exists(),
        "the nginx Lua module is missing: install the Debian package libnginx-mod-http-lua \
         (`cargo xtask test` does it when run as root)"
    );
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx".to_owned()
    } else {
        "nginx".to_owned()
    }
}

/// The `${NAME}`s listed in the header of nginx.conf (the one list of variable names).
pub fn template_variables(template: &str) -> Vec<String> {
    template
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .filter_map(|l| {
            let rest = l.trim_start_matches('#').trim_start().strip_prefix("${")?;
            let (name, _) = rest.split_once('}')?;
            Some(name.to_owned())
        })
        .collect()
}

/// envsubst with a list: replaces `${NAME}` for the listed names only.
pub fn render(template: &str, values: &[(String, String)]) -> String {
    let names = template_variables(template);
    let mut out = template.to_owned();
    for name in &names {
        let value = values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no value for ${{{name}}}"));
        out = out.replace(&format!("${{{name}}}"), &value);
    }
    for (k, _) in values {
        assert!(names.contains(k), "{k} is not a variable of nginx.conf");
    }
    out
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub fn tmp_dir(what: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed certificate for localhost / 127.0.0.1, made once per test process.
pub fn tls_files() -> &'static (PathBuf, PathBuf) {
    static TLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TLS.get_or_init(|| {
        require("openssl");
        let dir = tmp_dir("gateway-tls");
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        run_ok(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=localhost"])
                .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        (cert, key)
    })
}

/// The test key set (the same key as every `TestApp`).
pub fn test_keys() -> &'static api::infra::auth::jwt::Keys {
    static KEYS: OnceLock<api::infra::auth::jwt::Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        api::infra::auth::jwt::Keys::from_config(&api::infra::config::JwtConfig {
            private_key_pem: Some(secrecy::SecretString::from(test_private_key().to_owned())),
            extra_public_keys_pem: None,
            issuer: "store".to_owned(),
            audience: "store-api".to_owned(),
            access_ttl: Duration::from_secs(600),
        })
        .expect("keys")
    })
}

/// What `api gateway-keys` writes.
pub fn keys_json(keys: &api::infra::auth::jwt::Keys) -> String {
    let map: serde_json::Map<String, Value> = keys
        .public_pems()
        .into_iter()
        .map(|(kid, pem)| (kid, Value::String(pem)))
        .collect();
    Value::Object(map).to_string()
}

/// A running nginx with the rendered nginx.conf.
pub struct Gateway {
    child: Child,
    pub dir: PathBuf,
    pub https: u16,
    pub http: u16,
}

impl Gateway {
    pub fn start(upstream: SocketAddr, overrides: &[(&str, &str)]) -> Gateway {
        let nginx = nginx_program();
        require("curl");
        let (cert, key) = tls_files();
        let dir = tmp_dir("gateway");
        for sub in ["run", "spa", "downloads/builds"] {
            std::fs::create_dir_all(dir.join(sub)).expect("dirs");
        }
        std::fs::write(dir.join("keys.json"), keys_json(test_keys())).expect("keys");
        std::fs::write(
            dir.join("spa/index.html"),
            "<!doctype html><title>Store</title>",
        )
        .expect("index");
        std::fs::write(
            dir.join("spa/product.html"),
            "<!doctype html><title>Product</title>",
        )
        .expect("product");
        std::fs::write(
            dir.join("spa/account.html"),
            "<!doctype html><title>Account</title>",
        )
        .expect("account");
        std::fs::write(
            dir.join("spa/manage.html"),
            "<!doctype html><title>Manage</title>",
        )
        .expect("manage");
        std::fs::write(dir.join("spa/app-0123456789abcdef.js"), "console.log(1)\n").expect("js");
        // Stand-ins for the build's precompressed copies: the gateway sends them as they are.
        std::fs::write(dir.join("spa/app-0123456789abcdef.js.br"), "brotli copy\n").expect("br");
        std::fs::write(dir.join("spa/app-0123456789abcdef.js.gz"), "gzip copy\n").expect("gz");
        let build: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.join("downloads/builds/game.bin"), build).expect("download");
        let (https, http) = (free_port(), free_port());
        let p = |path: &Path| path.display().to_string();
        let mut values: Vec<(String, String)> = [
            ("GATEWAY_HTTPS_LISTEN", format!("127.0.0.1:{https}")),
            ("GATEWAY_HTTP_LISTEN", format!("127.0.0.1:{http}")),
            ("GATEWAY_PUBLIC_HTTPS_PORT", https.to_string()),
            ("GATEWAY_RUN_DIR", p(&dir.join("run"))),
            ("GATEWAY_ACCESS_LOG", p(&dir.join("access.log"))),
            ("GATEWAY_ERROR_LOG", p(&dir.join("error.log"))),
            ("GATEWAY_TLS_CERT", p(cert)),
            ("GATEWAY_TLS_KEY", p(key)),
            ("GATEWAY_HSTS_MAX_AGE", "63072000".to_owned()),
            ("GATEWAY_NJS_DIR", p(&repo_root().join("gateway"))),
            ("GATEWAY_KEYS_FILE", p(&dir.join("keys.json"))),
            ("JWT_ISSUER", "store".to_owned()),
            ("JWT_AUDIENCE", "store-api".to_owned()),
            ("API_UPSTREAM", upstream.to_string()),
            ("GATEWAY_SECRET", GATEWAY_SECRET.to_owned()),
            ("GATEWAY_SPA_DIR", p(&dir.join("spa"))),
            ("GATEWAY_DOWNLOADS_DIR", p(&dir.join("downloads"))),
            ("GATEWAY_DOWNLOAD_SECRET", DOWNLOAD_SECRET.to_owned()),
            ("GATEWAY_MAX_BODY", "256k".to_owned()),
            ("GATEWAY_MAX_UPLOAD", "11m".to_owned()),
            ("GATEWAY_MAX_BUILD_BYTES", "64m".to_owned()),
            ("GATEWAY_MEDIA_DIR", p(&dir.join("media"))),
            // As in dev: no proxy in front, X-Forwarded-For never believed.
            ("GATEWAY_TRUSTED_PROXIES", "unix:".to_owned()),
            ("GATEWAY_AUTH_RATE", "600r/m".to_owned()),
            ("GATEWAY_AUTH_BURST", "100".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in overrides {
            let slot = values
                .iter_mut()
                .find(|(name, _)| name == k)
                .unwrap_or_else(|| panic!("unknown variable {k}"));
            slot.1 = (*v).to_owned();
        }
        let template = std::fs::read_to_string(repo_root().join("nginx.conf")).expect("nginx.conf");
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, render(&template, &values)).expect("write conf");
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("stderr"))
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let up = TcpStream::connect(("127.0.0.1", https)).is_ok()
                && TcpStream::connect(("127.0.0.1", http)).is_ok();
            if up {
                break;
            }
            let exited = child.try_wait().expect("try_wait");
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let log = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                panic!(
                    "nginx did not start ({exited:?}):\n{}\n{}",
                    log("stderr.log"),
                    log("error.log")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Gateway {
            child,
            dir,
            https,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https)
    }

    pub fn log(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM to the master: it stops its workers (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An HTTP response as curl saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// Runs curl (`-k -i`) on a blocking thread, so a server on this test's runtime keeps running.
pub async fn curl(args: Vec<String>) -> Reply {
    tokio::task::spawn_blocking(move || {
        let out = Command::new("curl")
            .args(["-sS", "-k", "-i", "--max-time", "10"])
            .args(&args)
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Skip interim responses (100 Continue).
        let mut rest = text.as_str();
        loop {
            let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
            let mut lines = head.lines();
            let status: u16 = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    panic!(
                        "curl {args:?}: no response: {text} {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            if status == 100 {
                rest = body;
                continue;
            }
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Reply {
                status,
                headers,
                body: body.to_owned(),
            };
        }
    })
    .await
    .expect("curl thread")
}

pub fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// `curl` arguments of a GraphQL POST with extra headers.
pub fn gql_args(url: &str, query: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let mut args = s(&[url, "-H", "content-type: application/json", "--data-binary"]);
    args.push(json!({ "query": query }).to_string());
    for (k, v) in headers {
        args.push("-H".to_owned());
        args.push(format!("{k}: {v}"));
    }
    args
}

/// Runs curl (`-k`) on a blocking thread, keeping the body as bytes (downloads, uploads of
/// binary files): the status and headers of the last response, and its body.
pub async fn curl_bytes(args: Vec<String>) -> (Reply, Vec<u8>) {
    let dir = tmp_dir("curl");
    let (head, body) = (dir.join("head"), dir.join("body"));
    let out = tokio::task::spawn_blocking({
        let (head, body) = (head.clone(), body.clone());
        move || {
            Command::new("curl")
                .args(["-sS", "-k", "--max-time", "60", "-D"])
                .arg(&head)
                .arg("-o")
                .arg(&body)
                .args(&args)
                .output()
                .expect("run curl")
        }
    })
    .await
    .expect("curl thread");
    let text = std::fs::read_to_string(&head).unwrap_or_default();
    // The last response's head (after interim 100 Continue ones).
    let last = text
        .split("\r\n\r\n")
        .filter(|block| block.starts_with("HTTP/"))
        .last()
        .unwrap_or_else(|| {
            panic!(
                "curl: no response: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let mut lines = last.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let bytes = std::fs::read(&body).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let reply = Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    (reply, bytes)
}
