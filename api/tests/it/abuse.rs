//! Abuse limits held by the api itself, whatever the transport (issue 13): top-ups per account
//! and per address, sign-in over the socket, and `/graphql/upload` running uploads only.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::helpers::ws::Ws;
use crate::helpers::*;

const TOP_UP: &str = "mutation($k: String!) { topUpWallet(amount: 1000, paymentMethod: \"4242424242424242\", idempotencyKey: $k) { id } }";

/// Headers of a request the gateway forwards for `account` from `ip`.
fn from_gateway<'a>(account: &'a str, ip: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("content-type", "application/json"),
        ("x-gateway-secret", GATEWAY_SECRET),
        ("x-real-ip", ip),
        ("x-user-id", account),
        ("x-user-role", "user"),
        ("x-user-name", "Someone"),
    ]
}

fn code_of(v: &Value) -> &str {
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("ok")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ups_are_limited_per_account_and_per_address_on_every_transport() {
    let app = TestApp::spawn_with(|c| {
        c.rates.topup_per_account = rate(3, 3600);
        c.rates.topup_per_ip = rate(4, 3600);
        c.rates.signin_per_ip = rate(2, 3600);
    })
    .await;
    let addr = app.serve().await;
    let a = app.sign_up("card-tester@example.org", "Tester").await;
    let b = app.sign_up("neighbour@example.org", "Neighbour").await;
    let (a, b) = (
        a["account"]["id"].as_str().expect("id").to_owned(),
        b["account"]["id"].as_str().expect("id").to_owned(),
    );
    let ip = "203.0.113.7";
    let http_top_up = |account: String, ip: &'static str, key: &'static str| {
        let app = &app;
        async move {
            app.gql_http(&from_gateway(&account, ip), TOP_UP, json!({ "k": key }))
                .await
                .2
        }
    };
    let headers = from_gateway(&a, ip);
    let mut socket = Ws::open(addr, &headers[1..], None).await;

    // Account a, address ip: two over HTTP and one over the socket pass, the fourth does not,
    // on either transport.
    let first = http_top_up(a.clone(), ip, "k1").await;
    let second = socket.run(TOP_UP, json!({ "k": "k2" })).await;
    let third = http_top_up(a.clone(), ip, "k3").await;
    let fourth_ws = socket.run(TOP_UP, json!({ "k": "k4" })).await;
    let fifth_http = http_top_up(a.clone(), ip, "k5").await;
    // Account b from the same address: the address is spent; from another one it is not.
    let same_address = http_top_up(b.clone(), ip, "k6").await;
    let other_address = http_top_up(b.clone(), "198.51.100.9", "k7").await;
    // Sign-in over the socket counts against the same per-address limit as over HTTP.
    let mut anonymous = Ws::open(addr, &[], None).await;
    let sign_in = "mutation { signIn(input: {email: \"x@example.org\", password: \"wrong password\"}) { accessToken } }";
    let mut sign_ins = Vec::new();
    for _ in 0..3 {
        sign_ins.push(code_of(&anonymous.run(sign_in, json!({})).await).to_owned());
    }

    for v in [&first, &second, &third, &other_address] {
        assert_no_errors(v);
    }
    assert_eq!(code_of(&fourth_ws), "RATE_LIMITED", "{fourth_ws}");
    assert!(fourth_ws["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() > Some(0));
    assert_eq!(code_of(&fifth_http), "RATE_LIMITED", "{fifth_http}");
    assert_eq!(code_of(&same_address), "RATE_LIMITED", "{same_address}");
    assert_eq!(
        sign_ins,
        ["UNAUTHENTICATED", "UNAUTHENTICATED", "RATE_LIMITED"]
    );
}

fn multipart_to_upload(operations: &Value) -> Request<Body> {
    let boundary = "----storetestboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{}}\r\n\
         --{boundary}--\r\n"
    );
    Request::post("/graphql/upload")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("apollo-require-preflight", "true")
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn the_upload_path_runs_the_upload_mutations_only() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("uploader@example.org", "Uploader").await;
    let token = user["accessToken"].as_str().expect("token");
    let bearer = format!("Bearer {token}");
    let json_to_upload = |query: &str| {
        Request::post("/graphql/upload")
            .header("content-type", "application/json")
            .header("authorization", bearer.as_str())
            .body(Body::from(
                json!({ "query": query, "variables": { "k": "u1" } }).to_string(),
            ))
            .expect("request")
    };

    let mut refused = Vec::new();
    for query in [
        TOP_UP,
        "mutation { signIn(input: {email: \"a@b.c\", password: \"x\"}) { accessToken } }",
        "{ me { id } }",
        "mutation { uploadProductImage: signOutEverywhere }",
        "mutation { ...M } fragment M on Mutation { signOutEverywhere }",
        "mutation { ... on Mutation { signOutEverywhere } }",
    ] {
        refused.push((query, app.send(json_to_upload(query)).await));
    }
    let (multipart_status, _, multipart) = app
        .send(multipart_to_upload(&json!({
            "query": "mutation { signIn(input: {email: \"a@b.c\", password: \"x\"}) { accessToken } }",
            "variables": {},
        })))
        .await;
    // An upload mutation itself still gets through to its resolver (which wants a publisher).
    let (_, _, upload) = app
        .send(json_to_upload(
            "mutation($f: Upload!) { uploadProductImage(productId: \"00000000-0000-0000-0000-000000000000\", kind: COVER, file: $f) { id } }",
        ))
        .await;

    for (query, (status, _, body)) in &refused {
        assert_eq!(*status, 400, "{query}: {body}");
        assert_eq!(error_code(body), "BAD_REQUEST", "{query}");
    }
    assert_eq!(multipart_status, 400, "{multipart}");
    assert_eq!(error_code(&multipart), "BAD_REQUEST");
    assert_ne!(error_code(&upload), "BAD_REQUEST", "{upload}");
}
