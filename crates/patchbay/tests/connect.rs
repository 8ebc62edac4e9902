//! Connect, black-box over HTTP (the browser run is tests/connect_browser.rs): the
//! magic link's page, the OAuth2 authorisation code flow with PKCE against a test
//! provider that checks the verifier, single-use state, consent denied, tampered
//! links, and the API-key form checked with the connector's verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use patchbay_store::worker::Registry;
use serde_json::json;
use sha2::Digest;

mod common;
use common::{ADMIN, call};

/// A provider: /authorize redirects back with a code bound to the PKCE challenge
/// (or `access_denied` for client `deny-me`), /token checks verifier and client.
#[derive(Clone, Default)]
struct Provider {
    codes: Arc<Mutex<HashMap<String, (String, String)>>>, // code -> (challenge, redirect_uri)
    grants: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn authorize(State(p): State<Provider>, Query(q): Query<HashMap<String, String>>) -> Response {
    let back = q["redirect_uri"].clone();
    let state = q["state"].clone();
    if q["client_id"] == "deny-me" {
        return Redirect::to(&format!("{back}?error=access_denied&error_description=no&state={state}")).into_response();
    }
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    let code = format!("code-{}", p.codes.lock().unwrap().len() + 1);
    p.codes.lock().unwrap().insert(code.clone(), (q["code_challenge"].clone(), back.clone()));
    Redirect::to(&format!("{back}?code={code}&state={state}")).into_response()
}

async fn token(State(p): State<Provider>, body: String) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    p.grants.lock().unwrap().push(form.clone());
    let Some((challenge, redirect)) = p.codes.lock().unwrap().remove(&form["code"]) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": "unknown code"})),
        )
            .into_response();
    };
    let computed =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(form["code_verifier"].as_bytes()));
    if computed != challenge || redirect != form["redirect_uri"] || form["client_secret"] != "secret" {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant", "error_description": "pkce"})))
            .into_response();
    }
    axum::Json(json!({"access_token": "provider-at", "refresh_token": "provider-rt", "expires_in": 3600, "token_type": "Bearer"}))
        .into_response()
}

async fn verify_key(headers: HeaderMap) -> StatusCode {
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.strip_prefix("Basic ")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|raw| raw.ends_with(b":good-key"))
    });
    if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
}

async fn provider() -> (Provider, String) {
    let p = Provider::default();
    let app = axum::Router::new()
        .route("/authorize", axum::routing::get(authorize))
        .route("/token", axum::routing::post(token))
        .route("/acme-apikey/authorize", axum::routing::get(verify_key))
        .with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (p, url)
}

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

both_backends!(connect_oauth_pkce_and_api_key_forms, |db| {
    let (p, prov) = provider().await;
    let srv = patchbay::start(&common::config(&db, Some(ADMIN)), Registry::new()).await.unwrap();
    let base = format!("http://{}", srv.addr);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let seed = json!({"integrations": {
        "organizations": [{"id": "org_c", "name": "Acme Robotics", "apiKey": "key_org_c"}],
        "customers": [{"orgId": "org_c", "id": "cus_1"}],
        "connectorConfigs": [
            {"id": "ccfg_github_01JC", "orgId": "org_c", "connectorName": "github", "displayName": "GitHub",
             "config": {"oauth": {"client_id": "cid", "client_secret": "secret", "scopes": ["repo"]}},
             "overrides": {"authorizeUrl": format!("{prov}/authorize"), "tokenUrl": format!("{prov}/token")}},
            {"id": "ccfg_slack_01JC", "orgId": "org_c", "connectorName": "slack",
             "config": {"oauth": {"client_id": "deny-me", "client_secret": "secret"}},
             "overrides": {"authorizeUrl": format!("{prov}/authorize"), "tokenUrl": format!("{prov}/token")}},
            {"id": "ccfg_acme-apikey_01JC", "orgId": "org_c", "connectorName": "acme-apikey", "overrides": {"baseUrl": prov}},
            {"id": "ccfg_gitlab_01JC", "orgId": "org_c", "connectorName": "gitlab", "displayName": "GitLab",
             "config": {"oauth": {"client_id": "cid", "client_secret": "secret"}},
             "overrides": {"authorizeUrl": format!("{prov}/authorize"), "tokenUrl": "http://169.254.169.254/token"}},
            {"id": "ccfg_notion_01JC", "orgId": "org_c", "connectorName": "notion", "disabled": true,
             "config": {"oauth": {"client_id": "n", "client_secret": "s"}}}]
    }});
    let r = call(http.post(format!("{base}/admin/v1/seed")).bearer_auth(ADMIN).json(&seed)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(http.post(format!("{base}/v1/customer/cus_1/token")).bearer_auth("key_org_c").json(&json!({
        "connect_options": {"return_url": "https://app.example/done?x=1", "connector_names": ["github", "slack", "acme-apikey", "notion", "gitlab"]}
    })))
    .await;
    let link = r.body["magic_link_url"].as_str().unwrap().to_string();
    let token = r.body["token"].as_str().unwrap().to_string();
    assert!(link.starts_with(&format!("{base}/connect?token=")), "{link}");

    // The page: the organisation's name, the allowed enabled configs, accessible controls.
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Acme Robotics</h1>") && html.contains("lang=\"en\""), "{html}");
    assert!(html.contains("aria-label=\"Connect GitHub\"") && html.contains("aria-label=\"Connect Acme API Key\""));
    assert!(!html.contains("Notion"), "a disabled config is not offered");

    // OAuth2 with PKCE: start → provider → callback → return URL with the connection.
    let form = [("token", token.as_str()), ("connector_config_id", "ccfg_github_01JC")];
    let start = http.post(format!("{base}/connect/oauth")).form(&form).send().await.unwrap();
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let to_provider = url::Url::parse(&location(&start)).unwrap();
    let q: HashMap<String, String> = to_provider.query_pairs().into_owned().collect();
    assert!(to_provider.as_str().starts_with(&format!("{prov}/authorize?")));
    assert_eq!(q["redirect_uri"], format!("{base}/connect/callback"));
    assert_eq!((q["client_id"].as_str(), q["code_challenge_method"].as_str()), ("cid", "S256"));
    assert_eq!(q["scope"], "read:user user:email repo", "required scopes, then the configured ones, space-separated");
    let back = http.get(to_provider.as_str()).send().await.unwrap();
    let callback = location(&back);
    assert!(callback.starts_with(&format!("{base}/connect/callback?code=")), "{callback}");
    let done = http.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let ret = url::Url::parse(&location(&done)).unwrap();
    let rq: HashMap<String, String> = ret.query_pairs().into_owned().collect();
    assert_eq!((ret.host_str(), rq["x"].as_str(), rq["connector_name"].as_str()), (Some("app.example"), "1", "github"));
    let conn_id = rq["connection_id"].clone();
    let grant = p.grants.lock().unwrap()[0].clone();
    assert_eq!((grant["grant_type"].as_str(), grant["client_id"].as_str()), ("authorization_code", "cid"));
    let c =
        call(http.get(format!("{base}/v1/connection/{conn_id}?include_secrets=true")).bearer_auth("key_org_c")).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["customer_id"], "cus_1");
    assert_eq!(c.body["connector_config_id"], "ccfg_github_01JC");
    assert_eq!(c.body["status"], "healthy");
    let creds = &c.body["settings"]["oauth"]["credentials"];
    assert_eq!(
        (creds["access_token"].as_str(), creds["refresh_token"].as_str()),
        (Some("provider-at"), Some("provider-rt"))
    );
    assert_eq!(c.body["settings"]["access_token"], "provider-at");

    // The same state again: refused, with an event.
    let replay = http.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    // No state, or one never issued.
    let r = http.get(format!("{base}/connect/callback?code=x")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http.get(format!("{base}/connect/callback?code=x&state=forged")).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Consent denied at the provider.
    let form = [("token", token.as_str()), ("connector_config_id", "ccfg_slack_01JC")];
    let start = http.post(format!("{base}/connect/oauth")).form(&form).send().await.unwrap();
    assert_eq!(start.status(), 303);
    let denied = location(&http.get(location(&start)).send().await.unwrap());
    let r = http.get(&denied).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("You declined to connect your account"));

    // A token endpoint the outbound guard refuses (cloud metadata) ends on an error page.
    let form = [("token", token.as_str()), ("connector_config_id", "ccfg_gitlab_01JC")];
    let start = http.post(format!("{base}/connect/oauth")).form(&form).send().await.unwrap();
    let callback = location(&http.get(location(&start)).send().await.unwrap());
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let html = r.text().await.unwrap();
    assert!(html.contains("The token endpoint was refused"), "{html}");

    // Tampered and missing tokens end on a 401 page, never a 500.
    let mut tampered = token.clone();
    tampered.push('x');
    for t in [tampered.as_str(), "", "not.a.jwt"] {
        let r = http.get(format!("{base}/connect?token={t}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{t}");
        assert!(r.text().await.unwrap().contains("role=\"alert\""));
    }
    let r = http.post(format!("{base}/connect/oauth")).form(&[("token", tampered.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The API-key form: a bad key shows the provider's refusal, a good one connects.
    let r = http
        .get(format!("{base}/connect/form?token={token}&connector_config_id=ccfg_acme-apikey_01JC"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<label for="f-api-key">api_key (required)</label>"#), "{html}");
    assert!(html.contains(r#"type="password""#));
    let submit = |key: &'static str| {
        let token = token.clone();
        let http = http.clone();
        let url = format!("{base}/connect/form");
        async move {
            http.post(url)
                .form(&[
                    ("token", token.as_str()),
                    ("connector_config_id", "ccfg_acme-apikey_01JC"),
                    ("settings.api_key", key),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let bad = submit("bad-key").await;
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    assert!(html.contains("The provider refused these credentials") && html.contains("HTTP 401"), "{html}");
    assert!(!html.contains("bad-key"), "the key is not echoed back");
    let good = submit("good-key").await;
    assert_eq!(good.status(), 303);
    let ret = url::Url::parse(&location(&good)).unwrap();
    let key_conn = ret.query_pairs().find(|(k, _)| k == "connection_id").unwrap().1.to_string();
    let c =
        call(http.get(format!("{base}/v1/connection/{key_conn}?include_secrets=true")).bearer_auth("key_org_c")).await;
    assert_eq!(
        (c.body["settings"]["api_key"].as_str(), c.body["status"].as_str()),
        (Some("good-key"), Some("healthy"))
    );

    // What happened is in the events.
    let ev = call(http.get(format!("{base}/v1/event?limit=100")).bearer_auth("key_org_c")).await;
    let names: Vec<&str> = ev.body["items"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    for n in [
        "connect.session-started",
        "connect.session-succeeded",
        "connect.connection-connected",
        "connect.session-errored",
        "connect.session-cancelled",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    srv.shutdown().await.unwrap();
});
