//! `patchbay demo`: a throw-away SQLite database with the built-in demo seed,
//! the admin API enabled under a generated token, and a small built-in
//! partner platform so Network connections get initialised for real.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The built-in demo seed document.
pub const DEMO_SEED: &str = include_str!("../demo/seed.json");
/// The demo client's secp256k1 private key (its public key is in the demo seed).
pub const DEMO_CLIENT_PRIVATE_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";
/// The demo partner enterprise's signing key (its client record's public key is in the demo seed).
pub const DEMO_PARTNER_PRIVATE_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000002";
/// Alice's BitGo v2 access token in the demo seed: BitGoJS signs requests made with it (HMAC v2).
pub const DEMO_V2_TOKEN: &str = "v2xdeadbeef00000000000000000000000000000000000000000000000000000001";
/// The placeholder callback URL in the demo seed, replaced by the built-in partner's.
const CALLBACK_PLACEHOLDER: &str = "http://127.0.0.1:9100";
/// The placeholder OAuth2 provider URL in the demo seed, replaced by the built-in provider's.
const PROVIDER_PLACEHOLDER: &str = "http://127.0.0.1:9200";

/// A configuration for the demo rooted in `dir` (its database there unless
/// `database_url` names one); returns it with the admin token.
pub fn demo_config(
    base: &Config,
    dir: &std::path::Path,
    database_url: Option<&str>,
    partner_url: &str,
    provider_url: &str,
) -> anyhow::Result<(Config, String)> {
    let seed_path = dir.join("demo-seed.json");
    std::fs::write(
        &seed_path,
        DEMO_SEED.replace(CALLBACK_PLACEHOLDER, partner_url).replace(PROVIDER_PLACEHOLDER, provider_url),
    )?;
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = base.admin_token.clone().unwrap_or_else(|| format!("pb_admin_{}", hex::encode(raw)));
    let mut config = base.clone();
    config.seed = Some(seed_path);
    config.admin_token = Some(token.clone());
    config.key_file = None;
    match database_url {
        // A named database (PostgreSQL needs a key): a throw-away one, like the data.
        Some(url) => {
            config.database_url = url.to_string();
            config.master_keys = Some(patchbay_core::Vault::generate_spec("demo"));
        }
        None => {
            config.database_url = format!("sqlite://{}", dir.join("demo.db").display());
            config.master_keys = None;
        }
    }
    config.outbound.allow_loopback = true;
    config.data_dir = Some(dir.join("data"));
    // Export runs are simulated: they take a couple of seconds, then succeed.
    for t in ["IFC", "PDF"] {
        config.export.exporters.entry(t.into()).or_insert(patchbay_http::export::exporter::ExporterConfig::Simulate {
            delay_ms: 2_000,
            result: "Success".into(),
        });
    }
    Ok((config, token))
}

/// The built-in partner: where Patchbay is, to fetch the key that verifies its JWTs.
#[derive(Clone)]
pub struct DemoPartner {
    pub patchbay_url: Arc<OnceLock<String>>,
    pub admin_token: Arc<OnceLock<String>>,
    /// With `demo --tls`: the CA (PEM) that Patchbay's certificate chains to.
    pub patchbay_ca: Arc<OnceLock<Vec<u8>>>,
    key: Arc<tokio::sync::OnceCell<jsonwebtoken::DecodingKey>>,
}

impl DemoPartner {
    async fn key(&self) -> Option<&jsonwebtoken::DecodingKey> {
        self.key
            .get_or_try_init(|| async {
                let url = format!("{}/admin/v1/network/signing-key", self.patchbay_url.get().ok_or(())?);
                let mut client = reqwest::Client::builder();
                if let Some(ca) = self.patchbay_ca.get() {
                    client = client.add_root_certificate(reqwest::Certificate::from_pem(ca).map_err(|_| ())?);
                }
                let pem = client
                    .build()
                    .map_err(|_| ())?
                    .get(url)
                    .bearer_auth(self.admin_token.get().ok_or(())?)
                    .send()
                    .await
                    .map_err(|_| ())?
                    .text()
                    .await
                    .map_err(|_| ())?;
                jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| ())
            })
            .await
            .ok()
    }
}

/// The `X-BitGo-Signature` JWT of a call from Patchbay, verified with its public key.
async fn verified(p: &DemoPartner, headers: &HeaderMap) -> Result<(), Response> {
    let Some(key) = p.key().await else {
        return Err(
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "signing key unavailable"}))).into_response()
        );
    };
    let jwt = headers.get("x-bitgo-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    match jsonwebtoken::decode::<Value>(jwt, key, &validation) {
        Ok(_) => Ok(()),
        Err(_) => Err((StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid X-BitGo-Signature"}))).into_response()),
    }
}

/// `POST /bitgo/v1/connections` of the demo partner: verifies the
/// `X-BitGo-Signature` JWT, then answers with ids derived from the
/// connection id (so retries get the same answer).
async fn partner_connections(State(p): State<DemoPartner>, headers: HeaderMap, body: Json<Value>) -> Response {
    if let Err(refused) = verified(&p, &headers).await {
        return refused;
    }
    let (Some(client), Some(conn)) = (body["clientId"].as_str(), body["connectionId"].as_str()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "clientId and connectionId are required"})))
            .into_response();
    };
    let short = |s: &str| hex::encode(&Sha256::digest(s.as_bytes())[..6]);
    Json(json!({
        "clientId": client, "connectionId": conn,
        "partnersClientId": format!("demo-client-{}", short(client)),
        "partnersConnectionId": format!("demo-conn-{}", short(conn)),
    }))
    .into_response()
}

/// `POST /bitgo/v1/allocations` and `/deallocations` of the demo partner: the JWT
/// verified, the step acknowledged (the demo clears it with `PUT /partners/allocations`).
async fn partner_ledger(State(p): State<DemoPartner>, headers: HeaderMap, body: Json<Value>) -> Response {
    if let Err(refused) = verified(&p, &headers).await {
        return refused;
    }
    Json(json!({"received": body.0})).into_response()
}

/// Starts the demo partner on an ephemeral loopback port; returns it and its URL.
pub async fn spawn_partner() -> anyhow::Result<(DemoPartner, String)> {
    let partner = DemoPartner {
        patchbay_url: Arc::new(OnceLock::new()),
        patchbay_ca: Arc::new(OnceLock::new()),
        admin_token: Arc::new(OnceLock::new()),
        key: Arc::new(tokio::sync::OnceCell::new()),
    };
    let app = axum::Router::new()
        .route("/bitgo/v1/connections", axum::routing::post(partner_connections))
        .route("/bitgo/v1/allocations", axum::routing::post(partner_ledger))
        .route("/bitgo/v1/deallocations", axum::routing::post(partner_ledger))
        .with_state(partner.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((partner, url))
}

/// The built-in OAuth2 provider's token endpoint: every refresh_token grant
/// succeeds with a new, rotated token pair valid for an hour.
/// Codes the demo provider issued: code → (PKCE challenge, redirect URI).
type Codes = Arc<std::sync::Mutex<std::collections::HashMap<String, (String, String)>>>;

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The demo provider's consent page (`GET /authorize`): Allow or Deny, for a browser.
async fn provider_authorize(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let hidden: String = ["redirect_uri", "state", "code_challenge", "code_challenge_method", "client_id", "scope"]
        .iter()
        .map(|k| {
            format!(
                r#"<input type="hidden" name="{k}" value="{}">"#,
                html_escape(q.get(*k).map(String::as_str).unwrap_or(""))
            )
        })
        .collect();
    let scope = html_escape(q.get("scope").map(String::as_str).unwrap_or(""));
    axum::response::Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo provider: consent</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem;margin-right:.5rem}}button:focus{{outline:3px solid #f5a623}}</style></head>
<body><h1>Demo provider</h1><p>An application asks to access your account (scopes: <code>{scope}</code>).</p>
<form method="post" action="/authorize">{hidden}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form></body></html>"#
    ))
    .into_response()
}

/// The consent's answer: back to the client with a code (bound to the PKCE challenge) or
/// `error=access_denied`.
async fn provider_decide(State(codes): State<Codes>, body: String) -> Response {
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let (Some(back), Some(state)) = (form.get("redirect_uri"), form.get("state")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri and state are required").into_response();
    };
    let Ok(mut url) = reqwest::Url::parse(back) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    if form.get("decision").map(String::as_str) == Some("allow") {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let code = format!("demo-code-{}", hex::encode(raw));
        let challenge = form.get("code_challenge").cloned().unwrap_or_default();
        codes.lock().expect("not poisoned").insert(code.clone(), (challenge, back.clone()));
        url.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
    } else {
        url.query_pairs_mut().append_pair("error", "access_denied").append_pair("state", state);
    }
    axum::response::Redirect::to(url.as_str()).into_response()
}

async fn provider_token(State(codes): State<Codes>, body: String) -> Response {
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {}
        Some("authorization_code") => {
            use base64::Engine;
            let code = form.get("code").cloned().unwrap_or_default();
            let issued = codes.lock().expect("not poisoned").remove(&code);
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let valid = issued.is_some_and(|(challenge, redirect)| {
                challenge == computed && form.get("redirect_uri") == Some(&redirect)
            });
            if !valid {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid_grant", "error_description": "unknown code or PKCE mismatch"})),
                )
                    .into_response();
            }
        }
        _ => return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response(),
    }
    let mut raw = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let n = hex::encode(raw);
    Json(json!({"access_token": format!("demo-at-{n}"), "refresh_token": format!("demo-rt-{n}"),
                "token_type": "bearer", "expires_in": 3600}))
    .into_response()
}

/// The built-in API-key verification endpoint of `acme-apikey` (`/acme-apikey/authorize`,
/// the key as the Basic password, as upstream's definition says).
async fn provider_models(headers: HeaderMap) -> StatusCode {
    use base64::Engine;
    let password = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, p)| p.to_string()));
    match password.as_deref() {
        Some("demo-api-key") => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// A magic link for the demo customer `cus_1` (`POST /v1/customer/cus_1/token` as the demo
/// organisation): opened in a browser, it connects GitHub through the demo provider's
/// consent page. `ca` is the self-signed CA with `demo --tls`.
pub async fn magic_link(url: &str, ca: Option<&[u8]>) -> Option<String> {
    let mut client = reqwest::Client::builder();
    if let Some(ca) = ca {
        client = client.add_root_certificate(reqwest::Certificate::from_pem(ca).ok()?);
    }
    let answer: Value = client
        .build()
        .ok()?
        .post(format!("{url}/v1/customer/cus_1/token"))
        .bearer_auth("key_demo_org_1")
        .json(&json!({"validity_in_seconds": 86400, "connect_options": {"connector_names": ["github", "acme-apikey"]}}))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    answer["magic_link_url"].as_str().map(str::to_string)
}

/// Starts the demo OAuth2 provider on an ephemeral loopback port; returns its URL.
pub async fn spawn_provider() -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/authorize", axum::routing::get(provider_authorize).post(provider_decide))
        .route("/token", axum::routing::post(provider_token))
        .route("/acme-apikey/authorize", axum::routing::get(provider_models))
        .with_state(Codes::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// Signed curls of the OES ledger: allocate on the instant partner's desk (cleared at
/// once), settle it, and read the balances. The bodies are signed here with the demo
/// keys (deterministic signatures); run again, each answers as it did the first time.
fn ledger_curls(net: &str) -> String {
    use patchbay_core::network::sign_message;
    let desk = "c0a80101-0000-4000-8000-000000000002";
    let alloc = format!(
        r#"{{"connectionId":"{desk}","amount":{{"currency":"ofcusd","quantity":"25000"}},"clientExternalId":"demo-alloc-1","nonce":"demo-alloc-nonce-1"}}"#
    );
    let alloc_sig = sign_message(alloc.as_bytes(), DEMO_CLIENT_PRIVATE_KEY).unwrap_or_default();
    let alloc_body = json!({"amount": {"currency": "ofcusd", "quantity": "25000"}, "clientExternalId": "demo-alloc-1",
        "nonce": "demo-alloc-nonce-1", "payload": alloc, "signature": alloc_sig});
    let settle = format!(
        r#"{{"externalId":"demo-settlement-1","settlementAmounts":{{"{desk}":{{"ofcusd":"-10000"}}}},"nonce":"demo-settle-nonce-1"}}"#
    );
    let settle_sig = sign_message(settle.as_bytes(), DEMO_PARTNER_PRIVATE_KEY).unwrap_or_default();
    let settle_body = json!({"externalId": "demo-settlement-1", "settlementAmounts": {desk: {"ofcusd": "-10000"}},
        "nonce": "demo-settle-nonce-1", "payload": settle, "signature": settle_sig});
    format!(
        r#"  # Network ledger: allocate 25000 ofcusd to the instant partner's desk (signed by alice's key) ...
  curl -s -X POST {net}/ent-acme/clients/connections/{desk}/allocations -H 'Authorization: Bearer alice-token-1' \
       -H 'Content-Type: application/json' -d '{alloc_body}'
  # ... the partner settles: the desk pays it 10000 (signed by the partner's key) ...
  curl -s -X POST {net}/ent-exchange/partners/settlements -H 'Authorization: Bearer erin-token-1' \
       -H 'Content-Type: application/json' -d '{settle_body}'
  # ... and the balances show both
  curl -s {net}/ent-acme/clients/balances -H 'Authorization: Bearer alice-token-1'"#
    )
}

/// The banner printed once the demo listens.
/// `database` is `None` for the temporary SQLite file in `dir`, else a named one.
pub fn banner(
    url: &str,
    admin_token: &str,
    dir: &std::path::Path,
    database: Option<&str>,
    partner_url: &str,
    provider_url: &str,
    magic_link: Option<&str>,
) -> String {
    let connect = match magic_link {
        Some(link) => format!(
            "Connect in a browser (customer cus_1: GitHub through the demo provider's consent page, or the\n\
             API-key form with key demo-api-key; docs/connect.md):\n  {link}\n\n"
        ),
        None => String::new(),
    };
    let db = match database {
        None => format!("database (temporary): {}", dir.join("demo.db").display()),
        // The URL may carry a password: it is not printed.
        Some(_) => "database:             the one named by --database-url (kept)".to_string(),
    };
    let net = format!("{url}/api/network/v1/enterprises");
    let ledger = ledger_curls(&net);
    format!(
        r#"
Patchbay demo is running at {url}
  {db}
  admin token:          {admin_token}
  demo partner:         {partner_url} (answers POST /bitgo/v1/connections, verifying the JWT)
  demo OAuth2 provider: {provider_url} (token endpoint of the demo connector configs)

Demo principals (from the built-in seed):
  Network      (BitGo OES)   Authorization: Bearer alice-token-1   enterprise ent-acme (client; signing key {DEMO_CLIENT_PRIVATE_KEY})
                             BitGo v2 token {DEMO_V2_TOKEN} (alice; BitGoJS signs with it: HMAC v2)
                             Authorization: Bearer erin-token-1    enterprise ent-exchange (partner)
  Export       (iTwin)       Authorization: Bearer bob-token-1     iTwin 5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04
  Integrations (OpenInt)     Authorization: Bearer key_demo_org_1  organisation org_demo
                             Authorization: Bearer key_cus_demo_1  customer cus_1
                             X-Replit-Token: repl demo-repl-identity  customer cus_1 (connector gateway)

Try:
  curl -s {url}/healthz
  curl -s {url}/metrics | head -20
  # Network, seed 001: get a client connection
  curl -s {net}/ent-acme/clients/connections/c0a80101-0000-4000-8000-000000000001 -H 'Authorization: Bearer alice-token-1'
  # Network, seed 000: list partner connections (with filters and paging)
  curl -s '{net}/ent-exchange/partners/connections?active=true&pageSize=10&pageNumber=0' -H 'Authorization: Bearer erin-token-1'
  # Network with BitGo's v2 HMAC authentication, signed and verified by npm @bitgo/sdk-hmac
  # (npm ci --prefix tools/bitgo first):
  PATCHBAY_URL={url} BITGO_TOKEN={DEMO_V2_TOKEN} node tools/bitgo/sdk-hmac-check.js
  # Network: the payload a client signs to connect to the demo partner
  curl -s -X POST {net}/ent-acme/clients/connections/signing -H 'Authorization: Bearer alice-token-1' \
       -H 'Content-Type: application/json' \
       -d '{{"partnerId":"9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02","name":"Desk 2","nonce":"demo-2","connectionKey":{{"schema":"token","connectionToken":"tok-2"}}}}'
{ledger}
  # Export, seed 002: list the export connections of an iModel
  curl -s '{url}/export/connections?imodelId=7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d05' -H 'Authorization: Bearer bob-token-1'
  # Export: start a run (202 + Location), then watch it reach Completed
  curl -si -X POST {url}/export/connections/exc-nightly-ifc/runs -H 'Authorization: Bearer bob-token-1' \
       -H 'Content-Type: application/json' -d '{{"exportType":"IFC","ifcVersion":"IFC4.3"}}' | grep -i '^location'
  curl -s {url}/export/connections/exc-nightly-ifc/runs -H 'Authorization: Bearer bob-token-1'
  # Integrations, seed 003: get a connection; its expired token is refreshed by the demo provider
  curl -s '{url}/v1/connection/conn_github_01JDEMO000000000000000000?include_secrets=true' -H 'Authorization: Bearer key_demo_org_1'
  curl -s '{url}/v1/connection?limit=10' -H 'Authorization: Bearer key_demo_org_1'
  curl -s -X POST {url}/v1/connection/conn_acme-apikey_01JDEMO000000000000000000/check -H 'Authorization: Bearer key_cus_demo_1'
  # Integrations v2 as a connector-gateway client reads it (items[0].settings.access_token, .expires_at)
  curl -s '{url}/api/v2/connection?include_secrets=true&connector_names=github' -H 'X-Replit-Token: repl demo-repl-identity'
  # Admin: apply more seed
  curl -s -X POST {url}/admin/v1/seed -H 'Authorization: Bearer {admin_token}' \
       -d '{{"integrations":{{"organizations":[{{"id":"org_two","name":"Second Org","apiKey":"key_two"}}]}}}}'

{connect}Press Ctrl-C to stop; temporary files are removed.
"#,
    )
}
