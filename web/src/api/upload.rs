//! Image uploads: the GraphQL multipart request (`operations`, `map`, the file) to
//! `/graphql/upload`, with `Apollo-Require-Preflight: true` (the API's CSRF guard), sent with
//! `XMLHttpRequest` because `fetch` reports no upload progress.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;
use graphql_client::{GraphQLQuery, Response};
use wasm_bindgen::prelude::*;
use web_sys::{File, FormData, ProgressEvent, XmlHttpRequest};

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
    let mut token = session::access_token_or_refresh().await;
    for attempt in 0..2 {
        let variables = op::Variables {
            product_id: product_id.to_owned(),
            kind: kind.clone(),
            file: (),
        };
        let operations = serde_json::to_string(&UploadProductImage::build_query(variables))
            .map_err(|_| js_error(JsValue::NULL))?;
        let (status, body) = send(&operations, file, token.as_deref(), progress.clone()).await?;
        if status == 401 && attempt == 0 && token.is_some() {
            token = Some(session::refresh().await?);
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

    let xhr = XmlHttpRequest::new().map_err(js_error)?;
    xhr.open("POST", ENDPOINT).map_err(js_error)?;
    xhr.set_request_header("Apollo-Require-Preflight", "true")
        .map_err(js_error)?;
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
    xhr.send_with_opt_form_data(Some(&form)).map_err(js_error)?;
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
