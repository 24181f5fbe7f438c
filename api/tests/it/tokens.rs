//! Access tokens: what is issued, and every way a bad token is refused.

use api::infra::auth::jwt::Claims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use crate::helpers::*;

async fn signed_in(app: &TestApp) -> (String, Claims) {
    let auth = app.sign_up("ada@example.org", "Ada").await;
    let token = auth["accessToken"].as_str().expect("token").to_owned();
    let claims = app.state.keys.verify(&token).expect("valid");
    (token, claims)
}

fn sign(claims: &Value, kid: Option<&str>, pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// Sends `token` as a bearer and returns the status and `WWW-Authenticate`.
async fn try_token(app: &TestApp, token: &str) -> (u16, String, Value) {
    let (status, headers, body) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
            ME,
            json!({}),
        )
        .await;
    let www = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status.as_u16(), www, body)
}

#[tokio::test]
async fn issued_tokens_carry_the_claims_and_verify_with_the_published_key_set() {
    let app = TestApp::spawn().await;
    let (token, claims) = signed_in(&app).await;
    let (_, _, jwks) = app
        .send(
            axum::http::Request::get("/.well-known/jwks.json")
                .body(axum::body::Body::empty())
                .expect("req"),
        )
        .await;

    let header = jsonwebtoken::decode_header(&token).expect("header");
    let jwk = &jwks["keys"][0];
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["store-api"]);
    validation.set_issuer(&["store"]);
    let verified = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");

    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    assert_eq!(jwk["alg"], "RS256");
    assert!(jwk.get("d").is_none(), "no private part is published");
    assert_eq!(claims.exp - claims.iat, 600);
    for claim in [
        "iss", "aud", "sub", "role", "name", "iat", "nbf", "exp", "jti",
    ] {
        assert!(verified.claims.get(claim).is_some(), "missing {claim}");
    }
    assert_eq!(verified.claims["role"], "user");
    assert_eq!(verified.claims["name"], "Ada");
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token() {
    let app = TestApp::spawn().await;
    let (good, claims) = signed_in(&app).await;
    let kid = app.state.keys.signing_kid().expect("kid").to_owned();
    let now = chrono::Utc::now().timestamp();
    let base = serde_json::to_value(&claims).expect("claims");
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let pem = test_private_key();
    let other_key = api::infra::auth::jwt::generate_key_pair().expect("key").0;
    let public_pem = {
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
        rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .expect("key")
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("pem")
    };
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_payload =
        B64.encode(serde_json::to_vec(&with("role", json!("admin"))).expect("json"));
    let none_header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let hs_header = Header {
        kid: Some(kid.clone()),
        ..Header::new(Algorithm::HS256)
    };

    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            sign(&with("exp", json!(now - 3600)), Some(&kid), pem),
        ),
        (
            "not yet valid",
            sign(&with("nbf", json!(now + 3600)), Some(&kid), pem),
        ),
        (
            "wrong audience",
            sign(&with("aud", json!("someone-else")), Some(&kid), pem),
        ),
        (
            "wrong issuer",
            sign(&with("iss", json!("evil")), Some(&kid), pem),
        ),
        ("unknown kid", sign(&base, Some("not-a-key"), pem)),
        ("no kid", sign(&base, None, pem)),
        ("another key, same kid", sign(&base, Some(&kid), &other_key)),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], tampered_payload, parts[2]),
        ),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "HS256 keyed with the public key",
            jsonwebtoken::encode(
                &hs_header,
                &base,
                &EncodingKey::from_secret(public_pem.as_bytes()),
            )
            .expect("hs256"),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];

    for (what, token) in cases {
        let (status, www, body) = try_token(&app, &token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(www, r#"Bearer error="invalid_token""#, "{what}");
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{what}");
    }
    let (status, _, body) = try_token(&app, &good).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["me"]["email"], "ada@example.org");
}

/// The api's own bearer path reads `Authorization` exactly as the gateway does
/// (`gateway/auth.js`: `/^Bearer +(\S+) *$/i`), refuses two of them, and refuses a token whose
/// claims would put a line break into an `X-User-*` value or a log line.
#[tokio::test]
async fn the_bearer_path_reads_the_header_as_the_gateway_does() {
    let app = TestApp::spawn().await;
    let (good, claims) = signed_in(&app).await;
    let kid = app.state.keys.signing_kid().expect("kid").to_owned();
    let mut base = serde_json::to_value(&claims).expect("claims");
    base["name"] = json!("Ada\r\nX-User-Role: admin");
    let line_break = sign(&base, Some(&kid), test_private_key());
    let me = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut h: Vec<(&str, &str)> = vec![("content-type", "application/json")];
            h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            let (status, _, body) = app.gql_http(&h, ME, json!({})).await;
            (status.as_u16(), body)
        }
    };

    let mut accepted = Vec::new();
    for value in [
        format!("Bearer {good}"),
        format!("bearer {good}"),
        format!("BEARER {good}"),
        format!("bEaReR   {good}  "),
    ] {
        accepted.push(me(vec![("authorization", value)]).await);
    }
    let mut refused = Vec::new();
    for value in [
        format!("Bearer\t{good}"),
        format!("Bearer{good}"),
        format!("Basic {good}"),
        format!("Bearer {good} extra"),
        "Bearer ".to_owned(),
        format!("Bearer {line_break}"),
    ] {
        refused.push(me(vec![("authorization", value)]).await);
    }
    let (twice_status, twice) = me(vec![
        ("authorization", format!("Bearer {good}")),
        ("authorization", format!("Bearer {good}")),
    ])
    .await;

    for (status, body) in &accepted {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["data"]["me"]["email"], "ada@example.org");
    }
    for (status, body) in &refused {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(error_code(body), "UNAUTHENTICATED");
    }
    assert_eq!(twice_status, 400, "{twice}");
    assert_eq!(error_code(&twice), "BAD_REQUEST");
}
