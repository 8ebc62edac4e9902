//! The background execution of an Export run, as a durable job: the state
//! machine `Queued → WaitingToExecute → Executing (⇄ WaitingToRetry) →
//! Finalizing → Completed`, with the run's single job and task mirroring it.
//! A run found half-way (its worker died) is executed again from the start.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchbay_core::export::{result, state, timestamp};
use patchbay_store::worker::{JobError, JobHandler};
use patchbay_store::{ExRun, Job, RecordWrite};
use serde_json::{Value, json};

use super::exporter::{self, ExportFailure, ExportInput, ExporterConfig};
use super::{FILE_KIND, RUN_JOB};
use crate::AppState;
use crate::outbound::Outbound;

pub struct ExportRunner {
    state: AppState,
    outbound: Outbound,
}

impl ExportRunner {
    pub fn new(state: AppState, outbound: Outbound) -> Arc<Self> {
        Arc::new(Self { state, outbound })
    }
}

/// The jobs array of a new run: one job with one task, all `Queued`.
pub fn initial_jobs(entropy: &patchbay_core::Entropy) -> Value {
    json!([{
        "id": entropy.uuid_string(),
        "state": state::QUEUED,
        "result": result::UNDETERMINED,
        "tasks": [{
            "id": entropy.uuid_string(),
            "retryAttempts": 0,
            "state": state::QUEUED,
            "result": result::UNDETERMINED,
        }],
    }])
}

/// The task-error object (reference §3.4) for a failed attempt.
fn task_error(f: &ExportFailure) -> Value {
    let tail: String = {
        let chars: Vec<char> = f.logs.chars().collect();
        chars[chars.len().saturating_sub(2000)..].iter().collect()
    };
    json!({
        "errorCode": if f.timed_out { "TAE_EXP_1001" } else { "TAE_EXP_1000" },
        "message": f.message,
        "details": tail,
        "bridgeExitCode": f.exit_code.unwrap_or(-1),
        "system": "Exporter",
        "phase": "export_file",
        "category": if f.timed_out { "timeout" } else { "other" },
        "descriptionKey": if f.timed_out { "ExportTimedOut" } else { "FailedToExport" },
        "description": if f.timed_out { "The export did not finish in the allowed time." } else { "The export failed." },
        "kbArticleLink": "",
        "canUserFix": false,
    })
}

struct Progress<'a> {
    runner: &'a ExportRunner,
    run: ExRun,
}

impl Progress<'_> {
    fn now(&self) -> i64 {
        self.runner.state.clock.now_ms()
    }

    fn job(&mut self) -> &mut Value {
        &mut self.run.jobs[0]
    }

    fn task(&mut self) -> &mut Value {
        &mut self.run.jobs[0]["tasks"][0]
    }

    /// Moves run, job and task to `s` (stamping start times once).
    async fn enter(&mut self, s: &str) -> Result<(), JobError> {
        let now = self.now();
        let ts = timestamp(now);
        self.run.state = s.to_string();
        if self.run.start_at.is_none() && s != state::QUEUED {
            self.run.start_at = Some(now);
        }
        let apply = |v: &mut Value| {
            v["state"] = json!(s);
            if v.get("startDateTime").is_none() && s != state::QUEUED {
                v["startDateTime"] = json!(ts);
            }
        };
        apply(self.job());
        apply(self.task());
        self.save().await
    }

    async fn save(&mut self) -> Result<(), JobError> {
        self.run.updated_at = self.now();
        self.runner.state.store.ex_save_run(&self.run).await.map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    }

    async fn complete(&mut self, res: &str, error: Option<Value>, file_id: Option<String>) -> Result<(), JobError> {
        let now = self.now();
        let ts = timestamp(now);
        self.run.state = state::COMPLETED.into();
        self.run.result = res.to_string();
        self.run.end_at = Some(now);
        let start = timestamp(self.run.start_at.unwrap_or(now));
        let apply = |v: &mut Value| {
            v["state"] = json!(state::COMPLETED);
            v["result"] = json!(res);
            v["endDateTime"] = json!(ts);
            if v.get("startDateTime").is_none() {
                v["startDateTime"] = json!(start);
            }
        };
        apply(self.job());
        apply(self.task());
        if let Some(e) = error {
            self.task()["error"] = e;
        }
        if let Some(f) = file_id {
            self.task()["exportOutputFileId"] = json!(f);
        }
        self.save().await
    }
}

#[async_trait]
impl JobHandler for ExportRunner {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let store = &self.state.store;
        let p = &job.payload;
        let (Some(conn_id), Some(run_id)) = (p["connectionId"].as_str(), p["runId"].as_str()) else {
            return Err(JobError::Fatal("payload lacks connectionId or runId".into()));
        };
        let retry = |e: patchbay_store::StoreError| JobError::Retry(e.to_string());
        let Some(run) = store.ex_get_run(&job.tenant, conn_id, run_id).await.map_err(retry)? else {
            return Err(JobError::Fatal(format!("run {run_id} no longer exists")));
        };
        if run.state == state::COMPLETED {
            return Ok(());
        }
        let resumed = run.state != state::QUEUED;
        let mut progress = Progress { runner: self, run };
        let Some(conn) = store.ex_get_connection(conn_id).await.map_err(retry)? else {
            progress.complete(result::ERROR, None, None).await?;
            return Ok(());
        };
        if resumed {
            tracing::warn!(run = %run_id, state = %progress.run.state, "resuming an interrupted export run from the start");
        }
        progress.enter(state::WAITING_TO_EXECUTE).await?;

        let request = progress.run.request.clone();
        let export_type = request["exportType"].as_str().unwrap_or("IFC").to_string();
        let config = self.state.config.export.exporter(&export_type);
        let retries = match &config {
            ExporterConfig::Command { retries, .. } => *retries,
            ExporterConfig::Simulate { .. } => 0,
        };
        let work = self.state.config.export.work_dir();
        tokio::fs::create_dir_all(&work).await.map_err(|e| JobError::Retry(format!("data directory: {e}")))?;
        // One id per run, whatever attempt produces the file: an attempt that stored the file
        // but died before the run said so is followed by one that replaces it, not a second.
        let file_id = file_id_of(run_id);
        // The exporter writes here (a name of this attempt's own: another replica may be
        // running a lapsed attempt of the same run); the file is then stored (files.rs) and
        // this removed. What a killed process leaves behind is swept at start ([`sweep_work`]).
        let output = work.join(format!("{file_id}.{}", uuid::Uuid::new_v4().simple()));
        let _work_file = RemoveOnDrop(output.clone());
        let input = ExportInput {
            run_id,
            connection_id: conn_id,
            imodel_id: &conn.imodel_id,
            itwin_id: &conn.tenant,
            request: &request,
            output: &output,
            simulate_override: conn.simulate.as_ref(),
        };
        let mut all_logs = String::new();
        let mut attempt = 0u32;
        let outcome = loop {
            progress.enter(state::EXECUTING).await?;
            let r = exporter::execute(&config, &input, self.state.clock.as_ref()).await;
            match r {
                Ok(done) => {
                    all_logs.push_str(&done.logs);
                    break Ok(done);
                }
                Err(f) if f.retryable && attempt < retries => {
                    all_logs.push_str(&f.logs);
                    attempt += 1;
                    tracing::info!(run = %run_id, attempt, error = %f.message, "export attempt failed; retrying");
                    progress.task()["retryAttempts"] = json!(attempt);
                    progress.enter(state::WAITING_TO_RETRY).await?;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(f) => {
                    all_logs.push_str(&f.logs);
                    break Err(f);
                }
            }
        };
        progress.enter(state::FINALIZING).await?;
        let now = self.state.clock.now_ms();
        if let Err(e) = self.state.files.put(&exporter::log_name(run_id), all_logs.clone().into_bytes(), now).await {
            tracing::warn!(run = %run_id, error = %e, "could not store the export logs");
        }
        let out_opts = &request["outputOptions"];
        if out_opts["location"] == "USER_BLOB_STORAGE"
            && let Some(url) = out_opts["logsSasUrl"].as_str()
            && let Err(e) = self.upload(url, all_logs.clone().into_bytes()).await
        {
            tracing::warn!(run = %run_id, error = %e, "could not upload the export logs");
        }
        match outcome {
            Ok(done) if done.produced_file => {
                let bytes = tokio::fs::read(&output).await.map_err(|e| JobError::Retry(format!("output file: {e}")))?;
                if out_opts["location"] == "USER_BLOB_STORAGE"
                    && let Some(url) = out_opts["outputSasUrl"].as_str()
                    && let Err(e) = self.upload(url, bytes.clone()).await
                {
                    let f = ExportFailure::final_step(
                        format!("could not upload the output to outputSasUrl: {e}"),
                        all_logs,
                    );
                    progress.complete(result::ERROR, Some(task_error(&f)), None).await?;
                    return Ok(());
                }
                let size = bytes.len();
                // Stored before the run says it is done: a run that names a file can serve it.
                if let Err(e) = self.store_file(&file_id, bytes).await {
                    if job.attempts < job.max_attempts {
                        return Err(JobError::Retry(format!("storing the output file: {e}")));
                    }
                    // The last attempt: the run ends (its connection is free again) without a file.
                    let f = ExportFailure::final_step(format!("could not store the output file: {e}"), all_logs);
                    tracing::warn!(run = %run_id, error = %f.message, "export run failed");
                    progress.complete(result::ERROR, Some(task_error(&f)), None).await?;
                    return Ok(());
                }
                let ext = if export_type == "PDF" { "pdf" } else { "ifc" };
                let rec = RecordWrite {
                    tenant: conn.tenant.clone(),
                    kind: FILE_KIND.into(),
                    id: file_id.clone(),
                    data: json!({"connectionId": conn_id, "runId": run_id, "exportType": export_type,
                                 "name": format!("{}.{ext}", conn.display_name.replace(['/', '\\', '"'], "_")),
                                 "size": size}),
                    secret: None,
                };
                store.put_record(&rec, &[], &self.state.vault, self.state.clock.now_ms()).await.map_err(retry)?;
                progress.complete(&done.result, None, Some(file_id)).await?;
            }
            Ok(done) => progress.complete(&done.result, None, None).await?,
            Err(f) => {
                let res = if f.timed_out { result::TIMED_OUT } else { result::ERROR };
                tracing::warn!(run = %run_id, error = %f.message, "export run failed");
                progress.complete(res, Some(task_error(&f)), None).await?;
            }
        }
        tracing::info!(run = %run_id, result = %progress.run.result, "export run completed");
        Ok(())
    }
}

impl ExportRunner {
    /// Stores a produced file, trying three times within the attempt (a brief outage of
    /// the store does not cost the export's work).
    async fn store_file(&self, file_id: &str, bytes: Vec<u8>) -> Result<(), crate::files::FileError> {
        let name = exporter::file_name(file_id);
        let mut tries = 0u64;
        loop {
            tries += 1;
            match self.state.files.put(&name, bytes.clone(), self.state.clock.now_ms()).await {
                Err(e) if tries < 3 => {
                    tracing::warn!(file = %file_id, error = %e, "could not store an export file; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * tries)).await;
                }
                other => return other,
            }
        }
    }

    /// PUTs a blob to an Azure SAS URL.
    async fn upload(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        let req = self
            .outbound
            .request(reqwest::Method::PUT, url)
            .map_err(|e| e.to_string())?
            .header("x-ms-blob-type", "BlockBlob")
            .body(body);
        let resp = self.outbound.send(crate::outbound::Call::BlobUpload, req).await.map_err(|e| e.to_string())?;
        if resp.status.is_success() { Ok(()) } else { Err(format!("HTTP {}", resp.status.as_u16())) }
    }
}

/// Removes an exporter's work file however the attempt ends.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes exporters' work files left by a process that was killed mid-run: those older
/// than any attempt can last (the longest configured exporter time-out, plus ten minutes).
/// Returns how many were removed.
pub async fn sweep_work(settings: &exporter::ExportSettings) -> usize {
    let longest = settings
        .exporters
        .values()
        .map(|e| match e {
            ExporterConfig::Command { timeout_secs, .. } => *timeout_secs,
            ExporterConfig::Simulate { delay_ms, .. } => delay_ms / 1000,
        })
        .max()
        .unwrap_or(0);
    let age = Duration::from_secs(longest.max(600).saturating_add(600));
    let Ok(mut dir) = tokio::fs::read_dir(settings.work_dir()).await else { return 0 };
    let mut removed = 0;
    while let Ok(Some(entry)) = dir.next_entry().await {
        let old = entry.metadata().await.ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if old.is_some_and(|o| o > age) && tokio::fs::remove_file(entry.path()).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The id of the file a run produces: fixed by the run (a UUID made of a hash of its id).
pub fn file_id_of(run_id: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("patchbay.export.file:{run_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// The job that executes a run.
pub fn job(tenant: &str, connection_id: &str, run_id: &str, now_ms: i64) -> patchbay_store::NewJob {
    patchbay_store::NewJob::now(tenant, RUN_JOB, json!({"connectionId": connection_id, "runId": run_id}), 20, now_ms)
}
