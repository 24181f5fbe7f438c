//! `store-cli`: the store's command-line client for chunked builds (issue 18).
//!
//! - [`push`]: a publisher's directory becomes a build: every file is cut into content-defined
//!   chunks ([`chunker`], FastCDC 2020), the store is asked which chunks it lacks, only those
//!   are uploaded (zstd, in parallel), then the manifest makes the build. A rerun uploads
//!   nothing the store has, so an interrupted push simply runs again.
//! - [`pull`]: a buyer's directory gets a build (install) or the current build (update): only
//!   chunks that no file of the installed build holds are downloaded, every chunk and every
//!   file is checked against its SHA-256, files are written beside the installed ones and
//!   renamed into place at the end; downloaded chunks are kept in `.store/` until then, so an
//!   interrupted pull downloads no completed chunk again.
//!
//! [`client::Client`] speaks to the store through its gateway (GraphQL, chunk uploads, signed
//! chunk downloads) and counts what it sends and receives. [`testdata`] makes the pseudo-random
//! builds of the tests and benchmarks.

pub mod chunker;
pub mod client;
pub mod progress;
pub mod pull;
pub mod push;
pub mod testdata;

use std::path::PathBuf;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store refused (its `extensions.code` and message).
    #[error("{message} ({code})")]
    Api {
        code: String,
        message: String,
        /// `extensions.missing` of a `CHUNKS_MISSING`.
        missing: Vec<String>,
    },
    /// The store could not be reached, or answered something unexpected.
    #[error("talking to the store: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the store answered {status} to {what}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Bytes that are not those their SHA-256 names.
    #[error("{0}")]
    Corrupt(String),
    /// The directory or the arguments do not allow it.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The store's `extensions.code`, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
