//! A fuzzing run (issue 13): GraphQL operations generated from the committed schema
//! (`api/schema.graphql`), valid and invalid, sent through the real nginx gateway to the real api
//! of a store of its own. Every answer must be below 500 and GraphQL JSON, and every error must
//! carry an `extensions.code` other than `INTERNAL_SERVER_ERROR`.
//!
//! Deterministic by seed: `FUZZ_SEED=<n>` replays a run (the seed is printed, and named in the
//! failure); `FUZZ_OPS=<n>` changes the number of operations (at least 1,000 by default). The run
//! stops starting new batches after `FUZZ_BUDGET_SECS` (110 s), so it stays near two minutes.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::gateway::*;
use crate::helpers::sdl::{Def, Field, SAMPLE_UUID, Schema, named, scalar_sample};
use crate::helpers::target::Target;

const DEFAULT_SEED: u64 = 0x5EED_0013;
const DEFAULT_OPS: usize = 2000;
/// Mutations the run does not send: they would end its own sessions.
const SPARED: [&str; 1] = ["signOutEverywhere"];
const MIN_OPS: usize = 1000;
const BATCH: usize = 40;
const PARALLEL: usize = 3;

use demo_art::Rng;

/// One of `items`, drawn by `rng`.
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len())]
}

/// Strings an attacker tries.
fn nasty_string(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => "\u{0}".to_owned(),
        1 => "a\u{0}b".to_owned(),
        2 => String::new(),
        3 => "x".repeat(20_000),
        4 => "\u{202e}gnp.exe".to_owned(),
        5 => "'; DROP TABLE identity.accounts; --".to_owned(),
        6 => "%00%0d%0a".to_owned(),
        7 => "\u{ffff}\u{fffe}".to_owned(),
        8 => "😀".repeat(500),
        9 => "\\\"\n\r\t".to_owned(),
        10 => "<script>alert(1)</script>".to_owned(),
        _ => (0..rng.below(40))
            .map(|_| {
                char::from_u32(u32::try_from(rng.below(0xD7FF)).unwrap_or(0x41)).unwrap_or('?')
            })
            .collect(),
    }
}

/// Values of the wrong kind or out of range.
fn nasty_value(rng: &mut Rng) -> Value {
    match rng.below(14) {
        0 => json!(9_007_199_254_740_993_u64),
        1 => json!(1e308),
        2 => json!(-1),
        3 => json!(2_147_483_648_i64),
        4 => json!(-9_223_372_036_854_775_808_i64),
        5 => json!(18_446_744_073_709_551_615_u64),
        6 => json!("not a number"),
        7 => json!(true),
        8 => Value::Null,
        9 => json!({}),
        10 => json!([]),
        11 => serde_json::from_str(&format!("{}\"deep\"{}", "[".repeat(40), "]".repeat(40)))
            .unwrap_or(Value::Null),
        12 => json!(0.5),
        _ => json!(nasty_string(rng)),
    }
}

/// A value for `ty`: mostly well-formed, sometimes nasty.
fn value_for(
    schema: &Schema,
    ty: &async_graphql::parser::types::Type,
    rng: &mut Rng,
    depth: usize,
) -> Value {
    use async_graphql::parser::types::BaseType;
    if rng.chance(12) || depth > 6 {
        return nasty_value(rng);
    }
    if ty.nullable && rng.chance(10) {
        return Value::Null;
    }
    match &ty.base {
        BaseType::List(inner) => Value::Array(
            (0..rng.below(4))
                .map(|_| value_for(schema, inner, rng, depth + 1))
                .collect(),
        ),
        BaseType::Named(name) => match schema.types.get(name.as_str()) {
            Some(Def::Enum(values)) => {
                if rng.chance(10) {
                    json!("NOT_A_VALUE")
                } else {
                    json!(pick(rng, values))
                }
            }
            Some(Def::Input(fields)) => {
                let mut object = serde_json::Map::new();
                for f in fields {
                    if !f.ty.nullable || rng.chance(50) {
                        object.insert(f.name.clone(), value_for(schema, &f.ty, rng, depth + 1));
                    }
                }
                if rng.chance(5) {
                    object.insert("notAField".to_owned(), json!(1));
                }
                Value::Object(object)
            }
            _ => match name.as_str() {
                "String" => {
                    if rng.chance(30) {
                        json!(nasty_string(rng))
                    } else {
                        json!(pick(
                            rng,
                            &[
                                "alice@store.test",
                                "4242424242424242",
                                "linux",
                                "Standard",
                                "a title",
                                "k1",
                                "EUR",
                                "de",
                                "+49 30 1234567"
                            ]
                        ))
                    }
                }
                "Int" => json!(pick(
                    rng,
                    &[0, 1, 5, 20, 100, 1000, -3, i64::from(i32::MAX)]
                )),
                "UUID" | "ID" => {
                    if rng.chance(20) {
                        json!("not-a-uuid")
                    } else if rng.chance(50) {
                        json!(SAMPLE_UUID)
                    } else {
                        json!(format!(
                            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                            rng.next_u64() as u32,
                            rng.next_u64() as u16,
                            rng.next_u64() % 0x1000,
                            rng.next_u64() % 0x1000,
                            rng.next_u64() % 0x1_0000_0000_0000
                        ))
                    }
                }
                other => scalar_sample(other),
            },
        },
    }
}

/// `value` as a GraphQL literal of type `ty` (enum values bare when they are names).
fn literal(schema: &Schema, ty: &async_graphql::parser::types::Type, value: &Value) -> String {
    use async_graphql::parser::types::BaseType;
    match (value, &ty.base) {
        (Value::Array(items), BaseType::List(inner)) => format!(
            "[{}]",
            items
                .iter()
                .map(|v| literal(schema, inner, v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Value::Object(fields), BaseType::Named(name)) => {
            let defs = match schema.types.get(name.as_str()) {
                Some(Def::Input(defs)) => defs.as_slice(),
                _ => &[],
            };
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| match defs.iter().find(|d| &d.name == k) {
                    Some(d) => format!("{k}: {}", literal(schema, &d.ty, v)),
                    None => format!("{k}: {}", raw_literal(v)),
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        (Value::String(s), BaseType::Named(name))
            if matches!(schema.types.get(name.as_str()), Some(Def::Enum(_)))
                && !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            s.clone()
        }
        _ => raw_literal(value),
    }
}

fn raw_literal(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(raw_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", raw_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // JSON strings, numbers, booleans and null are GraphQL literals too.
        other => other.to_string(),
    }
}

/// A selection set for a value of the named type (empty for leaves).
fn selection(schema: &Schema, name: &str, rng: &mut Rng, depth: usize, max_depth: usize) -> String {
    match schema.types.get(name) {
        Some(Def::Union(members)) => {
            let member = pick(rng, members).clone();
            let inner = selection(schema, &member, rng, depth + 1, max_depth);
            format!(" {{ __typename ... on {member}{inner} }}")
        }
        Some(Def::Object(fields)) => {
            let mut out = String::from(" {");
            let count = 1 + rng.below(4);
            for _ in 0..count {
                let field: &Field = pick(rng, fields);
                let leaf = schema.is_leaf(named(&field.ty));
                if !leaf && depth >= max_depth {
                    out.push_str(" __typename");
                    continue;
                }
                if rng.chance(15) {
                    let _ = write!(out, " a{}:", rng.below(1000));
                }
                out.push(' ');
                out.push_str(&field.name);
                let mut args = Vec::new();
                for a in &field.args {
                    if !a.ty.nullable || rng.chance(30) {
                        let v = value_for(schema, &a.ty, rng, 0);
                        args.push(format!("{}: {}", a.name, literal(schema, &a.ty, &v)));
                    }
                }
                if !args.is_empty() {
                    let _ = write!(out, "({})", args.join(", "));
                }
                if !leaf {
                    out.push_str(&selection(
                        schema,
                        named(&field.ty),
                        rng,
                        depth + 1,
                        max_depth,
                    ));
                }
            }
            if rng.chance(10) {
                out.push_str(" __typename");
            }
            out.push_str(" }");
            out
        }
        _ => String::new(),
    }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Post,
    Get,
    Multipart,
}

#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    User,
    Admin,
}

#[derive(Clone, Debug)]
struct Op {
    index: usize,
    document: String,
    variables: Value,
    transport: Transport,
    caller: Caller,
}

/// One generated operation.
fn operation(schema: &Schema, rng: &mut Rng, index: usize) -> Op {
    let mutation = rng.chance(25);
    let root = if mutation {
        &schema.mutation
    } else {
        &schema.query
    };
    // Signing out everywhere would end the run's own sessions (every later answer a 401).
    let fields: Vec<&Field> = schema
        .fields(root)
        .iter()
        .filter(|f| !SPARED.contains(&f.name.as_str()))
        .collect();
    let field = (*pick(rng, &fields)).clone();
    let mut declared = Vec::new();
    let mut passed = Vec::new();
    let mut variables = serde_json::Map::new();
    for arg in &field.args {
        if arg.ty.nullable && rng.chance(40) {
            continue;
        }
        let value = value_for(schema, &arg.ty, rng, 0);
        if rng.chance(70) {
            let ty = if rng.chance(5) {
                "Int".to_owned()
            } else {
                arg.ty.to_string()
            };
            declared.push(format!("${}: {ty}", arg.name));
            passed.push(format!("{}: ${}", arg.name, arg.name));
            variables.insert(arg.name.clone(), value);
        } else {
            passed.push(format!(
                "{}: {}",
                arg.name,
                literal(schema, &arg.ty, &value)
            ));
        }
    }
    let max_depth = if rng.chance(10) { 12 } else { 1 + rng.below(5) };
    let inner = selection(schema, named(&field.ty), rng, 1, max_depth);
    let keyword = if mutation { "mutation" } else { "query" };
    let head = if declared.is_empty() {
        format!("{keyword} Fuzz{index}")
    } else {
        format!("{keyword} Fuzz{index}({})", declared.join(", "))
    };
    let call = if passed.is_empty() {
        field.name.clone()
    } else {
        format!("{}({})", field.name, passed.join(", "))
    };
    let mut document = if !inner.is_empty() && rng.chance(8) {
        let on = named(&field.ty);
        if matches!(schema.types.get(on), Some(Def::Object(_))) {
            format!("{head} {{ {call} {{ ...Part }} }} fragment Part on {on}{inner}")
        } else {
            format!("{head} {{ {call}{inner} }}")
        }
    } else {
        format!("{head} {{ {call}{inner} }}")
    };
    // Broken documents.
    match rng.below(100) {
        0..=3 => {
            let cut = rng.below(document.len());
            let cut = (0..=cut)
                .rev()
                .find(|i| document.is_char_boundary(*i))
                .unwrap_or(0);
            document.truncate(cut);
        }
        4..=5 => document.insert_str(rng.below(2) * document.len(), "}{)($@!"),
        6..=7 => document = document.replacen(&field.name, "noSuchField", 1),
        8 => document = format!("{document} {document}"),
        _ => {}
    }
    let transport = match rng.below(100) {
        0..=79 => Transport::Post,
        80..=89 if !mutation => Transport::Get,
        _ => Transport::Multipart,
    };
    let caller = match rng.below(100) {
        0..=49 => Caller::Anonymous,
        50..=84 => Caller::User,
        _ => Caller::Admin,
    };
    Op {
        index,
        document,
        variables: Value::Object(variables),
        transport,
        caller,
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A value for a curl config file (double quotes, backslash escapes).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Sends a batch of operations with one curl (one TLS connection); (index, status, body).
fn send_batch(
    gw_https: u16,
    dir: &Path,
    ops: &[Op],
    tokens: &(String, String),
) -> Vec<(usize, u16, String)> {
    let mut config = String::new();
    for (n, op) in ops.iter().enumerate() {
        if n > 0 {
            config.push_str("next\n");
        }
        let body = json!({ "query": op.document, "variables": op.variables }).to_string();
        let body_file = dir.join(format!("op{}.json", op.index));
        std::fs::write(&body_file, &body).expect("op file");
        let out = dir.join(format!("out{}", op.index));
        let base = format!("https://127.0.0.1:{gw_https}");
        match op.transport {
            Transport::Post => {
                let _ = writeln!(config, "url = {}", quoted(&format!("{base}/graphql")));
                config.push_str("header = \"content-type: application/json\"\n");
                let _ = writeln!(
                    config,
                    "data-binary = {}",
                    quoted(&format!("@{}", body_file.display()))
                );
            }
            Transport::Get => {
                let url = format!(
                    "{base}/graphql?query={}&variables={}",
                    percent_encode(&op.document),
                    percent_encode(&op.variables.to_string())
                );
                let _ = writeln!(config, "url = {}", quoted(&url));
                // Over HTTP/2 nginx answers a request line longer than its header buffers with
                // a GOAWAY for the whole connection; over HTTP/1.1 with a typed 414.
                config.push_str("http1.1\n");
            }
            Transport::Multipart => {
                let _ = writeln!(
                    config,
                    "url = {}",
                    quoted(&format!("{base}/graphql/upload"))
                );
                config.push_str("header = \"Apollo-Require-Preflight: true\"\n");
                let _ = writeln!(
                    config,
                    "form = {}",
                    quoted(&format!("operations=<{}", body_file.display()))
                );
                config.push_str("form = \"map={}\"\n");
            }
        }
        match op.caller {
            Caller::Anonymous => {}
            Caller::User => {
                let _ = writeln!(
                    config,
                    "header = {}",
                    quoted(&format!("authorization: Bearer {}", tokens.0))
                );
            }
            Caller::Admin => {
                let _ = writeln!(
                    config,
                    "header = {}",
                    quoted(&format!("authorization: Bearer {}", tokens.1))
                );
            }
        }
        config.push_str("insecure\nmax-time = 30\n");
        let _ = writeln!(config, "output = {}", quoted(&out.display().to_string()));
        let _ = writeln!(config, "write-out = \"{} %{{http_code}}\\n\"", op.index);
    }
    let config_file = dir.join(format!("batch{}.conf", ops.first().map_or(0, |o| o.index)));
    std::fs::write(&config_file, config).expect("curl config");
    let out = std::process::Command::new("curl")
        .arg("-s")
        .arg("-K")
        .arg(&config_file)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (index, status) = line.split_once(' ')?;
            let index: usize = index.parse().ok()?;
            let status: u16 = status.trim().parse().ok()?;
            let body = std::fs::read_to_string(dir.join(format!("out{index}"))).unwrap_or_default();
            Some((index, status, body))
        })
        .collect()
}

/// What is wrong with an answer, if anything.
fn judge(status: u16, body: &str) -> Option<String> {
    if status == 0 || status >= 500 {
        return Some(format!("status {status}"));
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Some(format!("status {status}, not JSON"));
    };
    match v.get("errors") {
        Some(Value::Array(errors)) if !errors.is_empty() => {
            for e in errors {
                match e["extensions"]["code"].as_str() {
                    None => return Some(format!("an error without extensions.code: {e}")),
                    Some("INTERNAL_SERVER_ERROR") => {
                        return Some(format!("an internal error: {e}"));
                    }
                    Some(_) => {}
                }
            }
            None
        }
        Some(other) => Some(format!("errors is not a non-empty list: {other}")),
        None if v.get("data").is_some() => None,
        None => Some("neither data nor errors".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_through_the_gateway_finds_no_server_error_and_no_untyped_error() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let count = std::env::var("FUZZ_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_OPS);
    let budget = Duration::from_secs(
        std::env::var("FUZZ_BUDGET_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(110),
    );
    println!("fuzz: seed {seed} (FUZZ_SEED={seed} replays this run), {count} operations");
    let target = Target::start(
        |_| {},
        &[
            ("GATEWAY_AUTH_RATE", "6000r/m"),
            ("GATEWAY_AUTH_BURST", "1000"),
        ],
    )
    .await;
    let schema = Schema::load();
    let mut rng = Rng(seed);
    let ops: Vec<Op> = (0..count)
        .map(|i| operation(&schema, &mut rng, i))
        .collect();
    let dir = tmp_dir("fuzz");
    let tokens = (target.user_token.clone(), target.admin_token.clone());

    let started = Instant::now();
    let mut results = Vec::new();
    let mut batches = ops.chunks(BATCH);
    loop {
        let mut running = Vec::new();
        for _ in 0..PARALLEL {
            if started.elapsed() > budget {
                break;
            }
            let Some(batch) = batches.next() else {
                break;
            };
            let batch = batch.to_vec();
            let (https, dir, tokens) = (target.gw.https, dir.clone(), tokens.clone());
            running.push(tokio::task::spawn_blocking(move || {
                send_batch(https, &dir, &batch, &tokens)
            }));
        }
        if running.is_empty() {
            break;
        }
        for task in running {
            results.extend(task.await.expect("batch"));
        }
    }
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);

    let mut failures = Vec::new();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for (index, status, body) in &results {
        if let Ok(v) = serde_json::from_str::<Value>(body) {
            let code = v["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("(data)");
            *codes.entry(format!("{status} {code}")).or_default() += 1;
        }
        if let Some(why) = judge(*status, body) {
            let op = &ops[*index];
            failures.push(format!(
                "#{index} {:?} {:?}: {why}\n  document: {}\n  variables: {}\n  answer: {}",
                op.transport,
                op.caller,
                op.document.chars().take(400).collect::<String>(),
                op.variables
                    .to_string()
                    .chars()
                    .take(300)
                    .collect::<String>(),
                body.chars().take(300).collect::<String>()
            ));
        }
    }
    println!("fuzz: {} answers in {took:?}: {codes:?}", results.len());
    assert!(
        results.len() >= MIN_OPS.min(count),
        "fuzz (seed {seed}): only {} of {count} operations answered in {took:?}",
        results.len()
    );
    assert!(
        failures.is_empty(),
        "fuzz (seed {seed}, FUZZ_SEED={seed} replays it): {} of {} answers are wrong:\n{}",
        failures.len(),
        results.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
