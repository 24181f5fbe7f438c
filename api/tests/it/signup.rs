use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn sign_up_makes_a_user_who_is_signed_in() {
    let app = TestApp::spawn().await;

    let auth = app.sign_up("Ada.Lovelace@Example.org", "Ada").await;
    let me = app.gql(auth["accessToken"].as_str(), ME, json!({})).await;

    assert_eq!(auth["account"]["role"], "USER");
    assert_eq!(auth["account"]["status"], "ACTIVE");
    assert_eq!(me["data"]["me"]["email"], "Ada.Lovelace@Example.org");
    assert_eq!(me["data"]["me"]["displayName"], "Ada");
    assert_eq!(me["data"]["me"]["id"], auth["account"]["id"]);
}

#[tokio::test]
async fn sign_up_never_yields_a_publisher_or_an_admin() {
    let app = TestApp::spawn().await;

    // A role in the input is not part of the schema: refused, nothing created.
    let with_role = app
        .gql(
            None,
            "mutation { signUp(input: { email: \"eve@store.test\", password: \"0123456789ab\", displayName: \"Eve\", role: ADMIN }) { account { role } } }",
            json!({}),
        )
        .await;
    // Spoofed gateway headers without the secret are ignored.
    let (_, _, spoofed) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                ("x-user-role", "admin"),
                ("x-user-id", "00000000-0000-7000-8000-000000000000"),
            ],
            SIGN_UP,
            json!({ "input": { "email": "mallory@store.test", "password": PASSWORD, "displayName": "admin" } }),
        )
        .await;

    assert_eq!(error_code(&with_role), "GRAPHQL_VALIDATION_FAILED");
    assert_no_errors(&spoofed);
    assert_eq!(spoofed["data"]["signUp"]["account"]["role"], "USER");
    assert_eq!(app.count_accounts().await, 1);
}

#[tokio::test]
async fn a_duplicate_email_in_any_case_conflicts_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.org", "Ada").await;

    let again = app
        .gql(
            None,
            SIGN_UP,
            json!({ "input": { "email": "  ADA@Example.ORG ", "password": PASSWORD, "displayName": "Imposter" } }),
        )
        .await;

    assert_eq!(error_code(&again), "CONFLICT");
    assert_eq!(app.count_accounts().await, 1);
}

#[tokio::test]
async fn invalid_input_is_refused_per_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        ("ada@example.org", "short", "Ada", "password"),
        ("not-an-email", PASSWORD, "Ada", "email"),
        ("ada@example.org", PASSWORD, "   ", "displayName"),
    ];

    for (email, password, name, field) in cases {
        let v = app
            .gql(
                None,
                SIGN_UP,
                json!({ "input": { "email": email, "password": password, "displayName": name } }),
            )
            .await;
        assert_eq!(error_code(&v), "BAD_USER_INPUT", "{field}");
        assert_eq!(v["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(app.count_accounts().await, 0);
}

#[tokio::test]
async fn a_wrong_email_and_a_wrong_password_answer_the_same() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.org", "Ada").await;

    let wrong_password = app.sign_in("ada@example.org", "not the password").await;
    let wrong_email = app.sign_in("nobody@example.org", PASSWORD).await;
    let right = app.sign_in("ADA@example.org", PASSWORD).await;

    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(wrong_password["errors"], wrong_email["errors"]);
    assert_no_errors(&right);
    assert_eq!(
        right["data"]["signIn"]["account"]["email"],
        "ada@example.org"
    );
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_email() {
    let app = TestApp::spawn_with(|c| c.rates.signin_per_email = rate(3, 60)).await;
    app.sign_up("ada@example.org", "Ada").await;

    for _ in 0..3 {
        let v = app.sign_in("ada@example.org", "wrong password!").await;
        assert_eq!(error_code(&v), "UNAUTHENTICATED");
    }
    let limited = app.sign_in("Ada@Example.org", PASSWORD).await;
    let other = app.sign_in("bob@example.org", "wrong password!").await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
    let retry = limited["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .expect("retry after");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        error_code(&other),
        "UNAUTHENTICATED",
        "other addresses are not limited"
    );
}

#[tokio::test]
async fn sign_up_is_rate_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| c.rates.signup_per_ip = rate(2, 60)).await;
    let from = |ip: &'static str| {
        [
            ("content-type", "application/json"),
            ("x-gateway-secret", GATEWAY_SECRET),
            ("x-real-ip", ip),
        ]
    };
    let input = |n: u32| json!({ "input": { "email": format!("u{n}@store.test"), "password": PASSWORD, "displayName": "U" } });

    for n in 0..2 {
        let (_, _, v) = app.gql_http(&from("198.51.100.7"), SIGN_UP, input(n)).await;
        assert_no_errors(&v);
    }
    let (_, _, limited) = app.gql_http(&from("198.51.100.7"), SIGN_UP, input(3)).await;
    let (_, _, elsewhere) = app.gql_http(&from("203.0.113.9"), SIGN_UP, input(4)).await;

    assert_eq!(error_code(&limited), "RATE_LIMITED");
    assert_no_errors(&elsewhere);
    assert_eq!(app.count_accounts().await, 3);
}
