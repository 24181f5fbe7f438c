//! HTTP edge: routes, who the caller is, and the GraphQL transport rules.
//!
//! - `/graphql` follows the GraphQL-over-HTTP spec (see [`media`] for the media types and status
//!   codes): `POST` takes one `application/json` request (no batches); any other content type is
//!   refused with 415, so an HTML form (a CSRF vector) can never run a mutation. `GET` runs
//!   queries only (405 for mutations) and serves GraphiQL to a browser. Both take automatic
//!   persisted queries (see [`persisted`]).
//! - `POST /graphql/upload` takes the same requests (multipart too) but runs only the upload
//!   mutations ([`UPLOAD_MUTATIONS`]).
//! - Body-size limits are checked here; every document is prechecked (tokens, nesting, spreads,
//!   expanded selections, aliases, text of its strings) on the blocking pool before async-graphql
//!   sees it (see [`crate::graphql::shield`]), with the depth of data and of introspection each
//!   bounded on its own (see [`crate::graphql::limits::check_depth`]); complexity by the schema.
//! - The caller comes from `X-User-*` only when the request carries the gateway's shared secret;
//!   otherwise those headers are ignored and a bearer token, if any, is verified here.
//! - `PUT /uploads/builds/{id}` streams the file of a build, `PUT /uploads/chunks/{product}/{id}`
//!   takes a chunk of a chunked build (see [`uploads`]); the caller is decided the same way.
//! - `POST /oauth/token` is the OAuth 2.0 client-credentials grant of API clients (see [`oauth`]).
//! - `GET /downloads/archives/{product}/{build}/{file}?md5=…&expires=…` assembles the tar archive
//!   of a chunked build for a signed link (the gateway checked the signature; so does the api).

mod media;
pub mod oauth;
pub mod persisted;
mod uploads;

use std::net::SocketAddr;

use async_graphql::http::{GraphiQLSource, WebSocketProtocols};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use domain::ErrorCode;
use domain::identity::Role;
use secrecy::ExposeSecret;
use tower_http::trace::TraceLayer;

use crate::graphql::error::ensure_codes;
use crate::graphql::limits::Refusal;
use crate::graphql::shield::{
    CheckError, Checker, Lapsed, Prechecked, SocketCredential, check_credential,
};
use crate::graphql::variables::selected_operation;
use crate::graphql::{StoreSchema, build_schema};
use crate::infra::auth::caller::{ClientAddr, ClientCountry};
use crate::infra::auth::{Caller, ClientGrant, Principal};
use crate::infra::state::AppState;
use media::Media;

/// Header carrying the gateway's shared secret.
pub const GATEWAY_SECRET_HEADER: &str = "x-gateway-secret";
pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_ROLE_HEADER: &str = "x-user-role";
pub const USER_NAME_HEADER: &str = "x-user-name";
/// `iat` of the verified token, so the api can apply "sign out everywhere" and bans at once.
pub const USER_TOKEN_IAT_HEADER: &str = "x-user-token-iat";
/// `exp` of the verified token (optional), so a socket opened through the gateway with the
/// token in the upgrade request closes when it expires.
pub const USER_TOKEN_EXP_HEADER: &str = "x-user-token-exp";
/// API clients only: the client id of the verified token (its `sub`, in `X-User-Id`, is the
/// publisher it acts for).
pub const USER_CLIENT_HEADER: &str = "x-user-client";
/// API clients only: the scopes of the verified token, space-separated.
pub const USER_SCOPE_HEADER: &str = "x-user-scope";
/// Client address as seen by the gateway.
pub const REAL_IP_HEADER: &str = "x-real-ip";
/// The client's country as the gateway placed it (ISO 3166-1 alpha-2), when it knows it.
pub const COUNTRY_HEADER: &str = "x-country";

#[derive(Clone)]
struct Edge {
    state: AppState,
    schema: StoreSchema,
}

/// The api's router.
pub fn router(state: AppState) -> Router {
    let schema = build_schema(state.clone());
    Router::new()
        .route("/graphql", get(graphql).post(graphql))
        // Same handler; a path of its own so the gateway can allow large (upload) bodies here
        // and keep the small limit on /graphql.
        .route("/graphql/upload", post(graphql_upload))
        .route("/graphql/ws", get(graphql_ws))
        .route("/uploads/builds/{id}", put(uploads::put_build))
        .route("/uploads/chunks/{product}/{id}", put(uploads::put_chunk))
        .route(
            "/downloads/archives/{product}/{build}/{file}",
            get(uploads::get_archive),
        )
        .route("/schema.graphql", get(schema_sdl))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/oauth/token", post(oauth::token))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(TraceLayer::new_for_http())
        .with_state(Edge { state, schema })
}

/// `/metrics` (Prometheus) on its own listener (`API_METRICS_ADDR`), which the gateway never
/// proxies: the series of [`domain::metrics`], the GraphQL ones of `graphql::metrics`, and the
/// database pool sampled as it is scraped.
pub fn metrics_router(state: AppState) -> Router {
    domain::metrics::install();
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move {
                domain::metrics::record_pool(&state.db);
                // The catalog's outbox (build events), sampled like the participants' own.
                let sampled = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    domain::outbox::sample(&state.db, crate::catalog::outbox::SCHEMA),
                )
                .await;
                if !matches!(sampled, Ok(Ok(()))) {
                    tracing::warn!("could not sample the catalog outbox");
                }
                (
                    [(header::CONTENT_TYPE, domain::metrics::CONTENT_TYPE)],
                    domain::metrics::render(),
                )
            }),
        )
        .with_state(state)
}

fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    let mut res = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
    }
    res
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?;
    String::from_utf8(v.as_bytes().to_vec()).ok()
}

/// Why a request's credentials were refused.
enum Refused {
    /// 401 `invalid_token`: a bad, expired or revoked token (or untrusted claims).
    InvalidToken,
    /// 400: the request's headers are malformed (two `Authorization` headers).
    BadHeaders(&'static str),
}

impl Refused {
    fn response(&self) -> Response {
        match self {
            Refused::InvalidToken => error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "the access token is invalid or expired",
            ),
            Refused::BadHeaders(message) => {
                error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
            }
        }
    }
}

/// Who is calling, from where, and on what token (for sockets, which outlive a request).
struct Authenticated {
    caller: Caller,
    client: ClientAddr,
    credential: Option<SocketCredential>,
    /// Set when the caller is an API client: its scopes bound what the principal may do.
    grant: Option<ClientGrant>,
}

/// The token of an `Authorization` value, read exactly as the gateway reads it
/// (`gateway/auth.js`: `/^Bearer +(\S+) *$/i`): the scheme in any case, one or more spaces, the
/// token, optional trailing spaces. `None` for anything else.
pub fn bearer_token(value: &str) -> Option<&str> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = value.get(6..)?;
    let token = rest
        .strip_prefix(' ')?
        .trim_start_matches(' ')
        .trim_end_matches(' ');
    (!token.is_empty() && !token.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then_some(token)
}

/// A claim that becomes an `X-User-*` value or a log field must be text on one line.
fn one_line(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Whether the request came through the gateway (it carries the shared secret).
fn from_gateway(state: &AppState, headers: &HeaderMap) -> bool {
    match (
        &state.config.gateway_secret,
        headers.get(GATEWAY_SECRET_HEADER),
    ) {
        (Some(secret), Some(given)) => {
            constant_time_eq(secret.expose_secret().as_bytes(), given.as_bytes())
        }
        _ => false,
    }
}

/// The client's country from the gateway's `X-Country` (believed from the gateway only; a
/// code of two letters, else none).
fn client_country(state: &AppState, headers: &HeaderMap) -> ClientCountry {
    ClientCountry(
        header_str(headers, COUNTRY_HEADER)
            .filter(|_| from_gateway(state, headers))
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| c.len() == 2 && c.chars().all(|x| x.is_ascii_uppercase())),
    )
}

/// Decides who is calling. A request from the gateway (shared secret) is believed; any other
/// request's `X-User-*` headers are ignored and its bearer token, if any, is verified here.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Authenticated, Refused> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(Refused::BadHeaders(
            "a request may carry one Authorization header only",
        ));
    }
    let trusted = from_gateway(state, headers);
    let peer_ip = peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
    if trusted {
        let client = ClientAddr(header_str(headers, REAL_IP_HEADER).unwrap_or(peer_ip));
        let Some(id) = header_str(headers, USER_ID_HEADER) else {
            return Ok(Authenticated {
                caller: Caller::Anonymous,
                client,
                credential: None,
                grant: None,
            });
        };
        let name = header_str(headers, USER_NAME_HEADER).unwrap_or_default();
        if !one_line(&name) {
            return Err(Refused::InvalidToken);
        }
        let principal = Principal {
            id: id.parse().map_err(|_| Refused::InvalidToken)?,
            role: header_str(headers, USER_ROLE_HEADER)
                .and_then(|r| Role::parse(&r).ok())
                .ok_or(Refused::InvalidToken)?,
            name,
        };
        let iat = header_str(headers, USER_TOKEN_IAT_HEADER).and_then(|v| v.parse().ok());
        let exp = header_str(headers, USER_TOKEN_EXP_HEADER).and_then(|v| v.parse().ok());
        // The gateway sends both client headers for an API client's token and neither for a
        // person's (empty values are not sent at all).
        let grant = grant_of(
            header_str(headers, USER_CLIENT_HEADER).as_deref(),
            header_str(headers, USER_SCOPE_HEADER).as_deref(),
        )?;
        return finish(state, principal, iat, exp, client, grant).await;
    }
    let client = ClientAddr(peer_ip);
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok(Authenticated {
            caller: Caller::Anonymous,
            client,
            credential: None,
            grant: None,
        });
    };
    let auth = auth.to_str().map_err(|_| Refused::InvalidToken)?;
    let token = bearer_token(auth).ok_or(Refused::InvalidToken)?;
    verify_bearer(state, token, client).await
}

/// Verifies a bearer token (the `Authorization` header's, or a socket's `connection_init`).
async fn verify_bearer(
    state: &AppState,
    token: &str,
    client: ClientAddr,
) -> Result<Authenticated, Refused> {
    let claims = state.keys.verify(token).map_err(|e| {
        tracing::debug!(error = %e, "bearer token refused");
        Refused::InvalidToken
    })?;
    if !one_line(&claims.name) {
        tracing::debug!("bearer token refused: a control character in its name");
        return Err(Refused::InvalidToken);
    }
    let grant = grant_of(
        claims.client_id.map(|c| c.to_string()).as_deref(),
        claims.scope.as_deref(),
    )?;
    let principal = Principal {
        id: claims.sub,
        role: claims.role,
        name: claims.name,
    };
    finish(
        state,
        principal,
        Some(claims.iat),
        Some(claims.exp),
        client,
        grant,
    )
    .await
}

/// The grant of an API client's token from its `client_id` and `scope`: none for a person's
/// token (neither given); refused when only one is given or either is malformed.
fn grant_of(client: Option<&str>, scope: Option<&str>) -> Result<Option<ClientGrant>, Refused> {
    match (client, scope) {
        (None, None) => Ok(None),
        (Some(client), Some(scope)) => Ok(Some(ClientGrant {
            client_id: client.parse().map_err(|_| Refused::InvalidToken)?,
            scopes: domain::identity::Scope::parse_list(scope)
                .map_err(|_| Refused::InvalidToken)?,
        })),
        _ => Err(Refused::InvalidToken),
    }
}

async fn finish(
    state: &AppState,
    principal: Principal,
    iat: Option<i64>,
    exp: Option<i64>,
    client: ClientAddr,
    grant: Option<ClientGrant>,
) -> Result<Authenticated, Refused> {
    if let Some(g) = &grant {
        // An API client acts for a publisher only, and only while it is not revoked.
        let active = principal.role == Role::Publisher
            && crate::identity::clients::active(state, g.client_id, principal.id)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "checking an API client");
                    false
                });
        if !active {
            return Err(Refused::InvalidToken);
        }
    }
    match crate::identity::access_allowed(state, principal.id, iat).await {
        Ok(true) => Ok(Authenticated {
            credential: Some(SocketCredential {
                account: principal.id,
                iat,
                exp,
                client: grant.as_ref().map(|g| g.client_id),
            }),
            caller: Caller::Account(principal),
            client,
            grant,
        }),
        Ok(false) => Err(Refused::InvalidToken),
        Err(e) => {
            // Neither Redis nor PostgreSQL could say; fail closed for this request.
            tracing::error!(error = %e, "checking the session cut");
            Err(Refused::InvalidToken)
        }
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Header that marks a multipart request as made by a script (no HTML form can send it).
pub const PREFLIGHT_HEADER: &str = "apollo-require-preflight";

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

async fn graphql(State(edge): State<Edge>, req: Request) -> Response {
    serve_graphql(edge, req, Route::Graphql).await
}

/// `/graphql/upload` runs the upload mutations only (whatever the body: multipart or JSON), so
/// that its larger body limit never serves anything else.
async fn graphql_upload(State(edge): State<Edge>, req: Request) -> Response {
    serve_graphql(edge, req, Route::Upload).await
}

/// The root fields `/graphql/upload` runs.
pub const UPLOAD_MUTATIONS: &[&str] = &["uploadProductImage", "createChunkedBuild"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Graphql,
    Upload,
}

async fn serve_graphql(edge: Edge, req: Request, route: Route) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let limits = edge.state.config.limits;
    let is_get = parts.method == Method::GET;
    if is_get
        && route == Route::Graphql
        && wants_html(&parts.headers)
        && !parts.uri.query().unwrap_or("").contains("query=")
    {
        return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
    }
    let Some(media) = media::negotiate(&parts.headers) else {
        return media::respond(
            Media::Json,
            StatusCode::NOT_ACCEPTABLE,
            &media::error_body(
                ErrorCode::BadRequest,
                "GraphQL responses are served as application/graphql-response+json or \
                 application/json; the Accept header admits neither",
                |_| {},
            ),
        );
    };
    // A request that is not a well-formed GraphQL-over-HTTP request (a body that is not JSON,
    // bad parameters) or that this path refuses: the same status whatever the media type.
    let refuse = |status: StatusCode, message: &str| {
        media::respond(
            media,
            status,
            &media::error_body(ErrorCode::BadRequest, message, |_| {}),
        )
    };

    let request = if is_get {
        match get_request(&parts.uri) {
            Ok(r) => r,
            Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
        }
    } else if is_multipart(&parts.headers) {
        // File uploads (GraphQL multipart request spec). A form could post multipart across
        // sites, so a header no form can set is required (it forces a CORS preflight).
        if !parts.headers.contains_key(PREFLIGHT_HEADER) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "multipart requests need the `Apollo-Require-Preflight: true` header",
            );
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let max_upload = edge
            .state
            .config
            .media
            .max_image_bytes
            .saturating_mul(2)
            .max(edge.state.config.builds.max_manifest_bytes)
            + 64 * 1024;
        let bytes = match axum::body::to_bytes(body, max_upload).await {
            Ok(b) => b,
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the upload exceeds {max_upload} bytes"),
                );
            }
        };
        let options = async_graphql::http::MultipartOptions::default()
            .max_num_files(1)
            .max_file_size(max_upload);
        let reader = futures::io::Cursor::new(bytes.to_vec());
        match async_graphql::http::receive_batch_body(content_type, reader, options).await {
            Ok(async_graphql::BatchRequest::Single(r)) => r,
            Ok(async_graphql::BatchRequest::Batch(_)) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "batched requests are not supported; send one operation per request",
                );
            }
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("bad multipart request: {e}"),
                );
            }
        }
    } else {
        if !is_json(&parts.headers) {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send GraphQL requests as `Content-Type: application/json`",
            );
        }
        let bytes: Bytes = match axum::body::to_bytes(body, limits.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the request body exceeds {} bytes", limits.max_body_bytes),
                );
            }
        };
        match post_request(&bytes) {
            Ok(r) => r,
            Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
        }
    };
    let mut request = request;
    // Automatic persisted queries: a hash alone runs the document registered under it; a hash
    // with its document registers the document once it passed the precheck.
    let register = match persisted::requested_hash(&request) {
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
        Ok(None) => None,
        Ok(Some(hash)) if request.query.is_empty() => {
            let Some(query) = persisted::lookup(&edge.state, &hash).await else {
                let mut res = media::respond(
                    media,
                    media.request_error_status(StatusCode::BAD_REQUEST),
                    &media::error_body(
                        ErrorCode::PersistedQueryNotFound,
                        persisted::NOT_FOUND_MESSAGE,
                        |_| {},
                    ),
                );
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return res;
            };
            request.query = query;
            None
        }
        Ok(Some(hash)) => {
            if persisted::hash_of(&request.query) != hash {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of `query`",
                );
            }
            Some(hash)
        }
    };
    let call = Call {
        is_get,
        route,
        media,
        register,
    };
    execute(&edge, request, call, &parts.headers, peer).await
}

/// How a request came, and what its answer must look like.
struct Call {
    is_get: bool,
    route: Route,
    media: Media,
    /// The hash to register the document under once it passed the precheck (automatic
    /// persisted queries).
    register: Option<String>,
}

/// The parameters of a GraphQL-over-HTTP request, checked as the spec says: `query` a string,
/// `operationName` a string or null, `variables` and `extensions` maps or null.
fn request_from_params(
    query: Option<serde_json::Value>,
    operation_name: Option<serde_json::Value>,
    variables: Option<serde_json::Value>,
    extensions: Option<serde_json::Value>,
) -> Result<async_graphql::Request, String> {
    use serde_json::Value;
    let persisted =
        matches!(&extensions, Some(Value::Object(m)) if m.contains_key("persistedQuery"));
    let query = match query {
        Some(Value::String(q)) => q,
        // An automatic persisted query may name its document by hash alone.
        None | Some(Value::Null) if persisted => String::new(),
        None | Some(Value::Null) => return Err("the request has no `query`".to_owned()),
        Some(_) => return Err("`query` must be a string".to_owned()),
    };
    let mut request = async_graphql::Request::new(query);
    match operation_name {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err("`operationName` must be a string or null".to_owned()),
    }
    match variables {
        None | Some(Value::Null) => {}
        Some(v @ Value::Object(_)) => {
            request = request.variables(async_graphql::Variables::from_json(v));
        }
        Some(_) => return Err("`variables` must be a map or null".to_owned()),
    }
    match extensions {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let value = async_graphql::Value::from_json(v)
                    .map_err(|e| format!("`extensions.{k}` is not a GraphQL value: {e}"))?;
                request.extensions.insert(k, value);
            }
        }
        Some(_) => return Err("`extensions` must be a map or null".to_owned()),
    }
    Ok(request)
}

/// The request of a POST body.
fn post_request(bytes: &[u8]) -> Result<async_graphql::Request, String> {
    let body: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON: {e}"))?;
    let serde_json::Value::Object(mut map) = body else {
        return Err(if body.is_array() {
            "batched requests are not supported; send one operation per request".to_owned()
        } else {
            "the body must be a JSON object with a `query`".to_owned()
        });
    };
    request_from_params(
        map.remove("query"),
        map.remove("operationName"),
        map.remove("variables"),
        map.remove("extensions"),
    )
}

/// The request of a GET's query string (`variables` and `extensions` as URL-encoded JSON).
fn get_request(uri: &axum::http::Uri) -> Result<async_graphql::Request, String> {
    let axum::extract::Query(params) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| format!("bad query string: {e}"))?;
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (k, v) in params {
        let slot = match k.as_str() {
            "query" => &mut query,
            "operationName" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("`{k}` is given twice"));
        }
        *slot = Some(v);
    }
    let json = |name: &str, v: Option<String>| -> Result<Option<serde_json::Value>, String> {
        v.map(|v| {
            serde_json::from_str(&v).map_err(|e| format!("`{name}` is not URL-encoded JSON: {e}"))
        })
        .transpose()
    };
    request_from_params(
        query.map(serde_json::Value::String),
        operation_name.map(serde_json::Value::String),
        json("variables", variables)?,
        json("extensions", extensions)?,
    )
}

/// Whether every operation of the document is a mutation of upload fields only (no fragments
/// at its root, so that nothing else can hide there).
fn only_uploads(doc: &ExecutableDocument) -> bool {
    doc.operations.iter().all(|(_, op)| {
        op.node.ty == OperationType::Mutation
            && op.node.selection_set.node.items.iter().all(|item| {
                matches!(&item.node, Selection::Field(f)
                    if UPLOAD_MUTATIONS.contains(&f.node.name.node.as_str()))
            })
    })
}

async fn execute(
    edge: &Edge,
    mut request: async_graphql::Request,
    call: Call,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Response {
    let Call {
        is_get,
        route,
        media,
        register,
    } = call;
    let Some(checker) = edge.schema.data::<Checker>() else {
        tracing::error!("the schema has no document checker");
        return media::respond(
            media,
            StatusCode::INTERNAL_SERVER_ERROR,
            &media::error_body(
                ErrorCode::InternalServerError,
                "something went wrong on our side; please try again",
                |_| {},
            ),
        );
    };
    // Tokens, nesting, spreads, expanded selections, aliases, depth and string arguments, off
    // the tokio workers, before async-graphql parses, validates or expands anything.
    let doc = match checker
        .precheck(request.query.clone(), request.variables.clone())
        .await
    {
        Ok(doc) => doc,
        Err(CheckError::Busy) => {
            return media::respond(
                media,
                StatusCode::SERVICE_UNAVAILABLE,
                &media::error_body(ErrorCode::Timeout, &CheckError::Busy.to_string(), |_| {}),
            );
        }
        Err(CheckError::Refused(refusal)) => {
            let body = media::error_body(refusal.code(), &refusal.to_string(), |ext| {
                if let Refusal::BadText { field } = &refusal {
                    ext.insert("field".into(), field.as_str().into());
                }
            });
            return media::respond(
                media,
                media.request_error_status(StatusCode::BAD_REQUEST),
                &body,
            );
        }
    };
    // Kept once the caller is known (registrations are counted per address).
    let registration = register.map(|hash| (hash, request.query.clone()));
    if is_get
        && selected_operation(&doc, request.operation_name.as_deref())
            .is_some_and(|op| op.ty != OperationType::Query)
    {
        let mut res = media::respond(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            &media::error_body(
                ErrorCode::BadRequest,
                "only queries may be sent with GET; use POST",
                |_| {},
            ),
        );
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    // The path's own rule, refused as the HTTP request it is (like a mutation over GET).
    if route == Route::Upload && !only_uploads(&doc) {
        return media::respond(
            media,
            StatusCode::BAD_REQUEST,
            &media::error_body(
                ErrorCode::BadRequest,
                &format!(
                    "/graphql/upload runs only the upload mutations ({}); send everything else to /graphql",
                    UPLOAD_MUTATIONS.join(", ")
                ),
                |_| {},
            ),
        );
    }
    // An anonymous GET of the public catalog alone may be cached by whoever is in between.
    let public_read = is_get && crate::graphql::scopes::public_only(&doc);
    request.set_parsed_query(doc);
    let Authenticated {
        caller,
        client,
        grant,
        ..
    } = match authenticate(&edge.state, headers, peer).await {
        Ok(a) => a,
        Err(refused) => {
            let mut res = refused.response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, media.content_type());
            return res;
        }
    };
    if let Some((hash, query)) = &registration {
        persisted::register(&edge.state, hash, query, &client).await;
    }
    let cacheable = public_read && matches!(caller, Caller::Anonymous);
    let country = client_country(&edge.state, headers);
    let mut request = request
        .data(caller)
        .data(client)
        .data(country)
        .data(Prechecked);
    if let Some(grant) = grant {
        request = request.data(grant);
    }
    let mut response = edge.schema.execute(request).await;
    ensure_codes(&mut response);
    graphql_response(media, &response, cacheable)
}

/// A GraphQL response as the spec wants it served: a request error (no error with a path and no
/// data: the request was refused before execution, or stopped) has no `data` entry and, with
/// `application/graphql-response+json`, a 4xx or 5xx status; anything else has `data` (`null`
/// after a field error reached the root) and 200.
///
/// A `cacheable` answer (an anonymous GET of public catalog fields only) without errors is
/// `public` for the shortest `max-age` its fields' cache hints give, and varies with `Accept`
/// and `Authorization`; every other answer is `no-store`.
fn graphql_response(media: Media, response: &async_graphql::Response, cacheable: bool) -> Response {
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = serde_json::to_value(response).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serialising a response");
        media::error_body(
            ErrorCode::InternalServerError,
            "something went wrong on our side; please try again",
            |_| {},
        )
    });
    let status = if request_error {
        if let Some(map) = body.as_object_mut() {
            map.remove("data");
        }
        let code = response.errors.first().and_then(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|c| match c {
                    async_graphql::Value::String(s) => Some(s.clone()),
                    _ => None,
                })
        });
        media.request_error_status(media::status_of_code(code.as_deref()))
    } else {
        StatusCode::OK
    };
    let mut res = media::respond(media, status, &body);
    let max_age = response.cache_control.max_age;
    let cache = if cacheable && response.errors.is_empty() && max_age > 0 {
        res.headers_mut().insert(
            header::VARY,
            // Prices follow the visitor's country, which the gateway reads from CF-IPCountry.
            HeaderValue::from_static("Accept, Authorization, CF-IPCountry"),
        );
        HeaderValue::from_str(&format!("public, max-age={max_age}")).ok()
    } else {
        None
    };
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        cache.unwrap_or(HeaderValue::from_static("no-store")),
    );
    res
}

/// Subscriptions over WebSocket (`graphql-transport-ws`, and the older `graphql-ws`).
///
/// The caller is decided as for HTTP: the upgrade request's gateway headers (with the shared
/// secret) or `Authorization` header; when those leave the socket anonymous, a bearer token in
/// the `connection_init` payload (`{ "Authorization": "Bearer …" }`) is verified instead. A bad
/// token in the upgrade request is a 401; a bad token in the payload closes the socket with
/// 4403 (Forbidden), which `graphql-ws` clients retry (with a fresh token from their
/// `connectionParams`), not with async-graphql's 1002, which they treat as final.
///
/// A socket does not outlive its credential: each operation re-checks it (see
/// [`crate::graphql::shield`]), and the socket is closed, with whatever runs on it, when the
/// token expires (4403 as well: `graphql-ws` treats 4401 as final, and a client renews its
/// token in `connectionParams` only on a retry) or, checked every `WS_SESSION_CHECK_SECS`, when the account signed out
/// everywhere, was banned or got another role (4403). Documents are checked as over HTTP.
async fn graphql_ws(
    State(edge): State<Edge>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
    req: Request,
) -> Response {
    let Some(protocol) = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        })
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "a GraphQL WebSocket speaks graphql-transport-ws (or graphql-ws)",
        );
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let authenticated = match authenticate(&edge.state, req.headers(), peer).await {
        Ok(a) => a,
        Err(refused) => return refused.response(),
    };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_socket(socket, edge, protocol, authenticated))
}

/// The close of a socket whose `connection_init` token was refused: `graphql-ws`'s Forbidden.
const INIT_REFUSED: (u16, &str) = (4403, "Forbidden: the access token is invalid or expired");

async fn serve_socket(
    socket: axum::extract::ws::WebSocket,
    edge: Edge,
    protocol: WebSocketProtocols,
    authenticated: Authenticated,
) {
    use axum::extract::ws::{CloseFrame, Message};
    use futures::{SinkExt as _, StreamExt as _};

    let Authenticated {
        caller,
        client,
        credential,
        grant,
    } = authenticated;
    let state = edge.state.clone();
    let (credential_tx, credential_rx) = tokio::sync::watch::channel(credential.clone());
    let init_state = state.clone();
    // Set when `connection_init` carried a token that was refused: the close that follows is
    // then 4403.
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let init_refused = refused.clone();
    let on_init = move |payload: serde_json::Value| async move {
        let mut data = async_graphql::Data::default();
        let (caller, client, credential, grant) = match (&caller, init_token(&payload)) {
            (Caller::Anonymous, Some(token)) => {
                let a = verify_bearer(&init_state, &token, client)
                    .await
                    .map_err(|_| {
                        init_refused.store(true, std::sync::atomic::Ordering::Relaxed);
                        async_graphql::Error::new(INIT_REFUSED.1)
                    })?;
                (a.caller, a.client, a.credential, a.grant)
            }
            _ => (caller, client, credential, grant),
        };
        if let Some(c) = &credential {
            data.insert(c.clone());
        }
        if let Some(g) = grant {
            data.insert(g);
        }
        // The watcher below follows the credential the socket ends up with.
        let _ = credential_tx.send(credential);
        data.insert(caller);
        data.insert(client);
        Ok(data)
    };
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|res| futures::future::ready(res.is_ok()))
        .filter_map(|msg| {
            futures::future::ready(match msg {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                _ => None,
            })
        });
    let mut messages = async_graphql::http::WebSocket::new(edge.schema.clone(), input, protocol)
        .on_connection_init(on_init);
    let every = state.config.limits.ws_session_check;
    let lapsed = watch_credential(&state, credential_rx, every);
    tokio::pin!(lapsed);
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { break };
                let message = match message {
                    async_graphql::http::WsMessage::Text(text) => Message::Text(text.into()),
                    async_graphql::http::WsMessage::Close(code, reason) => {
                        let (code, reason) =
                            if refused.load(std::sync::atomic::Ordering::Relaxed) {
                                (INIT_REFUSED.0, INIT_REFUSED.1.to_owned())
                            } else {
                                (code, reason)
                            };
                        tracing::info!(ws.close_code = code, "socket closed by the protocol");
                        Message::Close(Some(CloseFrame { code, reason: reason.into() }))
                    }
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            why = &mut lapsed => {
                let (code, reason) = why.close();
                tracing::info!(ws.close_code = code, "socket closed: its credential lapsed");
                // Dropping `messages` stops every subscription of the socket.
                let _ = sink
                    .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                    .await;
                break;
            }
        }
    }
}

/// Resolves when the socket's credential lapses: at the token's expiry, or at the first check
/// (every `every`) that finds its session cut. Never, for an anonymous socket.
async fn watch_credential(
    state: &AppState,
    mut credential: tokio::sync::watch::Receiver<Option<SocketCredential>>,
    every: std::time::Duration,
) -> Lapsed {
    loop {
        let current = credential.borrow_and_update().clone();
        let wait = match &current {
            None => every,
            Some(c) => {
                let left = c
                    .exp
                    .map(|exp| exp.saturating_sub(chrono::Utc::now().timestamp()))
                    .map(|secs| std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
                left.map_or(every, |left| left.min(every))
            }
        };
        let changed = async {
            // Once `connection_init` is done the sender is gone: only the clock remains.
            if credential.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = changed => continue,
            () = tokio::time::sleep(wait) => {}
        }
        if let Some(c) = &current
            && let Err(lapsed) = check_credential(state, c).await
        {
            return lapsed;
        }
    }
}

/// The bearer token of a `connection_init` payload (`Authorization` or `authorization`), read
/// as the `Authorization` header is.
fn init_token(payload: &serde_json::Value) -> Option<String> {
    let auth = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))?
        .as_str()?;
    bearer_token(auth).map(str::to_owned)
}

async fn schema_sdl() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::graphql::sdl(),
    )
}

async fn jwks(State(edge): State<Edge>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(edge.state.keys.jwks()),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready (200) when PostgreSQL and NATS answer: `"status":"ok"` with Redis, `"degraded"` without
/// it (the api serves from PostgreSQL meanwhile); 503 without PostgreSQL or NATS.
async fn readyz(State(edge): State<Edge>) -> Response {
    let state = &edge.state;
    let timeout = std::time::Duration::from_secs(2);
    let postgres = tokio::time::timeout(timeout, state.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let nats = tokio::time::timeout(timeout, state.nats.flush())
        .await
        .is_ok_and(|r| r.is_ok())
        && state.nats.connection_state() == async_nats::connection::State::Connected;
    let found = domain::health::Readiness {
        postgres,
        redis: state.redis_health.is_up(),
        nats,
    };
    let status = if found.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(found.body())).into_response()
}
