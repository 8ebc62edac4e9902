//! Interoperability: the official OpenInt Python SDK (PyPI `openint==2.8.0`)
//! against the real server. CI installs the SDK; elsewhere the test skips
//! with a notice when it is missing (and fails when `CI` is set).

use std::process::Command;

use patchbay_store::worker::Registry;
use serde_json::json;

mod common;
use common::{ADMIN, call};

fn sdk_available() -> bool {
    Command::new("python3")
        .args(["-c", "import openint, sys; sys.exit(0 if openint.__version__ == '2.8.0' else 1)"])
        .status()
        .is_ok_and(|s| s.success())
}

both_backends!(official_python_sdk_get_list_create_delete_check, |db| {
    if !sdk_available() {
        assert!(std::env::var("CI").is_err(), "CI must install the OpenInt Python SDK (pip install openint==2.8.0)");
        eprintln!("skipping the OpenInt Python SDK test: python3 -m pip install openint==2.8.0 to run it");
        return;
    }
    let c = common::config(&db, Some(ADMIN));
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    let conn = "conn_github_01JSDK0000000000000000000A";
    let seed = json!({"integrations": {
        "organizations": [{"id": "org_a", "name": "A", "apiKey": "key_org_a"}],
        "customers": [{"orgId": "org_a", "id": "cus_1"}],
        "connectorConfigs": [{"id": "ccfg_github_01JA", "orgId": "org_a", "connectorName": "github",
                              "config": {"oauth": {"client_id": "cid", "client_secret": "cs"}}}],
        "connections": [{"id": conn, "connectorConfigId": "ccfg_github_01JA", "customerId": "cus_1",
                         "settings": {"oauth": {"credentials": {"access_token": "sdk-token"}}}}]
    }});
    let r =
        call(reqwest::Client::new().post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).json(&seed))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openint_sdk.py");
    let base = format!("http://{}/v1", srv.addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").args([script, &base, "key_org_a", conn]).output().expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK script failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python sdk: 7 passed, 0 failed"), "{stdout}");
    srv.shutdown().await.unwrap();
});
