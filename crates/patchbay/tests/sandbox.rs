//! Sandbox controls (docs/sandbox.md) over real HTTP, on both backends: fault
//! rules in and out, the journal and verify, the clock moving token expiry,
//! reset and snapshots, deterministic mode, and the CLI.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use patchbay_core::network::{public_key_of, sign_message};
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, Answer, call};

const ALICE_KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CLIENT: &str = "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01";
const PARTNER: &str = "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02";
const NET_CONN: &str = "c0a80101-0000-4000-8000-000000000001";
const T1: &str = "5e1f0d6c-0000-4000-8000-0000000000a1";
const M1: &str = "5e1f0d6c-0000-4000-8000-0000000000b1";
const CONN: &str = "conn_github_01JSANDBOX0000000000000000A";
const CONN2: &str = "conn_github_01JSANDBOX0000000000000000B";

/// An OAuth2 token endpoint (every refresh answers a new token, good for an hour)
/// and a partner platform; both count their calls.
#[derive(Clone, Default)]
struct Outside {
    token_calls: Arc<Mutex<usize>>,
    partner_calls: Arc<Mutex<usize>>,
}

async fn token(State(o): State<Outside>) -> Response {
    let n = {
        let mut c = o.token_calls.lock().unwrap();
        *c += 1;
        *c
    };
    axum::Json(json!({"access_token": format!("at-{n}"), "refresh_token": format!("rt-{n}"), "expires_in": 3600}))
        .into_response()
}

async fn partner(State(o): State<Outside>, body: axum::Json<Value>) -> Response {
    *o.partner_calls.lock().unwrap() += 1;
    let id = body.0["connectionId"].as_str().unwrap_or_default().to_string();
    axum::Json(json!({"clientId": body.0["clientId"], "connectionId": id,
                      "partnersClientId": "pc-1", "partnersConnectionId": "pconn-1"}))
    .into_response()
}

async fn outside() -> (Outside, String) {
    let o = Outside::default();
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .route("/bitgo/v1/connections", axum::routing::post(partner))
        .with_state(o.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (o, url)
}

fn seed(url: &str) -> Value {
    let expires =
        (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let settings =
        json!({"oauth": {"credentials": {"access_token": "at-0", "refresh_token": "rt-0", "expires_at": expires}}});
    json!({
        "network": {
            "enterprises": [
                {"id": "ent-client", "name": "Acme", "oesLicense": true, "trustOrg": "BitGo Trust"},
                {"id": "ent-partner", "name": "Exchange", "oesLicense": true, "trustOrg": "BitGo Trust", "partnerEligible": true}
            ],
            "users": [{"id": "alice", "enterprises": ["ent-client"],
                       "tokens": [{"token": "alice-rw", "scopes": ["settlement_network_read", "settlement_network_write"]}]}],
            "clients": [{"id": CLIENT, "enterpriseId": "ent-client", "walletId": "w-1", "publicKey": public_key_of(ALICE_KEY).unwrap()}],
            "partners": [{"id": PARTNER, "enterpriseId": "ent-partner", "name": "Exchange", "institutionIdentifier": "ex",
                          "connectionKeySchema": "token", "trustOrg": "BitGo Trust", "callbackUrl": url}],
            "connections": [{"id": NET_CONN, "clientId": CLIENT, "partnerId": PARTNER, "name": "Desk 1", "nonce": "seed-n1",
                             "connectionKey": {"schema": "token", "connectionToken": "tok"}, "createdAt": "2026-01-01T00:00:00Z"}]
        },
        "export": {
            "itwins": [{"id": T1, "displayName": "Bridge"}],
            "imodels": [{"id": M1, "iTwinId": T1, "displayName": "Span"}],
            "users": [{"id": "bob", "tokens": [{"token": "bob-token", "scopes": ["itwin-platform"]}],
                       "itwins": {T1: ["read", "modify"]}, "authorizedForRuns": true}],
            "connections": [{"id": "exc-nightly", "iModelId": M1, "displayName": "nightly", "authenticationType": "User", "ownerUserId": "bob"}]
        },
        "integrations": {
            "organizations": [{"id": "org_a", "name": "A", "apiKey": "key_org_a"}, {"id": "org_b", "name": "B", "apiKey": "key_org_b"}],
            "customers": [{"orgId": "org_a", "id": "cus_1"}, {"orgId": "org_b", "id": "cus_1"}],
            "connectorConfigs": [
                {"id": "ccfg_github_01JA", "orgId": "org_a", "connectorName": "github",
                 "config": {"oauth": {"client_id": "cid", "client_secret": "csecret"}}, "overrides": {"tokenUrl": format!("{url}/token")}},
                {"id": "ccfg_github_01JB", "orgId": "org_b", "connectorName": "github",
                 "config": {"oauth": {"client_id": "b", "client_secret": "b"}}}
            ],
            "connections": [
                {"id": CONN, "connectorConfigId": "ccfg_github_01JA", "customerId": "cus_1", "settings": settings},
                {"id": CONN2, "connectorConfigId": "ccfg_github_01JA", "customerId": "cus_1",
                 "settings": {"oauth": {"credentials": {"access_token": "other"}}}}
            ]
        }
    })
}

struct Env {
    srv: patchbay::Running,
    http: reqwest::Client,
    outside: Outside,
}

impl Env {
    fn u(&self, path: &str) -> String {
        format!("http://{}{path}", self.srv.addr)
    }
    async fn get(&self, token: &str, path: &str) -> Answer {
        call(self.http.get(self.u(path)).bearer_auth(token)).await
    }
    async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: &Value) -> Answer {
        call(self.http.request(method, self.u(path)).bearer_auth(token).json(body)).await
    }
    /// A sandbox control: method, path under /admin/v1/sandbox, optional body.
    async fn sb(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, self.u(&format!("/admin/v1/sandbox{path}"))).bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        call(req).await
    }
    async fn fault(&self, rule: Value) -> String {
        let a = self.sb(reqwest::Method::POST, "/faults", Some(rule)).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["id"].as_str().unwrap().to_string()
    }
    async fn journal(&self, query: &str) -> Vec<Value> {
        let a = self.sb(reqwest::Method::GET, &format!("/journal{query}"), None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["entries"].as_array().unwrap().clone()
    }
}

/// A server with the sandbox on and the seed above as its start-up seed.
async fn env(db: &TestDb) -> Env {
    env_with(db, |_| {}).await
}

async fn env_with(db: &TestDb, f: impl FnOnce(&mut patchbay::Config)) -> Env {
    let (outside, url) = outside().await;
    let dir = std::env::temp_dir().join(format!("pb-sandbox-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed_file = dir.join("seed.json");
    std::fs::write(&seed_file, seed(&url).to_string()).unwrap();
    let mut c = common::config(db, Some(ADMIN));
    c.seed = Some(seed_file);
    c.data_dir = Some(dir.join("data"));
    c.sandbox.enabled = true;
    c.integrations.background_interval_secs = 3600;
    f(&mut c);
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    Env { srv, http: reqwest::Client::new(), outside }
}

fn statuses(entries: &[Value]) -> Vec<u64> {
    entries.iter().map(|e| e["status"].as_u64().unwrap_or(0)).collect()
}

#[tokio::test]
async fn sandbox_routes_answer_404_while_off() {
    let db = TestDb::sqlite();
    let srv = common::boot(&db, Some(ADMIN)).await;
    let http = reqwest::Client::new();
    for (m, p) in [("GET", ""), ("GET", "/clock"), ("POST", "/clock/advance"), ("POST", "/faults"), ("POST", "/reset")]
    {
        let a = call(
            http.request(m.parse().unwrap(), format!("http://{}/admin/v1/sandbox{p}", srv.addr))
                .bearer_auth(ADMIN)
                .json(&json!({"by": "1h"})),
        )
        .await;
        assert_eq!(
            (a.status, a.body),
            (404, json!({"error": "The sandbox is off (set sandbox.enabled = true to use it)."})),
            "{m} {p}"
        );
    }
    srv.shutdown().await.unwrap();
}

both_backends!(inbound_faults_journal_and_verify, |db| {
    let e = env(&db).await;
    // Admin token required while on.
    let a = call(e.http.get(e.u("/admin/v1/sandbox"))).await;
    assert_eq!(a.status, 401);
    // Two 429s in OpenInt's shape with Retry-After, then the real answer.
    let id = e
        .fault(json!({"match": {"face": "integrations", "method": "GET", "route": "/v1/connection"},
                      "effect": {"type": "status", "status": 429, "retry_after": 2}, "first": 2}))
        .await;
    assert_eq!(id, "flt_1");
    for _ in 0..2 {
        let a = e.get("key_org_a", "/v1/connection").await;
        assert_eq!(a.status, 429);
        assert_eq!(a.headers["retry-after"], "2");
        assert_eq!(
            a.body,
            json!({"code": "TOO_MANY_REQUESTS", "message": "Rate limit exceeded; retry after 2 seconds."})
        );
    }
    let ok = e.get("key_org_a", "/v1/connection").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Other routes were never touched.
    assert_eq!(e.get("key_org_a", &format!("/v1/connection/{CONN}")).await.status, 200);
    let rule = e.sb(reqwest::Method::GET, &format!("/faults/{id}"), None).await.body;
    assert_eq!((rule["matched"].as_u64(), rule["hits"].as_u64()), (Some(3), Some(2)));
    // The journal: three calls of the route, the first two by the rule, principal and tenant known.
    let entries = e.journal("?route=/v1/connection&face=integrations").await;
    assert_eq!(statuses(&entries), [429, 429, 200]);
    assert_eq!(entries[0]["fault"], "flt_1");
    assert_eq!(entries[2]["fault"], Value::Null);
    assert_eq!(entries[2]["principal"], "org_a");
    assert_eq!(entries[2]["tenant"], "org_a");
    assert_eq!(entries[2]["direction"], "inbound");
    assert_eq!(entries[2]["method"], "GET");
    assert!(entries[2]["request_id"].as_str().is_some_and(|r| r.len() == 36));
    assert_eq!(entries[2]["response_body"]["items"].as_array().map(Vec::len), Some(2));
    let v = e
        .sb(
            reqwest::Method::POST,
            "/journal/verify",
            Some(json!({"match": {"face": "integrations", "route": "/v1/connection", "method": "GET"}, "count": 3})),
        )
        .await;
    assert_eq!((v.status, v.body), (200, json!({"matched": 3})));
    let v = e
        .sb(
            reqwest::Method::POST,
            "/journal/verify",
            Some(json!({"match": {"route": "/v1/connection", "status": 200}, "count": 2})),
        )
        .await;
    assert_eq!(v.status, 409);
    assert_eq!(v.body["error"], "Expected exactly 2 matching request(s), found 1.");
    assert_eq!(v.body["matched"], 1);
    assert_eq!(v.body["seen"].as_array().unwrap().len(), 1);
    let v = e.sb(reqwest::Method::POST, "/journal/verify", Some(json!({"match": {}}))).await;
    assert_eq!(v.status, 422);

    // A rule naming the caller: only org_b is refused (503 in OpenInt's shape).
    e.fault(json!({"match": {"principal": "org_b"}, "effect": {"type": "status", "status": 503, "message": "down for org_b"}}))
        .await;
    assert_eq!(e.get("key_org_a", "/v1/connection").await.status, 200);
    let a = e.get("key_org_b", "/v1/connection").await;
    assert_eq!((a.status, a.body), (503, json!({"code": "SERVICE_UNAVAILABLE", "message": "down for org_b"})));
    // Network's shape, by header match; Export's by path glob.
    e.fault(json!({"match": {"face": "network", "headers": {"x-test-case": "boom"}}, "effect": {"type": "status", "status": 500}}))
        .await;
    let a = call(
        e.http
            .get(e.u(&format!("/api/network/v1/enterprises/ent-client/clients/connections/{NET_CONN}")))
            .bearer_auth("alice-rw")
            .header("x-test-case", "boom"),
    )
    .await;
    assert_eq!((a.status, a.body), (500, json!({"error": "Internal Server Error (sandbox fault)."})));
    let a = e.get("alice-rw", &format!("/api/network/v1/enterprises/ent-client/clients/connections/{NET_CONN}")).await;
    assert_eq!(a.status, 200);
    e.fault(
        json!({"match": {"path": "/export/connections/*"}, "effect": {"type": "status", "status": 503}, "every": 2}),
    )
    .await;
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(e.get("bob-token", "/export/connections/exc-nightly").await.status);
        }
        v
    };
    assert_eq!(codes, [200, 503, 200, 503]);
    let a = e.get("bob-token", "/export/connections/exc-nightly").await;
    let a2 = e.get("bob-token", "/export/connections/exc-nightly").await;
    assert_eq!(a.status.max(a2.status), 503);
    let err = if a.status == 503 { a.body } else { a2.body };
    assert_eq!(err["error"]["code"], "ServiceUnavailable", "{err}");
    // A dropped connection: no answer at all; the journal says so.
    e.fault(json!({"match": {"route": "/v1/connection/{id}"}, "effect": {"type": "drop"}, "first": 1})).await;
    let dropped = e.http.get(e.u(&format!("/v1/connection/{CONN}"))).bearer_auth("key_org_a").send().await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(e.get("key_org_a", &format!("/v1/connection/{CONN}")).await.status, 200);
    let last = e.journal("?route=/v1/connection/{id}").await;
    let dropped_entry = &last[last.len() - 2];
    assert_eq!(
        (dropped_entry["status"].clone(), dropped_entry["error"].clone()),
        (Value::Null, json!("connection dropped (sandbox fault)"))
    );
    // Latency and a slow body still give the real answer.
    e.fault(
        json!({"match": {"route": "/v1/connector"}, "effect": {"type": "latency", "ms": 50, "max_ms": 80}, "first": 1}),
    )
    .await;
    assert_eq!(e.get("key_org_a", "/v1/connector?limit=1").await.status, 200);
    e.fault(json!({"match": {"route": "/v1/customer"}, "effect": {"type": "slow_body", "bytes_per_second": 2000}, "first": 1}))
        .await;
    let slow = e.get("key_org_a", "/v1/customer").await;
    assert_eq!(slow.status, 200);
    assert_eq!(slow.body, e.get("key_org_a", "/v1/customer").await.body);
    // Rules listed with counts, deleted one by one and all; bad rules refused.
    let list = e.sb(reqwest::Method::GET, "/faults", None).await.body;
    assert_eq!(list["faults"].as_array().unwrap().len(), 7);
    assert_eq!(e.sb(reqwest::Method::DELETE, "/faults/flt_1", None).await.status, 204);
    assert_eq!(e.sb(reqwest::Method::DELETE, "/faults/flt_1", None).await.status, 404);
    assert_eq!(e.sb(reqwest::Method::DELETE, "/faults", None).await.body, json!({"deleted": 6}));
    let bad = e.sb(reqwest::Method::POST, "/faults", Some(json!({"effect": {"type": "status", "status": 200}}))).await;
    assert_eq!((bad.status, bad.body), (422, json!({"error": "effect.status must be between 400 and 599"})));
    let bad = e.sb(reqwest::Method::POST, "/faults", Some(json!({"effect": {"type": "nope"}}))).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["error"].as_str().unwrap().starts_with("Invalid body at effect"), "{}", bad.body);
    let bad = e.sb(reqwest::Method::POST, "/faults", None).await;
    assert_eq!(bad.status, 422);
    // Secrets never reach the journal.
    let all = e.journal("").await.iter().map(Value::to_string).collect::<String>();
    assert!(!all.contains("at-0") && !all.contains("key_org_a") && !all.contains("csecret"), "{all}");
    // Filters: status, principal, limit, a bad instant.
    assert_eq!(e.journal("?status=503&principal=org_b").await.len(), 1);
    assert_eq!(e.journal("?limit=2").await.len(), 2);
    assert_eq!(e.sb(reqwest::Method::GET, "/journal?since=yesterday", None).await.status, 400);
    assert_eq!(e.sb(reqwest::Method::GET, "/journal?bogus=1", None).await.status, 400);
    let cleared = e.sb(reqwest::Method::DELETE, "/journal", None).await.body;
    assert!(cleared["deleted"].as_u64().unwrap() > 10);
    assert!(e.journal("").await.is_empty());
    e.srv.shutdown().await.unwrap();
});

both_backends!(the_clock_moves_token_expiry_and_refresh, |db| {
    let e = env(&db).await;
    let path = format!("/v1/connection/{CONN}?include_secrets=true");
    let read = || e.get("key_org_a", &path);
    // Fresh for an hour: no refresh.
    let a = read().await;
    assert_eq!(a.body["settings"]["oauth"]["credentials"]["access_token"], "at-0");
    assert_eq!(*e.outside.token_calls.lock().unwrap(), 0);
    // Two hours on: the next read refreshes through the provider.
    let c = e.sb(reqwest::Method::POST, "/clock/advance", Some(json!({"by": "2h"}))).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert!((c.body["offset_ms"].as_i64().unwrap() - 7_200_000).abs() < 1_000);
    let a = read().await;
    assert_eq!(a.body["settings"]["oauth"]["credentials"]["access_token"], "at-1", "{}", a.body);
    assert_eq!(*e.outside.token_calls.lock().unwrap(), 1);
    // The new expiry is an hour after the moved clock's now.
    let exp = chrono::DateTime::parse_from_rfc3339(
        a.body["settings"]["oauth"]["credentials"]["expires_at"].as_str().unwrap(),
    )
    .unwrap()
    .timestamp_millis();
    let now = e.sb(reqwest::Method::GET, "/clock", None).await.body["now_ms"].as_i64().unwrap();
    assert!((exp - now - 3_600_000).abs() < 5_000, "{exp} {now}");
    // The refresh went through the journal as an outbound call, secrets redacted.
    let out = e.journal("?direction=outbound").await;
    assert_eq!(out.len(), 1);
    assert_eq!((out[0]["call"].as_str(), out[0]["status"].as_u64()), (Some("oauth_token"), Some(200)));
    assert_eq!(out[0]["response_body"]["access_token"], "[redacted]");
    assert!(out[0]["request_body"].as_str().unwrap().contains("refresh_token=%5Bredacted%5D"));
    assert_eq!(out[0]["request_id"], e.journal("?route=/v1/connection/{id}").await.last().unwrap()["request_id"]);
    // Frozen: time stands still, set moves it, resume runs on from there.
    let f = e.sb(reqwest::Method::POST, "/clock/freeze", Some(json!({"at": "2030-01-01T00:00:00Z"}))).await.body;
    assert_eq!((f["now"].as_str(), f["frozen"].as_bool()), (Some("2030-01-01T00:00:00.000Z"), Some(true)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(e.sb(reqwest::Method::GET, "/clock", None).await.body["now_ms"], f["now_ms"]);
    // Bodies carry the clock's time: an event made now is dated 2030.
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &json!({
        "connector_config_id": "ccfg_github_01JA", "customer_id": "cus_1",
        "data": {"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": "made-in-2030"}}}}})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["created_at"].as_str().unwrap().starts_with("2030-01-01T00:00:00"), "{}", a.body);
    let s = e.sb(reqwest::Method::POST, "/clock/set", Some(json!({"to": "2031-06-01T12:00:00Z"}))).await.body;
    assert_eq!(s["now"], "2031-06-01T12:00:00.000Z");
    let r = e.sb(reqwest::Method::POST, "/clock/resume", None).await.body;
    assert_eq!(r["frozen"], false);
    assert!(r["now_ms"].as_i64().unwrap() >= s["now_ms"].as_i64().unwrap());
    for (body, why) in [
        (json!({}), "give by"),
        (json!({"by": "soon"}), "by: invalid duration"),
        (json!({"by": "1h", "by_ms": 5}), "give by"),
    ] {
        let a = e.sb(reqwest::Method::POST, "/clock/advance", Some(body)).await;
        assert_eq!(a.status, 422);
        assert!(a.body["error"].as_str().unwrap().contains(why), "{}", a.body);
    }
    assert_eq!(e.sb(reqwest::Method::POST, "/clock/set", Some(json!({"to": "noon"}))).await.status, 422);
    e.srv.shutdown().await.unwrap();
});

/// Every list of every face, as the bytes the server sends.
async fn lists(e: &Env) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for (token, path) in [
        ("alice-rw", "/api/network/v1/enterprises/ent-client/clients/connections".to_string()),
        ("bob-token", format!("/export/connections?iModelId={M1}")),
        ("key_org_a", "/v1/connection".to_string()),
        ("key_org_a", "/v1/event".to_string()),
    ] {
        let r = e.http.get(e.u(&path)).bearer_auth(token).send().await.unwrap();
        out.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    out
}

both_backends!(snapshots_restore_byte_identical_lists_and_reset_returns_to_the_seed, |db| {
    let e = env(&db).await;
    let before = lists(&e).await;
    assert!(before.iter().all(|(s, _)| *s == 200), "{before:?}");
    let s = e.sb(reqwest::Method::POST, "/snapshots", Some(json!({"name": "clean"}))).await;
    assert_eq!(s.status, 201, "{}", s.body);
    assert_eq!(s.body["rows"]["net_connections"], 1);
    assert_eq!(s.body["rows"]["in_connections"], 2);
    // Writes on every face.
    let path = format!("/api/network/v1/enterprises/ent-client/clients/connections/{NET_CONN}");
    assert_eq!(e.send(reqwest::Method::PUT, "alice-rw", &path, &json!({"name": "Renamed"})).await.status, 200);
    let a = e
        .send(
            reqwest::Method::POST,
            "bob-token",
            "/export/connections",
            &json!({"iModelId": M1, "displayName": "weekly", "authenticationType": "Service"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(
        e.send(reqwest::Method::DELETE, "key_org_a", &format!("/v1/connection/{CONN2}"), &json!({})).await.status,
        200
    );
    let during = lists(&e).await;
    assert_ne!(during, before);
    // Restored: byte for byte the same answers.
    let r = e.sb(reqwest::Method::POST, "/snapshots/clean/restore", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(lists(&e).await, before);
    assert_eq!(e.sb(reqwest::Method::POST, "/snapshots/missing/restore", None).await.status, 404);
    assert_eq!(e.sb(reqwest::Method::POST, "/snapshots", Some(json!({"name": "bad name!"}))).await.status, 422);
    let l = e.sb(reqwest::Method::GET, "/snapshots", None).await.body;
    assert_eq!(l["snapshots"][0]["name"], "clean");
    // Reset to empty: nothing answers; reset to the seed: the seeded state again.
    e.fault(json!({"effect": {"type": "latency", "ms": 1}})).await;
    let r = e.sb(reqwest::Method::POST, "/reset", Some(json!({"to": "empty"}))).await;
    assert_eq!((r.status, r.body), (200, json!({"to": "empty", "seed_applied": false})));
    assert_eq!(e.get("key_org_a", "/v1/connection").await.status, 401);
    let st = e.sb(reqwest::Method::GET, "", None).await.body;
    assert_eq!((st["faults"].as_u64(), st["clock"]["frozen"].as_bool()), (Some(0), Some(false)));
    assert_eq!(st["snapshots"], json!(["clean"]));
    let r = e.sb(reqwest::Method::POST, "/reset", None).await;
    assert_eq!((r.status, r.body), (200, json!({"to": "seed", "seed_applied": true})));
    let after = lists(&e).await;
    // The same objects as at start-up (applied again now, so their update times are now's).
    let ids = |t: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(t).unwrap();
        let items =
            ["connections", "exportConnections", "items"].iter().find_map(|k| v[*k].as_array().cloned()).unwrap();
        items.iter().map(|i| i["id"].to_string()).collect()
    };
    for i in 0..3 {
        assert_eq!(after[i].0, 200);
        assert_eq!(ids(&after[i].1), ids(&before[i].1), "{}", after[i].1);
    }
    assert_eq!(e.sb(reqwest::Method::POST, "/reset", Some(json!({"to": "yesterday"}))).await.status, 422);
    assert_eq!(e.sb(reqwest::Method::DELETE, "/snapshots/clean", None).await.status, 204);
    assert_eq!(e.sb(reqwest::Method::DELETE, "/snapshots/clean", None).await.status, 404);
    e.srv.shutdown().await.unwrap();
});

both_backends!(an_outbound_fault_makes_the_partner_callback_retry_then_succeed, |db| {
    let e = env(&db).await;
    // The partner's initialisation call fails once with a 500 (no fake partner needed), then goes through.
    e.fault(json!({"direction": "outbound", "match": {"call": "partner_initialize"},
                   "effect": {"type": "status", "status": 500}, "first": 1}))
        .await;
    // An OAuth token call that sees invalid_grant, and an API key check that times out, are refused too.
    let payload = format!(
        r#"{{"partnerId":"{PARTNER}","name":"Desk 9","nonce":"n-9","connectionKey":{{"schema":"token","connectionToken":"tok-9"}}}}"#
    );
    let signature = sign_message(payload.as_bytes(), ALICE_KEY).unwrap();
    let body = json!({"partnerId": PARTNER, "name": "Desk 9", "nonce": "n-9",
                      "connectionKey": {"schema": "token", "connectionToken": "tok-9"},
                      "payload": payload, "signature": signature});
    let a = e
        .send(reqwest::Method::POST, "alice-rw", "/api/network/v1/enterprises/ent-client/clients/connections", &body)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let id = a.body["connection"]["id"].as_str().unwrap().to_string();
    let mut initialised = false;
    for _ in 0..300 {
        let a = e.get("alice-rw", &format!("/api/network/v1/enterprises/ent-client/clients/connections/{id}")).await;
        if a.body["connection"]["initialized"] == true {
            initialised = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(initialised);
    // The partner saw one call; the journal two, the first answered by the rule.
    assert_eq!(*e.outside.partner_calls.lock().unwrap(), 1);
    let out = e.journal("?direction=outbound&call=partner_initialize").await;
    assert_eq!(statuses(&out), [500, 200]);
    assert_eq!(out[0]["fault"], "flt_1");
    assert_eq!(out[0]["face"], "network");
    assert_eq!(out[0]["response_body"], json!({"error": "sandbox_fault"}));
    assert_eq!(out[1]["request_body"]["connectionToken"], "[redacted]");
    // A token endpoint that answers invalid_grant: the refresh fails as the provider would make it.
    e.fault(json!({"direction": "outbound", "match": {"call": "oauth_token"},
                   "effect": {"type": "oauth_error", "error": "invalid_grant", "description": "revoked"}}))
        .await;
    let a = e.get("key_org_a", &format!("/v1/connection/{CONN}?include_secrets=true&refresh_policy=force")).await;
    assert_eq!(a.body["status"], "disconnected", "{}", a.body);
    assert!(a.body["status_message"].as_str().unwrap().contains("invalid_grant: revoked"));
    assert_eq!(*e.outside.token_calls.lock().unwrap(), 0, "the provider was never called");
    let out = e.journal("?call=oauth_token").await;
    assert_eq!(
        (out[0]["status"].as_u64(), out[0]["response_body"]["error"].as_str()),
        (Some(400), Some("invalid_grant"))
    );
    e.srv.shutdown().await.unwrap();
});

both_backends!(deterministic_mode_gives_identical_bodies, |db| {
    let e = env(&db).await;
    let run = || async {
        assert_eq!(e.sb(reqwest::Method::POST, "/reset", None).await.status, 200);
        assert_eq!(e.sb(reqwest::Method::PUT, "/deterministic", Some(json!({"seed": 42}))).await.status, 200);
        e.sb(reqwest::Method::POST, "/clock/freeze", Some(json!({"at": "2027-03-01T09:00:00Z"}))).await;
        let conn = e
            .send(
                reqwest::Method::POST,
                "key_org_a",
                "/v1/connection",
                &json!({
                "connector_config_id": "ccfg_github_01JA", "customer_id": "cus_1",
                "data": {"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": "x"}}}}}),
            )
            .await;
        let export = e
            .send(
                reqwest::Method::POST,
                "bob-token",
                "/export/connections",
                &json!({"iModelId": M1, "displayName": "weekly", "authenticationType": "Service"}),
            )
            .await;
        let run = e
            .send(
                reqwest::Method::POST,
                "bob-token",
                "/export/connections/exc-nightly/runs",
                &json!({"exportType": "IFC"}),
            )
            .await;
        assert_eq!(run.status, 202, "{}", run.body);
        assert_eq!(conn.status, 200, "{}", conn.body);
        assert_eq!(export.status, 201, "{}", export.body);
        let events = e.get("key_org_a", "/v1/event").await;
        assert!(!events.body["items"].as_array().unwrap().is_empty());
        let rid = e.http.get(e.u("/v1/connector?limit=1")).send().await.unwrap().headers()["x-request-id"].clone();
        (conn.body, export.body, run.headers.get("location").cloned(), events.body, rid)
    };
    let first = run().await;
    assert!(first.0["id"].as_str().unwrap().starts_with("conn_github_"), "{:?}", first.0);
    let second = run().await;
    assert_eq!(first, second);
    // Off: ids differ again.
    assert_eq!(e.sb(reqwest::Method::DELETE, "/deterministic", None).await.body, json!({"seed": null}));
    let a = e
        .send(reqwest::Method::POST, "key_org_a", "/v1/connection", &json!({
            "connector_config_id": "ccfg_github_01JA", "customer_id": "cus_1", "data": {"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": "x"}}}}}))
        .await;
    assert_ne!(a.body["id"], first.0["id"]);
    e.srv.shutdown().await.unwrap();
});

both_backends!(the_cli_drives_the_controls, |db| {
    let e = env(&db).await;
    let base = format!("http://{}", e.srv.addr);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(["sandbox", "--url", &base, "--admin-token", ADMIN])
            .args(args)
            .env_remove("PATCHBAY_ADMIN_TOKEN")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.code(), serde_json::from_str::<Value>(&stdout).unwrap_or(Value::String(stdout)))
    };
    let cli = |args: Vec<&'static str>| {
        let cli = &cli;
        async move { tokio::task::block_in_place(|| cli(&args)) }
    };
    let (code, body) = cli(vec!["clock", "freeze", "--at", "2028-02-29T12:00:00Z"]).await;
    assert_eq!((code, body["now"].clone()), (Some(0), json!("2028-02-29T12:00:00.000Z")));
    let (code, body) = cli(vec!["clock", "advance", "-30m"]).await;
    assert_eq!((code, body["now"].clone()), (Some(0), json!("2028-02-29T11:30:00.000Z")));
    let (code, body) = cli(vec![
        "faults",
        "add",
        r#"{"match": {"route": "/v1/connection"}, "effect": {"type": "status", "status": 503}}"#,
    ])
    .await;
    assert_eq!((code, body["id"].clone()), (Some(0), json!("flt_1")));
    assert_eq!(e.get("key_org_a", "/v1/connection").await.status, 503);
    let (code, body) = cli(vec!["journal", "list", "--route", "/v1/connection", "--status", "503"]).await;
    assert_eq!((code, body["entries"].as_array().map(Vec::len)), (Some(0), Some(1)));
    let (code, _) = cli(vec!["journal", "verify", r#"{"match": {"route": "/v1/connection"}, "count": 1}"#]).await;
    assert_eq!(code, Some(0));
    let (code, body) = cli(vec!["journal", "verify", r#"{"match": {"route": "/v1/connection"}, "count": 2}"#]).await;
    assert_eq!((code, body["matched"].clone()), (Some(1), json!(1)), "a failed verify exits 1 and prints the 409");
    let (code, _) = cli(vec!["faults", "clear"]).await;
    assert_eq!(code, Some(0));
    let (code, body) = cli(vec!["snapshot", "save", "cli"]).await;
    assert_eq!((code, body["name"].clone()), (Some(0), json!("cli")));
    let (code, body) = cli(vec!["deterministic", "on", "9"]).await;
    assert_eq!((code, body), (Some(0), json!({"seed": 9})));
    let (code, body) = cli(vec!["status"]).await;
    assert_eq!(
        (code, body["deterministic_seed"].clone(), body["snapshots"].clone()),
        (Some(0), json!(9), json!(["cli"]))
    );
    let (code, body) = cli(vec!["reset", "--empty"]).await;
    assert_eq!((code, body["to"].clone()), (Some(0), json!("empty")));
    let (code, _) = cli(vec!["snapshot", "restore", "cli"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(e.get("key_org_a", "/v1/connection").await.status, 200);
    let (code, _) = cli(vec!["snapshot", "restore", "nope"]).await;
    assert_eq!(code, Some(1));
    let (code, _) = cli(vec!["faults", "add", "not json"]).await;
    assert_eq!(code, Some(1));
    e.srv.shutdown().await.unwrap();
});

both_backends!(customer_tokens_and_magic_links_lapse_on_the_sandbox_clock, |db| {
    let e = env(&db).await;
    let a = e
        .send(reqwest::Method::POST, "key_org_a", "/v1/customer/cus_1/token", &json!({"validity_in_seconds": 600}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let token = a.body["token"].as_str().unwrap().to_string();
    let link = a.body["magic_link_url"].as_str().unwrap().to_string();
    assert_eq!(e.get(&token, "/v1/viewer").await.status, 200);
    assert_eq!(e.http.get(&link).send().await.unwrap().status().as_u16(), 200);
    // Nine minutes on: still good. Ten: lapsed, for the API and the hosted page alike.
    e.sb(reqwest::Method::POST, "/clock/advance", Some(json!({"by": "9m"}))).await;
    assert_eq!(e.get(&token, "/v1/viewer").await.status, 200);
    e.sb(reqwest::Method::POST, "/clock/advance", Some(json!({"by": "1m"}))).await;
    let a = e.get(&token, "/v1/viewer").await;
    assert_eq!((a.status, a.body["message"].as_str()), (401, Some("Invalid token: ExpiredSignature")));
    assert_eq!(e.http.get(&link).send().await.unwrap().status().as_u16(), 401);
    // Back in time, it is good again: expiry is the clock's, not the machine's.
    e.sb(reqwest::Method::POST, "/clock/advance", Some(json!({"by": "-5m"}))).await;
    assert_eq!(e.get(&token, "/v1/viewer").await.status, 200);
    // The server's own keys survive a reset: the token still verifies, and the
    // X-BitGo-Signature key published before is the one published after.
    let key = || async {
        e.http.get(e.u("/admin/v1/network/signing-key")).bearer_auth(ADMIN).send().await.unwrap().text().await.unwrap()
    };
    let before = key().await;
    assert_eq!(e.sb(reqwest::Method::POST, "/reset", None).await.status, 200);
    assert_eq!(e.get(&token, "/v1/viewer").await.status, 200);
    assert_eq!(key().await, before);
    e.srv.shutdown().await.unwrap();
});

both_backends!(an_export_run_waiting_an_hour_finishes_when_the_clock_moves, |db| {
    use patchbay_http::export::exporter::ExporterConfig;
    let e = env_with(&db, |c| {
        c.export
            .exporters
            .insert("IFC".into(), ExporterConfig::Simulate { delay_ms: 3_600_000, result: "Success".into() });
    })
    .await;
    let a = e
        .send(reqwest::Method::POST, "bob-token", "/export/connections/exc-nightly/runs", &json!({"exportType": "IFC"}))
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let location = a.headers["location"].to_str().unwrap().to_string();
    let state = || async {
        let r = call(e.http.get(&location).bearer_auth("bob-token")).await;
        r.body["run"]["state"].as_str().unwrap_or_default().to_string()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(state().await, "Completed", "an hour's export is still running");
    e.sb(reqwest::Method::POST, "/clock/advance", Some(json!({"by": "61m"}))).await;
    let mut done = String::new();
    for _ in 0..100 {
        done = state().await;
        if done == "Completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done, "Completed");
    e.srv.shutdown().await.unwrap();
});
