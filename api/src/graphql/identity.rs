//! Identity in GraphQL: sign-up, sign-in, sessions, the caller, admin account management, and
//! API clients and ownership tickets.

pub mod clients;
pub mod mutation;
pub mod query;
pub mod types;

pub use clients::{ClientMutation, ClientQuery};
pub use mutation::IdentityMutation;
pub use query::IdentityQuery;
