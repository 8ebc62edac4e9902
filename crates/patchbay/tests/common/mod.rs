//! Shared helpers for the black-box tests: a server on an ephemeral port
//! over a fresh database (SQLite, or PostgreSQL when configured).
#![allow(dead_code)]

use patchbay::{Config, Running, start};
use patchbay_store::testing::TestDb;
use patchbay_store::worker::Registry;
use serde_json::Value;

pub const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const ADMIN: &str = "test-admin-token";

pub fn config(db: &TestDb, admin: Option<&str>) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".into(),
        database_url: db.url.clone(),
        master_keys: Some(K1.into()),
        admin_token: admin.map(str::to_string),
        ..Default::default()
    };
    c.outbound.allow_loopback = true;
    c.jobs.poll_interval_ms = 10;
    c.jobs.backoff_base_ms = 20;
    c.jobs.backoff_max_ms = 200;
    c
}

pub async fn boot(db: &TestDb, admin: Option<&str>) -> Running {
    start(&config(db, admin), Registry::new()).await.expect("server starts")
}

/// One test body, run on SQLite and (when PATCHBAY_TEST_DATABASE_URL is set) PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = patchbay_store::testing::TestDb::sqlite();
                $body
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($db) = patchbay_store::testing::TestDb::postgres(stringify!($name)).await else { return };
                $body
            }
        }
    };
}

/// A response's status, headers and JSON body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

pub async fn call(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, headers, body }
}
