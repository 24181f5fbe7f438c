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

/// The definition of the operation `name` in a GraphQL document of several: `graphql_client`
/// sends the whole file of its query, and then every request of `identity.graphql` would name
/// `signIn` and `signUp`, which the gateway rate-limits (a refresh answered `429` by the gateway
/// was what signed the app out before checkout). The whole document when the operation is not
/// found or the document has fragments.
pub fn only_operation(document: &'static str, name: &str) -> &'static str {
    let bytes = document.as_bytes();
    // Braces count only outside parentheses: `($f: Filter = {text: "x"})` is no selection.
    let (mut depth, mut parens, mut start, mut i) = (0_usize, 0_usize, None::<usize>, 0_usize);
    let (mut found, mut fragments) = (None, false);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' if document[i..].starts_with("\"\"\"") => {
                match document[i + 3..].find("\"\"\"") {
                    Some(end) => i += 3 + end + 3,
                    None => return document,
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b'{' if parens == 0 => {
                if depth == 0 && start.is_none() {
                    start = Some(i);
                }
                depth += 1;
            }
            b'}' if parens == 0 => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && let Some(s) = start.take()
                {
                    let definition = &document[s..=i];
                    let header = definition
                        .split(['(', '{'])
                        .next()
                        .unwrap_or_default()
                        .split_whitespace()
                        .collect::<Vec<_>>();
                    fragments |= header.first() == Some(&"fragment");
                    if header.get(1) == Some(&name) {
                        found = Some(definition);
                    }
                }
            }
            c if depth == 0 && start.is_none() && !c.is_ascii_whitespace() && c != b',' => {
                start = Some(i);
            }
            _ => {}
        }
        i += 1;
    }
    match found {
        Some(definition) if !fragments => definition,
        _ => document,
    }
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
    let answer: Response<serde::de::IgnoredAny> = serde_json::from_str(&text)
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
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::only_operation;

    const DOC: &str = "# the file\nmutation SignIn($input: SignInInput!) {\n  signIn(input: $input) { accessToken }\n}\n\nmutation RefreshSession($refreshToken: String!) {\n  refreshSession(refreshToken: $refreshToken) { accessToken account { id } }\n}\n\nquery Me { me { name(format: \"{x}\") } }\n";

    #[test]
    fn keeps_only_the_named_operation() {
        assert_eq!(
            only_operation(DOC, "RefreshSession"),
            "mutation RefreshSession($refreshToken: String!) {\n  refreshSession(refreshToken: $refreshToken) { accessToken account { id } }\n}"
        );
        assert_eq!(
            only_operation(DOC, "SignIn"),
            "mutation SignIn($input: SignInInput!) {\n  signIn(input: $input) { accessToken }\n}"
        );
        assert_eq!(
            only_operation(DOC, "Me"),
            "query Me { me { name(format: \"{x}\") } }"
        );
    }

    #[test]
    fn braces_in_arguments_are_no_selection() {
        let doc =
            "query A($f: F = {text: \"}\"}) { items(filter: {a: {b: 1}}) { id } }\nquery B { b }";
        assert_eq!(
            only_operation(doc, "A"),
            "query A($f: F = {text: \"}\"}) { items(filter: {a: {b: 1}}) { id } }"
        );
        assert_eq!(only_operation(doc, "B"), "query B { b }");
    }

    #[test]
    fn falls_back_to_the_whole_document() {
        assert_eq!(only_operation(DOC, "Missing"), DOC);
        let with_fragment = "query A { ...F }\nfragment F on Query { me { id } }";
        assert_eq!(only_operation(with_fragment, "A"), with_fragment);
    }
}
