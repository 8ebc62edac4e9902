//! Checking and refreshing connection credentials.
//!
//! OAuth2: a real `refresh_token` grant to the token URL (form-encoded; client
//! credentials in the body or HTTP Basic as the connector says). API key: a
//! call to the connector's verification endpoint. Exactly one refresh per
//! connection at a time: an in-process single flight, then a lease in the
//! database; after taking both, the row is re-read and the refresh skipped
//! when another worker already did it (its version moved).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use patchbay_core::integrations::{Connector, connector};
use patchbay_core::seed::kind;
use patchbay_store::{InConnection, Record};
use serde_json::{Map, Value, json};
use sonic_rs::JsonValueTrait;
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
/// problems become `error` / `disconnected` outcomes. `budget` caps the
/// outbound call below the configured outbound timeout.
pub async fn check(
    state: &AppState,
    c: &Connector,
    cfg: Option<&ConfigView>,
    settings: &Value,
    need: Need,
    budget: Option<Duration>,
) -> Outcome {
    let within = |req: reqwest::RequestBuilder| match budget {
        Some(d) => req.timeout(d),
        None => req,
    };
    let now = state.clock.now_ms();
    if let Some(api) = c.api_key() {
        let Some(key) = settings["api_key"].as_str() else {
            return Outcome::status("error", "The connection has no api_key".into());
        };
        let override_base = cfg.and_then(|c| c.overrides["baseUrl"].as_str());
        let config = cfg.map(|c| &c.config).unwrap_or(&Value::Null);
        let base = match patchbay_core::integrations::render_url(
            override_base.unwrap_or(&api.base_url),
            settings,
            config,
            override_base,
        ) {
            Ok(b) => b.trim_end_matches('/').to_string(),
            Err(e) => return Outcome::status("error", format!("API key verification failed: {e}")),
        };
        let method = if api.verification.method.eq_ignore_ascii_case("POST") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let req = match state.outbound.request(method, &format!("{base}{}", api.verification.endpoint)) {
            Ok(r) => within(r),
            Err(e) => return Outcome::status("error", format!("API key verification failed: {e}")),
        };
        let req = if api.verification.api_key_location == "header_basic_password" {
            req.basic_auth("api", Some(key))
        } else {
            req.bearer_auth(key)
        };
        return match state.outbound.send(crate::outbound::Call::ApiKeyCheck, req).await {
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
    let template = cfg.and_then(|c| c.overrides["tokenUrl"].as_str()).unwrap_or(&oauth.token_request_url);
    let base_api = cfg.and_then(|c| c.overrides["baseUrl"].as_str());
    let cfg_value = cfg.map(|c| &c.config).unwrap_or(&Value::Null);
    let token_url = match patchbay_core::integrations::render_url(template, settings, cfg_value, base_api) {
        Ok(u) => u,
        Err(e) => return Outcome::status("error", format!("Token refresh failed: {e}")),
    };
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
        Ok(r) => within(r),
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
    let resp = match state.outbound.send(crate::outbound::Call::OauthToken, req).await {
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
    patchbay_core::integrations::mirror_credentials(&mut new_settings);
    Outcome::healthy(Some(new_settings))
}

/// A connection's settings, opened: the JSON text they were sealed as.
///
/// Every writer seals `Value::to_string()` (serde_json's compact form, keys
/// in order), so the text is already what parsing and re-serialising would
/// write; answers carry it verbatim instead of paying for that round trip
/// on every `include_secrets` read. Serialised with sonic-rs (what
/// [`crate::face::json_response`] uses), it is written as raw JSON; other
/// serializers would see sonic's raw-value wrapper, so answers only.
#[derive(Clone)]
pub struct OpenedSettings {
    text: sonic_rs::FastStr,
    /// The same text, checked once as one JSON object, written verbatim by sonic-rs.
    raw: sonic_rs::OwnedLazyValue,
}

impl OpenedSettings {
    /// Decrypts a stored connection's settings; anything but a JSON object is corrupt.
    pub fn open(state: &AppState, c: &InConnection) -> Result<Self, InError> {
        Self::open_with(&state.vault, c)
    }

    fn open_with(vault: &patchbay_core::vault::Vault, c: &InConnection) -> Result<Self, InError> {
        let aad = Record::aad(&c.tenant, kind::IN_CONNECTION, &c.id);
        let plain = vault.open(&c.settings, &aad).map_err(patchbay_store::StoreError::from)?;
        let text = sonic_rs::FastStr::from_string(String::from_utf8(plain).map_err(|_| not_an_object())?);
        Self::checked(text).ok_or_else(not_an_object)
    }

    /// The text when it is exactly one valid JSON object (the parser's own
    /// message is not kept: it quotes the text, and the text is secret).
    fn checked(text: sonic_rs::FastStr) -> Option<Self> {
        let value = sonic_rs::get_from_faststr(&text, NO_PATH).ok()?;
        // `get` validates the value it returns; nothing may follow it.
        if !value.is_object() || value.as_raw_str().len() != text.trim_end().len() {
            return None;
        }
        Some(Self { raw: value.into(), text })
    }

    /// The settings of a value about to be sealed or answered (a JSON object).
    pub fn of(settings: &Value) -> Result<Self, InError> {
        Self::checked(sonic_rs::FastStr::from_string(settings.to_string())).ok_or_else(not_an_object)
    }

    /// The text, exactly as sealed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The JSON object as it is written into answers: the text without trailing
    /// whitespace (`checked` found exactly one object there).
    pub fn json(&self) -> &str {
        self.text.trim_end()
    }

    /// Parsed, for editing.
    pub fn value(&self) -> Result<Value, InError> {
        serde_json::from_str(&self.text).map_err(|e| InError::from(patchbay_store::StoreError::Corrupt(e.to_string())))
    }
}

const NO_PATH: &[&str] = &[];

/// Settings that are not one JSON object: a 500 (nothing of the text is quoted).
fn not_an_object() -> InError {
    InError::from(patchbay_store::StoreError::Corrupt("connection settings are not a JSON object".into()))
}

impl std::fmt::Debug for OpenedSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenedSettings(..)") // secrets never reach logs
    }
}

impl serde::Serialize for OpenedSettings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

/// Checks a stored connection (refreshing when `need` says so) under the
/// single flight and the database lease, persists the outcome with a
/// `connect.connection-checked` event, and returns the opened settings with the
/// row as it is now: `None` when it is the row given (nothing was refreshed).
pub async fn refresh(
    state: &AppState,
    conn: &InConnection,
    need: Need,
) -> Result<(Option<InConnection>, OpenedSettings), InError> {
    let unchanged = || OpenedSettings::open(state, conn).map(|s| (None, s));
    if conn.status.as_deref() == Some("disconnected") {
        return unchanged();
    }
    let Some(c) = connector(&conn.connector_name) else { return unchanged() };
    // Nothing to do for a fresh token under `auto`. The row's `expires_at` is
    // `expiry_of` of its settings, written with them, so they need not be parsed.
    if let Need::ExpiringWithin(ms) = need
        && c.oauth().is_some()
        && conn.expires_at.is_none_or(|t| t > state.clock.now_ms() + ms)
    {
        return unchanged();
    }
    let rt = &state.integrations;
    let started = state.clock.now_ms();
    let _flight = rt.flights.turn(conn.id.clone()).await;
    // While this request waited for its turn, another may have refreshed it.
    let conn = match state.store.in_get_connection(&conn.tenant, &conn.id).await? {
        Some(now) if now.version != conn.version => {
            return OpenedSettings::open(state, &now).map(|s| (Some((*now).clone()), s));
        }
        _ => conn,
    };
    let lease = Lease::new(state);
    let budget = match lease.acquire(&conn.tenant, &conn.id, started).await? {
        Acquired::Yes(budget) => budget,
        Acquired::TooLate => {
            // Held (and renewed) by a live refresher elsewhere for longer than a reader waits,
            // or taken too late to call the provider within that bound: answer what is stored.
            let Some(current) = state.store.in_get_connection(&conn.tenant, &conn.id).await? else {
                return unchanged();
            };
            let current = Arc::unwrap_or_clone(current);
            return OpenedSettings::open(state, &current).map(|s| (Some(current), s));
        }
    };
    // The lease is renewed while the check runs, so no other process takes it over (and
    // presents the same refresh token) while this one is alive; the write is fenced by it.
    // The renewal runs beside the work, not in turn with it: a renewal waiting on the
    // row (which the work's write transaction may hold) never stops that work.
    let work = refresh_locked(state, c, conn, need, budget);
    let renewing = async {
        let mut renew = tokio::time::interval(Duration::from_millis(lease.renew_every_ms()));
        renew.tick().await; // the first tick is immediate: the lease was just taken
        loop {
            renew.tick().await;
            lease.renew(&conn.tenant, &conn.id).await;
        }
    };
    let result = tokio::select! {
        r = work => r,
        never = renewing => match never {},
    };
    state.store.in_unlock(&conn.tenant, &conn.id, &rt.owner).await?;
    result.map(|(c, s)| (Some(c), s))
}

/// The outcome of waiting for a connection's refresh lease.
enum Acquired {
    /// Taken; the outbound call must end within this budget.
    Yes(Duration),
    /// Not taken within the reader's bound (or too late to call the provider within it).
    TooLate,
}

/// A connection's refresh lease in the database (`lock_owner`, `lock_until`): taken
/// for `lock_secs`, renewed every third of that while its holder works, released after.
struct Lease<'a> {
    state: &'a AppState,
    lock_ms: i64,
    outbound_ms: i64,
}

impl<'a> Lease<'a> {
    fn new(state: &'a AppState) -> Self {
        let lock_ms = state.config.integrations.lock_secs.max(1) as i64 * 1000;
        let outbound_ms = state.config.outbound.timeout.as_millis().min(i64::MAX as u128) as i64;
        Self { state, lock_ms, outbound_ms }
    }

    fn renew_every_ms(&self) -> u64 {
        (self.lock_ms / 3).max(100) as u64
    }

    /// Waits for the lease. A reader waits at most `lock_secs` plus the outbound timeout
    /// in all: a live holder renews its lease but finishes its one token call within the
    /// outbound timeout; a dead holder's lease lapses within `lock_secs`, after which
    /// this process takes over with what remains of the bound as its call's budget
    /// (never more than the outbound timeout; with less than a second left it does not
    /// call at all).
    async fn acquire(&self, tenant: &str, id: &str, started: i64) -> Result<Acquired, InError> {
        let owner = &self.state.integrations.owner;
        let give_up = started + self.lock_ms + self.outbound_ms;
        loop {
            let now = self.state.clock.now_ms();
            if self.state.store.in_try_lock(tenant, id, owner, now + self.lock_ms, now).await? {
                let budget = (give_up - now).min(self.outbound_ms);
                if budget < 1_000 {
                    self.state.store.in_unlock(tenant, id, owner).await?;
                    return Ok(Acquired::TooLate);
                }
                return Ok(Acquired::Yes(Duration::from_millis(budget as u64)));
            }
            if now >= give_up {
                return Ok(Acquired::TooLate);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Extends the held lease; a failure is logged (the fenced write then decides).
    async fn renew(&self, tenant: &str, id: &str) {
        let now = self.state.clock.now_ms();
        match self.state.store.in_try_lock(tenant, id, &self.state.integrations.owner, now + self.lock_ms, now).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(connection = %id, "refresh lease lost to another process"),
            Err(e) => tracing::warn!(connection = %id, error = %e, "refresh lease renewal failed"),
        }
    }
}

async fn refresh_locked(
    state: &AppState,
    c: &Connector,
    before: &InConnection,
    need: Need,
    budget: Duration,
) -> Result<(InConnection, OpenedSettings), InError> {
    let Some(current) = state.store.in_get_connection(&before.tenant, &before.id).await?.map(Arc::unwrap_or_clone)
    else {
        return Err(InError::not_found("Connection not found"));
    };
    let opened = OpenedSettings::open(state, &current)?;
    if current.version != before.version || current.status.as_deref() == Some("disconnected") {
        // Someone else refreshed (or disconnected) it meanwhile.
        return Ok((current, opened));
    }
    let settings = opened.value()?;
    let cfg = load_config(state, &current.tenant, &current.connector_config_id).await?;
    let outcome = check(state, c, cfg.as_ref(), &settings, need, Some(budget)).await;
    let now = state.clock.now_ms();
    let new_settings = match &outcome.settings {
        Some(s) => OpenedSettings::of(s)?,
        None => opened,
    };
    let (expires_at, refreshable) = expiry_of(outcome.settings.as_ref().unwrap_or(&settings));
    let aad = Record::aad(&current.tenant, kind::IN_CONNECTION, &current.id);
    let updated = InConnection {
        status: Some(outcome.status.clone()),
        status_message: outcome.status_message.clone(),
        settings: if outcome.settings.is_some() {
            state.vault.seal(new_settings.as_str().as_bytes(), &aad)
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
        &state.entropy,
        &current.tenant,
        "connect.connection-checked",
        json!({"connection_id": current.id, "status": outcome.status, "status_message": outcome.status_message,
               "customer_id": current.customer_id}),
        current.customer_id.clone(),
        now,
    );
    let jobs = emit_jobs(state, &ev).await?;
    let fence = Some(state.integrations.owner.as_str());
    if !state.store.in_update_connection(&updated, current.version, fence, Some(&ev), &jobs).await? {
        // The lease was lost (this process stalled past it and another took over), or the
        // row changed meanwhile: the late write is refused; answer with what is stored now.
        let latest = state
            .store
            .in_get_connection(&current.tenant, &current.id)
            .await?
            .map(Arc::unwrap_or_clone)
            .unwrap_or(current);
        let s = OpenedSettings::open(state, &latest)?;
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
                        // A row whose settings cannot be opened is skipped before it takes the lease.
                        if OpenedSettings::open(&state, &conn).is_err() {
                            return;
                        }
                        if let Err(e) = refresh(&state, &conn, Need::ExpiringWithin(window)).await {
                            tracing::warn!(connection = %id, error = ?e, "background refresh failed");
                        }
                    }
                })
                .await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::vault::Vault;

    fn sealed(vault: &Vault, text: &str) -> InConnection {
        let aad = Record::aad("org_1", kind::IN_CONNECTION, "conn_github_1");
        InConnection {
            tenant: "org_1".into(),
            id: "conn_github_1".into(),
            connector_name: "github".into(),
            connector_config_id: "ccfg_github_1".into(),
            customer_id: Some("cus_1".into()),
            integration_id: None,
            display_name: None,
            disabled: false,
            status: Some("healthy".into()),
            status_message: None,
            metadata: None,
            settings: vault.seal(text.as_bytes(), &aad),
            expires_at: None,
            refreshable: false,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn vault() -> Vault {
        Vault::from_spec("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
    }

    /// Answers carry the sealed text verbatim, which is byte for byte what
    /// serde_json writes for the parsed settings (the form every writer seals).
    #[tokio::test]
    async fn opened_settings_answer_what_serde_json_writes() {
        let v = serde_json::json!({
            "oauth": {"credentials": {"access_token": "at-\u{0}\"\\/\u{2028}é😀", "expires_at": "2099-01-01T00:00:00.000Z",
                                      "expires_in": 3600, "ratio": 0.1, "big": 1e300, "neg": -0.0, "max": u64::MAX}},
            "api_key": "</script>", "list": [true, null, {}, []], "z": {"a": 1}
        });
        let vault = vault();
        let opened = OpenedSettings::open_with(&vault, &sealed(&vault, &v.to_string())).unwrap();
        assert_eq!(opened.as_str(), serde_json::to_string(&v).unwrap());
        assert_eq!(opened.value().unwrap(), v);
        let conn = sealed(&vault, &v.to_string());
        let resp = crate::face::json_response(
            axum::http::StatusCode::OK,
            &super::super::connection_json(&conn, Some(opened), false),
        );
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let got: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got["id"], "conn_github_1");
        assert_eq!(got["settings"], v);
        // Byte for byte: the answer without settings, then the settings as serde_json writes them.
        let without =
            crate::face::json_response(axum::http::StatusCode::OK, &super::super::connection_json(&conn, None, false));
        let without = axum::body::to_bytes(without.into_body(), usize::MAX).await.unwrap();
        let without = std::str::from_utf8(&without).unwrap().strip_suffix('}').unwrap().to_string();
        let expected = format!("{without},\"settings\":{}}}", serde_json::to_string(&v).unwrap());
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
        assert_eq!(OpenedSettings::of(&v).unwrap().as_str(), serde_json::to_string(&v).unwrap());
        assert!(OpenedSettings::of(&serde_json::json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn opened_settings_refuse_what_is_not_a_json_object_and_never_print_secrets() {
        let vault = vault();
        for bad in [
            "[1]",
            "\"text\"",
            "{\"a\":",
            "{\"a\":1} x",
            "{\"a\":tru}",
            "{\"a\":[1,]}",
            "{\"a\":\"\u{1}\"}",
            "",
            "nul\u{0}",
        ] {
            let Err(err) = OpenedSettings::open_with(&vault, &sealed(&vault, bad)) else { panic!("{bad:?} opened") };
            assert_eq!(err.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR, "{bad:?}");
        }
        let opened = OpenedSettings::open_with(&vault, &sealed(&vault, r#"{"access_token":"secret-1"}"#)).unwrap();
        assert_eq!(format!("{opened:?}"), "OpenedSettings(..)");
        assert_eq!(Record::aad("org_1", kind::IN_CONNECTION, "conn_1"), b"org_1\0integrations.connection\0conn_1");
        // A different connection's AAD does not open it.
        let mut moved = sealed(&vault, "{}");
        moved.id = "conn_github_2".into();
        assert!(OpenedSettings::open_with(&vault, &moved).is_err());
    }
}
