//! Cross-cutting HTTP concerns: request ids, one log line and metrics per
//! request, and the health, readiness and metrics endpoints.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::Either;
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
/// With the sandbox on, the UUID comes from its entropy (seeded in deterministic mode).
fn request_id(req: &Request, sandbox: Option<&crate::sandbox::Sandbox>) -> HeaderValue {
    if let Some(v) = req.headers().get(REQUEST_ID).filter(|v| accept_request_id(v)) {
        return v.clone();
    }
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let uuid = match sandbox {
        Some(s) => s.request_id(),
        None => uuid::Uuid::new_v4(),
    };
    HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut buf)).expect("a hyphenated UUID is a valid header value")
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

/// Routes that authenticate no principal: their face's rate limit is kept per
/// client address instead (the others are limited per principal after authentication).
const PUBLIC_ROUTES: &[&str] = &[
    "/api/network/v1/openapi.json",
    "/export/openapi.json",
    "/export/authorize",
    "/v1/openapi.json",
    "/v1/connector",
    "/v2/connector",
    "/api/v2/connector",
    "/v1/health",
    "/connect",
    "/connect/oauth",
    "/connect/callback",
    "/connect/form",
    "/admin/v1/openapi.json",
];

/// What a request says of its body: none, a declared length, or chunked.
fn declared_body(req: &Request) -> Result<Option<u64>, ()> {
    match req.headers().get(header::CONTENT_LENGTH) {
        Some(v) => v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()).map(|n| (n > 0).then_some(n)).ok_or(()),
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => Ok(Some(0)),
        None => Ok(None),
    }
}

/// Whether a Host header is `host[:port]`: a DNS name or IPv4 address (letters,
/// digits, `-`, `.`, `_`) or a bracketed IPv6 literal, and an optional port.
pub fn valid_host(h: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = h.strip_prefix(b"[") {
        let Some(end) = rest.iter().position(|&b| b == b']') else { return false };
        let inner = &rest[..end];
        let ok = std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok());
        if !ok {
            return false;
        }
        (&b"ipv6"[..], &rest[end + 1..])
    } else {
        match h.iter().position(|&b| b == b':') {
            Some(i) => (&h[..i], &h[i..]),
            None => (h, &b""[..]),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => {
            !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit) && {
                std::str::from_utf8(digits).ok().and_then(|d| d.parse::<u16>().ok()).is_some()
            }
        }
        _ => false,
    };
    host_ok && port_ok
}

/// The message of the 413 for a body over the limit (declared or read).
pub const BODY_TOO_LARGE: &str = "Failed to buffer the request body: length limit exceeded";

/// An answer sent without reading the request's body: the connection cannot be
/// reused for another request, so the client is told it closes.
fn closing(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads a request's whole body (up to the limit) before its handler runs, so a
/// handler that answers without reading it leaves the connection reusable.
async fn buffered(
    req: Request,
    face: Face,
    limit: usize,
    sandbox: Option<&crate::sandbox::Sandbox>,
) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, face, limit).await?;
    if let Some(sandbox) = sandbox {
        crate::sandbox::note_request_body(sandbox, parts.headers.get(header::CONTENT_TYPE), &bytes);
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// A request's whole body, up to the limit; else the answer (413 or 400) to send.
async fn read_body(body: axum::body::Body, face: Face, limit: usize) -> Result<axum::body::Bytes, Response> {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let too_large = e.into_inner().is::<http_body_util::LengthLimitError>();
            Err(closing(if too_large {
                face.error(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE)
            } else {
                face.error(StatusCode::BAD_REQUEST, "The request body could not be read.")
            }))
        }
    }
}

/// An error answer the framework wrote rather than a face (an empty 405, a
/// plain-text rejection of a path or query), rewritten in the face's shape
/// with the framework's text as its message. Face errors are JSON and the
/// consent page's are HTML; neither is touched.
async fn in_face_shape(face: Face, resp: Response) -> Response {
    if resp.status().as_u16() < 400 {
        return resp;
    }
    let plain = match resp.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct.as_bytes().starts_with(b"text/plain"),
    };
    if !plain {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match (parts.status, text.trim()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => "The method is not allowed for this path.".to_string(),
        (status, "") => status.canonical_reason().unwrap_or("Error").to_string() + ".",
        (_, t) => t.to_string(),
    };
    let fresh = face.error(parts.status, &message);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, body)
}

impl<S: Clone> Observe<S> {
    /// The inner service, to be called after an await (the body read first): the
    /// one `poll_ready` was called on is taken, and a clone left in its place.
    fn take_ready(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
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
        let id = request_id(&req, self.state.sandbox.as_deref());
        let method = crate::metrics::method_label(req.method());
        let matched = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let route = self.state.metrics.route(matched);
        let public = matched.is_some_and(|m| PUBLIC_ROUTES.contains(&m));
        let face = Face::of_path(req.uri().path());
        let state = self.state.clone();
        let limit = state.config.body_limit_bytes;
        // The sandbox notes the request and tries the rules that do not name the caller.
        let inbound = state.sandbox.as_ref().and_then(|sandbox| {
            crate::sandbox::Inbound::begin(sandbox, face, &req, matched, id.to_str().unwrap_or_default())
        });
        // A body over the limit is refused before a byte of it is read; any other body
        // is read whole first (the hot bodiless reads call the route directly).
        let declared = declared_body(&req);
        let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        // The platform's own endpoints (health, metrics, docs) belong to no face's limits.
        let platform = face == Face::Admin && !req.uri().path().starts_with("/admin/");
        let refused = match declared {
            Err(()) => Some(closing(face.error(StatusCode::BAD_REQUEST, "The Content-Length header is invalid."))),
            Ok(Some(n)) if n > limit as u64 => Some(closing(face.error(StatusCode::PAYLOAD_TOO_LARGE, BODY_TOO_LARGE))),
            // Links and `Location` are built from Host when no public base URL is set
            // (an empty Host is allowed, as for a request target without an authority).
            _ if !req.headers().get(header::HOST).is_none_or(|h| h.is_empty() || valid_host(h.as_bytes())) => {
                Some(face.error(StatusCode::BAD_REQUEST, "The Host header is not a valid host[:port]."))
            }
            // An address that spent its budget of failed authentications waits, whatever it sends.
            _ if !platform && let Some(secs) = client.and_then(|ip| state.auth_failures.refused(ip)) => {
                Some(face.rate_limited(secs))
            }
            // Routes without a principal count against the face's limit by client address.
            _ if public
                && let Some(ip) = client
                && let Err(resp) = state.rate_limit_address(face, ip) =>
            {
                Some(resp)
            }
            // A sandbox rule that answers in place of the handler.
            _ => inbound.as_ref().and_then(|i| i.early_answer(face)),
        };
        let has_body = matches!(declared, Ok(Some(_)));
        // A refusal sent before the body is read leaves it on the wire: say the connection closes.
        let refused = refused.map(|r| if has_body { closing(r) } else { r });
        // Only a presented credential that fails is a failed authentication (not a missing one).
        let presented = req.headers().contains_key(header::AUTHORIZATION)
            || crate::integrations::replit_token(req.headers()).is_some();
        type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;
        let handled = match refused {
            Some(resp) => Either::Left(Either::Left(std::future::ready(Ok(resp)))),
            // BitGo's v2 authentication: verified (over the whole body) before the handler,
            // the answer signed after it.
            None if face == Face::Network && crate::network::hmac::wants_v2(&req) => {
                let inner = self.take_ready();
                let state = state.clone();
                let boxed: Boxed = Box::pin(async move {
                    let (parts, body) = req.into_parts();
                    Ok(match read_body(body, face, limit).await {
                        Ok(bytes) => {
                            if let Some(sandbox) = &state.sandbox {
                                crate::sandbox::note_request_body(
                                    sandbox,
                                    parts.headers.get(header::CONTENT_TYPE),
                                    &bytes,
                                );
                            }
                            let req = Request::from_parts(parts, axum::body::Body::empty());
                            crate::network::hmac::v2(state, req, bytes, inner).await
                        }
                        Err(resp) => resp,
                    })
                });
                Either::Left(Either::Right(boxed))
            }
            None if has_body => {
                let mut inner = self.take_ready();
                let sandbox = state.sandbox.clone();
                let boxed: Boxed = Box::pin(async move {
                    match buffered(req, face, limit, sandbox.as_deref()).await {
                        Ok(req) => inner.call(req).await,
                        Err(resp) => Ok(resp),
                    }
                });
                Either::Left(Either::Right(boxed))
            }
            None => Either::Right(self.inner.call(req)),
        };
        Box::pin(async move {
            // Visible ASCII only (checked or generated above).
            let id_str = id.to_str().unwrap_or_default();
            let handled = async {
                match handled.await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                }
            };
            let timeout = state.config.request_timeout;
            let mut resp = match &inbound {
                Some(i) => crate::face::guard(face, id_str, timeout, i.run(handled)).await,
                None => crate::face::guard(face, id_str, timeout, handled).await,
            };
            if resp.status() == StatusCode::UNAUTHORIZED
                && presented
                && let Some(secs) = client.and_then(|ip| state.auth_failures.failed(ip))
            {
                resp = face.rate_limited(secs);
            }
            let resp = in_face_shape(face, resp).await;
            let mut resp = match inbound {
                Some(i) => i.finish(resp).await,
                None => resp,
            };
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

#[cfg(test)]
mod tests {
    use super::valid_host;

    #[test]
    fn host_headers() {
        for ok in ["localhost", "127.0.0.1:8080", "api.example.com", "a-b_c.example:1", "[::1]", "[::1]:443", "x:65535"]
        {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "a\"><script>x</script>",
            "a b",
            "host:",
            "host:99999",
            "host:8080x",
            "host:-1",
            "[::1",
            "[nonsense]",
            "[::1]x",
            "a/b",
            "a@b",
            "h:1:2",
            "\u{7f}",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }
}
