//! Sandbox controls (docs/sandbox.md): fault rules applied to requests and to
//! outbound calls, the request journal, the movable clock and deterministic
//! mode. Present only when `sandbox.enabled`; the rules themselves live in
//! `patchbay_core::sandbox`. The admin routes are in [`routes`].

pub mod routes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use patchbay_core::sandbox::faults::{Effect, Faults, Probe, Stage};
use patchbay_core::sandbox::journal::{Entry, Journal};
use patchbay_core::sandbox::{Direction, instant_text, redact};
use patchbay_core::{Clock, Entropy, SandboxClock};

use crate::face::Face;

/// The sandbox's settings.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    pub journal_capacity: usize,
    pub journal_body_bytes: usize,
    /// Deterministic mode from start-up (and after a reset).
    pub deterministic_seed: Option<u64>,
    /// The start-up seed document, applied again by a reset.
    pub seed_document: Option<Arc<Vec<u8>>>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self { journal_capacity: 1000, journal_body_bytes: 4096, deterministic_seed: None, seed_document: None }
    }
}

/// The sandbox's state, one per process.
pub struct Sandbox {
    pub clock: Arc<SandboxClock>,
    /// Handlers' draws (and the rules' probability draws).
    pub entropy: Arc<Entropy>,
    /// Background jobs' draws.
    job_entropy: Arc<Entropy>,
    /// Generated request ids.
    request_ids: Entropy,
    pub faults: Faults,
    pub journal: Journal,
    pub settings: SandboxSettings,
    next_rule: AtomicU64,
}

/// The path prefix of the sandbox's own routes (never journaled, never faulted).
pub const PREFIX: &str = "/admin/v1/sandbox";

impl Sandbox {
    pub fn new(
        settings: SandboxSettings,
        clock: Arc<SandboxClock>,
        entropy: Arc<Entropy>,
        job_entropy: Arc<Entropy>,
    ) -> Self {
        let this = Self {
            clock,
            entropy,
            job_entropy,
            request_ids: Entropy::system(),
            faults: Faults::default(),
            journal: Journal::new(settings.journal_capacity),
            settings,
            next_rule: AtomicU64::new(1),
        };
        this.set_seed(this.settings.deterministic_seed);
        this
    }

    /// Deterministic mode on (with a seed) or off: handlers, jobs and request ids
    /// each draw from their own sequence, so one does not shift another.
    pub fn set_seed(&self, seed: Option<u64>) {
        self.entropy.set_seed(seed);
        self.job_entropy.set_seed(seed.map(|s| s ^ 0x6a6f_6273));
        self.request_ids.set_seed(seed.map(|s| s ^ 0x7265_7169));
    }

    /// A fresh request id.
    pub fn request_id(&self) -> uuid::Uuid {
        self.request_ids.uuid()
    }

    /// The next rule id (`flt_1`, `flt_2`, …).
    pub fn rule_id(&self) -> String {
        format!("flt_{}", self.next_rule.fetch_add(1, Ordering::SeqCst))
    }

    fn check(&self, probe: &Probe<'_>, stage: Stage) -> Option<(String, Effect)> {
        if self.faults.is_empty() {
            return None;
        }
        self.faults.check(probe, stage, self.clock.now_ms(), &mut || self.entropy.unit())
    }

    fn body(&self, content_type: Option<&str>, body: &[u8]) -> Option<serde_json::Value> {
        redact::body_for_journal(content_type, body, self.settings.journal_body_bytes)
    }
}

/// What is known of the request in hand, for the journal and for rules that
/// name the caller (a task-local, set by the platform middleware).
#[derive(Debug, Default)]
pub struct Note {
    face: &'static str,
    method: String,
    route: Option<String>,
    /// The path and query as the journal shows it (secret query values redacted).
    path: String,
    /// The path alone, as rules match it.
    raw_path: String,
    headers: Vec<(String, String)>,
    request_id: String,
    inner: Mutex<NoteInner>,
}

#[derive(Debug, Default)]
struct NoteInner {
    principal: Option<String>,
    tenant: Option<String>,
    request_body: Option<serde_json::Value>,
    fault: Option<String>,
    /// An effect of a caller rule, applied to the handler's answer.
    after: Option<Effect>,
}

tokio::task_local! {
    static NOTE: Arc<Note>;
}

impl Note {
    fn lock(&self) -> std::sync::MutexGuard<'_, NoteInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The request id of the request being handled, if any (outbound calls carry it).
fn current_request_id() -> Option<String> {
    NOTE.try_with(|n| n.request_id.clone()).ok()
}

/// Records the request body once the platform has read it.
pub fn note_request_body(sandbox: &Sandbox, content_type: Option<&HeaderValue>, body: &[u8]) {
    let _ = NOTE.try_with(|n| {
        n.lock().request_body = sandbox.body(content_type.and_then(|v| v.to_str().ok()), body);
    });
}

/// The caller is known (called where each face authenticates): noted for the
/// journal, and the rules that name a principal or tenant tried. A `status`
/// effect is the answer (`Err`); the others apply to the handler's answer.
pub fn caller(sandbox: &Sandbox, face: Face, principal: &str, tenant: Option<&str>) -> Result<(), Response> {
    let Ok(note) = NOTE.try_with(Arc::clone) else { return Ok(()) };
    {
        let mut inner = note.lock();
        inner.principal = Some(principal.to_string());
        inner.tenant = tenant.map(str::to_string);
    }
    if !sandbox.faults.any_caller_rules() {
        return Ok(());
    }
    let probe = Probe {
        direction: Direction::Inbound,
        face: face.name(),
        method: &note.method,
        route: note.route.as_deref(),
        path: &note.raw_path,
        principal: Some(principal),
        tenant,
        headers: &note.headers,
        ..Default::default()
    };
    let Some((id, effect)) = sandbox.check(&probe, Stage::Caller) else { return Ok(()) };
    let mut inner = note.lock();
    inner.fault = Some(id);
    match effect {
        Effect::Status { status, retry_after, message } => Err(fault_answer(face, status, retry_after, message)),
        other => {
            inner.after = Some(other);
            Ok(())
        }
    }
}

/// The face's own error answer for a `status` effect (429 always with `Retry-After`).
fn fault_answer(face: Face, status: u16, retry_after: Option<u64>, message: Option<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::TOO_MANY_REQUESTS && message.is_none() {
        return face.rate_limited(retry_after.unwrap_or(1));
    }
    let mut resp = {
        let text =
            message.unwrap_or_else(|| format!("{} (sandbox fault).", status.canonical_reason().unwrap_or("Error")));
        face.error(status, &text)
    };
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A request the platform middleware is handling, while the sandbox is on.
pub struct Inbound {
    sandbox: Arc<Sandbox>,
    note: Arc<Note>,
    started: Instant,
    /// The rule that fired before the handler.
    early: Option<(String, Effect)>,
}

/// Marks an answer whose connection is to be closed without sending it.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

impl Inbound {
    /// Notes the request and tries the rules that do not name the caller. `None`
    /// for the sandbox's own routes.
    pub fn begin(
        sandbox: &Arc<Sandbox>,
        face: Face,
        req: &axum::extract::Request,
        route: Option<&str>,
        request_id: &str,
    ) -> Option<Self> {
        let path = req.uri().path();
        if path == PREFIX || path.starts_with("/admin/v1/sandbox/") {
            return None;
        }
        let note = Note {
            face: face.name(),
            method: req.method().as_str().to_string(),
            route: route.map(str::to_string),
            path: redact::redact_path_and_query(path, req.uri().query()),
            raw_path: path.to_string(),
            headers: req
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            request_id: request_id.to_string(),
            inner: Default::default(),
        };
        let probe = Probe {
            direction: Direction::Inbound,
            face: face.name(),
            method: &note.method,
            route,
            path,
            headers: &note.headers,
            ..Default::default()
        };
        let early = sandbox.check(&probe, Stage::Request);
        if let Some((id, _)) = &early {
            note.lock().fault = Some(id.clone());
        }
        Some(Self { sandbox: sandbox.clone(), note: Arc::new(note), started: Instant::now(), early })
    }

    /// An answer in place of the handler's, when an early `status` or `drop` rule fired.
    pub fn early_answer(&self, face: Face) -> Option<Response> {
        match &self.early {
            Some((_, Effect::Status { status, retry_after, message })) => {
                Some(fault_answer(face, *status, *retry_after, message.clone()))
            }
            Some((_, Effect::Drop)) => Some(dropped()),
            _ => None,
        }
    }

    /// Runs the handler with the note in scope, after an early latency.
    pub async fn run<F: Future<Output = Response>>(&self, handler: F) -> Response {
        if let Some((_, effect)) = &self.early
            && let Some(ms) = effect.latency_ms(self.sandbox.entropy.unit())
        {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        NOTE.scope(self.note.clone(), handler).await
    }

    /// Applies what is left of the rules to the answer and journals the request.
    pub async fn finish(self, resp: Response) -> Response {
        let after = self.note.lock().after.take();
        let early = self.early.as_ref().map(|(_, e)| e.clone());
        let (parts, body) = resp.into_parts();
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        // Bodies a journal keeps are small and already whole; files are left out.
        let textual = content_type.as_deref().is_some_and(|ct| {
            ct.contains("json") || ct.starts_with("text/") || ct.starts_with("application/x-www-form-urlencoded")
        });
        let (body, kept) = if textual && parts.extensions.get::<DropConnection>().is_none() {
            match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
                Ok(bytes) => (Body::from(bytes.clone()), self.sandbox.body(content_type.as_deref(), &bytes)),
                Err(_) => (Body::empty(), None),
            }
        } else {
            (body, None)
        };
        let mut resp = Response::from_parts(parts, body);
        let mut dropped_now = resp.extensions().get::<DropConnection>().is_some();
        for effect in [after].into_iter().flatten().chain(early.filter(|e| matches!(e, Effect::SlowBody { .. }))) {
            match effect {
                Effect::Latency { .. } => {
                    if let Some(ms) = effect.latency_ms(self.sandbox.entropy.unit()) {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                }
                Effect::Drop => {
                    resp = dropped();
                    dropped_now = true;
                }
                Effect::SlowBody { bytes_per_second } => resp = trickle(resp, bytes_per_second),
                _ => {}
            }
        }
        let inner = std::mem::take(&mut *self.note.lock());
        let now = self.sandbox.clock.now_ms();
        self.sandbox.journal.push(Entry {
            seq: 0,
            time: instant_text(now),
            time_ms: now,
            direction: Direction::Inbound,
            face: self.note.face.to_string(),
            method: self.note.method.clone(),
            path: self.note.path.clone(),
            route: self.note.route.clone(),
            call: None,
            host: None,
            principal: inner.principal,
            tenant: inner.tenant,
            status: (!dropped_now).then(|| resp.status().as_u16()),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            request_id: Some(self.note.request_id.clone()),
            fault: inner.fault,
            request_body: inner.request_body,
            response_body: if dropped_now { None } else { kept },
            error: dropped_now.then(|| "connection dropped (sandbox fault)".to_string()),
        });
        resp
    }
}

/// An answer the server does not send: it closes the connection instead.
fn dropped() -> Response {
    let mut resp = Response::new(Body::empty());
    resp.extensions_mut().insert(DropConnection);
    resp
}

/// The same answer, its body sent a little at a time at `bytes_per_second`.
fn trickle(resp: Response, bytes_per_second: u64) -> Response {
    let (parts, body) = resp.into_parts();
    let rate = bytes_per_second.max(1);
    // Chunks of about a tenth of a second's worth.
    let chunk = (rate / 10).max(1) as usize;
    let pause = Duration::from_secs_f64(chunk as f64 / rate as f64);
    let stream =
        futures_util::stream::unfold((body.into_data_stream(), Bytes::new()), move |(mut src, mut buf)| async move {
            use futures_util::StreamExt;
            while buf.is_empty() {
                match src.next().await {
                    Some(Ok(b)) => buf = b,
                    Some(Err(e)) => return Some((Err(e), (src, Bytes::new()))),
                    None => return None,
                }
            }
            tokio::time::sleep(pause).await;
            let piece = buf.split_to(chunk.min(buf.len()));
            Some((Ok(piece), (src, buf)))
        });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Outbound calls: which call, as rules and the journal name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    PartnerInitialize,
    PartnerNotify,
    OauthToken,
    ApiKeyCheck,
    Webhook,
    BlobUpload,
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::PartnerInitialize => "partner_initialize",
            Call::PartnerNotify => "partner_notify",
            Call::OauthToken => "oauth_token",
            Call::ApiKeyCheck => "api_key_check",
            Call::Webhook => "webhook",
            Call::BlobUpload => "blob_upload",
        }
    }

    /// The face on whose behalf the call is made.
    pub fn face(self) -> Face {
        match self {
            Call::PartnerInitialize | Call::PartnerNotify => Face::Network,
            Call::BlobUpload => Face::Export,
            Call::OauthToken | Call::ApiKeyCheck | Call::Webhook => Face::Integrations,
        }
    }
}

/// What an outbound rule makes of a call, decided before it is sent.
pub enum OutboundFault {
    /// Send it after this wait.
    Delay(Duration),
    /// Do not send it: this answer instead.
    Answer(StatusCode, serde_json::Value),
    Timeout,
    Dropped,
}

/// An outbound call in progress, while the sandbox is on.
pub struct OutboundCall {
    sandbox: Arc<Sandbox>,
    call: Call,
    method: String,
    path: String,
    host: Option<String>,
    request_body: Option<serde_json::Value>,
    fault: Option<String>,
    started: Instant,
}

impl OutboundCall {
    /// Notes the call and tries the outbound rules.
    pub fn begin(sandbox: &Arc<Sandbox>, call: Call, req: &reqwest::Request) -> (Self, Option<OutboundFault>) {
        let url = req.url();
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let request_body = req.body().and_then(|b| b.as_bytes()).and_then(|b| sandbox.body(content_type, b));
        let probe = Probe {
            direction: Direction::Outbound,
            face: call.face().name(),
            method: req.method().as_str(),
            path: url.path(),
            call: Some(call.name()),
            host: url.host_str(),
            ..Default::default()
        };
        let fired = sandbox.check(&probe, Stage::Request);
        let fault = fired.as_ref().map(|(_, effect)| match effect {
            Effect::Latency { .. } => {
                OutboundFault::Delay(Duration::from_millis(effect.latency_ms(sandbox.entropy.unit()).unwrap_or(0)))
            }
            Effect::Status { status, .. } => OutboundFault::Answer(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                serde_json::json!({"error": "sandbox_fault"}),
            ),
            Effect::OauthError { error, description } => {
                let mut body = serde_json::json!({"error": error});
                if let Some(d) = description {
                    body["error_description"] = d.clone().into();
                }
                OutboundFault::Answer(StatusCode::BAD_REQUEST, body)
            }
            Effect::Timeout => OutboundFault::Timeout,
            Effect::Drop | Effect::SlowBody { .. } => OutboundFault::Dropped,
        });
        let this = Self {
            sandbox: sandbox.clone(),
            call,
            method: req.method().as_str().to_string(),
            path: redact::redact_path_and_query(url.path(), url.query()),
            host: url.host_str().map(str::to_string),
            request_body,
            fault: fired.map(|(id, _)| id),
            started: Instant::now(),
        };
        (this, fault)
    }

    /// Journals the call's outcome.
    pub fn finish(self, outcome: Result<(StatusCode, Option<&str>, &[u8]), String>) {
        let now = self.sandbox.clock.now_ms();
        let (status, response_body, error) = match outcome {
            Ok((status, ct, body)) => (Some(status.as_u16()), self.sandbox.body(ct, body), None),
            Err(e) => (None, None, Some(e)),
        };
        self.sandbox.journal.push(Entry {
            seq: 0,
            time: instant_text(now),
            time_ms: now,
            direction: Direction::Outbound,
            face: self.call.face().name().to_string(),
            method: self.method,
            path: self.path,
            route: None,
            call: Some(self.call.name().to_string()),
            host: self.host,
            principal: None,
            tenant: None,
            status,
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            request_id: current_request_id(),
            fault: self.fault,
            request_body: self.request_body,
            response_body,
            error,
        });
    }
}
