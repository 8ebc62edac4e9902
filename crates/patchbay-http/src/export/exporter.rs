//! Exporters: how a run's file is produced, chosen per export type.
//! `command` runs a configured program; `simulate` completes after a delay
//! with a configured result and a small output file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use patchbay_core::export::result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// How one export type is executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ExporterConfig {
    /// Runs `argv` (placeholders: `{imodelId}`, `{iTwinId}`, `{exportType}`, `{ifcVersion}`,
    /// `{options}`, `{output}`, `{runId}`, `{connectionId}`); exit 0 with the output file
    /// written means success.
    Command {
        argv: Vec<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
        #[serde(default)]
        retries: u32,
    },
    /// Completes after `delay_ms` with `result`.
    Simulate {
        #[serde(default = "default_delay")]
        delay_ms: u64,
        #[serde(default = "default_result")]
        result: String,
    },
}

fn default_timeout() -> u64 {
    600
}
fn default_delay() -> u64 {
    1000
}
fn default_result() -> String {
    result::SUCCESS.into()
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig::Simulate { delay_ms: default_delay(), result: default_result() }
    }
}

/// Export settings: where files go and the exporter of each export type.
#[derive(Debug, Clone, Default)]
pub struct ExportSettings {
    /// Where exporters write (and, with the local file backend, where files are kept).
    pub data_dir: PathBuf,
    /// Where produced files and run logs are kept (files.rs).
    pub files: crate::files::FilesBackend,
    pub s3: crate::files::S3Settings,
    pub exporters: HashMap<String, ExporterConfig>,
}

impl ExportSettings {
    pub fn exporter(&self, export_type: &str) -> ExporterConfig {
        self.exporters.get(export_type).cloned().unwrap_or_default()
    }
    /// Where an exporter writes its output before it is stored (files.rs).
    pub fn work_dir(&self) -> PathBuf {
        self.data_dir.join("export").join("work")
    }
}

/// The stored name of a produced file.
pub fn file_name(file_id: &str) -> String {
    format!("export/files/{file_id}")
}

/// The stored name of a run's log.
pub fn log_name(run_id: &str) -> String {
    format!("export/logs/{run_id}.log")
}

/// What the exporter is asked to do.
pub struct ExportInput<'a> {
    pub run_id: &'a str,
    pub connection_id: &'a str,
    pub imodel_id: &'a str,
    pub itwin_id: &'a str,
    pub request: &'a Value,
    pub output: &'a Path,
    /// Per-connection override of the simulate exporter.
    pub simulate_override: Option<&'a Value>,
}

/// A finished attempt.
#[derive(Debug)]
pub struct ExportDone {
    pub result: String,
    pub produced_file: bool,
    pub logs: String,
}

/// A failed attempt.
#[derive(Debug)]
pub struct ExportFailure {
    pub timed_out: bool,
    pub exit_code: Option<i64>,
    pub message: String,
    pub logs: String,
    /// Whether another attempt may help.
    pub retryable: bool,
}

impl ExportFailure {
    /// A failure after the exporter succeeded (delivering or storing its file), which
    /// another attempt is not asked to mend.
    pub fn final_step(message: String, logs: String) -> Self {
        Self { timed_out: false, exit_code: None, message, logs, retryable: false }
    }
}

const LOG_CAP: usize = 64 * 1024;

fn substitute(arg: &str, input: &ExportInput<'_>) -> String {
    let export_type = input.request["exportType"].as_str().unwrap_or_default();
    let ifc_version = input.request["ifcVersion"].as_str().unwrap_or_default();
    arg.replace("{imodelId}", input.imodel_id)
        .replace("{iTwinId}", input.itwin_id)
        .replace("{exportType}", export_type)
        .replace("{ifcVersion}", ifc_version)
        .replace("{options}", &input.request.to_string())
        .replace("{output}", &input.output.display().to_string())
        .replace("{runId}", input.run_id)
        .replace("{connectionId}", input.connection_id)
}

async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if buf.len() < LOG_CAP {
                    buf.extend_from_slice(&chunk[..n.min(LOG_CAP - buf.len())]);
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs one attempt of the configured exporter. Waits (the simulated delay, the
/// command's time-out) are on `clock`: a sandbox clock moved forward ends them.
pub async fn execute(
    config: &ExporterConfig,
    input: &ExportInput<'_>,
    clock: &dyn patchbay_core::Clock,
) -> Result<ExportDone, ExportFailure> {
    match config {
        ExporterConfig::Command { argv, timeout_secs, .. } => run_command(argv, *timeout_secs, input, clock).await,
        ExporterConfig::Simulate { delay_ms, result } => {
            let o = input.simulate_override;
            let delay = o.and_then(|o| o["delayMs"].as_u64()).unwrap_or(*delay_ms);
            let res = o.and_then(|o| o["result"].as_str()).unwrap_or(result).to_string();
            simulate(delay, &res, input, clock).await
        }
    }
}

/// Waits until `clock` has moved `ms` on from now (in real time, at most `ms`),
/// looking at it every 50 ms.
pub async fn wait_on(clock: &dyn patchbay_core::Clock, ms: u64) {
    let deadline = clock.now_ms().saturating_add(ms.min(i64::MAX as u64) as i64);
    let real = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_sub(clock.now_ms());
        if left <= 0 || tokio::time::Instant::now() >= real {
            return;
        }
        tokio::time::sleep(Duration::from_millis((left as u64).min(50))).await;
    }
}

async fn run_command(
    argv: &[String],
    timeout_secs: u64,
    input: &ExportInput<'_>,
    clock: &dyn patchbay_core::Clock,
) -> Result<ExportDone, ExportFailure> {
    let fail = |message: String, logs: String, exit_code: Option<i64>, retryable: bool| ExportFailure {
        timed_out: false,
        exit_code,
        message,
        logs,
        retryable,
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(fail("no exporter program is configured".into(), String::new(), None, false));
    };
    let mut cmd = tokio::process::Command::new(substitute(program, input));
    cmd.args(args.iter().map(|a| substitute(a, input)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child =
        cmd.spawn().map_err(|e| fail(format!("the exporter could not start: {e}"), String::new(), None, false))?;
    let out = tokio::spawn(read_capped(child.stdout.take().expect("piped")));
    let err = tokio::spawn(read_capped(child.stderr.take().expect("piped")));
    let waited = tokio::select! {
        s = child.wait() => Some(s),
        () = wait_on(clock, timeout_secs.max(1).saturating_mul(1000)) => None,
    };
    let status = match waited {
        Some(s) => s,
        None => {
            let _ = child.kill().await;
            let logs = format!("{}{}", out.await.unwrap_or_default(), err.await.unwrap_or_default());
            return Err(ExportFailure {
                timed_out: true,
                exit_code: None,
                message: format!("the exporter did not finish within {timeout_secs} seconds"),
                logs,
                retryable: true,
            });
        }
    };
    let logs = format!("{}{}", out.await.unwrap_or_default(), err.await.unwrap_or_default());
    let status =
        status.map_err(|e| fail(format!("the exporter could not be awaited: {e}"), logs.clone(), None, true))?;
    if !status.success() {
        let code = status.code().map(i64::from);
        let msg = match code {
            Some(c) => format!("the exporter exited with code {c}"),
            None => "the exporter was killed by a signal".to_string(),
        };
        return Err(fail(msg, logs, code, true));
    }
    let produced = tokio::fs::metadata(input.output).await.map(|m| m.is_file()).unwrap_or(false);
    if !produced {
        return Err(fail("the exporter exited successfully but wrote no output file".into(), logs, Some(0), false));
    }
    Ok(ExportDone { result: result::SUCCESS.into(), produced_file: true, logs })
}

async fn simulate(
    delay_ms: u64,
    res: &str,
    input: &ExportInput<'_>,
    clock: &dyn patchbay_core::Clock,
) -> Result<ExportDone, ExportFailure> {
    wait_on(clock, delay_ms).await;
    let export_type = input.request["exportType"].as_str().unwrap_or("IFC");
    let logs = format!("simulated {export_type} export of iModel {} ended {res}\n", input.imodel_id);
    match res {
        result::ERROR => Err(ExportFailure {
            timed_out: false,
            exit_code: Some(1),
            message: "simulated export failure".into(),
            logs,
            retryable: false,
        }),
        result::TIMED_OUT => Err(ExportFailure {
            timed_out: true,
            exit_code: None,
            message: "simulated export timeout".into(),
            logs,
            retryable: false,
        }),
        result::SKIPPED | result::CANCELLED => Ok(ExportDone { result: res.to_string(), produced_file: false, logs }),
        other => {
            let body = if export_type == "PDF" {
                format!("%PDF-1.4\n% Patchbay simulated export of iModel {}\n%%EOF\n", input.imodel_id)
            } else {
                format!(
                    "ISO-10303-21;\nHEADER;\nFILE_DESCRIPTION(('Patchbay simulated export of iModel {}'),'2;1');\nENDSEC;\nDATA;\nENDSEC;\nEND-ISO-10303-21;\n",
                    input.imodel_id
                )
            };
            tokio::fs::write(input.output, body).await.map_err(|e| ExportFailure {
                timed_out: false,
                exit_code: None,
                message: format!("could not write the output file: {e}"),
                logs: logs.clone(),
                retryable: true,
            })?;
            Ok(ExportDone { result: other.to_string(), produced_file: true, logs })
        }
    }
}
