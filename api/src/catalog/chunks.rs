//! Chunked builds (issue 18): a build as a manifest of files cut into content-defined chunks
//! (see [`domain::catalog::manifest`]), chunks stored once per product and shared by its
//! builds, so a new build costs what changed, both ways.
//!
//! - **Push** (the product's publisher, or an admin): [`missing`] answers which of a list of
//!   chunk ids the product lacks (and renews the others, so the collection spares them while
//!   the push runs); [`store`] takes one chunk (`PUT /uploads/chunks/{product}/{id}`, a zstd
//!   frame), decompresses it, checks its SHA-256 against its id and stores the frame as sent at
//!   `chunks/{product}/{id}`; [`create_build`] makes a `READY` build of a manifest whose chunks
//!   are all stored: it reads them once to check every file's SHA-256 and compute the archive's
//!   (see [`super::archive`]), then writes the build, its files and its chunk list in one
//!   transaction (and makes it current when asked).
//! - **Pull** (owners): [`chunked_download`] gives the manifest and a signed, expiring access to
//!   the product's chunks, which the gateway serves from the object store
//!   (`/downloads/chunks/{product}/{id}?md5=…&expires=…`, one signature for the product's
//!   prefix); it counts as a download, as `downloadLink` does. [`chunk_access`] renews the
//!   signature. Browsers get a chunked build as one tar archive ([`archive_pieces`]).
//! - **Collection**: [`collect_garbage`] deletes the chunks that no build references and that
//!   no push touched within the grace period (row first, then object, in one transaction).
//!
//! Every path that makes a chunk referenced or reused touches it in the statement that checks
//! it (`UPDATE … SET touched_at = now()`), which also locks it: the collection either sees the
//! new `touched_at` and spares it, or deleted it first and the push is told it is missing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use chrono::{DateTime, SubsecRound as _, Utc};
use domain::catalog::entity::{build, build_chunk, build_file};
use domain::catalog::manifest::{CHUNK_MAX_BYTES, ChunkRef, Manifest, ManifestFile, is_sha256_hex};
use futures::{Stream, StreamExt as _};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, SqlErr, Statement, TransactionTrait, Value,
};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::archive;
use super::builds::{
    self, Build, BuildKind, BuildStatus, link_expiry, link_secret, managed_product,
    parse_file_name, parse_release_notes, parse_version_label, secure_link_md5,
};
use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// URL prefix of chunk downloads (served by the gateway from the object store's `chunks/`).
pub const CHUNKS_PREFIX: &str = "/downloads/chunks/";
/// URL prefix of chunk uploads (`PUT /uploads/chunks/{product}/{id}`).
pub const CHUNK_UPLOADS_PREFIX: &str = "/uploads/chunks/";
pub use crate::infra::error::{ChunkError, MAX_IDS_PER_ASK};

/// Largest body of a chunk upload: a zstd frame of at most [`CHUNK_MAX_BYTES`] bytes is at most
/// this long, whatever the data (zstd's bound, with room).
pub const MAX_STORED_CHUNK_BYTES: usize = CHUNK_MAX_BYTES as usize + (64 << 10);
/// Chunks read at once while a build is checked or archived.
const READ_AHEAD: usize = 4;
/// Most missing ids an error names.
const MISSING_NAMED: usize = 100;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn store_error(e: object_store::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("object store: {e}"))
}

/// Key of a chunk in the object store.
pub fn object_key(product: Uuid, id: &str) -> String {
    format!("chunks/{product}/{id}")
}

fn text_array(items: impl IntoIterator<Item = String>) -> Value {
    Value::Array(
        sea_orm::sea_query::ArrayType::String,
        Some(Box::new(
            items.into_iter().map(|s| Value::String(Some(s))).collect(),
        )),
    )
}

fn int_array(items: impl IntoIterator<Item = i32>) -> Value {
    Value::Array(
        sea_orm::sea_query::ArrayType::Int,
        Some(Box::new(
            items.into_iter().map(|v| Value::Int(Some(v))).collect(),
        )),
    )
}

fn bigint_array(items: impl IntoIterator<Item = i64>) -> Value {
    Value::Array(
        sea_orm::sea_query::ArrayType::BigInt,
        Some(Box::new(
            items.into_iter().map(|v| Value::BigInt(Some(v))).collect(),
        )),
    )
}

fn int(v: impl TryInto<i32>, what: &str) -> ApiResult<i32> {
    v.try_into()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("{what} out of range")))
}

fn bigint(v: u64, what: &str) -> ApiResult<i64> {
    i64::try_from(v).map_err(|_| ApiError::Internal(anyhow::anyhow!("{what} out of range")))
}

/// Renews (`touched_at = now()`) and locks the product's stored chunks among `ids`; returns
/// their sizes by id.
async fn touch(
    db: &impl ConnectionTrait,
    product: Uuid,
    ids: Vec<String>,
) -> ApiResult<HashMap<String, i32>> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "UPDATE catalog.chunk SET touched_at = now() \
             WHERE product_id = $1 AND id = ANY($2::text[]) RETURNING id, size_bytes",
            [product.into(), text_array(ids)],
        ))
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "size_bytes")?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(ApiError::from)
}

// ---------------------------------------------------------------------------------------------
// Push

/// Which of `ids` the product has no stored chunk for, in the order asked (each once). The
/// stored ones are renewed: the collection spares them for its grace period.
pub async fn missing(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    ids: Vec<String>,
) -> ApiResult<Vec<String>> {
    if ids.len() > MAX_IDS_PER_ASK {
        return Err(ChunkError::TooManyIds.into());
    }
    if !ids.iter().all(|id| is_sha256_hex(id)) {
        return Err(ChunkError::BadId.into());
    }
    managed_product(&state.db, me, product_id, false).await?;
    let mut seen = HashSet::with_capacity(ids.len());
    let ids: Vec<String> = ids
        .into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect();
    let present = touch(&state.db, product_id, ids.clone()).await?;
    Ok(ids
        .into_iter()
        .filter(|id| !present.contains_key(id))
        .collect())
}

/// A chunk as [`store`] answers.
#[derive(Clone, Debug)]
pub struct StoredChunk {
    pub id: String,
    pub size_bytes: i32,
    pub stored_bytes: i32,
    /// Whether this upload stored it (`false`: it was there already).
    pub created: bool,
}

/// Decompresses a chunk upload (at most [`CHUNK_MAX_BYTES`]) and returns the SHA-256 (hex)
/// and size of its bytes. CPU-bound: call it on the blocking pool.
fn inspect(body: &[u8]) -> Result<(String, usize), ChunkError> {
    let raw =
        zstd::bulk::decompress(body, CHUNK_MAX_BYTES as usize).map_err(|_| ChunkError::BadBody)?;
    if raw.is_empty() {
        return Err(ChunkError::BadBody);
    }
    Ok((hex(&Sha256::digest(&raw)), raw.len()))
}

/// Stores the chunk `id` of a product (its publisher, or an admin): `body` is a zstd frame of
/// its bytes, checked against the id before anything is stored. Storing a chunk that is there
/// already changes nothing but its `touched_at`.
pub async fn store(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    id: &str,
    body: Bytes,
) -> ApiResult<StoredChunk> {
    if !is_sha256_hex(id) {
        return Err(ChunkError::BadId.into());
    }
    managed_product(&state.db, me, product_id, false).await?;
    if body.len() > MAX_STORED_CHUNK_BYTES {
        return Err(ChunkError::BadBody.into());
    }
    let checked = {
        let body = body.clone();
        tokio::task::spawn_blocking(move || inspect(&body))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("checking a chunk: {e}")))?
    }?;
    let (actual, size) = checked;
    if actual != id {
        return Err(ChunkError::HashMismatch {
            expected: id.to_owned(),
            actual,
        }
        .into());
    }
    let size_bytes = int(size, "chunk size")?;
    let stored_bytes = int(body.len(), "stored size")?;
    // The row first, locked until the object is written: a collection running meanwhile waits
    // for it (and then sees it renewed), or took the old row and object before it.
    let txn = state.db.begin().await?;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO catalog.chunk (product_id, id, size_bytes, stored_bytes) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (product_id, id) DO UPDATE SET touched_at = now() \
             RETURNING (xmax = 0) AS created, stored_bytes",
            [
                product_id.into(),
                id.into(),
                size_bytes.into(),
                stored_bytes.into(),
            ],
        ))
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the chunk upsert returned nothing")))?;
    let created: bool = row.try_get("", "created")?;
    let stored: i32 = row.try_get("", "stored_bytes")?;
    if created {
        state
            .objects
            .put(&ObjectPath::from(object_key(product_id, id)), body.into())
            .await
            .map_err(store_error)?;
    }
    txn.commit().await?;
    tracing::info!(product.id = %product_id, chunk.id = %id, size_bytes, created, "chunk stored");
    Ok(StoredChunk {
        id: id.to_owned(),
        size_bytes,
        stored_bytes: stored,
        created,
    })
}

/// What a publisher sends with a manifest.
#[derive(Clone, Debug)]
pub struct NewChunkedBuild {
    pub product_id: Uuid,
    pub platform: String,
    pub version_label: String,
    pub release_notes: String,
    /// Name of the archive browsers download; `{slug}-{version}.tar` by default.
    pub file_name: Option<String>,
    pub make_current: bool,
}

/// `{slug}-{version}.tar` with anything a file name may not hold replaced by `_`.
fn default_archive_name(slug: &str, version: &str) -> String {
    let name: String = format!("{slug}-{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    format!("{name}.tar")
}

/// Makes a `READY` build of `manifest` (JSON, [`Manifest`]) for a product of the caller's.
/// Refused, with nothing written: a manifest that breaks a rule (`BAD_USER_INPUT` naming
/// where), chunks the product has not stored (`CHUNKS_MISSING`), a file whose chunks make
/// other bytes than its `sha256` (`CHECKSUM_MISMATCH`), a version label the platform has
/// (`CONFLICT`). The check reads every chunk once; it runs on a task of its own, so a client
/// that goes away (or a request that times out) does not stop it half-way.
pub async fn create_build(
    state: &AppState,
    me: &Principal,
    input: NewChunkedBuild,
    manifest: &[u8],
) -> ApiResult<Build> {
    let version_label = parse_version_label(&input.version_label)?;
    let release_notes = parse_release_notes(&input.release_notes)?;
    let file_name = input
        .file_name
        .as_deref()
        .map(parse_file_name)
        .transpose()?;
    let manifest: Manifest =
        serde_json::from_slice(manifest).map_err(|e| ChunkError::ManifestJson(e.to_string()))?;
    let totals = manifest
        .check(state.config.builds.max_bytes)
        .map_err(ChunkError::from)?;
    let p = managed_product(&state.db, me, input.product_id, false).await?;
    let platform = input.platform.trim().to_lowercase();
    if !p.platforms.contains(&platform) {
        return Err(ApiError::BadInput {
            field: "platform",
            message: format!(
                "the product is for {}; add the platform to the product first",
                p.platforms.join(", ")
            ),
        });
    }
    let taken = build::Entity::find()
        .filter(build::Column::ProductId.eq(p.id))
        .filter(build::Column::Platform.eq(platform.clone()))
        .filter(build::Column::VersionLabel.eq(version_label.clone()))
        .one(&state.db)
        .await?
        .is_some();
    if taken {
        return Err(ApiError::Conflict(format!(
            "version {version_label} of this product for {platform} exists already"
        )));
    }
    let file_name = file_name.unwrap_or_else(|| default_archive_name(&p.slug, &version_label));
    let ids: Vec<String> = totals.chunks.iter().map(|(id, _)| id.clone()).collect();
    let stored = touch(&state.db, p.id, ids.clone()).await?;
    check_stored(&totals.chunks, &stored)?;
    let state = state.clone();
    let me = me.clone();
    let draft = Draft {
        product_id: p.id,
        platform,
        version_label,
        release_notes,
        file_name,
        make_current: input.make_current,
        ids,
        chunks: totals.chunks,
    };
    tokio::spawn(async move { seal(&state, &me, draft, Arc::new(manifest)).await })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the build task failed: {e}")))?
}

/// Every chunk of the manifest stored, with its size.
fn check_stored(chunks: &[(String, u32)], stored: &HashMap<String, i32>) -> ApiResult<()> {
    let missing: Vec<String> = chunks
        .iter()
        .filter(|(id, _)| !stored.contains_key(id))
        .map(|(id, _)| id.clone())
        .collect();
    if !missing.is_empty() {
        let count = missing.len();
        return Err(ChunkError::Missing {
            missing: missing.into_iter().take(MISSING_NAMED).collect(),
            count,
        }
        .into());
    }
    for (id, size) in chunks {
        if let Some(&s) = stored.get(id)
            && i64::from(s) != i64::from(*size)
        {
            return Err(ChunkError::SizeDiffers {
                id: id.clone(),
                stored: s,
                claimed: *size,
            }
            .into());
        }
    }
    Ok(())
}

/// A checked manifest's build, before it is sealed.
struct Draft {
    product_id: Uuid,
    platform: String,
    version_label: String,
    release_notes: String,
    file_name: String,
    make_current: bool,
    ids: Vec<String>,
    chunks: Vec<(String, u32)>,
}

/// Reads the build's chunks (checking every file), then writes it.
async fn seal(
    state: &AppState,
    me: &Principal,
    draft: Draft,
    manifest: Arc<Manifest>,
) -> ApiResult<Build> {
    let started = std::time::Instant::now();
    // Whole seconds: the archive's times are whole seconds, and they must read back the same.
    let created_at = Utc::now().trunc_subsecs(0);
    let mtime = created_at.timestamp();
    let mut archive_hash = Sha256::new();
    let mut archive_size: u64 = 0;
    let mut file_hash = Sha256::new();
    let mut pieces = std::pin::pin!(archive_pieces(
        state.objects.clone(),
        draft.product_id,
        manifest.clone(),
        mtime
    ));
    while let Some(piece) = pieces.next().await {
        match piece? {
            Piece::Header(b) | Piece::Padding(b) => {
                archive_hash.update(&b);
                archive_size += b.len() as u64;
            }
            Piece::Data(b) => {
                archive_hash.update(&b);
                file_hash.update(&b);
                archive_size += b.len() as u64;
            }
            Piece::FileEnd(index) => {
                let actual = hex(&std::mem::take(&mut file_hash).finalize());
                let file = &manifest.files[index];
                if actual != file.sha256 {
                    return Err(ChunkError::FileHash {
                        index,
                        path: file.path.clone(),
                        actual,
                    }
                    .into());
                }
            }
        }
    }
    let sha256 = hex(&archive_hash.finalize());
    debug_assert_eq!(archive_size, archive::size(&manifest.files, mtime));
    let id = domain::id::new_id();
    let txn = state.db.begin().await?;
    // The product locked: current builds change one at a time.
    let product = managed_product(&txn, me, draft.product_id, true).await?;
    // The chunks renewed and locked until the build references them (see the module's doc).
    let stored = touch(&txn, draft.product_id, draft.ids.clone()).await?;
    check_stored(&draft.chunks, &stored)?;
    let row = build::ActiveModel {
        id: Set(id),
        product_id: Set(draft.product_id),
        platform: Set(draft.platform.clone()),
        version_label: Set(draft.version_label.clone()),
        release_notes: Set(draft.release_notes),
        file_name: Set(draft.file_name),
        size_bytes: Set(bigint(archive_size, "archive size")?),
        status: Set(BuildStatus::Ready.as_str().to_owned()),
        kind: Set(BuildKind::Chunked.as_str().to_owned()),
        sha256: Set(Some(sha256)),
        is_current: Set(false),
        created_by: Set(me.id),
        created_at: Set(created_at),
        uploaded_at: Set(Some(Utc::now())),
        upload_lease: Set(None),
        upload_lease_until: Set(None),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            ApiError::Conflict(format!(
                "version {} of this product for {} exists already",
                draft.version_label, draft.platform
            ))
        } else {
            e.into()
        }
    })?;
    insert_manifest(&txn, id, draft.product_id, &manifest).await?;
    let mut build = Build::try_from(row)?;
    if draft.make_current {
        build =
            Build::try_from(builds::make_current(&txn, me, product.publisher_id, &build).await?)?;
    }
    txn.commit().await?;
    if draft.make_current {
        state.wake_outbox();
    }
    tracing::info!(
        build.id = %build.id,
        product.id = %build.product_id,
        files = manifest.files.len(),
        chunks = draft.chunks.len(),
        size_bytes = build.size_bytes,
        duration_ms = started.elapsed().as_millis() as u64,
        "chunked build created"
    );
    Ok(build)
}

/// Writes the files and chunk lists of a build (one statement each, whatever their number).
async fn insert_manifest(
    txn: &impl ConnectionTrait,
    build: Uuid,
    product: Uuid,
    manifest: &Manifest,
) -> ApiResult<()> {
    let n = manifest.files.len();
    let (mut positions, mut paths, mut sizes, mut modes, mut shas) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut c_pos, mut c_seq, mut c_ids, mut c_off, mut c_size) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, f) in manifest.files.iter().enumerate() {
        let position = int(i, "file position")?;
        positions.push(position);
        paths.push(f.path.clone());
        sizes.push(bigint(f.size, "file size")?);
        modes.push(int(f.mode, "mode")?);
        shas.push(f.sha256.clone());
        for (seq, c) in f.chunks.iter().enumerate() {
            c_pos.push(position);
            c_seq.push(int(seq, "chunk position")?);
            c_ids.push(c.id.clone());
            c_off.push(bigint(c.offset, "chunk offset")?);
            c_size.push(int(c.size, "chunk size")?);
        }
    }
    txn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "INSERT INTO catalog.build_file (build_id, position, path, size_bytes, mode, sha256) \
         SELECT $1, t.* FROM unnest($2::int[], $3::text[], $4::bigint[], $5::int[], $6::text[]) \
         AS t(position, path, size_bytes, mode, sha256)",
        [
            build.into(),
            int_array(positions),
            text_array(paths),
            bigint_array(sizes),
            int_array(modes),
            text_array(shas),
        ],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "INSERT INTO catalog.build_chunk \
             (build_id, position, seq, product_id, chunk_id, offset_bytes, size_bytes) \
         SELECT $1, t.position, t.seq, $2, t.chunk_id, t.offset_bytes, t.size_bytes \
         FROM unnest($3::int[], $4::int[], $5::text[], $6::bigint[], $7::int[]) \
         AS t(position, seq, chunk_id, offset_bytes, size_bytes)",
        [
            build.into(),
            product.into(),
            int_array(c_pos),
            int_array(c_seq),
            text_array(c_ids),
            bigint_array(c_off),
            int_array(c_size),
        ],
    ))
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pull

/// The manifest of a chunked build, as it was pushed.
pub async fn manifest_of(db: &DatabaseConnection, build_id: Uuid) -> ApiResult<Manifest> {
    let files = build_file::Entity::find()
        .filter(build_file::Column::BuildId.eq(build_id))
        .order_by_asc(build_file::Column::Position)
        .all(db)
        .await?;
    let chunks = build_chunk::Entity::find()
        .filter(build_chunk::Column::BuildId.eq(build_id))
        .order_by_asc(build_chunk::Column::Position)
        .order_by_asc(build_chunk::Column::Seq)
        .all(db)
        .await?;
    let mut by_file: Vec<Vec<ChunkRef>> = vec![Vec::new(); files.len()];
    for c in chunks {
        let slot = usize::try_from(c.position)
            .ok()
            .and_then(|p| by_file.get_mut(p))
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a chunk of no file")))?;
        slot.push(ChunkRef {
            id: c.chunk_id,
            offset: u64::try_from(c.offset_bytes).unwrap_or(0),
            size: u32::try_from(c.size_bytes).unwrap_or(0),
        });
    }
    Ok(Manifest {
        files: files
            .into_iter()
            .zip(by_file)
            .map(|(f, chunks)| ManifestFile {
                path: f.path,
                size: u64::try_from(f.size_bytes).unwrap_or(0),
                mode: u32::try_from(f.mode).unwrap_or(0),
                sha256: f.sha256,
                chunks,
            })
            .collect(),
    })
}

/// A signed, expiring access to every chunk of a product:
/// `{base_url}{chunk id}?{query}`.
#[derive(Clone, Debug)]
pub struct ChunkAccess {
    /// `/downloads/chunks/{product}/`, relative to the gateway.
    pub base_url: String,
    /// `md5=…&expires=…`.
    pub query: String,
    pub expires_at: DateTime<Utc>,
}

fn sign_access(state: &AppState, product: Uuid) -> ApiResult<ChunkAccess> {
    let secret = link_secret(state)?;
    let expires_at = link_expiry(state)?;
    let base_url = format!("{CHUNKS_PREFIX}{product}/");
    let md5 = secure_link_md5(expires_at.timestamp(), &base_url, secret.expose_secret());
    Ok(ChunkAccess {
        base_url,
        query: format!("md5={md5}&expires={}", expires_at.timestamp()),
        expires_at,
    })
}

/// A new access to the product's chunks, for an owner (or its publisher, or an admin):
/// `FORBIDDEN` otherwise. Not a download of its own (the manifest's was).
pub async fn chunk_access(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
) -> ApiResult<ChunkAccess> {
    let allowed = builds::owns(state, me, product_id).await?
        || match managed_product(&state.db, me, product_id, false).await {
            Ok(_) => true,
            Err(ApiError::Forbidden(_) | ApiError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
    if !allowed {
        return Err(ApiError::Forbidden(
            "only owners of the product can download it",
        ));
    }
    sign_access(state, product_id)
}

/// For an owner: a chunked build (the current one of the platform, or `build_id`), its
/// manifest and an access to its chunks. Counts as a download, as a download link does.
pub async fn chunked_download(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    platform: &str,
    build_id: Option<Uuid>,
) -> ApiResult<(Build, Manifest, ChunkAccess)> {
    let (build, entitlement_id, order_id) =
        builds::owned_build(state, me, product_id, platform, build_id).await?;
    if build.kind != BuildKind::Chunked {
        return Err(ApiError::Conflict(
            "this build is one file, not chunks: download it with downloadLink".into(),
        ));
    }
    let access = sign_access(state, product_id)?;
    builds::record_download(state, me, entitlement_id, order_id, build.id).await?;
    let manifest = manifest_of(&state.db, build.id).await?;
    tracing::info!(build.id = %build.id, entitlement.id = %entitlement_id, "chunked download");
    Ok((build, manifest, access))
}

/// Part of an archive, in order.
pub enum Piece {
    /// A file's header blocks.
    Header(Bytes),
    /// A chunk of the file's bytes.
    Data(Bytes),
    /// The file at this position of the manifest ended (nothing to write).
    FileEnd(usize),
    /// Zero bytes: after a file's data, and the archive's end.
    Padding(Bytes),
}

/// Reads a chunk of `product` and decompresses it; it must have `size` bytes.
async fn read_chunk(
    objects: Arc<dyn ObjectStore>,
    product: Uuid,
    chunk: ChunkRef,
) -> ApiResult<Bytes> {
    let stored = objects
        .get(&ObjectPath::from(object_key(product, &chunk.id)))
        .await
        .map_err(store_error)?
        .bytes()
        .await
        .map_err(store_error)?;
    let size = chunk.size as usize;
    let raw = tokio::task::spawn_blocking(move || zstd::bulk::decompress(&stored, size))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("decompressing a chunk: {e}")))?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("chunk {}: {e}", chunk.id)))?;
    if raw.len() != size {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "chunk {} has {} bytes, not {size}",
            chunk.id,
            raw.len()
        )));
    }
    Ok(Bytes::from(raw))
}

/// The archive of a chunked build as it is assembled from the chunks: for each file its
/// header, its chunks (read [`READ_AHEAD`] at a time) and its padding, then the trailer.
pub fn archive_pieces(
    objects: Arc<dyn ObjectStore>,
    product: Uuid,
    manifest: Arc<Manifest>,
    mtime: i64,
) -> impl Stream<Item = ApiResult<Piece>> + Send + 'static {
    let files = (0..manifest.files.len()).map(move |index| {
        let file = manifest.files[index].clone();
        let header = futures::stream::once(futures::future::ready(Ok(Piece::Header(Bytes::from(
            archive::header(&file, mtime),
        )))));
        let objects = objects.clone();
        let data = futures::stream::iter(file.chunks.clone())
            .map(move |c| read_chunk(objects.clone(), product, c))
            .buffered(READ_AHEAD)
            .map(|r| r.map(Piece::Data));
        let pad = archive::padding(file.size);
        let end = futures::stream::iter([
            Ok(Piece::FileEnd(index)),
            Ok(Piece::Padding(Bytes::from(vec![0u8; pad]))),
        ]);
        header.chain(data).chain(end)
    });
    futures::stream::iter(files)
        .flatten()
        .chain(futures::stream::once(futures::future::ready(Ok(
            Piece::Padding(Bytes::from_static(&archive::TRAILER)),
        ))))
}

// ---------------------------------------------------------------------------------------------
// Garbage collection

/// What a collection removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub chunks: u64,
    pub stored_bytes: u64,
}

/// Chunks deleted per transaction.
const COLLECT_BATCH: i64 = 500;

/// Deletes every chunk that no build references and that nothing touched for `grace`: the
/// rows and their objects, a batch per transaction (a batch whose objects cannot all be deleted
/// is rolled back, and tried again by the next collection). Safe beside pushes and other
/// collections (`FOR UPDATE SKIP LOCKED`, and see the module's doc).
pub async fn collect_garbage(
    db: &DatabaseConnection,
    objects: &Arc<dyn ObjectStore>,
    grace: std::time::Duration,
) -> ApiResult<Collected> {
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let mut total = Collected::default();
    loop {
        let txn = db.begin().await?;
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "WITH doomed AS ( \
                     SELECT c.product_id, c.id FROM catalog.chunk c \
                     WHERE c.touched_at < now() - ($1::bigint * interval '1 second') \
                       AND NOT EXISTS (SELECT 1 FROM catalog.build_chunk b \
                                       WHERE b.product_id = c.product_id AND b.chunk_id = c.id) \
                     LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 DELETE FROM catalog.chunk c USING doomed d \
                 WHERE c.product_id = d.product_id AND c.id = d.id \
                 RETURNING c.product_id, c.id, c.stored_bytes",
                [grace_secs.into(), COLLECT_BATCH.into()],
            ))
            .await?;
        if rows.is_empty() {
            txn.commit().await?;
            break;
        }
        let mut batch = Collected::default();
        for row in &rows {
            let product: Uuid = row.try_get("", "product_id")?;
            let id: String = row.try_get("", "id")?;
            let stored: i32 = row.try_get("", "stored_bytes")?;
            match objects
                .delete(&ObjectPath::from(object_key(product, &id)))
                .await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    txn.rollback().await?;
                    return Err(store_error(e));
                }
            }
            batch.chunks += 1;
            batch.stored_bytes += u64::try_from(stored).unwrap_or(0);
        }
        txn.commit().await?;
        total.chunks += batch.chunks;
        total.stored_bytes += batch.stored_bytes;
    }
    if total.chunks > 0 {
        tracing::info!(
            chunks = total.chunks,
            stored_bytes = total.stored_bytes,
            "unreferenced chunks collected"
        );
    }
    Ok(total)
}

/// Runs [`collect_garbage`] every `every` for as long as the api runs.
pub async fn collect_periodically(
    db: DatabaseConnection,
    objects: Arc<dyn ObjectStore>,
    every: std::time::Duration,
    grace: std::time::Duration,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = collect_garbage(&db, &objects, grace).await {
            tracing::warn!(error = %e, "collecting unreferenced chunks");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_checked_by_their_decompressed_bytes() {
        let raw = vec![7u8; 1000];
        let frame = zstd::bulk::compress(&raw, 3).expect("compress");
        let (sha, size) = inspect(&frame).expect("a frame");
        assert_eq!(sha, hex(&Sha256::digest(&raw)));
        assert_eq!(size, 1000);
        assert!(matches!(inspect(b"not zstd"), Err(ChunkError::BadBody)));
        let too_big =
            zstd::bulk::compress(&vec![0u8; CHUNK_MAX_BYTES as usize + 1], 1).expect("compress");
        assert!(matches!(inspect(&too_big), Err(ChunkError::BadBody)));
        let empty = zstd::bulk::compress(&[], 1).expect("compress");
        assert!(matches!(inspect(&empty), Err(ChunkError::BadBody)));
    }

    #[test]
    fn archive_names_are_safe_file_names() {
        assert_eq!(
            default_archive_name("starfall", "1.0 beta/2"),
            "starfall-1.0_beta_2.tar"
        );
        assert!(parse_file_name(&default_archive_name(&"s".repeat(200), "1")).is_ok());
    }
}
