//! Errors of the api.
//!
//! Policy: library code returns [`ApiError`]; each variant says what the client sees. The GraphQL
//! edge maps a variant to exactly one `extensions.code` (see [`ApiError::code`]) in one place,
//! `graphql::error`. Internal failures (database, Redis, NATS, bugs) become
//! `INTERNAL_SERVER_ERROR` with a generic message; their detail is logged once, there, and never
//! sent to the client. Startup code and CLI commands use `anyhow` with context instead.

use domain::ErrorCode;
use domain::identity::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `BAD_USER_INPUT`: an argument broke a rule; the message says which, `extensions.field` where.
    #[error("{0}")]
    Validation(#[from] ValidationError),
    /// `BAD_USER_INPUT` for a rule not tied to a domain value type.
    #[error("{message}")]
    BadInput {
        field: &'static str,
        message: String,
    },
    /// `BAD_USER_INPUT`: a catalog value broke a rule (`extensions.field` names it).
    #[error("{0}")]
    Catalog(#[from] domain::catalog::CatalogError),
    /// `CONFLICT` (or `FORBIDDEN` for a moderated product): the product cannot change status so.
    #[error("{0}")]
    Transition(#[from] domain::catalog::TransitionError),
    /// `UNAUTHENTICATED`: the operation needs a signed-in caller.
    #[error("sign in to do this")]
    SignInRequired,
    /// `UNAUTHENTICATED`: wrong e-mail or password; deliberately the same answer for both.
    #[error("the e-mail or the password is wrong")]
    InvalidCredentials,
    /// `UNAUTHENTICATED`: the refresh token is unknown, expired, revoked or already used.
    #[error("the session has ended; sign in again")]
    SessionEnded,
    /// `UNAUTHENTICATED`: the access token is invalid or expired (HTTP 401 at the edge).
    #[error("the access token is invalid or expired")]
    InvalidToken,
    /// `FORBIDDEN`: signed in, but not allowed (role, ownership, or a banned account).
    #[error("{0}")]
    Forbidden(&'static str),
    /// `NOT_FOUND`.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// `CONFLICT`: e.g. an e-mail address that is already registered.
    #[error("{0}")]
    Conflict(String),
    /// `OUT_OF_STOCK`: a physical edition has not enough stock (as far as the read side knows).
    #[error("{0}")]
    OutOfStock(String),
    /// `RATE_LIMITED`, with `extensions.retryAfterSeconds`.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// `RATE_LIMITED`, with `extensions.retryAfterSeconds`: Redis, which this needs (sessions,
    /// a limit that fails closed), is out of reach; the client comes back in a moment.
    #[error("the service is temporarily unavailable; try again in {retry_after_secs} s")]
    Unavailable { retry_after_secs: u64 },
    /// `TIMEOUT`: a command was sent, but its outcome did not come in time and the state does
    /// not show it yet; it may still happen (the order shows what did).
    #[error("{0}")]
    Unconfirmed(String),
    /// A chunk or a manifest of a chunked build was refused: `BAD_USER_INPUT`,
    /// `CHECKSUM_MISMATCH` or `CHUNKS_MISSING` (see [`ChunkError`]).
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// `INTERNAL_SERVER_ERROR`; the detail is logged, not shown.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// `INTERNAL_SERVER_ERROR`: a command Redis refused (one it could not be reached for is
    /// [`ApiError::Unavailable`], see the `From` below).
    #[error("redis error: {0}")]
    Redis(fred::error::Error),
    #[error("message bus error: {0}")]
    Bus(#[from] domain::bus::BusError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation(_) | ApiError::BadInput { .. } | ApiError::Catalog(_) => {
                ErrorCode::BadUserInput
            }
            ApiError::Transition(domain::catalog::TransitionError::Moderated) => {
                ErrorCode::Forbidden
            }
            ApiError::Transition(_) => ErrorCode::Conflict,
            ApiError::SignInRequired
            | ApiError::InvalidCredentials
            | ApiError::SessionEnded
            | ApiError::InvalidToken => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::OutOfStock(_) => ErrorCode::OutOfStock,
            ApiError::Chunk(c) => c.code(),
            ApiError::Unconfirmed(_) => ErrorCode::Timeout,
            ApiError::RateLimited { .. } | ApiError::Unavailable { .. } => ErrorCode::RateLimited,
            ApiError::Db(_) | ApiError::Redis(_) | ApiError::Bus(_) | ApiError::Internal(_) => {
                ErrorCode::InternalServerError
            }
        }
    }

    /// Whether the detail must stay in the log.
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::InternalServerError
    }
}

/// Seconds a client is told to wait when Redis is out of reach (the watcher notices its return
/// within a second).
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

impl ApiError {
    /// What a request that needs Redis gets while Redis is down.
    pub fn unavailable() -> ApiError {
        ApiError::Unavailable {
            retry_after_secs: UNAVAILABLE_RETRY_SECS,
        }
    }

    /// Whether this is Redis being out of reach.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ApiError::Unavailable { .. })
    }
}

impl From<fred::error::Error> for ApiError {
    /// An unreachable Redis fails closed with a typed, retryable answer; the callers that can do
    /// without Redis catch it (or check [`crate::infra::redis::RedisHealth`] first).
    fn from(e: fred::error::Error) -> ApiError {
        if crate::infra::redis::unreachable(&e) {
            tracing::warn!(error = %e, "Redis is out of reach");
            ApiError::unavailable()
        } else {
            ApiError::Redis(e)
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Most ids in one question of which chunks a product lacks.
pub const MAX_IDS_PER_ASK: usize = 4096;

/// Why a chunk or a manifest is refused. Each variant says what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// `BAD_USER_INPUT` (`id`): not a SHA-256 in lowercase hex.
    #[error("a chunk id is the SHA-256 of its bytes: 64 lowercase hexadecimal digits")]
    BadId,
    /// `BAD_USER_INPUT` (`ids`).
    #[error("at most {MAX_IDS_PER_ASK} chunk ids per question")]
    TooManyIds,
    /// `BAD_USER_INPUT` (`body`): not one zstd frame of 1 to 4 MiB once decompressed.
    #[error("a chunk is sent as zstd, and holds 1 to {max} bytes once decompressed", max = domain::catalog::manifest::CHUNK_MAX_BYTES)]
    BadBody,
    /// `CHECKSUM_MISMATCH` (`id`): the bytes are not those the id names; nothing is stored.
    #[error("the chunk's bytes have the SHA-256 {actual}, not {expected}")]
    HashMismatch { expected: String, actual: String },
    /// `BAD_USER_INPUT` (`manifest`): not a manifest.
    #[error("the manifest is not a valid manifest document: {0}")]
    ManifestJson(String),
    /// `BAD_USER_INPUT` (where in the manifest): a manifest rule (safe paths, limits, …).
    #[error(transparent)]
    Manifest(#[from] domain::catalog::manifest::ManifestError),
    /// `CHUNKS_MISSING` (`extensions.missing` names up to 100, `extensions.missingCount` counts
    /// them): upload them, then send the manifest again.
    #[error("{count} chunk(s) of the manifest are not stored for this product; upload them first")]
    Missing { missing: Vec<String>, count: usize },
    /// `BAD_USER_INPUT` (`manifest.files`): a chunk is stored with another size.
    #[error("chunk {id} has {stored} bytes, not {claimed}")]
    SizeDiffers {
        id: String,
        stored: i32,
        claimed: u32,
    },
    /// `CHECKSUM_MISMATCH` (`manifest.files[i].sha256`): the file's chunks make other bytes.
    #[error("file {path}: its chunks have the SHA-256 {actual}, not the manifest's")]
    FileHash {
        index: usize,
        path: String,
        actual: String,
    },
}

impl ChunkError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ChunkError::HashMismatch { .. } | ChunkError::FileHash { .. } => {
                ErrorCode::ChecksumMismatch
            }
            ChunkError::Missing { .. } => ErrorCode::ChunksMissing,
            _ => ErrorCode::BadUserInput,
        }
    }

    /// `extensions.field`.
    pub fn field(&self) -> String {
        match self {
            ChunkError::BadId | ChunkError::HashMismatch { .. } => "id".to_owned(),
            ChunkError::TooManyIds => "ids".to_owned(),
            ChunkError::BadBody => "body".to_owned(),
            ChunkError::ManifestJson(_) | ChunkError::Missing { .. } => "manifest".to_owned(),
            ChunkError::Manifest(m) => m.field(),
            ChunkError::SizeDiffers { .. } => "manifest.files".to_owned(),
            ChunkError::FileHash { index, .. } => format!("manifest.files[{index}].sha256"),
        }
    }
}
