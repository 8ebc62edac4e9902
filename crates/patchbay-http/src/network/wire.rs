//! The Network face's wire types: what handlers serialise, and what the
//! OpenAPI document (`GET /api/network/v1/openapi.json`) is generated from.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// V1ConnectionOutput.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "c0a80101-0000-4000-8000-000000000001", "name": "Desk 1",
    "clientId": "6f1c9a52-3c1e-4f7a-9d4b-2f0d8c1e7a01", "partnerId": "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02",
    "networkAccountId": "0b5d3c1e-8f4a-4c2d-9e7f-1a2b3c4d5e6f", "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-01-01T00:00:00.000Z", "active": true,
    "proof": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "nonce": "demo-nonce-1",
    "partnersConnectionId": null, "partnersClientId": null, "initialized": false
}))]
pub struct Connection {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(min_length = 1)]
    pub name: String,
    #[schema(format = Uuid)]
    pub client_id: String,
    #[schema(format = Uuid)]
    pub partner_id: String,
    #[schema(format = Uuid)]
    pub network_account_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub active: bool,
    #[schema(min_length = 1)]
    pub proof: String,
    #[schema(min_length = 1)]
    pub nonce: String,
    /// The partner's id for the connection; null until initialised.
    #[schema(required = true, min_length = 1)]
    pub partners_connection_id: Option<String>,
    /// The partner's id for the client; null until initialised.
    #[schema(required = true, min_length = 1)]
    pub partners_client_id: Option<String>,
    pub initialized: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionEnvelope {
    pub connection: Connection,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionsEnvelope {
    pub connections: Vec<Connection>,
}

/// V1PartnersOutput.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub institution_id: Option<String>,
    pub institution_identifier: String,
    #[schema(value_type = String, example = "token")]
    pub connection_key_schema: String,
    pub active: bool,
    pub trust_org: String,
    pub stable_partner: bool,
    pub enterprise_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// A number as given (`1440`, not `1440.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub client_dispute_window_minutes: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub top_up_window_minutes: Option<serde_json::Number>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnersEnvelope {
    pub partners: Vec<Partner>,
}

/// One currency a partner supports (BitGoJS `V1SupportedCurrency`; the spec's `BNMetadata`
/// requires `partnerNames`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportedCurrency {
    pub ofc_currency: String,
    pub backing_currency: String,
    pub partner_names: Vec<String>,
}

/// `V1EnterpriseSupportedCurrenciesResponse`: partner id → its currencies.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportedCurrenciesEnvelope {
    pub supported_currencies: std::collections::BTreeMap<String, Vec<SupportedCurrency>>,
    /// Always `bitgo-network`.
    pub domain: String,
}

/// A partner as created by `POST /partners`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedPartner {
    #[schema(format = Uuid)]
    pub id: String,
    pub enterprise_id: String,
    pub trust_org: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub institution_id: Option<String>,
    pub institution_identifier: String,
    pub name: String,
    pub connection_key_schema: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = Uuid)]
    pub client_id: String,
    pub broker: bool,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub client_dispute_window_minutes: Option<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub top_up_window_minutes: Option<serde_json::Number>,
    pub allocation_policies_enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedPartnerEnvelope {
    pub partner: CreatedPartner,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    #[schema(format = Uuid)]
    pub id: String,
    pub enterprise_id: String,
    pub trust_org: String,
    pub wallet_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientEnvelope {
    pub client: Client,
}

/// V1ClientConnectionsSigningGetPayload.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningPayload {
    /// The exact string to sign.
    pub payload: String,
}

/// V1ErrorPayload (also used for 400).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorPayload {
    pub error: String,
}

// ----------------------------------------------------------- request bodies --

/// ConnectionKey, discriminated by `schema`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ConnectionKey)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ConnectionKeyDoc {
    Token(TokenKey),
    TokenAndSignature(TokenAndSignatureKey),
    ApiKeyAndSecret(ApiKeyAndSecretKey),
    Clearloop(ClearloopKey),
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct TokenKey {
    #[schema(pattern = "^token$")]
    schema: String,
    #[schema(min_length = 1)]
    connection_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct TokenAndSignatureKey {
    #[schema(pattern = "^tokenAndSignature$")]
    schema: String,
    #[schema(min_length = 1)]
    connection_token: String,
    #[schema(min_length = 1)]
    signature: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAndSecretKey {
    #[schema(pattern = "^apiKeyAndSecret$")]
    schema: String,
    #[schema(min_length = 1)]
    api_key: String,
    #[schema(min_length = 1)]
    api_secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct ClearloopKey {
    #[schema(pattern = "^clearloop$")]
    schema: String,
    #[schema(min_length = 1)]
    api_key: String,
    #[schema(min_length = 1)]
    api_secret: String,
    #[schema(min_length = 1)]
    client_account_id: String,
    #[schema(min_length = 1)]
    company_registration_number: String,
}

/// Body of the signing routes.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct SigningRequest {
    #[schema(format = Uuid, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    partner_id: String,
    #[schema(min_length = 1, pattern = "^[^\\u0000]*$")]
    name: String,
    connection_key: ConnectionKeyDoc,
    #[schema(min_length = 1, pattern = "^[^\\u0000]*$")]
    nonce: String,
}

/// Body of Connect to Partner.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct ConnectRequest {
    #[schema(format = Uuid, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    partner_id: String,
    #[schema(min_length = 1, pattern = "^[^\\u0000]*$")]
    name: String,
    connection_key: ConnectionKeyDoc,
    #[schema(min_length = 1, pattern = "^[^\\u0000]*$")]
    nonce: String,
    /// The signed payload (compact JSON of partnerId, name, nonce, connectionKey).
    #[schema(min_length = 1)]
    payload: String,
    /// 65-byte Bitcoin signed-message signature, hex.
    #[schema(min_length = 1)]
    signature: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UpdateConnectionRequest {
    active: Option<bool>,
    #[schema(min_length = 1, pattern = "^[^\\u0000]*$")]
    name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct CreatePartnerRequest {
    #[schema(min_length = 1)]
    name: String,
    broker: bool,
    #[schema(min_length = 1)]
    institution_identifier: String,
    #[schema(pattern = "^(token|tokenAndSignature|apiKeyAndSecret|clearloop)$")]
    connection_key_schema: String,
    #[schema(format = Uuid, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    institution_id: Option<String>,
    #[schema(minimum = 0)]
    client_dispute_window_minutes: Option<f64>,
    #[schema(minimum = 0)]
    top_up_window_minutes: Option<f64>,
    allocation_policies_enabled: Option<bool>,
}

/// Patchbay extension: register the client's wallet and signing key.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct OnboardClientRequest {
    #[schema(min_length = 1)]
    wallet_id: Option<String>,
    /// 33-byte compressed secp256k1 public key, hex.
    #[schema(pattern = "^0[23][0-9a-fA-F]{64}$")]
    public_key: Option<String>,
}

/// A string of at least one character (array items of name filters).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(min_length = 1)]
#[allow(dead_code)]
pub struct NonEmptyString(String);

/// A ledger answer (allocation, balances, settlement, dispute …): its exact shape
/// is the schema of the same operation in BitGo's published spec
/// (`reference/vendor-specs/bitgo-network-v1.json`), which the tests check against.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerAnswer {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}
