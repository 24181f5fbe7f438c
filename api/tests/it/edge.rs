//! The HTTP edge: who the caller is, transport rules, limits, health.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn x_user_headers_are_believed_only_with_the_gateway_secret() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let id = user["account"]["id"].as_str().expect("id");
    let spoof = |secret: Option<&'static str>| {
        let mut h = vec![
            ("content-type", "application/json"),
            ("x-user-id", id),
            ("X-User-Role", "admin"),
            ("x-user-name", "Ada"),
        ];
        if let Some(s) = secret {
            h.push(("x-gateway-secret", s));
        }
        h
    };

    let (_, _, no_secret) = app.gql_http(&spoof(None), ME, json!({})).await;
    let (_, _, wrong_secret) = app
        .gql_http(&spoof(Some("not-the-gateway-secret!")), ME, json!({}))
        .await;
    let (_, _, escalate) = app
        .gql_http(
            &spoof(None),
            "{ accounts { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let (_, _, from_gateway) = app
        .gql_http(&spoof(Some(GATEWAY_SECRET)), ME, json!({}))
        .await;

    assert_eq!(
        no_secret["data"]["me"],
        serde_json::Value::Null,
        "anonymous"
    );
    assert_eq!(
        wrong_secret["data"]["me"],
        serde_json::Value::Null,
        "anonymous"
    );
    assert_eq!(error_code(&escalate), "UNAUTHENTICATED");
    assert_eq!(from_gateway["data"]["me"]["email"], "ada@example.org");
}

#[tokio::test]
async fn mutations_need_post_with_json() {
    let app = TestApp::spawn().await;
    let get = |q: &str| {
        Request::get(format!("/graphql?query={}", urlencode(q)))
            .body(Body::empty())
            .expect("req")
    };

    let (query_status, _, query) = app.send(get("{ me { id } }")).await;
    let (mutation_status, headers, mutation) = app
        .send(get("mutation { signOut(refreshToken: \"x\") }"))
        .await;
    let form = Request::post("/graphql")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "query=mutation%20%7B%20signOut(refreshToken%3A%22x%22)%20%7D",
        ))
        .expect("req");
    let (form_status, _, form_body) = app.send(form).await;
    let text = Request::post("/graphql")
        .header("content-type", "text/plain")
        .body(Body::from(
            r#"{"query":"mutation { signOut(refreshToken: \"x\") }"}"#,
        ))
        .expect("req");
    let (text_status, _, _) = app.send(text).await;

    assert_eq!(query_status, 200);
    assert_eq!(query["data"]["me"], serde_json::Value::Null);
    assert_eq!(mutation_status, 405);
    assert_eq!(headers["allow"], "POST");
    assert_eq!(error_code(&mutation), "BAD_REQUEST");
    assert_eq!(form_status, 415);
    assert_eq!(error_code(&form_body), "BAD_REQUEST");
    assert_eq!(text_status, 415);
}

#[tokio::test]
async fn batches_malformed_documents_and_huge_bodies_are_refused() {
    let app = TestApp::spawn_with(|c| c.limits.max_body_bytes = 4096).await;
    // The spec's media type: a request error is a 400 (application/json gets 200, see spec.rs).
    let post = |body: String| {
        Request::post("/graphql")
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .body(Body::from(body))
            .expect("req")
    };

    let (batch_status, _, batch) = app
        .send(post(
            r#"[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]"#.into(),
        ))
        .await;
    let (parse_status, _, parse) = app.send(post(r#"{"query":"{ me { "}"#.into())).await;
    let (json_status, _, not_json) = app.send(post("{not json".into())).await;
    let big = json!({ "query": format!("{{ me {{ id }} }} # {}", "x".repeat(5000)) }).to_string();
    let (big_status, _, big_body) = app.send(post(big)).await;
    let unknown = app.gql(None, "{ nothingHere }", json!({})).await;

    assert_eq!(batch_status, 400);
    assert_eq!(error_code(&batch), "BAD_REQUEST");
    assert_eq!(parse_status, 400);
    assert_eq!(error_code(&parse), "GRAPHQL_PARSE_FAILED");
    assert_eq!(json_status, 400);
    assert_eq!(error_code(&not_json), "BAD_REQUEST");
    assert_eq!(big_status, 413);
    assert_eq!(error_code(&big_body), "BAD_REQUEST");
    assert_eq!(error_code(&unknown), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn depth_complexity_and_alias_limits_hold() {
    let app = TestApp::spawn_with(|c| {
        c.limits.max_depth = 5;
        c.limits.max_complexity = 40;
        c.limits.max_aliases = 3;
    })
    .await;

    let deep = app
        .gql(None, "{ me { a { b { c { d { e } } } } } }", json!({}))
        .await;
    let wide = app
        .gql(
            None,
            &format!(
                "{{ {} }}",
                (0..3)
                    .map(|i| format!("f{i}: __typename"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            json!({}),
        )
        .await;
    let (alias_status, _, aliases) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                ("accept", "application/graphql-response+json"),
            ],
            &format!(
                "{{ {} }}",
                (0..4)
                    .map(|i| format!("m{i}: me {{ id }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            json!({}),
        )
        .await;
    let complex = app
        .gql(
            None,
            "{ __schema { queryType { name } types { name description kind specifiedByURL fields { name description isDeprecated deprecationReason args { name description defaultValue type { name kind } } type { name kind ofType { name kind } } } inputFields { name description defaultValue type { name kind } } enumValues { name description isDeprecated deprecationReason } interfaces { name } possibleTypes { name } } } }",
            json!({}),
        )
        .await;

    assert_eq!(error_code(&deep), "GRAPHQL_VALIDATION_FAILED");
    assert_no_errors(&wide);
    assert_eq!(alias_status, 400);
    assert_eq!(error_code(&aliases), "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(error_code(&complex), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn health_readiness_schema_and_graphiql_are_served() {
    let app = TestApp::spawn().await;
    let get = |path: &str, accept: &str| {
        Request::get(path)
            .header("accept", accept)
            .body(Body::empty())
            .expect("req")
    };

    let (health, _, _) = app.send(get("/healthz", "*/*")).await;
    let (ready, _, readiness) = app.send(get("/readyz", "*/*")).await;
    let (sdl_status, _, sdl) = app.send(get("/schema.graphql", "*/*")).await;
    let (ide_status, ide_headers, ide) = app.send(get("/graphql", "text/html")).await;

    assert_eq!(health, 200);
    assert_eq!(ready, 200);
    assert_eq!(
        readiness,
        json!({ "status": "ok", "postgres": "ok", "redis": "ok", "nats": "ok" })
    );
    assert_eq!(sdl_status, 200);
    assert!(sdl.as_str().expect("text").contains("type Account"));
    assert_eq!(ide_status, 200);
    assert!(
        ide_headers["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert!(ide.as_str().expect("html").contains("graphiql"));
}
