//! The HTTP platform over real HTTP: request ids, error shapes of every face
//! for panics, timeouts and rate limits, body limits, readiness and metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use patchbay_core::ratelimit::RateQuota;
use patchbay_core::{SystemClock, Vault};
use patchbay_http::{AppState, Face, HttpConfig, app};
use serde_json::{Value, json};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn state(config: HttpConfig) -> AppState {
    let store = patchbay_store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    AppState::new(store, Vault::from_spec(K1).unwrap(), Arc::new(SystemClock), config)
}

fn prefix(face: Face) -> &'static str {
    match face {
        Face::Network => "/api/network/v1/test",
        Face::Export => "/export/test",
        Face::Integrations => "/v1/test",
        Face::Admin => "/admin/v1/test",
    }
}

async fn limited(State(s): State<AppState>, face: Face) -> Response {
    match s.rate_limit(face, "principal-1").await {
        Ok(()) => "ok".into_response(),
        Err(r) => r,
    }
}

async fn boom() -> &'static str {
    panic!("deliberate test panic")
}

/// Test routes for every face: /boom panics, /slow sleeps, /limited is rate-limited.
fn face_routes(face: Face) -> Router<AppState> {
    let p = prefix(face);
    Router::new()
        .route(&format!("{p}/boom"), get(boom))
        .route(
            &format!("{p}/slow"),
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route(&format!("{p}/limited"), get(move |s: State<AppState>| limited(s, face)))
}

async fn serve(state: AppState) -> SocketAddr {
    let faces = Face::ALL.iter().map(|f| (*f, face_routes(*f))).collect();
    let router = app(state, faces);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn expected(face: Face, status: u16, message: &str) -> Value {
    let code_export = match status {
        429 => "RateLimitExceeded",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    };
    let code_trpc = match status {
        429 => "TOO_MANY_REQUESTS",
        503 => "SERVICE_UNAVAILABLE",
        _ => "INTERNAL_SERVER_ERROR",
    };
    match face {
        Face::Network | Face::Admin => json!({"error": message}),
        Face::Export => json!({"error": {"code": code_export, "message": message}}),
        Face::Integrations => json!({"code": code_trpc, "message": message}),
    }
}

#[tokio::test]
async fn panics_become_500_in_each_faces_shape() {
    let addr = serve(state(HttpConfig::default()).await).await;
    let http = reqwest::Client::new();
    for face in Face::ALL {
        let resp = http
            .get(format!("http://{addr}{}/boom", prefix(face)))
            .header("x-request-id", "req-panic-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 500, "{face:?}");
        assert_eq!(resp.headers()["x-request-id"], "req-panic-1");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, expected(face, 500, "Internal server error."), "{face:?}");
    }
    // The server is still serving.
    assert_eq!(http.get(format!("http://{addr}/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn slow_handlers_time_out_in_each_faces_shape() {
    let config = HttpConfig { request_timeout: Duration::from_millis(200), ..Default::default() };
    let addr = serve(state(config).await).await;
    let http = reqwest::Client::new();
    for face in Face::ALL {
        let resp = http
            .get(format!("http://{addr}{}/slow", prefix(face)))
            .header("x-request-id", "req-slow-1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "{face:?}");
        assert_eq!(resp.headers()["x-request-id"], "req-slow-1");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, expected(face, 503, "The request took too long and was abandoned."), "{face:?}");
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_face_and_principal() {
    let quota = RateQuota { per_second: 1, burst: 2 };
    let mut limits: HashMap<Face, RateQuota> = Face::ALL.iter().map(|f| (*f, quota)).collect();
    limits.remove(&Face::Admin);
    let config = HttpConfig { rate_limits: limits, ..Default::default() };
    let addr = serve(state(config).await).await;
    for face in [Face::Network, Face::Export, Face::Integrations] {
        let url = format!("http://{addr}{}/limited", prefix(face));
        for _ in 0..2 {
            assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
        }
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 429, "{face:?}");
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = resp.json().await.unwrap();
        let message = if face == Face::Export {
            "The client sent more requests than allowed by this API for the current tier of the client."
        } else {
            "Rate limit exceeded; retry after 1 seconds."
        };
        assert_eq!(body, expected(face, 429, message), "{face:?}");
    }
    // A face without a quota is unlimited.
    for _ in 0..20 {
        assert_eq!(reqwest::get(format!("http://{addr}/admin/v1/test/limited")).await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let addr = serve(state(HttpConfig::default()).await).await;
    let http = reqwest::Client::new();
    let given = http.get(format!("http://{addr}/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    let generated = http.get(format!("http://{addr}/healthz")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let other = http.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
    // Unusable ids are replaced by a generated one: too long, empty, a space or tab, non-ASCII.
    let too_long = "x".repeat(200);
    let at_limit = "y".repeat(128);
    let kept = http.get(format!("http://{addr}/healthz")).header("x-request-id", &at_limit).send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], at_limit.as_str());
    let unusable = [
        reqwest::header::HeaderValue::from_str(&too_long).unwrap(),
        reqwest::header::HeaderValue::from_static(""),
        reqwest::header::HeaderValue::from_static("a b"),
        reqwest::header::HeaderValue::from_static("a\tb"),
        reqwest::header::HeaderValue::from_bytes("é".as_bytes()).unwrap(),
    ];
    for bad in unusable {
        let replaced =
            http.get(format!("http://{addr}/healthz")).header("x-request-id", bad.clone()).send().await.unwrap();
        let got = replaced.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(got.len(), 36, "{bad:?} replaced by a UUID, got {got}");
        assert_ne!(got.as_bytes(), bad.as_bytes());
    }
    // Every answer carries it: an unknown path (the fallback) too.
    let missing =
        http.get(format!("http://{addr}/export/nothing-here")).header("x-request-id", "req-404").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-request-id"], "req-404");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let st = state(HttpConfig::default()).await;
    let store = st.store.clone();
    let addr = serve(st).await;
    let health = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"status": "ready"}));
    let _ = reqwest::get(format!("http://{addr}/api/network/v1/test/boom")).await.unwrap();
    let metrics = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = metrics.text().await.unwrap();
    assert!(text.contains(r#"patchbay_http_requests_total{method="GET",route="/healthz",status="200"} 1"#), "{text}");
    assert!(
        text.contains(r#"patchbay_http_requests_total{method="GET",route="/api/network/v1/test/boom",status="500"} 1"#)
    );
    assert!(
        text.contains(r#"patchbay_http_request_duration_seconds_count{method="GET",route="/readyz",status="200"} 1"#)
    );
    assert!(text.contains(r#"patchbay_jobs{state="queued"} 0"#), "{text}");
    assert!(text.contains(r#"patchbay_jobs{state="dead"} 0"#));
    assert!(text.ends_with("# EOF\n"));
    // Once the database is gone, the server is alive but not ready.
    store.close().await;
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"status": "unavailable", "error": "database unreachable"}));
    assert_eq!(reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn unknown_paths_get_a_404_in_the_faces_shape() {
    let addr = serve(state(HttpConfig::default()).await).await;
    let r = reqwest::get(format!("http://{addr}/export/nothing-here")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"code": "NotFound", "message": "No route for GET /export/nothing-here."}})
    );
    let r = reqwest::get(format!("http://{addr}/v1/nothing")).await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": "NOT_FOUND", "message": "No route for GET /v1/nothing."})
    );
}

#[tokio::test]
async fn docs_page_renders_the_four_documents_offline() {
    let addr = serve(state(HttpConfig::default()).await).await;
    let r = reqwest::get(format!("http://{addr}/docs")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    for doc in ["/api/network/v1/openapi.json", "/export/openapi.json", "/v1/openapi.json", "/admin/v1/openapi.json"] {
        assert!(html.contains(doc), "{doc}");
    }
    // Nothing is fetched from elsewhere: no external scripts, styles, fonts or images.
    for external in ["http://", "https://", "//cdn", "<script src", "<link "] {
        assert!(!html.contains(external), "the page references {external}");
    }
}
