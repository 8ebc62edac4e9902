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
    pub authorization_request_url: String,
    pub token_request_url: String,
    pub scope_separator: String,
    /// `body` (client_id/client_secret form fields) or `header` (HTTP Basic).
    pub client_auth: String,
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
#[serde(untagged)]
pub enum AuthDef {
    OAuth2(OAuthDef),
    ApiKey(ApiKeyDef),
}

#[derive(Debug, Clone, Deserialize)]
struct RawConnector {
    name: String,
    display_name: String,
    stage: String,
    platforms: Vec<String>,
    auth_type: String,
    auth: AuthDef,
    #[serde(default)]
    connection_settings_extra: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct RawCatalogue {
    schemas: BTreeMap<String, BTreeMap<String, Value>>,
    connectors: Vec<RawConnector>,
}

/// A connector with its compiled schemas.
pub struct Connector {
    pub name: String,
    pub display_name: String,
    pub stage: String,
    pub platforms: Vec<String>,
    pub auth_type: String,
    pub auth: AuthDef,
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
        match &self.auth {
            AuthDef::OAuth2(o) => Some(o),
            AuthDef::ApiKey(_) => None,
        }
    }
    pub fn api_key(&self) -> Option<&ApiKeyDef> {
        match &self.auth {
            AuthDef::ApiKey(a) => Some(a),
            AuthDef::OAuth2(_) => None,
        }
    }
    pub fn validate_config(&self, config: &Value, prefix: &[&str]) -> Vec<Issue> {
        issues(&self.config_validator, config, prefix)
    }
    pub fn validate_settings(&self, settings: &Value, prefix: &[&str]) -> Vec<Issue> {
        issues(&self.settings_validator, settings, prefix)
    }
}

fn build(raw: RawConnector, templates: &BTreeMap<String, BTreeMap<String, Value>>) -> Connector {
    let kind = if raw.auth_type == "OAUTH2" { "oauth2" } else { "api_key" };
    let t = &templates[kind];
    let config = t["connector_config"].clone();
    let mut settings = t["connection_settings"].clone();
    for (k, v) in &raw.connection_settings_extra {
        settings["properties"][k] = v.clone();
        if kind == "oauth2" {
            settings["properties"]["oauth"]["properties"]["credentials"]["properties"][k] = v.clone();
        }
    }
    let empty = json!({"type": "object", "additionalProperties": false});
    let schemas = json!({
        "connector_config": config,
        "connection_settings": settings,
        "integration_data": empty,
        "webhook_input": empty,
        "pre_connect_input": empty,
        "connect_input": empty,
        "connect_output": settings,
    });
    let config_validator = jsonschema::validator_for(&config).expect("catalogue schemas compile");
    let settings_validator = jsonschema::validator_for(&settings).expect("catalogue schemas compile");
    Connector {
        name: raw.name,
        display_name: raw.display_name,
        stage: raw.stage,
        platforms: raw.platforms,
        auth_type: raw.auth_type,
        auth: raw.auth,
        schemas,
        config_validator,
        settings_validator,
    }
}

/// The catalogue, ordered by name.
pub fn catalogue() -> &'static [Connector] {
    static C: OnceLock<Vec<Connector>> = OnceLock::new();
    C.get_or_init(|| {
        let raw: RawCatalogue = serde_json::from_str(CATALOGUE).expect("connectors/catalogue.json is valid");
        let mut out: Vec<Connector> = raw.connectors.into_iter().map(|c| build(c, &raw.schemas)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    })
}

pub fn connector(name: &str) -> Option<&'static Connector> {
    catalogue().iter().find(|c| c.name == name)
}

/// `<prefix>_<connector>_<ULID>`.
pub fn new_id(prefix: &str, connector: &str) -> String {
    format!("{prefix}_{connector}_{}", ulid::Ulid::new())
}

/// A new ULID (uppercase Crockford base32).
pub fn ulid() -> String {
    ulid::Ulid::new().to_string()
}

/// The connector name inside a `conn_<name>_…` or `ccfg_<name>_…` id.
pub fn connector_of_id(id: &str) -> Option<&str> {
    let mut parts = id.splitn(3, '_');
    let _prefix = parts.next()?;
    let name = parts.next()?;
    parts.next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_real_providers_with_schemas() {
        let all = catalogue();
        assert!(all.len() >= 30, "{}", all.len());
        let gh = connector("github").unwrap();
        let o = gh.oauth().unwrap();
        assert_eq!(o.token_request_url, "https://github.com/login/oauth/access_token");
        assert_eq!(connector("slack").unwrap().oauth().unwrap().scope_separator, ",");
        assert_eq!(connector("notion").unwrap().oauth().unwrap().client_auth, "header");
        assert_eq!(connector("openai").unwrap().api_key().unwrap().verification.endpoint, "/models");
        for c in all {
            assert!(!c.name.contains('_'), "{}", c.name);
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
    fn validation_reports_paths() {
        let gh = connector("github").unwrap();
        assert!(
            gh.validate_config(&json!({"oauth": {"client_id": "a", "client_secret": "b", "scopes": ["repo"]}}), &[])
                .is_empty()
        );
        let bad = gh.validate_config(&json!({"oauth": {"client_id": 5}}), &["config"]);
        assert!(bad.iter().any(|i| i.path == ["config", "oauth", "client_id"]), "{bad:?}");
        assert!(bad.iter().any(|i| i.path == ["config", "oauth"] && i.message.contains("client_secret")), "{bad:?}");
        let s = gh.validate_settings(&json!({"oauth": {"credentials": {}}}), &[]);
        assert_eq!(s.len(), 1);
        let sf = connector("salesforce").unwrap();
        assert!(
            sf.validate_settings(
                &json!({"oauth": {"credentials": {"access_token": "x"}}, "instance_url": "https://x"}),
                &[]
            )
            .is_empty()
        );
        let ak = connector("openai").unwrap();
        assert!(ak.validate_settings(&json!({"api_key": "sk"}), &[]).is_empty());
        assert!(!ak.validate_settings(&json!({"apiKey": "sk"}), &[]).is_empty());
    }

    #[test]
    fn ids() {
        let id = new_id("conn", "github");
        assert!(id.starts_with("conn_github_") && id.len() == "conn_github_".len() + 26);
        assert_eq!(connector_of_id(&id), Some("github"));
        assert_eq!(connector_of_id("conn_x"), None);
    }
}
