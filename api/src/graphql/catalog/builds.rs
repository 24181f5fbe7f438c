//! Builds and downloads in GraphQL: `createBuild`, `setCurrentBuild`, `downloadLink`, and the
//! `Product.builds` / `LibraryItem.currentBuilds` fields (resolved here, declared on their types).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::catalog::entity::product;
use serde::Serialize;
use uuid::Uuid;

use crate::catalog::builds::{self as service, BuildKind, BuildStatus};
use crate::graphql::guard::{RoleGuard, acting, catalog_viewer};
use crate::graphql::loaders::{loader_error, loaders};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[graphql(name = "BuildStatus")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatusGql {
    /// Announced; its file is not (completely) uploaded yet.
    Uploading,
    /// The file is stored and checked; owners can download it.
    Ready,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[graphql(name = "BuildKind")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildKindGql {
    /// One uploaded file, downloaded as it was uploaded.
    File,
    /// Files cut into chunks (`store-cli push`): `store-cli` installs and updates it chunk by
    /// chunk (`chunkedDownload`); `downloadLink` gives its files as one tar archive.
    Chunked,
}

/// A downloadable file of a product for one platform (an installer, an archive).
///
/// Also the JSON answer of `PUT /uploads/builds/{id}` (same field names).
#[derive(SimpleObject, Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub id: Uuid,
    pub product_id: Uuid,
    pub platform: String,
    pub version_label: String,
    /// Markdown.
    pub release_notes: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub status: BuildStatusGql,
    pub kind: BuildKindGql,
    /// SHA-256 of the file (lowercase hex), once it is uploaded; of the tar archive for a
    /// `CHUNKED` build.
    pub sha256: Option<String>,
    /// Whether owners get this build of its platform by default (one per product and platform).
    pub is_current: bool,
    pub created_at: DateTime<Utc>,
    pub uploaded_at: Option<DateTime<Utc>>,
    /// Where to `PUT` the file while the build is `UPLOADING` (raw body, exactly `sizeBytes`
    /// bytes, optional `X-Content-SHA256`); `null` once it is `READY`.
    pub upload_path: Option<String>,
}

impl From<service::Build> for Build {
    fn from(b: service::Build) -> Self {
        Build {
            upload_path: (b.status == BuildStatus::Uploading).then(|| b.upload_path()),
            status: match b.status {
                BuildStatus::Uploading => BuildStatusGql::Uploading,
                BuildStatus::Ready => BuildStatusGql::Ready,
            },
            kind: match b.kind {
                BuildKind::File => BuildKindGql::File,
                BuildKind::Chunked => BuildKindGql::Chunked,
            },
            id: b.id,
            product_id: b.product_id,
            platform: b.platform,
            version_label: b.version_label,
            release_notes: b.release_notes,
            file_name: b.file_name,
            size_bytes: b.size_bytes,
            sha256: b.sha256,
            is_current: b.is_current,
            created_at: b.created_at,
            uploaded_at: b.uploaded_at,
        }
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateBuildInput {
    /// The id of the product the build is of.
    pub product_id: Uuid,
    /// One of the product's platforms.
    pub platform: String,
    /// Unique per product and platform, e.g. `1.4.2`.
    pub version_label: String,
    /// What changed in this build, shown to owners (optional).
    #[graphql(default)]
    pub release_notes: String,
    /// Name the file is downloaded under: letters, digits, `.`, `_`, `-` (up to 128).
    pub file_name: String,
    /// Exact size of the file that will be uploaded (at most the store's MAX_BUILD_BYTES).
    pub size_bytes: i64,
}

/// A signed, short-lived link to a build's file (resumable: range requests are served).
#[derive(SimpleObject, Clone, Debug)]
pub struct DownloadLink {
    /// Relative to the store's address: `/downloads/…?md5=…&expires=…`.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub file_name: String,
    pub size_bytes: i64,
    /// SHA-256 of the file (lowercase hex), to check the download.
    pub sha256: String,
    pub build: Build,
}

async fn load(ctx: &Context<'_>, product: Uuid) -> async_graphql::Result<Vec<service::Build>> {
    Ok(loaders(ctx)?
        .builds
        .load_one(product)
        .await
        .map_err(loader_error)?
        .unwrap_or_default())
}

/// `Product.builds`: every build for its publisher and admins, the `READY` ones for the rest.
pub async fn product_builds(
    ctx: &Context<'_>,
    product: &product::Model,
    platform: Option<String>,
) -> async_graphql::Result<Vec<Build>> {
    let manager = catalog_viewer(ctx).is_some_and(|me| service::may_manage(me, product));
    let platform = platform.map(|p| p.trim().to_lowercase());
    Ok(load(ctx, product.id)
        .await?
        .into_iter()
        .filter(|b| manager || b.status == BuildStatus::Ready)
        .filter(|b| platform.as_ref().is_none_or(|p| *p == b.platform))
        .map(Build::from)
        .collect())
}

/// `LibraryItem.currentBuilds`: the current build of each platform, by platform.
pub async fn current_builds(ctx: &Context<'_>, product: Uuid) -> async_graphql::Result<Vec<Build>> {
    let mut current: Vec<Build> = load(ctx, product)
        .await?
        .into_iter()
        .filter(|b| b.is_current)
        .map(Build::from)
        .collect();
    current.sort_by(|a, b| a.platform.cmp(&b.platform));
    Ok(current)
}

#[derive(Default)]
pub struct BuildMutation;

#[Object]
impl BuildMutation {
    /// Publisher (of the product) or admin: announces a build; then `PUT` its file to the
    /// build's `uploadPath`. A version label is unique per product and platform (`CONFLICT`).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn create_build(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The product, platform, version label, file name, size and (optional) SHA-256 of the build."
        )]
        input: CreateBuildInput,
    ) -> async_graphql::Result<Build> {
        let (state, me) = acting(ctx)?;
        let input = service::NewBuild {
            product_id: input.product_id,
            platform: input.platform,
            version_label: input.version_label,
            release_notes: input.release_notes,
            file_name: input.file_name,
            size_bytes: input.size_bytes,
        };
        Ok(service::create(state, me, input).await?.into())
    }

    /// Publisher (of the product) or admin: makes a `READY` build the one owners get for its
    /// platform. Older builds stay; making one of them current again is a rollback.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn set_current_build(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a `READY` build to make current for its platform.")]
        build_id: Uuid,
    ) -> async_graphql::Result<Build> {
        let (state, me) = acting(ctx)?;
        Ok(service::set_current(state, me, build_id).await?.into())
    }

    /// An owner of the product: a signed link, valid for a few minutes, to the current build of
    /// the platform (or to `buildId`, any `READY` build of it). `FORBIDDEN` without an active
    /// entitlement, `NOT_FOUND` without such a build, `CONFLICT` while a refund or a
    /// cancellation of the purchase is under way. Counts as a download of the purchase (which
    /// then leaves the no-questions refund).
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn download_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a product the caller owns.")] product_id: Uuid,
        #[graphql(
            desc = "The platform whose current build is wanted (one of the product's `platforms`)."
        )]
        platform: String,
        #[graphql(
            desc = "A particular `READY` build of the product instead of the current one (optional)."
        )]
        build_id: Option<Uuid>,
    ) -> async_graphql::Result<DownloadLink> {
        let (state, me) = acting(ctx)?;
        let link = service::download_link(state, me, product_id, &platform, build_id).await?;
        Ok(DownloadLink {
            url: link.url,
            expires_at: link.expires_at,
            file_name: link.build.file_name.clone(),
            size_bytes: link.build.size_bytes,
            sha256: link.build.sha256.clone().unwrap_or_default(),
            build: link.build.into(),
        })
    }
}
