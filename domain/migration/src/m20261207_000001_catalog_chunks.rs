use sea_orm_migration::prelude::*;

/// catalog (api): chunked builds (issue 18). A build is either one uploaded file (`FILE`, as
/// before) or a manifest of files cut into content-defined chunks (`CHUNKED`). Chunks are stored
/// once per product (zstd-compressed, object `chunks/{product}/{id}`) and shared by its builds;
/// `build_file` and `build_chunk` are the manifest, and `build_chunk`'s foreign key keeps a
/// referenced chunk from being collected. `touched_at` is when a push last uploaded or claimed
/// the chunk: the garbage collection spares unreferenced chunks younger than its grace period.
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE catalog.build ADD COLUMN kind text NOT NULL DEFAULT 'FILE'
    CHECK (kind IN ('FILE', 'CHUNKED'));

CREATE TABLE catalog.chunk (
    product_id   uuid NOT NULL REFERENCES catalog.product (id),
    -- SHA-256 of the uncompressed bytes.
    id           text NOT NULL CHECK (id ~ '^[0-9a-f]{64}$'),
    size_bytes   integer NOT NULL CHECK (size_bytes BETWEEN 1 AND 4194304),
    -- What the object store holds (zstd).
    stored_bytes integer NOT NULL CHECK (stored_bytes > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    touched_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, id)
);
CREATE INDEX chunk_touched_idx ON catalog.chunk (touched_at);

CREATE TABLE catalog.build_file (
    build_id   uuid NOT NULL REFERENCES catalog.build (id) ON DELETE CASCADE,
    position   integer NOT NULL CHECK (position >= 0),
    path       text NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    mode       integer NOT NULL CHECK (mode BETWEEN 0 AND 511),
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (build_id, position),
    UNIQUE (build_id, path)
);

CREATE TABLE catalog.build_chunk (
    build_id     uuid NOT NULL,
    position     integer NOT NULL,
    seq          integer NOT NULL CHECK (seq >= 0),
    product_id   uuid NOT NULL,
    chunk_id     text NOT NULL,
    offset_bytes bigint NOT NULL CHECK (offset_bytes >= 0),
    size_bytes   integer NOT NULL CHECK (size_bytes > 0),
    PRIMARY KEY (build_id, position, seq),
    FOREIGN KEY (build_id, position) REFERENCES catalog.build_file (build_id, position) ON DELETE CASCADE,
    FOREIGN KEY (product_id, chunk_id) REFERENCES catalog.chunk (product_id, id)
);
CREATE INDEX build_chunk_chunk_idx ON catalog.build_chunk (product_id, chunk_id);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS catalog.build_chunk;
DROP TABLE IF EXISTS catalog.build_file;
DROP TABLE IF EXISTS catalog.chunk;
ALTER TABLE catalog.build DROP COLUMN IF EXISTS kind;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
