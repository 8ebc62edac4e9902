//! Bad input to every face, on both backends: malformed JSON, wrong types, deep
//! and huge bodies, path traversal, invalid UTF-8, NUL, control bytes in
//! headers, unknown methods, paging extremes and duplicate query keys. Every
//! answer arrives in time, is never a 5xx, and every error body is in the
//! shape of the face the path belongs to.

use std::time::Duration;

use patchbay::demo::DEMO_SEED;
use patchbay::start;
use patchbay_store::worker::Registry;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{ADMIN, config};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    /// `{"error": "<message>"}` (Network, Admin).
    Plain,
    /// `{"error": {"code", "message"}}` (Export).
    Export,
    /// `{"code", "message"}` (Integrations).
    Trpc,
}

fn shape_of(path: &str) -> (Shape, &'static str) {
    if path.starts_with("/api/network/") {
        (Shape::Plain, "alice-token-1")
    } else if path.starts_with("/export") {
        (Shape::Export, "bob-token-1")
    } else if path.starts_with("/v1/") {
        (Shape::Trpc, "key_demo_org_1")
    } else {
        (Shape::Plain, ADMIN)
    }
}

/// Checks one raw answer: status below 500, and an error body in the face's shape.
fn check(what: &str, shape: Shape, status: u16, content_type: Option<&str>, body: &[u8]) {
    assert!(status != 0 && status < 500, "{what}: status {status}: {}", String::from_utf8_lossy(body));
    if status < 400 {
        return;
    }
    assert!(
        content_type.is_some_and(|c| c.starts_with("application/json")),
        "{what}: {status} with content-type {content_type:?}: {}",
        String::from_utf8_lossy(body)
    );
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: {status} body is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let ok = match shape {
        Shape::Plain => v["error"].is_string(),
        Shape::Export => v["error"]["code"].is_string() && v["error"]["message"].is_string(),
        Shape::Trpc => v["code"].is_string() && v["message"].is_string(),
    };
    assert!(ok, "{what}: {status} body not in the {shape:?} shape: {v}");
}

/// One request over a fresh connection, bytes as given; the answer must come within 15 s.
async fn raw(addr: std::net::SocketAddr, req: &[u8]) -> (u16, Option<String>, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out))
        .await
        .unwrap_or_else(|_| {
            panic!("no answer within 15 s to {:?}", String::from_utf8_lossy(&req[..req.len().min(200)]))
        })
        .ok();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let ct = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string());
    let body_at = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(out.len());
    (status, ct, out[body_at..].to_vec())
}

fn request(method: &str, path: &str, token: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

const NET_CLIENT: &str = "/api/network/v1/enterprises/ent-acme/clients/connections";
const NET_ONE: &str = "/api/network/v1/enterprises/ent-acme/clients/connections/c0a80101-0000-4000-8000-000000000001";
const NET_PARTNER: &str = "/api/network/v1/enterprises/ent-exchange/partners/connections";
const NET_SIGNING: &str = "/api/network/v1/enterprises/ent-acme/clients/connections/signing";
const EX_LIST: &str = "/export/connections?iModelId=7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d05";
const EX_CREATE: &str = "/export/connections";
const EX_ONE: &str = "/export/connections/exc-nightly-ifc";
const EX_RUNS: &str = "/export/connections/exc-nightly-ifc/runs";
const IN_LIST: &str = "/v1/connection";
const IN_ONE: &str = "/v1/connection/conn_github_01JDEMO000000000000000000";
const IN_CCFG: &str = "/v1/connector-config";
const IN_CUSTOMER: &str = "/v1/customer";
const IN_EVENTS: &str = "/v1/event";
const ADMIN_SEED: &str = "/admin/v1/seed";
const ADMIN_SECRET: &str = "/admin/v1/integrations/organizations/org_demo/webhook-secret";

both_backends!(bad_input_to_every_face_is_a_4xx_in_its_shape, |db| {
    let mut c = config(&db, Some(ADMIN));
    c.body_limit_bytes = 256 * 1024;
    c.auth_failure_limit.per_second = 0;
    let srv = start(&c, Registry::new()).await.unwrap();
    let seeded = reqwest::Client::new()
        .post(format!("http://{}{ADMIN_SEED}", srv.addr))
        .bearer_auth(ADMIN)
        .body(DEMO_SEED)
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 200);
    let addr = srv.addr;

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(300 * 1024));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", b"{\"name\":".to_vec()),
        ("not JSON", b"<xml/>".to_vec()),
        ("a JSON array", b"[1,2,3]".to_vec()),
        ("a JSON string", b"\"text\"".to_vec()),
        ("null", b"null".to_vec()),
        ("wrong types", br#"{"name":5,"active":"yes","nonce":[],"iModelId":7,"displayName":{},"connector_config_id":1,"customer_id":false,"settings":"x","limit":"many","id":null}"#.to_vec()),
        ("NUL in strings", br#"{"name":"a\u0000b","nonce":"\u0000","displayName":"\u0000","iModelId":"\u0000","customer_id":"c\u0000","connector_config_id":"ccfg_\u0000","id":"\u0000"}"#.to_vec()),
        ("invalid UTF-8", b"{\"name\":\"\xff\xfe\"}".to_vec()),
        ("deep arrays", deep.into_bytes()),
        ("deep objects", deep_obj.into_bytes()),
        ("huge", huge.into_bytes()),
        ("empty", Vec::new()),
    ];
    let writes = [
        ("POST", NET_CLIENT),
        ("PUT", NET_ONE),
        ("POST", NET_SIGNING),
        ("POST", EX_CREATE),
        ("POST", EX_RUNS),
        ("POST", IN_LIST),
        ("POST", IN_CCFG),
        ("PUT", IN_CUSTOMER),
        ("POST", "/v1/connection/conn_github_01JDEMO000000000000000000/check"),
        ("POST", ADMIN_SEED),
    ];
    for (method, path) in writes {
        let (shape, token) = shape_of(path);
        for (class, body) in &bodies {
            let (status, ct, got) = raw(addr, &request(method, path, token, "", body)).await;
            check(&format!("{method} {path} with {class}"), shape, status, ct.as_deref(), &got);
        }
    }

    let reads =
        [NET_CLIENT, NET_ONE, NET_PARTNER, EX_LIST, EX_ONE, EX_RUNS, IN_LIST, IN_ONE, IN_CCFG, IN_EVENTS, ADMIN_SECRET];
    let queries = [
        "limit=-1",
        "limit=0",
        "limit=99999999999999999999999",
        "offset=-5",
        "offset=1e99",
        "offset=99999999999",
        "$top=-1",
        "$top=100000000000",
        "$skip=-1",
        "$skip=abc",
        "pageSize=0",
        "pageSize=-3",
        "page=99999999999999999999",
        "limit=1&limit=2",
        "offset=1&offset=x",
        "iModelId=a&iModelId=b",
        "include_secrets=true&include_secrets=false",
        "refresh_policy=none&refresh_policy=force",
        "expand=connector&expand=%ff",
        "search_query=%00",
        "search_query=%25%5F%5C",
        "partnerId=%00&connectionId=%ff%fe",
        "active=maybe&active=true",
        "%ff=%fe",
        "a=%",
        "=&&=",
    ];
    for path in reads {
        let (shape, token) = shape_of(path);
        for q in queries {
            let sep = if path.contains('?') { '&' } else { '?' };
            let target = format!("{path}{sep}{q}");
            let (status, ct, got) = raw(addr, &request("GET", &target, token, "", b"")).await;
            check(&format!("GET {target}"), shape, status, ct.as_deref(), &got);
        }
    }

    // Paths: traversal, invalid UTF-8, NUL, over-long ids, empty segments.
    let paths = [
        "/export/connections/..%2F..%2Fetc%2Fpasswd",
        "/export/connections/../../etc/passwd",
        "/export/files/..%2F..%2Fpatchbay.db",
        "/export/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/export/connections/%ff%fe",
        "/export/connections/a%00b",
        "/export/connections/exc-nightly-ifc/runs/%ff",
        "/v1/connection/%ff%fe",
        "/v1/connection/conn_%00",
        "/v1/connection/..%2f..%2fadmin",
        "/v1/connector-config/%ff",
        "/v1/customer/%00/token",
        "/api/network/v1/enterprises/%ff/clients/connections",
        "/api/network/v1/enterprises/ent-acme/clients/connections/%00",
        "/api/network/v1/enterprises/ent-acme/clients/connections/..%2f..%2fpartners",
        "/api/network/v1/enterprises//clients/connections",
        "/admin/v1/integrations/organizations/a%00b/webhook-secret",
        "/admin/v1/integrations/organizations/%ff/webhook-secret",
        "/admin/v1/..%2f..%2fetc%2fpasswd",
    ];
    let long_id = format!("/v1/connection/conn_{}", "x".repeat(8_000));
    for path in paths.iter().copied().chain([long_id.as_str()]) {
        let (shape, token) = shape_of(path);
        for method in ["GET", "DELETE", "POST", "PUT"] {
            let (status, ct, got) = raw(addr, &request(method, path, token, "", b"{}")).await;
            check(&format!("{method} {}", &path[..path.len().min(80)]), shape, status, ct.as_deref(), &got);
        }
    }

    // Unknown and unexpected methods.
    for path in [NET_CLIENT, NET_ONE, EX_LIST, EX_ONE, IN_LIST, IN_ONE, ADMIN_SEED, ADMIN_SECRET] {
        let (shape, token) = shape_of(path);
        for method in ["PATCH", "FOO", "OPTIONS", "TRACE", "PROPFIND"] {
            let (status, ct, got) = raw(addr, &request(method, path, token, "", b"")).await;
            check(&format!("{method} {path}"), shape, status, ct.as_deref(), &got);
        }
    }

    // Headers: control bytes, bad tokens, odd Accept and Content-Type values.
    let header_cases: Vec<Vec<u8>> = vec![
        b"Accept: a\x01b\r\n".to_vec(),
        b"Accept: \x7f\r\n".to_vec(),
        b"X-Request-Id: \x1b[31m\r\n".to_vec(),
        b"Accept: application/vnd.bentley.itwin-platform.v99+json\r\n".to_vec(),
        b"Accept: */*;q=abc\r\n".to_vec(),
        b"X-Request-Id: \xff\xfe\r\n".to_vec(),
        format!("X-Big: {}\r\n", "h".repeat(200 * 1024)).into_bytes(),
    ];
    for path in [NET_CLIENT, EX_LIST, IN_LIST, ADMIN_SECRET] {
        let (shape, token) = shape_of(path);
        for h in &header_cases {
            let mut req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n").into_bytes();
            req.extend_from_slice(h);
            req.extend_from_slice(b"Connection: close\r\n\r\n");
            let (status, ct, got) = raw(addr, &req).await;
            check(
                &format!("GET {path} with header {:?}", String::from_utf8_lossy(&h[..h.len().min(40)])),
                shape,
                status,
                ct.as_deref(),
                &got,
            );
        }
        for auth in ["Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer a\tb", "Bearer \u{e9}\u{e9}", "bearer x.y.z"] {
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n");
            let (status, ct, got) = raw(addr, req.as_bytes()).await;
            check(&format!("GET {path} with Authorization {auth:?}"), shape, status, ct.as_deref(), &got);
            assert!(
                status == 401 || status == 400 || status == 403 || status == 200 && path.starts_with("/v1/"),
                "{path} {auth:?}: {status}"
            );
        }
    }
    // The server still answers normally afterwards.
    let ok = reqwest::Client::new()
        .get(format!("http://{addr}{IN_LIST}"))
        .bearer_auth("key_demo_org_1")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    srv.shutdown().await.unwrap();
});
