//! The scopes of API clients (issue 16, "App credentials"): what a publisher's server may do in
//! the publisher's name, named as OAuth 2.0 `scope` tokens (RFC 6749 §3.3).
//!
//! An API client acts as its publisher but only within its scopes. A root field of the schema
//! that no scope names is refused to every API client (default deny); the api keeps the table of
//! which field needs which scope (`api/src/graphql/scopes.rs`).

use serde::{Deserialize, Serialize};

/// One permission of an API client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Revenue and the live feed of sales (`publisherRevenue`, `salesFeed`).
    #[serde(rename = "sales:read")]
    SalesRead,
    /// The publisher's own products as the dashboard sees them, drafts included (`myProducts`,
    /// `stockCommand`).
    #[serde(rename = "catalog:read")]
    CatalogRead,
    /// Creating and changing products, editions, stock, images and builds.
    #[serde(rename = "catalog:write")]
    CatalogWrite,
    /// Orders waiting for shipment and shipping them (`pendingShipments`, `shipOrder`,
    /// `shipmentsUpdated`).
    #[serde(rename = "shipments:write")]
    ShipmentsWrite,
    /// Whether a buyer who presented an ownership ticket owns a product of the publisher
    /// (`ownsProduct(productId, buyerId)`).
    #[serde(rename = "ownership:read")]
    OwnershipRead,
    /// The publisher's webhook endpoints and their delivery logs (`webhookEndpoints`,
    /// `webhookEndpoint`).
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    /// Registering, changing, deleting webhook endpoints, rotating their secrets and sending a
    /// delivery again.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
}

/// Why a scope string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::SalesRead,
        Scope::CatalogRead,
        Scope::CatalogWrite,
        Scope::ShipmentsWrite,
        Scope::OwnershipRead,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
    ];

    /// The scope as written in `scope` strings, tokens and `X-User-Scope`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::SalesRead => "sales:read",
            Scope::CatalogRead => "catalog:read",
            Scope::CatalogWrite => "catalog:write",
            Scope::ShipmentsWrite => "shipments:write",
            Scope::OwnershipRead => "ownership:read",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }

    /// What the scope allows, for the dashboard.
    pub const fn description(self) -> &'static str {
        match self {
            Scope::SalesRead => "read revenue and follow sales",
            Scope::CatalogRead => "read your products, drafts included",
            Scope::CatalogWrite => "create and change products, editions, stock and builds",
            Scope::ShipmentsWrite => "list orders to ship and ship them",
            Scope::OwnershipRead => "check that a buyer who presented a ticket owns a product",
            Scope::WebhooksRead => "read your webhook endpoints and their delivery logs",
            Scope::WebhooksWrite => {
                "register, change and delete webhook endpoints, rotate their secrets, redeliver"
            }
        }
    }

    pub fn parse(s: &str) -> Result<Scope, UnknownScope> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }

    /// A space-separated scope list (RFC 6749 §3.3), sorted and without repeats; an empty or
    /// all-space string is the empty list.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, UnknownScope> {
        let mut out = s
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The list as a `scope` string (space-separated, in [`Scope::ALL`] order).
    pub fn join(scopes: &[Scope]) -> String {
        let mut sorted = scopes.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Longest name of an API client (characters).
pub const MAX_CLIENT_NAME_LEN: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_round_trip_sorted_without_repeats() {
        let parsed = Scope::parse_list(" ownership:read sales:read  sales:read").expect("valid");
        assert_eq!(parsed, vec![Scope::SalesRead, Scope::OwnershipRead]);
        assert_eq!(Scope::join(&parsed), "sales:read ownership:read");
        assert_eq!(Scope::parse_list("").expect("empty"), vec![]);
        assert!(Scope::parse_list("sales:read admin").is_err());
        assert!(Scope::parse_list("SALES:READ").is_err());
    }
}
