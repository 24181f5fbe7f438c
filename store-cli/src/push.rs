//! `store-cli push`: a directory becomes a build of a product, sending only the chunks the
//! product has not stored yet.

use std::collections::HashMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use domain::catalog::manifest::Manifest;
use futures::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::client::Client;
use crate::progress::Progress;
use crate::{Error, Result, chunker, hex};

/// What to push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    pub product: String,
    pub dir: PathBuf,
    pub platform: String,
    pub version: String,
    pub release_notes: String,
    /// Name of the archive browsers download (the store's default when `None`).
    pub file_name: Option<String>,
    pub make_current: bool,
    /// Files chunked and chunks uploaded at once.
    pub jobs: usize,
}

/// What a push did.
#[derive(Clone, Debug)]
pub struct PushReport {
    pub files: usize,
    pub bytes: u64,
    /// Distinct chunks of the build.
    pub chunks: usize,
    /// Of those, the ones the store lacked (and got).
    pub uploaded_chunks: usize,
    /// Their bytes as sent (zstd).
    pub uploaded_bytes: u64,
    /// Their bytes before compression.
    pub uploaded_raw_bytes: u64,
    /// The build, as `createChunkedBuild` answered.
    pub build: Value,
}

/// Ids asked about at once.
const ASK_BATCH: usize = 1000;
/// zstd level of uploads: fast, and most game data is compressed already.
const ZSTD_LEVEL: i32 = 3;

const MISSING: &str =
    "mutation($p: UUID!, $ids: [String!]!) { missingChunks(productId: $p, ids: $ids) }";
const CREATE: &str = "mutation($i: CreateChunkedBuildInput!, $manifest: Upload!) { createChunkedBuild(input: $i, manifest: $manifest) { id versionLabel platform kind status isCurrent sizeBytes sha256 fileName } }";

/// Where a chunk's bytes are on disk.
#[derive(Clone, Debug)]
struct Source {
    path: PathBuf,
    offset: u64,
    size: u32,
}

fn read_range(src: &Source) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(&src.path).map_err(Error::io(&src.path))?;
    f.seek(SeekFrom::Start(src.offset))
        .map_err(Error::io(&src.path))?;
    let mut buf = vec![0u8; src.size as usize];
    f.read_exact(&mut buf).map_err(Error::io(&src.path))?;
    Ok(buf)
}

/// The chunk `id` read from its source, checked and compressed.
fn frame_of(id: &str, src: &Source) -> Result<(Vec<u8>, u64)> {
    let raw = read_range(src)?;
    if hex(&Sha256::digest(&raw)) != id {
        return Err(Error::Corrupt(format!(
            "{} changed while it was being pushed; push again",
            src.path.display()
        )));
    }
    let frame = zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(Error::io(&src.path))?;
    Ok((frame, raw.len() as u64))
}

/// Uploads the chunks of `ids` (their sources known), `jobs` at a time; returns
/// (chunks, bytes sent, raw bytes).
async fn upload(
    client: &Client,
    product: &str,
    ids: &[String],
    sources: &HashMap<String, Source>,
    jobs: usize,
    progress: &Progress,
) -> Result<(usize, u64, u64)> {
    let raw_total: u64 = ids
        .iter()
        .filter_map(|id| sources.get(id))
        .map(|s| u64::from(s.size))
        .sum();
    progress.start("uploading", raw_total);
    let sends = futures::stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let src = sources
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::Usage(format!("chunk {id} is not in this directory")))?;
            let (frame, raw) = {
                let id = id.clone();
                tokio::task::spawn_blocking(move || frame_of(&id, &src))
                    .await
                    .map_err(|e| Error::Usage(format!("a compression task failed: {e}")))??
            };
            let sent = frame.len() as u64;
            // Transient failures (the network, a restarting store) are tried again.
            let mut attempt = 0;
            loop {
                attempt += 1;
                match client.put_chunk(product, &id, frame.clone()).await {
                    Ok(_) => break,
                    Err(Error::Http(_) | Error::Status { .. }) if attempt < 3 => {
                        tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
            progress.add(raw);
            Ok::<(u64, u64), Error>((sent, raw))
        })
        .buffer_unordered(jobs.max(1));
    futures::pin_mut!(sends);
    let (mut n, mut sent, mut raw) = (0, 0, 0);
    while let Some(done) = sends.next().await {
        let (s, r) = done?;
        n += 1;
        sent += s;
        raw += r;
    }
    progress.finish();
    Ok((n, sent, raw))
}

/// Which of `ids` the store lacks for the product.
async fn ask_missing(client: &Client, product: &str, ids: &[String]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for batch in ids.chunks(ASK_BATCH) {
        let v = client
            .gql(MISSING, json!({ "p": product, "ids": batch }))
            .await?;
        missing.extend(
            v["missingChunks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_owned)),
        );
    }
    Ok(missing)
}

/// Pushes `opts.dir` as a new build of `opts.product`.
pub async fn push(client: &Client, opts: &PushOptions, progress: &Progress) -> Result<PushReport> {
    if !opts.dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a directory",
            opts.dir.display()
        )));
    }
    let (manifest, paths) = chunker::manifest_of(&opts.dir, opts.jobs, progress).await?;
    let mut sources: HashMap<String, Source> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (file, path) in manifest.files.iter().zip(&paths) {
        for c in &file.chunks {
            if !sources.contains_key(&c.id) {
                order.push(c.id.clone());
                sources.insert(
                    c.id.clone(),
                    Source {
                        path: path.clone(),
                        offset: c.offset,
                        size: c.size,
                    },
                );
            }
        }
    }
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    let missing = ask_missing(client, &opts.product, &order).await?;
    progress.say(&format!(
        "{} files, {:.1} MB, {} chunks: {} to upload",
        manifest.files.len(),
        bytes as f64 / 1e6,
        order.len(),
        missing.len()
    ));
    let (mut uploaded, mut sent, mut raw) = upload(
        client,
        &opts.product,
        &missing,
        &sources,
        opts.jobs,
        progress,
    )
    .await?;
    let document = serde_json::to_vec(&manifest)
        .map_err(|e| Error::Usage(format!("writing the manifest: {e}")))?;
    let input = json!({
        "productId": opts.product,
        "platform": opts.platform,
        "versionLabel": opts.version,
        "releaseNotes": opts.release_notes,
        "fileName": opts.file_name,
        "makeCurrent": opts.make_current,
    });
    // A chunk collected between the question and the build is named: send it, then again.
    let mut tries = 0;
    let build = loop {
        tries += 1;
        match client
            .gql_upload(
                CREATE,
                json!({ "i": input, "manifest": Value::Null }),
                "manifest",
                document.clone(),
            )
            .await
        {
            Ok(v) => break v["createChunkedBuild"].clone(),
            Err(Error::Api { code, .. }) if code == "CHUNKS_MISSING" && tries < 3 => {
                let again = ask_missing(client, &opts.product, &order).await?;
                let (n, s, r) =
                    upload(client, &opts.product, &again, &sources, opts.jobs, progress).await?;
                uploaded += n;
                sent += s;
                raw += r;
            }
            Err(e) => return Err(e),
        }
    };
    Ok(PushReport {
        files: manifest.files.len(),
        bytes,
        chunks: order.len(),
        uploaded_chunks: uploaded,
        uploaded_bytes: sent,
        uploaded_raw_bytes: raw,
        build,
    })
}

/// The manifest `push` would send for `dir` (no store involved).
pub async fn manifest(dir: &Path, jobs: usize) -> Result<Manifest> {
    Ok(chunker::manifest_of(dir, jobs, &Progress::hidden())
        .await?
        .0)
}
