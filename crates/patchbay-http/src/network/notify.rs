//! Calls to the partner's platform about the ledger, as BitGo makes them: after
//! an allocation or deallocation is recorded, a durable job POSTs it to the
//! partner's `{callbackUrl}/bitgo/v1/allocations` (or `/deallocations`) with an
//! `X-BitGo-Signature` JWT (the same key as connection initialisation). An
//! asynchronous partner answers later with `PUT /partners/allocations`; the call
//! is retried with backoff until the partner's endpoint answers 2xx (it is
//! idempotent on the id). docs/compatibility.md lists the calls.

use std::sync::Arc;

use async_trait::async_trait;
use patchbay_core::seed::kind;
use patchbay_store::worker::{JobError, JobHandler};
use patchbay_store::{Job, NetSide};
use serde_json::json;

use super::book::kinds;
use super::initialize::KeptKey;
use crate::AppState;
use crate::outbound::Outbound;

pub const NOTIFY_JOB: &str = "network.partner_notify";
/// Attempts before a notification is parked as dead.
pub const MAX_ATTEMPTS: i64 = 10;

/// The job handler for [`NOTIFY_JOB`].
pub struct PartnerNotifier {
    state: AppState,
    outbound: Outbound,
    key: KeptKey,
}

impl PartnerNotifier {
    pub fn new(state: AppState, outbound: Outbound) -> Arc<Self> {
        Arc::new(Self { state, outbound, key: KeptKey::default() })
    }
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

#[async_trait]
impl JobHandler for PartnerNotifier {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let store = &self.state.store;
        let id =
            job.payload["allocationId"].as_str().ok_or_else(|| JobError::Fatal("payload lacks allocationId".into()))?;
        let row = store
            .net_ledger_get(kinds::ALLOCATION, id)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::Fatal(format!("allocation {id} no longer exists")))?;
        let tenant = row.client_tenant.clone().unwrap_or_default();
        let conn_id = row.connection_id.clone().unwrap_or_default();
        let conn = store
            .net_get_connection(NetSide::Client, &tenant, &conn_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::Fatal(format!("connection {conn_id} no longer exists")))?;
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
        let deallocation = row.subtype.as_deref() == Some("deallocation");
        let (path, id_key) =
            if deallocation { ("deallocations", "deallocationId") } else { ("allocations", "allocationId") };
        let body = json!({
            id_key: row.id,
            "amount": row.data["amount"],
            "clientId": conn.client_id,
            "connectionId": conn.id,
            "partnersConnectionId": conn.partners_connection_id,
            "partnersClientId": conn.partners_client_id,
            "status": row.status,
        });
        let bytes = serde_json::to_vec(&body).expect("JSON values serialise");
        let jwt = self.key.get(&self.state).await.map_err(retry)?.sign(self.state.clock.now_ms(), &bytes);
        let req = self
            .outbound
            .request(reqwest::Method::POST, &format!("{callback}/bitgo/v1/{path}"))
            .map_err(|e| JobError::Fatal(e.to_string()))?
            .header("X-BitGo-Signature", jwt)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        let resp = self.outbound.send(crate::outbound::Call::PartnerNotify, req).await.map_err(|e| {
            tracing::warn!(allocation = %row.id, partner = %conn.partner_id, error = %e, "partner notification failed");
            retry(e)
        })?;
        if !resp.status.is_success() {
            return Err(JobError::Retry(format!("the partner answered HTTP {}", resp.status.as_u16())));
        }
        tracing::info!(allocation = %row.id, partner = %conn.partner_id, "partner notified");
        Ok(())
    }
}
