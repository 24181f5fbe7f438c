//! The by-the-book GraphQL endpoint (issue 16): what a third-party client library expects of it.
//!
//! - media types and status codes as the GraphQL-over-HTTP spec says (400 for a request that is
//!   not well-formed; for a well-formed one refused before execution, `application/json`: 200,
//!   `application/graphql-response+json`: 400 and no `data`), 405 for a mutation over GET, 406
//!   and 415;
//! - variables coerced before anything runs (`null` or nothing for a non-null variable);
//! - the standard introspection query of graphql-js / graphql-core passes, while deeper or
//!   multiplying introspection is refused;
//! - a refused token in `connection_init` closes the socket with 4403, directly and through the
//!   gateway;
//! - every argument and every input field is described;
//! - automatic persisted queries by hash, over POST and GET;
//! - `graphql-http`'s server audits and graphql-js's introspection through the real gateway:
//!   zero errors, zero warnings;
//! - the reference `graphql-ws` client renews an expired token by reconnecting.

use std::path::PathBuf;
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::helpers::gateway::{Gateway, curl, repo_root, tls_files};
use crate::helpers::target::ws_connect;
use crate::helpers::ws::{Frame, Ws};
use crate::helpers::*;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const INTROSPECTION: &str = include_str!("documents/introspection.graphql");

fn post(body: &str, accept: Option<&str>) -> Request<Body> {
    let mut req = Request::post("/graphql").header("content-type", "application/json");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.body(Body::from(body.to_owned())).expect("request")
}

fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn media_types_and_status_codes_follow_the_spec() {
    let app = TestApp::spawn().await;
    let ok = r#"{"query":"{ __typename }"}"#;
    // Not a well-formed GraphQL-over-HTTP request: 400 whatever the media type.
    let malformed = [
        ("not JSON", r#"{ "not a JSON"#),
        ("no body", ""),
        ("no query", r#"{"qeury":"{ __typename }"}"#),
        ("query not a string", r#"{"query":0}"#),
        (
            "operationName not a string",
            r#"{"query":"{ __typename }","operationName":false}"#,
        ),
        (
            "variables not a map",
            r#"{"query":"{ __typename }","variables":"x"}"#,
        ),
        (
            "extensions not a map",
            r#"{"query":"{ __typename }","extensions":["x"]}"#,
        ),
        ("a batch", r#"[{"query":"{ __typename }"}]"#),
    ];
    // Well-formed, refused before execution: 200 and errors with application/json; 400 and no
    // data with the new media type.
    let request_errors = [
        ("parse failure", r#"{"query":"{"}"#),
        ("validation failure", r#"{"query":"{ nothingHere }"}"#),
        (
            "too deep",
            r#"{"query":"{ a { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } } }"}"#,
        ),
        (
            "variable coercion",
            r#"{"query":"query($id: ID!) { __typename }","variables":{"id":null}}"#,
        ),
    ];

    let mut seen = Vec::new();
    for accept in [
        None,
        Some("*/*"),
        Some("application/json"),
        Some(GRAPHQL_RESPONSE),
    ] {
        let (status, headers, body) = app.send(post(ok, accept)).await;
        seen.push((accept, status, content_type(&headers), body));
    }
    let mut bad = Vec::new();
    for (what, body) in malformed {
        for accept in [None, Some("application/json"), Some(GRAPHQL_RESPONSE)] {
            let (status, _, answer) = app.send(post(body, accept)).await;
            bad.push((what, accept, status, answer));
        }
    }
    let mut refused = Vec::new();
    for (what, body) in request_errors {
        let json = app.send(post(body, Some("application/json"))).await;
        let new = app.send(post(body, Some(GRAPHQL_RESPONSE))).await;
        refused.push((what, json, new));
    }
    let (not_acceptable, _, _) = app.send(post(ok, Some("text/html"))).await;
    let no_type = Request::post("/graphql").body(Body::empty()).expect("req");
    let (no_content_type, _, _) = app.send(no_type).await;
    let get_mutation = Request::get("/graphql?query=mutation%20%7B%20__typename%20%7D")
        .header("accept", GRAPHQL_RESPONSE)
        .body(Body::empty())
        .expect("req");
    let (mutation_over_get, get_headers, _) = app.send(get_mutation).await;
    let get_named = Request::get(
        "/graphql?query=query%20A%20%7B%20a%3A%20__typename%20%7D%20query%20B%20%7B%20b%3A%20__typename%20%7D&operationName=B",
    )
    .body(Body::empty())
    .expect("req");
    let (_, _, named) = app.send(get_named).await;

    for (accept, status, ct, body) in &seen {
        assert_eq!(*status, StatusCode::OK, "{accept:?}");
        assert_eq!(body["data"]["__typename"], "Query", "{accept:?}");
        let wanted = if *accept == Some(GRAPHQL_RESPONSE) {
            GRAPHQL_RESPONSE
        } else {
            "application/json"
        };
        assert!(ct.starts_with(wanted), "{accept:?}: {ct}");
    }
    for (what, accept, status, answer) in &bad {
        assert_eq!(
            *status,
            StatusCode::BAD_REQUEST,
            "{what} ({accept:?}): {answer}"
        );
        assert_eq!(error_code(answer), "BAD_REQUEST", "{what}");
    }
    for (what, (json_status, json_headers, json_body), (new_status, new_headers, new_body)) in
        &refused
    {
        assert_eq!(*json_status, StatusCode::OK, "{what} (application/json)");
        assert!(
            json_body["errors"][0]["extensions"]["code"].is_string(),
            "{what}: {json_body}"
        );
        assert!(content_type(json_headers).starts_with("application/json"));
        assert_eq!(
            *new_status,
            StatusCode::BAD_REQUEST,
            "{what} ({GRAPHQL_RESPONSE})"
        );
        assert!(new_body.get("data").is_none(), "{what}: {new_body}");
        assert!(
            new_body["errors"][0]["message"].is_string(),
            "{what}: {new_body}"
        );
        assert!(content_type(new_headers).starts_with(GRAPHQL_RESPONSE));
    }
    assert_eq!(not_acceptable, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(no_content_type, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(mutation_over_get, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_headers["allow"], "POST");
    assert_eq!(
        named["data"],
        json!({ "b": "Query" }),
        "operationName over GET"
    );
}

#[tokio::test]
async fn variables_are_coerced_before_anything_runs() {
    let app = TestApp::spawn().await;
    let product = "query($id: UUID!) { reviews(productId: $id) { edges { cursor } } }";
    let nullable_use =
        "query($s: String!) { products(first: 1, filter: {text: $s}) { edges { cursor } } }";
    let cases = [
        (
            "null for a non-null variable",
            product,
            json!({ "id": null }),
        ),
        ("a non-null variable missing", product, json!({})),
        (
            "null for a non-null variable used where null is allowed",
            nullable_use,
            json!({ "s": null }),
        ),
        (
            "a required input field missing",
            "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }",
            json!({ "input": { "email": "a@b.c" } }),
        ),
        (
            "a field the input does not have",
            "mutation($input: SignInInput!) { signIn(input: $input) { accessToken } }",
            json!({ "input": { "email": "a@b.c", "password": "x", "admin": true } }),
        ),
    ];

    let mut answers = Vec::new();
    for (what, query, variables) in &cases {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let json = app.send(post(&body, Some("application/json"))).await;
        let new = app.send(post(&body, Some(GRAPHQL_RESPONSE))).await;
        answers.push((*what, json, new));
    }
    let fine = app
        .gql(None, nullable_use, json!({ "s": "anything" }))
        .await;

    for (what, (json_status, _, json_body), (new_status, _, new_body)) in &answers {
        assert_eq!(*json_status, StatusCode::OK, "{what}");
        assert_eq!(
            error_code(json_body),
            "BAD_USER_INPUT",
            "{what}: {json_body}"
        );
        assert!(json_body.get("data").is_none(), "{what}: {json_body}");
        assert_eq!(*new_status, StatusCode::BAD_REQUEST, "{what}: {new_body}");
        assert!(new_body.get("data").is_none(), "{what}: {new_body}");
    }
    assert_no_errors(&fine);
}

#[tokio::test]
async fn the_standard_introspection_query_passes_and_deeper_introspection_does_not() {
    let app = TestApp::spawn().await;
    let deep_types = format!(
        "{{ __type(name: \"Query\") {{ {}name{} }} }}",
        "ofType { ".repeat(16),
        " }".repeat(16)
    );
    let multiplying = "{ __type(name: \"Query\") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }";
    let deep_data = "{ a { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } } }";

    let standard = app.gql(None, INTROSPECTION, json!({})).await;
    let deep = app.gql(None, &deep_types, json!({})).await;
    let wide = app.gql(None, multiplying, json!({})).await;
    let data = app.gql(None, deep_data, json!({})).await;

    assert_no_errors(&standard);
    assert!(
        standard["data"]["__schema"]["types"]
            .as_array()
            .is_some_and(|t| t.len() > 50),
        "{standard}"
    );
    for v in [&deep, &wide, &data] {
        assert_eq!(error_code(v), "GRAPHQL_VALIDATION_FAILED", "{v}");
    }
    assert!(
        deep.to_string().contains("introspection query is nested"),
        "{deep}"
    );
    assert!(wide.to_string().contains("list fields"), "{wide}");
    assert!(data.to_string().contains("nested 13 fields deep"), "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_socket_token_closes_with_4403() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let user = app.sign_up("ws@spec.test", "Ws").await;
    let good = user["accessToken"].as_str().expect("token").to_owned();
    // A character inside the signature (the last one may only carry padding bits).
    let at = good.len() - 10;
    let other = if &good[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{other}{}", &good[..at], &good[at + 1..]);

    let mut direct = Ws::connect(addr, &[]).await;
    direct
        .send(json!({ "type": "connection_init",
                      "payload": { "Authorization": format!("Bearer {forged}") } }))
        .await;
    let direct_close = direct.next().await;
    let (_, through_gateway) = ws_connect(&gw, Some(&forged)).await;
    let (_, accepted) = ws_connect(&gw, Some(&good)).await;

    assert!(
        matches!(&direct_close, Frame::Closed(Some((4403, _)))),
        "{direct_close:?}"
    );
    assert_eq!(through_gateway, Some(json!({ "closed": 4403 })));
    assert_eq!(
        accepted.as_ref().map(|v| v["type"].clone()),
        Some(json!("connection_ack"))
    );
}

/// Every argument and every input field carries a description, written for a third-party
/// developer (not a restatement of its name).
#[tokio::test]
async fn every_argument_and_input_field_is_described() {
    let app = TestApp::spawn().await;
    let schema = app.gql(None, INTROSPECTION, json!({})).await;
    assert_no_errors(&schema);

    let mut missing = Vec::new();
    let mut counted = (0, 0);
    let described = |d: &Value| d.as_str().is_some_and(|s| s.trim().len() >= 10);
    for ty in schema["data"]["__schema"]["types"]
        .as_array()
        .expect("types")
    {
        let name = ty["name"].as_str().unwrap_or_default();
        if name.starts_with("__") {
            continue;
        }
        for field in ty["fields"].as_array().into_iter().flatten() {
            for arg in field["args"].as_array().into_iter().flatten() {
                counted.0 += 1;
                if !described(&arg["description"]) {
                    missing.push(format!(
                        "argument {name}.{}({})",
                        field["name"], arg["name"]
                    ));
                }
            }
        }
        for input in ty["inputFields"].as_array().into_iter().flatten() {
            counted.1 += 1;
            if !described(&input["description"]) {
                missing.push(format!("input field {name}.{}", input["name"]));
            }
        }
    }

    assert!(counted.0 > 100 && counted.1 > 50, "{counted:?}");
    assert!(
        missing.is_empty(),
        "{} of {} arguments and input fields lack a description:\n{}",
        missing.len(),
        counted.0 + counted.1,
        missing.join("\n")
    );
}

/// The Node.js that runs the audits: `STORE_NODE` (set by `cargo xtask test`) or `node`.
fn node() -> String {
    std::env::var("STORE_NODE").unwrap_or_else(|_| "node".to_owned())
}

/// The conformance packages (pinned in `api/tests/conformance/package-lock.json`), installed
/// with `npm ci` when `cargo xtask test` has not installed them already.
fn conformance_dir() -> PathBuf {
    let dir = repo_root().join("api/tests/conformance");
    let installed = ["graphql-http", "graphql-ws", "ws"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists());
    if !installed {
        let node = node();
        let npm = PathBuf::from(&node)
            .parent()
            .map(|bin| bin.join("npm"))
            .filter(|npm| npm.exists())
            .map_or_else(|| "npm".to_owned(), |npm| npm.display().to_string());
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs (install Node.js 20+, or run `cargo xtask test`, which does)");
        assert!(status.success(), "npm ci in {}", dir.display());
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_http_audits_pass_through_the_gateway_without_a_warning() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let url = gw.url("/graphql");
    let dir = conformance_dir();

    let out = tokio::task::spawn_blocking(move || {
        Command::new(node())
            .arg(dir.join("audit.mjs"))
            .arg(&url)
            .env("NODE_EXTRA_CA_CERTS", &tls_files().0)
            .output()
            .expect("node runs")
    })
    .await
    .expect("audit thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let summary: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no summary from the audits:\n{stdout}\n{stderr}"));

    // graphql-http 1.23.1 has 61 server audits; every one passes, the MAYs included.
    assert!(
        summary["audits"].as_u64().is_some_and(|n| n >= 61),
        "{summary}"
    );
    assert_eq!(summary["ok"], summary["audits"], "{stdout}");
    assert_eq!(summary["errors"], 0, "{stdout}");
    assert_eq!(summary["warnings"], 0, "{stdout}");
    assert_eq!(summary["introspection"], "ok", "{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Automatic persisted queries (Apollo's protocol): a hash alone is `PersistedQueryNotFound`
/// until the document was sent with it once; then the hash alone runs it, over POST and over a
/// GET through the gateway (the short URL a CDN caches). A wrong hash is refused, and a mutation
/// stays POST-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_persisted_queries_run_by_hash_over_post_and_get() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let query = "query Shelf($first: Int!) { products(first: $first) { edges { cursor } } }";
    let hash = sha256_hex(query);
    let by_hash = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let hash_only = json!({ "extensions": by_hash, "variables": { "first": 2 } }).to_string();
    let with_query =
        json!({ "query": query, "extensions": by_hash, "variables": { "first": 2 } }).to_string();
    let wrong = json!({ "query": "{ __typename }", "extensions": by_hash }).to_string();
    let mutation = "mutation { signOutEverywhere }";
    let mutation_hash = sha256_hex(mutation);
    let get_url = |hash: &str, variables: &str| {
        gw.url(&format!(
            "/graphql?extensions={}&variables={}",
            urlencode(
                &json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string()
            ),
            urlencode(variables)
        ))
    };

    let (unknown_status, _, unknown) = app.send(post(&hash_only, Some("application/json"))).await;
    let (unknown_new_status, _, _) = app.send(post(&hash_only, Some(GRAPHQL_RESPONSE))).await;
    let (registered_status, _, registered) =
        app.send(post(&with_query, Some("application/json"))).await;
    let (by_hash_status, _, by_hash_answer) =
        app.send(post(&hash_only, Some(GRAPHQL_RESPONSE))).await;
    let over_get = curl(vec![get_url(&hash, r#"{"first":1}"#)]).await;
    let (wrong_status, _, _) = app.send(post(&wrong, None)).await;
    let register_mutation = json!({ "query": mutation,
        "extensions": { "persistedQuery": { "version": 1, "sha256Hash": mutation_hash } } })
    .to_string();
    let (_, _, mutation_answer) = app.send(post(&register_mutation, None)).await;
    let mutation_over_get = curl(vec![get_url(&mutation_hash, "{}")]).await;

    assert_eq!(unknown_status, StatusCode::OK);
    assert_eq!(
        error_code(&unknown),
        "PERSISTED_QUERY_NOT_FOUND",
        "{unknown}"
    );
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(unknown_new_status, StatusCode::BAD_REQUEST);
    assert_eq!(registered_status, StatusCode::OK, "{registered}");
    assert_no_errors(&registered);
    assert_eq!(by_hash_status, StatusCode::OK, "{by_hash_answer}");
    assert_eq!(by_hash_answer["data"], registered["data"]);
    assert_eq!(over_get.status, 200, "{over_get:?}");
    assert!(
        over_get.json()["data"]["products"]["edges"].is_array(),
        "{over_get:?}"
    );
    assert_eq!(wrong_status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_code(&mutation_answer),
        "UNAUTHENTICATED",
        "{mutation_answer}"
    );
    assert_eq!(mutation_over_get.status, 405, "{mutation_over_get:?}");
}

/// Persisted queries cannot be used to fill Redis: one address registers at most
/// `REGISTRATIONS_PER_HOUR` documents an hour and none over `MAX_DOCUMENT_BYTES`; the ones
/// beyond run all the same, they are only not kept (their hash alone stays unknown).
#[tokio::test]
async fn persisted_queries_keep_a_bounded_number_of_small_documents_per_address() {
    use api::http::persisted::{MAX_DOCUMENT_BYTES, REGISTRATIONS_PER_HOUR};
    let app = TestApp::spawn().await;
    let register = |query: String| {
        let hash = sha256_hex(&query);
        let body = json!({ "query": query,
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
        (body.to_string(), hash)
    };
    let known = |hash: String| {
        let app = &app;
        async move {
            let body = json!({
                "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
            let (_, _, answer) = app
                .send(post(&body.to_string(), Some("application/json")))
                .await;
            answer["errors"].as_array().is_none_or(|e| e.is_empty())
        }
    };
    // Distinct documents: the same query under a different operation name.
    let mut hashes = Vec::new();
    for i in 0..=REGISTRATIONS_PER_HOUR {
        let (body, hash) = register(format!("query Flood{i} {{ __typename }}"));
        let (status, _, answer) = app.send(post(&body, Some("application/json"))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["data"]["__typename"], "Query", "it runs: {answer}");
        hashes.push(hash);
    }
    let last = hashes.pop().expect("one past the limit");
    assert!(known(hashes[0].clone()).await, "the first is kept");
    assert!(
        known(hashes[hashes.len() - 1].clone()).await,
        "the last within the limit is kept"
    );
    assert!(!known(last).await, "the one past the limit is not kept");

    // In a store of its own (no registration counted yet): a document over the size bound.
    let app2 = TestApp::spawn().await;
    let padding = format!("# {}\n", "x".repeat(MAX_DOCUMENT_BYTES));
    let (body, hash) = register(format!("{padding}query Big {{ __typename }}"));
    let (status, _, answer) = app2.send(post(&body, Some("application/json"))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["data"]["__typename"], "Query", "it runs: {answer}");
    let body = json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    let (_, _, answer) = app2
        .send(post(&body.to_string(), Some("application/json")))
        .await;
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
}

/// An anonymous GET of the public catalog alone may be cached by a CDN: `public`, for the shortest
/// `max-age` of its fields' cache hints, varying with `Accept` and `Authorization`. A signed-in
/// caller's answer, a POST, a document with any other root field and an answer with errors are
/// `no-store`.
#[tokio::test]
async fn anonymous_catalog_reads_over_get_are_cacheable_and_nothing_else_is() {
    let app = TestApp::spawn().await;
    let get = |query: &str, token: Option<&str>| {
        let mut req = Request::get(format!("/graphql?query={}", urlencode(query)))
            .header("accept", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.body(Body::empty()).expect("request")
    };
    let header = |h: &axum::http::HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let catalog = "{ products(first: 2) { edges { node { id title } } } genres { slug } }";
    let (status, headers, v) = app.send(get(catalog, None)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_no_errors(&v);
    assert_eq!(header(&headers, "cache-control"), "public, max-age=60");
    assert_eq!(
        header(&headers, "vary"),
        "Accept, Authorization, CF-IPCountry"
    );
    let (_, headers, v) = app.send(get("{ genres { slug } }", None)).await;
    assert_no_errors(&v);
    assert_eq!(header(&headers, "cache-control"), "public, max-age=3600");

    let no_store = |headers: &axum::http::HeaderMap, what: &str| {
        assert_eq!(header(headers, "cache-control"), "no-store", "{what}");
    };
    let token = app.sign_up("cached@store.test", "Cached").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let (status, headers, v) = app.send(get(catalog, Some(&token))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_no_errors(&v);
    no_store(&headers, "a signed-in caller's answer");
    let (_, headers, _) = app.send(get("{ genres { slug } me { id } }", None)).await;
    no_store(
        &headers,
        "a document with a field that is not the public catalog",
    );
    let (_, headers, v) = app
        .send(get(r#"{ product(slug: "no-such-product") { id } }"#, None))
        .await;
    assert_eq!(error_code(&v), "NOT_FOUND", "{v}");
    no_store(&headers, "an answer with errors");
    let (_, headers, v) = app
        .send(post(
            &json!({ "query": catalog }).to_string(),
            Some("application/json"),
        ))
        .await;
    assert_no_errors(&v);
    no_store(&headers, "a POST");
}

/// With `GRAPHQL_TRUSTED_DOCUMENTS`, the browser's requests (anonymous, or a person's) run only
/// the web app's own operations, exactly as the app sends them (sliced from its files), also by
/// hash alone in a store whose Redis never saw them; any other document is `FORBIDDEN` and runs
/// nothing. An API client still sends documents of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_documents_hold_the_browser_to_the_apps_operations_but_not_api_clients() {
    let app = TestApp::spawn_with(|c| c.limits.trusted_documents = true).await;
    let catalog = include_str!("../../../web/queries/catalog.graphql");
    let identity = include_str!("../../../web/queries/identity.graphql");
    let wallet = include_str!("../../../web/queries/wallet.graphql");
    let facets = domain::operation::only_operation(catalog, "Facets");
    let refused = |v: &Value, what: &str| {
        assert_eq!(error_code(v), "FORBIDDEN", "{what}: {v}");
        assert!(v.get("data").is_none_or(Value::is_null), "{what} ran: {v}");
        assert!(
            v["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("API client")),
            "{what}: the refusal says what to do: {v}"
        );
    };

    // Anonymous: the app's operation runs; the same fields in a document of one's own do not.
    let v = app.gql(None, facets, json!({})).await;
    assert_no_errors(&v);
    assert!(v["data"]["facets"].is_object(), "{v}");
    let own = "query Facets($filter: ProductFilter) { facets(filter: $filter) { genres { value count } } }";
    refused(
        &app.gql(None, own, json!({})).await,
        "an anonymous document of its own",
    );
    refused(
        &app.gql(None, "{ __schema { types { name } } }", json!({}))
            .await,
        "introspection",
    );
    // The whole file, as graphql_client would send it, with the operation's name.
    let (_, _, v) = app
        .send(post(
            &json!({ "query": catalog, "operationName": "Facets", "variables": {} }).to_string(),
            Some("application/json"),
        ))
        .await;
    assert_no_errors(&v);
    // By hash alone, over GET (a URL a CDN can cache), never registered in this store's Redis.
    let extensions =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(facets) } });
    let uri = format!(
        "/graphql?extensions={}&variables=%7B%7D",
        urlencode(&extensions.to_string())
    );
    let (status, _, v) = app
        .send(
            Request::get(uri)
                .header("accept", "application/json")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_no_errors(&v);
    assert!(v["data"]["facets"].is_object(), "{v}");

    // A person signs up with the app's own operation, and is held to the app's operations too.
    let sign_up = domain::operation::only_operation(identity, "SignUp");
    let v = app
        .gql(
            None,
            sign_up,
            json!({ "input": { "email": "trusted@store.test", "password": PASSWORD, "displayName": "Trusted" } }),
        )
        .await;
    assert_no_errors(&v);
    let token = v["data"]["signUp"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let page = domain::operation::only_operation(wallet, "WalletPage");
    let v = app.gql(Some(&token), page, json!({ "first": 5 })).await;
    assert_no_errors(&v);
    refused(
        &app.gql(Some(&token), "{ me { id email } }", json!({}))
            .await,
        "a person's document of its own",
    );

    // An API client of a publisher sends its own documents (its scopes still bound them).
    use sea_orm::ConnectionTrait as _;
    let publisher = uuid::Uuid::now_v7();
    app.state
        .db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "INSERT INTO identity.account (id, email, email_normalized, display_name, role, password_hash) \
             VALUES ($1, 'trusted-publisher@store.test', 'trusted-publisher@store.test', 'Trusted Games', 'publisher', '$argon2id$unused')",
            [publisher.into()],
        ))
        .await
        .expect("publisher");
    let principal = api::infra::auth::Principal {
        id: publisher,
        role: domain::identity::Role::Publisher,
        name: "Trusted Games".to_owned(),
    };
    let (client, secret) = api::identity::clients::create(
        &app.state,
        &principal,
        "Tool",
        &[domain::identity::Scope::CatalogRead],
    )
    .await
    .expect("client");
    let (issued, _) =
        api::identity::clients::token(&app.state, &client.id.to_string(), &secret, None)
            .await
            .expect("token");
    let v = app.gql(Some(&issued.token), own, json!({})).await;
    assert_no_errors(&v);
    assert!(v["data"]["facets"]["genres"].is_array(), "{v}");
}

/// The reference `graphql-ws` client (npm, `api/tests/conformance/renew.mjs`) renews an expired
/// access token by reconnecting, through the real gateway: it subscribes with a token that
/// expires in seconds; the server closes the socket at the expiry with 4403 (which the client
/// retries; 4401 would be final), the client's `connectionParams` renews the token with
/// `refreshSession`, it reconnects and subscribes again, and the next notification arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_client_renews_an_expired_token_by_reconnecting() {
    use std::io::BufRead as _;

    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let user = app.sign_up("ada@example.org", "Ada").await;
    let account: uuid::Uuid = user["account"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("account id");
    let refresh = user["refreshToken"].as_str().expect("refresh").to_owned();
    // The same key and claims as a sign-in's token, but it expires in 3 s.
    let short_lived = api::infra::auth::jwt::Keys::from_config(&api::infra::config::JwtConfig {
        private_key_pem: Some(secrecy::SecretString::from(test_private_key().to_owned())),
        extra_public_keys_pem: None,
        issuer: "store".to_owned(),
        audience: "store-api".to_owned(),
        access_ttl: std::time::Duration::from_secs(3),
    })
    .expect("keys")
    .issue(&api::infra::auth::Principal {
        id: account,
        role: domain::identity::Role::User,
        name: "Ada".to_owned(),
    })
    .expect("token")
    .token;
    let dir = conformance_dir();
    let mut child = Command::new(node())
        .arg(dir.join("renew.mjs"))
        .arg(gw.url("/graphql"))
        .arg(format!("wss://127.0.0.1:{}/graphql/ws", gw.https))
        .arg(&short_lived)
        .arg(&refresh)
        .env("NODE_EXTRA_CA_CERTS", &tls_files().0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
    });

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break };
                let done = line["event"] == "notification" || line["event"] == "failed";
                seen.push(line);
                if done {
                    break;
                }
            }
            _ = tick.tick() => {
                assert!(tokio::time::Instant::now() < deadline, "no end within 60 s: {seen:?}");
                // From the second connection on, a notification until the client prints it
                // (core NATS: a message before the subscription is simply not seen).
                if seen.iter().any(|l| l["event"] == "connected" && l["n"] == 2) {
                    let event = domain::messaging::Envelope::new(
                        domain::notification::NotificationCreated {
                            notification_id: uuid::Uuid::now_v7(),
                            account_id: account,
                            kind: domain::notification::NotificationKind::WalletCredited,
                            title: "Renewed".to_owned(),
                            body: "after the reconnect".to_owned(),
                            order_id: None,
                        },
                        account,
                        None,
                    );
                    app.state
                        .nats
                        .publish(
                            app.state.bus.subject(&event.subject()),
                            serde_json::to_vec(&event).expect("json").into(),
                        )
                        .await
                        .expect("publish");
                }
            }
        }
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("node exits");

    let events: Vec<String> = seen
        .iter()
        .map(|l| match l["event"].as_str() {
            Some("closed") => format!("closed {}", l["code"]),
            Some("notification") => format!("notification {}", l["title"].as_str().unwrap_or("")),
            Some(e) => format!("{e} {}", l["n"]),
            None => l.to_string(),
        })
        .collect();
    assert_eq!(
        events,
        [
            "params 1",
            "connected 1",
            "closed 4403",
            "params 2",
            "connected 2",
            "notification Renewed"
        ],
        "{seen:?}"
    );
    assert!(status.success(), "{seen:?}");
}
