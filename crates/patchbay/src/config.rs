//! Configuration: defaults, then `patchbay.toml`, then `PATCHBAY_*`
//! environment variables (nested keys with `__`), then command-line flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use patchbay_core::ratelimit::RateQuota;
use patchbay_http::export::exporter::{ExportSettings, ExporterConfig};
use patchbay_http::files::{FilesBackend, S3Settings};
use patchbay_http::integrations::IntegrationsSettings;
use patchbay_http::limits::SharedBudgets;
use patchbay_http::outbound::OutboundConfig;
use patchbay_http::{Face, HttpConfig};
use patchbay_store::worker::WorkerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsConfig {
    pub workers: usize,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub max_attempts: i64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_secs: 30,
            poll_interval_ms: 250,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            max_attempts: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboundSection {
    pub allow: Vec<String>,
    pub allow_loopback: bool,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub max_response_bytes: usize,
}

impl Default for OutboundSection {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_loopback: false,
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            max_response_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://...`.
    pub database_url: String,
    /// A seed document applied at start-up.
    pub seed: Option<PathBuf>,
    /// Bearer token of the admin API; unset disables it.
    pub admin_token: Option<String>,
    /// `id:base64,...`: the first key encrypts, all decrypt.
    pub master_keys: Option<String>,
    /// Where SQLite deployments keep a generated key (default: beside the database).
    pub key_file: Option<PathBuf>,
    /// The externally visible base URL, for absolute links.
    pub public_base_url: Option<String>,
    pub log_format: LogFormat,
    /// How long shutdown waits for in-flight requests and running jobs.
    pub shutdown_grace_secs: u64,
    pub request_timeout_secs: u64,
    /// A request head must arrive whole within this (slow clients are cut off).
    pub header_read_timeout_secs: u64,
    /// A keep-alive connection idle between requests is closed after this.
    pub keep_alive_timeout_secs: u64,
    /// Connections served at once.
    pub max_connections: usize,
    pub body_limit_bytes: usize,
    pub jobs: JobsConfig,
    pub outbound: OutboundSection,
    /// Per face (`network`, `export`, `integrations`, `admin`): `{per_second, burst}`;
    /// `redis_url` keeps the budgets in Redis.
    pub rate_limits: RateLimitsSection,
    /// Failed authentications per client address, across faces (`per_second = 0` turns it off).
    pub auth_failure_limit: RateQuota,
    /// Where produced files and logs live (default: `patchbay-data` beside a SQLite
    /// database, else `./patchbay-data`).
    pub data_dir: Option<PathBuf>,
    pub export: ExportSection,
    /// Where produced files and run logs are kept (`local`, `database`, `s3`).
    pub files: FilesSection,
    pub integrations: IntegrationsSettings,
    pub tls: TlsSection,
    pub sandbox: SandboxSection,
}

/// Sandbox controls for teams testing against Patchbay (docs/sandbox.md). Off by
/// default; while off, `/admin/v1/sandbox/...` answers 404.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxSection {
    pub enabled: bool,
    /// Journal entries kept (a ring: the oldest go first).
    pub journal_capacity: usize,
    /// Request and response bodies kept up to this many bytes each.
    pub journal_body_bytes: usize,
    /// Start in deterministic mode with this seed (and return to it on reset).
    pub deterministic_seed: Option<u64>,
}

impl Default for SandboxSection {
    fn default() -> Self {
        Self { enabled: false, journal_capacity: 1000, journal_body_bytes: 4096, deterministic_seed: None }
    }
}

/// HTTPS on the listen address: a certificate chain and key (PEM), or a
/// self-signed one made at start-up.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TlsSection {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Make a throw-away CA and certificate for the listen address at start-up, written
    /// to `<data_dir>/tls/` (`ca.pem` is what clients trust); `serve --tls-self-signed`.
    pub self_signed: bool,
}

impl TlsSection {
    pub fn enabled(&self) -> bool {
        self.self_signed || self.cert_file.is_some() || self.key_file.is_some()
    }
}

/// `[rate_limits]`: a quota per face, shared by every replica — in PostgreSQL when that
/// is the database, in Redis when `redis_url` is set, else (SQLite) in the process.
/// Unknown keys are refused by name (a misspelt `redis_url` must not be read as a face, whose
/// error would repeat the URL and its password).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsSection {
    /// `redis://[user:password@]host:port[/db]`: budgets kept in Redis.
    pub redis_url: Option<String>,
    pub network: Option<RateQuota>,
    pub export: Option<RateQuota>,
    pub integrations: Option<RateQuota>,
    pub admin: Option<RateQuota>,
}

impl RateLimitsSection {
    /// The quota of each face that has one.
    pub fn quotas(&self) -> impl Iterator<Item = (Face, RateQuota)> {
        [
            (Face::Network, self.network),
            (Face::Export, self.export),
            (Face::Integrations, self.integrations),
            (Face::Admin, self.admin),
        ]
        .into_iter()
        .filter_map(|(f, q)| Some((f, q?)))
    }
}

/// `[files]`: `backend = "local"` (under `data_dir`; several replicas need a shared
/// volume), `"database"` (chunked rows in the database every replica reads) or `"s3"`
/// (an S3-compatible bucket, `[files.s3]`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FilesSection {
    pub backend: FilesBackend,
    pub s3: S3Settings,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ExportSection {
    /// Exporter per export type (`IFC`, `PDF`); unconfigured types use `simulate`.
    pub exporters: BTreeMap<String, ExporterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://./patchbay.db".into(),
            seed: None,
            admin_token: None,
            master_keys: None,
            key_file: None,
            public_base_url: None,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 30,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            keep_alive_timeout_secs: 60,
            max_connections: 4096,
            body_limit_bytes: 1024 * 1024,
            jobs: JobsConfig::default(),
            outbound: OutboundSection::default(),
            rate_limits: RateLimitsSection::default(),
            auth_failure_limit: RateQuota { per_second: 5, burst: 50 },
            data_dir: None,
            export: ExportSection::default(),
            files: FilesSection::default(),
            integrations: IntegrationsSettings::default(),
            tls: TlsSection::default(),
            sandbox: SandboxSection::default(),
        }
    }
}

/// A Redis URL the client accepts; the error does not repeat it (it may hold a password).
fn redis_url_ok(given: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(given).map_err(|e| anyhow::anyhow!("rate_limits.redis_url is not a URL ({e})"))?;
    let host = parsed.host_str().is_some_and(|h| !h.is_empty());
    if !matches!((parsed.scheme(), host), ("redis", true) | ("redis+unix" | "unix", _)) {
        anyhow::bail!("rate_limits.redis_url must be redis://host[:port][/db]");
    }
    Ok(())
}

impl Config {
    /// Loads defaults < file < environment. With `explicit`, the file must exist.
    pub fn load(path: &Path, explicit: bool) -> anyhow::Result<Self> {
        if explicit && !path.exists() {
            anyhow::bail!("configuration file {} does not exist", path.display());
        }
        Self::figment(path).extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    fn figment(path: &Path) -> Figment {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("PATCHBAY_").split("__").ignore(&["test_database_url"]))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(url) = self.rate_limits.redis_url.as_deref().filter(|u| !u.is_empty()) {
            redis_url_ok(url)?;
        }
        if self.admin_token.as_deref().is_some_and(|t| t.trim().len() < 8) {
            anyhow::bail!("admin_token must be at least 8 characters");
        }
        for (t, e) in &self.export.exporters {
            if !patchbay_core::export::EXPORT_TYPES.contains(&t.as_str()) {
                anyhow::bail!("export.exporters.{t}: unknown export type (IFC, PDF)");
            }
            if let ExporterConfig::Command { argv, .. } = e
                && argv.is_empty()
            {
                anyhow::bail!("export.exporters.{t}.argv must name a program");
            }
            if let ExporterConfig::Simulate { result, .. } = e
                && !patchbay_core::seed::SIMULATED_RESULTS.contains(&result.as_str())
            {
                anyhow::bail!("export.exporters.{t}.result: unknown result {result:?}");
            }
        }
        if self.sandbox.enabled && self.sandbox.journal_capacity > 1_000_000 {
            anyhow::bail!("sandbox.journal_capacity must be at most 1000000");
        }
        if self.files.backend == FilesBackend::S3 {
            self.files.s3.bucket().map_err(anyhow::Error::msg)?;
        }
        if self.jobs.workers == 0 {
            anyhow::bail!("jobs.workers must be at least 1");
        }
        let t = &self.tls;
        if !t.self_signed && t.cert_file.is_some() != t.key_file.is_some() {
            anyhow::bail!("tls.cert_file and tls.key_file go together: give both, or neither");
        }
        if t.self_signed && t.cert_file.is_some() {
            anyhow::bail!("tls.self_signed makes its own certificate: leave tls.cert_file and tls.key_file unset");
        }
        Ok(())
    }

    pub fn http(&self) -> HttpConfig {
        HttpConfig {
            body_limit_bytes: self.body_limit_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            rate_limits: self.rate_limits.quotas().collect(),
            shared_budgets: match self.rate_limits.redis_url.as_deref().filter(|u| !u.is_empty()) {
                Some(url) => SharedBudgets::Redis(url.to_string()),
                None if self.database_url.starts_with("postgres") => SharedBudgets::Database,
                None => SharedBudgets::Local,
            },
            auth_failure_limit: Some(self.auth_failure_limit).filter(|q| q.per_second > 0),
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            public_base_url: self.public_base_url.clone().filter(|u| !u.is_empty()),
            tls: self.tls.enabled(),
            export: ExportSettings {
                data_dir: self.data_dir(),
                files: self.files.backend.clone(),
                s3: self.files.s3.clone(),
                exporters: self.export.exporters.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
            integrations: self.integrations.clone(),
            outbound: self.outbound(),
            sandbox: self.sandbox.enabled.then_some(patchbay_http::sandbox::SandboxSettings {
                journal_capacity: self.sandbox.journal_capacity,
                journal_body_bytes: self.sandbox.journal_body_bytes,
                deterministic_seed: self.sandbox.deterministic_seed,
                seed_document: None,
            }),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        match patchbay_store::sqlite_path(&self.database_url) {
            Some(db) => db.parent().map(|p| p.join("patchbay-data")).unwrap_or_else(|| PathBuf::from("patchbay-data")),
            None => PathBuf::from("patchbay-data"),
        }
    }

    pub fn conn_limits(&self) -> patchbay_http::server::ConnLimits {
        patchbay_http::server::ConnLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(self.keep_alive_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }

    pub fn workers(&self) -> WorkerConfig {
        WorkerConfig {
            workers: self.jobs.workers,
            lease_ms: (self.jobs.lease_secs.max(1) * 1000) as i64,
            poll_interval_ms: self.jobs.poll_interval_ms.max(1),
            backoff_base_ms: self.jobs.backoff_base_ms.max(1) as i64,
            backoff_max_ms: self.jobs.backoff_max_ms.max(1) as i64,
        }
    }

    pub fn outbound(&self) -> OutboundConfig {
        OutboundConfig {
            connect_timeout: Duration::from_millis(self.outbound.connect_timeout_ms),
            timeout: Duration::from_millis(self.outbound.timeout_ms),
            max_response_bytes: self.outbound.max_response_bytes,
            allow: self.outbound.allow.clone(),
            allow_loopback: self.outbound.allow_loopback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "patchbay.toml",
                r#"
                listen = "0.0.0.0:9000"
                database_url = "sqlite://./x.db"
                [jobs]
                workers = 2
                [rate_limits]
                redis_url = "redis://127.0.0.1:6379"
                [rate_limits.export]
                per_second = 5
                burst = 10
                "#,
            )?;
            jail.set_env("PATCHBAY_LISTEN", "127.0.0.1:9001");
            jail.set_env("PATCHBAY_JOBS__LEASE_SECS", "7");
            jail.set_env("PATCHBAY_ADMIN_TOKEN", "admin-secret-1");
            jail.set_env("PATCHBAY_TEST_DATABASE_URL", "postgres://ignored");
            let c = Config::load(Path::new("patchbay.toml"), true).expect("loads");
            assert_eq!(c.listen, "127.0.0.1:9001");
            assert_eq!(c.database_url, "sqlite://./x.db");
            assert_eq!((c.jobs.workers, c.jobs.lease_secs), (2, 7));
            assert_eq!(c.admin_token.as_deref(), Some("admin-secret-1"));
            assert_eq!(c.http().rate_limits[&Face::Export], RateQuota { per_second: 5, burst: 10 });
            assert_eq!(c.http().shared_budgets, SharedBudgets::Redis("redis://127.0.0.1:6379".into()));
            c.validate().expect("valid");
            Ok(())
        });
    }

    #[test]
    fn defaults_and_missing_explicit_file() {
        figment::Jail::expect_with(|_jail| {
            let c = Config::load(Path::new("patchbay.toml"), false).expect("defaults");
            assert_eq!(c.listen, "127.0.0.1:8080");
            assert_eq!(c.database_url, "sqlite://./patchbay.db");
            assert!(Config::load(Path::new("nope.toml"), true).is_err());
            Ok(())
        });
    }

    #[test]
    fn an_s3_file_backend_must_name_a_bucket_it_can_address() {
        let mut c = Config::default();
        c.files.backend = FilesBackend::S3;
        c.files.s3.endpoint = "http://127.0.0.1:9000".into();
        assert_eq!(c.validate().unwrap_err().to_string(), "files.s3.bucket must be set");
        c.files.s3.bucket = "exports".into();
        // An address is no host a bucket's name can be put in front of.
        assert!(c.validate().unwrap_err().to_string().starts_with("files.s3.endpoint cannot address a bucket"));
        c.files.s3.path_style = true;
        c.validate().unwrap();
        c.files.s3.endpoint = "not a url".into();
        assert!(c.validate().unwrap_err().to_string().starts_with("files.s3.endpoint is not a URL"));
    }

    #[test]
    fn unknown_rate_limit_keys_are_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[rate_limits.netwrok]\nper_second = 1\nburst = 1\n")?;
            let e = Config::load(Path::new("a.toml"), true).unwrap_err().to_string();
            assert!(e.contains("netwrok"), "{e}");
            // A misspelt URL key: named, its value (a password) not repeated.
            jail.create_file("b.toml", "[rate_limits]\nredisurl = \"redis://:hunter2@cache:6379\"\n")?;
            let e = Config::load(Path::new("b.toml"), true).unwrap_err().to_string();
            assert!(e.contains("redisurl") && !e.contains("hunter2"), "{e}");
            Ok(())
        });
    }
}
