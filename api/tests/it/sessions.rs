use serde_json::{Value, json};

use crate::helpers::*;

fn refresh_token(v: &Value, op: &str) -> String {
    v["data"][op]["refreshToken"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token in {v:#}"))
        .to_owned()
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let first = app.sign_up("ada@example.org", "Ada").await;
    let t1 = first["refreshToken"].as_str().expect("token").to_owned();

    let r1 = app.gql(None, REFRESH, json!({ "t": t1 })).await;
    let t2 = refresh_token(&r1, "refreshSession");
    let me = app
        .gql(
            r1["data"]["refreshSession"]["accessToken"].as_str(),
            ME,
            json!({}),
        )
        .await;
    // The client went on with t2...
    let r2 = app.gql(None, REFRESH, json!({ "t": t2 })).await;
    let t3 = refresh_token(&r2, "refreshSession");
    // ...so presenting t1 again is a replay, not a lost answer.
    let replay = app.gql(None, REFRESH, json!({ "t": t1 })).await;
    // It ended the family, so the newest token is dead too.
    let after = app.gql(None, REFRESH, json!({ "t": t3 })).await;

    assert_ne!(t1, t2);
    assert_eq!(me["data"]["me"]["email"], "ada@example.org");
    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    assert_eq!(error_code(&after), "UNAUTHENTICATED");
}

#[tokio::test]
async fn without_a_grace_any_second_use_of_a_refresh_token_revokes_the_family() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let first = app.sign_up("ada@example.org", "Ada").await;
    let t1 = first["refreshToken"].as_str().expect("token").to_owned();

    let t2 = refresh_token(
        &app.gql(None, REFRESH, json!({ "t": t1 })).await,
        "refreshSession",
    );
    let replay = app.gql(None, REFRESH, json!({ "t": t1 })).await;
    let after = app.gql(None, REFRESH, json!({ "t": t2 })).await;

    assert_eq!(error_code(&replay), "UNAUTHENTICATED");
    assert_eq!(error_code(&after), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_refresh_whose_answer_was_lost_gets_the_same_token_again_and_the_session_goes_on() {
    let app = TestApp::spawn().await;
    let first = app.sign_up("ada@example.org", "Ada").await;
    let t1 = first["refreshToken"].as_str().expect("token").to_owned();

    const REFRESH_WITH_EXPIRY: &str = "mutation($t: String!) { refreshSession(refreshToken: $t) \
        { accessToken refreshToken refreshTokenExpiresAt } }";
    // The page navigated away before it stored this answer...
    let lost = app.gql(None, REFRESH_WITH_EXPIRY, json!({ "t": t1 })).await;
    // ...and the next page presents t1 again.
    let again = app.gql(None, REFRESH_WITH_EXPIRY, json!({ "t": t1 })).await;
    let t2 = refresh_token(&again, "refreshSession");
    let me = app
        .gql(
            again["data"]["refreshSession"]["accessToken"].as_str(),
            ME,
            json!({}),
        )
        .await;
    let next = app.gql(None, REFRESH, json!({ "t": t2 })).await;

    assert_eq!(t2, refresh_token(&lost, "refreshSession"));
    let expiry = &lost["data"]["refreshSession"]["refreshTokenExpiresAt"];
    assert!(expiry.is_string(), "{lost:#}");
    assert_eq!(
        again["data"]["refreshSession"]["refreshTokenExpiresAt"],
        *expiry
    );
    assert_eq!(me["data"]["me"]["email"], "ada@example.org");
    assert!(next.get("errors").is_none(), "{next:#}");
}

#[tokio::test]
async fn of_twenty_concurrent_refreshes_of_one_token_all_get_one_successor() {
    let app = TestApp::spawn().await;
    let auth = app.sign_up("ada@example.org", "Ada").await;
    let token = auth["refreshToken"].as_str().expect("token").to_owned();

    let results = futures::future::join_all(
        (0..20).map(|_| app.gql(None, REFRESH, json!({ "t": token.clone() }))),
    )
    .await;

    let successors: std::collections::BTreeSet<String> = results
        .iter()
        .map(|v| refresh_token(v, "refreshSession"))
        .collect();
    assert_eq!(successors.len(), 1, "{results:#?}");
}

#[tokio::test]
async fn of_twenty_concurrent_refreshes_without_a_grace_at_most_one_wins() {
    let app = TestApp::spawn_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let auth = app.sign_up("ada@example.org", "Ada").await;
    let token = auth["refreshToken"].as_str().expect("token").to_owned();

    let results = futures::future::join_all(
        (0..20).map(|_| app.gql(None, REFRESH, json!({ "t": token.clone() }))),
    )
    .await;

    let wins = results.iter().filter(|v| v.get("errors").is_none()).count();
    assert_eq!(wins, 1, "{results:#?}");
    for v in results.iter().filter(|v| v.get("errors").is_some()) {
        assert_eq!(error_code(v), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn redis_holds_no_usable_refresh_token() {
    let app = TestApp::spawn().await;
    let first = app.sign_up("ada@example.org", "Ada").await;
    let t1 = first["refreshToken"].as_str().expect("token").to_owned();
    let t2 = refresh_token(
        &app.gql(None, REFRESH, json!({ "t": t1 })).await,
        "refreshSession",
    );

    // Everything this app wrote to Redis, as text: no token appears in it, in any spelling.
    let dump = app.redis_dump().await;
    assert!(dump.contains(":refresh:"), "no refresh record read: {dump}");
    for token in [&t1, &t2] {
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.as_str(),
        )
        .expect("base64url");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(token.as_str()), "{token} stored in Redis");
        assert!(!dump.contains(&hex), "{token} stored in Redis as hex");
    }
}

#[tokio::test]
async fn sign_out_ends_that_session_only() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.org", "Ada").await;
    let b = app.sign_in("ada@example.org", PASSWORD).await;
    let a_token = a["refreshToken"].as_str().expect("token");
    let b_token = refresh_token(&b, "signIn");

    let out = app
        .gql(
            None,
            "mutation($t: String!) { signOut(refreshToken: $t) }",
            json!({ "t": a_token }),
        )
        .await;
    let twice = app
        .gql(
            None,
            "mutation($t: String!) { signOut(refreshToken: $t) }",
            json!({ "t": a_token }),
        )
        .await;
    let a_refresh = app.gql(None, REFRESH, json!({ "t": a_token })).await;
    let b_refresh = app.gql(None, REFRESH, json!({ "t": b_token })).await;

    assert_eq!(out["data"]["signOut"], true);
    assert_eq!(twice["data"]["signOut"], true);
    assert_eq!(error_code(&a_refresh), "UNAUTHENTICATED");
    assert_no_errors(&b_refresh);
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_and_its_access_tokens() {
    let app = TestApp::spawn().await;
    let a = app.sign_up("ada@example.org", "Ada").await;
    let b = app.sign_in("ada@example.org", PASSWORD).await;
    let access = a["accessToken"].as_str().expect("token");

    let out = app
        .gql(Some(access), "mutation { signOutEverywhere }", json!({}))
        .await;
    let (status, headers, _) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {access}")),
            ],
            ME,
            json!({}),
        )
        .await;
    let a_refresh = app
        .gql(None, REFRESH, json!({ "t": a["refreshToken"] }))
        .await;
    let b_refresh = app
        .gql(None, REFRESH, json!({ "t": refresh_token(&b, "signIn") }))
        .await;

    assert_eq!(out["data"]["signOutEverywhere"], 2);
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(error_code(&a_refresh), "UNAUTHENTICATED");
    assert_eq!(error_code(&b_refresh), "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_ban_ends_every_session_at_once_and_blocks_sign_in() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let id = user["account"]["id"].clone();
    let ban = "mutation($id: UUID!, $s: AccountStatus!) { setAccountStatus(accountId: $id, status: $s, reason: \"fraud\") { status } }";

    let banned = app
        .gql(Some(&admin), ban, json!({ "id": id, "s": "BANNED" }))
        .await;
    let (status, _, _) = app
        .gql_http(
            &[
                ("content-type", "application/json"),
                (
                    "authorization",
                    &format!("Bearer {}", user["accessToken"].as_str().expect("t")),
                ),
            ],
            ME,
            json!({}),
        )
        .await;
    let refresh = app
        .gql(None, REFRESH, json!({ "t": user["refreshToken"] }))
        .await;
    let sign_in = app.sign_in("ada@example.org", PASSWORD).await;
    let reinstated = app
        .gql(Some(&admin), ban, json!({ "id": id, "s": "ACTIVE" }))
        .await;
    let sign_in_again = app.sign_in("ada@example.org", PASSWORD).await;

    assert_eq!(banned["data"]["setAccountStatus"]["status"], "BANNED");
    assert_eq!(
        status, 401,
        "the banned user's access token is refused at once"
    );
    assert_eq!(error_code(&refresh), "UNAUTHENTICATED");
    assert_eq!(error_code(&sign_in), "FORBIDDEN");
    assert_eq!(reinstated["data"]["setAccountStatus"]["status"], "ACTIVE");
    assert_no_errors(&sign_in_again);
}

#[tokio::test]
async fn a_flushed_redis_ends_sessions_but_loses_no_account() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    // Drop this test's namespace only (the Redis may be shared).
    api::infra::purge::delete_namespace(app.state.redis.next(), &app.namespace)
        .await
        .expect("delete the namespace");

    let refresh = app
        .gql(None, REFRESH, json!({ "t": user["refreshToken"] }))
        .await;
    let sign_in = app.sign_in("ada@example.org", PASSWORD).await;

    assert_eq!(error_code(&refresh), "UNAUTHENTICATED");
    assert_no_errors(&sign_in);
}
