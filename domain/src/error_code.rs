//! The fixed list of machine-readable error codes a client finds in a GraphQL error's
//! `extensions.code`. Clients (the web app included) branch on these, never on messages.

use serde::{Deserialize, Serialize};

/// Every `extensions.code` the api can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request is not a well-formed GraphQL request (bad JSON, batch, wrong method or content type).
    BadRequest,
    /// The document does not parse.
    GraphqlParseFailed,
    /// The document parses but is invalid against the schema or exceeds a limit (depth, complexity, aliases).
    GraphqlValidationFailed,
    /// An argument is invalid; nothing was changed.
    BadUserInput,
    /// The caller must sign in (or the credentials were wrong).
    Unauthenticated,
    /// The caller is signed in but may not do this.
    Forbidden,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// The change conflicts with the current state (duplicate, already done, reused key).
    Conflict,
    /// The wallet balance does not cover the amount.
    InsufficientFunds,
    /// A physical edition has not enough stock for the order.
    OutOfStock,
    /// Too many attempts; try again later.
    RateLimited,
    /// Bytes are not those their SHA-256 names (a chunk, a file of a manifest); nothing was
    /// stored.
    ChecksumMismatch,
    /// A manifest names chunks the product has not stored (`extensions.missing` lists some,
    /// `extensions.missingCount` counts them); upload them and send it again.
    ChunksMissing,
    /// The request ran past the server's deadline (or waited too long for its turn) and was
    /// stopped; a mutation may or may not have taken effect (retry it with its idempotency key).
    Timeout,
    /// Something failed on our side; details are in the server log, not in the answer.
    InternalServerError,
    /// An automatic persisted query names a document the server does not hold (any more): send
    /// the request again with its `query` (Apollo's protocol; the message is
    /// `PersistedQueryNotFound`).
    PersistedQueryNotFound,
}

impl ErrorCode {
    /// Every code, in the order of the enum.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::BadRequest,
        ErrorCode::GraphqlParseFailed,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::BadUserInput,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::InsufficientFunds,
        ErrorCode::OutOfStock,
        ErrorCode::RateLimited,
        ErrorCode::ChecksumMismatch,
        ErrorCode::ChunksMissing,
        ErrorCode::Timeout,
        ErrorCode::InternalServerError,
        ErrorCode::PersistedQueryNotFound,
    ];

    /// The code as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::InsufficientFunds => "INSUFFICIENT_FUNDS",
            ErrorCode::OutOfStock => "OUT_OF_STOCK",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ChecksumMismatch => "CHECKSUM_MISMATCH",
            ErrorCode::ChunksMissing => "CHUNKS_MISSING",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
        }
    }

    /// Reads a wire code back; `None` for a code this version does not know.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_codes_round_trip_and_match_serde() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("a unit variant serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        assert_eq!(ErrorCode::parse("TEAPOT"), None);
    }
}
