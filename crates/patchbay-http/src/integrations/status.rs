//! OpenInt's small v1 operations beside the resources: health (and its echo), the
//! organisation's connector status, the AI message template, receiving a connector's
//! webhook, and events by id or created by the caller.
//!
//! Routes:
//! - `GET|POST /v1/health` · `GET /v1/connector-status` · `GET /v1/ai/message_template`
//! - `POST /v1/webhook/{connector_name}`
//! - `GET /v1/event/{id}` · `POST /v1/event`

use super::*;

/// The event names `POST /event` accepts (OpenInt's `createEvent` body union).
pub const EVENT_NAMES: &[&str] = &[
    "debug.debug",
    "webhook.received",
    "db.user-created",
    "db.user-deleted",
    "db.connection-created",
    "db.connection-deleted",
    "user.signin",
    "user.signout",
    "connect.session-started",
    "connect.session-cancelled",
    "connect.session-succeeded",
    "connect.session-errored",
    "connect.connection-connected",
    "api.token-copied",
    "api.graphql-request",
    "api.rest-request",
    "pageview",
];

#[utoipa::path(get, path = "/v1/health", operation_id = "health", tag = "Internal",
    responses((status = 200, description = "The server answers", body = wire::Health), (status = 500, description = "Internal error", body = wire::Error)))]
pub(super) async fn health(State(state): State<AppState>) -> InResult {
    state.store.ping().await?;
    typed(wire::Health { ok: true })
}

#[utoipa::path(post, path = "/v1/health", operation_id = "healthEcho", tag = "Internal",
    request_body(content = Object, description = "Any JSON object (required)"),
    responses((status = 200, description = "The body, echoed", body = Object), (status = 400, description = "Invalid input", body = wire::Error), (status = 500, description = "Internal error", body = wire::Error)))]
pub(super) async fn health_echo(body: Result<Bytes, BytesRejection>) -> InResult {
    let bytes = body_bytes(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InError::bad_request("A JSON object body is required"));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => typed(Value::Object(m)),
        Ok(_) => Err(InError::issue(&[], "The body must be a JSON object")),
        Err(_) => Err(InError::bad_request("Failed to parse request body")),
    }
}

#[utoipa::path(get, path = "/v1/connector-status", operation_id = "connectorStatus", tag = "Connectors",
    responses((status = 200, description = "Each connector of the catalogue for the caller's organisation", body = wire::ConnectorStatus), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)),
    security(("bearer" = [])))]
pub(super) async fn connector_status(State(state): State<AppState>, Headers(headers): Headers) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let configs = state.store.list_records(&org, kind::IN_CCFG).await?;
    let mut list = Vec::new();
    for c in catalog::catalogue() {
        let filter = InFilter {
            connector_names: vec![c.name.clone()],
            customer_id: viewer.customer().map(str::to_string),
            ..Default::default()
        };
        let (page, total) = state.store.in_list_connections(&org, &filter, 100, 0).await?;
        let healthy = page.iter().any(|x| !x.disabled && x.status.as_deref().is_none_or(|s| s == "healthy"));
        let has_config = configs.iter().any(|r| r.data["connectorName"].as_str() == Some(c.name.as_str()));
        list.push(wire::ConnectorStatusItem {
            name: c.name.clone(),
            has_connection_for_org: total > 0,
            is_healthy_for_org: healthy,
            has_default_credentials: has_config,
            complete: total > 0 && healthy,
        });
    }
    let count = |f: fn(&wire::ConnectorStatusItem) -> bool| list.iter().filter(|i| f(i)).count() as i64;
    let status = wire::ConnectorStatus {
        num_total_connectors: list.len() as i64,
        num_with_connection_for_org: count(|i| i.has_connection_for_org),
        num_healthy_for_org: count(|i| i.is_healthy_for_org),
        num_with_default_credentials: count(|i| i.has_default_credentials),
        num_complete: count(|i| i.complete),
        list,
    };
    typed(status)
}

#[utoipa::path(get, path = "/v1/ai/message_template", operation_id = "messageTemplate", tag = "AI",
    params(("language" = Option<wire::TemplateLanguage>, Query), ("use_environment_variables" = Option<bool>, Query), ("customer_id" = String, Query, min_length = 1)),
    responses((status = 200, description = "A template that reads the customer's connections", body = wire::MessageTemplate), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 404, description = "No such customer", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)),
    security(("bearer" = [])))]
pub(super) async fn message_template(
    State(state): State<AppState>,
    Headers(headers): Headers,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let q = Query::parse(q.as_deref())?;
    let language = q.one("language").unwrap_or("javascript");
    if language != "javascript" {
        return Err(InError::issue(&["language"], "language must be javascript"));
    }
    let env = match q.one("use_environment_variables") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(InError::issue(&["use_environment_variables"], "use_environment_variables must be a boolean"));
        }
    };
    let customer = q
        .one("customer_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| InError::issue(&["customer_id"], "customer_id is required"))?;
    if viewer.customer().is_some_and(|c| c != customer) {
        return Err(InError::forbidden("A customer may only ask for its own template"));
    }
    let known = state.store.get_record(&org, kind::IN_CUSTOMER, customer).await?.is_some()
        || state
            .store
            .in_list_connections(&org, &InFilter { customer_id: Some(customer.into()), ..Default::default() }, 1, 0)
            .await?
            .1
            > 0;
    if !known {
        return Err(InError::not_found(format!("Customer {customer} not found")));
    }
    let base = crate::face::base_url(&state.config, &headers);
    let (base_expr, key_expr) = if env {
        ("process.env.OPENINT_BASE_URL".to_string(), "process.env.OPENINT_API_KEY".to_string())
    } else {
        (format!("{:?}", format!("{}/v1", base.trim_end_matches('/'))), "\"<your OpenInt API key>\"".to_string())
    };
    let customer_js = Value::String(customer.to_string());
    let template = format!(
        "// The connections of customer {customer_js}, with their credentials.\n\
         const res = await fetch(`${{{base_expr}}}/connection?customer_id=${{encodeURIComponent({customer_js})}}&include_secrets=true`, {{\n\
         \x20 headers: {{ Authorization: `Bearer ${{{key_expr}}}` }},\n\
         }});\n\
         const {{ items }} = await res.json();\n\
         for (const c of items) console.log(c.connector_name, c.settings);\n"
    );
    typed(wire::MessageTemplate { language: "javascript".into(), template })
}

#[utoipa::path(post, path = "/v1/webhook/{connector_name}", operation_id = "handleWebhook", tag = "Internal",
    params(("connector_name" = wire::ConnectorName, Path, description = "A connector of the catalogue; the body is the connector's payload, any JSON")),
    responses((status = 200, description = "Received: recorded as a `webhook.received` event", body = wire::WebhookReceived), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)),
    security(("bearer" = [])))]
pub(super) async fn handle_webhook(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    if connector(&name).is_none() {
        return Err(InError::issue(&["connector_name"], format!("Unknown connector {name:?}")));
    }
    let bytes = body_bytes(body)?;
    let payload = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice::<Value>(&bytes).map_err(|_| InError::bad_request("The body must be JSON"))?
    };
    // Headers as received, minus credentials (they never reach storage).
    let mut kept = Map::new();
    for (k, v) in headers.iter() {
        let secret = matches!(k.as_str(), "authorization" | "cookie" | "x-api-key" | "x-replit-token");
        if !secret && let Ok(v) = v.to_str() {
            kept.insert(k.as_str().to_string(), json!(v));
        }
    }
    let query: Map<String, Value> = form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let trace = catalog::ulid(&state.entropy, state.clock.now_ms());
    let data = json!({"traceId": trace, "method": "POST", "path": format!("/v1/webhook/{name}"), "query": query,
                      "headers": kept, "body": payload});
    let e = event(
        &state.entropy,
        &org,
        "webhook.received",
        data,
        viewer.customer().map(str::to_string),
        state.clock.now_ms(),
    );
    let jobs = emit_jobs(&state, &e).await?;
    state.store.in_insert_event(&e, &jobs).await?;
    typed(wire::WebhookReceived { status: "ok".into(), info: json!({"event_id": e.id, "trace_id": trace}) })
}

#[utoipa::path(get, path = "/v1/event/{id}", operation_id = "getEvent", tag = "Events",
    params(("id" = String, Path)),
    responses((status = 200, description = "The event", body = wire::Event), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 404, description = "Not found", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)),
    security(("bearer" = [])))]
pub(super) async fn get_event(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(id): Path<String>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let e = state
        .store
        .in_get_event(&org, &id, viewer.customer())
        .await?
        .ok_or_else(|| InError::not_found(format!("Event {id} not found")))?;
    typed(event_json(&e))
}

#[utoipa::path(post, path = "/v1/event", operation_id = "createEvent", tag = "Events",
    request_body(content = wire::CreateEvent),
    responses((status = 200, description = "The recorded event", body = wire::Event), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)),
    security(("bearer" = [])))]
pub(super) async fn create_event(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org()?.to_string();
    let body = body_object(body)?;
    let Some(Value::Object(ev)) = body.get("event") else {
        return Err(InError::issue(&["event"], "event is required and must be an object"));
    };
    let name = match ev.get("name") {
        Some(Value::String(n)) if EVENT_NAMES.contains(&n.as_str()) => n.clone(),
        _ => {
            return Err(InError::issue(
                &["event", "name"],
                format!("event.name must be one of {}", EVENT_NAMES.join(", ")),
            ));
        }
    };
    let data = match ev.get("data") {
        Some(Value::Object(d)) => d.clone(),
        _ => return Err(InError::issue(&["event", "data"], "event.data is required and must be an object")),
    };
    let e = event(
        &state.entropy,
        &org,
        &name,
        Value::Object(data),
        viewer.customer().map(str::to_string),
        state.clock.now_ms(),
    );
    let jobs = emit_jobs(&state, &e).await?;
    state.store.in_insert_event(&e, &jobs).await?;
    typed(event_json(&e))
}
