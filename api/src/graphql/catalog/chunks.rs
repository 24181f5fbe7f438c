//! Chunked builds in GraphQL (issue 18): `missingChunks` and `createChunkedBuild` for
//! publishers (the chunks themselves go as `PUT /uploads/chunks/{product}/{id}`),
//! `chunkedDownload` and `chunkAccess` for owners (the chunks come from the gateway).

use async_graphql::{Context, InputObject, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use domain::catalog::manifest;
use uuid::Uuid;

use crate::catalog::chunks as service;
use crate::graphql::catalog::builds::Build;
use crate::graphql::guard::{RoleGuard, acting};
use crate::infra::error::ApiError;

/// A build's files and, for each, its chunks: what `store-cli` writes when it pushes and follows
/// when it installs (the JSON document `createChunkedBuild` takes has these field names).
#[derive(SimpleObject, Clone, Debug)]
pub struct Manifest {
    pub files: Vec<ManifestFile>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ManifestFile {
    /// Relative, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Permission bits (e.g. 420 = 0o644, 493 = 0o755).
    pub mode: u32,
    /// SHA-256 of the file (lowercase hex).
    pub sha256: String,
    pub chunks: Vec<ManifestChunk>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct ManifestChunk {
    /// SHA-256 of the chunk's uncompressed bytes (lowercase hex).
    pub id: String,
    pub offset: u64,
    pub size: u32,
}

impl From<manifest::Manifest> for Manifest {
    fn from(m: manifest::Manifest) -> Self {
        Manifest {
            files: m
                .files
                .into_iter()
                .map(|f| ManifestFile {
                    path: f.path,
                    size: f.size,
                    mode: f.mode,
                    sha256: f.sha256,
                    chunks: f
                        .chunks
                        .into_iter()
                        .map(|c| ManifestChunk {
                            id: c.id,
                            offset: c.offset,
                            size: c.size,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Signed, expiring access to every chunk of a product: `GET {baseUrl}{chunk id}?{query}`
/// through the store's address answers the chunk as stored, one zstd frame.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChunkAccess {
    /// `/downloads/chunks/{product}/`.
    pub base_url: String,
    /// `md5=…&expires=…`.
    pub query: String,
    pub expires_at: DateTime<Utc>,
}

impl From<service::ChunkAccess> for ChunkAccess {
    fn from(a: service::ChunkAccess) -> Self {
        ChunkAccess {
            base_url: a.base_url,
            query: a.query,
            expires_at: a.expires_at,
        }
    }
}

/// A chunked build to install: its manifest and where its chunks are.
#[derive(SimpleObject, Clone, Debug)]
pub struct ChunkedDownload {
    pub build: Build,
    pub manifest: Manifest,
    pub access: ChunkAccess,
}

#[derive(InputObject, Clone, Debug)]
pub struct CreateChunkedBuildInput {
    /// The id of the product the build is of.
    pub product_id: Uuid,
    /// One of the product's platforms.
    pub platform: String,
    /// Unique per product and platform, e.g. `1.4.2`.
    pub version_label: String,
    /// What changed in this build, shown to owners (optional).
    #[graphql(default)]
    pub release_notes: String,
    /// Name of the tar archive browsers download (letters, digits, `.`, `_`, `-`); by default
    /// `{slug}-{version}.tar`.
    pub file_name: Option<String>,
    /// Make it the platform's current build at once.
    #[graphql(default)]
    pub make_current: bool,
}

#[derive(Default)]
pub struct ChunkMutation;

#[Object]
impl ChunkMutation {
    /// Publisher (of the product) or admin: which of these chunk ids (SHA-256 of the
    /// uncompressed bytes, at most 4096) the product has not stored yet, each once. The stored
    /// ones are kept from garbage collection for its grace period, so a push can rely on them.
    /// Upload the missing ones with `PUT /uploads/chunks/{productId}/{id}` (a zstd frame).
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn missing_chunks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product the chunks belong to.")] product_id: Uuid,
        #[graphql(
            desc = "Chunk ids: the SHA-256 of each chunk's uncompressed bytes, in lowercase hex; at most 4096."
        )]
        ids: Vec<String>,
    ) -> async_graphql::Result<Vec<String>> {
        let (state, me) = acting(ctx)?;
        Ok(service::missing(state, me, product_id, ids).await?)
    }

    /// Publisher (of the product) or admin, on `/graphql/upload` (multipart): a `READY` build
    /// made of `manifest` (a JSON `Manifest` document: `{"files": [{"path", "size", "mode",
    /// "sha256", "chunks": [{"id", "offset", "size"}]}]}`) whose chunks are all stored.
    /// `BAD_USER_INPUT` (`extensions.field` says where) for an unsafe or duplicate path or a
    /// broken rule, `CHUNKS_MISSING` (`extensions.missing`) for chunks not uploaded yet,
    /// `CHECKSUM_MISMATCH` when a file's chunks do not make its `sha256`, `CONFLICT` for a
    /// version label the platform has. Nothing is written when it is refused.
    #[graphql(guard = "RoleGuard::publisher_or_admin()")]
    async fn create_chunked_build(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The product, platform and version label of the build, and its release notes."
        )]
        input: CreateChunkedBuildInput,
        #[graphql(
            desc = "The build's manifest: a JSON `Manifest` document sent as a file part of the multipart request."
        )]
        manifest: Upload,
    ) -> async_graphql::Result<Build> {
        let (state, me) = acting(ctx)?;
        let upload = manifest.value(ctx).map_err(|_| ApiError::BadInput {
            field: "manifest",
            message: "send the manifest as a file of the multipart request".to_owned(),
        })?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut upload.into_read(), &mut bytes).map_err(|e| {
            ApiError::BadInput {
                field: "manifest",
                message: format!("the manifest could not be read: {e}"),
            }
        })?;
        let input = service::NewChunkedBuild {
            product_id: input.product_id,
            platform: input.platform,
            version_label: input.version_label,
            release_notes: input.release_notes,
            file_name: input.file_name,
            make_current: input.make_current,
        };
        Ok(service::create_build(state, me, input, &bytes)
            .await?
            .into())
    }

    /// An owner of the product: a chunked build (the current one of the platform, or
    /// `buildId`), its manifest and a signed access to its chunks, valid for a few minutes
    /// (renew it with `chunkAccess`). Counts as a download, as `downloadLink` does; the same
    /// refusals (`FORBIDDEN`, `NOT_FOUND`, `CONFLICT`), and `CONFLICT` for a build that is one
    /// file.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn chunked_download(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of a product the caller owns.")] product_id: Uuid,
        #[graphql(
            desc = "The platform whose current build is wanted (one of the product's `platforms`)."
        )]
        platform: String,
        #[graphql(
            desc = "A particular `READY` chunked build of the product instead of the current one (optional)."
        )]
        build_id: Option<Uuid>,
    ) -> async_graphql::Result<ChunkedDownload> {
        let (state, me) = acting(ctx)?;
        let (build, manifest, access) =
            service::chunked_download(state, me, product_id, &platform, build_id).await?;
        Ok(ChunkedDownload {
            build: build.into(),
            manifest: manifest.into(),
            access: access.into(),
        })
    }

    /// An owner (or the publisher, or an admin): a new signed access to the product's chunks,
    /// when the one before expired. `FORBIDDEN` for anyone else.
    #[graphql(guard = "RoleGuard::signed_in()")]
    async fn chunk_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of the product whose chunks are to be read.")] product_id: Uuid,
    ) -> async_graphql::Result<ChunkAccess> {
        let (state, me) = acting(ctx)?;
        Ok(service::chunk_access(state, me, product_id).await?.into())
    }
}
