//! Connections: get, list, import, delete and check, and their wire bytes.

use super::*;

// ------------------------------------------------------------ rendering --

/// The wire object of a connection; the opened settings are moved in (a
/// deep copy of them per request showed in the get profile).
pub fn connection_json(c: &InConnection, settings: Option<OpenedSettings>, expand_connector: bool) -> wire::Connection {
    wire::Connection {
        id: c.id.clone(),
        connector_name: c.connector_name.clone(),
        customer_id: c.customer_id.clone(),
        connector_config_id: Some(c.connector_config_id.clone()),
        integration_id: c.integration_id.clone(),
        created_at: timestamp(c.created_at),
        updated_at: timestamp(c.updated_at),
        display_name: c.display_name.clone(),
        disabled: Some(c.disabled),
        status: c.status.clone(),
        status_message: c.status_message.clone(),
        metadata: c.metadata.clone(),
        settings,
        connector: if expand_connector { connector(&c.connector_name).map(|k| connector_wire(k, true)) } else { None },
    }
}

/// The Connection object without the connector (no `expand`), written field
/// by field into the response buffer from the stored row instead of copied into
/// a [`wire::Connection`] first: the fields and order of that type, which the
/// test below checks byte for byte against `serde_json` writing it.
pub(super) fn connection_bytes(c: &InConnection, settings: Option<&OpenedSettings>) -> Vec<u8> {
    use crate::face::{write_json_opt_str as opt, write_json_str as text};
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"id\":");
    text(&mut out, &c.id);
    out.extend_from_slice(b",\"connector_name\":");
    text(&mut out, &c.connector_name);
    out.extend_from_slice(b",\"customer_id\":");
    opt(&mut out, c.customer_id.as_deref());
    out.extend_from_slice(b",\"connector_config_id\":");
    text(&mut out, &c.connector_config_id);
    out.extend_from_slice(b",\"integration_id\":");
    opt(&mut out, c.integration_id.as_deref());
    out.extend_from_slice(b",\"created_at\":");
    crate::face::write_json_millis(&mut out, c.created_at);
    out.extend_from_slice(b",\"updated_at\":");
    crate::face::write_json_millis(&mut out, c.updated_at);
    out.extend_from_slice(b",\"display_name\":");
    opt(&mut out, c.display_name.as_deref());
    out.extend_from_slice(if c.disabled { b",\"disabled\":true" } else { b",\"disabled\":false" });
    out.extend_from_slice(b",\"status\":");
    opt(&mut out, c.status.as_deref());
    out.extend_from_slice(b",\"status_message\":");
    opt(&mut out, c.status_message.as_deref());
    out.extend_from_slice(b",\"metadata\":");
    match &c.metadata {
        // sonic-rs writes a value as serde_json does (face::json_response's test).
        Some(v) => sonic_rs::to_writer(&mut out, v).expect("a JSON value serialises"),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(s) = settings {
        out.extend_from_slice(b",\"settings\":");
        out.extend_from_slice(s.json().as_bytes());
    }
    out.push(b'}');
    out
}

/// A connection's answer bytes: written field by field, or with the connector
/// (`expand=connector`, rare) through [`wire::Connection`].
pub(super) fn connection_body(c: &InConnection, settings: Option<OpenedSettings>, expand: bool) -> Vec<u8> {
    match expand {
        true => sonic_rs::to_vec(&connection_json(c, settings, true)).expect("the wire connection serialises"),
        false => connection_bytes(c, settings.as_ref()),
    }
}

/// A page of connection answers (wire::ConnectionPage), around items already written.
pub(super) fn connection_page_bytes(items: &[Vec<u8>], total: i64, limit: i64, offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + items.iter().map(|i| i.len() + 1).sum::<usize>());
    out.extend_from_slice(b"{\"items\":");
    crate::face::write_json_list(&mut out, items, |out, item| out.extend_from_slice(item));
    let has_next_page = offset + (items.len() as i64) < total;
    let tail = format!(",\"total\":{total},\"limit\":{limit},\"offset\":{offset},\"has_next_page\":{has_next_page}}}");
    out.extend_from_slice(tail.as_bytes());
    out
}

// ----------------------------------------------------------- connections --

pub(super) fn check_conn_id(id: &str) -> Result<(), InError> {
    if id.starts_with("conn_") && id.len() > 5 {
        Ok(())
    } else {
        Err(InError::issue(&["id"], "The id of the connection must start with conn_"))
    }
}

/// A connection visible to the viewer (other organisations' and customers' → 404).
pub(super) async fn visible(state: &AppState, viewer: &Viewer, id: &str) -> Result<Arc<InConnection>, InError> {
    let org = viewer.org()?;
    check_conn_id(id)?;
    let conn =
        state.store.in_get_connection(org, id).await?.ok_or_else(|| InError::not_found("Connection not found"))?;
    if viewer.customer().is_some_and(|c| conn.customer_id.as_deref() != Some(c)) {
        return Err(InError::not_found("Connection not found"));
    }
    Ok(conn)
}

/// A connection's settings opened, after a refresh when `need` says so; the
/// refreshed row comes back too (without one, the row as read still holds).
pub(super) async fn opened(
    state: &AppState,
    conn: &InConnection,
    need: Option<Need>,
) -> Result<(Option<InConnection>, OpenedSettings), InError> {
    match need {
        Some(need) => refresh::refresh(state, conn, need).await,
        None => OpenedSettings::open(state, conn).map(|s| (None, s)),
    }
}

pub(super) fn need_for(state: &AppState, policy: &str) -> Option<Need> {
    match policy {
        "force" => Some(Need::Force),
        "auto" => Some(Need::ExpiringWithin(state.config.integrations.refresh_margin_secs as i64 * 1000)),
        _ => None,
    }
}

#[utoipa::path(get, path = "/v1/connection/{id}", operation_id = "getConnection", tag = "Connections",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_"), ("include_secrets" = Option<bool>, Query), ("refresh_policy" = Option<RefreshPolicy>, Query),
           ("expand" = Option<Vec<ExpandConnector>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "The connection details", body = wire::Connection), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn get_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let q = Query::parse(q.as_deref())?;
    let include = q.boolean("include_secrets")?;
    // With secrets, tokens expiring within the margin are refreshed unless told otherwise (as get).
    let policy = q.refresh_policy("auto")?;
    let expand = q.expand(&["connector"])?;
    let conn = visible(&state, &viewer, &id).await?;
    let expand = !expand.is_empty();
    let answer = |c: &InConnection, settings: Option<OpenedSettings>| {
        Ok(crate::face::json_bytes_response(StatusCode::OK, connection_body(c, settings, expand)))
    };
    if !include {
        // Without secrets there is nothing to refresh (as upstream).
        return answer(&conn, None);
    }
    let (fresh, settings) = opened(&state, &conn, need_for(&state, &policy)).await?;
    answer(fresh.as_ref().unwrap_or(&conn), Some(settings))
}

#[utoipa::path(get, path = "/v1/connection", operation_id = "listConnections", tag = "Connections",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("connector_names" = Option<Vec<wire::ConnectorName>>, Query, style = Form, explode = false), ("customer_id" = Option<String>, Query),
           ("connector_config_id" = Option<String>, Query, pattern = "^ccfg_"), ("search_query" = Option<String>, Query),
           ("connection_ids" = Option<Vec<String>>, Query, style = Form, explode = false, description = "Only these connections"),
           ("repl_id" = Option<String>, Query, description = "Only connections assigned to this repl"),
           ("include_secrets" = Option<bool>, Query), ("refresh_policy" = Option<RefreshPolicy>, Query),
           ("expand" = Option<Vec<ExpandConnector>>, Query, style = Form, explode = false)),
    responses((status = 200, description = "A page of connections", body = wire::ConnectionPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn list_connections(
    State(state): State<AppState>,
    Headers(headers): Headers,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let include = q.boolean("include_secrets")?;
    // With secrets, tokens expiring within the margin are refreshed unless told otherwise (as get).
    let policy = q.refresh_policy("auto")?;
    let expand = !q.expand(&["connector"])?.is_empty();
    let names = connector_names(&q)?;
    let ccfg = q.one("connector_config_id").map(str::to_string);
    if ccfg.as_ref().is_some_and(|c| !c.starts_with("ccfg_")) {
        return Err(InError::issue(&["connector_config_id"], "connector_config_id must start with ccfg_"));
    }
    let customer = match viewer.customer() {
        Some(c) => Some(c.to_string()),
        None => q.one("customer_id").map(str::to_string),
    };
    let mut ids = None;
    if q.one("connection_ids").is_some() {
        // Ids as given: one that names no connection matches nothing.
        ids = Some(q.list("connection_ids"));
    }
    if let Some(repl) = q.one("repl_id") {
        let assigned = v2::assigned_to(&state, &org, repl).await?;
        ids = Some(match ids {
            Some(given) => given.into_iter().filter(|id| assigned.contains(id)).collect(),
            None => assigned,
        });
    }
    let filter = InFilter {
        connector_names: names,
        customer_id: customer,
        connector_config_id: ccfg,
        search: q.one("search_query").map(str::to_string),
        ids,
    };
    let (rows, total) = state.store.in_list_connections(&org, &filter, limit, offset).await?;
    let need = need_for(&state, &policy);
    let items: Vec<Result<Vec<u8>, InError>> = futures_util::stream::iter(0..rows.len())
        .map(|i| {
            let (state, rows) = (state.clone(), std::sync::Arc::clone(&rows));
            async move {
                let c = &rows[i];
                if !include {
                    return Ok(connection_body(c, None, expand));
                }
                let (fresh, s) = opened(&state, c, need).await?;
                Ok(connection_body(fresh.as_ref().unwrap_or(c), Some(s), expand))
            }
        })
        .buffered(8)
        .collect()
        .await;
    let items = items.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(crate::face::json_bytes_response(StatusCode::OK, connection_page_bytes(&items, total, limit, offset)))
}

/// Who and what a new connection is for.
pub(super) struct NewConnection {
    pub org: String,
    pub connector_config_id: String,
    pub customer: String,
    pub connector_name: String,
    pub display_name: Option<String>,
    pub metadata: Option<Value>,
}

/// Stores a new connection (its settings sealed), with its `connect.connection-connected`
/// event and the event's webhook delivery, in one write.
pub(super) async fn insert_connection(
    state: &AppState,
    new: NewConnection,
    status: String,
    message: Option<String>,
    settings: &Value,
) -> Result<(InConnection, OpenedSettings), InError> {
    let now = state.clock.now_ms();
    let NewConnection { org, connector_config_id, customer, connector_name, display_name, metadata } = new;
    let id = catalog::new_id(&state.entropy, state.clock.now_ms(), "conn", &connector_name);
    let (expires_at, refreshable) = refresh::expiry_of(settings);
    let aad = Record::aad(&org, kind::IN_CONNECTION, &id);
    let opened = OpenedSettings::of(settings)?;
    let conn = InConnection {
        tenant: org.clone(),
        id: id.clone(),
        connector_name,
        connector_config_id,
        customer_id: Some(customer.clone()),
        integration_id: None,
        display_name,
        disabled: false,
        status: Some(status),
        status_message: message,
        metadata,
        settings: state.vault.seal(opened.as_str().as_bytes(), &aad),
        expires_at,
        refreshable,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let ev = event(
        &state.entropy,
        &org,
        "connect.connection-connected",
        json!({"connection_id": id, "customer_id": customer}),
        Some(customer),
        now,
    );
    let jobs = emit_jobs(state, &ev).await?;
    state.store.in_put_connection(&conn, Some(&ev), &jobs).await?;
    Ok((conn, opened))
}

#[utoipa::path(post, path = "/v1/connection", operation_id = "createConnection", tag = "Connections",
    request_body = wire::CreateConnection,
    responses((status = 200, description = "The imported connection, with settings", body = wire::Connection), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn create_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org_only()?.to_string();
    let body = body_object(body)?;
    let mut problems = Vec::new();
    let text = |k: &str, problems: &mut Vec<Issue>| match body.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => {
            problems.push(Issue { path: vec![k.into()], message: format!("{k} is required and must be a string") });
            None
        }
    };
    let ccfg_id = text("connector_config_id", &mut problems);
    let customer = text("customer_id", &mut problems);
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(Value::Object(m.clone())),
        Some(_) => {
            problems.push(Issue { path: vec!["metadata".into()], message: "metadata must be an object".into() });
            None
        }
    };
    let check_first = match body.get("check_connection") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(Issue {
                path: vec!["check_connection".into()],
                message: "check_connection must be a boolean".into(),
            });
            false
        }
    };
    let display_name = body.get("display_name").and_then(Value::as_str).map(str::to_string);
    // Stored as text: no NUL (PostgreSQL text cannot hold one; refused on both backends).
    for (k, v) in [("customer_id", &customer), ("display_name", &display_name)] {
        if v.as_deref().is_some_and(|v| v.contains('\0')) {
            problems.push(Issue { path: vec![k.into()], message: format!("{k} must not contain a NUL character") });
        }
    }
    let data = body.get("data").and_then(Value::as_object).cloned();
    let name = data.as_ref().and_then(|d| d.get("connector_name")).and_then(Value::as_str).map(str::to_string);
    if name.is_none() {
        problems.push(Issue {
            path: vec!["data".into(), "connector_name".into()],
            message: "data.connector_name is required".into(),
        });
    }
    if let Some(c) = &ccfg_id
        && !c.starts_with("ccfg_")
    {
        problems.push(Issue {
            path: vec!["connector_config_id".into()],
            message: "connector_config_id must start with ccfg_".into(),
        });
    }
    if !problems.is_empty() {
        return Err(InError::invalid(problems));
    }
    let (ccfg_id, customer, name) =
        (ccfg_id.unwrap_or_default(), customer.unwrap_or_default(), name.unwrap_or_default());
    let ccfg = state
        .store
        .get_record(&org, kind::IN_CCFG, &ccfg_id)
        .await?
        .ok_or_else(|| InError::not_found(format!("Connector config with ID \"{ccfg_id}\" not found")))?;
    let c = connector(&name)
        .ok_or_else(|| InError::issue(&["data", "connector_name"], format!("{name:?} is not a known connector")))?;
    let name = c.name.clone();
    let expected = ccfg.data["connectorName"].as_str().unwrap_or_default();
    if expected != name {
        return Err(InError::bad_request(format!("Connector name mismatch: expected {expected}, got {name}")));
    }
    let mut settings = data.as_ref().and_then(|d| d.get("settings")).cloned().unwrap_or(json!({}));
    let issues = c.validate_settings(&settings, &["data", "settings"]);
    if !issues.is_empty() {
        return Err(InError::invalid(issues));
    }
    let now = state.clock.now_ms();
    let creds = &settings["oauth"]["credentials"];
    if creds.get("expires_at").is_none()
        && let Some(secs) = creds.get("expires_in").and_then(Value::as_i64)
    {
        settings["oauth"]["credentials"]["expires_at"] = json!(timestamp(now + secs * 1000));
    }
    catalog::mirror_credentials(&mut settings);
    let (status, message, settings) = if check_first {
        let cfg = refresh::load_config(&state, &org, &ccfg_id).await?;
        let o = refresh::check(&state, c, cfg.as_ref(), &settings, Need::ExpiringWithin(0), None).await;
        (o.status, o.status_message, o.settings.unwrap_or(settings))
    } else {
        ("unknown".to_string(), Some("Connection was imported without checking its status".to_string()), settings)
    };
    let new =
        NewConnection { org, connector_config_id: ccfg_id, customer, connector_name: name, display_name, metadata };
    let (conn, opened) = insert_connection(&state, new, status, message, &settings).await?;
    Ok(crate::face::json_bytes_response(StatusCode::OK, connection_body(&conn, Some(opened), false)))
}

#[utoipa::path(delete, path = "/v1/connection/{id}", operation_id = "deleteConnection", tag = "Connections",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_")), responses((status = 200, description = "Deleted", body = wire::Deleted), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn delete_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    let now = state.clock.now_ms();
    let ev = event(
        &state.entropy,
        &conn.tenant,
        "connect.connection-deleted",
        json!({"connection_id": conn.id, "customer_id": conn.customer_id}),
        conn.customer_id.clone(),
        now,
    );
    let jobs = emit_jobs(&state, &ev).await?;
    if !state.store.in_delete_connection(&conn.tenant, &conn.id, viewer.customer(), &ev, &jobs).await? {
        return Err(InError::not_found("Connection not found"));
    }
    // Its repl assignments go with it (a later failure leaves only an unreachable record).
    state.store.delete_record(&conn.tenant, kind::IN_ASSIGNMENT, &conn.id).await?;
    typed(wire::Deleted { id: conn.id.clone() })
}

#[utoipa::path(post, path = "/v1/connection/{id}/check", operation_id = "checkConnection", tag = "Connections",
    params(("id" = String, Path, pattern = "^conn_.+", description = "The id of the connection, starts with conn_")), responses((status = 200, description = "The connection's status", body = wire::CheckResult), (status = 404, description = "Not found", body = wire::Error), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn check_connection(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let conn = visible(&state, &viewer, &id).await?;
    let (fresh, _) = refresh::refresh(&state, &conn, Need::Force).await?;
    let conn = fresh.as_ref().unwrap_or(&conn);
    typed(wire::CheckResult {
        id: conn.id.clone(),
        status: conn.status.clone(),
        status_message: conn.status_message.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_bytes_are_the_documented_object_byte_for_byte() {
        let mut c = InConnection {
            tenant: "org_1".into(),
            id: "conn_github_01JDEMO000000000000000000".into(),
            connector_name: "github".into(),
            connector_config_id: "ccfg_github_1".into(),
            customer_id: Some("cus \"1\" \\ \u{1} é".into()),
            integration_id: None,
            display_name: None,
            disabled: false,
            status: Some("healthy".into()),
            status_message: None,
            metadata: Some(json!({"b": [1, 2.5, null], "a": {"x": "\n"}})),
            settings: patchbay_core::Sealed { key_id: "k".into(), blob: vec![1] },
            expires_at: None,
            refreshable: false,
            version: 1,
            created_at: 1_767_225_600_001,
            updated_at: -1,
        };
        assert_eq!(connection_bytes(&c, None), serde_json::to_vec(&connection_json(&c, None, false)).unwrap());
        c.integration_id = Some("int_1".into());
        c.display_name = Some("octocat".into());
        c.disabled = true;
        c.status = None;
        c.status_message = Some("token\trevoked".into());
        c.metadata = None;
        c.updated_at = 253_402_300_800_000; // year 10000: the long form
        assert_eq!(connection_bytes(&c, None), serde_json::to_vec(&connection_json(&c, None, false)).unwrap());
        // Settings are written as sealed; sonic-rs wrote them so before.
        let s = OpenedSettings::of(&json!({"oauth": {"credentials": {"access_token": "at\"1"}}, "n": 1})).unwrap();
        assert_eq!(
            connection_bytes(&c, Some(&s)),
            sonic_rs::to_vec(&connection_json(&c, Some(s.clone()), false)).unwrap()
        );
        // A page around written items is the documented page.
        for (n, total, offset) in [(0, 0, 0), (2, 2, 0), (2, 5, 1), (1, 3, 2)] {
            let items: Vec<Vec<u8>> = (0..n).map(|_| connection_body(&c, None, false)).collect();
            let documented = wire::ConnectionPage::new(
                (0..n).map(|_| connection_json(&c, None, false)).collect(),
                total,
                50,
                offset,
            );
            assert_eq!(connection_page_bytes(&items, total, 50, offset), serde_json::to_vec(&documented).unwrap());
        }
        let expanded = connection_body(&c, None, true);
        assert_eq!(expanded, serde_json::to_vec(&connection_json(&c, None, true)).unwrap());
        let text = String::from_utf8(connection_bytes(&c, Some(&s))).unwrap();
        assert!(text.ends_with(r#","settings":{"n":1,"oauth":{"credentials":{"access_token":"at\"1"}}}}"#), "{text}");
    }
}
