//! Rate limits per face and principal (`[rate_limits]`). With several replicas the
//! budget is shared: kept in PostgreSQL (the default on that backend) or in Redis
//! (`rate_limits.redis_url`), as one GCRA arrival time per key on that server's clock
//! ([`Budget`]). When the shared store cannot be reached, each replica falls back to
//! its own in-process limiter, with a warning, and tries the shared store again a
//! second later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use patchbay_core::ratelimit::{Budget, RateLimiter, RateQuota};
use patchbay_store::Store;

use crate::face::Face;

/// Where the shared budgets are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SharedBudgets {
    /// In this process only (SQLite: one process owns the database).
    #[default]
    Local,
    /// In the database (PostgreSQL: every replica's).
    Database,
    /// In Redis at this URL.
    Redis(String),
}

/// How long the shared store is left alone after it failed.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// How long one shared take may take before the local limiter answers instead.
const SHARED_TIMEOUT: Duration = Duration::from_millis(500);

/// GCRA in Redis: the key holds the arrival time (µs, Redis's clock); the answer is 0
/// when taken, else the µs to wait. The key expires once the budget is whole again.
const REDIS_TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nxt = tat + emission
if nxt - now > tolerance then return nxt - tolerance - now end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
return 0
";

enum Shared {
    Local,
    Database(Arc<dyn Store>),
    Redis(Box<Redis>),
}

struct Redis {
    client: redis::Client,
    conn: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    script: redis::Script,
}

impl Redis {
    async fn take(&self, key: &str, budget: Budget) -> Result<Result<(), i64>, String> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(SHARED_TIMEOUT))
                    .set_response_timeout(Some(SHARED_TIMEOUT))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(config).await
            })
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        let mut conn = conn.clone();
        let wait: i64 = self
            .script
            .key(format!("patchbay:rate:{key}"))
            .arg(budget.emission_us)
            .arg(budget.tolerance_us)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| format!("Redis: {e}"))?;
        Ok(if wait <= 0 { Ok(()) } else { Err(wait) })
    }
}

/// Every face's limits.
pub struct Limits {
    quotas: [Option<Budget>; Face::ALL.len()],
    local: [RateLimiter; Face::ALL.len()],
    shared: Shared,
    /// Whether the last shared take failed (the warning is logged once per outage).
    down: AtomicBool,
    /// When the shared store may be tried again (ms since `start`), after a failure.
    retry_at_ms: AtomicU64,
    start: Instant,
}

impl Limits {
    pub fn new(
        quotas: &std::collections::HashMap<Face, RateQuota>,
        shared: &SharedBudgets,
        store: Arc<dyn Store>,
    ) -> Self {
        let shared = match shared {
            SharedBudgets::Local => Shared::Local,
            SharedBudgets::Database => Shared::Database(store),
            SharedBudgets::Redis(url) => match redis::Client::open(url.as_str()) {
                Ok(client) => Shared::Redis(Box::new(Redis {
                    client,
                    conn: tokio::sync::OnceCell::new(),
                    script: redis::Script::new(REDIS_TAKE),
                })),
                Err(e) => {
                    // Config::validate refuses such URLs first; the URL may hold a password.
                    tracing::warn!(error = ?e.kind(), "rate_limits.redis_url is unusable; limits are per process");
                    Shared::Local
                }
            },
        };
        Self {
            quotas: Face::ALL.map(|f| quotas.get(&f).and_then(|q| q.budget())),
            local: Face::ALL.map(|f| RateLimiter::new(quotas.get(&f).copied())),
            shared,
            down: AtomicBool::new(false),
            retry_at_ms: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// Where budgets are kept now: `local`, `database` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self.shared {
            Shared::Local => "local",
            Shared::Database(_) => "database",
            Shared::Redis(_) => "redis",
        }
    }

    /// Takes one request from the key's budget of this face: `Err(seconds to wait)`
    /// (at least 1) once it is spent.
    pub async fn take(&self, face: Face, key: &str) -> Result<(), u64> {
        let Some(budget) = self.quotas[face.index()] else { return Ok(()) };
        let local = &self.local[face.index()];
        let resting = (self.start.elapsed().as_millis() as u64) < self.retry_at_ms.load(Ordering::Relaxed);
        let shared_key = format!("{}:{key}", face.name());
        let taken = match &self.shared {
            Shared::Local => return local.check(key),
            _ if resting => return local.check(key),
            Shared::Database(store) => {
                match tokio::time::timeout(SHARED_TIMEOUT, store.rate_take(&shared_key, budget)).await {
                    Ok(r) => r.map_err(|e| format!("the database: {e}")),
                    Err(_) => Err("the database did not answer in time".to_string()),
                }
            }
            Shared::Redis(r) => match tokio::time::timeout(SHARED_TIMEOUT, r.take(&shared_key, budget)).await {
                Ok(r) => r,
                Err(_) => Err("Redis did not answer in time".to_string()),
            },
        };
        match taken {
            Ok(answer) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(store = self.kind(), "shared rate limits are back");
                }
                answer.map_err(Budget::retry_after_secs)
            }
            Err(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(store = self.kind(), error = %e,
                        "shared rate limits are unreachable; each replica limits on its own until they are back");
                }
                let later = self.start.elapsed() + RETRY_AFTER_FAILURE;
                self.retry_at_ms.store(later.as_millis() as u64, Ordering::Relaxed);
                local.check(key)
            }
        }
    }

    /// Takes from this process's own budget of the key, whatever is configured.
    pub fn take_local(&self, face: Face, key: &str) -> Result<(), u64> {
        self.local[face.index()].check(key)
    }
}
