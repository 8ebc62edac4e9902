//! The Export face: Bentley iTwin Platform Export API under `/export/...`.
//! Errors are `{"error": {"code", "message", "details"?}}`; validation is 422
//! with a `target` per bad value; links are absolute, from the public base URL.

pub mod exporter;
pub mod runner;
pub mod wire;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use patchbay_core::export::{EXPORT_TYPES, IFC_VERSIONS, result, state, timestamp};
use patchbay_core::seed::kind;
use patchbay_store::{ExConnection, ExDeleted, ExRun, RecordWrite, RunCreated};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::face::{Face, Headers};
use crate::openapi::{BearerAuth, PlatformResponses};

pub const SCOPE: &str = "itwin-platform";
pub const RUN_JOB: &str = "export.run";
pub const FILE_KIND: &str = "export.file";
const GRANT_KIND: &str = "export.grant";
const CONSENT_KIND: &str = "export.consent";
pub const DEFAULT_TOP: i64 = 100;
pub const MAX_TOP: i64 = 1000;
const V1: &str = "application/vnd.bentley.itwin-platform.v1+json";

// ---------------------------------------------------------------- errors --

#[derive(Debug, Clone)]
pub struct Detail {
    code: &'static str,
    message: String,
    target: String,
}

fn detail(code: &'static str, message: impl Into<String>, target: &str) -> Detail {
    Detail { code, message: message.into(), target: target.into() }
}

#[derive(Debug)]
pub struct ExError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<Detail>,
    raw: Option<Response>,
}

impl ExError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Vec::new(), raw: None }
    }
    fn invalid(code: &'static str, details: Vec<Detail>) -> Self {
        Self { details, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Cannot perform operation.") }
    }
    fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InsufficientPermissions",
            "The user has insufficient permissions for the requested operation.",
        )
    }
    fn connection_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ConnectionNotFound", "Requested Connection is not available.")
    }
}

impl From<patchbay_store::StoreError> for ExError {
    fn from(e: patchbay_store::StoreError) -> Self {
        if let patchbay_store::StoreError::Nul = e {
            return Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", crate::face::NUL_REFUSED);
        }
        tracing::error!(error = %e, "export face storage error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error.")
    }
}

impl IntoResponse for ExError {
    fn into_response(self) -> Response {
        if let Some(r) = self.raw {
            return r;
        }
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.details.is_empty() {
            error["details"] = self
                .details
                .iter()
                .map(|d| json!({"code": d.code, "message": d.message, "target": d.target}))
                .collect();
        }
        (self.status, axum::Json(json!({ "error": error }))).into_response()
    }
}

type ExResult = Result<Response, ExError>;

// ---------------------------------------------------------------- routes --

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/export/connections", get(list_connections).post(create_connection))
        .route("/export/connections/{connectionId}", get(get_connection).delete(delete_connection))
        .route("/export/connections/{connectionId}/runs", get(list_runs).post(create_run))
        .route("/export/connections/{connectionId}/runs/{runId}", get(get_run))
        .route("/export/authorizationinformation", get(authorization_information))
        .route("/export/authorizationInformation", get(authorization_information))
        .route("/export/files/{fileId}", get(download_file))
        .route("/export/openapi.json", get(crate::openapi::serve::<ExportApi>))
        .layer(axum::middleware::from_fn(accept_v1))
        // The consent page is for browsers (HTML), outside the version negotiation.
        .route("/export/authorize", get(consent_page).post(consent_submit))
}

/// `Accept` negotiation: v1, `application/json`, `*/*` or nothing → v1; anything else → 406.
async fn accept_v1(req: Request, next: Next) -> Response {
    let acceptable = match req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) if v.trim().is_empty() => true,
        Some(v) => v.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            matches!(media.as_str(), "*/*" | "application/*" | "application/json" | V1)
        }),
    };
    if acceptable {
        next.run(req).await
    } else {
        ExError::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            format!("The requested media type is not supported. Use Accept: {V1}."),
        )
        .into_response()
    }
}

// ------------------------------------------------------------------ auth --

struct User {
    id: String,
    /// The token's lookup, shared with the kept one (kept.rs); its user record
    /// names every iTwin the user may use.
    found: std::sync::Arc<patchbay_store::CredentialWith>,
}

impl User {
    /// The user record's data (`authenticate` checked that there is one).
    fn data(&self) -> &Value {
        self.found.principal.as_ref().map_or(&Value::Null, |r| &r.data)
    }

    fn can(&self, itwin: &str, perm: &str) -> bool {
        let perms = self.data()["itwins"][itwin].as_array();
        perms.is_some_and(|p| p.iter().any(|x| x == perm || (perm == "read" && x == "modify")))
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<User, ExError> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Err(ExError::new(
            StatusCode::UNAUTHORIZED,
            "HeaderNotFound",
            "Header Authorization was not found in the request. Access denied.",
        ));
    };
    let invalid =
        || ExError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "The access token is invalid or has expired.");
    let token = raw
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid)?;
    // The token and the user's record, in one query.
    let found = state
        .store
        .find_credential_with(token, ("export", kind::EX_USER), None)
        .await?
        .filter(|c| c.credential.face == "export")
        .ok_or_else(invalid)?;
    let cred = &found.credential;
    if !cred.scopes.iter().any(|s| s == SCOPE) {
        return Err(ExError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("The access token does not have the required scope {SCOPE}."),
        ));
    }
    if let Err(resp) = state.authenticated(Face::Export, &cred.principal_id, None).await {
        return Err(ExError {
            raw: Some(resp),
            ..ExError::new(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", "")
        });
    }
    if found.principal.is_none() {
        return Err(invalid());
    }
    Ok(User { id: cred.principal_id.clone(), found })
}

/// The URL form the Export face accepts (and documents as [`URL_PATTERN`]):
/// `http(s)://` host labels, an optional port, path and query of safe characters.
pub const URL_PATTERN: &str = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$";

pub fn http_url_ok(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) else { return false };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i..])),
        None => (before_query, None),
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let host_ok = host.split('.').all(label_ok);
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    });
    let path_ok = path.is_none_or(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~/-".contains(&b)));
    let query_ok = query.is_none_or(|q| q.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~=&-".contains(&b)));
    host_ok && port_ok && path_ok && query_ok
}

/// Opaque ids: 1–128 URL-safe characters.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

fn check_connection_id(id: &str, code: &'static str) -> Result<(), ExError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(ExError::invalid(
            code,
            vec![detail("InvalidValue", "Provided connectionId value is not valid.", "connectionId")],
        ))
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// The absolute base URL for links (crate::face::base_url).
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    crate::face::base_url(&state.config, headers)
}

/// Query parameters by lower-cased name (first value wins).
fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            m.entry(k.to_ascii_lowercase()).or_insert_with(|| v.into_owned());
        }
    }
    m
}

/// `$top` and `$skip`, or the details of what is wrong with them.
fn paging(q: &BTreeMap<String, String>, details: &mut Vec<Detail>) -> (i64, i64) {
    let top = match q.get("$top") {
        None => DEFAULT_TOP,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
            _ => {
                details.push(detail("InvalidValue", "Page size is out of limits.", "$top"));
                DEFAULT_TOP
            }
        },
    };
    let skip = match q.get("$skip") {
        None => 0,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                details.push(detail("InvalidValue", "Provided $skip value is not valid.", "$skip"));
                0
            }
        },
    };
    (top, skip)
}

/// `self`, `prev` (when skipping) and `next` (when more exist) links.
fn page_links(prefix: &str, top: i64, skip: i64, more: bool) -> wire::PageLinks {
    let sep = if prefix.contains('?') { "&" } else { "?" };
    let link = |s: i64| wire::Link { href: format!("{prefix}{sep}$skip={s}&$top={top}") };
    wire::PageLinks {
        this: link(skip),
        prev: (skip > 0).then(|| link((skip - top).max(0))),
        next: more.then(|| link(skip + top)),
    }
}

fn connection_json(c: &ExConnection, base: &str) -> wire::Connection {
    let link = |href: String| wire::Link { href };
    wire::Connection {
        id: c.id.clone(),
        display_name: c.display_name.clone(),
        imodel_id: c.imodel_id.clone(),
        itwin_id: c.tenant.clone(),
        authentication_type: c.authentication_type.clone(),
        links: wire::ConnectionLinks {
            i_model: link(format!("{base}/imodels/{}", c.imodel_id)),
            i_twin: link(format!("{base}/itwins/{}", c.tenant)),
            last_run: c.last_run_id.as_ref().map(|run| link(format!("{base}/export/connections/{}/runs/{run}", c.id))),
        },
    }
}

/// The ExportConnection object written straight from the stored connection:
/// the fields and order of [`wire::Connection`] (which documents it), without
/// copying a string (a list page writes up to a thousand).
struct ConnectionOut<'a> {
    c: &'a ExConnection,
    base: &'a str,
}

impl serde::Serialize for ConnectionOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (c, base) = (self.c, self.base);
        let mut s = serializer.serialize_struct("Connection", 6)?;
        s.serialize_field("id", &c.id)?;
        s.serialize_field("displayName", &c.display_name)?;
        s.serialize_field("iModelId", &c.imodel_id)?;
        s.serialize_field("iTwinId", &c.tenant)?;
        s.serialize_field("authenticationType", &c.authentication_type)?;
        s.serialize_field("_links", &LinksOut { c, base })?;
        s.end()
    }
}

/// `_links` of [`ConnectionOut`] (wire::ConnectionLinks).
struct LinksOut<'a> {
    c: &'a ExConnection,
    base: &'a str,
}

impl serde::Serialize for LinksOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (c, base) = (self.c, self.base);
        let mut s = serializer.serialize_struct("ConnectionLinks", 3)?;
        s.serialize_field("iModel", &HrefOut(&[base, "/imodels/", &c.imodel_id]))?;
        s.serialize_field("iTwin", &HrefOut(&[base, "/itwins/", &c.tenant]))?;
        if let Some(run) = &c.last_run_id {
            s.serialize_field("lastRun", &HrefOut(&[base, "/export/connections/", &c.id, "/runs/", run]))?;
        }
        s.end()
    }
}

/// `{"href": …}` (wire::Link), the parts joined (on the stack when short).
struct HrefOut<'a>(&'a [&'a str]);

impl serde::Serialize for HrefOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Link", 1)?;
        let mut buf = [0u8; 512];
        let len: usize = self.0.iter().map(|p| p.len()).sum();
        if len <= buf.len() {
            let mut at = 0;
            for p in self.0 {
                buf[at..at + p.len()].copy_from_slice(p.as_bytes());
                at += p.len();
            }
            // Whole strings joined: always UTF-8.
            let joined = std::str::from_utf8(&buf[..at]).map_err(serde::ser::Error::custom)?;
            s.serialize_field("href", joined)?;
        } else {
            s.serialize_field("href", &self.0.concat())?;
        }
        s.end()
    }
}

/// `{"connections": […], "_links": …}` (wire::ConnectionsPage).
#[derive(serde::Serialize)]
struct PageOut<'a> {
    connections: Vec<ConnectionOut<'a>>,
    #[serde(rename = "_links")]
    links: wire::PageLinks,
}

fn run_json(r: &ExRun) -> Result<wire::Run, ExError> {
    let jobs: Vec<wire::Job> = serde_json::from_value(r.jobs.clone())
        .map_err(|e| ExError::from(patchbay_store::StoreError::Corrupt(format!("run jobs: {e}"))))?;
    Ok(wire::Run {
        id: r.id.clone(),
        connection_id: r.connection_id.clone(),
        start_date_time: r.start_at.map(timestamp),
        end_date_time: r.end_at.map(timestamp),
        state: r.state.clone(),
        result: r.result.clone(),
        jobs,
    })
}

fn typed<T: serde::Serialize>(status: StatusCode, v: T) -> ExResult {
    Ok(crate::face::json_response(status, &v))
}

/// The connection (404) that the user may `perm` (403).
async fn owned_connection(state: &AppState, user: &User, id: &str, perm: &str) -> Result<ExConnection, ExError> {
    let conn = state.store.ex_get_connection(id).await?.ok_or_else(ExError::connection_not_found)?;
    if !user.can(&conn.tenant, perm) {
        return Err(ExError::forbidden());
    }
    Ok(conn)
}

fn json_body(body: Result<Bytes, BytesRejection>, code: &'static str) -> Result<Map<String, Value>, ExError> {
    let bytes = body.map_err(|r| ExError::new(r.status(), "InvalidRequest", r.body_text()))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => {
            Err(ExError::invalid(code, vec![detail("InvalidValue", "The request body must be a JSON object.", "body")]))
        }
    }
}

/// A member by name, case-insensitively (clients spell `iModelId` both ways).
fn member<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    m.get(name).or_else(|| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

// ----------------------------------------------------------- connections --

#[utoipa::path(get, path = "/export/connections", operation_id = "get-export-connections", tag = "ExportConnections",
    params(("imodelId" = uuid::Uuid, Query, description = "The iModel (matched case-insensitively, also as iModelId)"), ("$top" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, maximum 1000)"), ("$skip" = Option<i64>, Query, minimum = 0, description = "Items to skip")),
    responses((status = 200, description = "The iModel's export connections", body = wire::ConnectionsPage),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown iModel", body = wire::ErrorResponse), (status = 422, description = "Invalid request", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn list_connections(
    State(state): State<AppState>,
    Headers(headers): Headers,
    RawQuery(query): RawQuery,
) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    let q = query_map(query.as_deref());
    let mut details = Vec::new();
    let (top, skip) = paging(&q, &mut details);
    let imodel = match q.get("imodelid").map(|s| s.trim().to_ascii_lowercase()) {
        None => {
            details.push(detail("MissingRequiredParameter", "Required parameter imodelId is missing.", "imodelId"));
            String::new()
        }
        Some(id) if !is_uuid(&id) => {
            details.push(detail("InvalidValue", "Provided imodelId value is not valid.", "imodelId"));
            id
        }
        Some(id) => id,
    };
    if !details.is_empty() {
        return Err(ExError::invalid("InvalidConnectionsRequest", details));
    }
    let model = state.store.find_record(kind::EX_IMODEL, &imodel).await?.ok_or_else(|| {
        ExError::new(StatusCode::NOT_FOUND, "ConnectionNotFound", "Requested iModelId is not available.")
    })?;
    if !user.can(&model.tenant, "read") {
        return Err(ExError::forbidden());
    }
    let rows = state.store.ex_list_connections(&model.tenant, &imodel, top + 1, skip).await?;
    let more = rows.len() as i64 > top;
    let base = base_url(&state, &headers);
    typed(
        StatusCode::OK,
        PageOut {
            connections: rows.iter().take(top as usize).map(|c| ConnectionOut { c, base: &base }).collect(),
            links: page_links(&format!("{base}/export/connections?imodelId={imodel}"), top, skip, more),
        },
    )
}

#[utoipa::path(post, path = "/export/connections", operation_id = "create-export-connection", tag = "ExportConnections",
    request_body = wire::CreateConnection,
    responses((status = 201, description = "Created", body = wire::ConnectionEnvelope, headers(("Location" = String, description = "The connection's URL"))),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown iModel", body = wire::ErrorResponse), (status = 422, description = "Invalid request", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn create_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> ExResult {
    const CODE: &str = "InvalidExportConnectionRequest";
    let user = authenticate(&state, &headers).await?;
    let body = json_body(body, CODE)?;
    let mut details = Vec::new();
    let imodel = match member(&body, "iModelId") {
        None | Some(Value::Null) => {
            details.push(detail("MissingRequiredProperty", "Required property iModelId is missing.", "iModelId"));
            String::new()
        }
        Some(Value::String(s)) if is_uuid(s.trim()) => s.trim().to_ascii_lowercase(),
        Some(_) => {
            details.push(detail("InvalidValue", "Provided iModelId value is not valid.", "iModelId"));
            String::new()
        }
    };
    let display = match member(&body, "displayName") {
        None | Some(Value::Null) => None,
        // No NUL: stored as text, which PostgreSQL cannot give one (refused on both backends).
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 256 && !s.contains('\0') => Some(s.clone()),
        Some(_) => {
            details.push(detail("InvalidValue", "Provided displayName value is not valid.", "displayName"));
            None
        }
    };
    let auth_type = match member(&body, "authenticationType") {
        None | Some(Value::Null) => "User".to_string(),
        Some(Value::String(s)) if s == "User" || s == "Service" => s.clone(),
        Some(_) => {
            details.push(detail(
                "InvalidValue",
                "authenticationType must be one of User, Service.",
                "authenticationType",
            ));
            String::new()
        }
    };
    if !details.is_empty() {
        return Err(ExError::invalid(CODE, details));
    }
    let model =
        state.store.find_record(kind::EX_IMODEL, &imodel).await?.ok_or_else(|| {
            ExError::new(StatusCode::NOT_FOUND, "iModelNotFound", "Requested iModel is not available.")
        })?;
    if !user.can(&model.tenant, "modify") {
        return Err(ExError::forbidden());
    }
    let mut raw = [0u8; 32];
    state.entropy.fill(&mut raw);
    let now = state.clock.now_ms();
    let conn = ExConnection {
        tenant: model.tenant.clone(),
        id: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        imodel_id: imodel,
        display_name: display.unwrap_or_else(|| model.data["displayName"].as_str().unwrap_or("Export").to_string()),
        authentication_type: auth_type,
        owner_user_id: user.id.clone(),
        simulate: None,
        last_run_id: None,
        created_at: now,
        updated_at: now,
    };
    state.store.ex_insert_connection(&conn).await?;
    let base = base_url(&state, &headers);
    let mut resp =
        (StatusCode::CREATED, axum::Json(json!({ "connection": connection_json(&conn, &base) }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/export/connections/{}", conn.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/export/connections/{connectionId}", operation_id = "get-export-connection", tag = "ExportConnections",
    params(("connectionId" = String, Path, pattern = "^[A-Za-z0-9._~-]{1,128}$", description = "The connection id")),
    responses((status = 200, description = "The connection", body = wire::ConnectionEnvelope),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown connection", body = wire::ErrorResponse), (status = 422, description = "Invalid connection id", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn get_connection(State(state): State<AppState>, Headers(headers): Headers, Path(id): Path<String>) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    check_connection_id(&id, "InvalidExportConnectionRequest")?;
    let conn = owned_connection(&state, &user, &id, "read").await?;
    typed(StatusCode::OK, wire::ConnectionEnvelope { connection: connection_json(&conn, &base_url(&state, &headers)) })
}

#[utoipa::path(delete, path = "/export/connections/{connectionId}", operation_id = "delete-export-connection", tag = "ExportConnections",
    params(("connectionId" = String, Path, pattern = "^[A-Za-z0-9._~-]{1,128}$", description = "The connection id")),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown connection", body = wire::ErrorResponse), (status = 409, description = "A run is active", body = wire::ErrorResponse), (status = 422, description = "Invalid connection id", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn delete_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    check_connection_id(&id, "InvalidExportConnectionRequest")?;
    let conn = owned_connection(&state, &user, &id, "modify").await?;
    match state.store.ex_delete_connection(&conn.tenant, &conn.id).await? {
        ExDeleted::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        ExDeleted::NotFound => Err(ExError::connection_not_found()),
        ExDeleted::Active => {
            Err(ExError::new(StatusCode::CONFLICT, "ConnectionAlreadyInUse", "Connection is already being processed."))
        }
    }
}

// ------------------------------------------------------------------ runs --

/// Validates a run body (reference §3.3) into the stored request.
fn run_request(body: &Map<String, Value>) -> Result<Value, Vec<Detail>> {
    let mut d = Vec::new();
    let url_ok = http_url_ok;
    let export_type = match body.get("exportType") {
        None | Some(Value::Null) => {
            d.push(detail("MissingRequiredProperty", "Required property exportType is missing.", "exportType"));
            None
        }
        Some(Value::String(s)) if EXPORT_TYPES.contains(&s.as_str()) => Some(s.clone()),
        Some(_) => {
            d.push(detail("InvalidValue", "exportType must be one of IFC, PDF.", "exportType"));
            None
        }
    };
    let ifc_version = match body.get("ifcVersion") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if IFC_VERSIONS.contains(&s.as_str()) => {
            if export_type.as_deref().is_some_and(|t| t != "IFC") {
                d.push(detail("InvalidValue", "ifcVersion is only valid when exportType is IFC.", "ifcVersion"));
            }
            Some(s.clone())
        }
        Some(_) => {
            d.push(detail(
                "InvalidValue",
                "ifcVersion must be one of IFC4.3, IFC2x3, IFC2x3 CV 2.0, IFC4 RV 1.2.",
                "ifcVersion",
            ));
            None
        }
    };
    let mut input = Map::new();
    match body.get("inputOptions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for key in ["mappingFileId", "changesetId", "savedViewId", "mappingfileBlobUrl"] {
                match o.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => {
                        let bad = match key {
                            "changesetId" => {
                                !(s.is_empty() || (s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())))
                            }
                            "mappingfileBlobUrl" => !url_ok(s),
                            _ => false,
                        };
                        if bad {
                            d.push(detail(
                                "InvalidValue",
                                format!("Provided {key} value is not valid."),
                                &format!("inputOptions.{key}"),
                            ));
                        }
                        input.insert(key.into(), json!(s));
                    }
                    Some(_) => d.push(detail(
                        "InvalidValue",
                        format!("{key} must be a string."),
                        &format!("inputOptions.{key}"),
                    )),
                }
            }
            match o.get("modelIds") {
                None | Some(Value::Null) => {}
                Some(Value::Array(ids))
                    if !ids.is_empty() && ids.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty())) =>
                {
                    input.insert("modelIds".into(), json!(ids));
                }
                Some(_) => d.push(detail(
                    "InvalidValue",
                    "modelIds must be a non-empty array of model ids.",
                    "inputOptions.modelIds",
                )),
            }
        }
        Some(_) => d.push(detail("InvalidValue", "inputOptions must be an object.", "inputOptions")),
    }
    let mut output = Map::new();
    match body.get("outputOptions") {
        None | Some(Value::Null) => {
            output.insert("location".into(), json!("STORAGE"));
        }
        Some(Value::Object(o)) => {
            let location = match o.get("location") {
                None | Some(Value::Null) => "STORAGE".to_string(),
                Some(Value::String(s)) if s == "STORAGE" || s == "USER_BLOB_STORAGE" => s.clone(),
                Some(_) => {
                    d.push(detail(
                        "InvalidValue",
                        "location must be one of STORAGE, USER_BLOB_STORAGE.",
                        "outputOptions.location",
                    ));
                    "STORAGE".to_string()
                }
            };
            for key in ["outputSasUrl", "logsSasUrl"] {
                match o.get(key) {
                    None | Some(Value::Null) => {
                        if location == "USER_BLOB_STORAGE" && key == "outputSasUrl" {
                            d.push(detail(
                                "MissingRequiredProperty",
                                "outputSasUrl is required when location is USER_BLOB_STORAGE.",
                                "outputOptions.outputSasUrl",
                            ));
                        }
                    }
                    Some(Value::String(s)) if url_ok(s) => {
                        output.insert(key.into(), json!(s));
                    }
                    Some(_) => d.push(detail(
                        "InvalidValue",
                        format!("{key} must be a valid URL."),
                        &format!("outputOptions.{key}"),
                    )),
                }
            }
            if let Some(Value::String(f)) = o.get("folderId") {
                output.insert("folderId".into(), json!(f));
            }
            output.insert("location".into(), json!(location));
        }
        Some(_) => d.push(detail("InvalidValue", "outputOptions must be an object.", "outputOptions")),
    }
    if !d.is_empty() {
        return Err(d);
    }
    let mut req = json!({"exportType": export_type, "inputOptions": input, "outputOptions": output});
    if let Some(v) = ifc_version {
        req["ifcVersion"] = json!(v);
    }
    Ok(req)
}

async fn user_authorized(state: &AppState, user: &User) -> Result<bool, ExError> {
    if user.data()["authorizedForRuns"].as_bool() == Some(true) {
        return Ok(true);
    }
    Ok(state.store.get_record("export", GRANT_KIND, &user.id).await?.is_some())
}

#[utoipa::path(post, path = "/export/connections/{connectionId}/runs", operation_id = "create-export-connection-run", tag = "ExportConnections",
    params(("connectionId" = String, Path, pattern = "^[A-Za-z0-9._~-]{1,128}$", description = "The connection id")), request_body = wire::CreateRun,
    responses((status = 202, description = "The run was created and executes in the background", headers(("Location" = String, description = "The new run's URL"))),
              (status = 303, description = "A run is already active", headers(("Location" = String, description = "The active run's URL"))),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown connection", body = wire::ErrorResponse), (status = 409, description = "A simultaneous create won", body = wire::ErrorResponse), (status = 422, description = "Invalid request or missing authorisation", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn create_run(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ExResult {
    const CODE: &str = "InvalidExportConnectionRunRequest";
    let user = authenticate(&state, &headers).await?;
    check_connection_id(&id, CODE)?;
    let conn = owned_connection(&state, &user, &id, "modify").await?;
    let body = json_body(body, CODE)?;
    let request = run_request(&body).map_err(|d| ExError::invalid(CODE, d))?;
    if conn.authentication_type == "User" && !user_authorized(&state, &user).await? {
        return Err(ExError::invalid(
            CODE,
            vec![detail(
                "UserNotAuthorized",
                "The user has not authorized background exports: send the user to the authorizationUrl of GET /export/authorizationinformation first.",
                "authorization",
            )],
        ));
    }
    let now = state.clock.now_ms();
    let run = ExRun {
        tenant: conn.tenant.clone(),
        id: state.entropy.uuid_string(),
        connection_id: conn.id.clone(),
        state: state::QUEUED.into(),
        result: result::UNDETERMINED.into(),
        request,
        jobs: runner::initial_jobs(&state.entropy),
        start_at: None,
        end_at: None,
        created_at: now,
        updated_at: now,
    };
    let job = runner::job(&conn.tenant, &conn.id, &run.id, now);
    let base = base_url(&state, &headers);
    let location = |run_id: &str| format!("{base}/export/connections/{}/runs/{run_id}", conn.id);
    let (status, run_id) = match state.store.ex_create_run(&run, &job).await? {
        RunCreated::Created => (StatusCode::ACCEPTED, run.id.clone()),
        RunCreated::Active(active) => (StatusCode::SEE_OTHER, active),
        RunCreated::Raced => {
            return Err(ExError::new(
                StatusCode::CONFLICT,
                "ConnectionAlreadyInUse",
                "Another run of this connection was created at the same time.",
            ));
        }
    };
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&location(&run_id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/export/connections/{connectionId}/runs", operation_id = "get-export-connection-runs", tag = "ExportConnections",
    params(("connectionId" = String, Path, pattern = "^[A-Za-z0-9._~-]{1,128}$", description = "The connection id"), ("$top" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100, maximum 1000)"), ("$skip" = Option<i64>, Query, minimum = 0, description = "Items to skip")),
    responses((status = 200, description = "The connection's runs, newest first", body = wire::RunsPage),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown connection", body = wire::ErrorResponse), (status = 422, description = "Invalid request", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn list_runs(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    check_connection_id(&id, "InvalidExportConnectionRunRequest")?;
    let conn = owned_connection(&state, &user, &id, "read").await?;
    let mut details = Vec::new();
    let (top, skip) = paging(&query_map(query.as_deref()), &mut details);
    if !details.is_empty() {
        return Err(ExError::invalid("InvalidExportConnectionRunRequest", details));
    }
    let mut runs = state.store.ex_list_runs(&conn.tenant, &conn.id, top + 1, skip).await?;
    let more = runs.len() as i64 > top;
    runs.truncate(top as usize);
    let base = base_url(&state, &headers);
    typed(
        StatusCode::OK,
        wire::RunsPage {
            runs: runs.iter().map(run_json).collect::<Result<_, _>>()?,
            links: page_links(&format!("{base}/export/connections/{}/runs", conn.id), top, skip, more),
        },
    )
}

#[utoipa::path(get, path = "/export/connections/{connectionId}/runs/{runId}", operation_id = "get-export-connection-run", tag = "ExportConnections",
    params(("connectionId" = String, Path, pattern = "^[A-Za-z0-9._~-]{1,128}$", description = "The connection id"), ("runId" = String, Path, pattern = "^[A-Za-z0-9._~-]{1,128}$")),
    responses((status = 200, description = "The run", body = wire::RunEnvelope),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown connection or run", body = wire::ErrorResponse), (status = 422, description = "Invalid id", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn get_run(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path((id, run_id)): Path<(String, String)>,
) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    check_connection_id(&id, "InvalidExportConnectionRunRequest")?;
    if !valid_id(&run_id) {
        return Err(ExError::invalid(
            "InvalidExportConnectionRunRequest",
            vec![detail("InvalidValue", "Provided runId value is not valid.", "runId")],
        ));
    }
    let conn = owned_connection(&state, &user, &id, "read").await?;
    let run = state
        .store
        .ex_get_run(&conn.tenant, &conn.id, &run_id)
        .await?
        .ok_or_else(|| ExError::new(StatusCode::NOT_FOUND, "RunNotFound", "Requested Run is not available."))?;
    typed(StatusCode::OK, wire::RunEnvelope { run: run_json(&run)? })
}

// --------------------------------------------------------- authorization --

#[utoipa::path(get, path = "/export/authorizationinformation", operation_id = "get-authorizationinformation", tag = "Authorization",
    params(("redirectUrl" = String, Query, pattern = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$", description = "Where to return after authorising")),
    responses((status = 200, description = "Whether the user authorised background runs", body = wire::AuthorizationInformationEnvelope),
              (status = 422, description = "Invalid redirectUrl", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn authorization_information(
    State(state): State<AppState>,
    Headers(headers): Headers,
    RawQuery(query): RawQuery,
) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    let q = query_map(query.as_deref());
    let redirect = q.get("redirecturl").filter(|u| http_url_ok(u)).cloned().ok_or_else(|| {
        ExError::invalid(
            "InvalidAuthorizationInformationRequest",
            vec![detail("InvalidValue", "redirectUrl must be a valid URL.", "$redirectUrl")],
        )
    })?;
    let authorized = user_authorized(&state, &user).await?;
    let mut raw = [0u8; 24];
    state.entropy.fill(&mut raw);
    let consent = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let now = state.clock.now_ms();
    let rec = RecordWrite {
        tenant: "export".into(),
        kind: CONSENT_KIND.into(),
        id: consent.clone(),
        data: json!({"userId": user.id, "redirectUrl": redirect, "expiresAt": now + 3_600_000}),
        secret: None,
    };
    state.store.put_record(&rec, &[], &state.vault, now).await?;
    let base = base_url(&state, &headers);
    let url = format!(
        "{base}/export/authorize?redirect_url={}&consent={consent}",
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    typed(
        StatusCode::OK,
        wire::AuthorizationInformationEnvelope {
            authorization_information: wire::AuthorizationInformation {
                is_user_authorized: authorized,
                links: wire::AuthorizationLinks { authorization_url: wire::Link { href: url } },
            },
        },
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn html_error(status: StatusCode, message: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Patchbay authorization</title></head>\
         <body><h1>Authorization</h1><p>{}</p></body></html>",
        html_escape(message)
    );
    (status, Html(page)).into_response()
}

/// A live consent record: (record, user id, redirect URL).
async fn live_consent(state: &AppState, consent: &str) -> Option<(String, String)> {
    if !valid_id(consent) {
        return None;
    }
    let rec = state.store.get_record("export", CONSENT_KIND, consent).await.ok()??;
    let fresh = rec.data["expiresAt"].as_i64().is_some_and(|t| t > state.clock.now_ms());
    let used = rec.data["used"].as_bool() == Some(true);
    if !fresh || used {
        return None;
    }
    Some((rec.data["userId"].as_str()?.to_string(), rec.data["redirectUrl"].as_str()?.to_string()))
}

async fn consent_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let q = query_map(query.as_deref());
    let consent = q.get("consent").cloned().unwrap_or_default();
    let Some((user, redirect)) = live_consent(&state, &consent).await else {
        return html_error(StatusCode::BAD_REQUEST, "This authorization link is invalid or has expired.");
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorize Export</title></head><body>\
         <h1>Authorize Export</h1>\
         <p>Allow the Export service to run exports in the background on behalf of <strong>{user}</strong>?</p>\
         <p>Afterwards you return to <code>{redirect}</code>.</p>\
         <form method=\"post\" action=\"/export/authorize\">\
         <input type=\"hidden\" name=\"consent\" value=\"{consent}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         </form></body></html>",
        user = html_escape(&user),
        redirect = html_escape(&redirect),
        consent = html_escape(&consent),
    );
    Html(page).into_response()
}

async fn consent_submit(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let Ok(body) = body else {
        return html_error(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let form: BTreeMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let consent = form.get("consent").cloned().unwrap_or_default();
    if form.get("decision").map(String::as_str) != Some("allow") {
        return html_error(StatusCode::BAD_REQUEST, "Authorization was not granted.");
    }
    let Some((user, redirect)) = live_consent(&state, &consent).await else {
        return html_error(StatusCode::BAD_REQUEST, "This authorization link is invalid or has expired.");
    };
    let now = state.clock.now_ms();
    let grant = RecordWrite {
        tenant: "export".into(),
        kind: GRANT_KIND.into(),
        id: user.clone(),
        data: json!({"grantedAt": timestamp(now)}),
        secret: None,
    };
    let used = RecordWrite {
        tenant: "export".into(),
        kind: CONSENT_KIND.into(),
        id: consent,
        data: json!({"userId": user, "redirectUrl": redirect, "expiresAt": 0, "used": true}),
        secret: None,
    };
    for rec in [grant, used] {
        if let Err(e) = state.store.put_record(&rec, &[], &state.vault, now).await {
            tracing::error!(error = %e, "could not record the export grant");
            return html_error(StatusCode::INTERNAL_SERVER_ERROR, "The authorization could not be recorded.");
        }
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&redirect) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

// ----------------------------------------------------------------- files --

/// Extension: the file a run produced (`exportOutputFileId`).
#[utoipa::path(get, path = "/export/files/{fileId}", operation_id = "get-export-file", tag = "Patchbay extensions",
    params(("fileId" = uuid::Uuid, Path, description = "A run's exportOutputFileId")),
    responses((status = 200, description = "The produced file", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 403, description = "Insufficient permissions", body = wire::ErrorResponse), (status = 404, description = "Unknown file", body = wire::ErrorResponse), (status = 401, description = "Missing or invalid token", body = wire::ErrorResponse), (status = 406, description = "Unsupported API version", body = wire::ErrorResponse), (status = 429, description = "Rate limited", body = wire::ErrorResponse, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorResponse)),
    security(("bearer" = [])))]
async fn download_file(State(state): State<AppState>, Headers(headers): Headers, Path(id): Path<String>) -> ExResult {
    let user = authenticate(&state, &headers).await?;
    let not_found = || ExError::new(StatusCode::NOT_FOUND, "FileNotFound", "Requested File is not available.");
    if !is_uuid(&id) {
        return Err(not_found());
    }
    let rec = state.store.find_record(FILE_KIND, &id).await?.ok_or_else(not_found)?;
    if !user.can(&rec.tenant, "read") {
        return Err(ExError::forbidden());
    }
    let bytes = state
        .files
        .get(&exporter::file_name(&id))
        .await
        .map_err(|e| {
            tracing::error!(file = %id, error = %e, "a produced file could not be read");
            ExError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error.")
        })?
        .ok_or_else(not_found)?;
    let pdf = rec.data["exportType"] == "PDF";
    let name = rec.data["name"].as_str().unwrap_or("export").replace('"', "_");
    let mut resp = Response::new(Body::from(bytes));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if pdf { "application/pdf" } else { "application/octet-stream" }),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The platform's own answers, in this face's error schema.
const PLATFORM_RESPONSES: PlatformResponses = PlatformResponses("ErrorResponse");

/// The Export face's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Patchbay — iTwin Export API", description = "Bentley iTwin Platform Export connections and runs, wire-compatible."),
    paths(list_connections, create_connection, get_connection, delete_connection, create_run, list_runs, get_run,
          authorization_information, download_file),
    modifiers(&BearerAuth, &PLATFORM_RESPONSES),
)]
pub struct ExportApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_out_writes_the_documented_object_byte_for_byte() {
        let mut c = ExConnection {
            tenant: "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04".into(),
            id: "VRZHoBhrnkGrAev0-_-d_xwvyrzjgaVGka5wU967Q7M".into(),
            imodel_id: "7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d05".into(),
            display_name: "nightly \"IFC\" é".into(),
            authentication_type: "User".into(),
            owner_user_id: "u".into(),
            simulate: None,
            last_run_id: None,
            created_at: 1,
            updated_at: 2,
        };
        let long = format!("https://{}.example", "a".repeat(600));
        for (base, last_run) in [
            ("https://patchbay.example", None),
            ("https://patchbay.example", Some("run-1".to_string())),
            (long.as_str(), Some("run-1".to_string())),
        ] {
            c.last_run_id = last_run;
            let documented = serde_json::to_vec(&connection_json(&c, base)).unwrap();
            assert_eq!(sonic_rs::to_vec(&ConnectionOut { c: &c, base }).unwrap(), documented);
            let page = PageOut { connections: vec![ConnectionOut { c: &c, base }], links: page_links("p", 1, 0, true) };
            let documented_page = wire::ConnectionsPage {
                connections: vec![connection_json(&c, base)],
                links: page_links("p", 1, 0, true),
            };
            assert_eq!(sonic_rs::to_vec(&page).unwrap(), serde_json::to_vec(&documented_page).unwrap());
        }
    }

    #[test]
    fn urls_match_the_documented_pattern() {
        for ok in [
            "http://a",
            "https://app.example/done",
            "http://6H0LELEsMEvv.M.0",
            "https://x:8080/p/q?sig=a&b=c",
            "http://127.0.0.1:65535/x",
        ] {
            assert!(super::http_url_ok(ok), "{ok}");
        }
        for bad in [
            "ftp://a",
            "http://",
            "http://a b",
            "http://a..b",
            "http://a:99999",
            "http://a:65536",
            "http://a/%zz",
            "not a url",
        ] {
            assert!(!super::http_url_ok(bad), "{bad}");
        }
    }
}
