//! `cargo xtask cycles`: no module of the workspace imports a module that imports it.
//!
//! A lexical check, fast enough to run as a test: each crate's module tree is read from its
//! `mod` declarations, every `crate::`, `super::`, `self::` and child-relative path in a file
//! (comments and string literals removed) is resolved to the deepest module it names, and a
//! reference from `a::x::…` to `a::y::…` becomes an edge between the siblings `a::x` and `a::y`.
//! Edges are collected at every level of the tree (`crate` itself, `crate::graphql`, …), and a
//! strongly connected component of two or more siblings is a cycle. A parent naming its own
//! children (`lib.rs` listing participants) and a child naming its ancestors are not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// One crate root (a library or a binary) and its module tree.
struct Tree {
    /// `api`, `api (bin)`, …
    name: String,
    /// Every module as its path below the root (the root is the empty path) and its file.
    modules: BTreeMap<Vec<String>, PathBuf>,
}

/// Where a module refers to a sibling, for the report.
#[derive(Clone)]
struct Site {
    file: PathBuf,
    line: usize,
}

/// What the check found.
pub struct Report {
    /// Modules read, over all crate roots.
    pub modules: usize,
    /// Crate roots read.
    pub crates: usize,
    /// One entry per cycle: a readable description.
    pub cycles: Vec<String>,
}

impl Report {
    /// The one-line summary `cargo xtask cycles` ends with.
    pub fn summary(&self) -> String {
        format!(
            "cycles: {} among {} modules of {} crates",
            self.cycles.len(),
            self.modules,
            self.crates
        )
    }
}

/// `cargo xtask cycles`.
pub fn command() -> Result<()> {
    let report = check(crate::root())?;
    for cycle in &report.cycles {
        println!("{cycle}");
    }
    println!("{}", report.summary());
    if !report.cycles.is_empty() {
        bail!("import cycles between modules (see above)");
    }
    Ok(())
}

/// Checks every crate of the workspace at `root`.
pub fn check(root: &Path) -> Result<Report> {
    let mut trees = Vec::new();
    for member in ["domain", "api", "saga", "web", "xtask", "bench"] {
        let src = root.join(member).join("src");
        for (file, suffix) in [("lib.rs", ""), ("main.rs", " (bin)")] {
            let path = src.join(file);
            if path.is_file() {
                trees.push(read_tree(&format!("{member}{suffix}"), &path)?);
            }
        }
    }
    let mut report = Report {
        modules: trees.iter().map(|t| t.modules.len()).sum(),
        crates: trees.len(),
        cycles: Vec::new(),
    };
    for tree in &trees {
        report.cycles.extend(cycles_of(tree)?);
    }
    Ok(report)
}

/// Reads the module tree below the crate root file `root_file`.
fn read_tree(name: &str, root_file: &Path) -> Result<Tree> {
    let mut modules = BTreeMap::new();
    let mut pending = vec![(Vec::<String>::new(), root_file.to_path_buf())];
    while let Some((path, file)) = pending.pop() {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let dir = children_dir(&path, &file);
        for child in declared_modules(&strip(&text)) {
            let flat = dir.join(format!("{child}.rs"));
            let nested = dir.join(&child).join("mod.rs");
            let child_file = if flat.is_file() {
                flat
            } else if nested.is_file() {
                nested
            } else {
                continue; // an inline `mod name { … }` or a module behind a missing cfg
            };
            let mut child_path = path.clone();
            child_path.push(child);
            pending.push((child_path, child_file));
        }
        modules.insert(path, file);
    }
    Ok(Tree {
        name: name.to_owned(),
        modules,
    })
}

/// The directory holding the files of a module's children.
fn children_dir(path: &[String], file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("."));
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if path.is_empty() || stem == "mod" {
        parent.to_path_buf()
    } else {
        parent.join(stem)
    }
}

/// The names of `mod name;` declarations (any visibility) in stripped source.
fn declared_modules(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line.trim_start();
        if let Some(r) = rest.strip_prefix("pub") {
            rest = r.trim_start();
            if rest.starts_with('(') {
                match rest.find(')') {
                    Some(end) => rest = rest[end + 1..].trim_start(),
                    None => continue,
                }
            }
        }
        let Some(r) = rest.strip_prefix("mod ") else {
            continue;
        };
        let r = r.trim();
        if let Some(name) = r.strip_suffix(';') {
            let name = name.trim().trim_start_matches("r#");
            if is_ident(name) {
                out.push(name.to_owned());
            }
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The source with comments, string and char literals blanked (newlines kept, so line numbers
/// hold).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0usize;
            let start = i;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            blank(&mut out, &b[start..i.min(b.len())]);
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let body = i + 2 + hashes;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| body + p + close.len());
            blank(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            blank(&mut out, &b[start..i]);
        } else if b[i] == b'\'' {
            // a char literal ('a', '\n', '\u{1F}') or a lifetime ('a); blank only the former
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 3 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank(&mut out, &b[i..end]);
                    i = end;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            // copy one UTF-8 character
            let len = utf8_len(b[i]);
            out.push_str(&text[i..(i + len).min(text.len())]);
            i += len;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// Every path a file names, as (line, segments) with `crate`, `super` or `self` kept as the
/// first segment; `use` trees with braces are expanded.
fn paths_in(text: &str) -> Vec<(usize, Vec<String>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        let starts_word = (c.is_ascii_alphabetic() || c == '_')
            && (i == 0 || !(chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_'));
        if !starts_word || (i > 0 && chars[i - 1] == ':') {
            i += 1;
            continue;
        }
        let (tree, end) = use_tree(&chars, i);
        if tree.iter().any(|p| p.len() > 1) {
            out.extend(tree.into_iter().map(|p| (line, p)));
        }
        line += chars[i..end].iter().filter(|&&c| c == '\n').count();
        i = end.max(i + 1);
    }
    out
}

/// Reads `a::b::{c, d::e}` starting at `i`: the expanded paths and where it ends.
fn use_tree(chars: &[char], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i == start {
            break;
        }
        prefix.push(chars[start..i].iter().collect::<String>());
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
            j += 2;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            if chars.get(j) == Some(&'{') {
                let mut out = Vec::new();
                j += 1;
                loop {
                    while j < chars.len() && (chars[j].is_whitespace() || chars[j] == ',') {
                        j += 1;
                    }
                    match chars.get(j) {
                        None => return (vec![prefix], j),
                        Some('}') => return (out, j + 1),
                        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                            let (inner, end) = use_tree(chars, j);
                            for p in inner {
                                let mut full = prefix.clone();
                                full.extend(p);
                                out.push(full);
                            }
                            if end == j {
                                j += 1;
                            } else {
                                j = end;
                            }
                        }
                        Some(_) => j += 1, // `*`, `self` as keyword is an ident, `as` names
                    }
                }
            }
            i = j;
        } else {
            break;
        }
    }
    (vec![prefix], i)
}

/// The module a path names from module `from`, if it names one of `tree`'s modules.
fn resolve(tree: &Tree, from: &[String], path: &[String]) -> Option<Vec<String>> {
    let (mut at, rest): (Vec<String>, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (from.to_vec(), &path[1..]),
        Some("super") => {
            let mut at = from.to_vec();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                at.pop()?;
                rest = &rest[1..];
            }
            (at, rest)
        }
        Some(first) => {
            // a path relative to the current module: only its children count
            let mut child = from.to_vec();
            child.push(first.to_owned());
            if !tree.modules.contains_key(&child) {
                return None;
            }
            (from.to_vec(), path)
        }
        None => return None,
    };
    for segment in rest {
        let mut next = at.clone();
        next.push(segment.clone());
        if tree.modules.contains_key(&next) {
            at = next;
        } else {
            break;
        }
    }
    Some(at)
}

/// The cycles among siblings of `tree`, at every level.
fn cycles_of(tree: &Tree) -> Result<Vec<String>> {
    // parent -> (child -> (child -> first site))
    type Edges = BTreeMap<String, BTreeMap<String, Site>>;
    let mut levels: BTreeMap<Vec<String>, Edges> = BTreeMap::new();
    for (module, file) in &tree.modules {
        let text = strip(&fs::read_to_string(file)?);
        for (line, path) in paths_in(&text) {
            let Some(target) = resolve(tree, module, &path) else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common == module.len() || common == target.len() {
                continue; // an ancestor or a descendant
            }
            levels
                .entry(module[..common].to_vec())
                .or_default()
                .entry(module[common].clone())
                .or_default()
                .entry(target[common].clone())
                .or_insert_with(|| Site {
                    file: file.clone(),
                    line,
                });
        }
    }
    let mut cycles = Vec::new();
    for (parent, edges) in &levels {
        for component in strongly_connected(edges) {
            if component.len() < 2 {
                continue;
            }
            let scope = if parent.is_empty() {
                tree.name.clone()
            } else {
                format!("{}::{}", tree.name, parent.join("::"))
            };
            let mut text = format!(
                "cycle in {scope} among {} modules: {}",
                component.len(),
                component.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            for from in &component {
                for (to, site) in edges.get(from).into_iter().flatten() {
                    if component.contains(to) {
                        let _ = write!(
                            text,
                            "\n    {from} -> {to}  ({}:{})",
                            site.file.display(),
                            site.line
                        );
                    }
                }
            }
            cycles.push(text);
        }
    }
    Ok(cycles)
}

/// Tarjan's strongly connected components of a directed graph.
fn strongly_connected<V>(edges: &BTreeMap<String, BTreeMap<String, V>>) -> Vec<BTreeSet<String>> {
    struct State<'a, V> {
        edges: &'a BTreeMap<String, BTreeMap<String, V>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a, V>(s: &mut State<'a, V>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_of(files: &[(&str, &str)]) -> (tempdir::Dir, Tree) {
        let dir = tempdir::Dir::new();
        for (name, text) in files {
            let path = dir.0.join(name);
            fs::create_dir_all(path.parent().expect("test setup")).expect("test setup");
            fs::write(path, text).expect("test setup");
        }
        let tree = read_tree("t", &dir.0.join("lib.rs")).expect("test setup");
        (dir, tree)
    }

    /// A throwaway directory removed on drop (no dependency for one test helper).
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path = std::env::temp_dir().join(format!(
                    "xtask-cycles-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("test setup")
                        .as_nanos()
                ));
                std::fs::create_dir_all(&path).expect("test setup");
                Self(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn two_siblings_naming_each_other_are_a_cycle() {
        let (_dir, tree) = tree_of(&[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a.rs", "use crate::b::Thing;\n"),
            ("b.rs", "pub fn f() { crate::a::g() }\n"),
        ]);
        let cycles = cycles_of(&tree).expect("test setup");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].contains("a, b"), "{}", cycles[0]);
    }

    #[test]
    fn nested_siblings_grouped_imports_and_super_are_seen() {
        let (_dir, tree) = tree_of(&[
            ("lib.rs", "pub mod g;\n"),
            ("g.rs", "pub mod x;\npub mod y;\n"),
            ("g/x.rs", "use crate::{g::{y::Y, other}};\n"),
            ("g/y.rs", "use super::x;\n"),
        ]);
        let cycles = cycles_of(&tree).expect("test setup");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].starts_with("cycle in t::g"), "{}", cycles[0]);
    }

    #[test]
    fn parents_children_comments_and_strings_are_not_edges() {
        let (_dir, tree) = tree_of(&[
            (
                "lib.rs",
                "pub mod a;\npub mod b;\npub fn f() { a::f(); b::f(); }\n",
            ),
            ("a.rs", "pub mod inner;\nuse crate::b::B; // crate::a\n"),
            ("a/inner.rs", "use crate::a::X; use super::super::a;\n"),
            (
                "b.rs",
                "/// [`crate::a`]\nconst S: &str = \"crate::a::x\";\n/* crate::a */\n",
            ),
        ]);
        assert!(cycles_of(&tree).expect("test setup").is_empty());
    }

    #[test]
    fn a_chain_of_three_is_one_cycle() {
        let (_dir, tree) = tree_of(&[
            ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\n"),
            ("a.rs", "use crate::b;\n"),
            ("b.rs", "use crate::c;\n"),
            ("c.rs", "use crate::a;\nuse crate::d;\n"),
            ("d.rs", "\n"),
        ]);
        let cycles = cycles_of(&tree).expect("test setup");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(cycles[0].contains("3 modules: a, b, c"), "{}", cycles[0]);
    }

    /// The workspace itself: a new cycle between modules fails `cargo xtask test` here.
    #[test]
    fn the_workspace_has_no_import_cycles() {
        let report = check(crate::root()).expect("test setup");
        assert!(report.modules > 100, "read only {} modules", report.modules);
        assert!(
            report.cycles.is_empty(),
            "{}\n{}",
            report.cycles.join("\n"),
            report.summary()
        );
    }
}
