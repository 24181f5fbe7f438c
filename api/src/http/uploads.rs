//! `PUT /uploads/builds/{id}`: the file of a build, as the raw request body (any length up to the
//! announced size; streamed, never held in memory). The caller is decided as for `/graphql`.
//!
//! `PUT /uploads/chunks/{product}/{id}`: a chunk of a chunked build, one zstd frame (at most
//! `MAX_STORED_CHUNK_BYTES`). 200 with `{"id","sizeBytes","storedBytes","created"}`; 422
//! `CHECKSUM_MISMATCH` when the decompressed bytes are not those the id names, 422
//! `BAD_USER_INPUT` for a body that is not such a frame, 413 for a larger body, 401/403/404 as
//! below. Nothing is stored when it is refused.
//!
//! `GET /downloads/archives/{product}/{build}/{file}?md5=…&expires=…`: the tar archive of a
//! chunked build, assembled from its chunks as it is sent (signed as every download link; 403
//! for a wrong or expired signature).
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

use futures::StreamExt as _;

use super::{Authenticated, Edge, authenticate, error_response, header_str};
use crate::graphql::catalog::builds::Build;
use crate::infra::auth::Caller;
use crate::infra::error::ApiError;

/// Header with the SHA-256 (hex) the client computed; checked against the received bytes.
pub const CONTENT_SHA256_HEADER: &str = "x-content-sha256";

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadUserInput | ErrorCode::ChecksumMismatch => StatusCode::UNPROCESSABLE_ENTITY,
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
    let me = match uploader(&edge, &parts, peer, &mut body).await {
        Ok(me) => me,
        Err(refused) => return refused,
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

/// Who a request of the upload routes comes from (reading what is left of the body on a
/// refusal, see `builds::drain`).
async fn uploader(
    edge: &Edge,
    parts: &axum::http::request::Parts,
    peer: Option<SocketAddr>,
    body: &mut axum::body::BodyDataStream,
) -> Result<crate::infra::auth::Principal, Response> {
    match authenticate(&edge.state, &parts.headers, peer).await {
        Ok(Authenticated {
            caller: Caller::Account(p),
            grant,
            ..
        }) => {
            // An API client uploads builds and chunks with `catalog:write` only.
            if grant.is_some_and(|g| !g.allows(domain::identity::Scope::CatalogWrite)) {
                crate::catalog::builds::drain(body).await;
                return Err(api_error(&ApiError::Forbidden(
                    "this API client lacks the scope catalog:write",
                )));
            }
            Ok(p)
        }
        Ok(_) => {
            crate::catalog::builds::drain(body).await;
            Err(api_error(&ApiError::SignInRequired))
        }
        Err(refused) => {
            crate::catalog::builds::drain(body).await;
            Err(refused.response())
        }
    }
}

/// The answer to a stored chunk.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredChunk {
    id: String,
    size_bytes: i32,
    stored_bytes: i32,
    created: bool,
}

pub(super) async fn put_chunk(
    State(edge): State<Edge>,
    Path((product, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    use crate::catalog::chunks::{self, MAX_STORED_CHUNK_BYTES};

    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (parts, body) = req.into_parts();
    let mut body = body.into_data_stream();
    let me = match uploader(&edge, &parts, peer, &mut body).await {
        Ok(me) => me,
        Err(refused) => return refused,
    };
    let Ok(product) = product.parse::<Uuid>() else {
        crate::catalog::builds::drain(&mut body).await;
        return api_error(&ApiError::NotFound("product"));
    };
    // The whole frame (a few MiB at most) before anything else: it is checked as a whole.
    let mut bytes = Vec::new();
    while let Some(piece) = body.next().await {
        let Ok(piece) = piece else {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "the upload broke off",
            );
        };
        if bytes.len() + piece.len() > MAX_STORED_CHUNK_BYTES {
            crate::catalog::builds::drain(&mut body).await;
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadRequest,
                &format!("a chunk upload has at most {MAX_STORED_CHUNK_BYTES} bytes"),
            );
        }
        bytes.extend_from_slice(&piece);
    }
    match chunks::store(&edge.state, &me, product, &id, bytes.into()).await {
        Ok(c) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(StoredChunk {
                id: c.id,
                size_bytes: c.size_bytes,
                stored_bytes: c.stored_bytes,
                created: c.created,
            }),
        )
            .into_response(),
        Err(e) => api_error(&e),
    }
}

fn forbidden_link() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        "this download link is wrong or has expired; ask for a new one",
    )
}

pub(super) async fn get_archive(
    State(edge): State<Edge>,
    Path((product, build, file)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    use secrecy::ExposeSecret as _;

    use crate::catalog::builds::{self, BuildKind, BuildStatus};
    use crate::catalog::chunks;

    let state = &edge.state;
    let Ok(secret) = builds::link_secret(state) else {
        return forbidden_link();
    };
    let query = req.uri().query().unwrap_or("");
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    let (Some(md5), Some(expires)) = (param("md5"), param("expires")) else {
        return forbidden_link();
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return forbidden_link();
    };
    let expected = builds::secure_link_md5(expires, req.uri().path(), secret.expose_secret());
    if expires < chrono::Utc::now().timestamp()
        || !super::constant_time_eq(md5.as_bytes(), expected.as_bytes())
    {
        return forbidden_link();
    }
    let (Ok(product), Ok(build)) = (product.parse::<Uuid>(), build.parse::<Uuid>()) else {
        return forbidden_link();
    };
    let found = match builds::find(&state.db, build).await {
        Ok(b) => b,
        Err(e) => return api_error(&e),
    };
    let Some(build) = found.filter(|b| {
        b.product_id == product
            && b.kind == BuildKind::Chunked
            && b.status == BuildStatus::Ready
            && b.file_name == file
    }) else {
        return api_error(&ApiError::NotFound("build"));
    };
    let manifest = match chunks::manifest_of(&state.db, build.id).await {
        Ok(m) => std::sync::Arc::new(m),
        Err(e) => return api_error(&e),
    };
    let build_id = build.id;
    let stream = chunks::archive_pieces(
        state.objects.clone(),
        product,
        manifest,
        build.created_at.timestamp(),
    )
    .filter_map(move |piece| {
        futures::future::ready(match piece {
            Ok(chunks::Piece::Header(b) | chunks::Piece::Data(b) | chunks::Piece::Padding(b)) => {
                Some(Ok(b))
            }
            Ok(chunks::Piece::FileEnd(_)) => None,
            Err(e) => {
                // The client sees a short body (its length was announced) and can retry.
                tracing::error!(error = %e, build.id = %build_id, "assembling an archive");
                Some(Err(std::io::Error::other(e.to_string())))
            }
        })
    });
    let disposition = format!("attachment; filename=\"{}\"", build.file_name);
    let mut res = axum::body::Body::from_stream(stream).into_response();
    let headers = res.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(v) = axum::http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, "application/octet-stream");
    set(header::CONTENT_LENGTH, &build.size_bytes.to_string());
    set(header::CONTENT_DISPOSITION, &disposition);
    set(header::CACHE_CONTROL, "private, no-store");
    res
}
