//! Identity in GraphQL: sign-up, sign-in, sessions, the caller, and admin account management.

pub mod mutation;
pub mod query;
pub mod types;

pub use mutation::IdentityMutation;
pub use query::IdentityQuery;
