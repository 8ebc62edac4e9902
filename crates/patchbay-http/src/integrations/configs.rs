//! Connector configs: an organisation's credentials for a connector (OAuth client,
//! API base URL …), listed by customers too.
//!
//! Routes: `GET|POST /v1/connector-config` · `GET|PUT|DELETE /v1/connector-config/{id}`

use super::*;

pub(super) fn config_json(
    rec: &Record,
    config: Option<&Value>,
    expand: &[String],
    count: Option<i64>,
    customer: bool,
) -> wire::ConnectorConfig {
    let d = &rec.data;
    let name = d["connectorName"].as_str().unwrap_or_default().to_string();
    let mut out = wire::ConnectorConfig {
        id: rec.id.clone(),
        org_id: rec.tenant.clone(),
        display_name: d["displayName"].as_str().map(str::to_string),
        disabled: d["disabled"].as_bool().unwrap_or(false),
        metadata: Some(d["metadata"].clone()).filter(|m| m.is_object()),
        created_at: timestamp(rec.created_at),
        updated_at: timestamp(rec.updated_at),
        // Customers get what the spec requires, with the organisation's secrets left out.
        config: match (config, customer) {
            (Some(c), false) => c.clone(),
            (Some(c), true) => catalog::public_config(c),
            (None, _) => json!({}),
        },
        connector: None,
        connection_count: None,
        connector_name: name.clone(),
    };
    if let Some(c) = connector(&name) {
        if expand.iter().any(|e| e == "connector.schemas") {
            out.connector = Some(connector_wire(c, true));
        } else if expand.iter().any(|e| e == "connector") {
            out.connector = Some(connector_wire(c, false));
        }
    }
    out.connection_count = count;
    out
}

pub(super) const CONFIG_EXPANDS: &[&str] = &["connector", "connector.schemas", "connection_count"];

pub(super) async fn render_config(
    state: &AppState,
    viewer: &Viewer,
    rec: &Record,
    expand: &[String],
) -> Result<wire::ConnectorConfig, InError> {
    let customer = viewer.customer().is_some();
    let config = rec.open_secret(&state.vault)?;
    let count = if expand.iter().any(|e| e == "connection_count") {
        Some(state.store.in_count_by_config(&rec.tenant, &rec.id).await?)
    } else {
        None
    };
    Ok(config_json(rec, config.as_ref(), expand, count, customer))
}

#[utoipa::path(get, path = "/v1/connector-config", operation_id = "listConnectorConfigs", tag = "Connector configs",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("connector_names" = Option<Vec<wire::ConnectorName>>, Query, style = Form, explode = false), ("search_query" = Option<String>, Query),
           ("expand" = Option<Vec<ExpandConfig>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "A page of connector configs", body = wire::ConnectorConfigPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn list_configs(
    State(state): State<AppState>,
    Headers(headers): Headers,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let expand = q.expand(CONFIG_EXPANDS)?;
    let names = connector_names(&q)?;
    let search = q.one("search_query").map(str::to_lowercase);
    let mut all = state.store.list_records(&org, kind::IN_CCFG).await?;
    all.retain(|r| {
        let name = r.data["connectorName"].as_str().unwrap_or_default();
        (names.is_empty() || names.iter().any(|n| n == name))
            && search.as_ref().is_none_or(|s| r.id.to_lowercase().contains(s) || name.contains(s.as_str()))
    });
    all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
    let total = all.len() as i64;
    let mut items = Vec::new();
    for r in all.iter().skip(offset as usize).take(limit as usize) {
        items.push(render_config(&state, &viewer, r, &expand).await?);
    }
    typed(wire::ConnectorConfigPage::new(items, total, limit, offset))
}

pub(super) async fn visible_config(state: &AppState, viewer: &Viewer, id: &str) -> Result<Record, InError> {
    let org = viewer.org()?;
    state
        .store
        .get_record(org, kind::IN_CCFG, id)
        .await?
        .ok_or_else(|| InError::not_found(format!("Connector config with ID \"{id}\" not found")))
}

#[utoipa::path(get, path = "/v1/connector-config/{id}", operation_id = "getConnectorConfig", tag = "Connector configs",
    params(("id" = String, Path, description = "The id of the connector config, starts with ccfg_"), ("expand" = Option<Vec<ExpandConfig>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "The connector config", body = wire::ConnectorConfig), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn get_config(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let expand = Query::parse(q.as_deref())?.expand(CONFIG_EXPANDS)?;
    let rec = visible_config(&state, &viewer, &id).await?;
    typed(render_config(&state, &viewer, &rec, &expand).await?)
}

/// `metadata` updates merge shallowly: new keys win, other keys stay.
pub(super) fn shallow_merge(old: &Value, new: &Value) -> Value {
    let mut out = old.as_object().cloned().unwrap_or_default();
    if let Some(n) = new.as_object() {
        for (k, v) in n {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[utoipa::path(post, path = "/v1/connector-config", operation_id = "createConnectorConfig", tag = "Connector configs",
    request_body = wire::CreateConnectorConfig,
    responses((status = 200, description = "The new connector config", body = wire::ConnectorConfig), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn create_config(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org_only()?.to_string();
    let body = body_object(body)?;
    let name = optional_string(&body, "connector_name")?
        .ok_or_else(|| InError::issue(&["connector_name"], "connector_name is required"))?;
    let c = connector(&name)
        .ok_or_else(|| InError::issue(&["connector_name"], format!("{name:?} is not a known connector")))?;
    let name = c.name.clone();
    // Optional (or null) on the wire: an absent config is {}. Either way it must satisfy the
    // connector's schema, so a connector whose config has required fields needs them.
    let config = optional_object(&body, "config")?.unwrap_or(json!({}));
    let issues = c.validate_config(&config, &["config"]);
    if !issues.is_empty() {
        return Err(InError::invalid(issues));
    }
    let rec = RecordWrite {
        tenant: org,
        kind: kind::IN_CCFG.into(),
        id: catalog::new_id(&state.entropy, state.clock.now_ms(), "ccfg", &name),
        data: json!({"orgId": viewer.org()?, "connectorName": name, "displayName": optional_string(&body, "display_name")?,
                     "disabled": optional_bool(&body, "disabled")?.unwrap_or(false),
                     "metadata": optional_object(&body, "metadata")?, "overrides": null}),
        secret: Some(config),
    };
    state.store.put_record(&rec, &[], &state.vault, state.clock.now_ms()).await?;
    let stored = visible_config(&state, &viewer, &rec.id).await?;
    typed(render_config(&state, &viewer, &stored, &[]).await?)
}

#[utoipa::path(put, path = "/v1/connector-config/{id}", operation_id = "updateConnectorConfig", tag = "Connector configs",
    params(("id" = String, Path, description = "The id of the connector config, starts with ccfg_")), request_body(content = Option<wire::UpdateConnectorConfig>, description = "An empty body is {}"),
    responses((status = 200, description = "The updated connector config", body = wire::ConnectorConfig), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn update_config(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    viewer.org_only()?;
    let body = body_object(body)?;
    let rec = visible_config(&state, &viewer, &id).await?;
    let name = rec.data["connectorName"].as_str().unwrap_or_default().to_string();
    let mut config = rec.open_secret(&state.vault)?.unwrap_or(json!({}));
    if let Some(new) = optional_object(&body, "config")? {
        let issues = connector(&name).map(|c| c.validate_config(&new, &["config"])).unwrap_or_default();
        if !issues.is_empty() {
            return Err(InError::invalid(issues));
        }
        config = new;
    }
    let mut data = rec.data.clone();
    if let Some(d) = optional_string(&body, "display_name")? {
        data["displayName"] = json!(d);
    }
    if let Some(d) = optional_bool(&body, "disabled")? {
        data["disabled"] = json!(d);
    }
    if let Some(m) = optional_object(&body, "metadata")? {
        data["metadata"] = shallow_merge(&data["metadata"], &m);
    }
    let write = RecordWrite {
        tenant: rec.tenant.clone(),
        kind: rec.kind.clone(),
        id: rec.id.clone(),
        data,
        secret: Some(config),
    };
    state.store.put_record(&write, &[], &state.vault, state.clock.now_ms()).await?;
    let stored = visible_config(&state, &viewer, &id).await?;
    typed(render_config(&state, &viewer, &stored, &[]).await?)
}

#[utoipa::path(delete, path = "/v1/connector-config/{id}", operation_id = "deleteConnectorConfig", tag = "Connector configs",
    params(("id" = String, Path, description = "The id of the connector config, starts with ccfg_")),
    responses((status = 200, description = "Deleted", body = wire::Deleted), (status = 404, description = "Not found", body = wire::Error), (status = 409, description = "Connections still use it", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn delete_config(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org_only()?.to_string();
    let rec = visible_config(&state, &viewer, &id).await?;
    let n = state.store.in_count_by_config(&org, &rec.id).await?;
    if n > 0 {
        return Err(InError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!("Connector config {id} still has {n} connection(s); delete them first"),
        ));
    }
    state.store.delete_record(&org, kind::IN_CCFG, &rec.id).await?;
    typed(wire::Deleted { id: rec.id })
}
