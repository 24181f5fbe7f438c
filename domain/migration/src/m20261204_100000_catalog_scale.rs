use sea_orm_migration::prelude::*;

/// Catalog at scale (issue 19): every storefront read bounded by the page, not the catalog.
///
/// - Keyset indexes: one btree per storefront sort over the published products, on stored sort
///   keys (`listed_at` = `coalesce(published_at, created_at)`, `price_sort` =
///   `coalesce(price_from_minor, 0)`, `rating_avg`) and the id, so a page (and the page after a
///   cursor) is an index walk of `first + 1` rows; descending sorts walk it backwards. Filtered
///   pages walk the same index with a bounded budget (see `api::catalog::search`).
/// - `edition_kinds`: the kinds of a product's editions, kept on the product by a trigger on
///   `catalog.edition`, so the edition-kind filter and facet need no join.
/// - `catalog.facet_count`: genre, platform, tag and edition-kind counts of the published
///   products, kept by a statement trigger on `catalog.product` in the transaction of every
///   product write (bulk inserts included: one aggregate per statement). The unfiltered
///   `facets` query reads it instead of counting the catalog.
/// - `catalog.search_word`: the lexicon of title and tag words (trigram-indexed), kept by the
///   same trigger. A search word with a typo is expanded to the lexicon's closest words
///   ("frontir" → "frontier"), and the search runs on the full-text GIN indexes only.
/// - `title_search`: the full text of the title alone, with its GIN index, for the relevance
///   tiers of `api::catalog::search` (title words, corrected title words, any other match).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE catalog.product ADD COLUMN edition_kinds text[] NOT NULL DEFAULT '{}';
UPDATE catalog.product p SET edition_kinds = k.kinds
FROM (SELECT product_id, array_agg(DISTINCT kind ORDER BY kind) AS kinds
      FROM catalog.edition GROUP BY product_id) k
WHERE p.id = k.product_id;

-- Keyset walks of the storefront sorts. The sort keys are stored columns (not expressions), so
-- the index holds everything a walk compares and the budget probe of a filtered page is an
-- index-only scan. The old published_at index is not what listings order by.
ALTER TABLE catalog.product
    ADD COLUMN listed_at timestamptz GENERATED ALWAYS AS (coalesce(published_at, created_at)) STORED,
    ADD COLUMN price_sort bigint GENERATED ALWAYS AS (coalesce(price_from_minor, 0)) STORED,
    -- Relevance tiers: the words of the title alone (`search` has every field).
    ADD COLUMN title_search tsvector GENERATED ALWAYS AS (to_tsvector('english', title)) STORED;
DROP INDEX IF EXISTS catalog.product_published_idx;
CREATE INDEX product_listed_idx ON catalog.product (listed_at, id) WHERE status = 'published';
CREATE INDEX product_price_idx ON catalog.product (price_sort, id) WHERE status = 'published';
CREATE INDEX product_rating_idx ON catalog.product (rating_avg, id) WHERE status = 'published';
CREATE INDEX product_title_search_idx ON catalog.product USING gin (title_search);
-- Typos are now corrected through catalog.search_word; whole-title similarity is not used.
DROP INDEX IF EXISTS catalog.product_title_trgm_idx;

-- Facet values of one product (duplicates count, as the per-request count did).
CREATE FUNCTION catalog.facet_values(genres text[], platforms text[], tags text[], kinds text[])
    RETURNS TABLE (facet text, value text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT 'genre', v FROM unnest(genres) v
        UNION ALL SELECT 'platform', v FROM unnest(platforms) v
        UNION ALL SELECT 'tag', v FROM unnest(tags) v
        UNION ALL SELECT 'kind', v FROM unnest(kinds) v
    $$;

-- Words of a title and its tags that a misspelt search word may be corrected to.
CREATE FUNCTION catalog.lexicon(title text, tags text[]) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT DISTINCT w
        FROM unnest(tsvector_to_array(to_tsvector('simple', title || ' ' || catalog.words(tags)))) w
        WHERE length(w) BETWEEN 3 AND 40 AND w !~ '^[0-9]'
    $$;

CREATE TABLE catalog.facet_count (
    facet text NOT NULL CHECK (facet IN ('genre', 'platform', 'tag', 'kind')),
    value text NOT NULL,
    -- No CHECK (count >= 0): a check is tested on the row an upsert proposes (a negative delta)
    -- before the conflict turns it into an update.
    count bigint NOT NULL,
    PRIMARY KEY (facet, value)
);

CREATE TABLE catalog.search_word (word text PRIMARY KEY);
CREATE INDEX search_word_trgm_idx ON catalog.search_word USING gin (word gin_trgm_ops);

-- Applies a statement's change of the published products to the counts and the lexicon.
-- Rows are upserted in key order, so concurrent writers lock counts in the same order.
CREATE FUNCTION catalog.product_read_model() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO catalog.facet_count AS c (facet, value, count)
        SELECT f.facet, f.value, count(*)
        FROM new_rows r, catalog.facet_values(r.genres, r.platforms, r.tags, r.edition_kinds) f
        WHERE r.status = 'published'
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (facet, value) DO UPDATE SET count = c.count + excluded.count;
        INSERT INTO catalog.search_word (word)
        SELECT DISTINCT w FROM new_rows r, catalog.lexicon(r.title, r.tags) w ORDER BY 1
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO catalog.facet_count AS c (facet, value, count)
        SELECT facet, value, sum(n) FROM (
            SELECT f.facet, f.value, 1 AS n
            FROM new_rows r, catalog.facet_values(r.genres, r.platforms, r.tags, r.edition_kinds) f
            WHERE r.status = 'published'
            UNION ALL
            SELECT f.facet, f.value, -1
            FROM old_rows r, catalog.facet_values(r.genres, r.platforms, r.tags, r.edition_kinds) f
            WHERE r.status = 'published'
        ) d
        GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
        ON CONFLICT (facet, value) DO UPDATE SET count = c.count + excluded.count;
        INSERT INTO catalog.search_word (word)
        SELECT DISTINCT w
        FROM new_rows r JOIN old_rows o ON o.id = r.id, catalog.lexicon(r.title, r.tags) w
        WHERE r.title IS DISTINCT FROM o.title OR r.tags IS DISTINCT FROM o.tags
        ORDER BY 1
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO catalog.facet_count AS c (facet, value, count)
        SELECT f.facet, f.value, -count(*)
        FROM old_rows r, catalog.facet_values(r.genres, r.platforms, r.tags, r.edition_kinds) f
        WHERE r.status = 'published'
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (facet, value) DO UPDATE SET count = c.count + excluded.count;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER product_read_model_ins AFTER INSERT ON catalog.product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.product_read_model();
CREATE TRIGGER product_read_model_upd AFTER UPDATE ON catalog.product
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.product_read_model();
CREATE TRIGGER product_read_model_del AFTER DELETE ON catalog.product
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.product_read_model();

-- Keeps product.edition_kinds equal to the kinds of its editions (which fires the trigger above).
CREATE FUNCTION catalog.edition_kinds_sync() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE catalog.product p SET edition_kinds = k.kinds
        FROM (SELECT c.product_id,
                     coalesce((SELECT array_agg(DISTINCT e.kind ORDER BY e.kind)
                               FROM catalog.edition e WHERE e.product_id = c.product_id), '{}') AS kinds
              FROM (SELECT DISTINCT product_id FROM new_rows) c) k
        WHERE p.id = k.product_id AND p.edition_kinds IS DISTINCT FROM k.kinds;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE catalog.product p SET edition_kinds = k.kinds
        FROM (SELECT c.product_id,
                     coalesce((SELECT array_agg(DISTINCT e.kind ORDER BY e.kind)
                               FROM catalog.edition e WHERE e.product_id = c.product_id), '{}') AS kinds
              FROM (SELECT product_id FROM new_rows UNION SELECT product_id FROM old_rows) c) k
        WHERE p.id = k.product_id AND p.edition_kinds IS DISTINCT FROM k.kinds;
    ELSE
        UPDATE catalog.product p SET edition_kinds = k.kinds
        FROM (SELECT c.product_id,
                     coalesce((SELECT array_agg(DISTINCT e.kind ORDER BY e.kind)
                               FROM catalog.edition e WHERE e.product_id = c.product_id), '{}') AS kinds
              FROM (SELECT DISTINCT product_id FROM old_rows) c) k
        WHERE p.id = k.product_id AND p.edition_kinds IS DISTINCT FROM k.kinds;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER edition_kinds_ins AFTER INSERT ON catalog.edition
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.edition_kinds_sync();
CREATE TRIGGER edition_kinds_upd AFTER UPDATE ON catalog.edition
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.edition_kinds_sync();
CREATE TRIGGER edition_kinds_del AFTER DELETE ON catalog.edition
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.edition_kinds_sync();

-- The counts and the lexicon of the catalog as it is.
INSERT INTO catalog.facet_count (facet, value, count)
SELECT f.facet, f.value, count(*)
FROM catalog.product r, catalog.facet_values(r.genres, r.platforms, r.tags, r.edition_kinds) f
WHERE r.status = 'published'
GROUP BY 1, 2;
INSERT INTO catalog.search_word (word)
SELECT DISTINCT w FROM catalog.product r, catalog.lexicon(r.title, r.tags) w;
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS edition_kinds_ins ON catalog.edition;
DROP TRIGGER IF EXISTS edition_kinds_upd ON catalog.edition;
DROP TRIGGER IF EXISTS edition_kinds_del ON catalog.edition;
DROP TRIGGER IF EXISTS product_read_model_ins ON catalog.product;
DROP TRIGGER IF EXISTS product_read_model_upd ON catalog.product;
DROP TRIGGER IF EXISTS product_read_model_del ON catalog.product;
DROP FUNCTION IF EXISTS catalog.edition_kinds_sync();
DROP FUNCTION IF EXISTS catalog.product_read_model();
DROP TABLE IF EXISTS catalog.search_word;
DROP TABLE IF EXISTS catalog.facet_count;
DROP FUNCTION IF EXISTS catalog.lexicon(text, text[]);
DROP FUNCTION IF EXISTS catalog.facet_values(text[], text[], text[], text[]);
DROP INDEX IF EXISTS catalog.product_title_search_idx;
DROP INDEX IF EXISTS catalog.product_rating_idx;
DROP INDEX IF EXISTS catalog.product_price_idx;
DROP INDEX IF EXISTS catalog.product_listed_idx;
ALTER TABLE catalog.product
    DROP COLUMN IF EXISTS title_search, DROP COLUMN IF EXISTS price_sort, DROP COLUMN IF EXISTS listed_at;
CREATE INDEX IF NOT EXISTS product_title_trgm_idx ON catalog.product USING gin (lower(title) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS product_published_idx ON catalog.product (published_at DESC, id DESC) WHERE status = 'published';
ALTER TABLE catalog.product DROP COLUMN IF EXISTS edition_kinds;
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
