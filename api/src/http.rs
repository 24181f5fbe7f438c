//! HTTP edge: routes, who the caller is, and the GraphQL transport rules.
//!
//! - `POST /graphql` takes one `application/json` request (no batches); any other content type is
//!   refused with 415, so an HTML form (a CSRF vector) can never run a mutation.
//! - `GET /graphql` runs queries only (405 for mutations) and serves GraphiQL to a browser.
//! - Parse, alias and body-size limits are checked here; depth and complexity by the schema.
//! - The caller comes from `X-User-*` only when the request carries the gateway's shared secret;
//!   otherwise those headers are ignored and a bearer token, if any, is verified here.
//! - `PUT /uploads/builds/{id}` streams the file of a build (see [`uploads`]); the caller is
//!   decided the same way.

mod uploads;

use std::net::SocketAddr;

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::{DocumentOperations, OperationType};
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

use crate::auth::caller::ClientAddr;
use crate::auth::{Caller, Principal};
use crate::graphql::catalog::loaders::Loaders;
use crate::graphql::error::ensure_codes;
use crate::graphql::limits::count_aliases;
use crate::graphql::{StoreSchema, build_schema};
use crate::state::AppState;

/// Header carrying the gateway's shared secret.
pub const GATEWAY_SECRET_HEADER: &str = "x-gateway-secret";
pub const USER_ID_HEADER: &str = "x-user-id";
pub const USER_ROLE_HEADER: &str = "x-user-role";
pub const USER_NAME_HEADER: &str = "x-user-name";
/// `iat` of the verified token, so the api can apply "sign out everywhere" and bans at once.
pub const USER_TOKEN_IAT_HEADER: &str = "x-user-token-iat";
/// Client address as seen by the gateway.
pub const REAL_IP_HEADER: &str = "x-real-ip";

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
        .route("/graphql/upload", post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/uploads/builds/{id}", put(uploads::put_build))
        .route("/schema.graphql", get(schema_sdl))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(TraceLayer::new_for_http())
        .with_state(Edge { state, schema })
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

/// Why a request's credentials were refused: always a 401 `invalid_token`.
struct InvalidToken;

/// Decides who is calling. A request from the gateway (shared secret) is believed; any other
/// request's `X-User-*` headers are ignored and its bearer token, if any, is verified here.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<(Caller, ClientAddr), InvalidToken> {
    let trusted = match (
        &state.config.gateway_secret,
        headers.get(GATEWAY_SECRET_HEADER),
    ) {
        (Some(secret), Some(given)) => {
            constant_time_eq(secret.expose_secret().as_bytes(), given.as_bytes())
        }
        _ => false,
    };
    let peer_ip = peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
    if trusted {
        let client = ClientAddr(header_str(headers, REAL_IP_HEADER).unwrap_or(peer_ip));
        let Some(id) = header_str(headers, USER_ID_HEADER) else {
            return Ok((Caller::Anonymous, client));
        };
        let principal = Principal {
            id: id.parse().map_err(|_| InvalidToken)?,
            role: header_str(headers, USER_ROLE_HEADER)
                .and_then(|r| Role::parse(&r).ok())
                .ok_or(InvalidToken)?,
            name: header_str(headers, USER_NAME_HEADER).unwrap_or_default(),
        };
        let iat = header_str(headers, USER_TOKEN_IAT_HEADER).and_then(|v| v.parse().ok());
        return finish(state, principal, iat, client).await;
    }
    let client = ClientAddr(peer_ip);
    let Some(auth) = headers.get(header::AUTHORIZATION) else {
        return Ok((Caller::Anonymous, client));
    };
    let auth = auth.to_str().map_err(|_| InvalidToken)?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .ok_or(InvalidToken)?;
    let claims = state.keys.verify(token.trim()).map_err(|e| {
        tracing::debug!(error = %e, "bearer token refused");
        InvalidToken
    })?;
    let principal = Principal {
        id: claims.sub,
        role: claims.role,
        name: claims.name,
    };
    finish(state, principal, Some(claims.iat), client).await
}

async fn finish(
    state: &AppState,
    principal: Principal,
    iat: Option<i64>,
    client: ClientAddr,
) -> Result<(Caller, ClientAddr), InvalidToken> {
    match state.sessions.access_allowed(principal.id, iat).await {
        Ok(true) => Ok((Caller::Account(principal), client)),
        Ok(false) => Err(InvalidToken),
        Err(e) => {
            // Redis holds only the revocation cut; without it, fail closed for this request.
            tracing::error!(error = %e, "checking the session cut");
            Err(InvalidToken)
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
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let limits = edge.state.config.limits;

    let request = if parts.method == Method::GET {
        let query = parts.uri.query().unwrap_or("");
        if !query.contains("query=") {
            if wants_html(&parts.headers) {
                return Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response();
            }
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "a GET request needs a `query` parameter",
            );
        }
        match async_graphql::http::parse_query_string(query) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    &format!("bad query string: {e}"),
                );
            }
        }
    } else if is_multipart(&parts.headers) {
        // File uploads (GraphQL multipart request spec). A form could post multipart across
        // sites, so a header no form can set is required (it forces a CORS preflight).
        if !parts.headers.contains_key(PREFLIGHT_HEADER) {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "multipart requests need the `Apollo-Require-Preflight: true` header",
            );
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let max_upload = edge.state.config.media.max_image_bytes.saturating_mul(2) + 64 * 1024;
        let bytes = match axum::body::to_bytes(body, max_upload).await {
            Ok(b) => b,
            Err(_) => {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::BadRequest,
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
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    "batched requests are not supported; send one operation per request",
                );
            }
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    &format!("bad multipart request: {e}"),
                );
            }
        }
    } else {
        if !is_json(&parts.headers) {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::BadRequest,
                "send GraphQL requests as `Content-Type: application/json`",
            );
        }
        let bytes: Bytes = match axum::body::to_bytes(body, limits.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::BadRequest,
                    &format!("the request body exceeds {} bytes", limits.max_body_bytes),
                );
            }
        };
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "batched requests are not supported; send one operation per request",
            );
        }
        match serde_json::from_slice::<async_graphql::Request>(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    &format!("the body is not a GraphQL request: {e}"),
                );
            }
        }
    };
    execute(
        &edge,
        request,
        parts.method == Method::GET,
        &parts.headers,
        peer,
    )
    .await
}

async fn execute(
    edge: &Edge,
    mut request: async_graphql::Request,
    is_get: bool,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Response {
    let limits = edge.state.config.limits;
    let operation_name = request.operation_name.clone();
    let doc = match request.parsed_query() {
        Ok(doc) => doc,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::GraphqlParseFailed,
                &e.message,
            );
        }
    };
    if is_get {
        let ty = match (&doc.operations, operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op.node.ty),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
            (DocumentOperations::Multiple(_), None) => None,
        };
        if ty.is_some_and(|t| t != OperationType::Query) {
            let mut res = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::BadRequest,
                "only queries may be sent with GET; use POST",
            );
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return res;
        }
    }
    let aliases = count_aliases(doc);
    if aliases > limits.max_aliases {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::GraphqlValidationFailed,
            &format!(
                "the document has {aliases} aliases; at most {} are allowed",
                limits.max_aliases
            ),
        );
    }
    let (caller, client) = match authenticate(&edge.state, headers, peer).await {
        Ok(c) => c,
        Err(InvalidToken) => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "the access token is invalid or expired",
            );
        }
    };
    let loaders = Loaders::new(&edge.state.db);
    let mut response = edge
        .schema
        .execute(request.data(caller).data(client).data(loaders))
        .await;
    ensure_codes(&mut response);
    let mut res = axum::Json(&response).into_response();
    if let Some(cache) = response.cache_control.value() {
        if let Ok(v) = HeaderValue::from_str(&cache) {
            res.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    } else {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Subscriptions over WebSocket (`graphql-transport-ws`, and the older `graphql-ws`).
///
/// The caller is decided as for HTTP: the upgrade request's gateway headers (with the shared
/// secret) or `Authorization` header; when those leave the socket anonymous, a bearer token in
/// the `connection_init` payload (`{ "Authorization": "Bearer …" }`) is verified instead. A bad
/// token in the upgrade request is a 401; a bad token in the payload closes the socket.
async fn graphql_ws(
    State(edge): State<Edge>,
    protocol: async_graphql_axum::GraphQLProtocol,
    upgrade: axum::extract::ws::WebSocketUpgrade,
    req: Request,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (caller, client) = match authenticate(&edge.state, req.headers(), peer).await {
        Ok(c) => c,
        Err(InvalidToken) => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "the access token is invalid or expired",
            );
        }
    };
    let schema = edge.schema.clone();
    let state = edge.state.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            async_graphql_axum::GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let caller = match (&caller, init_token(&payload)) {
                        (Caller::Anonymous, Some(token)) => {
                            let mut headers = HeaderMap::new();
                            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                                .map_err(|_| async_graphql::Error::new("invalid token"))?;
                            headers.insert(header::AUTHORIZATION, value);
                            authenticate(&state, &headers, peer)
                                .await
                                .map_err(|InvalidToken| {
                                    async_graphql::Error::new(
                                        "the access token is invalid or expired",
                                    )
                                })?
                                .0
                        }
                        _ => caller,
                    };
                    let mut data = async_graphql::Data::default();
                    data.insert(caller);
                    data.insert(client);
                    data.insert(Loaders::new(&state.db));
                    Ok(data)
                })
                .serve()
                .await;
        })
}

/// The bearer token of a `connection_init` payload (`Authorization` or `authorization`).
fn init_token(payload: &serde_json::Value) -> Option<String> {
    let auth = payload
        .get("Authorization")
        .or_else(|| payload.get("authorization"))?
        .as_str()?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?;
    Some(token.trim().to_owned())
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

/// Ready when PostgreSQL, Redis and NATS all answer.
async fn readyz(State(edge): State<Edge>) -> Response {
    use fred::interfaces::ClientLike;
    let state = &edge.state;
    let timeout = std::time::Duration::from_secs(2);
    let pg = tokio::time::timeout(timeout, state.db.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let redis = tokio::time::timeout(timeout, state.redis.ping::<String>(None))
        .await
        .is_ok_and(|r| r.is_ok());
    let nats = tokio::time::timeout(timeout, state.nats.flush())
        .await
        .is_ok_and(|r| r.is_ok())
        && state.nats.connection_state() == async_nats::connection::State::Connected;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body =
        serde_json::json!({ "postgres": word(pg), "redis": word(redis), "nats": word(nats) });
    let status = if pg && redis && nats {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
