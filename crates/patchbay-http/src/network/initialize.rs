//! Partner initialisation: after a connection is created, a durable job calls
//! the partner's `POST {callbackUrl}/bitgo/v1/connections` with an
//! `X-BitGo-Signature` RS256 JWT, and stores the partner's ids from a
//! matching 200 reply. Anything else is retried with backoff (the partner's
//! endpoint is idempotent on `connectionId`).

use std::sync::Arc;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use patchbay_core::seed::kind;
use patchbay_store::worker::{JobError, JobHandler};
use patchbay_store::{Job, NetSide, Record, RecordWrite, Store, StoreError};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::outbound::Outbound;

/// Attempts before an initialisation is parked as dead.
pub const MAX_ATTEMPTS: i64 = 10;
const KEY_KIND: &str = "network.signing_key";
const KEY_TENANT: &str = "network";
const KEY_ID: &str = "x-bitgo-signature";
/// Lifetime of each JWT (BitGo: at most one minute).
pub const JWT_TTL_SECS: i64 = 60;

/// Patchbay's RSA key for `X-BitGo-Signature`: generated once, stored encrypted.
pub struct JwtKey {
    pub kid: String,
    pub public_pem: String,
    encoding: EncodingKey,
}

impl JwtKey {
    /// Signs a fresh token: unique `jti`, `iat`, `exp = iat + 60`, and the body's SHA-256.
    pub fn sign(&self, now_ms: i64, body: &[u8]) -> String {
        let iat = now_ms / 1000;
        let claims = json!({
            "iss": "patchbay",
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": iat,
            "exp": iat + JWT_TTL_SECS,
            "bodySha256": hex::encode(Sha256::digest(body)),
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("RS256 signing with a valid key")
    }
}

fn from_record(rec: &Record, vault: &patchbay_core::Vault) -> Result<JwtKey, StoreError> {
    let secret = rec.open_secret(vault)?.unwrap_or(Value::Null);
    let private_pem = secret["privateKeyPem"].as_str().ok_or_else(|| StoreError::Corrupt("signing key".into()))?;
    let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("signing key: {e}")))?;
    Ok(JwtKey {
        kid: rec.data["kid"].as_str().unwrap_or_default().to_string(),
        public_pem: rec.data["publicKeyPem"].as_str().unwrap_or_default().to_string(),
        encoding,
    })
}

/// Loads the signing key, generating and storing it (encrypted) the first time.
/// Replicas racing here agree: only the first insert wins, and all re-read it.
pub async fn load_or_create(
    store: &Arc<dyn Store>,
    vault: &patchbay_core::Vault,
    now_ms: i64,
) -> Result<JwtKey, StoreError> {
    if let Some(rec) = store.get_record(KEY_TENANT, KEY_KIND, KEY_ID).await? {
        return from_record(&rec, vault);
    }
    let (private_pem, public_pem) = tokio::task::spawn_blocking(|| {
        let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key generation");
        let private = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 encoding").to_string();
        let public = key.to_public_key().to_public_key_pem(LineEnding::LF).expect("SPKI encoding");
        (private, public)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("key generation task: {e}")))?;
    let kid = hex::encode(&Sha256::digest(public_pem.as_bytes())[..8]);
    let rec = RecordWrite {
        tenant: KEY_TENANT.into(),
        kind: KEY_KIND.into(),
        id: KEY_ID.into(),
        data: json!({"kid": kid, "algorithm": "RS256", "publicKeyPem": public_pem}),
        secret: Some(json!({"privateKeyPem": private_pem})),
    };
    if store.create_record(&rec, vault, now_ms).await? {
        tracing::info!(kid = %kid, "generated the X-BitGo-Signature RSA key");
    }
    let rec = store
        .get_record(KEY_TENANT, KEY_KIND, KEY_ID)
        .await?
        .ok_or_else(|| StoreError::Corrupt("signing key".into()))?;
    from_record(&rec, vault)
}

/// The `X-BitGo-Signature` key of a job handler that calls partners: loaded (or made)
/// on first use, then kept.
#[derive(Default)]
pub struct KeptKey(tokio::sync::OnceCell<Arc<JwtKey>>);

impl KeptKey {
    pub async fn get(&self, state: &AppState) -> Result<Arc<JwtKey>, StoreError> {
        self.0
            .get_or_try_init(|| async {
                load_or_create(&state.store, &state.vault, state.clock.now_ms()).await.map(Arc::new)
            })
            .await
            .cloned()
    }
}

/// The job handler for [`super::INITIALIZE_JOB`].
pub struct PartnerInitializer {
    state: AppState,
    outbound: Outbound,
    key: KeptKey,
}

impl PartnerInitializer {
    pub fn new(state: AppState, outbound: Outbound) -> Arc<Self> {
        Arc::new(Self { state, outbound, key: KeptKey::default() })
    }
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

#[async_trait]
impl JobHandler for PartnerInitializer {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let store = &self.state.store;
        let id =
            job.payload["connectionId"].as_str().ok_or_else(|| JobError::Fatal("payload lacks connectionId".into()))?;
        let conn = store
            .net_get_connection(NetSide::Client, &job.tenant, id)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::Fatal(format!("connection {id} no longer exists")))?;
        if conn.initialized {
            return Ok(());
        }
        let partner = store
            .find_record(kind::NET_PARTNER, &conn.partner_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::Fatal(format!("partner {} no longer exists", conn.partner_id)))?;
        let callback = partner.data["callbackUrl"]
            .as_str()
            .ok_or_else(|| JobError::Fatal("the partner has no callbackUrl".into()))?
            .trim_end_matches('/')
            .to_string();
        let client = store.find_record(kind::NET_CLIENT, &conn.client_id).await.map_err(retry)?;
        let wallet = client.as_ref().and_then(|c| c.data["walletId"].as_str()).unwrap_or_default().to_string();
        let aad = Record::aad(&conn.tenant, kind::NET_CONNECTION, &conn.id);
        let key_plain = self.state.vault.open(&conn.key, &aad).map_err(|e| JobError::Fatal(e.to_string()))?;
        let key: Map<String, Value> = serde_json::from_slice(&key_plain).map_err(|e| JobError::Fatal(e.to_string()))?;
        // The schema's key fields travel as they are (token: connectionToken).
        let mut body = json!({
            "clientId": conn.client_id, "clientWalletId": wallet, "connectionId": conn.id, "partnerId": conn.partner_id,
        });
        for (k, v) in key.iter().filter(|(k, _)| k.as_str() != "schema") {
            body[k] = v.clone();
        }
        let bytes = serde_json::to_vec(&body).expect("JSON values serialise");
        let jwt = self.key.get(&self.state).await.map_err(retry)?.sign(self.state.clock.now_ms(), &bytes);
        let req = self
            .outbound
            .request(reqwest::Method::POST, &format!("{callback}/bitgo/v1/connections"))
            .map_err(|e| JobError::Fatal(e.to_string()))?
            .header("X-BitGo-Signature", jwt)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        let resp = match self.outbound.send(crate::outbound::Call::PartnerInitialize, req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(connection = %conn.id, partner = %conn.partner_id, error = %e, "partner initialisation failed");
                return Err(retry(e));
            }
        };
        let reply: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let text = |k: &str| reply[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
        let problem = if resp.status != reqwest::StatusCode::OK {
            Some(format!("the partner answered HTTP {}", resp.status.as_u16()))
        } else if text("clientId").as_deref() != Some(conn.client_id.as_str()) {
            Some("the partner's reply carries another clientId".to_string())
        } else if text("connectionId").as_deref() != Some(conn.id.as_str()) {
            Some("the partner's reply carries another connectionId".to_string())
        } else if text("partnersClientId").is_none() || text("partnersConnectionId").is_none() {
            Some("the partner's reply lacks partnersClientId or partnersConnectionId".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            tracing::warn!(connection = %conn.id, partner = %conn.partner_id, problem = %p, "partner initialisation rejected");
            return Err(JobError::Retry(p));
        }
        let (pcl, pco) =
            (text("partnersClientId").unwrap_or_default(), text("partnersConnectionId").unwrap_or_default());
        store
            .net_mark_initialized(&conn.tenant, &conn.id, &pcl, &pco, self.state.clock.now_ms())
            .await
            .map_err(retry)?;
        tracing::info!(connection = %conn.id, partner = %conn.partner_id, "connection initialised by the partner");
        Ok(())
    }
}
