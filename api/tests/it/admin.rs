use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::*;

const CREATE: &str = "mutation($input: CreateAccountInput!) { createAccount(input: $input) { id email role status } }";

fn publisher_input(email: &str) -> Value {
    json!({ "input": { "email": email, "password": PASSWORD, "displayName": "Nebula Games", "role": "PUBLISHER" } })
}

#[tokio::test]
async fn admin_only_operations_refuse_users_and_anonymous_callers() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let user_token = user["accessToken"].as_str().expect("token");

    let as_user = app
        .gql(Some(user_token), CREATE, publisher_input("pub@store.test"))
        .await;
    let as_anonymous = app
        .gql(None, CREATE, publisher_input("pub@store.test"))
        .await;
    let list_as_user = app
        .gql(
            Some(user_token),
            "{ accounts { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ban_as_anonymous = app
        .gql(
            None,
            "mutation($id: UUID!) { setAccountStatus(accountId: $id, status: BANNED) { id } }",
            json!({ "id": user["account"]["id"] }),
        )
        .await;

    assert_eq!(error_code(&as_user), "FORBIDDEN");
    assert_eq!(error_code(&as_anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&list_as_user), "FORBIDDEN");
    assert_eq!(error_code(&ban_as_anonymous), "UNAUTHENTICATED");
    assert_eq!(app.count_accounts().await, 1);
}

#[tokio::test]
async fn an_admin_creates_a_publisher_who_can_sign_in_and_it_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    let created = app
        .gql(Some(&admin), CREATE, publisher_input("Pub@Store.test"))
        .await;
    let duplicate = app
        .gql(Some(&admin), CREATE, publisher_input("pub@store.TEST"))
        .await;
    let user_role = app
        .gql(
            Some(&admin),
            CREATE,
            json!({ "input": { "email": "u@store.test", "password": PASSWORD, "displayName": "U", "role": "USER" } }),
        )
        .await;
    let signed_in = app.sign_in("pub@store.test", PASSWORD).await;
    let audit = app
        .scalar(
            "SELECT count(*)::bigint AS n FROM identity.audit_log WHERE action = 'account.create'",
        )
        .await;

    assert_no_errors(&created);
    assert_eq!(created["data"]["createAccount"]["role"], "PUBLISHER");
    assert_eq!(error_code(&duplicate), "CONFLICT");
    // USER is not a StaffRole: refused while the variables are coerced, before anything runs.
    assert_eq!(error_code(&user_role), "BAD_USER_INPUT", "{user_role}");
    assert!(
        user_role["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("StaffRole")),
        "{user_role}"
    );
    assert_eq!(signed_in["data"]["signIn"]["account"]["role"], "PUBLISHER");
    assert_eq!(audit, 1);
}

#[tokio::test]
async fn accounts_are_searched_and_paged_with_cursors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for n in 0..7 {
        app.sign_up(&format!("player{n}@store.test"), &format!("Player {n}"))
            .await;
    }
    app.sign_up("someone@else.test", "Zed 100%").await;
    let page = "query($after: String, $search: String) { accounts(first: 3, after: $after, search: $search, role: USER) { edges { cursor node { email } } pageInfo { hasNextPage endCursor } } }";

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let v = app
            .gql(
                Some(&admin),
                page,
                json!({ "after": after, "search": "PLAYER" }),
            )
            .await;
        assert_no_errors(&v);
        let conn = &v["data"]["accounts"];
        for e in conn["edges"].as_array().expect("edges") {
            seen.push(e["node"]["email"].as_str().expect("email").to_owned());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let percent = app
        .gql(Some(&admin), page, json!({ "after": null, "search": "%" }))
        .await;
    let bad_cursor = app
        .gql(
            Some(&admin),
            page,
            json!({ "after": "bm9wZQ", "search": null }),
        )
        .await;

    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 7);
    assert_eq!(unique.len(), 7);
    assert_eq!(seen[0], "player6@store.test", "newest first");
    let found: Vec<_> = percent["data"]["accounts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["email"].clone())
        .collect();
    assert_eq!(found, vec![json!("someone@else.test")], "`%` is literal");
    assert_eq!(error_code(&bad_cursor), "BAD_USER_INPUT");
}

#[tokio::test]
async fn the_first_admin_comes_from_the_cli_or_first_start_configuration() {
    let app = TestApp::spawn().await;
    let services = app.state.config.services.clone();

    api::cli::create_admin(&services, "root@store.test", PASSWORD)
        .await
        .expect("created");
    let again = api::cli::create_admin(&services, "ROOT@store.test", PASSWORD).await;
    let weak = api::cli::create_admin(&services, "weak@store.test", "short").await;
    let signed_in = app.sign_in("root@store.test", PASSWORD).await;

    assert!(again.is_err());
    assert!(weak.is_err());
    assert_eq!(signed_in["data"]["signIn"]["account"]["role"], "ADMIN");

    let fresh = TestApp::spawn_with(|c| {
        c.bootstrap_admin = Some(("boot@store.test".into(), PASSWORD.to_owned().into()));
    })
    .await;
    let first = api::identity::bootstrap_admin(&fresh.state)
        .await
        .expect("boot");
    let second = api::identity::bootstrap_admin(&fresh.state)
        .await
        .expect("boot");
    assert_eq!(first.map(|a| a.email), Some("boot@store.test".to_owned()));
    assert!(second.is_none(), "only when no admin exists");
}

const AUDIT: &str = "query($first: Int!, $after: String, $actor: UUID, $target: UUID) { auditLog(first: $first, after: $after, actorId: $actor, targetId: $target) { edges { node { action occurredAt reason role actor { id email } target { id label } } } pageInfo { hasNextPage endCursor } } }";

#[tokio::test]
async fn the_audit_log_shows_admins_who_banned_whom_and_why_newest_first() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let me = app
        .gql(Some(&admin), "{ me { id email } }", json!({}))
        .await;
    let bob = app.sign_up("bob@example.org", "Bob").await;
    let bob_id = bob["account"]["id"].clone();
    let other = app.sign_up("carol@example.org", "Carol").await;
    let status = "mutation($id: UUID!, $s: AccountStatus!, $r: String) { setAccountStatus(accountId: $id, status: $s, reason: $r) { status } }";
    let publisher = app
        .gql(Some(&admin), CREATE, publisher_input("pub@store.test"))
        .await;
    let banned = app
        .gql(
            Some(&admin),
            status,
            json!({ "id": bob_id, "s": "BANNED", "r": "  chargebacks " }),
        )
        .await;
    let other_banned = app
        .gql(
            Some(&admin),
            status,
            json!({ "id": other["account"]["id"], "s": "BANNED", "r": "spam" }),
        )
        .await;

    let all = app.gql(Some(&admin), AUDIT, json!({ "first": 10 })).await;
    let about_bob = app
        .gql(
            Some(&admin),
            AUDIT,
            json!({ "first": 10, "target": bob_id }),
        )
        .await;
    let first_page = app.gql(Some(&admin), AUDIT, json!({ "first": 2 })).await;
    let second_page = app
        .gql(
            Some(&admin),
            AUDIT,
            json!({ "first": 2, "after": first_page["data"]["auditLog"]["pageInfo"]["endCursor"] }),
        )
        .await;
    let as_user = app
        .gql(
            app.sign_up("dan@example.org", "Dan").await["accessToken"].as_str(),
            AUDIT,
            json!({ "first": 10 }),
        )
        .await;
    let as_anonymous = app.gql(None, AUDIT, json!({ "first": 10 })).await;
    let too_many = app.gql(Some(&admin), AUDIT, json!({ "first": 1000 })).await;

    for v in [
        &publisher,
        &banned,
        &other_banned,
        &all,
        &about_bob,
        &first_page,
        &second_page,
    ] {
        assert_no_errors(v);
    }
    let actions: Vec<_> = all["data"]["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["action"].clone())
        .collect();
    assert_eq!(
        actions,
        vec![
            json!("ACCOUNT_BANNED"),
            json!("ACCOUNT_BANNED"),
            json!("ACCOUNT_CREATED")
        ],
        "newest first"
    );
    let created = &all["data"]["auditLog"]["edges"][2]["node"];
    assert_eq!(created["target"]["label"], "pub@store.test");
    assert_eq!(created["role"], "PUBLISHER");
    let bans = about_bob["data"]["auditLog"]["edges"]
        .as_array()
        .expect("edges");
    assert_eq!(bans.len(), 1, "only the entries about bob");
    let ban = &bans[0]["node"];
    assert_eq!(ban["action"], "ACCOUNT_BANNED");
    assert_eq!(ban["actor"]["id"], me["data"]["me"]["id"]);
    assert_eq!(ban["actor"]["email"], me["data"]["me"]["email"]);
    assert_eq!(ban["target"]["id"], bob_id);
    assert_eq!(ban["target"]["label"], "bob@example.org");
    assert_eq!(ban["reason"], "chargebacks");
    assert!(ban["occurredAt"].is_string());
    assert_eq!(
        first_page["data"]["auditLog"]["pageInfo"]["hasNextPage"],
        true
    );
    let second = second_page["data"]["auditLog"]["edges"]
        .as_array()
        .expect("edges");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["node"]["action"], "ACCOUNT_CREATED");
    assert_eq!(
        second_page["data"]["auditLog"]["pageInfo"]["hasNextPage"],
        false
    );
    assert_eq!(error_code(&as_user), "FORBIDDEN");
    assert_eq!(error_code(&as_anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&too_many), "BAD_USER_INPUT");
}
