//! Wiring: store, vault, seed, HTTP server and job workers, with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use patchbay_core::seed::{self, SeedError, SeedMode};
use patchbay_core::{Clock, SystemClock, Vault};
use patchbay_http::outbound::Outbound;
use patchbay_http::{AppState, router};
use patchbay_store::worker::{Registry, spawn_workers};
use patchbay_store::{Store, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::keys::load_vault;

/// A failure that the CLI reports with a specific exit code.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid seed document {file}: {error}")]
    Seed { file: String, error: SeedError },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A connected, migrated store and its vault.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub vault: Vault,
}

pub async fn open_backend(config: &Config) -> anyhow::Result<Backend> {
    let vault = load_vault(config.master_keys.as_deref(), &config.database_url, config.key_file.as_deref())?;
    let store = patchbay_store::connect(&config.database_url)
        .await
        .with_context(|| format!("opening database {}", redact_url(&config.database_url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(Backend { store, vault })
}

/// Reads and applies a seed file; invalid documents are `StartError::Seed`.
pub async fn apply_seed_file(
    backend: &Backend,
    path: &std::path::Path,
    now_ms: i64,
    mode: SeedMode,
) -> Result<(), StartError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("reading seed file {file}"))?;
    let plan = seed::plan(&bytes).map_err(|error| StartError::Seed { file: file.clone(), error })?;
    match backend.store.apply_seed(&plan, &backend.vault, now_ms, mode).await {
        Ok(()) => {
            tracing::info!(file = %file, entries = ?plan.counts, ?mode, "seed applied");
            Ok(())
        }
        Err(StoreError::Seed(error)) => Err(StartError::Seed { file, error }),
        Err(e) => Err(anyhow::Error::from(e).context("applying seed").into()),
    }
}

/// Hides the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// `https` on a TLS port, else `http`.
    pub scheme: &'static str,
    /// With `tls.self_signed`: the CA certificate clients trust (PEM).
    pub tls_ca: Option<std::path::PathBuf>,
    pub state: AppState,
    pub outbound: Outbound,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
    grace: Duration,
}

impl Running {
    /// Stops accepting, lets in-flight requests and running jobs finish
    /// (bounded by the grace period), and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server stops (after `shutdown_token().cancel()`).
    pub async fn wait(self) -> anyhow::Result<()> {
        let grace = self.grace;
        let token = self.shutdown.clone();
        let mut handle = self.handle;
        // The grace period starts when shutdown is requested.
        tokio::select! {
            r = &mut handle => return r.context("server task")?,
            _ = token.cancelled() => {}
        }
        match tokio::time::timeout(grace, &mut handle).await {
            Ok(r) => r.context("server task")?,
            Err(_) => {
                tracing::warn!(grace_secs = grace.as_secs(), "grace period over; abandoning unfinished work");
                handle.abort();
                Ok(())
            }
        }
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Opens the backend, applies the configured seed, binds and serves.
pub async fn start(config: &Config, registry: Registry) -> Result<Running, StartError> {
    config.validate()?;
    let backend = open_backend(config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if let Some(seed) = &config.seed {
        apply_seed_file(&backend, seed, clock.now_ms(), SeedMode::StartUp).await?;
    }
    let mut http = config.http();
    if let (Some(sandbox), Some(seed)) = (http.sandbox.as_mut(), &config.seed) {
        // A sandbox reset applies the start-up seed again: kept as it was read.
        let doc = std::fs::read(seed).with_context(|| format!("reading seed file {}", seed.display()))?;
        sandbox.seed_document = Some(Arc::new(doc));
    }
    let state = AppState::new(backend.store.clone(), backend.vault, clock, http);
    if config.sandbox.enabled {
        tracing::warn!("sandbox controls are on (/admin/v1/sandbox): for testing, not for production");
    }
    let export_settings = state.config.export.clone();
    tokio::spawn(async move {
        let removed = patchbay_http::export::runner::sweep_work(&export_settings).await;
        if removed > 0 {
            tracing::info!(removed, "removed exporters' work files left by an earlier process");
        }
    });
    let outbound = state.outbound.clone();
    let (tls, tls_ca) = tls_config(config)?;
    let listener =
        tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr().context("local address")?;
    let shutdown = CancellationToken::new();
    let mut registry = registry;
    registry.register(
        patchbay_http::network::INITIALIZE_JOB,
        patchbay_http::network::initialize::PartnerInitializer::new(state.clone(), outbound.clone()),
    );
    registry.register(
        patchbay_http::network::notify::NOTIFY_JOB,
        patchbay_http::network::notify::PartnerNotifier::new(state.clone(), outbound.clone()),
    );
    registry.register(
        patchbay_http::export::RUN_JOB,
        patchbay_http::export::runner::ExportRunner::new(state.clone(), outbound.clone()),
    );
    registry.register(
        patchbay_http::integrations::webhook::WEBHOOK_JOB,
        patchbay_http::integrations::webhook::WebhookSender::new(state.clone()),
    );
    let refresher = patchbay_http::integrations::refresh::spawn_background(state.clone(), shutdown.clone());
    // Workers read the state's clock (the sandbox's, when it is on).
    let mut workers =
        spawn_workers(backend.store.clone(), state.clock.clone(), registry, config.workers(), shutdown.clone());
    let app = router(state.clone());
    let stop = shutdown.clone();
    let limits = config.conn_limits();
    let handle = tokio::spawn(async move {
        let served = patchbay_http::server::serve(listener, app, limits, tls, stop).await;
        // Workers finish the job in hand, then stop; so does the refresher.
        while workers.join_next().await.is_some() {}
        let _ = refresher.await;
        served.context("HTTP server")
    });
    let scheme = if config.tls.enabled() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "listening");
    Ok(Running {
        addr,
        scheme,
        tls_ca,
        state,
        outbound,
        shutdown,
        handle,
        grace: Duration::from_secs(config.shutdown_grace_secs),
    })
}

/// The TLS configuration the settings ask for, and (self-signed) where the CA was written.
fn tls_config(
    config: &Config,
) -> anyhow::Result<(Option<Arc<patchbay_http::rustls::ServerConfig>>, Option<std::path::PathBuf>)> {
    use patchbay_http::tls;
    let t = &config.tls;
    if t.self_signed {
        let public_host = config
            .public_base_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()));
        let made = tls::self_signed(&tls::hosts_for(&config.listen, public_host.as_deref()))?;
        let dir = config.data_dir().join("tls");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &made.ca_pem).with_context(|| format!("writing {}", ca.display()))?;
        std::fs::write(dir.join("cert.pem"), &made.chain_pem).context("writing the certificate")?;
        write_private(&dir.join("key.pem"), made.key_pem.as_bytes()).context("writing the private key")?;
        let server = tls::server_config(made.chain_pem.as_bytes(), made.key_pem.as_bytes())?;
        return Ok((Some(server), Some(ca)));
    }
    match (&t.cert_file, &t.key_file) {
        (Some(cert), Some(key)) => {
            let cert_pem = std::fs::read(cert).with_context(|| format!("reading tls.cert_file {}", cert.display()))?;
            let key_pem = std::fs::read(key).with_context(|| format!("reading tls.key_file {}", key.display()))?;
            let server = tls::server_config(&cert_pem, &key_pem).context("tls.cert_file / tls.key_file")?;
            Ok((Some(server), None))
        }
        _ => Ok((None, None)),
    }
}

/// Writes a file only its owner may read (a private key).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(super::redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
