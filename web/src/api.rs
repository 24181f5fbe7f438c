//! The GraphQL client: `POST /graphql` on the page's origin with the access token, one refresh
//! and retry on a `401`, and errors carrying the API's `extensions.code` / `extensions.field`.

pub mod queries;
pub mod session;
pub mod upload;
pub mod ws;

use std::fmt;

use domain::ErrorCode;
use gloo_net::http::Request;
use graphql_client::{GraphQLQuery, Response};

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
pub async fn request<Q: GraphQLQuery>(variables: Q::Variables) -> Result<Q::ResponseData, ApiError>
where
    Q::Variables: Clone,
{
    // After a reload the access token is gone from memory: get one before the first request.
    let mut token = session::access_token_or_refresh().await;
    let mut retried = false;
    loop {
        match send::<Q>(variables.clone(), token.as_deref()).await {
            Err(error) if error.is_unauthenticated() && token.is_some() && !retried => {
                retried = true;
                // Another request may have refreshed meanwhile: then its token is the new one.
                let current = session::access_token();
                token = if current.is_some() && current != token {
                    current
                } else {
                    Some(session::refresh().await?)
                };
            }
            other => return other,
        }
    }
}

/// Runs `Q` without a token (sign-in, sign-up, refresh).
pub async fn request_anonymous<Q: GraphQLQuery>(
    variables: Q::Variables,
) -> Result<Q::ResponseData, ApiError> {
    send::<Q>(variables, None).await
}

async fn send<Q: GraphQLQuery>(
    variables: Q::Variables,
    token: Option<&str>,
) -> Result<Q::ResponseData, ApiError> {
    let body = Q::build_query(variables);
    let mut builder = Request::post(ENDPOINT);
    if let Some(token) = token {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let response = builder
        .json(&body)
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
    let answer: Response<Q::ResponseData> = response
        .json()
        .await
        .map_err(|e| ApiError::new(format!("Unexpected answer from the store: {e}"), None))?;
    if let Some(error) = answer.errors.as_ref().and_then(|errors| errors.first()) {
        let extension = |key: &str| {
            error
                .extensions
                .as_ref()
                .and_then(|ext| ext.get(key))
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        };
        return Err(ApiError {
            message: error.message.clone(),
            code: extension("code").as_deref().and_then(ErrorCode::parse),
            field: extension("field"),
        });
    }
    answer
        .data
        .ok_or_else(|| ApiError::new("The store sent an empty answer.", None))
}
