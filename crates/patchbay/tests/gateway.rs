//! HTTPS and connector-gateway clients: the server on a self-signed TLS port
//! answers HTTP/1.1 and HTTP/2 (ALPN); a Node client written the way public apps
//! read their integrations' tokens (`tools/gateway/client.mjs`: global fetch,
//! `X_REPLIT_TOKEN: repl <identity>`, `/api/v2/connection?include_secrets=true`)
//! runs unchanged against it with the CA in `NODE_EXTRA_CA_CERTS`, and gets a
//! token refreshed through the provider when the stored one has expired.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use patchbay_store::worker::Registry;
use serde_json::{Value, json};

mod common;
use common::{ADMIN, call};

/// A token endpoint that counts its grants.
async fn provider() -> (Arc<AtomicUsize>, String) {
    let grants = Arc::new(AtomicUsize::new(0));
    let g = grants.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |body: String| {
            let g = g.clone();
            async move {
                if !body.contains("grant_type=refresh_token") || !body.contains("refresh_token=r1") {
                    return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
                }
                let n = g.fetch_add(1, Ordering::SeqCst) + 1;
                axum::Json(json!({"access_token": format!("fresh-{n}"), "expires_in": 3600, "token_type": "Bearer"}))
                    .into_response()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (grants, url)
}

fn node_available() -> bool {
    Command::new("node").arg("--version").status().is_ok_and(|s| s.success())
}

both_backends!(https_http2_and_a_gateway_client_reading_fresh_tokens, |db| {
    let data = tempfile::tempdir().unwrap();
    let mut c = common::config(&db, Some(ADMIN));
    c.tls.self_signed = true;
    c.data_dir = Some(data.path().to_path_buf());
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    assert_eq!(srv.scheme, "https");
    let ca_path = srv.tls_ca.clone().expect("the self-signed CA is written");
    assert_eq!(ca_path, data.path().join("tls/ca.pem"));
    let ca = std::fs::read(&ca_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("tls/key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is the owner's only");
    }
    let port = srv.addr.port();
    let base = format!("https://localhost:{port}");
    let trusted = |b: reqwest::ClientBuilder| {
        b.add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap()
    };

    // HTTP/2 by ALPN, and HTTP/1.1 for a client that offers only that.
    let h2 = trusted(reqwest::Client::builder());
    let r = h2.get(format!("{base}/v1/health")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, reqwest::Version::HTTP_2));
    let h1 = trusted(reqwest::Client::builder().http1_only());
    let r = h1.get(format!("{base}/v1/health")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, reqwest::Version::HTTP_11));
    // Links built from Host carry the https scheme.
    let (grants, provider_url) = provider().await;
    let expired = "2020-01-01T00:00:00.000Z";
    let seed = json!({"integrations": {
        "organizations": [{"id": "org_g", "name": "G", "apiKey": "key_org_g", "replitIdentities": ["org-identity"]}],
        "customers": [{"orgId": "org_g", "id": "cus_1", "replitIdentities": ["cus1-identity"]},
                      {"orgId": "org_g", "id": "cus_2"}],
        "connectorConfigs": [{"id": "ccfg_google-mail_01JG", "orgId": "org_g", "connectorName": "google-mail",
                              "config": {"oauth": {"client_id": "cid", "client_secret": "cs"}},
                              "overrides": {"tokenUrl": format!("{provider_url}/token")}}],
        "connections": [
            {"id": "conn_google-mail_01JG1", "connectorConfigId": "ccfg_google-mail_01JG", "customerId": "cus_1",
             "settings": {"oauth": {"credentials": {"access_token": "stale", "refresh_token": "r1", "expires_at": expired}}}},
            {"id": "conn_google-mail_01JG2", "connectorConfigId": "ccfg_google-mail_01JG", "customerId": "cus_2",
             "settings": {"oauth": {"credentials": {"access_token": "other", "expires_at": "2999-01-01T00:00:00.000Z"}}}}
        ]
    }});
    let r = call(h1.post(format!("{base}/admin/v1/seed")).bearer_auth(ADMIN).json(&seed)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(h2.post(format!("{base}/v1/customer/cus_1/token")).bearer_auth("key_org_g").json(&json!({}))).await;
    let magic = r.body["magic_link_url"].as_str().unwrap().to_string();
    assert!(magic.starts_with(&format!("https://localhost:{port}/connect?token=")), "{}", r.body);
    // The connect page works over HTTPS (HTTP/2) too.
    let page = h2.get(&magic).send().await.unwrap();
    assert_eq!((page.status().as_u16(), page.version()), (200, reqwest::Version::HTTP_2));
    assert!(page.text().await.unwrap().contains("aria-label=\"Connect Gmail\""));

    // The gateway header, both spellings, both prefixes; unknown identities are refused.
    let gw = |token: &str, name: &'static str| {
        h1.get(format!("{base}/api/v2/connection?connector_names=google-mail")).header(name, token.to_string())
    };
    let r = call(gw("repl cus1-identity", "X-Replit-Token")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["conn_google-mail_01JG1"], "a customer identity sees its own connections");
    let r = call(gw("depl org-identity", "X_REPLIT_TOKEN")).await;
    assert_eq!((r.status, r.body["total"].clone()), (200, json!(2)), "an organisation identity sees all");
    let r = call(gw("repl nobody", "X-Replit-Token")).await;
    assert_eq!((r.status, r.body["code"].clone()), (401, json!("UNAUTHORIZED")));
    let r = call(gw("bearer cus1-identity", "X-Replit-Token")).await;
    assert_eq!(r.status, 401);
    // An identity is not an API key.
    let r = call(h1.get(format!("{base}/v2/connection")).bearer_auth("cus1-identity")).await;
    assert_eq!(r.status, 401);

    if !node_available() {
        assert!(std::env::var("CI").is_err(), "CI must have node for the gateway client test");
        eprintln!("skipping the Node gateway client: node is not installed");
    } else {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tools/gateway/client.mjs");
        let run = |identity: &'static str| {
            let ca_path = ca_path.clone();
            tokio::task::spawn_blocking(move || {
                Command::new("node")
                    .arg(script)
                    .env("CONNECTORS_HOSTNAME", format!("localhost:{port}"))
                    .env("REPL_IDENTITY", identity)
                    .env("NODE_EXTRA_CA_CERTS", ca_path)
                    .output()
                    .expect("node runs")
            })
        };
        let out = run("cus1-identity").await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let got: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(got["access_token"], "fresh-1", "the expired token was refreshed on the read");
        assert_eq!(got["connection_id"], "conn_google-mail_01JG1");
        let at = chrono::DateTime::parse_from_rfc3339(got["expires_at"].as_str().unwrap()).unwrap();
        assert!(at.timestamp() > chrono::Utc::now().timestamp() + 3000, "{at}");
        // A second read finds it fresh: no second grant.
        let out = run("cus1-identity").await.unwrap();
        let again: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(again["access_token"], "fresh-1");
        assert_eq!(grants.load(Ordering::SeqCst), 1);
        // Without the CA, Node refuses the certificate.
        let out = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg(script)
                .env("CONNECTORS_HOSTNAME", format!("localhost:{port}"))
                .env("REPL_IDENTITY", "cus1-identity")
                .env_remove("NODE_EXTRA_CA_CERTS")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("certificate"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/v1/health")).send().await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    srv.shutdown().await.unwrap();
});

/// `tls.cert_file` / `tls.key_file`: a chain and key from PEM files; one without the
/// other, or unreadable PEM, stops the start with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_pem_files() {
    let db = patchbay_store::testing::TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let made = patchbay_http::tls::self_signed(&["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &made.chain_pem).unwrap();
    std::fs::write(&key, &made.key_pem).unwrap();
    let mut c = common::config(&db, None);
    c.tls.cert_file = Some(cert.clone());
    c.tls.key_file = Some(key.clone());
    let srv = patchbay::start(&c, Registry::new()).await.unwrap();
    assert_eq!((srv.scheme, srv.tls_ca.is_none()), ("https", true));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(made.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = client.get(format!("https://localhost:{}/healthz", srv.addr.port())).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.version()), (200, reqwest::Version::HTTP_2));
    srv.shutdown().await.unwrap();

    let mut half = common::config(&db, None);
    half.tls.cert_file = Some(cert.clone());
    let e = patchbay::start(&half, Registry::new()).await.err().expect("a certificate without its key is refused");
    assert!(format!("{e:#}").contains("tls.cert_file and tls.key_file go together"), "{e:#}");
    let mut bad = common::config(&db, None);
    bad.tls.cert_file = Some(key.clone());
    bad.tls.key_file = Some(key);
    let e = patchbay::start(&bad, Registry::new()).await.err().expect("a key is not a certificate");
    assert!(format!("{e:#}").contains("no certificate"), "{e:#}");
}
