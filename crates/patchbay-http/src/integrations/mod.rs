//! The Integrations face: OpenInt v1 under `/v1/...`. Errors are tRPC-style
//! `{code, message, issues?}`; lists are `{items, total, limit, offset,
//! has_next_page}`; credentials are kept fresh by [`refresh`].

mod configs;
mod customers;
pub mod refresh;
mod status;
pub mod webhook;
pub mod wire;

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use patchbay_core::integrations::{self as catalog, Issue, connector};
use patchbay_core::network::timestamp;
use patchbay_core::seed::kind;
use patchbay_store::{Credential, InConnection, InEvent, InFilter, NewJob, Record, RecordWrite, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::face::{Face, Headers};
use crate::openapi::{BearerAuth, PlatformResponses};
use configs::*;
use customers::*;
use refresh::{Need, OpenedSettings};

/// Refresh timing of the Integrations face.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct IntegrationsSettings {
    /// `auto` refreshes tokens expiring within this margin.
    pub refresh_margin_secs: u64,
    /// The background refresher's period, look-ahead window and concurrency.
    pub background_interval_secs: u64,
    pub background_window_secs: u64,
    pub background_concurrency: usize,
    /// How long a refresh may hold a connection's database lock.
    pub lock_secs: u64,
    /// Base of `magic_link_url` (default: the public base URL).
    pub connect_base_url: Option<String>,
}

impl Default for IntegrationsSettings {
    fn default() -> Self {
        Self {
            refresh_margin_secs: 300,
            background_interval_secs: 60,
            background_window_secs: 1800,
            background_concurrency: 3,
            lock_secs: 15,
            connect_base_url: None,
        }
    }
}

/// Per-process state of the face.
pub struct Runtime {
    /// Per-connection in-process single flight of refreshes.
    pub flights: patchbay_store::kept::Flights<String>,
    /// This process's identity as a refresh-lock holder.
    pub owner: String,
    secret: tokio::sync::OnceCell<Arc<Vec<u8>>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            flights: Default::default(),
            owner: uuid::Uuid::new_v4().to_string(),
            secret: tokio::sync::OnceCell::new(),
        }
    }
}

// ---------------------------------------------------------------- errors --

#[derive(Debug)]
pub struct InError {
    status: StatusCode,
    code: &'static str,
    message: String,
    issues: Option<Vec<Value>>,
    raw: Option<Response>,
}

impl InError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), issues: None, raw: None }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }
    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }
    /// 400 `Input validation failed` with zod-like issues.
    fn invalid(issues: Vec<Issue>) -> Self {
        let issues =
            issues.into_iter().map(|i| json!({"code": "custom", "message": i.message, "path": i.path})).collect();
        Self { issues: Some(issues), ..Self::bad_request("Input validation failed") }
    }
    fn issue(path: &[&str], message: impl Into<String>) -> Self {
        Self::invalid(vec![Issue { path: path.iter().map(|s| s.to_string()).collect(), message: message.into() }])
    }
}

impl From<StoreError> for InError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Nul = e {
            return Self::bad_request(crate::face::NUL_REFUSED);
        }
        tracing::error!(error = %e, "integrations face storage error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "Internal server error")
    }
}

impl IntoResponse for InError {
    fn into_response(self) -> Response {
        if let Some(r) = self.raw {
            return r;
        }
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(i) = self.issues {
            body["issues"] = json!(i);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

type InResult = Result<Response, InError>;

fn typed<T: serde::Serialize>(v: T) -> InResult {
    Ok(crate::face::json_response(StatusCode::OK, &v))
}

// ---------------------------------------------------------------- routes --

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connection", get(list_connections).post(create_connection))
        .route("/v1/connection/{id}", get(get_connection).delete(delete_connection))
        .route("/v1/connection/{id}/check", post(check_connection))
        .route("/v1/connector", get(list_connectors))
        .route("/v1/connector-config", get(list_configs).post(create_config))
        .route("/v1/connector-config/{id}", get(get_config).put(update_config).delete(delete_config))
        .route("/v1/customer", get(list_customers).put(upsert_customer))
        .route("/v1/customer/{customer_id}/token", post(create_token))
        .route("/v1/event", get(list_events).post(status::create_event))
        .route("/v1/event/{id}", get(status::get_event))
        .route("/v1/health", get(status::health).post(status::health_echo))
        .route("/v1/connector-status", get(status::connector_status))
        .route("/v1/ai/message_template", get(status::message_template))
        .route("/v1/webhook/{connector_name}", post(status::handle_webhook))
        .route("/v1/customer/{customer_id}/magic-link", post(create_magic_link))
        .route("/v1/viewer", get(viewer))
        .route("/v1/openapi.json", get(openapi_document))
}

// ---------------------------------------------------------------- viewer --

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    Anon,
    Org { org: String },
    Customer { org: String, customer: String },
}

impl Viewer {
    fn org(&self) -> Result<&str, InError> {
        match self {
            Viewer::Anon => Err(InError::unauthorized("Authentication required")),
            Viewer::Org { org } | Viewer::Customer { org, .. } => Ok(org),
        }
    }
    fn customer(&self) -> Option<&str> {
        match self {
            Viewer::Customer { customer, .. } => Some(customer),
            _ => None,
        }
    }
    fn org_only(&self) -> Result<&str, InError> {
        match self {
            Viewer::Org { org } => Ok(org),
            Viewer::Customer { .. } => Err(InError::forbidden("Org admin only")),
            Viewer::Anon => Err(InError::unauthorized("Authentication required")),
        }
    }
    fn principal(&self) -> String {
        match self {
            Viewer::Anon => "anon".into(),
            Viewer::Org { org } => org.clone(),
            Viewer::Customer { org, customer } => format!("{org}/{customer}"),
        }
    }
}

/// The HS256 secret for customer tokens: generated once, kept in the vault.
pub async fn token_secret(state: &AppState) -> Result<Arc<Vec<u8>>, InError> {
    state
        .integrations
        .secret
        .get_or_try_init(|| async {
            const TENANT: &str = "integrations";
            const KIND: &str = "integrations.jwt_secret";
            if state.store.get_record(TENANT, KIND, "hs256").await?.is_none() {
                let mut raw = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
                let rec = RecordWrite {
                    tenant: TENANT.into(),
                    kind: KIND.into(),
                    id: "hs256".into(),
                    data: json!({"algorithm": "HS256"}),
                    secret: Some(json!({"key": base64::engine::general_purpose::STANDARD.encode(raw)})),
                };
                state.store.create_record(&rec, &state.vault, state.clock.now_ms()).await?;
            }
            let rec =
                state.store.get_record(TENANT, KIND, "hs256").await?.ok_or(StoreError::Corrupt("jwt secret".into()))?;
            let secret = rec.open_secret(&state.vault)?.unwrap_or(Value::Null);
            let key = base64::engine::general_purpose::STANDARD
                .decode(secret["key"].as_str().unwrap_or_default())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok::<_, InError>(Arc::new(key))
        })
        .await
        .cloned()
}

/// The webhook signing secret of an organisation: HMAC of the face secret.
/// The organisation's webhook key as the admin API hands it out and signatures use
/// it: the text (hex) of [`webhook_secret`] (docs/operations.md, Webhooks).
pub async fn webhook_key(state: &AppState, org: &str) -> Result<String, InError> {
    webhook_secret(state, org).await.map(hex::encode)
}

pub async fn webhook_secret(state: &AppState, org: &str) -> Result<Vec<u8>, InError> {
    use hmac::{Hmac, Mac};
    let key = token_secret(state).await?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("webhook:{org}").as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    role: String,
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connect_options: Option<Value>,
    exp: i64,
    #[serde(default)]
    iat: i64,
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Viewer, InError> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else { return Ok(Viewer::Anon) };
    let token = raw
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| InError::unauthorized("Invalid Authorization header: expected Bearer <token>"))?;
    let viewer = if !token.contains('.') {
        let cred = state
            .store
            .find_credential(token)
            .await?
            .filter(|c| c.face == "integrations")
            .ok_or_else(|| InError::unauthorized("Invalid API key"))?;
        match cred.principal_kind.as_str() {
            "organization" => Viewer::Org { org: cred.principal_id.clone() },
            _ => {
                let (org, customer) =
                    cred.principal_id.split_once('/').ok_or_else(|| InError::unauthorized("Invalid API key"))?;
                Viewer::Customer { org: org.into(), customer: customer.into() }
            }
        }
    } else {
        let key = token_secret(state).await?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0; // like jose: no clock tolerance
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key), &validation)
            .map_err(|e| InError::unauthorized(format!("Invalid token: {e}")))?;
        let c = data.claims;
        match c.role.as_str() {
            "customer" => {
                let (org, customer) =
                    c.sub.split_once('/').ok_or_else(|| InError::unauthorized("Invalid token: bad sub"))?;
                Viewer::Customer { org: org.into(), customer: customer.into() }
            }
            "org" => Viewer::Org { org: c.sub },
            other => return Err(InError::unauthorized(format!("Invalid token: unsupported role {other:?}"))),
        }
    };
    if let Err(resp) = state.rate_limit(Face::Integrations, &viewer.principal()) {
        return Err(InError {
            raw: Some(resp),
            ..InError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "")
        });
    }
    Ok(viewer)
}

// ----------------------------------------------------------------- query --

/// Query values by name: repeated keys and `key[]` merge, comma lists split.
/// Pairs in order, borrowed from the query string unless percent-decoded
/// (queries are short: a scan beats building a map on every request).
struct Query<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Query<'a> {
    /// A value with a NUL character is refused: nothing stored contains one, SQLite's
    /// `LIKE` would stop at it (matching everything) and PostgreSQL rejects it in text.
    fn parse(raw: Option<&'a str>) -> Result<Self, InError> {
        let mut pairs = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let k = match k {
                Cow::Borrowed(k) => Cow::Borrowed(k.trim_end_matches("[]")),
                Cow::Owned(k) => Cow::Owned(k.trim_end_matches("[]").to_string()),
            };
            if k.contains('\0') || v.contains('\0') {
                return Err(InError::issue(&[&*k], format!("{k} must not contain a NUL character")));
            }
            pairs.push((k, v));
        }
        Ok(Query(pairs))
    }
    fn all(&self, k: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(key, _)| key == k).map(|(_, v)| &**v)
    }
    fn one(&self, k: &str) -> Option<&str> {
        self.all(k).last()
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.all(k).flat_map(|v| v.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    }
    /// Strict booleans: `true`/`1` and `false`/`0`; `all`/`basic`/`none` for old clients.
    fn boolean(&self, k: &str) -> Result<bool, InError> {
        match self.one(k) {
            None => Ok(false),
            Some("true" | "1" | "all" | "basic") => Ok(true),
            Some("false" | "0" | "none") => Ok(false),
            Some(_) => Err(InError::issue(&[k], format!("{k} must be true or false"))),
        }
    }
    fn page(&self) -> Result<(i64, i64), InError> {
        let limit = match self.one("limit") {
            None => 50,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=3000).contains(n))
                .ok_or_else(|| InError::issue(&["limit"], "limit must be an integer from 0 to 3000"))?,
        };
        let offset = match self.one("offset") {
            None => 0,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| InError::issue(&["offset"], "offset must be a non-negative integer"))?,
        };
        Ok((limit, offset))
    }
    fn expand(&self, allowed: &[&str]) -> Result<Vec<String>, InError> {
        let e = self.list("expand");
        if let Some(bad) = e.iter().find(|x| !allowed.contains(&x.as_str())) {
            return Err(InError::issue(&["expand"], format!("expand {bad:?} is not one of {}", allowed.join(", "))));
        }
        Ok(e)
    }
    fn refresh_policy(&self, default: &str) -> Result<String, InError> {
        let p = self.one("refresh_policy").unwrap_or(default);
        if ["none", "force", "auto"].contains(&p) {
            Ok(p.to_string())
        } else {
            Err(InError::issue(&["refresh_policy"], "refresh_policy must be one of none, force, auto"))
        }
    }
}

/// The request body, or the framework's refusal of it (too large) in this face's shape.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, InError> {
    body.map_err(|r| InError::new(r.status(), "PAYLOAD_TOO_LARGE", r.body_text()))
}

fn body_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, InError> {
    let bytes = body_bytes(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new()); // an empty body is {}
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()), // `null` is an absent body, like an empty one
        Ok(_) => Err(InError::issue(&[], "The body must be a JSON object")),
        Err(_) => Err(InError::new(StatusCode::BAD_REQUEST, "PARSE_ERROR", "Failed to parse request body")),
    }
}

// ------------------------------------------------------------ rendering --

/// The wire object of a connection; the opened settings are moved in (a
/// deep copy of them per request showed in the get profile).
pub fn connection_json(c: &InConnection, settings: Option<OpenedSettings>, expand_connector: bool) -> wire::Connection {
    wire::Connection {
        id: c.id.clone(),
        connector_name: c.connector_name.clone(),
        customer_id: c.customer_id.clone(),
        connector_config_id: Some(c.connector_config_id.clone()),
        integration_id: c.integration_id.clone(),
        created_at: timestamp(c.created_at),
        updated_at: timestamp(c.updated_at),
        display_name: c.display_name.clone(),
        disabled: Some(c.disabled),
        status: c.status.clone(),
        status_message: c.status_message.clone(),
        metadata: c.metadata.clone(),
        settings,
        connector: if expand_connector { connector(&c.connector_name).map(|k| connector_wire(k, true)) } else { None },
    }
}

/// The Connection object without the connector (no `expand`), written field
/// by field into the response buffer from the stored row instead of copied into
/// a [`wire::Connection`] first: the fields and order of that type, which the
/// test below checks byte for byte against `serde_json` writing it.
fn connection_bytes(c: &InConnection, settings: Option<&OpenedSettings>) -> Vec<u8> {
    use crate::face::{write_json_opt_str as opt, write_json_str as text};
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"id\":");
    text(&mut out, &c.id);
    out.extend_from_slice(b",\"connector_name\":");
    text(&mut out, &c.connector_name);
    out.extend_from_slice(b",\"customer_id\":");
    opt(&mut out, c.customer_id.as_deref());
    out.extend_from_slice(b",\"connector_config_id\":");
    text(&mut out, &c.connector_config_id);
    out.extend_from_slice(b",\"integration_id\":");
    opt(&mut out, c.integration_id.as_deref());
    out.extend_from_slice(b",\"created_at\":");
    crate::face::write_json_millis(&mut out, c.created_at);
    out.extend_from_slice(b",\"updated_at\":");
    crate::face::write_json_millis(&mut out, c.updated_at);
    out.extend_from_slice(b",\"display_name\":");
    opt(&mut out, c.display_name.as_deref());
    out.extend_from_slice(if c.disabled { b",\"disabled\":true" } else { b",\"disabled\":false" });
    out.extend_from_slice(b",\"status\":");
    opt(&mut out, c.status.as_deref());
    out.extend_from_slice(b",\"status_message\":");
    opt(&mut out, c.status_message.as_deref());
    out.extend_from_slice(b",\"metadata\":");
    match &c.metadata {
        // sonic-rs writes a value as serde_json does (face::json_response's test).
        Some(v) => sonic_rs::to_writer(&mut out, v).expect("a JSON value serialises"),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(s) = settings {
        out.extend_from_slice(b",\"settings\":");
        out.extend_from_slice(s.json().as_bytes());
    }
    out.push(b'}');
    out
}

/// A connection's answer bytes: written field by field, or with the connector
/// (`expand=connector`, rare) through [`wire::Connection`].
fn connection_body(c: &InConnection, settings: Option<OpenedSettings>, expand: bool) -> Vec<u8> {
    match expand {
        true => sonic_rs::to_vec(&connection_json(c, settings, true)).expect("the wire connection serialises"),
        false => connection_bytes(c, settings.as_ref()),
    }
}

/// A page of connection answers (wire::ConnectionPage), around items already written.
fn connection_page_bytes(items: &[Vec<u8>], total: i64, limit: i64, offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + items.iter().map(|i| i.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"items\":");
    crate::face::write_json_list(&mut out, items, |out, item| out.extend_from_slice(item));
    let has_next_page = offset + (items.len() as i64) < total;
    let tail = format!(",\"total\":{total},\"limit\":{limit},\"offset\":{offset},\"has_next_page\":{has_next_page}}}");
    out.extend_from_slice(tail.as_bytes());
    out
}

/// The wire model of a catalogue connector.
pub fn connector_wire(c: &catalog::Connector, with_schemas: bool) -> wire::Connector {
    let o = c.oauth();
    wire::Connector {
        name: c.name.clone(),
        display_name: c.display_name.clone(),
        logo_url: format!("/_assets/logo-{}.svg", c.name),
        stage: c.stage.clone(),
        platforms: c.platforms.clone(),
        auth_type: c.auth_type.clone(),
        required_scopes: o.map(|o| o.required_scopes.clone()),
        openint_default_scopes: o.map(|o| o.openint_default_scopes.clone()),
        openint_allowed_scopes: o.map(|o| o.openint_allowed_scopes.clone()),
        scopes: o.map(|o| {
            o.scopes
                .iter()
                .map(|s| wire::Scope {
                    scope: s["scope"].as_str().unwrap_or_default().to_string(),
                    display_name: s["display_name"].as_str().map(str::to_string),
                    description: s["description"].as_str().map(str::to_string),
                })
                .collect()
        }),
        has_openint_credentials: false,
        schemas: with_schemas.then(|| c.schemas.clone()),
    }
}

/// A new event (`evt_<ULID>`).
pub fn event(tenant: &str, name: &str, data: Value, customer: Option<String>, now: i64) -> InEvent {
    InEvent {
        tenant: tenant.into(),
        id: format!("evt_{}", catalog::ulid()),
        name: name.into(),
        data,
        customer_id: customer,
        ts: now,
    }
}

fn event_json(e: &InEvent) -> wire::Event {
    wire::Event {
        id: e.id.clone(),
        name: e.name.clone(),
        data: e.data.clone(),
        timestamp: timestamp(e.ts),
        user: json!({"org_id": e.tenant, "customer_id": e.customer_id}),
        v: "1".into(),
        org_id: e.tenant.clone(),
        user_id: None,
        customer_id: e.customer_id.clone(),
    }
}

/// The webhook delivery job for an event, when the organisation has a webhook.
pub async fn emit_jobs(state: &AppState, e: &InEvent) -> Result<Vec<NewJob>, InError> {
    let org = state.store.get_record(&e.tenant, kind::IN_ORG, &e.tenant).await?;
    if org.as_ref().is_some_and(|o| o.data["webhookUrl"].is_string()) {
        Ok(vec![NewJob::now(&e.tenant, webhook::WEBHOOK_JOB, json!({"event": event_json(e)}), 6, e.ts)])
    } else {
        Ok(Vec::new())
    }
}

// ----------------------------------------------------------- connections --

fn check_conn_id(id: &str) -> Result<(), InError> {
    if id.starts_with("conn_") && id.len() > 5 {
        Ok(())
    } else {
        Err(InError::issue(&["id"], "The id of the connection must start with conn_"))
    }
}

/// A connection visible to the viewer (other organisations' and customers' → 404).
async fn visible(state: &AppState, viewer: &Viewer, id: &str) -> Result<Arc<InConnection>, InError> {
    let org = viewer.org()?;
    check_conn_id(id)?;
    let conn =
        state.store.in_get_connection(org, id).await?.ok_or_else(|| InError::not_found("Connection not found"))?;
    if viewer.customer().is_some_and(|c| conn.customer_id.as_deref() != Some(c)) {
        return Err(InError::not_found("Connection not found"));
    }
    Ok(conn)
}

/// A connection's settings opened, after a refresh when `need` says so; the
/// refreshed row comes back too (without one, the row as read still holds).
async fn opened(
    state: &AppState,
    conn: &InConnection,
    need: Option<Need>,
) -> Result<(Option<InConnection>, OpenedSettings), InError> {
    match need {
        Some(need) => refresh::refresh(state, conn, need).await,
        None => OpenedSettings::open(state, conn).map(|s| (None, s)),
    }
}

fn need_for(state: &AppState, policy: &str) -> Option<Need> {
    match policy {
        "force" => Some(Need::Force),
        "auto" => Some(Need::ExpiringWithin(state.config.integrations.refresh_margin_secs as i64 * 1000)),
        _ => None,
    }
}

#[utoipa::path(get, path = "/v1/connection/{id}", operation_id = "getConnection", tag = "Connections",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_"), ("include_secrets" = Option<bool>, Query), ("refresh_policy" = Option<RefreshPolicy>, Query),
           ("expand" = Option<Vec<ExpandConnector>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "The connection details", body = wire::Connection), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
async fn get_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let q = Query::parse(q.as_deref())?;
    let include = q.boolean("include_secrets")?;
    let policy = q.refresh_policy("auto")?;
    let expand = q.expand(&["connector"])?;
    let conn = visible(&state, &viewer, &id).await?;
    let expand = !expand.is_empty();
    let answer = |c: &InConnection, settings: Option<OpenedSettings>| {
        Ok(crate::face::json_bytes_response(StatusCode::OK, connection_body(c, settings, expand)))
    };
    if !include {
        // Without secrets there is nothing to refresh (as upstream).
        return answer(&conn, None);
    }
    let (fresh, settings) = opened(&state, &conn, need_for(&state, &policy)).await?;
    answer(fresh.as_ref().unwrap_or(&conn), Some(settings))
}

#[utoipa::path(get, path = "/v1/connection", operation_id = "listConnections", tag = "Connections",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("connector_names" = Option<Vec<wire::ConnectorName>>, Query, style = Form, explode = false), ("customer_id" = Option<String>, Query),
           ("connector_config_id" = Option<String>, Query, pattern = "^ccfg_"), ("search_query" = Option<String>, Query),
           ("include_secrets" = Option<bool>, Query), ("refresh_policy" = Option<RefreshPolicy>, Query),
           ("expand" = Option<Vec<ExpandConnector>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "A page of connections", body = wire::ConnectionPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
async fn list_connections(State(state): State<AppState>, Headers(headers): Headers, RawQuery(q): RawQuery) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let include = q.boolean("include_secrets")?;
    let policy = q.refresh_policy("none")?;
    let expand = !q.expand(&["connector"])?.is_empty();
    let names = q.list("connector_names");
    if let Some(bad) = names.iter().find(|n| connector(n).is_none()) {
        return Err(InError::issue(&["connector_names"], format!("{bad:?} is not a known connector")));
    }
    let ccfg = q.one("connector_config_id").map(str::to_string);
    if ccfg.as_ref().is_some_and(|c| !c.starts_with("ccfg_")) {
        return Err(InError::issue(&["connector_config_id"], "connector_config_id must start with ccfg_"));
    }
    let customer = match viewer.customer() {
        Some(c) => Some(c.to_string()),
        None => q.one("customer_id").map(str::to_string),
    };
    let filter = InFilter {
        connector_names: names,
        customer_id: customer,
        connector_config_id: ccfg,
        search: q.one("search_query").map(str::to_string),
    };
    let (rows, total) = state.store.in_list_connections(&org, &filter, limit, offset).await?;
    let need = need_for(&state, &policy);
    let items: Vec<Result<Vec<u8>, InError>> = futures_util::stream::iter(0..rows.len())
        .map(|i| {
            let (state, rows) = (state.clone(), std::sync::Arc::clone(&rows));
            async move {
                let c = &rows[i];
                if !include {
                    return Ok(connection_body(c, None, expand));
                }
                let (fresh, s) = opened(&state, c, need).await?;
                Ok(connection_body(fresh.as_ref().unwrap_or(c), Some(s), expand))
            }
        })
        .buffered(8)
        .collect()
        .await;
    let items = items.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(crate::face::json_bytes_response(StatusCode::OK, connection_page_bytes(&items, total, limit, offset)))
}

#[utoipa::path(post, path = "/v1/connection", operation_id = "createConnection", tag = "Connections",
    request_body = wire::CreateConnection,
    responses((status = 200, description = "The imported connection, with settings", body = wire::Connection), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
async fn create_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org_only()?.to_string();
    let body = body_object(body)?;
    let mut problems = Vec::new();
    let text = |k: &str, problems: &mut Vec<Issue>| match body.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => {
            problems.push(Issue { path: vec![k.into()], message: format!("{k} is required and must be a string") });
            None
        }
    };
    let ccfg_id = text("connector_config_id", &mut problems);
    let customer = text("customer_id", &mut problems);
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(Value::Object(m.clone())),
        Some(_) => {
            problems.push(Issue { path: vec!["metadata".into()], message: "metadata must be an object".into() });
            None
        }
    };
    let check_first = match body.get("check_connection") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(Issue {
                path: vec!["check_connection".into()],
                message: "check_connection must be a boolean".into(),
            });
            false
        }
    };
    let display_name = body.get("display_name").and_then(Value::as_str).map(str::to_string);
    // Stored as text: no NUL (PostgreSQL text cannot hold one; refused on both backends).
    for (k, v) in [("customer_id", &customer), ("display_name", &display_name)] {
        if v.as_deref().is_some_and(|v| v.contains('\0')) {
            problems.push(Issue { path: vec![k.into()], message: format!("{k} must not contain a NUL character") });
        }
    }
    let data = body.get("data").and_then(Value::as_object).cloned();
    let name = data.as_ref().and_then(|d| d.get("connector_name")).and_then(Value::as_str).map(str::to_string);
    if name.is_none() {
        problems.push(Issue {
            path: vec!["data".into(), "connector_name".into()],
            message: "data.connector_name is required".into(),
        });
    }
    if let Some(c) = &ccfg_id
        && !c.starts_with("ccfg_")
    {
        problems.push(Issue {
            path: vec!["connector_config_id".into()],
            message: "connector_config_id must start with ccfg_".into(),
        });
    }
    if !problems.is_empty() {
        return Err(InError::invalid(problems));
    }
    let (ccfg_id, customer, name) =
        (ccfg_id.unwrap_or_default(), customer.unwrap_or_default(), name.unwrap_or_default());
    let ccfg = state
        .store
        .get_record(&org, kind::IN_CCFG, &ccfg_id)
        .await?
        .ok_or_else(|| InError::not_found(format!("Connector config with ID \"{ccfg_id}\" not found")))?;
    let expected = ccfg.data["connectorName"].as_str().unwrap_or_default();
    if expected != name {
        return Err(InError::bad_request(format!("Connector name mismatch: expected {expected}, got {name}")));
    }
    let c = connector(&name)
        .ok_or_else(|| InError::issue(&["data", "connector_name"], format!("{name:?} is not a known connector")))?;
    let mut settings = data.as_ref().and_then(|d| d.get("settings")).cloned().unwrap_or(json!({}));
    let issues = c.validate_settings(&settings, &["data", "settings"]);
    if !issues.is_empty() {
        return Err(InError::invalid(issues));
    }
    let now = state.clock.now_ms();
    let creds = &settings["oauth"]["credentials"];
    if creds.get("expires_at").is_none()
        && let Some(secs) = creds.get("expires_in").and_then(Value::as_i64)
    {
        settings["oauth"]["credentials"]["expires_at"] = json!(timestamp(now + secs * 1000));
    }
    if let Some(token) = settings["oauth"]["credentials"]["access_token"].as_str().map(str::to_string) {
        settings["access_token"] = json!(token);
    }
    let (status, message, settings) = if check_first {
        let cfg = refresh::load_config(&state, &org, &ccfg_id).await?;
        let o = refresh::check(&state, c, cfg.as_ref(), &settings, Need::ExpiringWithin(0), None).await;
        (o.status, o.status_message, o.settings.unwrap_or(settings))
    } else {
        ("unknown".to_string(), Some("Connection was imported without checking its status".to_string()), settings)
    };
    let id = catalog::new_id("conn", &name);
    let (expires_at, refreshable) = refresh::expiry_of(&settings);
    let aad = Record::aad(&org, kind::IN_CONNECTION, &id);
    let opened = OpenedSettings::of(&settings)?;
    let conn = InConnection {
        tenant: org.clone(),
        id: id.clone(),
        connector_name: name,
        connector_config_id: ccfg_id,
        customer_id: Some(customer.clone()),
        integration_id: None,
        display_name,
        disabled: false,
        status: Some(status),
        status_message: message,
        metadata,
        settings: state.vault.seal(opened.as_str().as_bytes(), &aad),
        expires_at,
        refreshable,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        &org,
        "connect.connection-connected",
        json!({"connection_id": id, "customer_id": customer}),
        Some(customer),
        now,
    );
    let jobs = emit_jobs(&state, &ev).await?;
    state.store.in_put_connection(&conn, Some(&ev), &jobs).await?;
    Ok(crate::face::json_bytes_response(StatusCode::OK, connection_body(&conn, Some(opened), false)))
}

#[utoipa::path(delete, path = "/v1/connection/{id}", operation_id = "deleteConnection", tag = "Connections",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_")), responses((status = 200, description = "Deleted", body = wire::Deleted), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
async fn delete_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    let now = state.clock.now_ms();
    let ev = event(
        &conn.tenant,
        "connect.connection-deleted",
        json!({"connection_id": conn.id, "customer_id": conn.customer_id}),
        conn.customer_id.clone(),
        now,
    );
    let jobs = emit_jobs(&state, &ev).await?;
    if !state.store.in_delete_connection(&conn.tenant, &conn.id, viewer.customer(), &ev, &jobs).await? {
        return Err(InError::not_found("Connection not found"));
    }
    typed(wire::Deleted { id: conn.id.clone() })
}

#[utoipa::path(post, path = "/v1/connection/{id}/check", operation_id = "checkConnection", tag = "Connections",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_")), responses((status = 200, description = "The connection's status", body = wire::CheckResult), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
async fn check_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    let (fresh, _) = refresh::refresh(&state, &conn, Need::Force).await?;
    let conn = fresh.as_ref().unwrap_or(&conn);
    typed(wire::CheckResult {
        id: conn.id.clone(),
        status: conn.status.clone(),
        status_message: conn.status_message.clone(),
    })
}

// ------------------------------------------------------------ connectors --

#[utoipa::path(get, path = "/v1/connector", operation_id = "listConnectors", tag = "Connectors",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("expand" = Option<Vec<ExpandSchemas>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "The connector catalogue", body = wire::ConnectorPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)))]
async fn list_connectors(RawQuery(q): RawQuery) -> InResult {
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let schemas = !q.expand(&["schemas"])?.is_empty();
    let all = catalog::catalogue();
    let items = all.iter().skip(offset as usize).take(limit as usize).map(|c| connector_wire(c, schemas)).collect();
    typed(wire::ConnectorPage::new(items, all.len() as i64, limit, offset))
}

fn optional_object(body: &Map<String, Value>, k: &str) -> Result<Option<Value>, InError> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
        Some(_) => Err(InError::issue(&[k], format!("{k} must be an object"))),
    }
}

fn optional_bool(body: &Map<String, Value>, k: &str) -> Result<Option<bool>, InError> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(InError::issue(&[k], format!("{k} must be a boolean"))),
    }
}

fn optional_string(body: &Map<String, Value>, k: &str) -> Result<Option<String>, InError> {
    match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(InError::issue(&[k], format!("{k} must be a string"))),
    }
}

// ---------------------------------------------------------------- events --

#[utoipa::path(get, path = "/v1/event", operation_id = "listEvents", tag = "Events",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("search_query" = Option<String>, Query), ("since" = Option<String>, Query, format = DateTime)),
    responses((status = 200, description = "Events, newest first", body = wire::EventPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
async fn list_events(State(state): State<AppState>, Headers(headers): Headers, RawQuery(q): RawQuery) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let since = match q.one("since") {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| InError::issue(&["since"], "since must be an ISO 8601 timestamp"))?
                .timestamp_millis(),
        ),
    };
    let (rows, total) =
        state.store.in_list_events(&org, viewer.customer(), q.one("search_query"), since, limit, offset).await?;
    typed(wire::EventPage::new(rows.iter().map(event_json).collect(), total, limit, offset))
}

#[utoipa::path(get, path = "/v1/viewer", operation_id = "getCurrentUser", tag = "Viewer",
    responses((status = 200, description = "The caller", body = wire::Viewer), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)))]
async fn viewer(State(state): State<AppState>, Headers(headers): Headers) -> InResult {
    let v = authenticate(&state, &headers).await?;
    typed(match v {
        Viewer::Anon => wire::Viewer { role: "anon".into(), org_id: None, customer_id: None },
        Viewer::Org { org } => wire::Viewer { role: "org".into(), org_id: Some(org), customer_id: None },
        Viewer::Customer { org, customer } => {
            wire::Viewer { role: "customer".into(), org_id: Some(org), customer_id: Some(customer) }
        }
    })
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum RefreshPolicy {
    None,
    Force,
    Auto,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ExpandConnector {
    Connector,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ExpandSchemas {
    Schemas,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
enum ExpandConfig {
    #[schema(rename = "connector")]
    Connector,
    #[schema(rename = "connector.schemas")]
    ConnectorSchemas,
    #[schema(rename = "connection_count")]
    ConnectionCount,
}

/// The platform's own answers, in this face's error schema.
const PLATFORM_RESPONSES: PlatformResponses = PlatformResponses("Error");

/// The Integrations face's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Patchbay — OpenInt v1 API", description = "OpenInt v1 connections, connectors and customers, wire-compatible."),
    paths(get_connection, list_connections, create_connection, delete_connection, check_connection, list_connectors,
          configs::list_configs, configs::get_config, configs::create_config, configs::update_config,
          configs::delete_config, customers::create_token, customers::upsert_customer, customers::list_customers,
          list_events, viewer, customers::create_magic_link, status::health, status::health_echo,
          status::connector_status, status::message_template, status::handle_webhook, status::get_event,
          status::create_event),
    components(schemas(RefreshPolicy, ExpandConnector, ExpandSchemas, ExpandConfig, wire::ConnectorName, wire::TemplateLanguage)),
    modifiers(&BearerAuth, &PLATFORM_RESPONSES),
)]
pub struct IntegrationsApi;

/// The generated document, with the catalogue's connectors filled in: the
/// connector-name enum and, per connector, the shape of connection `data` and
/// of a new connector config (its JSON Schemas).
pub fn openapi_json() -> Value {
    let mut doc = crate::openapi::document::<IntegrationsApi>();
    let all = catalog::catalogue();
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    let schemas = &mut doc["components"]["schemas"];
    schemas["ConnectorName"] = json!({"type": "string", "enum": names, "description": "A catalogue connector name"});
    schemas["ConnectionData"] = json!({
        "description": "Connector-specific data, discriminated by connector_name",
        "oneOf": all.iter().map(|c| json!({
            "type": "object",
            "required": ["connector_name", "settings"],
            "properties": {"connector_name": {"type": "string", "enum": [c.name]}, "settings": c.schemas["connection_settings"]},
        })).collect::<Vec<_>>(),
    });
    schemas["CreateConnectorConfig"] = json!({
        "description": "A new connector config, discriminated by connector_name",
        "oneOf": all.iter().map(|c| {
            let config = &c.schemas["connector_config"];
            let mut required = vec!["connector_name"];
            if config.get("required").is_some() {
                required.push("config");
            }
            json!({
                "type": "object",
                "required": required,
                "properties": {
                    "connector_name": {"type": "string", "enum": [c.name]},
                    "display_name": {"type": ["string", "null"]},
                    "disabled": {"type": ["boolean", "null"]},
                    "metadata": {"type": ["object", "null"]},
                    "config": config,
                },
            })
        }).collect::<Vec<_>>(),
    });
    doc
}

async fn openapi_document() -> Response {
    axum::Json(openapi_json()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_bytes_are_the_documented_object_byte_for_byte() {
        let mut c = InConnection {
            tenant: "org_1".into(),
            id: "conn_github_01JDEMO000000000000000000".into(),
            connector_name: "github".into(),
            connector_config_id: "ccfg_github_1".into(),
            customer_id: Some("cus \"1\" \\ \u{1} é".into()),
            integration_id: None,
            display_name: None,
            disabled: false,
            status: Some("healthy".into()),
            status_message: None,
            metadata: Some(json!({"b": [1, 2.5, null], "a": {"x": "\n"}})),
            settings: patchbay_core::Sealed { key_id: "k".into(), blob: vec![1] },
            expires_at: None,
            refreshable: false,
            version: 1,
            created_at: 1_767_225_600_001,
            updated_at: -1,
        };
        assert_eq!(connection_bytes(&c, None), serde_json::to_vec(&connection_json(&c, None, false)).unwrap());
        c.integration_id = Some("int_1".into());
        c.display_name = Some("octocat".into());
        c.disabled = true;
        c.status = None;
        c.status_message = Some("token\trevoked".into());
        c.metadata = None;
        c.updated_at = 253_402_300_800_000; // year 10000: the long form
        assert_eq!(connection_bytes(&c, None), serde_json::to_vec(&connection_json(&c, None, false)).unwrap());
        // Settings are written as sealed; sonic-rs wrote them so before.
        let s = OpenedSettings::of(&json!({"oauth": {"credentials": {"access_token": "at\"1"}}, "n": 1})).unwrap();
        assert_eq!(
            connection_bytes(&c, Some(&s)),
            sonic_rs::to_vec(&connection_json(&c, Some(s.clone()), false)).unwrap()
        );
        // A page around written items is the documented page.
        for (n, total, offset) in [(0, 0, 0), (2, 2, 0), (2, 5, 1), (1, 3, 2)] {
            let items: Vec<Vec<u8>> = (0..n).map(|_| connection_body(&c, None, false)).collect();
            let documented = wire::ConnectionPage::new(
                (0..n).map(|_| connection_json(&c, None, false)).collect(),
                total,
                50,
                offset,
            );
            assert_eq!(connection_page_bytes(&items, total, 50, offset), serde_json::to_vec(&documented).unwrap());
        }
        let expanded = connection_body(&c, None, true);
        assert_eq!(expanded, serde_json::to_vec(&connection_json(&c, None, true)).unwrap());
        let text = String::from_utf8(connection_bytes(&c, Some(&s))).unwrap();
        assert!(text.ends_with(r#","settings":{"n":1,"oauth":{"credentials":{"access_token":"at\"1"}}}}"#), "{text}");
    }
}
