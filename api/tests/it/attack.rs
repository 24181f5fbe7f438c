//! The attack suite (issue 13): what an attacker sends to the public edge, through the real nginx
//! gateway to the real api. Each case asserts the typed refusal (`extensions.code`) and that the
//! api's `/healthz` kept answering while the attack was in flight (`helpers::target`).
//!
//! Some cases hold only with the api-side fixes of the same issue (fragment bombs refused before
//! expansion, api limits over the WebSocket and /graphql/upload, NUL checks, sockets cut after a
//! ban): they are written against the behaviour the issue specifies.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::gateway::*;
use crate::helpers::sdl::Schema;
use crate::helpers::target::*;
use crate::helpers::*;

/// The codes a refused document may carry.
const DOCUMENT_REFUSALS: [&str; 3] = [
    "GRAPHQL_VALIDATION_FAILED",
    "GRAPHQL_PARSE_FAILED",
    "BAD_REQUEST",
];

/// The codes of a non-upload operation refused on /graphql/upload.
const UPLOAD_PATH_REFUSALS: [&str; 3] = ["BAD_REQUEST", "GRAPHQL_VALIDATION_FAILED", "FORBIDDEN"];

/// The longest an attack request may take before it counts as not refused (the issue wants
/// "well under 100 ms"; the time to refusal is printed for each case).
const REFUSAL_TIMEOUT_SECS: u64 = 20;

/// A POST of `body` (raw JSON) to `path` through the gateway, with extra headers.
fn post_args(gw: &Gateway, path: &str, body: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let file = tmp_dir("attack").join("body.json");
    std::fs::write(&file, body).expect("body file");
    let mut args = s(&[
        &gw.url(path),
        "--max-time",
        &REFUSAL_TIMEOUT_SECS.to_string(),
        "-H",
        "content-type: application/json",
        "--data-binary",
        &format!("@{}", file.display()),
    ]);
    for (k, v) in headers {
        args.push("-H".to_owned());
        args.push(format!("{k}: {v}"));
    }
    args
}

/// Runs curl, tolerating a timeout (then status 0 and the error as body).
async fn try_curl(args: Vec<String>) -> Reply {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-k", "-i"])
            .args(&args)
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut rest = text.as_str();
        loop {
            let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
            let mut lines = head.lines();
            let Some(status) = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u16>().ok())
            else {
                return Reply {
                    status: 0,
                    headers: Vec::new(),
                    body: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
            };
            if status == 100 {
                rest = body;
                continue;
            }
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            return Reply {
                status,
                headers,
                body: body.to_owned(),
            };
        }
    })
    .await
    .expect("curl thread")
}

/// The `extensions.code` of the first error of a reply, if it is GraphQL JSON with one.
fn code_of(reply: &Reply) -> Option<String> {
    let v: Value = serde_json::from_str(&reply.body).ok()?;
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// Sends `args` while probing /healthz; the reply, the time it took and what the probes saw.
async fn attack(target: &Target, args: Vec<String>) -> (Reply, Duration, Availability) {
    let ((reply, took), seen) = while_probing(target.api, async {
        let started = Instant::now();
        let reply = try_curl(args).await;
        (reply, started.elapsed())
    })
    .await;
    (reply, took, seen)
}

// ---------------------------------------------------------------------------------------------
// Documents that cost far more than their size

/// `count` fragments on Query, each spreading the next `spreads` times (wrapped in an inline
/// fragment when `inline`), the last selecting `leaf`.
fn fragment_bomb(count: usize, spreads: usize, inline: bool, leaf: &str) -> String {
    let mut doc = String::from("query Bomb { ...F0 }\n");
    for i in 0..count {
        doc.push_str(&format!("fragment F{i} on Query {{ "));
        if i + 1 == count {
            doc.push_str(leaf);
        } else {
            for _ in 0..spreads {
                if inline {
                    doc.push_str(&format!("... on Query {{ ...F{} }} ", i + 1));
                } else {
                    doc.push_str(&format!("...F{} ", i + 1));
                }
            }
        }
        doc.push_str("}\n");
    }
    doc
}

const LEAF: &str = "products(first: 100) { edges { node { id title editions { id name } } } }";

/// The bomb of the issue and its variants, by name.
fn bombs() -> Vec<(&'static str, String)> {
    let many_operations: String = (0..2500)
        .map(|i| format!("query Q{i} {{ products(first: 100) {{ edges {{ node {{ id }} }} }} }}\n"))
        .collect();
    let long_arguments = format!(
        "{{ products({}) {{ edges {{ node {{ id }} }} }} }}",
        (0..6000)
            .map(|_| "first: 100")
            .collect::<Vec<_>>()
            .join(", ")
    );
    let long_list = format!(
        "{{ products(first: 100, filter: {{ genres: [{}] }}) {{ edges {{ node {{ id }} }} }} }}",
        (0..30_000).map(|_| "\"a\"").collect::<Vec<_>>().join(",")
    );
    let aliases: String = (0..4000)
        .map(|i| format!("a{i}: products(first: 100) {{ edges {{ node {{ id }} }} }} "))
        .collect();
    let directives = format!(
        "{{ products(first: 100) {} {{ edges {{ node {{ id }} }} }} }}",
        "@include(if: true) ".repeat(8000)
    );
    let deep_nesting = format!(
        "{{ products(first: 100) {{ edges {{ node {{ {}id{} }} }} }} }}",
        "publisher { products(first: 100) { edges { node { ".repeat(40),
        " } } } }".repeat(40)
    );
    vec![
        // The issue's: 852 bytes, ten fragments each spreading the next ten times.
        ("bomb 10x10", fragment_bomb(10, 10, false, LEAF)),
        ("wider bomb 6x40", fragment_bomb(6, 40, false, LEAF)),
        ("deeper bomb 40x3", fragment_bomb(40, 3, false, LEAF)),
        (
            "bomb of inline fragments 10x10",
            fragment_bomb(10, 10, true, LEAF),
        ),
        ("2500 operations", many_operations),
        ("6000 arguments", long_arguments),
        ("a list of 30000 values", long_list),
        ("4000 aliases", format!("{{ {aliases}}}")),
        ("8000 directives", directives),
        ("nesting 160 deep", deep_nesting),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_bombs_and_their_variants_are_refused_while_the_api_answers() {
    let target = Target::start(|_| {}, &[]).await;
    let mut failures = Vec::new();

    for (name, doc) in bombs() {
        let mut body = json!({ "query": doc });
        if name == "2500 operations" {
            body["operationName"] = json!("Q0");
        }
        let body = body.to_string();
        assert!(body.len() < 256 * 1024, "{name}: {} bytes", body.len());
        let (reply, took, seen) =
            attack(&target, post_args(&target.gw, "/graphql", &body, &[])).await;
        println!(
            "attack {name}: {} bytes, {} {:?} in {took:?}; /healthz max {:?} over {} probes",
            body.len(),
            reply.status,
            code_of(&reply),
            seen.max(),
            seen.latencies.len()
        );
        seen.assert_available(name);
        let code = code_of(&reply);
        let refused = code
            .as_deref()
            .is_some_and(|c| DOCUMENT_REFUSALS.contains(&c));
        let has_data =
            serde_json::from_str::<Value>(&reply.body).is_ok_and(|v| v["data"].is_object());
        if !refused || has_data || reply.status >= 500 || reply.status == 0 {
            failures.push(format!(
                "{name}: {} {:?} after {took:?}: {}",
                reply.status,
                code,
                reply.body.chars().take(300).collect::<String>()
            ));
        }
    }

    // The limits hold on the socket as over HTTP.
    let (mut ws, ack) = ws_connect(&target.gw, None).await;
    assert_eq!(
        ack.as_ref().map(|a| a["type"].clone()),
        Some(json!("connection_ack"))
    );
    let ((answer, took), seen) = while_probing(target.api, async {
        let started = Instant::now();
        let answer = ws_operation(
            &mut ws,
            "bomb",
            &fragment_bomb(10, 10, false, LEAF),
            json!({}),
        )
        .await;
        (answer, started.elapsed())
    })
    .await;
    println!(
        "attack bomb over the WebSocket: {answer} in {took:?}; /healthz max {:?}",
        seen.max()
    );
    seen.assert_available("bomb over the WebSocket");
    // A refusal comes as an `error` message (payload: the errors) or, as the api's socket loop
    // answers a refused document, as one `next` whose result has no data and the errors.
    let ws_code = match answer["type"].as_str() {
        Some("error") => answer["payload"][0]["extensions"]["code"].as_str(),
        Some("next") if answer["payload"]["data"].is_null() => {
            answer["payload"]["errors"][0]["extensions"]["code"].as_str()
        }
        _ => None,
    }
    .unwrap_or_default();
    if !DOCUMENT_REFUSALS.contains(&ws_code) {
        failures.push(format!("bomb over the WebSocket: {answer}"));
    }

    assert!(
        failures.is_empty(),
        "not refused with a typed error:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Rate limits on every transport

const SIGN_IN_DOC: &str = r#"mutation { signIn(input: {email: "victim@attack.test", password: "guess-0123456"}) { accessToken } }"#;
const SIGN_UP_DOC: &str = r#"mutation { signUp(input: {email: "new@attack.test", password: "long-enough-password", displayName: "N"}) { accessToken } }"#;
const TOP_UP_DOC: &str = r#"mutation { topUpWallet(amount: 1000, paymentMethod: "4000000000000002", idempotencyKey: "k") { id } }"#;

/// The same document with its field name's letters as JSON escapes (`sign\u0049n`).
fn escaped(doc: &str) -> String {
    let body = json!({ "query": doc }).to_string();
    ["signIn", "signUp", "topUpWallet"]
        .iter()
        .fold(body, |acc, name| {
            let mut chars = name.chars();
            let first: String = chars.by_ref().take(4).collect();
            let fifth = chars.next().expect("a fifth letter");
            let rest: String = chars.collect();
            acc.replace(name, &format!("{first}\\u{:04X}{rest}", u32::from(fifth)))
        })
}

/// The transports of one document over HTTP: curl arguments by name.
fn transports(gw: &Gateway, doc: &str, token: &str) -> Vec<(&'static str, Vec<String>)> {
    let bearer = format!("Bearer {token}");
    let auth: Vec<(&str, &str)> = vec![("authorization", bearer.as_str())];
    let plain = json!({ "query": doc }).to_string();
    let multipart = |operations: &str| {
        s(&[
            &gw.url("/graphql/upload"),
            "--max-time",
            "20",
            "-H",
            "Apollo-Require-Preflight: true",
            "-H",
            &format!("authorization: {bearer}"),
            "-F",
            &format!("operations={operations}"),
            "-F",
            "map={}",
        ])
    };
    vec![
        (
            "POST /graphql JSON",
            post_args(gw, "/graphql", &plain, &auth),
        ),
        (
            "POST /graphql JSON, escaped name",
            post_args(gw, "/graphql", &escaped(doc), &auth),
        ),
        ("POST /graphql/upload multipart", multipart(&plain)),
        (
            "POST /graphql/upload multipart, escaped name",
            multipart(&escaped(doc)),
        ),
    ]
}

/// The gateway's per-address limit (the first line) holds for each limited mutation on each
/// HTTP transport: past the burst, 429 RATE_LIMITED with retryAfterSeconds and Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_limits_each_limited_mutation_on_every_http_transport() {
    let target = Target::start(|_| {}, &[]).await;
    let mut failures = Vec::new();
    for (mutation, doc) in [
        ("signIn", SIGN_IN_DOC),
        ("signUp", SIGN_UP_DOC),
        ("topUpWallet", TOP_UP_DOC),
    ] {
        for index in 0..4 {
            // A gateway of its own for each case: the limit zone is per nginx.
            let gw = Gateway::start(
                target.api,
                &[("GATEWAY_AUTH_RATE", "1r/m"), ("GATEWAY_AUTH_BURST", "2")],
            );
            let (transport, args) = transports(&gw, doc, &target.user_token).swap_remove(index);
            let mut statuses = Vec::new();
            let mut last = None;
            let ((), seen) = while_probing(target.api, async {
                for _ in 0..4 {
                    let reply = try_curl(args.clone()).await;
                    statuses.push(reply.status);
                    last = Some(reply);
                }
            })
            .await;
            seen.assert_available(&format!("{mutation} {transport}"));
            let last = last.expect("a reply");
            let v: Value = serde_json::from_str(&last.body).unwrap_or(Value::Null);
            let ok = statuses[..3].iter().all(|s| *s != 429 && *s != 0)
                && last.status == 429
                && v["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
                && v["errors"][0]["extensions"]["retryAfterSeconds"] == 60
                && last.header("retry-after") == Some("60");
            println!("limit {mutation} over {transport}: {statuses:?}");
            if !ok {
                failures.push(format!(
                    "{mutation} over {transport}: {statuses:?} {last:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// /graphql/upload takes GraphQL multipart requests only: plain JSON or a GET is refused at the
/// gateway, typed; and a limited mutation that is sent there as multipart (under the gateway's
/// limit) is refused by the api, which accepts only the upload mutations on that path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_upload_passes_only_upload_requests() {
    let target = Target::start(|_| {}, &[]).await;
    let gw = &target.gw;
    let body = json!({ "query": SIGN_IN_DOC }).to_string();

    let (json_post, _, seen_json) =
        attack(&target, post_args(gw, "/graphql/upload", &body, &[])).await;
    let (get, _, seen_get) = attack(
        &target,
        s(&[&gw.url("/graphql/upload?query=%7B__typename%7D")]),
    )
    .await;
    let mut failures = Vec::new();
    for (name, doc) in [
        ("signIn", SIGN_IN_DOC),
        ("signUp", SIGN_UP_DOC),
        ("topUpWallet", TOP_UP_DOC),
    ] {
        let (transport, args) = transports(gw, doc, &target.user_token).swap_remove(2);
        let (reply, _, seen) = attack(&target, args).await;
        seen.assert_available(name);
        // Refused as a request that has no place there, not answered as the mutation would be.
        let code = code_of(&reply);
        if !code
            .as_deref()
            .is_some_and(|c| UPLOAD_PATH_REFUSALS.contains(&c))
        {
            failures.push(format!(
                "{name} over {transport} was not refused: {reply:?}"
            ));
        }
    }

    seen_json.assert_available("JSON to /graphql/upload");
    seen_get.assert_available("GET /graphql/upload");
    assert_eq!(json_post.status, 415, "{json_post:?}");
    assert_eq!(code_of(&json_post).as_deref(), Some("BAD_REQUEST"));
    assert_eq!(get.status, 405, "{get:?}");
    assert_eq!(code_of(&get).as_deref(), Some("BAD_REQUEST"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Over the WebSocket the gateway sees no frames: the api's own limits hold there, per client
/// address (and per account for top-ups), with RATE_LIMITED and retryAfterSeconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_limits_each_limited_mutation_over_the_websocket() {
    let target = Target::start(
        |c| {
            c.rates.signin_per_ip = rate(3, 600);
            c.rates.signin_per_email = rate(3, 600);
            c.rates.signup_per_ip = rate(3, 600);
            c.rates.signup_per_email = rate(3, 600);
        },
        &[],
    )
    .await;
    let mut failures = Vec::new();
    let signups: Vec<String> = (0..40)
        .map(|i| format!(r#"mutation {{ signUp(input: {{email: "ws{i}@attack.test", password: "long-enough-password", displayName: "W"}}) {{ accessToken }} }}"#))
        .collect();
    let top_ups: Vec<String> = (0..40)
        .map(|i| format!(r#"mutation {{ topUpWallet(amount: 1000, paymentMethod: "4000000000000002", idempotencyKey: "ws-{i}") {{ id }} }}"#))
        .collect();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("signIn", vec![SIGN_IN_DOC.to_owned(); 40]),
        ("signUp", signups),
        ("topUpWallet", top_ups),
    ];
    for (name, docs) in cases {
        let (mut ws, ack) = ws_connect(&target.gw, Some(&target.user_token)).await;
        assert_eq!(
            ack.as_ref().map(|a| a["type"].clone()),
            Some(json!("connection_ack")),
            "{ack:?}"
        );
        let (limited, seen) = while_probing(target.api, async {
            for (i, doc) in docs.iter().enumerate() {
                let answer = ws_operation(&mut ws, &format!("{name}-{i}"), doc, json!({})).await;
                let errors = if answer["type"] == "error" {
                    answer["payload"].clone()
                } else {
                    answer["payload"]["errors"].clone()
                };
                if errors[0]["extensions"]["code"] == "RATE_LIMITED" {
                    return Some((i, errors[0]["extensions"].clone()));
                }
                if answer.get("closed").is_some() || answer.get("timeout").is_some() {
                    return None;
                }
            }
            None
        })
        .await;
        seen.assert_available(name);
        println!("{name} over the WebSocket: limited at {limited:?}");
        match limited {
            Some((_, ext)) if ext["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0) => {}
            other => failures.push(format!(
                "{name} over the WebSocket: not limited ({other:?})"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Oversized and malformed requests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_typed_refusals() {
    let target = Target::start(|_| {}, &[]).await;
    let gw = &target.gw;
    let dir = tmp_dir("attack-big");
    let big_json = dir.join("big.json");
    std::fs::write(
        &big_json,
        format!("{{\"query\":\"{}\"}}", " ".repeat(300 * 1024)),
    )
    .expect("file");
    let huge = dir.join("huge.bin");
    std::fs::write(&huge, vec![b'x'; 12 * 1024 * 1024]).expect("file");
    let long_header = format!("X-Padding: {}", "a".repeat(20_000));
    let long_uri = gw.url(&format!("/graphql?query={}", "a".repeat(20_000)));
    let bearer = format!("Authorization: Bearer {}", target.user_token);
    let query = json!({ "query": "{ __typename }" }).to_string();
    let cases: Vec<(&str, u16, &str, Vec<String>)> = vec![
        (
            "body over the /graphql limit",
            413,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql"),
                "-H",
                "content-type: application/json",
                "--data-binary",
                &format!("@{}", big_json.display()),
            ]),
        ),
        (
            "chunked body over the limit",
            413,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql"),
                "--http1.1",
                "-H",
                "content-type: application/json",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &format!("@{}", big_json.display()),
            ]),
        ),
        (
            "upload over the /graphql/upload limit",
            413,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql/upload"),
                "-H",
                "Apollo-Require-Preflight: true",
                "-F",
                "operations={}",
                "-F",
                &format!("0=@{}", huge.display()),
            ]),
        ),
        (
            "headers too large",
            400,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql"),
                "--http1.1",
                "-H",
                &long_header,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &query,
            ]),
        ),
        (
            "request line too long",
            414,
            "BAD_REQUEST",
            s(&[&long_uri, "--http1.1"]),
        ),
        (
            "Authorization twice (HTTP/1.1)",
            400,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql"),
                "--http1.1",
                "-H",
                &bearer,
                "-H",
                &bearer,
                "-H",
                "content-type: application/json",
                "--data-binary",
                &query,
            ]),
        ),
        (
            "Authorization twice (HTTP/2)",
            400,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql"),
                "--http2",
                "-H",
                &bearer,
                "-H",
                "Authorization: Bearer other",
                "-H",
                "content-type: application/json",
                "--data-binary",
                &query,
            ]),
        ),
        (
            "Authorization twice on an upload",
            400,
            "BAD_REQUEST",
            s(&[
                &gw.url("/graphql/upload"),
                "--http1.1",
                "-H",
                &bearer,
                "-H",
                &bearer,
                "-F",
                "operations={}",
            ]),
        ),
        (
            "a forged token",
            401,
            "UNAUTHENTICATED",
            s(&[
                &gw.url("/graphql"),
                "-H",
                "Authorization: Bearer a.b.c",
                "-H",
                "content-type: application/json",
                "--data-binary",
                &query,
            ]),
        ),
        (
            "a forged token on a build upload",
            401,
            "UNAUTHENTICATED",
            s(&[
                &gw.url("/uploads/builds/00000000-0000-0000-0000-000000000000"),
                "-X",
                "PUT",
                "-H",
                "Authorization: Bearer a.b.c",
                "--data-binary",
                "x",
            ]),
        ),
    ];
    let mut failures = Vec::new();
    for (name, status, code, args) in cases {
        let (reply, took, seen) = attack(&target, args).await;
        seen.assert_available(name);
        println!("{name}: {} {:?} in {took:?}", reply.status, code_of(&reply));
        let typed = reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        if reply.status != status || code_of(&reply).as_deref() != Some(code) || !typed {
            failures.push(format!("{name}: {reply:?}"));
        }
        if status == 401
            && reply.header("www-authenticate") != Some(r#"Bearer error="invalid_token""#)
        {
            failures.push(format!("{name}: no WWW-Authenticate: {reply:?}"));
        }
    }

    // The media type of GraphQL over HTTP, when the client takes it.
    let wants = try_curl(s(&[
        &gw.url("/graphql"),
        "-H",
        "accept: application/graphql-response+json, application/json",
        "-H",
        "content-type: application/json",
        "--data-binary",
        &format!("@{}", big_json.display()),
    ]))
    .await;
    assert_eq!(wants.status, 413);
    assert_eq!(
        wants.header("content-type"),
        Some("application/graphql-response+json")
    );

    // The api down: 502, typed.
    let closed = free_port();
    let orphan = Gateway::start(format!("127.0.0.1:{closed}").parse().expect("addr"), &[]);
    let down = try_curl(gql_args(&orphan.url("/graphql"), "{ __typename }", &[])).await;
    assert_eq!(down.status, 502, "{down:?}");
    assert_eq!(code_of(&down).as_deref(), Some("INTERNAL_SERVER_ERROR"));

    assert!(
        failures.is_empty(),
        "untyped or wrong refusals:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Bad bytes

/// Refusals that may come before a string argument is looked at.
const NUL_REFUSALS: [&str; 4] = ["UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT"];

/// A NUL in any string argument of the schema is refused with a typed error: BAD_USER_INPUT
/// naming the field (checked at the edge of the domain), or a refusal that comes before the
/// input is used (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, CONFLICT); never INTERNAL_SERVER_ERROR
/// (PostgreSQL refuses NUL in text), never an answer as if the input were fine. Sent as an admin,
/// and again as a publisher when the admin is FORBIDDEN, so that authorization answers first as
/// rarely as possible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_every_string_argument_is_refused_typed() {
    let target = Target::start(|_| {}, &[]).await;
    let schema = Schema::load();
    let cases = schema.string_argument_cases("\u{0}");
    assert!(cases.len() > 20, "{} cases", cases.len());
    let admin = format!("Bearer {}", target.admin_token);
    let publisher = format!("Bearer {}", target.publisher_token);
    let mut failures = Vec::new();
    let (checked, seen) = while_probing(target.api, async {
        let mut checked = 0;
        for case in &cases {
            let body = json!({ "query": case.query, "variables": case.variables }).to_string();
            let as_admin = [("authorization", admin.as_str())];
            let mut reply = try_curl(post_args(&target.gw, "/graphql", &body, &as_admin)).await;
            if code_of(&reply).as_deref() == Some("FORBIDDEN") {
                let as_publisher = [("authorization", publisher.as_str())];
                reply = try_curl(post_args(&target.gw, "/graphql", &body, &as_publisher)).await;
            }
            checked += 1;
            let v: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
            let error = &v["errors"][0];
            let ok = reply.status < 500
                && match error["extensions"]["code"].as_str() {
                    Some("BAD_USER_INPUT") => error["extensions"]["field"]
                        .as_str()
                        .is_some_and(|f| !f.is_empty()),
                    Some(code) => NUL_REFUSALS.contains(&code),
                    None => false,
                };
            if !ok {
                failures.push(format!(
                    "{}: {} {}",
                    case.name,
                    reply.status,
                    reply.body.chars().take(200).collect::<String>()
                ));
            }
        }
        checked
    })
    .await;
    seen.assert_available("NUL in string arguments");
    println!(
        "NUL: {checked} string arguments, {} not refused",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Sockets outliving their session

/// Whether a socket no longer serves `me` to its account: an error UNAUTHENTICATED (or
/// FORBIDDEN) or a close by the server.
fn cut_off(answer: &Value) -> bool {
    if answer.get("closed").is_some() {
        return true;
    }
    let errors = if answer["type"] == "error" {
        &answer["payload"]
    } else {
        &answer["payload"]["errors"]
    };
    let code = errors[0]["extensions"]["code"].as_str().unwrap_or_default();
    (code == "UNAUTHENTICATED" || code == "FORBIDDEN") && answer["payload"]["data"]["me"].is_null()
}

/// Polls `me` on the socket until it is cut off (up to 30 s: a token's expiry comes with the
/// api's 5 s leeway); the last answer.
async fn until_cut_off(ws: &mut Socket) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let answer = ws_operation(ws, &format!("me-{n}"), ME, json!({})).await;
        if cut_off(&answer) || Instant::now() > deadline {
            return answer;
        }
        // Wait for the server's next word (a close) rather than a fixed time.
        if let Some(next) = ws_next(ws, Duration::from_millis(250)).await
            && next.get("closed").is_some()
        {
            return next;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_cut_after_a_ban_and_a_sign_out_everywhere() {
    let target = Target::start(|_| {}, &[]).await;
    let (mut ws, ack) = ws_connect(&target.gw, Some(&target.user_token)).await;
    assert_eq!(
        ack.as_ref().map(|a| a["type"].clone()),
        Some(json!("connection_ack")),
        "{ack:?}"
    );
    let before = ws_operation(&mut ws, "me-0", ME, json!({})).await;
    assert_eq!(
        before["payload"]["data"]["me"]["id"],
        target.user_id.as_str(),
        "{before}"
    );

    // Banned by an admin.
    let ban = try_curl(gql_args(
        &target.gw.url("/graphql"),
        &format!(r#"mutation {{ setAccountStatus(accountId: "{}", status: BANNED, reason: "attack") {{ status }} }}"#, target.user_id),
        &[("authorization", &format!("Bearer {}", target.admin_token))],
    ))
    .await;
    assert_eq!(
        ban.json()["data"]["setAccountStatus"]["status"],
        "BANNED",
        "{ban:?}"
    );
    let (after_ban, seen) = while_probing(target.api, until_cut_off(&mut ws)).await;
    seen.assert_available("socket after a ban");

    // Sign out everywhere: another account, its socket, then the sign-out over HTTP.
    let input =
        json!({ "email": "other@attack.test", "password": PASSWORD, "displayName": "Other" });
    let body = json!({ "query": SIGN_UP, "variables": { "input": input } }).to_string();
    let other = try_curl(post_args(&target.gw, "/graphql", &body, &[]))
        .await
        .json();
    let token = other["data"]["signUp"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let (mut ws2, _) = ws_connect(&target.gw, Some(&token)).await;
    let alive = ws_operation(&mut ws2, "me-0", ME, json!({})).await;
    assert_eq!(
        alive["payload"]["data"]["me"]["email"], "other@attack.test",
        "{alive}"
    );
    let out = try_curl(gql_args(
        &target.gw.url("/graphql"),
        "mutation { signOutEverywhere }",
        &[("authorization", &format!("Bearer {token}"))],
    ))
    .await;
    assert_no_errors(&out.json());
    let after_sign_out = until_cut_off(&mut ws2).await;

    assert!(
        cut_off(&after_ban),
        "a banned account's socket still answers: {after_ban}"
    );
    assert!(
        cut_off(&after_sign_out),
        "a signed-out socket still answers: {after_sign_out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_cut_when_their_token_expires() {
    let target = Target::start(|c| c.jwt.access_ttl = Duration::from_secs(4), &[]).await;
    let (mut ws, ack) = ws_connect(&target.gw, Some(&target.user_token)).await;
    assert_eq!(
        ack.as_ref().map(|a| a["type"].clone()),
        Some(json!("connection_ack")),
        "{ack:?}"
    );
    let after_expiry = until_cut_off(&mut ws).await;
    assert!(
        cut_off(&after_expiry),
        "a socket outlived its token: {after_expiry}"
    );
}
