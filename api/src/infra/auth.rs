//! Authentication: password hashing, access tokens (RS256 JWT), refresh sessions, and the caller
//! of a request.

pub mod caller;
pub mod jwt;
pub mod password;
pub mod session;

pub use caller::{Caller, ClientGrant, Principal};
