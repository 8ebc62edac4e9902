//! Issue 18: slow clients, declared bodies over the limit, the Host header,
//! framework answers in each face's error shape, and keep-alive after unread
//! bodies. Raw sockets where a client library would hide the wire. Both backends.

use std::time::{Duration, Instant};

use patchbay::demo::DEMO_SEED;
use patchbay::start;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{ADMIN, call, config};

/// Sends raw bytes and reads the answer until the server closes or `wait` passes.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_until_closed(&mut s, wait).await
}

/// Reads until EOF (true) or until `wait` passes (false).
async fn read_until_closed(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// Status, lower-cased headers and JSON body of one raw HTTP/1.1 answer.
fn parse(answer: &str) -> (u16, Vec<(String, String)>, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

both_backends!(a_client_sending_a_partial_head_is_disconnected, |db| {
    let mut c = config(&db, None);
    c.header_read_timeout_secs = 1;
    c.keep_alive_timeout_secs = 2;
    let srv = start(&c, Registry::new()).await.unwrap();
    // Partial headers, then nothing: cut off after the header time-out, not held.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(20)).await;
    assert!(closed, "still connected after 20 s");
    assert_eq!(got, "", "nothing answered to a head that never ended");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    // A connection that never sends a byte is cut off the same way.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    assert!(read_until_closed(&mut s, Duration::from_secs(20)).await.1);
    // A keep-alive connection is served, then closed once idle for the idle time-out
    // (longer than the header time-out: an idle client is not a slow one).
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(20)).await;
    assert!(closed);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(started.elapsed() >= Duration::from_millis(1_900), "{:?}", started.elapsed());
    srv.shutdown().await.unwrap();
});

both_backends!(connections_over_the_cap_wait_for_a_free_one, |db| {
    let mut c = config(&db, None);
    c.max_connections = 2;
    c.header_read_timeout_secs = 30;
    let srv = start(&c, Registry::new()).await.unwrap();
    // Two idle connections hold both places; a third is accepted by the kernel but not served.
    let a = TcpStream::connect(srv.addr).await.unwrap();
    let _b = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(srv.addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (got, closed) = read_until_closed(&mut third, Duration::from_millis(700)).await;
    assert_eq!((got.as_str(), closed), ("", false), "served beyond the cap");
    // One place frees: the waiting client is served.
    drop(a);
    let (got, closed) = read_until_closed(&mut third, Duration::from_secs(10)).await;
    assert!(closed && got.starts_with("HTTP/1.1 200"), "{got}");
    srv.shutdown().await.unwrap();
});

both_backends!(a_declared_body_over_the_limit_is_refused_unread_in_the_faces_shape, |db| {
    let mut c = config(&db, Some(ADMIN));
    c.body_limit_bytes = 1024;
    let srv = start(&c, Registry::new()).await.unwrap();
    for (path, body) in [
        (
            "/export/connections",
            json!({"error": {"code": "RequestTooLarge",
            "message": "Failed to buffer the request body: length limit exceeded"}}),
        ),
        (
            "/v1/connection",
            json!({"code": "PAYLOAD_TOO_LARGE", "message": "Failed to buffer the request body: length limit exceeded"}),
        ),
        (
            "/api/network/v1/enterprises/e/clients/connections",
            json!({"error": "Failed to buffer the request body: length limit exceeded"}),
        ),
        ("/admin/v1/seed", json!({"error": "Failed to buffer the request body: length limit exceeded"})),
    ] {
        // Only the head is sent: the answer comes without the body ever arriving.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
        );
        let (got, closed) = raw(srv.addr, head.as_bytes(), Duration::from_secs(10)).await;
        let (status, headers, got_body) = parse(&got);
        assert_eq!((status, got_body), (413, body), "{path}: {got}");
        assert_eq!(header(&headers, "connection"), Some("close"), "{path}");
        assert!(closed, "{path}: the connection closes");
    }
    // A chunked body over the limit: read up to the limit, then the same 413.
    let chunk = "x".repeat(2000);
    let req = format!(
        "POST /v1/connection HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (got, _) = raw(srv.addr, req.as_bytes(), Duration::from_secs(10)).await;
    let (status, _, body) = parse(&got);
    assert_eq!((status, body["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{got}");
    srv.shutdown().await.unwrap();
});

both_backends!(an_invalid_host_is_refused_not_reflected, |db| {
    let srv = start(&config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    for (path, shape) in [
        (
            "/export/connections",
            json!({"error": {"code": "InvalidRequest", "message": "The Host header is not a valid host[:port]."}}),
        ),
        ("/v1/connection", json!({"code": "BAD_REQUEST", "message": "The Host header is not a valid host[:port]."})),
        (
            "/api/network/v1/enterprises/e/clients/connections",
            json!({"error": "The Host header is not a valid host[:port]."}),
        ),
        ("/admin/v1/network/signing-key", json!({"error": "The Host header is not a valid host[:port]."})),
    ] {
        for host in ["a\"><script>x</script>", "a b", "host:port", "evil/x"] {
            let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let (got, _) = raw(srv.addr, req.as_bytes(), Duration::from_secs(10)).await;
            let (status, headers, body) = parse(&got);
            assert_eq!((status, &body), (400, &shape), "{path} {host:?}: {got}");
            assert!(!got.contains("<script>"), "reflected: {got}");
            assert!(header(&headers, "location").is_none());
        }
    }
    // A valid Host still builds links.
    let req = "GET /healthz HTTP/1.1\r\nHost: patchbay.example:8443\r\nConnection: close\r\n\r\n";
    assert!(raw(srv.addr, req.as_bytes(), Duration::from_secs(10)).await.0.starts_with("HTTP/1.1 200"));
    srv.shutdown().await.unwrap();
});

both_backends!(framework_answers_come_in_each_faces_shape, |db| {
    let srv = start(&config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let u = |p: &str| format!("http://{}{p}", srv.addr);
    // 405 on every face, with Allow, in the face's shape.
    let a = call(http.patch(u("/export/connections")).bearer_auth("t")).await;
    assert_eq!(
        (a.status, a.body),
        (405, json!({"error": {"code": "MethodNotAllowed", "message": "The method is not allowed for this path."}}))
    );
    let a = call(http.patch(u("/v1/connection"))).await;
    assert_eq!(
        (a.status, &a.body),
        (405, &json!({"code": "METHOD_NOT_SUPPORTED", "message": "The method is not allowed for this path."}))
    );
    assert!(a.headers["allow"].to_str().unwrap().contains("GET"));
    let a = call(http.delete(u("/api/network/v1/enterprises/e/clients/connections"))).await;
    assert_eq!((a.status, a.body), (405, json!({"error": "The method is not allowed for this path."})));
    let a = call(http.get(u("/admin/v1/seed"))).await;
    assert_eq!((a.status, a.body), (405, json!({"error": "The method is not allowed for this path."})));
    // Invalid UTF-8 in a path id: a 400 in the face's shape, not the framework's text.
    for (path, code) in [
        ("/v1/connection/%ff%fe", json!("BAD_REQUEST")),
        ("/export/connections/%ff%fe", json!("InvalidRequest")),
        ("/admin/v1/integrations/organizations/%ff/webhook-secret", Value::Null),
    ] {
        let a = call(http.get(u(path)).bearer_auth(ADMIN)).await;
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert_eq!(a.headers["content-type"], "application/json", "{path}");
        match code {
            Value::Null => assert!(a.body["error"].is_string(), "{path}: {}", a.body),
            c if c == "BAD_REQUEST" => assert_eq!(a.body["code"], c, "{path}: {}", a.body),
            c => assert_eq!(a.body["error"]["code"], c, "{path}: {}", a.body),
        }
    }
    srv.shutdown().await.unwrap();
});

both_backends!(an_unread_body_leaves_the_connection_reusable, |db| {
    let srv = start(&config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    // One keep-alive connection: requests whose bodies no handler reads, then another request.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let body = "x".repeat(300 * 1024);
    for (method, path) in [("DELETE", "/export/connections/nope"), ("GET", "/no/such/route"), ("GET", "/healthz")] {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Read one answer: its head, then Content-Length bytes.
        loop {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "{method} {path}: the server closed the connection");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                let (_, headers, _) = parse(&text);
                let len: usize = header(&headers, "content-length").unwrap().parse().unwrap();
                if rest.len() >= len {
                    assert!(header(&headers, "connection").is_none_or(|v| v != "close"), "{head}");
                    break;
                }
            }
        }
    }
    let (status, _, _) = {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let (got, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
        parse(&got)
    };
    assert_eq!(status, 200);
    srv.shutdown().await.unwrap();
});

both_backends!(a_head_the_parser_refuses_is_answered_in_the_faces_shape, |db| {
    let srv = start(&config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    let message = "The request could not be parsed: a malformed request line or header (for example a control character in a header value).";
    for (path, shape) in [
        ("/v1/viewer", json!({"code": "BAD_REQUEST", "message": message})),
        ("/export/connections", json!({"error": {"code": "InvalidRequest", "message": message}})),
        ("/api/network/v1/enterprises/e/clients/connections", json!({"error": message})),
        ("/admin/v1/seed", json!({"error": message})),
    ] {
        for byte in [0u8, 1, 0x1b, 0x7f] {
            let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: a").into_bytes();
            req.push(byte);
            req.extend_from_slice(b"b\r\n\r\n");
            let (got, closed) = raw(srv.addr, &req, Duration::from_secs(10)).await;
            let (status, headers, body) = parse(&got);
            assert_eq!((status, &body), (400, &shape), "{path} {byte:#x}: {got:?}");
            assert_eq!(header(&headers, "content-type"), Some("application/json"));
            assert_eq!(header(&headers, "content-length"), Some(body.to_string().len().to_string().as_str()));
            assert!(closed);
        }
    }
    // After a good request on the same connection, a bad head is still answered in shape.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    s.write_all(b"GET /v1/viewer HTTP/1.1\r\nHost: x\r\nAccept: \x01\r\n\r\n").await.unwrap();
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert_eq!(parse(&got).2, json!({"code": "BAD_REQUEST", "message": message}), "{got:?}");
    // A tab is a valid header byte: answered normally.
    let (got, _) = raw(
        srv.addr,
        b"GET /v1/viewer HTTP/1.1\r\nHost: x\r\nAccept: a\tb\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(parse(&got).0, 200, "{got:?}");
    srv.shutdown().await.unwrap();
});

/// A listener that counts the connections it is offered.
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, hits)
}

both_backends!(ipv6_forms_of_refused_addresses_are_refused_on_the_token_and_api_key_paths, |db| {
    // The guard as deployed: no loopback exemption.
    let mut c = config(&db, Some(ADMIN));
    c.outbound.allow_loopback = false;
    let srv = start(&c, Registry::new()).await.unwrap();
    let (port, hits) = counting_listener().await;
    let http = reqwest::Client::new();
    let u = |p: &str| format!("http://{}{p}", srv.addr);
    let expired = (chrono::Utc::now() - chrono::Duration::seconds(60)).to_rfc3339();
    let mut forms: Vec<String> = patchbay_http::outbound::FORBIDDEN_V6_FORMS.iter().map(|f| format!("[{f}]")).collect();
    forms.extend(["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::ffff:127.0.0.1]"].map(String::from));
    for (i, host) in forms.iter().enumerate() {
        let base = format!("http://{host}:{port}");
        let doc = json!({"integrations": {
            "organizations": [{"id": "org_s", "name": "S", "apiKey": "key_org_s"}],
            "customers": [{"orgId": "org_s", "id": "cus_1"}],
            "connectorConfigs": [
                {"id": format!("ccfg_github_{i}"), "orgId": "org_s", "connectorName": "github",
                 "config": {"oauth": {"client_id": "c", "client_secret": "s"}}, "overrides": {"tokenUrl": format!("{base}/token")}},
                {"id": format!("ccfg_acme-apikey_{i}"), "orgId": "org_s", "connectorName": "acme-apikey", "overrides": {"baseUrl": base}}],
            "connections": [
                {"id": format!("conn_github_{i}"), "connectorConfigId": format!("ccfg_github_{i}"), "customerId": "cus_1",
                 "settings": {"oauth": {"credentials": {"access_token": "a", "refresh_token": "r", "expires_at": expired}}}},
                {"id": format!("conn_acme-apikey_{i}"), "connectorConfigId": format!("ccfg_acme-apikey_{i}"), "customerId": "cus_1",
                 "settings": {"api_key": "k"}}]}});
        let a = call(http.post(u("/admin/v1/seed")).bearer_auth(ADMIN).body(doc.to_string())).await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
        for (conn, what) in
            [(format!("conn_github_{i}"), "Token refresh"), (format!("conn_acme-apikey_{i}"), "API key verification")]
        {
            let a =
                call(http.post(u(&format!("/v1/connection/{conn}/check"))).bearer_auth("key_org_s").json(&json!({})))
                    .await;
            assert_eq!(a.status, 200, "{host}: {}", a.body);
            let msg = a.body["status_message"].as_str().unwrap_or_default();
            assert!(msg.starts_with(what) && msg.contains("not a public address"), "{host} {what}: {}", a.body);
        }
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "a refused address was contacted");
    srv.shutdown().await.unwrap();
});

both_backends!(a_faces_limit_covers_every_route_of_the_face, |db| {
    use patchbay_core::ratelimit::RateQuota;
    let mut c = config(&db, Some(ADMIN));
    c.rate_limits.admin = Some(RateQuota { per_second: 1, burst: 1 });
    c.rate_limits.integrations = Some(RateQuota { per_second: 1, burst: 1 });
    let srv = start(&c, Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let u = |p: &str| format!("http://{}{p}", srv.addr);
    // Every admin route draws on the admin budget, not only the seed (the first call is
    // a quick 404, so the bucket has not refilled when the next two arrive).
    let a = call(http.get(u("/admin/v1/integrations/organizations/org_x/webhook-secret")).bearer_auth(ADMIN)).await;
    assert_eq!(a.status, 404, "{}", a.body);
    for path in ["/admin/v1/network/signing-key", "/admin/v1/integrations/organizations/org_x/webhook-secret"] {
        let a = call(http.get(u(path)).bearer_auth(ADMIN)).await;
        assert_eq!(a.status, 429, "{path}: {}", a.body);
        assert_eq!(a.headers["retry-after"], "1");
        assert_eq!(a.body, json!({"error": "Rate limit exceeded; retry after 1 seconds."}));
    }
    // A public route of a face (no principal) is limited per client address.
    // The first is served; of the next ten, sent back to back, at least one finds the bucket
    // empty (one a second refills it: on a loaded machine a single second request may not).
    assert_eq!(call(http.get(u("/v1/connector?limit=1"))).await.status, 200);
    let mut limited = None;
    for _ in 0..10 {
        let a = call(http.get(u("/v1/connector?limit=1"))).await;
        if a.status != 200 {
            limited = Some(a);
            break;
        }
    }
    let a = limited.expect("the face's limit applies to its public routes");
    assert_eq!((a.status, &a.body["code"]), (429, &json!("TOO_MANY_REQUESTS")), "{}", a.body);
    srv.shutdown().await.unwrap();
});

both_backends!(failed_authentications_are_limited_per_client_address, |db| {
    use patchbay_core::ratelimit::RateQuota;
    let mut c = config(&db, Some(ADMIN));
    c.auth_failure_limit = RateQuota { per_second: 1, burst: 3 };
    let srv = start(&c, Registry::new()).await.unwrap();
    let http = reqwest::Client::new();
    let u = |p: &str| format!("http://{}{p}", srv.addr);
    let seed = json!({"integrations": {"organizations": [{"id": "org_a", "name": "A", "apiKey": "key_org_a"}]}});
    assert_eq!(call(http.post(u("/admin/v1/seed")).bearer_auth(ADMIN).body(seed.to_string())).await.status, 200);
    // A request that presents no credential is not a failed authentication.
    for _ in 0..10 {
        assert_eq!(call(http.get(u("/export/connections?iModelId=x"))).await.status, 401);
    }
    for _ in 0..3 {
        assert_eq!(call(http.get(u("/v1/connection")).bearer_auth("wrong-key")).await.status, 401);
    }
    // The budget is spent: this failure and everything after it from this address get 429.
    let a = call(http.get(u("/v1/connection")).bearer_auth("wrong-key")).await;
    assert_eq!((a.status, &a.body["code"]), (429, &json!("TOO_MANY_REQUESTS")), "{}", a.body);
    assert!(a.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Even a right key: a guessing client learns nothing until it has waited.
    let a = call(http.get(u("/v1/connection")).bearer_auth("key_org_a")).await;
    assert_eq!(a.status, 429, "{}", a.body);
    // Across faces, each in its own shape.
    let a = call(http.get(u("/export/connections?iModelId=x")).bearer_auth("nope")).await;
    assert_eq!((a.status, &a.body["error"]["code"]), (429, &json!("RateLimitExceeded")), "{}", a.body);
    let a = call(http.get(u("/admin/v1/network/signing-key")).bearer_auth("nope")).await;
    assert_eq!((a.status, a.body["error"].is_string()), (429, true), "{}", a.body);
    // The platform's health endpoint is not a face's route.
    assert_eq!(call(http.get(u("/healthz"))).await.status, 200);
    // Once the bucket has a token again, the right key works.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let a = call(http.get(u("/v1/connection")).bearer_auth("key_org_a")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    srv.shutdown().await.unwrap();
});

both_backends!(ipv6_forms_of_refused_addresses_are_refused_on_the_job_paths, |db| {
    // Partner initialisation callbacks, webhooks and export blob uploads: each form of
    // a refused address is refused by the guard (its message), never contacted.
    use patchbay_store::worker::JobHandler;
    let mut c = config(&db, Some(ADMIN));
    c.outbound.allow_loopback = false;
    c.jobs.max_attempts = 1;
    c.data_dir = Some(std::env::temp_dir().join(format!("pb-ssrf-{}", uuid::Uuid::new_v4().simple())));
    for t in ["IFC", "PDF"] {
        c.export.exporters.insert(
            t.into(),
            patchbay_http::export::exporter::ExporterConfig::Simulate { delay_ms: 1, result: "Success".into() },
        );
    }
    let srv = start(&c, Registry::new()).await.unwrap();
    let (port, hits) = counting_listener().await;
    let http = reqwest::Client::new();
    let u = |p: &str| format!("http://{}{p}", srv.addr);
    let partner = patchbay_http::network::initialize::PartnerInitializer::new(srv.state.clone(), srv.outbound.clone());
    let webhooks = patchbay_http::integrations::webhook::WebhookSender::new(srv.state.clone());
    let job = |tenant: &str, payload: Value| patchbay_store::Job {
        tenant: tenant.into(),
        id: "j".into(),
        kind: "k".into(),
        payload,
        state: patchbay_store::JobState::Running,
        attempts: 1,
        max_attempts: 1,
        run_at: 0,
        lease_owner: None,
        lease_until: None,
        last_error: None,
    };
    let mut forms: Vec<String> = patchbay_http::outbound::FORBIDDEN_V6_FORMS.iter().map(|f| format!("[{f}]")).collect();
    forms.extend(["127.0.0.1", "169.254.169.254", "[::ffff:127.0.0.1]"].map(String::from));
    for host in &forms {
        let base = format!("http://{host}:{port}");
        let mut doc: Value = serde_json::from_str(DEMO_SEED).unwrap();
        doc["network"]["partners"][0]["callbackUrl"] = json!(base);
        doc["integrations"]["organizations"][0]["webhookUrl"] = json!(format!("{base}/hooks"));
        let a = call(http.post(u("/admin/v1/seed")).bearer_auth(ADMIN).body(doc.to_string())).await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
        // Partner callback.
        let r = partner.run(&job("ent-acme", json!({"connectionId": "c0a80101-0000-4000-8000-000000000001"}))).await;
        assert!(format!("{r:?}").contains("not a public address"), "partner callback to {host}: {r:?}");
        // Webhook.
        let r =
            webhooks.run(&job("org_demo", json!({"event": {"name": "connect.connection-checked", "data": {}}}))).await;
        assert!(format!("{r:?}").contains("not a public address"), "webhook to {host}: {r:?}");
        // Export blob upload.
        let body = json!({"exportType": "IFC", "outputOptions": {"location": "USER_BLOB_STORAGE",
            "outputSasUrl": format!("{base}/out/model.ifc?sig=abc"), "logsSasUrl": format!("{base}/logs/run.log?sig=def")}});
        let a =
            call(http.post(u("/export/connections/exc-nightly-ifc/runs")).bearer_auth("bob-token-1").json(&body)).await;
        if host.starts_with('[') {
            // The Export face takes DNS names and IPv4 addresses only (its documented URL
            // pattern): IPv6 literals are refused before any run exists.
            assert_eq!(
                (a.status, &a.body["error"]["details"][0]["code"]),
                (422, &json!("InvalidValue")),
                "{host}: {}",
                a.body
            );
            continue;
        }
        assert_eq!(a.status, 202, "{host}: {}", a.body);
        let location = a.headers["location"].to_str().unwrap().to_string();
        let run_path = location.find("/export/").map(|i| location[i..].to_string()).unwrap();
        let mut run = Value::Null;
        for _ in 0..400 {
            run = call(http.get(u(&run_path)).bearer_auth("bob-token-1")).await.body;
            if run["run"]["state"] == "Completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(run["run"]["result"], "Error", "{host}: {run}");
        assert!(run.to_string().contains("not a public address"), "blob upload to {host}: {run}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "a refused address was contacted");
    srv.shutdown().await.unwrap();
});
