//! Export face domain rules (iTwin Export): the run state vocabulary and the
//! .NET round-trip timestamp format.

/// Execution states, as the API spells them.
pub mod state {
    pub const NOT_STARTED: &str = "NotStarted";
    pub const QUEUED: &str = "Queued";
    pub const WAITING_TO_EXECUTE: &str = "WaitingToExecute";
    pub const WAITING_TO_RETRY: &str = "WaitingToRetry";
    pub const EXECUTING: &str = "Executing";
    pub const FINALIZING: &str = "Finalizing";
    pub const COMPLETED: &str = "Completed";
}

/// Execution results.
pub mod result {
    pub const UNDETERMINED: &str = "Undetermined";
    pub const SUCCESS: &str = "Success";
    pub const ERROR: &str = "Error";
    pub const PARTIAL_SUCCESS: &str = "PartialSuccess";
    pub const SKIPPED: &str = "Skipped";
    pub const CANCELLED: &str = "Cancelled";
    pub const TIMED_OUT: &str = "TimedOut";
}

pub const EXPORT_TYPES: &[&str] = &["IFC", "PDF"];
pub const IFC_VERSIONS: &[&str] = &["IFC4.3", "IFC2x3", "IFC2x3 CV 2.0", "IFC4 RV 1.2"];

/// UTC ISO 8601 with 7 fractional digits, e.g. `2023-09-14T12:00:06.8727000Z`.
pub fn timestamp(ms: i64) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap_or_default();
    format!("{}.{:07}Z", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seven_fractional_digits() {
        assert_eq!(super::timestamp(1_694_692_806_872), "2023-09-14T12:00:06.8720000Z");
        assert_eq!(super::timestamp(0), "1970-01-01T00:00:00.0000000Z");
    }
}
