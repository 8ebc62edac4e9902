//! What replicas share besides the faces' data: produced files (`files.backend =
//! "database"`) and rate-limit budgets. Both are plain rows every replica reads and
//! writes; the rules are here, the SQL of each backend comes from one macro.

/// The largest piece of a file one row holds.
pub const FILE_CHUNK: usize = 1024 * 1024;

/// Keys pruned (those whose budget is whole again) every this many takes.
pub(crate) const PRUNE_EVERY: u64 = 4096;

/// The shared files and budgets of one backend, as inherent methods the `Store`
/// implementation calls. `$now` is the database's clock in µs since the epoch (one
/// value per statement), so replicas with drifting clocks still share one budget.
macro_rules! impl_shared {
    ($ty:ty, $begin:expr, $now:expr) => {
        impl $ty {
            async fn shared_file_put(&self, name: &str, bytes: &[u8], now_ms: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query("DELETE FROM files WHERE name = $1").bind(name).execute(&mut *tx).await?;
                // An empty file is one empty chunk, so it is told apart from no file.
                let chunks: Vec<&[u8]> =
                    if bytes.is_empty() { vec![&[]] } else { bytes.chunks(crate::shared::FILE_CHUNK).collect() };
                for (seq, chunk) in chunks.into_iter().enumerate() {
                    sqlx::query("INSERT INTO files (name, seq, data, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(name)
                        .bind(seq as i32)
                        .bind(chunk)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn shared_file_get(&self, name: &str) -> Result<Option<Vec<u8>>> {
                let rows = sqlx::query("SELECT data FROM files WHERE name = $1 ORDER BY seq")
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let mut out = Vec::new();
                for row in rows {
                    out.extend_from_slice(&row.try_get::<Vec<u8>, _>("data")?);
                }
                Ok(Some(out))
            }

            async fn shared_rate_take(
                &self,
                key: &str,
                budget: patchbay_core::ratelimit::Budget,
            ) -> Result<std::result::Result<(), i64>> {
                use std::sync::atomic::Ordering;
                if self.takes.fetch_add(1, Ordering::Relaxed) % crate::shared::PRUNE_EVERY
                    == crate::shared::PRUNE_EVERY - 1
                {
                    // Beside the take, not in its time: keys whose budget is whole again.
                    let pool = self.pool.clone();
                    tokio::spawn(async move {
                        let prune = format!("DELETE FROM rate_limits WHERE tat < {}", $now);
                        if let Err(e) = sqlx::query(&prune).execute(&pool).await {
                            tracing::debug!(error = %e, "pruning rate-limit budgets failed");
                        }
                    });
                }
                // One statement takes a request's cost unless the key would run too far
                // ahead (the row is locked for its length: concurrent takes queue).
                let taken = sqlx::query(
                    &format!(
                        "INSERT INTO rate_limits AS r (key, tat) VALUES ($1, {now} + $2) \
                     ON CONFLICT (key) DO UPDATE SET tat = MAX_OF(r.tat, {now}) + $2 \
                     WHERE MAX_OF(r.tat, {now}) + $2 - {now} <= $3 RETURNING tat",
                        now = $now
                    )
                    .replace("MAX_OF", crate::shared::greatest(self.backend())),
                )
                .bind(key)
                .bind(budget.emission_us)
                .bind(budget.tolerance_us)
                .fetch_optional(&self.pool)
                .await?;
                if taken.is_some() {
                    return Ok(Ok(()));
                }
                let ahead: Option<i64> =
                    sqlx::query(&format!("SELECT tat - {} AS ahead FROM rate_limits WHERE key = $1", $now))
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await?
                        .map(|r| r.try_get("ahead"))
                        .transpose()?;
                let wait = ahead.map_or(1, |a| a + budget.emission_us - budget.tolerance_us);
                Ok(Err(wait.max(1)))
            }
        }
    };
}
pub(crate) use impl_shared;

/// The two-argument maximum of each backend's SQL.
pub(crate) fn greatest(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Postgres => "GREATEST",
        crate::Backend::Sqlite => "MAX",
    }
}
