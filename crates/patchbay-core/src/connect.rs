//! Connect (the hosted page where customers link their accounts): the OAuth2
//! authorisation-code flow's rules — PKCE (RFC 7636, S256), the single-use
//! `state`, the authorisation URL as the connector defines it, and the
//! credentials a token answer becomes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::integrations::{OAuthDef, render_url};

/// How long a `state` (and its PKCE verifier) may wait for the provider's callback.
pub const STATE_TTL_MS: i64 = 10 * 60 * 1000;

/// A PKCE verifier (43 characters of base64url from 32 random bytes) and its S256 challenge.
pub fn pkce_pair(entropy: &crate::Entropy) -> (String, String) {
    let raw = entropy.bytes::<32>();
    let verifier = URL_SAFE_NO_PAD.encode(raw);
    let challenge = pkce_challenge(&verifier);
    (verifier, challenge)
}

/// `BASE64URL(SHA256(verifier))`, the S256 code challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A new `state` value: 32 random bytes, base64url.
pub fn new_state(entropy: &crate::Entropy) -> String {
    let raw = entropy.bytes::<32>();
    URL_SAFE_NO_PAD.encode(raw)
}

/// What a `state` stands for until the callback: stored sealed, taken once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingConnect {
    pub org: String,
    pub customer: String,
    pub connector_config_id: String,
    pub connector_name: String,
    pub verifier: String,
    pub redirect_uri: String,
    /// Where the customer goes afterwards (the connect options' `return_url`), if anywhere.
    pub return_url: Option<String>,
    /// The customer token the page was opened with, to go back to it on an error page.
    pub token: String,
    pub expires_at: i64,
}

impl PendingConnect {
    pub fn expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at
    }
}

/// The scopes to ask for: the config's (`config.oauth.scopes`, a list or a string split
/// on the separator or commas), else the connector's default scopes; the connector's
/// required scopes always, each once, in that order.
pub fn scopes(oauth: &OAuthDef, config: &Value) -> Vec<String> {
    let configured: Vec<String> = match &config["oauth"]["scopes"] {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Value::String(s) => s
            .split(|c: char| c == ',' || oauth.scope_separator.contains(c) || c.is_whitespace())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let base = if configured.is_empty() { oauth.openint_default_scopes.clone() } else { configured };
    let mut out: Vec<String> = Vec::new();
    for s in oauth.required_scopes.iter().chain(base.iter()) {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The provider's authorisation URL for a connect: the connector's (or the config's
/// `authorizeUrl` override), its template filled, with `response_type=code`,
/// `client_id`, `redirect_uri`, the scopes joined by the connector's separator, `state`,
/// the S256 challenge and the connector's extra authorise parameters.
#[allow(clippy::too_many_arguments)]
pub fn authorize_url(
    oauth: &OAuthDef,
    template: &str,
    config: &Value,
    base_api: Option<&str>,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> Result<String, String> {
    let base = render_url(template, &Value::Null, config, base_api)?;
    let mut url = url::Url::parse(&base).map_err(|e| format!("the authorisation URL {base:?} is invalid: {e}"))?;
    let scopes = scopes(oauth, config);
    {
        let mut q = url.query_pairs_mut();
        if let Some(Value::Object(extra)) = oauth.params_config.as_ref().map(|p| &p["authorize"]) {
            for (k, v) in extra {
                if let Some(v) = v.as_str().map(str::to_string).or_else(|| v.as_number().map(|n| n.to_string())) {
                    q.append_pair(k, &v);
                }
            }
        }
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client_id);
        q.append_pair("redirect_uri", redirect_uri);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(&oauth.scope_separator));
        }
        q.append_pair("state", state);
        q.append_pair("code_challenge", challenge);
        q.append_pair("code_challenge_method", "S256");
    }
    Ok(url.to_string())
}

/// The form of the authorisation-code exchange (RFC 6749 §4.1.3 with RFC 7636's verifier);
/// the client's credentials go in the form unless the connector authenticates by header.
pub fn code_exchange_form(
    oauth: &OAuthDef,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    client_id: &str,
    client_secret: &str,
) -> Vec<(String, String)> {
    let mut form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".to_string(), code.to_string()),
        ("redirect_uri".to_string(), redirect_uri.to_string()),
        ("code_verifier".to_string(), verifier.to_string()),
    ];
    if oauth.client_auth != "header" {
        form.push(("client_id".into(), client_id.into()));
        form.push(("client_secret".into(), client_secret.into()));
    }
    if let Some(Value::Object(extra)) = oauth.params_config.as_ref().map(|p| &p["token"]) {
        for (k, v) in extra {
            if let Some(v) = v.as_str()
                && !form.iter().any(|(f, _)| f == k)
            {
                form.push((k.clone(), v.to_string()));
            }
        }
    }
    form
}

/// A token endpoint's answer as the connection's settings
/// (`oauth.credentials` as the rest of the face stores them, with the top-level mirror),
/// or the provider's refusal (`error: description`, or the HTTP status).
pub fn settings_from_token_answer(
    status: u16,
    body: &[u8],
    client_id: &str,
    scopes: &[String],
    separator: &str,
    now_ms: i64,
) -> Result<Value, String> {
    let parsed: Map<String, Value> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_else(|| form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), json!(v))).collect());
    let token = parsed.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
    let (true, Some(token)) = ((200..300).contains(&status), token) else {
        let error = parsed.get("error").and_then(Value::as_str).unwrap_or("");
        let description = parsed.get("error_description").and_then(Value::as_str).unwrap_or("");
        return Err(match (error, description) {
            ("", _) => format!("the token endpoint answered HTTP {status} without an access token"),
            (e, "") => e.to_string(),
            (e, d) => format!("{e}: {d}"),
        });
    };
    let mut creds = json!({"access_token": token, "client_id": client_id, "raw": parsed});
    for k in ["refresh_token", "token_type"] {
        if let Some(v) = parsed.get(k).and_then(Value::as_str) {
            creds[k] = json!(v);
        }
    }
    let scope =
        parsed.get("scope").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| scopes.join(separator));
    if !scope.is_empty() {
        creds["scope"] = json!(scope);
    }
    if let Some(secs) =
        parsed.get("expires_in").and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
    {
        creds["expires_in"] = json!(secs);
        creds["expires_at"] = json!(crate::network::timestamp(now_ms + secs * 1000));
    }
    let mut settings = json!({"oauth": {"credentials": creds}});
    crate::integrations::mirror_credentials(&mut settings);
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(separator: &str, client_auth: &str) -> OAuthDef {
        OAuthDef {
            authorization_request_url: "https://provider.example/authorize".into(),
            token_request_url: "https://provider.example/token".into(),
            scope_separator: separator.into(),
            client_auth: client_auth.into(),
            params_config: Some(json!({"authorize": {"access_type": "offline", "prompt": "consent"}, "token": {}})),
            required_scopes: vec!["openid".into()],
            openint_default_scopes: vec!["read".into(), "openid".into()],
            openint_allowed_scopes: vec![],
            scopes: vec![],
        }
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let e = crate::Entropy::system();
        let (v, c) = pkce_pair(&e);
        assert_eq!(v.len(), 43);
        assert_eq!(c, pkce_challenge(&v));
        assert_ne!(new_state(&e), new_state(&e));
    }

    #[test]
    fn scopes_are_required_then_configured_or_default_once_each() {
        let o = oauth(",", "body");
        assert_eq!(scopes(&o, &json!({})), ["openid", "read"]);
        assert_eq!(scopes(&o, &json!({"oauth": {"scopes": ["repo", "openid"]}})), ["openid", "repo"]);
        assert_eq!(scopes(&o, &json!({"oauth": {"scopes": "a,b c"}})), ["openid", "a", "b", "c"]);
    }

    #[test]
    fn the_authorize_url_carries_the_flow_and_the_connectors_parameters() {
        let o = oauth(",", "body");
        let url = authorize_url(
            &o,
            &o.authorization_request_url,
            &json!({"oauth": {"scopes": ["x", "y"]}}),
            None,
            "cid",
            "https://pb.example/connect/callback",
            "st",
            "ch",
        )
        .unwrap();
        assert_eq!(
            url,
            "https://provider.example/authorize?access_type=offline&prompt=consent&response_type=code&client_id=cid\
             &redirect_uri=https%3A%2F%2Fpb.example%2Fconnect%2Fcallback&scope=openid%2Cx%2Cy&state=st\
             &code_challenge=ch&code_challenge_method=S256"
        );
        let e = authorize_url(&o, "https://${connection_settings.sub}.x/a", &json!({}), None, "c", "r", "s", "h");
        assert!(e.unwrap_err().contains("connection_settings.sub"));
    }

    #[test]
    fn the_code_exchange_sends_the_verifier_and_the_client_as_the_connector_says() {
        let body = code_exchange_form(&oauth(" ", "body"), "code1", "https://r", "ver", "cid", "sec");
        let keys: Vec<&str> = body.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret"]);
        let header = code_exchange_form(&oauth(" ", "header"), "code1", "https://r", "ver", "cid", "sec");
        assert!(!header.iter().any(|(k, _)| k == "client_secret"));
    }

    #[test]
    fn token_answers_become_credentials_or_the_providers_refusal() {
        let s = settings_from_token_answer(
            200,
            br#"{"access_token":"at","refresh_token":"rt","expires_in":3600,"token_type":"Bearer"}"#,
            "cid",
            &["a".into(), "b".into()],
            " ",
            1_767_225_600_000,
        )
        .unwrap();
        let c = &s["oauth"]["credentials"];
        assert_eq!((c["access_token"].as_str(), c["refresh_token"].as_str()), (Some("at"), Some("rt")));
        assert_eq!(c["expires_at"], "2026-01-01T01:00:00.000Z");
        assert_eq!(c["scope"], "a b");
        assert_eq!(
            (s["access_token"].as_str(), s["expires_at"].as_str()),
            (Some("at"), Some("2026-01-01T01:00:00.000Z"))
        );
        let form = settings_from_token_answer(200, b"access_token=f&scope=s", "cid", &[], " ", 0).unwrap();
        assert_eq!(form["oauth"]["credentials"]["scope"], "s");
        let e = settings_from_token_answer(
            400,
            br#"{"error":"invalid_grant","error_description":"bad code"}"#,
            "c",
            &[],
            " ",
            0,
        );
        assert_eq!(e.unwrap_err(), "invalid_grant: bad code");
        let e = settings_from_token_answer(500, b"oops", "c", &[], " ", 0);
        assert!(e.unwrap_err().contains("HTTP 500"));
    }
}
