//! API clients and ownership tickets (issue 16): a publisher's server trades its client id and
//! secret for an access token at `/oauth/token` (OAuth 2.0 client credentials) and acts as the
//! publisher within its scopes; a buyer's ownership ticket verifies offline with the store's JWK
//! set for one product and one publisher, and online with `ownsProduct(productId, buyerId)`.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use domain::identity::Role;
use serde_json::{Value, json};

use crate::helpers::gateway::{Gateway, curl, gql_args, s};
use crate::helpers::*;
use crate::refunds::completed_order;
use crate::saga::shop;

const CREATE: &str = "mutation($n: String!, $s: [ApiScope!]!) { createApiClient(name: $n, scopes: $s) { clientSecret client { id name scope scopes lastUsedAt revokedAt } } }";
const REVENUE: &str = "{ publisherRevenue(days: 7) { publisherId sales gross { amountMinor } } }";
const CREATE_PRODUCT: &str = "mutation { createProduct(input: {title: \"Sneaky\", genres: [\"action\"], platforms: [\"linux\"]}) { id } }";
const TICKET: &str = "mutation($p: UUID!) { ownershipTicket(productId: $p) { ticket productId publisherId buyerId expiresAt } }";
const OWNS: &str = "query($p: UUID!, $b: String!) { ownsProduct(productId: $p, buyerId: $b) }";

/// A client of the publisher of `token` with `scopes` (GraphQL enum values): (id, secret).
pub(crate) async fn create_client(app: &TestApp, token: &str, scopes: &[&str]) -> (String, String) {
    let v = app
        .gql(
            Some(token),
            CREATE,
            json!({ "n": "Game server", "s": scopes }),
        )
        .await;
    assert_no_errors(&v);
    let created = &v["data"]["createApiClient"];
    (
        created["client"]["id"].as_str().expect("id").to_owned(),
        created["clientSecret"].as_str().expect("secret").to_owned(),
    )
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// `POST /oauth/token` straight to the api: (status, headers, JSON body).
async fn token_request(
    app: &TestApp,
    form: &str,
    authorization: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req =
        Request::post("/oauth/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    app.send(req.body(Body::from(form.to_owned())).expect("request"))
        .await
}

/// A client's access token for `scope` (all of its scopes when `None`).
pub(crate) async fn client_token(
    app: &TestApp,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> String {
    let form = match scope {
        Some(s) => format!("grant_type=client_credentials&scope={}", urlencode(s)),
        None => "grant_type=client_credentials".to_owned(),
    };
    let (status, _, body) = token_request(app, &form, Some(&basic(id, secret))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_reads_its_sales_through_the_gateway_within_its_scopes() {
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let publisher_id = app.account_id(&shop.publisher).await.to_string();
    completed_order(&shop, "Sold", 1999, 5000).await;
    let (id, secret) = create_client(app, &shop.publisher, &["SALES_READ", "OWNERSHIP_READ"]).await;
    let graphql = gw.url("/graphql");

    let issued = curl(s(&[
        &gw.url("/oauth/token"),
        "-u",
        &format!("{id}:{secret}"),
        "-d",
        "grant_type=client_credentials",
    ]))
    .await;
    let body = issued.json();
    let token = body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let bearer = format!("Bearer {token}");
    let sales = wait_until("the sale, read by the client", || async {
        let v = curl(gql_args(&graphql, REVENUE, &[("authorization", &bearer)]))
            .await
            .json();
        (v["data"]["publisherRevenue"]["sales"] == 1).then_some(v)
    })
    .await;
    // Forged X-User-* headers of the client's own: the gateway drops them.
    let forged = curl(gql_args(
        &graphql,
        CREATE_PRODUCT,
        &[
            ("authorization", &bearer),
            ("x-user-scope", "catalog:write"),
            ("x-user-client", &id),
            ("x-user-role", "admin"),
            ("x-gateway-secret", "guess"),
        ],
    ))
    .await
    .json();
    let person_only = curl(gql_args(
        &graphql,
        "{ me { id email } }",
        &[("authorization", &bearer)],
    ))
    .await
    .json();
    let wider = curl(s(&[
        &gw.url("/oauth/token"),
        "-u",
        &format!("{id}:{secret}"),
        "-d",
        "grant_type=client_credentials&scope=sales:read catalog:write",
    ]))
    .await;
    let narrower = client_token(app, &id, &secret, Some("sales:read")).await;
    let owns_with_narrower = app
        .gql(
            Some(&narrower),
            OWNS,
            json!({ "p": uuid::Uuid::nil(), "b": "b_x" }),
        )
        .await;
    let listed = app
        .gql(
            Some(&shop.publisher),
            "{ apiClients { id lastUsedAt } }",
            json!({}),
        )
        .await;

    assert_eq!(issued.status, 200, "{}", issued.body);
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "sales:read ownership:read");
    assert_eq!(
        sales["data"]["publisherRevenue"]["publisherId"], publisher_id,
        "the client acts as its publisher"
    );
    // The sale of 1999 without its 19 % VAT (the store's country; the buyer set none).
    assert_eq!(
        sales["data"]["publisherRevenue"]["gross"]["amountMinor"],
        1680
    );
    assert_eq!(error_code(&forged), "FORBIDDEN", "{forged}");
    assert_eq!(error_code(&person_only), "FORBIDDEN", "{person_only}");
    assert_eq!(wider.status, 400, "{}", wider.body);
    assert_eq!(wider.json()["error"], "invalid_scope");
    assert_eq!(error_code(&owns_with_narrower), "FORBIDDEN");
    assert_no_errors(&listed);
    assert!(
        listed["data"]["apiClients"][0]["lastUsedAt"].is_string(),
        "{listed}"
    );
}

#[tokio::test]
async fn wrong_secrets_unknown_and_revoked_clients_get_invalid_client() {
    let app = TestApp::spawn().await;
    let (publisher, _) = app
        .staff("pub@publisher.test", "Pub", Role::Publisher)
        .await;
    let (id, secret) = create_client(&app, &publisher, &["SALES_READ"]).await;
    let grant = "grant_type=client_credentials";

    let wrong = token_request(&app, grant, Some(&basic(&id, "scs_wrong"))).await;
    let unknown = token_request(
        &app,
        grant,
        Some(&basic(&uuid::Uuid::now_v7().to_string(), &secret)),
    )
    .await;
    let none = token_request(&app, grant, None).await;
    let in_body = token_request(
        &app,
        &format!("{grant}&client_id={id}&client_secret={secret}"),
        None,
    )
    .await;
    let both = token_request(
        &app,
        &format!("{grant}&client_id={id}&client_secret={secret}"),
        Some(&basic(&id, &secret)),
    )
    .await;
    let twice = token_request(
        &app,
        &format!("{grant}&{grant}"),
        Some(&basic(&id, &secret)),
    )
    .await;
    let other_grant = token_request(&app, "grant_type=password", Some(&basic(&id, &secret))).await;
    let no_grant = token_request(&app, "scope=sales:read", Some(&basic(&id, &secret))).await;
    let unknown_scope = token_request(
        &app,
        &format!("{grant}&scope=admin"),
        Some(&basic(&id, &secret)),
    )
    .await;
    let issued = client_token(&app, &id, &secret, None).await;
    let before = app.gql(Some(&issued), REVENUE, json!({})).await;
    let revoked = app
        .gql(
            Some(&publisher),
            "mutation($id: UUID!) { revokeApiClient(id: $id) { revokedAt } }",
            json!({ "id": id }),
        )
        .await;
    let after_revoke = token_request(&app, grant, Some(&basic(&id, &secret))).await;
    let (issued_status, _, _) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {issued}")),
            ],
            REVENUE,
            json!({}),
        )
        .await;

    for (what, (status, headers, body)) in [
        ("wrong secret", &wrong),
        ("unknown client", &unknown),
        ("no credentials", &none),
        ("revoked", &after_revoke),
    ] {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .is_ok_and(|v| v.starts_with("Basic")),
            "{what}"
        );
    }
    assert_eq!(wrong.2, unknown.2, "one answer whatever was wrong");
    assert_eq!(in_body.0, StatusCode::OK, "{}", in_body.2);
    for (what, (status, _, body), error) in [
        ("two methods", &both, "invalid_request"),
        ("a parameter twice", &twice, "invalid_request"),
        ("another grant", &other_grant, "unsupported_grant_type"),
        ("no grant_type", &no_grant, "invalid_request"),
        ("unknown scope", &unknown_scope, "invalid_scope"),
    ] {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"], error, "{what}");
    }
    assert_no_errors(&before);
    assert_no_errors(&revoked);
    assert_eq!(
        issued_status,
        StatusCode::UNAUTHORIZED,
        "a revoked client's token stops at once"
    );
}

#[tokio::test]
async fn token_requests_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(|c| c.rates.oauth_per_ip = rate(3, 600)).await;
    let (publisher, _) = app
        .staff("pub@publisher.test", "Pub", Role::Publisher)
        .await;
    let (id, _) = create_client(&app, &publisher, &["SALES_READ"]).await;
    let guess = |n: usize| basic(&id, &format!("scs_guess{n}"));

    let mut statuses = Vec::new();
    for n in 0..5 {
        let (status, headers, body) =
            token_request(&app, "grant_type=client_credentials", Some(&guess(n))).await;
        statuses.push((
            status,
            headers.get("retry-after").is_some(),
            body["error"].clone(),
        ));
    }

    assert_eq!(
        statuses.iter().map(|s| s.0).collect::<Vec<_>>(),
        [401, 401, 401, 429, 429].map(|c| StatusCode::from_u16(c).expect("status"))
    );
    assert!(statuses[3].1, "429 says when to come back");
    assert_eq!(statuses[3].2, "temporarily_unavailable");
}

#[tokio::test]
async fn a_client_cannot_reach_another_publishers_data() {
    let app = TestApp::spawn().await;
    let (alpha, _) = app
        .staff("alpha@publisher.test", "Alpha", Role::Publisher)
        .await;
    let (beta, beta_id) = app
        .staff("beta@publisher.test", "Beta", Role::Publisher)
        .await;
    let alpha_product = app
        .create_product(
            &alpha,
            json!({ "title": "Alpha Game", "genres": ["action"], "platforms": ["linux"] }),
            &[digital("Standard", 999)],
            true,
        )
        .await;
    let (alpha_client, _) = create_client(&app, &alpha, &["SALES_READ"]).await;
    let (id, secret) = create_client(
        &app,
        &beta,
        &[
            "SALES_READ",
            "CATALOG_READ",
            "CATALOG_WRITE",
            "SHIPMENTS_WRITE",
            "OWNERSHIP_READ",
        ],
    )
    .await;
    let token = client_token(&app, &id, &secret, None).await;
    let draft = app
        .create_product(
            &beta,
            json!({ "title": "Beta Draft", "genres": ["action"], "platforms": ["linux"] }),
            &[digital("Standard", 999)],
            false,
        )
        .await;
    let (sales_only, sales_secret) = create_client(&app, &beta, &["SALES_READ"]).await;
    let sales_token = client_token(&app, &sales_only, &sales_secret, None).await;
    let draft_query = "query($id: UUID!) { product(id: $id) { title } }";

    let draft_with_catalog_read = app
        .gql(Some(&token), draft_query, json!({ "id": draft.id }))
        .await;
    let draft_with_sales_read = app
        .gql(Some(&sales_token), draft_query, json!({ "id": draft.id }))
        .await;
    let update = app
        .gql(
            Some(&token),
            "mutation($id: UUID!) { updateProduct(id: $id, input: {title: \"Mine now\"}) { title } }",
            json!({ "id": alpha_product.id }),
        )
        .await;
    let owns = app
        .gql(
            Some(&token),
            OWNS,
            json!({ "p": alpha_product.id, "b": "b_anyone" }),
        )
        .await;
    let revenue = app.gql(Some(&token), REVENUE, json!({})).await;
    let alpha_revenue = app
        .gql(
            Some(&token),
            "query($p: UUID!) { publisherRevenue(publisherId: $p) { sales } }",
            json!({ "p": app.account_id(&alpha).await }),
        )
        .await;
    let mine = app
        .gql(
            Some(&token),
            "{ myProducts(first: 10) { nodes { id } } }",
            json!({}),
        )
        .await;
    let revoke_theirs = app
        .gql(
            Some(&beta),
            "mutation($id: UUID!) { revokeApiClient(id: $id) { id } }",
            json!({ "id": alpha_client }),
        )
        .await;
    let manage = app
        .gql(Some(&token), "{ apiClients { id } }", json!({}))
        .await;

    assert_eq!(
        draft_with_catalog_read["data"]["product"]["title"], "Beta Draft",
        "catalog:read sees its publisher's drafts"
    );
    assert_eq!(
        error_code(&draft_with_sales_read),
        "NOT_FOUND",
        "without catalog:read a client sees the public catalog only"
    );
    assert_eq!(error_code(&update), "FORBIDDEN", "{update}");
    assert_eq!(error_code(&owns), "FORBIDDEN", "{owns}");
    assert_eq!(revenue["data"]["publisherRevenue"]["publisherId"], beta_id);
    assert_eq!(error_code(&alpha_revenue), "FORBIDDEN");
    assert_eq!(
        mine["data"]["myProducts"]["nodes"],
        json!([{ "id": draft.id }]),
        "its own publisher's products only"
    );
    assert_eq!(error_code(&revoke_theirs), "NOT_FOUND");
    assert_eq!(
        error_code(&manage),
        "FORBIDDEN",
        "a client cannot manage clients"
    );
}

/// What a publisher's server does with a ticket: verify it offline against the store's JWK set,
/// for its own audience and the product it asks about.
fn verify_ticket(
    ticket: &str,
    jwks: &Value,
    publisher: &str,
    product: &str,
) -> Result<Value, String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let header = decode_header(ticket).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("store-ownership+jwt") {
        return Err(format!("not a ticket: {:?}", header.typ));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["store"]);
    validation.set_audience(&[publisher]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = decode::<Value>(ticket, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if claims["product"] != product {
        return Err(format!(
            "a ticket for {} , not {product}",
            claims["product"]
        ));
    }
    Ok(claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_tickets_verify_offline_for_one_product_and_one_publisher_and_online() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let gw = Gateway::start(addr, &[]);
    let (alpha, alpha_id) = app
        .staff("alpha@publisher.test", "Alpha", Role::Publisher)
        .await;
    let (beta, beta_id) = app
        .staff("beta@publisher.test", "Beta", Role::Publisher)
        .await;
    let new = |token: String, title: &'static str| {
        let app = &app;
        async move {
            app.create_product(
                &token,
                json!({ "title": title, "genres": ["action"], "platforms": ["linux"] }),
                &[digital("Standard", 999)],
                true,
            )
            .await
            .id
        }
    };
    let x = new(alpha.clone(), "Product X").await;
    let y = new(alpha.clone(), "Product Y").await;
    let z = new(beta.clone(), "Product Z").await;
    let buyer = app.sign_up("ada@example.org", "Ada").await;
    let buyer_token = buyer["accessToken"].as_str().expect("token").to_owned();
    let buyer_account = buyer["account"]["id"].as_str().expect("id").to_owned();
    let other = app.sign_up("bob@example.org", "Bob").await;
    let other_token = other["accessToken"].as_str().expect("token").to_owned();
    app.grant_product(&buyer_token, &x).await;
    app.grant_product(&buyer_token, &z).await;
    app.grant_product(&other_token, &y).await;
    let (alpha_client, alpha_secret) = create_client(&app, &alpha, &["OWNERSHIP_READ"]).await;
    let alpha_server = client_token(&app, &alpha_client, &alpha_secret, None).await;
    let (beta_client, beta_secret) = create_client(&app, &beta, &["OWNERSHIP_READ"]).await;
    let beta_server = client_token(&app, &beta_client, &beta_secret, None).await;

    let ticket_x = app.gql(Some(&buyer_token), TICKET, json!({ "p": x })).await;
    let again_x = app.gql(Some(&buyer_token), TICKET, json!({ "p": x })).await;
    let ticket_z = app.gql(Some(&buyer_token), TICKET, json!({ "p": z })).await;
    let not_owned = app.gql(Some(&buyer_token), TICKET, json!({ "p": y })).await;
    let other_ticket = app.gql(Some(&other_token), TICKET, json!({ "p": y })).await;
    let jwks = curl(s(&[&gw.url("/.well-known/jwks.json")])).await.json();
    let ticket = ticket_x["data"]["ownershipTicket"]["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let buyer_for_alpha = ticket_x["data"]["ownershipTicket"]["buyerId"]
        .as_str()
        .expect("buyer id")
        .to_owned();
    let other_for_alpha = other_ticket["data"]["ownershipTicket"]["buyerId"]
        .as_str()
        .expect("buyer id")
        .to_owned();
    let as_token = curl(gql_args(
        &gw.url("/graphql"),
        "{ me { id } }",
        &[("authorization", &format!("Bearer {ticket}"))],
    ))
    .await;
    let owns = |token: String, product: String, buyer: String| {
        let app = &app;
        async move {
            app.gql(Some(&token), OWNS, json!({ "p": product, "b": buyer }))
                .await
        }
    };
    let owner_x = owns(alpha_server.clone(), x.clone(), buyer_for_alpha.clone()).await;
    let owner_y = owns(alpha_server.clone(), y.clone(), buyer_for_alpha.clone()).await;
    let other_x = owns(alpha_server.clone(), x.clone(), other_for_alpha.clone()).await;
    let unknown = owns(alpha_server.clone(), x.clone(), "b_never_seen".to_owned()).await;
    let beta_asks = owns(beta_server.clone(), x.clone(), buyer_for_alpha.clone()).await;
    let person_asks = owns(buyer_token.clone(), x.clone(), buyer_for_alpha.clone()).await;

    assert_no_errors(&ticket_x);
    let claims = verify_ticket(&ticket, &jwks, &alpha_id, &x).expect("verifies offline");
    assert_eq!(claims["sub"], buyer_for_alpha);
    assert_eq!(claims["aud"], alpha_id);
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!((1..=300).contains(&lifetime), "{lifetime}");
    assert!(claims["jti"].is_string());
    assert!(
        !ticket_x.to_string().contains(&buyer_account)
            && !claims.to_string().contains(&buyer_account),
        "the account id never leaves"
    );
    assert!(
        verify_ticket(&ticket, &jwks, &alpha_id, &y).is_err(),
        "not for product Y"
    );
    let replayed =
        verify_ticket(&ticket, &jwks, &beta_id, &x).expect_err("not for another publisher");
    assert!(replayed.contains("Audience"), "{replayed}");
    assert_eq!(
        again_x["data"]["ownershipTicket"]["buyerId"], buyer_for_alpha,
        "one id per publisher and buyer"
    );
    assert_ne!(
        again_x["data"]["ownershipTicket"]["ticket"], ticket_x["data"]["ownershipTicket"]["ticket"],
        "a new jti each time"
    );
    assert_ne!(
        ticket_z["data"]["ownershipTicket"]["buyerId"], buyer_for_alpha,
        "another publisher knows the buyer by another id"
    );
    assert_eq!(ticket_z["data"]["ownershipTicket"]["publisherId"], beta_id);
    assert_eq!(error_code(&not_owned), "FORBIDDEN");
    assert_eq!(as_token.status, 401, "a ticket is no access token");
    assert_eq!(owner_x["data"]["ownsProduct"], true, "{owner_x}");
    assert_eq!(owner_y["data"]["ownsProduct"], false);
    assert_eq!(other_x["data"]["ownsProduct"], false, "a non-owner");
    assert_eq!(unknown["data"]["ownsProduct"], false);
    assert_eq!(error_code(&beta_asks), "FORBIDDEN", "{beta_asks}");
    assert_eq!(error_code(&person_asks), "FORBIDDEN");
}

#[tokio::test]
async fn ownership_tickets_are_rate_limited_per_account_and_a_refusal_changes_nothing() {
    // Setup: two tickets an hour per account; a buyer owning a product of each of two
    // publishers, and another buyer.
    let app = TestApp::spawn_with(|c| c.rates.ticket_per_account = rate(2, 3600)).await;
    let (alpha, _) = app
        .staff("alpha@publisher.test", "Alpha", Role::Publisher)
        .await;
    let (beta, beta_id) = app
        .staff("beta@publisher.test", "Beta", Role::Publisher)
        .await;
    let new = |token: String, title: &'static str| {
        let app = &app;
        async move {
            app.create_product(
                &token,
                json!({ "title": title, "genres": ["action"], "platforms": ["linux"] }),
                &[digital("Standard", 999)],
                true,
            )
            .await
            .id
        }
    };
    let x = new(alpha, "Product X").await;
    let z = new(beta, "Product Z").await;
    let buyer = app.sign_up("ada@example.org", "Ada").await;
    let buyer_token = buyer["accessToken"].as_str().expect("token").to_owned();
    let other = app.sign_up("bob@example.org", "Bob").await;
    let other_token = other["accessToken"].as_str().expect("token").to_owned();
    app.grant_product(&buyer_token, &x).await;
    app.grant_product(&buyer_token, &z).await;
    app.grant_product(&other_token, &z).await;
    let ids_for_beta = format!(
        "SELECT count(*) AS n FROM identity.publisher_buyer WHERE publisher_id = '{beta_id}'"
    );

    // Exercise: two tickets for X pass; the third, for Z (the buyer's first of beta's, which
    // would make the buyer's id for beta), is over the limit. Another account is not.
    let first = app.gql(Some(&buyer_token), TICKET, json!({ "p": x })).await;
    let second = app.gql(Some(&buyer_token), TICKET, json!({ "p": x })).await;
    let third = app.gql(Some(&buyer_token), TICKET, json!({ "p": z })).await;
    let ids_after_refusal = app.scalar(&ids_for_beta).await;
    let other_ticket = app.gql(Some(&other_token), TICKET, json!({ "p": z })).await;

    // Check
    assert_no_errors(&first);
    assert_no_errors(&second);
    assert_eq!(error_code(&third), "RATE_LIMITED", "{third}");
    let retry = third["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .expect("retryAfterSeconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert!(third["data"].is_null(), "no ticket: {third}");
    assert_eq!(ids_after_refusal, 0, "the refused request made no buyer id");
    assert_no_errors(&other_ticket);
    assert_eq!(app.scalar(&ids_for_beta).await, 1, "the other buyer's only");
}

/// The revocation check costs one primary-key read per request of a client (the last use is
/// written at most once a minute), and nothing for a person's request.
#[tokio::test]
async fn a_clients_request_costs_one_more_statement_than_its_publishers() {
    use std::sync::atomic::Ordering;

    let app = TestApp::spawn().await;
    let (publisher, _) = app
        .staff("pub@publisher.test", "Pub", Role::Publisher)
        .await;
    let (id, secret) = create_client(&app, &publisher, &["SALES_READ"]).await;
    let token = client_token(&app, &id, &secret, None).await;
    // The first request records the last use; the next ones within the minute only read.
    assert_no_errors(&app.gql(Some(&token), REVENUE, json!({})).await);
    let count = |token: String| {
        let app = &app;
        async move {
            let mut counts = Vec::new();
            for _ in 0..3 {
                app.statements.store(0, Ordering::SeqCst);
                let v = app.gql(Some(&token), REVENUE, json!({})).await;
                assert_no_errors(&v);
                counts.push(app.statements.load(Ordering::SeqCst));
            }
            counts
        }
    };

    let as_client = count(token.clone()).await;
    let as_publisher = count(publisher.clone()).await;

    println!("statements per request: client {as_client:?}, publisher {as_publisher:?}");
    for (c, p) in as_client.iter().zip(&as_publisher) {
        assert_eq!(
            *c,
            p + 1,
            "client {as_client:?}, publisher {as_publisher:?}"
        );
    }
}

/// Over the WebSocket a client is held to its scopes too, and revoking it closes its socket
/// (4403) with the subscriptions on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_clients_socket_closes_and_its_scopes_hold_there_too() {
    use crate::helpers::ws::Ws;

    let app = TestApp::spawn_with(|c| {
        c.limits.ws_session_check = std::time::Duration::from_millis(50);
    })
    .await;
    let addr = app.serve().await;
    let (publisher, _) = app
        .staff("pub@publisher.test", "Pub", Role::Publisher)
        .await;
    let (id, secret) = create_client(&app, &publisher, &["SALES_READ"]).await;
    let token = client_token(&app, &id, &secret, None).await;
    let mut ws = Ws::open(addr, &[], Some(&token)).await;

    let revenue = ws.run(REVENUE, json!({})).await;
    let notifications = ws
        .run("subscription { notificationReceived { title } }", json!({}))
        .await;
    let shipments = ws
        .run("subscription { shipmentsUpdated { orderId } }", json!({}))
        .await;
    ws.subscribe("subscription { salesFeed { orderId } }", json!({}))
        .await;
    let revoked = app
        .gql(
            Some(&publisher),
            "mutation($id: UUID!) { revokeApiClient(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    let closed = ws.closed().await;

    assert_no_errors(&revenue);
    assert_eq!(error_code(&notifications), "FORBIDDEN", "{notifications}");
    assert_eq!(error_code(&shipments), "FORBIDDEN", "{shipments}");
    assert_no_errors(&revoked);
    assert_eq!(closed.map(|c| c.0), Some(4403));
}
