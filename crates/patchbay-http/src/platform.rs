//! Cross-cutting HTTP concerns: request ids, one log line and metrics per
//! request, and the health, readiness and metrics endpoints.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::AppState;
use crate::face::Face;

pub const REQUEST_ID: &str = "x-request-id";

/// The id of the current request, as accepted or generated.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/docs", get(docs))
}

/// A usable incoming request id: 1..=128 visible ASCII characters.
fn accept_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())).then(|| s.to_string())
}

/// The one middleware of every route (it runs after routing, so the matched
/// route is known): request id, the face's guard (panic → 500, timeout → 503 in
/// the face's shape, `face::guard`), metrics and the access log line. One layer
/// rather than two: each `from_fn` layer costs an allocation and a clone of the
/// boxed inner service per request (docs/benchmarks.md, round 6).
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id =
        req.headers().get(REQUEST_ID).and_then(accept_request_id).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = crate::metrics::method_label(req.method());
    let route = state.metrics.route_label(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    let face = Face::of_path(req.uri().path());
    let mut resp = crate::face::guard(face, &id, state.config.request_timeout, next.run(req)).await;
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.observe_request(method, route.clone(), status, elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(request_id = %id, method = %method, route = %route, status, latency_ms, "request");
    } else {
        tracing::info!(request_id = %id, method = %method, route = %route, status, latency_ms, "request");
    }
    resp
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "error": "database unreachable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.store.job_counts().await {
        Ok(counts) => {
            for (s, n) in counts {
                state.metrics.set_job_count(s.as_str(), n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read job counts for metrics"),
    }
    match state.store.job_stats().await {
        Ok(stats) => {
            for s in stats {
                state.metrics.set_job_kind(&s.kind, s.state.as_str(), s.count, s.with_errors);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read job statistics for metrics"),
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}

/// Unknown paths: a 404 in the shape of the face whose prefix they carry.
pub async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    if let Some(resp) = crate::network::empty_enterprise(path) {
        return resp;
    }
    Face::of_path(path).error(StatusCode::NOT_FOUND, &format!("No route for {} {path}.", req.method()))
}

/// A page that renders the four OpenAPI documents for a person; everything it
/// needs is inline, so it works with the network off.
async fn docs() -> Response {
    axum::response::Html(include_str!("../assets/docs.html")).into_response()
}
