//! Files every replica can serve (`files.backend`, docs/operations.md): an export
//! run's file made on one server downloads, byte for byte, from another server on
//! the same database that has its own (empty) data directory — with the files in
//! the database, and in an S3-compatible object store (moto's server, installed by
//! CI into `target/python/moto`; elsewhere that test skips with a notice unless `CI`
//! is set).

use std::time::Duration;

use patchbay::Config;
use patchbay_http::export::exporter::{self, ExporterConfig};
use patchbay_http::files::{FilesBackend, S3Settings};
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, call};

const T1: &str = "5e1f0d6c-0000-4000-8000-0000000000a1";
const M1: &str = "5e1f0d6c-0000-4000-8000-0000000000b1";

fn seed() -> Value {
    json!({"export": {
        "itwins": [{"id": T1, "displayName": "Bridge"}],
        "imodels": [{"id": M1, "iTwinId": T1, "displayName": "Span"}],
        "users": [{"id": "bob", "tokens": [{"token": "bob-token", "scopes": ["itwin-platform"]}],
                   "itwins": {T1: ["read", "modify"]}, "authorizedForRuns": true}]
    }})
}

fn config(db: &TestDb, data_dir: &std::path::Path, backend: FilesBackend, s3: S3Settings) -> Config {
    let mut c = common::config(db, Some(ADMIN));
    c.data_dir = Some(data_dir.to_path_buf());
    c.files.backend = backend;
    c.files.s3 = s3;
    c.export.exporters.insert("IFC".into(), ExporterConfig::Simulate { delay_ms: 20, result: "Success".into() });
    c
}

/// Seeds `base`, makes an Export connection named `name` and starts a run of it; the
/// run's URL.
async fn start_run(base: &str, name: &str) -> String {
    let http = reqwest::Client::new();
    let r = call(http.post(format!("{base}/admin/v1/seed")).bearer_auth(ADMIN).json(&seed())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = call(
        http.post(format!("{base}/export/connections"))
            .bearer_auth("bob-token")
            .json(&json!({"iModelId": M1, "displayName": name, "authenticationType": "Service"})),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let ex_id = a.body["connection"]["id"].as_str().unwrap().to_string();
    let a = call(
        http.post(format!("{base}/export/connections/{ex_id}/runs"))
            .bearer_auth("bob-token")
            .json(&json!({"exportType": "IFC"})),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    a.headers["location"].to_str().unwrap().to_string()
}

/// Runs an export on `base` and returns the run's id and its file's id.
async fn export_run(base: &str) -> (String, String) {
    let http = reqwest::Client::new();
    let run_url = start_run(base, "weekly/\"x\"").await;
    for _ in 0..400 {
        let r = call(http.get(&run_url).bearer_auth("bob-token")).await;
        if r.body["run"]["state"] == "Completed" {
            assert_eq!(r.body["run"]["result"], "Success", "{}", r.body);
            let file = r.body["run"]["jobs"][0]["tasks"][0]["exportOutputFileId"].as_str().unwrap().to_string();
            return (r.body["run"]["id"].as_str().unwrap().to_string(), file);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the run did not complete");
}

/// The file as a client downloads it: status, content type, disposition, bytes.
async fn download(base: &str, file: &str) -> (u16, String, String, Vec<u8>) {
    let r = reqwest::Client::new().get(format!("{base}/export/files/{file}")).bearer_auth("bob-token").send().await;
    let r = r.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (ct, cd) = (h("content-type"), h("content-disposition"));
    (r.status().as_u16(), ct, cd, r.bytes().await.unwrap().to_vec())
}

/// A file made on A downloads the same from B (its own data directory), and neither
/// data directory holds it; an unknown file is still Export's 404.
async fn made_on_one_served_by_another(db: &TestDb, backend: FilesBackend, s3: S3Settings) -> (String, String) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = patchbay::start(&config(db, dir_a.path(), backend.clone(), s3.clone()), Registry::new()).await.unwrap();
    let base_a = format!("http://{}", a.addr);
    let (run, file) = export_run(&base_a).await;
    let on_a = download(&base_a, &file).await;
    assert_eq!(on_a.0, 200);
    assert_eq!(on_a.1, "application/octet-stream");
    assert_eq!(on_a.2, "attachment; filename=\"weekly__x_.ifc\"");
    assert!(String::from_utf8_lossy(&on_a.3).contains(M1), "the simulated file names the iModel");

    let b = patchbay::start(&config(db, dir_b.path(), backend, s3), Registry::new()).await.unwrap();
    let base_b = format!("http://{}", b.addr);
    assert_eq!(download(&base_b, &file).await, on_a, "the same file from the other server");
    let missing = call(
        reqwest::Client::new()
            .get(format!("{base_b}/export/files/00000000-0000-4000-8000-000000000000"))
            .bearer_auth("bob-token"),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "FileNotFound");
    for dir in [dir_a.path(), dir_b.path()] {
        assert!(!dir.join("export/files").exists(), "no file in {}", dir.display());
        let work: Vec<_> = std::fs::read_dir(dir.join("export/work")).map(|d| d.collect()).unwrap_or_default();
        assert!(work.is_empty(), "the exporter's work file is removed");
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    (run, file)
}

both_backends!(files_in_the_database_download_from_every_server, |db| {
    let (run, file) = made_on_one_served_by_another(&db, FilesBackend::Database, S3Settings::default()).await;
    // The file and the run's log are rows of the database.
    let store = patchbay_store::connect(&db.url).await.unwrap();
    let stored = store.file_get(&exporter::file_name(&file)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&stored).contains(M1));
    let log = store.file_get(&exporter::log_name(&run)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&log).contains("simulated IFC export"), "{}", String::from_utf8_lossy(&log));
    store.close().await;
});

/// moto's S3 server on a free port, for as long as the value lives.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto() -> Option<Moto> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/python/moto");
    if !root.join("moto").is_dir() {
        assert!(std::env::var("CI").is_err(), "CI must install moto[server] into {}", root.display());
        eprintln!("skipping the S3 test: pip install --target target/python/moto 'moto[server]'");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new("python3")
        .env("PYTHONPATH", &root)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs");
    let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    for _ in 0..200 {
        if reqwest::get(&moto.endpoint).await.is_ok() {
            return Some(moto);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto's server did not start on port {port}");
}

both_backends!(files_in_s3_download_from_every_server, |db| {
    let Some(moto) = moto().await else { return };
    let http = reqwest::Client::new();
    // The bucket exists before Patchbay is pointed at it (as in production).
    assert!(http.put(format!("{}/exports", moto.endpoint)).send().await.unwrap().status().is_success());
    let s3 = S3Settings {
        endpoint: moto.endpoint.clone(),
        bucket: "exports".into(),
        region: "eu-west-1".into(),
        access_key_id: "AKIDPATCHBAY".into(),
        secret_access_key: "patchbay-test-secret".into(),
        path_style: true,
        prefix: "pb/".into(),
    };
    let (run, file) = made_on_one_served_by_another(&db, FilesBackend::S3, s3).await;
    // Both are objects of the bucket, under the prefix.
    let listing = http.get(format!("{}/exports?list-type=2", moto.endpoint)).send().await.unwrap();
    let listing = listing.text().await.unwrap();
    assert!(listing.contains(&format!("<Key>pb/export/files/{file}</Key>")), "{listing}");
    assert!(listing.contains(&format!("<Key>pb/export/logs/{run}.log</Key>")), "{listing}");
});

#[tokio::test]
async fn an_unreachable_object_store_leaves_the_run_waiting_not_failed() {
    // Port 9 on loopback: nothing listens. The run's file cannot be stored, so the
    // job is retried; the run stays unfinished rather than completing without its file.
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Settings {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "b".into(),
        path_style: true,
        ..Default::default()
    };
    let srv = patchbay::start(&config(&db, dir.path(), FilesBackend::S3, s3), Registry::new()).await.unwrap();
    let base = format!("http://{}", srv.addr);
    let http = reqwest::Client::new();
    let run_url = start_run(&base, "w").await;
    // Wait for the first attempt to fail (three tries of the store within it).
    let store = patchbay_store::connect(&db.url).await.unwrap();
    let mut stats = Vec::new();
    for _ in 0..600 {
        stats = store.job_stats().await.unwrap();
        if stats.iter().any(|s| s.kind == patchbay_http::export::RUN_JOB && s.with_errors > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run_jobs = stats.iter().find(|s| s.kind == patchbay_http::export::RUN_JOB && s.with_errors > 0);
    let run_jobs = run_jobs.unwrap_or_else(|| panic!("an attempt failed: {stats:?}"));
    assert_ne!(run_jobs.state, patchbay_store::JobState::Dead, "{stats:?}");
    let last = store.list_kind(patchbay_http::export::FILE_KIND).await.unwrap();
    assert!(last.is_empty(), "no file recorded");
    let r = call(http.get(&run_url).bearer_auth("bob-token")).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.body["run"]["state"], "Completed", "{}", r.body);
    srv.shutdown().await.unwrap();
    store.close().await;
}
