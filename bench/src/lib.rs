//! Benchmark programs (`cargo run --release -p bench --bin NAME`). Not part of the test run: they
//! measure, they do not assert. Each reports its figures as ratios against a baseline measured in
//! the same run, so the numbers mean something on any machine.
// Executing the whole GraphQL schema (`catalog::page`) needs a deeper layout computation.
#![recursion_limit = "256"]

pub mod catalog;
