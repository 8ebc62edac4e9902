//! The Export face's wire types: what handlers serialise and what the OpenAPI
//! document (`GET /export/openapi.json`) is generated from.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Link {
    pub href: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionLinks {
    pub i_model: Link,
    pub i_twin: Link,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Link>,
}

/// ExportConnection.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "VRZHoBhrnkGrAev0-_-d_xwvyrzjgaVGka5wU967Q7M", "displayName": "nightly IFC",
    "iModelId": "7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d05", "iTwinId": "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04",
    "authenticationType": "User",
    "_links": {
        "iModel": {"href": "https://patchbay.example/imodels/7dbd1c2e-3f4a-4b5c-9d6e-7f8a9b0c1d05"},
        "iTwin": {"href": "https://patchbay.example/itwins/5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a04"}
    }
}))]
pub struct Connection {
    pub id: String,
    pub display_name: String,
    #[serde(rename = "iModelId")]
    #[schema(format = Uuid)]
    pub imodel_id: String,
    #[serde(rename = "iTwinId")]
    #[schema(format = Uuid)]
    pub itwin_id: String,
    #[schema(value_type = AuthenticationType)]
    pub authentication_type: String,
    #[serde(rename = "_links")]
    pub links: ConnectionLinks,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub enum AuthenticationType {
    User,
    Service,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageLinks {
    #[serde(rename = "self")]
    pub this: Link,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Link>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionEnvelope {
    pub connection: Connection,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionsPage {
    pub connections: Vec<Connection>,
    #[serde(rename = "_links")]
    pub links: PageLinks,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub enum ExecutionState {
    NotStarted,
    Idle,
    WaitingToExecute,
    WaitingToRetry,
    Executing,
    Finalizing,
    Completed,
    Queued,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub enum ExecutionResult {
    Undetermined,
    Success,
    Error,
    PartialSuccess,
    Skipped,
    Cancelled,
    TimedOut,
}

/// task-error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskError {
    pub error_code: String,
    pub message: String,
    pub details: String,
    pub bridge_exit_code: i64,
    pub system: String,
    pub phase: String,
    pub category: String,
    pub description_key: String,
    pub description: String,
    pub kb_article_link: String,
    pub can_user_fix: bool,
}

/// export-task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    pub retry_attempts: i64,
    #[schema(value_type = ExecutionState)]
    pub state: String,
    #[schema(value_type = ExecutionResult)]
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_output_file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TaskError>,
}

/// export-job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    #[schema(value_type = ExecutionState)]
    pub state: String,
    #[schema(value_type = ExecutionResult)]
    pub result: String,
    pub tasks: Vec<Task>,
}

/// export-run.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub connection_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    #[schema(value_type = ExecutionState)]
    pub state: String,
    #[schema(value_type = ExecutionResult)]
    pub result: String,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunEnvelope {
    pub run: Run,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunsPage {
    pub runs: Vec<Run>,
    #[serde(rename = "_links")]
    pub links: PageLinks,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationLinks {
    pub authorization_url: Link,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInformation {
    pub is_user_authorized: bool,
    #[serde(rename = "_links")]
    pub links: AuthorizationLinks,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInformationEnvelope {
    pub authorization_information: AuthorizationInformation,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub target: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ErrorDetail>>,
}

/// Error Response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

// ----------------------------------------------------------- request bodies --

/// Export Connection (create).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct CreateConnection {
    #[serde(rename = "iModelId")]
    #[schema(format = Uuid)]
    imodel_id: String,
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\u0000]*$")]
    display_name: Option<String>,
    authentication_type: Option<AuthenticationTypeDoc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum AuthenticationTypeDoc {
    User,
    Service,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum ExportType {
    #[serde(rename = "IFC")]
    Ifc,
    #[serde(rename = "PDF")]
    Pdf,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum IfcVersion {
    #[serde(rename = "IFC4.3")]
    Ifc43,
    #[serde(rename = "IFC2x3")]
    Ifc2x3,
    #[serde(rename = "IFC2x3 CV 2.0")]
    Ifc2x3Cv20,
    #[serde(rename = "IFC4 RV 1.2")]
    Ifc4Rv12,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct InputOptions {
    mapping_file_id: Option<String>,
    #[schema(pattern = "^([0-9a-fA-F]{40})?$")]
    changeset_id: Option<String>,
    saved_view_id: Option<String>,
    #[serde(rename = "mappingfileBlobUrl")]
    #[schema(
        pattern = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$"
    )]
    mappingfile_blob_url: Option<String>,
    #[schema(min_items = 1)]
    model_ids: Option<Vec<NonEmpty>>,
}

/// A non-empty string.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[schema(min_length = 1)]
pub struct NonEmpty(String);

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub enum Location {
    #[serde(rename = "STORAGE")]
    Storage,
    #[serde(rename = "USER_BLOB_STORAGE")]
    UserBlobStorage,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct OutputOptions {
    location: Option<Location>,
    /// Required with `USER_BLOB_STORAGE`.
    #[schema(
        pattern = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$"
    )]
    output_sas_url: Option<String>,
    #[schema(
        pattern = r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$"
    )]
    logs_sas_url: Option<String>,
    folder_id: Option<String>,
}

/// Export Connection Run (Create).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct CreateRun {
    export_type: ExportType,
    /// Only with `exportType` IFC.
    ifc_version: Option<IfcVersion>,
    input_options: Option<InputOptions>,
    output_options: Option<OutputOptions>,
}
