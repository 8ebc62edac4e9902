//! The behavioural suite of the Store: every test runs on SQLite, and on
//! PostgreSQL when PATCHBAY_TEST_DATABASE_URL is set (each in a fresh database).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use patchbay_core::seed::{self, kind};
use patchbay_core::{Clock, ManualClock, SystemClock, Vault};
use patchbay_store::testing::TestDb;
use patchbay_store::worker::{JobError, JobHandler, Registry, Worker, WorkerConfig, spawn_workers};
use patchbay_store::{Job, JobState, NetConnectionFilter, NetSide, NewJob, RecordWrite, Store, StoreError};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn open(url: &str) -> Arc<dyn Store> {
    let s = patchbay_store::connect(url).await.expect("connect");
    s.migrate().await.expect("migrate");
    s
}

macro_rules! store_test {
    ($name:ident, |$store:ident, $url:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = TestDb::sqlite();
                let $url: &str = &db.url;
                let $store = open($url).await;
                $body
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = TestDb::postgres(stringify!($name)).await else { return };
                let $url: &str = &db.url;
                let $store = open($url).await;
                $body
            }
        }
    };
}

const DOC: &str = r#"{
  "network": {
    "enterprises": [{"id": "ent-acme", "name": "Acme", "oesLicense": true, "trustOrg": "BitGo Trust"}],
    "users": [{"id": "user-alice", "enterprises": ["ent-acme"],
               "tokens": [{"token": "alice-token-1", "scopes": ["settlement_network_read"]}]}],
    "clients": [{"id": "6f1c2a3e-0000-4000-8000-000000000001", "enterpriseId": "ent-acme", "walletId": "w1",
                 "publicKey": "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"}],
    "partners": [{"id": "6f1c2a3e-0000-4000-8000-000000000002", "enterpriseId": "ent-acme", "name": "Ex",
                  "institutionIdentifier": "ex", "connectionKeySchema": "token"}],
    "connections": [{"id": "6f1c2a3e-0000-4000-8000-000000000003", "clientId": "6f1c2a3e-0000-4000-8000-000000000001",
                     "partnerId": "6f1c2a3e-0000-4000-8000-000000000002", "name": "Desk 1", "nonce": "n-1",
                     "connectionKey": {"schema": "token", "connectionToken": "PLAINTEXT-CONNECTION-TOKEN"}}]
  },
  "integrations": {
    "organizations": [{"id": "org_demo", "name": "Demo", "apiKey": "key_demo_org_1"}],
    "customers": [{"orgId": "org_demo", "id": "cus_1", "apiKey": "key_cus_demo_1"}],
    "connectorConfigs": [{"id": "ccfg_github_1", "orgId": "org_demo", "connectorName": "github",
                          "config": {"oauth": {"client_id": "cid", "client_secret": "PLAINTEXT-CLIENT-SECRET"}}}],
    "connections": [{"id": "conn_github_1", "connectorConfigId": "ccfg_github_1", "customerId": "cus_1",
                     "settings": {"oauth": {"credentials": {"access_token": "PLAINTEXT-ACCESS-TOKEN"}}}}]
  }
}"#;

fn vault() -> Vault {
    Vault::from_spec(K1).unwrap()
}

async fn apply(store: &Arc<dyn Store>, doc: &str, now: i64) -> Result<(), StoreError> {
    let plan = seed::plan(doc.as_bytes()).map_err(StoreError::Seed)?;
    store.apply_seed(&plan, &vault(), now, seed::SeedMode::Upsert).await
}

/// Every byte the database holds, as a backend sees it.
async fn raw_dump(url: &str) -> Vec<u8> {
    if let Some(path) = patchbay_store::sqlite_path(url) {
        let dir = path.parent().unwrap();
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        all
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let mut all = Vec::new();
        for table in ["records", "credentials", "jobs", "net_connections", "in_connections"] {
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT t::text FROM {table} t")).fetch_all(&mut conn).await.unwrap();
            for (r,) in rows {
                all.extend(r.into_bytes());
            }
        }
        all
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

store_test!(migrate_twice_and_ping, |store, _url| {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
});

store_test!(seed_upserts_idempotently, |store, _url| {
    apply(&store, DOC, 1_000).await.unwrap();
    let ent = store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap().unwrap();
    assert_eq!(ent.data["name"], "Acme");
    assert_eq!(ent.updated_at, 1_000);
    let conn = store.in_get_connection("org_demo", "conn_github_1").await.unwrap().unwrap();
    let aad = patchbay_store::Record::aad("org_demo", kind::IN_CONNECTION, "conn_github_1");
    let settings: serde_json::Value = serde_json::from_slice(&vault().open(&conn.settings, &aad).unwrap()).unwrap();
    // The seed mirrors the token where connector-gateway clients read it.
    assert_eq!(
        settings,
        json!({"access_token": "PLAINTEXT-ACCESS-TOKEN", "oauth": {"credentials": {"access_token": "PLAINTEXT-ACCESS-TOKEN"}}})
    );
    assert_eq!((conn.connector_name.as_str(), conn.customer_id.as_deref(), conn.version), ("github", Some("cus_1"), 1));
    // The same document again changes nothing.
    apply(&store, DOC, 2_000).await.unwrap();
    let again = store.in_get_connection("org_demo", "conn_github_1").await.unwrap().unwrap();
    assert_eq!(again, conn);
    // A changed document updates the named object and leaves the rest alone.
    apply(&store, r#"{"network":{"enterprises":[{"id":"ent-acme","name":"Acme Trading","oesLicense":true}]}}"#, 3_000)
        .await
        .unwrap();
    let ent2 = store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap().unwrap();
    assert_eq!(ent2.data["name"], "Acme Trading");
    assert_eq!(ent2.updated_at, 3_000);
    assert_eq!(ent2.created_at, 1_000);
    assert!(
        store.get_record("ent-acme", kind::NET_CLIENT, "6f1c2a3e-0000-4000-8000-000000000001").await.unwrap().is_some()
    );
    assert_eq!(store.list_records("org_demo", kind::IN_CUSTOMER).await.unwrap().len(), 1);
    // Network connections live in their own table, seen from both sides.
    let conn_id = "6f1c2a3e-0000-4000-8000-000000000003";
    let c = store.net_get_connection(NetSide::Client, "ent-acme", conn_id).await.unwrap().unwrap();
    assert_eq!((c.name.as_str(), c.active, c.initialized, c.created_at), ("Desk 1", true, false, 1_000));
    assert_eq!(c.updated_at, 1_000, "unchanged by the idempotent re-application");
    assert!(store.net_get_connection(NetSide::Partner, "ent-acme", conn_id).await.unwrap().is_some());
    assert!(store.net_get_connection(NetSide::Client, "ent-other", conn_id).await.unwrap().is_none());
    let filter = NetConnectionFilter { names: vec!["Desk 1".into()], active: Some(true), ..Default::default() };
    assert_eq!(store.net_list_connections(NetSide::Client, "ent-acme", &filter, 10, 0).await.unwrap().len(), 1);
    let none = NetConnectionFilter { active: Some(false), ..Default::default() };
    assert!(store.net_list_connections(NetSide::Partner, "ent-acme", &none, 10, 0).await.unwrap().is_empty());
});

store_test!(seed_with_unknown_reference_writes_nothing, |store, _url| {
    let doc = r#"{"integrations":{"organizations":[{"id":"org_new","name":"N","apiKey":"key_new"}],
        "customers":[{"orgId":"org_missing","id":"c"}]}}"#;
    match apply(&store, doc, 1).await {
        Err(StoreError::Seed(e)) => {
            assert_eq!(e.path, "$.integrations.customers[0].orgId");
            assert!(e.message.contains("org_missing"), "{e}");
        }
        other => panic!("expected a seed error, got {other:?}"),
    }
    assert!(store.get_record("org_new", kind::IN_ORG, "org_new").await.unwrap().is_none());
    assert!(store.find_credential("key_new").await.unwrap().is_none());
    // References to stored objects resolve, and take their tenant.
    apply(&store, r#"{"integrations":{"organizations":[{"id":"org_a","name":"A"}]}}"#, 1).await.unwrap();
    apply(&store, r#"{"integrations":{"customers":[{"orgId":"org_a","id":"c"}]}}"#, 2).await.unwrap();
    assert!(store.get_record("org_a", kind::IN_CUSTOMER, "org_a/c").await.unwrap().is_some());
});

store_test!(secrets_and_tokens_never_stored_in_plaintext, |store, url| {
    apply(&store, DOC, 1).await.unwrap();
    let dump = raw_dump(url).await;
    assert!(!dump.is_empty());
    for needle in [
        "PLAINTEXT-CONNECTION-TOKEN",
        "PLAINTEXT-CLIENT-SECRET",
        "PLAINTEXT-ACCESS-TOKEN",
        "alice-token-1",
        "key_demo_org_1",
        "key_cus_demo_1",
    ] {
        assert!(!contains(&dump, needle.as_bytes()), "{needle} found in the raw database");
    }
    // Public data is there, so the dump is real.
    assert!(contains(&dump, b"Desk 1"));
});

store_test!(credentials_are_found_by_hash_and_replaced, |store, _url| {
    apply(&store, DOC, 1).await.unwrap();
    let c = store.find_credential("alice-token-1").await.unwrap().unwrap();
    assert_eq!(
        (c.face.as_str(), c.principal_kind.as_str(), c.principal_id.as_str()),
        ("network", "user", "user-alice")
    );
    assert_eq!(c.scopes, vec!["settlement_network_read"]);
    let cus = store.find_credential("key_cus_demo_1").await.unwrap().unwrap();
    assert_eq!((cus.principal_id.as_str(), cus.tenant.as_str()), ("org_demo/cus_1", "org_demo"));
    assert!(store.find_credential("alice-token-2").await.unwrap().is_none());
    apply(
        &store,
        r#"{"network":{"users":[{"id":"user-alice","enterprises":["ent-acme"],"tokens":[{"token":"alice-token-2","scopes":[]}]}]}}"#,
        2,
    )
    .await
    .unwrap();
    assert!(store.find_credential("alice-token-1").await.unwrap().is_none());
    assert!(store.find_credential("alice-token-2").await.unwrap().is_some());
});

store_test!(credential_with_its_principal_and_another_record_in_one_lookup, |store, _url| {
    apply(&store, DOC, 1).await.unwrap();
    let net_user = ("network", kind::NET_USER);
    let ent = Some(("ent-acme", kind::NET_ENTERPRISE, "ent-acme"));
    let found = store.find_credential_with("alice-token-1", net_user, ent).await.unwrap().unwrap();
    assert_eq!(found.credential, *store.find_credential("alice-token-1").await.unwrap().unwrap());
    // Each joined record is exactly what get_record returns.
    assert_eq!(found.principal, store.get_record("network", kind::NET_USER, "user-alice").await.unwrap());
    assert_eq!(found.other, store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap());
    assert!(found.principal.is_some() && found.other.is_some());
    // Absent records are None, the credential still found.
    let missing = Some(("ent-nope", kind::NET_ENTERPRISE, "ent-nope"));
    let found = store.find_credential_with("alice-token-1", ("export", kind::EX_USER), missing).await.unwrap().unwrap();
    assert_eq!((found.principal.clone(), found.other.clone()), (None, None));
    let found = store.find_credential_with("alice-token-1", net_user, None).await.unwrap().unwrap();
    assert!(found.principal.is_some() && found.other.is_none());
    // An unknown token finds nothing at all.
    assert!(store.find_credential_with("no-such-token", net_user, ent).await.unwrap().is_none());
});

store_test!(rotate_keys_reseals_every_secret, |store, _url| {
    apply(&store, DOC, 1).await.unwrap();
    let both = Vault::from_spec(&format!("{},{K1}", Vault::generate_spec("k2"))).unwrap();
    // Three seeded secrets, the connection key, and the database's seed-digest key.
    assert_eq!(store.rotate_secrets(&both).await.unwrap(), 5);
    assert_eq!(store.rotate_secrets(&both).await.unwrap(), 0);
    // Seed digests still match after rotation: an unchanged document at start-up writes nothing.
    let before = store.get_record("org_demo", kind::IN_CCFG, "ccfg_github_1").await.unwrap().unwrap().updated_at;
    let plan = seed::plan(DOC.as_bytes()).unwrap();
    store.apply_seed(&plan, &both, 99, seed::SeedMode::StartUp).await.unwrap();
    assert_eq!(store.get_record("org_demo", kind::IN_CCFG, "ccfg_github_1").await.unwrap().unwrap().updated_at, before);
    let rec = store.get_record("org_demo", kind::IN_CCFG, "ccfg_github_1").await.unwrap().unwrap();
    assert_eq!(rec.secret.as_ref().unwrap().key_id, "k2");
    assert_eq!(rec.open_secret(&both).unwrap().unwrap()["oauth"]["client_secret"], "PLAINTEXT-CLIENT-SECRET");
    assert!(rec.open_secret(&vault()).is_err(), "the old key alone no longer opens it");
});

store_test!(record_and_jobs_commit_together, |store, _url| {
    let rec =
        RecordWrite { tenant: "t".into(), kind: "k".into(), id: "r1".into(), data: json!({"a": 1}), secret: None };
    let job = NewJob::now("t", "noop", json!({}), 3, 10);
    store.put_record(&rec, std::slice::from_ref(&job), &vault(), 10).await.unwrap();
    assert_eq!(store.get_job("t", &job.id).await.unwrap().unwrap().state, JobState::Queued);
    // A second write whose job collides fails as a whole: the record is not changed.
    let rec2 = RecordWrite { data: json!({"a": 2}), ..rec.clone() };
    assert!(store.put_record(&rec2, std::slice::from_ref(&job), &vault(), 20).await.is_err());
    assert_eq!(store.get_record("t", "k", "r1").await.unwrap().unwrap().data, json!({"a": 1}));
});

struct Counting(Arc<Mutex<HashMap<String, u32>>>);

#[async_trait]
impl JobHandler for Counting {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        *self.0.lock().unwrap().entry(job.id.clone()).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(())
    }
}

store_test!(concurrent_workers_run_every_job_exactly_once, |store, _url| {
    let jobs = 60;
    let mut ids = Vec::new();
    for i in 0..jobs {
        let j = NewJob::now(&format!("tenant-{}", i % 5), "count", json!({"i": i}), 3, 0);
        store.enqueue_job(&j, 0).await.unwrap();
        ids.push(j);
    }
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let mut reg = Registry::new();
    reg.register("count", Arc::new(Counting(seen.clone())));
    let shutdown = CancellationToken::new();
    let cfg = WorkerConfig { workers: 6, poll_interval_ms: 5, ..Default::default() };
    let mut set = spawn_workers(store.clone(), Arc::new(SystemClock), reg, cfg, shutdown.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let counts = store.job_counts().await.unwrap();
        if counts.iter().any(|(s, n)| *s == JobState::Done && *n == jobs) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "jobs did not finish: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    while set.join_next().await.is_some() {}
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), jobs as usize);
    assert!(seen.values().all(|n| *n == 1), "some job ran twice: {seen:?}");
    for j in &ids {
        let got = store.get_job(&j.tenant, &j.id).await.unwrap().unwrap();
        assert_eq!((got.state, got.attempts), (JobState::Done, 1));
    }
});

fn worker(store: &Arc<dyn Store>, clock: &ManualClock, id: &str, reg: Registry) -> Worker {
    Worker {
        id: id.into(),
        store: store.clone(),
        clock: Arc::new(clock.clone()),
        registry: reg,
        config: WorkerConfig {
            workers: 1,
            lease_ms: 1_000,
            poll_interval_ms: 5,
            backoff_base_ms: 100,
            backoff_max_ms: 10_000,
        },
    }
}

store_test!(killed_workers_job_is_retried_after_its_lease, |store, _url| {
    let clock = ManualClock::new(1_000);
    let job = NewJob::now("t", "count", json!({}), 3, clock.now_ms());
    store.enqueue_job(&job, clock.now_ms()).await.unwrap();
    // Worker A claims it and "dies" (never completes).
    let claimed = store.claim_job("worker-a", clock.now_ms(), 1_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, job.id);
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let mut reg = Registry::new();
    reg.register("count", Arc::new(Counting(seen.clone())));
    let b = worker(&store, &clock, "worker-b", reg);
    clock.advance_ms(999);
    assert!(!b.step().await.unwrap(), "the lease still holds");
    clock.advance_ms(2);
    assert!(b.step().await.unwrap());
    let got = store.get_job("t", &job.id).await.unwrap().unwrap();
    assert_eq!((got.state, got.attempts), (JobState::Done, 2));
    assert_eq!(seen.lock().unwrap()[&job.id], 1);
    // The dead worker's late completion is refused.
    assert!(!store.complete_job(&claimed, "worker-a", clock.now_ms()).await.unwrap());
});

struct AlwaysFails;

#[async_trait]
impl JobHandler for AlwaysFails {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        Err(JobError::Retry("upstream said 503".into()))
    }
}

store_test!(failing_job_backs_off_then_dies_with_its_error, |store, _url| {
    let clock = ManualClock::new(10_000);
    let job = NewJob::now("t", "fails", json!({}), 3, clock.now_ms());
    store.enqueue_job(&job, clock.now_ms()).await.unwrap();
    let mut reg = Registry::new();
    reg.register("fails", Arc::new(AlwaysFails));
    let w = worker(&store, &clock, "w", reg);
    let mut last_delay = 0;
    for attempt in 1..=2 {
        assert!(w.step().await.unwrap());
        let got = store.get_job("t", &job.id).await.unwrap().unwrap();
        assert_eq!((got.state, got.attempts), (JobState::Queued, attempt));
        assert_eq!(got.last_error.as_deref(), Some("upstream said 503"));
        let delay = got.run_at - clock.now_ms();
        let cap = 100 << (attempt - 1);
        assert!(delay >= cap / 2 && delay <= cap, "attempt {attempt}: delay {delay}");
        assert!(!w.step().await.unwrap(), "not due before its backoff");
        clock.advance_ms(delay);
        last_delay = delay;
    }
    assert!(last_delay > 0);
    assert!(w.step().await.unwrap());
    let got = store.get_job("t", &job.id).await.unwrap().unwrap();
    assert_eq!((got.state, got.attempts), (JobState::Dead, 3));
    assert_eq!(got.last_error.as_deref(), Some("upstream said 503"));
    let counts: HashMap<_, _> = store.job_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts[&JobState::Dead], 1);
    clock.advance_ms(1_000_000);
    assert!(!w.step().await.unwrap(), "dead jobs are not claimed");
});

store_test!(jobs_survive_a_restart, |store, url| {
    let job = NewJob::now("t", "later", json!({"x": 1}), 5, 0);
    store.enqueue_job(&job, 0).await.unwrap();
    drop(store);
    let reopened = open(url).await;
    let got = reopened.get_job("t", &job.id).await.unwrap().unwrap();
    assert_eq!((got.state, got.payload), (JobState::Queued, json!({"x": 1})));
});

#[tokio::test]
async fn sqlite_reads_find_a_percent_encoded_file() {
    // The readers open the file sqlx resolved (percent-decoded), not the URL's raw text.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/my%20db.db", dir.path().display());
    let store = patchbay_store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    apply(&store, DOC, 1).await.unwrap();
    assert!(dir.path().join("my db.db").exists());
    assert!(store.find_credential("alice-token-1").await.unwrap().is_some());
    assert!(store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap().is_some());
    // The writer thread writes to the same file (current-thread runtime here).
    let mut conn =
        (*store.net_get_connection(NetSide::Client, "ent-acme", &seeded_id()).await.unwrap().unwrap()).clone();
    conn.id = "6f1c2a3e-0000-4000-8000-0000000000aa".into();
    conn.nonce = "n-2".into();
    store.net_insert_connection(&conn, &[]).await.unwrap();
    assert!(store.net_get_connection(NetSide::Client, "ent-acme", &conn.id).await.unwrap().is_some());
    store.close().await;
    assert!(matches!(store.find_credential("alice-token-1").await, Err(StoreError::Closed)));
    conn.nonce = "n-3".into();
    assert!(matches!(store.net_insert_connection(&conn, &[]).await, Err(StoreError::Closed)));
}

#[tokio::test]
async fn in_memory_sqlite_pages_match_the_file_readers() {
    // sqlite::memory: is read through sqlx, a file through the readers: same pages.
    let dir = tempfile::tempdir().unwrap();
    let file = patchbay_store::connect(&format!("sqlite://{}/pages.db", dir.path().display())).await.unwrap();
    let memory = patchbay_store::connect("sqlite::memory:").await.unwrap();
    let mut pages = Vec::new();
    for store in [&file, &memory] {
        store.migrate().await.unwrap();
        apply(store, DOC, 1).await.unwrap();
        let net = store.net_list_connections(NetSide::Client, "ent-acme", &Default::default(), 10, 0).await.unwrap();
        let (ins, total) =
            store.in_list_connections("org_demo", &patchbay_store::InFilter::default(), 10, 0).await.unwrap();
        let net: Vec<_> = net.iter().cloned().map(|c| (c.id, c.name, c.active, c.created_at)).collect();
        let ins: Vec<_> = ins.iter().cloned().map(|c| (c.id, c.customer_id, c.version, c.updated_at)).collect();
        assert_eq!((net.len(), ins.len(), total), (1, 1, 1));
        pages.push((net, ins));
    }
    assert_eq!(pages[0], pages[1]);
}

store_test!(concurrent_connection_inserts_are_whole_or_refused, |store, _url| {
    // Many writers at once (SQLite: the calling-thread writer, beside sqlx writes
    // to the same table): each new connection lands with its job, a reused nonce
    // is a Conflict that leaves nothing behind.
    apply(&store, DOC, 1).await.unwrap();
    let seeded = store
        .net_get_connection(NetSide::Client, "ent-acme", "6f1c2a3e-0000-4000-8000-000000000003")
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        let mut conn = (*seeded).clone();
        conn.id = format!("6f1c2a3e-0000-4000-8000-1{i:011}");
        // Every third insert reuses an earlier nonce (or the seeded one).
        conn.nonce = if i % 3 == 2 { format!("nonce-{}", i - 2) } else { format!("nonce-{i}") };
        if i == 59 {
            conn.nonce = "n-1".into();
        }
        tasks.push(tokio::spawn(async move {
            let job = NewJob::now("ent-acme", "bench.test", json!({"connectionId": conn.id}), 3, 5);
            let out = store.net_insert_connection(&conn, &[job]).await;
            // A write through sqlx in between.
            store.net_update_connection("ent-acme", &seeded_id(), Some(&format!("Desk {i}")), None, 6).await.unwrap();
            (i, out)
        }));
    }
    // Per nonce: exactly one insert wins (none for the seeded connection's).
    let mut wins: HashMap<String, (usize, usize)> = HashMap::new();
    for t in tasks {
        let (i, out) = t.await.unwrap();
        let nonce = if i == 59 {
            "n-1".to_string()
        } else if i % 3 == 2 {
            format!("nonce-{}", i - 2)
        } else {
            format!("nonce-{i}")
        };
        let e = wins.entry(nonce).or_default();
        match out {
            Ok(()) => e.0 += 1,
            Err(StoreError::Conflict("nonce")) => e.1 += 1,
            Err(e) => panic!("insert {i}: {e}"),
        }
    }
    let conflicts: usize = wins.values().map(|w| w.1).sum();
    for (nonce, (won, _)) in &wins {
        assert_eq!(*won, usize::from(nonce != "n-1"), "nonce {nonce}: {:?}", wins[nonce]);
    }
    assert_eq!(conflicts, 20);
    let all = store.net_list_connections(NetSide::Client, "ent-acme", &Default::default(), 100, 0).await.unwrap();
    assert_eq!(all.len(), 1 + 40);
    let queued: i64 =
        store.job_counts().await.unwrap().into_iter().filter(|(s, _)| *s == JobState::Queued).map(|(_, n)| n).sum();
    assert_eq!(queued, 40, "one job per inserted connection, none for a refused one");
});

fn seeded_id() -> String {
    "6f1c2a3e-0000-4000-8000-000000000003".to_string()
}

store_test!(kept_credential_lookups_follow_every_write, |store, url| {
    // Lookups are kept for a moment (kept.rs); every write through the
    // store is seen by the next lookup, another process's within the TTL.
    apply(&store, DOC, 1).await.unwrap();
    let net_user = ("network", kind::NET_USER);
    let ent = Some(("ent-acme", kind::NET_ENTERPRISE, "ent-acme"));
    let lookup = || async { store.find_credential_with("alice-token-1", net_user, ent).await.unwrap() };
    assert_eq!(lookup().await.unwrap().credential.scopes, vec!["settlement_network_read".to_string()]);
    // A record changed.
    rename_acme(&store, "Acme Renamed", 2).await;
    assert_eq!(lookup().await.unwrap().other.as_ref().unwrap().data["name"], "Acme Renamed");
    // The credential replaced.
    let mut cred = Arc::unwrap_or_clone(store.find_credential("alice-token-1").await.unwrap().unwrap());
    cred.scopes = vec!["settlement_network_write".into()];
    store.put_credential("alice-token-1", &cred, 3).await.unwrap();
    assert_eq!(lookup().await.unwrap().credential.scopes, vec!["settlement_network_write".to_string()]);
    assert_eq!(*store.find_credential("alice-token-1").await.unwrap().unwrap(), cred);
    // The principal deleted.
    assert!(store.delete_record("network", kind::NET_USER, "user-alice").await.unwrap());
    assert_eq!(lookup().await.unwrap().principal, None);
    // The token revoked by a seed.
    apply(&store, r#"{"network":{"users":[{"id":"user-alice","enterprises":["ent-acme"],"tokens":[]}]}}"#, 4)
        .await
        .unwrap();
    assert!(lookup().await.is_none());
    assert!(store.find_credential("alice-token-1").await.unwrap().is_none());
    // Another process (a second store on the same database) changes the answer:
    // seen once the kept answer is older than the TTL.
    apply(&store, DOC, 5).await.unwrap();
    assert!(lookup().await.is_some());
    let other = open(url).await;
    apply(&other, r#"{"network":{"users":[{"id":"user-alice","enterprises":["ent-acme"],"tokens":[]}]}}"#, 6)
        .await
        .unwrap();
    tokio::time::sleep(patchbay_store::kept::TTL + Duration::from_millis(50)).await;
    assert!(lookup().await.is_none());
    other.close().await;
});

/// Renames the seeded enterprise `ent-acme` through `put_record`.
async fn rename_acme(store: &Arc<dyn Store>, name: &str, now: i64) {
    let enterprise = store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap().unwrap();
    let mut data = enterprise.data;
    data["name"] = json!(name);
    let write = RecordWrite {
        tenant: "ent-acme".into(),
        kind: kind::NET_ENTERPRISE.into(),
        id: "ent-acme".into(),
        data,
        secret: None,
    };
    store.put_record(&write, &[], &vault(), now).await.unwrap();
}

/// The event a connection's deletion is stored with.
fn deleted_event(tenant: &str, id: &str, ts: i64) -> patchbay_store::InEvent {
    patchbay_store::InEvent {
        tenant: tenant.into(),
        id: id.into(),
        name: "connection.deleted".into(),
        data: json!({}),
        customer_id: None,
        ts,
    }
}

fn in_conn(tenant: &str, id: &str, connector: &str, customer: Option<&str>, at: i64) -> patchbay_store::InConnection {
    patchbay_store::InConnection {
        tenant: tenant.into(),
        id: id.into(),
        connector_name: connector.into(),
        connector_config_id: format!("ccfg_{connector}_1"),
        customer_id: customer.map(str::to_string),
        integration_id: None,
        display_name: Some(format!("display {id}")),
        disabled: false,
        status: None,
        status_message: None,
        metadata: None,
        settings: patchbay_core::Sealed { key_id: "k1".into(), blob: vec![1, 2, 3] },
        expires_at: None,
        refreshable: false,
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

store_test!(connection_search_finds_exactly_the_substring_matches, |store, _url| {
    // search_query: a case-insensitive substring of id, customer_id or connector_name
    // within the organisation, `%` and `_` literal. The answer must not depend on
    // whether the trigram index narrows the search (few candidates) or not (many).
    let mut all = vec![
        in_conn("org_a", "conn_github_Alpha01", "github", Some("cus_Bob"), 1),
        in_conn("org_a", "conn_slack_beta%_02", "slack", Some("cus_100%"), 2),
        in_conn("org_a", "conn_notion_gamma\"q", "notion", None, 3),
        in_conn("org_a", "conn_github_Ünïcode", "github", Some("cus_ÉTÉ"), 4),
        in_conn("org_b", "conn_github_Alpha02", "github", Some("cus_Bob"), 5),
    ];
    // Enough connections sharing "bulk" that a search for it is not narrowed by the index.
    for i in 0..1_050 {
        all.push(in_conn(
            if i % 2 == 0 { "org_a" } else { "org_c" },
            &format!("conn_bulk_{i:05}"),
            "hubspot",
            Some("cus_x"),
            10 + i,
        ));
    }
    for c in &all {
        store.in_put_connection(c, None, &[]).await.unwrap();
    }
    let expect = |tenant: &str, q: &str| -> Vec<String> {
        let q = q.to_lowercase();
        let mut v: Vec<_> = all
            .iter()
            .filter(|c| c.tenant == tenant)
            .filter(|c| {
                // SQLite's LOWER and LIKE fold ASCII only; PostgreSQL's LOWER folds all,
                // so only ASCII-cased data is compared across backends here.
                [Some(c.id.as_str()), c.customer_id.as_deref(), Some(c.connector_name.as_str())]
                    .into_iter()
                    .flatten()
                    .any(|f| f.to_ascii_lowercase().contains(&q))
            })
            .map(|c| (c.updated_at, c.id.clone()))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, id)| id).collect()
    };
    let queries = [
        "a",
        "al",
        "alp",
        "ALPHA",
        "alpha01",
        "github",
        "hub",
        "cus_bob",
        "bob",
        "%",
        "100%",
        "a%_",
        "_",
        "_02",
        "\"q",
        "gamma\"",
        "notion",
        "ünï",
        "conn_",
        "bulk",
        "bulk_0104",
        "bulk_01",
        "nothing here",
        "b c",
        "github cus",
        "ÉTÉ",
    ];
    for q in queries {
        let f = patchbay_store::InFilter { search: Some(q.to_string()), ..Default::default() };
        let (page, total) = store.in_list_connections("org_a", &f, 2_000, 0).await.unwrap();
        let got: Vec<_> = page.iter().map(|c| c.id.clone()).collect();
        let want = expect("org_a", q);
        if q.is_ascii() || !want.is_empty() {
            assert_eq!((&got, total), (&want, want.len() as i64), "search {q:?}");
        }
        // A page of the same search, for the ordering and the total.
        let (page, total) = store.in_list_connections("org_a", &f, 3, 1).await.unwrap();
        let got: Vec<_> = page.iter().map(|c| c.id.clone()).collect();
        if q.is_ascii() {
            let want_page: Vec<_> = want.iter().skip(1).take(3).cloned().collect();
            assert_eq!((got, total), (want_page, want.len() as i64), "page of search {q:?}");
        }
    }
    // The index follows deletes and replacements.
    let event = deleted_event("org_a", "evt_1", 9_000);
    assert!(store.in_delete_connection("org_a", "conn_github_Alpha01", None, &event, &[]).await.unwrap());
    let f = |q: &str| patchbay_store::InFilter { search: Some(q.to_string()), ..Default::default() };
    assert_eq!(store.in_list_connections("org_a", &f("alpha01"), 10, 0).await.unwrap().1, 0);
    let mut moved = in_conn("org_a", "conn_slack_beta%_02", "slack", Some("cus_Zed"), 9_001);
    moved.version = 2;
    store.in_put_connection(&moved, None, &[]).await.unwrap();
    assert_eq!(store.in_list_connections("org_a", &f("100%"), 10, 0).await.unwrap().1, 0);
    let (page, total) = store.in_list_connections("org_a", &f("cus_zed"), 10, 0).await.unwrap();
    assert_eq!((page[0].id.as_str(), total), ("conn_slack_beta%_02", 1));
});

store_test!(kept_connection_reads_follow_every_write, |store, url| {
    // Connection reads are kept for a moment on SQLite (kept.rs): every write
    // through the store is seen by the next read, another process's within the
    // TTL. (PostgreSQL keeps none; the same answers hold there.)
    apply(&store, DOC, 1).await.unwrap();
    let id = seeded_id();
    let get = || async { store.net_get_connection(NetSide::Client, "ent-acme", &seeded_id()).await.unwrap().unwrap() };
    let everything = NetConnectionFilter::default();
    let page = || async { store.net_list_connections(NetSide::Partner, "ent-acme", &everything, 10, 0).await.unwrap() };
    assert_eq!(get().await.name, "Desk 1");
    assert_eq!(page().await.len(), 1);
    // Renamed: the update's own read-back, the get and the page all see it.
    let updated = store.net_update_connection("ent-acme", &id, Some("Desk 2"), None, 2).await.unwrap().unwrap();
    assert_eq!(updated.name, "Desk 2");
    assert_eq!(get().await.name, "Desk 2");
    assert_eq!(page().await[0].name, "Desk 2");
    assert!(store.net_mark_initialized("ent-acme", &id, "pc-1", "pconn-1", 3).await.unwrap());
    assert!(get().await.initialized);
    assert!(page().await[0].initialized);
    // A new connection appears in the kept page at once.
    let mut second = (*get().await).clone();
    second.id = "6f1c2a3e-0000-4000-8000-0000000000bb".into();
    second.nonce = "n-kept".into();
    store.net_insert_connection(&second, &[]).await.unwrap();
    assert_eq!(page().await.len(), 2);

    // Records by id (get_record, find_record) follow a put and a delete.
    let get_rec = || async { store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap() };
    let find_rec = || async { store.find_record(kind::NET_ENTERPRISE, "ent-acme").await.unwrap() };
    let before = get_rec().await.unwrap();
    assert_eq!(find_rec().await.unwrap(), before);
    rename_acme(&store, "Acme Kept", 4).await;
    assert_eq!(get_rec().await.unwrap().data["name"], "Acme Kept");
    assert_eq!(find_rec().await.unwrap().data["name"], "Acme Kept");
    assert!(store.delete_record("ent-acme", kind::NET_ENTERPRISE, "ent-acme").await.unwrap());
    assert!(get_rec().await.is_none());
    assert!(find_rec().await.is_none());

    // Integrations: get and page (with its total) follow updates and deletes.
    let c = in_conn("org_kept", "conn_kept_1", "github", None, 10);
    store.in_put_connection(&c, None, &[]).await.unwrap();
    let in_get = || async { store.in_get_connection("org_kept", "conn_kept_1").await.unwrap() };
    let in_page =
        || async { store.in_list_connections("org_kept", &patchbay_store::InFilter::default(), 10, 0).await.unwrap() };
    assert_eq!(in_get().await.unwrap().display_name.as_deref(), Some("display conn_kept_1"));
    assert_eq!(in_page().await.1, 1);
    let mut changed = c.clone();
    changed.display_name = Some("renamed".into());
    changed.version = 2;
    assert!(store.in_update_connection(&changed, 1, None, None, &[]).await.unwrap());
    assert_eq!(in_get().await.unwrap().display_name.as_deref(), Some("renamed"));
    assert_eq!(in_page().await.0[0].display_name.as_deref(), Some("renamed"));
    let event = deleted_event("org_kept", "evt_kept", 11);
    assert!(store.in_delete_connection("org_kept", "conn_kept_1", None, &event, &[]).await.unwrap());
    assert!(in_get().await.is_none());
    assert_eq!(in_page().await, (Arc::new(vec![]), 0));
    // Put back, then changed by another process (a second store on the same
    // database): seen once the kept read is older than the TTL.
    store.in_put_connection(&c, None, &[]).await.unwrap();
    assert_eq!(in_get().await.unwrap().version, 1);
    let other = open(url).await;
    assert!(other.in_update_connection(&changed, 1, None, None, &[]).await.unwrap());
    tokio::time::sleep(patchbay_store::kept::TTL + Duration::from_millis(50)).await;
    assert_eq!(in_get().await.unwrap().display_name.as_deref(), Some("renamed"));
    assert_eq!(in_page().await.0[0].version, 2);
    other.close().await;
});

store_test!(a_nul_in_text_is_refused_not_a_database_error, |store, url| {
    // PostgreSQL text cannot hold a NUL: the error is `StoreError::Nul` (which
    // the faces answer with a 400), not a database error (a 500). SQLite stores it.
    apply(&store, DOC, 1).await.unwrap();
    let write = store.net_update_connection("ent-acme", &seeded_id(), Some("Desk\u{0}1"), None, 2).await;
    let read = store.get_record("ent-acme", kind::NET_ENTERPRISE, "ent\0acme").await;
    if url.starts_with("postgres") {
        assert!(matches!(write, Err(StoreError::Nul)), "{write:?}");
        assert!(matches!(read, Err(StoreError::Nul)), "{read:?}");
        let now = store.net_get_connection(NetSide::Client, "ent-acme", &seeded_id()).await.unwrap().unwrap();
        assert_eq!(now.name, "Desk 1", "nothing was written");
    } else {
        assert_eq!(write.unwrap().unwrap().name, "Desk\u{0}1");
        assert!(read.unwrap().is_none());
    }
});

store_test!(the_refresh_lease_fences_a_late_writer, |store, _url| {
    // A holds the lease; while it is live (or renewed) B cannot take it. Once it
    // lapses B takes over, and A's late write is refused even though the version
    // it read is still current; B's own write goes through.
    let c = in_conn("org_f", "conn_fence_1", "github", None, 10);
    store.in_put_connection(&c, None, &[]).await.unwrap();
    assert!(store.in_try_lock("org_f", "conn_fence_1", "A", 1_000, 0).await.unwrap());
    assert!(!store.in_try_lock("org_f", "conn_fence_1", "B", 1_500, 500).await.unwrap(), "the lease is live");
    assert!(store.in_try_lock("org_f", "conn_fence_1", "A", 2_000, 900).await.unwrap(), "the holder renews it");
    assert!(!store.in_try_lock("org_f", "conn_fence_1", "B", 2_500, 1_500).await.unwrap(), "renewed: still live");
    assert!(store.in_try_lock("org_f", "conn_fence_1", "B", 3_000, 2_001).await.unwrap(), "lapsed: taken over");
    let mut late = c.clone();
    late.display_name = Some("late".into());
    late.version = 2;
    assert!(!store.in_update_connection(&late, 1, Some("A"), None, &[]).await.unwrap(), "fenced");
    assert_eq!(store.in_get_connection("org_f", "conn_fence_1").await.unwrap().unwrap().version, 1);
    let mut fresh = c.clone();
    fresh.display_name = Some("fresh".into());
    fresh.version = 2;
    assert!(store.in_update_connection(&fresh, 1, Some("B"), None, &[]).await.unwrap());
    store.in_unlock("org_f", "conn_fence_1", "B").await.unwrap();
    let now = store.in_get_connection("org_f", "conn_fence_1").await.unwrap().unwrap();
    assert_eq!((now.version, now.display_name.as_deref()), (2, Some("fresh")));
    // Without a lease at all, a fenced write is refused; an unfenced one is not.
    fresh.version = 3;
    assert!(!store.in_update_connection(&fresh, 2, Some("B"), None, &[]).await.unwrap());
    assert!(store.in_update_connection(&fresh, 2, None, None, &[]).await.unwrap());
});

/// Runs one statement on the test database with a fresh connection.
async fn exec(url: &str, statement: &str) {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(statement).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(statement).execute(&mut c).await.unwrap();
    }
}

store_test!(start_up_seeds_skip_unchanged_entries_and_adopt_existing_objects, |store, url| {
    let plan = |doc: &str| seed::plan(doc.as_bytes()).unwrap();
    let up = seed::SeedMode::StartUp;
    store.apply_seed(&plan(DOC), &vault(), 1, up).await.unwrap();
    let conn = seeded_id();
    // The API renames the connection; an unchanged document at start-up keeps the rename.
    store.net_update_connection("ent-acme", &conn, Some("Renamed"), None, 2).await.unwrap().unwrap();
    store.apply_seed(&plan(DOC), &vault(), 3, up).await.unwrap();
    let name =
        || async { store.net_get_connection(NetSide::Client, "ent-acme", &conn).await.unwrap().unwrap().name.clone() };
    assert_eq!(name().await, "Renamed");
    // A database from before digests were kept: every object exists, none is recorded.
    // Start-up adopts what exists (keeps the rename) and creates what is missing.
    exec(url, "DELETE FROM seed_entries").await;
    exec(url, "DELETE FROM records WHERE kind = 'integrations.customer'").await;
    store.apply_seed(&plan(DOC), &vault(), 4, up).await.unwrap();
    assert_eq!(name().await, "Renamed", "adopted, not overwritten");
    assert!(store.get_record("org_demo", kind::IN_CUSTOMER, "org_demo/cus_1").await.unwrap().is_some(), "re-created");
    // Digests and their key keep the seed's secrets out of the database in the clear.
    let dump = raw_dump(url).await;
    assert!(!contains(&dump, b"PLAINTEXT-CONNECTION-TOKEN"));
    // An explicit upsert still restores the document's values.
    store.apply_seed(&plan(DOC), &vault(), 5, seed::SeedMode::Upsert).await.unwrap();
    assert_eq!(name().await, "Desk 1");
});

/// Every table of the schema, as the database lists it.
async fn tables(url: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut names: Vec<String> = if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&mut c).await.unwrap()
    };
    names.sort();
    names
}

store_test!(sandbox_snapshots_and_reset_cover_every_table, |store, url| {
    use patchbay_store::sandbox::DATA_TABLES;
    // Every table that holds state is in DATA_TABLES (a new table must be added there).
    let mut expected: Vec<String> = DATA_TABLES.iter().map(|t| t.to_string()).collect();
    // Rate-limit budgets are not state a test sets up or returns to.
    expected.extend(["_sqlx_migrations".to_string(), "sandbox_snapshots".to_string(), "rate_limits".to_string()]);
    expected.sort();
    let found: Vec<String> =
        tables(url).await.into_iter().filter(|t| !t.starts_with("in_connections_search")).collect();
    assert_eq!(found, expected);

    apply(&store, DOC, 1_000).await.unwrap();
    let conn = seeded_id();
    let saved = store.snapshot_save("before", 2_000).await.unwrap();
    assert_eq!(saved.rows["net_connections"], 1);
    assert_eq!(saved.rows["in_connections"], 1);
    assert_eq!(saved.created_at_ms, 2_000);
    // Writes after the save: a rename, and a deleted Integrations connection.
    store.net_update_connection("ent-acme", &conn, Some("Renamed"), None, 3).await.unwrap().unwrap();
    let ev = patchbay_store::InEvent {
        id: "evt_1".into(),
        tenant: "org_demo".into(),
        name: "connection.deleted".into(),
        customer_id: Some("cus_1".into()),
        data: json!({}),
        ts: 3,
    };
    assert!(store.in_delete_connection("org_demo", "conn_github_1", None, &ev, &[]).await.unwrap());
    let name = || async {
        store.net_get_connection(NetSide::Client, "ent-acme", &conn).await.unwrap().map(|c| c.name.clone())
    };
    assert_eq!(name().await.as_deref(), Some("Renamed"));
    // Restored: the state at the save, and what was kept in memory dropped.
    let restored = store.snapshot_restore("before").await.unwrap().unwrap();
    assert_eq!(restored, saved);
    assert_eq!(name().await.as_deref(), Some("Desk 1"));
    assert!(store.in_get_connection("org_demo", "conn_github_1").await.unwrap().is_some());
    assert!(store.in_get_event("org_demo", "evt_1", None).await.unwrap().is_none());
    assert!(store.find_credential("alice-token-1").await.unwrap().is_some());
    // Saving a name again replaces it; unknown names are None / false.
    store.snapshot_save("before", 4_000).await.unwrap();
    store.snapshot_save("second", 5_000).await.unwrap();
    let names: Vec<_> = store.snapshot_list().await.unwrap().into_iter().map(|s| (s.name, s.created_at_ms)).collect();
    assert_eq!(names, [("before".to_string(), 4_000), ("second".to_string(), 5_000)]);
    assert!(store.snapshot_restore("nope").await.unwrap().is_none());
    assert!(store.snapshot_delete("second").await.unwrap());
    assert!(!store.snapshot_delete("second").await.unwrap());
    // Reset to empty: nothing left, not even a token; snapshots stay.
    store.sandbox_reset(None, &vault(), 6_000).await.unwrap();
    assert!(name().await.is_none());
    assert!(store.find_credential("alice-token-1").await.unwrap().is_none());
    assert_eq!(store.snapshot_list().await.unwrap().len(), 1);
    // Reset to the seed: the document's objects again, as a start-up application writes them.
    let plan = seed::plan(DOC.as_bytes()).unwrap();
    store.sandbox_reset(Some(&plan), &vault(), 7_000).await.unwrap();
    assert_eq!(name().await.as_deref(), Some("Desk 1"));
    assert!(store.find_credential("alice-token-1").await.unwrap().is_some());
    // Restoring over a reset state still works.
    store.net_update_connection("ent-acme", &conn, Some("Again"), None, 8).await.unwrap().unwrap();
    store.snapshot_restore("before").await.unwrap().unwrap();
    assert_eq!(name().await.as_deref(), Some("Desk 1"));
});

/// Polls `f` every 10 ms for up to 10 s.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..1000 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_drop_kept_reads_on_each_others_writes() {
    use patchbay_store::PgStore;
    let Some(db) = TestDb::postgres("kept_notify").await else { return };
    let a = PgStore::connect(&db.url).await.unwrap();
    a.migrate().await.unwrap();
    let b = PgStore::connect(&db.url).await.unwrap();
    // An hour: only a notification can make B see A's writes within this test.
    b.set_kept_ttl(Duration::from_secs(3600));
    eventually("both replicas listening", async || a.keeps_reads() && b.keeps_reads()).await;
    let a: Arc<dyn Store> = Arc::new(a);
    apply(&a, DOC, 1).await.unwrap();
    let conn = seeded_id();
    let name = async |s: &PgStore| {
        s.net_get_connection(NetSide::Client, "ent-acme", &conn).await.unwrap().map(|c| c.name.clone())
    };
    // B keeps what it read: a rename written straight into the table (as by another
    // process) is not seen until the notification.
    assert_eq!(name(&b).await.as_deref(), Some("Desk 1"));
    assert!(b.find_credential("alice-token-1").await.unwrap().is_some());
    a.net_update_connection("ent-acme", &conn, Some("Renamed on A"), None, 2).await.unwrap().unwrap();
    eventually("B sees A's rename", async || name(&b).await.as_deref() == Some("Renamed on A")).await;
    // Revocation on another replica: B refuses the token once notified.
    exec(&db.url, "DELETE FROM credentials").await;
    eventually("B refuses the revoked token", async || b.find_credential("alice-token-1").await.unwrap().is_none())
        .await;
    // The channel lost: B stops keeping (what it kept is dropped), listens again, and a
    // write made meanwhile is seen.
    assert_eq!(name(&b).await.as_deref(), Some("Renamed on A"));
    exec(&db.url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN \"patchbay_kept\"' AND pid <> pg_backend_pid()").await;
    exec(&db.url, "UPDATE net_connections SET name = 'Renamed while deaf'").await;
    eventually("B sees the write made while it could not listen", async || {
        name(&b).await.as_deref() == Some("Renamed while deaf")
    })
    .await;
    eventually("B listening again", async || b.keeps_reads()).await;
}

store_test!(files_are_kept_whole_in_chunks_and_replaced, |store, _url| {
    assert_eq!(store.file_get("none").await.unwrap(), None);
    // Three chunks, the last one short; bytes of every value.
    let big: Vec<u8> = (0..(2 * patchbay_store::shared::FILE_CHUNK + 1234)).map(|i| (i * 7 % 256) as u8).collect();
    store.file_put("export/files/a", &big, 1).await.unwrap();
    assert_eq!(store.file_get("export/files/a").await.unwrap().as_deref(), Some(&big[..]));
    // Replaced by a shorter file: no chunk of the old one is left.
    store.file_put("export/files/a", b"short", 2).await.unwrap();
    assert_eq!(store.file_get("export/files/a").await.unwrap().as_deref(), Some(&b"short"[..]));
    // An empty file is a file.
    store.file_put("export/logs/empty", b"", 3).await.unwrap();
    assert_eq!(store.file_get("export/logs/empty").await.unwrap(), Some(Vec::new()));
});

store_test!(rate_budgets_are_taken_on_the_database_clock, |store, _url| {
    use patchbay_core::ratelimit::Budget;
    // One a minute, three at once: three pass, the fourth waits about a minute.
    let b = Budget { emission_us: 60_000_000, tolerance_us: 180_000_000 };
    for _ in 0..3 {
        assert_eq!(store.rate_take("network:alice", b).await.unwrap(), Ok(()));
    }
    let wait = store.rate_take("network:alice", b).await.unwrap().unwrap_err();
    assert!((55_000_000..=60_000_000).contains(&wait), "waits {wait} µs");
    // Another key has its own budget.
    assert_eq!(store.rate_take("network:bob", b).await.unwrap(), Ok(()));
    // Concurrent takes on one key never hand out more than the budget.
    let takes = (0..20).map(|_| {
        let s = store.clone();
        tokio::spawn(async move { s.rate_take("export:carol", b).await.unwrap().is_ok() })
    });
    let mut passed = 0;
    for t in takes {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 3);
});

store_test!(deep_pages_answer_as_the_shallow_ones, |store, _url| {
    use patchbay_store::{ExConnection, NetConnection, NetConnectionFilter, NetSide};
    // More than the offset from which PostgreSQL pages in two steps (1,000), some
    // inactive, two partners, equal creation times (ordered by id).
    let n = 1_060;
    for i in 0..n {
        let conn = NetConnection {
            tenant: "ent-c".into(),
            id: format!("net-{:05}", (i * 7919) % n),
            partner_tenant: "ent-p".into(),
            client_id: "client-1".into(),
            partner_id: if i % 3 == 0 { "partner-a".into() } else { "partner-b".into() },
            name: format!("Desk {i}"),
            active: i % 5 != 0,
            nonce: format!("nonce-{i}"),
            network_account_id: "acct".into(),
            proof: "proof".into(),
            partners_connection_id: None,
            partners_client_id: None,
            initialized: false,
            key_schema: "token".into(),
            key: patchbay_core::Sealed { key_id: "k".into(), blob: vec![1, 2, 3] },
            created_at: 1_000 + (i / 4) as i64,
            updated_at: 1_000,
        };
        store.net_insert_connection(&conn, &[]).await.unwrap();
        let ex = ExConnection {
            tenant: "itwin-1".into(),
            id: format!("ex-{:05}", (i * 7919) % n),
            imodel_id: "imodel-1".into(),
            display_name: format!("Export {i}"),
            authentication_type: "Service".into(),
            owner_user_id: "bob".into(),
            simulate: None,
            last_run_id: None,
            created_at: 1_000 + (i / 4) as i64,
            updated_at: 1_000,
        };
        store.ex_insert_connection(&ex).await.unwrap();
    }
    let filters = [
        NetConnectionFilter::default(),
        NetConnectionFilter { active: Some(true), partner_ids: vec!["partner-b".into()], ..Default::default() },
        NetConnectionFilter { names: vec!["Desk 1059".into(), "Desk 3".into()], ..Default::default() },
    ];
    for side in [NetSide::Client, NetSide::Partner] {
        let enterprise = if side == NetSide::Client { "ent-c" } else { "ent-p" };
        for f in &filters {
            let all = store.net_list_connections(side, enterprise, f, 5_000, 0).await.unwrap();
            for (limit, offset) in [(100, 999), (100, 1_000), (25, 1_030), (100, 2_000)] {
                let page = store.net_list_connections(side, enterprise, f, limit, offset).await.unwrap();
                let expected: Vec<_> = all.iter().skip(offset as usize).take(limit as usize).cloned().collect();
                assert_eq!(*page, expected, "{side:?} {f:?} {limit} at {offset}");
            }
        }
    }
    let all = store.ex_list_connections("itwin-1", "imodel-1", 5_000, 0).await.unwrap();
    assert_eq!(all.len(), n);
    for (limit, offset) in [(100, 999), (100, 1_000), (7, 1_053), (100, 2_000)] {
        let page = store.ex_list_connections("itwin-1", "imodel-1", limit, offset).await.unwrap();
        let expected: Vec<_> = all.iter().skip(offset as usize).take(limit as usize).cloned().collect();
        assert_eq!(*page, expected, "export {limit} at {offset}");
    }
});
