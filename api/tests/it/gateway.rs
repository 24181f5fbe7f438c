//! The real nginx with the repository's `nginx.conf` (rendered as `cargo xtask dev` renders it)
//! in front of a real api, or in front of an upstream that echoes what it receives (harness in
//! `helpers::gateway`).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use crate::helpers::gateway::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// An upstream that answers every request with what it received (method, target, headers, body)
// as JSON; to a WebSocket upgrade it answers 101 with that JSON, hex-encoded, in `X-Echo`.

async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(echo_connection(stream));
        }
    });
    addr
}

async fn echo_connection(stream: tokio::net::TcpStream) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let seen = json!({
            "method": parts.next(),
            "target": parts.next(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string();
        let upgrade = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket"));
        let stream = reader.get_mut();
        if upgrade {
            let hex: String = seen.bytes().map(|b| format!("{b:02x}")).collect();
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Echo: {hex}\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            return;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            seen.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(seen.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// The headers the upstream received with a name (any case).
fn seen_headers<'a>(seen: &'a Value, name: &str) -> Vec<&'a str> {
    seen["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|h| h[0].as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
        .filter_map(|h| h[1].as_str())
        .collect()
}

fn decode_echo(hex: &str) -> Value {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    serde_json::from_slice(&bytes).expect("echo json")
}

// ---------------------------------------------------------------------------------------------
// Tokens

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sub: uuid::Uuid) -> Value {
    let t = now();
    json!({
        "iss": "store", "aud": "store-api", "sub": sub, "role": "user", "name": "Ada Lovelace",
        "iat": t, "nbf": t, "exp": t + 600, "jti": uuid::Uuid::new_v4(),
    })
}

fn kid() -> String {
    test_keys().signing_kid().expect("kid").to_owned()
}

fn sign(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(test_private_key().as_bytes()).expect("key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

/// Every kind of token the gateway must refuse, by name.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let sub = uuid::Uuid::new_v4();
    let good = claims(sub);
    let kid = kid();
    let t = now();
    let public_pem = test_keys().public_pems()[0].1.clone();
    let part = |v: &Value| B64.encode(v.to_string());
    let none_header = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &good,
            &EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .expect("hs256")
    };
    let tampered = {
        let token = sign(&good, &kid);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = part(&with(good.clone(), "role", json!("admin")));
        parts.join(".")
    };
    let mut flipped = sign(&good, &kid).into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    vec![
        (
            "alg none",
            format!("{}.{}.", part(&none_header), part(&good)),
        ),
        (
            "alg none with a signature",
            format!("{}.{}.c2ln", part(&none_header), part(&good)),
        ),
        ("HS256 signed with the public key", hs256),
        ("unknown kid", sign(&good, "not-a-known-kid")),
        (
            "wrong aud",
            sign(&with(good.clone(), "aud", json!("other")), &kid),
        ),
        (
            "wrong iss",
            sign(&with(good.clone(), "iss", json!("evil")), &kid),
        ),
        (
            "expired",
            sign(&with(good.clone(), "exp", json!(t - 60)), &kid),
        ),
        (
            "not yet valid",
            sign(&with(good.clone(), "nbf", json!(t + 120)), &kid),
        ),
        ("tampered claims", tampered),
        (
            "flipped signature",
            String::from_utf8(flipped).expect("ascii"),
        ),
        ("garbage", "not.a.token".to_owned()),
    ]
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_passes_and_the_api_sees_the_user() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let url = gw.url("/graphql");

    // Sign up through the gateway, then ask who we are.
    let input = json!({ "email": "ada@example.org", "password": PASSWORD, "displayName": "Ada" });
    let mut args = s(&[
        &url,
        "-H",
        "content-type: application/json",
        "--data-binary",
    ]);
    args.push(json!({ "query": SIGN_UP, "variables": { "input": input } }).to_string());
    let signed_up = curl(args).await;
    assert_eq!(signed_up.status, 200, "{signed_up:?}");
    let v = signed_up.json();
    assert_no_errors(&v);
    let token = v["data"]["signUp"]["accessToken"].as_str().expect("token");
    let id = v["data"]["signUp"]["account"]["id"].as_str().expect("id");

    let bearer = format!("Bearer {token}");
    let me = curl(gql_args(&url, ME, &[("authorization", &bearer)])).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.json()["data"]["me"]["email"], "ada@example.org");
    assert_eq!(me.json()["data"]["me"]["id"], id);

    // Spoofed identity headers without a token: anonymous, whatever they say.
    let spoofed = curl(gql_args(
        &url,
        ME,
        &[
            ("X-User-Id", id),
            ("x-user-role", "admin"),
            ("X-GATEWAY-SECRET", GATEWAY_SECRET),
        ],
    ))
    .await;
    assert_eq!(spoofed.json()["data"]["me"], Value::Null, "{spoofed:?}");

    // Directly to the api (no gateway): X-User-* without the secret is anonymous too.
    let direct = curl(gql_args(
        &format!("http://{addr}/graphql"),
        ME,
        &[
            ("x-user-id", id),
            ("x-user-role", "user"),
            ("x-user-name", "Ada"),
        ],
    ))
    .await;
    assert_eq!(direct.status, 200, "{direct:?}");
    assert_eq!(direct.json()["data"]["me"], Value::Null, "{direct:?}");

    // An expired token of this user: 401 from the gateway.
    let expired = sign(
        &with(claims(id.parse().expect("uuid")), "exp", json!(now() - 60)),
        &kid(),
    );
    let refused = curl(gql_args(
        &url,
        ME,
        &[("authorization", &format!("Bearer {expired}"))],
    ))
    .await;
    assert_eq!(refused.status, 401);

    // The access log holds neither tokens nor query strings.
    let log = gw.log("access.log");
    assert!(log.contains(r#""path":"/graphql""#), "{log}");
    assert!(!log.contains(token) && !log.contains("eyJ"), "{log}");
}

#[tokio::test]
async fn spoofed_user_headers_never_reach_the_api() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let sub = uuid::Uuid::new_v4();
    let token = sign(&claims(sub), &kid());
    let bearer = format!("Bearer {token}");
    let spoof: &[(&str, &str)] = &[
        ("X-User-Id", "00000000-0000-0000-0000-000000000001"),
        ("x-user-id", "00000000-0000-0000-0000-000000000002"),
        ("X-USER-ROLE", "admin"),
        ("x-User-Role", "admin"),
        ("X-User-Name", "Mallory"),
        ("X-User-Token-Iat", "99999999999"),
        ("x-user-token-iat", "99999999999"),
        ("X-User-Foo", "bar"),
        ("X-Gateway-Secret", "guessed-secret-0123456789"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Country", "KP"),
    ];
    for http in ["--http1.1", "--http2"] {
        for route in ["/graphql", "/schema.graphql", "/.well-known/jwks.json"] {
            // Anonymous: no X-User-* at all reaches the upstream.
            let mut args = gql_args(&gw.url(route), "{ __typename }", spoof);
            args.push(http.to_owned());
            let anon = curl(args).await;
            assert_eq!(anon.status, 200, "{route} {anon:?}");
            let seen = anon.json();
            let names: Vec<String> = seen["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .filter_map(|h| h[0].as_str())
                .map(str::to_ascii_lowercase)
                .collect();
            assert!(
                !names.iter().any(|n| n.starts_with("x-user-")),
                "{http} {route}: {seen:#}"
            );
            assert_eq!(seen_headers(&seen, "x-gateway-secret"), [GATEWAY_SECRET]);
            assert_eq!(seen_headers(&seen, "x-real-ip"), ["127.0.0.1"]);
            // The country is the gateway's (none here), never the client's own X-Country.
            assert!(seen_headers(&seen, "x-country").is_empty(), "{seen:#}");
        }
        // A CDN's two-letter country header becomes X-Country; anything else is dropped.
        for (sent, seen_as) in [("JP", Some("JP")), ("T1x", None), ("../", None)] {
            let mut args = gql_args(
                &gw.url("/graphql"),
                "{ __typename }",
                &[("CF-IPCountry", sent)],
            );
            args.push(http.to_owned());
            let seen = curl(args).await.json();
            let expected: Vec<&str> = seen_as.into_iter().collect();
            assert_eq!(
                seen_headers(&seen, "x-country"),
                expected,
                "{sent}: {seen:#}"
            );
        }
        // With a token: exactly the verified user, once each.
        let mut args = gql_args(
            &gw.url("/graphql"),
            "{ __typename }",
            &[spoof, &[("Authorization", bearer.as_str())]].concat(),
        );
        args.push(http.to_owned());
        let authed = curl(args).await;
        assert_eq!(authed.status, 200, "{authed:?}");
        let seen = authed.json();
        assert_eq!(
            seen_headers(&seen, "x-user-id"),
            [sub.to_string()],
            "{seen:#}"
        );
        assert_eq!(seen_headers(&seen, "x-user-role"), ["user"]);
        assert_eq!(seen_headers(&seen, "x-user-name"), ["Ada Lovelace"]);
        assert_eq!(seen_headers(&seen, "x-user-token-iat").len(), 1);
        assert!(seen_headers(&seen, "x-user-foo").is_empty());
        assert!(
            seen_headers(&seen, "authorization").is_empty(),
            "token forwarded"
        );
        assert_eq!(seen_headers(&seen, "x-gateway-secret"), [GATEWAY_SECRET]);
        assert_eq!(seen_headers(&seen, "x-real-ip"), ["127.0.0.1"]);
        assert_eq!(
            seen["body"],
            json!({ "query": "{ __typename }" }).to_string()
        );
    }
}

/// An API client's token (issue 16): its `client_id` and `scope` reach the api as X-User-Client
/// and X-User-Scope, once, from the verified token only; a half or malformed client claim, or a
/// client acting as anything but a publisher, is refused. The Authorization header reaches the
/// api on /oauth/token only (a client's HTTP Basic credentials).
#[tokio::test]
async fn an_api_clients_claims_reach_the_api_and_only_from_its_token() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let sub = uuid::Uuid::new_v4();
    let client = uuid::Uuid::new_v4();
    let publisher = with(claims(sub), "role", json!("publisher"));
    let client_claims = with(
        with(publisher.clone(), "client_id", json!(client)),
        "scope",
        json!("sales:read ownership:read"),
    );
    let spoof: &[(&str, &str)] = &[
        ("X-User-Client", "00000000-0000-0000-0000-000000000001"),
        ("x-user-scope", "catalog:write"),
    ];
    let call = |claims: Value| {
        let gw = &gw;
        async move {
            let bearer = format!("Bearer {}", sign(&claims, &kid()));
            curl(gql_args(
                &gw.url("/graphql"),
                "{ __typename }",
                &[spoof, &[("Authorization", bearer.as_str())]].concat(),
            ))
            .await
        }
    };

    let as_client = call(client_claims.clone()).await;
    let as_person = call(publisher.clone()).await;
    let refused = [
        (
            "no scope",
            with(publisher.clone(), "client_id", json!(client)),
        ),
        (
            "no client",
            with(publisher.clone(), "scope", json!("sales:read")),
        ),
        ("a user", with(client_claims.clone(), "role", json!("user"))),
        (
            "a control character in the scope",
            with(client_claims.clone(), "scope", json!("sales:read\nx")),
        ),
        (
            "not a uuid",
            with(client_claims.clone(), "client_id", json!("abc")),
        ),
    ];
    let mut refusals = Vec::new();
    for (what, c) in refused {
        refusals.push((what, call(c).await.status));
    }
    let basic = curl(s(&[
        &gw.url("/oauth/token"),
        "-u",
        "id:secret",
        "-d",
        "grant_type=client_credentials",
    ]))
    .await;

    let seen = as_client.json();
    assert_eq!(
        seen_headers(&seen, "x-user-client"),
        [client.to_string()],
        "{seen:#}"
    );
    assert_eq!(
        seen_headers(&seen, "x-user-scope"),
        ["sales:read ownership:read"]
    );
    assert_eq!(seen_headers(&seen, "x-user-id"), [sub.to_string()]);
    let person = as_person.json();
    assert!(
        seen_headers(&person, "x-user-client").is_empty(),
        "{person:#}"
    );
    assert!(seen_headers(&person, "x-user-scope").is_empty());
    for (what, status) in refusals {
        assert_eq!(status, 401, "{what}");
    }
    let token_request = basic.json();
    assert_eq!(
        seen_headers(&token_request, "authorization"),
        ["Basic aWQ6c2VjcmV0"],
        "{token_request:#}"
    );
    assert!(seen_headers(&token_request, "x-user-id").is_empty());
}

/// `/oauth/token` shares the per-address limit of sign-in, and its 429 is an OAuth error (JSON,
/// `no-store`, `Retry-After`), not a GraphQL one.
#[tokio::test]
async fn token_requests_are_rate_limited_at_the_gateway_as_oauth_errors() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(
        upstream,
        &[("GATEWAY_AUTH_RATE", "1r/m"), ("GATEWAY_AUTH_BURST", "1")],
    );
    let request = || {
        curl(s(&[
            &gw.url("/oauth/token"),
            "-u",
            "id:secret",
            "-d",
            "grant_type=client_credentials",
        ]))
    };

    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let reply = request().await;
        statuses.push(reply.status);
        last = Some(reply);
    }

    let limited = last.expect("a reply");
    assert_eq!(statuses, [200, 200, 429], "{limited:?}");
    assert_eq!(limited.json()["error"], "temporarily_unavailable");
    assert_eq!(limited.header("cache-control"), Some("no-store"));
    assert!(limited.header("retry-after").is_some());
    assert!(
        limited
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let mut cases = bad_tokens();
    cases.push(("empty bearer", String::new()));
    for (what, token) in &cases {
        for header in [format!("Bearer {token}"), format!("bearer {token}")] {
            let reply = curl(gql_args(
                &gw.url("/graphql"),
                "{ __typename }",
                &[("Authorization", &header)],
            ))
            .await;
            assert_eq!(reply.status, 401, "{what}: {reply:?}");
            assert_eq!(
                reply.header("www-authenticate"),
                Some(r#"Bearer error="invalid_token""#),
                "{what}"
            );
            assert_eq!(
                reply.json()["errors"][0]["extensions"]["code"],
                "UNAUTHENTICATED"
            );
        }
    }
    let basic = curl(gql_args(
        &gw.url("/graphql"),
        "{ __typename }",
        &[("Authorization", "Basic YTpi")],
    ))
    .await;
    assert_eq!(basic.status, 401, "{basic:?}");
    // The good token of the same shape passes (so the refusals above are about the token).
    let good = sign(&claims(uuid::Uuid::new_v4()), &kid());
    let ok = curl(gql_args(
        &gw.url("/graphql"),
        "{ __typename }",
        &[("Authorization", &format!("Bearer {good}"))],
    ))
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
}

fn ws_args(url: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let mut args = s(&[
        url,
        "--http1.1",
        "--max-time",
        "2",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "-H",
        "Sec-WebSocket-Protocol: graphql-transport-ws",
    ]);
    for (k, v) in headers {
        args.push("-H".to_owned());
        args.push(format!("{k}: {v}"));
    }
    args
}

#[tokio::test]
async fn the_websocket_upgrade_is_authenticated() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let sub = uuid::Uuid::new_v4();
    let token = sign(&claims(sub), &kid());
    let ws = gw.url("/graphql/ws");

    for (what, bad) in bad_tokens() {
        let reply = curl(ws_args(&format!("{ws}?access_token={bad}"), &[])).await;
        assert_eq!(reply.status, 401, "query {what}: {reply:?}");
        let reply = curl(ws_args(&ws, &[("Authorization", &format!("Bearer {bad}"))])).await;
        assert_eq!(reply.status, 401, "header {what}: {reply:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(r#"Bearer error="invalid_token""#)
        );
    }

    for args in [
        ws_args(
            &format!("{ws}?access_token={token}"),
            &[("X-User-Role", "admin")],
        ),
        ws_args(
            &ws,
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("x-user-id", "x"),
            ],
        ),
    ] {
        let reply = curl(args).await;
        assert_eq!(reply.status, 101, "{reply:?}");
        let seen = decode_echo(reply.header("x-echo").expect("echo"));
        assert_eq!(seen["target"], "/graphql/ws", "the query string is dropped");
        assert_eq!(seen_headers(&seen, "x-user-id"), [sub.to_string()]);
        assert_eq!(seen_headers(&seen, "x-user-role"), ["user"]);
        assert_eq!(seen_headers(&seen, "upgrade"), ["websocket"]);
        assert_eq!(
            seen_headers(&seen, "sec-websocket-protocol"),
            ["graphql-transport-ws"]
        );
        assert!(seen_headers(&seen, "authorization").is_empty());
    }
    // Anonymous upgrades pass, anonymous.
    let anon = curl(ws_args(&ws, &[("X-User-Id", &sub.to_string())])).await;
    assert_eq!(anon.status, 101, "{anon:?}");
    let seen = decode_echo(anon.header("x-echo").expect("echo"));
    assert!(seen_headers(&seen, "x-user-id").is_empty());

    let log = gw.log("access.log") + &gw.log("error.log");
    assert!(
        !log.contains("access_token") && !log.contains(&token),
        "{log}"
    );
}

#[tokio::test]
async fn sign_in_sign_up_and_top_up_are_rate_limited_per_address() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(
        upstream,
        &[("GATEWAY_AUTH_RATE", "1r/m"), ("GATEWAY_AUTH_BURST", "2")],
    );
    let url = gw.url("/graphql");
    let sign_in = r#"mutation { signIn(input: {email: "a@b.c", password: "x"}) { accessToken } }"#;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(curl(gql_args(&url, sign_in, &[])).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Other operations are not limited (the top-up status query included); the other
    // limited mutations share the limit.
    for query in ["{ __typename }", "query { topUp(id: \"x\") { status } }"] {
        assert_eq!(
            curl(gql_args(&url, query, &[])).await.status,
            200,
            "{query}"
        );
    }
    for query in [
        "mutation { a: signUp(input: {}) { accessToken } }",
        "mutation { topUpWallet(amount: 1) { id } }",
    ] {
        assert_eq!(
            curl(gql_args(&url, query, &[])).await.status,
            429,
            "{query}"
        );
    }
    // A JSON escape does not hide the field name.
    let mut args = s(&[
        &url,
        "-H",
        "content-type: application/json",
        "--data-binary",
    ]);
    args.push(r#"{"query":"mutation { \u0073ignIn(input: {}) { accessToken } }"}"#.to_owned());
    assert_eq!(curl(args).await.status, 429);
}

#[tokio::test]
async fn tls_1_0_and_1_1_are_refused() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let connect = format!("127.0.0.1:{}", gw.https);
    let handshake = |version: &str| {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &connect, version])
            // Let the client offer old versions at all (OpenSSL 3 refuses them by default).
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    for old in ["-tls1", "-tls1_1"] {
        let (ok, out) = handshake(old);
        assert!(!ok, "{old} accepted: {out}");
        assert!(out.contains("alert protocol version"), "{old}: {out}");
    }
    for new in ["-tls1_2", "-tls1_3"] {
        let (ok, out) = handshake(new);
        assert!(ok, "{new} refused: {out}");
    }
    // HTTP/2 is negotiated; plain HTTP redirects to HTTPS.
    let h2 = curl(s(&[&gw.url("/"), "--http2"])).await;
    assert!(h2.headers.is_empty() || h2.status == 200, "{h2:?}");
    let redirect = curl(s(&[&format!("http://127.0.0.1:{}/library?x=1", gw.http)])).await;
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://127.0.0.1:{}/library?x=1", gw.https).as_str())
    );
}

#[tokio::test]
async fn spa_headers_limits_and_signed_downloads() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_version}"])
        .arg(gw.url("/"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2", "HTTP/2");

    // A client route falls back to index.html, which always revalidates.
    let route = curl(s(&[&gw.url("/sign-in")])).await;
    assert_eq!(route.status, 200);
    assert!(route.body.contains("<title>Store</title>"));
    assert_eq!(route.header("cache-control"), Some("no-cache"));
    for (name, value) in [
        (
            "strict-transport-security",
            "max-age=63072000; includeSubDomains",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(route.header(name), Some(value), "{name}");
    }
    let csp = route.header("content-security-policy").expect("csp");
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // Hashed assets are immutable; a missing one is a 404, not index.html.
    let asset = curl(s(&[&gw.url("/app-0123456789abcdef.js")])).await;
    assert_eq!(asset.status, 200);
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let missing = curl(s(&[&gw.url("/app-fedcba9876543210.js")])).await;
    assert_eq!(missing.status, 404);

    // The build's brotli and gzip copies are sent as they are, to clients that take them.
    for (accept, encoding, body) in [
        ("br, gzip", Some("br"), "brotli copy\n"),
        ("gzip", Some("gzip"), "gzip copy\n"),
        ("identity", None, "console.log(1)\n"),
    ] {
        let header = format!("accept-encoding: {accept}");
        let asset = curl(s(&[&gw.url("/app-0123456789abcdef.js"), "-H", &header])).await;
        assert_eq!(asset.status, 200, "{accept}");
        assert_eq!(asset.header("content-encoding"), encoding, "{accept}");
        assert_eq!(asset.body, body, "{accept}");
        assert_eq!(
            asset.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{accept}"
        );
    }

    // The publisher's and admin's pages are the management bundle's page, revalidated too; a
    // longer first segment is not one of them.
    for path in [
        "/publisher",
        "/admin",
        "/admin/orders?status=PAID",
        "/publisher/",
    ] {
        let page = curl(s(&[&gw.url(path)])).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.body.contains("<title>Manage</title>"),
            "{path}: {}",
            page.body
        );
        assert_eq!(page.header("cache-control"), Some("no-cache"), "{path}");
    }
    // A product's page and a bundle's are the product bundle's page (also for a slug that
    // names another bundle's path), revalidated too.
    for path in [
        "/products/admin",
        "/products/space-quest-7",
        "/products/cart?ref=mail",
        "/bundles/atlas-collection",
    ] {
        let page = curl(s(&[&gw.url(path)])).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.body.contains("<title>Product</title>"),
            "{path}: {}",
            page.body
        );
        assert_eq!(page.header("cache-control"), Some("no-cache"), "{path}");
    }
    for path in [
        "/publishers",
        "/administration",
        "/productsale",
        "/product",
        "/bundlesale",
    ] {
        let page = curl(s(&[&gw.url(path)])).await;
        assert!(
            page.body.contains("<title>Store</title>"),
            "{path}: {}",
            page.body
        );
    }

    // robots.txt is a robots file, not the app.
    let robots = curl(s(&[&gw.url("/robots.txt")])).await;
    assert_eq!(robots.status, 200);
    assert_eq!(
        robots.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        robots.body.starts_with("User-agent: *\nAllow: /\n"),
        "{}",
        robots.body
    );
    for path in [
        "/graphql",
        "/uploads/",
        "/downloads/",
        "/orders",
        "/wallet",
        "/library",
        "/publisher",
        "/admin",
    ] {
        assert!(
            robots
                .body
                .lines()
                .any(|l| l == format!("Disallow: {path}")),
            "{path}: {}",
            robots.body
        );
    }
    assert!(
        !robots.body.contains("Disallow: /products"),
        "{}",
        robots.body
    );
    assert_eq!(robots.header("x-content-type-options"), Some("nosniff"));

    // Body-size limit (256k).
    let big = format!("{{\"query\":\"{}\"}}", " ".repeat(300 * 1024));
    let path = gw.dir.join("big.json");
    std::fs::write(&path, big).expect("write");
    let too_big = curl(s(&[
        &gw.url("/graphql"),
        "-H",
        "content-type: application/json",
        "--data-binary",
        &format!("@{}", path.display()),
    ]))
    .await;
    assert_eq!(too_big.status, 413);

    // Signed downloads.
    let uri = "/downloads/builds/game.bin";
    let link = |expires: i64, secret: &str| {
        let md5 = run_ok(Command::new("sh").args([
            "-c",
            &format!(
                "printf '%s' '{expires}{uri} {secret}' | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d ="
            ),
        ]));
        gw.url(&format!("{uri}?md5={}&expires={expires}", md5.trim()))
    };
    let valid = link(now() + 600, DOWNLOAD_SECRET);
    let whole = curl(s(&[&valid])).await;
    assert_eq!(whole.status, 200, "{whole:?}");
    assert_eq!(whole.header("content-length"), Some("100000"));
    let ranged = curl(s(&[&valid, "-r", "1000-1999"])).await;
    assert_eq!(ranged.status, 206, "{ranged:?}");
    assert_eq!(
        ranged.header("content-range"),
        Some("bytes 1000-1999/100000")
    );
    let forged = curl(s(&[&link(now() + 600, "guess")])).await;
    assert_eq!(forged.status, 403);
    let expired = curl(s(&[&link(now() - 1, DOWNLOAD_SECRET)])).await;
    assert_eq!(expired.status, 403, "expired and forged links answer alike");
    let unsigned = curl(s(&[&gw.url(uri)])).await;
    assert_eq!(unsigned.status, 403);
    // The log has paths only.
    assert!(!gw.log("access.log").contains("md5="));
}

#[test]
fn every_placeholder_of_nginx_conf_is_listed_in_its_header() {
    let template = std::fs::read_to_string(repo_root().join("nginx.conf")).expect("nginx.conf");
    let names = template_variables(&template);
    assert!(names.len() >= 10, "{names:?}");
    let body: String = template
        .lines()
        .skip_while(|l| l.starts_with('#') || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = body.as_str();
    while let Some(at) = rest.find("${") {
        let name: String = rest[at + 2..].chars().take_while(|c| *c != '}').collect();
        assert!(
            names.contains(&name),
            "${{{name}}} is not in the header list"
        );
        rest = &rest[at + 2..];
    }
}

#[tokio::test]
async fn images_are_uploaded_on_their_own_path_and_served_from_the_object_store() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let media = app
        .state
        .config
        .services
        .object_store_dir
        .display()
        .to_string();
    let gw = Gateway::start(addr, &[("GATEWAY_MEDIA_DIR", &media)]);
    let (token, _) = app
        .staff("pub@store.test", "Pub", domain::identity::Role::Publisher)
        .await;
    let created = app
        .gql(
            Some(&token),
            "mutation { createProduct(input: { title: \"Pictured\" }) { id } }",
            json!({}),
        )
        .await;
    let id = created["data"]["createProduct"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let png: Vec<u8> = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 300 * 1024]].concat();
    let file = tmp_dir("upload").join("cover.png");
    std::fs::write(&file, &png).expect("png");
    let operations = json!({
        "query": "mutation($f: Upload!, $p: UUID!) { uploadProductImage(productId: $p, kind: COVER, file: $f) { cover { key url } } }",
        "variables": { "f": null, "p": id },
    });
    let bearer = format!("authorization: Bearer {token}");
    let upload = |path: &str| {
        s(&[
            &gw.url(path),
            "-H",
            &bearer,
            "-H",
            "Apollo-Require-Preflight: true",
            "-F",
            &format!("operations={operations}"),
            "-F",
            r#"map={"0":["variables.f"]}"#,
            "-F",
            &format!("0=@{};type=image/png", file.display()),
        ])
    };

    // 300 KiB is over /graphql's body limit, under /graphql/upload's.
    let on_graphql = curl(upload("/graphql")).await;
    let uploaded = curl(upload("/graphql/upload")).await;
    let v = uploaded.json();
    let url = v["data"]["uploadProductImage"]["cover"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{uploaded:?}"))
        .to_owned();
    let served = tokio::task::spawn_blocking({
        let url = gw.url(&url);
        move || {
            Command::new("curl")
                .args(["-sS", "-k", "--max-time", "10", &url])
                .output()
                .expect("curl")
                .stdout
        }
    })
    .await
    .expect("thread");
    let head = curl(s(&["-I", &gw.url(&url)])).await;

    assert_eq!(on_graphql.status, 413);
    assert_eq!(uploaded.status, 200, "{uploaded:?}");
    assert!(url.starts_with(&format!("/media/products/{id}/")), "{url}");
    assert_eq!(served, png, "the gateway serves the stored bytes");
    assert_eq!(head.header("cache-control"), Some("max-age=31536000"));
    assert_eq!(head.header("content-type"), Some("image/png"));

    // A real picture gets smaller copies, each served by the gateway as its srcset says.
    let picture = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(700, 350, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let bytes =
        api::infra::objects::encode(&picture, api::infra::objects::ImageFormat::Png).expect("png");
    std::fs::write(&file, &bytes).expect("png");
    let uploaded = curl(s(&[
        &gw.url("/graphql/upload"),
        "-H",
        &bearer,
        "-H",
        "Apollo-Require-Preflight: true",
        "-F",
        &format!(
            "operations={}",
            json!({
                "query": "mutation($f: Upload!, $p: UUID!) { uploadProductImage(productId: $p, kind: SCREENSHOT, file: $f) { screenshots { width height srcset } } }",
                "variables": { "f": null, "p": id },
            })
        ),
        "-F",
        r#"map={"0":["variables.f"]}"#,
        "-F",
        &format!("0=@{};type=image/png", file.display()),
    ]))
    .await;
    let v = uploaded.json();
    let shot = &v["data"]["uploadProductImage"]["screenshots"][0];
    assert_eq!(
        (shot["width"].clone(), shot["height"].clone()),
        (json!(700), json!(350)),
        "{v}"
    );
    let srcset = shot["srcset"].as_str().expect("srcset").to_owned();
    let widths: Vec<&str> = srcset
        .split(", ")
        .filter_map(|c| c.split_once(' '))
        .map(|(_, w)| w)
        .collect();
    assert_eq!(widths, ["320w", "640w", "700w"], "{srcset}");
    for candidate in srcset.split(", ") {
        let (url, _) = candidate.split_once(' ').expect("url");
        let copy = curl(s(&["-I", &gw.url(url)])).await;
        assert_eq!(copy.status, 200, "{url}");
        assert_eq!(copy.header("content-type"), Some("image/png"), "{url}");
    }
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_the_trusted_proxy() {
    let upstream = echo_upstream().await;
    let forwarded = [("X-Forwarded-For", "6.6.6.6")];
    // As in dev: no proxy trusted, not even loopback.
    let direct = Gateway::start(upstream, &[]);
    let seen = curl(gql_args(
        &direct.url("/graphql"),
        "{ __typename }",
        &forwarded,
    ))
    .await
    .json();
    assert_eq!(seen_headers(&seen, "x-real-ip"), ["127.0.0.1"], "{seen:#}");
    // Behind a trusted proxy (here: loopback), its X-Forwarded-For names the client.
    let behind = Gateway::start(upstream, &[("GATEWAY_TRUSTED_PROXIES", "127.0.0.1/32")]);
    let seen = curl(gql_args(
        &behind.url("/graphql"),
        "{ __typename }",
        &forwarded,
    ))
    .await
    .json();
    assert_eq!(seen_headers(&seen, "x-real-ip"), ["6.6.6.6"], "{seen:#}");
}

/// The token cache (nginx.conf, "Token cache") keeps a valid token's answer, never a refusal,
/// and never past the token's expiry. Each verification is an access-log line for /verify.
#[tokio::test]
async fn cached_token_answers_end_with_the_token() {
    let upstream = echo_upstream().await;
    let gw = Gateway::start(upstream, &[]);
    let sub = uuid::Uuid::new_v4();
    let exp = now() + 2;
    let short = sign(&with(claims(sub), "exp", json!(exp)), &kid());
    let bearer = format!("Bearer {short}");
    let verifications = || gw.log("access.log").matches("\"path\":\"/verify\"").count();
    let forged = || {
        curl(gql_args(
            &gw.url("/graphql"),
            "{ __typename }",
            &[("Authorization", "Bearer a.b.c")],
        ))
    };

    // A refusal is not kept: each one is verified again.
    assert_eq!(forged().await.status, 401);
    assert_eq!(verifications(), 1);
    assert_eq!(forged().await.status, 401);
    assert_eq!(verifications(), 2);
    // No token: anonymous, nothing to verify.
    let anonymous = curl(gql_args(&gw.url("/graphql"), "{ __typename }", &[])).await;
    assert_eq!(anonymous.status, 200, "{anonymous:?}");
    assert!(seen_headers(&anonymous.json(), "x-user-id").is_empty());
    assert_eq!(verifications(), 2);
    // A valid token: verified once, then answered alike from the cache.
    for _ in 0..3 {
        let ok = curl(gql_args(
            &gw.url("/graphql"),
            "{ __typename }",
            &[("Authorization", &bearer)],
        ))
        .await;
        assert_eq!(ok.status, 200, "{ok:?}");
        assert_eq!(seen_headers(&ok.json(), "x-user-id"), [sub.to_string()]);
        assert_eq!(seen_headers(&ok.json(), "x-user-role"), ["user"]);
    }
    assert_eq!(verifications(), 3);
    // Once the token expired (with the api's 5 s leeway), the kept answer is gone too.
    let refused = wait_until("the expired token refused", || {
        let args = gql_args(
            &gw.url("/graphql"),
            "{ __typename }",
            &[("Authorization", &bearer)],
        );
        async move {
            let reply = curl(args).await;
            (reply.status == 401).then_some(reply)
        }
    })
    .await;
    assert!(
        now() >= exp + 5 - 1,
        "refused before it expired: {refused:?}"
    );
    assert_eq!(
        refused.json()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}
