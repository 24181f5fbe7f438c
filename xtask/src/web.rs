//! The web app's build tools: installs them once, then builds `web/` with trunk, offline.
//!
//! - the `wasm32-unknown-unknown` target (rustup),
//! - trunk 0.21.14 (`cargo install`; 0.22 needs a newer Rust than the workspace's),
//! - wasm-bindgen-cli at exactly the `wasm-bindgen` version in `Cargo.lock` (trunk refuses a
//!   mismatch and, offline, cannot download the right one),
//! - wasm-opt from the npm package `binaryen` 132 in `target/web-tools/`: Debian's binaryen 108
//!   produces a bundle that fails in the browser at load.
//!
//! Every check asks the installed tool for its version first, so a second run costs a few process
//! spawns. `web/Trunk.toml` keeps trunk offline and pins the tool versions it accepts.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const TRUNK_VERSION: &str = "0.21.14";
/// The npm package `binaryen`; trunk names this wasm-opt `version_132` (see `web/Trunk.toml`).
const BINARYEN_NPM_VERSION: &str = "132.0.0";
const WASM_OPT_VERSION_LINE: &str = "wasm-opt version 132 ";

/// Installs what `trunk build` needs, skipping every tool already at the right version.
pub fn ensure_web_tools() -> Result<()> {
    let root = workspace_root();
    ensure_wasm_target(&root)?;
    ensure_trunk(&root)?;
    ensure_wasm_bindgen_cli(&root)?;
    ensure_binaryen(&root)?;
    Ok(())
}

/// The SPA's bundles: trunk's target in `web/` (each names its binary, `data-bin`) and the page
/// it becomes in the dist directory. The gateway serves `product.html` for `/products/…` and `/bundles/…`,
/// `account.html` for the shopper's own pages, `manage.html` for `/publisher…` and `/admin…`
/// (web/src/page.rs, `Bundle`) and
/// `index.html` for every other client route.
const BUNDLES: [(&str, &str); 4] = [
    ("index.html", "index.html"),
    ("product.html", "product.html"),
    ("account.html", "account.html"),
    ("manage.html", "manage.html"),
];

/// Files of the dist directory that the gateway serves precompressed (`brotli_static`,
/// `gzip_static`), when at least this long (nginx's `gzip_min_length`).
const PRECOMPRESSED: [&str; 5] = ["wasm", "js", "css", "html", "svg"];
const PRECOMPRESS_MIN_BYTES: u64 = 1024;

/// Builds the SPA into `web/dist`, unless the sources it is built from are those of the last
/// build there (see [`sources_fingerprint`]): a `cargo xtask dev` or `e2e` whose web sources did
/// not change costs no trunk run.
pub fn cached_spa() -> Result<PathBuf> {
    let root = workspace_root();
    let dist = root.join("web").join("dist");
    let dev = root.join("target").join("dev");
    std::fs::create_dir_all(&dev).with_context(|| format!("could not create {}", dev.display()))?;
    // One build at a time (a `dev` and an `e2e` starting together): the second waits here, then
    // finds the first one's build up to date.
    let lock_path = dev.join("spa.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("could not open {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("could not lock {}", lock_path.display()))?;
    let stamp = dev.join("spa-sources");
    let sources = sources_fingerprint(&root)?;
    let built = BUNDLES.iter().all(|(_, page)| dist.join(page).is_file());
    if built && std::fs::read_to_string(&stamp).is_ok_and(|old| old.trim() == sources) {
        eprintln!(
            "web: {} is up to date (its sources did not change)",
            dist.display()
        );
        return Ok(dist);
    }
    let _ = std::fs::remove_file(&stamp);
    build_spa_to(&dist)?;
    std::fs::write(&stamp, &sources)
        .with_context(|| format!("could not write {}", stamp.display()))?;
    Ok(dist)
}

/// Builds the SPA's release bundles with trunk (offline, the `wasm-release` cargo profile chosen
/// by `data-cargo-profile-release` in each page, wasm-opt -Oz) into `dist` (trunk's `--dist`):
/// the store's `index.html` and the management's `manage.html` with their hashed assets side by
/// side, each loader moved out of its page (see [`externalize_loader`]), and a brotli (`.br`)
/// and a gzip (`.gz`) copy beside every text and wasm file for the gateway to serve as they are.
pub fn build_spa_to(dist: &Path) -> Result<()> {
    ensure_web_tools()?;
    let started = Instant::now();
    let (store, others) = BUNDLES.split_first().context("no bundle")?;
    trunk_build(store.0, dist)?;
    for (target, page) in others {
        // Trunk empties its dist directory first: build beside it, then move the files in.
        let staging = dist.with_file_name(format!(
            "{}.{}",
            dist.file_name().and_then(|n| n.to_str()).unwrap_or("dist"),
            page.trim_end_matches(".html")
        ));
        trunk_build(target, &staging)?;
        merge_bundle(&staging, dist, page)?;
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("could not remove {}", staging.display()))?;
    }
    for (_, page) in BUNDLES {
        externalize_loader(&dist.join(page))?;
    }
    precompress(dist)?;
    eprintln!("web: built {} in {:.0?}", dist.display(), started.elapsed());
    Ok(())
}

/// `trunk build --release TARGET` in `web/`, into `dist`.
fn trunk_build(target: &str, dist: &Path) -> Result<()> {
    let root = workspace_root();
    let web = root.join("web");
    let started = Instant::now();
    let status = Command::new("trunk")
        .current_dir(&web)
        .env("PATH", tool_path(&root)?)
        .args([
            "build",
            "--release",
            "--offline",
            "--skip-version-check",
            "--dist",
        ])
        .arg(dist)
        .arg(target)
        .status()
        .context("could not run `trunk build` in web/")?;
    ensure!(
        status.success(),
        "`trunk build --release {target}` in web/ failed ({status}); it runs cargo with \
         --offline, so if cargo reports a crate missing from its cache, run `cargo fetch` once \
         while online",
    );
    let index = dist.join("index.html");
    ensure!(
        index.is_file(),
        "trunk reported success but {} is missing",
        index.display()
    );
    eprintln!("web: trunk built {target} in {:.0?}", started.elapsed());
    Ok(())
}

/// Copies a built SPA (`from`, with its `snippets/`) into `to`.
pub fn copy_spa(from: &Path, to: &Path) -> Result<()> {
    each_file(from, to, &|file, target| {
        std::fs::copy(file, target)
            .with_context(|| format!("could not copy {}", file.display()))?;
        Ok(())
    })
}

/// Moves a bundle's build (`staging`, trunk's dist) into `dist`: its `index.html` becomes
/// `page`; its assets join the others (names carry their content's hash, and wasm-bindgen's
/// `snippets/` directories their crate's: one already there, such as the shared stylesheet, is
/// the same file).
fn merge_bundle(staging: &Path, dist: &Path, page: &str) -> Result<()> {
    let index = staging.join("index.html");
    std::fs::rename(&index, dist.join(page))
        .with_context(|| format!("could not move {} to {page}", index.display()))?;
    merge_dir(staging, dist)
}

/// Moves every file of `from` (recursively) that `to` does not have yet into `to`.
fn merge_dir(from: &Path, to: &Path) -> Result<()> {
    each_file(from, to, &|file, target| {
        if !target.exists() {
            std::fs::rename(file, target).with_context(|| {
                format!("could not move {} to {}", file.display(), target.display())
            })?;
        }
        Ok(())
    })
}

/// Walks `from` recursively, creating each of its directories under `to`, and calls `f` with
/// every file and the path it has under `to`.
fn each_file(from: &Path, to: &Path, f: &dyn Fn(&Path, &Path) -> Result<()>) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("could not create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("could not read {}", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            each_file(&entry.path(), &target, f)?;
        } else {
            f(&entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Writes `NAME.br` (brotli, quality 11) and `NAME.gz` (gzip, level 9) beside every file of
/// `dist` the gateway compresses ([`PRECOMPRESSED`]), once, at build time: nginx's
/// `brotli_static` and `gzip_static` send them as they are, smaller than what it would compress
/// on the fly at its level 5, and without the work.
fn precompress(dist: &Path) -> Result<()> {
    use std::io::Write as _;

    let started = Instant::now();
    let mut files = 0;
    for entry in
        std::fs::read_dir(dist).with_context(|| format!("could not read {}", dist.display()))?
    {
        let path = entry?.path();
        let compress = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| PRECOMPRESSED.contains(&e));
        if !compress || std::fs::metadata(&path)?.len() < PRECOMPRESS_MIN_BYTES {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        let with_suffix = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };

        let mut br = Vec::new();
        let params = brotli::enc::BrotliEncoderParams {
            quality: 11,
            lgwin: 24,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut bytes.as_slice(), &mut br, &params)
            .with_context(|| format!("could not compress {}", path.display()))?;
        std::fs::write(with_suffix(".br"), &br)?;

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes)?;
        std::fs::write(with_suffix(".gz"), gz.finish()?)?;
        files += 1;
    }
    eprintln!(
        "web: precompressed {files} files (brotli 11, gzip 9) in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// What the SPA is built from, as one hash: every file of `web/` but its outputs, the `domain`
/// crate's sources, the GraphQL schema its queries are typed against, the workspace's manifest,
/// lock file and toolchain, and this file (the build's recipe and tool versions).
fn sources_fingerprint(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    for dir in ["web", "domain/src"] {
        collect_files(&root.join(dir), &mut files)?;
    }
    for file in [
        "domain/Cargo.toml",
        "api/schema.graphql",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
    ] {
        files.push(root.join(file));
    }
    files.sort();
    let mut hash = fnv1a(FNV_OFFSET, include_str!("web.rs").as_bytes());
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
        let name = file.strip_prefix(root).unwrap_or(file).to_string_lossy();
        hash = fnv1a(hash, name.as_bytes());
        hash = fnv1a(hash, &(bytes.len() as u64).to_le_bytes());
        hash = fnv1a(hash, &bytes);
    }
    Ok(format!("{hash:016x}"))
}

/// Every file under `dir`, but the build's outputs (`dist*`) and `node_modules`.
fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("dist") || name == "node_modules" || name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_files(&entry.path(), files)?;
        } else {
            files.push(entry.path());
        }
    }
    Ok(())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits, continuing from `hash`.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Moves the inline `<script type="module">` trunk writes into index.html (it loads the wasm)
/// into a file of its own, `loader-<hash>.js`: the gateway's Content-Security-Policy allows
/// scripts from `'self'` only (no `'unsafe-inline'`, no per-build hash in nginx.conf).
fn externalize_loader(index: &Path) -> Result<()> {
    // As trunk writes it, and as its minifier does (`minify`, Trunk.toml).
    const OPEN: [&str; 2] = ["<script type=\"module\">", "<script type=module>"];
    let html = std::fs::read_to_string(index)
        .with_context(|| format!("cannot read {}", index.display()))?;
    let Some((start, open)) = OPEN
        .iter()
        .find_map(|open| html.find(open).map(|start| (start, open)))
    else {
        return Ok(()); // already external
    };
    let body_start = start + open.len();
    let Some(len) = html[body_start..].find("</script>") else {
        bail!("{}: an inline script is not closed", index.display());
    };
    let script = &html[body_start..body_start + len];
    // Name it after the content (FNV-1a, 64 bits), like trunk's hashed outputs, so the gateway
    // serves it as immutable.
    let hash = fnv1a(FNV_OFFSET, script.as_bytes());
    let name = format!("loader-{hash:016x}.js");
    let dir = index.parent().context("index.html has no directory")?;
    std::fs::write(dir.join(&name), script.trim())
        .with_context(|| format!("cannot write {name}"))?;
    let tag = format!("<script type=\"module\" src=\"/{name}\"></script>");
    let html = format!(
        "{}{tag}{}",
        &html[..start],
        &html[body_start + len + "</script>".len()..]
    );
    std::fs::write(index, html).with_context(|| format!("cannot write {}", index.display()))
}

/// The workspace root: xtask lives in `<root>/xtask`.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where the npm-installed binaryen lives (under the git-ignored `target/`).
fn web_tools_dir(root: &Path) -> PathBuf {
    root.join("target").join("web-tools")
}

/// `PATH` for the web tools: binaryen's `wasm-opt` first (before any system binaryen), then
/// cargo's bin directory (trunk, wasm-bindgen), then the inherited `PATH`.
fn tool_path(root: &Path) -> Result<OsString> {
    let mut dirs = vec![web_tools_dir(root).join("node_modules").join(".bin")];
    if let Some(cargo_bin) = cargo_bin_dir() {
        dirs.push(cargo_bin);
    }
    if let Some(path) = env::var_os("PATH") {
        dirs.extend(env::split_paths(&path));
    }
    env::join_paths(dirs).context("a PATH entry contains the path separator")
}

/// `$CARGO_HOME/bin`, where `cargo install` puts binaries.
fn cargo_bin_dir() -> Option<PathBuf> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    Some(home.join("bin"))
}

fn ensure_wasm_target(root: &Path) -> Result<()> {
    // Run in the workspace so rustup picks the toolchain named in rust-toolchain.toml.
    let installed = run_capture(Command::new("rustup").current_dir(root).args([
        "target",
        "list",
        "--installed",
    ]))
    .context(
        "could not run `rustup target list --installed`: the web app needs rustup to add the \
         wasm32-unknown-unknown target",
    )?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("web: adding the {WASM_TARGET} target (rustup target add)");
    let status = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("could not run `rustup target add`")?;
    ensure!(
        status.success(),
        "`rustup target add {WASM_TARGET}` failed ({status}); the web app cannot be built without \
         it: add it by hand (it needs network access once)"
    );
    Ok(())
}

fn ensure_trunk(root: &Path) -> Result<()> {
    let path = tool_path(root)?;
    let found = tool_version(Command::new("trunk").arg("--version").env("PATH", &path));
    if found.as_deref().map(str::trim) == Some(&format!("trunk {TRUNK_VERSION}")) {
        return Ok(());
    }
    eprintln!(
        "web: installing trunk {TRUNK_VERSION} (found: {}); `cargo install` takes about 11 minutes \
         on a cold 2-core machine",
        found.as_deref().map_or("none", str::trim)
    );
    cargo_install(
        root,
        &["trunk", "--version", TRUNK_VERSION, "--locked"],
        "trunk",
    )?;
    let found = tool_version(Command::new("trunk").arg("--version").env("PATH", &path));
    ensure!(
        found.as_deref().map(str::trim) == Some(&format!("trunk {TRUNK_VERSION}")),
        "installed trunk {TRUNK_VERSION}, but `trunk --version` now says {found:?}: is another \
         trunk earlier on PATH than {}?",
        cargo_bin_dir().unwrap_or_default().display()
    );
    Ok(())
}

fn ensure_wasm_bindgen_cli(root: &Path) -> Result<()> {
    let version = locked_wasm_bindgen_version(root)?;
    let path = tool_path(root)?;
    let expected = format!("wasm-bindgen {version}");
    let found = tool_version(
        Command::new("wasm-bindgen")
            .arg("--version")
            .env("PATH", &path),
    );
    if found.as_deref().map(str::trim) == Some(&expected) {
        return Ok(());
    }
    eprintln!(
        "web: installing wasm-bindgen-cli {version} (found: {}); `cargo install` takes a few \
         minutes",
        found.as_deref().map_or("none", str::trim)
    );
    // Without --locked: the crate's own lockfile names a dependency version the registry mirror
    // here does not have.
    cargo_install(
        root,
        &["wasm-bindgen-cli", "--version", &version],
        "wasm-bindgen-cli",
    )?;
    let found = tool_version(
        Command::new("wasm-bindgen")
            .arg("--version")
            .env("PATH", &path),
    );
    ensure!(
        found.as_deref().map(str::trim) == Some(&expected),
        "installed wasm-bindgen-cli {version}, but `wasm-bindgen --version` now says {found:?}"
    );
    Ok(())
}

/// The version of the `wasm-bindgen` crate in `Cargo.lock`; the CLI must match it exactly.
fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock_path = root.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .with_context(|| format!("could not read {}", lock_path.display()))?;
    let mut versions: Vec<String> = lock
        .split("[[package]]")
        .filter(|block| {
            block
                .lines()
                .any(|line| line.trim() == r#"name = "wasm-bindgen""#)
        })
        .filter_map(|block| {
            block.lines().find_map(|line| {
                line.trim()
                    .strip_prefix("version = \"")
                    .and_then(|rest| rest.strip_suffix('"'))
                    .map(str::to_owned)
            })
        })
        .collect();
    versions.sort();
    versions.dedup();
    match versions.as_slice() {
        [version] => Ok(version.clone()),
        [] => {
            bail!("Cargo.lock has no `wasm-bindgen` package: is the `web` crate in the workspace?")
        }
        several => bail!(
            "Cargo.lock has several `wasm-bindgen` versions ({}); the CLI can match only one: \
             pin the crate with `=` in web/Cargo.toml",
            several.join(", ")
        ),
    }
}

fn ensure_binaryen(root: &Path) -> Result<()> {
    let tools = web_tools_dir(root);
    let wasm_opt = tools.join("node_modules").join(".bin").join("wasm-opt");
    let has_version = |found: Option<&str>| {
        found.is_some_and(|text| text.trim_start().starts_with(WASM_OPT_VERSION_LINE))
    };
    // The first wasm-opt on the tools' PATH (target/web-tools first, then the inherited PATH,
    // where the gateway image puts its own npm binaryen) is what trunk runs.
    let first_on_path = tool_version(
        Command::new("wasm-opt")
            .arg("--version")
            .env("PATH", tool_path(root)?),
    );
    if has_version(first_on_path.as_deref()) {
        return Ok(());
    }
    ensure_npm()?;
    std::fs::create_dir_all(&tools)
        .with_context(|| format!("could not create {}", tools.display()))?;
    eprintln!(
        "web: installing binaryen {BINARYEN_NPM_VERSION} (wasm-opt) from npm into {}",
        tools.display()
    );
    let started = Instant::now();
    let package = format!("binaryen@{BINARYEN_NPM_VERSION}");
    let status = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&tools)
        .args([&package, "--save-exact", "--no-audit", "--no-fund"])
        .status()
        .context("could not run `npm install`")?;
    ensure!(
        status.success(),
        "`npm install {package}` failed ({status}); it needs the npm registry once"
    );
    eprintln!("web: installed binaryen in {:.0?}", started.elapsed());
    let found = tool_version(Command::new(&wasm_opt).arg("--version"));
    ensure!(
        has_version(found.as_deref()),
        "installed {package}, but `{} --version` says {found:?}",
        wasm_opt.display()
    );
    Ok(())
}

/// Makes sure `npm` runs; as root, installs Debian's `nodejs` and `npm` if it does not.
pub fn ensure_npm() -> Result<()> {
    if tool_version(Command::new("npm").arg("--version")).is_some() {
        return Ok(());
    }
    let is_root = run_capture(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    if !is_root {
        bail!(
            "npm is not installed, and it is needed once to install binaryen (wasm-opt): install \
             Node.js and npm (Debian: `apt-get install nodejs npm`)"
        );
    }
    eprintln!("web: installing Debian's nodejs and npm (apt-get)");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "nodejs", "npm"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let mut status = install().context("could not run `apt-get install`")?;
    if !status.success() {
        // A fresh image often has no package lists yet.
        let updated = Command::new("apt-get")
            .arg("update")
            .status()
            .context("could not run `apt-get update`")?;
        ensure!(updated.success(), "`apt-get update` failed ({updated})");
        status = install().context("could not run `apt-get install`")?;
    }
    ensure!(
        status.success(),
        "`apt-get install nodejs npm` failed ({status})"
    );
    ensure!(
        tool_version(Command::new("npm").arg("--version")).is_some(),
        "installed Debian's npm, but `npm --version` still fails"
    );
    Ok(())
}

/// Runs `cargo install ARGS` in the workspace (so it uses the pinned toolchain) and times it.
fn cargo_install(root: &Path, args: &[&str], what: &str) -> Result<()> {
    let started = Instant::now();
    let status = Command::new("cargo")
        .current_dir(root)
        .arg("install")
        .args(args)
        .status()
        .with_context(|| format!("could not run `cargo install {what}`"))?;
    ensure!(
        status.success(),
        "`cargo install {}` failed ({status}); it needs the crates registry once",
        args.join(" ")
    );
    eprintln!("web: installed {what} in {:.0?}", started.elapsed());
    Ok(())
}

/// Stdout of a version command, or `None` if the tool is missing or fails.
fn tool_version(command: &mut Command) -> Option<String> {
    run_capture(command).ok()
}

/// Runs a command, capturing stdout; fails on a spawn error or a non-zero exit.
fn run_capture(command: &mut Command) -> Result<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .output()
        .with_context(|| format!("could not run {command:?}"))?;
    ensure!(
        status.success(),
        "{command:?} failed ({status}): {}",
        String::from_utf8_lossy(&stderr).trim()
    );
    String::from_utf8(stdout).with_context(|| format!("{command:?} printed invalid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::{copy_spa, externalize_loader, merge_dir};

    #[test]
    fn the_inline_loader_moves_to_a_file() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let index = dir.join("index.html");
        std::fs::write(
            &index,
            "<head>\n<script type=\"module\">\nimport init from '/web-0123456789abcdef.js';\nawait init();\n</script>\n</head>",
        )?;
        externalize_loader(&index)?;
        let html = std::fs::read_to_string(&index)?;
        assert!(!html.contains("import init"), "{html}");
        let start = html.find("src=\"/").map(|i| i + 6).unwrap_or_default();
        let name: String = html[start..].chars().take_while(|c| *c != '"').collect();
        assert!(
            name.starts_with("loader-") && name.ends_with(".js"),
            "{html}"
        );
        let script = std::fs::read_to_string(dir.join(&name))?;
        assert!(script.starts_with("import init") && script.ends_with("await init();"));
        // A second run leaves it alone.
        externalize_loader(&index)?;
        assert_eq!(std::fs::read_to_string(&index)?, html);

        // As trunk's minifier writes the page (`minify = "on_release"`).
        std::fs::write(
            &index,
            "<title>Store</title><script type=module>import init from '/web-0123456789abcdef.js';\nawait init();</script></head>",
        )?;
        externalize_loader(&index)?;
        let html = std::fs::read_to_string(&index)?;
        assert!(!html.contains("import init"), "{html}");
        assert!(
            html.contains("<script type=\"module\" src=\"/loader-"),
            "{html}"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn copying_copies_every_file_and_merging_moves_only_the_new_ones() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("xtask-walk-{}", std::process::id()));
        let (from, copy, dist) = (dir.join("from"), dir.join("copy"), dir.join("dist"));
        std::fs::create_dir_all(from.join("snippets/web-1"))?;
        std::fs::write(from.join("app.js"), "app")?;
        std::fs::write(from.join("snippets/web-1/style.css"), "new")?;
        std::fs::create_dir_all(dist.join("snippets/web-1"))?;
        std::fs::write(dist.join("snippets/web-1/style.css"), "kept")?;

        copy_spa(&from, &copy)?;
        merge_dir(&from, &dist)?;

        let read = |p: std::path::PathBuf| std::fs::read_to_string(p);
        assert_eq!(read(copy.join("app.js"))?, "app");
        assert_eq!(read(copy.join("snippets/web-1/style.css"))?, "new");
        assert_eq!(read(dist.join("app.js"))?, "app");
        assert_eq!(read(dist.join("snippets/web-1/style.css"))?, "kept");
        assert!(!from.join("app.js").exists(), "moved, not copied");
        assert!(
            from.join("snippets/web-1/style.css").exists(),
            "left where it was"
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
