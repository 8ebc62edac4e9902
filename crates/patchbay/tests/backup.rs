//! Backup and restore on PostgreSQL (docs/operations.md): a database populated
//! through the API is dumped with `pg_dump`, restored with `pg_restore` into a
//! fresh database, and a server on the copy (same master keys, same data
//! directory) answers every connection, secret, event and run — and the run's
//! file — byte for byte as the original did. PostgreSQL only (it skips without
//! PATCHBAY_TEST_DATABASE_URL); CI runs it in the PostgreSQL pass.

use std::process::Command;
use std::time::Duration;

use patchbay_core::network::{public_key_of, sign_message};
use patchbay_http::export::exporter::ExporterConfig;
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, call};

const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CLIENT: &str = "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01";
const PARTNER: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02";
const T1: &str = "5e1f0d6c-0000-4000-8000-0000000000a1";
const M1: &str = "5e1f0d6c-0000-4000-8000-0000000000b1";

fn seed() -> Value {
    json!({
        "network": {
            "enterprises": [
                {"id": "ent-client", "name": "Acme", "oesLicense": true, "trustOrg": "BitGo Trust"},
                {"id": "ent-partner", "name": "Exchange", "oesLicense": true, "trustOrg": "BitGo Trust", "partnerEligible": true}
            ],
            "users": [{"id": "alice", "enterprises": ["ent-client"],
                       "tokens": [{"token": "alice-rw", "scopes": ["settlement_network_read", "settlement_network_write"]}]}],
            "clients": [{"id": CLIENT, "enterpriseId": "ent-client", "walletId": "w-1", "publicKey": public_key_of(KEY).unwrap()}],
            "partners": [{"id": PARTNER, "enterpriseId": "ent-partner", "name": "Exchange", "institutionIdentifier": "ex",
                          "connectionKeySchema": "token", "trustOrg": "BitGo Trust"}]
        },
        "export": {
            "itwins": [{"id": T1, "displayName": "Bridge"}],
            "imodels": [{"id": M1, "iTwinId": T1, "displayName": "Span"}],
            "users": [{"id": "bob", "tokens": [{"token": "bob-token", "scopes": ["itwin-platform"]}],
                       "itwins": {T1: ["read", "modify"]}, "authorizedForRuns": true}]
        },
        "integrations": {
            "organizations": [{"id": "org_a", "name": "A", "apiKey": "key_org_a"}],
            "customers": [{"orgId": "org_a", "id": "cus_1"}],
            "connectorConfigs": [{"id": "ccfg_github_01JA", "orgId": "org_a", "connectorName": "github",
                                  "config": {"oauth": {"client_id": "cid", "client_secret": "BACKUP-CLIENT-SECRET"}}}]
        }
    })
}

async fn start(db_url: &str, data_dir: &std::path::Path) -> patchbay::Running {
    let mut c = common::config(&TestDb::sqlite(), Some(ADMIN));
    c.database_url = db_url.to_string();
    c.data_dir = Some(data_dir.to_path_buf());
    c.export.exporters.insert("IFC".into(), ExporterConfig::Simulate { delay_ms: 50, result: "Success".into() });
    patchbay::start(&c, Registry::new()).await.expect("server starts")
}

/// What the API answers about everything the test made, as bytes.
async fn answers(base: &str, paths: &[(&str, String)]) -> Vec<(u16, String)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for (token, path) in paths {
        let r = http.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap();
        out.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    out
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_restored_into_a_fresh_database_answers_the_same() {
    let Some(original) = TestDb::postgres("backup_original").await else { return };
    let Some(copy) = TestDb::postgres("backup_copy").await else { return };
    let data = tempfile::tempdir().unwrap();
    let srv = start(&original.url, data.path()).await;
    let base = format!("http://{}", srv.addr);
    let http = reqwest::Client::new();
    let r = call(http.post(format!("{base}/admin/v1/seed")).bearer_auth(ADMIN).json(&seed())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Through the API: a Network connection (its key sealed), an Integrations connection
    // (its token sealed) and its event, an Export connection and a completed run with a file.
    let payload = format!(
        r#"{{"partnerId":"{PARTNER}","name":"Desk","nonce":"n-1","connectionKey":{{"schema":"token","connectionToken":"BACKUP-CONNECTION-TOKEN"}}}}"#
    );
    let body = json!({"partnerId": PARTNER, "name": "Desk", "nonce": "n-1",
                      "connectionKey": {"schema": "token", "connectionToken": "BACKUP-CONNECTION-TOKEN"},
                      "payload": payload, "signature": sign_message(payload.as_bytes(), KEY).unwrap()});
    let a = call(
        http.post(format!("{base}/api/network/v1/enterprises/ent-client/clients/connections"))
            .bearer_auth("alice-rw")
            .json(&body),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let net_id = a.body["connection"]["id"].as_str().unwrap().to_string();
    let a = call(http.post(format!("{base}/v1/connection")).bearer_auth("key_org_a").json(&json!({
        "connector_config_id": "ccfg_github_01JA", "customer_id": "cus_1",
        "data": {"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": "BACKUP-ACCESS-TOKEN"}}}}}))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let in_id = a.body["id"].as_str().unwrap().to_string();
    let a = call(
        http.post(format!("{base}/export/connections"))
            .bearer_auth("bob-token")
            .json(&json!({"iModelId": M1, "displayName": "weekly", "authenticationType": "Service"})),
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
    let run_url = a.headers["location"].to_str().unwrap().to_string();
    let run_path = run_url.trim_start_matches(&base).to_string();
    let mut file = String::new();
    for _ in 0..200 {
        let r = call(http.get(&run_url).bearer_auth("bob-token")).await;
        if r.body["run"]["state"] == "Completed" {
            file = r.body["run"]["jobs"][0]["tasks"][0]["exportOutputFileId"].as_str().unwrap().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!file.is_empty(), "the run completed");
    let paths = vec![
        ("alice-rw", format!("/api/network/v1/enterprises/ent-client/clients/connections/{net_id}")),
        ("alice-rw", "/api/network/v1/enterprises/ent-client/clients/connections".to_string()),
        ("key_org_a", format!("/v1/connection/{in_id}?include_secrets=true&refresh_policy=none")),
        ("key_org_a", "/v1/connection?include_secrets=true&refresh_policy=none".to_string()),
        ("key_org_a", "/v1/event".to_string()),
        ("bob-token", format!("/export/connections?iModelId={M1}")),
        ("bob-token", run_path.clone()),
        ("bob-token", format!("/export/files/{file}")),
    ];
    let before = answers(&base, &paths).await;
    assert!(before.iter().all(|(s, _)| *s == 200), "{before:?}");
    assert!(before[2].1.contains("BACKUP-ACCESS-TOKEN"), "the secret comes back decrypted");
    let old_host = srv.addr.to_string();
    srv.shutdown().await.unwrap();

    // The dump holds no secret in the clear.
    let dump = data.path().join("patchbay.dump");
    run(Command::new("pg_dump").args(["--format=custom", "--no-owner", "--file"]).arg(&dump).arg(&original.url));
    let plain = Command::new("pg_restore").arg("--file=-").arg(&dump).output().unwrap();
    assert!(plain.status.success());
    let text = String::from_utf8_lossy(&plain.stdout);
    for secret in ["BACKUP-ACCESS-TOKEN", "BACKUP-CONNECTION-TOKEN", "BACKUP-CLIENT-SECRET", "key_org_a", "alice-rw"] {
        assert!(!text.contains(secret), "{secret} is in the dump in the clear");
    }
    drop(original);
    run(Command::new("pg_restore").args(["--no-owner", "--exit-on-error", "--dbname"]).arg(&copy.url).arg(&dump));

    // A server on the copy, with the same keys and data directory: the same answers.
    let srv = start(&copy.url, data.path()).await;
    let base = format!("http://{}", srv.addr);
    let after = answers(&base, &paths).await;
    // Links carry the server's address, which differs between the two servers.
    let new_host = srv.addr.to_string();
    for ((s0, b0), (s1, b1)) in before.iter().zip(&after) {
        assert_eq!(s0, s1);
        assert_eq!(b0.replace(&old_host, &new_host), *b1);
    }
    // And it writes: the restored database is a working one.
    let a = call(reqwest::Client::new().delete(format!("{base}/v1/connection/{in_id}")).bearer_auth("key_org_a")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    srv.shutdown().await.unwrap();
}
