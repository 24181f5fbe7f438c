//! Bad bytes and bad values are the caller's error, never the database's (issue 13): a NUL or
//! another control character in any string argument of the schema is `BAD_USER_INPUT` naming
//! the argument (or input field), and no SQL runs for it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::helpers::ws::Ws;
use crate::helpers::*;

/// The innermost named type of a type (`[String!]!` → `String`), and whether it is a list.
fn named(ty: &Type) -> (&str, bool) {
    match &ty.base {
        BaseType::Named(n) => (n.as_str(), false),
        BaseType::List(inner) => (named(inner).0, true),
    }
}

/// One document per string argument and per string field of an input-object argument of every
/// root field: `(document, the field the refusal must name)`.
fn documents_with_nul() -> Vec<(String, String)> {
    let sdl = api::graphql::sdl();
    let doc = async_graphql::parser::parse_schema(&sdl).expect("the SDL parses");
    let mut objects = HashMap::new();
    let mut inputs = HashMap::new();
    for def in &doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            match &t.node.kind {
                TypeKind::Object(o) => {
                    objects.insert(t.node.name.node.to_string(), o.fields.clone());
                }
                TypeKind::InputObject(i) => {
                    inputs.insert(t.node.name.node.to_string(), i.fields.clone());
                }
                _ => {}
            }
        }
    }
    let nul = "\"a\\u0000b\"";
    let mut out = Vec::new();
    for (root, keyword) in [
        ("Query", "query"),
        ("Mutation", "mutation"),
        ("Subscription", "subscription"),
    ] {
        for field in objects.get(root).into_iter().flatten() {
            let field_name = field.node.name.node.as_str();
            for arg in &field.node.arguments {
                let arg_name = arg.node.name.node.as_str();
                let (ty, list) = named(&arg.node.ty.node);
                let wrap = |v: String| if list { format!("[{v}]") } else { v };
                if matches!(ty, "String" | "ID") {
                    out.push((
                        format!(
                            "{keyword} {{ {field_name}({arg_name}: {}) }}",
                            wrap(nul.into())
                        ),
                        arg_name.to_owned(),
                    ));
                } else if let Some(fields) = inputs.get(ty) {
                    for input_field in fields {
                        let (ity, ilist) = named(&input_field.node.ty.node);
                        if !matches!(ity, "String" | "ID") {
                            continue;
                        }
                        let name = input_field.node.name.node.as_str();
                        let value = if ilist {
                            format!("[{nul}]")
                        } else {
                            nul.to_owned()
                        };
                        out.push((
                            format!(
                                "{keyword} {{ {field_name}({arg_name}: {}) }}",
                                wrap(format!("{{ {name}: {value} }}"))
                            ),
                            name.to_owned(),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn nul_in_any_string_argument_is_bad_user_input_and_never_reaches_postgres() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let token = user["accessToken"].as_str().expect("token").to_owned();
    let documents = documents_with_nul();

    app.statements.store(0, Ordering::SeqCst);
    let mut answers = Vec::new();
    for (doc, field) in &documents {
        let (status, _, v) = app
            .gql_http(
                &[
                    ("content-type", "application/json"),
                    ("accept", "application/graphql-response+json"),
                    ("authorization", &format!("Bearer {token}")),
                ],
                doc,
                json!({}),
            )
            .await;
        answers.push((doc, field, status, v));
    }
    let (_, _, in_variables) = app
        .gql_http(
            &[("content-type", "application/json")],
            SIGN_UP,
            json!({ "input": { "email": "eve@example.org", "password": PASSWORD, "displayName": "Eve\u{0}" } }),
        )
        .await;
    let escape = app
        .gql(
            None,
            "{ products(first: 5, search: $s) { totalCount } }",
            json!({ "s": "\u{1b}[2J" }),
        )
        .await;
    let statements = app.statements.load(Ordering::SeqCst);

    assert!(documents.len() > 40, "{} documents", documents.len());
    for (doc, field, status, v) in &answers {
        assert_eq!(*status, 400, "{doc}: {v}");
        assert_eq!(error_code(v), "BAD_USER_INPUT", "{doc}: {v}");
        assert_eq!(
            v["errors"][0]["extensions"]["field"],
            field.as_str(),
            "{doc}"
        );
    }
    assert_eq!(error_code(&in_variables), "BAD_USER_INPUT");
    assert_eq!(
        in_variables["errors"][0]["extensions"]["field"],
        "displayName"
    );
    assert_eq!(escape["errors"][0]["extensions"]["field"], "s", "{escape}");
    assert_eq!(statements, 0, "SQL ran for a refused request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_is_refused_on_the_socket_and_the_upload_path_too() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let mut ws = Ws::open(addr, &[], None).await;

    let over_ws = ws
        .run(
            "mutation($i: SignInInput!) { signIn(input: $i) { accessToken } }",
            json!({ "i": { "email": "a\u{0}@example.org", "password": "x" } }),
        )
        .await;
    let upload = Request::post("/graphql/upload")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(Body::from(
            json!({ "query": "mutation { uploadProductImage(productId: \"x\", kind: COVER, file: \"\\u0000\") { id } }" })
                .to_string(),
        ))
        .expect("request");
    let (status, _, over_upload) = app.send(upload).await;

    assert_eq!(error_code(&over_ws), "BAD_USER_INPUT", "{over_ws}");
    assert_eq!(over_ws["errors"][0]["extensions"]["field"], "email");
    assert_eq!(status, 400);
    assert_eq!(error_code(&over_upload), "BAD_USER_INPUT", "{over_upload}");
    assert_eq!(over_upload["errors"][0]["extensions"]["field"], "file");
}

#[tokio::test]
async fn a_shipping_address_must_name_an_iso_3166_country() {
    let app = TestApp::spawn().await;
    let user = app.sign_up("ada@example.org", "Ada").await;
    let token = user["accessToken"].as_str().expect("token");
    let place = |country: &'static str| {
        let address = json!({ "name": "Ada Lovelace", "country": country, "region": "",
            "city": "Berlin", "postalCode": "10115", "street": "Invalidenstr. 1",
            "phone": "+49 30 1234567" });
        app.gql(
            Some(token),
            "mutation($a: ShippingAddressInput) { placeOrder(lines: [{editionId: \"00000000-0000-0000-0000-000000000000\", quantity: 1}], shippingAddress: $a, idempotencyKey: \"c1\") { id } }",
            json!({ "a": address }),
        )
    };

    let unassigned: Value = place("XX").await;
    let united_kingdom_misspelt = place("UK").await;
    let germany = place("de").await;

    assert_eq!(error_code(&unassigned), "BAD_USER_INPUT", "{unassigned}");
    assert_eq!(unassigned["errors"][0]["extensions"]["field"], "country");
    assert_eq!(
        united_kingdom_misspelt["errors"][0]["extensions"]["field"],
        "country"
    );
    assert_ne!(
        germany["errors"][0]["extensions"]["field"], "country",
        "{germany}"
    );
}
