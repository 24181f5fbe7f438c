//! Root of the schema.

use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};

use crate::graphql::catalog::{CatalogMutation, CatalogQuery};
use crate::graphql::identity::{IdentityMutation, IdentityQuery};
use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(IdentityQuery, CatalogQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(IdentityMutation, CatalogMutation);

pub type StoreSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// The schema with its limits and the shared state.
pub fn build_schema(state: AppState) -> StoreSchema {
    let limits = state.config.limits;
    builder()
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(10)
        .data(state)
        .finish()
}

/// The schema in SDL (`api/schema.graphql`, `GET /schema.graphql`).
pub fn sdl() -> String {
    builder().finish().sdl()
}
