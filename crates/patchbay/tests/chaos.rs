//! Three replicas under fire (docs/operations.md, "Several replicas"): three
//! `patchbay serve` processes on one PostgreSQL database behind a small
//! round-robin proxy (this file's), mixed writes of all three faces for about 20
//! seconds, and one replica killed with SIGKILL and restarted in the middle. Then:
//! no acknowledged write is lost or applied twice; every export run completes
//! exactly once and its file downloads from all three replicas; each refresh token
//! is presented once (one grant per expiry); and no replica hands out a kept read
//! older than the documented bound (one second) after the response of the write it
//! follows. PostgreSQL only: it skips without PATCHBAY_TEST_DATABASE_URL.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use patchbay_core::network::{public_key_of, sign_message};
use patchbay_store::testing::TestDb;
use patchbay_store::{InFilter, NetConnectionFilter, NetSide};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_patchbay");
const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ADMIN: &str = "chaos-admin-token";
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CLIENT: &str = "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01";
const PARTNER: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02";
const T1: &str = "5e1f0d6c-0000-4000-8000-0000000000a1";
const M1: &str = "5e1f0d6c-0000-4000-8000-0000000000b1";
/// Refreshable connections the replicas keep fresh in the background.
const REFRESHABLE: usize = 4;
/// How long the provider's access tokens live.
const TOKEN_SECS: i64 = 4;
/// The documented bound on a kept read's staleness across replicas.
const KEPT_BOUND: Duration = Duration::from_secs(1);
const RUN_FOR: Duration = Duration::from_secs(20);

// ------------------------------------------------------------- the provider --

/// A token endpoint that rotates refresh tokens and notes when each was presented.
#[derive(Clone, Default)]
struct Provider {
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
}

async fn token(State(p): State<Provider>, body: String) -> axum::Json<Value> {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let rt = form.get("refresh_token").cloned().unwrap_or_default();
    p.seen.lock().unwrap().push((rt.clone(), Instant::now()));
    axum::Json(json!({"access_token": format!("at-for-{rt}"), "refresh_token": format!("{rt}+"),
                      "expires_in": TOKEN_SECS, "token_type": "bearer"}))
}

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

// ---------------------------------------------------------------- the proxy --

/// Round-robin over the replicas; a replica that refuses the connection is skipped
/// (the request never reached it), any other failure is a 502 (not acknowledged).
#[derive(Clone)]
struct Proxy {
    ports: Arc<Vec<u16>>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
}

async fn forward(State(p): State<Proxy>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let target = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    for _ in 0..p.ports.len() {
        let port = p.ports[p.next.fetch_add(1, Ordering::Relaxed) % p.ports.len()];
        let mut rb = p.http.request(parts.method.clone(), format!("http://127.0.0.1:{port}{target}"));
        for (k, v) in &parts.headers {
            if k != axum::http::header::HOST && k != axum::http::header::CONTENT_LENGTH {
                rb = rb.header(k, v);
            }
        }
        match rb.body(bytes.clone()).send().await {
            Ok(r) => {
                let mut out = Response::builder().status(r.status());
                for (k, v) in r.headers() {
                    if k != axum::http::header::TRANSFER_ENCODING && k != axum::http::header::CONNECTION {
                        out = out.header(k, v);
                    }
                }
                let body = r.bytes().await.unwrap_or_default();
                return out.body(axum::body::Body::from(body)).unwrap();
            }
            Err(e) if e.is_connect() => continue,
            Err(_) => break,
        }
    }
    axum::http::StatusCode::BAD_GATEWAY.into_response()
}

// ------------------------------------------------------------- the replicas --

struct Replica {
    port: u16,
    data_dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn config_file(dir: &std::path::Path, db_url: &str) -> std::path::PathBuf {
    let path = dir.join("patchbay.toml");
    std::fs::write(
        &path,
        format!(
            r#"
database_url = "{db_url}"
master_keys = "{K1}"
admin_token = "{ADMIN}"
shutdown_grace_secs = 2
[jobs]
poll_interval_ms = 50
lease_secs = 2
backoff_base_ms = 50
backoff_max_ms = 500
[outbound]
allow_loopback = true
[files]
backend = "database"
[export.exporters.IFC]
kind = "simulate"
delay_ms = 300
result = "Success"
[integrations]
refresh_margin_secs = 1
background_interval_secs = 1
background_window_secs = 2
lock_secs = 2
"#
        ),
    )
    .unwrap();
    path
}

impl Replica {
    fn start(&mut self, config: &std::path::Path, logs: &std::path::Path) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(logs.join(format!("{}.log", self.port)));
        let log = log.unwrap();
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("PATCHBAY_") {
                c.env_remove(k);
            }
        }
        let child = c
            .env("PATCHBAY_DATA_DIR", self.data_dir.path())
            .env("RUST_LOG", "warn")
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("patchbay serve starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn ready(url: &str) {
    for _ in 0..600 {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not become ready");
}

fn refreshable_id(i: usize) -> String {
    format!("conn_github_01JCHAOS{i:018}")
}

fn seed(provider: &str) -> Value {
    let expired =
        (chrono::Utc::now() - chrono::Duration::seconds(60)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let connections: Vec<Value> = (0..REFRESHABLE)
        .map(|i| {
            json!({"id": refreshable_id(i), "connectorConfigId": "ccfg_github_01JC", "customerId": "cus_1",
                   "settings": {"oauth": {"credentials": {"access_token": "at-0", "refresh_token": format!("rt-{i}"),
                                                          "expires_at": expired}}}})
        })
        .collect();
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
            "organizations": [{"id": "org_c", "name": "C", "apiKey": "key_org_c"}],
            "customers": [{"orgId": "org_c", "id": "cus_1"}],
            "connectorConfigs": [{"id": "ccfg_github_01JC", "orgId": "org_c", "connectorName": "github",
                                  "config": {"oauth": {"client_id": "cid", "client_secret": "cs"}},
                                  "overrides": {"tokenUrl": format!("{provider}/token")}}],
            "connections": connections
        }
    })
}

// ------------------------------------------------------------- the workload --

/// What the clients saw acknowledged (a 2xx through the proxy) and what failed.
#[derive(Default)]
struct Ledger {
    /// Network connection id → its last acknowledged name.
    network: BTreeMap<String, String>,
    /// A rename that got no acknowledgement (the replica died answering): either name.
    network_maybe: HashMap<String, String>,
    network_unacked: usize,
    /// Integrations connection id → its display name, and the ids deleted.
    integrations: BTreeMap<String, String>,
    integrations_deleted: HashSet<String>,
    /// Deletes that got no acknowledgement: deleted or not.
    integrations_maybe_deleted: HashSet<String>,
    integrations_unacked: usize,
    /// Export run location → the connection it belongs to.
    runs: Vec<String>,
    /// Time from a write's response to the first fresh read, per replica read.
    staleness: Vec<Duration>,
    /// Reads that were stale past the bound (should stay empty).
    too_stale: Vec<String>,
}

/// Reads `path` on every replica until its answer is `fresh`; notes how long each took. A
/// read is stale past the bound only if it was *sent* past it (its answer may come later on
/// a busy machine).
async fn follow(
    ledger: &Mutex<Ledger>,
    replicas: &[String],
    token: &str,
    path: &str,
    acked: Instant,
    fresh: impl Fn(u16, &str) -> bool,
) {
    let http = reqwest::Client::new();
    for base in replicas {
        loop {
            let sent = acked.elapsed();
            let r = match http.get(format!("{base}{path}")).bearer_auth(token).send().await {
                Ok(r) => r,
                Err(_) => break, // that replica is down: nothing kept to read
            };
            let (status, body) = (r.status().as_u16(), r.text().await.unwrap_or_default());
            if fresh(status, &body) {
                ledger.lock().unwrap().staleness.push(sent);
                break;
            }
            if status >= 500 || status == 429 {
                break; // a replica starting up or shedding load
            }
            if sent > KEPT_BOUND {
                ledger.lock().unwrap().too_stale.push(format!("{base}{path}: {status} {body} sent after {sent:?}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn network_writer(proxy: String, replicas: Vec<String>, ledger: Arc<Mutex<Ledger>>, until: Instant) {
    let http = reqwest::Client::new();
    let base = format!("{proxy}/api/network/v1/enterprises/ent-client/clients/connections");
    let mut k = 0;
    while Instant::now() < until {
        k += 1;
        let name = format!("Desk {k}");
        let payload = format!(
            r#"{{"partnerId":"{PARTNER}","name":"{name}","nonce":"chaos-{k}","connectionKey":{{"schema":"token","connectionToken":"tok-{k}"}}}}"#
        );
        let body = json!({"partnerId": PARTNER, "name": name, "nonce": format!("chaos-{k}"),
                          "connectionKey": {"schema": "token", "connectionToken": format!("tok-{k}")},
                          "payload": payload, "signature": sign_message(payload.as_bytes(), KEY).unwrap()});
        let r = http.post(&base).bearer_auth("alice-rw").json(&body).send().await.unwrap();
        if r.status() != 200 {
            ledger.lock().unwrap().network_unacked += 1;
            continue;
        }
        let v: Value = r.json().await.unwrap();
        let id = v["connection"]["id"].as_str().unwrap().to_string();
        ledger.lock().unwrap().network.insert(id.clone(), name.clone());
        // A rename, then every replica must show it within the bound.
        let renamed = format!("Renamed {k}");
        let r = http.put(format!("{base}/{id}")).bearer_auth("alice-rw").json(&json!({"name": renamed})).send().await;
        let r = r.unwrap();
        let acked = Instant::now();
        if r.status() != 200 {
            ledger.lock().unwrap().network_maybe.insert(id.clone(), renamed.clone());
        } else {
            ledger.lock().unwrap().network.insert(id.clone(), renamed.clone());
            let path = format!("/api/network/v1/enterprises/ent-client/clients/connections/{id}");
            let fresh = format!("\"name\":\"{renamed}\"");
            follow(&ledger, &replicas, "alice-rw", &path, acked, |status, body| status == 200 && body.contains(&fresh))
                .await;
        }
    }
}

async fn integrations_writer(proxy: String, replicas: Vec<String>, ledger: Arc<Mutex<Ledger>>, until: Instant) {
    let http = reqwest::Client::new();
    let mut k = 0;
    while Instant::now() < until {
        k += 1;
        let name = format!("chaos-{k}");
        let body = json!({"connector_config_id": "ccfg_github_01JC", "customer_id": "cus_1", "display_name": name,
            "data": {"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": format!("at-{k}")}}}}});
        let r = http.post(format!("{proxy}/v1/connection")).bearer_auth("key_org_c").json(&body).send().await.unwrap();
        if r.status() != 200 {
            ledger.lock().unwrap().integrations_unacked += 1;
            continue;
        }
        let v: Value = r.json().await.unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        ledger.lock().unwrap().integrations.insert(id.clone(), name);
        // Every third one is deleted again; every replica must stop answering it.
        if k % 3 == 0 {
            let r = http.delete(format!("{proxy}/v1/connection/{id}")).bearer_auth("key_org_c").send().await.unwrap();
            let acked = Instant::now();
            if r.status() != 200 {
                ledger.lock().unwrap().integrations_maybe_deleted.insert(id.clone());
            } else {
                ledger.lock().unwrap().integrations_deleted.insert(id.clone());
                let path = format!("/v1/connection/{id}");
                follow(&ledger, &replicas, "key_org_c", &path, acked, |status, _| status == 404).await;
            }
        }
    }
}

async fn export_writer(proxy: String, ledger: Arc<Mutex<Ledger>>, until: Instant) {
    let http = reqwest::Client::new();
    let mut k = 0;
    while Instant::now() < until {
        k += 1;
        let r = http
            .post(format!("{proxy}/export/connections"))
            .bearer_auth("bob-token")
            .json(&json!({"iModelId": M1, "displayName": format!("chaos {k}"), "authenticationType": "Service"}))
            .send()
            .await
            .unwrap();
        if r.status() != 201 {
            continue;
        }
        let v: Value = r.json().await.unwrap();
        let id = v["connection"]["id"].as_str().unwrap().to_string();
        let r = http
            .post(format!("{proxy}/export/connections/{id}/runs"))
            .bearer_auth("bob-token")
            .json(&json!({"exportType": "IFC"}))
            .send()
            .await
            .unwrap();
        if r.status() == 202 {
            let location = r.headers()["location"].to_str().unwrap().to_string();
            let path = location.split_once("/export/").map(|(_, p)| format!("/export/{p}")).unwrap();
            ledger.lock().unwrap().runs.push(path);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----------------------------------------------------------------- the test --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_a_sigkill_under_mixed_writes() {
    let Some(db) = TestDb::postgres("chaos").await else { return };
    let work = tempfile::tempdir().unwrap();
    let config = config_file(work.path(), &db.url);
    let provider = Provider::default();
    let provider_url =
        serve(axum::Router::new().route("/token", axum::routing::post(token)).with_state(provider.clone())).await;

    let mut replicas: Vec<Replica> =
        (0..3).map(|_| Replica { port: free_port(), data_dir: tempfile::tempdir().unwrap(), child: None }).collect();
    for r in &mut replicas {
        r.start(&config, work.path());
    }
    for r in &replicas {
        ready(&r.url()).await;
    }
    let urls: Vec<String> = replicas.iter().map(Replica::url).collect();
    let proxy = Proxy {
        ports: Arc::new(replicas.iter().map(|r| r.port).collect()),
        next: Arc::default(),
        http: reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap(),
    };
    let proxy_url = serve(axum::Router::new().fallback(forward).with_state(proxy)).await;
    let seeded = reqwest::Client::new()
        .post(format!("{proxy_url}/admin/v1/seed"))
        .bearer_auth(ADMIN)
        .json(&seed(&provider_url))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 200, "{}", seeded.text().await.unwrap());

    // The writers, and replica 1 killed 7 s in and restarted 3 s later.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let until = started + RUN_FOR;
    let writers = [
        tokio::spawn(network_writer(proxy_url.clone(), urls.clone(), ledger.clone(), until)),
        tokio::spawn(integrations_writer(proxy_url.clone(), urls.clone(), ledger.clone(), until)),
        tokio::spawn(export_writer(proxy_url.clone(), ledger.clone(), until)),
    ];
    tokio::time::sleep(Duration::from_secs(7)).await;
    let killed_at = Instant::now();
    replicas[1].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    replicas[1].start(&config, work.path());
    ready(&replicas[1].url()).await;
    for w in writers {
        w.await.unwrap();
    }
    let ledger = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    assert!(ledger.network.len() >= 10, "network writes went through: {}", ledger.network.len());
    assert!(ledger.integrations.len() >= 10, "integrations writes went through: {}", ledger.integrations.len());
    assert!(ledger.runs.len() >= 10, "export runs were started: {}", ledger.runs.len());

    // No kept read older than the bound after the write it follows.
    assert!(ledger.too_stale.is_empty(), "stale past {KEPT_BOUND:?}: {:#?}", ledger.too_stale);
    let mut staleness = ledger.staleness.clone();
    staleness.sort();
    let p99 = staleness[(staleness.len() * 99 / 100).min(staleness.len() - 1)];
    eprintln!("chaos: {} follow-up reads across replicas, p99 {p99:?} to fresh", staleness.len());

    // Every export run completes, once, and its file downloads from every replica.
    let http = reqwest::Client::new();
    let mut files = Vec::new();
    for run in &ledger.runs {
        let mut done = None;
        for _ in 0..600 {
            let r = http.get(format!("{proxy_url}{run}")).bearer_auth("bob-token").send().await.unwrap();
            if r.status() == 200 {
                let v: Value = r.json().await.unwrap();
                if v["run"]["state"] == "Completed" {
                    done = Some(v);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let v = done.unwrap_or_else(|| panic!("run {run} did not complete"));
        assert_eq!(v["run"]["result"], "Success", "{v}");
        let run_id = v["run"]["id"].as_str().unwrap().to_string();
        files.push((run_id, v["run"]["jobs"][0]["tasks"][0]["exportOutputFileId"].as_str().unwrap().to_string()));
    }
    for (run_id, file) in &files {
        let mut bodies = Vec::new();
        for base in &urls {
            let r = http.get(format!("{base}/export/files/{file}")).bearer_auth("bob-token").send().await.unwrap();
            assert_eq!(r.status(), 200, "run {run_id}'s file from {base}");
            bodies.push(r.bytes().await.unwrap());
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same file from every replica");
    }

    let store = patchbay_store::connect(&db.url).await.unwrap();
    let mut files_per_run: HashMap<String, usize> = HashMap::new();
    for rec in store.list_kind(patchbay_http::export::FILE_KIND).await.unwrap() {
        *files_per_run.entry(rec.data["runId"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for (run_id, _) in &files {
        assert_eq!(files_per_run.get(run_id), Some(&1), "run {run_id} completed exactly once");
    }

    // Acknowledged writes: every one there, with what was acknowledged, none twice.
    let net = store
        .net_list_connections(NetSide::Client, "ent-client", &NetConnectionFilter::default(), 100_000, 0)
        .await
        .unwrap();
    let stored: HashMap<&str, &str> = net.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect();
    for (id, name) in &ledger.network {
        let got = stored.get(id.as_str()).copied();
        let maybe = ledger.network_maybe.get(id).map(String::as_str);
        assert!(got == Some(name.as_str()) || (got.is_some() && got == maybe), "network connection {id}: {got:?}");
    }
    let nonces: HashSet<&str> = net.iter().map(|c| c.nonce.as_str()).collect();
    assert_eq!(nonces.len(), net.len(), "no create applied twice");
    assert!(net.len() <= ledger.network.len() + ledger.network_unacked, "only attempted creates exist");
    let (ins, _) = store.in_list_connections("org_c", &InFilter::default(), 100_000, 0).await.unwrap();
    let stored: HashMap<&str, Option<&str>> = ins.iter().map(|c| (c.id.as_str(), c.display_name.as_deref())).collect();
    for (id, name) in &ledger.integrations {
        if ledger.integrations_deleted.contains(id) {
            assert!(!stored.contains_key(id.as_str()), "deleted {id} stays deleted");
        } else if ledger.integrations_maybe_deleted.contains(id) {
            assert!(stored.get(id.as_str()).is_none_or(|n| *n == Some(name.as_str())), "{id}");
        } else {
            assert_eq!(stored.get(id.as_str()), Some(&Some(name.as_str())), "integrations connection {id}");
        }
    }
    let names: Vec<_> = ins.iter().filter_map(|c| c.display_name.as_deref()).collect();
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), names.len(), "no create applied twice");

    // One grant per expiry: each refresh token presented once — except one whose answer a
    // killed replica never stored (presented just before the kill, then again by another).
    let seen = provider.seen.lock().unwrap().clone();
    let mut by_token: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for (rt, at) in &seen {
        by_token.entry(rt.as_str()).or_default().push(*at);
    }
    assert!(seen.len() >= REFRESHABLE * 3, "tokens were refreshed through the run: {}", seen.len());
    for (rt, times) in &by_token {
        if times.len() > 1 {
            let first = times[0];
            let cut_short = times.len() == 2 && first <= killed_at && killed_at - first < Duration::from_secs(1);
            assert!(cut_short, "{rt} presented {} times: {by_token:?}", times.len());
        }
    }
    // And every connection holds the newest grant.
    for i in 0..REFRESHABLE {
        let c = store.in_get_connection("org_c", &refreshable_id(i)).await.unwrap().unwrap();
        assert!(c.refreshable);
        let newest = by_token.keys().filter(|rt| rt.starts_with(&format!("rt-{i}"))).max_by_key(|rt| rt.len());
        assert!(newest.is_some(), "connection {i} was refreshed");
    }
    store.close().await;
    for r in &mut replicas {
        r.kill();
    }
}
