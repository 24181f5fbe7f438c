//! Builds and signed downloads, through the real gateway (nginx.conf) in front of the api, with
//! real PostgreSQL, Redis, NATS and the saga for purchases.

use std::path::{Path, PathBuf};

use domain::identity::Role;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store_cli::testdata::noise;

use crate::helpers::gateway::*;
use crate::helpers::*;
use crate::saga::shop;

const CREATE: &str = "mutation($i: CreateBuildInput!) { createBuild(input: $i) { id productId platform versionLabel releaseNotes fileName sizeBytes status sha256 isCurrent createdAt uploadedAt uploadPath } }";
const SET_CURRENT: &str =
    "mutation($b: UUID!) { setCurrentBuild(buildId: $b) { id isCurrent status } }";
const BUILDS: &str = "query($p: String!) { product(slug: $p) { builds { id versionLabel status isCurrent sha256 uploadPath } } }";
const LINK: &str = "mutation($p: UUID!, $pl: String!, $b: UUID) { downloadLink(productId: $p, platform: $pl, buildId: $b) { url expiresAt fileName sizeBytes sha256 build { id versionLabel } } }";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a test file");
    path
}

fn objects_dir(app: &TestApp) -> String {
    app.state
        .config
        .services
        .object_store_dir
        .display()
        .to_string()
}

/// A published product of the publisher with one digital edition: (id, slug, edition id).
async fn product(app: &TestApp, token: &str, platforms: &[&str]) -> (String, String, String) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let p = app
        .create_product(
            token,
            json!({ "title": format!("Starfall {}", &tag[..8]), "platforms": platforms }),
            &[digital("Standard", 1999)],
            true,
        )
        .await;
    let edition = p.editions.into_iter().next().expect("an edition");
    (p.id, p.slug, edition)
}

async fn create_build(
    app: &TestApp,
    token: &str,
    product: &str,
    platform: &str,
    version: &str,
    file_name: &str,
    size: usize,
) -> Value {
    app.gql(
        Some(token),
        CREATE,
        json!({ "i": { "productId": product, "platform": platform, "versionLabel": version,
                       "releaseNotes": "Faster loading.", "fileName": file_name, "sizeBytes": size } }),
    )
    .await
}

/// `PUT`s `file` to the build's upload path through the gateway, with extra curl arguments.
async fn put(gw: &Gateway, build: &Value, token: &str, file: &Path, extra: &[&str]) -> Reply {
    let path = build["uploadPath"]
        .as_str()
        .unwrap_or_else(|| panic!("no uploadPath: {build}"));
    let mut args = s(&[
        &gw.url(path),
        "-T",
        &file.display().to_string(),
        "-H",
        &format!("authorization: Bearer {token}"),
    ]);
    args.extend(s(extra));
    curl_bytes(args).await.0
}

/// Announces and uploads a build, makes it current; returns it (as createBuild answers).
async fn ready_build(
    app: &TestApp,
    gw: &Gateway,
    token: &str,
    product: &str,
    version: &str,
    bytes: &[u8],
) -> Value {
    let v = create_build(
        app,
        token,
        product,
        "linux",
        version,
        "starfall.tar.gz",
        bytes.len(),
    )
    .await;
    assert_no_errors(&v);
    let build = v["data"]["createBuild"].clone();
    let file = write_file(&tmp_dir("build"), "upload.bin", bytes);
    let up = put(gw, &build, token, &file, &[]).await;
    assert_eq!(up.status, 200, "{up:?}");
    let current = app
        .gql(Some(token), SET_CURRENT, json!({ "b": build["id"] }))
        .await;
    assert_no_errors(&current);
    build
}

/// Every stored object under the object store's `builds/` (staged parts included).
fn stored_files(store: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(store).join("builds"), &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_are_announced_uploaded_checked_and_made_current() {
    let app = TestApp::spawn_with(|c| c.builds.max_bytes = 16 << 20).await;
    let addr = app.serve().await;
    let store = objects_dir(&app);
    let gw = Gateway::start(addr, &[("GATEWAY_DOWNLOADS_DIR", &store)]);
    let (publisher, _) = app
        .staff("nebula@store.test", "Nebula", Role::Publisher)
        .await;
    let (rival, _) = app
        .staff("atlas@store.test", "Atlas", Role::Publisher)
        .await;
    let user = app.sign_up("player@store.test", "Player").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let (product, slug, _) = product(&app, &publisher, &["linux", "windows"]).await;
    let bytes = noise((3 << 20) + 12_345, 7);
    let sha = sha256_hex(&bytes);
    let dir = tmp_dir("builds");
    let good = write_file(&dir, "good.bin", &bytes);
    let short = write_file(&dir, "short.bin", &bytes[..bytes.len() - 1]);
    let long = write_file(&dir, "long.bin", &[bytes.as_slice(), b"!"].concat());

    // Announcing: the rules of the table, the product's platforms, the size limit, the roles.
    let refused = [
        (
            create_build(&app, &publisher, &product, "macos", "1.0", "a.bin", 10).await,
            "platform",
        ),
        (
            create_build(&app, &publisher, &product, "linux", "1.0", "../a.bin", 10).await,
            "fileName",
        ),
        (
            create_build(&app, &publisher, &product, "linux", "1.0", "a.bin", 0).await,
            "sizeBytes",
        ),
        (
            create_build(
                &app,
                &publisher,
                &product,
                "linux",
                "1.0",
                "a.bin",
                (16 << 20) + 1,
            )
            .await,
            "sizeBytes",
        ),
        (
            create_build(&app, &publisher, &product, "linux", " ", "a.bin", 10).await,
            "versionLabel",
        ),
    ];
    for (v, field) in &refused {
        assert_eq!(error_code(v), "BAD_USER_INPUT", "{v}");
        assert_eq!(v["errors"][0]["extensions"]["field"], *field, "{v}");
    }
    let by_rival = create_build(&app, &rival, &product, "linux", "1.0", "a.bin", 10).await;
    assert_eq!(error_code(&by_rival), "FORBIDDEN");
    let by_user = create_build(&app, &user, &product, "linux", "1.0", "a.bin", 10).await;
    assert_eq!(error_code(&by_user), "FORBIDDEN");
    let v1 = create_build(
        &app,
        &publisher,
        &product,
        "linux",
        "1.0.0",
        "starfall.tar.gz",
        bytes.len(),
    )
    .await;
    assert_no_errors(&v1);
    let v1 = v1["data"]["createBuild"].clone();
    assert_eq!(v1["status"], "UPLOADING");
    assert_eq!(v1["sha256"], Value::Null);
    assert_eq!(
        v1["uploadPath"],
        format!("/uploads/builds/{}", v1["id"].as_str().unwrap_or(""))
    );
    let twice = create_build(
        &app,
        &publisher,
        &product,
        "linux",
        "1.0.0",
        "other.zip",
        10,
    )
    .await;
    assert_eq!(error_code(&twice), "CONFLICT");
    let other_platform = create_build(
        &app,
        &publisher,
        &product,
        "windows",
        "1.0.0",
        "setup.exe",
        10,
    )
    .await;
    assert_no_errors(&other_platform);

    // Uploading: who may, and what is refused (nothing stays, the build stays UPLOADING).
    let anonymous = curl_bytes(s(&[
        &gw.url(v1["uploadPath"].as_str().unwrap_or("")),
        "-T",
        &good.display().to_string(),
    ]))
    .await
    .0;
    let bad_token = put(&gw, &v1, "not-a-token", &good, &[]).await;
    let rival_put = put(&gw, &v1, &rival, &good, &[]).await;
    let too_short = put(&gw, &v1, &publisher, &short, &[]).await;
    let too_long_chunked = put(
        &gw,
        &v1,
        &publisher,
        &long,
        &["-H", "Transfer-Encoding: chunked"],
    )
    .await;
    let short_chunked = put(
        &gw,
        &v1,
        &publisher,
        &short,
        &["-H", "Transfer-Encoding: chunked"],
    )
    .await;
    let wrong_sha = put(
        &gw,
        &v1,
        &publisher,
        &good,
        &["-H", &format!("X-Content-SHA256: {}", "0".repeat(64))],
    )
    .await;
    let malformed_sha = put(
        &gw,
        &v1,
        &publisher,
        &good,
        &["-H", "X-Content-SHA256: xyz"],
    )
    .await;
    let left_after_refusals = stored_files(&store);
    let still = app
        .gql(Some(&publisher), BUILDS, json!({ "p": slug }))
        .await;
    let uploaded = put(
        &gw,
        &v1,
        &publisher,
        &good,
        &["-H", &format!("X-Content-SHA256: {}", sha.to_uppercase())],
    )
    .await;
    let again = put(&gw, &v1, &publisher, &good, &[]).await;

    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(
        anonymous.json()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    assert_eq!(bad_token.status, 401, "{bad_token:?}");
    assert_eq!(
        bad_token.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(rival_put.status, 403, "{rival_put:?}");
    for refused in [&too_short, &too_long_chunked, &short_chunked, &wrong_sha] {
        assert_eq!(refused.status, 422, "{refused:?}");
        assert_eq!(
            refused.json()["errors"][0]["extensions"]["code"],
            "BAD_USER_INPUT"
        );
    }
    assert!(
        too_long_chunked.body.contains("larger than the announced"),
        "{too_long_chunked:?}"
    );
    assert!(
        short_chunked.body.contains("not the announced"),
        "{short_chunked:?}"
    );
    assert_eq!(malformed_sha.status, 400, "{malformed_sha:?}");
    assert!(left_after_refusals.is_empty(), "{left_after_refusals:?}");
    assert!(
        still["data"]["product"]["builds"]
            .as_array()
            .expect("builds")
            .iter()
            .all(|b| b["status"] == "UPLOADING"),
        "{still}"
    );
    assert_eq!(uploaded.status, 200, "{uploaded:?}");
    let ready = uploaded.json();
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["sha256"], sha.as_str());
    assert_eq!(ready["sizeBytes"], bytes.len());
    assert_eq!(ready["uploadPath"], Value::Null);
    assert!(ready["uploadedAt"].is_string(), "{ready}");
    let key = format!(
        "builds/{product}/{}/starfall.tar.gz",
        v1["id"].as_str().unwrap_or("")
    );
    assert_eq!(
        stored_files(&store),
        [Path::new(&store).join(&key)],
        "one object, no staged parts"
    );
    assert_eq!(
        std::fs::read(Path::new(&store).join(&key)).expect("stored"),
        bytes
    );
    assert_eq!(again.status, 409, "{again:?}");

    // Current builds: one per platform; an older one made current again is the rollback.
    let early = app
        .gql(
            Some(&publisher),
            SET_CURRENT,
            json!({ "b": other_platform["data"]["createBuild"]["id"] }),
        )
        .await;
    assert_eq!(
        error_code(&early),
        "CONFLICT",
        "an UPLOADING build cannot be current"
    );
    let by_rival = app
        .gql(Some(&rival), SET_CURRENT, json!({ "b": v1["id"] }))
        .await;
    assert_eq!(error_code(&by_rival), "FORBIDDEN");
    let first = app
        .gql(Some(&publisher), SET_CURRENT, json!({ "b": v1["id"] }))
        .await;
    assert_no_errors(&first);
    assert_eq!(first["data"]["setCurrentBuild"]["isCurrent"], true);
    let v2 = ready_build(&app, &gw, &publisher, &product, "1.1.0", &noise(1000, 9)).await;
    let current = |v: &Value| -> Vec<String> {
        v["data"]["product"]["builds"]
            .as_array()
            .expect("builds")
            .iter()
            .filter(|b| b["isCurrent"] == true)
            .map(|b| b["versionLabel"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let after_v2 = app
        .gql(Some(&publisher), BUILDS, json!({ "p": slug }))
        .await;
    let rollback = app
        .gql(Some(&publisher), SET_CURRENT, json!({ "b": v1["id"] }))
        .await;
    assert_no_errors(&rollback);
    let after_rollback = app
        .gql(Some(&publisher), BUILDS, json!({ "p": slug }))
        .await;
    let public = app.gql(None, BUILDS, json!({ "p": slug })).await;

    assert_eq!(current(&after_v2), ["1.1.0"]);
    assert_eq!(current(&after_rollback), ["1.0.0"]);
    assert_eq!(
        after_rollback["data"]["product"]["builds"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "the publisher sees every build, the UPLOADING one too"
    );
    let seen: Vec<&str> = public["data"]["product"]["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .map(|b| b["versionLabel"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        seen,
        ["1.1.0", "1.0.0"],
        "others see READY builds, newest first"
    );
    assert_eq!(v2["platform"], "linux");
}

/// The largest part of a staged (not yet complete) upload under `builds/`, in bytes.
fn staged_bytes(store: &str) -> u64 {
    stored_files(store)
        .iter()
        .filter(|p| p.to_string_lossy().contains('#'))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_streams_through_the_gateway_and_a_second_one_is_refused() {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let store = objects_dir(&app);
    let gw = Gateway::start(addr, &[("GATEWAY_DOWNLOADS_DIR", &store)]);
    let (publisher, _) = app
        .staff("nebula@store.test", "Nebula", Role::Publisher)
        .await;
    let (product, _, _) = product(&app, &publisher, &["linux"]).await;
    let bytes = noise(12 << 20, 5);
    let file = write_file(&tmp_dir("slow"), "big.bin", &bytes);
    let v = create_build(
        &app,
        &publisher,
        &product,
        "linux",
        "3.0",
        "big.bin",
        bytes.len(),
    )
    .await;
    assert_no_errors(&v);
    let build = v["data"]["createBuild"].clone();

    // 12 MiB at 4 MiB/s: parts reach the object store while the client is still sending.
    let slow = tokio::spawn({
        let (url, file, bearer) = (
            gw.url(build["uploadPath"].as_str().unwrap_or("")),
            file.display().to_string(),
            format!("authorization: Bearer {publisher}"),
        );
        async move {
            curl_bytes(s(&[&url, "-T", &file, "-H", &bearer, "--limit-rate", "4M"]))
                .await
                .0
        }
    });
    let seen = wait_until("a part in the object store", || async {
        let n = staged_bytes(&store);
        (n > 0).then_some(n)
    })
    .await;
    let still_sending = !slow.is_finished();
    let second = put(&gw, &build, &publisher, &file, &[]).await;
    let first = slow.await.expect("upload task");

    assert!(
        still_sending,
        "a part ({seen} bytes) was stored before the body ended"
    );
    assert_eq!(second.status, 409, "{second:?}");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.json()["sha256"], sha256_hex(&bytes).as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_download_through_the_gateway_and_resume_with_a_range() {
    // A shop: the saga running for the purchase, a publisher and a buyer.
    let shop = shop(saga_settings()).await;
    let app = &shop.app;
    let (publisher, buyer) = (shop.publisher.clone(), shop.buyer.clone());
    let addr = app.serve().await;
    let store = objects_dir(app);
    let gw = Gateway::start(addr, &[("GATEWAY_DOWNLOADS_DIR", &store)]);
    let (product, _, edition) = product(app, &publisher, &["linux", "windows"]).await;
    let bytes = noise((4 << 20) + 777, 11);
    let sha = sha256_hex(&bytes);
    let build = ready_build(app, &gw, &publisher, &product, "2.0.0", &bytes).await;
    let stranger = app.sign_up("stranger@store.test", "Stranger").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    shop.fund(1999, "top-up").await;
    let order = shop.completed(&[&edition], "order").await;

    // Who gets a link, for what.
    let not_owner = app
        .gql(
            Some(&stranger),
            LINK,
            json!({ "p": product, "pl": "linux" }),
        )
        .await;
    let anonymous = app
        .gql(None, LINK, json!({ "p": product, "pl": "linux" }))
        .await;
    let no_build = app
        .gql(Some(&buyer), LINK, json!({ "p": product, "pl": "windows" }))
        .await;
    let unknown = app
        .gql(
            Some(&buyer),
            LINK,
            json!({ "p": product, "pl": "linux", "b": uuid::Uuid::now_v7() }),
        )
        .await;
    let before = app
        .scalar("SELECT count(*)::bigint AS n FROM catalog.download")
        .await;
    let first = app
        .gql(Some(&buyer), LINK, json!({ "p": product, "pl": "linux" }))
        .await;
    let recorded = app
        .scalar("SELECT count(*)::bigint AS n FROM catalog.download")
        .await;
    let second = app
        .gql(
            Some(&buyer),
            LINK,
            json!({ "p": product, "pl": "LINUX", "b": build["id"] }),
        )
        .await;
    let library = app
        .gql(
            Some(&buyer),
            "{ library { edges { node { currentBuilds { id platform versionLabel sha256 } } } } }",
            json!({}),
        )
        .await;

    assert_eq!(error_code(&not_owner), "FORBIDDEN", "{not_owner}");
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    assert_eq!(error_code(&no_build), "NOT_FOUND");
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    assert_no_errors(&first);
    assert_no_errors(&second);
    let link = &first["data"]["downloadLink"];
    assert_eq!(link["fileName"], "starfall.tar.gz");
    assert_eq!(link["sizeBytes"], bytes.len());
    assert_eq!(link["sha256"], sha.as_str());
    assert_eq!(link["build"]["versionLabel"], "2.0.0");
    let expires: chrono::DateTime<chrono::Utc> = link["expiresAt"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("expiresAt");
    let ttl = (expires - chrono::Utc::now()).num_seconds();
    assert!((290..=300).contains(&ttl), "a short-lived link: {ttl} s");
    assert_eq!(
        (before, recorded),
        (0, 1),
        "the first link is the first download"
    );
    assert_eq!(
        app.scalar("SELECT count(*)::bigint AS n FROM catalog.download")
            .await,
        1
    );
    assert_eq!(
        app.scalar("SELECT links::bigint AS n FROM catalog.download")
            .await,
        2
    );
    assert_eq!(
        app.scalar(&format!(
            "SELECT count(*)::bigint AS n FROM catalog.download WHERE order_id = '{order}' \
             AND build_id = '{}' AND last_at >= first_at",
            build["id"].as_str().unwrap_or("")
        ))
        .await,
        1
    );
    let current = &library["data"]["library"]["edges"][0]["node"]["currentBuilds"];
    assert_eq!(current[0]["id"], build["id"], "{library}");
    assert_eq!(current[0]["sha256"], sha.as_str());

    // The bytes, through the gateway: whole, then a download resumed with a range.
    let url = gw.url(link["url"].as_str().expect("url"));
    let (whole, got) = curl_bytes(s(&[&url])).await;
    let (part, head) = curl_bytes(s(&[&url, "-r", "0-1048575"])).await;
    let (rest, tail) = curl_bytes(s(&[&url, "-H", "Range: bytes=1048576-"])).await;
    let spa = curl(s(&[&gw.url("/")])).await;

    assert_eq!(whole.status, 200, "{whole:?}");
    assert_eq!(got.len(), bytes.len());
    assert_eq!(sha256_hex(&got), sha, "identical bytes");
    assert_eq!(
        whole.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    assert_eq!(
        whole.header("content-disposition"),
        Some(r#"attachment; filename="starfall.tar.gz""#)
    );
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    for name in [
        "strict-transport-security",
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(spa.header(name).is_some(), "{name}");
        assert_eq!(
            whole.header(name),
            spa.header(name),
            "{name} as on every response"
        );
    }
    assert_eq!(part.status, 206, "{part:?}");
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-1048575/{}", bytes.len()).as_str())
    );
    assert_eq!(rest.status, 206, "{rest:?}");
    assert_eq!(
        rest.header("content-length"),
        Some((bytes.len() - 1_048_576).to_string().as_str())
    );
    assert_eq!(
        [head, tail].concat(),
        bytes,
        "the resumed download is identical"
    );

    // Forged, altered and expired links: 403 alike, as is an unsigned one.
    let uri = link["url"].as_str().expect("url");
    let (path, query) = uri.split_once('?').expect("query");
    let md5 = query
        .split('&')
        .find_map(|p| p.strip_prefix("md5="))
        .expect("md5");
    let expires_at = query
        .split('&')
        .find_map(|p| p.strip_prefix("expires="))
        .and_then(|e| e.parse::<i64>().ok())
        .expect("expires");
    let flipped: String = md5
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    let past = chrono::Utc::now().timestamp() - 5;
    let expired_md5 = api::catalog::builds::secure_link_md5(past, path, DOWNLOAD_SECRET);
    let attempts = [
        format!("{path}?md5={flipped}&expires={expires_at}"),
        format!("{path}?md5={md5}&expires={}", expires_at + 3600),
        format!(
            "{}?md5={md5}&expires={expires_at}",
            path.replace("starfall.tar.gz", "other.tar.gz")
        ),
        format!("{path}?md5={expired_md5}&expires={past}"),
        path.to_owned(),
    ];
    for attempt in &attempts {
        let (reply, _) = curl_bytes(s(&[&gw.url(attempt)])).await;
        assert_eq!(reply.status, 403, "{attempt}: {reply:?}");
        assert_eq!(reply.header("content-disposition"), None);
    }
    let still = app
        .scalar("SELECT links::bigint AS n FROM catalog.download")
        .await;
    assert_eq!(still, 2, "following a link is not a new download");
    assert!(
        !gw.log("access.log").contains("md5="),
        "the log has paths only"
    );
}

/// A slow upload holds no PostgreSQL connection (nor transaction) while its bytes stream: with
/// a pool of two connections, three uploads in flight leave the api answering queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_in_flight_hold_no_database_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::{Body, Bytes};
    use futures::{SinkExt as _, StreamExt as _};
    use tower::ServiceExt as _;

    let app = TestApp::spawn_with(|c| c.services.database_max_connections = 2).await;
    let (publisher, _) = app
        .staff("nebula@store.test", "Nebula", Role::Publisher)
        .await;
    let (product, _, _) = product(&app, &publisher, &["linux"]).await;
    let bytes = noise(2048, 9);
    let started = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    let mut uploads = Vec::new();
    for version in ["1.0", "1.1", "1.2"] {
        let v = create_build(
            &app, &publisher, &product, "linux", version, "game.bin", 2048,
        )
        .await;
        assert_no_errors(&v);
        let path = v["data"]["createBuild"]["uploadPath"]
            .as_str()
            .expect("path")
            .to_owned();
        let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let seen = started.clone();
        let body = Body::from_stream(rx.inspect(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        let req = axum::http::Request::put(path)
            .header("authorization", format!("Bearer {publisher}"))
            .body(body)
            .expect("request");
        let router = app.router.clone();
        uploads.push(tokio::spawn(async move {
            router.oneshot(req).await.expect("infallible").status()
        }));
        senders.push(tx);
    }
    for tx in &mut senders {
        tx.send(Ok(Bytes::copy_from_slice(&bytes[..1024])))
            .await
            .expect("first half");
    }

    // Every upload has read its first half and waits for the rest.
    wait_until("three uploads streaming", || async {
        (started.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;
    let in_transaction = app
        .scalar(
            "SELECT count(*)::bigint AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
        )
        .await;
    let query = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.gql(
            None,
            "{ products(first: 1) { edges { node { id } } } }",
            json!({}),
        ),
    )
    .await;
    for mut tx in senders {
        tx.send(Ok(Bytes::copy_from_slice(&bytes[1024..])))
            .await
            .expect("second half");
    }
    let mut statuses = Vec::new();
    for upload in uploads {
        statuses.push(upload.await.expect("upload task").as_u16());
    }

    assert_eq!(
        in_transaction, 0,
        "a transaction stayed open while bytes streamed"
    );
    let query = query.expect("the api answered while three uploads were in flight");
    assert_no_errors(&query);
    assert_eq!(statuses, [200, 200, 200]);
}

/// Announces a build of `product` for linux whose file arrived (a test shortcut: the upload is
/// what the tests above check); returns its id.
async fn uploaded_build(app: &TestApp, token: &str, product: &str, version: &str) -> String {
    let v = create_build(app, token, product, "linux", version, "game.bin", 4).await;
    assert_no_errors(&v);
    let id = v["data"]["createBuild"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.state
        .db
        .execute_unprepared(&format!(
            "UPDATE catalog.build SET status = 'READY', sha256 = repeat('a', 64), uploaded_at = now() \
             WHERE id = '{id}'"
        ))
        .await
        .expect("ready");
    id
}

/// The `build_made_current` events of `product` on the EVT stream, oldest first: (Nats-Msg-Id,
/// envelope), as a consumer of the stream (the webhooks participant) gets them.
async fn made_current_on_stream(app: &TestApp, product: &str) -> Vec<(String, Value)> {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures::StreamExt as _;

    let stream = app
        .state
        .bus
        .jetstream()
        .get_stream(app.state.bus.stream_name("EVT"))
        .await
        .expect("EVT stream");
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: app
                .state
                .bus
                .subject(&format!("evt.catalog.build_made_current.{product}")),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(100)
        .messages()
        .await
        .expect("fetch");
    let mut events = Vec::new();
    while let Some(msg) = batch.next().await {
        let msg = msg.expect("a message");
        let id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        events.push((id, serde_json::from_slice(&msg.payload).expect("JSON")));
    }
    events
}

/// Rows of the catalog's outbox its relay has not published.
async fn unpublished(app: &TestApp) -> i64 {
    app.scalar("SELECT count(*)::bigint AS n FROM catalog.outbox WHERE published_at IS NULL")
        .await
}

#[tokio::test]
async fn builds_made_current_write_their_event_in_the_same_transaction() {
    // Setup: no relay runs; a build ready to be current; the outbox refusing every write.
    let app = TestApp::spawn().await;
    let (publisher, publisher_id) = app
        .staff("nebula@store.test", "Nebula", Role::Publisher)
        .await;
    let (product, slug, _) = product(&app, &publisher, &["linux"]).await;
    let build = uploaded_build(&app, &publisher, &product, "1.0.0").await;
    let refuse = "ALTER TABLE catalog.outbox ADD CONSTRAINT refuse_all CHECK (false) NOT VALID";
    app.state
        .db
        .execute_unprepared(refuse)
        .await
        .expect("refuse");

    // Exercise: make it current while the event cannot be written, then once it can.
    let refused = app
        .gql(Some(&publisher), SET_CURRENT, json!({ "b": build }))
        .await;
    let after_refusal = app
        .gql(Some(&publisher), BUILDS, json!({ "p": slug }))
        .await;
    let accept = "ALTER TABLE catalog.outbox DROP CONSTRAINT refuse_all";
    app.state
        .db
        .execute_unprepared(accept)
        .await
        .expect("accept");
    let made = app
        .gql(Some(&publisher), SET_CURRENT, json!({ "b": build }))
        .await;

    // Check: without its event the build did not become current; with it, one row tells it,
    // waiting for the relay.
    assert_eq!(error_code(&refused), "INTERNAL_SERVER_ERROR", "{refused}");
    assert_eq!(
        after_refusal["data"]["product"]["builds"][0]["isCurrent"], false,
        "{after_refusal}"
    );
    assert_no_errors(&made);
    assert_eq!(made["data"]["setCurrentBuild"]["isCurrent"], true);
    let rows = crate::saga::outbox(&app, "catalog", None).await;
    assert_eq!(rows.len(), 1, "one event per build made current");
    let row = &rows[0];
    assert_eq!(row.kind, "catalog.build_made_current");
    assert_eq!(
        row.subject,
        format!("evt.catalog.build_made_current.{product}")
    );
    let envelope: Value = serde_json::from_str(&row.payload).expect("an envelope");
    assert_eq!(envelope["data"]["build_id"], build.as_str());
    assert_eq!(envelope["data"]["publisher_id"], publisher_id.as_str());
    assert_eq!(envelope["data"]["version_label"], "1.0.0");
    assert_eq!(envelope["correlation_id"], product.as_str());
    assert!(
        domain::bus::trace_id(envelope["trace"].as_str().unwrap_or_default()).is_some(),
        "{envelope}"
    );
    assert_eq!(unpublished(&app).await, 1);
    assert!(made_current_on_stream(&app, &product).await.is_empty());
}

#[tokio::test]
async fn builds_made_current_reach_the_stream_once_even_after_a_crash() {
    // Setup: a build made current while no relay runs (the api died right after the commit).
    let app = TestApp::spawn().await;
    let (publisher, _) = app
        .staff("nebula@store.test", "Nebula", Role::Publisher)
        .await;
    let (product, _, _) = product(&app, &publisher, &["linux"]).await;
    let build = uploaded_build(&app, &publisher, &product, "1.0.0").await;
    let made = app
        .gql(Some(&publisher), SET_CURRENT, json!({ "b": build }))
        .await;
    assert_no_errors(&made);
    let before_relay = made_current_on_stream(&app, &product).await;

    // Exercise: the relay starts (the api is back) and publishes; then it dies between a
    // publish and its mark (the row unpublished again) and runs once more.
    let relay = app.start_outbox_relay();
    wait_until("the relay to publish", || async {
        (unpublished(&app).await == 0).then_some(())
    })
    .await;
    drop(relay);
    let first = made_current_on_stream(&app, &product).await;
    app.state
        .db
        .execute_unprepared("UPDATE catalog.outbox SET published_at = NULL")
        .await
        .expect("as before the mark");
    let relay = app.start_outbox_relay();
    wait_until("the relay to publish again", || async {
        (unpublished(&app).await == 0).then_some(())
    })
    .await;
    drop(relay);
    let after_twice = made_current_on_stream(&app, &product).await;

    // Check: nothing was lost, and the stream holds the event once (JetStream dropped the
    // second publish of the same Nats-Msg-Id).
    assert!(before_relay.is_empty());
    let row = &crate::saga::outbox(&app, "catalog", None).await[0];
    let envelope: Value = serde_json::from_str(&row.payload).expect("an envelope");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, envelope["id"].as_str().expect("id"));
    assert_eq!(first[0].1, envelope);
    assert_eq!(first[0].1["data"]["build_id"], build.as_str());
    assert_eq!(after_twice, first);
}

#[tokio::test]
async fn builds_made_current_keep_their_order_across_relays() {
    // Setup: no relay runs. Product A: 1.0, then 2.0, then 1.0 again (a rollback) made
    // current; product B: one build. Another relay holds A's first event (claimed, not yet
    // marked).
    let app = TestApp::spawn().await;
    let (publisher, _) = app
        .staff("nebula@store.test", "Nebula", Role::Publisher)
        .await;
    let (a, _, _) = product(&app, &publisher, &["linux"]).await;
    let (b, _, _) = product(&app, &publisher, &["linux"]).await;
    let old = uploaded_build(&app, &publisher, &a, "1.0").await;
    let new = uploaded_build(&app, &publisher, &a, "2.0").await;
    let other = uploaded_build(&app, &publisher, &b, "0.9").await;
    for build in [&old, &new, &old, &other] {
        let v = app
            .gql(Some(&publisher), SET_CURRENT, json!({ "b": build }))
            .await;
        assert_no_errors(&v);
    }
    let holder = app.state.db.begin().await.expect("begin");
    holder
        .execute_unprepared(
            "SELECT id FROM catalog.outbox ORDER BY created_at, id LIMIT 1 FOR UPDATE",
        )
        .await
        .expect("hold A's first event");

    // Exercise: this replica's relay runs while A's first event is held, then the holder dies
    // without marking it, and two relays run.
    let while_held = domain::outbox::publish_batch(&app.state.db, &app.state.bus, "catalog")
        .await
        .expect("publish");
    let a_while_held = made_current_on_stream(&app, &a).await;
    let b_while_held = made_current_on_stream(&app, &b).await;
    holder.rollback().await.expect("rollback");
    let relays = [app.start_outbox_relay(), app.start_outbox_relay()];
    wait_until("the relays to publish", || async {
        (unpublished(&app).await == 0).then_some(())
    })
    .await;
    drop(relays);
    let a_events = made_current_on_stream(&app, &a).await;

    // Check: B's event did not wait for A's; none of A's overtook the held one; then A's came
    // in the order they happened, each once.
    assert_eq!(while_held, 1, "only B's event was free to go");
    assert!(a_while_held.is_empty(), "{a_while_held:?}");
    assert_eq!(b_while_held.len(), 1);
    let versions: Vec<&str> = a_events
        .iter()
        .map(|(_, e)| e["data"]["version_label"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(versions, ["1.0", "2.0", "1.0"]);
    let builds: Vec<&str> = a_events
        .iter()
        .map(|(_, e)| e["data"]["build_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(builds, [old.as_str(), new.as_str(), old.as_str()]);
}
