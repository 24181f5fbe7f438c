use sea_orm_migration::prelude::*;

/// Catalog (written by the api) and the inventory table of fulfillment (written by the
/// fulfillment participant; the api only reads it to show stock).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- array_to_string is only STABLE; for text[] it is immutable, which a generated column needs.
CREATE FUNCTION catalog.words(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$;

CREATE TABLE catalog.product (
    id                  uuid PRIMARY KEY,
    publisher_id        uuid NOT NULL REFERENCES identity.account (id),
    slug                text NOT NULL UNIQUE
                        CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 80),
    title               text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
    genres              text[] NOT NULL DEFAULT '{}',
    platforms           text[] NOT NULL DEFAULT '{}',
    tags                text[] NOT NULL DEFAULT '{}',
    release_date        date,
    age_rating          smallint CHECK (age_rating IN (3, 7, 12, 16, 18)),
    cover_image         text,
    screenshots         text[] NOT NULL DEFAULT '{}',
    system_requirements text NOT NULL DEFAULT '' CHECK (length(system_requirements) <= 5000),
    status              text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('draft', 'published', 'unlisted')),
    -- Set when an admin unlists the product; shown to its publisher.
    moderation_reason   text,
    moderated_by        uuid REFERENCES identity.account (id),
    price_from_minor    bigint,
    currency            text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    rating_count        integer NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    rating_sum          integer NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    rating_avg          double precision GENERATED ALWAYS AS
                        (CASE WHEN rating_count > 0 THEN rating_sum::double precision / rating_count ELSE 0 END) STORED,
    published_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    search              tsvector GENERATED ALWAYS AS (
                            setweight(to_tsvector('english', title), 'A') ||
                            setweight(to_tsvector('english', catalog.words(tags)), 'B') ||
                            setweight(to_tsvector('english', catalog.words(genres)), 'B') ||
                            setweight(to_tsvector('english', description), 'C')
                        ) STORED
);
CREATE INDEX product_search_idx ON catalog.product USING gin (search);
CREATE INDEX product_title_trgm_idx ON catalog.product USING gin (lower(title) gin_trgm_ops);
CREATE INDEX product_genres_idx ON catalog.product USING gin (genres);
CREATE INDEX product_platforms_idx ON catalog.product USING gin (platforms);
CREATE INDEX product_tags_idx ON catalog.product USING gin (tags);
CREATE INDEX product_publisher_idx ON catalog.product (publisher_id, id);
CREATE INDEX product_published_idx ON catalog.product (published_at DESC, id DESC) WHERE status = 'published';

CREATE TABLE catalog.edition (
    id           uuid PRIMARY KEY,
    product_id   uuid NOT NULL REFERENCES catalog.product (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('digital', 'physical')),
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    sku          text NOT NULL UNIQUE CHECK (sku ~ '^[A-Z0-9][A-Z0-9-]{1,39}$'),
    price_minor  bigint NOT NULL CHECK (price_minor BETWEEN 0 AND 100000000),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    weight_grams integer CHECK (weight_grams BETWEEN 1 AND 100000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'physical') = (weight_grams IS NOT NULL))
);
CREATE INDEX edition_product_idx ON catalog.edition (product_id, price_minor);

CREATE TABLE catalog.review (
    id         uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES catalog.product (id) ON DELETE CASCADE,
    author_id  uuid NOT NULL REFERENCES identity.account (id),
    rating     smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body       text NOT NULL DEFAULT '' CHECK (length(body) <= 5000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, author_id)
);
CREATE INDEX review_product_idx ON catalog.review (product_id, id DESC);

CREATE TABLE catalog.wishlist (
    account_id uuid NOT NULL REFERENCES identity.account (id),
    product_id uuid NOT NULL REFERENCES catalog.product (id) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, product_id)
);

-- Owned by the fulfillment participant (DESIGN §2); created here so the read side can show stock.
CREATE TABLE fulfillment.inventory (
    edition_id uuid PRIMARY KEY,
    on_hand    integer NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    version    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS fulfillment.inventory;
DROP TABLE IF EXISTS catalog.wishlist;
DROP TABLE IF EXISTS catalog.review;
DROP TABLE IF EXISTS catalog.edition;
DROP TABLE IF EXISTS catalog.product;
DROP FUNCTION IF EXISTS catalog.words(text[]);
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
