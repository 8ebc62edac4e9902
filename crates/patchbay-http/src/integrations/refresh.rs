//! Checking and refreshing connection credentials.
//!
//! OAuth2: a real `refresh_token` grant to the token URL (form-encoded; client
//! credentials in the body or HTTP Basic as the connector says). API key: a
//! call to the connector's verification endpoint. Exactly one refresh per
//! connection at a time: an in-process single flight, then a lease in the
//! database; after taking both, the row is re-read and the refresh skipped
//! when another worker already did it (its version moved).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use patchbay_core::integrations::{Connector, connector};
use patchbay_core::seed::kind;
use patchbay_store::{InConnection, Record};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{InError, emit_jobs, event};
use crate::AppState;
use crate::outbound::OutboundError;

/// When a check should refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Always (refresh_policy=force, POST /check).
    Force,
    /// When the token expires within this many milliseconds (auto, background).
    ExpiringWithin(i64),
}

/// The result of a check.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: String,
    pub status_message: Option<String>,
    /// New settings when they changed.
    pub settings: Option<Value>,
}

impl Outcome {
    fn healthy(settings: Option<Value>) -> Self {
        Self { status: "healthy".into(), status_message: None, settings }
    }
    fn status(status: &str, message: String) -> Self {
        Self { status: status.into(), status_message: Some(message), settings: None }
    }
}

/// Settings-derived fields stored beside the sealed settings.
pub fn expiry_of(settings: &Value) -> (Option<i64>, bool) {
    let creds = &settings["oauth"]["credentials"];
    let expires_at = creds["expires_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    let refreshable = creds["refresh_token"].as_str().is_some_and(|t| !t.is_empty());
    (expires_at, refreshable)
}

fn iso(ms: i64) -> String {
    patchbay_core::network::timestamp(ms)
}

/// The connector config's secret part and overrides.
pub struct ConfigView {
    pub config: Value,
    pub overrides: Value,
}

pub async fn load_config(state: &AppState, tenant: &str, id: &str) -> Result<Option<ConfigView>, InError> {
    let Some(rec) = state.store.get_record(tenant, kind::IN_CCFG, id).await? else { return Ok(None) };
    let config = rec.open_secret(&state.vault)?.unwrap_or(json!({}));
    Ok(Some(ConfigView { config, overrides: rec.data["overrides"].clone() }))
}

/// Runs the connector's check on (possibly unsaved) settings. Never fails:
/// problems become `error` / `disconnected` outcomes.
pub async fn check(state: &AppState, c: &Connector, cfg: Option<&ConfigView>, settings: &Value, need: Need) -> Outcome {
    let now = state.clock.now_ms();
    if let Some(api) = c.api_key() {
        let Some(key) = settings["api_key"].as_str() else {
            return Outcome::status("error", "The connection has no api_key".into());
        };
        let base = cfg.and_then(|c| c.overrides["baseUrl"].as_str()).unwrap_or(&api.base_url).trim_end_matches('/');
        let method = if api.verification.method.eq_ignore_ascii_case("POST") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let req = match state.outbound.request(method, &format!("{base}{}", api.verification.endpoint)) {
            Ok(r) => r,
            Err(e) => return Outcome::status("error", format!("API key verification failed: {e}")),
        };
        let req = if api.verification.api_key_location == "header_basic_password" {
            req.basic_auth("api", Some(key))
        } else {
            req.bearer_auth(key)
        };
        return match state.outbound.send(req).await {
            Ok(r) if r.status.is_success() => Outcome::healthy(None),
            Ok(r) if r.status.is_server_error() => {
                Outcome::status("error", format!("API key verification failed with HTTP {}", r.status.as_u16()))
            }
            Ok(r) => {
                Outcome::status("disconnected", format!("API key verification failed with HTTP {}", r.status.as_u16()))
            }
            Err(e) => Outcome::status("error", format!("API key verification failed: {e}")),
        };
    }
    let Some(oauth) = c.oauth() else { return Outcome::healthy(None) };
    let creds = &settings["oauth"]["credentials"];
    if creds["access_token"].as_str().is_none_or(str::is_empty) {
        return Outcome::status("error", "The connection has no access token".into());
    }
    let (expires_at, _) = expiry_of(settings);
    let refresh_token = creds["refresh_token"].as_str().filter(|t| !t.is_empty());
    let due = match need {
        Need::Force => true,
        Need::ExpiringWithin(ms) => expires_at.is_some_and(|t| t <= now + ms),
    };
    let Some(refresh_token) = refresh_token.filter(|_| due) else {
        return match expires_at {
            Some(t) if t < now => Outcome::status("disconnected", format!("Token expired at {}", iso(t))),
            _ => Outcome::healthy(None),
        };
    };
    let config = cfg.map(|c| &c.config["oauth"]).cloned().unwrap_or(Value::Null);
    let token_url = cfg.and_then(|c| c.overrides["tokenUrl"].as_str()).unwrap_or(&oauth.token_request_url).to_string();
    let client_id = config["client_id"].as_str().unwrap_or_default().to_string();
    let client_secret = config["client_secret"].as_str().unwrap_or_default().to_string();
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let basic = oauth.client_auth == "header";
    if !basic {
        form.push(("client_id", &client_id));
        form.push(("client_secret", &client_secret));
    }
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let req = match state.outbound.request(reqwest::Method::POST, &token_url) {
        Ok(r) => r,
        Err(e) => return Outcome::status("error", format!("Token refresh failed with error {e}")),
    };
    let mut req = req
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    if basic {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{client_secret}"));
        req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {pair}"));
    }
    let resp = match state.outbound.send(req).await {
        Ok(r) => r,
        Err(OutboundError::Timeout) => {
            return Outcome::status("error", "Token refresh failed with error: the token endpoint timed out".into());
        }
        Err(e) => return Outcome::status("error", format!("Token refresh failed with error: {e}")),
    };
    // JSON, else form-encoded.
    let parsed: Map<String, Value> = serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_else(|| form_urlencoded::parse(&resp.body).map(|(k, v)| (k.into_owned(), json!(v))).collect());
    if !resp.status.is_success() || parsed.get("access_token").and_then(Value::as_str).is_none() {
        let error = parsed.get("error").and_then(Value::as_str).unwrap_or("");
        let description = parsed.get("error_description").and_then(Value::as_str).unwrap_or("");
        let detail =
            if error.is_empty() { format!("HTTP {}", resp.status.as_u16()) } else { format!("{error}: {description}") };
        if error == "invalid_grant" {
            return Outcome::status(
                "disconnected",
                format!("Token refresh failed: the provider rejected the grant ({detail})"),
            );
        }
        return Outcome::status("error", format!("Token refresh failed with error {detail}"));
    }
    // Success: keep the old refresh token unless the provider rotated it.
    let mut new_creds = json!({
        "access_token": parsed["access_token"],
        "refresh_token": parsed.get("refresh_token").and_then(Value::as_str).unwrap_or(refresh_token),
        "token_type": parsed.get("token_type").cloned().unwrap_or(Value::Null),
        "client_id": client_id,
        "raw": parsed,
    });
    let scope = parsed
        .get("scope")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| creds["scope"].as_str().map(str::to_string))
        .or_else(|| {
            let scopes: Vec<String> = match &config["scopes"] {
                Value::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
                Value::String(s) => s.split(',').map(str::to_string).collect(),
                _ => Vec::new(),
            };
            (!scopes.is_empty()).then(|| scopes.join(&oauth.scope_separator))
        });
    if let Some(s) = scope {
        new_creds["scope"] = json!(s);
    }
    if let Some(secs) =
        parsed.get("expires_in").and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
    {
        new_creds["expires_in"] = json!(secs);
        new_creds["expires_at"] = json!(iso(now + secs * 1000));
    }
    let mut new_settings = settings.clone();
    new_settings["oauth"]["credentials"] = new_creds;
    new_settings["access_token"] = parsed["access_token"].clone();
    Outcome::healthy(Some(new_settings))
}

/// Per-connection in-process single flight.
#[derive(Default)]
pub struct Flights(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Flights {
    fn slot(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().expect("flights lock");
        map.retain(|_, v| Arc::strong_count(v) > 1);
        map.entry(id.to_string()).or_default().clone()
    }
}

/// Opens a stored connection's settings.
pub fn open_settings(state: &AppState, c: &InConnection) -> Result<Value, InError> {
    let aad = Record::aad(&c.tenant, kind::IN_CONNECTION, &c.id);
    let plain = state.vault.open(&c.settings, &aad).map_err(patchbay_store::StoreError::from)?;
    serde_json::from_slice(&plain).map_err(|e| InError::from(patchbay_store::StoreError::Corrupt(e.to_string())))
}

/// Checks a stored connection (refreshing when `need` says so) under the
/// single flight and the database lease, persists the outcome with a
/// `connect.connection-checked` event, and returns the current row and settings.
pub async fn refresh(
    state: &AppState,
    conn: InConnection,
    settings: Value,
    need: Need,
) -> Result<(InConnection, Value), InError> {
    if conn.status.as_deref() == Some("disconnected") {
        return Ok((conn, settings));
    }
    let Some(c) = connector(&conn.connector_name) else { return Ok((conn, settings)) };
    // Nothing to do for a fresh token under `auto`.
    if let Need::ExpiringWithin(ms) = need
        && c.oauth().is_some()
    {
        let (expires_at, _) = expiry_of(&settings);
        if expires_at.is_none_or(|t| t > state.clock.now_ms() + ms) {
            return Ok((conn, settings));
        }
    }
    let rt = &state.integrations;
    let slot = rt.flights.slot(&conn.id);
    let _flight = slot.lock().await;
    let lock_ms = state.config.integrations.lock_secs.max(1) as i64 * 1000;
    let deadline = state.clock.now_ms() + lock_ms + 2_000;
    loop {
        let now = state.clock.now_ms();
        if state.store.in_try_lock(&conn.tenant, &conn.id, &rt.owner, now + lock_ms, now).await? {
            break;
        }
        if now > deadline {
            // Another replica holds it for too long: answer with what is stored.
            let current = state.store.in_get_connection(&conn.tenant, &conn.id).await?.unwrap_or(conn);
            let s = open_settings(state, &current)?;
            return Ok((current, s));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (tenant, id) = (conn.tenant.clone(), conn.id.clone());
    let result = refresh_locked(state, c, conn, need).await;
    state.store.in_unlock(&tenant, &id, &rt.owner).await?;
    result
}

async fn refresh_locked(
    state: &AppState,
    c: &Connector,
    before: InConnection,
    need: Need,
) -> Result<(InConnection, Value), InError> {
    let Some(current) = state.store.in_get_connection(&before.tenant, &before.id).await? else {
        return Err(InError::not_found("Connection not found"));
    };
    let settings = open_settings(state, &current)?;
    if current.version != before.version || current.status.as_deref() == Some("disconnected") {
        // Someone else refreshed (or disconnected) it meanwhile.
        return Ok((current, settings));
    }
    let cfg = load_config(state, &current.tenant, &current.connector_config_id).await?;
    let outcome = check(state, c, cfg.as_ref(), &settings, need).await;
    let now = state.clock.now_ms();
    let new_settings = outcome.settings.clone().unwrap_or_else(|| settings.clone());
    let (expires_at, refreshable) = expiry_of(&new_settings);
    let aad = Record::aad(&current.tenant, kind::IN_CONNECTION, &current.id);
    let updated = InConnection {
        status: Some(outcome.status.clone()),
        status_message: outcome.status_message.clone(),
        settings: if outcome.settings.is_some() {
            state.vault.seal(new_settings.to_string().as_bytes(), &aad)
        } else {
            current.settings.clone()
        },
        expires_at,
        refreshable,
        version: current.version + 1,
        updated_at: now,
        ..current.clone()
    };
    let ev = event(
        &current.tenant,
        "connect.connection-checked",
        json!({"connection_id": current.id, "status": outcome.status, "status_message": outcome.status_message,
               "customer_id": current.customer_id}),
        current.customer_id.clone(),
        now,
    );
    let jobs = emit_jobs(state, &ev).await?;
    if !state.store.in_update_connection(&updated, current.version, Some(&ev), &jobs).await? {
        // Lost a race despite the lease (it expired): answer with what is stored now.
        let latest = state.store.in_get_connection(&current.tenant, &current.id).await?.unwrap_or(current);
        let s = open_settings(state, &latest)?;
        return Ok((latest, s));
    }
    if outcome.status != "healthy" {
        tracing::warn!(connection = %updated.id, status = %outcome.status, message = ?outcome.status_message, "connection check failed");
    }
    Ok((updated, new_settings))
}

/// Renews tokens nearing expiry, with bounded concurrency, until shutdown.
pub fn spawn_background(state: AppState, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = state.config.integrations.clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(cfg.background_interval_secs.max(1))) => {}
            }
            let window = cfg.background_window_secs as i64 * 1000;
            let due = match state.store.in_due_for_refresh(state.clock.now_ms() + window, 500).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "background refresh: could not list due connections");
                    continue;
                }
            };
            futures_util::stream::iter(due)
                .for_each_concurrent(cfg.background_concurrency.max(1), |(tenant, id)| {
                    let state = state.clone();
                    async move {
                        let Ok(Some(conn)) = state.store.in_get_connection(&tenant, &id).await else { return };
                        let Ok(settings) = open_settings(&state, &conn) else { return };
                        if let Err(e) = refresh(&state, conn, settings, Need::ExpiringWithin(window)).await {
                            tracing::warn!(connection = %id, error = ?e, "background refresh failed");
                        }
                    }
                })
                .await;
        }
    })
}
