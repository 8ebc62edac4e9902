//! The sandbox's admin routes (docs/sandbox.md): status, clock, deterministic
//! mode, fault rules, journal, reset and snapshots. Every route answers 404
//! while the sandbox is off, and wants the admin token while it is on.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use patchbay_core::Clock;
use patchbay_core::sandbox::faults::{RuleSpec, RuleView};
use patchbay_core::sandbox::journal::{Entry, Expectation, Filter};
use patchbay_core::sandbox::{instant_text, parse_duration_ms, parse_instant_ms};
use patchbay_core::seed;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Sandbox;
use crate::AppState;
use crate::admin::AdminError;
use crate::face::Face;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/sandbox", get(status))
        .route("/admin/v1/sandbox/clock", get(clock_show))
        .route("/admin/v1/sandbox/clock/advance", post(clock_advance))
        .route("/admin/v1/sandbox/clock/set", post(clock_set))
        .route("/admin/v1/sandbox/clock/freeze", post(clock_freeze))
        .route("/admin/v1/sandbox/clock/resume", post(clock_resume))
        .route("/admin/v1/sandbox/deterministic", put(deterministic_on).delete(deterministic_off))
        .route("/admin/v1/sandbox/faults", post(fault_add).get(fault_list).delete(fault_clear))
        .route("/admin/v1/sandbox/faults/{id}", get(fault_get).delete(fault_delete))
        .route("/admin/v1/sandbox/journal", get(journal_list).delete(journal_clear))
        .route("/admin/v1/sandbox/journal/verify", post(journal_verify))
        .route("/admin/v1/sandbox/reset", post(reset))
        .route("/admin/v1/sandbox/snapshots", post(snapshot_save).get(snapshot_list))
        .route("/admin/v1/sandbox/snapshots/{name}", delete(snapshot_delete))
        .route("/admin/v1/sandbox/snapshots/{name}/restore", post(snapshot_restore))
}

fn error(status: StatusCode, message: &str) -> Response {
    Face::Admin.error(status, message)
}

/// The sandbox, once the request may use it: 404 while it is off, then the admin token.
async fn open(state: &AppState, headers: &HeaderMap) -> Result<Arc<Sandbox>, Response> {
    let Some(sandbox) = state.sandbox.clone() else {
        return Err(error(StatusCode::NOT_FOUND, "The sandbox is off (set sandbox.enabled = true to use it)."));
    };
    crate::admin::authorize(state, headers).await?;
    Ok(sandbox)
}

/// The sandbox, for a request that may use it: 404 while it is off, then the admin token.
pub(crate) struct Sandboxed(Arc<Sandbox>);

impl FromRequestParts<AppState> for Sandboxed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        open(state, &parts.headers).await.map(Sandboxed)
    }
}

/// A JSON body of the sandbox's routes; an empty one is the type's default, a wrong
/// one a 422 naming the field.
pub(crate) struct JsonBody<T>(T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let raw = Bytes::from_request(req, state).await.map_err(|rej| error(rej.status(), &rej.body_text()))?;
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        // `null` stands for no body too.
        parse::<Option<T>>(&raw).map(|v| JsonBody(v.unwrap_or_default()))
    }
}

/// A JSON document of this type; the error names the path of the problem.
fn parse<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Response> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            let at = if path == "." { String::new() } else { format!(" at {path}") };
            error(StatusCode::UNPROCESSABLE_ENTITY, &format!("Invalid body{at}: {msg}"))
        })
        .and_then(|v| de.end().map(|()| v).map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e}"))))
}

fn unprocessable(message: impl AsRef<str>) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, message.as_ref())
}

fn internal(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sandbox: {what} failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, &format!("The {what} failed."))
}

/// What the sandbox clock reads.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClockView {
    /// RFC 3339.
    pub now: String,
    pub now_ms: i64,
    pub frozen: bool,
    /// Ahead of real time by this much (negative: behind).
    pub offset_ms: i64,
}

impl ClockView {
    fn of(s: patchbay_core::clock::ClockState) -> Self {
        ClockView { now: instant_text(s.now_ms), now_ms: s.now_ms, frozen: s.frozen, offset_ms: s.offset_ms }
    }
}

/// Moves the clock by `delta_ms` with `change`, and the leases of running jobs with it
/// (first when moving forward, after when moving back: in between a lease is only ever
/// longer than it should be, never handed to another worker early).
async fn move_clock(
    state: &AppState,
    delta_ms: i64,
    change: impl FnOnce() -> patchbay_core::clock::ClockState,
) -> Response {
    let shift = |by: i64| async move {
        if by != 0
            && let Err(e) = state.store.sandbox_shift_leases(by).await
        {
            return Err(internal("lease shift", e));
        }
        Ok(())
    };
    let before = state.clock.now_ms();
    if delta_ms > 0
        && let Err(r) = shift(delta_ms).await
    {
        return r;
    }
    let moved = change();
    // What the clock really moved (it stops 2^53 ms from real time either way).
    let actual = moved.now_ms.saturating_sub(before);
    let rest = if delta_ms > 0 { actual - delta_ms } else { actual };
    if rest.abs() > 1_000
        && let Err(r) = shift(rest).await
    {
        return r;
    }
    clock_view(moved)
}

fn clock_view(s: patchbay_core::clock::ClockState) -> Response {
    axum::Json(ClockView::of(s)).into_response()
}

/// The sandbox at a glance.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SandboxStatus {
    pub clock: ClockView,
    /// The seed of deterministic mode; `null` when off.
    pub deterministic_seed: Option<u64>,
    /// Fault rules in force.
    pub faults: usize,
    pub journal: JournalStatus,
    /// Names of the saved snapshots.
    pub snapshots: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JournalStatus {
    pub entries: usize,
    pub capacity: usize,
    pub body_bytes: usize,
    /// Entries pushed out by newer ones since the last clear.
    pub dropped: u64,
}

const OFF: &str = "The sandbox is off";

#[utoipa::path(get, path = "/admin/v1/sandbox", operation_id = "getSandbox", tag = "Sandbox",
    responses((status = 200, description = "Clock, mode, rules, journal and snapshots", body = SandboxStatus),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn status(State(state): State<AppState>, Sandboxed(sandbox): Sandboxed) -> Response {
    let snapshots = match state.store.snapshot_list().await {
        Ok(list) => list.into_iter().map(|s| s.name).collect(),
        Err(e) => return internal("snapshot listing", e),
    };
    axum::Json(SandboxStatus {
        clock: ClockView::of(sandbox.clock.state()),
        deterministic_seed: sandbox.entropy.seed(),
        faults: sandbox.faults.list().len(),
        journal: JournalStatus {
            entries: sandbox.journal.len(),
            capacity: sandbox.journal.capacity(),
            body_bytes: sandbox.settings.journal_body_bytes,
            dropped: sandbox.journal.dropped(),
        },
        snapshots,
    })
    .into_response()
}

#[utoipa::path(get, path = "/admin/v1/sandbox/clock", operation_id = "getSandboxClock", tag = "Sandbox",
    responses((status = 200, description = "The clock", body = ClockView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn clock_show(Sandboxed(sandbox): Sandboxed) -> Response {
    clock_view(sandbox.clock.state())
}

/// `by` (`30s`, `2h`, `1h30m`; negative moves back) or `by_ms`.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    #[schema(pattern = r"^-?([0-9]{1,15}(ms|s|m|h|d))+$")]
    pub by: Option<String>,
    #[schema(minimum = -9007199254740992i64, maximum = 9007199254740992i64)]
    pub by_ms: Option<i64>,
}

#[utoipa::path(post, path = "/admin/v1/sandbox/clock/advance", operation_id = "advanceSandboxClock", tag = "Sandbox",
    request_body = Advance,
    responses((status = 200, description = "The clock, moved", body = ClockView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "No or invalid duration", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn clock_advance(
    State(state): State<AppState>,
    Sandboxed(sandbox): Sandboxed,
    JsonBody(a): JsonBody<Advance>,
) -> Response {
    let ms = match (a.by, a.by_ms) {
        (Some(t), None) => match parse_duration_ms(&t) {
            Ok(ms) => ms,
            Err(e) => return unprocessable(format!("by: {e}")),
        },
        (None, Some(ms)) if ms.unsigned_abs() <= 1 << 53 => ms,
        (None, Some(_)) => return unprocessable("by_ms is out of range"),
        _ => return unprocessable("give by (e.g. \"2h\") or by_ms, one of them"),
    };
    move_clock(&state, ms, || sandbox.clock.advance_ms(ms)).await
}

/// An instant, RFC 3339.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetClock {
    #[schema(value_type = String, format = DateTime, required = true)]
    pub to: Option<String>,
}

#[utoipa::path(post, path = "/admin/v1/sandbox/clock/set", operation_id = "setSandboxClock", tag = "Sandbox",
    request_body = SetClock,
    responses((status = 200, description = "The clock, set", body = ClockView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "No or invalid instant", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn clock_set(
    State(state): State<AppState>,
    Sandboxed(sandbox): Sandboxed,
    JsonBody(s): JsonBody<SetClock>,
) -> Response {
    match s.to.as_deref().map(parse_instant_ms) {
        Some(Ok(ms)) => {
            let delta = ms.saturating_sub(sandbox.clock.now_ms());
            move_clock(&state, delta, || sandbox.clock.set_ms(ms)).await
        }
        Some(Err(e)) => unprocessable(format!("to: {e}")),
        None => unprocessable("to is required (RFC 3339)"),
    }
}

/// Freezes at `at` (RFC 3339), or now.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

#[utoipa::path(post, path = "/admin/v1/sandbox/clock/freeze", operation_id = "freezeSandboxClock", tag = "Sandbox",
    request_body = Option<Freeze>,
    responses((status = 200, description = "The clock, frozen", body = ClockView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "Invalid instant", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn clock_freeze(
    State(state): State<AppState>,
    Sandboxed(sandbox): Sandboxed,
    JsonBody(f): JsonBody<Freeze>,
) -> Response {
    match f.at.as_deref().map(parse_instant_ms).transpose() {
        Ok(at) => {
            let delta = at.map_or(0, |at| at.saturating_sub(sandbox.clock.now_ms()));
            move_clock(&state, delta, || sandbox.clock.freeze(at)).await
        }
        Err(e) => unprocessable(format!("at: {e}")),
    }
}

#[utoipa::path(post, path = "/admin/v1/sandbox/clock/resume", operation_id = "resumeSandboxClock", tag = "Sandbox",
    responses((status = 200, description = "The clock, running from where it stood", body = ClockView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn clock_resume(Sandboxed(sandbox): Sandboxed) -> Response {
    clock_view(sandbox.clock.resume())
}

/// Deterministic mode's seed (`null`: off).
#[derive(Default, Serialize, utoipa::ToSchema)]
pub struct Deterministic {
    pub seed: Option<u64>,
}

/// The seed to draw from.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedRequest {
    #[schema(value_type = i64, required = true, minimum = 0)]
    pub seed: Option<u64>,
}

#[utoipa::path(put, path = "/admin/v1/sandbox/deterministic", operation_id = "setSandboxDeterministic", tag = "Sandbox",
    request_body = SeedRequest,
    responses((status = 200, description = "Deterministic mode on, its sequence restarted", body = Deterministic),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "No seed", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn deterministic_on(Sandboxed(sandbox): Sandboxed, JsonBody(d): JsonBody<SeedRequest>) -> Response {
    let Some(seed) = d.seed.filter(|s| i64::try_from(*s).is_ok()) else {
        return unprocessable("seed is required: an integer from 0 to 9223372036854775807");
    };
    sandbox.set_seed(Some(seed));
    axum::Json(Deterministic { seed: Some(seed) }).into_response()
}

#[utoipa::path(delete, path = "/admin/v1/sandbox/deterministic", operation_id = "clearSandboxDeterministic", tag = "Sandbox",
    responses((status = 200, description = "Deterministic mode off", body = Deterministic),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn deterministic_off(Sandboxed(sandbox): Sandboxed) -> Response {
    sandbox.set_seed(None);
    axum::Json(Deterministic { seed: None }).into_response()
}

/// The rules in force.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FaultList {
    pub faults: Vec<RuleView>,
}

#[utoipa::path(post, path = "/admin/v1/sandbox/faults", operation_id = "addSandboxFault", tag = "Sandbox",
    request_body = RuleSpec,
    responses((status = 201, description = "The rule, in force", body = RuleView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "Invalid rule", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn fault_add(Sandboxed(sandbox): Sandboxed, JsonBody(spec): JsonBody<Option<RuleSpec>>) -> Response {
    let Some(spec) = spec else {
        return unprocessable("A rule is required, e.g. {\"effect\": {\"type\": \"status\", \"status\": 503}}");
    };
    match sandbox.faults.add(sandbox.rule_id(), spec, sandbox.clock.now_ms()) {
        Ok(rule) => (StatusCode::CREATED, axum::Json(rule.view())).into_response(),
        Err(e) => unprocessable(e),
    }
}

#[utoipa::path(get, path = "/admin/v1/sandbox/faults", operation_id = "listSandboxFaults", tag = "Sandbox",
    responses((status = 200, description = "Rules in creation order, with their counts", body = FaultList),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn fault_list(Sandboxed(sandbox): Sandboxed) -> Response {
    axum::Json(FaultList { faults: sandbox.faults.list().iter().map(|r| r.view()).collect() }).into_response()
}

/// How many were deleted.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub deleted: usize,
}

#[utoipa::path(delete, path = "/admin/v1/sandbox/faults", operation_id = "clearSandboxFaults", tag = "Sandbox",
    responses((status = 200, description = "Every rule deleted", body = Deleted),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn fault_clear(Sandboxed(sandbox): Sandboxed) -> Response {
    axum::Json(Deleted { deleted: sandbox.faults.clear() }).into_response()
}

#[utoipa::path(get, path = "/admin/v1/sandbox/faults/{id}", operation_id = "getSandboxFault", tag = "Sandbox",
    params(("id" = String, Path)),
    responses((status = 200, description = "The rule", body = RuleView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = "No such rule, or the sandbox is off", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn fault_get(Sandboxed(sandbox): Sandboxed, Path(id): Path<String>) -> Response {
    match sandbox.faults.get(&id) {
        Some(rule) => axum::Json(rule.view()).into_response(),
        None => error(StatusCode::NOT_FOUND, "No such fault rule."),
    }
}

#[utoipa::path(delete, path = "/admin/v1/sandbox/faults/{id}", operation_id = "deleteSandboxFault", tag = "Sandbox",
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = "No such rule, or the sandbox is off", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn fault_delete(Sandboxed(sandbox): Sandboxed, Path(id): Path<String>) -> Response {
    if sandbox.faults.delete(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "No such fault rule.")
    }
}

/// Journal entries, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JournalPage {
    pub entries: Vec<Entry>,
    /// Entries pushed out by newer ones since the last clear.
    pub dropped: u64,
}

#[utoipa::path(get, path = "/admin/v1/sandbox/journal", operation_id = "listSandboxJournal", tag = "Sandbox",
    params(Filter),
    responses((status = 200, description = "The entries that match", body = JournalPage),
              (status = 400, description = "Invalid query", body = AdminError),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn journal_list(
    Sandboxed(sandbox): Sandboxed,
    query: Result<Query<Filter>, QueryRejection>,
) -> Response {
    let Query(filter) = match query {
        Ok(q) => q,
        Err(rej) => return error(StatusCode::BAD_REQUEST, &rej.body_text()),
    };
    match sandbox.journal.query(&filter) {
        Ok(entries) => axum::Json(JournalPage { entries, dropped: sandbox.journal.dropped() }).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

#[utoipa::path(delete, path = "/admin/v1/sandbox/journal", operation_id = "clearSandboxJournal", tag = "Sandbox",
    responses((status = 200, description = "Emptied", body = Deleted),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn journal_clear(Sandboxed(sandbox): Sandboxed) -> Response {
    axum::Json(Deleted { deleted: sandbox.journal.clear() }).into_response()
}

/// A verify that held.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Verified {
    pub matched: u64,
}

/// How many entries a verify may show when it fails.
const SEEN: usize = 50;

#[utoipa::path(post, path = "/admin/v1/sandbox/journal/verify", operation_id = "verifySandboxJournal", tag = "Sandbox",
    request_body = Expectation,
    responses((status = 200, description = "The expectation holds", body = Verified),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 409, description = "It does not: error, matched, the expectation and the entries seen"),
              (status = 422, description = "Invalid expectation", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn journal_verify(Sandboxed(sandbox): Sandboxed, JsonBody(exp): JsonBody<Expectation>) -> Response {
    if let Err(e) = exp.validate() {
        return unprocessable(e);
    }
    let filter = Filter { limit: None, ..exp.filter.clone() };
    let seen = match sandbox.journal.query(&filter) {
        Ok(s) => s,
        Err(e) => return unprocessable(e),
    };
    let n = seen.len() as u64;
    if exp.met_by(n) {
        return axum::Json(Verified { matched: n }).into_response();
    }
    let wanted = match (exp.count, exp.at_least, exp.at_most) {
        (Some(c), _, _) => format!("exactly {c}"),
        (None, Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
        (None, Some(lo), None) => format!("at least {lo}"),
        (None, None, Some(hi)) => format!("at most {hi}"),
        _ => String::new(),
    };
    let shown = &seen[seen.len().saturating_sub(SEEN)..];
    (
        StatusCode::CONFLICT,
        axum::Json(json!({
            "error": format!("Expected {wanted} matching request(s), found {n}."),
            "matched": n,
            "expected": {"count": exp.count, "at_least": exp.at_least, "at_most": exp.at_most},
            "match": exp.filter,
            "seen": shown,
        })),
    )
        .into_response()
}

/// What a reset goes back to.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    /// `seed` (default): the start-up seed document; `empty`: nothing.
    #[schema(pattern = "^(seed|empty)$")]
    pub to: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResetDone {
    pub to: String,
    /// Whether a start-up seed document was applied.
    pub seed_applied: bool,
}

#[utoipa::path(post, path = "/admin/v1/sandbox/reset", operation_id = "resetSandbox", tag = "Sandbox",
    request_body = Option<Reset>,
    responses((status = 200, description = "Reset: data, journal, rules, clock and deterministic mode", body = ResetDone),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "Invalid target", body = AdminError),
              (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn reset(
    State(state): State<AppState>,
    Sandboxed(sandbox): Sandboxed,
    JsonBody(r): JsonBody<Reset>,
) -> Response {
    let to = r.to.unwrap_or_else(|| "seed".into());
    let plan = match to.as_str() {
        "seed" => match &sandbox.settings.seed_document {
            Some(doc) => match seed::plan(doc) {
                Ok(p) => Some(p),
                Err(e) => return internal("start-up seed", e),
            },
            None => None,
        },
        "empty" => None,
        _ => return unprocessable("to must be \"seed\" or \"empty\""),
    };
    // Back to real time first: the seed is applied at the time it was at start-up's.
    sandbox.clock.reset();
    if let Err(e) = state.store.sandbox_reset(plan.as_ref(), &state.vault, state.clock.now_ms()).await {
        return internal("reset", e);
    }
    sandbox.journal.clear();
    sandbox.faults.clear();
    sandbox.set_seed(sandbox.settings.deterministic_seed);
    axum::Json(ResetDone { to, seed_applied: plan.is_some() }).into_response()
}

/// A saved state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SnapshotView {
    pub name: String,
    /// RFC 3339, sandbox clock.
    pub created_at: String,
    /// Rows saved per table.
    #[schema(value_type = Object)]
    pub rows: std::collections::BTreeMap<String, i64>,
}

fn snapshot_view(s: patchbay_store::sandbox::SnapshotInfo) -> SnapshotView {
    SnapshotView { name: s.name, created_at: instant_text(s.created_at_ms), rows: s.rows }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SnapshotList {
    pub snapshots: Vec<SnapshotView>,
}

/// A snapshot's name: 1–100 of `A-Z a-z 0-9 . _ -`.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotName {
    #[schema(value_type = String, required = true, pattern = "^[A-Za-z0-9._-]{1,100}$")]
    pub name: Option<String>,
}

fn checked_name(name: &str) -> Result<(), Response> {
    if patchbay_store::sandbox::valid_name(name) {
        Ok(())
    } else {
        Err(unprocessable("A snapshot name is 1 to 100 characters of letters, digits, '.', '_' and '-'."))
    }
}

#[utoipa::path(post, path = "/admin/v1/sandbox/snapshots", operation_id = "saveSandboxSnapshot", tag = "Sandbox",
    request_body = SnapshotName,
    responses((status = 201, description = "Saved (replacing one of that name)", body = SnapshotView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError),
              (status = 422, description = "Invalid name", body = AdminError),
              (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn snapshot_save(
    State(state): State<AppState>,
    _: Sandboxed,
    JsonBody(s): JsonBody<SnapshotName>,
) -> Response {
    let Some(name) = s.name else { return unprocessable("name is required") };
    if let Err(r) = checked_name(&name) {
        return r;
    }
    match state.store.snapshot_save(&name, state.clock.now_ms()).await {
        Ok(info) => (StatusCode::CREATED, axum::Json(snapshot_view(info))).into_response(),
        Err(e) => internal("snapshot", e),
    }
}

#[utoipa::path(get, path = "/admin/v1/sandbox/snapshots", operation_id = "listSandboxSnapshots", tag = "Sandbox",
    responses((status = 200, description = "Snapshots, oldest first", body = SnapshotList),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = OFF, body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn snapshot_list(State(state): State<AppState>, _: Sandboxed) -> Response {
    match state.store.snapshot_list().await {
        Ok(list) => {
            axum::Json(SnapshotList { snapshots: list.into_iter().map(snapshot_view).collect() }).into_response()
        }
        Err(e) => internal("snapshot listing", e),
    }
}

#[utoipa::path(post, path = "/admin/v1/sandbox/snapshots/{name}/restore", operation_id = "restoreSandboxSnapshot", tag = "Sandbox",
    params(("name" = String, Path)),
    responses((status = 200, description = "The state saved under the name, back", body = SnapshotView),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = "No such snapshot, or the sandbox is off", body = AdminError),
              (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn snapshot_restore(
    State(state): State<AppState>,
    _: Sandboxed,
    Path(name): Path<String>,
) -> Response {
    if !patchbay_store::sandbox::valid_name(&name) {
        return error(StatusCode::NOT_FOUND, "No such snapshot.");
    }
    match state.store.snapshot_restore(&name).await {
        Ok(Some(info)) => axum::Json(snapshot_view(info)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "No such snapshot."),
        Err(e) => internal("restore", e),
    }
}

#[utoipa::path(delete, path = "/admin/v1/sandbox/snapshots/{name}", operation_id = "deleteSandboxSnapshot", tag = "Sandbox",
    params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"),
              (status = 401, description = "Missing or wrong admin token", body = AdminError),
              (status = 404, description = "No such snapshot, or the sandbox is off", body = AdminError),
              (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
pub(crate) async fn snapshot_delete(State(state): State<AppState>, _: Sandboxed, Path(name): Path<String>) -> Response {
    if !patchbay_store::sandbox::valid_name(&name) {
        return error(StatusCode::NOT_FOUND, "No such snapshot.");
    }
    match state.store.snapshot_delete(&name).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "No such snapshot."),
        Err(e) => internal("snapshot deletion", e),
    }
}
