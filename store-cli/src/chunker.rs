//! A directory as a manifest: its regular files (sorted by path, `.store/` left out), each cut
//! into chunks with FastCDC 2020 at the store's sizes (256 KiB / 1 MiB / 4 MiB), each chunk
//! named by the SHA-256 of its bytes. Content-defined cut points depend on the bytes around
//! them only, so bytes inserted in a file move no cut point after the next one: the chunks
//! after an edit are the chunks of before.

use std::io::Read;
use std::path::{Path, PathBuf};

use domain::catalog::manifest::{
    CHUNK_AVG_BYTES, CHUNK_MAX_BYTES, CHUNK_MIN_BYTES, ChunkRef, Manifest, ManifestFile, STATE_DIR,
};
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};

use crate::progress::Progress;
use crate::{Error, Result, hex};

/// The chunks of one reader, and the SHA-256 and size of all of it. `each` sees every chunk's
/// bytes (the benchmark counts them; a push needs none).
pub fn chunk_reader(
    reader: impl Read,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<(u64, String, Vec<ChunkRef>)> {
    let mut whole = Sha256::new();
    let mut chunks = Vec::new();
    let mut size = 0u64;
    let cutter = fastcdc::v2020::StreamCDC::new(
        reader,
        CHUNK_MIN_BYTES as usize,
        CHUNK_AVG_BYTES as usize,
        CHUNK_MAX_BYTES as usize,
    );
    for chunk in cutter {
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(io) => io,
            other => std::io::Error::other(other.to_string()),
        })?;
        whole.update(&chunk.data);
        each(&chunk.data);
        let length = u32::try_from(chunk.length)
            .map_err(|_| std::io::Error::other("a chunk longer than 4 GiB"))?;
        chunks.push(ChunkRef {
            id: hex(&Sha256::digest(&chunk.data)),
            offset: chunk.offset,
            size: length,
        });
        size = chunk.offset + chunk.length as u64;
    }
    Ok((size, hex(&whole.finalize()), chunks))
}

/// Every regular file under `dir` (relative `/` paths, sorted), `.store/` left out. A symbolic
/// link or another special file is refused: a build holds plain files.
pub fn scan(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(root: &Path, at: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
        let entries = std::fs::read_dir(at).map_err(Error::io(at))?;
        for entry in entries {
            let entry = entry.map_err(Error::io(at))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(Error::io(&path))?;
            let rel = path.strip_prefix(root).map_err(|_| {
                Error::Usage(format!("{} is outside the directory", path.display()))
            })?;
            let rel = rel
                .to_str()
                .ok_or_else(|| Error::Usage(format!("{}: a path must be UTF-8", path.display())))?
                .replace('\\', "/");
            if at == root && rel == STATE_DIR {
                continue;
            }
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                out.push((rel, path));
            } else {
                return Err(Error::Usage(format!(
                    "{}: only regular files and directories can be pushed",
                    path.display()
                )));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// One file cut into chunks.
pub fn chunk_file(rel: &str, path: &Path) -> Result<ManifestFile> {
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    let meta = file.metadata().map_err(Error::io(path))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (size, sha256, chunks) = chunk_reader(reader, |_| {}).map_err(Error::io(path))?;
    Ok(ManifestFile {
        path: rel.to_owned(),
        size,
        mode: mode_of(&meta),
        sha256,
        chunks,
    })
}

/// The manifest of `dir`, its files cut `jobs` at a time; with each file's path on disk.
pub async fn manifest_of(
    dir: &Path,
    jobs: usize,
    progress: &Progress,
) -> Result<(Manifest, Vec<PathBuf>)> {
    let files = scan(dir)?;
    let total: u64 = files
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    progress.start("scanning", total);
    let cut = futures::stream::iter(files.clone())
        .map(|(rel, path)| async move {
            let done = tokio::task::spawn_blocking(move || chunk_file(&rel, &path))
                .await
                .map_err(|e| Error::Usage(format!("a chunking task failed: {e}")))??;
            Ok::<ManifestFile, Error>(done)
        })
        .buffered(jobs.max(1));
    futures::pin_mut!(cut);
    let mut out = Vec::with_capacity(files.len());
    while let Some(file) = cut.next().await {
        let file = file?;
        progress.add(file.size);
        out.push(file);
    }
    progress.finish();
    Ok((
        Manifest { files: out },
        files.into_iter().map(|(_, p)| p).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::noise;

    #[test]
    fn an_insertion_changes_only_the_chunks_around_it() {
        let before = noise(12 << 20, 3);
        let mut after = before.clone();
        let at = 6 << 20;
        after.splice(at..at, noise(100_000, 9));
        let (_, _, a) = chunk_reader(&before[..], |_| {}).expect("chunks");
        let (size, sha, b) = chunk_reader(&after[..], |_| {}).expect("chunks");
        assert_eq!(size, after.len() as u64);
        assert_eq!(sha, hex(&Sha256::digest(&after)));
        let old: std::collections::HashSet<_> = a.iter().map(|c| c.id.clone()).collect();
        let new_bytes: u64 = b
            .iter()
            .filter(|c| !old.contains(&c.id))
            .map(|c| u64::from(c.size))
            .sum();
        assert!(
            new_bytes <= 100_000 + 2 * u64::from(CHUNK_MAX_BYTES),
            "{new_bytes} new bytes for 100,000 inserted"
        );
        assert!(b.iter().all(|c| c.size <= CHUNK_MAX_BYTES));
        assert_eq!(b.iter().map(|c| u64::from(c.size)).sum::<u64>(), size);
    }
}
