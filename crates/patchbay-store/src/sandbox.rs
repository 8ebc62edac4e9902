//! The sandbox's reset and snapshots (docs/sandbox.md): every data table
//! emptied, copied aside or put back, each in one transaction. A snapshot lives
//! in the database: a `sandbox_snapshots` row and one `sbx_<id>_<table>` copy
//! per data table (ids are numbers, so no name reaches SQL).

use std::collections::BTreeMap;

/// Every table that holds state (not migrations, not the snapshots themselves,
/// not SQLite's search index, which its triggers keep in step).
pub const DATA_TABLES: [&str; 13] = [
    "records",
    "seed_entries",
    "credentials",
    "jobs",
    "net_connections",
    "net_balances",
    "net_ledger",
    "net_nonces",
    "ex_connections",
    "ex_runs",
    "in_connections",
    "in_events",
    "files",
];

/// A saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub created_at_ms: i64,
    /// Rows saved per table.
    pub rows: BTreeMap<String, i64>,
}

/// The longest snapshot name.
pub const MAX_NAME: usize = 100;

/// Snapshot names: 1–100 characters of letters, digits, `.`, `_` and `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(crate) fn copy_table(id: i64, table: &str) -> String {
    format!("sbx_{id}_{table}")
}

/// The server's own keys, which reset and restore leave as they are: the faces keep them
/// in memory once read (the customer-token HMAC key, the `X-BitGo-Signature` key), and the
/// seed digests' key; replacing them under a running server would make it sign with one key
/// and publish another.
pub const SERVER_KEYS: &str = "('integrations.jwt_secret', 'network.signing_key', 'patchbay.seed_digest_key')";

/// The rows of `table` a reset or restore replaces (all but the server's keys).
pub(crate) fn replaced(table: &str) -> String {
    if table == "records" { format!(" WHERE kind NOT IN {SERVER_KEYS}") } else { String::new() }
}

/// Whether an error is PostgreSQL's deadlock (40P01) or serialization failure (40001):
/// the transaction was rolled back and can be tried again.
fn retryable(e: &crate::StoreError) -> bool {
    match e {
        crate::StoreError::Db(sqlx::Error::Database(d)) => matches!(d.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// Runs a transaction again (up to five times in all) while PostgreSQL rolls it back as
/// a deadlock victim: a request's write that locks the tables in another order than a
/// reset, save or restore makes one of the two a victim.
pub(crate) async fn retrying<T, F: std::future::Future<Output = crate::Result<T>>>(
    mut attempt: impl FnMut() -> F,
) -> crate::Result<T> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if tries < 5 && retryable(&e) => continue,
            other => return other,
        }
    }
}

/// The sandbox operations of one backend, as inherent methods the `Store`
/// implementation calls. `$begin` starts a write transaction; `$lock` locks
/// the data tables against writers for its length (PostgreSQL; SQLite's
/// `BEGIN IMMEDIATE` already does).
macro_rules! impl_sandbox {
    ($ty:ty, $db:ty, $begin:expr, $lock:expr) => {
        impl $ty {
            async fn sandbox_tx(&self) -> Result<sqlx::Transaction<'static, $db>> {
                let mut tx = self.pool.begin_with($begin).await?;
                if !$lock.is_empty() {
                    sqlx::query(&format!("{} {} IN EXCLUSIVE MODE", $lock, crate::sandbox::DATA_TABLES.join(", ")))
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(tx)
            }

            async fn sbx_reset(&self, seed: Option<&SeedPlan>, vault: &Vault, now_ms: i64) -> Result<()> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                crate::sandbox::retrying(|| async {
                    let mut tx = self.sandbox_tx().await?;
                    for t in crate::sandbox::DATA_TABLES {
                        sqlx::query(&format!("DELETE FROM {t}{}", crate::sandbox::replaced(t)))
                            .execute(&mut *tx)
                            .await?;
                    }
                    if let Some(plan) = seed {
                        self.seed_into(&mut tx, plan, vault, now_ms, SeedMode::StartUp).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                })
                .await
            }

            /// A `sandbox_snapshots` row as a [`crate::sandbox::SnapshotInfo`].
            fn snapshot_info(r: &<$db as sqlx::Database>::Row) -> Result<crate::sandbox::SnapshotInfo> {
                Ok(crate::sandbox::SnapshotInfo {
                    name: r.try_get("name")?,
                    created_at_ms: r.try_get("created_at")?,
                    rows: serde_json::from_str(&r.try_get::<String, _>("row_counts")?)
                        .map_err(|e| StoreError::Corrupt(format!("snapshot row counts: {e}")))?,
                })
            }

            async fn sbx_find(
                tx: &mut sqlx::Transaction<'static, $db>,
                name: &str,
            ) -> Result<Option<(i64, crate::sandbox::SnapshotInfo)>> {
                let row = sqlx::query("SELECT id, name, created_at, row_counts FROM sandbox_snapshots WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some((r.try_get("id")?, Self::snapshot_info(&r)?)))
            }

            async fn sbx_drop(tx: &mut sqlx::Transaction<'static, $db>, id: i64) -> Result<()> {
                for t in crate::sandbox::DATA_TABLES {
                    sqlx::query(&format!("DROP TABLE IF EXISTS {}", crate::sandbox::copy_table(id, t)))
                        .execute(&mut **tx)
                        .await?;
                }
                sqlx::query("DELETE FROM sandbox_snapshots WHERE id = $1").bind(id).execute(&mut **tx).await?;
                Ok(())
            }

            async fn sbx_save(&self, name: &str, now_ms: i64) -> Result<crate::sandbox::SnapshotInfo> {
                crate::sandbox::retrying(|| self.sbx_save_once(name, now_ms)).await
            }

            async fn sbx_save_once(&self, name: &str, now_ms: i64) -> Result<crate::sandbox::SnapshotInfo> {
                let mut tx = self.sandbox_tx().await?;
                if let Some((old, _)) = Self::sbx_find(&mut tx, name).await? {
                    Self::sbx_drop(&mut tx, old).await?;
                }
                let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS id FROM sandbox_snapshots")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("id")?;
                let mut rows = std::collections::BTreeMap::new();
                for t in crate::sandbox::DATA_TABLES {
                    let copy = crate::sandbox::copy_table(id, t);
                    sqlx::query(&format!("CREATE TABLE {copy} AS SELECT * FROM {t}")).execute(&mut *tx).await?;
                    let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {copy}"))
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("n")?;
                    rows.insert(t.to_string(), n);
                }
                let counts = serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                sqlx::query("INSERT INTO sandbox_snapshots (id, name, created_at, row_counts) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(name)
                    .bind(now_ms)
                    .bind(counts)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(crate::sandbox::SnapshotInfo { name: name.to_string(), created_at_ms: now_ms, rows })
            }

            async fn sbx_restore(&self, name: &str) -> Result<Option<crate::sandbox::SnapshotInfo>> {
                let _reads = self.reads.writing();
                let _bump = self.auth.writing();
                crate::sandbox::retrying(|| self.sbx_restore_once(name)).await
            }

            async fn sbx_restore_once(&self, name: &str) -> Result<Option<crate::sandbox::SnapshotInfo>> {
                let mut tx = self.sandbox_tx().await?;
                let Some((id, info)) = Self::sbx_find(&mut tx, name).await? else {
                    return Ok(None);
                };
                for t in crate::sandbox::DATA_TABLES {
                    let only = crate::sandbox::replaced(t);
                    sqlx::query(&format!("DELETE FROM {t}{only}")).execute(&mut *tx).await?;
                    sqlx::query(&format!("INSERT INTO {t} SELECT * FROM {}{only}", crate::sandbox::copy_table(id, t)))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Some(info))
            }

            async fn sbx_list(&self) -> Result<Vec<crate::sandbox::SnapshotInfo>> {
                let rows = sqlx::query("SELECT name, created_at, row_counts FROM sandbox_snapshots ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::snapshot_info).collect()
            }

            async fn sbx_delete(&self, name: &str) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let Some((id, _)) = Self::sbx_find(&mut tx, name).await? else {
                    return Ok(false);
                };
                Self::sbx_drop(&mut tx, id).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use impl_sandbox;
