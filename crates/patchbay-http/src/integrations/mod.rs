//! The Integrations face: OpenInt v1 under `/v1/...`. Errors are tRPC-style
//! `{code, message, issues?}`; lists are `{items, total, limit, offset,
//! has_next_page}`; credentials are kept fresh by [`refresh`].

mod configs;
mod connect;
mod connections;
mod customers;
pub mod refresh;
mod status;
mod v2;
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
use connections::*;
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
        .merge(connect::routes())
        .nest("/v2", v2::routes())
        .nest("/api/v2", v2::routes())
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
                state.entropy.fill(&mut raw);
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

/// A token's claims, once its HS256 signature and expiry check out.
async fn decode_token(state: &AppState, token: &str) -> Result<Claims, InError> {
    let key = token_secret(state).await?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    // Expiry is checked below against the server's clock (the sandbox's, when on),
    // like jose: no clock tolerance.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key), &validation)
        .map_err(|e| InError::unauthorized(format!("Invalid token: {e}")))?;
    if data.claims.exp <= state.clock.now_ms().div_euclid(1000) {
        return Err(InError::unauthorized("Invalid token: ExpiredSignature"));
    }
    Ok(data.claims)
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

/// The connector-gateway credential header: `repl <identity>` or `depl <identity>`.
pub const REPLIT_TOKEN: &str = "x-replit-token";
/// The same header as the published gateway snippets spell it (`X_REPLIT_TOKEN`).
pub const REPLIT_TOKEN_UNDERSCORED: &str = "x_replit_token";

/// The gateway credential header, under either spelling.
pub fn replit_token(headers: &HeaderMap) -> Option<&axum::http::HeaderValue> {
    headers.get(REPLIT_TOKEN).or_else(|| headers.get(REPLIT_TOKEN_UNDERSCORED))
}

/// The principal a credential row names.
fn viewer_of(cred: &Credential) -> Result<Viewer, InError> {
    match cred.principal_kind.as_str() {
        "organization" => Ok(Viewer::Org { org: cred.principal_id.clone() }),
        _ => {
            let (org, customer) =
                cred.principal_id.split_once('/').ok_or_else(|| InError::unauthorized("Invalid API key"))?;
            Ok(Viewer::Customer { org: org.into(), customer: customer.into() })
        }
    }
}

/// `X-Replit-Token: repl <identity>` (or `depl`): the identity as the seed maps it.
async fn gateway_viewer(state: &AppState, raw: &axum::http::HeaderValue) -> Result<Viewer, InError> {
    let invalid =
        || InError::unauthorized("Invalid X-Replit-Token: expected \"repl <identity>\" or \"depl <identity>\"");
    let value = raw.to_str().map_err(|_| invalid())?;
    let identity = value
        .strip_prefix("repl ")
        .or_else(|| value.strip_prefix("depl "))
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .ok_or_else(invalid)?;
    let cred = state
        .store
        .find_credential(identity)
        .await?
        .filter(|c| c.face == patchbay_core::seed::GATEWAY_FACE)
        .ok_or_else(|| InError::unauthorized("Unknown X-Replit-Token identity"))?;
    viewer_of(&cred)
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Viewer, InError> {
    let viewer = credentials_of(state, headers).await?;
    let tenant = viewer.org().ok().map(str::to_string);
    rate_limited(state, &viewer.principal(), tenant.as_deref()).await?;
    Ok(viewer)
}

/// The face's limit for a principal: the platform's 429 (with `Retry-After`) once spent.
async fn rate_limited(state: &AppState, principal: &str, tenant: Option<&str>) -> Result<(), InError> {
    state.authenticated(Face::Integrations, principal, tenant).await.map_err(|resp| InError {
        raw: Some(resp),
        ..InError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "")
    })
}

/// The caller named by `Authorization` (an API key or a token), else by `X-Replit-Token`.
async fn credentials_of(state: &AppState, headers: &HeaderMap) -> Result<Viewer, InError> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return match replit_token(headers) {
            Some(v) => gateway_viewer(state, v).await,
            None => Ok(Viewer::Anon),
        };
    };
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
        viewer_of(&cred)?
    } else {
        let c = decode_token(state, token).await?;
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
    /// A list parameter whose items are values of an enum or ids: an empty item
    /// (`expand=`, `connector_names=a,,b`) is refused rather than ignored.
    fn strict_list(&self, k: &str) -> Result<Vec<String>, InError> {
        let mut out = Vec::new();
        for item in self.all(k).flat_map(|v| v.split(',')).map(str::trim) {
            if item.is_empty() {
                return Err(InError::issue(&[k], format!("{k} must not have an empty item")));
            }
            out.push(item.to_string());
        }
        Ok(out)
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
        let e = self.strict_list("expand")?;
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

/// `connector_names`: catalogue names (aliases resolved to upstream's); an unknown one is a 400.
fn connector_names(q: &Query) -> Result<Vec<String>, InError> {
    q.strict_list("connector_names")?
        .iter()
        .map(|n| {
            connector(n)
                .map(|c| c.name.clone())
                .ok_or_else(|| InError::issue(&["connector_names"], format!("{n:?} is not a known connector")))
        })
        .collect()
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
pub fn event(
    entropy: &patchbay_core::Entropy,
    tenant: &str,
    name: &str,
    data: Value,
    customer: Option<String>,
    now: i64,
) -> InEvent {
    InEvent {
        tenant: tenant.into(),
        id: format!("evt_{}", catalog::ulid(entropy, now)),
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

// ------------------------------------------------------------ connectors --

#[utoipa::path(get, path = "/v1/connector", operation_id = "listConnectors", tag = "Connectors",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("expand" = Option<Vec<ExpandSchemas>>, Query, style = Form, explode = false), ("connector_name" = Option<String>, Query, description = "Only this connector")),
    responses((status = 200, description = "The connector catalogue", body = wire::ConnectorPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)))]
async fn list_connectors(RawQuery(q): RawQuery) -> InResult {
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let schemas = !q.expand(&["schemas"])?.is_empty();
    let name = q.one("connector_name").map(|n| connector(n).map(|c| c.name.as_str()).unwrap_or(n));
    let all: Vec<&catalog::Connector> =
        catalog::catalogue().iter().filter(|c| name.is_none_or(|n| c.name == n)).collect();
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
    info(title = "Patchbay — OpenInt v1 and v2 API", description = "OpenInt v1 and v2 connections, connectors, connector configs, customers and assignments, wire-compatible."),
    paths(get_connection, list_connections, create_connection, delete_connection, check_connection, list_connectors,
          configs::list_configs, configs::get_config, configs::create_config, configs::update_config,
          configs::delete_config, customers::create_token, customers::upsert_customer, customers::list_customers,
          list_events, viewer, customers::create_magic_link, status::health, status::health_echo,
          status::connector_status, status::message_template, status::handle_webhook, status::get_event,
          status::create_event, v2::list_assignments, v2::assign_connection, v2::delete_assignment,
          v2::upsert_organization),
    components(schemas(RefreshPolicy, ExpandConnector, ExpandSchemas, ExpandConfig, wire::ConnectorName, wire::TemplateLanguage)),
    modifiers(&BearerAuth, &PLATFORM_RESPONSES),
)]
pub struct IntegrationsApi;

/// The generated document, with the catalogue's connectors filled in: the
/// connector-name enum and, per connector, the shape of connection `data` and
/// of a new connector config (its JSON Schemas).
pub fn openapi_json() -> Value {
    let mut doc = crate::openapi::document::<IntegrationsApi>();
    // `expand` and `connector_names` name at least one value when given (`expand=` is refused).
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut()) {
            // `get_mut`: indexing would add `parameters: null` to operations without any.
            for param in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                if matches!(param["name"].as_str(), Some("expand" | "connector_names"))
                    && param["schema"]["type"] == "array"
                {
                    param["schema"]["minItems"] = json!(1);
                }
            }
        }
    }
    // The v1 operations v2 serves too, under their v2 paths (operation ids end in V2).
    for (v1, v2) in v2::SHARED_PATHS {
        let mut item = doc["paths"][*v1].clone();
        if let Some(ops) = item.as_object_mut() {
            for op in ops.values_mut() {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    op["operationId"] = json!(format!("{id}V2"));
                }
            }
        }
        doc["paths"][*v2] = item;
    }
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
            // Optional and nullable unless the connector's config has required fields.
            let mut required = vec!["connector_name"];
            let config = if config.get("required").is_some() {
                required.push("config");
                config.clone()
            } else {
                json!({"anyOf": [config, {"type": "null"}]})
            };
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
