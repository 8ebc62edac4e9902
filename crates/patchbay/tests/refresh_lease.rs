//! One refresh token is presented once: the refresh lease is renewed while a
//! slow token call runs, so replicas never take it over from a live refresher,
//! and a dead refresher's lease is taken over once it lapses. Three replicas
//! (three servers on one database), on both backends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use patchbay::{Config, Running, start};
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, call};

/// A token endpoint that answers after `delay`, rotates refresh tokens and
/// counts every refresh token it is shown.
#[derive(Clone)]
struct Provider {
    seen: Arc<Mutex<HashMap<String, usize>>>,
    delay: Duration,
}

async fn token(State(p): State<Provider>, body: String) -> axum::Json<Value> {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let rt = form.get("refresh_token").cloned().unwrap_or_default();
    *p.seen.lock().unwrap().entry(rt.clone()).or_default() += 1;
    tokio::time::sleep(p.delay).await;
    axum::Json(json!({"access_token": format!("at-for-{rt}"), "refresh_token": format!("{rt}-next"),
                      "expires_in": 3600, "token_type": "bearer"}))
}

async fn provider(delay: Duration) -> (Provider, String) {
    let p = Provider { seen: Arc::default(), delay };
    let app = axum::Router::new().route("/token", axum::routing::post(token)).with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (p, url)
}

fn conn_id(i: usize) -> String {
    format!("conn_github_01JLEASE{i:018}")
}

fn seed(url: &str, n: usize) -> String {
    let expired =
        (chrono::Utc::now() - chrono::Duration::seconds(60)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let connections: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": conn_id(i), "connectorConfigId": "ccfg_github_01JL", "customerId": "cus_1",
                   "settings": {"oauth": {"credentials": {"access_token": "at-0", "refresh_token": format!("rt-{i}"),
                                                          "expires_at": expired}}}})
        })
        .collect();
    json!({"integrations": {
        "organizations": [{"id": "org_l", "name": "L", "apiKey": "key_org_l"}],
        "customers": [{"orgId": "org_l", "id": "cus_1"}],
        "connectorConfigs": [{"id": "ccfg_github_01JL", "orgId": "org_l", "connectorName": "github",
            "config": {"oauth": {"client_id": "cid", "client_secret": "cs"}},
            "overrides": {"tokenUrl": format!("{url}/token")}}],
        "connections": connections}})
    .to_string()
}

fn replica_config(db: &TestDb) -> Config {
    let mut c = common::config(db, Some(ADMIN));
    c.integrations.lock_secs = 2;
    c.integrations.background_interval_secs = 3600;
    c.outbound.timeout_ms = 15_000;
    c
}

async fn replicas(db: &TestDb, url: &str, n_conns: usize) -> Vec<Running> {
    let c = replica_config(db);
    let mut out = Vec::new();
    for _ in 0..3 {
        out.push(start(&c, Registry::new()).await.unwrap());
    }
    let r = call(
        reqwest::Client::new()
            .post(format!("http://{}/admin/v1/seed", out[0].addr))
            .bearer_auth(ADMIN)
            .body(seed(url, n_conns)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    out
}

both_backends!(a_slow_provider_gets_each_refresh_token_once_across_replicas, |db| {
    // lock_secs = 2, the provider answers in 4 s: the lease must be renewed.
    let (provider, url) = provider(Duration::from_secs(4)).await;
    let servers = replicas(&db, &url, 10).await;
    let http = reqwest::Client::new();
    let mut reads = Vec::new();
    for i in 0..100 {
        let addr = servers[i % 3].addr;
        let path = format!("/v1/connection/{}?include_secrets=true", conn_id(i % 10));
        let req = http.get(format!("http://{addr}{path}")).bearer_auth("key_org_l");
        reads.push(tokio::spawn(async move { (i % 10, call(req).await) }));
    }
    for r in reads {
        let (i, a) = r.await.unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["settings"]["oauth"]["credentials"]["access_token"], format!("at-for-rt-{i}"), "{}", a.body);
        assert_eq!(a.body["settings"]["oauth"]["credentials"]["refresh_token"], format!("rt-{i}-next"));
    }
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen.values().sum::<usize>(), 10, "exactly one grant per expired connection: {seen:?}");
    assert!(seen.values().all(|n| *n == 1), "no refresh token presented twice: {seen:?}");
    for s in servers {
        s.shutdown().await.unwrap();
    }
});

both_backends!(a_dead_refreshers_lease_is_taken_over_once_it_lapses, |db| {
    let (provider, url) = provider(Duration::from_millis(50)).await;
    let servers = replicas(&db, &url, 1).await;
    // A refresher that died mid-call left its lease behind (as kill -9 does).
    let store = &servers[0].state.store;
    let now = chrono::Utc::now().timestamp_millis();
    assert!(store.in_try_lock("org_l", &conn_id(0), "a-dead-replica", now + 2_000, now).await.unwrap());
    let started = Instant::now();
    let a = call(
        reqwest::Client::new()
            .get(format!("http://{}/v1/connection/{}?include_secrets=true", servers[1].addr, conn_id(0)))
            .bearer_auth("key_org_l"),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["settings"]["oauth"]["credentials"]["access_token"],
        "at-for-rt-0",
        "taken over and refreshed: {} {:?} {waited:?}",
        a.body,
        provider.seen.lock().unwrap()
    );
    assert_eq!(provider.seen.lock().unwrap().get("rt-0"), Some(&1));
    // The reader's bound (lock_secs + the outbound timeout), not a speed target.
    assert!(waited < Duration::from_secs(2 + 15), "waited {waited:?}");
    let row = store.in_get_connection("org_l", &conn_id(0)).await.unwrap().unwrap();
    assert_eq!(row.version, 2, "one write");
    for s in servers {
        s.shutdown().await.unwrap();
    }
});
