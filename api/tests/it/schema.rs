//! The public API's shape is reviewed like code: `api/schema.graphql` is written from the schema,
//! and the snapshot fails CI when they drift.

#[test]
fn schema_snapshot() {
    let sdl = api::graphql::sdl();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != sdl {
        std::fs::write(&path, &sdl).expect("write api/schema.graphql");
    }
    insta::assert_snapshot!("schema.graphql", sdl);
}

/// The schema's enums are read back from text columns: a value the domain does not know (a
/// newer participant, a hand edit) is an `INTERNAL_SERVER_ERROR` for that field, not a panic
/// and not a guessed value.
#[tokio::test]
async fn an_unknown_stored_value_is_an_internal_error() {
    use sea_orm::ConnectionTrait;
    use serde_json::json;

    use crate::helpers::*;

    let app = TestApp::spawn().await;
    let me = app.sign_up("enums@store.test", "Enums").await;
    let token = me["accessToken"].as_str().expect("token");
    let account = me["account"]["id"].as_str().expect("id");
    let query = "{ notifications { edges { node { kind title } } } }";
    app.state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO notification.notification (id, account_id, kind, title, body) \
             VALUES ('{}', '{account}', 'SALE', 'Sold', 'A sale')",
            uuid::Uuid::new_v4()
        ))
        .await
        .expect("notification");
    let known = app.gql(Some(token), query, json!({})).await;
    assert_no_errors(&known);
    assert_eq!(
        known["data"]["notifications"]["edges"][0]["node"]["kind"],
        "SALE"
    );

    app.state
        .db
        .execute_unprepared(&format!(
            "INSERT INTO notification.notification (id, account_id, kind, title, body) \
             VALUES ('{}', '{account}', 'FROM_THE_FUTURE', 'New', 'A kind not known yet')",
            uuid::Uuid::new_v4()
        ))
        .await
        .expect("notification");
    let unknown = app.gql(Some(token), query, json!({})).await;

    assert_eq!(error_code(&unknown), "INTERNAL_SERVER_ERROR", "{unknown}");
    assert!(
        !unknown.to_string().contains("FROM_THE_FUTURE"),
        "the stored value is logged, not shown: {unknown}"
    );
}
