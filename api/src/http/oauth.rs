//! `POST /oauth/token`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) of API clients.
//!
//! - The request is `application/x-www-form-urlencoded` (`grant_type=client_credentials`,
//!   optional `scope`), at most [`MAX_BODY_BYTES`]; a parameter given twice is refused (§3.2).
//! - The client authenticates with HTTP Basic (§2.3.1: id and secret form-encoded, then base64)
//!   or with `client_id` and `client_secret` in the body, never both (§2.3).
//! - The answer (§5.1) is `{access_token, token_type: "Bearer", expires_in, scope}`: the same
//!   RS256 access token as a person's, its `sub` the publisher, plus `client_id` and `scope`.
//! - Errors (§5.2) are JSON `{error, error_description}`: `invalid_request` (400), `invalid_client`
//!   (401 with `WWW-Authenticate: Basic`: unknown client, wrong secret, revoked client — one
//!   answer for all), `invalid_grant` (400: the publisher may no longer act, banned or no longer
//!   a publisher), `unsupported_grant_type` (400), `invalid_scope` (400: a scope the client was
//!   not granted, or unknown), and 429 (`temporarily_unavailable`, with `Retry-After`) past
//!   `RATE_LIMIT_OAUTH_PER_IP` requests of one address (the gateway's own limit comes first).
//!   Every answer has `Cache-Control: no-store`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::ExposeSecret;

use super::{Edge, GATEWAY_SECRET_HEADER, REAL_IP_HEADER, constant_time_eq, header_str};
use crate::identity::clients::{self, ClientAuthError};
use crate::infra::auth::caller::ClientAddr;
use crate::infra::error::ApiError;
use crate::infra::ratelimit::{self, Counters, WithoutRedis};

/// Largest body of a token request.
pub const MAX_BODY_BYTES: usize = 4096;

/// An error answer of the token endpoint.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut res = (status, axum::Json(body)).into_response();
    no_store(res.headers_mut());
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="store", charset="UTF-8""#),
        );
    }
    res
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn invalid_request(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    )
}

/// The client's address: the gateway's `X-Real-IP` when the request carries its secret, else the
/// socket's peer.
fn client_address(edge: &Edge, headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientAddr {
    let trusted = match (
        &edge.state.config.gateway_secret,
        headers.get(GATEWAY_SECRET_HEADER),
    ) {
        (Some(secret), Some(given)) => {
            constant_time_eq(secret.expose_secret().as_bytes(), given.as_bytes())
        }
        _ => false,
    };
    let peer_ip = peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
    ClientAddr(if trusted {
        header_str(headers, REAL_IP_HEADER).unwrap_or(peer_ip)
    } else {
        peer_ip
    })
}

/// `Authorization: Basic …` as (client id, secret), each form-decoded (RFC 6749 §2.3.1).
/// `Err` for a malformed one.
fn basic_credentials(value: &str) -> Result<(String, String), ()> {
    let (scheme, rest) = value.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((unescape(id), unescape(secret)))
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

pub(super) async fn token(State(edge): State<Edge>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let client = client_address(&edge, &parts.headers, peer);
    let state = &edge.state;
    match ratelimit::hit(
        Counters::of(state),
        "oauth-ip",
        &client.0,
        state.config.rates.oauth_per_ip,
        WithoutRedis::Refuse,
    )
    .await
    {
        Ok(()) => {}
        Err(
            ApiError::RateLimited { retry_after_secs } | ApiError::Unavailable { retry_after_secs },
        ) => {
            let mut res = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                &format!("too many token requests; try again in {retry_after_secs} s"),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
        Err(e) => {
            tracing::error!(error = %e, "counting a token request");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "something went wrong on our side; please try again",
            );
        }
    }
    if !is_form(&parts.headers) {
        return invalid_request("send the request as application/x-www-form-urlencoded");
    }
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return invalid_request("the request body is too large"),
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(&bytes) {
        if params.iter().any(|(seen, _)| *seen == k) {
            return invalid_request(&format!("the parameter `{k}` is given more than once"));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let authorizations = parts.headers.get_all(header::AUTHORIZATION).iter().count();
    if authorizations > 1 {
        return invalid_request("a request may carry one Authorization header only");
    }
    let in_body = (param("client_id"), param("client_secret"));
    let (client_id, secret) = match (parts.headers.get(header::AUTHORIZATION), in_body) {
        (Some(_), (Some(_), _) | (_, Some(_))) => {
            return invalid_request("authenticate the client one way only: HTTP Basic or the body");
        }
        (Some(value), _) => match value.to_str().map_err(|_| ()).and_then(basic_credentials) {
            Ok(c) => c,
            Err(()) => return invalid_client(),
        },
        (None, (Some(id), Some(secret))) => (id.to_owned(), secret.to_owned()),
        (None, _) => return invalid_client(),
    };
    match param("grant_type") {
        None => return invalid_request("the request has no `grant_type`"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this endpoint grants `client_credentials` only",
            );
        }
    }
    match clients::token(state, &client_id, &secret, param("scope")).await {
        Ok((token, scopes)) => {
            let expires_in = token.claims.exp - token.claims.iat;
            let body = serde_json::json!({
                "access_token": token.token,
                "token_type": "Bearer",
                "expires_in": expires_in,
                "scope": domain::identity::Scope::join(&scopes),
            });
            let mut res = (StatusCode::OK, axum::Json(body)).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(ClientAuthError::InvalidClient) => {
            tracing::info!(client.address = %client.0, "token request refused: invalid_client");
            invalid_client()
        }
        Err(ClientAuthError::PublisherInactive) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the client's publisher may no longer act",
        ),
        Err(ClientAuthError::InvalidScope(scope)) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("the client was not granted the scope `{scope}`"),
        ),
        Err(ClientAuthError::Api(e)) => {
            tracing::error!(error = %e, "issuing a client token");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "something went wrong on our side; please try again",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let raw = base64::engine::general_purpose::STANDARD.encode("id%3Ax:s+cr%2Bet");
        assert_eq!(
            basic_credentials(&format!("basic {raw}")),
            Ok(("id:x".to_owned(), "s cr+et".to_owned()))
        );
        assert!(basic_credentials("Bearer abc").is_err());
        assert!(basic_credentials("Basic !!!").is_err());
    }
}
