//! `cargo xtask test`: every check CI runs, in order, stopping at the first failure.

use std::env;
use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;
use crate::services;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// `quick` skips the format and lint checks; `e2e` runs the browser test after `cargo test`,
/// `chaos` the short fault harness after that; `cargo_test_args` go to `cargo test --workspace`.
pub fn run(quick: bool, e2e: bool, chaos: bool, cargo_test_args: &[String]) -> Result<()> {
    let services = services::ensure()?;
    let mut env = services.env();
    // The gateway tests run the real nginx.
    crate::gateway::ensure_installed()?;
    // The GraphQL-over-HTTP conformance test runs graphql-http's audits on Node.js.
    env.extend(crate::e2e::ensure_conformance()?);
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
        crate::deploy::check()?;
    }
    let backtrace = env::var("RUST_BACKTRACE").unwrap_or_else(|_| "1".to_owned());
    let mut child = Cmd::new("cargo")
        .args(["test", "--workspace"])
        .args(cargo_test_args)
        .envs(&env)
        .env("RUST_BACKTRACE", backtrace)
        .stdout(Stdio::piped())
        .spawn()?;
    // Echo cargo's output as it comes and add up its per-binary results, so the run ends with
    // one total line (cargo's own last line is that of the last binary, often the doc-tests).
    let mut total = Totals::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo test output")?;
            println!("{line}");
            total.add(&line);
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    let cargo_line = total.line();
    // The browser test counts as one test. It runs even when `cargo test` failed, so that one
    // run reports every failure.
    let browser = e2e.then(|| {
        let result = crate::e2e::run(&services);
        match &result {
            Ok(true) => total.passed += 1,
            Ok(false) => total.failed += 1,
            Err(error) => {
                eprintln!("error: the browser test could not run: {error:#}");
                total.failed += 1;
            }
        }
        result
    });
    // The fault harness (`chaos --short`) counts as one test too.
    let faults = chaos.then(|| {
        let result = crate::chaos::run(true, &services);
        match &result {
            Ok(true) => total.passed += 1,
            Ok(false) => total.failed += 1,
            Err(error) => {
                eprintln!("error: the fault harness could not run: {error:#}");
                total.failed += 1;
            }
        }
        result
    });
    println!();
    println!("cargo test:  {}", cargo_line.trim_start_matches("tests: "));
    match &browser {
        None => println!("browser e2e: not run"),
        Some(Ok(true)) => println!("browser e2e: passed (1 test)"),
        Some(Ok(false)) => {
            println!("browser e2e: FAILED (1 test; target/e2e/logs/, target/e2e/shots/)")
        }
        Some(Err(_)) => println!("browser e2e: could not run (counted as 1 failed test)"),
    }
    match &faults {
        None => println!("chaos:       not run"),
        Some(Ok(true)) => println!("chaos:       passed (1 test)"),
        Some(Ok(false)) => {
            println!("chaos:       FAILED (1 test; the table above, target/chaos/logs/)")
        }
        Some(Err(_)) => println!("chaos:       could not run (counted as 1 failed test)"),
    }
    println!("{}", total.line());
    let mut failures = Vec::new();
    if !status.success() {
        failures.push("cargo test failed");
    }
    match browser {
        Some(Err(_)) => failures.push("the browser test could not run (see above)"),
        Some(Ok(false)) => failures.push("the browser test failed"),
        _ => {}
    }
    match faults {
        Some(Err(_)) => failures.push("the fault harness could not run (see above)"),
        Some(Ok(false)) => failures.push("an invariant of the fault harness failed"),
        _ => {}
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    println!("all checks passed");
    Ok(())
}

/// `cargo xtask e2e`: the browser test alone.
pub fn e2e_only() -> Result<()> {
    let services = services::ensure()?;
    let passed = crate::e2e::run(&services)?;
    let mut total = Totals::default();
    if passed {
        total.passed = 1;
    } else {
        total.failed = 1;
    }
    println!("{}", total.line());
    if !passed {
        bail!("the browser test failed");
    }
    Ok(())
}

/// Sum of cargo's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (words.next(), words.next())
                && let Ok(n) = n.parse::<u64>()
            {
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        }
    }

    fn line(&self) -> String {
        let mut line = format!("tests: {} passed, {} failed", self.passed, self.failed);
        if self.ignored > 0 {
            line.push_str(&format!(", {} skipped", self.ignored));
        }
        line
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_cargo_result_lines() {
        let mut t = Totals::default();
        t.add("test result: ok. 25 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 7.15s");
        t.add("test result: FAILED. 4 passed; 2 failed; 1 ignored; 0 measured; 19 filtered out");
        t.add("running 3 tests");
        assert_eq!(
            t,
            Totals {
                passed: 29,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(t.line(), "tests: 29 passed, 2 failed, 1 skipped");
    }
}
