use sea_orm_migration::prelude::*;

/// Catalog at scale (issue 19), filtered listings: `catalog.facet_listing`, the storefront sort
/// keys of every published product once per genre, platform and edition kind it has, with one
/// btree per storefront sort on `(facet, value, sort key, product_id)`.
///
/// A listing filtered by a genre walked the whole catalog's sort index checking the genre on
/// each row; a genre that is a few percent of the catalog did not fill a page within the walk's
/// budget and fell back to sorting all of its matches, so the page grew with the catalog. Over
/// this table the same listing is a walk of `facet = 'genre' AND value = $1` in sort order after
/// the keyset cursor: `first + 1` index entries whatever the catalog's size (see
/// `api::catalog::search`).
///
/// The table is a projection of `catalog.product`, which stays the source of truth: a statement
/// trigger on the product rewrites a product's rows in the transaction of every write that
/// changes its status, genres, platforms, edition kinds or sort keys (prices and ratings are
/// columns of the product, edition kinds are kept on it by `edition_kinds_sync`), so a reader
/// never sees the two disagree. Only published products have rows (the storefront's scope).
#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
-- No foreign key to catalog.product: the trigger below deletes a product's rows with it, and a
-- key check per row would double the cost of a bulk insert of products.
CREATE TABLE catalog.facet_listing (
    product_id uuid NOT NULL,
    facet      text NOT NULL CHECK (facet IN ('genre', 'platform', 'kind')),
    value      text NOT NULL,
    -- Copies of the product's sort keys (catalog_scale: listed_at, price_sort, rating_avg).
    listed_at  timestamptz NOT NULL,
    price_sort bigint NOT NULL,
    rating_avg double precision NOT NULL,
    PRIMARY KEY (product_id, facet, value)
);
CREATE INDEX facet_listing_listed_idx ON catalog.facet_listing (facet, value, listed_at, product_id);
CREATE INDEX facet_listing_price_idx ON catalog.facet_listing (facet, value, price_sort, product_id);
CREATE INDEX facet_listing_rating_idx ON catalog.facet_listing (facet, value, rating_avg, product_id);

-- The (facet, value) pairs a product is listed under, each once.
CREATE FUNCTION catalog.listing_values(genres text[], platforms text[], kinds text[])
    RETURNS TABLE (facet text, value text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT 'genre', v FROM unnest(genres) v
        UNION SELECT 'platform', v FROM unnest(platforms) v
        UNION SELECT 'kind', v FROM unnest(kinds) v
    $$;

-- Applies a statement's product writes to the listing. An update rewrites only the products
-- whose listing changed (most updates are edits of text, which do not touch it). Rows are
-- inserted in key order, so concurrent writers take index locks in the same order.
CREATE FUNCTION catalog.facet_listing_sync() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO catalog.facet_listing
            (product_id, facet, value, listed_at, price_sort, rating_avg)
        SELECT n.id, f.facet, f.value, n.listed_at, n.price_sort, n.rating_avg
        FROM new_rows n, catalog.listing_values(n.genres, n.platforms, n.edition_kinds) f
        WHERE n.status = 'published'
        ORDER BY 1, 2, 3;
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM catalog.facet_listing l
        USING old_rows o LEFT JOIN new_rows n ON n.id = o.id
        WHERE l.product_id = o.id AND o.status = 'published'
          AND (n.id IS NULL
               OR (o.status, o.genres, o.platforms, o.edition_kinds, o.listed_at, o.price_sort, o.rating_avg)
                  IS DISTINCT FROM
                  (n.status, n.genres, n.platforms, n.edition_kinds, n.listed_at, n.price_sort, n.rating_avg));
        INSERT INTO catalog.facet_listing
            (product_id, facet, value, listed_at, price_sort, rating_avg)
        SELECT n.id, f.facet, f.value, n.listed_at, n.price_sort, n.rating_avg
        FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id,
             catalog.listing_values(n.genres, n.platforms, n.edition_kinds) f
        WHERE n.status = 'published'
          AND (o.id IS NULL OR o.status <> 'published'
               OR (o.genres, o.platforms, o.edition_kinds, o.listed_at, o.price_sort, o.rating_avg)
                  IS DISTINCT FROM
                  (n.genres, n.platforms, n.edition_kinds, n.listed_at, n.price_sort, n.rating_avg))
        ORDER BY 1, 2, 3;
    ELSE
        DELETE FROM catalog.facet_listing l
        USING old_rows o
        WHERE l.product_id = o.id AND o.status = 'published';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER facet_listing_ins AFTER INSERT ON catalog.product
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.facet_listing_sync();
CREATE TRIGGER facet_listing_upd AFTER UPDATE ON catalog.product
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.facet_listing_sync();
CREATE TRIGGER facet_listing_del AFTER DELETE ON catalog.product
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.facet_listing_sync();

-- The listing of the catalog as it is.
INSERT INTO catalog.facet_listing (product_id, facet, value, listed_at, price_sort, rating_avg)
SELECT p.id, f.facet, f.value, p.listed_at, p.price_sort, p.rating_avg
FROM catalog.product p, catalog.listing_values(p.genres, p.platforms, p.edition_kinds) f
WHERE p.status = 'published';
ANALYZE catalog.facet_listing;
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS facet_listing_ins ON catalog.product;
DROP TRIGGER IF EXISTS facet_listing_upd ON catalog.product;
DROP TRIGGER IF EXISTS facet_listing_del ON catalog.product;
DROP FUNCTION IF EXISTS catalog.facet_listing_sync();
DROP FUNCTION IF EXISTS catalog.listing_values(text[], text[], text[]);
DROP TABLE IF EXISTS catalog.facet_listing;
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
