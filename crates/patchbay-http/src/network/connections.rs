//! Connections, from both sides: lists and gets (client and partner), the signing
//! payload, Connect to Partner (signature, nonce, proof, the partner initialisation job)
//! and updates. The request-body helpers the writes share live here too.

use super::*;

pub(super) async fn list(
    state: AppState,
    headers: HeaderMap,
    enterprise_id: String,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
    side: NetSide,
) -> NetResult {
    let caller = authorize(&state, &headers, &enterprise_id, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let mut filter = NetConnectionFilter {
        active: params.boolean("active")?,
        ids: params.uuids("connectionIds")?,
        partner_ids: params.uuids("partnerIds")?,
        ..Default::default()
    };
    match side {
        NetSide::Client => filter.names = params.strings("names")?,
        NetSide::Partner => {
            filter.client_ids = params.uuids("clientIds")?;
            filter.partners_client_ids = params.strings("partnersClientIds")?;
            filter.partners_connection_ids = params.strings("partnersConnectionIds")?;
        }
    }
    // A value with a NUL character matches nothing stored (and PostgreSQL cannot
    // compare text with one): it is dropped, and a filter left with no value
    // matches nothing at all.
    let mut matches_nothing = false;
    for values in [&mut filter.names, &mut filter.partners_client_ids, &mut filter.partners_connection_ids] {
        let given = !values.is_empty();
        values.retain(|v| !v.contains('\0'));
        matches_nothing |= given && values.is_empty();
    }
    if matches_nothing {
        return Ok(crate::face::json_bytes_response(StatusCode::OK, many_out(&[])));
    }
    let rows = state.store.net_list_connections(side, &caller.enterprise().id, &filter, limit, offset).await?;
    Ok(crate::face::json_bytes_response(StatusCode::OK, many_out(&rows)))
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/connections", operation_id = "v1PartnerConnectionsGetRoute", tag = "Partner Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$", description = "Zero-based page number"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$", description = "Page size (default 100, maximum 1000)"), ("active" = Option<bool>, Query), ("clientIds" = Option<Vec<uuid::Uuid>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query),
           ("partnersClientIds" = Option<Vec<wire::NonEmptyString>>, Query), ("partnersConnectionIds" = Option<Vec<wire::NonEmptyString>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query)),
    responses((status = 200, description = "The partner's connections", body = wire::ConnectionsEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_partner_connections(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections", operation_id = "v1ClientConnectionsGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$", description = "Zero-based page number"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$", description = "Page size (default 100, maximum 1000)"), ("active" = Option<bool>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("names" = Option<Vec<wire::NonEmptyString>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query)),
    responses((status = 200, description = "The client's connections", body = wire::ConnectionsEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_client_connections(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Client).await
}

pub(super) async fn get_one(state: AppState, headers: HeaderMap, ent: String, id: String, side: NetSide) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let id = connection_id(&id)?;
    let conn = state
        .store
        .net_get_connection(side, &caller.enterprise().id, &id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Connection {id} not found.")))?;
    connection_out(&conn)
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/connections/{connectionId}", operation_id = "v1PartnerConnectionGetRoute", tag = "Partner Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("connectionId" = uuid::Uuid, Path, description = "The connection id")),
    responses((status = 200, description = "The connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn get_partner_connection(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}", operation_id = "v1ClientConnectionGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("connectionId" = uuid::Uuid, Path, description = "The connection id")),
    responses((status = 200, description = "The connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn get_client_connection(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, NetSide::Client).await
}

pub(super) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, NetError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(NetError::bad_request("The request body must be a JSON object.")),
    }
}

pub(super) fn required_str(body: &Map<String, Value>, key: &str) -> Result<String, NetError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(NetError::bad_request(format!("{key} must not be empty."))),
        Some(_) => Err(NetError::bad_request(format!("{key} must be a string."))),
        None => Err(NetError::bad_request(format!("{key} is required."))),
    }
}

/// A required string that is stored as text: no NUL character (PostgreSQL
/// text cannot hold one; refused on every backend alike).
pub(super) fn stored_str(body: &Map<String, Value>, key: &str) -> Result<String, NetError> {
    let v = required_str(body, key)?;
    no_nul(key, &v)?;
    Ok(v)
}

pub(super) fn no_nul(key: &str, v: &str) -> Result<(), NetError> {
    match v.contains('\0') {
        true => Err(NetError::bad_request(format!("{key} must not contain a NUL character."))),
        false => Ok(()),
    }
}

pub(super) fn required_uuid(body: &Map<String, Value>, key: &str) -> Result<String, NetError> {
    let v = required_str(body, key)?;
    if is_uuid(&v) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(NetError::bad_request(format!("Invalid UUID format for {key}.")))
    }
}

pub(super) fn connection_key(body: &Map<String, Value>) -> Result<Map<String, Value>, NetError> {
    match body.get("connectionKey") {
        Some(Value::Object(k)) => {
            check_connection_key(k).map_err(NetError::bad_request)?;
            Ok(k.clone())
        }
        Some(_) => Err(NetError::bad_request("connectionKey must be an object.")),
        None => Err(NetError::bad_request("connectionKey is required.")),
    }
}

/// The fields shared by the signing request and Connect to Partner.
pub(super) struct ConnectFields {
    partner_id: String,
    name: String,
    nonce: String,
    key: Map<String, Value>,
}

pub(super) fn connect_fields(body: &Map<String, Value>) -> Result<ConnectFields, NetError> {
    Ok(ConnectFields {
        partner_id: required_uuid(body, "partnerId")?,
        name: stored_str(body, "name")?,
        key: connection_key(body)?,
        nonce: stored_str(body, "nonce")?,
    })
}

/// Partner exists (404), then active, same schema and same trust org (422).
pub(super) async fn usable_partner(state: &AppState, caller: &Caller, f: &ConnectFields) -> Result<Record, NetError> {
    let partner = state
        .store
        .find_record(kind::NET_PARTNER, &f.partner_id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Partner {} not found.", f.partner_id)))?;
    if partner.data["active"].as_bool() == Some(false) {
        return Err(NetError::unprocessable("The partner is not active."));
    }
    let schema = f.key["schema"].as_str().unwrap_or_default();
    let wanted = partner.data["connectionKeySchema"].as_str().unwrap_or_default();
    if schema != wanted {
        return Err(NetError::unprocessable(format!(
            "connectionKey.schema {schema:?} does not match the partner's connectionKeySchema {wanted:?}."
        )));
    }
    if caller.trust_org().unwrap_or("BitGo Trust") != partner_trust_org(&partner) {
        return Err(NetError::unprocessable("The client and the partner belong to different trust orgs."));
    }
    Ok(partner)
}

/// The enterprise's OES client (the first by creation when several exist).
pub(super) async fn client_of(state: &AppState, enterprise: &str) -> Result<Option<Record>, NetError> {
    let mut clients = state.store.list_records(enterprise, kind::NET_CLIENT).await?;
    clients.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(clients.into_iter().next())
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/signing", operation_id = "V1ClientConnectionsSigningPostRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body = wire::SigningRequest,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn signing(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    method: axum::http::Method,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, method == axum::http::Method::POST).await?;
    let body = json_object(&body_bytes(body)?)?;
    let f = connect_fields(&body)?;
    usable_partner(&state, &caller, &f).await?;
    let payload = signing_payload(&f.partner_id, &f.name, &f.nonce, &f.key)
        .ok_or_else(|| NetError::bad_request("connectionKey is incomplete."))?;
    typed(wire::SigningPayload { payload })
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections", operation_id = "v1ClientConnectionsPostRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body = wire::ConnectRequest,
    responses((status = 200, description = "The new connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn connect(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    // 1. Body shape.
    let body = json_object(&body_bytes(body)?)?;
    let f = connect_fields(&body)?;
    let payload = required_str(&body, "payload")?;
    let signature = required_str(&body, "signature")?;
    let client = client_of(&state, &caller.enterprise().id)
        .await?
        .ok_or_else(|| NetError::not_found("The enterprise is not onboarded as an OES client."))?;
    // 2-3. Partner exists; active, schema, trust org.
    let partner = usable_partner(&state, &caller, &f).await?;
    // 4. The signed payload carries the same request data.
    let signed = match serde_json::from_str::<Value>(&payload) {
        Ok(Value::Object(m)) => m,
        _ => return Err(NetError::bad_request("Invalid payload format: payload must be a JSON object string.")),
    };
    for (key, want) in [("partnerId", &f.partner_id), ("name", &f.name), ("nonce", &f.nonce)] {
        let got = signed
            .get(key)
            .and_then(Value::as_str)
            .map(|s| if key == "partnerId" { s.to_ascii_lowercase() } else { s.to_string() });
        if got.as_deref() != Some(want.as_str()) {
            return Err(NetError::bad_request(format!("Payload does not match request data: {key}.")));
        }
    }
    let signed_key = signed.get("connectionKey").and_then(Value::as_object);
    let key_matches = match signed_key {
        None => false,
        // Partners with a public key get values encrypted by BitGo Express after
        // signing, so only the schema can be compared.
        Some(k) if !partner.data["publicKey"].is_null() => k.get("schema") == f.key.get("schema"),
        Some(k) => rules::canonical_key(k).is_some() && rules::canonical_key(k) == rules::canonical_key(&f.key),
    };
    if !key_matches {
        return Err(NetError::bad_request("Payload does not match request data: connectionKey."));
    }
    // 5. The signature, by the client's registered key.
    let public_key = client.data["publicKey"].as_str().unwrap_or_default();
    if let Err(e) = rules::verify_message(payload.as_bytes(), &signature, public_key) {
        tracing::info!(enterprise = %caller.enterprise().id, user = %caller.user_id(), reason = %e, "connection signature rejected");
        return Err(NetError::unauthorized("Payload/Signature are not valid."));
    }
    // 6-7. Nonce unused by this client; persist (and enqueue the partner's initialisation).
    let now = state.clock.now_ms();
    let id = state.entropy.uuid_string();
    let schema = f.key["schema"].as_str().unwrap_or_default().to_string();
    let key_plain: Value =
        serde_json::from_str(&rules::canonical_key(&f.key).unwrap_or_default()).unwrap_or(Value::Null);
    let aad = Record::aad(&caller.enterprise().id, kind::NET_CONNECTION, &id);
    let conn = NetConnection {
        tenant: caller.enterprise().id.clone(),
        id: id.clone(),
        partner_tenant: partner.tenant.clone(),
        client_id: client.id.clone(),
        partner_id: partner.id.clone(),
        name: f.name,
        active: true,
        nonce: f.nonce,
        network_account_id: state.entropy.uuid_string(),
        proof: rules::proof(&payload, &signature),
        partners_connection_id: None,
        partners_client_id: None,
        initialized: false,
        key_schema: schema,
        key: state.vault.seal(key_plain.to_string().as_bytes(), &aad),
        created_at: now,
        updated_at: now,
    };
    let jobs: Vec<NewJob> = if partner.data["callbackUrl"].is_string() {
        vec![NewJob::now(&conn.tenant, INITIALIZE_JOB, json!({"connectionId": id}), initialize::MAX_ATTEMPTS, now)]
    } else {
        Vec::new()
    };
    match state.store.net_insert_connection(&conn, &jobs).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(NetError::bad_request("The nonce has already been used.")),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(connection = %id, enterprise = %conn.tenant, partner = %conn.partner_id, "connection created");
    connection_out(&conn)
}

#[utoipa::path(put, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}", operation_id = "v1ClientConnectionPutRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("connectionId" = uuid::Uuid, Path, description = "The connection id")), request_body = wire::UpdateConnectionRequest,
    responses((status = 200, description = "The updated connection", body = wire::ConnectionEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn update_connection(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    let id = connection_id(&id)?;
    // The body is optional (both fields are): none at all is `{}`.
    let bytes = body_bytes(body)?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) { Map::new() } else { json_object(&bytes)? };
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err(NetError::bad_request("name must be a non-empty string.")),
    };
    if let Some(name) = &name {
        no_nul("name", name)?;
    }
    let active = match body.get("active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(NetError::bad_request("active must be a boolean.")),
    };
    let conn = state
        .store
        .net_update_connection(&caller.enterprise().id, &id, name.as_deref(), active, state.clock.now_ms())
        .await?
        .ok_or_else(|| NetError::not_found(format!("Connection {id} not found.")))?;
    connection_out(&conn)
}

/// Documentation of the GET variant of the signing route (same handler as POST).
#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/signing",
    operation_id = "V1ClientConnectionsSigningGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::SigningRequest,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload),
              (status = 400, description = "Invalid request", body = wire::ErrorPayload),
              (status = 401, description = "Not authorised", body = wire::ErrorPayload),
              (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload),
              (status = 404, description = "Not found", body = wire::ErrorPayload),
              (status = 422, description = "Unprocessable", body = wire::ErrorPayload),
              (status = 429, description = "Rate limited", body = wire::ErrorPayload),
              (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
#[allow(dead_code)]
pub(super) fn signing_get_doc() {}
