//! What an API client may run: each root field of the schema needs one scope, is public, or is
//! refused to every API client (the default: a field added to the schema is closed to clients
//! until this table names it). Checked once per document, after parsing and before validation,
//! on every transport (the WebSocket too), for every operation and every root field reached
//! through fragments: a client lacking the scope gets `FORBIDDEN` and nothing runs.
//!
//! People (tokens without a client) are not affected: their roles are checked by the guards.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{ErrorExtensions as _, Pos, ServerError, ServerResult, Variables};
use domain::ErrorCode;
use domain::identity::Scope;

use crate::infra::auth::ClientGrant;

/// What a root field asks of an API client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone may call it (the public catalog, introspection).
    Public,
    /// An API client needs this scope.
    Needs(Scope),
    /// Never for an API client (a person's own account, wallet, orders; admin fields; the
    /// management of API clients itself).
    Closed,
}

/// The table (see the module's doc).
pub fn access(operation: OperationType, field: &str) -> Access {
    use Access::{Closed, Needs, Public};
    if field.starts_with("__") {
        return Public;
    }
    match (operation, field) {
        (
            OperationType::Query,
            "products" | "product" | "bundle" | "facets" | "genres" | "platforms" | "reviews"
            | "apiScopes",
        ) => Public,
        (OperationType::Query, "myProducts" | "myBundles" | "stockCommand") => {
            Needs(Scope::CatalogRead)
        }
        (OperationType::Query, "publisherRevenue") => Needs(Scope::SalesRead),
        (OperationType::Query, "pendingShipments") => Needs(Scope::ShipmentsWrite),
        (OperationType::Query, "ownsProduct") => Needs(Scope::OwnershipRead),
        (OperationType::Query, "webhookEndpoints" | "webhookEndpoint") => {
            Needs(Scope::WebhooksRead)
        }
        (
            OperationType::Mutation,
            "createProduct" | "updateProduct" | "publishProduct" | "unlistProduct" | "addEdition"
            | "updateEdition" | "removeEdition" | "setStock" | "uploadProductImage"
            | "removeProductImage" | "createBuild" | "setCurrentBuild" | "missingChunks"
            | "createChunkedBuild" | "scheduleDiscount" | "endDiscount" | "createBundle"
            | "updateBundle" | "publishBundle" | "archiveBundle",
        ) => Needs(Scope::CatalogWrite),
        (OperationType::Mutation, "shipOrder") => Needs(Scope::ShipmentsWrite),
        (
            OperationType::Mutation,
            "createWebhookEndpoint"
            | "updateWebhookEndpoint"
            | "deleteWebhookEndpoint"
            | "rotateWebhookSecret"
            | "redeliverWebhook",
        ) => Needs(Scope::WebhooksWrite),
        (OperationType::Subscription, "salesFeed") => Needs(Scope::SalesRead),
        (OperationType::Subscription, "shipmentsUpdated") => Needs(Scope::ShipmentsWrite),
        _ => Closed,
    }
}

/// The root fields of a selection set, through fragment spreads and inline fragments (a spread
/// is followed once; the precheck refused cycles already).
fn root_fields<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    seen: &mut HashSet<&'a str>,
    out: &mut Vec<&'a str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => out.push(f.node.name.node.as_str()),
            Selection::InlineFragment(i) => root_fields(doc, &i.node.selection_set.node, seen, out),
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                if seen.insert(name)
                    && let Some(fragment) = doc.fragments.get(&s.node.fragment_name.node)
                {
                    root_fields(doc, &fragment.node.selection_set.node, seen, out);
                }
            }
        }
    }
}

fn forbidden(message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, ext| ext.set("code", ErrorCode::Forbidden.as_str()))
        .into_server_error(Pos::default())
}

/// Whether `grant` may run every operation of `doc`; the refusal names the first field that it
/// may not.
pub fn check(doc: &ExecutableDocument, grant: &ClientGrant) -> Result<(), ServerError> {
    for (_, op) in doc.operations.iter() {
        let mut fields = Vec::new();
        root_fields(
            doc,
            &op.node.selection_set.node,
            &mut HashSet::new(),
            &mut fields,
        );
        for field in fields {
            match access(op.node.ty, field) {
                Access::Public => {}
                Access::Needs(scope) if grant.allows(scope) => {}
                Access::Needs(scope) => {
                    return Err(forbidden(format!(
                        "this API client lacks the scope `{}` that `{field}` needs",
                        scope.as_str()
                    )));
                }
                Access::Closed => {
                    return Err(forbidden(format!("API clients may not use `{field}`")));
                }
            }
        }
    }
    Ok(())
}

/// Whether every root field of every operation of `doc` is [`Access::Public`]: the public
/// catalog, the same for everyone who is not its publisher, which an anonymous answer may be
/// cached as (see `http::graphql_response`).
pub fn public_only(doc: &ExecutableDocument) -> bool {
    doc.operations.iter().all(|(_, op)| {
        let mut fields = Vec::new();
        root_fields(
            doc,
            &op.node.selection_set.node,
            &mut HashSet::new(),
            &mut fields,
        );
        fields
            .into_iter()
            .all(|field| access(op.node.ty, field) == Access::Public)
    })
}

/// The extension (see the module's doc).
pub struct ScopeCheck;

impl ExtensionFactory for ScopeCheck {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ScopeCheck)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ScopeCheck {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(grant) = ctx.data_opt::<ClientGrant>() {
            check(&doc, grant)?;
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scopes: &[Scope]) -> ClientGrant {
        ClientGrant {
            client_id: uuid::Uuid::nil(),
            scopes: scopes.to_vec(),
        }
    }

    fn run(query: &str, scopes: &[Scope]) -> Result<(), String> {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        check(&doc, &grant(scopes)).map_err(|e| e.message)
    }

    #[test]
    fn clients_run_only_what_their_scopes_name() {
        assert!(
            run(
                "{ publisherRevenue { net { formatted } } }",
                &[Scope::SalesRead]
            )
            .is_ok()
        );
        assert!(
            run(
                "{ products(first: 1) { edges { cursor } } __typename }",
                &[]
            )
            .is_ok()
        );
        assert!(run("{ publisherRevenue { sales } }", &[Scope::CatalogRead]).is_err());
        assert!(run("{ me { id } }", &Scope::ALL).is_err());
        assert!(run("{ wallet { balance { formatted } } }", &Scope::ALL).is_err());
        assert!(
            run(
                "mutation { createApiClient(name: \"x\", scopes: [SALES_READ]) { clientSecret } }",
                &Scope::ALL
            )
            .is_err()
        );
        // Hidden in fragments, or in an operation that is not the one selected.
        assert!(
            run(
                "mutation { ...F } fragment F on Mutation { ... on Mutation { placeOrder(lines: []) { id } } }",
                &Scope::ALL
            )
            .is_err()
        );
        assert!(
            run(
                "query A { products(first: 1) { edges { cursor } } } mutation B { topUpWallet(amount: 1, paymentMethod: \"x\", idempotencyKey: \"k\") { id } }",
                &Scope::ALL
            )
            .is_err()
        );
        assert!(
            run(
                "subscription { salesFeed { orderId } }",
                &[Scope::SalesRead]
            )
            .is_ok()
        );
        assert!(run("subscription { notificationReceived { id } }", &Scope::ALL).is_err());
        assert!(run("{ webhookEndpoints { id } }", &[Scope::WebhooksRead]).is_ok());
        assert!(run("{ webhookEndpoints { id } }", &[Scope::WebhooksWrite]).is_err());
        assert!(
            run(
                "mutation { deleteWebhookEndpoint(id: \"00000000-0000-0000-0000-000000000000\") }",
                &[Scope::WebhooksRead]
            )
            .is_err()
        );
    }
}
