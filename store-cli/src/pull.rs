//! `store-cli install` and `store-cli update`: a directory gets a chunked build, downloading
//! only chunks that no file of the installed build holds.
//!
//! The directory keeps its state in `.store/`:
//! - `state.json`: the installed build (product, platform, build id and version, manifest);
//! - `pending.json`: the build being installed, while it is (and whether its files are being
//!   moved into place, `committing`);
//! - `chunks/<id>`: chunks downloaded for it (zstd frames, checked, written whole then
//!   renamed), so an interrupted pull downloads no completed chunk again;
//! - `staging/<n>`: the new files, each written whole and checked, then renamed.
//!
//! A pull: (1) downloads the chunks that neither the chunk cache nor the installed files
//! have; (2) writes every new or changed file into `staging/`, taking each chunk from the
//! cache or from the installed files (each checked against its SHA-256; a local chunk that
//! fails is downloaded), and checks the file's SHA-256; (3) marks the pull `committing`,
//! removes the installed build's files that the new one does not have, renames the staged
//! files into place, and writes `state.json`. Unchanged files (same path and SHA-256) are not
//! touched. An interrupted pull run again picks up where it stopped.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use domain::catalog::manifest::{Manifest, STATE_DIR};
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::Mutex;

use crate::client::Client;
use crate::progress::Progress;
use crate::{Error, Result, hex};

/// What an installed directory is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Installed {
    pub product: String,
    pub platform: String,
    pub build: String,
    pub version: String,
    pub manifest: Manifest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    target: Installed,
    committing: bool,
}

/// What a pull did.
#[derive(Clone, Debug, Default)]
pub struct PullReport {
    pub build: String,
    pub version: String,
    /// `false`: the directory had this build already.
    pub changed: bool,
    pub files_written: usize,
    pub files_removed: usize,
    /// Chunks downloaded by this run, and their bytes as received (zstd).
    pub chunks_downloaded: u64,
    pub bytes_downloaded: u64,
    /// Chunks taken from the installed files instead.
    pub chunks_reused: u64,
}

const DOWNLOAD: &str = "mutation($p: UUID!, $pl: String!) { chunkedDownload(productId: $p, platform: $pl) { build { id versionLabel } manifest { files { path size mode sha256 chunks { id offset size } } } access { baseUrl query expiresAt } } }";
const ACCESS: &str = "mutation($p: UUID!) { chunkAccess(productId: $p) { baseUrl query } }";

fn state_dir(dir: &Path) -> PathBuf {
    dir.join(STATE_DIR)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

/// Writes `bytes` to `path` whole or not at all (a temporary file, then a rename).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
    f.write_all(bytes).map_err(Error::io(&tmp))?;
    f.sync_all().map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::Usage(format!("writing {}: {e}", path.display())))?;
    write_atomically(path, &bytes)
}

/// The build installed in `dir`, if any.
pub fn installed(dir: &Path) -> Result<Option<Installed>> {
    read_json(&state_dir(dir).join("state.json"))
}

/// Where to find chunks for a pull.
struct Sources {
    client: Client,
    product: String,
    /// `baseUrl` and `query` of the chunk access (renewed on a 403).
    access: Mutex<(String, String)>,
    cache: PathBuf,
    /// Chunks of the installed files: id → (path, offset, size).
    local: HashMap<String, (PathBuf, u64, u32)>,
    reused: std::sync::atomic::AtomicU64,
}

fn check(id: &str, raw: &[u8]) -> bool {
    hex(&Sha256::digest(raw)) == id
}

impl Sources {
    fn cached(&self, id: &str) -> PathBuf {
        self.cache.join(id)
    }

    /// Downloads chunk `id` into the cache (checked), unless it is there.
    async fn fetch(&self, id: &str, size: u32) -> Result<()> {
        let path = self.cached(id);
        if path.exists() {
            return Ok(());
        }
        let mut renewed = false;
        let frame = loop {
            let url = {
                let a = self.access.lock().await;
                format!("{}{id}?{}", a.0, a.1)
            };
            let (status, bytes) = self.client.get_chunk(&url).await?;
            if status == StatusCode::FORBIDDEN && !renewed {
                // The signature expired: a new one.
                let v = self
                    .client
                    .gql(ACCESS, json!({ "p": self.product }))
                    .await?;
                let a = &v["chunkAccess"];
                *self.access.lock().await = (
                    a["baseUrl"].as_str().unwrap_or("").to_owned(),
                    a["query"].as_str().unwrap_or("").to_owned(),
                );
                renewed = true;
                continue;
            }
            if !status.is_success() {
                return Err(Error::Status {
                    what: format!("chunk {id}"),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                });
            }
            break bytes;
        };
        let id_owned = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let raw = zstd::bulk::decompress(&frame, size as usize)
                .map_err(|e| Error::Corrupt(format!("chunk {id_owned}: {e}")))?;
            if raw.len() != size as usize || !check(&id_owned, &raw) {
                return Err(Error::Corrupt(format!(
                    "chunk {id_owned} does not match its SHA-256"
                )));
            }
            write_atomically(&path, &frame)
        })
        .await
        .map_err(|e| Error::Usage(format!("a download task failed: {e}")))?
    }

    /// The bytes of chunk `id` (checked): from the cache, the installed files, or downloaded.
    async fn bytes(&self, id: &str, size: u32) -> Result<Vec<u8>> {
        let cached = self.cached(id);
        if !cached.exists()
            && let Some((path, offset, len)) = self.local.get(id).cloned()
        {
            let id = id.to_owned();
            let local = tokio::task::spawn_blocking(move || -> Option<Vec<u8>> {
                let mut f = std::fs::File::open(&path).ok()?;
                f.seek(SeekFrom::Start(offset)).ok()?;
                let mut buf = vec![0u8; len as usize];
                f.read_exact(&mut buf).ok()?;
                check(&id, &buf).then_some(buf)
            })
            .await
            .ok()
            .flatten();
            if let Some(raw) = local {
                self.reused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(raw);
            }
        }
        self.fetch(id, size).await?;
        let frame = std::fs::read(&cached).map_err(Error::io(&cached))?;
        let raw = zstd::bulk::decompress(&frame, size as usize)
            .map_err(|e| Error::Corrupt(format!("chunk {id}: {e}")))?;
        if !check(id, &raw) {
            return Err(Error::Corrupt(format!(
                "chunk {id} does not match its SHA-256"
            )));
        }
        Ok(raw)
    }
}

/// Updates the copy installed in `dir` to its platform's current build.
pub async fn update(
    client: &Client,
    dir: &Path,
    jobs: usize,
    progress: &Progress,
) -> Result<PullReport> {
    let Some(old) = installed(dir)? else {
        return Err(Error::Usage(format!(
            "nothing is installed in {} (use install)",
            dir.display()
        )));
    };
    install(client, &old.product, &old.platform, dir, jobs, progress).await
}

/// Installs `product` (its current build for `platform`) into `dir`, or updates the copy
/// there.
pub async fn install(
    client: &Client,
    product: &str,
    platform: &str,
    dir: &Path,
    jobs: usize,
    progress: &Progress,
) -> Result<PullReport> {
    let old = installed(dir)?;
    if let Some(old) = &old
        && old.product != product
    {
        return Err(Error::Usage(format!(
            "{} holds another product ({}); install into another directory",
            dir.display(),
            old.product
        )));
    }
    let state = state_dir(dir);
    let pending_path = state.join("pending.json");
    let pending: Option<Pending> = read_json(&pending_path)?;
    let before = (
        Stat::get(&client.stats.chunks_downloaded),
        Stat::get(&client.stats.bytes_downloaded),
    );
    // A pull stopped while moving files into place finishes that first.
    if let Some(p) = pending.as_ref().filter(|p| p.committing) {
        let (written, removed) = commit(dir, old.as_ref(), &p.target)?;
        return Ok(PullReport {
            build: p.target.build.clone(),
            version: p.target.version.clone(),
            changed: true,
            files_written: written,
            files_removed: removed,
            ..PullReport::default()
        });
    }
    let v = client
        .gql(DOWNLOAD, json!({ "p": product, "pl": platform }))
        .await?;
    let d = &v["chunkedDownload"];
    let manifest: Manifest = serde_json::from_value(d["manifest"].clone()).map_err(|e| {
        Error::Usage(format!(
            "the store sent a manifest this client cannot read: {e}"
        ))
    })?;
    manifest
        .check(u64::MAX)
        .map_err(|e| Error::Usage(format!("the store sent an unsafe manifest: {e}")))?;
    let target = Installed {
        product: product.to_owned(),
        platform: platform.to_owned(),
        build: d["build"]["id"].as_str().unwrap_or("").to_owned(),
        version: d["build"]["versionLabel"].as_str().unwrap_or("").to_owned(),
        manifest,
    };
    if old.as_ref().is_some_and(|o| o.build == target.build) && pending.is_none() {
        return Ok(PullReport {
            build: target.build,
            version: target.version,
            changed: false,
            ..PullReport::default()
        });
    }
    if pending
        .as_ref()
        .is_none_or(|p| p.target.build != target.build)
    {
        // Staged files of another build are of no use (cached chunks are: kept).
        let _ = std::fs::remove_dir_all(state.join("staging"));
    }
    for sub in ["chunks", "staging"] {
        let path = state.join(sub);
        std::fs::create_dir_all(&path).map_err(Error::io(&path))?;
    }
    write_json(
        &pending_path,
        &Pending {
            target: target.clone(),
            committing: false,
        },
    )?;

    // What is on disk already: unchanged files, and the chunks of the installed ones.
    let old_files: HashMap<&str, &domain::catalog::manifest::ManifestFile> = old
        .as_ref()
        .map(|o| {
            o.manifest
                .files
                .iter()
                .map(|f| (f.path.as_str(), f))
                .collect()
        })
        .unwrap_or_default();
    let mut local = HashMap::new();
    for f in old_files.values() {
        let path = dir.join(&f.path);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == f.size) {
            for c in &f.chunks {
                local
                    .entry(c.id.clone())
                    .or_insert((path.clone(), c.offset, c.size));
            }
        }
    }
    let unchanged = |i: usize| {
        let f = &target.manifest.files[i];
        old_files.get(f.path.as_str()).is_some_and(|o| {
            o.sha256 == f.sha256
                && o.mode == f.mode
                && std::fs::metadata(dir.join(&f.path)).is_ok_and(|m| m.len() == f.size)
        })
    };
    let staged = |i: usize| state.join("staging").join(i.to_string());
    let todo: Vec<usize> = (0..target.manifest.files.len())
        .filter(|&i| !unchanged(i) && !staged(i).exists())
        .collect();
    let a = &d["access"];
    let sources = Sources {
        client: client.clone(),
        product: product.to_owned(),
        access: Mutex::new((
            a["baseUrl"].as_str().unwrap_or("").to_owned(),
            a["query"].as_str().unwrap_or("").to_owned(),
        )),
        cache: state.join("chunks"),
        local,
        reused: std::sync::atomic::AtomicU64::new(0),
    };

    // (1) The chunks neither cached nor on disk, `jobs` at a time.
    let mut wanted: Vec<(String, u32)> = Vec::new();
    let mut seen = HashSet::new();
    for &i in &todo {
        for c in &target.manifest.files[i].chunks {
            if seen.insert(c.id.clone())
                && !sources.local.contains_key(&c.id)
                && !sources.cached(&c.id).exists()
            {
                wanted.push((c.id.clone(), c.size));
            }
        }
    }
    progress.start(
        "downloading",
        wanted.iter().map(|(_, s)| u64::from(*s)).sum(),
    );
    let fetches = futures::stream::iter(wanted)
        .map(|(id, size)| {
            let sources = &sources;
            async move {
                sources.fetch(&id, size).await?;
                progress.add(u64::from(size));
                Ok::<(), Error>(())
            }
        })
        .buffer_unordered(jobs.max(1));
    futures::pin_mut!(fetches);
    while let Some(done) = fetches.next().await {
        done?;
    }
    progress.finish();

    // (2) Every new or changed file, written whole into staging/ and checked.
    progress.start(
        "writing",
        todo.iter().map(|&i| target.manifest.files[i].size).sum(),
    );
    for &i in &todo {
        let f = &target.manifest.files[i];
        let tmp = state.join("staging").join(format!("{i}.part"));
        let mut out = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        let mut hasher = Sha256::new();
        for c in &f.chunks {
            let raw = sources.bytes(&c.id, c.size).await?;
            hasher.update(&raw);
            out.write_all(&raw).map_err(Error::io(&tmp))?;
            progress.add(raw.len() as u64);
        }
        out.sync_all().map_err(Error::io(&tmp))?;
        drop(out);
        if hex(&hasher.finalize()) != f.sha256 {
            return Err(Error::Corrupt(format!(
                "{}: the assembled file does not match its SHA-256",
                f.path
            )));
        }
        set_mode(&tmp, f.mode)?;
        std::fs::rename(&tmp, staged(i)).map_err(Error::io(staged(i)))?;
    }
    progress.finish();

    // (3) Into place.
    write_json(
        &pending_path,
        &Pending {
            target: target.clone(),
            committing: true,
        },
    )?;
    let (written, removed) = commit(dir, old.as_ref(), &target)?;
    Ok(PullReport {
        build: target.build,
        version: target.version,
        changed: true,
        files_written: written,
        files_removed: removed,
        chunks_downloaded: Stat::get(&client.stats.chunks_downloaded) - before.0,
        bytes_downloaded: Stat::get(&client.stats.bytes_downloaded) - before.1,
        chunks_reused: sources.reused.load(std::sync::atomic::Ordering::Relaxed),
    })
}

use crate::client::Stats as Stat;

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(Error::io(path))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<()> {
    Ok(())
}

/// Removes the old build's files the new one does not have, renames the staged files into
/// place, records the new build and clears the pull's state. Safe to run again after an
/// interruption.
fn commit(dir: &Path, old: Option<&Installed>, target: &Installed) -> Result<(usize, usize)> {
    let state = state_dir(dir);
    let keep: HashSet<&str> = target
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    let mut removed = 0;
    for f in old.map(|o| o.manifest.files.as_slice()).unwrap_or_default() {
        if keep.contains(f.path.as_str()) {
            continue;
        }
        let path = dir.join(&f.path);
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path)(e)),
        }
        // Directories left empty go too (never the install directory itself).
        let mut parent = path.parent();
        while let Some(p) = parent.filter(|p| *p != dir) {
            if std::fs::remove_dir(p).is_err() {
                break;
            }
            parent = p.parent();
        }
    }
    let mut written = 0;
    for (i, f) in target.manifest.files.iter().enumerate() {
        let staged = state.join("staging").join(i.to_string());
        if !staged.exists() {
            continue;
        }
        let to = dir.join(&f.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        std::fs::rename(&staged, &to).map_err(Error::io(&to))?;
        written += 1;
    }
    write_json(&state.join("state.json"), target)?;
    let _ = std::fs::remove_file(state.join("pending.json"));
    let _ = std::fs::remove_dir_all(state.join("staging"));
    let _ = std::fs::remove_dir_all(state.join("chunks"));
    Ok((written, removed))
}

/// The answer of `chunkedDownload`, for tests and tools that want it whole.
pub async fn chunked_download(client: &Client, product: &str, platform: &str) -> Result<Value> {
    Ok(client
        .gql(DOWNLOAD, json!({ "p": product, "pl": platform }))
        .await?["chunkedDownload"]
        .clone())
}
