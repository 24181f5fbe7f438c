//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::env;

use anyhow::{Context as _, Result};

use crate::cmd::Cmd;
use crate::services;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// `quick` skips the format and lint checks; `cargo_test_args` go to `cargo test --workspace`.
pub fn run(quick: bool, cargo_test_args: &[String]) -> Result<()> {
    let services = services::ensure()?;
    let env = services.env();
    if !quick {
        Cmd::new("cargo")
            .args(["fmt", "--all", "--", "--check"])
            .envs(&env)
            .run()?;
        Cmd::new("cargo")
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
            .envs(&env)
            .run()?;
        ensure_wasm_target()?;
        Cmd::new("cargo")
            .args([
                "clippy",
                "-p",
                "domain",
                "-p",
                "web",
                "--target",
                WASM_TARGET,
            ])
            .args(["--", "-D", "warnings"])
            .envs(&env)
            .run()?;
    }
    let backtrace = env::var("RUST_BACKTRACE").unwrap_or_else(|_| "1".to_owned());
    Cmd::new("cargo")
        .args(["test", "--workspace"])
        .args(cargo_test_args)
        .envs(&env)
        .env("RUST_BACKTRACE", backtrace)
        .run()?;
    println!("all checks passed");
    Ok(())
}

/// Adds the wasm32 target to the toolchain unless it is installed.
fn ensure_wasm_target() -> Result<()> {
    let installed = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()
        .context("rustup is needed to check for the wasm32 target (https://rustup.rs)")?;
    if !installed.lines().any(|target| target.trim() == WASM_TARGET) {
        Cmd::new("rustup")
            .args(["target", "add", WASM_TARGET])
            .run()
            .context("cannot add the wasm32 target the web crate is checked for")?;
    }
    Ok(())
}
