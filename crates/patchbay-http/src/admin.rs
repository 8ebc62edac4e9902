//! The admin API: runtime provisioning with seed documents.

use crate::openapi::{BearerAuth, PlatformResponses};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use patchbay_core::seed::{self, SeedError};
use patchbay_store::StoreError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::face::{Face, Headers};

/// The admin API's error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AdminError {
    pub error: String,
    /// JSON path of the first problem in a seed document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// What a seed application did: objects per section.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SeedApplied {
    #[schema(value_type = Object)]
    pub applied: std::collections::BTreeMap<String, usize>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct WebhookSecret {
    pub organization: String,
    /// HMAC-SHA256 key, hex.
    pub secret: String,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/openapi.json", axum::routing::get(crate::openapi::serve::<AdminApi>))
        .route("/admin/v1/seed", post(apply_seed))
        .route("/admin/v1/network/signing-key", axum::routing::get(network_signing_key))
        .route("/admin/v1/integrations/organizations/{org}/webhook-secret", axum::routing::get(webhook_secret))
        .merge(crate::sandbox::routes::routes())
}

fn seed_error(e: &SeedError) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(AdminError { error: e.to_string(), path: Some(e.path.clone()) }))
        .into_response()
}

/// Whether the request carries `Authorization: Bearer <expected>` (compared in constant time).
pub(crate) fn presents_admin_token(expected: &str, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    presented.is_some_and(|p| {
        // Compare digests: no early exit, no length leak.
        Sha256::digest(p.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())).into()
    })
}

/// Checks `Authorization: Bearer <admin token>` and the admin rate limit; 404 when
/// the admin API is disabled.
pub(crate) async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(
            Face::Admin.error(StatusCode::NOT_FOUND, "The admin API is disabled (no admin token is configured).")
        );
    };
    if presents_admin_token(expected, headers) {
        // Every admin route counts against the admin face's limit.
        state.authenticated(Face::Admin, "admin", None).await
    } else {
        let mut resp = Face::Admin.error(StatusCode::UNAUTHORIZED, "A valid admin bearer token is required.");
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static header"));
        Err(resp)
    }
}

#[utoipa::path(post, path = "/admin/v1/seed", operation_id = "applySeed", tag = "Admin",
    request_body(content = patchbay_core::seed::SeedDoc, description = "A seed document (docs/seed-format.md)"),
    responses((status = 200, description = "Applied", body = SeedApplied),
              (status = 413, description = "Body too large", body = AdminError),
              (status = 422, description = "Invalid document; nothing was written", body = AdminError), (status = 401, description = "Missing or wrong admin token", body = AdminError), (status = 404, description = "Admin API disabled", body = AdminError), (status = 429, description = "Rate limited", body = AdminError, headers(("Retry-After" = u64))), (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
async fn apply_seed(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(resp) = authorize(&state, &headers).await {
        return resp;
    }
    let body = match body {
        Ok(b) => b,
        Err(rej) => {
            let status = rej.status();
            return Face::Admin.error(status, &rej.body_text());
        }
    };
    let plan = match seed::plan(&body) {
        Ok(p) => p,
        Err(e) => return seed_error(&e),
    };
    match state.store.apply_seed(&plan, &state.vault, state.clock.now_ms(), seed::SeedMode::Upsert).await {
        Ok(()) => axum::Json(SeedApplied { applied: plan.counts.iter().map(|(k, v)| (k.to_string(), *v)).collect() })
            .into_response(),
        Err(StoreError::Seed(e)) => seed_error(&e),
        Err(e) => {
            tracing::error!(error = %e, "seed could not be applied");
            Face::Admin.error(StatusCode::INTERNAL_SERVER_ERROR, "The seed could not be applied.")
        }
    }
}

/// The public half of the `X-BitGo-Signature` key, as PEM, for partners to verify with.
#[utoipa::path(get, path = "/admin/v1/network/signing-key", operation_id = "getNetworkSigningKey", tag = "Admin",
    responses((status = 200, description = "SPKI public key, PEM", content_type = "application/x-pem-file", body = String), (status = 401, description = "Missing or wrong admin token", body = AdminError), (status = 404, description = "Admin API disabled", body = AdminError), (status = 429, description = "Rate limited", body = AdminError, headers(("Retry-After" = u64))), (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
async fn network_signing_key(State(state): State<AppState>, Headers(headers): Headers) -> Response {
    if let Err(resp) = authorize(&state, &headers).await {
        return resp;
    }
    match crate::network::initialize::load_or_create(&state.store, &state.vault, state.clock.now_ms()).await {
        Ok(key) => ([(header::CONTENT_TYPE, "application/x-pem-file")], key.public_pem).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "signing key unavailable");
            Face::Admin.error(StatusCode::INTERNAL_SERVER_ERROR, "The signing key is unavailable.")
        }
    }
}

/// The key an organisation verifies `X-Patchbay-Signature` with (hex).
#[utoipa::path(get, path = "/admin/v1/integrations/organizations/{org}/webhook-secret", operation_id = "getWebhookSecret", tag = "Admin",
    params(("org" = String, Path)),
    responses((status = 200, description = "The organisation's webhook signing key", body = WebhookSecret), (status = 401, description = "Missing or wrong admin token", body = AdminError), (status = 404, description = "Admin API disabled", body = AdminError), (status = 429, description = "Rate limited", body = AdminError, headers(("Retry-After" = u64))), (status = 500, description = "Internal error", body = AdminError)),
    security(("bearer" = [])))]
async fn webhook_secret(
    State(state): State<AppState>,
    Headers(headers): Headers,
    axum::extract::Path(org): axum::extract::Path<String>,
) -> Response {
    if let Err(resp) = authorize(&state, &headers).await {
        return resp;
    }
    match state.store.get_record(&org, patchbay_core::seed::kind::IN_ORG, &org).await {
        Ok(Some(_)) => {}
        // No organisation id holds a NUL (PostgreSQL cannot even look one up).
        Ok(None) | Err(StoreError::Nul) => return Face::Admin.error(StatusCode::NOT_FOUND, "No such organisation."),
        Err(e) => {
            tracing::error!(error = %e, "organisation lookup failed");
            return Face::Admin.error(StatusCode::INTERNAL_SERVER_ERROR, "The organisation could not be read.");
        }
    }
    match crate::integrations::webhook_key(&state, &org).await {
        Ok(secret) => axum::Json(WebhookSecret { organization: org, secret }).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "webhook secret unavailable");
            Face::Admin.error(StatusCode::INTERNAL_SERVER_ERROR, "The webhook secret is unavailable.")
        }
    }
}

/// The platform's own answers, in this face's error schema.
const PLATFORM_RESPONSES: PlatformResponses = PlatformResponses("AdminError");

/// The admin API's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Patchbay — admin API", description = "Provisioning and keys; sandbox controls (docs/sandbox.md) when sandbox.enabled."),
    paths(apply_seed, network_signing_key, webhook_secret,
        crate::sandbox::routes::status, crate::sandbox::routes::clock_show, crate::sandbox::routes::clock_advance,
        crate::sandbox::routes::clock_set, crate::sandbox::routes::clock_freeze, crate::sandbox::routes::clock_resume,
        crate::sandbox::routes::deterministic_on, crate::sandbox::routes::deterministic_off,
        crate::sandbox::routes::fault_add, crate::sandbox::routes::fault_list, crate::sandbox::routes::fault_clear,
        crate::sandbox::routes::fault_get, crate::sandbox::routes::fault_delete,
        crate::sandbox::routes::journal_list, crate::sandbox::routes::journal_clear, crate::sandbox::routes::journal_verify,
        crate::sandbox::routes::reset, crate::sandbox::routes::snapshot_save, crate::sandbox::routes::snapshot_list,
        crate::sandbox::routes::snapshot_restore, crate::sandbox::routes::snapshot_delete),
    modifiers(&BearerAuth, &PLATFORM_RESPONSES),
)]
pub struct AdminApi;
