//! The two backends, generated from one implementation.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_core::seed::{SeedError, SeedPlan, Tenant};
use patchbay_core::{Sealed, Vault, hashing};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{Backend, Credential, Job, JobState, NewJob, Record, RecordWrite, Result, Store, StoreError};

/// SQLite: the embedded default (WAL, foreign keys, busy timeout, synchronous=NORMAL).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// PostgreSQL: production, several replicas sharing one database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
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
        // An in-memory database lives in one connection; keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None).connect_with(opts).await?
        } else {
            SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?
        };
        Ok(Self { pool })
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        Ok(Self { pool })
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
    pub const FIND_CREDENTIAL: &str =
        "SELECT token_hash, face, principal_kind, principal_id, tenant, scopes FROM credentials WHERE token_hash = $1";
    pub const STALE_SECRETS: &str = "SELECT tenant, kind, id, data, secret_key_id, secret, created_at, updated_at \
         FROM records WHERE secret_key_id IS NOT NULL AND secret_key_id <> $1 ORDER BY tenant, kind, id LIMIT 500";
    pub const RESEAL: &str = "UPDATE records SET secret_key_id = $1, secret = $2 \
         WHERE tenant = $3 AND kind = $4 AND id = $5 AND secret_key_id = $6";
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

fn seal_secret(vault: &Vault, tenant: &str, kind: &str, id: &str, secret: &Value) -> Sealed {
    let bytes = serde_json::to_vec(secret).expect("JSON values serialise");
    vault.seal(&bytes, &Record::aad(tenant, kind, id))
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
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn apply_seed(&self, plan: &SeedPlan, vault: &Vault, now_ms: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                // 1. Every reference to an object outside the document must resolve.
                let mut ref_tenants = Vec::with_capacity(plan.refs.len());
                for r in &plan.refs {
                    let row = match &r.tenant {
                        Some(t) => {
                            sqlx::query(sql::RESOLVE_REF_IN)
                                .bind(r.kind)
                                .bind(&r.id)
                                .bind(t)
                                .fetch_optional(&mut *tx)
                                .await?
                        }
                        None => sqlx::query(sql::RESOLVE_REF).bind(r.kind).bind(&r.id).fetch_optional(&mut *tx).await?,
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
                // 2. Upsert records, leaving identical ones untouched.
                for rec in &plan.records {
                    let tenant = tenant_of(&rec.tenant);
                    sqlx::query(sql::DELETE_MOVED).bind(rec.kind).bind(&rec.id).bind(&tenant).execute(&mut *tx).await?;
                    let existing = sqlx::query(&format!(
                        "SELECT {} FROM records WHERE tenant = $1 AND kind = $2 AND id = $3",
                        sql::RECORD_COLS
                    ))
                    .bind(&tenant)
                    .bind(rec.kind)
                    .bind(&rec.id)
                    .fetch_optional(&mut *tx)
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
                        .execute(&mut *tx)
                        .await?;
                }
                // 3. Credentials: the document states each owner's full set.
                for (face, pkind, pid) in &plan.credential_owners {
                    let held = sqlx::query(sql::PRINCIPAL_HASHES)
                        .bind(*face)
                        .bind(*pkind)
                        .bind(pid)
                        .fetch_all(&mut *tx)
                        .await?;
                    for row in held {
                        let hash: Vec<u8> = row.try_get("token_hash")?;
                        let keep = plan.credentials.iter().any(|c| {
                            c.hash == hash && c.face == *face && c.principal_kind == *pkind && c.principal_id == *pid
                        });
                        if !keep {
                            sqlx::query(sql::DELETE_CREDENTIAL).bind(hash).execute(&mut *tx).await?;
                        }
                    }
                }
                for c in &plan.credentials {
                    let scopes = serde_json::to_string(&c.scopes).expect("strings serialise");
                    sqlx::query(sql::UPSERT_CREDENTIAL)
                        .bind(c.hash.clone())
                        .bind(c.face)
                        .bind(c.principal_kind)
                        .bind(&c.principal_id)
                        .bind(tenant_of(&c.tenant))
                        .bind(scopes)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn get_record(&self, tenant: &str, kind: &str, id: &str) -> Result<Option<Record>> {
                let row = sqlx::query(&format!(
                    "SELECT {} FROM records WHERE tenant = $1 AND kind = $2 AND id = $3",
                    sql::RECORD_COLS
                ))
                .bind(tenant)
                .bind(kind)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some(row) => Some(record_from_row!(row)),
                    None => None,
                })
            }

            async fn list_records(&self, tenant: &str, kind: &str) -> Result<Vec<Record>> {
                let rows = sqlx::query(&format!(
                    "SELECT {} FROM records WHERE tenant = $1 AND kind = $2 ORDER BY id",
                    sql::RECORD_COLS
                ))
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

            async fn put_record(&self, rec: &RecordWrite, jobs: &[NewJob], vault: &Vault, now_ms: i64) -> Result<()> {
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

            async fn find_credential(&self, raw_token: &str) -> Result<Option<Credential>> {
                let hash = hashing::token_hash(raw_token);
                let Some(row) = sqlx::query(sql::FIND_CREDENTIAL).bind(hash).fetch_optional(&self.pool).await? else {
                    return Ok(None);
                };
                let stored: Vec<u8> = row.try_get("token_hash")?;
                if !hashing::token_matches(raw_token, &stored) {
                    return Ok(None);
                }
                let scopes: String = row.try_get("scopes")?;
                Ok(Some(Credential {
                    face: row.try_get("face")?,
                    principal_kind: row.try_get("principal_kind")?,
                    principal_id: row.try_get("principal_id")?,
                    tenant: row.try_get("tenant")?,
                    scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt(format!("scopes: {e}")))?,
                }))
            }

            async fn rotate_secrets(&self, vault: &Vault) -> Result<u64> {
                let mut total = 0u64;
                loop {
                    let rows =
                        sqlx::query(sql::STALE_SECRETS).bind(vault.primary_key_id()).fetch_all(&self.pool).await?;
                    if rows.is_empty() {
                        return Ok(total);
                    }
                    for row in rows {
                        let rec: Record = record_from_row!(row);
                        let old = rec.secret.as_ref().expect("selected rows carry a secret");
                        let plain = rec.open_secret(vault)?.expect("selected rows carry a secret");
                        let new = seal_secret(vault, &rec.tenant, &rec.kind, &rec.id, &plain);
                        let done = sqlx::query(sql::RESEAL)
                            .bind(&new.key_id)
                            .bind(new.blob)
                            .bind(&rec.tenant)
                            .bind(&rec.kind)
                            .bind(&rec.id)
                            .bind(&old.key_id)
                            .execute(&self.pool)
                            .await?;
                        total += done.rows_affected();
                    }
                }
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

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl_store!(SqliteStore, Backend::Sqlite, SQLITE_MIGRATOR, "BEGIN IMMEDIATE", "");
impl_store!(PgStore, Backend::Postgres, PG_MIGRATOR, "BEGIN", " FOR UPDATE SKIP LOCKED");
