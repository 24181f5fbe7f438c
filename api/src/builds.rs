//! Builds of a product and their signed downloads (DESIGN §7). Part of the catalog: the api is
//! the only writer of `catalog.build` and `catalog.download`.
//!
//! - A publisher (the product's own, or an admin) announces a build ([`create`]): platform,
//!   version, file name and size. It is `UPLOADING` until its file has been streamed with
//!   `PUT /uploads/builds/{id}` ([`upload`]) into the object store at
//!   `builds/{product}/{build}/{file name}`, hashed (SHA-256) and counted on the way; a wrong size
//!   or checksum removes what was written and leaves the build `UPLOADING`, so the upload can be
//!   sent again. Then it is `READY`, and never changes its bytes again.
//! - One `READY` build per (product, platform) is current ([`set_current`]); older ones are kept,
//!   and making one of them current again is the rollback.
//! - An owner (an active entitlement: `library.entitlement.revoked_at IS NULL`) asks for a
//!   download link ([`download_link`]): an nginx `secure_link` URL that expires after
//!   `DOWNLOAD_LINK_TTL_SECS`. Handing out a link counts as the download (`catalog.download`, one
//!   row per entitlement: the first build and time, then how many links and the last time). The
//!   first link of an order passes its refund gate ([`crate::refund::first_download`]): none is
//!   handed out once a refund or a cancellation claimed the order's digital lines.

use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use domain::catalog::entity::product;
use domain::identity::Role;
use domain::sql::stmt;
use futures::{Stream, StreamExt as _};
use object_store::ObjectStoreExt as _;
use object_store::WriteMultipart;
use object_store::path::Path as ObjectPath;
use sea_orm::{ConnectionTrait, EntityTrait, QueryResult, QuerySelect, SqlErr, TransactionTrait};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// URL prefix of signed downloads: nginx's `location ^~ /downloads/` serves the object store.
pub const DOWNLOADS_PREFIX: &str = "/downloads/";
/// URL prefix of build uploads (`PUT /uploads/builds/{id}`).
pub const UPLOADS_PREFIX: &str = "/uploads/builds/";
/// Size of the parts streamed to the object store (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 5 << 20;
/// Parts written at once: with the part being filled, what one upload holds in memory is at
/// most `(PARTS_IN_FLIGHT + 1) × PART_BYTES`, whatever the size of the file.
const PARTS_IN_FLIGHT: usize = 2;

const MAX_VERSION_LABEL: usize = 64;
const MAX_RELEASE_NOTES: usize = 20_000;
const MAX_FILE_NAME: usize = 128;

/// Whether the bytes of a build have arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStatus {
    Uploading,
    Ready,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Uploading => "UPLOADING",
            BuildStatus::Ready => "READY",
        }
    }

    fn parse(s: &str) -> Option<BuildStatus> {
        match s {
            "UPLOADING" => Some(BuildStatus::Uploading),
            "READY" => Some(BuildStatus::Ready),
            _ => None,
        }
    }
}

/// A row of `catalog.build`.
#[derive(Clone, Debug)]
pub struct Build {
    pub id: Uuid,
    pub product_id: Uuid,
    pub platform: String,
    pub version_label: String,
    pub release_notes: String,
    pub file_name: String,
    /// Announced by the publisher; what arrived once `READY`.
    pub size_bytes: i64,
    pub status: BuildStatus,
    /// Lowercase hex, once `READY`.
    pub sha256: Option<String>,
    pub is_current: bool,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: Option<DateTime<Utc>>,
}

impl Build {
    /// Key of the file in the object store.
    pub fn object_key(&self) -> String {
        format!("builds/{}/{}/{}", self.product_id, self.id, self.file_name)
    }

    /// Where the file is `PUT`.
    pub fn upload_path(&self) -> String {
        format!("{UPLOADS_PREFIX}{}", self.id)
    }
}

const COLUMNS: &str = "id, product_id, platform, version_label, release_notes, file_name, \
    size_bytes, status, sha256, is_current, created_by, created_at, uploaded_at";

fn from_row(r: &QueryResult) -> ApiResult<Build> {
    let status: String = r.try_get("", "status")?;
    Ok(Build {
        id: r.try_get("", "id")?,
        product_id: r.try_get("", "product_id")?,
        platform: r.try_get("", "platform")?,
        version_label: r.try_get("", "version_label")?,
        release_notes: r.try_get("", "release_notes")?,
        file_name: r.try_get("", "file_name")?,
        size_bytes: r.try_get("", "size_bytes")?,
        status: BuildStatus::parse(&status)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored build status {status}")))?,
        sha256: r.try_get("", "sha256")?,
        is_current: r.try_get("", "is_current")?,
        created_by: r.try_get("", "created_by")?,
        created_at: r.try_get("", "created_at")?,
        uploaded_at: r.try_get("", "uploaded_at")?,
    })
}

/// What a publisher announces.
#[derive(Clone, Debug)]
pub struct NewBuild {
    pub product_id: Uuid,
    pub platform: String,
    pub version_label: String,
    pub release_notes: String,
    pub file_name: String,
    pub size_bytes: i64,
}

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadInput {
        field,
        message: message.into(),
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, as the table checks: one path segment, safe in a URL,
/// a file system and a `Content-Disposition` header without any quoting.
pub fn parse_file_name(s: &str) -> ApiResult<String> {
    let ok = s.len() <= MAX_FILE_NAME
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(bad(
            "fileName",
            format!(
                "a file name has 1 to {MAX_FILE_NAME} letters, digits, `.`, `_` or `-`, and starts with a letter or digit"
            ),
        ))
    }
}

pub fn parse_version_label(s: &str) -> ApiResult<String> {
    let label = s.trim();
    let n = label.chars().count();
    if n == 0 || n > MAX_VERSION_LABEL || label.chars().any(char::is_control) {
        return Err(bad(
            "versionLabel",
            format!("a version label has 1 to {MAX_VERSION_LABEL} characters"),
        ));
    }
    Ok(label.to_owned())
}

pub fn parse_release_notes(s: &str) -> ApiResult<String> {
    if s.chars().count() > MAX_RELEASE_NOTES {
        return Err(bad(
            "releaseNotes",
            format!("release notes have at most {MAX_RELEASE_NOTES} characters"),
        ));
    }
    Ok(s.to_owned())
}

/// A SHA-256 as a client sends it (hex, any case) → lowercase hex.
pub fn parse_sha256(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `me` manages the builds of `p`: its publisher, or an admin.
pub fn may_manage(me: &Principal, p: &product::Model) -> bool {
    me.role == Role::Admin || (me.role == Role::Publisher && me.id == p.publisher_id)
}

async fn managed_product(
    db: &impl ConnectionTrait,
    me: &Principal,
    id: Uuid,
    lock: bool,
) -> ApiResult<product::Model> {
    let mut q = product::Entity::find_by_id(id);
    if lock {
        // Serialises changes of the product's current builds.
        q = q.lock(sea_orm::sea_query::LockType::NoKeyUpdate);
    }
    let p = q.one(db).await?.ok_or(ApiError::NotFound("product"))?;
    if !may_manage(me, &p) {
        return Err(ApiError::Forbidden(
            "only the product's publisher (or an admin) manages its builds",
        ));
    }
    Ok(p)
}

/// Announces a build; its file is uploaded next (`Build::upload_path`).
pub async fn create(state: &AppState, me: &Principal, input: NewBuild) -> ApiResult<Build> {
    let file_name = parse_file_name(&input.file_name)?;
    let version_label = parse_version_label(&input.version_label)?;
    let release_notes = parse_release_notes(&input.release_notes)?;
    let max = state.config.builds.max_bytes;
    if input.size_bytes <= 0 || u64::try_from(input.size_bytes).is_ok_and(|n| n > max) {
        return Err(bad(
            "sizeBytes",
            format!("a build has between 1 and {max} bytes"),
        ));
    }
    let p = managed_product(&state.db, me, input.product_id, false).await?;
    let platform = input.platform.trim().to_lowercase();
    if !p.platforms.contains(&platform) {
        return Err(bad(
            "platform",
            format!(
                "the product is for {}; add the platform to the product first",
                p.platforms.join(", ")
            ),
        ));
    }
    let row = state
        .db
        .query_one_raw(stmt(
            format!(
                "INSERT INTO catalog.build (id, product_id, platform, version_label, release_notes, \
                 file_name, size_bytes, status, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'UPLOADING', $8) RETURNING {COLUMNS}"
            ),
            [
                domain::id::new_id().into(),
                p.id.into(),
                platform.clone().into(),
                version_label.clone().into(),
                release_notes.into(),
                file_name.into(),
                input.size_bytes.into(),
                me.id.into(),
            ],
        ))
        .await
        .map_err(|e| {
            if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                ApiError::Conflict(format!(
                    "version {version_label} of this product for {platform} exists already"
                ))
            } else {
                e.into()
            }
        })?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("INSERT … RETURNING gave no row")))?;
    let build = from_row(&row)?;
    tracing::info!(build.id = %build.id, product.id = %p.id, size_bytes = build.size_bytes, "build created");
    Ok(build)
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<Option<Build>> {
    db.query_one_raw(stmt(
        format!("SELECT {COLUMNS} FROM catalog.build WHERE id = $1"),
        [id.into()],
    ))
    .await?
    .map(|r| from_row(&r))
    .transpose()
}

/// Makes a `READY` build the current one of its (product, platform); the one before stays.
pub async fn set_current(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<Build> {
    let txn = state.db.begin().await?;
    let build = find(&txn, id).await?.ok_or(ApiError::NotFound("build"))?;
    managed_product(&txn, me, build.product_id, true).await?;
    if build.status != BuildStatus::Ready {
        return Err(ApiError::Conflict(
            "upload the build's file before making it current".into(),
        ));
    }
    txn.execute_raw(stmt(
        "UPDATE catalog.build SET is_current = false \
         WHERE product_id = $1 AND platform = $2 AND is_current AND id <> $3",
        [
            build.product_id.into(),
            build.platform.clone().into(),
            id.into(),
        ],
    ))
    .await?;
    let row = txn
        .query_one_raw(stmt(
            format!("UPDATE catalog.build SET is_current = true WHERE id = $1 RETURNING {COLUMNS}"),
            [id.into()],
        ))
        .await?
        .ok_or(ApiError::NotFound("build"))?;
    txn.commit().await?;
    tracing::info!(build.id = %id, product.id = %build.product_id, platform = %build.platform, "current build set");
    from_row(&row)
}

/// Every build of the products, newest first.
pub async fn of_products(db: &impl ConnectionTrait, products: &[Uuid]) -> ApiResult<Vec<Build>> {
    let rows = db
        .query_all_raw(stmt(
            format!(
                "SELECT {COLUMNS} FROM catalog.build WHERE product_id = ANY($1) \
                 ORDER BY created_at DESC, id DESC"
            ),
            [products.to_vec().into()],
        ))
        .await?;
    rows.iter().map(from_row).collect()
}

// ---------------------------------------------------------------------------------------------
// Upload

fn size_mismatch(expected: i64, got: u64, more: bool) -> ApiError {
    bad(
        "sizeBytes",
        if more {
            format!("the upload is larger than the announced {expected} bytes")
        } else {
            format!("the upload has {got} bytes, not the announced {expected}")
        },
    )
}

/// Streams the file of an `UPLOADING` build into the object store and makes the build `READY`.
///
/// `content_length` (when the client sent one) and `declared_sha256` (the `X-Content-SHA256`
/// header, hex) are checked against the announcement and the bytes. The build is reserved with a
/// lease for the upload (see [`receive`]; no connection is held while the bytes stream), so a
/// second concurrent upload of it is refused at once and a crash leaves it `UPLOADING`. The work runs on a task of its own: when the client goes away, the body ends
/// with an error there and the partial object is still removed.
pub async fn upload<S, E>(
    state: &AppState,
    me: &Principal,
    id: Uuid,
    content_length: Option<u64>,
    declared_sha256: Option<&str>,
    body: S,
) -> ApiResult<Build>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let checked = async {
        let declared = declared_sha256
            .map(|s| {
                parse_sha256(s).ok_or_else(|| {
                    bad(
                        "X-Content-SHA256",
                        "X-Content-SHA256 must be 64 hexadecimal digits",
                    )
                })
            })
            .transpose()?;
        let build = find(&state.db, id)
            .await?
            .ok_or(ApiError::NotFound("build"))?;
        managed_product(&state.db, me, build.product_id, false).await?;
        if build.status == BuildStatus::Ready {
            return Err(ApiError::Conflict(
                "this build is uploaded already; announce a new build instead".into(),
            ));
        }
        if let Some(n) = content_length
            && i64::try_from(n).ok() != Some(build.size_bytes)
        {
            return Err(size_mismatch(
                build.size_bytes,
                n,
                i64::try_from(n).map_or(true, |n| n > build.size_bytes),
            ));
        }
        Ok((build, declared))
    }
    .await;
    let mut body = body;
    let (build, declared) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            drain(&mut body).await;
            return Err(e);
        }
    };
    let state = state.clone();
    tokio::spawn(async move {
        let result = receive(&state, build, declared, &mut body).await;
        if result.is_err() {
            drain(&mut body).await;
        }
        result
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::anyhow!("the upload task failed: {e}")))?
}

/// Reads what is left of a refused upload's body (at most 64 MiB, for at most 10 s) before the
/// answer goes out: a connection closed with its request body unread makes a streaming proxy
/// (the gateway, `proxy_request_buffering off`) answer 502 instead of the refusal.
pub(crate) async fn drain<S, E>(body: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut left: u64 = 64 << 20;
    let reading = async {
        while let Some(Ok(chunk)) = body.next().await {
            left = left.saturating_sub(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), reading).await;
}

/// How long an upload's lease on its build lasts unless renewed, seconds.
const LEASE_SECS: i32 = 120;
/// How often a running upload renews its lease.
const LEASE_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Stops a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease `lease` of build `id` every [`LEASE_RENEW_EVERY`], each time in one short
/// statement, until aborted.
async fn renew_lease(state: AppState, id: Uuid, lease: Uuid) {
    loop {
        tokio::time::sleep(LEASE_RENEW_EVERY).await;
        let renewed = state
            .db
            .execute_raw(stmt(
                "UPDATE catalog.build \
                 SET upload_lease_until = now() + ($3::int * interval '1 second') \
                 WHERE id = $1 AND upload_lease = $2",
                [id.into(), lease.into(), LEASE_SECS.into()],
            ))
            .await;
        match renewed {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => {
                tracing::warn!(build.id = %id, "an upload lost its lease");
                return;
            }
            Err(e) => tracing::warn!(build.id = %id, error = %e, "renewing an upload lease"),
        }
    }
}

async fn release_lease(state: &AppState, id: Uuid, lease: Uuid) {
    let released = state
        .db
        .execute_raw(stmt(
            "UPDATE catalog.build SET upload_lease = NULL, upload_lease_until = NULL \
             WHERE id = $1 AND upload_lease = $2",
            [id.into(), lease.into()],
        ))
        .await;
    if let Err(e) = released {
        // The lease runs out by itself.
        tracing::warn!(build.id = %id, error = %e, "releasing an upload lease");
    }
}

/// Receives the bytes of `build`. No database connection is held while they stream: the
/// build is reserved with a lease (one short statement), the lease is renewed in short
/// statements while the transfer runs, and the build becomes `READY` (lease released) in one
/// statement at the end. A crash leaves the build `UPLOADING`, uploadable again once its lease
/// has run out.
async fn receive<S, E>(
    state: &AppState,
    build: Build,
    declared: Option<String>,
    body: S,
) -> ApiResult<Build>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let lease = domain::id::new_id();
    let taken = state
        .db
        .execute_raw(stmt(
            "UPDATE catalog.build \
             SET upload_lease = $2, upload_lease_until = now() + ($3::int * interval '1 second') \
             WHERE id = $1 AND status = 'UPLOADING' \
               AND (upload_lease IS NULL OR upload_lease_until < now())",
            [build.id.into(), lease.into(), LEASE_SECS.into()],
        ))
        .await?;
    if taken.rows_affected() != 1 {
        return Err(ApiError::Conflict(
            "another upload of this build is in progress (or it has just finished)".into(),
        ));
    }
    let renewing = AbortOnDrop(tokio::spawn(renew_lease(state.clone(), build.id, lease)));
    let path = ObjectPath::from(build.object_key());
    let started = std::time::Instant::now();
    let streamed = stream_to_store(state, &path, &build, declared.as_deref(), body).await;
    drop(renewing);
    let sha256 = match streamed {
        Ok(sha) => sha,
        Err(e) => {
            // Nothing of a refused upload stays: the staged parts are gone with the abort; an
            // object left by an earlier attempt whose last step failed goes too.
            if let Err(err) = state.objects.delete(&path).await
                && !matches!(err, object_store::Error::NotFound { .. })
            {
                tracing::warn!(build.id = %build.id, error = %err, "removing a refused upload");
            }
            release_lease(state, build.id, lease).await;
            tracing::info!(build.id = %build.id, error = %e, "build upload refused");
            return Err(e);
        }
    };
    let row = state
        .db
        .query_one_raw(stmt(
            format!(
                "UPDATE catalog.build SET status = 'READY', sha256 = $3, uploaded_at = now(), \
                 upload_lease = NULL, upload_lease_until = NULL \
                 WHERE id = $1 AND upload_lease = $2 AND status = 'UPLOADING' RETURNING {COLUMNS}"
            ),
            [build.id.into(), lease.into(), sha256.into()],
        ))
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "the upload took too long to be confirmed and another one took its place; send it again".into(),
            )
        })?;
    let ready = from_row(&row)?;
    tracing::info!(
        build.id = %ready.id,
        size_bytes = ready.size_bytes,
        duration_ms = started.elapsed().as_millis() as u64,
        "build uploaded"
    );
    Ok(ready)
}

/// Writes the body to `path` through a multipart upload; returns its SHA-256 (hex) when the
/// size and the declared checksum match, else aborts the upload.
async fn stream_to_store<S, E>(
    state: &AppState,
    path: &ObjectPath,
    build: &Build,
    declared: Option<&str>,
    mut body: S,
) -> ApiResult<String>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let store_error =
        |e: object_store::Error| ApiError::Internal(anyhow::anyhow!("object store: {e}"));
    let upload = state
        .objects
        .put_multipart(path)
        .await
        .map_err(store_error)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let expected = build.size_bytes;
    let outcome: ApiResult<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| bad("body", format!("the upload broke off: {e}")))?;
            received += chunk.len() as u64;
            if i64::try_from(received).map_or(true, |n| n > expected) {
                return Err(size_mismatch(expected, received, true));
            }
            hasher.update(&chunk);
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(store_error)?;
            writer.put(chunk);
        }
        if i64::try_from(received).ok() != Some(expected) {
            return Err(size_mismatch(expected, received, false));
        }
        Ok(())
    }
    .await;
    let sha256 = hex(&hasher.finalize());
    let outcome = outcome.and_then(|()| match declared {
        Some(d) if d != sha256 => Err(bad(
            "X-Content-SHA256",
            format!("the bytes have the SHA-256 {sha256}, not the one in X-Content-SHA256"),
        )),
        _ => Ok(()),
    });
    if let Err(e) = outcome {
        if let Err(err) = writer.abort().await {
            tracing::warn!(build.id = %build.id, error = %err, "aborting a multipart upload");
        }
        return Err(e);
    }
    writer.finish().await.map_err(store_error)?;
    Ok(sha256)
}

// ---------------------------------------------------------------------------------------------
// Downloads

/// A signed link to a build's file.
#[derive(Clone, Debug)]
pub struct DownloadLink {
    /// `/downloads/builds/…?md5=…&expires=…`, relative to the gateway.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub build: Build,
}

/// `md5` of an nginx `secure_link` URL: base64url (no padding) of
/// MD5("{expires}{uri} {secret}"), as `secure_link_md5 "$secure_link_expires$uri <secret>"`.
pub fn secure_link_md5(expires: i64, uri: &str, secret: &str) -> String {
    use md5::Digest as _;
    B64.encode(md5::Md5::digest(
        format!("{expires}{uri} {secret}").as_bytes(),
    ))
}

/// The caller's active entitlement of a product: (entitlement id, order id).
async fn entitlement(
    db: &impl ConnectionTrait,
    account: Uuid,
    product: Uuid,
) -> ApiResult<Option<(Uuid, Option<Uuid>)>> {
    let row = db
        .query_one_raw(stmt(
            "SELECT id, order_id FROM library.entitlement \
             WHERE account_id = $1 AND product_id = $2 AND revoked_at IS NULL \
             ORDER BY granted_at, id LIMIT 1",
            [account.into(), product.into()],
        ))
        .await?;
    row.map(|r| Ok((r.try_get("", "id")?, r.try_get("", "order_id")?)))
        .transpose()
}

/// A download link for an owner of the product: the given build, or the current one of the
/// platform. Records the download (the first per entitlement; later ones count).
pub async fn download_link(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    platform: &str,
    build_id: Option<Uuid>,
) -> ApiResult<DownloadLink> {
    let Some((entitlement_id, order_id)) = entitlement(&state.db, me.id, product_id).await? else {
        return Err(ApiError::Forbidden(
            "only owners of the product can download it",
        ));
    };
    let platform = platform.trim().to_lowercase();
    let row = state
        .db
        .query_one_raw(stmt(
            format!(
                "SELECT {COLUMNS} FROM catalog.build WHERE product_id = $1 AND platform = $2 \
                 AND status = 'READY' AND (CASE WHEN $3::uuid IS NULL THEN is_current ELSE id = $3 END)"
            ),
            [product_id.into(), platform.into(), build_id.into()],
        ))
        .await?
        .ok_or(ApiError::NotFound("build"))?;
    let build = from_row(&row)?;
    let Some(secret) = &state.config.builds.link_secret else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "DOWNLOAD_LINK_SECRET is not set: no download link can be signed"
        )));
    };
    // The refund gate of the order: the first link and a refund exclude each other.
    if let Some(order) = order_id
        && !crate::refund::first_download(&state.db, order).await?
    {
        return Err(ApiError::Conflict(
            "a refund or cancellation of this purchase is under way: it can no longer be downloaded"
                .into(),
        ));
    }
    state
        .db
        .execute_raw(stmt(
            "INSERT INTO catalog.download (entitlement_id, account_id, order_id, build_id) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (entitlement_id) DO UPDATE \
             SET links = catalog.download.links + 1, last_at = now()",
            [
                entitlement_id.into(),
                me.id.into(),
                order_id.into(),
                build.id.into(),
            ],
        ))
        .await?;
    let ttl = chrono::Duration::from_std(state.config.builds.link_ttl)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("DOWNLOAD_LINK_TTL_SECS: {e}")))?;
    let expires_at = Utc::now() + ttl;
    let uri = format!("{DOWNLOADS_PREFIX}{}", build.object_key());
    let md5 = secure_link_md5(expires_at.timestamp(), &uri, secret.expose_secret());
    tracing::info!(build.id = %build.id, entitlement.id = %entitlement_id, "download link made");
    Ok(DownloadLink {
        url: format!("{uri}?md5={md5}&expires={}", expires_at.timestamp()),
        expires_at,
        build,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_one_safe_segment() {
        for ok in ["game.tar.gz", "Setup_1.2-x64.exe", "a", &"x".repeat(128)] {
            assert_eq!(parse_file_name(ok).ok().as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "../etc",
            "a b",
            "a\"b",
            "ü.bin",
            "a#1",
            &"x".repeat(129),
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn version_labels_and_checksums() {
        assert_eq!(
            parse_version_label("  1.0.2 ").ok().as_deref(),
            Some("1.0.2")
        );
        assert!(parse_version_label("  ").is_err());
        assert!(parse_version_label(&"v".repeat(65)).is_err());
        let sha = "AB".repeat(32);
        assert_eq!(parse_sha256(&sha), Some("ab".repeat(32)));
        assert_eq!(parse_sha256("abc"), None);
        assert_eq!(parse_sha256(&"g".repeat(64)), None);
    }

    #[test]
    fn links_are_signed_as_nginx_checks_them() {
        // printf '%s' '2147483647/downloads/builds/game.bin secret' | openssl md5 -binary |
        //   openssl base64 | tr +/ -_ | tr -d =
        assert_eq!(
            secure_link_md5(2147483647, "/downloads/builds/game.bin", "secret"),
            "VY8MyaMmxl33aAFHgNB5lw"
        );
    }
}
