//! Shared application state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use patchbay_core::ratelimit::{AuthFailures, RateQuota};
use patchbay_core::{Clock, Entropy, SandboxClock, Vault};
use patchbay_store::Store;

use crate::face::Face;
use crate::metrics::Metrics;

/// HTTP settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Token-bucket quota per face (absent: unlimited).
    pub rate_limits: HashMap<Face, RateQuota>,
    /// Where the budgets are kept when several replicas share them.
    pub shared_budgets: crate::limits::SharedBudgets,
    /// Failed authentications per client address (absent: unlimited).
    pub auth_failure_limit: Option<RateQuota>,
    /// Bearer token of the admin API; `None` disables it.
    pub admin_token: Option<String>,
    /// The externally visible base URL for absolute links (else taken from `Host`).
    pub public_base_url: Option<String>,
    /// Whether the server listens with TLS (links taken from `Host` are then `https`).
    pub tls: bool,
    /// Export face: data directory and exporters.
    pub export: crate::export::exporter::ExportSettings,
    /// Integrations face: refresh timing.
    pub integrations: crate::integrations::IntegrationsSettings,
    /// The outbound HTTP client's settings.
    pub outbound: crate::outbound::OutboundConfig,
    /// Sandbox controls (docs/sandbox.md); `None` (the default) turns them off.
    pub sandbox: Option<crate::sandbox::SandboxSettings>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            rate_limits: HashMap::new(),
            shared_budgets: Default::default(),
            auth_failure_limit: None,
            admin_token: None,
            public_base_url: None,
            tls: false,
            export: Default::default(),
            integrations: Default::default(),
            outbound: Default::default(),
            sandbox: None,
        }
    }
}

/// Shared application state: one `Arc`, so the several clones a request makes
/// (middleware, guard, handler) cost one reference count each, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

/// What [`AppState`] holds (reached through `Deref`: `state.store`).
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
    /// Where generated ids, nonces, tokens and keys come from (seeded in deterministic mode).
    pub entropy: Arc<Entropy>,
    /// The same for background jobs (their own sequence, so that deterministic runs do
    /// not depend on when a job runs between requests).
    pub job_entropy: Arc<Entropy>,
    /// The sandbox's state, when it is on.
    pub sandbox: Option<Arc<crate::sandbox::Sandbox>>,
    pub config: Arc<HttpConfig>,
    pub metrics: Arc<Metrics>,
    /// The one client for calls to the outside.
    pub outbound: crate::outbound::Outbound,
    /// Where produced files and run logs are kept.
    pub files: Arc<crate::files::Files>,
    /// Integrations runtime state (refresh single-flight, token secret).
    pub integrations: Arc<crate::integrations::Runtime>,
    /// Every face's rate limits (shared by replicas when configured).
    pub limits: crate::limits::Limits,
    /// Failed authentications per client address, across faces.
    pub auth_failures: AuthFailures,
}

// `limiters[face.index()]`: `Face::ALL` lists every face at its index.
const _: () = {
    let mut i = 0;
    while i < Face::ALL.len() {
        assert!(Face::ALL[i].index() == i);
        i += 1;
    }
};

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, vault: Vault, clock: Arc<dyn Clock>, config: HttpConfig) -> Self {
        let limits = crate::limits::Limits::new(&config.rate_limits, &config.shared_budgets, store.clone());
        let auth_failures = AuthFailures::new(config.auth_failure_limit);
        let entropy = Arc::new(Entropy::system());
        let job_entropy = Arc::new(Entropy::system());
        // With the sandbox on, every face reads the sandbox's clock, made over the given one.
        let (clock, sandbox) = match &config.sandbox {
            Some(settings) => {
                let moved = Arc::new(SandboxClock::over(clock));
                let sandbox =
                    crate::sandbox::Sandbox::new(settings.clone(), moved.clone(), entropy.clone(), job_entropy.clone());
                (moved as Arc<dyn Clock>, Some(Arc::new(sandbox)))
            }
            None => (clock, None),
        };
        let ex = &config.export;
        let files = crate::files::Files::new(&ex.files, &ex.s3, ex.data_dir.clone(), store.clone());
        Self(Arc::new(Parts {
            files: Arc::new(files),
            store,
            vault: Arc::new(vault),
            clock,
            entropy,
            job_entropy,
            outbound: crate::outbound::Outbound::new(config.outbound.clone()).with_sandbox(sandbox.clone()),
            sandbox,
            integrations: Arc::new(crate::integrations::Runtime::default()),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            limits,
            auth_failures,
        }))
    }

    /// Takes one token from the principal's bucket of this face; the error is
    /// the face's own 429 response with `Retry-After`.
    pub async fn rate_limit(&self, face: Face, principal: &str) -> Result<(), axum::response::Response> {
        self.limits.take(face, principal).await.map_err(|secs| face.rate_limited(secs))
    }

    /// The caller of a request is authenticated: takes one token from its bucket
    /// (the face's 429 once spent) and, with the sandbox on, notes the caller and
    /// applies the fault rules that name it (their `status` answer is the error).
    pub async fn authenticated(
        &self,
        face: Face,
        principal: &str,
        tenant: Option<&str>,
    ) -> Result<(), axum::response::Response> {
        self.rate_limit(face, principal).await?;
        match &self.sandbox {
            Some(sandbox) => crate::sandbox::caller(sandbox, face, principal, tenant),
            None => Ok(()),
        }
    }

    /// The same for a public route (no principal): the client's address is the key.
    /// Address budgets are this process's own (they are taken before the request's
    /// future runs; a shared budget is one per principal).
    pub fn rate_limit_address(&self, face: Face, ip: std::net::IpAddr) -> Result<(), axum::response::Response> {
        // Principal ids never start with `@`: the two kinds of key cannot meet.
        let key = format!("@{}", patchbay_core::ratelimit::address_key(ip));
        self.limits.take_local(face, &key).map_err(|secs| face.rate_limited(secs))
    }
}
