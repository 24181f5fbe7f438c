//! The GraphQL-over-HTTP rules for what a response is encoded as and which status it carries
//! (<https://graphql.github.io/graphql-over-http/draft/>).
//!
//! - The response's media type is negotiated from `Accept`: `application/graphql-response+json`
//!   or `application/json`, whichever the client ranks higher (`q`, then the more specific
//!   range, then the order listed); `*/*`, `application/*` or no `Accept` at all mean
//!   `application/json`. An `Accept` that admits neither is refused with 406.
//! - A request that is not a well-formed GraphQL-over-HTTP request (a body that is not JSON, no
//!   body, a missing or non-string `query`, an `operationName` that is not a string, `variables`
//!   or `extensions` that are not maps, a batch) is 400 whatever the media type.
//! - A well-formed request whose document does not parse, does not validate (or exceeds a
//!   limit), or whose variables do not coerce: with `application/json` 200 with `errors` (the
//!   legacy rule: 200 for every well-formed request); with `application/graphql-response+json`
//!   400 and no `data` entry. A response with a `data` entry (even `null`, after a field error)
//!   is 200 either way.
//! - Refusals of the HTTP request itself keep their status whatever the media type: 405 (a
//!   mutation over GET), 406, 413 (body too large), 415 (not JSON), 401 (a refused token), 503
//!   (no document checker free in time).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;

/// The two media types a GraphQL response is served as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: the status code tells the outcome.
    GraphqlResponse,
    /// `application/json`: 200 for every well-formed request (the legacy media type, and the
    /// default).
    Json,
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

impl Media {
    fn essence(self) -> &'static str {
        match self {
            Media::GraphqlResponse => GRAPHQL_RESPONSE,
            Media::Json => JSON,
        }
    }

    /// The `Content-Type` of a response in this media type.
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        })
    }

    /// The status of a response without a `data` entry: a request error (`status` is what
    /// `application/graphql-response+json` gets; `application/json` gets 200).
    pub fn request_error_status(self, status: StatusCode) -> StatusCode {
        match self {
            Media::GraphqlResponse => status,
            Media::Json => StatusCode::OK,
        }
    }
}

/// How specific a media range of `Accept` is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Specificity {
    Any,
    Subtype,
    Exact,
}

/// The media type `Accept` asks for; `None` when it admits neither of ours (406).
pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
    let ranges: Vec<(String, f32)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let essence = parts.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((essence, q))
        })
        .collect();
    if ranges.is_empty() {
        return Some(Media::Json);
    }
    // For each of ours: the q of the most specific range that matches it, and where that range
    // stands in the list.
    let rank = |media: Media| -> Option<(f32, Specificity, usize)> {
        let essence = media.essence();
        ranges
            .iter()
            .enumerate()
            .filter_map(|(i, (range, q))| {
                let specificity = if range == essence {
                    Specificity::Exact
                } else if range == "application/*" {
                    Specificity::Subtype
                } else if range == "*/*" {
                    Specificity::Any
                } else {
                    return None;
                };
                Some((*q, specificity, i))
            })
            .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
            .filter(|(q, _, _)| *q > 0.0)
    };
    match (rank(Media::GraphqlResponse), rank(Media::Json)) {
        (None, None) => None,
        (Some(_), None) => Some(Media::GraphqlResponse),
        (None, Some(_)) => Some(Media::Json),
        (Some(g), Some(j)) => {
            let graphql_first =
                g.0 > j.0 || (g.0 == j.0 && (g.1 > j.1 || (g.1 == j.1 && g.2 < j.2)));
            Some(if graphql_first {
                Media::GraphqlResponse
            } else {
                Media::Json
            })
        }
    }
}

/// A JSON body served as `media` with `status`.
pub fn respond(media: Media, status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, bytes).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, media.content_type());
    res
}

/// A GraphQL response made of one error with `extensions.code` (and more extensions).
pub fn error_body(
    code: ErrorCode,
    message: &str,
    extra: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> serde_json::Value {
    let mut extensions = serde_json::Map::new();
    extensions.insert("code".into(), code.as_str().into());
    extra(&mut extensions);
    serde_json::json!({ "errors": [{ "message": message, "extensions": extensions }] })
}

/// The status of a request error that reached execution's edge (async-graphql refused the
/// request before executing it, or stopped it), from its code.
pub fn status_of_code(code: Option<&str>) -> StatusCode {
    match code {
        Some(c) if c == ErrorCode::Unauthenticated.as_str() => StatusCode::UNAUTHORIZED,
        Some(c) if c == ErrorCode::Forbidden.as_str() => StatusCode::FORBIDDEN,
        Some(c) if c == ErrorCode::Timeout.as_str() => StatusCode::SERVICE_UNAVAILABLE,
        Some(c) if c == ErrorCode::RateLimited.as_str() => StatusCode::TOO_MANY_REQUESTS,
        Some(c) if c == ErrorCode::InternalServerError.as_str() => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Media> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        negotiate(&headers)
    }

    #[test]
    fn accept_is_negotiated_as_the_spec_says() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(Media::Json));
        assert_eq!(accept("*/*"), Some(Media::Json));
        assert_eq!(accept("application/*"), Some(Media::Json));
        assert_eq!(accept("application/json"), Some(Media::Json));
        assert_eq!(accept(GRAPHQL_RESPONSE), Some(Media::GraphqlResponse));
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9"),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            accept("application/json, application/graphql-response+json"),
            Some(Media::Json)
        );
        assert_eq!(
            accept("application/json;q=0.5, application/graphql-response+json"),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(
            accept("*/*, application/graphql-response+json;q=0"),
            Some(Media::Json)
        );
        assert_eq!(
            accept("text/html,application/xhtml+xml,*/*;q=0.8"),
            Some(Media::Json)
        );
        assert_eq!(
            accept("application/graphql-response+json; charset=utf-8"),
            Some(Media::GraphqlResponse)
        );
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0"), None);
    }
}
