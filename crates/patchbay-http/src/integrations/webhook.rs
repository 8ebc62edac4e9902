//! Event delivery to an organisation's `webhookUrl` (a documented extension):
//! a durable job per event, retried with backoff, signed with HMAC-SHA256.

use std::sync::Arc;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use patchbay_core::seed::kind;
use patchbay_store::Job;
use patchbay_store::worker::{JobError, JobHandler};
use sha2::Sha256;

use crate::AppState;

pub const WEBHOOK_JOB: &str = "integrations.webhook";
pub const SIGNATURE_HEADER: &str = "X-Patchbay-Signature";

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, where the key is
/// the secret's text as `GET /admin/v1/integrations/organizations/{org}/webhook-secret`
/// returns it (64 hex characters, used as they are, not decoded).
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub struct WebhookSender {
    state: AppState,
}

impl WebhookSender {
    pub fn new(state: AppState) -> Arc<Self> {
        Arc::new(Self { state })
    }
}

#[async_trait]
impl JobHandler for WebhookSender {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let state = &self.state;
        let org = state
            .store
            .get_record(&job.tenant, kind::IN_ORG, &job.tenant)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?
            .ok_or_else(|| JobError::Fatal("the organisation no longer exists".into()))?;
        let Some(url) = org.data["webhookUrl"].as_str() else {
            return Ok(()); // webhook removed since: nothing to deliver
        };
        let body = serde_json::to_vec(&job.payload["event"]).expect("JSON values serialise");
        // The key is the secret exactly as the admin API hands it out (its text).
        let secret = super::webhook_key(state, &job.tenant).await.map_err(|e| JobError::Retry(format!("{e:?}")))?;
        let t = state.clock.now_ms() / 1000;
        let req = state
            .outbound
            .request(reqwest::Method::POST, url)
            .map_err(|e| JobError::Fatal(e.to_string()))?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Patchbay-Event", job.payload["event"]["name"].as_str().unwrap_or_default())
            .header(SIGNATURE_HEADER, signature(secret.as_bytes(), t, &body))
            .body(body);
        match state.outbound.send(crate::outbound::Call::Webhook, req).await {
            Ok(r) if r.status.is_success() => Ok(()),
            Ok(r) => Err(JobError::Retry(format!("the webhook answered HTTP {}", r.status.as_u16()))),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_answer() {
        // HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog") — RFC 4231-style public vector.
        let sig = super::signature(b"key", 1, b"x");
        assert!(sig.starts_with("t=1,v1="));
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
