//! Trusted documents: the web app's own operations, known to the api at build time.
//!
//! The app's documents are the files of `web/queries/`, compiled into the api, and the app sends
//! each operation as [`domain::operation::only_operation`] slices it from its file (or the whole
//! file). Both forms are registered here by SHA-256, so
//!
//! - a persisted-query request may name any of them by hash alone, on every replica and without
//!   Redis (see [`crate::http::persisted`]): the app's catalog reads are short GET URLs a CDN can
//!   cache;
//! - with `GRAPHQL_TRUSTED_DOCUMENTS=true`, requests that do not come from an API client (the
//!   browser app's: anonymous, or a person signed in) run only these documents, over HTTP and the
//!   WebSocket alike; anything else is `FORBIDDEN` before it is parsed. A stolen session or a
//!   script in a browser then reaches only what the app itself can do; third parties send their
//!   own documents as API clients (OAuth client credentials), whose scopes bound them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ErrorExtensions as _, Pos, ServerError, ServerResult, Variables};
use domain::ErrorCode;
use sha2::{Digest as _, Sha256};

use crate::infra::auth::ClientGrant;

/// The app's query files (`web/queries/*.graphql`), as it is built with them.
pub const APP_FILES: [(&str, &str); 14] = [
    (
        "admin.graphql",
        include_str!("../../../web/queries/admin.graphql"),
    ),
    (
        "admin_orders.graphql",
        include_str!("../../../web/queries/admin_orders.graphql"),
    ),
    (
        "catalog.graphql",
        include_str!("../../../web/queries/catalog.graphql"),
    ),
    (
        "clients.graphql",
        include_str!("../../../web/queries/clients.graphql"),
    ),
    (
        "delivery.graphql",
        include_str!("../../../web/queries/delivery.graphql"),
    ),
    (
        "identity.graphql",
        include_str!("../../../web/queries/identity.graphql"),
    ),
    (
        "library.graphql",
        include_str!("../../../web/queries/library.graphql"),
    ),
    (
        "notifications.graphql",
        include_str!("../../../web/queries/notifications.graphql"),
    ),
    (
        "orders.graphql",
        include_str!("../../../web/queries/orders.graphql"),
    ),
    (
        "publisher.graphql",
        include_str!("../../../web/queries/publisher.graphql"),
    ),
    (
        "refunds.graphql",
        include_str!("../../../web/queries/refunds.graphql"),
    ),
    (
        "revenue.graphql",
        include_str!("../../../web/queries/revenue.graphql"),
    ),
    (
        "wallet.graphql",
        include_str!("../../../web/queries/wallet.graphql"),
    ),
    (
        "webhooks.graphql",
        include_str!("../../../web/queries/webhooks.graphql"),
    ),
];

/// Every trusted document by its lowercase hex SHA-256.
static DOCUMENTS: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    let mut out = HashMap::new();
    for (name, file) in APP_FILES {
        out.insert(hash_of(file), file);
        let parsed = match async_graphql::parser::parse_query(file) {
            Ok(doc) => doc,
            Err(e) => {
                // The app's build checks its files against the schema: this cannot happen in
                // a build of the workspace, and the file's operations are simply not trusted.
                tracing::error!(file = name, error = %e, "an app query file does not parse");
                continue;
            }
        };
        for (operation, _) in parsed.operations.iter() {
            if let Some(operation) = operation {
                let slice = domain::operation::only_operation(file, operation.as_str());
                out.insert(hash_of(slice), slice);
            }
        }
    }
    out
});

/// The names of the app's operations (a label of the api's metrics: anything else is `other`).
static OPERATION_NAMES: LazyLock<std::collections::HashSet<String>> = LazyLock::new(|| {
    APP_FILES
        .iter()
        .filter_map(|(_, file)| async_graphql::parser::parse_query(file).ok())
        .flat_map(|doc| {
            doc.operations
                .iter()
                .filter_map(|(name, _)| name.map(|n| n.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
});

/// `name` if it names one of the app's operations.
pub fn app_operation(name: &str) -> Option<&'static str> {
    OPERATION_NAMES.get(name).map(String::as_str)
}

/// The lowercase hex SHA-256 of a document.
pub fn hash_of(query: &str) -> String {
    Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The trusted document registered under `hash`.
pub fn document(hash: &str) -> Option<&'static str> {
    DOCUMENTS.get(hash).copied()
}

/// Whether `query` is one of the app's documents, byte for byte.
pub fn is_trusted(query: &str) -> bool {
    DOCUMENTS.contains_key(&hash_of(query))
}

/// How many documents are trusted.
pub fn count() -> usize {
    DOCUMENTS.len()
}

/// The extension enforcing `GRAPHQL_TRUSTED_DOCUMENTS` (see the module's doc).
pub struct TrustedOnly;

impl ExtensionFactory for TrustedOnly {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TrustedOnly)
    }
}

fn refused() -> ServerError {
    async_graphql::Error::new(
        "this store runs only its web app's own operations for browsers and signed-in people; \
         to send your own documents, use an API client (see the README, \"For third-party \
         developers\")",
    )
    .extend_with(|_, ext| ext.set("code", ErrorCode::Forbidden.as_str()))
    .into_server_error(Pos::default())
}

#[async_graphql::async_trait::async_trait]
impl Extension for TrustedOnly {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if ctx.data_opt::<ClientGrant>().is_none() && !is_trusted(query) {
            return Err(refused());
        }
        next.run(ctx, query, variables).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_of_the_app_is_compiled_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("web/queries")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".graphql"))
            .collect();
        on_disk.sort();
        let compiled: Vec<String> = APP_FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(
            on_disk, compiled,
            "APP_FILES must list every file of web/queries"
        );
        for (name, file) in APP_FILES {
            let text = std::fs::read_to_string(dir.join(name)).expect("file");
            assert_eq!(text, file, "{name} is compiled in as it is");
        }
    }

    #[test]
    fn each_operation_is_trusted_as_the_app_sends_it_and_nothing_else() {
        let (_, identity) = APP_FILES
            .iter()
            .find(|(n, _)| *n == "identity.graphql")
            .expect("identity.graphql");
        let sign_in = domain::operation::only_operation(identity, "SignIn");
        assert_ne!(sign_in, *identity, "SignIn is sliced from its file");
        assert!(is_trusted(sign_in));
        assert!(is_trusted(identity));
        assert_eq!(document(&hash_of(sign_in)), Some(sign_in));
        assert!(!is_trusted(&format!("{sign_in} ")), "byte for byte");
        assert!(!is_trusted("{ __typename }"));
        // Every named operation of every file, as the app slices it.
        for (name, file) in APP_FILES {
            let parsed = async_graphql::parser::parse_query(file).expect("parses");
            for (operation, _) in parsed.operations.iter() {
                let operation = operation.expect("the app names its operations");
                let slice = domain::operation::only_operation(file, operation.as_str());
                assert!(is_trusted(slice), "{name}: {operation}");
            }
        }
        assert!(count() >= APP_FILES.len());
    }
}
