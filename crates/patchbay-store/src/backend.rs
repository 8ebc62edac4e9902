//! The two backends, generated from one implementation.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_core::seed::{self, SeedError, SeedMode, SeedPlan, Tenant};
use patchbay_core::{Sealed, Vault, hashing};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{
    Backend, Credential, CredentialWith, ExConnection, ExDeleted, ExRun, InConnection, InCustomerRow, InEvent,
    InFilter, Job, JobStat, JobState, NetConnection, NetConnectionFilter, NetSide, NewJob, Page, Record, RecordWrite,
    Result, RunCreated, Store, StoreError,
};
use patchbay_core::network;
use patchbay_core::seed::{PlannedRecord, kind};

use crate::kept::{self, Answer, AuthCache, ReadCache};
use crate::ledger::{Committed, LEDGER_COLS, LedgerCommit, LedgerFilter, LedgerRow, NetBalance, list_query};
use crate::ledger::{ledger_commit_sqlite, outcome_name, outcome_of};
use crate::readers::{self, Readers};

/// SQLite: the embedded default (WAL, foreign keys, busy timeout, synchronous=NORMAL).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The hot reads, on the calling thread (none for an in-memory database).
    readers: Option<Arc<Readers>>,
    auth: Arc<AuthCache>,
    /// Connection and record reads kept (kept.rs): this process owns the file.
    reads: Arc<ReadCache>,
    /// Rate-limit takes, for pruning (shared.rs).
    takes: Arc<std::sync::atomic::AtomicU64>,
}

/// The channel on which PostgreSQL announces, at commit, every write to a table whose
/// reads are kept (migrations/postgres/0009_kept_notify.sql: statement triggers).
pub const KEPT_CHANNEL: &str = "patchbay_kept";

/// Keeps this replica's kept reads in step with every replica's writes: listens on
/// [`KEPT_CHANNEL`] and drops what is kept on each notification. Reads are kept only
/// while the channel is up: when the listening connection is lost (notifications in the
/// gap would be missed), keeping stops and what was kept is dropped, until listening
/// again. Ends when the pool is closed.
async fn listen_for_writes(pool: PgPool, auth: Arc<AuthCache>, reads: Arc<ReadCache>) {
    use sqlx::postgres::PgListener;
    let set = |on: bool| {
        auth.set_enabled(on);
        reads.set_enabled(on);
    };
    while !pool.is_closed() {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            // A lost connection must end `try_recv` at once (Ok(None)), not be mended
            // inside it while this replica goes on keeping reads.
            l.eager_reconnect(false);
            l.listen(KEPT_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let mut listener = match listener.await {
            Ok(l) => l,
            Err(e) => {
                if !pool.is_closed() {
                    tracing::warn!(error = %e, "kept reads off: cannot listen for other replicas' writes; retrying");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        set(true);
        tracing::debug!("kept reads on: listening for other replicas' writes");
        loop {
            match listener.try_recv().await {
                // Another write committed somewhere: nothing kept before it is answered after.
                Ok(Some(_)) => {
                    auth.written();
                    reads.written();
                }
                // The connection was lost: notifications may have been missed.
                Ok(None) | Err(_) => {
                    set(false);
                    if !pool.is_closed() {
                        tracing::warn!("kept reads off: the notification channel was lost; listening again");
                    }
                    break;
                }
            }
        }
    }
    set(false);
}

/// PostgreSQL: production, several replicas sharing one database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    auth: Arc<AuthCache>,
    /// On while the notification channel is up (`listen_for_writes`).
    reads: Arc<ReadCache>,
    /// Rate-limit takes, for pruning (shared.rs).
    takes: Arc<std::sync::atomic::AtomicU64>,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let memory = crate::sqlite_path(url).is_none();
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .synchronous(SqliteSynchronous::Normal);
        // The file exactly as sqlx resolves it (percent-decoded), for the readers.
        let readers = (!memory).then(|| Arc::new(Readers::new(opts.get_filename())));
        // An in-memory database lives in one connection; keep exactly one, forever.
        // (One writer connection for a file was tried: queueing writes in the pool
        // instead of SQLite's busy handler cut the write tail but also throughput,
        // docs/benchmarks.md.) The hot reads go through `readers`, beside the pool.
        let pool = if memory {
            SqlitePoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None).connect_with(opts).await?
        } else {
            SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?
        };
        Ok(Self {
            pool,
            readers,
            auth: Arc::default(),
            reads: Arc::new(ReadCache::connections(true)),
            takes: Arc::default(),
        })
    }

    fn readers(&self) -> Option<&Readers> {
        self.readers.as_deref()
    }

    /// Which connections a `search_query` can match, from the trigram index
    /// (migration 0005): a search occurs only where each of its trigrams does,
    /// so the rows of its rarest trigram are the candidates — none at all when
    /// one occurs nowhere. Each trigram is counted only up to
    /// [`MAX_INDEXED_CANDIDATES`] + 1, so this costs the same however many
    /// connections are stored; when every trigram is more common than that,
    /// the organisation's connections are scanned.
    async fn search_index(&self, q: &str) -> Result<SearchIndex> {
        const COUNT: &str = "SELECT COUNT(*) AS n FROM (SELECT rowid FROM in_connections_search \
                             WHERE in_connections_search MATCH $1 LIMIT $2)";
        const ROWS: &str = "SELECT rowid AS r FROM in_connections_search WHERE in_connections_search MATCH $1";
        let mut rarest: Option<(i64, String)> = None;
        for gram in search_trigrams(q) {
            // Counting past the rarest so far (or the bound) would change nothing.
            let cap = rarest.as_ref().map_or(MAX_INDEXED_CANDIDATES + 1, |(n, _)| *n);
            let n: i64 = match self.readers() {
                Some(r) => r.query_one(COUNT, &[&gram, &cap], |row| Ok(row.try_get("n")?))?,
                None => sqlx::query(COUNT).bind(&gram).bind(cap).fetch_one(&self.pool).await?.try_get("n")?,
            };
            if n == 0 {
                return Ok(SearchIndex::Candidates(Vec::new()));
            }
            if n < cap || rarest.is_none() {
                rarest = Some((n, gram));
            }
        }
        let Some((_, gram)) = rarest.filter(|(n, _)| *n <= MAX_INDEXED_CANDIDATES) else {
            return Ok(SearchIndex::Scan);
        };
        let rowids = match self.readers() {
            Some(r) => r.query_all(ROWS, &[&gram], |row| Ok(row.try_get("r")?))?,
            None => {
                let rows = sqlx::query(ROWS).bind(&gram).fetch_all(&self.pool).await?;
                rows.iter().map(|row| row.try_get("r")).collect::<std::result::Result<Vec<i64>, _>>()?
            }
        };
        Ok(SearchIndex::Candidates(rowids))
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        // Nothing is kept until the notification channel is up (`listen_for_writes`).
        let auth = Arc::new(AuthCache::default());
        auth.set_enabled(false);
        let store = Self { pool, auth, reads: Arc::new(ReadCache::connections(false)), takes: Arc::default() };
        tokio::spawn(listen_for_writes(store.pool.clone(), store.auth.clone(), store.reads.clone()));
        Ok(store)
    }

    /// Whether reads are kept now (the notification channel is up).
    pub fn keeps_reads(&self) -> bool {
        self.reads.is_enabled() && self.auth.is_enabled()
    }

    /// How long a kept answer may be handed out at most (default [`kept::TTL`]).
    /// Tests lengthen it to show that other replicas' writes reach this one by
    /// notification, not by expiry.
    pub fn set_kept_ttl(&self, ttl: Duration) {
        self.reads.set_ttl(ttl);
        self.auth.set_ttl(ttl);
    }

    /// PostgreSQL's driver has no worker thread to avoid: every read goes through the pool.
    fn readers(&self) -> Option<&Readers> {
        None
    }

    /// PostgreSQL has no trigram index here (a `pg_trgm` GIN index was tried: its
    /// bitmap scans read whole posting lists, slower than the scan; docs/benchmarks.md).
    async fn search_index(&self, _q: &str) -> Result<SearchIndex> {
        Ok(SearchIndex::Scan)
    }
}

/// SQL shared by both backends (`$n` placeholders work on both).
mod sql {
    pub const RECORD_COLS: &str = "tenant, kind, id, data, secret_key_id, secret, created_at, updated_at";
    pub const UPSERT_RECORD: &str = "INSERT INTO records (tenant, kind, id, data, secret_key_id, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (tenant, kind, id) DO UPDATE SET data = excluded.data, \
         secret_key_id = excluded.secret_key_id, secret = excluded.secret, updated_at = excluded.updated_at";
    pub const RESOLVE_REF: &str = "SELECT tenant FROM records WHERE kind = $1 AND id = $2 ORDER BY tenant LIMIT 1";
    pub const RESOLVE_REF_IN: &str = "SELECT tenant FROM records WHERE kind = $1 AND id = $2 AND tenant = $3";
    pub const DELETE_MOVED: &str = "DELETE FROM records WHERE kind = $1 AND id = $2 AND tenant <> $3";
    pub const UPSERT_CREDENTIAL: &str = "INSERT INTO credentials (token_hash, face, principal_kind, principal_id, tenant, scopes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (token_hash) DO UPDATE SET face = excluded.face, principal_kind = excluded.principal_kind, \
         principal_id = excluded.principal_id, tenant = excluded.tenant, scopes = excluded.scopes";
    pub const PRINCIPAL_HASHES: &str =
        "SELECT token_hash FROM credentials WHERE face = $1 AND principal_kind = $2 AND principal_id = $3";
    pub const DELETE_CREDENTIAL: &str = "DELETE FROM credentials WHERE token_hash = $1";
    /// Seed entries as last applied (`seed_entries`), and the key of whole documents there.
    pub const SEED_DOCUMENT: &str = "seed.document";
    pub const SEED_ENTRY: &str = "SELECT digest FROM seed_entries WHERE kind = $1 AND tenant = $2 AND id = $3";
    pub const UPSERT_SEED_ENTRY: &str = "INSERT INTO seed_entries (kind, tenant, id, digest, applied_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, tenant, id) DO UPDATE SET digest = excluded.digest, applied_at = excluded.applied_at";
    /// A credential with its principal's record and one other record, one query.
    pub const FIND_CREDENTIAL_WITH: &str = "SELECT c.token_hash, c.face, c.principal_kind, c.principal_id, c.tenant, c.scopes, \
         p.tenant AS p_tenant, p.kind AS p_kind, p.id AS p_id, p.data AS p_data, p.secret_key_id AS p_secret_key_id, \
         p.secret AS p_secret, p.created_at AS p_created_at, p.updated_at AS p_updated_at, \
         o.tenant AS o_tenant, o.kind AS o_kind, o.id AS o_id, o.data AS o_data, o.secret_key_id AS o_secret_key_id, \
         o.secret AS o_secret, o.created_at AS o_created_at, o.updated_at AS o_updated_at \
         FROM credentials c \
         LEFT JOIN records p ON p.tenant = $2 AND p.kind = $3 AND p.id = c.principal_id \
         LEFT JOIN records o ON o.tenant = $4 AND o.kind = $5 AND o.id = $6 \
         WHERE c.token_hash = $1";
    pub const FIND_CREDENTIAL: &str =
        "SELECT token_hash, face, principal_kind, principal_id, tenant, scopes FROM credentials WHERE token_hash = $1";
    pub const JOB_COLS: &str =
        "tenant, id, kind, payload, state, attempts, max_attempts, run_at, lease_owner, lease_until, last_error";
    pub const INSERT_JOB: &str = "INSERT INTO jobs (tenant, id, kind, payload, state, attempts, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7)";
    /// The claim, minus the row-locking clause that PostgreSQL adds.
    pub const CLAIM_HEAD: &str = "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE (tenant, id) IN (SELECT tenant, id FROM jobs \
           WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3) \
           ORDER BY run_at, id LIMIT 1";
    pub const CLAIM_TAIL: &str = ") RETURNING tenant, id, kind, payload, state, attempts, max_attempts, run_at, lease_owner, lease_until, last_error";
    pub const EXTEND: &str =
        "UPDATE jobs SET lease_until = $1 WHERE tenant = $2 AND id = $3 AND state = 'running' AND lease_owner = $4";
    pub const COMPLETE: &str = "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1 \
         WHERE tenant = $2 AND id = $3 AND state = 'running' AND lease_owner = $4";
    pub const RETRY: &str = "UPDATE jobs SET state = 'queued', run_at = $1, last_error = $2, lease_owner = NULL, \
         lease_until = NULL, updated_at = $3 WHERE tenant = $4 AND id = $5 AND state = 'running' AND lease_owner = $6";
    pub const BURY: &str = "UPDATE jobs SET state = 'dead', last_error = $1, lease_owner = NULL, lease_until = NULL, \
         updated_at = $2 WHERE tenant = $3 AND id = $4 AND state = 'running' AND lease_owner = $5";
    pub const JOB_COUNTS: &str = "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state";
    pub const FIND_RECORD: &str = "SELECT tenant, kind, id, data, secret_key_id, secret, created_at, updated_at \
         FROM records WHERE kind = $1 AND id = $2 ORDER BY tenant LIMIT 1";
    pub const LIST_KIND: &str = "SELECT tenant, kind, id, data, secret_key_id, secret, created_at, updated_at \
         FROM records WHERE kind = $1 ORDER BY tenant, id";
    pub const NET_COLS: &str = "tenant, id, partner_tenant, client_id, partner_id, name, active, nonce, \
         network_account_id, proof, partners_connection_id, partners_client_id, initialized, key_schema, key_key_id, \
         key_blob, created_at, updated_at";
    pub const NET_UPSERT: &str = "INSERT INTO net_connections (tenant, id, partner_tenant, client_id, partner_id, name, \
         active, nonce, network_account_id, proof, partners_connection_id, partners_client_id, initialized, key_schema, \
         key_key_id, key_blob, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (tenant, id) DO UPDATE SET partner_tenant = excluded.partner_tenant, client_id = excluded.client_id, \
         partner_id = excluded.partner_id, name = excluded.name, active = excluded.active, nonce = excluded.nonce, \
         partners_connection_id = excluded.partners_connection_id, partners_client_id = excluded.partners_client_id, \
         initialized = excluded.initialized, key_schema = excluded.key_schema, key_key_id = excluded.key_key_id, \
         key_blob = excluded.key_blob, created_at = excluded.created_at, updated_at = excluded.updated_at";
    pub const NET_INSERT_HEAD: &str = "INSERT INTO net_connections (tenant, id, partner_tenant, client_id, partner_id, name, \
         active, nonce, network_account_id, proof, partners_connection_id, partners_client_id, initialized, key_schema, \
         key_key_id, key_blob, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
    pub const ACTIVE_RUN: &str = "SELECT id FROM ex_runs WHERE active_connection = $1";
    pub const SET_LAST_RUN: &str = "UPDATE ex_connections SET last_run_id = $1 WHERE tenant = $2 AND id = $3";
    pub const NET_NONCE_TAKEN: &str =
        "SELECT id FROM net_connections WHERE tenant = $1 AND client_id = $2 AND nonce = $3 AND id <> $4";
    pub const NET_DELETE_MOVED: &str = "DELETE FROM net_connections WHERE id = $1 AND tenant <> $2";
    pub const NET_UPDATE: &str = "UPDATE net_connections SET name = COALESCE($1, name), active = COALESCE($2, active), \
         updated_at = $3 WHERE tenant = $4 AND id = $5";
    pub const NET_INITIALIZED: &str = "UPDATE net_connections SET partners_client_id = $1, partners_connection_id = $2, \
         initialized = TRUE, updated_at = $3 WHERE tenant = $4 AND id = $5";
}

pub const EX_CONN_COLS: &str = "tenant, id, imodel_id, display_name, authentication_type, owner_user_id, simulate, \
     last_run_id, created_at, updated_at";
pub const EX_RUN_COLS: &str =
    "tenant, id, connection_id, state, result, request, detail, start_at, end_at, created_at, updated_at";

pub const IN_COLS: &str = "tenant, id, connector_name, connector_config_id, customer_id, integration_id, display_name, \
     disabled, status, status_message, metadata, settings_key_id, settings_blob, expires_at, refreshable, version, \
     created_at, updated_at";

/// `LIKE` pattern matching `q` anywhere, with wildcards escaped (`ESCAPE '\'`).
fn like_pattern(q: &str) -> String {
    let escaped = q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// How a connection list's `search_query` is narrowed before the exact condition.
#[derive(Debug)]
enum SearchIndex {
    /// No index: every connection of the organisation is tested.
    Scan,
    /// SQLite: only these rows (from the trigram index) can match.
    Candidates(Vec<i64>),
}

/// Searches shorter than a trigram cannot use the index.
const MIN_INDEXED_SEARCH: usize = 3;
/// A search whose every trigram occurs in more connections than this (over all
/// organisations) scans the organisation's connections instead.
const MAX_INDEXED_CANDIDATES: i64 = 1_000;
/// Trigrams of a long search looked up at most (any subset still narrows correctly).
const MAX_PROBED_TRIGRAMS: usize = 32;

/// The distinct trigrams of `q` as single-token FTS5 queries for the SQLite
/// index (migration 0005), each quoted. Every connection that contains `q`
/// contains each of them. Empty when the index cannot help (shorter than a
/// trigram, or a NUL).
fn search_trigrams(q: &str) -> Vec<String> {
    let chars: Vec<char> = q.to_lowercase().chars().collect();
    if chars.len() < MIN_INDEXED_SEARCH || chars.contains(&'\0') {
        return Vec::new();
    }
    let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    grams.sort();
    grams.dedup();
    grams.truncate(MAX_PROBED_TRIGRAMS);
    grams.iter().map(|g| format!("\"{}\"", g.replace('"', "\"\""))).collect()
}

/// WHERE clause and binds for a connection list (after `tenant = $1`).
fn in_filter_sql(f: &InFilter, binds: &mut Vec<Bind>, index: &SearchIndex) -> String {
    let mut sql = String::new();
    if !f.connector_names.is_empty() {
        let mut marks = Vec::new();
        for n in &f.connector_names {
            binds.push(Bind::Text(n.clone()));
            marks.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND connector_name IN ({})", marks.join(", ")));
    }
    if let Some(c) = &f.customer_id {
        binds.push(Bind::Text(c.clone()));
        sql.push_str(&format!(" AND customer_id = ${}", binds.len()));
    }
    if let Some(c) = &f.connector_config_id {
        binds.push(Bind::Text(c.clone()));
        sql.push_str(&format!(" AND connector_config_id = ${}", binds.len()));
    }
    match f.ids.as_deref() {
        None => {}
        Some([]) => sql.push_str(" AND 1 = 0"),
        Some(ids) => {
            let mut marks = Vec::with_capacity(ids.len());
            for id in ids {
                binds.push(Bind::Text(id.clone()));
                marks.push(format!("${}", binds.len()));
            }
            sql.push_str(&format!(" AND id IN ({})", marks.join(", ")));
        }
    }
    if let Some(q) = f.search.as_deref().filter(|q| !q.is_empty()) {
        if let SearchIndex::Candidates(rowids) = index {
            binds.push(Bind::Text(serde_json::to_string(rowids).expect("integers serialise")));
            sql.push_str(&format!(" AND rowid IN (SELECT value FROM json_each(${}))", binds.len()));
        }
        binds.push(Bind::Text(like_pattern(q)));
        let n = binds.len();
        sql.push_str(&format!(
            " AND (LOWER(id) LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE(customer_id, '')) LIKE ${n} ESCAPE '\\' \
             OR LOWER(connector_name) LIKE ${n} ESCAPE '\\')"
        ));
    }
    sql
}

/// Where sealed values live, for key rotation: the table, the columns of the key id and
/// the ciphertext, and the record kind (a column of `records`, fixed for the other tables).
struct SealedColumn {
    table: &'static str,
    kind: Option<&'static str>,
    key_col: &'static str,
    blob_col: &'static str,
}

const SEALED_COLUMNS: [SealedColumn; 3] = [
    SealedColumn { table: "records", kind: None, key_col: "secret_key_id", blob_col: "secret" },
    SealedColumn {
        table: "net_connections",
        kind: Some(kind::NET_CONNECTION),
        key_col: "key_key_id",
        blob_col: "key_blob",
    },
    SealedColumn {
        table: "in_connections",
        kind: Some(kind::IN_CONNECTION),
        key_col: "settings_key_id",
        blob_col: "settings_blob",
    },
];

impl SealedColumn {
    /// The batch selection of values not sealed under `$1`, and the compare-and-swap update
    /// (`$1` new key id, `$2` new ciphertext, `$3` tenant, `$4` id, `$5` old key id, `$6` kind).
    fn sql(&self) -> (String, String) {
        let SealedColumn { table, kind, key_col: k, blob_col: b } = self;
        let (kind_expr, kind_cond) = match kind {
            Some(fixed) => (format!("'{fixed}'"), format!("$6 = '{fixed}'")),
            None => ("kind".to_string(), "kind = $6".to_string()),
        };
        (
            format!(
                "SELECT tenant, {kind_expr} AS kind, id, {k} AS kid, {b} AS blob FROM {table} \
                 WHERE {k} IS NOT NULL AND {k} <> $1 ORDER BY tenant, id LIMIT 500"
            ),
            format!("UPDATE {table} SET {k} = $1, {b} = $2 WHERE tenant = $3 AND id = $4 AND {k} = $5 AND {kind_cond}"),
        )
    }
}

/// A value bound to a dynamically built query.
pub(crate) enum Bind {
    Text(String),
    Bool(bool),
    Int(i64),
}

/// The column naming the enterprise that looks from `side`.
fn side_column(side: NetSide) -> &'static str {
    match side {
        NetSide::Client => "tenant",
        NetSide::Partner => "partner_tenant",
    }
}

/// From this offset on, PostgreSQL pages a list in two steps (a deferred join): the
/// page's ids first, skipping the offset's rows in the list's covering index alone
/// (an index-only scan: no table row is read for a skipped entry), then those rows.
/// The answer is the same rows in the same order as the one-step query.
pub(crate) const DEFERRED_OFFSET: i64 = 1000;

/// Whether a page at `offset` is read in two steps on this backend.
fn deferred(backend: Backend, offset: i64) -> bool {
    backend == Backend::Postgres && offset >= DEFERRED_OFFSET
}

/// `SELECT` for a filtered, paged connection list, with its bind values; `deferred`
/// selects the two-step form ([`DEFERRED_OFFSET`]).
fn net_list_query(
    side: NetSide,
    enterprise: &str,
    f: &NetConnectionFilter,
    limit: i64,
    offset: i64,
    deferred: bool,
) -> (String, Vec<Bind>) {
    let key = side_column(side);
    let mut binds = vec![Bind::Text(enterprise.to_string())];
    let cols = if deferred { "tenant, id" } else { sql::NET_COLS };
    let mut sql = format!("SELECT {cols} FROM net_connections WHERE {key} = $1");
    if let Some(a) = f.active {
        binds.push(Bind::Bool(a));
        sql.push_str(&format!(" AND active = ${}", binds.len()));
    }
    for (col, values) in [
        ("id", &f.ids),
        ("name", &f.names),
        ("partner_id", &f.partner_ids),
        ("client_id", &f.client_ids),
        ("partners_client_id", &f.partners_client_ids),
        ("partners_connection_id", &f.partners_connection_ids),
    ] {
        if values.is_empty() {
            continue;
        }
        let mut marks = Vec::with_capacity(values.len());
        for v in values {
            binds.push(Bind::Text(v.clone()));
            marks.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
    }
    binds.push(Bind::Int(limit));
    binds.push(Bind::Int(offset));
    sql.push_str(&format!(" ORDER BY created_at, id LIMIT ${} OFFSET ${}", binds.len() - 1, binds.len()));
    if deferred {
        // The page's rows by primary key (ids are unique per tenant only).
        sql = format!(
            "SELECT {} FROM net_connections WHERE (tenant, id) IN ({sql}) ORDER BY created_at, id",
            sql::NET_COLS
        );
    }
    (sql, binds)
}

impl Bind {
    fn clone_bind(&self) -> Bind {
        match self {
            Bind::Text(s) => Bind::Text(s.clone()),
            Bind::Bool(b) => Bind::Bool(*b),
            Bind::Int(i) => Bind::Int(*i),
        }
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn sealed_of(key_id: Option<String>, blob: Option<Vec<u8>>) -> Option<Sealed> {
    match (key_id, blob) {
        (Some(key_id), Some(blob)) => Some(Sealed { key_id, blob }),
        _ => None,
    }
}

fn parse_json(s: &str, what: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// What a start-up seed does with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeedDue {
    /// Unchanged since it was last applied.
    Skip,
    /// Changed, new, or an explicit upsert.
    Write,
    /// Never recorded, but its object exists: recorded, left as it is.
    Adopt,
}

/// Whether the existence query of a seeded kind is the `records` one (which takes the kind).
fn q_takes_kind(kind: &str) -> bool {
    ![kind::NET_CONNECTION, kind::EX_CONNECTION, kind::IN_CONNECTION].contains(&kind)
}

/// Where the seed digest key is kept (tenant, kind, id of its record).
const SEED_DIGEST_KEY: (&str, &str, &str) = ("patchbay", "patchbay.seed_digest_key", "seed");

fn seal_secret(vault: &Vault, tenant: &str, kind: &str, id: &str, secret: &Value) -> Sealed {
    let bytes = serde_json::to_vec(secret).expect("JSON values serialise");
    vault.seal(&bytes, &Record::aad(tenant, kind, id))
}

/// A credential row → the credential, if the stored hash really is `raw_token`'s.
macro_rules! credential_from_row {
    ($row:expr, $raw_token:expr) => {{
        let row = $row;
        let stored: Vec<u8> = row.try_get("token_hash")?;
        if !hashing::token_matches($raw_token, &stored) {
            Ok::<Option<Credential>, StoreError>(None)
        } else {
            let scopes: String = row.try_get("scopes")?;
            Ok::<Option<Credential>, StoreError>(Some(Credential {
                face: row.try_get("face")?,
                principal_kind: row.try_get("principal_kind")?,
                principal_id: row.try_get("principal_id")?,
                tenant: row.try_get("tenant")?,
                scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(format!("scopes: {e}")))?,
            }))
        }
    }};
}

/// The record in the `<prefix>`-named columns of a row (a LEFT JOIN's side), if any.
macro_rules! opt_record_from_row {
    ($row:expr, $p:literal) => {{
        let row = $row;
        let kind: Option<String> = row.try_get(concat!($p, "kind"))?;
        match kind {
            None => None,
            Some(kind) => {
                let data: String = row.try_get(concat!($p, "data"))?;
                Some(Record {
                    tenant: row.try_get(concat!($p, "tenant"))?,
                    id: row.try_get(concat!($p, "id"))?,
                    data: parse_json(&data, &kind)?,
                    kind,
                    secret: sealed_of(row.try_get(concat!($p, "secret_key_id"))?, row.try_get(concat!($p, "secret"))?),
                    created_at: row.try_get(concat!($p, "created_at"))?,
                    updated_at: row.try_get(concat!($p, "updated_at"))?,
                })
            }
        }
    }};
}

macro_rules! record_from_row {
    ($row:expr) => {{
        let row = $row;
        let data: String = row.try_get("data")?;
        let kind: String = row.try_get("kind")?;
        Record {
            tenant: row.try_get("tenant")?,
            id: row.try_get("id")?,
            data: parse_json(&data, &kind)?,
            kind,
            secret: sealed_of(row.try_get("secret_key_id")?, row.try_get("secret")?),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! net_from_row {
    ($row:expr) => {{
        let row = $row;
        NetConnection {
            tenant: row.try_get("tenant")?,
            id: row.try_get("id")?,
            partner_tenant: row.try_get("partner_tenant")?,
            client_id: row.try_get("client_id")?,
            partner_id: row.try_get("partner_id")?,
            name: row.try_get("name")?,
            active: row.try_get("active")?,
            nonce: row.try_get("nonce")?,
            network_account_id: row.try_get("network_account_id")?,
            proof: row.try_get("proof")?,
            partners_connection_id: row.try_get("partners_connection_id")?,
            partners_client_id: row.try_get("partners_client_id")?,
            initialized: row.try_get("initialized")?,
            key_schema: row.try_get("key_schema")?,
            key: Sealed { key_id: row.try_get("key_key_id")?, blob: row.try_get("key_blob")? },
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

/// A Network connection's values for [`sql::NET_INSERT_HEAD`], in `bind_net!`'s order.
fn net_args(c: &NetConnection) -> [&dyn rusqlite::ToSql; 18] {
    [
        &c.tenant,
        &c.id,
        &c.partner_tenant,
        &c.client_id,
        &c.partner_id,
        &c.name,
        &c.active,
        &c.nonce,
        &c.network_account_id,
        &c.proof,
        &c.partners_connection_id,
        &c.partners_client_id,
        &c.initialized,
        &c.key_schema,
        &c.key.key_id,
        &c.key.blob,
        &c.created_at,
        &c.updated_at,
    ]
}

/// `insert_job!` inside a [`Readers::write`] transaction.
pub(crate) fn write_job(tx: &rusqlite::Connection, job: &NewJob, now: i64) -> Result<()> {
    let payload = job.payload.to_string();
    readers::execute(
        tx,
        sql::INSERT_JOB,
        &[&job.tenant, &job.id, &job.kind, &payload, &job.max_attempts, &job.run_at, &now],
    )?;
    Ok(())
}

macro_rules! bind_net {
    ($q:expr, $c:expr) => {{
        let c: &NetConnection = $c;
        $q.bind(&c.tenant)
            .bind(&c.id)
            .bind(&c.partner_tenant)
            .bind(&c.client_id)
            .bind(&c.partner_id)
            .bind(&c.name)
            .bind(c.active)
            .bind(&c.nonce)
            .bind(&c.network_account_id)
            .bind(&c.proof)
            .bind(&c.partners_connection_id)
            .bind(&c.partners_client_id)
            .bind(c.initialized)
            .bind(&c.key_schema)
            .bind(&c.key.key_id)
            .bind(&c.key.blob)
            .bind(c.created_at)
            .bind(c.updated_at)
    }};
}

/// Builds the stored form of a seeded Network connection.
fn seeded_net_connection(
    rec: &PlannedRecord,
    tenant: &str,
    partner_tenant: String,
    sealed: Sealed,
    created_at: i64,
    now_ms: i64,
) -> Result<NetConnection> {
    let d = &rec.data;
    let s = |k: &str| d[k].as_str().map(str::to_string).ok_or_else(|| StoreError::Corrupt(format!("seed field {k}")));
    let opt = |k: &str| d[k].as_str().map(str::to_string);
    let pcid = opt("partnersConnectionId");
    let pclid = opt("partnersClientId");
    let nonce = s("nonce")?;
    Ok(NetConnection {
        tenant: tenant.to_string(),
        id: rec.id.clone(),
        partner_tenant,
        client_id: s("clientId")?,
        partner_id: s("partnerId")?,
        name: s("name")?,
        active: d["active"].as_bool().unwrap_or(true),
        network_account_id: network::derived_uuid("networkAccount", &rec.id),
        proof: network::proof(&format!("seed:{}", rec.id), &nonce),
        nonce,
        initialized: pcid.is_some() && pclid.is_some(),
        partners_connection_id: pcid,
        partners_client_id: pclid,
        key_schema: s("connectionKeySchema")?,
        key: sealed,
        created_at,
        updated_at: now_ms,
    })
}

macro_rules! ex_conn_from_row {
    ($row:expr) => {{
        let row = $row;
        let simulate: Option<String> = row.try_get("simulate")?;
        ExConnection {
            tenant: row.try_get("tenant")?,
            id: row.try_get("id")?,
            imodel_id: row.try_get("imodel_id")?,
            display_name: row.try_get("display_name")?,
            authentication_type: row.try_get("authentication_type")?,
            owner_user_id: row.try_get("owner_user_id")?,
            simulate: match simulate {
                Some(s) => Some(parse_json(&s, "simulate")?),
                None => None,
            },
            last_run_id: row.try_get("last_run_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! ex_run_from_row {
    ($row:expr) => {{
        let row = $row;
        let request: String = row.try_get("request")?;
        let detail: String = row.try_get("detail")?;
        ExRun {
            tenant: row.try_get("tenant")?,
            id: row.try_get("id")?,
            connection_id: row.try_get("connection_id")?,
            state: row.try_get("state")?,
            result: row.try_get("result")?,
            request: parse_json(&request, "run request")?,
            jobs: parse_json(&detail, "run jobs")?,
            start_at: row.try_get("start_at")?,
            end_at: row.try_get("end_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! bind_ex_conn {
    ($q:expr, $c:expr) => {{
        let c: &ExConnection = $c;
        $q.bind(&c.tenant)
            .bind(&c.id)
            .bind(&c.imodel_id)
            .bind(&c.display_name)
            .bind(&c.authentication_type)
            .bind(&c.owner_user_id)
            .bind(c.simulate.as_ref().map(|v| v.to_string()))
            .bind(&c.last_run_id)
            .bind(c.created_at)
            .bind(c.updated_at)
    }};
}

macro_rules! in_from_row {
    ($row:expr) => {{
        let row = $row;
        let metadata: Option<String> = row.try_get("metadata")?;
        InConnection {
            tenant: row.try_get("tenant")?,
            id: row.try_get("id")?,
            connector_name: row.try_get("connector_name")?,
            connector_config_id: row.try_get("connector_config_id")?,
            customer_id: row.try_get("customer_id")?,
            integration_id: row.try_get("integration_id")?,
            display_name: row.try_get("display_name")?,
            disabled: row.try_get("disabled")?,
            status: row.try_get("status")?,
            status_message: row.try_get("status_message")?,
            metadata: match metadata {
                Some(m) => Some(parse_json(&m, "metadata")?),
                None => None,
            },
            settings: Sealed { key_id: row.try_get("settings_key_id")?, blob: row.try_get("settings_blob")? },
            expires_at: row.try_get("expires_at")?,
            refreshable: row.try_get("refreshable")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! bind_in {
    ($q:expr, $c:expr) => {{
        let c: &InConnection = $c;
        $q.bind(&c.tenant)
            .bind(&c.id)
            .bind(&c.connector_name)
            .bind(&c.connector_config_id)
            .bind(&c.customer_id)
            .bind(&c.integration_id)
            .bind(&c.display_name)
            .bind(c.disabled)
            .bind(&c.status)
            .bind(&c.status_message)
            .bind(c.metadata.as_ref().map(|m| m.to_string()))
            .bind(&c.settings.key_id)
            .bind(&c.settings.blob)
            .bind(c.expires_at)
            .bind(c.refreshable)
            .bind(c.version)
            .bind(c.created_at)
            .bind(c.updated_at)
    }};
}

macro_rules! insert_event {
    ($exec:expr, $e:expr) => {{
        let e: &InEvent = $e;
        sqlx::query("INSERT INTO in_events (tenant, id, name, data, customer_id, ts) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&e.tenant)
            .bind(&e.id)
            .bind(&e.name)
            .bind(e.data.to_string())
            .bind(&e.customer_id)
            .bind(e.ts)
            .execute($exec)
            .await?;
    }};
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Bool(v) => q.bind(v),
                Bind::Int(i) => q.bind(i),
            };
        }
        q
    }};
}

macro_rules! job_from_row {
    ($row:expr) => {{
        let row = $row;
        let payload: String = row.try_get("payload")?;
        let state: String = row.try_get("state")?;
        Job {
            tenant: row.try_get("tenant")?,
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            payload: parse_json(&payload, "job payload")?,
            state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
            attempts: row.try_get("attempts")?,
            max_attempts: row.try_get("max_attempts")?,
            run_at: row.try_get("run_at")?,
            lease_owner: row.try_get("lease_owner")?,
            lease_until: row.try_get("lease_until")?,
            last_error: row.try_get("last_error")?,
        }
    }};
}

macro_rules! insert_job {
    ($exec:expr, $job:expr, $now:expr) => {{
        let job: &NewJob = $job;
        sqlx::query(sql::INSERT_JOB)
            .bind(&job.tenant)
            .bind(&job.id)
            .bind(&job.kind)
            .bind(job.payload.to_string())
            .bind(job.max_attempts)
            .bind(job.run_at)
            .bind($now)
            .execute($exec)
            .await?;
    }};
}

/// One implementation of [`Store`] for both pools. `$begin` opens a write
/// transaction (SQLite takes the write lock up front to avoid snapshot
/// upgrades failing under concurrency); `$lock` is the claim's row-lock clause.
macro_rules! impl_store {
    ($ty:ty, $backend:expr, $migrator:expr, $begin:expr, $lock:expr) => {
        #[async_trait]
        impl Store for $ty {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<()> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                let _reads = self.reads.writing();
                // Nothing kept is handed out after closing (a closed store answers Closed).
                drop(self.auth.writing());
                if let Some(r) = self.readers() {
                    r.close();
                }
                self.pool.close().await;
            }

            async fn apply_seed(&self, plan: &SeedPlan, vault: &Vault, now_ms: i64, mode: SeedMode) -> Result<()> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                let mut tx = self.pool.begin_with($begin).await?;
                if self.seed_into(&mut tx, plan, vault, now_ms, mode).await? {
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn get_record(&self, tenant: &str, kind: &str, id: &str) -> Result<Option<Record>> {
                self.reads
                    .through(
                        || kept::key("record", &[tenant, kind, id]),
                        async {
                            let q = format!("SELECT {} FROM records WHERE tenant = $1 AND kind = $2 AND id = $3", sql::RECORD_COLS);
                            if let Some(r) = self.readers() {
                                return r.query_opt(&q, &[&tenant, &kind, &id], |row| Ok(record_from_row!(row)));
                            }
                            let row = sqlx::query(&q)
                            .bind(tenant)
                            .bind(kind)
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await?;
                            Ok(match row {
                                Some(row) => Some(record_from_row!(row)),
                                None => None,
                            })
                        },
                    )
                    .await
            }

            async fn list_records(&self, tenant: &str, kind: &str) -> Result<Vec<Record>> {
                let q = format!("SELECT {} FROM records WHERE tenant = $1 AND kind = $2 ORDER BY id", sql::RECORD_COLS);
                if let Some(r) = self.readers() {
                    // A tenant's records of one kind: a handful (clients, configs).
                    return r.query_all(&q, &[&tenant, &kind], |row| Ok(record_from_row!(row)));
                }
                let rows = sqlx::query(&q)
                .bind(tenant)
                .bind(kind)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(record_from_row!(row));
                }
                Ok(out)
            }

            async fn create_record(&self, rec: &RecordWrite, vault: &Vault, now_ms: i64) -> Result<bool> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                let sealed = rec.secret.as_ref().map(|s| seal_secret(vault, &rec.tenant, &rec.kind, &rec.id, s));
                let r = sqlx::query(
                    "INSERT INTO records (tenant, kind, id, data, secret_key_id, secret, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (tenant, kind, id) DO NOTHING",
                )
                .bind(&rec.tenant)
                .bind(&rec.kind)
                .bind(&rec.id)
                .bind(rec.data.to_string())
                .bind(sealed.as_ref().map(|s| s.key_id.clone()))
                .bind(sealed.map(|s| s.blob))
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn job_stats(&self) -> Result<Vec<JobStat>> {
                let rows = sqlx::query(
                    "SELECT kind, state, COUNT(*) AS n, \
                     SUM(CASE WHEN last_error IS NULL THEN 0 ELSE 1 END) AS e \
                     FROM jobs GROUP BY kind, state ORDER BY kind, state",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let state: String = row.try_get("state")?;
                    out.push(JobStat {
                        kind: row.try_get("kind")?,
                        state: JobState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
                        count: row.try_get("n")?,
                        with_errors: row.try_get::<Option<i64>, _>("e")?.unwrap_or(0),
                    });
                }
                Ok(out)
            }

            async fn put_record(&self, rec: &RecordWrite, jobs: &[NewJob], vault: &Vault, now_ms: i64) -> Result<()> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                let mut tx = self.pool.begin_with($begin).await?;
                let sealed = rec.secret.as_ref().map(|s| seal_secret(vault, &rec.tenant, &rec.kind, &rec.id, s));
                sqlx::query(sql::UPSERT_RECORD)
                    .bind(&rec.tenant)
                    .bind(&rec.kind)
                    .bind(&rec.id)
                    .bind(rec.data.to_string())
                    .bind(sealed.as_ref().map(|s| s.key_id.clone()))
                    .bind(sealed.map(|s| s.blob))
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                for job in jobs {
                    insert_job!(&mut *tx, job, now_ms);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn find_credential(&self, raw_token: &str) -> Result<Option<Arc<Credential>>> {
                let hash = hashing::token_hash(raw_token);
                let key = kept::plain_key(&hash);
                let generation = self.auth.generation();
                if let Some(Answer::Credential(c)) = self.auth.get(&key, generation) {
                    return Ok(Some(c));
                }
                let found = if let Some(r) = self.readers() {
                    r.query_opt(sql::FIND_CREDENTIAL, &[&hash], |row| credential_from_row!(row, raw_token))?.flatten()
                } else {
                    match sqlx::query(sql::FIND_CREDENTIAL).bind(&hash).fetch_optional(&self.pool).await? {
                        Some(row) => credential_from_row!(row, raw_token)?,
                        None => None,
                    }
                }
                .map(Arc::new);
                if let Some(c) = &found {
                    self.auth.put(key, generation, Answer::Credential(c.clone()));
                }
                Ok(found)
            }

            async fn find_credential_with(
                &self,
                raw_token: &str,
                principal: (&str, &str),
                other: Option<(&str, &str, &str)>,
            ) -> Result<Option<Arc<CredentialWith>>> {
                let hash = hashing::token_hash(raw_token);
                // Without another record the join matches nothing (an empty kind).
                let (o_tenant, o_kind, o_id) = other.unwrap_or(("", "", ""));
                let decode = |c: Option<Credential>, p: Option<Record>, o: Option<Record>| {
                    c.map(|credential| Arc::new(CredentialWith { credential, principal: p, other: o }))
                };
                let key = kept::with_key(&hash, principal, other);
                let generation = self.auth.generation();
                if let Some(Answer::With(w)) = self.auth.get(&key, generation) {
                    return Ok(Some(w));
                }
                let found = if let Some(r) = self.readers() {
                    let args: [&dyn rusqlite::ToSql; 6] = [&hash, &principal.0, &principal.1, &o_tenant, &o_kind, &o_id];
                    r.query_opt(sql::FIND_CREDENTIAL_WITH, &args, |row| {
                        Ok(decode(
                            credential_from_row!(row, raw_token)?,
                            opt_record_from_row!(row, "p_"),
                            opt_record_from_row!(row, "o_"),
                        ))
                    })?
                    .flatten()
                } else {
                    match sqlx::query(sql::FIND_CREDENTIAL_WITH)
                        .bind(&hash)
                        .bind(principal.0)
                        .bind(principal.1)
                        .bind(o_tenant)
                        .bind(o_kind)
                        .bind(o_id)
                        .fetch_optional(&self.pool)
                        .await?
                    {
                        Some(row) => {
                            let row = &row;
                            decode(credential_from_row!(row, raw_token)?, opt_record_from_row!(row, "p_"), opt_record_from_row!(row, "o_"))
                        }
                        None => None,
                    }
                };
                if let Some(w) = &found {
                    self.auth.put(key, generation, Answer::With(Arc::clone(w)));
                }
                Ok(found)
            }

            async fn put_credential(&self, raw_token: &str, cred: &Credential, now_ms: i64) -> Result<()> {
                let _bump = self.auth.writing();
                sqlx::query(sql::UPSERT_CREDENTIAL)
                    .bind(hashing::token_hash(raw_token))
                    .bind(&cred.face)
                    .bind(&cred.principal_kind)
                    .bind(&cred.principal_id)
                    .bind(&cred.tenant)
                    .bind(serde_json::to_string(&cred.scopes).expect("strings serialise"))
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_record(&self, tenant: &str, kind: &str, id: &str) -> Result<bool> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                let r = sqlx::query("DELETE FROM records WHERE tenant = $1 AND kind = $2 AND id = $3")
                    .bind(tenant)
                    .bind(kind)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn rotate_secrets(&self, vault: &Vault) -> Result<u64> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                let mut total = 0u64;
                for t in SEALED_COLUMNS {
                    let (select, update) = t.sql();
                    loop {
                        // Only the identity and the sealed value are read, a batch at a time;
                        // resealed rows leave the selection.
                        let rows = sqlx::query(&select).bind(vault.primary_key_id()).fetch_all(&self.pool).await?;
                        if rows.is_empty() {
                            break;
                        }
                        for row in rows {
                            let (tenant, kind, id): (String, String, String) =
                                (row.try_get("tenant")?, row.try_get("kind")?, row.try_get("id")?);
                            let old = Sealed { key_id: row.try_get("kid")?, blob: row.try_get("blob")? };
                            let aad = Record::aad(&tenant, &kind, &id);
                            let new = vault.seal(&vault.open(&old, &aad)?, &aad);
                            let done = sqlx::query(&update)
                                .bind(&new.key_id)
                                .bind(new.blob)
                                .bind(&tenant)
                                .bind(&id)
                                .bind(&old.key_id)
                                .bind(&kind)
                                .execute(&self.pool)
                                .await?;
                            total += done.rows_affected();
                        }
                    }
                }
                Ok(total)
            }

            async fn find_record(&self, kind: &str, id: &str) -> Result<Option<Record>> {
                self.reads
                    .through(
                        || kept::key("record-any", &[kind, id]),
                        async {
                            if let Some(r) = self.readers() {
                                return r.query_opt(sql::FIND_RECORD, &[&kind, &id], |row| Ok(record_from_row!(row)));
                            }
                            let row = sqlx::query(sql::FIND_RECORD).bind(kind).bind(id).fetch_optional(&self.pool).await?;
                            Ok(match row {
                                Some(row) => Some(record_from_row!(row)),
                                None => None,
                            })
                        },
                    )
                    .await
            }

            async fn list_kind(&self, kind: &str) -> Result<Vec<Record>> {
                let rows = sqlx::query(sql::LIST_KIND).bind(kind).fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(record_from_row!(row));
                }
                Ok(out)
            }

            async fn net_get_connection(&self, side: NetSide, enterprise: &str, id: &str) -> Result<Option<Arc<NetConnection>>> {
                self.reads
                    .through(
                        || kept::key("net", &[side_column(side), enterprise, id]),
                        async {
                            let key = side_column(side);
                            let q = format!("SELECT {} FROM net_connections WHERE {key} = $1 AND id = $2", sql::NET_COLS);
                            if let Some(r) = self.readers() {
                                return Ok(r.query_opt(&q, &[&enterprise, &id], |row| Ok(net_from_row!(row)))?.map(Arc::new));
                            }
                            let row = sqlx::query(&q).bind(enterprise).bind(id).fetch_optional(&self.pool).await?;
                            Ok(match row {
                                Some(row) => Some(Arc::new(net_from_row!(row))),
                                None => None,
                            })
                        },
                    )
                    .await
            }

            async fn net_list_connections(
                &self,
                side: NetSide,
                enterprise: &str,
                filter: &NetConnectionFilter,
                limit: i64,
                offset: i64,
            ) -> Result<Page<NetConnection>> {
                self.reads
                    .through(
                        || kept::key("net-page", &[side_column(side), enterprise, &format!("{filter:?}"), &limit.to_string(), &offset.to_string()]),
                        async {
                            let two_step = deferred(self.backend(), offset);
                            let (q, binds) = net_list_query(side, enterprise, filter, limit, offset, two_step);
                            if let Some(r) = self.readers() {
                                return r
                                    .run(offset > readers::LONG_OFFSET, || {
                                        r.query_all(&q, &readers::args(&binds), |row| Ok(net_from_row!(row)))
                                    })
                                    .await
                                    .map(Arc::new);
                            }
                            let rows = bind_all!(sqlx::query(&q), binds).fetch_all(&self.pool).await?;
                            let mut out = Vec::with_capacity(rows.len());
                            for row in rows {
                                out.push(net_from_row!(row));
                            }
                            Ok(Arc::new(out))
                        },
                    )
                    .await
            }

            async fn net_insert_connection(&self, conn: &NetConnection, jobs: &[NewJob]) -> Result<()> {
                let _reads = self.reads.writing();
                if let Some(r) = self.readers() {
                    let (conn, jobs) = (conn.clone(), jobs.to_vec());
                    return r
                        .write(move |tx| {
                            match readers::execute(tx, sql::NET_INSERT_HEAD, &net_args(&conn)) {
                                Ok(_) => {}
                                Err(e) if readers::is_unique_violation(&e) => return Err(StoreError::Conflict("nonce")),
                                Err(e) => return Err(e),
                            }
                            for job in &jobs {
                                write_job(tx, job, conn.created_at)?;
                            }
                            Ok(())
                        })
                        .await;
                }
                let mut tx = self.pool.begin_with($begin).await?;
                let inserted = bind_net!(sqlx::query(sql::NET_INSERT_HEAD), conn).execute(&mut *tx).await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict("nonce")),
                    Err(e) => return Err(e.into()),
                }
                for job in jobs {
                    insert_job!(&mut *tx, job, conn.created_at);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn net_update_connection(
                &self,
                enterprise: &str,
                id: &str,
                name: Option<&str>,
                active: Option<bool>,
                now_ms: i64,
            ) -> Result<Option<NetConnection>> {
                if name.is_some() || active.is_some() {
                    sqlx::query(sql::NET_UPDATE)
                        .bind(name)
                        .bind(active)
                        .bind(now_ms)
                        .bind(enterprise)
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    // Read back what was just written, not what was kept before.
                    self.reads.written();
                }
                Ok(self.net_get_connection(NetSide::Client, enterprise, id).await?.map(Arc::unwrap_or_clone))
            }

            async fn net_mark_initialized(
                &self,
                tenant: &str,
                id: &str,
                partners_client_id: &str,
                partners_connection_id: &str,
                now_ms: i64,
            ) -> Result<bool> {
                let _reads = self.reads.writing();
                let r = sqlx::query(sql::NET_INITIALIZED)
                    .bind(partners_client_id)
                    .bind(partners_connection_id)
                    .bind(now_ms)
                    .bind(tenant)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn net_balances(&self, accounts: &[String]) -> Result<Vec<NetBalance>> {
                self.ledger_balances(accounts).await
            }

            async fn net_ledger_get(&self, kind: &str, id: &str) -> Result<Option<LedgerRow>> {
                self.ledger_get(kind, id).await
            }

            async fn net_ledger_by_key(&self, kind: &str, key: &str) -> Result<Option<LedgerRow>> {
                self.ledger_by_key(kind, key).await
            }

            async fn net_ledger_list(
                &self,
                kind: &str,
                filter: &LedgerFilter,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<LedgerRow>> {
                self.ledger_list(kind, filter, limit, offset).await
            }

            async fn net_ledger_commit(&self, commit: &LedgerCommit) -> Result<Committed> {
                self.ledger_commit(commit).await
            }

            async fn ex_get_connection(&self, id: &str) -> Result<Option<ExConnection>> {
                self.reads
                    .through(
                        || kept::key("ex", &[id]),
                        async {
                            let q = format!("SELECT {EX_CONN_COLS} FROM ex_connections WHERE id = $1");
                            if let Some(r) = self.readers() {
                                return r.query_opt(&q, &[&id], |row| Ok(ex_conn_from_row!(row)));
                            }
                            let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
                            Ok(match row {
                                Some(row) => Some(ex_conn_from_row!(row)),
                                None => None,
                            })
                        },
                    )
                    .await
            }

            async fn ex_list_connections(
                &self,
                tenant: &str,
                imodel_id: &str,
                limit: i64,
                offset: i64,
            ) -> Result<Page<ExConnection>> {
                self.reads
                    .through(
                        || kept::key("ex-page", &[tenant, imodel_id, &limit.to_string(), &offset.to_string()]),
                        async {
                            let q = if deferred(self.backend(), offset) {
                                // Two steps (DEFERRED_OFFSET): the page's ids from the
                                // (tenant, imodel_id, created_at, id) index alone, then their rows.
                                format!(
                                    "SELECT {EX_CONN_COLS} FROM ex_connections WHERE tenant = $1 AND id IN \
                                     (SELECT id FROM ex_connections WHERE tenant = $1 AND imodel_id = $2 \
                                      ORDER BY created_at, id LIMIT $3 OFFSET $4) ORDER BY created_at, id"
                                )
                            } else {
                                format!(
                                    "SELECT {EX_CONN_COLS} FROM ex_connections WHERE tenant = $1 AND imodel_id = $2 \
                                     ORDER BY created_at, id LIMIT $3 OFFSET $4"
                                )
                            };
                            if let Some(r) = self.readers() {
                                return r
                                    .run(offset > readers::LONG_OFFSET, || {
                                        r.query_all(&q, &[&tenant, &imodel_id, &limit, &offset], |row| Ok(ex_conn_from_row!(row)))
                                    })
                                    .await
                                    .map(Arc::new);
                            }
                            let rows = sqlx::query(&q).bind(tenant).bind(imodel_id).bind(limit).bind(offset).fetch_all(&self.pool).await?;
                            let mut out = Vec::with_capacity(rows.len());
                            for row in rows {
                                out.push(ex_conn_from_row!(row));
                            }
                            Ok(Arc::new(out))
                        },
                    )
                    .await
            }

            async fn ex_insert_connection(&self, conn: &ExConnection) -> Result<()> {
                let _reads = self.reads.writing();
                let q = format!("INSERT INTO ex_connections ({EX_CONN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
                bind_ex_conn!(sqlx::query(&q), conn).execute(&self.pool).await?;
                Ok(())
            }

            async fn ex_delete_connection(&self, tenant: &str, id: &str) -> Result<ExDeleted> {
                let _reads = self.reads.writing();
                let mut tx = self.pool.begin_with($begin).await?;
                let exists = sqlx::query("SELECT id FROM ex_connections WHERE tenant = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Ok(ExDeleted::NotFound);
                }
                let active = sqlx::query("SELECT id FROM ex_runs WHERE active_connection = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if active.is_some() {
                    return Ok(ExDeleted::Active);
                }
                sqlx::query("DELETE FROM ex_runs WHERE tenant = $1 AND connection_id = $2").bind(tenant).bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM ex_connections WHERE tenant = $1 AND id = $2").bind(tenant).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(ExDeleted::Deleted)
            }

            async fn ex_create_run(&self, run: &ExRun, job: &NewJob) -> Result<RunCreated> {
                let _reads = self.reads.writing();
                let q = format!(
                    "INSERT INTO ex_runs ({EX_RUN_COLS}, active_connection) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $3)"
                );
                if let Some(r) = self.readers() {
                    let (run, job) = (run.clone(), job.clone());
                    return r
                        .write(move |tx| {
                            let active =
                                readers::query_opt_in(tx, sql::ACTIVE_RUN, &[&run.connection_id], |row| Ok(row.try_get("id")?))?;
                            if let Some(id) = active {
                                return Ok(RunCreated::Active(id));
                            }
                            let (request, jobs) = (run.request.to_string(), run.jobs.to_string());
                            let args: [&dyn rusqlite::ToSql; 11] = [
                                &run.tenant, &run.id, &run.connection_id, &run.state, &run.result, &request, &jobs,
                                &run.start_at, &run.end_at, &run.created_at, &run.updated_at,
                            ];
                            match readers::execute(tx, &q, &args) {
                                Ok(_) => {}
                                Err(e) if readers::is_unique_violation(&e) => return Ok(RunCreated::Raced),
                                Err(e) => return Err(e),
                            }
                            readers::execute(tx, sql::SET_LAST_RUN, &[&run.id, &run.tenant, &run.connection_id])?;
                            write_job(tx, &job, run.created_at)?;
                            Ok(RunCreated::Created)
                        })
                        .await;
                }
                let mut tx = self.pool.begin_with($begin).await?;
                if let Some(row) = sqlx::query(sql::ACTIVE_RUN).bind(&run.connection_id).fetch_optional(&mut *tx).await? {
                    return Ok(RunCreated::Active(row.try_get("id")?));
                }
                let inserted = sqlx::query(&q)
                    .bind(&run.tenant)
                    .bind(&run.id)
                    .bind(&run.connection_id)
                    .bind(&run.state)
                    .bind(&run.result)
                    .bind(run.request.to_string())
                    .bind(run.jobs.to_string())
                    .bind(run.start_at)
                    .bind(run.end_at)
                    .bind(run.created_at)
                    .bind(run.updated_at)
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Ok(RunCreated::Raced),
                    Err(e) => return Err(e.into()),
                }
                sqlx::query(sql::SET_LAST_RUN)
                    .bind(&run.id)
                    .bind(&run.tenant)
                    .bind(&run.connection_id)
                    .execute(&mut *tx)
                    .await?;
                insert_job!(&mut *tx, job, run.created_at);
                tx.commit().await?;
                Ok(RunCreated::Created)
            }

            async fn ex_get_run(&self, tenant: &str, connection_id: &str, id: &str) -> Result<Option<ExRun>> {
                let q = format!("SELECT {EX_RUN_COLS} FROM ex_runs WHERE tenant = $1 AND id = $2 AND connection_id = $3");
                let row = sqlx::query(&q).bind(tenant).bind(id).bind(connection_id).fetch_optional(&self.pool).await?;
                Ok(match row {
                    Some(row) => Some(ex_run_from_row!(row)),
                    None => None,
                })
            }

            async fn ex_list_runs(&self, tenant: &str, connection_id: &str, limit: i64, offset: i64) -> Result<Vec<ExRun>> {
                let q = format!(
                    "SELECT {EX_RUN_COLS} FROM ex_runs WHERE tenant = $1 AND connection_id = $2 \
                     ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
                );
                let rows = sqlx::query(&q).bind(tenant).bind(connection_id).bind(limit).bind(offset).fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(ex_run_from_row!(row));
                }
                Ok(out)
            }

            async fn ex_save_run(&self, run: &ExRun) -> Result<bool> {
                let _reads = self.reads.writing();
                let r = sqlx::query(
                    "UPDATE ex_runs SET state = $1, result = $2, detail = $3, start_at = $4, end_at = $5, updated_at = $6, \
                     active_connection = CASE WHEN $1 = 'Completed' THEN NULL ELSE active_connection END \
                     WHERE tenant = $7 AND id = $8",
                )
                .bind(&run.state)
                .bind(&run.result)
                .bind(run.jobs.to_string())
                .bind(run.start_at)
                .bind(run.end_at)
                .bind(run.updated_at)
                .bind(&run.tenant)
                .bind(&run.id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn in_get_connection(&self, tenant: &str, id: &str) -> Result<Option<Arc<InConnection>>> {
                self.reads
                    .through(
                        || kept::key("in", &[tenant, id]),
                        async {
                            let q = format!("SELECT {IN_COLS} FROM in_connections WHERE tenant = $1 AND id = $2");
                            if let Some(r) = self.readers() {
                                return Ok(r.query_opt(&q, &[&tenant, &id], |row| Ok(in_from_row!(row)))?.map(Arc::new));
                            }
                            let row = sqlx::query(&q).bind(tenant).bind(id).fetch_optional(&self.pool).await?;
                            Ok(match row {
                                Some(row) => Some(Arc::new(in_from_row!(row))),
                                None => None,
                            })
                        },
                    )
                    .await
            }

            async fn in_list_connections(
                &self,
                tenant: &str,
                filter: &InFilter,
                limit: i64,
                offset: i64,
            ) -> Result<(Page<InConnection>, i64)> {
                self.reads
                    .through(
                        || kept::key("in-page", &[tenant, &format!("{filter:?}"), &limit.to_string(), &offset.to_string()]),
                        async {
                            let index = match filter.search.as_deref() {
                                Some(q) => self.search_index(q).await?,
                                None => SearchIndex::Scan,
                            };
                            if matches!(&index, SearchIndex::Candidates(c) if c.is_empty()) {
                                return Ok((Page::default(), 0));
                            }
                            // With few candidates, SQLite must start from them, not from the
                            // organisation's rows in list order (`+tenant` keeps that index out).
                            let tenant_col = if matches!(index, SearchIndex::Candidates(_)) { "+tenant" } else { "tenant" };
                            let mut binds = vec![Bind::Text(tenant.to_string())];
                            let cond = in_filter_sql(filter, &mut binds, &index);
                            let count_q = format!("SELECT COUNT(*) AS n FROM in_connections WHERE {tenant_col} = $1{cond}");
                            let mut page_binds = binds.iter().map(Bind::clone_bind).collect::<Vec<_>>();
                            page_binds.push(Bind::Int(limit));
                            page_binds.push(Bind::Int(offset));
                            let n = page_binds.len();
                            let q = format!(
                                "SELECT {IN_COLS} FROM in_connections WHERE {tenant_col} = $1{cond} ORDER BY updated_at DESC, id ASC LIMIT ${} OFFSET ${n}",
                                n - 1
                            );
                            if let Some(r) = self.readers() {
                                // A search without the index scans the organisation's connections.
                                let scan = filter.search.is_some() && !matches!(index, SearchIndex::Candidates(_));
                                let long = offset > readers::LONG_OFFSET || scan;
                                return r
                                    .run(long, || {
                                        // The total, then the page (two statements, as on the sqlx path).
                                        let total: i64 =
                                            r.query_one(&count_q, &readers::args(&binds), |row| Ok(row.try_get("n")?))?;
                                        Ok((r.query_all(&q, &readers::args(&page_binds), |row| Ok(in_from_row!(row)))?, total))
                                    })
                                    .await
                                    .map(|(v, n)| (Arc::new(v), n));
                            }
                            let total: i64 = bind_all!(sqlx::query(&count_q), binds).fetch_one(&self.pool).await?.try_get("n")?;
                            let rows = bind_all!(sqlx::query(&q), page_binds).fetch_all(&self.pool).await?;
                            let mut out = Vec::with_capacity(rows.len());
                            for row in rows {
                                out.push(in_from_row!(row));
                            }
                            Ok((Arc::new(out), total))
                        },
                    )
                    .await
            }

            async fn in_put_connection(&self, conn: &InConnection, event: Option<&InEvent>, jobs: &[NewJob]) -> Result<()> {
                let _reads = self.reads.writing();
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query("DELETE FROM in_connections WHERE id = $1").bind(&conn.id).execute(&mut *tx).await?;
                let q = format!(
                    "INSERT INTO in_connections ({IN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
                );
                bind_in!(sqlx::query(&q), conn).execute(&mut *tx).await?;
                if let Some(e) = event {
                    insert_event!(&mut *tx, e);
                }
                for job in jobs {
                    insert_job!(&mut *tx, job, conn.updated_at);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn in_update_connection(
                &self,
                conn: &InConnection,
                expected_version: i64,
                fence: Option<&str>,
                event: Option<&InEvent>,
                jobs: &[NewJob],
            ) -> Result<bool> {
                let _reads = self.reads.writing();
                let mut tx = self.pool.begin_with($begin).await?;
                let update = "UPDATE in_connections SET display_name = $1, disabled = $2, status = $3, status_message = $4, \
                     metadata = $5, settings_key_id = $6, settings_blob = $7, expires_at = $8, refreshable = $9, \
                     version = $10, updated_at = $11 WHERE tenant = $12 AND id = $13 AND version = $14";
                let fenced;
                let q = match fence {
                    Some(_) => {
                        fenced = format!("{update} AND lock_owner = $15");
                        fenced.as_str()
                    }
                    None => update,
                };
                let q = sqlx::query(q)
                .bind(&conn.display_name)
                .bind(conn.disabled)
                .bind(&conn.status)
                .bind(&conn.status_message)
                .bind(conn.metadata.as_ref().map(|m| m.to_string()))
                .bind(&conn.settings.key_id)
                .bind(&conn.settings.blob)
                .bind(conn.expires_at)
                .bind(conn.refreshable)
                .bind(conn.version)
                .bind(conn.updated_at)
                .bind(&conn.tenant)
                .bind(&conn.id)
                .bind(expected_version);
                let q = match fence {
                    Some(owner) => q.bind(owner),
                    None => q,
                };
                let r = q.execute(&mut *tx).await?;
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                if let Some(e) = event {
                    insert_event!(&mut *tx, e);
                }
                for job in jobs {
                    insert_job!(&mut *tx, job, conn.updated_at);
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn in_delete_connection(
                &self,
                tenant: &str,
                id: &str,
                customer: Option<&str>,
                event: &InEvent,
                jobs: &[NewJob],
            ) -> Result<bool> {
                let _reads = self.reads.writing();
                let mut tx = self.pool.begin_with($begin).await?;
                let r = match customer {
                    Some(c) => sqlx::query("DELETE FROM in_connections WHERE tenant = $1 AND id = $2 AND customer_id = $3")
                        .bind(tenant)
                        .bind(id)
                        .bind(c)
                        .execute(&mut *tx)
                        .await?,
                    None => sqlx::query("DELETE FROM in_connections WHERE tenant = $1 AND id = $2")
                        .bind(tenant)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?,
                };
                if r.rows_affected() != 1 {
                    return Ok(false);
                }
                insert_event!(&mut *tx, event);
                for job in jobs {
                    insert_job!(&mut *tx, job, event.ts);
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn in_try_lock(&self, tenant: &str, id: &str, owner: &str, until_ms: i64, now_ms: i64) -> Result<bool> {
                let _reads = self.reads.writing();
                let r = sqlx::query(
                    "UPDATE in_connections SET lock_owner = $1, lock_until = $2 \
                     WHERE tenant = $3 AND id = $4 AND (lock_until IS NULL OR lock_until < $5 OR lock_owner = $1)",
                )
                .bind(owner)
                .bind(until_ms)
                .bind(tenant)
                .bind(id)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn in_unlock(&self, tenant: &str, id: &str, owner: &str) -> Result<()> {
                let _reads = self.reads.writing();
                sqlx::query("UPDATE in_connections SET lock_owner = NULL, lock_until = NULL WHERE tenant = $1 AND id = $2 AND lock_owner = $3")
                    .bind(tenant)
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn in_due_for_refresh(&self, before_ms: i64, limit: i64) -> Result<Vec<(String, String)>> {
                let rows = sqlx::query(
                    "SELECT tenant, id FROM in_connections WHERE expires_at < $1 AND refreshable = TRUE \
                     AND COALESCE(status, '') <> 'disconnected' ORDER BY expires_at LIMIT $2",
                )
                .bind(before_ms)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push((row.try_get("tenant")?, row.try_get("id")?));
                }
                Ok(out)
            }

            async fn in_count_by_config(&self, tenant: &str, connector_config_id: &str) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM in_connections WHERE tenant = $1 AND connector_config_id = $2")
                    .bind(tenant)
                    .bind(connector_config_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("n")?)
            }

            async fn in_customers(
                &self,
                tenant: &str,
                search: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<(Vec<InCustomerRow>, i64)> {
                let mut binds = vec![Bind::Text(tenant.to_string())];
                let mut cond = String::from(" AND customer_id IS NOT NULL");
                if let Some(q) = search.filter(|q| !q.is_empty()) {
                    binds.push(Bind::Text(like_pattern(q)));
                    cond.push_str(&format!(" AND LOWER(customer_id) LIKE ${} ESCAPE '\\'", binds.len()));
                }
                let count_q = format!("SELECT COUNT(DISTINCT customer_id) AS n FROM in_connections WHERE tenant = $1{cond}");
                let count_binds: Vec<Bind> = binds.iter().map(Bind::clone_bind).collect();
                let total: i64 = bind_all!(sqlx::query(&count_q), count_binds).fetch_one(&self.pool).await?.try_get("n")?;
                binds.push(Bind::Int(limit));
                binds.push(Bind::Int(offset));
                let n = binds.len();
                let q = format!(
                    "SELECT customer_id, COUNT(*) AS n, MIN(created_at) AS c, MAX(updated_at) AS u FROM in_connections \
                     WHERE tenant = $1{cond} GROUP BY customer_id ORDER BY customer_id LIMIT ${} OFFSET ${n}",
                    n - 1
                );
                let rows = bind_all!(sqlx::query(&q), binds).fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(InCustomerRow {
                        id: row.try_get("customer_id")?,
                        connection_count: row.try_get("n")?,
                        created_at: row.try_get("c")?,
                        updated_at: row.try_get("u")?,
                    });
                }
                Ok((out, total))
            }

            async fn in_get_event(&self, tenant: &str, id: &str, customer: Option<&str>) -> Result<Option<InEvent>> {
                let row = sqlx::query(
                    "SELECT tenant, id, name, data, customer_id, ts FROM in_events \
                     WHERE tenant = $1 AND id = $2 AND ($3 IS NULL OR customer_id = $3)",
                )
                .bind(tenant)
                .bind(id)
                .bind(customer)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let data: String = row.try_get("data")?;
                Ok(Some(InEvent {
                    tenant: row.try_get("tenant")?,
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    data: parse_json(&data, "event data")?,
                    customer_id: row.try_get("customer_id")?,
                    ts: row.try_get("ts")?,
                }))
            }

            async fn in_insert_event(&self, event: &InEvent, jobs: &[NewJob]) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                insert_event!(&mut *tx, event);
                for job in jobs {
                    insert_job!(&mut *tx, job, event.ts);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn in_list_events(
                &self,
                tenant: &str,
                customer: Option<&str>,
                search: Option<&str>,
                since_ms: Option<i64>,
                limit: i64,
                offset: i64,
            ) -> Result<(Vec<InEvent>, i64)> {
                let mut binds = vec![Bind::Text(tenant.to_string())];
                let mut cond = String::new();
                if let Some(c) = customer {
                    binds.push(Bind::Text(c.to_string()));
                    cond.push_str(&format!(" AND customer_id = ${}", binds.len()));
                }
                if let Some(q) = search.filter(|q| !q.is_empty()) {
                    binds.push(Bind::Text(like_pattern(q)));
                    cond.push_str(&format!(" AND LOWER(id) LIKE ${} ESCAPE '\\'", binds.len()));
                }
                if let Some(t) = since_ms {
                    binds.push(Bind::Int(t));
                    cond.push_str(&format!(" AND ts >= ${}", binds.len()));
                }
                let count_q = format!("SELECT COUNT(*) AS n FROM in_events WHERE tenant = $1{cond}");
                let count_binds: Vec<Bind> = binds.iter().map(Bind::clone_bind).collect();
                let total: i64 = bind_all!(sqlx::query(&count_q), count_binds).fetch_one(&self.pool).await?.try_get("n")?;
                binds.push(Bind::Int(limit));
                binds.push(Bind::Int(offset));
                let n = binds.len();
                let q = format!(
                    "SELECT tenant, id, name, data, customer_id, ts FROM in_events WHERE tenant = $1{cond} \
                     ORDER BY ts DESC, id ASC LIMIT ${} OFFSET ${n}",
                    n - 1
                );
                let rows = bind_all!(sqlx::query(&q), binds).fetch_all(&self.pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let data: String = row.try_get("data")?;
                    out.push(InEvent {
                        tenant: row.try_get("tenant")?,
                        id: row.try_get("id")?,
                        name: row.try_get("name")?,
                        data: parse_json(&data, "event data")?,
                        customer_id: row.try_get("customer_id")?,
                        ts: row.try_get("ts")?,
                    });
                }
                Ok((out, total))
            }

            async fn enqueue_job(&self, job: &NewJob, now_ms: i64) -> Result<()> {
                insert_job!(&self.pool, job, now_ms);
                Ok(())
            }

            async fn claim_job(&self, worker: &str, now_ms: i64, lease_ms: i64) -> Result<Option<Job>> {
                let q = format!("{}{}{}", sql::CLAIM_HEAD, $lock, sql::CLAIM_TAIL);
                let row = sqlx::query(&q)
                    .bind(worker)
                    .bind(now_ms + lease_ms)
                    .bind(now_ms)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(row) => Some(job_from_row!(row)),
                    None => None,
                })
            }

            async fn extend_lease(&self, job: &Job, worker: &str, until_ms: i64) -> Result<bool> {
                let r = sqlx::query(sql::EXTEND)
                    .bind(until_ms)
                    .bind(&job.tenant)
                    .bind(&job.id)
                    .bind(worker)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn complete_job(&self, job: &Job, worker: &str, now_ms: i64) -> Result<bool> {
                let r = sqlx::query(sql::COMPLETE)
                    .bind(now_ms)
                    .bind(&job.tenant)
                    .bind(&job.id)
                    .bind(worker)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn fail_job(
                &self,
                job: &Job,
                worker: &str,
                error: &str,
                retry_at: Option<i64>,
                now_ms: i64,
            ) -> Result<bool> {
                let r = match retry_at {
                    Some(at) => {
                        sqlx::query(sql::RETRY)
                            .bind(at)
                            .bind(error)
                            .bind(now_ms)
                            .bind(&job.tenant)
                            .bind(&job.id)
                            .bind(worker)
                            .execute(&self.pool)
                            .await?
                    }
                    None => {
                        sqlx::query(sql::BURY)
                            .bind(error)
                            .bind(now_ms)
                            .bind(&job.tenant)
                            .bind(&job.id)
                            .bind(worker)
                            .execute(&self.pool)
                            .await?
                    }
                };
                Ok(r.rows_affected() == 1)
            }

            async fn get_job(&self, tenant: &str, id: &str) -> Result<Option<Job>> {
                let row = sqlx::query(&format!("SELECT {} FROM jobs WHERE tenant = $1 AND id = $2", sql::JOB_COLS))
                    .bind(tenant)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(row) => Some(job_from_row!(row)),
                    None => None,
                })
            }

            async fn sandbox_reset(&self, seed: Option<&SeedPlan>, vault: &Vault, now_ms: i64) -> Result<()> {
                self.sbx_reset(seed, vault, now_ms).await
            }

            async fn snapshot_save(&self, name: &str, now_ms: i64) -> Result<crate::sandbox::SnapshotInfo> {
                self.sbx_save(name, now_ms).await
            }

            async fn snapshot_restore(&self, name: &str) -> Result<Option<crate::sandbox::SnapshotInfo>> {
                self.sbx_restore(name).await
            }

            async fn snapshot_list(&self) -> Result<Vec<crate::sandbox::SnapshotInfo>> {
                self.sbx_list().await
            }

            async fn snapshot_delete(&self, name: &str) -> Result<bool> {
                self.sbx_delete(name).await
            }

            async fn file_put(&self, name: &str, bytes: &[u8], now_ms: i64) -> Result<()> {
                self.shared_file_put(name, bytes, now_ms).await
            }

            async fn file_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
                self.shared_file_get(name).await
            }

            async fn rate_take(
                &self,
                key: &str,
                budget: patchbay_core::ratelimit::Budget,
            ) -> Result<std::result::Result<(), i64>> {
                self.shared_rate_take(key, budget).await
            }

            async fn sandbox_shift_leases(&self, delta_ms: i64) -> Result<u64> {
                let r = sqlx::query(
                    "UPDATE jobs SET lease_until = lease_until + $1 WHERE state = 'running' AND lease_until IS NOT NULL",
                )
                .bind(delta_ms)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected())
            }

            async fn job_counts(&self) -> Result<Vec<(JobState, i64)>> {
                let rows = sqlx::query(sql::JOB_COUNTS).fetch_all(&self.pool).await?;
                let mut out: Vec<(JobState, i64)> = JobState::ALL.iter().map(|s| (*s, 0)).collect();
                for row in rows {
                    let state: String = row.try_get("state")?;
                    let n: i64 = row.try_get("n")?;
                    if let Some(slot) = out.iter_mut().find(|(s, _)| s.as_str() == state) {
                        slot.1 = n;
                    }
                }
                Ok(out)
            }
        }
    };
}

/// Backend-specific helpers used inside transactions.
macro_rules! impl_helpers {
    ($ty:ty, $db:ty) => {
        impl $ty {
            /// Writes a seed plan inside a transaction; false when a start-up application
            /// finds the document applied before (nothing written).
            async fn seed_into(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                plan: &SeedPlan,
                vault: &Vault,
                now_ms: i64,
                mode: SeedMode,
            ) -> Result<bool> {
                let digest_key = self.seed_digest_key(tx, vault, now_ms).await?;
                // 0. A document applied before, byte for byte, is not applied again at start-up.
                let doc_digest = seed::document_digest(&digest_key, &plan.document);
                let doc_key = hex::encode(&doc_digest);
                if mode == SeedMode::StartUp
                    && sqlx::query(sql::SEED_ENTRY)
                        .bind(sql::SEED_DOCUMENT)
                        .bind("")
                        .bind(&doc_key)
                        .fetch_optional(&mut **tx)
                        .await?
                        .is_some()
                {
                    return Ok(false);
                }
                // 1. Every reference to an object outside the document must resolve.
                let mut ref_tenants = Vec::with_capacity(plan.refs.len());
                for r in &plan.refs {
                    let row = match &r.tenant {
                        Some(t) => {
                            sqlx::query(sql::RESOLVE_REF_IN)
                                .bind(r.kind)
                                .bind(&r.id)
                                .bind(t)
                                .fetch_optional(&mut **tx)
                                .await?
                        }
                        None => sqlx::query(sql::RESOLVE_REF).bind(r.kind).bind(&r.id).fetch_optional(&mut **tx).await?,
                    };
                    match row {
                        Some(row) => ref_tenants.push(row.try_get::<String, _>("tenant")?),
                        None => {
                            let what = r.kind.rsplit('.').next().unwrap_or(r.kind).replace('_', " ");
                            return Err(StoreError::Seed(SeedError::new(
                                r.path.clone(),
                                format!("refers to {what} {:?}, which is neither in the document nor stored", r.id),
                            )));
                        }
                    }
                }
                let tenant_of = |t: &Tenant| -> String {
                    match t {
                        Tenant::Known(s) => s.clone(),
                        Tenant::OfRef(i) => ref_tenants[*i].clone(),
                    }
                };
                // 2. Upsert records, leaving identical ones untouched. At start-up, an
                // entry the document states as it was last applied is skipped whole:
                // what the API changed or deleted since stays changed or deleted.
                for rec in &plan.records {
                    let tenant = tenant_of(&rec.tenant);
                    let digest =
                        seed::entry_digest(&digest_key, rec.kind, &tenant, &rec.id, &rec.data, rec.secret.as_ref());
                    if self.seed_entry_due(tx, mode, rec.kind, &tenant, &rec.id, &digest, now_ms).await?
                        != SeedDue::Write
                    {
                        continue;
                    }
                    if rec.kind == kind::NET_FUNDS {
                        // Seeded funds set the account's balance in that currency.
                        let amount = |k: &str| crate::ledger::normalized(rec.data[k].as_str().unwrap_or("0"));
                        sqlx::query(
                            "INSERT INTO net_balances (account, currency, available, held, version, updated_at) \
                             VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (account, currency) DO UPDATE SET \
                             available = excluded.available, held = excluded.held, \
                             version = net_balances.version + 1, updated_at = excluded.updated_at",
                        )
                        .bind(rec.data["account"].as_str().unwrap_or_default())
                        .bind(rec.data["currency"].as_str().unwrap_or_default())
                        .bind(amount("available"))
                        .bind(amount("held"))
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                        continue;
                    }
                    if rec.kind == kind::NET_LEDGER {
                        // Seeded ledger rows (an allocation; a settlement and its transfers; a dispute).
                        for r in rec.data["rows"].as_array().into_iter().flatten() {
                            let row = crate::ledger::row_from_json(r)?;
                            sqlx::query(crate::ledger::UPSERT_ROW)
                                .bind(&row.kind)
                                .bind(&row.id)
                                .bind(&row.client_tenant)
                                .bind(&row.partner_tenant)
                                .bind(&row.partner_id)
                                .bind(&row.client_id)
                                .bind(&row.connection_id)
                                .bind(&row.parent_id)
                                .bind(&row.subtype)
                                .bind(&row.status)
                                .bind(&row.currency)
                                .bind(&row.external_id)
                                .bind(&row.external_key)
                                .bind(row.parties_text())
                                .bind(row.flag)
                                .bind(row.data.to_string())
                                .bind(row.created_at)
                                .bind(row.updated_at)
                                .execute(&mut **tx)
                                .await?;
                        }
                        continue;
                    }
                    if rec.kind == kind::NET_CONNECTION {
                        self.seed_net_connection(tx, rec, &tenant, vault, now_ms).await?;
                        continue;
                    }
                    if rec.kind == kind::IN_CONNECTION {
                        self.seed_in_connection(tx, rec, &tenant, vault, now_ms).await?;
                        continue;
                    }
                    if rec.kind == kind::EX_CONNECTION {
                        self.seed_ex_connection(tx, rec, &tenant, now_ms).await?;
                        continue;
                    }
                    sqlx::query(sql::DELETE_MOVED).bind(rec.kind).bind(&rec.id).bind(&tenant).execute(&mut **tx).await?;
                    let existing = sqlx::query(&format!(
                        "SELECT {} FROM records WHERE tenant = $1 AND kind = $2 AND id = $3",
                        sql::RECORD_COLS
                    ))
                    .bind(&tenant)
                    .bind(rec.kind)
                    .bind(&rec.id)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some(row) = existing {
                        let old: Record = record_from_row!(row);
                        let same_secret = match (&rec.secret, old.open_secret(vault)) {
                            (None, Ok(None)) => true,
                            (Some(new), Ok(Some(old))) => *new == old,
                            _ => false,
                        };
                        if old.data == rec.data && same_secret {
                            continue;
                        }
                    }
                    let sealed = rec.secret.as_ref().map(|s| seal_secret(vault, &tenant, rec.kind, &rec.id, s));
                    sqlx::query(sql::UPSERT_RECORD)
                        .bind(&tenant)
                        .bind(rec.kind)
                        .bind(&rec.id)
                        .bind(rec.data.to_string())
                        .bind(sealed.as_ref().map(|s| s.key_id.clone()))
                        .bind(sealed.map(|s| s.blob))
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                }
                // 3. Credentials: the document states each owner's full set (at
                // start-up, only sets that differ from the set as last applied).
                let mut owners_due = Vec::with_capacity(plan.credential_owners.len());
                for (face, pkind, pid) in &plan.credential_owners {
                    let set: Vec<(&[u8], String, &[String])> = plan
                        .credentials
                        .iter()
                        .filter(|c| c.face == *face && c.principal_kind == *pkind && c.principal_id == *pid)
                        .map(|c| (c.hash.as_slice(), tenant_of(&c.tenant), c.scopes.as_slice()))
                        .collect();
                    let set: Vec<(&[u8], &str, &[String])> = set.iter().map(|(h, t, s)| (*h, t.as_str(), *s)).collect();
                    let digest = seed::credentials_digest(&digest_key, &set);
                    let key = format!("credentials.{face}.{pkind}");
                    match self.seed_entry_due(tx, mode, &key, "", pid, &digest, now_ms).await? {
                        SeedDue::Skip => {}
                        SeedDue::Write => owners_due.push((*face, *pkind, pid.as_str(), true)),
                        // Never recorded (a database from before seed_entries): the listed
                        // tokens are added, and none the API created is removed.
                        SeedDue::Adopt => owners_due.push((*face, *pkind, pid.as_str(), false)),
                    }
                }
                for (face, pkind, pid, _) in owners_due.iter().copied().filter(|o| o.3) {
                    let held = sqlx::query(sql::PRINCIPAL_HASHES)
                        .bind(face)
                        .bind(pkind)
                        .bind(pid)
                        .fetch_all(&mut **tx)
                        .await?;
                    for row in held {
                        let hash: Vec<u8> = row.try_get("token_hash")?;
                        let keep = plan.credentials.iter().any(|c| {
                            c.hash == hash && c.face == face && c.principal_kind == pkind && c.principal_id == pid
                        });
                        if !keep {
                            sqlx::query(sql::DELETE_CREDENTIAL).bind(hash).execute(&mut **tx).await?;
                        }
                    }
                }
                for c in &plan.credentials {
                    if !owners_due.iter().any(|o| (o.0, o.1, o.2) == (c.face, c.principal_kind, c.principal_id.as_str())) {
                        continue;
                    }
                    let scopes = serde_json::to_string(&c.scopes).expect("strings serialise");
                    sqlx::query(sql::UPSERT_CREDENTIAL)
                        .bind(c.hash.clone())
                        .bind(c.face)
                        .bind(c.principal_kind)
                        .bind(&c.principal_id)
                        .bind(tenant_of(&c.tenant))
                        .bind(scopes)
                        .bind(now_ms)
                        .execute(&mut **tx)
                        .await?;
                }
                sqlx::query(sql::UPSERT_SEED_ENTRY)
                    .bind(sql::SEED_DOCUMENT)
                    .bind("")
                    .bind(&doc_key)
                    .bind(doc_digest)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(true)
            }

            /// Whether a seed entry is to be written now, recording its digest unless skipped:
            /// always under [`SeedMode::Upsert`]; at start-up, when the entry differs from
            /// the entry as last applied. An entry never recorded whose object exists
            /// already (a database seeded before digests were kept) is adopted: its digest
            /// is recorded and the object left as it is.
            #[allow(clippy::too_many_arguments)]
            async fn seed_entry_due(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                mode: SeedMode,
                kind: &str,
                tenant: &str,
                id: &str,
                digest: &[u8],
                now_ms: i64,
            ) -> Result<SeedDue> {
                let mut due = SeedDue::Write;
                if mode == SeedMode::StartUp {
                    let row = sqlx::query(sql::SEED_ENTRY).bind(kind).bind(tenant).bind(id).fetch_optional(&mut **tx).await?;
                    match row {
                        Some(row) if row.try_get::<Vec<u8>, _>("digest")? == digest => return Ok(SeedDue::Skip),
                        Some(_) => {}
                        None => {
                            let exists_sql = match kind {
                                kind::NET_CONNECTION => Some("SELECT 1 FROM net_connections WHERE tenant = $1 AND id = $2"),
                                kind::EX_CONNECTION => Some("SELECT 1 FROM ex_connections WHERE tenant = $1 AND id = $2"),
                                kind::IN_CONNECTION => Some("SELECT 1 FROM in_connections WHERE tenant = $1 AND id = $2"),
                                k if k.starts_with("credentials.") => None,
                                _ => Some("SELECT 1 FROM records WHERE tenant = $1 AND id = $2 AND kind = $3"),
                            };
                            due = match exists_sql {
                                Some(q) => {
                                    let q = sqlx::query(q).bind(tenant).bind(id);
                                    let q = if q_takes_kind(kind) { q.bind(kind) } else { q };
                                    if q.fetch_optional(&mut **tx).await?.is_some() { SeedDue::Adopt } else { SeedDue::Write }
                                }
                                None => SeedDue::Adopt,
                            };
                        }
                    }
                }
                sqlx::query(sql::UPSERT_SEED_ENTRY)
                    .bind(kind)
                    .bind(tenant)
                    .bind(id)
                    .bind(digest.to_vec())
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(due)
            }

            /// The key seed digests are made with: random, generated once per database,
            /// stored sealed (so `rotate-keys` re-seals it and the digests stay valid).
            async fn seed_digest_key(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                vault: &Vault,
                now_ms: i64,
            ) -> Result<Vec<u8>> {
                let (tenant, kind, id) = SEED_DIGEST_KEY;
                let row = sqlx::query(&format!("SELECT {} FROM records WHERE tenant = $1 AND kind = $2 AND id = $3", sql::RECORD_COLS))
                    .bind(tenant)
                    .bind(kind)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?;
                if let Some(row) = row {
                    let rec: Record = record_from_row!(row);
                    if let Some(key) = rec.open_secret(vault)?.as_ref().and_then(|s| s["key"].as_str()).and_then(|k| hex::decode(k).ok()) {
                        return Ok(key);
                    }
                    return Err(StoreError::Corrupt("the seed digest key is unreadable".into()));
                }
                let mut key = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                let sealed = seal_secret(vault, tenant, kind, id, &serde_json::json!({"key": hex::encode(key)}));
                sqlx::query(sql::UPSERT_RECORD)
                    .bind(tenant)
                    .bind(kind)
                    .bind(id)
                    .bind("{}")
                    .bind(sealed.key_id)
                    .bind(sealed.blob)
                    .bind(now_ms)
                    .execute(&mut **tx)
                    .await?;
                Ok(key.to_vec())
            }

            async fn seed_net_connection(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                rec: &PlannedRecord,
                tenant: &str,
                vault: &Vault,
                now_ms: i64,
            ) -> Result<()> {
                let partner_id = rec.data["partnerId"].as_str().unwrap_or_default();
                let client_id = rec.data["clientId"].as_str().unwrap_or_default();
                let nonce = rec.data["nonce"].as_str().unwrap_or_default();
                let partner_tenant: String = match sqlx::query(sql::RESOLVE_REF)
                    .bind(kind::NET_PARTNER)
                    .bind(partner_id)
                    .fetch_optional(&mut **tx)
                    .await?
                {
                    Some(row) => row.try_get("tenant")?,
                    None => return Err(StoreError::Corrupt(format!("partner {partner_id} vanished"))),
                };
                if sqlx::query(sql::NET_NONCE_TAKEN)
                    .bind(tenant)
                    .bind(client_id)
                    .bind(nonce)
                    .bind(&rec.id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .is_some()
                {
                    return Err(StoreError::Seed(SeedError::new(
                        format!("{}.nonce", rec.path),
                        "this client already used the nonce in another stored connection",
                    )));
                }
                sqlx::query(sql::NET_DELETE_MOVED).bind(&rec.id).bind(tenant).execute(&mut **tx).await?;
                let existing = sqlx::query(&format!(
                    "SELECT {} FROM net_connections WHERE tenant = $1 AND id = $2",
                    sql::NET_COLS
                ))
                .bind(tenant)
                .bind(&rec.id)
                .fetch_optional(&mut **tx)
                .await?;
                let existing: Option<NetConnection> = match existing {
                    Some(row) => Some(net_from_row!(row)),
                    None => None,
                };
                let secret = rec.secret.clone().unwrap_or(Value::Null);
                let seeded_created = rec.data["createdAt"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis());
                let created_at = seeded_created.or(existing.as_ref().map(|e| e.created_at)).unwrap_or(now_ms);
                let aad = Record::aad(tenant, kind::NET_CONNECTION, &rec.id);
                let bytes = serde_json::to_vec(&secret).expect("JSON values serialise");
                let candidate =
                    seeded_net_connection(rec, tenant, partner_tenant, vault.seal(&bytes, &aad), created_at, now_ms)?;
                if let Some(old) = &existing {
                    let old_secret: Option<Value> =
                        vault.open(&old.key, &aad).ok().and_then(|p| serde_json::from_slice(&p).ok());
                    let same = NetConnection { key: old.key.clone(), updated_at: old.updated_at, ..candidate.clone() }
                        == *old
                        && old_secret.as_ref() == Some(&secret);
                    if same {
                        return Ok(());
                    }
                }
                bind_net!(sqlx::query(sql::NET_UPSERT), &candidate).execute(&mut **tx).await?;
                Ok(())
            }
        }
    };
}

/// Seeding Export connections (their own table).
macro_rules! impl_ex_seed {
    ($ty:ty, $db:ty) => {
        impl $ty {
            async fn seed_ex_connection(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                rec: &PlannedRecord,
                tenant: &str,
                now_ms: i64,
            ) -> Result<()> {
                let d = &rec.data;
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                sqlx::query("DELETE FROM ex_connections WHERE id = $1 AND tenant <> $2")
                    .bind(&rec.id)
                    .bind(tenant)
                    .execute(&mut **tx)
                    .await?;
                let q = format!("SELECT {EX_CONN_COLS} FROM ex_connections WHERE tenant = $1 AND id = $2");
                let existing = match sqlx::query(&q).bind(tenant).bind(&rec.id).fetch_optional(&mut **tx).await? {
                    Some(row) => Some(ex_conn_from_row!(row)),
                    None => None,
                };
                let candidate = ExConnection {
                    tenant: tenant.to_string(),
                    id: rec.id.clone(),
                    imodel_id: text("iModelId"),
                    display_name: text("displayName"),
                    authentication_type: text("authenticationType"),
                    owner_user_id: text("ownerUserId"),
                    simulate: Some(d["simulate"].clone()).filter(|v| !v.is_null()),
                    last_run_id: existing.as_ref().and_then(|e| e.last_run_id.clone()),
                    created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now_ms),
                    updated_at: now_ms,
                };
                if let Some(old) = &existing
                    && (ExConnection { updated_at: old.updated_at, ..candidate.clone() }) == *old
                {
                    return Ok(());
                }
                let q = format!(
                    "INSERT INTO ex_connections ({EX_CONN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (tenant, id) DO UPDATE SET imodel_id = excluded.imodel_id, \
                     display_name = excluded.display_name, authentication_type = excluded.authentication_type, \
                     owner_user_id = excluded.owner_user_id, simulate = excluded.simulate, updated_at = excluded.updated_at"
                );
                bind_ex_conn!(sqlx::query(&q), &candidate).execute(&mut **tx).await?;
                Ok(())
            }
        }
    };
}

/// Seeding Integrations connections (their own table).
macro_rules! impl_in_seed {
    ($ty:ty, $db:ty) => {
        impl $ty {
            async fn seed_in_connection(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                rec: &PlannedRecord,
                tenant: &str,
                vault: &Vault,
                now_ms: i64,
            ) -> Result<()> {
                let d = &rec.data;
                let settings = rec.secret.clone().unwrap_or_else(|| serde_json::json!({}));
                let q = format!("SELECT {IN_COLS} FROM in_connections WHERE id = $1");
                let existing = match sqlx::query(&q).bind(&rec.id).fetch_optional(&mut **tx).await? {
                    Some(row) => Some(in_from_row!(row)),
                    None => None,
                };
                let aad = Record::aad(tenant, kind::IN_CONNECTION, &rec.id);
                let creds = &settings["oauth"]["credentials"];
                let text = |k: &str| d[k].as_str().map(str::to_string);
                let candidate = InConnection {
                    tenant: tenant.to_string(),
                    id: rec.id.clone(),
                    connector_name: patchbay_core::integrations::connector_name_of_id(&rec.id)
                        .or_else(|| patchbay_core::integrations::connector_of_id(&rec.id))
                        .unwrap_or_default()
                        .to_string(),
                    connector_config_id: text("connectorConfigId").unwrap_or_default(),
                    customer_id: text("customerId"),
                    integration_id: None,
                    display_name: text("displayName"),
                    disabled: false,
                    status: text("status"),
                    status_message: None,
                    metadata: Some(d["metadata"].clone()).filter(|m| !m.is_null()),
                    settings: vault.seal(settings.to_string().as_bytes(), &aad),
                    expires_at: creds["expires_at"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_millis()),
                    refreshable: creds["refresh_token"].as_str().is_some_and(|t| !t.is_empty()),
                    version: existing.as_ref().map(|e| e.version + 1).unwrap_or(1),
                    created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now_ms),
                    updated_at: now_ms,
                };
                if let Some(old) = &existing {
                    let old_settings: Option<Value> = if old.tenant == tenant {
                        vault.open(&old.settings, &aad).ok().and_then(|p| serde_json::from_slice(&p).ok())
                    } else {
                        None
                    };
                    let same = (InConnection {
                        settings: old.settings.clone(),
                        version: old.version,
                        updated_at: old.updated_at,
                        ..candidate.clone()
                    }) == *old
                        && old_settings.as_ref() == Some(&settings);
                    if same {
                        return Ok(());
                    }
                }
                sqlx::query("DELETE FROM in_connections WHERE id = $1").bind(&rec.id).execute(&mut **tx).await?;
                let q = format!(
                    "INSERT INTO in_connections ({IN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
                );
                bind_in!(sqlx::query(&q), &candidate).execute(&mut **tx).await?;
                Ok(())
            }
        }
    };
}

impl_in_seed!(SqliteStore, sqlx::Sqlite);
impl_in_seed!(PgStore, sqlx::Postgres);
impl_ex_seed!(SqliteStore, sqlx::Sqlite);
impl_ex_seed!(PgStore, sqlx::Postgres);
impl_helpers!(SqliteStore, sqlx::Sqlite);
crate::sandbox::impl_sandbox!(SqliteStore, sqlx::Sqlite, "BEGIN IMMEDIATE", "");
crate::shared::impl_shared!(
    SqliteStore,
    "BEGIN IMMEDIATE",
    "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
);
impl_helpers!(PgStore, sqlx::Postgres);
crate::sandbox::impl_sandbox!(PgStore, sqlx::Postgres, "BEGIN", "LOCK TABLE");
crate::shared::impl_shared!(PgStore, "BEGIN", "(EXTRACT(EPOCH FROM now()) * 1000000)::BIGINT");

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl_store!(SqliteStore, Backend::Sqlite, SQLITE_MIGRATOR, "BEGIN IMMEDIATE", "");
impl_ledger!(SqliteStore, "BEGIN IMMEDIATE");
impl_ledger!(PgStore, "BEGIN");
impl_store!(PgStore, Backend::Postgres, PG_MIGRATOR, "BEGIN", " FOR UPDATE SKIP LOCKED");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_trigrams_are_the_distinct_quoted_windows() {
        assert_eq!(search_trigrams("GitHub"), ["\"git\"", "\"hub\"", "\"ith\"", "\"thu\""]);
        // Repeats counted once; an FTS5 string's quote doubled.
        assert_eq!(search_trigrams("aaaa"), ["\"aaa\""]);
        assert_eq!(search_trigrams("a\"b"), ["\"a\"\"b\""]);
        // Characters, not bytes.
        assert_eq!(search_trigrams("éÉé"), ["\"ééé\""]);
        // Too short, or with a NUL: the index is not used.
        assert!(search_trigrams("ab").is_empty());
        assert!(search_trigrams("ab\0cd").is_empty());
        assert_eq!(search_trigrams("abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*").len(), MAX_PROBED_TRIGRAMS);
    }
}
