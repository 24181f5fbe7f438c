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
use domain::catalog::entity::{build, download, product};
use domain::identity::Role;
use domain::library::entity::entitlement;
use futures::{Stream, StreamExt as _};
use object_store::ObjectStoreExt as _;
use object_store::WriteMultipart;
use object_store::path::Path as ObjectPath;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::infra::auth::Principal;
use crate::infra::error::{ApiError, ApiResult};
use crate::infra::state::AppState;

/// URL prefix of signed downloads: nginx's `location ^~ /downloads/` serves the object store.
pub const DOWNLOADS_PREFIX: &str = "/downloads/";
/// URL prefix of the archives of chunked builds, assembled by the api from the chunks (the
/// gateway checks the signature, then passes the request to the api, which checks it again).
pub const ARCHIVES_PREFIX: &str = "/downloads/archives/";
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

/// What a build is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildKind {
    /// One uploaded file (`PUT /uploads/builds/{id}`), served as stored.
    File,
    /// A manifest of files cut into chunks (`store-cli push`); browsers get the files as one
    /// tar archive assembled on the fly.
    Chunked,
}

impl BuildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildKind::File => "FILE",
            BuildKind::Chunked => "CHUNKED",
        }
    }

    fn parse(s: &str) -> Option<BuildKind> {
        match s {
            "FILE" => Some(BuildKind::File),
            "CHUNKED" => Some(BuildKind::Chunked),
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
    /// The uploaded file's name; for a chunked build, its archive's.
    pub file_name: String,
    /// Announced by the publisher; what arrived once `READY`. For a chunked build, the size of
    /// its archive.
    pub size_bytes: i64,
    pub status: BuildStatus,
    pub kind: BuildKind,
    /// Lowercase hex, once `READY` (for a chunked build, of its archive).
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

/// A stored row as the api shows it (the upload lease stays inside this module).
impl TryFrom<build::Model> for Build {
    type Error = ApiError;

    fn try_from(m: build::Model) -> ApiResult<Build> {
        let status = BuildStatus::parse(&m.status).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("stored build status {}", m.status))
        })?;
        let kind = BuildKind::parse(&m.kind)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored build kind {}", m.kind)))?;
        Ok(Build {
            id: m.id,
            product_id: m.product_id,
            platform: m.platform,
            version_label: m.version_label,
            release_notes: m.release_notes,
            file_name: m.file_name,
            size_bytes: m.size_bytes,
            status,
            kind,
            sha256: m.sha256,
            is_current: m.is_current,
            created_by: m.created_by,
            created_at: m.created_at,
            uploaded_at: m.uploaded_at,
        })
    }
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

pub(crate) async fn managed_product(
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
    // `is_current` and `created_at` are the table's defaults (not current, now).
    let row = build::ActiveModel {
        id: Set(domain::id::new_id()),
        product_id: Set(p.id),
        platform: Set(platform.clone()),
        version_label: Set(version_label.clone()),
        release_notes: Set(release_notes),
        file_name: Set(file_name),
        size_bytes: Set(input.size_bytes),
        status: Set(BuildStatus::Uploading.as_str().to_owned()),
        created_by: Set(me.id),
        ..Default::default()
    }
    .insert(&state.db)
    .await
    .map_err(|e| {
        if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            ApiError::Conflict(format!(
                "version {version_label} of this product for {platform} exists already"
            ))
        } else {
            e.into()
        }
    })?;
    let build = Build::try_from(row)?;
    tracing::info!(build.id = %build.id, product.id = %p.id, size_bytes = build.size_bytes, "build created");
    Ok(build)
}

pub(crate) async fn find(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<Option<Build>> {
    build::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Build::try_from)
        .transpose()
}

/// Makes a `READY` build the current one of its (product, platform); the one before stays.
pub async fn set_current(state: &AppState, me: &Principal, id: Uuid) -> ApiResult<Build> {
    let txn = state.db.begin().await?;
    let build = find(&txn, id).await?.ok_or(ApiError::NotFound("build"))?;
    let product = managed_product(&txn, me, build.product_id, true).await?;
    if build.status != BuildStatus::Ready {
        return Err(ApiError::Conflict(
            "upload the build's file before making it current".into(),
        ));
    }
    let row = make_current(&txn, me, product.publisher_id, &build).await?;
    txn.commit().await?;
    state.wake_outbox();
    tracing::info!(build.id = %id, product.id = %build.product_id, platform = %build.platform, "current build set");
    Build::try_from(row)
}

/// Makes `build` the current one of its (product, platform) in `txn` (whose caller holds the
/// product's lock); the one before stays, not current. The participants (webhooks) hear of it
/// by the `BuildMadeCurrent` event written to the catalog's outbox in the same transaction,
/// which the relay publishes once it is committed (the caller wakes it after the commit): a
/// crash after the commit delays the event, never loses it.
pub(crate) async fn make_current(
    txn: &impl ConnectionTrait,
    me: &Principal,
    publisher_id: Uuid,
    build: &Build,
) -> ApiResult<build::Model> {
    let id = build.id;
    // The one before first: at most one build of a (product, platform) is current.
    build::Entity::update_many()
        .col_expr(build::Column::IsCurrent, Expr::value(false))
        .filter(build::Column::ProductId.eq(build.product_id))
        .filter(build::Column::Platform.eq(build.platform.clone()))
        .filter(build::Column::IsCurrent.eq(true))
        .filter(build::Column::Id.ne(id))
        .exec(txn)
        .await?;
    let row = build::Entity::update_many()
        .col_expr(build::Column::IsCurrent, Expr::value(true))
        .filter(build::Column::Id.eq(id))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("build"))?;
    let mut envelope = domain::messaging::Envelope::new(
        domain::catalog::BuildMadeCurrent {
            build_id: row.id,
            product_id: row.product_id,
            publisher_id,
            platform: row.platform.clone(),
            version_label: row.version_label.clone(),
        },
        row.product_id,
        Some(me.id),
    );
    envelope.trace = Some(domain::bus::new_traceparent());
    crate::catalog::outbox::write(txn, &envelope).await?;
    Ok(row)
}

/// Every build of the products, newest first.
pub async fn of_products(db: &impl ConnectionTrait, products: &[Uuid]) -> ApiResult<Vec<Build>> {
    build::Entity::find()
        .filter(build::Column::ProductId.is_in(products.iter().copied()))
        .order_by_desc(build::Column::CreatedAt)
        .order_by_desc(build::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Build::try_from)
        .collect()
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
pub async fn drain<S, E>(body: &mut S)
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

/// When a lease taken or renewed now runs out: the database's clock, as the checks of
/// `upload_lease_until < now()` read it.
fn lease_deadline() -> Expr {
    Expr::cust_with_values("now() + ($1::int * interval '1 second')", [LEASE_SECS])
}

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
        let renewed = build::Entity::update_many()
            .col_expr(build::Column::UploadLeaseUntil, lease_deadline())
            .filter(build::Column::Id.eq(id))
            .filter(build::Column::UploadLease.eq(lease))
            .exec(&state.db)
            .await;
        match renewed {
            Ok(r) if r.rows_affected == 1 => {}
            Ok(_) => {
                tracing::warn!(build.id = %id, "an upload lost its lease");
                return;
            }
            Err(e) => tracing::warn!(build.id = %id, error = %e, "renewing an upload lease"),
        }
    }
}

async fn release_lease(state: &AppState, id: Uuid, lease: Uuid) {
    let released = build::Entity::update_many()
        .set(build::ActiveModel {
            upload_lease: Set(None),
            upload_lease_until: Set(None),
            ..Default::default()
        })
        .filter(build::Column::Id.eq(id))
        .filter(build::Column::UploadLease.eq(lease))
        .exec(&state.db)
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
    // Taken only from no upload, or from one whose lease ran out.
    let taken = build::Entity::update_many()
        .col_expr(build::Column::UploadLease, Expr::value(lease))
        .col_expr(build::Column::UploadLeaseUntil, lease_deadline())
        .filter(build::Column::Id.eq(build.id))
        .filter(build::Column::Status.eq(BuildStatus::Uploading.as_str()))
        .filter(
            Condition::any()
                .add(build::Column::UploadLease.is_null())
                .add(
                    build::Column::UploadLeaseUntil
                        .into_expr()
                        .lt(Expr::current_timestamp()),
                ),
        )
        .exec(&state.db)
        .await?;
    if taken.rows_affected != 1 {
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
    // Only while the lease is still this upload's.
    let row = build::Entity::update_many()
        .set(build::ActiveModel {
            status: Set(BuildStatus::Ready.as_str().to_owned()),
            sha256: Set(Some(sha256)),
            upload_lease: Set(None),
            upload_lease_until: Set(None),
            ..Default::default()
        })
        .col_expr(build::Column::UploadedAt, Expr::current_timestamp())
        .filter(build::Column::Id.eq(build.id))
        .filter(build::Column::UploadLease.eq(lease))
        .filter(build::Column::Status.eq(BuildStatus::Uploading.as_str()))
        .exec_with_returning(&state.db)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::Conflict(
                "the upload took too long to be confirmed and another one took its place; send it again".into(),
            )
        })?;
    let ready = Build::try_from(row)?;
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
    // The oldest active one, should there be several.
    Ok(entitlement::Entity::find()
        .select_only()
        .column(entitlement::Column::Id)
        .column(entitlement::Column::OrderId)
        .filter(entitlement::Column::AccountId.eq(account))
        .filter(entitlement::Column::ProductId.eq(product))
        .filter(entitlement::Column::RevokedAt.is_null())
        .order_by_asc(entitlement::Column::GrantedAt)
        .order_by_asc(entitlement::Column::Id)
        .into_tuple()
        .one(db)
        .await?)
}

/// The build an owner of the product asks for (the given one, or the current one of the
/// platform; `READY` only), with the caller's entitlement: `FORBIDDEN` for a non-owner,
/// `NOT_FOUND` without such a build.
pub(crate) async fn owned_build(
    state: &AppState,
    me: &Principal,
    product_id: Uuid,
    platform: &str,
    build_id: Option<Uuid>,
) -> ApiResult<(Build, Uuid, Option<Uuid>)> {
    let Some((entitlement_id, order_id)) = entitlement(&state.db, me.id, product_id).await? else {
        return Err(ApiError::Forbidden(
            "only owners of the product can download it",
        ));
    };
    let platform = platform.trim().to_lowercase();
    let which = match build_id {
        Some(id) => build::Column::Id.eq(id),
        None => build::Column::IsCurrent.eq(true),
    };
    let row = build::Entity::find()
        .filter(build::Column::ProductId.eq(product_id))
        .filter(build::Column::Platform.eq(platform))
        .filter(build::Column::Status.eq(BuildStatus::Ready.as_str()))
        .filter(which)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("build"))?;
    Ok((Build::try_from(row)?, entitlement_id, order_id))
}

/// Whether the caller has an active entitlement of the product.
pub(crate) async fn owns(state: &AppState, me: &Principal, product_id: Uuid) -> ApiResult<bool> {
    Ok(entitlement(&state.db, me.id, product_id).await?.is_some())
}

/// The download secret, or an internal error when the store has none.
pub(crate) fn link_secret(state: &AppState) -> ApiResult<&secrecy::SecretString> {
    state.config.builds.link_secret.as_ref().ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "DOWNLOAD_LINK_SECRET is not set: no download link can be signed"
        ))
    })
}

/// When a link made now expires.
pub(crate) fn link_expiry(state: &AppState) -> ApiResult<DateTime<Utc>> {
    let ttl = chrono::Duration::from_std(state.config.builds.link_ttl)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("DOWNLOAD_LINK_TTL_SECS: {e}")))?;
    Ok(Utc::now() + ttl)
}

/// Records that `build` is being downloaded under the entitlement: passes the order's refund
/// gate (the first link and a refund exclude each other), then makes the entitlement's first
/// download row or counts one more link on it.
pub(crate) async fn record_download(
    state: &AppState,
    me: &Principal,
    entitlement_id: Uuid,
    order_id: Option<Uuid>,
    build_id: Uuid,
) -> ApiResult<()> {
    if let Some(order) = order_id
        && !crate::refund::first_download(&state.db, order).await?
    {
        return Err(ApiError::Conflict(
            "a refund or cancellation of this purchase is under way: it can no longer be downloaded"
                .into(),
        ));
    }
    download::Entity::insert(download::ActiveModel {
        entitlement_id: Set(entitlement_id),
        account_id: Set(me.id),
        order_id: Set(order_id),
        build_id: Set(build_id),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(download::Column::EntitlementId)
            .value(
                download::Column::Links,
                Expr::col((download::Entity, download::Column::Links)).add(1),
            )
            .value(download::Column::LastAt, Expr::current_timestamp())
            .to_owned(),
    )
    .exec_without_returning(&state.db)
    .await?;
    Ok(())
}

/// The path a download link of `build` points to: the stored file of a `FILE` build, the
/// archive the api assembles for a `CHUNKED` one.
pub fn download_path(build: &Build) -> String {
    match build.kind {
        BuildKind::File => format!("{DOWNLOADS_PREFIX}{}", build.object_key()),
        BuildKind::Chunked => format!(
            "{ARCHIVES_PREFIX}{}/{}/{}",
            build.product_id, build.id, build.file_name
        ),
    }
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
    let (build, entitlement_id, order_id) =
        owned_build(state, me, product_id, platform, build_id).await?;
    let secret = link_secret(state)?;
    record_download(state, me, entitlement_id, order_id, build.id).await?;
    let expires_at = link_expiry(state)?;
    let uri = download_path(&build);
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
