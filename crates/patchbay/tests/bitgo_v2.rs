//! BitGo's v2 HMAC authentication on the Network face, over real HTTP on both
//! backends: requests signed as `@bitgo/sdk-hmac` signs them (its known answers
//! are in patchbay-core), answers signed with `hmac` and `timestamp`, and
//! stale, forged or unknown requests refused with BitGo's 401 body. When
//! `tools/bitgo/node_modules` holds the npm packages (`.ci/run` installs them),
//! the same story runs through the real `@bitgo/sdk-hmac` too.

use patchbay::demo::DEMO_SEED;
use patchbay::start;
use patchbay_core::bitgo_hmac::{AuthVersion, hmac_hex, request_subject, response_subject, token_hash_hex};
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, config};

const V2_TOKEN: &str = "v2x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const LIST: &str = "/api/network/v1/enterprises/ent-acme/clients/connections";
const ONE: &str = "/api/network/v1/enterprises/ent-acme/clients/connections/c0a80101-0000-4000-8000-000000000001";

fn seed() -> String {
    let mut doc: Value = serde_json::from_str(DEMO_SEED).unwrap();
    doc["network"]["users"][0]["tokens"]
        .as_array_mut()
        .unwrap()
        .push(json!({"token": V2_TOKEN, "scopes": ["settlement_network_read", "settlement_network_write"]}));
    doc.to_string()
}

/// A request signed as BitGoJS signs it, at `ts` (ms).
fn signed(
    http: &reqwest::Client,
    method: reqwest::Method,
    base: &str,
    path: &str,
    body: &str,
    ts: i64,
) -> reqwest::RequestBuilder {
    let hmac =
        hmac_hex(V2_TOKEN, &request_subject(AuthVersion::V2, method.as_str(), &ts.to_string(), path, body.as_bytes()));
    let mut req = http
        .request(method, format!("{base}{path}"))
        .header("Authorization", format!("Bearer {}", token_hash_hex(V2_TOKEN)))
        .header("Auth-Timestamp", ts.to_string())
        .header("HMAC", hmac)
        .header("BitGo-Auth-Version", "2.0");
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json").body(body.to_string());
    }
    req
}

/// Status, body, and whether the answer's `hmac` verifies over `path`.
async fn answer(req: reqwest::RequestBuilder, path: &str) -> (u16, Value, Option<bool>) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let hmac = resp.headers().get("hmac").map(|v| v.to_str().unwrap().to_string());
    let ts = resp.headers().get("timestamp").map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    let verified = match (hmac, ts) {
        (Some(h), Some(t)) => {
            Some(hmac_hex(V2_TOKEN, &response_subject(AuthVersion::V2, "", &t, path, status, text.as_bytes())) == h)
        }
        _ => None,
    };
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), verified)
}

both_backends!(v2_requests_are_verified_and_answers_signed, |db| {
    let srv = start(&config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.addr);
    let a = http.post(format!("{base}/admin/v1/seed")).bearer_auth(ADMIN).body(seed()).send().await.unwrap();
    assert_eq!(a.status(), 200);
    let now = chrono::Utc::now().timestamp_millis();

    // A signed read, with a query: 200 and a signed answer.
    let path = format!("{LIST}?limit=1&offset=0");
    let (status, body, verified) = answer(signed(&http, reqwest::Method::GET, &base, &path, "", now), &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["connections"][0]["name"], "Desk 1");
    assert_eq!(verified, Some(true), "the answer's hmac verifies");
    // A signed write: the body is in the subject.
    let (status, body, verified) =
        answer(signed(&http, reqwest::Method::PUT, &base, ONE, r#"{"name":"Signed desk"}"#, now), ONE).await;
    assert_eq!((status, &body["connection"]["name"]), (200, &json!("Signed desk")), "{body}");
    assert_eq!(verified, Some(true));
    // An error the handler answers (a bad id) is signed too.
    let bad = format!("{LIST}/not-a-uuid");
    let (status, _, verified) = answer(signed(&http, reqwest::Method::GET, &base, &bad, "", now), &bad).await;
    assert_eq!((status, verified), (400, Some(true)));

    // Refusals: BitGo's 401 body, nothing signed.
    let unauthorized = |m: &str| json!({"error": m});
    let forged = signed(&http, reqwest::Method::PUT, &base, ONE, r#"{"name":"x"}"#, now)
        .body(r#"{"name":"tampered"}"#.to_string());
    assert_eq!(
        answer(forged, ONE).await,
        (401, unauthorized("Unauthorized: the request HMAC is invalid."), None),
        "a body other than the one signed"
    );
    let stale = signed(&http, reqwest::Method::GET, &base, LIST, "", now - 6 * 60 * 1000);
    assert_eq!(
        answer(stale, LIST).await,
        (401, unauthorized("Unauthorized: the request timestamp is outside the validity window."), None)
    );
    let other_path = signed(&http, reqwest::Method::GET, &base, LIST, "", now).header("x-unrelated", "1");
    assert_eq!(answer(other_path, LIST).await.0, 200, "headers outside the subject do not matter");
    let wrong_path = http
        .get(format!("{base}{LIST}?limit=2"))
        .header("Authorization", format!("Bearer {}", token_hash_hex(V2_TOKEN)))
        .header("Auth-Timestamp", now.to_string())
        .header("HMAC", hmac_hex(V2_TOKEN, &request_subject(AuthVersion::V2, "GET", &now.to_string(), LIST, b"")))
        .header("BitGo-Auth-Version", "2.0");
    assert_eq!(answer(wrong_path, LIST).await.0, 401, "the query is in the subject");
    let unknown = http
        .get(format!("{base}{LIST}"))
        .header("Authorization", format!("Bearer {}", token_hash_hex("v2xnot-a-seeded-token")))
        .header("Auth-Timestamp", now.to_string())
        .header("HMAC", "00")
        .header("BitGo-Auth-Version", "2.0");
    assert_eq!(
        answer(unknown, LIST).await,
        (401, unauthorized("Unauthorized: the access token is invalid or expired."), None)
    );
    let missing =
        http.get(format!("{base}{LIST}")).header("BitGo-Auth-Version", "2.0").bearer_auth(token_hash_hex(V2_TOKEN));
    assert_eq!(answer(missing, LIST).await.0, 401);
    // Version 3: the method is in both subjects.
    let ts = now.to_string();
    let v3 = |m: &str| hmac_hex(V2_TOKEN, &request_subject(AuthVersion::V3, m, &ts, LIST, b""));
    // A GET of the list with the given HMAC and version header.
    let hashed = |hmac: String, version: &str| {
        http.get(format!("{base}{LIST}"))
            .header("Authorization", format!("Bearer {}", token_hash_hex(V2_TOKEN)))
            .header("Auth-Timestamp", &ts)
            .header("HMAC", hmac)
            .header("BitGo-Auth-Version", version)
    };
    let resp = hashed(v3("GET"), "3.0").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (h, t) = (
        resp.headers()["hmac"].to_str().unwrap().to_string(),
        resp.headers()["timestamp"].to_str().unwrap().to_string(),
    );
    let text = resp.text().await.unwrap();
    assert_eq!(h, hmac_hex(V2_TOKEN, &response_subject(AuthVersion::V3, "GET", &t, LIST, 200, text.as_bytes())));
    let wrong_method = hashed(v3("POST"), "3.0");
    assert_eq!(answer(wrong_method, LIST).await.0, 401, "v3 signs the method");
    let v4 = hashed(v3("GET"), "4.0");
    assert_eq!(
        answer(v4, LIST).await,
        (401, unauthorized("Unauthorized: BitGo-Auth-Version must be 2.0 or 3.0."), None)
    );
    // The token sent plainly (how BitGoJS sends tokens of other forms) still works, unsigned.
    let plain = http.get(format!("{base}{LIST}")).bearer_auth(V2_TOKEN);
    let (status, _, verified) = answer(plain, LIST).await;
    assert_eq!((status, verified), (200, None));
    // The token's hash alone, without the v2 headers, is not a credential.
    let hash_only = http.get(format!("{base}{LIST}")).bearer_auth(token_hash_hex(V2_TOKEN));
    assert_eq!(answer(hash_only, LIST).await.0, 401);
    srv.shutdown().await.unwrap();
});

/// The same through npm `@bitgo/sdk-hmac` itself (tools/bitgo/sdk-hmac-check.js).
#[tokio::test]
async fn the_real_sdk_hmac_signs_and_verifies_against_patchbay() {
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/bitgo");
    if !tools.join("node_modules/@bitgo/sdk-hmac").exists() {
        eprintln!("skipped: tools/bitgo/node_modules lacks @bitgo/sdk-hmac (npm ci --prefix tools/bitgo installs it)");
        return;
    }
    let db = patchbay_store::testing::TestDb::sqlite();
    let srv = start(&config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let a =
        http.post(format!("http://{}/admin/v1/seed", srv.addr)).bearer_auth(ADMIN).body(seed()).send().await.unwrap();
    assert_eq!(a.status(), 200);
    let out = tokio::process::Command::new("node")
        .arg(tools.join("sdk-hmac-check.js"))
        .env("PATCHBAY_URL", format!("http://{}", srv.addr))
        .env("BITGO_TOKEN", V2_TOKEN)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verified 4 signed answers"), "{stdout}");
    srv.shutdown().await.unwrap();
    // The token is the HMAC key: it is kept sealed, never in the database files in the clear.
    let dir = patchbay_store::sqlite_path(&db.url).unwrap().parent().unwrap().to_path_buf();
    for e in std::fs::read_dir(&dir).unwrap() {
        // A -wal/-shm file may vanish as the last connection closes.
        let Ok(bytes) = std::fs::read(e.unwrap().path()) else { continue };
        assert!(
            !bytes.windows(V2_TOKEN.len()).any(|w| w == V2_TOKEN.as_bytes()),
            "the v2 token is in the database files"
        );
    }
}
