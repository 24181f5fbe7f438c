//! Cursor paging shared by the saga's read models: opaque base64url cursors `"{kind}:{value}"`.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::infra::error::ApiError;

/// Largest page.
pub const MAX_PAGE: i32 = 100;

pub fn page_size(first: i32) -> Result<u64, ApiError> {
    if (1..=MAX_PAGE).contains(&first) {
        Ok(u64::try_from(first).unwrap_or(20))
    } else {
        Err(ApiError::BadInput {
            field: "first",
            message: format!("first must be between 1 and {MAX_PAGE}"),
        })
    }
}

pub fn encode(kind: &str, value: &str) -> String {
    B64.encode(format!("{kind}:{value}"))
}

/// The value of a cursor of `kind`, parsed.
pub fn decode<T: std::str::FromStr>(
    kind: &str,
    cursor: Option<&str>,
) -> Result<Option<T>, ApiError> {
    let Some(c) = cursor else { return Ok(None) };
    B64.decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(kind)?.strip_prefix(':')?.parse().ok())
        .map(Some)
        .ok_or(ApiError::BadInput {
            field: "after",
            message: "the cursor is not valid".into(),
        })
}

/// A page from `rows` fetched with one extra row to learn whether more follow.
pub fn page<R, T: OutputType>(
    mut rows: Vec<R>,
    first: u64,
    had_cursor: bool,
    cursor: impl Fn(&R) -> String,
    node: impl Fn(R) -> T,
) -> Connection<String, T> {
    let more = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let mut conn = Connection::new(had_cursor, more);
    conn.edges
        .extend(rows.into_iter().map(|r| Edge::new(cursor(&r), node(r))));
    conn
}

/// [`page`] for nodes that may fail to build (a stored value the schema cannot show).
pub fn try_page<R, T: OutputType>(
    mut rows: Vec<R>,
    first: u64,
    had_cursor: bool,
    cursor: impl Fn(&R) -> String,
    node: impl Fn(R) -> Result<T, ApiError>,
) -> Result<Connection<String, T>, ApiError> {
    let more = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let mut conn = Connection::new(had_cursor, more);
    for r in rows {
        let c = cursor(&r);
        conn.edges.push(Edge::new(c, node(r)?));
    }
    Ok(conn)
}
