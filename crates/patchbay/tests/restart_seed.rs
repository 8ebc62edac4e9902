//! A start-up seed (`serve --seed`, `PATCHBAY_SEED`, `demo`) never rolls back
//! what the API did: restarting with an unchanged document changes nothing;
//! an entry the document changes is applied again, alone; the explicit
//! `POST /admin/v1/seed` keeps upsert semantics. On both backends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use patchbay::demo::DEMO_SEED;
use patchbay::start;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, Answer, call, config};

const NET_CONN: &str = "/api/network/v1/enterprises/ent-acme/clients/connections/c0a80101-0000-4000-8000-000000000001";
const EX_CONN: &str = "/export/connections/exc-nightly-ifc";
const IN_CONN: &str = "/v1/connection/conn_github_01JDEMO000000000000000000?include_secrets=true";

/// A token endpoint that counts each refresh token it is shown and rotates them.
#[derive(Clone, Default)]
struct Provider {
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

async fn token(State(p): State<Provider>, body: String) -> axum::Json<Value> {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let rt = form.get("refresh_token").cloned().unwrap_or_default();
    let n = {
        let mut seen = p.seen.lock().unwrap();
        *seen.entry(rt.clone()).or_default() += 1;
        seen.values().sum::<usize>()
    };
    axum::Json(json!({"access_token": format!("at-fresh-{n}"), "refresh_token": format!("rt-rotated-{n}"),
                      "expires_in": 3600, "token_type": "bearer"}))
}

async fn provider() -> (Provider, String) {
    let p = Provider::default();
    let app = axum::Router::new().route("/token", axum::routing::post(token)).with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (p, url)
}

async fn get(addr: std::net::SocketAddr, token: &str, path: &str) -> Answer {
    call(reqwest::Client::new().get(format!("http://{addr}{path}")).bearer_auth(token)).await
}

both_backends!(a_restart_with_the_same_seed_keeps_what_the_api_did, |db| {
    let (provider, url) = provider().await;
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("demo-seed.json");
    let doc = DEMO_SEED.replace("http://127.0.0.1:9200", &url);
    std::fs::write(&seed_path, &doc).unwrap();
    let mut c = config(&db, Some(ADMIN));
    c.seed = Some(seed_path.clone());
    c.data_dir = Some(dir.path().join("data"));
    let http = reqwest::Client::new();

    // First start: the document is applied; the API then changes, deletes and refreshes.
    let srv = start(&c, Registry::new()).await.unwrap();
    let a = call(
        http.put(format!("http://{}{NET_CONN}", srv.addr))
            .bearer_auth("alice-token-1")
            .json(&json!({"name": "Renamed", "active": false})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(http.delete(format!("http://{}{EX_CONN}", srv.addr)).bearer_auth("bob-token-1")).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let a = get(srv.addr, "key_demo_org_1", IN_CONN).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let refreshed = a.body["settings"]["oauth"]["credentials"].clone();
    assert_eq!(refreshed["access_token"], "at-fresh-1", "{}", a.body);
    assert_eq!(refreshed["refresh_token"], "rt-rotated-1");
    srv.shutdown().await.unwrap();

    // Restart with the same document: nothing the API did is undone.
    let srv = start(&c, Registry::new()).await.unwrap();
    let a = get(srv.addr, "alice-token-1", NET_CONN).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!((&a.body["connection"]["name"], &a.body["connection"]["active"]), (&json!("Renamed"), &json!(false)));
    let a = get(srv.addr, "bob-token-1", EX_CONN).await;
    assert_eq!(a.status, 404, "{}", a.body);
    let a = get(srv.addr, "key_demo_org_1", IN_CONN).await;
    assert_eq!(a.body["settings"]["oauth"]["credentials"], refreshed, "the refreshed credential survives");
    // The seed's refresh token was presented exactly once, ever.
    assert_eq!(provider.seen.lock().unwrap().get("demo-refresh-token"), Some(&1));
    assert_eq!(provider.seen.lock().unwrap().values().sum::<usize>(), 1);
    srv.shutdown().await.unwrap();

    // The document changes one entry (the Network connection's name): that
    // entry alone is applied again; the deleted export connection stays deleted.
    let changed = doc.replace("\"name\": \"Desk 1\"", "\"name\": \"Desk 1b\"");
    assert_ne!(changed, doc);
    std::fs::write(&seed_path, &changed).unwrap();
    let srv = start(&c, Registry::new()).await.unwrap();
    let a = get(srv.addr, "alice-token-1", NET_CONN).await;
    assert_eq!((&a.body["connection"]["name"], &a.body["connection"]["active"]), (&json!("Desk 1b"), &json!(true)));
    assert_eq!(get(srv.addr, "bob-token-1", EX_CONN).await.status, 404);
    let a = get(srv.addr, "key_demo_org_1", IN_CONN).await;
    assert_eq!(a.body["settings"]["oauth"]["credentials"], refreshed);

    // The explicit admin seed is an upsert: it restores what the document states.
    let a =
        call(http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(changed.clone())).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = get(srv.addr, "bob-token-1", EX_CONN).await;
    assert_eq!((a.status, &a.body["connection"]["displayName"]), (200, &json!("nightly IFC")));
    srv.shutdown().await.unwrap();
});

both_backends!(a_restart_keeps_a_credential_the_seed_repeats, |db| {
    // A token the seed lists is stored once; an unchanged document at start-up
    // writes no credential, record or connection (their updated_at stays).
    let dir = tempfile::tempdir().unwrap();
    let seed_path = dir.path().join("seed.json");
    let doc = json!({"integrations": {"organizations": [{"id": "org_a", "name": "A", "apiKey": "key_a"}],
        "customers": [{"orgId": "org_a", "id": "cus_1", "apiKey": "key_cus_1"}]}});
    std::fs::write(&seed_path, doc.to_string()).unwrap();
    let mut c = config(&db, Some(ADMIN));
    c.seed = Some(seed_path.clone());
    let srv = start(&c, Registry::new()).await.unwrap();
    let before = srv.state.store.get_record("org_a", "integrations.organization", "org_a").await.unwrap().unwrap();
    assert!(srv.state.store.find_credential("key_cus_1").await.unwrap().is_some());
    srv.shutdown().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // The same entries in another order and spacing: a different document, the same entries.
    let reordered = json!({"integrations": {
        "customers": [{"id": "cus_1", "apiKey": "key_cus_1", "orgId": "org_a"}],
        "organizations": [{"name": "A", "id": "org_a", "apiKey": "key_a"}]}});
    std::fs::write(&seed_path, serde_json::to_string_pretty(&reordered).unwrap()).unwrap();
    let srv = start(&c, Registry::new()).await.unwrap();
    let after = srv.state.store.get_record("org_a", "integrations.organization", "org_a").await.unwrap().unwrap();
    assert_eq!(after.updated_at, before.updated_at, "an unchanged entry is not rewritten");
    let a = get(srv.addr, "key_cus_1", "/v1/viewer").await;
    assert_eq!(a.status, 200, "{}", a.body);
    srv.shutdown().await.unwrap();
});
