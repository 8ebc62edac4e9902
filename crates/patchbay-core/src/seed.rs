//! The seed document (normative format: `shared/seed-format.md`).
//!
//! Parsing rejects unknown fields; validation checks every cross-reference and
//! value constraint, and reports the JSON path of the first problem. A valid
//! document becomes a [`SeedPlan`]: tenant-keyed records (secret parts split
//! off for the vault) and hashed credentials, ready for one store transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::hashing::token_hash;

#[path = "seed_ledger.rs"]
pub mod ledger_seed;

/// A seed problem: the JSON path of the first bad value and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SeedError {
    pub path: String,
    pub message: String,
}

impl SeedError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

// ---------------------------------------------------------------- document --

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedDoc {
    pub network: Option<NetworkSection>,
    pub export: Option<ExportSection>,
    pub integrations: Option<IntegrationsSection>,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    #[serde(default)]
    pub enterprises: Vec<NetEnterprise>,
    #[serde(default)]
    pub users: Vec<NetUser>,
    #[serde(default)]
    pub clients: Vec<NetClient>,
    #[serde(default)]
    pub partners: Vec<NetPartner>,
    #[serde(default)]
    pub connections: Vec<NetConnection>,
    /// Ledger objects in any state, for tests (seed_ledger.rs).
    #[serde(default)]
    pub allocations: Vec<ledger_seed::NetAllocation>,
    #[serde(default)]
    pub settlements: Vec<ledger_seed::NetSettlement>,
    #[serde(default)]
    pub disputes: Vec<ledger_seed::NetDispute>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetEnterprise {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub oes_license: bool,
    pub trust_org: Option<String>,
    #[serde(default)]
    pub partner_eligible: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub token: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetUser {
    pub id: String,
    #[serde(default)]
    pub enterprises: Vec<String>,
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetClient {
    pub id: String,
    pub enterprise_id: String,
    pub wallet_id: Option<String>,
    pub public_key: String,
    /// Funds of the enterprise's trading account: `{currency: base units}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub funds: std::collections::BTreeMap<String, ledger_seed::Funds>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetPartner {
    pub id: String,
    pub enterprise_id: String,
    pub name: String,
    pub institution_identifier: String,
    pub connection_key_schema: String,
    #[serde(default = "yes")]
    pub active: bool,
    pub trust_org: Option<String>,
    #[serde(default)]
    pub stable_partner: bool,
    pub callback_url: Option<String>,
    pub public_key: Option<String>,
    /// The currencies the partner supports for allocations, deallocations and settlements.
    #[serde(default)]
    pub supported_currencies: Vec<SupportedCurrency>,
    /// Allocations and deallocations stay `reserved` until the partner clears or
    /// releases them (`PUT /partners/allocations`); otherwise they clear at once.
    #[serde(default)]
    pub async_allocations: bool,
    /// How long after a settlement its clients may dispute it (no limit when absent).
    pub client_dispute_window_minutes: Option<i64>,
    /// Funds of the partner's settlement account: `{currency: base units}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub funds: std::collections::BTreeMap<String, ledger_seed::Funds>,
}

/// A currency a partner supports: its OFC currency and the currency backing it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SupportedCurrency {
    pub ofc_currency: String,
    /// Default: the OFC currency without its `ofc` prefix (`ofcbtc` → `btc`).
    pub backing_currency: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetConnection {
    pub id: String,
    pub client_id: String,
    pub partner_id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    pub nonce: String,
    #[schema(value_type = Object)]
    pub connection_key: Map<String, Value>,
    pub partners_connection_id: Option<String>,
    pub partners_client_id: Option<String>,
    pub created_at: Option<String>,
    /// Funds already allocated to the connection's network account: `{currency: base units}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub funds: std::collections::BTreeMap<String, ledger_seed::Funds>,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    #[serde(default)]
    pub itwins: Vec<ExItwin>,
    #[serde(default)]
    pub imodels: Vec<ExImodel>,
    #[serde(default)]
    pub users: Vec<ExUser>,
    #[serde(default)]
    pub connections: Vec<ExConnection>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExItwin {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExImodel {
    pub id: String,
    #[serde(rename = "iTwinId")]
    pub itwin_id: String,
    pub display_name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExUser {
    pub id: String,
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    #[serde(default)]
    pub itwins: BTreeMap<String, Vec<String>>,
    #[serde(default = "yes")]
    pub authorized_for_runs: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExConnection {
    pub id: String,
    #[serde(rename = "iModelId")]
    pub imodel_id: String,
    pub display_name: String,
    #[serde(default = "user_auth")]
    pub authentication_type: String,
    pub owner_user_id: String,
    /// Extension: overrides the `simulate` exporter for this connection.
    pub simulate: Option<ExSimulate>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExSimulate {
    pub result: Option<String>,
    pub delay_ms: Option<u64>,
}

/// Results a simulated export may end with.
pub const SIMULATED_RESULTS: &[&str] = &["Success", "Error", "PartialSuccess", "Skipped", "Cancelled", "TimedOut"];

/// The credential face of connector-gateway identities (`X-Replit-Token`): kept apart
/// from `integrations` API keys, so an identity is never accepted as a bearer key.
pub const GATEWAY_FACE: &str = "integrations-gateway";

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntegrationsSection {
    #[serde(default)]
    pub organizations: Vec<InOrganization>,
    #[serde(default)]
    pub customers: Vec<InCustomer>,
    #[serde(default)]
    pub connector_configs: Vec<InConnectorConfig>,
    #[serde(default)]
    pub connections: Vec<InConnection>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InOrganization {
    pub id: String,
    pub name: String,
    pub api_key: Option<String>,
    pub webhook_url: Option<String>,
    /// Identities accepted as `X-Replit-Token: repl <identity>` (or `depl <identity>`)
    /// for the whole organisation (connector-gateway clients).
    #[serde(default)]
    pub replit_identities: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InCustomer {
    pub org_id: String,
    pub id: String,
    pub api_key: Option<String>,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Identities accepted as `X-Replit-Token: repl <identity>` (or `depl <identity>`)
    /// for this customer only.
    #[serde(default)]
    pub replit_identities: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InConnectorConfig {
    pub id: String,
    pub org_id: String,
    pub connector_name: String,
    pub display_name: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub config: Map<String, Value>,
    pub overrides: Option<InOverrides>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InOverrides {
    pub token_url: Option<String>,
    pub authorize_url: Option<String>,
    /// Extension: the API base URL of an API-key connector (its verification endpoint).
    pub base_url: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InConnection {
    pub id: String,
    pub connector_config_id: String,
    pub customer_id: String,
    pub display_name: Option<String>,
    #[serde(default = "healthy")]
    pub status: String,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[schema(value_type = Object)]
    #[serde(default)]
    pub settings: Map<String, Value>,
}

fn yes() -> bool {
    true
}
fn user_auth() -> String {
    "User".into()
}
fn healthy() -> String {
    "healthy".into()
}

// -------------------------------------------------------------------- plan --

/// Record kinds, as stored.
pub mod kind {
    pub const NET_ENTERPRISE: &str = "network.enterprise";
    pub const NET_USER: &str = "network.user";
    pub const NET_CLIENT: &str = "network.client";
    pub const NET_PARTNER: &str = "network.partner";
    pub const NET_CONNECTION: &str = "network.connection";
    /// Seeded funds of one ledger account in one currency (id `account|currency`).
    pub const NET_FUNDS: &str = "network.funds";
    /// Seeded ledger rows (an allocation; a settlement with its transfers; a dispute).
    pub const NET_LEDGER: &str = "network.ledger";
    /// A Network access token of BitGo's v2 form, kept sealed (it is the HMAC key),
    /// under tenant `network` and id = its SHA-256 in hex (what v2 clients send as bearer).
    pub const NET_ACCESS_TOKEN: &str = "network.access_token";
    pub const EX_ITWIN: &str = "export.itwin";
    pub const EX_IMODEL: &str = "export.imodel";
    pub const EX_USER: &str = "export.user";
    pub const EX_CONNECTION: &str = "export.connection";
    pub const IN_ORG: &str = "integrations.organization";
    pub const IN_CUSTOMER: &str = "integrations.customer";
    pub const IN_CCFG: &str = "integrations.connector_config";
    pub const IN_CONNECTION: &str = "integrations.connection";
    /// The repls a connection is assigned to (OpenInt v2 assignments), by connection id.
    pub const IN_ASSIGNMENT: &str = "integrations.assignment";
}

/// Where a record's tenant key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    Known(String),
    /// The tenant of the referenced record (an index into [`SeedPlan::refs`]),
    /// which is not in the document and must be read from the store.
    OfRef(usize),
}

/// One object to upsert.
#[derive(Debug, Clone)]
pub struct PlannedRecord {
    /// JSON path of the object in the document, for problems found while writing.
    pub path: String,
    pub tenant: Tenant,
    pub kind: &'static str,
    pub id: String,
    /// Public attributes, stored as JSON.
    pub data: Value,
    /// Secret attributes, stored only encrypted.
    pub secret: Option<Value>,
}

/// A reference to an object that the document does not contain; it must
/// already exist in the store (optionally under a given tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    pub path: String,
    pub kind: &'static str,
    pub id: String,
    pub tenant: Option<String>,
}

/// A bearer token or API key, hashed.
#[derive(Debug, Clone)]
pub struct PlannedCredential {
    pub hash: Vec<u8>,
    pub face: &'static str,
    pub principal_kind: &'static str,
    pub principal_id: String,
    pub tenant: Tenant,
    pub scopes: Vec<String>,
}

/// Everything a valid document asks the store to write.
#[derive(Debug, Default)]
pub struct SeedPlan {
    pub records: Vec<PlannedRecord>,
    pub refs: Vec<ExternalRef>,
    pub credentials: Vec<PlannedCredential>,
    /// Principals whose credential set the document states in full:
    /// (face, principal_kind, principal_id); their other credentials are removed.
    pub credential_owners: Vec<(&'static str, &'static str, String)>,
    /// Objects per section, for the admin API's `{"applied": ...}` answer.
    pub counts: BTreeMap<&'static str, usize>,
    /// The document's bytes, for [`document_digest`]: a start-up application of
    /// a document applied before (byte for byte) writes nothing.
    pub document: Vec<u8>,
}

/// How a plan is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMode {
    /// `patchbay seed FILE`, `POST /admin/v1/seed`: every entry is upserted.
    Upsert,
    /// `serve --seed`, `PATCHBAY_SEED`, `demo`: only entries that differ from
    /// the entry as it was last applied (or were never applied) are written,
    /// so a restart never undoes what the API changed or deleted since.
    StartUp,
}

/// HMAC-SHA256 under the database's own seed-digest key (a random key stored
/// sealed by the vault): a digest stored beside public data must not let whoever
/// reads the database test guesses of the secret part offline.
fn keyed(key: &[u8], text: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

/// The digest of one entry as applied: its kind, resolved tenant, id, public
/// data and secret part. Recorded per entry so that a start-up application can
/// tell an entry the document changed from one it merely repeats.
pub fn entry_digest(key: &[u8], kind: &str, tenant: &str, id: &str, data: &Value, secret: Option<&Value>) -> Vec<u8> {
    // serde_json's `Value` keeps object keys sorted, so equal entries write equal text.
    keyed(key, json!([kind, tenant, id, data, secret]).to_string().as_bytes())
}

/// The digest of one principal's credential set (each `(hash, tenant, scopes)`),
/// independent of the order the document lists them in.
pub fn credentials_digest(key: &[u8], set: &[(&[u8], &str, &[String])]) -> Vec<u8> {
    let mut items: Vec<Value> =
        set.iter().map(|(hash, tenant, scopes)| json!([hex::encode(hash), tenant, scopes])).collect();
    items.sort_by_key(|v| v.to_string());
    keyed(key, Value::Array(items).to_string().as_bytes())
}

/// The digest of a whole document's bytes.
pub fn document_digest(key: &[u8], document: &[u8]) -> Vec<u8> {
    keyed(key, document)
}

/// Parses a document (JSON), rejecting unknown fields with their path.
pub fn parse(bytes: &[u8]) -> Result<SeedDoc, SeedError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let doc: SeedDoc = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let malformed = e.inner().is_syntax() || e.inner().is_eof();
        // A document that is not JSON at all has no meaningful path inside it.
        let path = if malformed || path == "." || path.is_empty() { "$".to_string() } else { format!("$.{path}") };
        let msg = e.inner().to_string();
        // serde_json appends " at line L column C"; keep it, it helps humans.
        SeedError::new(path, msg)
    })?;
    Ok(doc)
}

/// Parses and validates a document into a plan.
pub fn plan(bytes: &[u8]) -> Result<SeedPlan, SeedError> {
    let doc = parse(bytes)?;
    no_nul(bytes)?;
    let mut plan = Planner::default().run(doc)?;
    plan.document = bytes.to_vec();
    Ok(plan)
}

/// No string in the document holds a NUL character: PostgreSQL text cannot
/// store one, so a seed with one is refused on every backend alike. In JSON a
/// NUL is always the escape `\u0000`, so documents without it are not walked.
fn no_nul(bytes: &[u8]) -> Result<(), SeedError> {
    fn walk(v: &serde_json::Value, path: &mut String) -> Result<(), SeedError> {
        let nul = |path: &str| SeedError::new(path, "must not contain a NUL character");
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Err(nul(path)),
            serde_json::Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path)?;
                path.truncate(len);
                Ok(())
            }),
            serde_json::Value::Object(members) => members.iter().try_for_each(|(k, item)| {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                if k.contains('\0') {
                    return Err(nul(path));
                }
                walk(item, path)?;
                path.truncate(len);
                Ok(())
            }),
            _ => Ok(()),
        }
    }
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| SeedError::new("$", e.to_string()))?;
    walk(&v, &mut "$".to_string())
}

#[derive(Default)]
struct Planner {
    out: SeedPlan,
    /// (kind, id) -> tenant of records in this document.
    seen: HashMap<(&'static str, String), String>,
    tokens: HashMap<String, String>,
    nonces: HashSet<(String, String)>,
    ccfg_connectors: HashMap<String, String>,
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

fn non_empty(path: &str, v: &str) -> Result<(), SeedError> {
    if v.trim().is_empty() { Err(SeedError::new(path, "must not be empty")) } else { Ok(()) }
}

fn uuid_field(path: &str, v: &str) -> Result<(), SeedError> {
    if is_uuid(v) { Ok(()) } else { Err(SeedError::new(path, format!("{v:?} is not a UUID"))) }
}

fn one_of(path: &str, v: &str, allowed: &[&str]) -> Result<(), SeedError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(SeedError::new(path, format!("{v:?} is not one of {}", allowed.join(", "))))
    }
}

fn url_field(path: &str, v: &str) -> Result<(), SeedError> {
    let ok = (v.starts_with("http://") || v.starts_with("https://")) && v.len() > 8 && !v.contains(' ');
    if ok { Ok(()) } else { Err(SeedError::new(path, format!("{v:?} is not an http(s) URL"))) }
}

fn timestamp_field(path: &str, v: &str) -> Result<(), SeedError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|_| ())
        .map_err(|_| SeedError::new(path, format!("{v:?} is not an RFC 3339 timestamp")))
}

/// Canonical form of an RFC 3339 timestamp: UTC, milliseconds.
fn canonical_ts(v: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|_| v.to_string())
}

const NET_SCHEMAS: &[&str] = &["token", "tokenAndSignature", "apiKeyAndSecret", "clearloop"];

impl Planner {
    fn add(
        &mut self,
        path: &str,
        tenant: Tenant,
        kind: &'static str,
        id: &str,
        data: Value,
        secret: Option<Value>,
    ) -> Result<(), SeedError> {
        let key = (kind, id.to_string());
        if self.seen.contains_key(&key) {
            return Err(SeedError::new(format!("{path}.id"), format!("duplicate id {id:?}")));
        }
        if let Tenant::Known(t) = &tenant {
            self.seen.insert(key, t.clone());
        } else {
            self.seen.insert(key, String::new());
        }
        self.out.records.push(PlannedRecord { path: path.to_string(), tenant, kind, id: id.to_string(), data, secret });
        Ok(())
    }

    /// Resolves a reference: the tenant of an in-document record, or an external ref.
    fn reference(
        &mut self,
        path: String,
        kind: &'static str,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Tenant, SeedError> {
        non_empty(&path, id)?;
        if let Some(t) = self.seen.get(&(kind, id.to_string())) {
            if let Some(want) = tenant
                && t != want
            {
                return Err(SeedError::new(path, format!("{id:?} belongs to another tenant than {want:?}")));
            }
            if t.is_empty() {
                // The referenced record's own tenant comes from the store; refer to the same ref.
                let idx = self
                    .out
                    .records
                    .iter()
                    .find(|r| r.kind == kind && r.id == id)
                    .and_then(|r| match r.tenant {
                        Tenant::OfRef(i) => Some(i),
                        Tenant::Known(_) => None,
                    })
                    .expect("records with unknown tenant refer to an external ref");
                return Ok(Tenant::OfRef(idx));
            }
            return Ok(Tenant::Known(t.clone()));
        }
        self.out.refs.push(ExternalRef { path, kind, id: id.to_string(), tenant: tenant.map(str::to_string) });
        Ok(Tenant::OfRef(self.out.refs.len() - 1))
    }

    fn tokens(
        &mut self,
        path: &str,
        face: &'static str,
        principal_kind: &'static str,
        principal_id: &str,
        tenant: Tenant,
        tokens: &[TokenSpec],
    ) -> Result<(), SeedError> {
        self.out.credential_owners.push((face, principal_kind, principal_id.to_string()));
        for (i, t) in tokens.iter().enumerate() {
            let p = format!("{path}[{i}]");
            self.credential(
                &format!("{p}.token"),
                face,
                principal_kind,
                principal_id,
                tenant.clone(),
                &t.token,
                &t.scopes,
            )?;
            // BitGo's v2 tokens sign requests with HMAC: the token itself is kept, sealed.
            if face == "network" && crate::bitgo_hmac::is_v2_token(&t.token) {
                self.add(
                    &p,
                    Tenant::Known("network".into()),
                    kind::NET_ACCESS_TOKEN,
                    &crate::bitgo_hmac::token_hash_hex(&t.token),
                    json!({"userId": principal_id}),
                    Some(json!({"token": t.token})),
                )?;
            }
            for (j, s) in t.scopes.iter().enumerate() {
                non_empty(&format!("{p}.scopes[{j}]"), s)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn credential(
        &mut self,
        path: &str,
        face: &'static str,
        principal_kind: &'static str,
        principal_id: &str,
        tenant: Tenant,
        raw: &str,
        scopes: &[String],
    ) -> Result<(), SeedError> {
        non_empty(path, raw)?;
        if raw.chars().any(char::is_whitespace) {
            return Err(SeedError::new(path, "must not contain whitespace"));
        }
        if let Some(other) = self.tokens.insert(raw.to_string(), path.to_string()) {
            return Err(SeedError::new(path, format!("the same token is already given at {other}")));
        }
        self.out.credentials.push(PlannedCredential {
            hash: token_hash(raw),
            face,
            principal_kind,
            principal_id: principal_id.to_string(),
            tenant,
            scopes: scopes.to_vec(),
        });
        Ok(())
    }

    fn run(mut self, doc: SeedDoc) -> Result<SeedPlan, SeedError> {
        if let Some(n) = doc.network {
            self.network(n)?;
        }
        if let Some(e) = doc.export {
            self.export(e)?;
        }
        if let Some(i) = doc.integrations {
            self.integrations(i)?;
        }
        Ok(self.out)
    }

    /// Seeded funds of one account: one `network.funds` entry per currency.
    fn funds(
        &mut self,
        p: &str,
        account: &crate::ledger::Account,
        funds: &std::collections::BTreeMap<String, ledger_seed::Funds>,
    ) -> Result<(), SeedError> {
        for (currency, f) in funds {
            let at = format!("{p}.funds.{currency}");
            non_empty(&at, currency)?;
            let (available, held) = f.parts();
            for (what, amount) in [("available", available), ("held", held)] {
                match crate::ledger::Amount::parse_signed(amount) {
                    Ok(a) if !a.is_negative() => {}
                    _ => {
                        return Err(SeedError::new(
                            format!("{at}{}", if f.is_pair() { format!(".{what}") } else { String::new() }),
                            "must be a non-negative integer of base units, as a string",
                        ));
                    }
                }
            }
            let id = format!("{}|{currency}", account.key());
            let data = json!({"account": account.key(), "currency": currency, "available": available, "held": held});
            self.add(&at, Tenant::Known("network".into()), kind::NET_FUNDS, &id, data, None)?;
        }
        Ok(())
    }

    fn network(&mut self, n: NetworkSection) -> Result<(), SeedError> {
        use kind::*;
        let total = n.enterprises.len() + n.users.len() + n.clients.len() + n.partners.len() + n.connections.len();
        for (i, e) in n.enterprises.iter().enumerate() {
            let p = format!("$.network.enterprises[{i}]");
            non_empty(&format!("{p}.id"), &e.id)?;
            non_empty(&format!("{p}.name"), &e.name)?;
            let data = json!({"name": e.name, "oesLicense": e.oes_license, "trustOrg": e.trust_org,
                              "partnerEligible": e.partner_eligible});
            self.add(&p, Tenant::Known(e.id.clone()), NET_ENTERPRISE, &e.id, data, None)?;
        }
        for (i, u) in n.users.iter().enumerate() {
            let p = format!("$.network.users[{i}]");
            non_empty(&format!("{p}.id"), &u.id)?;
            let mut uniq = HashSet::new();
            for (j, ent) in u.enterprises.iter().enumerate() {
                let ep = format!("{p}.enterprises[{j}]");
                if !uniq.insert(ent) {
                    return Err(SeedError::new(ep, format!("enterprise {ent:?} listed twice")));
                }
                self.reference(ep, NET_ENTERPRISE, ent, None)?;
            }
            // Users are principals of the whole Network face, not of one enterprise.
            let tenant = Tenant::Known("network".into());
            self.add(&p, tenant.clone(), NET_USER, &u.id, json!({"enterprises": u.enterprises}), None)?;
            self.tokens(&format!("{p}.tokens"), "network", "user", &u.id, tenant, &u.tokens)?;
        }
        for (i, c) in n.clients.iter().enumerate() {
            let p = format!("$.network.clients[{i}]");
            uuid_field(&format!("{p}.id"), &c.id)?;
            let tenant = self.reference(format!("{p}.enterpriseId"), NET_ENTERPRISE, &c.enterprise_id, None)?;
            let pk = &c.public_key;
            if !crate::network::is_compressed_public_key(&pk.to_lowercase()) {
                return Err(SeedError::new(
                    format!("{p}.publicKey"),
                    "must be a 33-byte compressed secp256k1 public key in hex",
                ));
            }
            let data =
                json!({"enterpriseId": c.enterprise_id, "walletId": c.wallet_id, "publicKey": pk.to_lowercase()});
            self.add(&p, tenant, NET_CLIENT, &c.id, data, None)?;
            self.funds(&p, &crate::ledger::Account::Trading(c.enterprise_id.clone()), &c.funds)?;
        }
        for (i, pt) in n.partners.iter().enumerate() {
            let p = format!("$.network.partners[{i}]");
            uuid_field(&format!("{p}.id"), &pt.id)?;
            let tenant = self.reference(format!("{p}.enterpriseId"), NET_ENTERPRISE, &pt.enterprise_id, None)?;
            non_empty(&format!("{p}.name"), &pt.name)?;
            non_empty(&format!("{p}.institutionIdentifier"), &pt.institution_identifier)?;
            one_of(&format!("{p}.connectionKeySchema"), &pt.connection_key_schema, NET_SCHEMAS)?;
            if let Some(u) = &pt.callback_url {
                url_field(&format!("{p}.callbackUrl"), u)?;
            }
            let mut currencies = Vec::with_capacity(pt.supported_currencies.len());
            for (j, c) in pt.supported_currencies.iter().enumerate() {
                let at = format!("{p}.supportedCurrencies[{j}]");
                non_empty(&format!("{at}.ofcCurrency"), &c.ofc_currency)?;
                let backing = match &c.backing_currency {
                    Some(b) => {
                        non_empty(&format!("{at}.backingCurrency"), b)?;
                        b.clone()
                    }
                    None => c
                        .ofc_currency
                        .strip_prefix("ofc")
                        .filter(|b| !b.is_empty())
                        .unwrap_or(&c.ofc_currency)
                        .to_string(),
                };
                currencies.push(json!({"ofcCurrency": c.ofc_currency, "backingCurrency": backing}));
            }
            let data = json!({"enterpriseId": pt.enterprise_id, "name": pt.name,
                "institutionIdentifier": pt.institution_identifier,
                "connectionKeySchema": pt.connection_key_schema, "active": pt.active,
                "trustOrg": pt.trust_org, "stablePartner": pt.stable_partner,
                "callbackUrl": pt.callback_url, "publicKey": pt.public_key,
                "supportedCurrencies": currencies, "asyncAllocations": pt.async_allocations,
                "clientDisputeWindowMinutes": pt.client_dispute_window_minutes});
            self.add(&p, tenant, NET_PARTNER, &pt.id, data, None)?;
            self.funds(&p, &crate::ledger::Account::Partner(pt.id.clone()), &pt.funds)?;
        }
        for (i, c) in n.connections.iter().enumerate() {
            let p = format!("$.network.connections[{i}]");
            uuid_field(&format!("{p}.id"), &c.id)?;
            uuid_field(&format!("{p}.clientId"), &c.client_id)?;
            uuid_field(&format!("{p}.partnerId"), &c.partner_id)?;
            let tenant = self.reference(format!("{p}.clientId"), NET_CLIENT, &c.client_id, None)?;
            self.reference(format!("{p}.partnerId"), NET_PARTNER, &c.partner_id, None)?;
            non_empty(&format!("{p}.name"), &c.name)?;
            non_empty(&format!("{p}.nonce"), &c.nonce)?;
            if !self.nonces.insert((c.client_id.clone(), c.nonce.clone())) {
                return Err(SeedError::new(
                    format!("{p}.nonce"),
                    "this client already used the nonce in another connection",
                ));
            }
            let kp = format!("{p}.connectionKey");
            let schema = match c.connection_key.get("schema") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(SeedError::new(format!("{kp}.schema"), "is required and must be a string")),
            };
            one_of(&format!("{kp}.schema"), &schema, NET_SCHEMAS)?;
            let fields = crate::network::key_fields(&schema).unwrap_or(&[]);
            for f in fields {
                match c.connection_key.get(*f) {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    _ => return Err(SeedError::new(format!("{kp}.{f}"), "is required and must be a non-empty string")),
                }
            }
            if let Some(extra) = c.connection_key.keys().find(|k| *k != "schema" && !fields.contains(&k.as_str())) {
                return Err(SeedError::new(format!("{kp}.{extra}"), format!("unknown field for schema {schema:?}")));
            }
            if let Some(ts) = &c.created_at {
                timestamp_field(&format!("{p}.createdAt"), ts)?;
            }
            for (name, v) in
                [("partnersConnectionId", &c.partners_connection_id), ("partnersClientId", &c.partners_client_id)]
            {
                if let Some(v) = v {
                    uuid_field(&format!("{p}.{name}"), v)?;
                }
            }
            let data = json!({"clientId": c.client_id, "partnerId": c.partner_id, "name": c.name,
                "active": c.active, "nonce": c.nonce, "connectionKeySchema": schema,
                "partnersConnectionId": c.partners_connection_id,
                "partnersClientId": c.partners_client_id,
                "createdAt": c.created_at.as_deref().map(canonical_ts)});
            self.add(&p, tenant, NET_CONNECTION, &c.id, data, Some(Value::Object(c.connection_key.clone())))?;
            let account = crate::network::derived_uuid("networkAccount", &c.id);
            self.funds(&p, &crate::ledger::Account::Network(account), &c.funds)?;
        }
        self.ledger(&n)?;
        let total = total + n.allocations.len() + n.settlements.len() + n.disputes.len();
        self.out.counts.insert("network", total);
        Ok(())
    }

    fn export(&mut self, e: ExportSection) -> Result<(), SeedError> {
        use kind::*;
        let total = e.itwins.len() + e.imodels.len() + e.users.len() + e.connections.len();
        for (i, t) in e.itwins.iter().enumerate() {
            let p = format!("$.export.itwins[{i}]");
            uuid_field(&format!("{p}.id"), &t.id)?;
            non_empty(&format!("{p}.displayName"), &t.display_name)?;
            self.add(&p, Tenant::Known(t.id.clone()), EX_ITWIN, &t.id, json!({"displayName": t.display_name}), None)?;
        }
        for (i, m) in e.imodels.iter().enumerate() {
            let p = format!("$.export.imodels[{i}]");
            uuid_field(&format!("{p}.id"), &m.id)?;
            let tenant = self.reference(format!("{p}.iTwinId"), EX_ITWIN, &m.itwin_id, None)?;
            non_empty(&format!("{p}.displayName"), &m.display_name)?;
            let data = json!({"iTwinId": m.itwin_id, "displayName": m.display_name});
            self.add(&p, tenant, EX_IMODEL, &m.id, data, None)?;
        }
        for (i, u) in e.users.iter().enumerate() {
            let p = format!("$.export.users[{i}]");
            non_empty(&format!("{p}.id"), &u.id)?;
            for (itwin, perms) in &u.itwins {
                let ip = format!("{p}.itwins.{itwin}");
                self.reference(ip.clone(), EX_ITWIN, itwin, None)?;
                for (j, perm) in perms.iter().enumerate() {
                    one_of(&format!("{ip}[{j}]"), perm, &["read", "modify"])?;
                }
            }
            let tenant = Tenant::Known("export".into());
            let data = json!({"itwins": u.itwins, "authorizedForRuns": u.authorized_for_runs});
            self.add(&p, tenant.clone(), EX_USER, &u.id, data, None)?;
            self.tokens(&format!("{p}.tokens"), "export", "user", &u.id, tenant, &u.tokens)?;
        }
        for (i, c) in e.connections.iter().enumerate() {
            let p = format!("$.export.connections[{i}]");
            non_empty(&format!("{p}.id"), &c.id)?;
            uuid_field(&format!("{p}.iModelId"), &c.imodel_id)?;
            let tenant = self.reference(format!("{p}.iModelId"), EX_IMODEL, &c.imodel_id, None)?;
            non_empty(&format!("{p}.displayName"), &c.display_name)?;
            one_of(&format!("{p}.authenticationType"), &c.authentication_type, &["User", "Service"])?;
            self.reference(format!("{p}.ownerUserId"), EX_USER, &c.owner_user_id, Some("export"))?;
            if let Some(r) = c.simulate.as_ref().and_then(|s| s.result.as_ref()) {
                one_of(&format!("{p}.simulate.result"), r, SIMULATED_RESULTS)?;
            }
            let simulate = c.simulate.as_ref().map(|s| json!({"result": s.result, "delayMs": s.delay_ms}));
            let data = json!({"iModelId": c.imodel_id.to_ascii_lowercase(), "displayName": c.display_name,
                "authenticationType": c.authentication_type, "ownerUserId": c.owner_user_id, "simulate": simulate});
            self.add(&p, tenant, EX_CONNECTION, &c.id, data, None)?;
        }
        self.out.counts.insert("export", total);
        Ok(())
    }

    fn integrations(&mut self, s: IntegrationsSection) -> Result<(), SeedError> {
        use kind::*;
        let total = s.organizations.len() + s.customers.len() + s.connector_configs.len() + s.connections.len();
        for (i, o) in s.organizations.iter().enumerate() {
            let p = format!("$.integrations.organizations[{i}]");
            non_empty(&format!("{p}.id"), &o.id)?;
            non_empty(&format!("{p}.name"), &o.name)?;
            if let Some(u) = &o.webhook_url {
                url_field(&format!("{p}.webhookUrl"), u)?;
            }
            let tenant = Tenant::Known(o.id.clone());
            self.add(&p, tenant.clone(), IN_ORG, &o.id, json!({"name": o.name, "webhookUrl": o.webhook_url}), None)?;
            self.out.credential_owners.push(("integrations", "organization", o.id.clone()));
            if let Some(k) = &o.api_key {
                self.credential(&format!("{p}.apiKey"), "integrations", "organization", &o.id, tenant.clone(), k, &[])?;
            }
            self.out.credential_owners.push((GATEWAY_FACE, "organization", o.id.clone()));
            for (j, ident) in o.replit_identities.iter().enumerate() {
                let path = format!("{p}.replitIdentities[{j}]");
                self.credential(&path, GATEWAY_FACE, "organization", &o.id, tenant.clone(), ident, &[])?;
            }
        }
        for (i, c) in s.customers.iter().enumerate() {
            let p = format!("$.integrations.customers[{i}]");
            non_empty(&format!("{p}.id"), &c.id)?;
            let tenant = self.reference(format!("{p}.orgId"), IN_ORG, &c.org_id, None)?;
            // Customer ids are unique within an organisation only.
            let rid = format!("{}/{}", c.org_id, c.id);
            let secret = c.api_key.as_ref().map(|k| json!({"apiKey": k}));
            self.add(
                &p,
                tenant.clone(),
                IN_CUSTOMER,
                &rid,
                json!({"customerId": c.id, "metadata": c.metadata}),
                secret,
            )?;
            self.out.credential_owners.push(("integrations", "customer", rid.clone()));
            if let Some(k) = &c.api_key {
                if k.contains('.') {
                    return Err(SeedError::new(
                        format!("{p}.apiKey"),
                        "API keys must not contain '.' (dotted tokens are JWTs)",
                    ));
                }
                self.credential(&format!("{p}.apiKey"), "integrations", "customer", &rid, tenant.clone(), k, &[])?;
            }
            self.out.credential_owners.push((GATEWAY_FACE, "customer", rid.clone()));
            for (j, ident) in c.replit_identities.iter().enumerate() {
                let path = format!("{p}.replitIdentities[{j}]");
                self.credential(&path, GATEWAY_FACE, "customer", &rid, tenant.clone(), ident, &[])?;
            }
        }
        for (i, c) in s.connector_configs.iter().enumerate() {
            let p = format!("$.integrations.connectorConfigs[{i}]");
            if !c.id.starts_with("ccfg_") || c.id.len() <= 5 {
                return Err(SeedError::new(format!("{p}.id"), "must start with \"ccfg_\""));
            }
            let tenant = self.reference(format!("{p}.orgId"), IN_ORG, &c.org_id, None)?;
            let Some(connector) = crate::integrations::connector(&c.connector_name) else {
                return Err(SeedError::new(
                    format!("{p}.connectorName"),
                    format!("{:?} is not a known connector", c.connector_name),
                ));
            };
            // An alias (docs/compatibility.md) names its upstream connector, in the id too.
            if crate::integrations::connector_name_of_id(&c.id) != Some(connector.name.as_str()) {
                return Err(SeedError::new(
                    format!("{p}.id"),
                    format!("must look like ccfg_{}_<suffix>", c.connector_name),
                ));
            }
            if let Some(issue) = connector.validate_config(&Value::Object(c.config.clone()), &[]).into_iter().next() {
                let at = issue.path.iter().map(|s| format!(".{s}")).collect::<String>();
                return Err(SeedError::new(format!("{p}.config{at}"), issue.message));
            }
            self.ccfg_connectors.insert(c.id.clone(), connector.name.clone());
            if let Some(o) = &c.overrides {
                if let Some(u) = &o.token_url {
                    url_field(&format!("{p}.overrides.tokenUrl"), u)?;
                }
                if let Some(u) = &o.authorize_url {
                    url_field(&format!("{p}.overrides.authorizeUrl"), u)?;
                }
                if let Some(u) = &o.base_url {
                    url_field(&format!("{p}.overrides.baseUrl"), u)?;
                }
            }
            let data = json!({"orgId": c.org_id, "connectorName": connector.name,
                "displayName": c.display_name, "disabled": c.disabled, "metadata": {},
                "overrides": c.overrides.as_ref().map(|o| json!({"tokenUrl": o.token_url, "authorizeUrl": o.authorize_url, "baseUrl": o.base_url}))});
            self.add(&p, tenant, IN_CCFG, &c.id, data, Some(Value::Object(c.config.clone())))?;
        }
        for (i, c) in s.connections.iter().enumerate() {
            let p = format!("$.integrations.connections[{i}]");
            if !c.id.starts_with("conn_") || c.id.len() <= 5 {
                return Err(SeedError::new(format!("{p}.id"), "must start with \"conn_\""));
            }
            let tenant = self.reference(format!("{p}.connectorConfigId"), IN_CCFG, &c.connector_config_id, None)?;
            let org = match &tenant {
                Tenant::Known(t) => Some(t.clone()),
                Tenant::OfRef(_) => None,
            };
            match org {
                Some(org) => {
                    self.reference(
                        format!("{p}.customerId"),
                        IN_CUSTOMER,
                        &format!("{org}/{}", c.customer_id),
                        Some(&org),
                    )?;
                }
                None => non_empty(&format!("{p}.customerId"), &c.customer_id)?,
            }
            one_of(&format!("{p}.status"), &c.status, &["healthy", "disconnected", "error", "manual", "unknown"])?;
            let conn_connector = crate::integrations::connector_name_of_id(&c.id)
                .or_else(|| crate::integrations::connector_of_id(&c.id))
                .unwrap_or_default()
                .to_string();
            if let Some(name) = self.ccfg_connectors.get(&c.connector_config_id) {
                if &conn_connector != name {
                    return Err(SeedError::new(format!("{p}.id"), format!("must look like conn_{name}_<suffix>")));
                }
            } else if crate::integrations::connector(&conn_connector).is_none() {
                return Err(SeedError::new(format!("{p}.id"), "must look like conn_<connector>_<suffix>"));
            }
            if let Some(connector) = crate::integrations::connector(&conn_connector)
                && let Some(issue) =
                    connector.validate_settings(&Value::Object(c.settings.clone()), &[]).into_iter().next()
            {
                let at = issue.path.iter().map(|s| format!(".{s}")).collect::<String>();
                return Err(SeedError::new(format!("{p}.settings{at}"), issue.message));
            }
            let data = json!({"connectorConfigId": c.connector_config_id, "customerId": c.customer_id,
                "displayName": c.display_name, "status": c.status, "metadata": c.metadata});
            let mut settings = Value::Object(c.settings.clone());
            crate::integrations::mirror_credentials(&mut settings);
            self.add(&p, tenant, IN_CONNECTION, &c.id, data, Some(settings))?;
        }
        self.out.counts.insert("integrations", total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(doc: &str) -> SeedError {
        plan(doc.as_bytes()).unwrap_err()
    }

    #[test]
    fn unknown_fields_report_their_path() {
        let e = err(r#"{"network":{"enterprises":[{"id":"e","name":"E","oesLicence":true}]}}"#);
        assert_eq!(e.path, "$.network.enterprises[0].oesLicence");
        assert!(e.message.contains("unknown field"), "{e}");
        assert_eq!(err(r#"{"netwrok":{}}"#).path, "$.netwrok");
        assert_eq!(err("{not json").path, "$");
        assert_eq!(err(r#"{"network":{"enterprises":[{"id":"e","name":"E"}"#).path, "$");
        let e = err(r#"{"network":{"enterprises":[{"id":"e","name":5}]}}"#);
        assert_eq!(e.path, "$.network.enterprises[0].name");
    }

    #[test]
    fn semantic_problems_report_their_path() {
        let e = err(r#"{"network":{"enterprises":[{"id":"e","name":"E"}],
            "clients":[{"id":"6f1c2a3e-0000-4000-8000-000000000001","enterpriseId":"e","publicKey":"zz"}]}}"#);
        assert_eq!(e.path, "$.network.clients[0].publicKey");
        let e = err(r#"{"export":{"itwins":[{"id":"6f1c2a3e-0000-4000-8000-000000000001","displayName":"t"}],
            "users":[{"id":"u","itwins":{"6f1c2a3e-0000-4000-8000-000000000001":["read","write"]}}]}}"#);
        assert_eq!(e.path, "$.export.users[0].itwins.6f1c2a3e-0000-4000-8000-000000000001[1]");
        let e = err(
            r#"{"integrations":{"organizations":[{"id":"o","name":"O","apiKey":"k"},{"id":"p","name":"P","apiKey":"k"}]}}"#,
        );
        assert_eq!(e.path, "$.integrations.organizations[1].apiKey");
        let e = err(r#"{"integrations":{"organizations":[{"id":"o","name":"O"},{"id":"o","name":"O"}]}}"#);
        assert_eq!(e.path, "$.integrations.organizations[1].id");
    }

    #[test]
    fn a_nul_anywhere_is_refused_with_its_path() {
        let e = err(r#"{"network":{"enterprises":[{"id":"e","name":"E\u0000"}]}}"#);
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("$.network.enterprises[0].name", "must not contain a NUL character")
        );
        let e = err(r#"{"integrations":{"organizations":[{"id":"o","name":"O"}],
            "customers":[{"orgId":"o","id":"c1","metadata":{"a\u0000":1}}]}}"#);
        assert_eq!(e.path, "$.integrations.customers[0].metadata.a\u{0}");
        // An escaped backslash before "u0000" is no NUL.
        plan(br#"{"network":{"enterprises":[{"id":"e","name":"E\\u0000"}]}}"#).unwrap();
    }

    #[test]
    fn references_inside_and_outside_the_document() {
        let p = plan(
            br#"{"integrations":{"organizations":[{"id":"o","name":"O","apiKey":"key_o"}],
            "customers":[{"orgId":"o","id":"c1"},{"orgId":"elsewhere","id":"c2"}]}}"#,
        )
        .unwrap();
        assert_eq!(p.records.len(), 3);
        assert_eq!(p.records[1].tenant, Tenant::Known("o".into()));
        assert_eq!(p.records[2].tenant, Tenant::OfRef(0));
        assert_eq!(p.refs[0].path, "$.integrations.customers[1].orgId");
        assert_eq!(p.credentials[0].hash, token_hash("key_o"));
        assert_eq!(p.counts["integrations"], 3);
    }

    #[test]
    fn secrets_are_split_from_public_data() {
        let p = plan(
            br#"{"network":{"enterprises":[{"id":"e","name":"E"}],
            "clients":[{"id":"6f1c2a3e-0000-4000-8000-000000000001","enterpriseId":"e",
              "publicKey":"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"}],
            "partners":[{"id":"6f1c2a3e-0000-4000-8000-000000000002","enterpriseId":"e","name":"P",
              "institutionIdentifier":"p","connectionKeySchema":"token"}],
            "connections":[{"id":"6f1c2a3e-0000-4000-8000-000000000003",
              "clientId":"6f1c2a3e-0000-4000-8000-000000000001","partnerId":"6f1c2a3e-0000-4000-8000-000000000002",
              "name":"Desk","nonce":"n1","connectionKey":{"schema":"token","connectionToken":"tok-secret"},
              "createdAt":"2026-01-01T00:00:00Z"}]}}"#,
        )
        .unwrap();
        let conn = p.records.iter().find(|r| r.kind == kind::NET_CONNECTION).unwrap();
        assert!(!conn.data.to_string().contains("tok-secret"));
        assert_eq!(conn.secret.as_ref().unwrap()["connectionToken"], "tok-secret");
        assert_eq!(conn.data["createdAt"], "2026-01-01T00:00:00.000Z");
        assert_eq!(conn.tenant, Tenant::Known("e".into()));
    }
}
