//! The job runner: workers claim jobs with a lease, run their handler, and
//! complete them, or retry with exponential backoff and jitter, or park them
//! as dead after the last attempt. A job whose worker died is claimed again
//! once its lease expires; the lease is extended while a handler runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_core::Clock;
use rand::Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{Job, Store};

/// What a job handler reports when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// Try again later (if attempts remain).
    Retry(String),
    /// Give up now: the job is dead.
    Fatal(String),
}

/// Runs jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> Result<(), JobError>;
}

/// Tuning of the worker pool.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub workers: usize,
    pub lease_ms: i64,
    pub poll_interval_ms: u64,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self { workers: 4, lease_ms: 30_000, poll_interval_ms: 250, backoff_base_ms: 1_000, backoff_max_ms: 300_000 }
    }
}

/// Exponential backoff with jitter: the delay before attempt `attempt + 1`
/// lies in `[d/2, d]` with `d = min(max, base * 2^(attempt-1))`.
pub fn backoff_ms(attempt: i64, base: i64, max: i64, rng: &mut impl Rng) -> i64 {
    let exp = (attempt.max(1) - 1).min(32) as u32;
    let d = base.saturating_mul(1i64 << exp).min(max).max(1);
    rng.gen_range(d / 2..=d)
}

/// Handlers by job kind.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn register(&mut self, kind: &str, handler: Arc<dyn JobHandler>) -> &mut Self {
        self.handlers.insert(kind.to_string(), handler);
        self
    }
}

/// Starts `config.workers` workers; they stop claiming when `shutdown` is
/// cancelled and return after finishing the job in hand. Await the returned
/// set to wait for them.
pub fn spawn_workers(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    registry: Registry,
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let host = uuid::Uuid::new_v4().simple().to_string();
    for n in 0..config.workers {
        let worker = Worker {
            id: format!("{}-{n}", &host[..12]),
            store: store.clone(),
            clock: clock.clone(),
            registry: registry.clone(),
            config: config.clone(),
        };
        let shutdown = shutdown.clone();
        set.spawn(async move { worker.run(shutdown).await });
    }
    set
}

/// One worker; public so tests can drive single steps.
pub struct Worker {
    pub id: String,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub registry: Registry,
    pub config: WorkerConfig,
}

impl Worker {
    async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.step().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(worker = %self.id, error = %e, "job store error"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(self.config.poll_interval_ms)) => {}
            }
        }
    }

    /// Claims and runs at most one job; true when one was run.
    pub async fn step(&self) -> crate::Result<bool> {
        let now = self.clock.now_ms();
        let Some(job) = self.store.claim_job(&self.id, now, self.config.lease_ms).await? else {
            return Ok(false);
        };
        if job.attempts > job.max_attempts {
            // Its last attempt's worker died; do not run it again.
            let err = job.last_error.clone().unwrap_or_else(|| "lease expired on the final attempt".into());
            self.store.fail_job(&job, &self.id, &err, None, self.clock.now_ms()).await?;
            return Ok(true);
        }
        let outcome = match self.registry.handlers.get(&job.kind) {
            None => Err(JobError::Fatal(format!("no handler for job kind {:?}", job.kind))),
            Some(h) => self.run_with_heartbeat(h.clone(), &job).await,
        };
        let now = self.clock.now_ms();
        match outcome {
            Ok(()) => {
                if !self.store.complete_job(&job, &self.id, now).await? {
                    tracing::warn!(job = %job.id, "lease lost before completion");
                }
            }
            Err(JobError::Retry(msg)) if job.attempts < job.max_attempts => {
                let delay = backoff_ms(
                    job.attempts,
                    self.config.backoff_base_ms,
                    self.config.backoff_max_ms,
                    &mut rand::thread_rng(),
                );
                tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, delay_ms = delay, error = %msg, "job failed; retrying");
                self.store.fail_job(&job, &self.id, &msg, Some(now + delay), now).await?;
            }
            Err(JobError::Retry(msg)) | Err(JobError::Fatal(msg)) => {
                tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %msg, "job is dead");
                self.store.fail_job(&job, &self.id, &msg, None, now).await?;
            }
        }
        Ok(true)
    }

    async fn run_with_heartbeat(&self, handler: Arc<dyn JobHandler>, job: &Job) -> Result<(), JobError> {
        let every = Duration::from_millis((self.config.lease_ms / 3).max(10) as u64);
        let fut = handler.run(job);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return r,
                _ = tokio::time::sleep(every) => {
                    let until = self.clock.now_ms() + self.config.lease_ms;
                    match self.store.extend_lease(job, &self.id, until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %job.id, "lease lost while running"),
                        Err(e) => tracing::warn!(job = %job.id, error = %e, "could not extend lease"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_grows_and_caps() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for attempt in 1..40 {
            let d = (1000i64 << (attempt - 1).min(32)).min(60_000);
            let got = backoff_ms(attempt, 1000, 60_000, &mut rng);
            assert!(got >= d / 2 && got <= d, "attempt {attempt}: {got} not in [{}, {d}]", d / 2);
        }
    }
}
