//! The GraphQL client: `POST /graphql` on the page's origin with the access token, one refresh
//! and retry on a `401`, and errors carrying the API's `extensions.code` / `extensions.field`.

pub mod queries;
pub mod session;
pub mod upload;
pub mod ws;

use std::fmt;

use domain::ErrorCode;
use domain::operation::only_operation;
use gloo_net::http::Request;
use graphql_client::GraphQLQuery;

/// The GraphQL endpoint, on the same origin as the app (the gateway serves both).
const ENDPOINT: &str = "/graphql";

/// A failed request: the network, the gateway, or an error the API answered with.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What to show the user.
    pub message: String,
    /// `extensions.code` (see `domain::ErrorCode`), when the API sent one.
    pub code: Option<ErrorCode>,
    /// `extensions.field`: the input field the error is about, for forms.
    pub field: Option<String>,
}

impl ApiError {
    fn new(message: impl Into<String>, code: Option<ErrorCode>) -> ApiError {
        ApiError {
            message: message.into(),
            code,
            field: None,
        }
    }

    /// The caller must sign in.
    pub fn unauthenticated() -> ApiError {
        ApiError::new("Please sign in.", Some(ErrorCode::Unauthenticated))
    }

    /// Whether the error means "sign in first".
    pub fn is_unauthenticated(&self) -> bool {
        self.code == Some(ErrorCode::Unauthenticated)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// Runs `Q` as the signed-in user (or anonymously), refreshing the session once on a `401`.
///
/// Only the encoding of the variables and the decoding of the answer depend on `Q`; the
/// exchange itself ([`exchange`]) is one function for every operation, not one copy per
/// operation in the wasm.
pub async fn request<Q: GraphQLQuery>(
    variables: Q::Variables,
) -> Result<Q::ResponseData, ApiError> {
    let answer = exchange(encode::<Q>(variables)?, true).await?;
    decode::<Q::ResponseData>(&answer)
}

/// Runs `Q` without a token (sign-in, sign-up, refresh).
pub async fn request_anonymous<Q: GraphQLQuery>(
    variables: Q::Variables,
) -> Result<Q::ResponseData, ApiError> {
    let answer = exchange(encode::<Q>(variables)?, false).await?;
    decode::<Q::ResponseData>(&answer)
}

/// The JSON request body of `Q`.
fn encode<Q: GraphQLQuery>(variables: Q::Variables) -> Result<String, ApiError> {
    serde_json::to_string(&body::<Q>(variables))
        .map_err(|e| ApiError::new(format!("Could not encode the request: {e}"), None))
}

/// `data` of an answer whose errors [`exchange`] has already looked at.
fn decode<T: serde::de::DeserializeOwned>(answer: &str) -> Result<T, ApiError> {
    #[derive(serde::Deserialize)]
    struct Data<T> {
        data: Option<T>,
    }
    serde_json::from_str::<Data<T>>(answer)
        .map_err(|e| ApiError::new(format!("Unexpected answer from the store: {e}"), None))?
        .data
        .ok_or_else(|| ApiError::new("The store sent an empty answer.", None))
}

/// Sends a request body with the session's token (`signed_in`), refreshing the session once on
/// a `401`; returns the answer's text once it holds no error.
async fn exchange(body: String, signed_in: bool) -> Result<String, ApiError> {
    if !signed_in {
        return send(&body, None).await;
    }
    // The stored access token while it is valid (also after a reload), else a refreshed one.
    let mut token = session::access_token_or_refresh().await?;
    let mut retried = false;
    loop {
        match send(&body, token.as_deref()).await {
            Err(error) if error.is_unauthenticated() && token.is_some() && !retried => {
                retried = true;
                // The gateway refused the token (expired early, or the clocks disagree): a new
                // one, unless another request or tab has already replaced it.
                token = Some(session::refresh(token).await?);
            }
            other => return other,
        }
    }
}

/// The request body of `Q`: its operation alone (see [`only_operation`]).
pub fn body<Q: GraphQLQuery>(variables: Q::Variables) -> graphql_client::QueryBody<Q::Variables> {
    let mut body = Q::build_query(variables);
    body.query = only_operation(body.query, body.operation_name);
    body
}

/// One `POST /graphql`: the answer's text, or its first error.
async fn send(body: &str, token: Option<&str>) -> Result<String, ApiError> {
    let mut builder = Request::post(ENDPOINT).header("Content-Type", "application/json");
    if let Some(token) = token {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let response = builder
        .body(body)
        .map_err(|e| ApiError::new(format!("Could not encode the request: {e}"), None))?
        .send()
        .await
        .map_err(|_| {
            ApiError::new(
                "Cannot reach the store. Check your connection and try again.",
                None,
            )
        })?;
    match response.status() {
        401 => return Err(ApiError::unauthenticated()),
        429 => {
            return Err(ApiError::new(
                "Too many requests; wait a moment and try again.",
                Some(ErrorCode::RateLimited),
            ));
        }
        status if status >= 500 => {
            return Err(ApiError::new(
                format!("The store is having trouble ({status}). Try again in a moment."),
                Some(ErrorCode::InternalServerError),
            ));
        }
        _ => {}
    }
    let text = response
        .text()
        .await
        .map_err(|e| ApiError::new(format!("Unexpected answer from the store: {e}"), None))?;
    // The errors alone (the data is skipped here, and decoded by the caller that knows its type).
    let answer: Errors = serde_json::from_str(&text)
        .map_err(|e| ApiError::new(format!("Unexpected answer from the store: {e}"), None))?;
    if let Some(error) = answer.errors.into_iter().flatten().next() {
        let extensions = error.extensions.unwrap_or_default();
        return Err(ApiError {
            message: error.message,
            code: extensions.code.as_deref().and_then(ErrorCode::parse),
            field: extensions.field,
        });
    }
    Ok(text)
}

/// What [`send`] reads of an answer: its errors, each with the two extensions the app uses.
/// Typed, rather than `graphql_client::Response` (whose extensions are `serde_json::Value`s),
/// so that the wasm carries no `Value` decoder (see the README, "The web app").
#[derive(serde::Deserialize)]
struct Errors {
    errors: Option<Vec<AnswerError>>,
}

/// One error of an answer (`message`, `extensions.code`, `extensions.field`).
#[derive(serde::Deserialize)]
pub(crate) struct AnswerError {
    pub(crate) message: String,
    pub(crate) extensions: Option<Extensions>,
}

/// The extensions of an error the app reads.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Extensions {
    pub(crate) code: Option<String>,
    pub(crate) field: Option<String>,
}
