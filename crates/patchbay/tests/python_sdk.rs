//! Interoperability: the official OpenInt Python SDKs (PyPI `openint` 2.8.0, the
//! last release on `/v1` only, and 2.9.0, which calls `/v2`) against the real
//! server, every client method, with strict response validation. CI installs
//! each release into `target/python/openint-<version>` (`.ci/run`); elsewhere the
//! test skips with a notice when one is missing (and fails when `CI` is set).

use std::path::PathBuf;
use std::process::Command;

use patchbay_store::worker::Registry;
use serde_json::json;

mod common;
use common::{ADMIN, call};

const RELEASES: [&str; 2] = ["2.8.0", "2.9.0"];

/// Where `.ci/run` installs a release (`pip install --target`).
fn sdk_dir(version: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/python")).join(format!("openint-{version}"))
}

fn sdk_available(version: &str) -> bool {
    let check = format!("import openint, sys; sys.exit(0 if openint.__version__ == '{version}' else 1)");
    Command::new("python3").env("PYTHONPATH", sdk_dir(version)).args(["-c", &check]).status().is_ok_and(|s| s.success())
}

both_backends!(official_python_sdks_call_every_method_strictly, |db| {
    let c = common::config(&db, Some(ADMIN));
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    let conn = "conn_github_01JSDK0000000000000000000A";
    let ccfg = "ccfg_github_01JA";
    let seed = json!({"integrations": {
        "organizations": [{"id": "org_a", "name": "A", "apiKey": "key_org_a"}],
        "customers": [{"orgId": "org_a", "id": "cus_1"}],
        "connectorConfigs": [{"id": ccfg, "orgId": "org_a", "connectorName": "github",
                              "config": {"oauth": {"client_id": "cid", "client_secret": "cs"}}}],
        "connections": [{"id": conn, "connectorConfigId": ccfg, "customerId": "cus_1",
                         "settings": {"oauth": {"credentials": {"access_token": "sdk-token"}}}}]
    }});
    let r =
        call(reqwest::Client::new().post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).json(&seed))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openint_sdk.py");
    let root = format!("http://{}", srv.addr);
    for version in RELEASES {
        if !sdk_available(version) {
            assert!(std::env::var("CI").is_err(), "CI must install openint {version} into {:?}", sdk_dir(version));
            eprintln!(
                "skipping openint {version}: python3 -m pip install --target {} openint=={version}",
                sdk_dir(version).display()
            );
            continue;
        }
        let root = root.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .env("PYTHONPATH", sdk_dir(version))
                .args([script, &root, "key_org_a", conn, ccfg, ADMIN])
                .output()
                .expect("python3 runs")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "openint {version} failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("python sdk {version}: ")), "{stdout}");
        assert!(stdout.contains("methods passed strictly, 0 failed"), "{stdout}");
        println!("{}", stdout.trim());
    }
    srv.shutdown().await.unwrap();
});
