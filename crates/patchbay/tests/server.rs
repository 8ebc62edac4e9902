//! Black-box tests of the assembled server: the real `start()` on an
//! ephemeral port, on SQLite and (with PATCHBAY_TEST_DATABASE_URL) PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use patchbay::start;
use patchbay_store::testing::TestDb;
use patchbay_store::worker::{JobError, JobHandler, Registry};
use patchbay_store::{Job, JobState, NewJob};
use serde_json::{Value, json};

mod common;
use common::{ADMIN, boot, config};

macro_rules! server_test {
    ($name:ident, |$db:ident| $body:block) => {
        both_backends!($name, |$db| $body);
    };
}

async fn post_seed(addr: std::net::SocketAddr, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("http://{addr}/admin/v1/seed")).body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

server_test!(admin_api_is_404_without_a_configured_token, |db| {
    let srv = boot(&db, None).await;
    let (status, body) = post_seed(srv.addr, Some("anything"), "{}").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "The admin API is disabled (no admin token is configured)."}));
    srv.shutdown().await.unwrap();
});

server_test!(admin_seed_authenticates_validates_and_applies, |db| {
    let srv = boot(&db, Some(ADMIN)).await;
    let doc = json!({"integrations": {"organizations": [{"id": "org_a", "name": "A", "apiKey": "key_a"}],
        "customers": [{"orgId": "org_a", "id": "cus_1"}]},
        "export": {"itwins": [{"id": "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04", "displayName": "T"}]}})
    .to_string();
    let unauthorized = json!({"error": "A valid admin bearer token is required."});
    assert_eq!(post_seed(srv.addr, None, &doc).await, (401, unauthorized.clone()));
    assert_eq!(post_seed(srv.addr, Some("wrong-token"), &doc).await, (401, unauthorized));
    assert_eq!(
        post_seed(srv.addr, Some(ADMIN), &doc).await,
        (200, json!({"applied": {"export": 1, "integrations": 2}}))
    );
    // Idempotent.
    assert_eq!(post_seed(srv.addr, Some(ADMIN), &doc).await.0, 200);
    // The seeded API key authenticates as its principal.
    let cred = srv.state.store.find_credential("key_a").await.unwrap().unwrap();
    assert_eq!((cred.principal_kind.as_str(), cred.principal_id.as_str()), ("organization", "org_a"));
    // Unknown field: 422 naming its JSON path.
    let (status, body) =
        post_seed(srv.addr, Some(ADMIN), r#"{"integrations":{"organizations":[{"id":"o","name":"O","apikey":"k"}]}}"#)
            .await;
    assert_eq!(status, 422);
    assert_eq!(body["path"], "$.integrations.organizations[0].apikey");
    // Not JSON at all.
    let (status, body) = post_seed(srv.addr, Some(ADMIN), "{not json").await;
    assert_eq!((status, body["path"].as_str()), (422, Some("$")));
    // A reference to nothing: 422, and nothing of the document is written.
    let (status, body) = post_seed(
        srv.addr,
        Some(ADMIN),
        r#"{"integrations":{"organizations":[{"id":"org_b","name":"B","apiKey":"key_b"}],
            "connections":[{"id":"conn_github_1","connectorConfigId":"ccfg_missing","customerId":"cus_1","settings":{"oauth":{"credentials":{"access_token":"x"}}}}]}}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["path"], "$.integrations.connections[0].connectorConfigId");
    assert!(srv.state.store.find_credential("key_b").await.unwrap().is_none());
    srv.shutdown().await.unwrap();
});

server_test!(oversized_bodies_get_413_in_the_admin_shape, |db| {
    let mut c = config(&db, Some(ADMIN));
    c.body_limit_bytes = 1024;
    let srv = start(&c, Registry::new()).await.unwrap();
    let big = format!(r#"{{"integrations":{{"organizations":[{{"id":"o","name":"{}"}}]}}}}"#, "n".repeat(4096));
    let (status, body) = post_seed(srv.addr, Some(ADMIN), &big).await;
    assert_eq!(status, 413);
    assert_eq!(body, json!({"error": "Failed to buffer the request body: length limit exceeded"}));
    // The body limit sits inside the platform middleware: the refusal still carries the request id.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/admin/v1/seed", srv.addr))
        .bearer_auth(ADMIN)
        .header("x-request-id", "req-413")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["x-request-id"], "req-413");
    srv.shutdown().await.unwrap();
});

server_test!(admin_rate_limit_answers_429, |db| {
    let mut c = config(&db, Some(ADMIN));
    c.rate_limits.admin = Some(patchbay_core::ratelimit::RateQuota { per_second: 1, burst: 1 });
    let srv = start(&c, Registry::new()).await.unwrap();
    assert_eq!(post_seed(srv.addr, Some(ADMIN), "{}").await.0, 200);
    let resp = reqwest::Client::new()
        .post(format!("http://{}/admin/v1/seed", srv.addr))
        .bearer_auth(ADMIN)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"error": "Rate limit exceeded; retry after 1 seconds."}));
    srv.shutdown().await.unwrap();
});

struct Slow(Arc<AtomicUsize>);

#[async_trait]
impl JobHandler for Slow {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(700)).await;
        Ok(())
    }
}

server_test!(shutdown_finishes_the_running_job, |db| {
    let started = Arc::new(AtomicUsize::new(0));
    let mut reg = Registry::new();
    reg.register("slow", Arc::new(Slow(started.clone())));
    let srv = start(&config(&db, None), reg).await.unwrap();
    let job = NewJob::now("t", "slow", json!({}), 3, 0);
    srv.state.store.enqueue_job(&job, 0).await.unwrap();
    let store = srv.state.store.clone();
    for _ in 0..500 {
        if started.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(started.load(Ordering::SeqCst), 1, "the job started");
    srv.shutdown().await.unwrap();
    let got = store.get_job("t", &job.id).await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Done, "shutdown waited for the job in hand");
});

#[tokio::test]
async fn seed_secrets_through_the_admin_api_never_reach_the_database_file() {
    let db = TestDb::sqlite();
    let srv = boot(&db, Some(ADMIN)).await;
    let doc = r#"{"integrations":{"organizations":[{"id":"org_a","name":"A","apiKey":"RAW-ORG-KEY"}],
        "customers":[{"orgId":"org_a","id":"cus_1","apiKey":"RAW-CUSTOMER-KEY"}],
        "connectorConfigs":[{"id":"ccfg_github_1","orgId":"org_a","connectorName":"github",
            "config":{"oauth":{"client_id":"cid","client_secret":"RAW-CLIENT-SECRET"}}}],
        "connections":[{"id":"conn_github_1","connectorConfigId":"ccfg_github_1","customerId":"cus_1",
            "settings":{"oauth":{"credentials":{"access_token":"RAW-ACCESS-TOKEN","refresh_token":"RAW-REFRESH-TOKEN"}}}}]}}"#;
    assert_eq!(post_seed(srv.addr, Some(ADMIN), doc).await.0, 200);
    srv.shutdown().await.unwrap();
    let dir = patchbay_store::sqlite_path(&db.url).unwrap().parent().unwrap().to_path_buf();
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    for secret in ["RAW-ORG-KEY", "RAW-CUSTOMER-KEY", "RAW-CLIENT-SECRET", "RAW-ACCESS-TOKEN", "RAW-REFRESH-TOKEN"] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the database files");
    }
    assert!(bytes.windows(b"ccfg_github_1".len()).any(|w| w == b"ccfg_github_1"), "the dump is real");
}
