//! Chunked builds (issue 18), pushed and pulled with `store-cli` (the library the binary runs)
//! through the real gateway in front of the api, on real PostgreSQL, Redis and NATS.
//!
//! The main test pushes a generated directory of `CHUNKS_TEST_MB` MB (300 by default, the few
//! hundred MB the issue names: about 30 s on two cores in a debug build), changes about 1 % of
//! it in four ways, pushes again and updates an installed copy, and prints what went over the
//! wire (`-- --nocapture`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use domain::catalog::manifest::CHUNK_MAX_BYTES;
use domain::identity::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store_cli::client::{Client, Stats};
use store_cli::progress::Progress;
use store_cli::testdata::noise;
use store_cli::{pull, push};

use crate::helpers::gateway::*;
use crate::helpers::*;

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
    std::fs::write(&path, bytes).expect("write");
}

/// Every file under `dir` but `.store/`: relative path → SHA-256.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(at).expect("read dir").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            if rel == ".store" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let sha: String = Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                out.insert(rel, sha);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// A CA and a certificate for 127.0.0.1 it signed (rustls refuses a self-signed CA
/// certificate as a server's): (CA PEM, certificate, key).
fn tls_chain() -> &'static (Vec<u8>, PathBuf, PathBuf) {
    static CHAIN: OnceLock<(Vec<u8>, PathBuf, PathBuf)> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let dir = tmp_dir("chunks-tls");
        let p = |f: &str| dir.join(f).display().to_string();
        run_ok(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.crt"),
        ]));
        run_ok(Command::new("openssl").args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]));
        std::fs::write(
            dir.join("ext.cnf"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("ext");
        run_ok(Command::new("openssl").args([
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("server.crt"),
        ]));
        (
            std::fs::read(dir.join("ca.crt")).expect("ca"),
            dir.join("server.crt"),
            dir.join("server.key"),
        )
    })
}

/// A store behind the gateway, a publisher's product (linux) and a buyer who owns it.
struct Shop {
    app: TestApp,
    gw: Gateway,
    product: String,
    slug: String,
    publisher: String,
    buyer: String,
    store: String,
}

const PUBLISHER: &str = "nebula@store.test";
const BUYER: &str = "player@store.test";

async fn shop() -> Shop {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let store = app
        .state
        .config
        .services
        .object_store_dir
        .display()
        .to_string();
    let (_, cert, key) = tls_chain();
    let gw = Gateway::start(
        addr,
        &[
            ("GATEWAY_DOWNLOADS_DIR", &store),
            ("GATEWAY_TLS_CERT", &cert.display().to_string()),
            ("GATEWAY_TLS_KEY", &key.display().to_string()),
        ],
    );
    let (publisher, _) = app.staff(PUBLISHER, "Nebula", Role::Publisher).await;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let p = app
        .create_product(
            &publisher,
            json!({ "title": format!("Chunky {}", &tag[..8]), "platforms": ["linux"] }),
            &[digital("Standard", 1999)],
            true,
        )
        .await;
    let buyer = app.sign_up(BUYER, "Player").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    app.grant_product(&buyer, &p.id).await;
    Shop {
        app,
        gw,
        product: p.id,
        slug: p.slug,
        publisher,
        buyer,
        store,
    }
}

impl Shop {
    /// A store-cli client signed in as `email` (through the gateway).
    async fn client(&self, email: &str) -> Client {
        let client = Client::new(&self.gw.url(""), Some(&tls_chain().0)).expect("client");
        client.sign_in(email, PASSWORD).await.expect("sign in");
        client
    }

    fn options(&self, dir: &Path, version: &str) -> push::PushOptions {
        push::PushOptions {
            jobs: 4,
            ..push_options(&self.product, dir, version, true)
        }
    }

    /// (requests, bytes) of 200 answers under `prefix` in the gateway's access log.
    fn served(&self, prefix: &str) -> (u64, u64) {
        self.gw
            .log("access.log")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
            .filter(|v| v["status"] == 200)
            .fold((0, 0), |(n, b), v| {
                (n + 1, b + v["bytes"].as_u64().unwrap_or(0))
            })
    }
}

/// The generated build: (relative path, bytes, mode). `mb` megabytes in all: one large file
/// (half), four levels, an executable, sixteen small assets (1/256 each), a text file and an empty one.
fn generated(mb: usize) -> Vec<(String, Vec<u8>, u32)> {
    let total = mb << 20;
    let mut files = vec![
        ("game/data/big.pak".to_owned(), noise(total / 2, 1), 0o644),
        ("game/bin/game".to_owned(), noise(total / 16, 2), 0o755),
        (
            "README.txt".to_owned(),
            b"Chunky, a game.\n".repeat(100),
            0o644,
        ),
        ("game/empty.cfg".to_owned(), Vec::new(), 0o644),
    ];
    for i in 0..4 {
        files.push((
            format!("game/data/levels/level-{i}.pak"),
            noise(total / 12, 10 + i),
            0o644,
        ));
    }
    for i in 0..16 {
        files.push((
            format!("game/assets/small-{i:02}.bin"),
            noise(total / 256, 100 + i),
            0o644,
        ));
    }
    files
}

fn materialise(dir: &Path, files: &[(String, Vec<u8>, u32)]) {
    for (rel, bytes, mode) in files {
        write(dir, rel, bytes);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(*mode))
                .expect("mode");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_build_costs_what_changed_both_ways() {
    let mb: usize = std::env::var("CHUNKS_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let shop = shop().await;
    let publisher = shop.client(PUBLISHER).await;
    let buyer = shop.client(BUYER).await;
    let v1 = tmp_dir("chunks-v1");
    let mut files = generated(mb);
    materialise(&v1, &files);
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();

    // First build: everything goes up; a second push of the same tree sends nothing.
    let clock = std::time::Instant::now();
    let first = push::push(&publisher, &shop.options(&v1, "1.0.0"), &Progress::hidden())
        .await
        .expect("push 1.0.0");
    let push_secs = clock.elapsed().as_secs_f64();
    let again = push::push(
        &publisher,
        &shop.options(&v1, "1.0.0-again"),
        &Progress::hidden(),
    )
    .await
    .expect("push the same tree again");
    let installed_at = tmp_dir("chunks-install");
    let clock = std::time::Instant::now();
    let install = pull::install(
        &buyer,
        &shop.product,
        "linux",
        &installed_at,
        4,
        &Progress::hidden(),
    )
    .await
    .expect("install");
    let install_secs = clock.elapsed().as_secs_f64();
    // The same number of bytes as one static file, served by the same nginx (a signed link).
    let static_dir = Path::new(&shop.store).join("builds/static");
    std::fs::create_dir_all(&static_dir).expect("static dir");
    std::fs::write(static_dir.join("same.bin"), noise(total as usize, 3)).expect("static file");
    let expires = chrono::Utc::now().timestamp() + 60;
    let uri = "/downloads/builds/static/same.bin";
    let md5 = api::catalog::builds::secure_link_md5(expires, uri, DOWNLOAD_SECRET);
    let clock = std::time::Instant::now();
    let (plain, plain_bytes) = curl_bytes(s(&[&shop
        .gw
        .url(&format!("{uri}?md5={md5}&expires={expires}"))]))
    .await;
    let static_secs = clock.elapsed().as_secs_f64();
    assert_eq!(plain.status, 200);
    assert_eq!(plain_bytes.len() as u64, total);
    eprintln!(
        "throughput through the gateway (debug build of api and client): push {:.1} MB/s, \
         install {:.1} MB/s; nginx serving the same bytes as one file to curl: {:.1} MB/s",
        total as f64 / 1e6 / push_secs,
        total as f64 / 1e6 / install_secs,
        total as f64 / 1e6 / static_secs
    );

    assert_eq!(first.bytes, total);
    assert_eq!(
        first.uploaded_chunks, first.chunks,
        "a new product has no chunk"
    );
    assert_eq!(first.uploaded_raw_bytes, total);
    assert_eq!(first.build["kind"], "CHUNKED");
    assert_eq!(again.uploaded_chunks, 0, "a rerun uploads nothing stored");
    assert_eq!(again.uploaded_bytes, 0);
    assert_eq!(
        tree(&installed_at),
        tree(&v1),
        "the install is the pushed tree"
    );
    #[cfg(unix)]
    assert_eq!(mode(&installed_at.join("game/bin/game")), 0o755);
    assert_eq!(install.version, "1.0.0-again");
    assert_eq!(install.chunks_downloaded as usize, first.chunks);

    // 1 % of the tree changed, four ways: a quarter of it inserted in the middle of the big
    // file, the rest a new file; a file removed, one renamed (nothing new to send for those).
    let v2 = tmp_dir("chunks-v2");
    let one_percent = usize::try_from(total / 100).expect("size");
    let inserted = noise(one_percent / 4, 77);
    let added = noise(one_percent - one_percent / 4, 78);
    let big = files
        .iter_mut()
        .find(|f| f.0 == "game/data/big.pak")
        .expect("big");
    let middle = big.1.len() / 2 + 12_345;
    big.1.splice(middle..middle, inserted.iter().copied());
    files.retain(|f| f.0 != "game/assets/small-03.bin");
    let level = files
        .iter_mut()
        .find(|f| f.0 == "game/data/levels/level-2.pak")
        .expect("level");
    level.0 = "game/data/levels/level-2-remastered.pak".to_owned();
    files.push(("game/assets/new.bin".to_owned(), added.clone(), 0o644));
    materialise(&v2, &files);
    let changed = (inserted.len() + added.len()) as u64;
    let changed_files = 2;
    let bound = changed + changed * 3 / 100 + changed_files * u64::from(CHUNK_MAX_BYTES);

    let (served_before, served_bytes_before) = shop.served("/downloads/chunks/");
    let second = push::push(&publisher, &shop.options(&v2, "1.1.0"), &Progress::hidden())
        .await
        .expect("push 1.1.0");
    let update = pull::update(&buyer, &installed_at, 4, &Progress::hidden())
        .await
        .expect("update");
    let (served_after, served_bytes_after) = shop.served("/downloads/chunks/");
    let up_to_date = pull::update(&buyer, &installed_at, 4, &Progress::hidden())
        .await
        .expect("update again");

    eprintln!(
        "chunked builds, {:.1} MB tree, {:.2} MB changed: push 1 sent {} chunks / {} bytes; \
         push 2 sent {} of {} chunks / {} bytes ({} raw); update downloaded {} chunks / {} bytes \
         ({} chunks from local files); bound {} bytes",
        total as f64 / 1e6,
        changed as f64 / 1e6,
        first.uploaded_chunks,
        first.uploaded_bytes,
        second.uploaded_chunks,
        second.chunks,
        second.uploaded_bytes,
        second.uploaded_raw_bytes,
        update.chunks_downloaded,
        update.bytes_downloaded,
        update.chunks_reused,
        bound
    );
    assert!(
        second.uploaded_bytes <= bound,
        "push 2 sent {} bytes for {changed} changed (bound {bound})",
        second.uploaded_bytes
    );
    assert!(
        update.bytes_downloaded <= bound,
        "the update downloaded {} bytes for {changed} changed (bound {bound})",
        update.bytes_downloaded
    );
    assert!(update.changed);
    assert_eq!(update.version, "1.1.0");
    assert_eq!(
        (
            served_after - served_before,
            served_bytes_after - served_bytes_before
        ),
        (update.chunks_downloaded, update.bytes_downloaded),
        "the gateway served what the client counted"
    );
    assert_eq!(
        tree(&installed_at),
        tree(&v2),
        "the update is the new tree, byte for byte"
    );
    assert!(!installed_at.join("game/assets/small-03.bin").exists());
    assert!(!installed_at.join(".store/pending.json").exists());
    assert!(!installed_at.join(".store/chunks").exists());
    assert!(!up_to_date.changed, "a second update has nothing to do");
    assert_eq!(up_to_date.chunks_downloaded, 0);

    // The browser's way: one tar archive assembled from the chunks, as the build announces it.
    let link = shop
        .app
        .gql(
            Some(&shop.buyer),
            "mutation($p: UUID!) { downloadLink(productId: $p, platform: \"linux\") { url fileName sizeBytes sha256 build { kind versionLabel } } }",
            json!({ "p": shop.product }),
        )
        .await;
    assert_no_errors(&link);
    let link = &link["data"]["downloadLink"];
    let (reply, archive) = curl_bytes(s(&[&shop.gw.url(link["url"].as_str().expect("url"))])).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(link["build"]["kind"], "CHUNKED");
    assert_eq!(link["fileName"], format!("{}-1.1.0.tar", shop.slug));
    assert_eq!(
        archive.len() as u64,
        link["sizeBytes"].as_u64().expect("size")
    );
    let sha: String = Sha256::digest(&archive)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        link["sha256"],
        sha.as_str(),
        "the announced SHA-256 is the archive's"
    );
    assert_eq!(
        reply.header("content-disposition"),
        Some(format!("attachment; filename=\"{}-1.1.0.tar\"", shop.slug).as_str())
    );
    let unpacked = tmp_dir("chunks-tar");
    std::fs::write(unpacked.join("../archive.tar"), &archive).expect("archive");
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(unpacked.join("../archive.tar"))
            .arg("-C")
            .arg(&unpacked),
    );
    assert_eq!(
        tree(&unpacked),
        tree(&v2),
        "the archive holds the build's files"
    );
    let _ = std::fs::remove_file(unpacked.join("../archive.tar"));
    for d in [v1, v2, installed_at, unpacked] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_pull_resumes_without_downloading_completed_chunks() {
    let shop = shop().await;
    let publisher = shop.client(PUBLISHER).await;
    let src = tmp_dir("chunks-resume-src");
    materialise(
        &src,
        &[
            ("a.bin".into(), noise(20 << 20, 5), 0o644),
            ("b/c.bin".into(), noise(6 << 20, 6), 0o644),
        ],
    );
    let pushed = push::push(&publisher, &shop.options(&src, "2.0"), &Progress::hidden())
        .await
        .expect("push");
    let dir = tmp_dir("chunks-resume");

    // The first pull is stopped (its task aborted) once a few chunks are in its cache (the
    // download counter runs ahead of the cache: a chunk is counted when it arrives and written
    // on the blocking pool after).
    let first = shop.client(BUYER).await;
    let stats = first.stats.clone();
    let task = tokio::spawn({
        let (product, dir) = (shop.product.clone(), dir.clone());
        async move { pull::install(&first, &product, "linux", &dir, 2, &Progress::hidden()).await }
    });
    let cached = |dir: &Path| -> std::collections::HashSet<String> {
        std::fs::read_dir(dir.join(".store/chunks"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.ends_with(".tmp"))
            .collect()
    };
    wait_until("a few chunks in the cache", || async {
        (cached(&dir).len() >= 5).then_some(())
    })
    .await;
    task.abort();
    let _ = task.await;
    let fetched_before = Stats::get(&stats.chunks_downloaded);
    // Chunks written whole into the cache before the stop (a write on the blocking pool may
    // still finish after the task was aborted: such a chunk is kept too, or fetched again).
    let kept = cached(&dir);
    let log_mark = shop.gw.log("access.log").lines().count();
    let second = shop.client(BUYER).await;
    let resumed = pull::install(
        &second,
        &shop.product,
        "linux",
        &dir,
        2,
        &Progress::hidden(),
    )
    .await
    .expect("resume");
    let fetched_again: Vec<String> = shop
        .gw
        .log("access.log")
        .lines()
        .skip(log_mark)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["status"] == 200)
        .filter_map(|v| {
            v["path"]
                .as_str()?
                .strip_prefix("/downloads/chunks/")?
                .split('/')
                .nth(1)
                .map(str::to_owned)
        })
        .collect();
    let total = pushed.chunks as u64;

    assert!(
        kept.len() >= 5,
        "completed chunks were kept: {}",
        kept.len()
    );
    assert!(
        fetched_before < total,
        "stopped before the end: {fetched_before} of {total}"
    );
    // nginx logs a request when it ends: a request of the aborted pull that was still being
    // answered can be logged after the mark, so the log holds the resumed pull's requests and
    // at most the aborted pull's last few (its parallelism, 2).
    let logged = fetched_again.len() as u64;
    assert!(
        logged >= resumed.chunks_downloaded && logged <= resumed.chunks_downloaded + 2,
        "the gateway logged {logged} chunk downloads for a pull that downloaded {}",
        resumed.chunks_downloaded
    );
    assert!(
        fetched_again.iter().all(|id| !kept.contains(id)),
        "no completed chunk was downloaded again"
    );
    assert!(
        resumed.chunks_downloaded <= total - kept.len() as u64
            && resumed.chunks_downloaded + 2 >= total - kept.len() as u64,
        "the resumed pull downloads the chunks not kept ({} of {total}, {} kept)",
        resumed.chunks_downloaded,
        kept.len()
    );
    eprintln!(
        "interrupted pull: {fetched_before} chunks before the stop ({} kept), {} after, of {total}",
        kept.len(),
        resumed.chunks_downloaded
    );
    assert_eq!(tree(&dir), tree(&src));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(src);
}

const CREATE: &str = "mutation($i: CreateChunkedBuildInput!, $manifest: Upload!) { createChunkedBuild(input: $i, manifest: $manifest) { id } }";
const MISSING: &str =
    "mutation($p: UUID!, $ids: [String!]!) { missingChunks(productId: $p, ids: $ids) }";

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn create(
    client: &Client,
    product: &str,
    version: &str,
    manifest: &Value,
) -> store_cli::Result<Value> {
    client
        .gql_upload(
            CREATE,
            json!({ "i": { "productId": product, "platform": "linux", "versionLabel": version },
                    "manifest": null }),
            "manifest",
            manifest.to_string().into_bytes(),
        )
        .await
}

fn code<T: std::fmt::Debug>(r: &store_cli::Result<T>) -> String {
    match r {
        Err(e) => e.code().unwrap_or("(no code)").to_owned(),
        Ok(v) => panic!("expected a refusal, got {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pushes_and_pulls_are_refused_and_change_nothing() {
    let shop = shop().await;
    let publisher = shop.client(PUBLISHER).await;
    let buyer = shop.client(BUYER).await;
    let app = &shop.app;
    let (_, _) = app
        .staff("rival@store.test", "Rival", Role::Publisher)
        .await;
    let rival = shop.client("rival@store.test").await;
    app.sign_up("stranger@store.test", "Stranger").await;
    let stranger = shop.client("stranger@store.test").await;
    let raw = noise(300_000, 42);
    let id = sha_hex(&raw);
    let frame = zstd::bulk::compress(&raw, 3).expect("zstd");
    let good = json!({ "files": [{ "path": "a.bin", "size": raw.len(), "mode": 420, "sha256": id,
                                   "chunks": [{ "id": id, "offset": 0, "size": raw.len() }] }] });
    let with_path = |path: &str| {
        let mut m = good.clone();
        m["files"][0]["path"] = json!(path);
        m
    };
    let counts = || async {
        (
            app.scalar("SELECT count(*)::bigint AS n FROM catalog.chunk")
                .await,
            app.scalar("SELECT count(*)::bigint AS n FROM catalog.build")
                .await,
        )
    };
    let objects = || {
        std::fs::read_dir(Path::new(&shop.store).join("chunks"))
            .map(|d| d.flatten().count())
            .unwrap_or(0)
    };

    // Pushing: a wrong hash, a body that is no zstd, a buyer and a rival publisher; nothing stays.
    let wrong_hash = publisher
        .put_chunk(&shop.product, &"0".repeat(64), frame.clone())
        .await;
    let not_zstd = publisher.put_chunk(&shop.product, &id, raw.clone()).await;
    let by_buyer = buyer.put_chunk(&shop.product, &id, frame.clone()).await;
    let by_rival = rival.put_chunk(&shop.product, &id, frame.clone()).await;
    let ask_buyer = buyer
        .gql(MISSING, json!({ "p": shop.product, "ids": [id] }))
        .await;
    let ask_rival = rival
        .gql(MISSING, json!({ "p": shop.product, "ids": [id] }))
        .await;
    let ask_bad = publisher
        .gql(
            MISSING,
            json!({ "p": shop.product, "ids": ["../../etc/passwd"] }),
        )
        .await;
    let before_manifests = counts().await;
    let missing = create(&publisher, &shop.product, "1", &good).await;
    let after_refusals = (counts().await, objects());

    assert_eq!(code(&wrong_hash), "CHECKSUM_MISMATCH");
    assert_eq!(code(&not_zstd), "BAD_USER_INPUT");
    assert_eq!(code(&by_buyer), "FORBIDDEN");
    assert_eq!(code(&by_rival), "FORBIDDEN");
    assert_eq!(code(&ask_buyer), "FORBIDDEN");
    assert_eq!(code(&ask_rival), "FORBIDDEN");
    assert_eq!(code(&ask_bad), "BAD_USER_INPUT");
    assert_eq!(code(&missing), "CHUNKS_MISSING");
    match &missing {
        Err(store_cli::Error::Api { missing, .. }) => assert_eq!(missing, &vec![id.clone()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(before_manifests, (0, 0));
    assert_eq!(after_refusals, ((0, 0), 0), "no row, no object");

    // The chunk stored: now the manifests that lie or escape.
    assert!(
        publisher
            .put_chunk(&shop.product, &id, frame.clone())
            .await
            .expect("store")
    );
    assert!(
        !publisher
            .put_chunk(&shop.product, &id, frame.clone())
            .await
            .expect("again")
    );
    let mut lying = good.clone();
    lying["files"][0]["sha256"] = json!("f".repeat(64));
    let mut two_sizes = good.clone();
    two_sizes["files"][0]["size"] = json!(raw.len() + 1);
    let mut dup = good.clone();
    dup["files"] = json!([
        good["files"][0].clone(),
        with_path("A.BIN")["files"][0].clone()
    ]);
    let mut refusals = Vec::new();
    for (label, manifest) in [
        ("dot-dot", with_path("../evil.sh")),
        ("absolute", with_path("/etc/cron.d/evil")),
        ("nested dot-dot", with_path("game/../../evil")),
        ("backslash", with_path("..\\evil")),
        ("state dir", with_path(".store/state.json")),
        ("duplicate", dup),
        ("sizes", two_sizes),
        ("not a manifest", json!({ "files": "a.bin" })),
    ] {
        let r = create(&publisher, &shop.product, label, &manifest).await;
        refusals.push((label, code(&r)));
    }
    let lie = create(&publisher, &shop.product, "lie", &lying).await;
    let by_buyer = create(&buyer, &shop.product, "buyer", &good).await;
    let by_rival = create(&rival, &shop.product, "rival", &good).await;
    let unchanged = counts().await;

    for (label, c) in &refusals {
        assert_eq!(c, "BAD_USER_INPUT", "{label}");
    }
    assert_eq!(code(&lie), "CHECKSUM_MISMATCH");
    assert_eq!(code(&by_buyer), "FORBIDDEN");
    assert_eq!(code(&by_rival), "FORBIDDEN");
    assert_eq!(unchanged, (1, 0), "the chunk, and no build");

    // Pulling: the owner yes; a stranger, and anyone with another product's signature, no.
    let made = create(&publisher, &shop.product, "1.0", &good)
        .await
        .expect("a build");
    let current = app
        .gql(
            Some(&shop.publisher),
            "mutation($b: UUID!) { setCurrentBuild(buildId: $b) { isCurrent } }",
            json!({ "b": made["createChunkedBuild"]["id"] }),
        )
        .await;
    assert_no_errors(&current);
    let owner = pull::chunked_download(&buyer, &shop.product, "linux")
        .await
        .expect("owner");
    let not_owner = pull::chunked_download(&stranger, &shop.product, "linux").await;
    let no_access = stranger
        .gql(
            "mutation($p: UUID!) { chunkAccess(productId: $p) { query } }",
            json!({ "p": shop.product }),
        )
        .await;
    let base = owner["access"]["baseUrl"]
        .as_str()
        .expect("base")
        .to_owned();
    let query = owner["access"]["query"].as_str().expect("query").to_owned();
    let fetched = buyer
        .get_chunk(&format!("{base}{id}?{query}"))
        .await
        .expect("chunk");
    let other_product = uuid::Uuid::now_v7();
    let elsewhere = buyer
        .get_chunk(&format!("/downloads/chunks/{other_product}/{id}?{query}"))
        .await
        .expect("answer");
    let unsigned = buyer
        .get_chunk(&format!("{base}{id}"))
        .await
        .expect("answer");
    let escape = buyer
        .get_chunk(&format!("{base}..%2F..%2Fbuilds?{query}"))
        .await
        .expect("answer");

    assert_eq!(owner["manifest"]["files"][0]["path"], "a.bin");
    assert_eq!(code(&not_owner), "FORBIDDEN");
    assert_eq!(code(&no_access), "FORBIDDEN");
    assert_eq!(fetched.0, 200);
    assert_eq!(fetched.1, frame, "the chunk as stored");
    for (what, reply) in [
        ("elsewhere", &elsewhere),
        ("unsigned", &unsigned),
        ("escape", &escape),
    ] {
        assert_eq!(reply.0, 403, "{what}");
    }
}

/// An api without the gateway, a publisher's product `title` (linux), and the publisher's
/// store-cli client talking straight to the api (it verifies the bearer token itself):
/// (app, client, product id).
async fn straight(title: &str) -> (TestApp, Client, String) {
    let app = TestApp::spawn().await;
    let addr = app.serve().await;
    let (publisher, _) = app.staff(PUBLISHER, "Nebula", Role::Publisher).await;
    let product = app
        .create_product(
            &publisher,
            json!({ "title": title, "platforms": ["linux"] }),
            &[digital("Standard", 999)],
            true,
        )
        .await
        .id;
    let client = Client::new(&format!("http://{addr}"), None).expect("client");
    client.use_token(&publisher).await;
    (app, client, product)
}

/// Pushing `dir` as `version` of `product` for linux.
fn push_options(product: &str, dir: &Path, version: &str, make_current: bool) -> push::PushOptions {
    push::PushOptions {
        product: product.to_owned(),
        dir: dir.to_owned(),
        platform: "linux".into(),
        version: version.into(),
        release_notes: String::new(),
        file_name: None,
        make_current,
        jobs: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_chunks_are_collected_after_the_grace_period() {
    use std::time::Duration;

    let (app, client, product) = straight("Collected").await;
    let src = tmp_dir("chunks-gc");
    materialise(&src, &[("a.bin".into(), noise(3 << 20, 9), 0o644)]);
    let pushed = push::push(
        &client,
        &push_options(&product, &src, "1", false),
        &Progress::hidden(),
    )
    .await
    .expect("push");
    let orphans: Vec<String> = (0..3)
        .map(|i| {
            let raw = noise(100_000 + i, 500 + i as u64);
            sha_hex(&raw)
        })
        .collect();
    for (i, id) in orphans.iter().enumerate() {
        let raw = noise(100_000 + i, 500 + i as u64);
        client
            .put_chunk(&product, id, zstd::bulk::compress(&raw, 1).expect("zstd"))
            .await
            .expect("an orphan");
    }
    let objects = app.state.objects.clone();
    let stored = || {
        let dir = app
            .state
            .config
            .services
            .object_store_dir
            .join("chunks")
            .join(&product);
        std::fs::read_dir(dir)
            .map(|d| d.flatten().count())
            .unwrap_or(0)
    };
    let all = pushed.chunks + orphans.len();

    // Young orphans stay; once old, they go, and referenced chunks never do.
    let young =
        api::catalog::chunks::collect_garbage(&app.state.db, &objects, Duration::from_secs(3600))
            .await
            .expect("collect");
    app.state
        .db
        .execute_unprepared("UPDATE catalog.chunk SET touched_at = now() - interval '2 hours'")
        .await
        .expect("age");
    // A push asking about an orphan claims it again.
    let claimed = client
        .gql(MISSING, json!({ "p": product, "ids": [orphans[0]] }))
        .await
        .expect("ask");
    let old =
        api::catalog::chunks::collect_garbage(&app.state.db, &objects, Duration::from_secs(3600))
            .await
            .expect("collect");
    let left = stored();
    let rows = app
        .scalar("SELECT count(*)::bigint AS n FROM catalog.chunk")
        .await;
    let everything = api::catalog::chunks::collect_garbage(&app.state.db, &objects, Duration::ZERO)
        .await
        .expect("collect");

    assert_eq!(young.chunks, 0);
    assert_eq!(claimed["missingChunks"], json!([]));
    assert_eq!(old.chunks, 2, "the two orphans nobody claimed");
    assert_eq!(left, all - 2);
    assert_eq!(rows, (all - 2) as i64);
    assert_eq!(
        everything.chunks, 1,
        "the claimed orphan once its grace is over"
    );
    assert_eq!(stored(), pushed.chunks, "the build's chunks stay");
    let _ = std::fs::remove_dir_all(src);
}

use sea_orm::ConnectionTrait as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_build_made_current_writes_its_event_with_it() {
    // Setup: a publisher's product, pushed to straight.
    let (app, client, product) = straight("Announced").await;
    let src = tmp_dir("chunks-event");
    materialise(&src, &[("a.bin".into(), noise(1 << 20, 11), 0o644)]);

    // Exercise: one build pushed with makeCurrent, one without.
    let current = push::push(
        &client,
        &push_options(&product, &src, "1.0", true),
        &Progress::hidden(),
    )
    .await
    .expect("push 1.0");
    let later = push::push(
        &client,
        &push_options(&product, &src, "1.1", false),
        &Progress::hidden(),
    )
    .await
    .expect("push 1.1");

    // Check: the build made current has its event in the catalog's outbox, the other none.
    assert_eq!(current.build["isCurrent"], true, "{:?}", current.build);
    assert_eq!(later.build["isCurrent"], false, "{:?}", later.build);
    let rows = crate::saga::outbox(&app, "catalog", None).await;
    let told: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.payload).expect("an envelope")["data"].clone())
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["build_id"], current.build["id"]);
    assert_eq!(told[0]["product_id"], product.as_str());
    assert_eq!(told[0]["version_label"], "1.0");
    let _ = std::fs::remove_dir_all(src);
}
