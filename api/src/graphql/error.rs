//! The one place where [`ApiError`] becomes a GraphQL error with `extensions.code`.

use async_graphql::ErrorExtensions;
use domain::ErrorCode;

use crate::infra::error::ApiError;

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        let code = self.code();
        let message = if self.is_internal() {
            // Logged once, here; the client gets no detail.
            let detail = match self {
                ApiError::Internal(e) => format!("{e:#}"),
                other => other.to_string(),
            };
            tracing::error!(error = %detail, "internal error");
            "something went wrong on our side; please try again".to_owned()
        } else {
            self.to_string()
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            match self {
                ApiError::Validation(v) => ext.set("field", v.field()),
                ApiError::BadInput { field, .. } => ext.set("field", *field),
                ApiError::Catalog(c) => ext.set("field", c.field()),
                ApiError::Chunk(c) => {
                    ext.set("field", c.field());
                    if let crate::infra::error::ChunkError::Missing { missing, count } = c {
                        ext.set("missing", missing.clone());
                        ext.set("missingCount", *count as u64);
                    }
                }
                ApiError::RateLimited { retry_after_secs }
                | ApiError::Unavailable { retry_after_secs } => {
                    ext.set("retryAfterSeconds", *retry_after_secs)
                }
                _ => {}
            }
        })
    }
}

/// One of a domain enum's values, read back from the database as text. A value the enum does
/// not know (a newer participant, a hand edit) is an internal error, logged once at the edge,
/// never a panic and never a guess.
pub fn stored<T>(
    what: &'static str,
    value: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "the database holds an unknown {what}: {value:?}"
        ))
    })
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        e.extend()
    }
}

/// Gives every error of a response a code: resolver errors already carry theirs; what remains
/// comes from async-graphql's own validation (unknown fields, limits, bad argument values).
pub fn ensure_codes(response: &mut async_graphql::Response) {
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if !has_code {
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::GraphqlValidationFailed.as_str());
        }
    }
}
