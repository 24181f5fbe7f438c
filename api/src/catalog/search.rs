//! The catalog's read side, bounded by the page rather than by the catalog (issue 19).
//!
//! **Listings** are keyset pages (`(sort key, id)` after the cursor), so a page never repeats or
//! skips a product when others are inserted. On the storefront (published products) each sort
//! walks its own btree in sort order (`product_listed_idx`, `product_price_idx`,
//! `product_rating_idx`, see the `catalog_scale` migration): an unfiltered page reads
//! `first + 1` index entries whatever the size of the catalog.
//!
//! A page filtered by a genre, a platform or an edition kind walks that facet's rows of
//! `catalog.facet_listing` instead (migration `catalog_facet_listing`): the sort keys of every
//! published product once per genre, platform and kind it has, with a btree per sort on
//! `(facet, value, sort key, product_id)`, kept by a trigger in the transaction of every product
//! write. So "strategy, cheapest first" is `facet = 'genre' AND value = 'strategy'` in price
//! order after the cursor, joined to `first + 1` products: bounded by the page however small a
//! share of the catalog the genre is. (Walking the catalog's sort index checking the genre on
//! each row was not: a genre of a few percent did not fill a page within the walk's budget and
//! fell back to sorting all of its thousands of matches. Partial indexes per genre and sort
//! would be dozens, and a new genre would need a migration; a GIN index has no order.) With
//! several facets the genre is walked, else the platform, else the edition kind: the kind of
//! facet with the most values, so the rarest on average.
//!
//! Any other filter (price range, publisher, search text, a second facet) is checked on the
//! walked rows, of the facet's listing or of the sort index, but at most [`WALK_BUDGET`] rows
//! of them: when the filter is that rare, the rest of the page comes from the filters' own
//! indexes (GIN) over the products past the walked stretch, sorted; that set is small because
//! the walk just showed the filter to be rare. So no plan, whatever the planner estimates,
//! reads the whole catalog for a page.
//!
//! **Search** runs on full-text GIN indexes only. A search word that is not a word of any title
//! or tag is corrected to the closest such words (pg_trgm similarity over the lexicon
//! `catalog.search_word`, kept by a trigger): "frontir" also searches "frontier". Relevance is
//! a ranking in tiers, newest first within a tier: (3) the title has every word, (2) it has
//! them once corrected, (1) the words are elsewhere (tags, genres, description). Each tier is
//! a keyset walk as above; the cursor carries the tier. This replaces a score computed for
//! every match (`ts_rank_cd` + trigram similarity over the whole catalog), which is what made
//! a search grow with the catalog.
//!
//! **Facets** without a filter are read from `catalog.facet_count`, kept in the transaction
//! of every product write by a trigger; with a filter they are counted over the matches.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use domain::catalog::entity::product;
use domain::catalog::{EditionKind, ProductStatus};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
use uuid::Uuid;

use crate::infra::error::{ApiError, ApiResult};

/// Longest search text.
pub const MAX_TEXT: usize = 100;
/// pg_trgm similarity from which a lexicon word counts as a correction of a search word.
pub const CORRECTION_SIMILARITY: f64 = 0.3;
/// Corrections tried per search word, closest first.
const CORRECTIONS_PER_WORD: i64 = 3;
/// Search words looked up for corrections.
const MAX_WORDS: usize = 8;
/// Rows of its sort index a filtered page walks before it takes the rest of its matches from
/// the filter's own index: a filter matching fewer than one row in `WALK_BUDGET / first` is
/// answered from its index, anything denser by the walk.
pub const WALK_BUDGET: u64 = 1000;

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

    /// The stored sort key a listing walks (relevance tiers are newest first), a column of
    /// both `catalog.product` and `catalog.facet_listing`; the key as the float8 a cursor
    /// carries, and the values below and above every key.
    fn key(self) -> SortKey {
        match self {
            Sort::Relevance | Sort::Newest => SortKey {
                name: "listed_at",
                as_float: "(extract(epoch FROM p.listed_at) * 1000000)::float8",
                lowest: "'-infinity'::timestamptz",
                highest: "'infinity'::timestamptz",
            },
            Sort::PriceAsc | Sort::PriceDesc => SortKey {
                name: "price_sort",
                as_float: "p.price_sort::float8",
                lowest: "(-9223372036854775807 - 1)::bigint",
                highest: "9223372036854775807::bigint",
            },
            Sort::Rating => SortKey {
                name: "rating_avg",
                as_float: "p.rating_avg",
                lowest: "'-infinity'::float8",
                highest: "'infinity'::float8",
            },
        }
    }

    /// Binds a cursor's key as the type of the sort column (exact: epoch microseconds and
    /// prices fit a float8's 53 bits).
    fn bind_key(self, sql: &mut Sql, key: f64) -> ApiResult<String> {
        let bad = || ApiError::BadInput {
            field: "after",
            message: "the cursor is not valid".into(),
        };
        if !key.is_finite() {
            return Err(bad());
        }
        Ok(match self {
            Sort::Relevance | Sort::Newest => {
                let at: DateTime<Utc> =
                    DateTime::from_timestamp_micros(key as i64).ok_or_else(bad)?;
                format!("{}::timestamptz", sql.bind(at))
            }
            Sort::PriceAsc | Sort::PriceDesc => format!("{}::bigint", sql.bind(key as i64)),
            Sort::Rating => format!("{}::float8", sql.bind(key)),
        })
    }
}

struct SortKey {
    name: &'static str,
    as_float: &'static str,
    lowest: &'static str,
    highest: &'static str,
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
    /// Only products with an edition on sale now (as the listing follows discounts).
    pub on_sale: bool,
    /// Text the title contains, case-insensitively (a publisher finding their own products as
    /// they type: part of a word matches, unlike the full-text search).
    pub title_contains: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.text.is_none()
            && self.title_contains.is_none()
            && self.genre.is_none()
            && self.platform.is_none()
            && self.edition_kind.is_none()
            && self.min_price.is_none()
            && self.max_price.is_none()
            && self.publisher.is_none()
            && !self.on_sale
    }
}

/// Position after which the next page starts. Relevance cursors also carry their tier.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    sort: Sort,
    tier: u8,
    key: f64,
    id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let tag = if self.sort == Sort::Relevance {
            format!("{}{}", self.sort.tag(), self.tier)
        } else {
            self.sort.tag().to_owned()
        };
        B64.encode(format!("{tag}|{}|{}", self.key, self.id))
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
        let tier = match tag.strip_prefix(sort.tag()) {
            Some("") if sort != Sort::Relevance => 0,
            Some(t @ ("1" | "2" | "3")) if sort == Sort::Relevance => {
                t.parse().map_err(|_| bad("the cursor is not valid"))?
            }
            _ => return Err(bad("the cursor belongs to another sort order")),
        };
        Ok(Cursor {
            sort,
            tier,
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
    p.rating_sum, p.published_at, p.created_at, p.updated_at, p.list_price_from_minor, \
    p.sale_percent, p.sale_ends_at";

/// Builds SQL with positional parameters.
#[derive(Default)]
struct Sql {
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

/// A search text and, when some of its words are not words of the catalog's titles and tags,
/// the same words with their corrections (a `to_tsquery` text: `(frontir | frontier) & …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextQuery {
    pub text: String,
    pub corrected: Option<String>,
}

/// Lower-case words of a search text (letters and digits; everything else separates).
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.iter().any(|o| o == w) && out.len() < MAX_WORDS {
            out.push(w.to_owned());
        }
    }
    out
}

/// Looks up corrections of the words of `text` in the lexicon (one statement, trigram index).
pub async fn correct(db: &impl ConnectionTrait, text: &str) -> ApiResult<TextQuery> {
    let words = words(text);
    let lookup: Vec<Value> = words
        .iter()
        .filter(|w| w.chars().count() >= 3 && !w.starts_with(|c: char| c.is_ascii_digit()))
        .map(|w| Value::String(Some(w.clone())))
        .collect();
    let plain = TextQuery {
        text: text.to_owned(),
        corrected: None,
    };
    if lookup.is_empty() {
        return Ok(plain);
    }
    // A word of the lexicon is taken as spelt right; the others get their closest words.
    // Raw: trigram matching (`%`, `similarity`) per word, over unnest + LATERAL.
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT q.w, s.word FROM unnest($1::text[]) q(w) \
             CROSS JOIN LATERAL (SELECT word FROM catalog.search_word \
                 WHERE word % q.w AND similarity(word, q.w) >= $2 \
                   AND NOT EXISTS (SELECT 1 FROM catalog.search_word x WHERE x.word = q.w) \
                 ORDER BY similarity(word, q.w) DESC, word LIMIT $3) s",
            [
                Value::Array(
                    sea_orm::sea_query::ArrayType::String,
                    Some(Box::new(lookup)),
                ),
                CORRECTION_SIMILARITY.into(),
                CORRECTIONS_PER_WORD.into(),
            ],
        ))
        .await?;
    if rows.is_empty() {
        return Ok(plain);
    }
    let mut groups: Vec<Vec<String>> = words.iter().map(|w| vec![w.clone()]).collect();
    for row in rows {
        let w: String = row.try_get("", "w")?;
        let word: String = row.try_get("", "word")?;
        // Lexicon words come from to_tsvector: plain tokens; keep only letters and digits so
        // the to_tsquery text stays well-formed whatever they are.
        if word.chars().all(char::is_alphanumeric)
            && let Some(g) = words.iter().position(|x| *x == w)
            && let Some(group) = groups.get_mut(g)
        {
            group.push(word);
        }
    }
    let corrected = groups
        .iter()
        .map(|g| format!("({})", g.join(" | ")))
        .collect::<Vec<_>>()
        .join(" & ");
    Ok(TextQuery {
        text: text.to_owned(),
        corrected: Some(corrected),
    })
}

/// The tsquery of the text, with its corrections when it has some.
fn any_words(sql: &mut Sql, q: &TextQuery) -> String {
    let t = sql.bind(q.text.clone());
    match &q.corrected {
        Some(c) => {
            let c = sql.bind(c.clone());
            format!("(websearch_to_tsquery('english', {t}) || to_tsquery('english', {c}))")
        }
        None => format!("websearch_to_tsquery('english', {t})"),
    }
}

/// The scope's conditions (the part a storefront index is partial on).
fn scope_conds(sql: &mut Sql, scope: &Scope) -> Vec<String> {
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
    conds
}

/// One condition of a filter.
struct Cond {
    sql: String,
    /// For a genre, platform or edition kind: the facet and its value (a bound parameter),
    /// whose products `catalog.facet_listing` lists in every storefront order.
    listed: Option<(&'static str, String)>,
}

impl Cond {
    fn plain(sql: String) -> Cond {
        Cond { sql, listed: None }
    }
}

/// The filter's conditions, the search text's included when `text` is given. Listed facets
/// come genre, platform, edition kind: the first is the one a storefront page walks, so the
/// rarer kinds of facet come first (a dozen genres, eight platforms, two edition kinds).
fn filter_conds(sql: &mut Sql, filter: &Filter, text: Option<&TextQuery>) -> Vec<Cond> {
    let mut conds = Vec::new();
    if let Some(q) = text {
        let any = any_words(sql, q);
        conds.push(Cond::plain(format!("p.search @@ {any}")));
    }
    let mut listed = |facet: &'static str, column: &str, value: String| {
        let b = sql.bind(value);
        Cond {
            sql: format!("p.{column} @> ARRAY[{b}]::text[]"),
            listed: Some((facet, b)),
        }
    };
    if let Some(g) = &filter.genre {
        conds.push(listed("genre", "genres", g.to_lowercase()));
    }
    if let Some(pl) = &filter.platform {
        conds.push(listed("platform", "platforms", pl.to_lowercase()));
    }
    if let Some(kind) = filter.edition_kind {
        conds.push(listed("kind", "edition_kinds", kind.as_str().to_owned()));
    }
    if let Some(min) = filter.min_price {
        let b = sql.bind(min);
        conds.push(Cond::plain(format!("p.price_from_minor >= {b}")));
    }
    if let Some(max) = filter.max_price {
        let b = sql.bind(max);
        conds.push(Cond::plain(format!("p.price_from_minor <= {b}")));
    }
    if let Some(publisher) = filter.publisher {
        let b = sql.bind(publisher);
        conds.push(Cond::plain(format!("p.publisher_id = {b}")));
    }
    if filter.on_sale {
        conds.push(Cond::plain("p.sale_percent IS NOT NULL".to_owned()));
    }
    if let Some(t) = &filter.title_contains {
        let b = sql.bind(crate::identity::like_pattern(t));
        conds.push(Cond::plain(format!("p.title ILIKE {b}")));
    }
    conds
}

/// What [`page_statement`] reads.
struct Walk<'a> {
    sort: Sort,
    scope: Vec<String>,
    filter: Vec<Cond>,
    cursor: Option<&'a Cursor>,
    tier: u8,
    limit: u64,
    public: bool,
}

/// One keyset page (at most `limit` rows) of the products matching `scope` and `filter` in
/// the order of `sort`, after `cursor`; `tier` is selected as a column.
///
/// On the storefront, a filter with a genre (else a platform, else an edition kind) walks that
/// facet's rows of `catalog.facet_listing` in sort order, joined to their products; any other
/// filter walks the product's own sort index. Outside the storefront, or when the walked rows
/// all match (no filter, or only the walked facet), it is one ordered, limited statement.
/// Otherwise it walks at most [`WALK_BUDGET`] rows (the first branch) and only when that
/// stretch had fewer than `limit` matches does the second branch run (`UNION ALL` under
/// `LIMIT` runs its branches in turn and stops when it has enough): the matches past the
/// stretch, found through the filters' indexes and sorted.
fn page_statement(mut sql: Sql, walk: Walk<'_>) -> ApiResult<Statement> {
    let Walk {
        sort,
        scope,
        filter,
        cursor,
        tier,
        limit,
        public,
    } = walk;
    let key = sort.key();
    let (dir, beyond, before, start) = if sort.ascending() {
        ("ASC", ">", "<", key.highest)
    } else {
        ("DESC", "<", ">", key.lowest)
    };
    // The listing only has published products: it is walked for the storefront only.
    let walked = filter
        .iter()
        .position(|c| c.listed.is_some())
        .filter(|_| public);
    let listed = walked
        .and_then(|i| filter.get(i))
        .and_then(|c| c.listed.clone());
    let (from, col, id, mut walk_conds) = match &listed {
        Some((facet, value)) => (
            "catalog.facet_listing l JOIN catalog.product p ON p.id = l.product_id",
            format!("l.{}", key.name),
            "l.product_id",
            vec![format!("l.facet = '{facet}'"), format!("l.value = {value}")],
        ),
        None => (
            "catalog.product p",
            format!("p.{}", key.name),
            "p.id",
            Vec::new(),
        ),
    };
    let product_col = format!("p.{}", key.name);
    let mut past_cursor = None;
    if let Some(c) = cursor {
        let k = sort.bind_key(&mut sql, c.key)?;
        let i = sql.bind(c.id);
        walk_conds.push(format!("({col}, {id}) {beyond} ({k}, {i}::uuid)"));
        past_cursor = Some(format!("({product_col}, p.id) {beyond} ({k}, {i}::uuid)"));
    }
    // What the walked rows are checked for: the filter but the walked facet.
    let checked: Vec<String> = filter
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != walked)
        .map(|(_, c)| c.sql.clone())
        .collect();
    let limit = sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let select = format!(
        "SELECT {COLUMNS}, {} AS sort_key, {tier}::int2 AS tier",
        key.as_float
    );
    let order = format!("ORDER BY {col} {dir}, {id} {dir}");
    let and = |conds: &[&[String]]| {
        let all: Vec<&str> = conds
            .iter()
            .flat_map(|c| c.iter())
            .map(String::as_str)
            .collect();
        if all.is_empty() {
            "TRUE".to_owned()
        } else {
            all.join(" AND ")
        }
    };
    let text = if checked.is_empty() || !public {
        format!(
            "{select} FROM {from} WHERE {} {order} LIMIT {limit}",
            and(&[&scope, &walk_conds, &checked])
        )
    } else {
        // `edge`: the last row of the walked stretch (none when fewer rows are left). Over the
        // listing it is an index-only scan: the listing is the storefront's scope already.
        let edge_sql = match listed {
            Some(_) => format!(
                "SELECT {col} AS k, {id} AS id FROM catalog.facet_listing l WHERE {} \
                 {order} OFFSET {WALK_BUDGET} LIMIT 1",
                and(&[&walk_conds])
            ),
            None => format!(
                "SELECT {col} AS k, {id} AS id FROM {from} WHERE {} \
                 {order} OFFSET {WALK_BUDGET} LIMIT 1",
                and(&[&scope, &walk_conds])
            ),
        };
        let all: Vec<String> = filter
            .iter()
            .map(|c| c.sql.clone())
            .chain(past_cursor)
            .collect();
        format!(
            "WITH edge AS ({edge_sql}), \
             rest AS MATERIALIZED ({select}, {product_col} AS walk_key FROM catalog.product p \
                 WHERE {} \
                   AND ({product_col}, p.id) {beyond}= ((SELECT k FROM edge), (SELECT id FROM edge))) \
             ({select} FROM {from} WHERE {} \
                 AND ({col}, {id}) {before} (coalesce((SELECT k FROM edge), {start}), \
                     coalesce((SELECT id FROM edge), '{nil}'::uuid)) \
                 {order} LIMIT {limit}) \
             UNION ALL \
             (SELECT {rest_columns}, r.sort_key, r.tier FROM rest r \
                 WHERE (SELECT id FROM edge) IS NOT NULL \
                 ORDER BY r.walk_key {dir}, r.id {dir} LIMIT {limit}) \
             LIMIT {limit}",
            and(&[&scope, &all]),
            and(&[&scope, &walk_conds, &checked]),
            // The rest has its rows whole: joining them back could make the planner scan the
            // catalog for a set it expects large and that is small.
            rest_columns = COLUMNS.replace("p.", "r."),
            nil = if sort.ascending() {
                "ffffffff-ffff-ffff-ffff-ffffffffffff"
            } else {
                "00000000-0000-0000-0000-000000000000"
            },
        )
    };
    Ok(Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        text,
        sql.values,
    ))
}

/// Runs a page statement; appends its rows with their cursors.
async fn fetch(
    db: &impl ConnectionTrait,
    statement: Statement,
    sort: Sort,
    items: &mut Vec<(product::Model, String)>,
) -> ApiResult<()> {
    // Raw: full-text matching (`@@` tsquery) in a keyset page of `UNION ALL` under `LIMIT`.
    let rows = db.query_all_raw(statement).await?;
    for row in &rows {
        let model = product::Model::from_query_result(row, "")?;
        let key: f64 = row.try_get("", "sort_key")?;
        let tier: i16 = row.try_get("", "tier")?;
        let cursor = Cursor {
            sort,
            tier: u8::try_from(tier).unwrap_or(0),
            key,
            id: model.id,
        }
        .encode();
        items.push((model, cursor));
    }
    Ok(())
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
    let title_contains = match filter.title_contains.as_deref().map(str::trim) {
        Some(t) if t.chars().count() > MAX_TEXT => {
            return Err(ApiError::BadInput {
                field: "search",
                message: format!("the search text must have at most {MAX_TEXT} characters"),
            });
        }
        Some(t) if !t.is_empty() => Some(t.to_owned()),
        _ => None,
    };
    let filter = &Filter {
        title_contains,
        ..filter.clone()
    };
    // Relevance without a search text ranks by newest.
    let sort = if sort == Sort::Relevance && text.is_none() {
        Sort::Newest
    } else {
        sort
    };
    let cursor = after.map(|a| Cursor::decode(a, sort)).transpose()?;
    let query = match &text {
        Some(t) => Some(correct(db, t).await?),
        None => None,
    };
    let public = *scope == Scope::Public;
    let wanted = first + 1;
    let mut items = Vec::new();
    match (&query, sort) {
        (Some(q), Sort::Relevance) => {
            // Tiers from the cursor's down; the cursor applies within its own tier only.
            let from = cursor.as_ref().map_or(3, |c| c.tier);
            for tier in (1..=from).rev() {
                if tier == 2 && q.corrected.is_none() {
                    continue;
                }
                let mut sql = Sql::default();
                let scope_sql = scope_conds(&mut sql, scope);
                let mut conds = filter_conds(&mut sql, filter, None);
                let exact = {
                    let t = sql.bind(q.text.clone());
                    format!("websearch_to_tsquery('english', {t})")
                };
                conds.push(Cond::plain(match tier {
                    3 => format!("p.title_search @@ {exact}"),
                    2 => {
                        let c = sql.bind(q.corrected.clone().unwrap_or_default());
                        format!(
                            "p.title_search @@ to_tsquery('english', {c}) \
                             AND NOT p.title_search @@ {exact}"
                        )
                    }
                    _ => {
                        let any = any_words(&mut sql, q);
                        format!("p.search @@ {any} AND NOT p.title_search @@ {any}")
                    }
                }));
                let within = cursor.as_ref().filter(|c| c.tier == tier);
                let left = wanted - items.len() as u64;
                let statement = page_statement(
                    sql,
                    Walk {
                        sort,
                        scope: scope_sql,
                        filter: conds,
                        cursor: within,
                        tier,
                        limit: left,
                        public,
                    },
                )?;
                fetch(db, statement, sort, &mut items).await?;
                if items.len() as u64 >= wanted {
                    break;
                }
            }
        }
        _ => {
            let mut sql = Sql::default();
            let scope_sql = scope_conds(&mut sql, scope);
            let conds = filter_conds(&mut sql, filter, query.as_ref());
            let statement = page_statement(
                sql,
                Walk {
                    sort,
                    scope: scope_sql,
                    filter: conds,
                    cursor: cursor.as_ref(),
                    tier: 0,
                    limit: wanted,
                    public,
                },
            )?;
            fetch(db, statement, sort, &mut items).await?;
        }
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
/// products matching `filter`, in one statement: without a filter from the counts the catalog
/// keeps (`catalog.facet_count`), with one over the matching products.
pub async fn facets(db: &impl ConnectionTrait, filter: &Filter) -> ApiResult<Facets> {
    let text = search_text(filter.text.as_deref())?;
    let filter = Filter {
        text: text.clone(),
        ..filter.clone()
    };
    let statement = if filter.is_empty() {
        Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT facet, value, n FROM ( \
               SELECT facet, value, count AS n, \
                      row_number() OVER (PARTITION BY facet ORDER BY count DESC, value COLLATE \"C\") AS r \
               FROM catalog.facet_count WHERE count > 0) c \
             WHERE facet <> 'tag' OR r <= 40",
        )
    } else {
        let query = match &text {
            Some(t) => Some(correct(db, t).await?),
            None => None,
        };
        let mut sql = Sql::default();
        let mut conds = scope_conds(&mut sql, &Scope::Public);
        conds.extend(
            filter_conds(&mut sql, &filter, query.as_ref())
                .into_iter()
                .map(|c| c.sql),
        );
        let where_sql = conds.join(" AND ");
        Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            format!(
                "WITH m AS MATERIALIZED (SELECT p.genres, p.platforms, p.tags, p.edition_kinds \
                     FROM catalog.product p WHERE {where_sql}) \
                 SELECT 'genre' AS facet, v AS value, count(*) AS n FROM m, unnest(m.genres) v GROUP BY v \
                 UNION ALL SELECT 'platform', v, count(*) FROM m, unnest(m.platforms) v GROUP BY v \
                 UNION ALL (SELECT 'tag', v, count(*) FROM m, unnest(m.tags) v GROUP BY v ORDER BY count(*) DESC, v LIMIT 40) \
                 UNION ALL SELECT 'kind', v, count(*) FROM m, unnest(m.edition_kinds) v GROUP BY v"
            ),
            sql.values,
        )
    };
    // Raw: window functions and UNIONs over unnest of a MATERIALIZED CTE (facet counts).
    let rows = db.query_all_raw(statement).await?;
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
            tier: 0,
            key: 4.333_333_333_333_333,
            id: Uuid::now_v7(),
        };
        let back = Cursor::decode(&c.encode(), Sort::Rating).expect("decodes");
        assert_eq!(back, c);
        assert!(Cursor::decode(&c.encode(), Sort::Newest).is_err());
        let r = Cursor {
            sort: Sort::Relevance,
            tier: 2,
            key: 1_764_806_400_000_000.0,
            id: Uuid::now_v7(),
        };
        assert_eq!(
            Cursor::decode(&r.encode(), Sort::Relevance).expect("decodes"),
            r
        );
        assert!(Cursor::decode(&r.encode(), Sort::Newest).is_err());
        assert!(
            Cursor::decode(
                &B64.encode("rel4|1|00000000-0000-0000-0000-000000000000"),
                Sort::Relevance
            )
            .is_err()
        );
        assert!(Cursor::decode("bm9wZQ", Sort::Rating).is_err());
        assert!(Cursor::decode("%%%", Sort::Rating).is_err());
    }

    #[test]
    fn search_words_are_lower_case_letters_and_digits() {
        assert_eq!(
            words("The  Witcher 3: Wild-Hunt!"),
            ["the", "witcher", "3", "wild", "hunt"]
        );
        assert_eq!(words("a a A"), ["a"]);
        assert!(words(" -- ").is_empty());
    }
}
