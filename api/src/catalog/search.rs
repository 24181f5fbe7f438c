//! The catalog's read side: one SQL statement per products page (keyset pagination on the sort
//! key and id, so a page never repeats or skips a product when others are inserted), one per
//! facet request.
//!
//! Text search: PostgreSQL full-text with weights (title A, tags and genres B, description C),
//! plus pg_trgm word similarity on the title and tags for typos ("wticher" finds "The Witcher").

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use domain::catalog::entity::product;
use domain::catalog::{EditionKind, ProductStatus};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Word similarity (pg_trgm) above which a title or tag matches a search text.
pub const TITLE_SIMILARITY: f64 = 0.35;
pub const TAG_SIMILARITY: f64 = 0.5;
/// Longest search text.
pub const MAX_TEXT: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
    Rating,
}

impl Sort {
    fn tag(self) -> &'static str {
        match self {
            Sort::Relevance => "rel",
            Sort::Newest => "new",
            Sort::PriceAsc => "pa",
            Sort::PriceDesc => "pd",
            Sort::Rating => "rat",
        }
    }

    fn ascending(self) -> bool {
        self == Sort::PriceAsc
    }
}

/// Which products a listing may show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Published products only.
    Public,
    /// Every product of one publisher (their own list).
    Publisher(Uuid),
    /// Every product, optionally of one status (admins).
    All(Option<ProductStatus>),
    /// Published products on an account's wishlist.
    Wishlist(Uuid),
}

#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub text: Option<String>,
    pub genre: Option<String>,
    pub platform: Option<String>,
    pub edition_kind: Option<EditionKind>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub publisher: Option<Uuid>,
}

/// Position after which the next page starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    sort: Sort,
    key: f64,
    id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        B64.encode(format!("{}|{}|{}", self.sort.tag(), self.key, self.id))
    }

    pub fn decode(s: &str, sort: Sort) -> ApiResult<Cursor> {
        let bad = |m: &str| ApiError::BadInput {
            field: "after",
            message: m.to_owned(),
        };
        let raw = B64
            .decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("the cursor is not valid"))?;
        let mut parts = raw.split('|');
        let (Some(tag), Some(key), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("the cursor is not valid"));
        };
        if tag != sort.tag() {
            return Err(bad("the cursor belongs to another sort order"));
        }
        Ok(Cursor {
            sort,
            key: key.parse().map_err(|_| bad("the cursor is not valid"))?,
            id: id.parse().map_err(|_| bad("the cursor is not valid"))?,
        })
    }
}

/// A page of products with each one's cursor.
pub struct Page {
    pub items: Vec<(product::Model, String)>,
    pub has_next: bool,
}

const COLUMNS: &str = "p.id, p.publisher_id, p.slug, p.title, p.description, p.genres, p.platforms, \
    p.tags, p.release_date, p.age_rating, p.cover_image, p.screenshots, p.system_requirements, \
    p.status, p.moderation_reason, p.moderated_by, p.price_from_minor, p.currency, p.rating_count, \
    p.rating_sum, p.published_at, p.created_at, p.updated_at";

/// Builds SQL with positional parameters.
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.values.push(v.into());
        format!("${}", self.values.len())
    }
}

/// Normalises the search text: trimmed, bounded, `None` when empty.
pub fn search_text(text: Option<&str>) -> ApiResult<Option<String>> {
    let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.chars().count() > MAX_TEXT {
        return Err(ApiError::BadInput {
            field: "text",
            message: format!("the search text must have at most {MAX_TEXT} characters"),
        });
    }
    Ok(Some(t.to_owned()))
}

fn where_clause(sql: &mut Sql, scope: &Scope, filter: &Filter, text: Option<&str>) -> Vec<String> {
    let mut conds = Vec::new();
    match scope {
        Scope::Public => conds.push("p.status = 'published'".to_owned()),
        Scope::Publisher(id) => {
            let b = sql.bind(*id);
            conds.push(format!("p.publisher_id = {b}"));
        }
        Scope::All(Some(status)) => {
            let b = sql.bind(status.as_str());
            conds.push(format!("p.status = {b}"));
        }
        Scope::All(None) => {}
        Scope::Wishlist(account) => {
            let b = sql.bind(*account);
            conds.push("p.status = 'published'".to_owned());
            conds.push(format!(
                "EXISTS (SELECT 1 FROM catalog.wishlist w WHERE w.product_id = p.id AND w.account_id = {b})"
            ));
        }
    }
    if let Some(t) = text {
        let q = sql.bind(t);
        let lower = sql.bind(t.to_lowercase());
        conds.push(format!(
            "(p.search @@ websearch_to_tsquery('english', {q}) \
             OR word_similarity({lower}, lower(p.title)) > {TITLE_SIMILARITY} \
             OR word_similarity({lower}, catalog.words(p.tags)) > {TAG_SIMILARITY})"
        ));
    }
    if let Some(g) = &filter.genre {
        let b = sql.bind(g.to_lowercase());
        conds.push(format!("{b} = ANY (p.genres)"));
    }
    if let Some(pl) = &filter.platform {
        let b = sql.bind(pl.to_lowercase());
        conds.push(format!("{b} = ANY (p.platforms)"));
    }
    if let Some(kind) = filter.edition_kind {
        let b = sql.bind(kind.as_str());
        conds.push(format!(
            "EXISTS (SELECT 1 FROM catalog.edition e WHERE e.product_id = p.id AND e.kind = {b})"
        ));
    }
    if let Some(min) = filter.min_price {
        let b = sql.bind(min);
        conds.push(format!("p.price_from_minor >= {b}"));
    }
    if let Some(max) = filter.max_price {
        let b = sql.bind(max);
        conds.push(format!("p.price_from_minor <= {b}"));
    }
    if let Some(publisher) = filter.publisher {
        let b = sql.bind(publisher);
        conds.push(format!("p.publisher_id = {b}"));
    }
    conds
}

/// One page of products.
pub async fn products(
    db: &impl ConnectionTrait,
    scope: &Scope,
    filter: &Filter,
    sort: Sort,
    first: u64,
    after: Option<&str>,
) -> ApiResult<Page> {
    if let (Some(min), Some(max)) = (filter.min_price, filter.max_price)
        && min > max
    {
        return Err(ApiError::BadInput {
            field: "minPrice",
            message: "the lowest price is above the highest".into(),
        });
    }
    if filter.min_price.is_some_and(|p| p < 0) || filter.max_price.is_some_and(|p| p < 0) {
        return Err(ApiError::BadInput {
            field: "minPrice",
            message: "prices are never negative".into(),
        });
    }
    let text = search_text(filter.text.as_deref())?;
    // Relevance without a search text ranks by newest.
    let sort = if sort == Sort::Relevance && text.is_none() {
        Sort::Newest
    } else {
        sort
    };
    let cursor = after.map(|a| Cursor::decode(a, sort)).transpose()?;
    let mut sql = Sql {
        text: String::new(),
        values: Vec::new(),
    };
    let key_expr = match sort {
        Sort::Relevance => {
            let q = sql.bind(text.clone().unwrap_or_default());
            let lower = sql.bind(text.clone().unwrap_or_default().to_lowercase());
            format!(
                "(ts_rank_cd(p.search, websearch_to_tsquery('english', {q}))::float8 \
                 + word_similarity({lower}, lower(p.title))::float8)"
            )
        }
        Sort::Newest => {
            "(extract(epoch FROM coalesce(p.published_at, p.created_at)) * 1000000)::float8"
                .to_owned()
        }
        Sort::PriceAsc | Sort::PriceDesc => "coalesce(p.price_from_minor, 0)::float8".to_owned(),
        Sort::Rating => "p.rating_avg".to_owned(),
    };
    let mut conds = where_clause(&mut sql, scope, filter, text.as_deref());
    let (cmp, dir) = if sort.ascending() {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some(c) = &cursor {
        let k = sql.bind(c.key);
        let i = sql.bind(c.id);
        conds.push(format!("({key_expr}, p.id) {cmp} ({k}::float8, {i}::uuid)"));
    }
    let where_sql = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let limit = sql.bind(i64::try_from(first + 1).unwrap_or(i64::MAX));
    sql.text = format!(
        "SELECT {COLUMNS}, {key_expr} AS sort_key FROM catalog.product p {where_sql} \
         ORDER BY sort_key {dir}, p.id {dir} LIMIT {limit}"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            sql.text,
            sql.values,
        ))
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let model = product::Model::from_query_result(row, "")?;
        let key: f64 = row.try_get("", "sort_key")?;
        let cursor = Cursor {
            sort,
            key,
            id: model.id,
        }
        .encode();
        items.push((model, cursor));
    }
    let has_next = items.len() as u64 > first;
    items.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    Ok(Page { items, has_next })
}

/// A facet value and how many published products have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FacetCount {
    pub value: String,
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facets {
    pub genres: Vec<FacetCount>,
    pub platforms: Vec<FacetCount>,
    pub tags: Vec<FacetCount>,
    pub edition_kinds: Vec<FacetCount>,
}

/// Counts of genres, platforms, tags (the 40 most used) and edition kinds over the published
/// products matching `filter`, in one statement.
pub async fn facets(db: &impl ConnectionTrait, filter: &Filter) -> ApiResult<Facets> {
    let text = search_text(filter.text.as_deref())?;
    let mut sql = Sql {
        text: String::new(),
        values: Vec::new(),
    };
    let conds = where_clause(&mut sql, &Scope::Public, filter, text.as_deref());
    let where_sql = format!("WHERE {}", conds.join(" AND "));
    sql.text = format!(
        "WITH m AS (SELECT p.id, p.genres, p.platforms, p.tags FROM catalog.product p {where_sql}) \
         SELECT 'genre' AS facet, v AS value, count(*) AS n FROM m, unnest(m.genres) v GROUP BY v \
         UNION ALL SELECT 'platform', v, count(*) FROM m, unnest(m.platforms) v GROUP BY v \
         UNION ALL (SELECT 'tag', v, count(*) FROM m, unnest(m.tags) v GROUP BY v ORDER BY count(*) DESC, v LIMIT 40) \
         UNION ALL SELECT 'kind', e.kind, count(DISTINCT e.product_id) FROM m JOIN catalog.edition e ON e.product_id = m.id GROUP BY e.kind"
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            sql.text,
            sql.values,
        ))
        .await?;
    let mut f = Facets::default();
    for row in rows {
        let facet: String = row.try_get("", "facet")?;
        let value: String = row.try_get("", "value")?;
        let count: i64 = row.try_get("", "n")?;
        let entry = FacetCount { value, count };
        match facet.as_str() {
            "genre" => f.genres.push(entry),
            "platform" => f.platforms.push(entry),
            "tag" => f.tags.push(entry),
            _ => f.edition_kinds.push(entry),
        }
    }
    for list in [
        &mut f.genres,
        &mut f.platforms,
        &mut f.tags,
        &mut f.edition_kinds,
    ] {
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_tied_to_their_sort() {
        let c = Cursor {
            sort: Sort::Rating,
            key: 4.333_333_333_333_333,
            id: Uuid::now_v7(),
        };
        let back = Cursor::decode(&c.encode(), Sort::Rating).expect("decodes");
        assert_eq!(back, c);
        assert!(Cursor::decode(&c.encode(), Sort::Newest).is_err());
        assert!(Cursor::decode("bm9wZQ", Sort::Rating).is_err());
        assert!(Cursor::decode("%%%", Sort::Rating).is_err());
    }
}
