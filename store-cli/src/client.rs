//! The store through its gateway: GraphQL (`/graphql`, and `/graphql/upload` for a
//! manifest), chunk uploads (`PUT /uploads/chunks/…`) and signed chunk downloads. Signs in
//! with an e-mail and password (and then renews its access token when it expires) or uses a
//! token it is given. Counts requests and bytes of chunks sent and received ([`Stats`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::{Error, Result};

/// What went over the wire for chunks (bytes as sent: zstd frames).
#[derive(Debug, Default)]
pub struct Stats {
    pub chunks_uploaded: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub chunks_downloaded: AtomicU64,
    pub bytes_downloaded: AtomicU64,
    /// Every HTTP request, GraphQL ones included.
    pub requests: AtomicU64,
}

impl Stats {
    pub fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Debug, Default)]
struct Tokens {
    access: String,
    refresh: Option<String>,
}

/// A client of one store.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    tokens: Arc<RwLock<Tokens>>,
    pub stats: Arc<Stats>,
}

const SIGN_IN: &str =
    "mutation($i: SignInInput!) { signIn(input: $i) { accessToken refreshToken } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }";

impl Client {
    /// A client of the store at `base` (`https://store.example`), trusting `ca_pem` too (a
    /// private CA, such as the one `cargo xtask dev` makes).
    pub fn new(base: &str, ca_pem: Option<&[u8]>) -> Result<Client> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("store-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(16);
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Client {
            http: builder.build()?,
            base: base.trim_end_matches('/').to_owned(),
            tokens: Arc::new(RwLock::new(Tokens::default())),
            stats: Arc::new(Stats::default()),
        })
    }

    /// Uses an access token (no renewal: it must outlive the command).
    pub async fn use_token(&self, token: &str) {
        *self.tokens.write().await = Tokens {
            access: token.to_owned(),
            refresh: None,
        };
    }

    /// Signs in; the session is renewed when its access token expires.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<()> {
        let v = self
            .gql_as(
                None,
                SIGN_IN,
                json!({ "i": { "email": email, "password": password } }),
            )
            .await?;
        self.keep_tokens(&v["signIn"]).await
    }

    async fn keep_tokens(&self, v: &Value) -> Result<()> {
        let access = v["accessToken"]
            .as_str()
            .ok_or_else(|| Error::Usage("the store gave no access token".into()))?;
        *self.tokens.write().await = Tokens {
            access: access.to_owned(),
            refresh: v["refreshToken"].as_str().map(str::to_owned),
        };
        Ok(())
    }

    /// Renews the session after a 401; `false` when it cannot (a given token).
    async fn renew(&self, stale: &str) -> Result<bool> {
        let refresh = {
            let t = self.tokens.read().await;
            if t.access != stale {
                // Another request renewed it meanwhile.
                return Ok(true);
            }
            t.refresh.clone()
        };
        let Some(refresh) = refresh else {
            return Ok(false);
        };
        let v = self.gql_as(None, REFRESH, json!({ "t": refresh })).await?;
        self.keep_tokens(&v["refreshSession"]).await?;
        Ok(true)
    }

    async fn access(&self) -> String {
        self.tokens.read().await.access.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn count(&self) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The `data` of a GraphQL answer, or its first error.
    fn data(status: StatusCode, body: Value) -> Result<Value> {
        if let Some(err) = body["errors"].as_array().and_then(|e| e.first()) {
            return Err(Error::Api {
                code: err["extensions"]["code"]
                    .as_str()
                    .unwrap_or("UNKNOWN")
                    .to_owned(),
                message: err["message"].as_str().unwrap_or("").to_owned(),
                missing: err["extensions"]["missing"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        if !status.is_success() || body["data"].is_null() {
            return Err(Error::Status {
                what: "a GraphQL request".into(),
                status: status.as_u16(),
                body: body.to_string(),
            });
        }
        Ok(body["data"].clone())
    }

    async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Result<Value> {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.count();
        let res = req.send().await?;
        let status = res.status();
        let body: Value = res.json().await?;
        Client::data(status, body)
    }

    /// A GraphQL operation as the signed-in caller (renewing the session once on a 401).
    pub async fn gql(&self, query: &str, variables: Value) -> Result<Value> {
        let token = self.access().await;
        match self.gql_as(Some(&token), query, variables.clone()).await {
            Err(Error::Api { code, .. })
                if code == "UNAUTHENTICATED" && self.renew(&token).await? =>
            {
                let token = self.access().await;
                self.gql_as(Some(&token), query, variables).await
            }
            other => other,
        }
    }

    /// A GraphQL operation with one file (`variables.<file_var>`), as a multipart request to
    /// `/graphql/upload`.
    pub async fn gql_upload(
        &self,
        query: &str,
        variables: Value,
        file_var: &str,
        file: Vec<u8>,
    ) -> Result<Value> {
        let mut tried = false;
        loop {
            let token = self.access().await;
            let operations = json!({ "query": query, "variables": variables });
            let form = reqwest::multipart::Form::new()
                .text("operations", operations.to_string())
                .text(
                    "map",
                    json!({ "0": [format!("variables.{file_var}")] }).to_string(),
                )
                .part(
                    "0",
                    reqwest::multipart::Part::bytes(file.clone())
                        .file_name("manifest.json")
                        .mime_str("application/json")?,
                );
            self.count();
            let res = self
                .http
                .post(self.url("/graphql/upload"))
                .bearer_auth(&token)
                .header("apollo-require-preflight", "true")
                .multipart(form)
                .send()
                .await?;
            let status = res.status();
            let body: Value = res.json().await?;
            match Client::data(status, body) {
                Err(Error::Api { code, .. })
                    if code == "UNAUTHENTICATED" && !tried && self.renew(&token).await? =>
                {
                    tried = true;
                }
                other => return other,
            }
        }
    }

    /// Uploads a chunk (a zstd frame of the bytes whose SHA-256 is `id`); `true` when the
    /// store did not have it.
    pub async fn put_chunk(&self, product: &str, id: &str, frame: Vec<u8>) -> Result<bool> {
        let len = frame.len() as u64;
        let mut tried = false;
        loop {
            let token = self.access().await;
            self.count();
            let res = self
                .http
                .put(self.url(&format!("/uploads/chunks/{product}/{id}")))
                .bearer_auth(&token)
                .header("content-type", "application/zstd")
                .body(frame.clone())
                .send()
                .await?;
            let status = res.status();
            self.stats.bytes_uploaded.fetch_add(len, Ordering::Relaxed);
            self.stats.chunks_uploaded.fetch_add(1, Ordering::Relaxed);
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if status == StatusCode::UNAUTHORIZED && !tried && self.renew(&token).await? {
                tried = true;
                continue;
            }
            if status.is_success() {
                return Ok(body["created"].as_bool().unwrap_or(false));
            }
            return match Client::data(status, body.clone()) {
                Err(e @ Error::Api { .. }) => Err(e),
                _ => Err(Error::Status {
                    what: format!("chunk {id}"),
                    status: status.as_u16(),
                    body: body.to_string(),
                }),
            };
        }
    }

    /// `GET` of a signed path (`/downloads/…?…`): its status and body. A 200's bytes count
    /// as a downloaded chunk.
    pub async fn get_chunk(&self, path_and_query: &str) -> Result<(StatusCode, Vec<u8>)> {
        self.count();
        let res = self.http.get(self.url(path_and_query)).send().await?;
        let status = res.status();
        let bytes = res.bytes().await?.to_vec();
        if status.is_success() {
            self.stats
                .bytes_downloaded
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            self.stats.chunks_downloaded.fetch_add(1, Ordering::Relaxed);
        }
        Ok((status, bytes))
    }
}
