//! The Integrations face (OpenInt v1) over real HTTP, on both backends, with a
//! real OAuth2 token endpoint and an API-key verification endpoint started
//! inside the tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use patchbay::Config;
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, Answer, call};

/// One call the provider received.
#[derive(Debug, Clone)]
struct TokenCall {
    form: HashMap<String, String>,
    authorization: Option<String>,
}

#[derive(Clone, Default)]
struct Provider {
    calls: Arc<Mutex<Vec<TokenCall>>>,
    webhooks: Arc<Mutex<Vec<(String, String, Value)>>>,
}

async fn token(State(p): State<Provider>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let n = {
        let mut calls = p.calls.lock().unwrap();
        calls.push(TokenCall { form: form.clone(), authorization });
        calls.len()
    };
    let rt = form.get("refresh_token").cloned().unwrap_or_default();
    match rt.as_str() {
        r if r.starts_with("rt-rotate") => {
            // A little latency, so concurrent callers really overlap.
            tokio::time::sleep(Duration::from_millis(100)).await;
            axum::Json(json!({"access_token": format!("at-{n}"), "refresh_token": format!("rt-rotate-{n}"),
                               "expires_in": 3600, "token_type": "bearer", "scope": "repo"}))
            .into_response()
        }
        "rt-keep" => axum::Json(json!({"access_token": format!("at-keep-{n}"), "expires_in": 3600})).into_response(),
        "rt-form" => ([("content-type", "application/x-www-form-urlencoded")], "access_token=at-form&expires_in=60")
            .into_response(),
        "rt-revoked" => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "Token has been revoked"})),
        )
            .into_response(),
        "rt-slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(json!({"access_token": "late"})).into_response()
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
    }
}

/// acme-apikey's verification: the key is the Basic password (upstream's `header_basic_password`).
async fn verify(headers: HeaderMap) -> StatusCode {
    use base64::Engine;
    let password = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()));
    match password.as_deref() {
        Some("good-key") => StatusCode::OK,
        Some("flaky-key") => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn webhook(State(p): State<Provider>, headers: HeaderMap, body: String) -> StatusCode {
    let sig = headers.get("x-patchbay-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    p.webhooks.lock().unwrap().push((sig, body.clone(), serde_json::from_str(&body).unwrap_or(Value::Null)));
    StatusCode::NO_CONTENT
}

async fn provider() -> (Provider, String) {
    let p = Provider::default();
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .route("/acme-apikey/authorize", axum::routing::get(verify))
        .route("/hooks", axum::routing::post(webhook))
        .with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (p, url)
}

fn creds(refresh: &str, expires_in_secs: i64) -> Value {
    let at = chrono::Utc::now() + chrono::Duration::seconds(expires_in_secs);
    json!({"oauth": {"credentials": {"access_token": "at-0", "refresh_token": refresh,
        "expires_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)}}})
}

const C_ROTATE: &str = "conn_github_01JROTATE0000000000000000A";
const C_SWARM: &str = "conn_github_01JSWARM00000000000000000B";
const C_KEEP: &str = "conn_github_01JKEEP000000000000000000C";
const C_REVOKED: &str = "conn_github_01JREVOKED0000000000000000D";
const C_500: &str = "conn_github_01JFIVEHUNDRED000000000000E";
const C_FRESH: &str = "conn_github_01JFRESH00000000000000000F";
const C_NOTION: &str = "conn_notion_01JNOTION0000000000000000G";
const C_GONE: &str = "conn_github_01JGONE000000000000000000H";
const C_KEY: &str = "conn_acme-apikey_01JKEY0000000000000000000J";
const C_FORM: &str = "conn_github_01JFORM000000000000000000K";
const C_SLOW: &str = "conn_github_01JSLOW000000000000000000L";
const C_B: &str = "conn_github_01JORGB000000000000000000M";

fn seed(url: &str) -> String {
    let conn = |id: &str, ccfg: &str, cus: &str, settings: Value| json!({"id": id, "connectorConfigId": ccfg, "customerId": cus, "displayName": id, "settings": settings});
    let mut gone = conn(C_GONE, "ccfg_github_01JA", "cus_1", creds("rt-rotate-gone", -60));
    gone["status"] = json!("disconnected");
    json!({"integrations": {
        "organizations": [
            {"id": "org_a", "name": "A", "apiKey": "key_org_a", "webhookUrl": format!("{url}/hooks")},
            {"id": "org_b", "name": "B", "apiKey": "key_org_b"}
        ],
        "customers": [
            {"orgId": "org_a", "id": "cus_1", "apiKey": "key_cus_1"},
            {"orgId": "org_a", "id": "cus_2", "apiKey": "key_cus_2"},
            {"orgId": "org_b", "id": "cus_1"}
        ],
        "connectorConfigs": [
            {"id": "ccfg_github_01JA", "orgId": "org_a", "connectorName": "github", "displayName": "GitHub",
             "config": {"oauth": {"client_id": "cid", "client_secret": "csecret", "scopes": ["repo"]}},
             "overrides": {"tokenUrl": format!("{url}/token")}},
            {"id": "ccfg_notion_01JA", "orgId": "org_a", "connectorName": "notion",
             "config": {"oauth": {"client_id": "ncid", "client_secret": "nsecret"}}, "overrides": {"tokenUrl": format!("{url}/token")}},
            {"id": "ccfg_acme-apikey_01JA", "orgId": "org_a", "connectorName": "acme-apikey", "overrides": {"baseUrl": url}},
            {"id": "ccfg_github_01JB", "orgId": "org_b", "connectorName": "github",
             "config": {"oauth": {"client_id": "b", "client_secret": "b"}}}
        ],
        "connections": [
            conn(C_ROTATE, "ccfg_github_01JA", "cus_1", creds("rt-rotate", -60)),
            conn(C_SWARM, "ccfg_github_01JA", "cus_1", creds("rt-rotate-swarm", -60)),
            conn(C_KEEP, "ccfg_github_01JA", "cus_1", creds("rt-keep", -60)),
            conn(C_REVOKED, "ccfg_github_01JA", "cus_2", creds("rt-revoked", -60)),
            conn(C_500, "ccfg_github_01JA", "cus_2", creds("rt-500", -60)),
            conn(C_FRESH, "ccfg_github_01JA", "cus_1", creds("rt-rotate-fresh", 86_400)),
            conn(C_NOTION, "ccfg_notion_01JA", "cus_1", creds("rt-keep", -60)),
            gone,
            conn(C_KEY, "ccfg_acme-apikey_01JA", "cus_2", json!({"api_key": "good-key"})),
            conn(C_FORM, "ccfg_github_01JA", "cus_1", creds("rt-form", -60)),
            conn(C_SLOW, "ccfg_github_01JA", "cus_1", creds("rt-slow", -60)),
            conn(C_B, "ccfg_github_01JB", "cus_1", creds("rt-keep", -60))
        ]
    }})
    .to_string()
}

struct Env {
    srv: patchbay::Running,
    http: reqwest::Client,
    provider: Provider,
    url: String,
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
    fn calls(&self) -> Vec<TokenCall> {
        self.provider.calls.lock().unwrap().clone()
    }
    fn calls_for(&self, rt: &str) -> usize {
        self.calls().iter().filter(|c| c.form.get("refresh_token").map(String::as_str) == Some(rt)).count()
    }
}

async fn env_with(db: &TestDb, f: impl FnOnce(&mut Config)) -> Env {
    let (provider, url) = provider().await;
    let mut c = common::config(db, Some(ADMIN));
    c.outbound.timeout_ms = 1_000;
    c.integrations.background_interval_secs = 3600;
    f(&mut c);
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let r = call(http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed(&url))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    Env { srv, http, provider, url }
}

async fn env(db: &TestDb) -> Env {
    env_with(db, |_| {}).await
}

fn err(code: &str, message: &str) -> Value {
    json!({"code": code, "message": message})
}

both_backends!(get_connection_seed_003_and_auth, |db| {
    let e = env(&db).await;
    let a = e.get("key_org_a", &format!("/v1/connection/{C_FRESH}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let mut keys: Vec<&str> = a.body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "connector_config_id",
            "connector_name",
            "created_at",
            "customer_id",
            "disabled",
            "display_name",
            "id",
            "integration_id",
            "metadata",
            "status",
            "status_message",
            "updated_at"
        ]
    );
    assert_eq!(a.body["connector_name"], "github");
    assert_eq!(a.body["customer_id"], "cus_1");
    assert_eq!(a.body["connector_config_id"], "ccfg_github_01JA");
    assert_eq!((a.body["integration_id"].clone(), a.body["disabled"].clone()), (Value::Null, json!(false)));
    assert_eq!(a.body["status"], "healthy");
    assert!(a.body["created_at"].as_str().unwrap().ends_with('Z'));
    // Secrets only with include_secrets (strict booleans; old enum values accepted).
    for (q, has) in [("true", true), ("1", true), ("all", true), ("false", false), ("0", false), ("none", false)] {
        let a = e.get("key_org_a", &format!("/v1/connection/{C_FRESH}?include_secrets={q}")).await;
        assert_eq!(a.body.get("settings").is_some(), has, "{q}");
    }
    let a = e.get("key_org_a", &format!("/v1/connection/{C_FRESH}?include_secrets=yes")).await;
    assert_eq!(
        (a.status, a.body["code"].as_str(), a.body["message"].as_str()),
        (400, Some("BAD_REQUEST"), Some("Input validation failed"))
    );
    assert_eq!(a.body["issues"][0]["path"], json!(["include_secrets"]));
    let a = e.get("key_org_a", &format!("/v1/connection/{C_FRESH}?expand=connector")).await;
    assert_eq!(a.body["connector"]["name"], "github");
    assert!(a.body["connector"]["schemas"]["connection_settings"].is_object());
    assert_eq!(e.get("key_org_a", &format!("/v1/connection/{C_FRESH}?expand=integration")).await.status, 400);
    // Auth.
    let a = call(e.http.get(e.u(&format!("/v1/connection/{C_FRESH}")))).await;
    assert_eq!((a.status, a.body), (401, err("UNAUTHORIZED", "Authentication required")));
    let a = call(e.http.get(e.u(&format!("/v1/connection/{C_FRESH}"))).header("authorization", "Token x")).await;
    assert_eq!(a.status, 401);
    let a = e.get("key_nope", &format!("/v1/connection/{C_FRESH}")).await;
    assert_eq!((a.status, a.body), (401, err("UNAUTHORIZED", "Invalid API key")));
    let a = e.get("not.a.jwt", &format!("/v1/connection/{C_FRESH}")).await;
    assert_eq!((a.status, a.body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    // Other organisations' and other customers' connections are 404.
    let nf = err("NOT_FOUND", "Connection not found");
    assert_eq!(e.get("key_org_b", &format!("/v1/connection/{C_FRESH}")).await.body, nf);
    assert_eq!(e.get("key_org_a", &format!("/v1/connection/{C_B}")).await.status, 404);
    assert_eq!(e.get("key_cus_2", &format!("/v1/connection/{C_FRESH}")).await.body, nf);
    let a = e.get("key_cus_1", &format!("/v1/connection/{C_FRESH}?include_secrets=true")).await;
    assert_eq!(a.status, 200, "a customer reads its own secrets");
    assert!(a.body["settings"]["oauth"]["credentials"]["access_token"].is_string());
    let a = e.get("key_org_a", "/v1/connection/nope").await;
    assert_eq!((a.status, a.body["issues"][0]["path"].clone()), (400, json!(["id"])));
    // Viewer.
    assert_eq!(e.get("key_org_a", "/v1/viewer").await.body, json!({"role": "org", "orgId": "org_a"}));
    assert_eq!(
        e.get("key_cus_1", "/v1/viewer").await.body,
        json!({"role": "customer", "orgId": "org_a", "customerId": "cus_1"})
    );
    assert_eq!(call(e.http.get(e.u("/v1/viewer"))).await.body, json!({"role": "anon"}));
    e.srv.shutdown().await.unwrap();
});

both_backends!(oauth2_refresh_rotation_keep_and_failures, |db| {
    let e = env(&db).await;
    let secret = |a: &Answer| a.body["settings"]["oauth"]["credentials"].clone();
    // Rotation: the old refresh token is spent, the new one stored; expires_at from expires_in.
    let a = e.get("key_org_a", &format!("/v1/connection/{C_ROTATE}?include_secrets=true")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let c = secret(&a);
    assert!(c["access_token"].as_str().unwrap().starts_with("at-"));
    assert!(c["refresh_token"].as_str().unwrap().starts_with("rt-rotate-"));
    assert_eq!(
        (c["expires_in"].as_i64(), c["scope"].as_str(), c["client_id"].as_str()),
        (Some(3600), Some("repo"), Some("cid"))
    );
    let exp = chrono::DateTime::parse_from_rfc3339(c["expires_at"].as_str().unwrap()).unwrap();
    let ahead = exp.timestamp() - chrono::Utc::now().timestamp();
    assert!((3500..=3600).contains(&ahead), "{ahead}");
    assert_eq!(a.body["settings"]["access_token"], c["access_token"]);
    assert_eq!(a.body["status"], "healthy");
    let call0 = e.calls().into_iter().find(|c| c.form["refresh_token"] == "rt-rotate").unwrap();
    assert_eq!(call0.form["grant_type"], "refresh_token");
    assert_eq!((call0.form["client_id"].as_str(), call0.form["client_secret"].as_str()), ("cid", "csecret"));
    assert!(call0.authorization.is_none());
    // Fresh now: auto does not call again; none never calls; force always does.
    let n = e.calls().len();
    assert_eq!(secret(&e.get("key_org_a", &format!("/v1/connection/{C_ROTATE}?include_secrets=true")).await), c);
    assert_eq!(e.calls().len(), n);
    e.get("key_org_a", &format!("/v1/connection/{C_KEEP}?include_secrets=true&refresh_policy=none")).await;
    assert_eq!(e.calls().len(), n);
    // Without include_secrets nothing is refreshed (as upstream).
    e.get("key_org_a", &format!("/v1/connection/{C_KEEP}")).await;
    assert_eq!(e.calls().len(), n);
    let forced =
        e.get("key_org_a", &format!("/v1/connection/{C_ROTATE}?include_secrets=true&refresh_policy=force")).await;
    assert_eq!(e.calls().len(), n + 1);
    assert_ne!(secret(&forced)["access_token"], c["access_token"]);
    // No rotation: the old refresh token is kept.
    let a = e.get("key_org_a", &format!("/v1/connection/{C_KEEP}?include_secrets=true")).await;
    assert_eq!(secret(&a)["refresh_token"], "rt-keep");
    assert!(secret(&a)["access_token"].as_str().unwrap().starts_with("at-keep-"));
    // A form-encoded token response is understood.
    let a = e.get("key_org_a", &format!("/v1/connection/{C_FORM}?include_secrets=true")).await;
    assert_eq!((secret(&a)["access_token"].as_str(), secret(&a)["expires_in"].as_i64()), (Some("at-form"), Some(60)));
    // HTTP Basic client authentication where the connector says so (Notion).
    e.get("key_org_a", &format!("/v1/connection/{C_NOTION}?include_secrets=true")).await;
    let notion = e
        .calls()
        .into_iter()
        .rev()
        .find(|c| c.form["refresh_token"] == "rt-keep" && c.authorization.is_some())
        .unwrap();
    assert_eq!(notion.authorization.as_deref(), Some("Basic bmNpZDpuc2VjcmV0"));
    assert!(!notion.form.contains_key("client_secret"));
    // invalid_grant → disconnected, and never refreshed again.
    let a = e.get("key_org_a", &format!("/v1/connection/{C_REVOKED}?include_secrets=true")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "disconnected");
    assert!(a.body["status_message"].as_str().unwrap().contains("invalid_grant"), "{}", a.body);
    let before = e.calls_for("rt-revoked");
    let a = e.get("key_org_a", &format!("/v1/connection/{C_REVOKED}?include_secrets=true&refresh_policy=force")).await;
    assert_eq!((a.body["status"].as_str(), e.calls_for("rt-revoked")), (Some("disconnected"), before));
    assert_eq!(e.calls_for("rt-rotate-gone"), 0);
    let gone = e.get("key_org_a", &format!("/v1/connection/{C_GONE}?include_secrets=true&refresh_policy=force")).await;
    assert_eq!((gone.body["status"].as_str(), e.calls_for("rt-rotate-gone")), (Some("disconnected"), 0));
    // 5xx → error with a clear message, HTTP 200, settings unchanged.
    let a = e.get("key_org_a", &format!("/v1/connection/{C_500}?include_secrets=true")).await;
    assert_eq!((a.status, a.body["status"].as_str()), (200, Some("error")));
    assert_eq!(a.body["status_message"], "Token refresh failed with error HTTP 500");
    assert_eq!(secret(&a)["refresh_token"], "rt-500");
    // A slow provider: timeout → error.
    let a = e.get("key_org_a", &format!("/v1/connection/{C_SLOW}?include_secrets=true")).await;
    assert_eq!(a.body["status"], "error");
    assert!(a.body["status_message"].as_str().unwrap().contains("timed out"), "{}", a.body);
    e.srv.shutdown().await.unwrap();
});

both_backends!(two_hundred_concurrent_reads_cause_one_refresh, |db| {
    let e = env(&db).await;
    let url = e.u(&format!("/v1/connection/{C_SWARM}?include_secrets=true"));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let http = e.http.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let r = http.get(url).bearer_auth("key_org_a").send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["settings"]["oauth"]["credentials"]["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert_eq!(e.calls_for("rt-rotate-swarm"), 1, "exactly one call to the token endpoint");
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "everyone got the refreshed token: {tokens:?}");
    assert_ne!(tokens[0], "at-0");
    e.srv.shutdown().await.unwrap();
});

both_backends!(list_connections_envelope_filters_and_order, |db| {
    let e = env(&db).await;
    let a = e.get("key_org_a", "/v1/connection").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        (a.body["total"].as_i64(), a.body["limit"].as_i64(), a.body["offset"].as_i64()),
        (Some(11), Some(50), Some(0))
    );
    assert_eq!(a.body["has_next_page"], false);
    assert!(a.body["items"][0].get("settings").is_none());
    let a = e.get("key_org_a", "/v1/connection?limit=4&offset=8").await;
    assert_eq!(
        (a.body["items"].as_array().unwrap().len(), a.body["total"].as_i64(), a.body["has_next_page"].as_bool()),
        (3, Some(11), Some(false))
    );
    let a = e.get("key_org_a", "/v1/connection?limit=4&offset=4").await;
    assert_eq!(a.body["has_next_page"], true);
    let a = e.get("key_org_a", "/v1/connection?limit=0").await;
    assert_eq!((a.body["items"].as_array().unwrap().len(), a.body["total"].as_i64()), (0, Some(11)));
    let a = e.get("key_org_a", "/v1/connection?offset=100").await;
    assert_eq!(
        (a.body["items"].as_array().unwrap().len(), a.body["total"].as_i64()),
        (0, Some(11)),
        "a correct total past the end"
    );
    for q in [
        "limit=3001",
        "limit=-1",
        "offset=x",
        "connector_names=nosuch",
        "connector_config_id=x",
        "refresh_policy=sometimes",
    ] {
        assert_eq!(e.get("key_org_a", &format!("/v1/connection?{q}")).await.status, 400, "{q}");
    }
    let names = |a: &Answer| -> Vec<String> {
        a.body["items"].as_array().unwrap().iter().map(|i| i["connector_name"].as_str().unwrap().to_string()).collect()
    };
    let a = e.get("key_org_a", "/v1/connection?connector_names=notion,acme-apikey").await;
    let mut n = names(&a);
    n.sort();
    assert_eq!(n, ["acme-apikey", "notion"]);
    let a = e.get("key_org_a", "/v1/connection?connector_names=notion&connector_names=acme-apikey").await;
    assert_eq!(a.body["total"], 2);
    assert_eq!(e.get("key_org_a", "/v1/connection?customer_id=cus_2").await.body["total"], 3);
    assert_eq!(e.get("key_org_a", "/v1/connection?connector_config_id=ccfg_notion_01JA").await.body["total"], 1);
    let a = e.get("key_org_a", "/v1/connection?search_query=JREVOKED").await;
    assert_eq!((a.body["total"].as_i64(), a.body["items"][0]["id"].as_str()), (Some(1), Some(C_REVOKED)));
    assert_eq!(e.get("key_org_a", "/v1/connection?search_query=%25").await.body["total"], 0, "wildcards are literal");
    // On SQLite a search of three characters or more goes through the trigram index first:
    // FTS5 query syntax in it is literal text, as for LIKE, and never an error.
    assert_eq!(e.get("key_org_a", "/v1/connection?search_query=jrevoked").await.body["total"], 1);
    for q in ["%22", "a%22b%22c", "NOT%20AND%20OR", "*jre*", "(jrevoked)", "jrevoked%22"] {
        let a = e.get("key_org_a", &format!("/v1/connection?search_query={q}")).await;
        assert_eq!((a.status, a.body["total"].as_i64()), (200, Some(0)), "search_query={q}: {}", a.body);
    }
    // A NUL can be in no stored value: refused, not matched against everything (or a 500).
    let a = e.get("key_org_a", "/v1/connection?search_query=%00abc").await;
    assert_eq!(
        (a.status, &a.body["message"], &a.body["issues"][0]["path"]),
        (400, &json!("Input validation failed"), &json!(["search_query"])),
        "{}",
        a.body
    );
    // A customer sees only its own.
    assert_eq!(e.get("key_cus_2", "/v1/connection").await.body["total"], 3);
    assert_eq!(e.get("key_cus_2", "/v1/connection?customer_id=cus_1").await.body["total"], 3);
    // Order: updated_at desc, then id. A refresh moves a connection to the front.
    e.get("key_org_a", &format!("/v1/connection/{C_KEEP}?include_secrets=true")).await;
    let a = e.get("key_org_a", "/v1/connection").await;
    assert_eq!(a.body["items"][0]["id"], C_KEEP);
    let ids: Vec<&str> = a.body["items"].as_array().unwrap()[1..].iter().map(|i| i["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "same updated_at: by id");
    // List with include_secrets and refresh_policy=auto refreshes the page.
    let before = e.calls_for("rt-rotate");
    let a = e
        .get(
            "key_org_a",
            &format!("/v1/connection?include_secrets=true&refresh_policy=auto&search_query={}", &C_ROTATE[5..]),
        )
        .await;
    assert_eq!(a.body["items"][0]["status"], "healthy");
    assert_eq!(e.calls_for("rt-rotate"), before + 1);
    e.srv.shutdown().await.unwrap();
});

both_backends!(create_check_delete_and_events, |db| {
    let e = env(&db).await;
    let body = json!({"connector_config_id": "ccfg_github_01JA", "customer_id": "cus_7", "metadata": {"team": "x"},
        "data": {"connector_name": "github", "settings": {"oauth": {"credentials": {"access_token": "imported", "expires_in": 120}}}}});
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("conn_github_") && id.len() == "conn_github_".len() + 26, "{id}");
    assert_eq!(
        (a.body["status"].as_str(), a.body["status_message"].as_str()),
        (Some("unknown"), Some("Connection was imported without checking its status"))
    );
    assert!(a.body["settings"]["oauth"]["credentials"]["expires_at"].is_string(), "expires_at filled from expires_in");
    assert_eq!(a.body["metadata"], json!({"team": "x"}));
    // Validation against the connector's schema, mismatch, unknown config, customers.
    let mut bad = body.clone();
    bad["data"]["settings"] = json!({"oauth": {"credentials": {}}});
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &bad).await;
    assert_eq!((a.status, a.body["message"].as_str()), (400, Some("Input validation failed")));
    assert_eq!(a.body["issues"][0]["path"], json!(["data", "settings", "oauth", "credentials"]));
    // A NUL in a stored text value: refused on both backends (PostgreSQL text cannot hold one).
    let mut bad = body.clone();
    bad["customer_id"] = json!("cus\u{0}7");
    bad["display_name"] = json!("\u{0}");
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &bad).await;
    assert_eq!(
        (a.status, a.body["message"].as_str(), a.body["issues"].clone()),
        (
            400,
            Some("Input validation failed"),
            json!([{"code": "custom", "message": "customer_id must not contain a NUL character", "path": ["customer_id"]},
                   {"code": "custom", "message": "display_name must not contain a NUL character", "path": ["display_name"]}])
        )
    );
    let mut bad = body.clone();
    bad["data"]["connector_name"] = json!("notion");
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &bad).await;
    assert_eq!((a.status, a.body), (400, err("BAD_REQUEST", "Connector name mismatch: expected github, got notion")));
    let mut bad = body.clone();
    bad["connector_config_id"] = json!("ccfg_github_01JB");
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &bad).await;
    assert_eq!((a.status, a.body), (404, err("NOT_FOUND", "Connector config with ID \"ccfg_github_01JB\" not found")));
    let a = e.send(reqwest::Method::POST, "key_cus_1", "/v1/connection", &body).await;
    assert_eq!((a.status, a.body), (403, err("FORBIDDEN", "Org admin only")));
    let a = call(
        e.http
            .post(e.u("/v1/connection"))
            .bearer_auth("key_org_a")
            .header("content-type", "application/json")
            .body("{oops"),
    )
    .await;
    assert_eq!((a.status, a.body["code"].as_str()), (400, Some("PARSE_ERROR")));
    // API-key connections are checked against their verification endpoint.
    let key = json!({"connector_config_id": "ccfg_acme-apikey_01JA", "customer_id": "cus_7", "check_connection": true,
                     "data": {"connector_name": "acme-apikey", "settings": {"api_key": "bad-key"}}});
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connection", &key).await;
    assert_eq!(
        (a.body["status"].as_str(), a.body["status_message"].as_str()),
        (Some("disconnected"), Some("API key verification failed with HTTP 401"))
    );
    let a = e.send(reqwest::Method::POST, "key_org_a", &format!("/v1/connection/{C_KEY}/check"), &json!({})).await;
    assert_eq!(a.body, json!({"id": C_KEY, "status": "healthy", "status_message": null}));
    let a = e.send(reqwest::Method::POST, "key_org_a", &format!("/v1/connection/{C_500}/check"), &json!({})).await;
    assert_eq!(a.body["status"], "error");
    // Delete: a customer may delete its own only.
    let a = e.send(reqwest::Method::DELETE, "key_cus_2", &format!("/v1/connection/{C_KEEP}"), &json!({})).await;
    assert_eq!(a.status, 404);
    let a = e.send(reqwest::Method::DELETE, "key_cus_1", &format!("/v1/connection/{C_KEEP}"), &json!({})).await;
    assert_eq!(a.body, json!({"id": C_KEEP}));
    assert_eq!(e.get("key_org_a", &format!("/v1/connection/{C_KEEP}")).await.status, 404);
    // Events.
    let ev = e.get("key_org_a", "/v1/event?limit=100").await;
    let names: Vec<&str> = ev.body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "connect.connection-deleted", "newest first: {names:?}");
    assert!(names.contains(&"connect.connection-connected") && names.contains(&"connect.connection-checked"));
    let deleted = &ev.body["items"][0];
    assert_eq!(deleted["data"], json!({"connection_id": C_KEEP, "customer_id": "cus_1"}));
    assert_eq!((deleted["org_id"].as_str(), deleted["customer_id"].as_str()), (Some("org_a"), Some("cus_1")));
    assert!(deleted["id"].as_str().unwrap().starts_with("evt_"));
    let mine = e.get("key_cus_1", "/v1/event").await;
    assert!(mine.body["items"].as_array().unwrap().iter().all(|i| i["customer_id"] == "cus_1"));
    assert_eq!(e.get("key_org_a", "/v1/event?since=2999-01-01T00:00:00Z").await.body["total"], 0);
    // Webhooks: every event, signed.
    let secret: Value = e
        .http
        .get(e.u("/admin/v1/integrations/organizations/org_a/webhook-secret"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = secret["secret"].as_str().unwrap().to_string();
    let mut delivered = Vec::new();
    for _ in 0..200 {
        delivered = e.provider.webhooks.lock().unwrap().clone();
        if delivered.iter().any(|(_, _, b)| b["name"] == "connect.connection-deleted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (sig, raw, body) =
        delivered.iter().find(|(_, _, b)| b["name"] == "connect.connection-deleted").expect("delivered").clone();
    let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
    assert_eq!(sig, patchbay_http::integrations::webhook::signature(secret.as_bytes(), t, raw.as_bytes()));
    // The receiver's recipe in docs/operations.md, run as written, accepts it and refuses a forgery.
    assert_eq!(receiver_recipe(&secret, &sig, raw.as_bytes()), "valid");
    assert_eq!(receiver_recipe(&secret, &sig, format!("{raw} ").as_bytes()), "invalid");
    assert_eq!(body["data"]["connection_id"], C_KEEP);
    e.srv.shutdown().await.unwrap();
});

both_backends!(connectors_and_connector_configs, |db| {
    let e = env(&db).await;
    let a = call(e.http.get(e.u("/v1/connector?limit=5&offset=2"))).await;
    assert_eq!(a.status, 200);
    assert!(a.body["total"].as_i64().unwrap() >= 30);
    assert_eq!(a.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(a.body["has_next_page"], true);
    assert!(a.body["items"][0].get("schemas").is_none());
    let a = call(e.http.get(e.u("/v1/connector?expand=schemas&limit=100"))).await;
    let gh = a.body["items"].as_array().unwrap().iter().find(|c| c["name"] == "github").unwrap().clone();
    assert_eq!((gh["auth_type"].as_str(), gh["stage"].as_str()), (Some("OAUTH2"), Some("ga")));
    assert!(gh["schemas"]["connector_config"]["properties"]["oauth"].is_object());
    // Configs: org sees config; customer sees limited columns.
    let a = e.get("key_org_a", "/v1/connector-config?expand=connection_count").await;
    assert_eq!(a.body["total"], 3);
    let gh = a.body["items"].as_array().unwrap().iter().find(|c| c["id"] == "ccfg_github_01JA").unwrap().clone();
    assert_eq!(gh["config"]["oauth"]["client_id"], "cid");
    assert_eq!(gh["connection_count"], 9);
    // A customer gets what the spec requires, without the organisation's secrets.
    let a = e.get("key_cus_1", "/v1/connector-config/ccfg_github_01JA").await;
    let stamp = a.body["created_at"].clone();
    assert!(stamp.as_str().is_some_and(|t| t.ends_with('Z')), "{}", a.body);
    assert_eq!(
        a.body,
        json!({"id": "ccfg_github_01JA", "connector_name": "github", "org_id": "org_a", "display_name": "GitHub",
               "disabled": false, "metadata": {}, "created_at": stamp, "updated_at": stamp,
               "config": {"oauth": {"client_id": "cid", "scopes": ["repo"]}}})
    );
    let a = e.get("key_org_a", "/v1/connector-config/ccfg_github_01JB").await;
    assert_eq!((a.status, a.body), (404, err("NOT_FOUND", "Connector config with ID \"ccfg_github_01JB\" not found")));
    // Create, update, delete with schema validation.
    let a = e
        .send(
            reqwest::Method::POST,
            "key_org_a",
            "/v1/connector-config",
            &json!({"connector_name": "slack", "config": {"oauth": {"client_id": "s", "scopes": "chat:write"}}}),
        )
        .await;
    assert_eq!((a.status, a.body["issues"][0]["path"].clone()), (400, json!(["config", "oauth", "scopes"])));
    let a =
        e.send(reqwest::Method::POST, "key_org_a", "/v1/connector-config", &json!({"connector_name": "nosuch"})).await;
    assert_eq!(a.status, 400);
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/connector-config",
        &json!({"connector_name": "slack", "display_name": "Slack", "config": {"oauth": {"client_id": "s", "client_secret": "t"}}})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ccfg_slack_"));
    let a = e
        .send(
            reqwest::Method::PUT,
            "key_org_a",
            &format!("/v1/connector-config/{id}"),
            &json!({"disabled": true, "display_name": "Slack 2"}),
        )
        .await;
    assert_eq!(
        (
            a.body["disabled"].as_bool(),
            a.body["display_name"].as_str(),
            a.body["config"]["oauth"]["client_secret"].as_str()
        ),
        (Some(true), Some("Slack 2"), Some("t"))
    );
    let a = e
        .send(
            reqwest::Method::PUT,
            "key_org_a",
            &format!("/v1/connector-config/{id}"),
            &json!({"config": {"oauth": 5}}),
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        e.send(reqwest::Method::PUT, "key_cus_1", &format!("/v1/connector-config/{id}"), &json!({})).await.status,
        403
    );
    let a = e.send(reqwest::Method::DELETE, "key_org_a", "/v1/connector-config/ccfg_github_01JA", &json!({})).await;
    assert_eq!((a.status, a.body["code"].as_str()), (409, Some("CONFLICT")));
    let a = e.send(reqwest::Method::DELETE, "key_org_a", &format!("/v1/connector-config/{id}"), &json!({})).await;
    assert_eq!(a.body, json!({"id": id}));
    assert_eq!(e.get("key_org_a", &format!("/v1/connector-config/{id}")).await.status, 404);
    e.srv.shutdown().await.unwrap();
});

both_backends!(customers_and_customer_tokens, |db| {
    let e = env(&db).await;
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/customer/cus_1/token", &json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["api_key"], "key_cus_1", "the seeded key comes back");
    let token = a.body["token"].as_str().unwrap().to_string();
    assert_eq!(token.matches('.').count(), 2);
    assert!(a.body["magic_link_url"].as_str().unwrap().contains(&format!("/connect?token={token}")));
    assert_eq!(
        e.get(&token, "/v1/viewer").await.body,
        json!({"role": "customer", "orgId": "org_a", "customerId": "cus_1"})
    );
    assert_eq!(e.get(&token, "/v1/connection").await.body["total"], 8);
    let a = e
        .send(
            reqwest::Method::POST,
            "key_org_a",
            "/v1/customer/cus_new/token",
            &json!({"validity_in_seconds": 1, "connect_options": {"connector_names": ["github"], "view": "add"}}),
        )
        .await;
    let key = a.body["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("key_cus_"));
    assert!(a.body["magic_link_url"].as_str().unwrap().ends_with("&connector_names=github&view=add"));
    assert_eq!(e.get(&key, "/v1/viewer").await.body["customerId"], "cus_new");
    let short = a.body["token"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let a = e.get(&short, "/v1/viewer").await;
    assert_eq!((a.status, a.body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let mut tampered = token.clone();
    tampered.pop();
    assert_eq!(e.get(&tampered, "/v1/viewer").await.status, 401);
    assert_eq!(e.send(reqwest::Method::POST, "key_cus_1", "/v1/customer/cus_1/token", &json!({})).await.status, 403);
    assert_eq!(
        e.send(reqwest::Method::POST, "key_org_a", "/v1/customer/cus_1/token", &json!({"validity_in_seconds": 0}))
            .await
            .status,
        400
    );
    // PUT /customer and the customer list (derived from connections).
    let a = e
        .send(reqwest::Method::PUT, "key_org_a", "/v1/customer", &json!({"id": "cus_2", "metadata": {"tier": "gold"}}))
        .await;
    assert_eq!(
        (a.body["id"].as_str(), a.body["api_key"].as_str(), a.body["metadata"].clone()),
        (Some("cus_2"), Some("key_cus_2"), json!({"tier": "gold"}))
    );
    let a = e
        .send(reqwest::Method::PUT, "key_org_a", "/v1/customer", &json!({"id": "cus_2", "metadata": {"region": "eu"}}))
        .await;
    assert_eq!(a.body["metadata"], json!({"tier": "gold", "region": "eu"}), "metadata merges shallowly");
    let a = e.send(reqwest::Method::PUT, "key_org_a", "/v1/customer", &json!({})).await;
    assert!(a.body["id"].as_str().unwrap().starts_with("cus_"));
    // Customer ids are stored as text: no NUL (PostgreSQL cannot hold one), on both backends.
    let a = e.send(reqwest::Method::PUT, "key_org_a", "/v1/customer", &json!({"id": "cus\u{0}"})).await;
    assert_eq!(
        (a.status, a.body["issues"][0]["message"].as_str()),
        (400, Some("id must be 1-256 characters without '/' or NUL"))
    );
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/customer/cus%00/token", &json!({})).await;
    assert_eq!(
        (a.status, a.body["issues"][0]["message"].as_str()),
        (400, Some("customer_id must be 1-256 characters without '/' or NUL"))
    );
    let a = e.get("key_org_a", "/v1/customer").await;
    assert_eq!(a.body["total"], 2);
    assert_eq!(a.body["items"][0]["id"], "cus_1");
    assert_eq!(a.body["items"][0]["connection_count"], 8);
    assert_eq!(e.get("key_cus_1", "/v1/customer").await.status, 403);
    e.srv.shutdown().await.unwrap();
});

both_backends!(background_refresher_renews_tokens_nearing_expiry, |db| {
    let e = env_with(&db, |c| {
        c.integrations.background_interval_secs = 1;
        c.integrations.background_window_secs = 600;
    })
    .await;
    for _ in 0..200 {
        if e.calls_for("rt-rotate-swarm") >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(e.calls_for("rt-rotate-swarm"), 1, "renewed without any request");
    let a = e.get("key_org_a", &format!("/v1/connection/{C_SWARM}?include_secrets=true&refresh_policy=none")).await;
    assert_eq!(a.body["status"], "healthy");
    // The fresh one (a day left) and the disconnected one are left alone.
    assert_eq!((e.calls_for("rt-rotate-fresh"), e.calls_for("rt-rotate-gone")), (0, 0));
    let _ = &e.url;
    e.srv.shutdown().await.unwrap();
});

both_backends!(schemathesis_findings_stay_fixed, |db| {
    let e = env(&db).await;
    // An absent credential is 401 (not upstream's 403).
    let a = call(e.http.get(e.u("/v1/event"))).await;
    assert_eq!((a.status, a.body), (401, err("UNAUTHORIZED", "Authentication required")));
    // A `null` body is an absent body.
    let a = call(
        e.http
            .put(e.u("/v1/customer"))
            .bearer_auth("key_org_a")
            .header("content-type", "application/json")
            .body("null"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(
        e.http
            .post(e.u("/v1/customer/cus_1/token"))
            .bearer_auth("key_org_a")
            .header("content-type", "application/json")
            .body("null"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // JSON integers written with a fraction of zero are integers.
    let a = e
        .send(reqwest::Method::POST, "key_org_a", "/v1/customer/cus_1/token", &json!({"validity_in_seconds": 3600.0}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = e
        .send(reqwest::Method::POST, "key_org_a", "/v1/customer/cus_1/token", &json!({"validity_in_seconds": 3600.5}))
        .await;
    assert_eq!(a.status, 400);
    // `config` is optional and may be null (OpenInt's spec): an empty config is stored.
    let a = e
        .send(
            reqwest::Method::POST,
            "key_org_a",
            "/v1/connector-config",
            &json!({"connector_name": "stripe", "config": null}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["config"].clone(), a.body["connector_name"].clone()),
        (200, json!({}), json!("stripe"))
    );
    // When given, it is checked against the connector's schema.
    let a = e
        .send(
            reqwest::Method::POST,
            "key_org_a",
            "/v1/connector-config",
            &json!({"connector_name": "github", "config": {"oauth": {"client_id": 5}}}),
        )
        .await;
    assert_eq!((a.status, a.body["issues"][0]["path"].clone()), (400, json!(["config", "oauth", "client_id"])));
    // Unknown connector names are rejected on config lists too.
    let a = e.get("key_org_a", "/v1/connector-config?connector_names=github,nosuch").await;
    assert_eq!(a.status, 400);
    // The bare prefix is not a connection id.
    let a = e.get("key_org_a", "/v1/connection/conn_").await;
    assert_eq!((a.status, a.body["issues"][0]["path"].clone()), (400, json!(["id"])));
    e.srv.shutdown().await.unwrap();
});

/// Runs the Python receiver recipe of docs/operations.md (the code block under
/// "Verifying webhooks", unchanged) on a delivery; prints "valid" or "invalid".
fn receiver_recipe(secret: &str, header: &str, body: &[u8]) -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md")).unwrap();
    let section = doc.split("### Verifying webhooks").nth(1).expect("the section");
    let code = section.split("```python\n").nth(1).and_then(|c| c.split("```").next()).expect("the recipe");
    let program = format!(
        "{code}\nimport os, sys\nbody = sys.stdin.buffer.read()\nprint('valid' if verify(os.environ['SECRET'], os.environ['SIG'], body) else 'invalid')\n"
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .env("SECRET", secret)
        .env("SIG", header)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

both_backends!(health_status_template_webhook_events_and_magic_links, |db| {
    let e = env(&db).await;
    // Health, without credentials; its echo returns the body.
    let a = call(e.http.get(format!("http://{}/v1/health", e.srv.addr))).await;
    assert_eq!((a.status, a.body.clone()), (200, json!({"ok": true})));
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/health", &json!({"ping": [1, "two"]})).await;
    assert_eq!((a.status, a.body.clone()), (200, json!({"ping": [1, "two"]})));
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/health", &json!([1])).await;
    assert_eq!(a.status, 400, "{}", a.body);
    let a = call(e.http.post(format!("http://{}/v1/health", e.srv.addr)).bearer_auth("key_org_a")).await;
    assert_eq!(a.status, 400, "the body is required: {}", a.body);

    // Connector status: every catalogue connector, with the organisation's connections.
    let a = e.get("key_org_a", "/v1/connector-status").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let list = a.body["list"].as_array().unwrap();
    assert_eq!(a.body["numTotalConnectors"].as_i64(), Some(list.len() as i64));
    let github = list.iter().find(|i| i["name"] == "github").unwrap();
    assert_eq!(
        (github["hasConnectionForOrg"].clone(), github["hasDefaultCredentials"].clone()),
        (json!(true), json!(true))
    );
    let zendesk_like = list.iter().find(|i| i["hasConnectionForOrg"] == false).unwrap();
    assert_eq!(zendesk_like["complete"], false);
    assert!(a.body["numWithConnectionForOrg"].as_i64().unwrap() >= 1);
    assert_eq!(e.get("nope", "/v1/connector-status").await.status, 401);

    // The AI message template for a customer.
    let a = e.get("key_org_a", "/v1/ai/message_template?customer_id=cus_1&use_environment_variables=true").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["language"], "javascript");
    let t = a.body["template"].as_str().unwrap();
    assert!(
        t.contains("process.env.OPENINT_API_KEY") && t.contains("\"cus_1\"") && t.contains("include_secrets=true"),
        "{t}"
    );
    assert_eq!(e.get("key_org_a", "/v1/ai/message_template?customer_id=cus_nobody").await.status, 404);
    assert_eq!(e.get("key_org_a", "/v1/ai/message_template?customer_id=cus_1&language=python").await.status, 400);
    assert_eq!(e.get("key_org_a", "/v1/ai/message_template").await.status, 400);

    // A connector's webhook is recorded as an event (credentials left out), found by id.
    let a = call(
        e.http
            .post(format!("http://{}/v1/webhook/github?delivery=7", e.srv.addr))
            .bearer_auth("key_org_a")
            .header("x-github-event", "push")
            .json(&json!({"ref": "refs/heads/main"})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "ok");
    let id = a.body["info"]["event_id"].as_str().unwrap().to_string();
    let ev = e.get("key_org_a", &format!("/v1/event/{id}")).await;
    assert_eq!(ev.status, 200, "{}", ev.body);
    assert_eq!(ev.body["name"], "webhook.received");
    assert_eq!(ev.body["data"]["body"], json!({"ref": "refs/heads/main"}));
    assert_eq!(ev.body["data"]["query"], json!({"delivery": "7"}));
    assert_eq!(ev.body["data"]["headers"]["x-github-event"], "push");
    assert!(ev.body["data"]["headers"].get("authorization").is_none());
    assert_eq!(e.get("key_org_b", &format!("/v1/event/{id}")).await.status, 404, "another organisation's");
    assert_eq!(e.get("key_cus_1", &format!("/v1/event/{id}")).await.status, 404, "not the customer's");
    let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/webhook/not-a-connector", &json!({})).await;
    assert_eq!(a.status, 400, "{}", a.body);

    // Events created by the caller.
    let a = e
        .send(
            reqwest::Method::POST,
            "key_cus_1",
            "/v1/event",
            &json!({"event": {"name": "pageview", "data": {"path": "/x"}}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!((a.body["name"].clone(), a.body["customer_id"].clone()), (json!("pageview"), json!("cus_1")));
    let got = e.get("key_cus_1", &format!("/v1/event/{}", a.body["id"].as_str().unwrap())).await;
    assert_eq!(got.body, a.body);
    for bad in [
        json!({}),
        json!({"event": {"name": "made.up", "data": {}}}),
        json!({"event": {"name": "pageview"}}),
        json!({"event": {"name": "pageview", "data": []}}),
    ] {
        let a = e.send(reqwest::Method::POST, "key_org_a", "/v1/event", &bad).await;
        assert_eq!((a.status, a.body["code"].as_str()), (400, Some("BAD_REQUEST")), "{bad}");
    }

    // The magic link: createToken's link alone, org keys only.
    let a = e
        .send(
            reqwest::Method::POST,
            "key_org_a",
            "/v1/customer/cus_1/magic-link",
            &json!({"connect_options": {"view": "manage"}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let url = a.body["magic_link_url"].as_str().unwrap();
    assert!(url.contains("/connect?token=") && url.ends_with("&view=manage"), "{url}");
    assert_eq!(a.body.as_object().unwrap().len(), 1);
    assert_eq!(
        e.send(reqwest::Method::POST, "key_cus_1", "/v1/customer/cus_1/magic-link", &json!({})).await.status,
        403
    );
});
