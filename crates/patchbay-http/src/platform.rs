//! Cross-cutting HTTP concerns: request ids, one log line and metrics per
//! request, and the health, readiness and metrics endpoints.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_layer::Layer;
use tower_service::Service;

use crate::AppState;
use crate::face::Face;

pub const REQUEST_ID: &str = "x-request-id";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/docs", get(docs))
}

/// A usable incoming request id: 1..=128 visible ASCII characters.
fn accept_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic)
}

/// The request's id: the caller's when usable, else a fresh UUID (formatted on
/// the stack; the header value is the only copy).
fn request_id(req: &Request) -> HeaderValue {
    if let Some(v) = req.headers().get(REQUEST_ID).filter(|v| accept_request_id(v)) {
        return v.clone();
    }
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf))
        .expect("a hyphenated UUID is a valid header value")
}

/// The layer every route is wrapped in: [`Observe`] around the body limit.
/// One hand-written service instead of `from_fn` layers: each layered route is
/// boxed again and cloned (with everything inside it) per request, and
/// `from_fn` boxes its `Next` on top (docs/benchmarks.md, round 8).
#[derive(Clone)]
pub struct ObserveLayer {
    state: AppState,
    body_limit: DefaultBodyLimit,
}

impl ObserveLayer {
    pub fn new(state: AppState) -> Self {
        let body_limit = DefaultBodyLimit::max(state.config.body_limit_bytes);
        Self { state, body_limit }
    }
}

impl<S> Layer<S> for ObserveLayer
where
    DefaultBodyLimit: Layer<S>,
{
    type Service = Observe<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { state: self.state.clone(), inner: self.body_limit.layer(inner) }
    }
}

/// The one middleware of every route (it runs after routing, so the matched
/// route is known): request id, the face's guard (panic → 500, timeout → 503 in
/// the face's shape, `face::guard`), metrics and the access log line.
#[derive(Clone)]
pub struct Observe<S> {
    state: AppState,
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    /// The inner service is called here, outside the guard: that is safe because
    /// what it wraps (the body limit, then axum's `Route`) only builds its future in
    /// `call`; the handler runs when that future is polled, inside the guard.
    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&req);
        let method = crate::metrics::method_label(req.method());
        let route = self.state.metrics.route(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
        let face = Face::of_path(req.uri().path());
        let state = self.state.clone();
        let handled = self.inner.call(req);
        Box::pin(async move {
            // Visible ASCII only (checked or generated above).
            let id_str = id.to_str().unwrap_or_default();
            let handled = async {
                match handled.await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                }
            };
            let mut resp = crate::face::guard(face, id_str, state.config.request_timeout, handled).await;
            let status = resp.status().as_u16();
            let elapsed = started.elapsed();
            state.metrics.observe_request(method, &route, status, elapsed.as_secs_f64());
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            if status >= 500 {
                tracing::error!(request_id = id_str, method = %method, route = route.label(), status, latency_ms, "request");
            } else {
                tracing::info!(request_id = id_str, method = %method, route = route.label(), status, latency_ms, "request");
            }
            resp.headers_mut().insert(REQUEST_ID, id);
            Ok(resp)
        })
    }
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
