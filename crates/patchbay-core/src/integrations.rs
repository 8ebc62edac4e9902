//! Integrations face domain (OpenInt): the built-in connector catalogue
//! (`connectors/catalogue.json`), each connector's JSON Schemas, validation
//! against them, and ids.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

const CATALOGUE: &str = include_str!("../connectors/catalogue.json");

#[derive(Debug, Clone, Deserialize)]
pub struct OAuthDef {
    /// May hold placeholders (`${connection_settings.x}`, `{{baseURLs.api}}`): see [`render_url`].
    pub authorization_request_url: String,
    pub token_request_url: String,
    pub scope_separator: String,
    /// `body` (client_id/client_secret form fields) or `header` (HTTP Basic).
    pub client_auth: String,
    /// Upstream's extra authorise/token parameters, as data.
    #[serde(default)]
    pub params_config: Option<Value>,
    pub required_scopes: Vec<String>,
    pub openint_default_scopes: Vec<String>,
    pub openint_allowed_scopes: Vec<String>,
    pub scopes: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Verification {
    pub method: String,
    pub endpoint: String,
    /// `header_bearer` or `header_basic_password`.
    pub api_key_location: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyDef {
    pub base_url: String,
    pub verification: Verification,
}

#[derive(Debug, Clone, Deserialize)]
struct RawSchemas {
    connector_config: Value,
    connection_settings: Value,
}

#[derive(Debug, Clone, Deserialize)]
struct RawConnector {
    name: String,
    display_name: String,
    stage: Option<String>,
    platforms: Vec<String>,
    auth_type: String,
    confirmed: bool,
    oauth: Option<OAuthDef>,
    api_key: Option<ApiKeyDef>,
    schemas: RawSchemas,
}

#[derive(Debug, Deserialize)]
struct RawCatalogue {
    aliases: BTreeMap<String, String>,
    connectors: Vec<RawConnector>,
}

/// A connector with its compiled schemas.
pub struct Connector {
    pub name: String,
    pub display_name: String,
    pub stage: Option<String>,
    pub platforms: Vec<String>,
    pub auth_type: String,
    /// Whether upstream's source gave this connector's auth definition.
    pub confirmed: bool,
    oauth: Option<OAuthDef>,
    api_key: Option<ApiKeyDef>,
    /// All seven schema keys, as served.
    pub schemas: Value,
    config_validator: jsonschema::Validator,
    settings_validator: jsonschema::Validator,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("name", &self.name).finish()
    }
}

/// One problem found by schema validation: a JSON path (as an array) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: Vec<String>,
    pub message: String,
}

fn issues(v: &jsonschema::Validator, value: &Value, prefix: &[&str]) -> Vec<Issue> {
    v.iter_errors(value)
        .map(|e| {
            let mut path: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
            let pointer = e.instance_path.to_string();
            path.extend(pointer.split('/').filter(|s| !s.is_empty()).map(str::to_string));
            Issue { path, message: e.to_string() }
        })
        .collect()
}

impl Connector {
    pub fn oauth(&self) -> Option<&OAuthDef> {
        self.oauth.as_ref()
    }
    pub fn api_key(&self) -> Option<&ApiKeyDef> {
        self.api_key.as_ref()
    }
    pub fn validate_config(&self, config: &Value, prefix: &[&str]) -> Vec<Issue> {
        issues(&self.config_validator, config, prefix)
    }
    pub fn validate_settings(&self, settings: &Value, prefix: &[&str]) -> Vec<Issue> {
        issues(&self.settings_validator, settings, prefix)
    }
}

fn build(raw: RawConnector) -> Connector {
    let RawSchemas { connector_config: config, connection_settings: settings } = raw.schemas;
    let open = json!({"type": "object"});
    let schemas = json!({
        "connector_config": config,
        "connection_settings": settings,
        "integration_data": open,
        "webhook_input": open,
        "pre_connect_input": open,
        "connect_input": open,
        "connect_output": settings,
    });
    // Formats (`uri`, `date-time`, `email` …) are assertions here, not annotations: the
    // spec's schemas state them and clients rely on them.
    let compile = |schema: &Value| {
        jsonschema::options().should_validate_formats(true).build(schema).expect("catalogue schemas compile")
    };
    let (config_validator, settings_validator) = (compile(&config), compile(&settings));
    Connector {
        name: raw.name,
        display_name: raw.display_name,
        stage: raw.stage,
        platforms: raw.platforms,
        auth_type: raw.auth_type,
        confirmed: raw.confirmed,
        oauth: raw.oauth,
        api_key: raw.api_key,
        schemas,
        config_validator,
        settings_validator,
    }
}

struct Loaded {
    connectors: Vec<Connector>,
    aliases: BTreeMap<String, String>,
}

fn loaded() -> &'static Loaded {
    static C: OnceLock<Loaded> = OnceLock::new();
    C.get_or_init(|| {
        let raw: RawCatalogue = serde_json::from_str(CATALOGUE).expect("connectors/catalogue.json is valid");
        let mut connectors: Vec<Connector> = raw.connectors.into_iter().map(build).collect();
        connectors.sort_by(|a, b| a.name.cmp(&b.name));
        Loaded { connectors, aliases: raw.aliases }
    })
}

/// The catalogue (upstream's connectors), ordered by name.
pub fn catalogue() -> &'static [Connector] {
    &loaded().connectors
}

/// Names Patchbay used before it carried upstream's catalogue, and the upstream
/// connector each stands for.
pub fn aliases() -> &'static BTreeMap<String, String> {
    &loaded().aliases
}

/// A connector by its upstream name or a documented alias.
pub fn connector(name: &str) -> Option<&'static Connector> {
    let all = catalogue();
    let name = aliases().get(name).map(String::as_str).unwrap_or(name);
    all.binary_search_by(|c| c.name.as_str().cmp(name)).ok().map(|i| &all[i])
}

/// Fills a URL template's placeholders, as upstream writes them:
/// `${connection_settings.<key>}` and `{{connectionSettings.<key>}}` from the
/// connection's settings, `${connector_config.<key>}` / `{{connectorConfig.<key>}}`
/// from the connector config, and `{{baseURLs.api}}` from `base_api`. A
/// placeholder without a value is an error naming it; so is a value that would
/// change the URL's structure (`/`, `?`, `#`, `@` or whitespace inside a host-like part).
pub fn render_url(template: &str, settings: &Value, config: &Value, base_api: Option<&str>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    loop {
        let dollar = rest.find("${");
        let braces = rest.find("{{");
        let (start, open, close) = match (dollar, braces) {
            (None, None) => break,
            (Some(d), Some(b)) if b < d => (b, 2, "}}"),
            (Some(d), _) => (d, 2, "}"),
            (None, Some(b)) => (b, 2, "}}"),
        };
        out.push_str(&rest[..start]);
        let after = &rest[start + open..];
        let end = after.find(close).ok_or_else(|| format!("unclosed placeholder in {template:?}"))?;
        let key = after[..end].trim();
        let value = match key.split_once('.') {
            Some(("baseURLs", "api")) => base_api.map(|b| b.trim_end_matches('/').to_string()),
            Some(("connection_settings" | "connectionSettings", k)) => lookup(settings, k),
            Some(("connector_config" | "connectorConfig", k)) => lookup(config, k),
            _ => None,
        }
        .ok_or_else(|| format!("the URL needs {key}, which is not set"))?;
        if key != "baseURLs.api"
            && value.chars().any(|c| matches!(c, '/' | '?' | '#' | '@' | '\\') || c.is_whitespace())
        {
            return Err(format!("{key} must not contain '/', '?', '#', '@', '\\' or whitespace"));
        }
        out.push_str(&value);
        rest = &after[end + close.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(v: &Value, dotted: &str) -> Option<String> {
    let mut cur = v;
    for part in dotted.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a connector-config key names a secret (a client secret, an API key, a
/// token, a password, a private key or certificate): customers never see those.
fn is_secret_key(key: &str) -> bool {
    let k: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    k.contains("secret")
        || k.contains("password")
        || k.contains("private")
        || k.ends_with("apikey")
        || k.ends_with("token")
        || k == "cert"
        || k == "key"
}

/// A connector config as a customer may see it: every secret-named key removed, at any depth.
pub fn public_config(config: &Value) -> Value {
    match config {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !is_secret_key(k)).map(|(k, v)| (k.clone(), public_config(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(public_config).collect()),
        other => other.clone(),
    }
}

/// Copies an OAuth connection's `oauth.credentials.access_token` and `expires_at` to
/// the top of its settings, where connector-gateway clients read them
/// (`settings.access_token`, `settings.expires_at`); a stale top-level `expires_at`
/// goes when the credentials no longer carry one. Settings without OAuth
/// credentials are left as they are.
pub fn mirror_credentials(settings: &mut Value) {
    let creds = &settings["oauth"]["credentials"];
    let Some(token) = creds["access_token"].as_str().map(str::to_string) else { return };
    let expires_at = creds.get("expires_at").filter(|v| v.is_string()).cloned();
    let Some(top) = settings.as_object_mut() else { return };
    top.insert("access_token".into(), Value::String(token));
    match expires_at {
        Some(at) => top.insert("expires_at".into(), at),
        None => top.remove("expires_at"),
    };
}

/// `<prefix>_<connector>_<ULID>` (the ULID's time is `now_ms`, the clock's).
pub fn new_id(entropy: &crate::Entropy, now_ms: i64, prefix: &str, connector: &str) -> String {
    format!("{prefix}_{connector}_{}", entropy.ulid(now_ms))
}

/// A new ULID (uppercase Crockford base32) at `now_ms`.
pub fn ulid(entropy: &crate::Entropy, now_ms: i64) -> String {
    entropy.ulid(now_ms).to_string()
}

/// The connector name inside a `conn_<name>_…` or `ccfg_<name>_…` id.
pub fn connector_of_id(id: &str) -> Option<&str> {
    let mut parts = id.splitn(3, '_');
    let _prefix = parts.next()?;
    let name = parts.next()?;
    parts.next()?;
    (!name.is_empty()).then_some(name)
}

/// The catalogue name of the connector a `conn_…` / `ccfg_…` id names (aliases resolved).
pub fn connector_name_of_id(id: &str) -> Option<&'static str> {
    connector_of_id(id).and_then(connector).map(|c| c.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_mirrored_where_gateway_clients_read_them() {
        let mut s = json!({"oauth": {"credentials": {"access_token": "a", "expires_at": "2026-01-01T00:00:00.000Z"}}});
        mirror_credentials(&mut s);
        assert_eq!(s["access_token"], "a");
        assert_eq!(s["expires_at"], "2026-01-01T00:00:00.000Z");
        s["oauth"]["credentials"] = json!({"access_token": "b"});
        mirror_credentials(&mut s);
        assert_eq!((s["access_token"].as_str(), s.get("expires_at")), (Some("b"), None));
        let mut key = json!({"api_key": "k"});
        mirror_credentials(&mut key);
        assert_eq!(key, json!({"api_key": "k"}));
    }

    #[test]
    fn customers_see_configs_without_secrets() {
        let config = json!({
            "oauth": {"client_id": "cid", "client_secret": "cs", "scopes": ["a"], "redirect_uri": null},
            "apiKey": "k", "developer_secret": "d", "accessToken": "t", "proxy": {"url": "u", "cert": "c"},
            "envName": "sandbox", "clientId": "x", "clientSecret": "y", "publicToken": "p", "token": "z"
        });
        assert_eq!(
            public_config(&config),
            json!({"oauth": {"client_id": "cid", "scopes": ["a"], "redirect_uri": null},
                   "proxy": {"url": "u"}, "envName": "sandbox", "clientId": "x"})
        );
        assert_eq!(public_config(&json!({})), json!({}));
    }

    #[test]
    fn catalogue_is_upstreams_171_connectors_with_their_auth() {
        let all = catalogue();
        assert_eq!(all.len(), 171);
        let gh = connector("github").unwrap();
        let o = gh.oauth().unwrap();
        assert_eq!(o.authorization_request_url, "https://github.com/login/oauth/authorize");
        assert_eq!(o.token_request_url, "https://github.com/login/oauth/access_token");
        assert_eq!(connector("slack").unwrap().oauth().unwrap().scope_separator, ",");
        assert_eq!(connector("pennylane").unwrap().oauth().unwrap().scope_separator, "+");
        assert_eq!(connector("notion").unwrap().oauth().unwrap().client_auth, "header");
        assert_eq!(
            connector("acme-apikey").unwrap().api_key().unwrap().verification.endpoint,
            "/acme-apikey/authorize"
        );
        assert_eq!(connector("airtable").unwrap().auth_type, "CUSTOM");
        assert!(connector("airtable").unwrap().oauth().is_none());
        // Documented aliases resolve to the upstream connector; removed names are gone.
        assert_eq!(connector("google-sheets").unwrap().name, "google-sheet");
        assert_eq!(connector("microsoft-sharepoint").unwrap().name, "sharepoint");
        for gone in ["openai", "resend", "sendgrid", "mailgun", "microsoft-teams", "nope"] {
            assert!(connector(gone).is_none(), "{gone}");
        }
        let oauth2 = all.iter().filter(|c| c.auth_type == "OAUTH2").count();
        assert_eq!(oauth2, 142);
        for c in all {
            assert!(!c.name.contains('_'), "{}", c.name);
            assert_eq!(c.auth_type == "OAUTH2", c.oauth().is_some(), "{}", c.name);
            for k in [
                "connector_config",
                "connection_settings",
                "integration_data",
                "webhook_input",
                "pre_connect_input",
                "connect_input",
                "connect_output",
            ] {
                assert!(c.schemas[k].is_object(), "{} {k}", c.name);
            }
        }
    }

    #[test]
    fn url_templates_fill_from_settings_config_and_base() {
        let settings = json!({"subdomain": "acme", "n": 7});
        let config = json!({"region": "eu"});
        let t = "https://${connection_settings.subdomain}.api.accelo.com/oauth2/v0/token";
        assert_eq!(render_url(t, &settings, &config, None).unwrap(), "https://acme.api.accelo.com/oauth2/v0/token");
        assert_eq!(
            render_url("{{baseURLs.api}}/acme-oauth2/token", &settings, &config, Some("http://127.0.0.1:9/")).unwrap(),
            "http://127.0.0.1:9/acme-oauth2/token"
        );
        assert_eq!(
            render_url("https://{{connectorConfig.region}}.x/{{connectionSettings.n}}", &settings, &config, None)
                .unwrap(),
            "https://eu.x/7"
        );
        assert_eq!(render_url("https://plain/x", &json!({}), &json!({}), None).unwrap(), "https://plain/x");
        let e = render_url(t, &json!({}), &config, None).unwrap_err();
        assert!(e.contains("connection_settings.subdomain"), "{e}");
        assert!(render_url(t, &json!({"subdomain": "evil.com/x?"}), &config, None).is_err());
        assert!(render_url("{{baseURLs.api}}/t", &settings, &config, None).is_err());
        assert!(render_url("https://${connection_settings.x", &settings, &config, None).is_err());
    }

    #[test]
    fn validation_reports_paths() {
        let gh = connector("github").unwrap();
        assert!(
            gh.validate_config(&json!({"oauth": {"client_id": "a", "client_secret": "b", "scopes": ["repo"]}}), &[])
                .is_empty()
        );
        let bad = gh.validate_config(&json!({"oauth": {"client_id": 5}}), &["config"]);
        assert!(bad.iter().any(|i| i.path == ["config", "oauth", "client_id"]), "{bad:?}");
        let s = gh.validate_settings(&json!({"oauth": {"credentials": {}}}), &[]);
        assert!(s.iter().any(|i| i.message.contains("access_token")), "{s:?}");
        let accelo = connector("accelo").unwrap();
        let missing = accelo.validate_settings(&json!({"oauth": {"credentials": {"access_token": "x"}}}), &[]);
        assert!(missing.iter().any(|i| i.message.contains("subdomain")), "{missing:?}");
        let ak = connector("acme-apikey").unwrap();
        assert!(ak.validate_settings(&json!({"api_key": "sk"}), &[]).is_empty());
        assert!(!ak.validate_settings(&json!({"apiKey": "sk"}), &[]).is_empty());
    }

    #[test]
    fn ids() {
        let id = new_id(&crate::Entropy::system(), 1_700_000_000_000, "conn", "github");
        assert!(id.starts_with("conn_github_") && id.len() == "conn_github_".len() + 26);
        assert_eq!(connector_of_id(&id), Some("github"));
        assert_eq!(connector_of_id("conn_x"), None);
    }
}
