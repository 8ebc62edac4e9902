//! Rate limits shared by replicas (`[rate_limits]`, docs/operations.md): two servers
//! on one database hand out one budget per principal between them — kept in
//! PostgreSQL, or in Redis (`rate_limits.redis_url`; a Redis runs at 127.0.0.1:6379
//! on these machines) — and a server whose shared store is unreachable still limits,
//! on its own.

use patchbay_core::ratelimit::RateQuota;
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::json;

mod common;
use common::{ADMIN, call};

const T1: &str = "5e1f0d6c-0000-4000-8000-0000000000a1";
const M1: &str = "5e1f0d6c-0000-4000-8000-0000000000b1";

/// One a minute, three at once, for the Export face.
const QUOTA: RateQuota = RateQuota { per_second: 0, burst: 3 };

/// Two servers on `db` sharing as `redis_url` says; the user's token (a fresh principal,
/// so that budgets left in Redis by another run never meet this one).
async fn two_servers(db: &TestDb, redis_url: Option<&str>) -> (patchbay::Running, patchbay::Running, String) {
    let mut c = common::config(db, Some(ADMIN));
    // per_second 0 would be unlimited: one a second with a burst of three, and the
    // requests below all come well inside that second.
    c.rate_limits.faces.insert("export".into(), RateQuota { per_second: 1, ..QUOTA });
    c.rate_limits.redis_url = redis_url.map(str::to_string);
    let a = patchbay::start(&c, Registry::new()).await.unwrap();
    let b = patchbay::start(&c, Registry::new()).await.unwrap();
    let user = format!("bob-{}", uuid::Uuid::new_v4().simple());
    let seed = json!({"export": {
        "itwins": [{"id": T1, "displayName": "Bridge"}],
        "imodels": [{"id": M1, "iTwinId": T1, "displayName": "Span"}],
        "users": [{"id": user, "tokens": [{"token": format!("{user}-token"), "scopes": ["itwin-platform"]}],
                   "itwins": {T1: ["read", "modify"]}}]
    }});
    let r =
        call(reqwest::Client::new().post(format!("http://{}/admin/v1/seed", a.addr)).bearer_auth(ADMIN).json(&seed))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (a, b, format!("{user}-token"))
}

/// Lists connections on each server in turn; the statuses in order.
async fn alternate(servers: &[&patchbay::Running], token: &str, n: usize) -> Vec<(u16, Option<String>)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for i in 0..n {
        let addr = servers[i % servers.len()].addr;
        let r = http
            .get(format!("http://{addr}/export/connections?iModelId={M1}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
        out.push((r.status().as_u16(), retry));
    }
    out
}

fn statuses(answers: &[(u16, Option<String>)]) -> Vec<u16> {
    answers.iter().map(|a| a.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_share_one_budget_per_principal() {
    let Some(db) = TestDb::postgres("shared_limits_pg").await else { return };
    let (a, b, token) = two_servers(&db, None).await;
    let answers = alternate(&[&a, &b], &token, 6).await;
    // Three in all, not three on each.
    assert_eq!(statuses(&answers), [200, 200, 200, 429, 429, 429], "{answers:?}");
    assert_eq!(answers[3].1.as_deref(), Some("1"));
    let body = call(
        reqwest::Client::new().get(format!("http://{}/export/connections?iModelId={M1}", b.addr)).bearer_auth(&token),
    )
    .await;
    assert_eq!(body.status, 429);
    assert_eq!(body.body["error"]["code"], "RateLimitExceeded", "{}", body.body);
    // A second later the budget has one more request, for either server.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(statuses(&alternate(&[&b, &a], &token, 2).await), [200, 429]);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

both_backends!(redis_shares_one_budget_between_servers, |db| {
    let (a, b, token) = two_servers(&db, Some("redis://127.0.0.1:6379")).await;
    let answers = alternate(&[&a, &b], &token, 6).await;
    assert_eq!(statuses(&answers), [200, 200, 200, 429, 429, 429], "{answers:?}");
    assert!(answers[3..].iter().all(|a| a.1.as_deref() == Some("1")), "{answers:?}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_leaves_each_server_limiting_on_its_own() {
    // Nothing listens on port 1: every server falls back to its own budget.
    let db = TestDb::sqlite();
    let (a, b, token) = two_servers(&db, Some("redis://127.0.0.1:1")).await;
    let started = std::time::Instant::now();
    let answers = alternate(&[&a, &b], &token, 8).await;
    // Three on each server, then each refuses on its own.
    assert_eq!(statuses(&answers), [200, 200, 200, 200, 200, 200, 429, 429], "{answers:?}");
    // Not one request waited for Redis more than the bounded attempt (then a second off).
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
