//! The committed schema (`api/schema.graphql`) read as data, for the tests that generate
//! operations from it (the attack suite's NUL cases, the fuzzer).

use std::collections::BTreeMap;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use serde_json::{Value, json};

/// An argument of a field, or a field of an input object.
#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    pub ty: Type,
}

/// A field of an object or interface.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub args: Vec<Arg>,
    pub ty: Type,
}

/// What a named type is.
#[derive(Clone, Debug)]
pub enum Def {
    Scalar,
    Enum(Vec<String>),
    /// Objects and interfaces.
    Object(Vec<Field>),
    Union(Vec<String>),
    Input(Vec<Arg>),
}

pub struct Schema {
    pub types: BTreeMap<String, Def>,
    pub query: String,
    pub mutation: String,
}

/// One generated request: a name for messages, the document and its variables.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub query: String,
    pub variables: Value,
}

/// The named type at the bottom of `ty` (`[Foo!]!` → `Foo`).
pub fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

/// A UUID that names nothing in a fresh store.
pub const SAMPLE_UUID: &str = "00000000-0000-4000-8000-000000000001";

impl Schema {
    pub fn load() -> Schema {
        let path = super::gateway::repo_root().join("api/schema.graphql");
        let sdl = std::fs::read_to_string(&path).expect("api/schema.graphql");
        let doc = async_graphql::parser::parse_schema(&sdl).expect("the SDL parses");
        let mut types = BTreeMap::new();
        let (mut query, mut mutation) = ("Query".to_owned(), "Mutation".to_owned());
        let fields = |list: &[async_graphql::Positioned<
            async_graphql::parser::types::FieldDefinition,
        >]| {
            list.iter()
                .map(|f| Field {
                    name: f.node.name.node.to_string(),
                    args: f
                        .node
                        .arguments
                        .iter()
                        .map(|a| Arg {
                            name: a.node.name.node.to_string(),
                            ty: a.node.ty.node.clone(),
                        })
                        .collect(),
                    ty: f.node.ty.node.clone(),
                })
                .collect::<Vec<_>>()
        };
        for def in doc.definitions {
            match def {
                TypeSystemDefinition::Schema(s) => {
                    if let Some(q) = &s.node.query {
                        query = q.node.to_string();
                    }
                    if let Some(m) = &s.node.mutation {
                        mutation = m.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(t) => {
                    let name = t.node.name.node.to_string();
                    let def = match &t.node.kind {
                        TypeKind::Scalar => Def::Scalar,
                        TypeKind::Enum(e) => Def::Enum(
                            e.values
                                .iter()
                                .map(|v| v.node.value.node.to_string())
                                .collect(),
                        ),
                        TypeKind::Object(o) => Def::Object(fields(&o.fields)),
                        TypeKind::Interface(i) => Def::Object(fields(&i.fields)),
                        TypeKind::Union(u) => {
                            Def::Union(u.members.iter().map(|m| m.node.to_string()).collect())
                        }
                        TypeKind::InputObject(i) => Def::Input(
                            i.fields
                                .iter()
                                .map(|a| Arg {
                                    name: a.node.name.node.to_string(),
                                    ty: a.node.ty.node.clone(),
                                })
                                .collect(),
                        ),
                    };
                    types.insert(name, def);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        for builtin in ["String", "Int", "Float", "Boolean", "ID"] {
            types.entry(builtin.to_owned()).or_insert(Def::Scalar);
        }
        Schema {
            types,
            query,
            mutation,
        }
    }

    /// The fields of an object or interface type (none for other kinds).
    pub fn fields(&self, name: &str) -> &[Field] {
        match self.types.get(name) {
            Some(Def::Object(fields)) => fields,
            _ => &[],
        }
    }

    /// Whether values of the named type are leaves (scalars, enums).
    pub fn is_leaf(&self, name: &str) -> bool {
        matches!(
            self.types.get(name),
            Some(Def::Scalar | Def::Enum(_)) | None
        )
    }

    /// A well-formed value of `ty`: every field of an input object (optional ones too), the first
    /// value of an enum, one-element lists, plausible scalars.
    pub fn sample(&self, ty: &Type) -> Value {
        match &ty.base {
            BaseType::List(inner) => json!([self.sample(inner)]),
            BaseType::Named(name) => match self.types.get(name.as_str()) {
                Some(Def::Enum(values)) => json!(values.first().cloned().unwrap_or_default()),
                Some(Def::Input(fields)) => Value::Object(
                    fields
                        .iter()
                        .map(|f| (f.name.clone(), self.sample(&f.ty)))
                        .collect(),
                ),
                _ => scalar_sample(name.as_str()),
            },
        }
    }

    /// Every place a string can go in the arguments of `field`: (the path as text, the path).
    fn string_paths(
        &self,
        ty: &Type,
        prefix: &str,
        out: &mut Vec<(String, Vec<PathStep>)>,
        path: Vec<PathStep>,
    ) {
        match &ty.base {
            BaseType::List(inner) => {
                let mut p = path;
                p.push(PathStep::Index);
                self.string_paths(inner, &format!("{prefix}[0]"), out, p);
            }
            BaseType::Named(name) => match self.types.get(name.as_str()) {
                Some(Def::Input(fields)) => {
                    for f in fields {
                        let mut p = path.clone();
                        p.push(PathStep::Key(f.name.clone()));
                        self.string_paths(&f.ty, &format!("{prefix}.{}", f.name), out, p);
                    }
                }
                _ if name.as_str() == "String" => out.push((prefix.to_owned(), path)),
                _ => {}
            },
        }
    }

    /// A document calling `root.field` with every argument as a variable, and its variables
    /// (samples). The selection is `{ __typename }` for composite results.
    pub fn call(&self, root: &str, field: &Field) -> Case {
        let keyword = if root == self.mutation {
            "mutation"
        } else {
            "query"
        };
        let declared: Vec<String> = field
            .args
            .iter()
            .map(|a| format!("${}: {}", a.name, a.ty))
            .collect();
        let passed: Vec<String> = field
            .args
            .iter()
            .map(|a| format!("{}: ${}", a.name, a.name))
            .collect();
        let variables: serde_json::Map<String, Value> = field
            .args
            .iter()
            .map(|a| (a.name.clone(), self.sample(&a.ty)))
            .collect();
        let selection = if self.is_leaf(named(&field.ty)) {
            ""
        } else {
            " { __typename }"
        };
        let head = if declared.is_empty() {
            keyword.to_owned()
        } else {
            format!("{keyword}({})", declared.join(", "))
        };
        let call = if passed.is_empty() {
            field.name.clone()
        } else {
            format!("{}({})", field.name, passed.join(", "))
        };
        Case {
            name: format!("{root}.{}", field.name),
            query: format!("{head} {{ {call}{selection} }}"),
            variables: Value::Object(variables),
        }
    }

    /// For each string that an argument of a query or mutation can carry (directly, in an input
    /// object, in a list), a call with `bad` in that string and samples everywhere else.
    /// Uploads are left out (they travel as multipart files).
    pub fn string_argument_cases(&self, bad: &str) -> Vec<Case> {
        let mut cases = Vec::new();
        for root in [&self.query, &self.mutation] {
            for field in self.fields(root) {
                if field.args.iter().any(|a| named(&a.ty) == "Upload") {
                    continue;
                }
                let base = self.call(root, field);
                for arg in &field.args {
                    let mut paths = Vec::new();
                    self.string_paths(
                        &arg.ty,
                        &arg.name,
                        &mut paths,
                        vec![PathStep::Key(arg.name.clone())],
                    );
                    for (text, path) in paths {
                        let mut variables = base.variables.clone();
                        set_at(&mut variables, &path, json!(bad));
                        cases.push(Case {
                            name: format!("{}({text})", base.name),
                            query: base.query.clone(),
                            variables,
                        });
                    }
                }
            }
        }
        cases
    }
}

/// A step into a JSON value: an object key or the first list element.
#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index,
}

fn set_at(value: &mut Value, path: &[PathStep], new: Value) {
    let Some((step, rest)) = path.split_first() else {
        *value = new;
        return;
    };
    let slot = match step {
        PathStep::Key(k) => value.get_mut(k.as_str()),
        PathStep::Index => value.get_mut(0),
    };
    if let Some(slot) = slot {
        set_at(slot, rest, new);
    }
}

/// A plausible value of a scalar.
pub fn scalar_sample(name: &str) -> Value {
    match name {
        "Int" => json!(1),
        "Float" => json!(1.5),
        "Boolean" => json!(true),
        "UUID" | "ID" => json!(SAMPLE_UUID),
        "DateTime" => json!("2026-01-01T00:00:00Z"),
        "NaiveDate" => json!("2026-01-01"),
        "Upload" => Value::Null,
        _ => json!("sample text"),
    }
}
