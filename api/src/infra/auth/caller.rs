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

/// The country the gateway placed the client in (`X-Country`, ISO 3166-1 alpha-2, upper
/// case), when it has one: the region of a visitor who has not chosen one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCountry(pub Option<String>);

/// An API client acting for its publisher (the [`Principal`] of the request) within `scopes`.
/// Present in a request's data only when the caller is an API client; the schema's scope check
/// (`crate::graphql::scopes`) refuses such a caller every root field its scopes do not name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientGrant {
    pub client_id: Uuid,
    pub scopes: Vec<domain::identity::Scope>,
}

impl ClientGrant {
    pub fn allows(&self, scope: domain::identity::Scope) -> bool {
        self.scopes.contains(&scope)
    }
}
