//! `PUT /uploads/builds/{id}`: the file of a build, as the raw request body (any length up to the
//! announced size; streamed, never held in memory). The caller is decided as for `/graphql`.
//!
//! Answers: 200 with the build as JSON (the GraphQL `Build` fields); errors as JSON
//! `{"errors":[{"message","extensions":{"code"}}]}` with 401 (no or bad credentials), 403 (not
//! the product's publisher or an admin), 404 (no such build), 409 (already uploaded, or being
//! uploaded by another request), 422 (`BAD_USER_INPUT`: the size differs from `sizeBytes`, or the
//! SHA-256 from `X-Content-SHA256`; nothing is kept and the upload can be sent again), 400 (a
//! malformed `X-Content-SHA256`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;
use uuid::Uuid;

use super::{Authenticated, Edge, authenticate, error_response, header_str};
use crate::graphql::catalog::builds::Build;
use crate::infra::auth::Caller;
use crate::infra::error::ApiError;

/// Header with the SHA-256 (hex) the client computed; checked against the received bytes.
pub const CONTENT_SHA256_HEADER: &str = "x-content-sha256";

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadUserInput => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn api_error(e: &ApiError) -> Response {
    if e.is_internal() {
        tracing::error!(error = %e, "build upload failed");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
            "something went wrong on our side; please try again",
        );
    }
    // A malformed header is the request's fault, not the file's.
    let status = match e {
        ApiError::BadInput {
            field: "X-Content-SHA256",
            message,
        } if message.starts_with("X-Content-SHA256 must") => StatusCode::BAD_REQUEST,
        _ => status_of(e.code()),
    };
    error_response(status, e.code(), &e.to_string())
}

pub(super) async fn put_build(
    State(edge): State<Edge>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let mut body = body.into_data_stream();
    // Every refusal reads the body first (bounded, see `builds::drain`): a connection closed
    // with its request body unread makes the streaming gateway answer 502 instead.
    let me = match authenticate(&edge.state, &parts.headers, peer).await {
        Ok(Authenticated {
            caller: Caller::Account(p),
            ..
        }) => p,
        Ok(_) => {
            crate::catalog::builds::drain(&mut body).await;
            return api_error(&ApiError::SignInRequired);
        }
        Err(refused) => {
            crate::catalog::builds::drain(&mut body).await;
            return refused.response();
        }
    };
    let Ok(id) = id.parse::<Uuid>() else {
        crate::catalog::builds::drain(&mut body).await;
        return api_error(&ApiError::NotFound("build"));
    };
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let declared = header_str(&parts.headers, CONTENT_SHA256_HEADER);
    match crate::catalog::builds::upload(
        &edge.state,
        &me,
        id,
        content_length,
        declared.as_deref(),
        body,
    )
    .await
    {
        Ok(build) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(Build::from(build)),
        )
            .into_response(),
        Err(e) => api_error(&e),
    }
}
