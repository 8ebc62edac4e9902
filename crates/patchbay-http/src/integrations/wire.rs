//! The Integrations face's wire types: what handlers serialise and what the
//! OpenAPI document (`GET /v1/openapi.json`) is generated from.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum ConnectionStatus {
    Healthy,
    Disconnected,
    Error,
    Manual,
    Unknown,
}

/// core.connection_select.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "conn_github_01JDEMO000000000000000000", "connector_name": "github", "customer_id": "cus_1",
    "connector_config_id": "ccfg_github_01JDEMO000000000000000000", "integration_id": null,
    "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
    "display_name": "octocat", "disabled": false, "status": "healthy", "status_message": null, "metadata": {}
}))]
pub struct Connection {
    #[schema(pattern = "^conn_.+")]
    pub id: String,
    pub connector_name: String,
    #[schema(required = true)]
    pub customer_id: Option<String>,
    #[schema(required = true)]
    pub connector_config_id: Option<String>,
    #[schema(required = true)]
    pub integration_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    #[schema(required = true)]
    pub disabled: Option<bool>,
    #[schema(value_type = Option<ConnectionStatus>)]
    pub status: Option<String>,
    pub status_message: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Only with `include_secrets=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub settings: Option<super::refresh::OpenedSettings>,
    /// Only with `expand=connector`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<Connector>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Scope {
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum Stage {
    Hidden,
    Alpha,
    Beta,
    Ga,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "UPPERCASE")]
pub enum AuthType {
    Basic,
    Oauth1,
    Oauth2,
    Oauth2cc,
    #[schema(rename = "API_KEY")]
    ApiKey,
    Custom,
}

/// core.connector.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Connector {
    pub name: String,
    pub display_name: String,
    pub logo_url: String,
    /// Absent where upstream gives a connector no stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Stage>)]
    pub stage: Option<String>,
    pub platforms: Vec<String>,
    #[schema(value_type = AuthType)]
    pub auth_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openint_default_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openint_allowed_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    pub has_openint_credentials: bool,
    /// The seven JSON Schemas (with `expand=schemas` / `expand=connector`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub schemas: Option<Value>,
}

/// A connector config (customers see its `config` without secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorConfig {
    #[schema(pattern = "^ccfg_")]
    pub id: String,
    pub org_id: String,
    pub connector_name: String,
    pub display_name: Option<String>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<Connector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_count: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    #[schema(pattern = "^evt_")]
    pub id: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub data: Value,
    #[schema(format = DateTime)]
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub user: Value,
    pub v: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub org_id: String,
    pub id: String,
    pub api_key: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSummary {
    pub id: String,
    pub connection_count: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub token: String,
    pub magic_link_url: String,
    pub api_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub id: String,
    #[schema(value_type = Option<ConnectionStatus>)]
    pub status: Option<String>,
    pub status_message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
}

/// The repls a connection is assigned to (v2).
#[derive(Debug, Serialize, ToSchema)]
pub struct Assignments {
    /// The id of the connection, starts with `conn_`
    pub id: String,
    pub assignments: Vec<String>,
}

/// The answer of an organisation upsert (v2).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationUpserted {
    pub id: String,
    /// Whether this call created the organisation.
    pub created: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Viewer {
    /// `anon`, `org` or `customer`.
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
}

macro_rules! page {
    ($name:ident, $item:ty) => {
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            pub total: i64,
            pub limit: i64,
            pub offset: i64,
            pub has_next_page: bool,
        }

        impl $name {
            pub fn new(items: Vec<$item>, total: i64, limit: i64, offset: i64) -> Self {
                let has_next_page = offset + (items.len() as i64) < total;
                Self { items, total, limit, offset, has_next_page }
            }
        }
    };
}

page!(ConnectionPage, Connection);
page!(ConnectorPage, Connector);
page!(ConnectorConfigPage, ConnectorConfig);
page!(EventPage, Event);
page!(CustomerPage, CustomerSummary);

#[derive(Debug, Serialize, ToSchema)]
pub struct Issue {
    pub code: String,
    pub message: String,
    pub path: Vec<String>,
}

/// `{code, message, issues?}` with tRPC error codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct Error {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issues: Option<Vec<Issue>>,
}

// ----------------------------------------------------------- request bodies --

/// Connector-specific data: a `oneOf` per catalogue connector (filled when served).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ConnectionData {
    pub connector_name: String,
    #[schema(value_type = Object)]
    pub settings: Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateConnection {
    #[schema(pattern = "^ccfg_")]
    pub connector_config_id: String,
    #[schema(min_length = 1, pattern = "^[^\\u0000]+$")]
    pub customer_id: String,
    pub data: ConnectionData,
    pub check_connection: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(pattern = "^[^\\u0000]*$")]
    pub display_name: Option<String>,
}

/// A new connector config: a `oneOf` per catalogue connector (filled when served).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateConnectorConfig {
    pub connector_name: String,
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UpdateConnectorConfig {
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateToken {
    #[schema(minimum = 1, maximum = 31536000)]
    pub validity_in_seconds: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub connect_options: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UpsertCustomer {
    #[schema(min_length = 1, max_length = 256, pattern = "^[^/\\u0000]+$")]
    pub id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A catalogue connector name (the enum is filled from the catalogue when the
/// document is served).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub enum ConnectorName {
    #[schema(rename = "github")]
    Github,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub ok: bool,
}

/// One connector in `GET /connector-status`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatusItem {
    pub name: String,
    pub has_connection_for_org: bool,
    pub is_healthy_for_org: bool,
    /// The organisation has a connector config for it.
    pub has_default_credentials: bool,
    /// Connected and healthy.
    pub complete: bool,
}

/// `GET /connector-status`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    pub list: Vec<ConnectorStatusItem>,
    pub num_total_connectors: i64,
    pub num_with_connection_for_org: i64,
    pub num_healthy_for_org: i64,
    pub num_with_default_credentials: i64,
    pub num_complete: i64,
}

/// `GET /ai/message_template`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageTemplate {
    pub language: String,
    pub template: String,
}

/// `POST /webhook/{connector_name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceived {
    /// `ok` or `error`.
    pub status: String,
    #[schema(value_type = Object)]
    pub info: Value,
}

/// `POST /customer/{customer_id}/magic-link`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MagicLink {
    pub magic_link_url: String,
}

/// The languages of `GET /ai/message_template`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum TemplateLanguage {
    Javascript,
}

/// The event names `POST /event` accepts (OpenInt's `createEvent` body union).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum EventName {
    #[serde(rename = "debug.debug")]
    DebugDebug,
    #[serde(rename = "webhook.received")]
    WebhookReceived,
    #[serde(rename = "db.user-created")]
    DbUserCreated,
    #[serde(rename = "db.user-deleted")]
    DbUserDeleted,
    #[serde(rename = "db.connection-created")]
    DbConnectionCreated,
    #[serde(rename = "db.connection-deleted")]
    DbConnectionDeleted,
    #[serde(rename = "user.signin")]
    UserSignin,
    #[serde(rename = "user.signout")]
    UserSignout,
    #[serde(rename = "connect.session-started")]
    ConnectSessionStarted,
    #[serde(rename = "connect.session-cancelled")]
    ConnectSessionCancelled,
    #[serde(rename = "connect.session-succeeded")]
    ConnectSessionSucceeded,
    #[serde(rename = "connect.session-errored")]
    ConnectSessionErrored,
    #[serde(rename = "connect.connection-connected")]
    ConnectConnectionConnected,
    #[serde(rename = "api.token-copied")]
    ApiTokenCopied,
    #[serde(rename = "api.graphql-request")]
    ApiGraphqlRequest,
    #[serde(rename = "api.rest-request")]
    ApiRestRequest,
    #[serde(rename = "pageview")]
    Pageview,
}

/// One event to record.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct EventInput {
    pub name: EventName,
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, Value>,
}

/// `POST /event`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreateEvent {
    pub event: EventInput,
}
