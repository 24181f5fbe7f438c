//! Root of the schema.

use async_graphql::{MergedObject, Schema, SchemaBuilder};

use crate::graphql::billing::{BillingMutation, BillingQuery};
use crate::graphql::catalog::builds::BuildMutation;
use crate::graphql::catalog::bundles::{BundleMutation, BundleQuery};
use crate::graphql::catalog::chunks::ChunkMutation;
use crate::graphql::catalog::discounts::DiscountMutation;
use crate::graphql::catalog::{CatalogMutation, CatalogQuery};
use crate::graphql::deadletter::{DeadLetterMutation, DeadLetterQuery};
use crate::graphql::fulfillment::{FulfillmentMutation, FulfillmentQuery};
use crate::graphql::identity::{ClientMutation, ClientQuery, IdentityMutation, IdentityQuery};
use crate::graphql::library::{GiftKeyQuery, LibraryMutation, LibraryQuery};
use crate::graphql::limits::DocumentLimits;
use crate::graphql::loaders::PerOperation;
use crate::graphql::notification::{NotificationMutation, NotificationQuery};
use crate::graphql::operations::OperationsQuery;
use crate::graphql::ordering::{OrderingAdminQuery, OrderingMutation, OrderingQuery};
use crate::graphql::refund::{RefundMutation, RefundQuery};
use crate::graphql::revenue::RevenueQuery;
use crate::graphql::scopes::ScopeCheck;
use crate::graphql::shield::{Checker, Shield};
use crate::graphql::subscription::Subscription;
use crate::graphql::webhooks::{WebhookMutation, WebhookQuery};
use crate::infra::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(
    IdentityQuery,
    ClientQuery,
    CatalogQuery,
    BundleQuery,
    OrderingQuery,
    FulfillmentQuery,
    BillingQuery,
    LibraryQuery,
    GiftKeyQuery,
    RefundQuery,
    RevenueQuery,
    OrderingAdminQuery,
    NotificationQuery,
    DeadLetterQuery,
    WebhookQuery,
    OperationsQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    IdentityMutation,
    ClientMutation,
    CatalogMutation,
    BuildMutation,
    ChunkMutation,
    DiscountMutation,
    BundleMutation,
    OrderingMutation,
    FulfillmentMutation,
    BillingMutation,
    LibraryMutation,
    RefundMutation,
    NotificationMutation,
    DeadLetterMutation,
    WebhookMutation,
);

pub type StoreSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
}

/// The schema with its limits, the shared state, and the loaders of each operation.
pub fn build_schema(state: AppState) -> StoreSchema {
    build(state, true)
}

/// [`build_schema`] without the request metrics and spans ([`crate::graphql::metrics`]): what
/// they cost is measured against it (`bench --bin telemetry_cost`).
pub fn build_schema_without_metrics(state: AppState) -> StoreSchema {
    build(state, false)
}

fn build(state: AppState, metrics: bool) -> StoreSchema {
    let limits = state.config.limits;
    let checker = Checker::new(
        DocumentLimits::from(&limits),
        limits.check_concurrency,
        limits.request_timeout,
    );
    // Outermost: it times and counts every request, refusals by the others included.
    let mut builder = builder();
    if metrics {
        builder = builder.extension(crate::graphql::metrics::Metrics);
    }
    if limits.trusted_documents {
        builder = builder.extension(crate::graphql::trusted::TrustedOnly);
    }
    builder
        // The precheck bounds data fields by `max_depth` and introspection by its own bound
        // (see `limits::check_depth`); this is the backstop for both.
        .limit_depth(limits.max_depth.max(limits.max_introspection_depth))
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(10)
        .extension(Shield)
        .extension(ScopeCheck)
        .extension(PerOperation)
        .data(checker)
        .data(state)
        .finish()
}

/// The schema in SDL (`api/schema.graphql`, `GET /schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}
