//! The Network face: BitGo Off-Exchange Settlement connections under
//! `/api/network/v1/enterprises/{enterpriseId}/...`, wire-compatible with
//! BitGoJS `TradingNetwork` and BitGo's cURL cookbooks.
//!
//! Errors are always `{"error": "<message>"}` (including 400, see
//! docs/compatibility.md).

pub mod hmac;
pub mod initialize;
pub mod params;
pub mod wire;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use patchbay_core::network::{self as rules, check_connection_key, signing_payload, timestamp};
use patchbay_core::seed::kind;
use patchbay_store::{NetConnection, NetConnectionFilter, NetSide, NewJob, Record, RecordWrite, StoreError};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::face::{Face, Headers};
use crate::openapi::{BearerAuth, PlatformResponses};
use params::{RawParams, is_uuid};

pub const SCOPE_READ: &str = "settlement_network_read";
pub const SCOPE_WRITE: &str = "settlement_network_write";
pub const INITIALIZE_JOB: &str = "network.partner_initialize";

/// A Network face error: a status and a message, rendered `{"error": message}`.
#[derive(Debug)]
pub struct NetError {
    status: StatusCode,
    message: String,
    retry_after: Option<Response>,
}

impl NetError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<StoreError> for NetError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Nul = e {
            return Self::bad_request(crate::face::NUL_REFUSED);
        }
        tracing::error!(error = %e, "network face storage error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }
}

impl IntoResponse for NetError {
    fn into_response(self) -> Response {
        match self.retry_after {
            Some(resp) => resp,
            None => Face::Network.error(self.status, &self.message),
        }
    }
}

type NetResult = Result<Response, NetError>;

pub fn routes() -> Router<AppState> {
    let base = "/api/network/v1/enterprises/{enterpriseId}";
    Router::new()
        .route(&format!("{base}/partners/connections"), get(list_partner_connections))
        .route(&format!("{base}/partners/connections/{{connectionId}}"), get(get_partner_connection))
        .route(&format!("{base}/clients/connections"), get(list_client_connections).post(connect))
        .route(&format!("{base}/clients/connections/signing"), get(signing).post(signing))
        .route(
            &format!("{base}/clients/connections/{{connectionId}}"),
            get(get_client_connection).put(update_connection),
        )
        .route(&format!("{base}/partners"), get(list_partners).post(create_partner))
        .route(&format!("{base}/clients"), post(onboard_client))
        .route("/api/network/v1/openapi.json", get(crate::openapi::serve::<NetworkApi>))
}

/// Requests whose path has an empty `enterpriseId` segment never match a route;
/// the fallback answers them here with the seed's 400.
pub fn empty_enterprise(path: &str) -> Option<Response> {
    path.starts_with("/api/network/v1/enterprises//")
        .then(|| Face::Network.error(StatusCode::BAD_REQUEST, "enterpriseId must not be empty."))
}

// ------------------------------------------------------------------ auth --

/// The authenticated caller, within one enterprise: the store's (shared)
/// answer, not copied per request.
struct Caller {
    found: std::sync::Arc<patchbay_store::CredentialWith>,
}

impl Caller {
    fn enterprise(&self) -> &Record {
        // `authorize` builds a Caller only when the enterprise was found.
        self.found.other.as_ref().expect("a caller's enterprise exists")
    }
    fn user_id(&self) -> &str {
        &self.found.credential.principal_id
    }
    fn trust_org(&self) -> Option<&str> {
        self.enterprise().data["trustOrg"].as_str()
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Token → enterprise exists (404) → membership (401) → OES licence (403) → scopes (403).
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    enterprise_id: &str,
    write: bool,
) -> Result<Caller, NetError> {
    if enterprise_id.is_empty() {
        return Err(NetError::bad_request("enterpriseId must not be empty."));
    }
    let token =
        bearer(headers).ok_or_else(|| NetError::unauthorized("Unauthorized: a bearer access token is required."))?;
    // The token, the caller's user record and the enterprise, in one query.
    let found = state
        .store
        .find_credential_with(
            token,
            ("network", kind::NET_USER),
            Some((enterprise_id, kind::NET_ENTERPRISE, enterprise_id)),
        )
        .await?
        .filter(|c| c.credential.face == "network")
        .ok_or_else(|| NetError::unauthorized("Unauthorized: the access token is invalid or expired."))?;
    let cred = &found.credential;
    if let Err(resp) = state.rate_limit(Face::Network, &cred.principal_id) {
        return Err(NetError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: String::new(),
            retry_after: Some(resp),
        });
    }
    let enterprise =
        found.other.as_ref().ok_or_else(|| NetError::not_found(format!("Enterprise {enterprise_id} not found.")))?;
    let member = found
        .principal
        .as_ref()
        .and_then(|u| u.data["enterprises"].as_array())
        .is_some_and(|ents| ents.iter().any(|e| e.as_str() == Some(enterprise_id)));
    if !member {
        return Err(NetError::unauthorized("Caller is not a member of the enterprise."));
    }
    if enterprise.data["oesLicense"].as_bool() != Some(true) {
        return Err(NetError::forbidden("Enterprise does not have OES license."));
    }
    let has = |s: &str| cred.scopes.iter().any(|x| x == s);
    if !has(SCOPE_READ) {
        return Err(NetError::forbidden(format!("The access token lacks the {SCOPE_READ} scope.")));
    }
    if write && !has(SCOPE_WRITE) {
        return Err(NetError::forbidden(format!("The access token lacks the {SCOPE_WRITE} scope.")));
    }
    Ok(Caller { found })
}

fn path_error(_: PathRejection) -> NetError {
    NetError::bad_request("Invalid path parameters.")
}

fn connection_id(id: &str) -> Result<String, NetError> {
    if is_uuid(id) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(NetError::bad_request(format!("Invalid UUID format for connectionId: {id:?}.")))
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, NetError> {
    body.map_err(|r| NetError::new(r.status(), r.body_text()))
}

// -------------------------------------------------------------- rendering --

/// The Connection object (V1ConnectionOutput), written straight from the stored
/// connection: the fields and order of [`wire::Connection`] (which documents
/// it in the OpenAPI document), field by field into the response buffer (a
/// list page writes a hundred; the test below checks the bytes against
/// `serde_json` writing the documented type).
fn write_connection(out: &mut Vec<u8>, c: &NetConnection) {
    use crate::face::{write_json_opt_str as opt, write_json_str as text};
    let flag = |b: bool| if b { &b"true"[..] } else { b"false" };
    out.extend_from_slice(b"{\"id\":");
    text(out, &c.id);
    out.extend_from_slice(b",\"name\":");
    text(out, &c.name);
    out.extend_from_slice(b",\"clientId\":");
    text(out, &c.client_id);
    out.extend_from_slice(b",\"partnerId\":");
    text(out, &c.partner_id);
    out.extend_from_slice(b",\"networkAccountId\":");
    text(out, &c.network_account_id);
    out.extend_from_slice(b",\"createdAt\":");
    crate::face::write_json_millis(out, c.created_at);
    out.extend_from_slice(b",\"updatedAt\":");
    crate::face::write_json_millis(out, c.updated_at);
    out.extend_from_slice(b",\"active\":");
    out.extend_from_slice(flag(c.active));
    out.extend_from_slice(b",\"proof\":");
    text(out, &c.proof);
    out.extend_from_slice(b",\"nonce\":");
    text(out, &c.nonce);
    out.extend_from_slice(b",\"partnersConnectionId\":");
    opt(out, c.partners_connection_id.as_deref());
    out.extend_from_slice(b",\"partnersClientId\":");
    opt(out, c.partners_client_id.as_deref());
    out.extend_from_slice(b",\"initialized\":");
    out.extend_from_slice(flag(c.initialized));
    out.push(b'}');
}

/// `{"connection": …}` (wire::ConnectionEnvelope).
fn one_out(conn: &NetConnection) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"connection\":");
    write_connection(&mut out, conn);
    out.push(b'}');
    out
}

/// `{"connections": […]}` (wire::ConnectionsEnvelope).
fn many_out(conns: &[NetConnection]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + conns.len() * 512);
    out.extend_from_slice(b"{\"connections\":");
    crate::face::write_json_list(&mut out, conns, write_connection);
    out.push(b'}');
    out
}

fn connection_out(conn: &NetConnection) -> NetResult {
    Ok(crate::face::json_bytes_response(StatusCode::OK, one_out(conn)))
}

fn typed<T: serde::Serialize>(v: T) -> NetResult {
    Ok(crate::face::json_response(StatusCode::OK, &v))
}

fn partner_trust_org(p: &Record) -> String {
    p.data["trustOrg"].as_str().unwrap_or("BitGo Trust").to_string()
}

fn partner_json(p: &Record) -> wire::Partner {
    let d = &p.data;
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    wire::Partner {
        id: p.id.clone(),
        name: text("name"),
        institution_id: d["institutionId"].as_str().map(str::to_string),
        institution_identifier: text("institutionIdentifier"),
        connection_key_schema: text("connectionKeySchema"),
        active: d["active"].as_bool().unwrap_or(true),
        trust_org: partner_trust_org(p),
        stable_partner: d["stablePartner"].as_bool().unwrap_or(false),
        enterprise_id: p.tenant.clone(),
        public_key: d["publicKey"].as_str().map(str::to_string),
        client_dispute_window_minutes: d["clientDisputeWindowMinutes"].as_f64(),
        top_up_window_minutes: d["topUpWindowMinutes"].as_f64(),
    }
}

// ------------------------------------------------------------------ reads --

async fn list(
    state: AppState,
    headers: HeaderMap,
    enterprise_id: String,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
    side: NetSide,
) -> NetResult {
    let caller = authorize(&state, &headers, &enterprise_id, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let mut filter = NetConnectionFilter {
        active: params.boolean("active")?,
        ids: params.uuids("connectionIds")?,
        partner_ids: params.uuids("partnerIds")?,
        ..Default::default()
    };
    match side {
        NetSide::Client => filter.names = params.strings("names")?,
        NetSide::Partner => {
            filter.client_ids = params.uuids("clientIds")?;
            filter.partners_client_ids = params.strings("partnersClientIds")?;
            filter.partners_connection_ids = params.strings("partnersConnectionIds")?;
        }
    }
    // A value with a NUL character matches nothing stored (and PostgreSQL cannot
    // compare text with one): it is dropped, and a filter left with no value
    // matches nothing at all.
    let mut matches_nothing = false;
    for values in [&mut filter.names, &mut filter.partners_client_ids, &mut filter.partners_connection_ids] {
        let given = !values.is_empty();
        values.retain(|v| !v.contains('\0'));
        matches_nothing |= given && values.is_empty();
    }
    if matches_nothing {
        return Ok(crate::face::json_bytes_response(StatusCode::OK, many_out(&[])));
    }
    let rows = state.store.net_list_connections(side, &caller.enterprise().id, &filter, limit, offset).await?;
    Ok(crate::face::json_bytes_response(StatusCode::OK, many_out(&rows)))
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/connections", operation_id = "v1PartnerConnectionsGetRoute", tag = "Partner Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$", description = "Zero-based page number"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$", description = "Page size (default 100, maximum 1000)"), ("active" = Option<bool>, Query), ("clientIds" = Option<Vec<uuid::Uuid>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query),
           ("partnersClientIds" = Option<Vec<wire::NonEmptyString>>, Query), ("partnersConnectionIds" = Option<Vec<wire::NonEmptyString>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query)),
    responses((status = 200, description = "The partner's connections", body = wire::ConnectionsEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn list_partner_connections(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections", operation_id = "v1ClientConnectionsGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$", description = "Zero-based page number"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$", description = "Page size (default 100, maximum 1000)"), ("active" = Option<bool>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("names" = Option<Vec<wire::NonEmptyString>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query)),
    responses((status = 200, description = "The client's connections", body = wire::ConnectionsEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn list_client_connections(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Client).await
}

async fn get_one(state: AppState, headers: HeaderMap, ent: String, id: String, side: NetSide) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let id = connection_id(&id)?;
    let conn = state
        .store
        .net_get_connection(side, &caller.enterprise().id, &id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Connection {id} not found.")))?;
    connection_out(&conn)
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/connections/{connectionId}", operation_id = "v1PartnerConnectionGetRoute", tag = "Partner Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("connectionId" = uuid::Uuid, Path, description = "The connection id")),
    responses((status = 200, description = "The connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn get_partner_connection(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}", operation_id = "v1ClientConnectionGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("connectionId" = uuid::Uuid, Path, description = "The connection id")),
    responses((status = 200, description = "The connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn get_client_connection(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners", operation_id = "v1PartnersGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$", description = "Zero-based page number"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$", description = "Page size (default 100, maximum 1000)"), ("ids" = Option<Vec<uuid::Uuid>>, Query), ("names" = Option<Vec<wire::NonEmptyString>>, Query), ("institutionIds" = Option<Vec<uuid::Uuid>>, Query),
           ("institutionIdentifiers" = Option<Vec<wire::NonEmptyString>>, Query), ("active" = Option<bool>, Query), ("filterByTrustOrg" = Option<bool>, Query), ("allocationPoliciesEnabled" = Option<bool>, Query)),
    responses((status = 200, description = "The partner directory", body = wire::PartnersEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn list_partners(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let ids = params.uuids("ids")?;
    let names = params.strings("names")?;
    let institution_ids = params.uuids("institutionIds")?;
    let identifiers = params.strings("institutionIdentifiers")?;
    let active = params.boolean("active")?;
    let by_trust_org = params.boolean("filterByTrustOrg")?.unwrap_or(false);
    let policies = params.boolean("allocationPoliciesEnabled")?;
    let caller_org = caller.trust_org().unwrap_or("BitGo Trust").to_string();
    let mut partners = state.store.list_kind(kind::NET_PARTNER).await?;
    partners.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let text = |p: &Record, k: &str| p.data[k].as_str().unwrap_or_default().to_string();
    let matching: Vec<wire::Partner> = partners
        .iter()
        .filter(|p| ids.is_empty() || ids.contains(&p.id))
        .filter(|p| names.is_empty() || names.contains(&text(p, "name")))
        .filter(|p| institution_ids.is_empty() || institution_ids.contains(&text(p, "institutionId")))
        .filter(|p| identifiers.is_empty() || identifiers.contains(&text(p, "institutionIdentifier")))
        .filter(|p| active.is_none_or(|a| p.data["active"].as_bool().unwrap_or(true) == a))
        .filter(|p| !by_trust_org || partner_trust_org(p) == caller_org)
        .filter(|p| policies.is_none_or(|a| p.data["allocationPoliciesEnabled"].as_bool().unwrap_or(false) == a))
        .skip(offset as usize)
        .take(limit as usize)
        .map(partner_json)
        .collect();
    typed(wire::PartnersEnvelope { partners: matching })
}

// ----------------------------------------------------------------- writes --

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, NetError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(NetError::bad_request("The request body must be a JSON object.")),
    }
}

fn required_str(body: &Map<String, Value>, key: &str) -> Result<String, NetError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(NetError::bad_request(format!("{key} must not be empty."))),
        Some(_) => Err(NetError::bad_request(format!("{key} must be a string."))),
        None => Err(NetError::bad_request(format!("{key} is required."))),
    }
}

/// A required string that is stored as text: no NUL character (PostgreSQL
/// text cannot hold one; refused on every backend alike).
fn stored_str(body: &Map<String, Value>, key: &str) -> Result<String, NetError> {
    let v = required_str(body, key)?;
    no_nul(key, &v)?;
    Ok(v)
}

fn no_nul(key: &str, v: &str) -> Result<(), NetError> {
    match v.contains('\0') {
        true => Err(NetError::bad_request(format!("{key} must not contain a NUL character."))),
        false => Ok(()),
    }
}

fn required_uuid(body: &Map<String, Value>, key: &str) -> Result<String, NetError> {
    let v = required_str(body, key)?;
    if is_uuid(&v) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(NetError::bad_request(format!("Invalid UUID format for {key}.")))
    }
}

fn connection_key(body: &Map<String, Value>) -> Result<Map<String, Value>, NetError> {
    match body.get("connectionKey") {
        Some(Value::Object(k)) => {
            check_connection_key(k).map_err(NetError::bad_request)?;
            Ok(k.clone())
        }
        Some(_) => Err(NetError::bad_request("connectionKey must be an object.")),
        None => Err(NetError::bad_request("connectionKey is required.")),
    }
}

/// The fields shared by the signing request and Connect to Partner.
struct ConnectFields {
    partner_id: String,
    name: String,
    nonce: String,
    key: Map<String, Value>,
}

fn connect_fields(body: &Map<String, Value>) -> Result<ConnectFields, NetError> {
    Ok(ConnectFields {
        partner_id: required_uuid(body, "partnerId")?,
        name: stored_str(body, "name")?,
        key: connection_key(body)?,
        nonce: stored_str(body, "nonce")?,
    })
}

/// Partner exists (404), then active, same schema and same trust org (422).
async fn usable_partner(state: &AppState, caller: &Caller, f: &ConnectFields) -> Result<Record, NetError> {
    let partner = state
        .store
        .find_record(kind::NET_PARTNER, &f.partner_id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Partner {} not found.", f.partner_id)))?;
    if partner.data["active"].as_bool() == Some(false) {
        return Err(NetError::unprocessable("The partner is not active."));
    }
    let schema = f.key["schema"].as_str().unwrap_or_default();
    let wanted = partner.data["connectionKeySchema"].as_str().unwrap_or_default();
    if schema != wanted {
        return Err(NetError::unprocessable(format!(
            "connectionKey.schema {schema:?} does not match the partner's connectionKeySchema {wanted:?}."
        )));
    }
    if caller.trust_org().unwrap_or("BitGo Trust") != partner_trust_org(&partner) {
        return Err(NetError::unprocessable("The client and the partner belong to different trust orgs."));
    }
    Ok(partner)
}

/// The enterprise's OES client (the first by creation when several exist).
async fn client_of(state: &AppState, enterprise: &str) -> Result<Option<Record>, NetError> {
    let mut clients = state.store.list_records(enterprise, kind::NET_CLIENT).await?;
    clients.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(clients.into_iter().next())
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/signing", operation_id = "V1ClientConnectionsSigningPostRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body = wire::SigningRequest,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn signing(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    method: axum::http::Method,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, method == axum::http::Method::POST).await?;
    let body = json_object(&body_bytes(body)?)?;
    let f = connect_fields(&body)?;
    usable_partner(&state, &caller, &f).await?;
    let payload = signing_payload(&f.partner_id, &f.name, &f.nonce, &f.key)
        .ok_or_else(|| NetError::bad_request("connectionKey is incomplete."))?;
    typed(wire::SigningPayload { payload })
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections", operation_id = "v1ClientConnectionsPostRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body = wire::ConnectRequest,
    responses((status = 200, description = "The new connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn connect(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    // 1. Body shape.
    let body = json_object(&body_bytes(body)?)?;
    let f = connect_fields(&body)?;
    let payload = required_str(&body, "payload")?;
    let signature = required_str(&body, "signature")?;
    let client = client_of(&state, &caller.enterprise().id)
        .await?
        .ok_or_else(|| NetError::not_found("The enterprise is not onboarded as an OES client."))?;
    // 2-3. Partner exists; active, schema, trust org.
    let partner = usable_partner(&state, &caller, &f).await?;
    // 4. The signed payload carries the same request data.
    let signed = match serde_json::from_str::<Value>(&payload) {
        Ok(Value::Object(m)) => m,
        _ => return Err(NetError::bad_request("Invalid payload format: payload must be a JSON object string.")),
    };
    for (key, want) in [("partnerId", &f.partner_id), ("name", &f.name), ("nonce", &f.nonce)] {
        let got = signed
            .get(key)
            .and_then(Value::as_str)
            .map(|s| if key == "partnerId" { s.to_ascii_lowercase() } else { s.to_string() });
        if got.as_deref() != Some(want.as_str()) {
            return Err(NetError::bad_request(format!("Payload does not match request data: {key}.")));
        }
    }
    let signed_key = signed.get("connectionKey").and_then(Value::as_object);
    let key_matches = match signed_key {
        None => false,
        // Partners with a public key get values encrypted by BitGo Express after
        // signing, so only the schema can be compared.
        Some(k) if !partner.data["publicKey"].is_null() => k.get("schema") == f.key.get("schema"),
        Some(k) => rules::canonical_key(k).is_some() && rules::canonical_key(k) == rules::canonical_key(&f.key),
    };
    if !key_matches {
        return Err(NetError::bad_request("Payload does not match request data: connectionKey."));
    }
    // 5. The signature, by the client's registered key.
    let public_key = client.data["publicKey"].as_str().unwrap_or_default();
    if let Err(e) = rules::verify_message(payload.as_bytes(), &signature, public_key) {
        tracing::info!(enterprise = %caller.enterprise().id, user = %caller.user_id(), reason = %e, "connection signature rejected");
        return Err(NetError::unauthorized("Payload/Signature are not valid."));
    }
    // 6-7. Nonce unused by this client; persist (and enqueue the partner's initialisation).
    let now = state.clock.now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let schema = f.key["schema"].as_str().unwrap_or_default().to_string();
    let key_plain: Value =
        serde_json::from_str(&rules::canonical_key(&f.key).unwrap_or_default()).unwrap_or(Value::Null);
    let aad = Record::aad(&caller.enterprise().id, kind::NET_CONNECTION, &id);
    let conn = NetConnection {
        tenant: caller.enterprise().id.clone(),
        id: id.clone(),
        partner_tenant: partner.tenant.clone(),
        client_id: client.id.clone(),
        partner_id: partner.id.clone(),
        name: f.name,
        active: true,
        nonce: f.nonce,
        network_account_id: uuid::Uuid::new_v4().to_string(),
        proof: rules::proof(&payload, &signature),
        partners_connection_id: None,
        partners_client_id: None,
        initialized: false,
        key_schema: schema,
        key: state.vault.seal(key_plain.to_string().as_bytes(), &aad),
        created_at: now,
        updated_at: now,
    };
    let jobs: Vec<NewJob> = if partner.data["callbackUrl"].is_string() {
        vec![NewJob::now(&conn.tenant, INITIALIZE_JOB, json!({"connectionId": id}), initialize::MAX_ATTEMPTS, now)]
    } else {
        Vec::new()
    };
    match state.store.net_insert_connection(&conn, &jobs).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(NetError::bad_request("The nonce has already been used.")),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(connection = %id, enterprise = %conn.tenant, partner = %conn.partner_id, "connection created");
    connection_out(&conn)
}

#[utoipa::path(put, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}", operation_id = "v1ClientConnectionPutRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("connectionId" = uuid::Uuid, Path, description = "The connection id")), request_body = wire::UpdateConnectionRequest,
    responses((status = 200, description = "The updated connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn update_connection(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    let id = connection_id(&id)?;
    let body = json_object(&body_bytes(body)?)?;
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err(NetError::bad_request("name must be a non-empty string.")),
    };
    if let Some(name) = &name {
        no_nul("name", name)?;
    }
    let active = match body.get("active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(NetError::bad_request("active must be a boolean.")),
    };
    let conn = state
        .store
        .net_update_connection(&caller.enterprise().id, &id, name.as_deref(), active, state.clock.now_ms())
        .await?
        .ok_or_else(|| NetError::not_found(format!("Connection {id} not found.")))?;
    connection_out(&conn)
}

const TRUST_ORGS: &[&str] = &[
    "BitGo Trust",
    "BitGo New York",
    "BitGo Germany",
    "BitGo Switzerland",
    "BitGo Europe ApS",
    "Frankfurt DE Trust",
    "BitGo Singapore",
    "BitGo Korea",
    "BitGo Custody MENA FZE",
    "BitGo India",
    "BitGo Sister Trust 1",
];

/// The enterprise's client, created on first need.
async fn ensure_client(state: &AppState, caller: &Caller, body: &Map<String, Value>) -> Result<Record, NetError> {
    // The body is validated even when the client exists already.
    let wallet_id = match body.get("walletId") {
        None | Some(Value::Null) => hex::encode(uuid::Uuid::new_v4().as_bytes())[..24].to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(NetError::bad_request("walletId must be a non-empty string.")),
    };
    let public_key = match body.get("publicKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if rules::is_compressed_public_key(&s.to_ascii_lowercase()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(NetError::bad_request("publicKey must be a 33-byte compressed secp256k1 public key in hex."));
        }
    };
    if let Some(c) = client_of(state, &caller.enterprise().id).await? {
        return Ok(c);
    }
    let rec = RecordWrite {
        tenant: caller.enterprise().id.clone(),
        kind: kind::NET_CLIENT.into(),
        id: uuid::Uuid::new_v4().to_string(),
        data: json!({"enterpriseId": caller.enterprise().id, "walletId": wallet_id, "publicKey": public_key}),
        secret: None,
    };
    state.store.create_record(&rec, &state.vault, state.clock.now_ms()).await?;
    // A concurrent onboarding may have won: answer with whichever exists first.
    client_of(state, &caller.enterprise().id)
        .await?
        .ok_or_else(|| NetError::from(StoreError::Corrupt("client vanished".into())))
}

fn client_json(c: &Record, caller: &Caller) -> wire::Client {
    wire::Client {
        id: c.id.clone(),
        enterprise_id: c.tenant.clone(),
        trust_org: caller.trust_org().unwrap_or("BitGo Trust").to_string(),
        wallet_id: c.data["walletId"].as_str().unwrap_or_default().to_string(),
        created_at: timestamp(c.created_at),
        updated_at: timestamp(c.updated_at),
    }
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients", operation_id = "v1ClientsPostRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body(content = Option<wire::OnboardClientRequest>, description = "Patchbay extension: wallet and signing key"),
    responses((status = 200, description = "The enterprise's client", body = wire::ClientEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn onboard_client(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    let bytes = body_bytes(body)?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) { Map::new() } else { json_object(&bytes)? };
    let client = ensure_client(&state, &caller, &body).await?;
    typed(wire::ClientEnvelope { client: client_json(&client, &caller) })
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners", operation_id = "v1PartnersPostRoute", tag = "Partner Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body = wire::CreatePartnerRequest,
    responses((status = 200, description = "The new partner", body = wire::CreatedPartnerEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
async fn create_partner(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    let body = json_object(&body_bytes(body)?)?;
    let name = required_str(&body, "name")?;
    let identifier = required_str(&body, "institutionIdentifier")?;
    let schema = required_str(&body, "connectionKeySchema")?;
    if rules::key_fields(&schema).is_none() {
        return Err(NetError::bad_request(
            "connectionKeySchema must be one of token, tokenAndSignature, apiKeyAndSecret, clearloop.",
        ));
    }
    let broker = match body.get("broker") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(NetError::bad_request("broker must be a boolean.")),
        None => return Err(NetError::bad_request("broker is required.")),
    };
    let institution_id = match body.get("institutionId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_uuid(s) => Some(s.to_ascii_lowercase()),
        Some(_) => return Err(NetError::bad_request("Invalid UUID format for institutionId.")),
    };
    let number = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => Ok(Some(n.clone())),
        Some(_) => Err(NetError::bad_request(format!("{k} must be a non-negative number."))),
    };
    let dispute = number("clientDisputeWindowMinutes")?;
    let top_up = number("topUpWindowMinutes")?;
    let policies = match body.get("allocationPoliciesEnabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(NetError::bad_request("allocationPoliciesEnabled must be a boolean.")),
    };
    if caller.enterprise().data["partnerEligible"].as_bool() != Some(true) {
        return Err(NetError::unprocessable("No partner configuration has been provisioned for this enterprise."));
    }
    let trust_org = caller.trust_org().filter(|t| TRUST_ORGS.contains(t)).unwrap_or("BitGo Trust").to_string();
    let client = ensure_client(&state, &caller, &Map::new()).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "enterpriseId": caller.enterprise().id, "name": name, "institutionIdentifier": identifier,
        "institutionId": institution_id, "connectionKeySchema": schema, "active": true, "trustOrg": trust_org,
        "stablePartner": false, "callbackUrl": null, "publicKey": null, "broker": broker,
        "clientDisputeWindowMinutes": dispute, "topUpWindowMinutes": top_up, "allocationPoliciesEnabled": policies,
    });
    let now = state.clock.now_ms();
    let rec = RecordWrite {
        tenant: caller.enterprise().id.clone(),
        kind: kind::NET_PARTNER.into(),
        id: id.clone(),
        data,
        secret: None,
    };
    state.store.put_record(&rec, &[], &state.vault, now).await?;
    let d = &rec.data;
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    typed(wire::CreatedPartnerEnvelope {
        partner: wire::CreatedPartner {
            id,
            enterprise_id: caller.enterprise().id.clone(),
            trust_org,
            institution_id: d["institutionId"].as_str().map(str::to_string),
            institution_identifier: text("institutionIdentifier"),
            name: text("name"),
            connection_key_schema: text("connectionKeySchema"),
            created_at: timestamp(now),
            updated_at: timestamp(now),
            client_id: client.id,
            broker,
            active: true,
            client_dispute_window_minutes: d["clientDisputeWindowMinutes"].as_f64(),
            top_up_window_minutes: d["topUpWindowMinutes"].as_f64(),
            allocation_policies_enabled: policies,
        },
    })
}

/// Documentation of the GET variant of the signing route (same handler as POST).
#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/signing",
    operation_id = "V1ClientConnectionsSigningGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::SigningRequest,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload),
              (status = 400, description = "Invalid request", body = wire::ErrorPayload),
              (status = 401, description = "Not authorised", body = wire::ErrorPayload),
              (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload),
              (status = 404, description = "Not found", body = wire::ErrorPayload),
              (status = 422, description = "Unprocessable", body = wire::ErrorPayload),
              (status = 429, description = "Rate limited", body = wire::ErrorPayload),
              (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
#[allow(dead_code)]
fn signing_get_doc() {}

/// The platform's own answers, in this face's error schema.
const PLATFORM_RESPONSES: PlatformResponses = PlatformResponses("ErrorPayload");

/// The Network face's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Patchbay — BitGo OES Network API", description = "BitGo Off-Exchange Settlement connections, wire-compatible."),
    paths(list_partner_connections, get_partner_connection, list_client_connections, connect, get_client_connection,
          update_connection, signing, signing_get_doc, list_partners, create_partner, onboard_client),
    components(schemas(wire::NonEmptyString)),
    modifiers(&BearerAuth, &PLATFORM_RESPONSES),
)]
pub struct NetworkApi;

#[cfg(test)]
mod tests {
    use super::*;

    /// The Connection object as the documented wire type renders it.
    fn documented(c: &NetConnection) -> wire::Connection {
        wire::Connection {
            id: c.id.clone(),
            name: c.name.clone(),
            client_id: c.client_id.clone(),
            partner_id: c.partner_id.clone(),
            network_account_id: c.network_account_id.clone(),
            created_at: timestamp(c.created_at),
            updated_at: timestamp(c.updated_at),
            active: c.active,
            proof: c.proof.clone(),
            nonce: c.nonce.clone(),
            partners_connection_id: c.partners_connection_id.clone(),
            partners_client_id: c.partners_client_id.clone(),
            initialized: c.initialized,
        }
    }

    #[test]
    fn connection_out_writes_the_documented_object_byte_for_byte() {
        let mut c = NetConnection {
            tenant: "ent-1".into(),
            id: "c0a80101-0000-4000-8000-000000000001".into(),
            partner_tenant: "ent-p".into(),
            client_id: "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01".into(),
            partner_id: "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02".into(),
            name: "Desk \"1\" \\ \u{1} é".into(),
            active: true,
            nonce: "n-1".into(),
            network_account_id: "0b5d3c1e-8f4a-4c2d-9e7f-1a2b3c4d5e6f".into(),
            proof: "9f86d081".into(),
            partners_connection_id: None,
            partners_client_id: None,
            initialized: false,
            key_schema: "token".into(),
            key: patchbay_core::Sealed { key_id: "k".into(), blob: vec![1] },
            created_at: 1_767_225_600_001,
            updated_at: -1,
        };
        let envelope = |c: &NetConnection| wire::ConnectionEnvelope { connection: documented(c) };
        assert_eq!(String::from_utf8(one_out(&c)).unwrap(), serde_json::to_string(&envelope(&c)).unwrap());
        c.partners_connection_id = Some("pc".into());
        c.partners_client_id = Some("pcl\n".into());
        c.initialized = true;
        c.active = false;
        c.updated_at = 253_402_300_800_000; // year 10000: the long form
        assert_eq!(String::from_utf8(one_out(&c)).unwrap(), serde_json::to_string(&envelope(&c)).unwrap());
        let documented_list = wire::ConnectionsEnvelope { connections: vec![documented(&c), documented(&c)] };
        assert_eq!(many_out(&[c.clone(), c.clone()]), serde_json::to_vec(&documented_list).unwrap());
        let empty = wire::ConnectionsEnvelope { connections: vec![] };
        assert_eq!(many_out(&[]), serde_json::to_vec(&empty).unwrap());
    }
}
