//! Connect: the hosted page a customer's magic link opens. It lists the
//! organisation's connector configs that the link's connect options allow and
//! links an account: OAuth2 connectors by the authorisation-code flow with PKCE
//! (S256), the others by a form generated from the connector's settings schema
//! (an API key is checked with the connector's verification before it is kept).
//! Pages are small HTML rendered here, no third-party assets.
//!
//! Routes: `GET /connect` · `POST /connect/oauth` · `GET /connect/callback` ·
//! `GET|POST /connect/form`

use axum::Form;
use axum::response::Html;
use patchbay_core::connect::{self as flow, PendingConnect};
use std::collections::BTreeMap;

use super::*;
use crate::integrations::connections::{NewConnection, insert_connection};

const STATE_TENANT: &str = "integrations";
const STATE_KIND: &str = "integrations.connect_state";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/connect", get(connect_page))
        .route("/connect/oauth", post(start_oauth))
        .route("/connect/callback", get(callback))
        .route("/connect/form", get(form_page).post(submit_form))
}

// ------------------------------------------------------------------ pages --

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: the organisation's name as its theme, the body, no outside assets.
fn page(status: StatusCode, title: &str, org_name: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {org}</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1a1d21}}
header{{background:#1f3a5f;color:#fff;padding:1rem 1.5rem}}
header h1{{margin:0;font-size:1.25rem}}
main{{max-width:40rem;margin:1.5rem auto;padding:0 1rem}}
ul.configs{{list-style:none;padding:0}}
ul.configs li{{background:#fff;border:1px solid #c9ced6;border-radius:6px;margin:.5rem 0;padding:.75rem 1rem;display:flex;justify-content:space-between;align-items:center;gap:1rem}}
button,.button{{font:inherit;background:#1f5fbf;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;cursor:pointer;text-decoration:none;display:inline-block}}
button:focus,.button:focus,input:focus,a:focus{{outline:3px solid #f5a623;outline-offset:2px}}
label{{display:block;font-weight:600;margin-top:1rem}}
input{{font:inherit;width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #6b7380;border-radius:4px}}
.error{{background:#fdecea;border:1px solid #b3261e;color:#5f1410;padding:.75rem 1rem;border-radius:6px}}
.ok{{background:#e6f4ea;border:1px solid #1e7e34;color:#0f3d1a;padding:.75rem 1rem;border-radius:6px}}
.muted{{color:#4a5260}}
</style></head>
<body><header><h1>{org}</h1></header><main><h2>{title}</h2>
{body}
</main></body></html>"#,
        title = esc(title),
        org = esc(org_name),
    );
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    h.insert("x-frame-options", "DENY".parse().expect("static"));
    h.insert(header::REFERRER_POLICY, "no-referrer".parse().expect("static"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:; base-uri 'none'; frame-ancestors 'none'"
            .parse()
            .expect("static"),
    );
    resp
}

fn error_page(status: StatusCode, org_name: &str, message: &str, back: Option<&str>) -> Response {
    let back = back
        .map(|token| {
            format!(r#"<p><a class="button" href="/connect?token={}">Back to the connections</a></p>"#, enc(token))
        })
        .unwrap_or_default();
    page(
        status,
        "Something went wrong",
        org_name,
        &format!(r#"<p class="error" role="alert">{}</p>{back}"#, esc(message)),
    )
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ------------------------------------------------------------ the customer --

/// The customer a connect link is for, with its signed connect options.
struct Visitor {
    org: String,
    org_name: String,
    customer: String,
    options: Map<String, Value>,
    token: String,
}

async fn org_name(state: &AppState, org: &str) -> String {
    match state.store.get_record(org, kind::IN_ORG, org).await {
        Ok(Some(r)) => r.data["name"].as_str().unwrap_or(org).to_string(),
        _ => org.to_string(),
    }
}

/// The visitor of a page, or the error page (401) for a missing, expired or tampered token.
async fn visitor(state: &AppState, token: Option<&str>) -> Result<Visitor, Response> {
    let refuse = |m: &str| error_page(StatusCode::UNAUTHORIZED, "Connect", m, None);
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| refuse("This link has no token. Ask for a new link."))?;
    let claims = decode_token(state, token).await.map_err(|e| {
        let why =
            if e.message.contains("ExpiredSignature") { "This link has expired." } else { "This link is not valid." };
        refuse(&format!("{why} Ask for a new link."))
    })?;
    let (org, customer) = match (claims.role.as_str(), claims.sub.split_once('/')) {
        ("customer", Some((o, c))) => (o.to_string(), c.to_string()),
        _ => return Err(refuse("This link is not a customer's connect link.")),
    };
    let options = claims.connect_options.and_then(|v| v.as_object().cloned()).unwrap_or_default();
    Ok(Visitor { org_name: org_name(state, &org).await, org, customer, options, token: token.to_string() })
}

/// The connector configs the visitor may connect: enabled, of a catalogue connector,
/// and among the link's `connector_names` when it names any.
async fn offered(state: &AppState, v: &Visitor) -> Result<Vec<(Record, &'static catalog::Connector)>, InError> {
    let names: Vec<String> = match v.options.get("connector_names") {
        Some(Value::Array(a)) => {
            a.iter().filter_map(Value::as_str).filter_map(connector).map(|c| c.name.clone()).collect()
        }
        Some(Value::String(s)) => connector(s).map(|c| vec![c.name.clone()]).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for r in state.store.list_records(&v.org, kind::IN_CCFG).await? {
        if r.data["disabled"].as_bool() == Some(true) {
            continue;
        }
        let Some(c) = connector(r.data["connectorName"].as_str().unwrap_or_default()) else { continue };
        if names.is_empty() || names.contains(&c.name) {
            out.push((r, c));
        }
    }
    out.sort_by(|a, b| a.1.display_name.cmp(&b.1.display_name).then(a.0.id.cmp(&b.0.id)));
    Ok(out)
}

fn config_label(r: &Record, c: &catalog::Connector) -> String {
    r.data["displayName"].as_str().filter(|d| !d.is_empty()).unwrap_or(&c.display_name).to_string()
}

fn internal(v: &Visitor, e: InError) -> Response {
    tracing::warn!(error = %e.message, "connect page failed");
    error_page(StatusCode::SERVICE_UNAVAILABLE, &v.org_name, "The service is unavailable; try again shortly.", None)
}

async fn connect_page(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let v = match visitor(&state, q.get("token").map(String::as_str)).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let configs = match offered(&state, &v).await {
        Ok(c) => c,
        Err(e) => return internal(&v, e),
    };
    let filter = InFilter { customer_id: Some(v.customer.clone()), ..Default::default() };
    let mine = match state.store.in_list_connections(&v.org, &filter, 100, 0).await {
        Ok((rows, _)) => rows,
        Err(e) => return internal(&v, e.into()),
    };
    let mut body = String::new();
    if configs.is_empty() {
        body.push_str(r#"<p class="muted">No integrations are available to connect.</p>"#);
    } else {
        body.push_str(r#"<p>Pick an integration to connect your account.</p><ul class="configs">"#);
        for (r, c) in &configs {
            let label = esc(&config_label(r, c));
            let action = if c.oauth().is_some() {
                format!(
                    r#"<form method="post" action="/connect/oauth"><input type="hidden" name="token" value="{}"><input type="hidden" name="connector_config_id" value="{}"><button type="submit" aria-label="Connect {label}">Connect</button></form>"#,
                    esc(&v.token),
                    esc(&r.id)
                )
            } else {
                format!(
                    r#"<a class="button" href="/connect/form?token={}&amp;connector_config_id={}" aria-label="Connect {label}">Connect</a>"#,
                    enc(&v.token),
                    enc(&r.id)
                )
            };
            body.push_str(&format!(r#"<li><span>{label}</span>{action}</li>"#));
        }
        body.push_str("</ul>");
    }
    if !mine.is_empty() {
        body.push_str(r#"<h3>Your connections</h3><ul class="configs">"#);
        for c in mine.iter() {
            let name = connector(&c.connector_name).map(|k| k.display_name.clone()).unwrap_or(c.connector_name.clone());
            body.push_str(&format!(
                r#"<li><span>{} <span class="muted">({})</span></span><span class="muted">{}</span></li>"#,
                esc(&name),
                esc(&c.id),
                esc(c.status.as_deref().unwrap_or("unknown"))
            ));
        }
        body.push_str("</ul>");
    }
    page(StatusCode::OK, "Connect an integration", &v.org_name, &body)
}

// ------------------------------------------------------------------ OAuth2 --

#[derive(Deserialize)]
struct StartForm {
    token: Option<String>,
    connector_config_id: Option<String>,
}

/// The public base the provider sends the customer back to.
fn callback_uri(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/connect/callback", crate::face::base_url(&state.config, headers))
}

/// Records a `connect.session-*` event (and its webhook) for the organisation.
async fn session_event(state: &AppState, org: &str, customer: &str, name: &str, data: Value) {
    let ev = event(&state.entropy, org, name, data, Some(customer.to_string()), state.clock.now_ms());
    let result = async {
        let jobs = emit_jobs(state, &ev).await?;
        state.store.in_insert_event(&ev, &jobs).await.map_err(InError::from)
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e.message, event = name, "connect event not recorded");
    }
}

// `HeaderMap` (a copy), not `Headers`: the form extractor after it reads Content-Type.
async fn start_oauth(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<StartForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(r) => {
            return error_page(
                r.status(),
                "Connect",
                &format!("The request could not be read: {}", r.body_text()),
                None,
            );
        }
    };
    let v = match visitor(&state, form.token.as_deref()).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let ccfg_id = form.connector_config_id.unwrap_or_default();
    let configs = match offered(&state, &v).await {
        Ok(c) => c,
        Err(e) => return internal(&v, e),
    };
    let Some((rec, c)) = configs.into_iter().find(|(r, _)| r.id == ccfg_id) else {
        return error_page(
            StatusCode::NOT_FOUND,
            &v.org_name,
            "This integration is not available to connect.",
            Some(&v.token),
        );
    };
    let Some(oauth) = c.oauth() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &v.org_name,
            "This integration does not connect with OAuth.",
            Some(&v.token),
        );
    };
    let config = match rec.open_secret(&state.vault) {
        Ok(c) => c.unwrap_or(json!({})),
        Err(e) => return internal(&v, e.into()),
    };
    let client_id = config["oauth"]["client_id"].as_str().unwrap_or_default().to_string();
    if client_id.is_empty() {
        return error_page(
            StatusCode::BAD_REQUEST,
            &v.org_name,
            "This integration has no OAuth client configured.",
            Some(&v.token),
        );
    }
    let overrides = &rec.data["overrides"];
    let template = overrides["authorizeUrl"].as_str().unwrap_or(&oauth.authorization_request_url);
    let (verifier, challenge) = flow::pkce_pair(&state.entropy);
    let state_id = flow::new_state(&state.entropy);
    let redirect_uri = callback_uri(&state, &headers);
    let url = match flow::authorize_url(
        oauth,
        template,
        &config,
        overrides["baseUrl"].as_str(),
        &client_id,
        &redirect_uri,
        &state_id,
        &challenge,
    ) {
        Ok(u) => u,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &v.org_name,
                &format!("This integration cannot be connected: {e}"),
                Some(&v.token),
            );
        }
    };
    let now = state.clock.now_ms();
    let pending = PendingConnect {
        org: v.org.clone(),
        customer: v.customer.clone(),
        connector_config_id: rec.id.clone(),
        connector_name: c.name.clone(),
        verifier,
        redirect_uri,
        return_url: v.options.get("return_url").and_then(Value::as_str).map(str::to_string),
        token: v.token.clone(),
        expires_at: now + flow::STATE_TTL_MS,
    };
    let write = RecordWrite {
        tenant: STATE_TENANT.into(),
        kind: STATE_KIND.into(),
        id: state_id.clone(),
        data: json!({"org": v.org, "customer": v.customer, "expiresAt": pending.expires_at}),
        secret: Some(serde_json::to_value(&pending).expect("serialises")),
    };
    if let Err(e) = state.store.create_record(&write, &state.vault, now).await {
        return internal(&v, e.into());
    }
    session_event(
        &state,
        &v.org,
        &v.customer,
        "connect.session-started",
        json!({"connector_config_id": rec.id, "connector_name": c.name}),
    )
    .await;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut().insert(header::LOCATION, url.parse().expect("a URL is a header value"));
    resp.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    resp
}

/// Takes a `state` once: the pending connect, or why there is none.
async fn take_state(
    state: &AppState,
    id: &str,
) -> Result<PendingConnect, (StatusCode, &'static str, Option<PendingConnect>)> {
    let unknown = (
        StatusCode::BAD_REQUEST,
        "This sign-in could not be matched to a connect request (it was already used, or never started). Start again.",
        None,
    );
    if id.is_empty() || id.len() > 128 {
        return Err(unknown);
    }
    let rec = match state.store.get_record(STATE_TENANT, STATE_KIND, id).await {
        Ok(Some(r)) => r,
        _ => return Err(unknown),
    };
    let pending: Option<PendingConnect> =
        rec.open_secret(&state.vault).ok().flatten().and_then(|v| serde_json::from_value(v).ok());
    // Single use: only the request that deletes it goes on.
    if !state.store.delete_record(STATE_TENANT, STATE_KIND, id).await.unwrap_or(false) {
        return Err((StatusCode::BAD_REQUEST, "This sign-in was already used. Start again.", pending));
    }
    let Some(pending) = pending else { return Err(unknown) };
    if pending.expired(state.clock.now_ms()) {
        return Err((StatusCode::BAD_REQUEST, "This sign-in took too long and expired. Start again.", Some(pending)));
    }
    Ok(pending)
}

/// Where a connect ends: `return_url` with the connection, else a success page.
fn finish(return_url: Option<&str>, token: &str, org_name: &str, conn_id: &str, connector: &str) -> Response {
    if let Some(ret) = return_url.and_then(|u| url::Url::parse(u).ok()) {
        let mut ret = ret;
        ret.query_pairs_mut().append_pair("connection_id", conn_id).append_pair("connector_name", connector);
        let mut resp = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = ret.as_str().parse() {
            resp.headers_mut().insert(header::LOCATION, v);
            return resp;
        }
    }
    page(
        StatusCode::OK,
        "Connected",
        org_name,
        &format!(
            r#"<p class="ok" role="status">Your account is connected (<code>{}</code>).</p><p><a class="button" href="/connect?token={}">Back to the connections</a></p>"#,
            esc(conn_id),
            enc(token)
        ),
    )
}

async fn callback(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let state_id = q.get("state").map(String::as_str).unwrap_or_default();
    let pending = match take_state(&state, state_id).await {
        Ok(p) => p,
        Err((status, message, pending)) => {
            return match pending {
                Some(p) => {
                    session_event(
                        &state,
                        &p.org,
                        &p.customer,
                        "connect.session-errored",
                        json!({"connector_config_id": p.connector_config_id, "error": message}),
                    )
                    .await;
                    error_page(status, &org_name(&state, &p.org).await, message, Some(&p.token))
                }
                None => error_page(status, "Connect", message, None),
            };
        }
    };
    let org_name = org_name(&state, &pending.org).await;
    let fail = |status: StatusCode, name: &'static str, message: String| {
        let (state, pending, org_name) = (state.clone(), pending.clone(), org_name.clone());
        async move {
            session_event(
                &state,
                &pending.org,
                &pending.customer,
                name,
                json!({"connector_config_id": pending.connector_config_id, "error": message}),
            )
            .await;
            error_page(status, &org_name, &message, Some(&pending.token))
        }
    };
    if let Some(error) = q.get("error") {
        let detail = q.get("error_description").map(|d| format!(" ({d})")).unwrap_or_default();
        let message = if error == "access_denied" {
            format!("You declined to connect your account{detail}.")
        } else {
            format!("The provider did not authorise the connection: {error}{detail}.")
        };
        let name = if error == "access_denied" { "connect.session-cancelled" } else { "connect.session-errored" };
        return fail(StatusCode::BAD_REQUEST, name, message).await;
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "connect.session-errored",
            "The provider sent no authorisation code.".into(),
        )
        .await;
    };
    let (Some(c), Ok(Some(cfg))) = (
        connector(&pending.connector_name),
        refresh::load_config(&state, &pending.org, &pending.connector_config_id).await,
    ) else {
        return fail(
            StatusCode::NOT_FOUND,
            "connect.session-errored",
            "This integration is no longer available.".into(),
        )
        .await;
    };
    let Some(oauth) = c.oauth() else {
        return fail(
            StatusCode::BAD_REQUEST,
            "connect.session-errored",
            "This integration does not connect with OAuth.".into(),
        )
        .await;
    };
    let client_id = cfg.config["oauth"]["client_id"].as_str().unwrap_or_default().to_string();
    let client_secret = cfg.config["oauth"]["client_secret"].as_str().unwrap_or_default().to_string();
    let template = cfg.overrides["tokenUrl"].as_str().unwrap_or(&oauth.token_request_url);
    let token_url = match catalog::render_url(template, &Value::Null, &cfg.config, cfg.overrides["baseUrl"].as_str()) {
        Ok(u) => u,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "connect.session-errored",
                format!("The token endpoint cannot be reached: {e}"),
            )
            .await;
        }
    };
    let form =
        flow::code_exchange_form(oauth, code, &pending.redirect_uri, &pending.verifier, &client_id, &client_secret);
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let req = match state.outbound.request(reqwest::Method::POST, &token_url) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                "connect.session-errored",
                format!("The token endpoint was refused: {e}"),
            )
            .await;
        }
    };
    let mut req = req
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    if oauth.client_auth == "header" {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{client_secret}"));
        req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {pair}"));
    }
    let resp = match state.outbound.send(crate::outbound::Call::OauthToken, req).await {
        Ok(r) => r,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                "connect.session-errored",
                format!("The token endpoint could not be reached: {e}"),
            )
            .await;
        }
    };
    let now = state.clock.now_ms();
    let scopes = flow::scopes(oauth, &cfg.config);
    let settings = match flow::settings_from_token_answer(
        resp.status.as_u16(),
        &resp.body,
        &client_id,
        &scopes,
        &oauth.scope_separator,
        now,
    ) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                "connect.session-errored",
                format!("The provider refused the sign-in: {e}"),
            )
            .await;
        }
    };
    let new = NewConnection {
        org: pending.org.clone(),
        connector_config_id: pending.connector_config_id.clone(),
        customer: pending.customer.clone(),
        connector_name: c.name.clone(),
        display_name: None,
        metadata: None,
    };
    match insert_connection(&state, new, "healthy".into(), None, &settings).await {
        Ok((conn, _)) => {
            session_event(
                &state,
                &pending.org,
                &pending.customer,
                "connect.session-succeeded",
                json!({"connection_id": conn.id, "connector_config_id": pending.connector_config_id}),
            )
            .await;
            finish(pending.return_url.as_deref(), &pending.token, &org_name, &conn.id, &c.name)
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "connect: storing the connection failed");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                &org_name,
                "The connection could not be saved; try again shortly.",
                Some(&pending.token),
            )
        }
    }
}

// ---------------------------------------------------- forms (API keys, …) --

/// The fields of a settings schema a form asks for: (name, label, required, secret, type).
fn fields(schema: &Value) -> Vec<(String, String, bool, bool, String)> {
    let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut out = Vec::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let ty = match &prop["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => {
                ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string").to_string()
            }
            _ => "string".into(),
        };
        if !matches!(ty.as_str(), "string" | "number" | "integer" | "boolean") {
            continue;
        }
        let label = prop["description"].as_str().or(prop["title"].as_str()).unwrap_or(name).to_string();
        let lower = name.to_ascii_lowercase();
        let secret = ["key", "secret", "token", "password"].iter().any(|s| lower.contains(s));
        out.push((name.clone(), label, required.contains(&name.as_str()), secret, ty));
    }
    out
}

fn form_html(
    v: &Visitor,
    rec: &Record,
    c: &catalog::Connector,
    values: &Map<String, Value>,
    problem: Option<&str>,
) -> String {
    let mut body = String::new();
    if let Some(p) = problem {
        body.push_str(&format!(r#"<p class="error" role="alert" id="problem">{}</p>"#, esc(p)));
    }
    body.push_str(&format!(
        r#"<form method="post" action="/connect/form"{}><input type="hidden" name="token" value="{}"><input type="hidden" name="connector_config_id" value="{}">"#,
        if problem.is_some() { r#" aria-describedby="problem""# } else { "" },
        esc(&v.token),
        esc(&rec.id)
    ));
    for (name, label, required, secret, ty) in fields(&c.schemas["connection_settings"]) {
        let id = format!("f-{}", name.replace(|ch: char| !ch.is_ascii_alphanumeric(), "-"));
        let value =
            if secret { String::new() } else { values.get(&name).and_then(Value::as_str).map(esc).unwrap_or_default() };
        let input_type = match (secret, ty.as_str()) {
            (true, _) => "password",
            (_, "number" | "integer") => "number",
            _ => "text",
        };
        body.push_str(&format!(
            r#"<label for="{id}">{}{}</label><input id="{id}" name="settings.{}" type="{input_type}" value="{value}" autocomplete="off"{}>"#,
            esc(&label),
            if required { " (required)" } else { "" },
            esc(&name),
            if required { " required" } else { "" },
        ));
    }
    body.push_str(r#"<p><button type="submit">Connect</button></p></form>"#);
    body
}

async fn form_target(
    state: &AppState,
    v: &Visitor,
    ccfg_id: &str,
) -> Result<(Record, &'static catalog::Connector), Response> {
    let configs = offered(state, v).await.map_err(|e| internal(v, e))?;
    configs.into_iter().find(|(r, c)| r.id == ccfg_id && c.oauth().is_none()).ok_or_else(|| {
        error_page(
            StatusCode::NOT_FOUND,
            &v.org_name,
            "This integration is not available to connect here.",
            Some(&v.token),
        )
    })
}

async fn form_page(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> Response {
    let v = match visitor(&state, q.get("token").map(String::as_str)).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let (rec, c) =
        match form_target(&state, &v, q.get("connector_config_id").map(String::as_str).unwrap_or_default()).await {
            Ok(t) => t,
            Err(page) => return page,
        };
    page(
        StatusCode::OK,
        &format!("Connect {}", config_label(&rec, c)),
        &v.org_name,
        &form_html(&v, &rec, c, &Map::new(), None),
    )
}

async fn submit_form(
    State(state): State<AppState>,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Response {
    let pairs = match form {
        Ok(Form(p)) => p,
        Err(r) => {
            return error_page(
                r.status(),
                "Connect",
                &format!("The request could not be read: {}", r.body_text()),
                None,
            );
        }
    };
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let v = match visitor(&state, get("token").as_deref()).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let (rec, c) = match form_target(&state, &v, &get("connector_config_id").unwrap_or_default()).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let schema = &c.schemas["connection_settings"];
    let mut settings = Map::new();
    for (name, _, _, _, ty) in fields(schema) {
        let Some(raw) = get(&format!("settings.{name}")).filter(|s| !s.is_empty()) else { continue };
        let value = match ty.as_str() {
            "number" | "integer" => raw
                .parse::<f64>()
                .ok()
                .and_then(|n| {
                    if ty == "integer" {
                        (n.fract() == 0.0).then(|| json!(n as i64))
                    } else {
                        serde_json::Number::from_f64(n).map(Value::Number)
                    }
                })
                .unwrap_or(Value::String(raw)),
            "boolean" => json!(matches!(raw.as_str(), "true" | "on" | "1")),
            _ => Value::String(raw),
        };
        settings.insert(name, value);
    }
    let title = format!("Connect {}", config_label(&rec, c));
    let settings_value = Value::Object(settings.clone());
    let issues = c.validate_settings(&settings_value, &[]);
    if let Some(first) = issues.first() {
        let at = if first.path.is_empty() { String::new() } else { format!("{}: ", first.path.join(".")) };
        let message = format!("Please check the form — {at}{}", first.message);
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &title,
            &v.org_name,
            &form_html(&v, &rec, c, &settings, Some(&message)),
        );
    }
    // A key is checked with the connector's verification before it is kept.
    let (status, message) = if c.api_key().is_some() {
        let cfg = match refresh::load_config(&state, &v.org, &rec.id).await {
            Ok(cfg) => cfg,
            Err(e) => return internal(&v, e),
        };
        let o = refresh::check(&state, c, cfg.as_ref(), &settings_value, Need::ExpiringWithin(0), None).await;
        if o.status != "healthy" {
            let why = o.status_message.unwrap_or_else(|| "the provider refused the key".into());
            session_event(
                &state,
                &v.org,
                &v.customer,
                "connect.session-errored",
                json!({"connector_config_id": rec.id, "error": why}),
            )
            .await;
            let message = format!("The provider refused these credentials: {why}");
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &title,
                &v.org_name,
                &form_html(&v, &rec, c, &settings, Some(&message)),
            );
        }
        ("healthy".to_string(), None)
    } else {
        ("unknown".to_string(), Some("Connected through the connect page without a check".to_string()))
    };
    let new = NewConnection {
        org: v.org.clone(),
        connector_config_id: rec.id.clone(),
        customer: v.customer.clone(),
        connector_name: c.name.clone(),
        display_name: None,
        metadata: None,
    };
    match insert_connection(&state, new, status, message, &settings_value).await {
        Ok((conn, _)) => {
            session_event(
                &state,
                &v.org,
                &v.customer,
                "connect.session-succeeded",
                json!({"connection_id": conn.id, "connector_config_id": rec.id}),
            )
            .await;
            let return_url = v.options.get("return_url").and_then(Value::as_str);
            finish(return_url, &v.token, &v.org_name, &conn.id, &c.name)
        }
        Err(e) => internal(&v, e),
    }
}
