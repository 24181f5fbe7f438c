//! The manifest of a chunked build (issue 18): its files (path, size, mode, SHA-256) and, for
//! each file, its content-defined chunks in order (id = SHA-256 of the uncompressed bytes,
//! offset, size). Shared by the api, which checks it before a build is made of it, and by
//! `store-cli`, which writes it when it pushes and follows it when it installs.
//!
//! The rules ([`Manifest::check`]) make a manifest safe to write under any directory on any
//! common file system: relative paths of plain segments (no `..`, no absolute path, no drive,
//! no backslash, no control character), no two files whose paths differ only by case, no file
//! inside another file's path, nothing under the client's own `.store/` directory.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Chunks are cut with FastCDC (2020) at these sizes: at least 256 KiB (a file's last chunk
/// may be shorter), 1 MiB on average, at most 4 MiB. Big enough that a 20 GB build is about
/// 20,000 chunks (a manifest of about 2 MB); small enough that a change costs about a MiB.
pub const CHUNK_MIN_BYTES: u32 = 256 * 1024;
pub const CHUNK_AVG_BYTES: u32 = 1024 * 1024;
pub const CHUNK_MAX_BYTES: u32 = 4 * 1024 * 1024;

/// Most files in one build.
pub const MAX_FILES: usize = 100_000;
/// Longest path, in bytes (UTF-8), and longest segment of a path.
pub const MAX_PATH_BYTES: usize = 1024;
pub const MAX_SEGMENT_BYTES: usize = 255;
/// The directory an installed copy keeps its state in (`store-cli`); no build may use it.
pub const STATE_DIR: &str = ".store";

/// A build's files, in the order they are written (and archived).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub files: Vec<ManifestFile>,
}

/// One file of a build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Permission bits (`0o644`, `0o755`); nothing else.
    pub mode: u32,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// The file's chunks in order; none for an empty file.
    pub chunks: Vec<ChunkRef>,
}

/// One chunk of a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRef {
    /// SHA-256 of the chunk's uncompressed bytes, lowercase hex.
    pub id: String,
    /// Where the chunk starts in the file.
    pub offset: u64,
    pub size: u32,
}

/// Why a manifest is refused. `field` of each is where in the manifest, e.g.
/// `files[3].path`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the build has no file")]
    Empty,
    #[error("a build has at most {MAX_FILES} files")]
    TooManyFiles,
    #[error("file {index}: the path {path:?} is not safe: {why}")]
    UnsafePath {
        index: usize,
        path: String,
        why: &'static str,
    },
    #[error(
        "file {index}: the path {path:?} is there twice (or differs from another only by case)"
    )]
    DuplicatePath { index: usize, path: String },
    #[error(
        "file {index}: the path {path:?} is inside another file's path, or another file is inside it"
    )]
    PathClash { index: usize, path: String },
    #[error("file {index}: a mode holds permission bits only (at most 0o777)")]
    BadMode { index: usize },
    #[error("file {index}: sha256 must be 64 lowercase hexadecimal digits")]
    BadFileSha { index: usize },
    #[error(
        "file {index}, chunk {chunk}: an id is the chunk's SHA-256, 64 lowercase hexadecimal digits"
    )]
    BadChunkId { index: usize, chunk: usize },
    #[error("file {index}, chunk {chunk}: a chunk has 1 to {CHUNK_MAX_BYTES} bytes")]
    ChunkSize { index: usize, chunk: usize },
    #[error(
        "file {index}, chunk {chunk}: chunks follow each other from offset 0 without gap or overlap"
    )]
    NotContiguous { index: usize, chunk: usize },
    #[error("file {index}: its chunks add up to another size than the file's")]
    SizeMismatch { index: usize },
    #[error("chunk {id} is given two sizes")]
    ChunkSizeDiffers { id: String },
    #[error("the build has {total} bytes, more than {max}")]
    TooLarge { total: u64, max: u64 },
}

impl ManifestError {
    /// Where in the manifest the fault is (`extensions.field` at the api's edge).
    pub fn field(&self) -> String {
        match self {
            ManifestError::Empty | ManifestError::TooManyFiles | ManifestError::TooLarge { .. } => {
                "manifest.files".to_owned()
            }
            ManifestError::UnsafePath { index, .. }
            | ManifestError::DuplicatePath { index, .. }
            | ManifestError::PathClash { index, .. } => format!("manifest.files[{index}].path"),
            ManifestError::BadMode { index } => format!("manifest.files[{index}].mode"),
            ManifestError::BadFileSha { index } => format!("manifest.files[{index}].sha256"),
            ManifestError::SizeMismatch { index } => format!("manifest.files[{index}].size"),
            ManifestError::BadChunkId { index, chunk }
            | ManifestError::ChunkSize { index, chunk }
            | ManifestError::NotContiguous { index, chunk } => {
                format!("manifest.files[{index}].chunks[{chunk}]")
            }
            ManifestError::ChunkSizeDiffers { .. } => "manifest.files".to_owned(),
        }
    }
}

/// What a checked manifest adds up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Sum of the file sizes.
    pub bytes: u64,
    /// Every distinct chunk with its size, in order of first use.
    pub chunks: Vec<(String, u32)>,
}

/// Whether `s` is 64 lowercase hexadecimal digits (a SHA-256 as the store writes it).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why `path` cannot be written safely under an install directory, if it cannot.
pub fn unsafe_path(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("it is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return Some("it is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return Some("it is absolute");
    }
    if path.contains('\\') {
        return Some("it holds a backslash");
    }
    if path.contains(':') {
        return Some("it holds a colon (a drive or a stream on Windows)");
    }
    if path.chars().any(char::is_control) {
        return Some("it holds a control character");
    }
    let mut first = true;
    for segment in path.split('/') {
        match segment {
            "" => return Some("it has an empty segment (`//` or a trailing `/`)"),
            "." | ".." => return Some("it has a `.` or `..` segment"),
            s if s.len() > MAX_SEGMENT_BYTES => return Some("a segment is longer than 255 bytes"),
            s if first && s.eq_ignore_ascii_case(STATE_DIR) => {
                return Some("`.store/` is where an installed copy keeps its state");
            }
            _ => {}
        }
        first = false;
    }
    None
}

impl Manifest {
    /// Checks every rule; `max_bytes` bounds the sum of the file sizes.
    pub fn check(&self, max_bytes: u64) -> Result<Totals, ManifestError> {
        if self.files.is_empty() {
            return Err(ManifestError::Empty);
        }
        if self.files.len() > MAX_FILES {
            return Err(ManifestError::TooManyFiles);
        }
        let mut folded: HashSet<String> = HashSet::with_capacity(self.files.len());
        let mut sizes: HashMap<&str, u32> = HashMap::new();
        let mut chunks = Vec::new();
        let mut total: u64 = 0;
        for (index, f) in self.files.iter().enumerate() {
            if let Some(why) = unsafe_path(&f.path) {
                return Err(ManifestError::UnsafePath {
                    index,
                    path: f.path.clone(),
                    why,
                });
            }
            if !folded.insert(f.path.to_lowercase()) {
                return Err(ManifestError::DuplicatePath {
                    index,
                    path: f.path.clone(),
                });
            }
            if f.mode & !0o777 != 0 {
                return Err(ManifestError::BadMode { index });
            }
            if !is_sha256_hex(&f.sha256) {
                return Err(ManifestError::BadFileSha { index });
            }
            let mut next: u64 = 0;
            for (chunk, c) in f.chunks.iter().enumerate() {
                if !is_sha256_hex(&c.id) {
                    return Err(ManifestError::BadChunkId { index, chunk });
                }
                if c.size == 0 || c.size > CHUNK_MAX_BYTES {
                    return Err(ManifestError::ChunkSize { index, chunk });
                }
                if c.offset != next {
                    return Err(ManifestError::NotContiguous { index, chunk });
                }
                next += u64::from(c.size);
                match sizes.get(c.id.as_str()) {
                    Some(&size) if size != c.size => {
                        return Err(ManifestError::ChunkSizeDiffers { id: c.id.clone() });
                    }
                    Some(_) => {}
                    None => {
                        sizes.insert(&c.id, c.size);
                        chunks.push((c.id.clone(), c.size));
                    }
                }
            }
            if next != f.size {
                return Err(ManifestError::SizeMismatch { index });
            }
            total = total.saturating_add(f.size);
            if total > max_bytes {
                return Err(ManifestError::TooLarge {
                    total,
                    max: max_bytes,
                });
            }
        }
        // A file may not be a directory of another: `a` and `a/b` cannot both be files.
        for (index, f) in self.files.iter().enumerate() {
            let lower = f.path.to_lowercase();
            let mut at = 0;
            while let Some(slash) = lower[at..].find('/') {
                let dir = &lower[..at + slash];
                if folded.contains(dir) {
                    return Err(ManifestError::PathClash {
                        index,
                        path: f.path.clone(),
                    });
                }
                at += slash + 1;
            }
        }
        Ok(Totals {
            bytes: total,
            chunks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, chunks: &[(char, u32)]) -> ManifestFile {
        let mut offset = 0;
        let chunks: Vec<ChunkRef> = chunks
            .iter()
            .map(|&(c, size)| {
                let r = ChunkRef {
                    id: c.to_string().repeat(64),
                    offset,
                    size,
                };
                offset += u64::from(size);
                r
            })
            .collect();
        ManifestFile {
            path: path.to_owned(),
            size: offset,
            mode: 0o644,
            sha256: "0".repeat(64),
            chunks,
        }
    }

    fn manifest(files: Vec<ManifestFile>) -> Manifest {
        Manifest { files }
    }

    #[test]
    fn a_good_manifest_adds_up() {
        let m = manifest(vec![
            file("bin/game", &[('a', 10), ('b', 5)]),
            file("data/levels/1.pak", &[('a', 10)]),
            file("empty", &[]),
        ]);
        let t = m.check(1 << 30).expect("valid");
        assert_eq!(t.bytes, 25);
        assert_eq!(
            t.chunks,
            vec![("a".repeat(64), 10), ("b".repeat(64), 5)],
            "distinct, in order of first use"
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../up",
            "a/../../b",
            "a/./b",
            "a//b",
            "a/",
            "C:/x",
            "a\\b",
            "a\nb",
            ".store/state.json",
            ".STORE/x",
            &"x".repeat(256),
            &format!("{}/x", "ab/".repeat(400)),
        ] {
            assert!(unsafe_path(bad).is_some(), "{bad:?}");
            let err = manifest(vec![file(bad, &[])]).check(u64::MAX);
            assert!(
                matches!(err, Err(ManifestError::UnsafePath { index: 0, .. })),
                "{bad:?}: {err:?}"
            );
        }
        for good in ["a", "a/b.c", ".hidden", "data/.store", "ünï/cödé", "a b/c"] {
            assert_eq!(unsafe_path(good), None, "{good:?}");
        }
    }

    #[test]
    fn duplicates_and_clashes_are_refused() {
        let dup = manifest(vec![file("a/B", &[]), file("a/b", &[])]).check(u64::MAX);
        assert!(matches!(
            dup,
            Err(ManifestError::DuplicatePath { index: 1, .. })
        ));
        let clash = manifest(vec![file("a", &[]), file("a/b", &[])]).check(u64::MAX);
        assert!(matches!(
            clash,
            Err(ManifestError::PathClash { index: 1, .. })
        ));
        let fine = manifest(vec![file("ab", &[]), file("a/b", &[])]).check(u64::MAX);
        assert!(fine.is_ok(), "{fine:?}");
    }

    #[test]
    fn chunks_must_tile_the_file() {
        let mut gap = file("a", &[('a', 10), ('b', 5)]);
        gap.chunks[1].offset = 11;
        gap.size = 16;
        assert!(matches!(
            manifest(vec![gap]).check(u64::MAX),
            Err(ManifestError::NotContiguous { index: 0, chunk: 1 })
        ));
        let mut short = file("a", &[('a', 10)]);
        short.size = 11;
        assert!(matches!(
            manifest(vec![short]).check(u64::MAX),
            Err(ManifestError::SizeMismatch { index: 0 })
        ));
        let big = file("a", &[('a', CHUNK_MAX_BYTES + 1)]);
        assert!(matches!(
            manifest(vec![big]).check(u64::MAX),
            Err(ManifestError::ChunkSize { .. })
        ));
        let two_sizes = manifest(vec![file("a", &[('a', 10)]), file("b", &[('a', 11)])]);
        assert!(matches!(
            two_sizes.check(u64::MAX),
            Err(ManifestError::ChunkSizeDiffers { .. })
        ));
        let mut upper = file("a", &[('a', 10)]);
        upper.chunks[0].id = "A".repeat(64);
        assert!(matches!(
            manifest(vec![upper]).check(u64::MAX),
            Err(ManifestError::BadChunkId { .. })
        ));
        let mut mode = file("a", &[]);
        mode.mode = 0o4755;
        assert!(matches!(
            manifest(vec![mode]).check(u64::MAX),
            Err(ManifestError::BadMode { .. })
        ));
        assert!(matches!(
            manifest(vec![file("a", &[('a', 10)])]).check(9),
            Err(ManifestError::TooLarge { .. })
        ));
        assert_eq!(manifest(vec![]).check(9), Err(ManifestError::Empty));
    }
}
