//! Checks on a document that async-graphql does not make itself, or makes too late.
//!
//! async-graphql's own limits (depth, complexity, recursive depth, directives) walk the document
//! with every fragment spread expanded, so a few hundred bytes of fragments spreading each other
//! (ten fragments, each spreading the next ten times: 10¹⁰ selections) keep a core busy for
//! hours before they refuse it. [`precheck`] runs first and refuses such documents in time
//! linear in their length, without expanding anything:
//!
//! 1. before parsing, the raw text: at most `max_tokens` tokens and `MAX_NESTING` nested
//!    brackets (the parser recurses on them);
//! 2. after parsing: at most `max_fragment_spreads` spreads in the document, no fragment cycle,
//!    at most `max_selections` selections once every spread is expanded (computed once per
//!    fragment over the fragment graph, never by expanding), at most `max_aliases` aliases,
//!    and depth: a data field at most `max_depth` fields deep; an introspection root field
//!    (`__schema`, `__type`) at most `max_introspection_depth` deep, with at most
//!    [`MAX_INTROSPECTION_LISTS`] list fields nested on any of its paths (see [`check_depth`]);
//! 3. every string argument, inline or in the variables: no NUL nor other control character
//!    (tab, line feed and carriage return are text), named in the refusal's `field`.

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::{
    Directive, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use async_graphql_value::{ConstValue, Value};

use crate::infra::config::GraphqlLimits;

/// Deepest nesting of `{`, `[` and `(` in a document's text. async-graphql refuses selection
/// sets deeper than 32 itself (`limit_recursive_depth`); this guards its recursive parser.
pub const MAX_NESTING: usize = 64;

/// The limits [`precheck`] applies (`GRAPHQL_MAX_*`).
#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    pub max_tokens: usize,
    pub max_fragment_spreads: usize,
    pub max_selections: usize,
    pub max_aliases: usize,
    /// Deepest path of data fields (`GRAPHQL_MAX_DEPTH`).
    pub max_depth: usize,
    /// Deepest path under `__schema` or `__type` (`GRAPHQL_MAX_INTROSPECTION_DEPTH`).
    pub max_introspection_depth: usize,
}

/// Most list fields (`types`, `fields`, `args`, …) nested on one path under `__schema` or
/// `__type`. The standard introspection query of graphql-js and graphql-core nests three
/// (`types { fields { args } }`); a fourth would multiply the answer by the size of the schema
/// again (`fields { type { fields { type { fields … } } } }`) without telling a client more.
pub const MAX_INTROSPECTION_LISTS: usize = 3;

/// The fields of the introspection types that return lists of objects.
const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "directives",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
];

impl From<&GraphqlLimits> for DocumentLimits {
    fn from(limits: &GraphqlLimits) -> Self {
        Self {
            max_tokens: limits.max_tokens,
            max_fragment_spreads: limits.max_fragment_spreads,
            max_selections: limits.max_selections,
            max_aliases: limits.max_aliases,
            max_depth: limits.max_depth,
            max_introspection_depth: limits.max_introspection_depth,
        }
    }
}

/// Why a document was refused before validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `GRAPHQL_PARSE_FAILED`.
    #[error("{0}")]
    Parse(String),
    /// `GRAPHQL_VALIDATION_FAILED`: a limit of the document was exceeded.
    #[error("{0}")]
    TooBig(String),
    /// `BAD_USER_INPUT`: a string argument holds a character that is not text.
    #[error("{field} holds a NUL or another control character; send text only")]
    BadText { field: String },
}

impl Refusal {
    pub fn code(&self) -> domain::ErrorCode {
        match self {
            Refusal::Parse(_) => domain::ErrorCode::GraphqlParseFailed,
            Refusal::TooBig(_) => domain::ErrorCode::GraphqlValidationFailed,
            Refusal::BadText { .. } => domain::ErrorCode::BadUserInput,
        }
    }

    /// The refusal as a GraphQL error (`extensions.code`, and `field` for bad text).
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        use async_graphql::ErrorExtensions as _;
        let field = match self {
            Refusal::BadText { field } => Some(field.clone()),
            _ => None,
        };
        async_graphql::Error::new(self.to_string())
            .extend_with(|_, ext| {
                ext.set("code", self.code().as_str());
                if let Some(f) = &field {
                    ext.set("field", f.as_str());
                }
            })
            .into_server_error(async_graphql::Pos::default())
    }
}

/// Everything [`precheck`] refuses, in order: tokens and nesting, parse, spreads, selections,
/// aliases, text. Returns the parsed document.
pub fn precheck(
    query: &str,
    variables: &Variables,
    limits: &DocumentLimits,
) -> Result<ExecutableDocument, Refusal> {
    scan(query, limits.max_tokens)?;
    let doc =
        async_graphql::parser::parse_query(query).map_err(|e| Refusal::Parse(e.to_string()))?;
    check_document(&doc, limits)?;
    check_text(&doc, variables)?;
    Ok(doc)
}

/// Counts the tokens of a document and the nesting of its brackets without parsing it.
/// Approximate where the document is malformed (the parser then refuses it), exact otherwise.
pub fn scan(query: &str, max_tokens: usize) -> Result<(), Refusal> {
    let bytes = query.as_bytes();
    let mut i = 0;
    let mut tokens = 0usize;
    let mut depth = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                loop {
                    if i >= bytes.len() {
                        break;
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::TooBig(format!(
                        "the document nests brackets deeper than {MAX_NESTING}"
                    )));
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b'_' | b'-' | b'.' | b'+' | b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {
                while i < bytes.len()
                    && matches!(bytes[i], b'_' | b'-' | b'.' | b'+' | b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > max_tokens {
            return Err(Refusal::TooBig(format!(
                "the document has more than {max_tokens} tokens"
            )));
        }
    }
    Ok(())
}

/// Spreads, fragment cycles, expanded selections and aliases of a parsed document.
pub fn check_document(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), Refusal> {
    let operations: Vec<&Positioned<OperationDefinition>> =
        doc.operations.iter().map(|(_, op)| op).collect();
    let spreads: usize = operations
        .iter()
        .map(|op| count_spreads(&op.node.selection_set.node))
        .chain(
            doc.fragments
                .values()
                .map(|f| count_spreads(&f.node.selection_set.node)),
        )
        .fold(0usize, usize::saturating_add);
    if spreads > limits.max_fragment_spreads {
        return Err(Refusal::TooBig(format!(
            "the document has {spreads} fragment spreads; at most {} are allowed",
            limits.max_fragment_spreads
        )));
    }
    let mut sizes = Sizes {
        doc,
        memo: HashMap::new(),
    };
    let mut total: u64 = 0;
    for op in &operations {
        total = total.saturating_add(sizes.of_set(&op.node.selection_set.node)?);
    }
    // Fragments no operation uses are still validated (once each, as written).
    for name in doc.fragments.keys() {
        sizes.of_fragment(name)?;
    }
    let max = u64::try_from(limits.max_selections).unwrap_or(u64::MAX);
    if total > max {
        return Err(Refusal::TooBig(format!(
            "the document selects {} fields once its fragments are expanded; at most {} are allowed",
            if total == u64::MAX {
                "too many".to_owned()
            } else {
                total.to_string()
            },
            limits.max_selections
        )));
    }
    let aliases = count_aliases(doc);
    if aliases > limits.max_aliases {
        return Err(Refusal::TooBig(format!(
            "the document has {aliases} aliases; at most {} are allowed",
            limits.max_aliases
        )));
    }
    check_depth(doc, limits)
}

/// How a selection set is measured: at an operation's root, below a data field, or below an
/// introspection root field.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Walk {
    Root,
    Data,
    Introspection,
}

/// The deepest paths found below a selection set.
#[derive(Clone, Copy, Default)]
struct Depths {
    /// Data fields on the deepest data path.
    data: usize,
    /// Fields on the deepest path below an introspection root field (that field included).
    introspection: usize,
    /// List fields on the path below an introspection root field that nests most of them.
    lists: usize,
}

impl Depths {
    fn max(self, other: Depths) -> Depths {
        Depths {
            data: self.data.max(other.data),
            introspection: self.introspection.max(other.introspection),
            lists: self.lists.max(other.lists),
        }
    }
}

/// Depth of every operation of the document, fragments spread where they are used (each
/// fragment measured once per way it is used; cycles were refused before).
///
/// An introspection root field (`__schema`, `__type`) only ever leads to introspection types,
/// never back to data, so its own bound cannot be used to reach data more deeply. Its depth is
/// bounded by `max_introspection_depth` (the standard introspection query needs 13, or 15 with
/// graphql-js 17's deeper type references), and what its answer can multiply to by
/// [`MAX_INTROSPECTION_LISTS`]. Every other root field is bounded by `max_depth`.
pub fn check_depth(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), Refusal> {
    let mut memo = HashMap::new();
    let mut found = Depths::default();
    for (_, op) in doc.operations.iter() {
        found = found.max(measure(
            doc,
            &op.node.selection_set.node,
            Walk::Root,
            &mut memo,
        ));
    }
    if found.data > limits.max_depth {
        return Err(Refusal::TooBig(format!(
            "the query is nested {} fields deep; at most {} are allowed",
            found.data, limits.max_depth
        )));
    }
    if found.introspection > limits.max_introspection_depth {
        return Err(Refusal::TooBig(format!(
            "the introspection query is nested {} fields deep; at most {} are allowed",
            found.introspection, limits.max_introspection_depth
        )));
    }
    if found.lists > MAX_INTROSPECTION_LISTS {
        return Err(Refusal::TooBig(format!(
            "the introspection query nests {} list fields; at most {MAX_INTROSPECTION_LISTS} are allowed",
            found.lists
        )));
    }
    Ok(())
}

fn measure<'a>(
    doc: &'a ExecutableDocument,
    set: &'a SelectionSet,
    walk: Walk,
    memo: &mut HashMap<(&'a Name, Walk), Depths>,
) -> Depths {
    let mut found = Depths::default();
    for item in &set.items {
        let here = match &item.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                let below = &f.node.selection_set.node;
                match walk {
                    Walk::Root if name == "__schema" || name == "__type" => {
                        let inner = measure(doc, below, Walk::Introspection, memo);
                        Depths {
                            introspection: inner.introspection + 1,
                            lists: inner.lists,
                            data: 0,
                        }
                    }
                    Walk::Root | Walk::Data => {
                        let inner = measure(doc, below, Walk::Data, memo);
                        Depths {
                            data: inner.data + 1,
                            ..Depths::default()
                        }
                    }
                    Walk::Introspection => {
                        let inner = measure(doc, below, Walk::Introspection, memo);
                        Depths {
                            introspection: inner.introspection + 1,
                            lists: inner.lists + usize::from(INTROSPECTION_LISTS.contains(&name)),
                            data: 0,
                        }
                    }
                }
            }
            Selection::InlineFragment(frag) => {
                measure(doc, &frag.node.selection_set.node, walk, memo)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                if let Some(known) = memo.get(&(name, walk)) {
                    *known
                } else if let Some(fragment) = doc.fragments.get(name) {
                    let measured = measure(doc, &fragment.node.selection_set.node, walk, memo);
                    memo.insert((name, walk), measured);
                    measured
                } else {
                    // An unknown fragment is for validation to report.
                    Depths::default()
                }
            }
        };
        found = found.max(here);
    }
    found
}

fn count_spreads(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => count_spreads(&f.node.selection_set.node),
            Selection::InlineFragment(frag) => count_spreads(&frag.node.selection_set.node),
            Selection::FragmentSpread(_) => 1,
        })
        .fold(0usize, usize::saturating_add)
}

enum Size {
    /// Being computed: meeting it again is a cycle.
    Visiting,
    Done(u64),
}

/// Expanded sizes of fragments, each computed once.
struct Sizes<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a Name, Size>,
}

impl<'a> Sizes<'a> {
    fn of_fragment(&mut self, name: &'a Name) -> Result<u64, Refusal> {
        match self.memo.get(name) {
            Some(Size::Done(n)) => return Ok(*n),
            Some(Size::Visiting) => {
                return Err(Refusal::TooBig(format!(
                    "fragment {name} spreads itself (a fragment cycle)"
                )));
            }
            None => {}
        }
        // An unknown fragment is for validation to report.
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(0);
        };
        self.memo.insert(name, Size::Visiting);
        let n = self.of_set(&fragment.node.selection_set.node)?;
        self.memo.insert(name, Size::Done(n));
        Ok(n)
    }

    fn of_set(&mut self, set: &'a SelectionSet) -> Result<u64, Refusal> {
        let mut n: u64 = 0;
        for item in &set.items {
            let size = match &item.node {
                Selection::Field(f) => {
                    1u64.saturating_add(self.of_set(&f.node.selection_set.node)?)
                }
                Selection::InlineFragment(frag) => self.of_set(&frag.node.selection_set.node)?,
                Selection::FragmentSpread(spread) => {
                    self.of_fragment(&spread.node.fragment_name.node)?
                }
            };
            n = n.saturating_add(size);
        }
        Ok(n)
    }
}

/// How many fields of the document carry an alias (fragments counted once each).
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node)
                }
                Selection::InlineFragment(frag) => walk(&frag.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let ops: usize = doc
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .sum();
    let frags: usize = doc
        .fragments
        .values()
        .map(|f| walk(&f.node.selection_set.node))
        .sum();
    ops + frags
}

/// Whether `s` is text: no NUL nor other control character but tab, line feed and carriage
/// return (PostgreSQL refuses NUL in text; the others are never meant).
pub fn is_text(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Every string of the document's arguments (inline, in directives, in variable defaults) and of
/// the variables is text; a refusal names the innermost argument, input field or variable.
pub fn check_text(doc: &ExecutableDocument, variables: &Variables) -> Result<(), Refusal> {
    for (name, value) in variables.iter() {
        const_text(name.as_str(), value)?;
    }
    for (_, op) in doc.operations.iter() {
        for def in &op.node.variable_definitions {
            if let Some(default) = &def.node.default_value {
                const_text(def.node.name.node.as_str(), &default.node)?;
            }
        }
        directives_text(&op.node.directives)?;
        set_text(&op.node.selection_set.node)?;
    }
    for fragment in doc.fragments.values() {
        directives_text(&fragment.node.directives)?;
        set_text(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

fn bad(field: &str) -> Refusal {
    Refusal::BadText {
        field: field.to_owned(),
    }
}

fn const_text(field: &str, value: &ConstValue) -> Result<(), Refusal> {
    match value {
        ConstValue::String(s) if !is_text(s) => Err(bad(field)),
        ConstValue::List(items) => items.iter().try_for_each(|v| const_text(field, v)),
        ConstValue::Object(fields) => fields
            .iter()
            .try_for_each(|(k, v)| const_text(k.as_str(), v)),
        _ => Ok(()),
    }
}

fn value_text(field: &str, value: &Value) -> Result<(), Refusal> {
    match value {
        Value::String(s) if !is_text(s) => Err(bad(field)),
        Value::List(items) => items.iter().try_for_each(|v| value_text(field, v)),
        Value::Object(fields) => fields
            .iter()
            .try_for_each(|(k, v)| value_text(k.as_str(), v)),
        _ => Ok(()),
    }
}

fn arguments_text(arguments: &[(Positioned<Name>, Positioned<Value>)]) -> Result<(), Refusal> {
    arguments
        .iter()
        .try_for_each(|(name, value)| value_text(name.node.as_str(), &value.node))
}

fn directives_text(directives: &[Positioned<Directive>]) -> Result<(), Refusal> {
    directives
        .iter()
        .try_for_each(|d| arguments_text(&d.node.arguments))
}

fn set_text(set: &SelectionSet) -> Result<(), Refusal> {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                arguments_text(&f.node.arguments)?;
                directives_text(&f.node.directives)?;
                set_text(&f.node.selection_set.node)?;
            }
            Selection::InlineFragment(frag) => {
                directives_text(&frag.node.directives)?;
                set_text(&frag.node.selection_set.node)?;
            }
            Selection::FragmentSpread(spread) => directives_text(&spread.node.directives)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        max_tokens: 5000,
        max_fragment_spreads: 100,
        max_selections: 2000,
        max_aliases: 30,
        max_depth: 12,
        max_introspection_depth: 16,
    };

    fn bomb(fragments: usize, fan_out: usize) -> String {
        let mut doc = String::from("query { ...F0 }\n");
        for i in 0..fragments {
            let body = if i + 1 == fragments {
                "products(first: 100) { edges { node { id title } } }".to_owned()
            } else {
                vec![format!("...F{}", i + 1); fan_out].join(" ")
            };
            doc.push_str(&format!("fragment F{i} on Query {{ {body} }}\n"));
        }
        doc
    }

    #[test]
    fn aliases_are_counted_everywhere() {
        let doc = async_graphql::parser::parse_query(
            "query { a: me { id } b: me { x: id } ...F } fragment F on Query { c: me { id } }",
        )
        .expect("parses");
        assert_eq!(count_aliases(&doc), 4);
    }

    #[test]
    fn the_fragment_bomb_is_refused_without_expanding() {
        let doc = bomb(10, 10);
        let started = std::time::Instant::now();
        let refused = precheck(&doc, &Variables::default(), &LIMITS);
        assert!(matches!(refused, Err(Refusal::TooBig(_))), "{refused:?}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // Few spreads, but each doubling: the expanded size decides.
        let generous = DocumentLimits {
            max_fragment_spreads: 10_000,
            ..LIMITS
        };
        let doubling = precheck(&bomb(60, 2), &Variables::default(), &generous);
        assert!(
            matches!(&doubling, Err(Refusal::TooBig(m)) if m.contains("expanded")),
            "{doubling:?}"
        );
    }

    #[test]
    fn cycles_nesting_and_tokens_are_refused() {
        let none = Variables::default();
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(
            matches!(precheck(cycle, &none, &LIMITS), Err(Refusal::TooBig(m)) if m.contains("cycle"))
        );
        let deep = format!("{{ f(a: {}1{}) }}", "[".repeat(100), "]".repeat(100));
        assert!(
            matches!(precheck(&deep, &none, &LIMITS), Err(Refusal::TooBig(m)) if m.contains("nests"))
        );
        let long = format!(
            "{{ products({}) {{ totalCount }} }}",
            "first: 1 ".repeat(3000)
        );
        assert!(
            matches!(precheck(&long, &none, &LIMITS), Err(Refusal::TooBig(m)) if m.contains("tokens"))
        );
        let fine = "query Q($x: String = \"a\\u0000\") { __typename } # { { {";
        assert!(
            matches!(precheck(fine, &none, &LIMITS), Err(Refusal::BadText { field }) if field == "x")
        );
    }

    const INTROSPECTION: &str = include_str!("../../tests/it/documents/introspection.graphql");

    fn parsed(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("parses")
    }

    #[test]
    fn the_standard_introspection_query_passes_every_limit() {
        let none = Variables::default();
        assert!(precheck(INTROSPECTION, &none, &LIMITS).is_ok());
        // graphql-js 17 follows type references two levels further.
        let deeper = INTROSPECTION.replacen(
            "ofType {\n                kind\n                name\n              }",
            "ofType { kind name ofType { kind name ofType { kind name } } }",
            1,
        );
        assert_ne!(deeper, INTROSPECTION);
        assert!(precheck(&deeper, &none, &LIMITS).is_ok());
    }

    #[test]
    fn introspection_has_its_own_bound_and_cannot_lend_it_to_data() {
        let deep_data =
            "{ a { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } } }";
        let deep_types = format!(
            "{{ __type(name: \"Query\") {{ {}name{} }} }}",
            "ofType { ".repeat(16),
            " }".repeat(16)
        );
        let multiplying = "{ __type(name: \"Query\") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }";
        let both = format!("{{ __schema {{ types {{ name }} }} {}", &deep_data[1..]);
        // Spread at the root, the fragment's fields are root fields all the same.
        let spread =
            "{ ...F } fragment F on Query { __schema { types { fields { args { name } } } } }";
        let spread_deep = format!("{{ ...F }} fragment F on Query {}", deep_data);

        let depth = |doc: &str| check_depth(&parsed(doc), &LIMITS);
        assert!(
            matches!(depth(deep_data), Err(Refusal::TooBig(m)) if m.contains("13 fields deep"))
        );
        assert!(
            matches!(depth(&deep_types), Err(Refusal::TooBig(m)) if m.contains("introspection"))
        );
        assert!(matches!(depth(multiplying), Err(Refusal::TooBig(m)) if m.contains("list fields")));
        assert!(matches!(depth(&both), Err(Refusal::TooBig(m)) if m.contains("13 fields deep")));
        assert!(depth(spread).is_ok());
        assert!(matches!(depth(&spread_deep), Err(Refusal::TooBig(_))));
        // An introspection field anywhere but at the root counts as data.
        let nested = format!(
            "{{ me {{ __schema {{ {}name{} }} }} }}",
            "a { ".repeat(10),
            " }".repeat(10)
        );
        assert!(matches!(depth(&nested), Err(Refusal::TooBig(m)) if m.contains("query is nested")));
    }

    #[test]
    fn control_characters_are_named_by_their_field() {
        let none = Variables::default();
        let doc = "mutation { signIn(input: {email: \"a\\u0000@b.c\", password: \"x\"}) { accessToken } }";
        assert_eq!(
            precheck(doc, &none, &LIMITS).err(),
            Some(Refusal::BadText {
                field: "email".into()
            })
        );
        let vars =
            Variables::from_json(serde_json::json!({ "input": { "displayName": "a\u{7}" } }));
        assert_eq!(
            precheck(
                "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken } }",
                &vars,
                &LIMITS
            )
            .err(),
            Some(Refusal::BadText {
                field: "displayName".into()
            })
        );
        assert!(is_text("two\tlines\r\nof text, ünïcödé"));
        assert!(!is_text("\u{0}"));
        assert!(!is_text("\u{1b}[31m"));
    }
}
