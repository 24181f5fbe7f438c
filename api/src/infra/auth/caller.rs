//! Who is calling: decided once per request at the HTTP edge, then handed to resolvers.

use domain::identity::Role;
use uuid::Uuid;

/// A signed-in account, as proven by a verified access token or by the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: Uuid,
    pub role: Role,
    pub name: String,
}

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Account(Principal),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anonymous => None,
            Caller::Account(p) => Some(p),
        }
    }
}

/// The client's address, for rate limits (from the gateway's `X-Real-IP` when trusted, else the
/// socket's peer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub String);
