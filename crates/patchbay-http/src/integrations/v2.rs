//! OpenInt v2, as the openint 2.9.0 SDK calls it: the v1 operations on
//! connections, connectors and connector configs under `/v2` (and `/api/v2`,
//! the connector-gateway prefix), plus repl assignments and organisation
//! upsert. One store: what v1 writes, v2 reads, and the other way round.
//!
//! Routes (under `/v2` and `/api/v2`):
//! `GET|POST /connection` · `GET|DELETE /connection/{id}` ·
//! `GET /connection/{id}/assignment` · `PUT|DELETE /connection/{id}/assignment/{repl_id}` ·
//! `GET /connector` · `GET|POST /connector-config` · `GET|PUT|DELETE /connector-config/{id}` ·
//! `PUT /organization/{org_id}`

use axum::routing::put;

use super::*;

/// The v2 routes, relative to their prefix.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/connection", get(list_connections).post(create_connection))
        .route("/connection/{id}", get(get_connection).delete(delete_connection))
        .route("/connection/{id}/assignment", get(list_assignments))
        .route("/connection/{id}/assignment/{repl_id}", put(assign_connection).delete(delete_assignment))
        .route("/connector", get(list_connectors))
        .route("/connector-config", get(list_configs).post(create_config))
        .route("/connector-config/{id}", get(get_config).put(update_config).delete(delete_config))
        .route("/organization/{org_id}", put(upsert_organization))
}

/// v1 operations served under `/v2` too: (v1 path, v2 path) for the OpenAPI document.
pub(super) const SHARED_PATHS: &[(&str, &str)] = &[
    ("/v1/connection", "/v2/connection"),
    ("/v1/connection/{id}", "/v2/connection/{id}"),
    ("/v1/connector", "/v2/connector"),
    ("/v1/connector-config", "/v2/connector-config"),
    ("/v1/connector-config/{id}", "/v2/connector-config/{id}"),
];

// ----------------------------------------------------------- assignments --

/// The repls a connection is assigned to, in the order they were assigned.
async fn assignments_of(state: &AppState, tenant: &str, id: &str) -> Result<Vec<String>, InError> {
    Ok(state.store.get_record(tenant, kind::IN_ASSIGNMENT, id).await?.map(|r| repl_ids(&r.data)).unwrap_or_default())
}

fn repl_ids(data: &Value) -> Vec<String> {
    data["assignments"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// The connections assigned to `repl_id` in an organisation (the `repl_id` filter).
pub(super) async fn assigned_to(state: &AppState, tenant: &str, repl_id: &str) -> Result<Vec<String>, InError> {
    let all = state.store.list_records(tenant, kind::IN_ASSIGNMENT).await?;
    Ok(all.into_iter().filter(|r| repl_ids(&r.data).iter().any(|x| x == repl_id)).map(|r| r.id).collect())
}

async fn save_assignments(state: &AppState, tenant: &str, id: &str, repls: &[String]) -> Result<(), InError> {
    if repls.is_empty() {
        state.store.delete_record(tenant, kind::IN_ASSIGNMENT, id).await?;
        return Ok(());
    }
    let rec = RecordWrite {
        tenant: tenant.into(),
        kind: kind::IN_ASSIGNMENT.into(),
        id: id.into(),
        data: json!({"assignments": repls}),
        secret: None,
    };
    state.store.put_record(&rec, &[], &state.vault, state.clock.now_ms()).await?;
    Ok(())
}

/// A repl id as a path segment gives it: non-empty, at most 256 characters, no NUL.
fn check_repl_id(repl_id: &str) -> Result<(), InError> {
    if repl_id.trim().is_empty() || repl_id.len() > 256 || repl_id.contains('\0') {
        return Err(InError::issue(&["repl_id"], "repl_id must be 1 to 256 characters without NUL"));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v2/connection/{id}/assignment", operation_id = "listAssignments", tag = "Assignments",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_")),
    responses((status = 200, description = "The repls the connection is assigned to", body = wire::Assignments), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn list_assignments(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    let assignments = assignments_of(&state, &conn.tenant, &conn.id).await?;
    typed(wire::Assignments { id: conn.id.clone(), assignments })
}

#[utoipa::path(put, path = "/v2/connection/{id}/assignment/{repl_id}", operation_id = "assignConnection", tag = "Assignments",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_"), ("repl_id" = String, Path, description = "The repl ID to assign to this connection")),
    responses((status = 200, description = "The repls the connection is assigned to, this one included", body = wire::Assignments), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn assign_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path((id, repl_id)): Path<(String, String)>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    check_repl_id(&repl_id)?;
    let mut repls = assignments_of(&state, &conn.tenant, &conn.id).await?;
    if !repls.contains(&repl_id) {
        repls.push(repl_id);
        save_assignments(&state, &conn.tenant, &conn.id, &repls).await?;
    }
    typed(wire::Assignments { id: conn.id.clone(), assignments: repls })
}

#[utoipa::path(delete, path = "/v2/connection/{id}/assignment/{repl_id}", operation_id = "deleteAssignment", tag = "Assignments",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_"), ("repl_id" = String, Path, description = "The repl ID to remove from this connection")),
    responses((status = 200, description = "The repls the connection is still assigned to", body = wire::Assignments), (status = 404, description = "Not found (the connection, or this assignment)", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn delete_assignment(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path((id, repl_id)): Path<(String, String)>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    check_repl_id(&repl_id)?;
    let mut repls = assignments_of(&state, &conn.tenant, &conn.id).await?;
    let before = repls.len();
    repls.retain(|r| r != &repl_id);
    if repls.len() == before {
        return Err(InError::not_found(format!("Connection {} is not assigned to {repl_id:?}", conn.id)));
    }
    save_assignments(&state, &conn.tenant, &conn.id, &repls).await?;
    typed(wire::Assignments { id: conn.id.clone(), assignments: repls })
}

// ----------------------------------------------------------- organization --

/// An organisation id as a path segment gives it: 1 to 128 visible ASCII characters.
fn check_org_id(org_id: &str) -> Result<(), InError> {
    if org_id.is_empty() || org_id.len() > 128 || !org_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InError::issue(&["org_id"], "org_id must be 1 to 128 visible ASCII characters"));
    }
    Ok(())
}

#[utoipa::path(put, path = "/v2/organization/{org_id}", operation_id = "upsertOrganization", tag = "Organizations",
    params(("org_id" = String, Path, pattern = "^[!-~]{1,128}$", description = "The organisation's id: 1 to 128 visible ASCII characters")),
    responses((status = 200, description = "The organisation, and whether this call created it", body = wire::OrganizationUpserted), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden: an organisation's key may upsert only itself", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn upsert_organization(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(org_id): Path<String>,
) -> InResult {
    let admin = state.config.admin_token.as_deref().is_some_and(|t| crate::admin::presents_admin_token(t, &headers));
    if admin {
        rate_limited(&state, "admin", None).await?;
    } else {
        let viewer = authenticate(&state, &headers).await?;
        let own = viewer.org_only()?;
        check_org_id(&org_id)?;
        if own != org_id {
            return Err(InError::forbidden("An organisation's credentials may upsert only that organisation"));
        }
    }
    check_org_id(&org_id)?;
    if state.store.get_record(&org_id, kind::IN_ORG, &org_id).await?.is_some() {
        return typed(wire::OrganizationUpserted { id: org_id, created: false });
    }
    let rec = RecordWrite {
        tenant: org_id.clone(),
        kind: kind::IN_ORG.into(),
        id: org_id.clone(),
        data: json!({"name": org_id, "webhookUrl": null}),
        secret: None,
    };
    // Two upserts racing: the one that did not create it says so.
    let created = state.store.create_record(&rec, &state.vault, state.clock.now_ms()).await?;
    typed(wire::OrganizationUpserted { id: org_id, created })
}
