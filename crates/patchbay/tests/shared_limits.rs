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
    c.rate_limits.export = Some(RateQuota { per_second: 1, ..QUOTA });
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

/// `n` requests alternating over `servers`, checked against budgets of three at once and
/// one a second, `budgets` of them (one when shared): the first `3 × budgets` pass, and
/// no more pass than the budgets allow in the time the requests took. When they took
/// under 900 ms (as they do unless the machine is very busy), exactly the first pass.
async fn check_budget(servers: &[&patchbay::Running], token: &str, n: usize, budgets: usize) {
    let started = std::time::Instant::now();
    let answers = alternate(servers, token, n).await;
    let took = started.elapsed();
    let passed = statuses(&answers).iter().filter(|s| **s == 200).count();
    let at_once = 3 * budgets;
    assert!(statuses(&answers)[..at_once].iter().all(|s| *s == 200), "{answers:?}");
    assert!(passed <= at_once + budgets * took.as_secs_f64().ceil() as usize, "{answers:?} in {took:?}");
    if took < std::time::Duration::from_millis(900) {
        assert_eq!(passed, at_once, "{answers:?} in {took:?}");
    }
    for (status, retry) in &answers {
        assert!(*status == 200 || (*status == 429 && retry.as_deref() == Some("1")), "{answers:?}");
    }
}

/// Whether the Redis these machines run answers (CI makes sure it does).
fn redis_up() -> bool {
    let up = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
    if !up {
        assert!(std::env::var("CI").is_err(), "CI must run Redis at 127.0.0.1:6379 (.ci/run)");
        eprintln!("skipping: no Redis at 127.0.0.1:6379");
    }
    up
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_share_one_budget_per_principal() {
    let Some(db) = TestDb::postgres("shared_limits_pg").await else { return };
    let (a, b, token) = two_servers(&db, None).await;
    // Three in all, not three on each.
    check_budget(&[&a, &b], &token, 6, 1).await;
    let body = call(
        reqwest::Client::new().get(format!("http://{}/export/connections?iModelId={M1}", b.addr)).bearer_auth(&token),
    )
    .await;
    assert_eq!(body.status, 429);
    assert_eq!(body.body["error"]["code"], "RateLimitExceeded", "{}", body.body);
    // A second later the budget has one more request, for either server.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(statuses(&alternate(&[&b], &token, 1).await), [200]);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

both_backends!(redis_shares_one_budget_between_servers, |db| {
    if !redis_up() {
        return;
    }
    let (a, b, token) = two_servers(&db, Some("redis://127.0.0.1:6379")).await;
    check_budget(&[&a, &b], &token, 6, 1).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_leaves_each_server_limiting_on_its_own() {
    // Nothing listens on port 1: every server falls back to its own budget.
    let db = TestDb::sqlite();
    let (a, b, token) = two_servers(&db, Some("redis://127.0.0.1:1")).await;
    let started = std::time::Instant::now();
    // Three on each server, then each refuses on its own.
    check_budget(&[&a, &b], &token, 8, 2).await;
    // Not one request waited for Redis more than the bounded attempt (then a second off).
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
