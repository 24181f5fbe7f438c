//! File uploads, sent with `XMLHttpRequest` because `fetch` reports no upload progress:
//! - images: the GraphQL multipart request (`operations`, `map`, the file) to `/graphql/upload`,
//!   with `Apollo-Require-Preflight: true` (the API's CSRF guard);
//! - build files: the raw file as the body of `PUT /uploads/builds/{id}` (the build's
//!   `uploadPath`), answered with the build as JSON or a GraphQL-shaped `{"errors": [...]}`.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;
use graphql_client::Response;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use web_sys::{Blob, File, FormData, ProgressEvent, XmlHttpRequest};

use super::queries::{UploadProductImage, upload_product_image as op};
use super::{ApiError, session};

const ENDPOINT: &str = "/graphql/upload";

/// Uploads `file` as the `kind` image of a product, calling `progress` with the fraction sent
/// (0.0–1.0); one refresh and retry on a `401`. Answers the product's cover URL afterwards.
pub async fn upload_product_image(
    product_id: &str,
    kind: op::ImageKind,
    file: &File,
    progress: impl Fn(f64) + Clone + 'static,
) -> Result<Option<String>, ApiError> {
    let mut token = session::access_token_or_refresh().await?;
    for attempt in 0..2 {
        let variables = op::Variables {
            product_id: product_id.to_owned(),
            kind: kind.clone(),
            file: (),
        };
        let operations = serde_json::to_string(&super::body::<UploadProductImage>(variables))
            .map_err(|_| js_error(JsValue::NULL))?;
        let (status, body) = send(&operations, file, token.as_deref(), progress.clone()).await?;
        if status == 401 && attempt == 0 && token.is_some() {
            token = Some(session::refresh(token).await?);
            continue;
        }
        return answer(status, &body);
    }
    Err(ApiError::unauthenticated())
}

/// The new cover's URL, or the API's error.
fn answer(status: u16, body: &str) -> Result<Option<String>, ApiError> {
    let response: Response<op::ResponseData> =
        serde_json::from_str(body).map_err(|_| ApiError {
            message: format!("The upload failed ({status})."),
            code: None,
            field: None,
        })?;
    if let Some(error) = response.errors.as_ref().and_then(|errors| errors.first()) {
        let text = |key: &str| {
            error
                .extensions
                .as_ref()
                .and_then(|x| x.get(key))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        return Err(ApiError {
            message: error.message.clone(),
            code: text("code").as_deref().and_then(domain::ErrorCode::parse),
            field: text("field"),
        });
    }
    Ok(response
        .data
        .and_then(|data| data.upload_product_image.cover)
        .map(|cover| cover.url))
}

fn js_error(_: JsValue) -> ApiError {
    ApiError {
        message: "The browser could not send the file.".to_owned(),
        code: None,
        field: None,
    }
}

async fn send(
    operations: &str,
    file: &File,
    token: Option<&str>,
    progress: impl Fn(f64) + 'static,
) -> Result<(u16, String), ApiError> {
    let form = FormData::new().map_err(js_error)?;
    form.append_with_str("operations", operations)
        .map_err(js_error)?;
    form.append_with_str("map", r#"{"0":["variables.file"]}"#)
        .map_err(js_error)?;
    form.append_with_blob_and_filename("0", file, &file.name())
        .map_err(js_error)?;
    xhr_send(
        "POST",
        ENDPOINT,
        &[("Apollo-Require-Preflight", "true")],
        Body::Form(&form),
        token,
        progress,
    )
    .await
}

/// What an upload request carries.
enum Body<'a> {
    Form(&'a FormData),
    Raw(&'a Blob),
}

/// Sends one request with `XMLHttpRequest`, reporting the upload's progress; answers the HTTP
/// status and the response text (status 0, a network failure, is an error).
async fn xhr_send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
    token: Option<&str>,
    progress: impl Fn(f64) + 'static,
) -> Result<(u16, String), ApiError> {
    let xhr = XmlHttpRequest::new().map_err(js_error)?;
    xhr.open(method, url).map_err(js_error)?;
    for (name, value) in headers {
        xhr.set_request_header(name, value).map_err(js_error)?;
    }
    if let Some(token) = token {
        xhr.set_request_header("Authorization", &format!("Bearer {token}"))
            .map_err(js_error)?;
    }
    let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |event: ProgressEvent| {
        if event.length_computable() && event.total() > 0.0 {
            progress(event.loaded() / event.total());
        }
    });
    xhr.upload()
        .map_err(js_error)?
        .set_onprogress(Some(on_progress.as_ref().unchecked_ref()));

    let (done_tx, done_rx) = oneshot::channel::<()>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let on_done = {
        let done_tx = Rc::clone(&done_tx);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(tx) = done_tx.borrow_mut().take() {
                let _ = tx.send(());
            }
        })
    };
    xhr.set_onloadend(Some(on_done.as_ref().unchecked_ref()));
    match body {
        Body::Form(form) => xhr.send_with_opt_form_data(Some(form)),
        Body::Raw(blob) => xhr.send_with_opt_blob(Some(blob)),
    }
    .map_err(js_error)?;
    let _ = done_rx.await;
    drop((on_progress, on_done));

    let status = xhr.status().map_err(js_error)?;
    if status == 0 {
        return Err(ApiError {
            message: "Cannot reach the store. Check your connection and try again.".to_owned(),
            code: None,
            field: None,
        });
    }
    let body = xhr.response_text().ok().flatten().unwrap_or_default();
    Ok((status, body))
}

/// A build as `PUT /uploads/builds/{id}` answers it (the GraphQL `Build` fields it needs here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadedBuild {
    pub id: String,
    /// `READY` once the file is stored and checked.
    pub status: String,
    pub sha256: Option<String>,
    pub size_bytes: i64,
}

/// Uploads `file` as the file of a build: its raw bytes as the body of `PUT upload_path` (the
/// build's `uploadPath`) with the access token, calling `progress` with the fraction sent
/// (0.0–1.0); one refresh and retry on a `401`. The same call sends the file again after a
/// failure, as long as the build is still `UPLOADING`.
pub async fn upload_build_file(
    upload_path: &str,
    file: &File,
    progress: impl Fn(f64) + Clone + 'static,
) -> Result<UploadedBuild, ApiError> {
    if !upload_path.starts_with("/uploads/builds/") {
        return Err(ApiError {
            message: "The store gave an unexpected upload address.".to_owned(),
            code: None,
            field: None,
        });
    }
    let mut token = session::access_token_or_refresh().await?;
    for attempt in 0..2 {
        let (status, body) = xhr_send(
            "PUT",
            upload_path,
            &[("Content-Type", "application/octet-stream")],
            Body::Raw(file),
            token.as_deref(),
            progress.clone(),
        )
        .await?;
        if status == 401 && attempt == 0 && token.is_some() {
            token = Some(session::refresh(token).await?);
            continue;
        }
        return build_answer(status, &body);
    }
    Err(ApiError::unauthenticated())
}

/// The stored build, or the error the gateway or the api answered with.
fn build_answer(status: u16, body: &str) -> Result<UploadedBuild, ApiError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|_| ApiError {
            message: "The file was sent, but the store's answer was unexpected.".to_owned(),
            code: None,
            field: None,
        });
    }
    let answered = serde_json::from_str::<Response<serde_json::Value>>(body)
        .ok()
        .and_then(|response| response.errors)
        .and_then(|errors| errors.into_iter().next());
    if let Some(error) = answered {
        let code = error
            .extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .and_then(|v| v.as_str())
            .and_then(domain::ErrorCode::parse);
        return Err(ApiError {
            message: error.message,
            code,
            field: None,
        });
    }
    let (message, code) = match status {
        401 => (
            "Please sign in again.",
            Some(domain::ErrorCode::Unauthenticated),
        ),
        403 => (
            "You may not upload builds of this product.",
            Some(domain::ErrorCode::Forbidden),
        ),
        413 => (
            "The file is larger than the store accepts.",
            Some(domain::ErrorCode::BadUserInput),
        ),
        s if s >= 500 => (
            "The store is having trouble; try again in a moment.",
            Some(domain::ErrorCode::InternalServerError),
        ),
        _ => ("The upload failed.", None),
    };
    Err(ApiError {
        message: format!("{message} ({status})"),
        code,
        field: None,
    })
}
