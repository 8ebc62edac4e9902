//! Storage for Patchbay: the [`Store`] trait and its SQLite and PostgreSQL backends.
//!
//! Both backends share their SQL (written once, in [`sql`]) and are generated
//! from one implementation by a macro; only the job-claim query and the
//! transaction start differ. One behavioural test suite (`tests/store.rs`)
//! runs against both.

#[macro_use]
mod ledger;
mod backend;
pub mod kept;
mod readers;
pub mod sandbox;
pub mod shared;
pub mod testing;
pub mod worker;

use std::sync::Arc;

use async_trait::async_trait;
use patchbay_core::seed::{SeedError, SeedMode, SeedPlan};
use patchbay_core::{Sealed, Vault, VaultError};
use serde_json::Value;

pub use backend::{PgStore, SqliteStore};
pub use ledger::{BalanceWrite, Committed, LedgerCommit, LedgerFilter, LedgerRow, NetBalance};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(sqlx::Error),
    /// A value held a NUL character, which PostgreSQL text cannot store (SQLite
    /// can). The faces refuse such values first; this keeps any they miss a 4xx.
    #[error("a value contains a NUL character")]
    Nul,
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store is closed")]
    Closed,
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid seed: {0}")]
    Seed(SeedError),
    #[error("secret could not be decrypted: {0}")]
    Vault(#[from] VaultError),
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // 22021 character_not_in_repertoire: PostgreSQL's answer to a NUL in text.
        match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code == "22021" => StoreError::Nul,
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of connections, shared: a page kept by the store (kept.rs) is handed
/// out without copying it.
pub type Page<T> = std::sync::Arc<Vec<T>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A stored object of any face.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub tenant: String,
    pub kind: String,
    pub id: String,
    pub data: Value,
    pub secret: Option<Sealed>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record {
    /// The additional authenticated data that binds a secret to its owner.
    pub fn aad(tenant: &str, kind: &str, id: &str) -> Vec<u8> {
        // `tenant NUL kind NUL id`, without the formatting machinery (every secret read builds one).
        let mut aad = Vec::with_capacity(tenant.len() + kind.len() + id.len() + 2);
        for (i, part) in [tenant, kind, id].into_iter().enumerate() {
            if i > 0 {
                aad.push(0);
            }
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    /// Decrypts the secret part, if any.
    pub fn open_secret(&self, vault: &Vault) -> Result<Option<Value>> {
        let Some(sealed) = &self.secret else { return Ok(None) };
        let plain = vault.open(sealed, &Self::aad(&self.tenant, &self.kind, &self.id))?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("secret of {}/{}: {e}", self.kind, self.id)))
    }
}

/// A record to write, with its secret part still in plaintext (the store seals it).
#[derive(Debug, Clone)]
pub struct RecordWrite {
    pub tenant: String,
    pub kind: String,
    pub id: String,
    pub data: Value,
    pub secret: Option<Value>,
}

/// A principal found by a token hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub face: String,
    pub principal_kind: String,
    pub principal_id: String,
    pub tenant: String,
    pub scopes: Vec<String>,
}

/// [`Store::find_credential_with`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialWith {
    pub credential: Credential,
    pub principal: Option<Record>,
    pub other: Option<Record>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub tenant: String,
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub max_attempts: i64,
    pub run_at: i64,
}

impl NewJob {
    /// A job runnable now with a fresh id.
    pub fn now(tenant: &str, kind: &str, payload: Value, max_attempts: i64, now_ms: i64) -> Self {
        Self {
            tenant: tenant.into(),
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.into(),
            payload,
            max_attempts,
            run_at: now_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
    pub const ALL: [JobState; 4] = [JobState::Queued, JobState::Running, JobState::Done, JobState::Dead];
}

/// Jobs of one kind in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStat {
    pub kind: String,
    pub state: JobState,
    pub count: i64,
    pub with_errors: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub tenant: String,
    pub id: String,
    pub kind: String,
    pub payload: Value,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
}

/// A Network face connection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConnection {
    /// The client's enterprise.
    pub tenant: String,
    pub id: String,
    /// The partner's enterprise.
    pub partner_tenant: String,
    pub client_id: String,
    pub partner_id: String,
    pub name: String,
    pub active: bool,
    pub nonce: String,
    pub network_account_id: String,
    pub proof: String,
    pub partners_connection_id: Option<String>,
    pub partners_client_id: Option<String>,
    pub initialized: bool,
    pub key_schema: String,
    /// The connection key, sealed (AAD: `Record::aad(tenant, "network.connection", id)`).
    pub key: Sealed,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which side of a connection an enterprise looks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetSide {
    Client,
    Partner,
}

/// List filters; empty vectors mean "no filter".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetConnectionFilter {
    pub active: Option<bool>,
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub partner_ids: Vec<String>,
    pub client_ids: Vec<String>,
    pub partners_client_ids: Vec<String>,
    pub partners_connection_ids: Vec<String>,
}

/// An Export face connection as stored. Tenant = the iModel's iTwin.
#[derive(Debug, Clone, PartialEq)]
pub struct ExConnection {
    pub tenant: String,
    pub id: String,
    pub imodel_id: String,
    pub display_name: String,
    pub authentication_type: String,
    pub owner_user_id: String,
    /// Per-connection override of the `simulate` exporter (`{"result", "delayMs"}`).
    pub simulate: Option<Value>,
    pub last_run_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An Export run as stored: run-level fields, the validated request and the
/// `jobs` array (with their tasks) as rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ExRun {
    pub tenant: String,
    pub id: String,
    pub connection_id: String,
    pub state: String,
    pub result: String,
    pub request: Value,
    pub jobs: Value,
    pub start_at: Option<i64>,
    pub end_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What creating a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCreated {
    Created,
    /// A run of this connection is still active (its id).
    Active(String),
    /// Another create won the race at the same moment.
    Raced,
}

/// What deleting a connection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExDeleted {
    Deleted,
    NotFound,
    Active,
}

/// An Integrations face connection as stored. Tenant = the organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct InConnection {
    pub tenant: String,
    pub id: String,
    pub connector_name: String,
    pub connector_config_id: String,
    pub customer_id: Option<String>,
    pub integration_id: Option<String>,
    pub display_name: Option<String>,
    pub disabled: bool,
    pub status: Option<String>,
    pub status_message: Option<String>,
    pub metadata: Option<Value>,
    /// The settings (credentials), sealed (AAD: `Record::aad(tenant, "integrations.connection", id)`).
    pub settings: Sealed,
    /// When the OAuth access token expires (ms), for the refresher.
    pub expires_at: Option<i64>,
    /// Whether a refresh token is held.
    pub refreshable: bool,
    /// Incremented on every settings or status write (compare-and-swap).
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Connection list filters (all ANDed; empty means no filter).
#[derive(Debug, Clone, Default)]
pub struct InFilter {
    pub connector_names: Vec<String>,
    pub customer_id: Option<String>,
    pub connector_config_id: Option<String>,
    pub search: Option<String>,
    /// Only these connection ids (`connection_ids`, or those assigned to a `repl_id`);
    /// an empty set matches nothing.
    pub ids: Option<Vec<String>>,
}

/// An Integrations event.
#[derive(Debug, Clone, PartialEq)]
pub struct InEvent {
    pub tenant: String,
    pub id: String,
    pub name: String,
    pub data: Value,
    pub customer_id: Option<String>,
    pub ts: i64,
}

/// A customer as derived from connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InCustomerRow {
    pub id: String,
    pub connection_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The storage contract every backend fulfils identically.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations of this backend.
    async fn migrate(&self) -> Result<()>;
    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<()>;
    /// Closes every connection; later calls fail.
    async fn close(&self);
    /// Writes a validated seed plan in one transaction: every external reference
    /// is checked first, and nothing is written when one is missing. Each entry's
    /// digest is recorded in `seed_entries`; under [`SeedMode::StartUp`] entries
    /// whose digest is unchanged are not written again (see docs/seed-format.md).
    async fn apply_seed(&self, plan: &SeedPlan, vault: &Vault, now_ms: i64, mode: SeedMode) -> Result<()>;
    async fn get_record(&self, tenant: &str, kind: &str, id: &str) -> Result<Option<Record>>;
    async fn list_records(&self, tenant: &str, kind: &str) -> Result<Vec<Record>>;
    /// A record by kind and id, whatever its tenant (ids of these kinds are global).
    async fn find_record(&self, kind: &str, id: &str) -> Result<Option<Record>>;
    /// Every record of a kind, across tenants, ordered by tenant and id.
    async fn list_kind(&self, kind: &str) -> Result<Vec<Record>>;
    /// Inserts a record unless one with the same key exists; true when inserted.
    async fn create_record(&self, rec: &RecordWrite, vault: &Vault, now_ms: i64) -> Result<bool>;
    /// Upserts a record and enqueues jobs in the same transaction.
    async fn put_record(&self, rec: &RecordWrite, jobs: &[NewJob], vault: &Vault, now_ms: i64) -> Result<()>;
    /// Shared: on SQLite the answer may be one the process keeps (kept.rs).
    async fn find_credential(&self, raw_token: &str) -> Result<Option<Arc<Credential>>>;
    /// A credential and, in the same query, the records an authorisation step
    /// reads next: the principal's record (`tenant`, `kind`, id = the
    /// credential's principal) and one other record by key. `None` when the
    /// token is unknown; each record `None` when absent.
    async fn find_credential_with(
        &self,
        raw_token: &str,
        principal: (&str, &str),
        other: Option<(&str, &str, &str)>,
    ) -> Result<Option<std::sync::Arc<CredentialWith>>>;
    /// Stores a new credential (its hash only).
    async fn put_credential(&self, raw_token: &str, cred: &Credential, now_ms: i64) -> Result<()>;
    /// Deletes a record; false when it did not exist.
    async fn delete_record(&self, tenant: &str, kind: &str, id: &str) -> Result<bool>;
    /// Re-encrypts every secret not sealed under the vault's primary key; returns how many.
    async fn rotate_secrets(&self, vault: &Vault) -> Result<u64>;

    /// Shared: on SQLite the answer may be one the process keeps (kept.rs), handed out without a copy.
    async fn net_get_connection(&self, side: NetSide, enterprise: &str, id: &str)
    -> Result<Option<Arc<NetConnection>>>;
    /// Connections of the enterprise's side, ordered by `created_at`, then `id`.
    async fn net_list_connections(
        &self,
        side: NetSide,
        enterprise: &str,
        filter: &NetConnectionFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Page<NetConnection>>;
    /// Inserts a new connection and its jobs in one transaction;
    /// `Conflict("nonce")` when the client already used the nonce.
    async fn net_insert_connection(&self, conn: &NetConnection, jobs: &[NewJob]) -> Result<()>;
    /// Updates name and/or active of a client's connection; `None` when not found.
    async fn net_update_connection(
        &self,
        enterprise: &str,
        id: &str,
        name: Option<&str>,
        active: Option<bool>,
        now_ms: i64,
    ) -> Result<Option<NetConnection>>;
    /// Records the partner's ids and marks the connection initialised.
    async fn net_mark_initialized(
        &self,
        tenant: &str,
        id: &str,
        partners_client_id: &str,
        partners_connection_id: &str,
        now_ms: i64,
    ) -> Result<bool>;

    /// Balances of these accounts (every currency held), by account then currency.
    async fn net_balances(&self, accounts: &[String]) -> Result<Vec<NetBalance>>;
    async fn net_ledger_get(&self, kind: &str, id: &str) -> Result<Option<LedgerRow>>;
    /// The row of a kind holding an idempotency key.
    async fn net_ledger_by_key(&self, kind: &str, key: &str) -> Result<Option<LedgerRow>>;
    async fn net_ledger_list(
        &self,
        kind: &str,
        filter: &LedgerFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<LedgerRow>>;
    /// Writes one ledger step all-or-nothing (see [`LedgerCommit`]).
    async fn net_ledger_commit(&self, commit: &LedgerCommit) -> Result<Committed>;

    async fn ex_get_connection(&self, id: &str) -> Result<Option<ExConnection>>;
    /// Connections of an iModel, in creation order.
    async fn ex_list_connections(
        &self,
        tenant: &str,
        imodel_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Page<ExConnection>>;
    async fn ex_insert_connection(&self, conn: &ExConnection) -> Result<()>;
    /// Deletes a connection and its runs, unless a run is active.
    async fn ex_delete_connection(&self, tenant: &str, id: &str) -> Result<ExDeleted>;
    /// Inserts a run and its job in one transaction, unless the connection has an active run.
    async fn ex_create_run(&self, run: &ExRun, job: &NewJob) -> Result<RunCreated>;
    async fn ex_get_run(&self, tenant: &str, connection_id: &str, id: &str) -> Result<Option<ExRun>>;
    /// Runs of a connection, newest first.
    async fn ex_list_runs(&self, tenant: &str, connection_id: &str, limit: i64, offset: i64) -> Result<Vec<ExRun>>;
    /// Saves a run's progress; a `Completed` state releases the connection's active slot.
    async fn ex_save_run(&self, run: &ExRun) -> Result<bool>;

    /// Shared, like [`Store::net_get_connection`].
    async fn in_get_connection(&self, tenant: &str, id: &str) -> Result<Option<Arc<InConnection>>>;
    /// A page of connections (`updated_at` desc, then `id`) and the filtered total.
    async fn in_list_connections(
        &self,
        tenant: &str,
        filter: &InFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Page<InConnection>, i64)>;
    /// Inserts (or replaces) a connection, its event and the event's jobs in one transaction.
    async fn in_put_connection(&self, conn: &InConnection, event: Option<&InEvent>, jobs: &[NewJob]) -> Result<()>;
    /// Writes a connection whose stored version is still `expected_version`, with its event.
    /// With `fence`, only while that owner still holds the refresh lock (a refresher whose
    /// lease another process took over loses its late write); false when refused.
    async fn in_update_connection(
        &self,
        conn: &InConnection,
        expected_version: i64,
        fence: Option<&str>,
        event: Option<&InEvent>,
        jobs: &[NewJob],
    ) -> Result<bool>;
    /// Deletes a connection (restricted to a customer when given) with its event; false when not found.
    async fn in_delete_connection(
        &self,
        tenant: &str,
        id: &str,
        customer: Option<&str>,
        event: &InEvent,
        jobs: &[NewJob],
    ) -> Result<bool>;
    /// Takes the connection's refresh lock until `until_ms` unless another holder's lock is live.
    async fn in_try_lock(&self, tenant: &str, id: &str, owner: &str, until_ms: i64, now_ms: i64) -> Result<bool>;
    async fn in_unlock(&self, tenant: &str, id: &str, owner: &str) -> Result<()>;
    /// Refreshable, not disconnected connections whose token expires before `before_ms`.
    async fn in_due_for_refresh(&self, before_ms: i64, limit: i64) -> Result<Vec<(String, String)>>;
    async fn in_count_by_config(&self, tenant: &str, connector_config_id: &str) -> Result<i64>;
    async fn in_customers(
        &self,
        tenant: &str,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InCustomerRow>, i64)>;
    async fn in_insert_event(&self, event: &InEvent, jobs: &[NewJob]) -> Result<()>;
    /// One event of an organisation (of one customer when given).
    async fn in_get_event(&self, tenant: &str, id: &str, customer: Option<&str>) -> Result<Option<InEvent>>;
    /// Events newest first (`ts` desc, then `id`), with the filtered total.
    async fn in_list_events(
        &self,
        tenant: &str,
        customer: Option<&str>,
        search: Option<&str>,
        since_ms: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InEvent>, i64)>;

    async fn enqueue_job(&self, job: &NewJob, now_ms: i64) -> Result<()>;
    /// Claims the next runnable job (queued and due, or running with an expired lease).
    async fn claim_job(&self, worker: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>>;
    /// Extends the lease of a job this worker holds; false when it no longer holds it.
    async fn extend_lease(&self, job: &Job, worker: &str, until_ms: i64) -> Result<bool>;
    /// Marks a held job done; false when the lease was lost.
    async fn complete_job(&self, job: &Job, worker: &str, now_ms: i64) -> Result<bool>;
    /// Records a failure: back to the queue at `retry_at`, or dead when `None`.
    async fn fail_job(&self, job: &Job, worker: &str, error: &str, retry_at: Option<i64>, now_ms: i64) -> Result<bool>;
    async fn get_job(&self, tenant: &str, id: &str) -> Result<Option<Job>>;
    async fn job_counts(&self) -> Result<Vec<(JobState, i64)>>;
    /// Jobs by kind and state, with how many of them carry an error from a failed attempt.
    async fn job_stats(&self) -> Result<Vec<JobStat>>;

    /// Sandbox: empties every data table and, with a plan, applies it as a start-up
    /// seed — one transaction (docs/sandbox.md).
    async fn sandbox_reset(&self, seed: Option<&SeedPlan>, vault: &Vault, now_ms: i64) -> Result<()>;
    /// Sandbox: saves every data table under `name` (replacing a snapshot of that name).
    async fn snapshot_save(&self, name: &str, now_ms: i64) -> Result<sandbox::SnapshotInfo>;
    /// Sandbox: puts a saved state back; `None` when there is no snapshot of that name.
    async fn snapshot_restore(&self, name: &str) -> Result<Option<sandbox::SnapshotInfo>>;
    async fn snapshot_list(&self) -> Result<Vec<sandbox::SnapshotInfo>>;
    async fn snapshot_delete(&self, name: &str) -> Result<bool>;
    /// Sandbox: moves the leases of running jobs by `delta_ms`, as the clock is moved,
    /// so a jump forward does not hand the jobs in hand to another worker.
    async fn sandbox_shift_leases(&self, delta_ms: i64) -> Result<u64>;

    /// Stores a file (`files.backend = "database"`), replacing one of the same name, in
    /// chunks of [`shared::FILE_CHUNK`] bytes, in one transaction.
    async fn file_put(&self, name: &str, bytes: &[u8], now_ms: i64) -> Result<()>;
    /// A stored file, whole; `None` when there is none of that name.
    async fn file_get(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Takes one request from the key's budget, kept in the database on the database's
    /// clock (every replica shares it); `Err(µs)` to wait when the budget is spent.
    async fn rate_take(
        &self,
        key: &str,
        budget: patchbay_core::ratelimit::Budget,
    ) -> Result<std::result::Result<(), i64>>;
}

/// Opens the store named by a URL (`sqlite://...`, `sqlite::memory:`, `postgres://...`).
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// The file path of a `sqlite://` URL (None for in-memory databases and other backends).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}
