//! Disputes: a client disputes a settlement it is part of (within the partner's
//! dispute window), updates or retracts the dispute, and closes it; both sides
//! list them. One dispute per settlement and connection.
//!
//! Routes (under `/api/network/v1/enterprises/{enterpriseId}`):
//! - `POST /clients/settlements/{settlementId}/disputes`
//! - `PUT /clients/settlements/disputes/{disputeId}` · `POST /clients/settlements/disputes/{disputeId}/close`
//! - `GET /clients/settlement/disputes` · `GET /partners/settlement/disputes`

use patchbay_core::ledger::{self, DisputeError, DisputeState};
use patchbay_store::{Committed, LedgerCommit, LedgerFilter, LedgerRow};

use super::book::{self, MAX_TRIES, kinds};
use super::settlement_views::visible_settlement;
use super::*;

const OPEN: &str = "open";
const CLOSED: &str = "closed";

fn state_of(row: &LedgerRow) -> DisputeState {
    if row.status == CLOSED { DisputeState::Closed } else { DisputeState::Open { retracted: row.flag } }
}

/// `V1DisputeOutput` with its `disputeClosure` (`DisputeClosureOutput`) once closed.
fn with_closure(row: &LedgerRow) -> Value {
    let mut d = row.data["dispute"].clone();
    let c = &row.data["closure"];
    if c.is_object() {
        d["disputeClosure"] = json!({
            "id": c["id"], "closedBy": c["closedBy"], "userId": c["userId"], "notes": c["notes"],
            "adjustedSettlementTransfers": [], "createdAt": c["createdAt"], "status": c["status"],
            "adjustedTransfers": c["adjustedTransfers"],
        });
    }
    d
}

fn dispute_error(e: DisputeError) -> NetError {
    match e {
        DisputeError::Closed => NetError::new(StatusCode::CONFLICT, "The dispute is closed."),
        DisputeError::NotDisputable(why) => {
            NetError::unprocessable(format!("The settlement cannot be disputed: {why}."))
        }
    }
}

fn expected(body: &Map<String, Value>, required: bool) -> Result<Option<Value>, NetError> {
    match body.get("expectedTransfers") {
        Some(Value::Object(m)) => {
            ledger::expected_transfers(m).map_err(NetError::bad_request)?;
            Ok(Some(Value::Object(m.clone())))
        }
        None | Some(Value::Null) if !required => Ok(None),
        _ => Err(NetError::bad_request("expectedTransfers must be an object of currency to signed base-unit amount.")),
    }
}

/// Commits one dispute step (and the settlement's `disputed` flag), answering `answer` when done.
async fn commit_step(
    state: &AppState,
    rows: Vec<(LedgerRow, Option<i64>)>,
    nonce: (String, String),
    attempt: u32,
) -> Result<Option<()>, NetError> {
    let commit = LedgerCommit {
        balances: Vec::new(),
        rows,
        nonces: vec![nonce],
        jobs: Vec::new(),
        now_ms: state.clock.now_ms(),
    };
    match book::commit(state, &commit, attempt).await? {
        Committed::Done => Ok(Some(())),
        Committed::Stale => Ok(None),
        Committed::NonceUsed => Err(NetError::bad_request("The nonce has already been used.")),
        Committed::Duplicate => Err(NetError::new(
            StatusCode::CONFLICT,
            "A dispute of this settlement under this connection already exists.",
        )),
    }
}

pub(super) async fn create(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    settlement_id: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let enterprise = caller.enterprise().id.clone();
    let body = json_object(&body_bytes(body)?)?;
    let conn_id = required_uuid(&body, "connectionId")?;
    // `reason` may be empty here (the spec gives it no minimum length): as if absent.
    let reason = match body.get("reason") {
        Some(Value::String(r)) if r.is_empty() => None,
        _ => book::optional_str(&body, "reason")?,
    };
    let expected = expected(&body, true)?.expect("required");
    let nonce = stored_str(&body, "nonce")?;
    let settlement = visible_settlement(&state, &enterprise, &settlement_id, NetSide::Client).await?;
    let conn = state
        .store
        .net_get_connection(NetSide::Client, &enterprise, &conn_id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Connection {conn_id} not found.")))?;
    if !settlement.parties.contains(&conn.id) {
        return Err(NetError::unprocessable("The connection is not part of the settlement."));
    }
    book::verify_signed(
        &state,
        &caller,
        &body,
        &["connectionId", "expectedTransfers", "nonce"],
        &["reason"],
        &[("settlementId", &settlement.id)],
    )
    .await?;
    let partner = book::partner_of(&state, &conn).await?;
    // Whole minutes (a fractional window rounds up).
    let window = partner.data["clientDisputeWindowMinutes"].as_f64().map(|m| m.ceil() as i64);
    let id = state.entropy.uuid_string();
    for attempt in 0..MAX_TRIES {
        let current = state
            .store
            .net_ledger_get(kinds::SETTLEMENT, &settlement.id)
            .await?
            .ok_or_else(|| NetError::not_found(format!("Settlement {} not found.", settlement.id)))?;
        let now = state.clock.now_ms();
        let finalized = current.data["settlement"]["finalizedAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis());
        ledger::disputable(&current.status, finalized, window, now).map_err(dispute_error)?;
        let mut dispute = json!({
            "id": id, "createdAt": timestamp(now), "updatedAt": timestamp(now), "connectionId": conn.id,
            "disputedSettlementId": current.id, "userId": caller.user_id(), "expectedTransfers": expected,
            "retracted": false,
        });
        if let Some(r) = &reason {
            dispute["reason"] = json!(r);
        }
        let row = LedgerRow {
            kind: kinds::DISPUTE.into(),
            id: id.clone(),
            client_tenant: Some(enterprise.clone()),
            partner_tenant: current.partner_tenant.clone(),
            partner_id: current.partner_id.clone(),
            client_id: Some(conn.client_id.clone()),
            connection_id: Some(conn.id.clone()),
            parent_id: Some(current.id.clone()),
            subtype: None,
            status: OPEN.into(),
            currency: None,
            external_id: None,
            external_key: Some(format!("{}|{}", current.id, conn.id)),
            parties: Vec::new(),
            flag: false,
            version: 1,
            data: json!({"dispute": dispute, "closure": Value::Null}),
            created_at: now,
            updated_at: now,
        };
        let mut flagged = current.clone();
        flagged.flag = true;
        flagged.updated_at = now;
        flagged.data["settlement"]["disputed"] = json!(true);
        flagged.data["settlement"]["updatedAt"] = json!(timestamp(now));
        let rows = vec![(row.clone(), None), (flagged, Some(current.version))];
        if commit_step(&state, rows, (format!("client:{enterprise}"), nonce.clone()), attempt).await?.is_some() {
            tracing::info!(id = %id, settlement = %current.id, "settlement disputed");
            return book::json_status(StatusCode::OK, &json!({"dispute": row.data["dispute"]}));
        }
    }
    Err(book::too_busy())
}

async fn own_dispute(state: &AppState, enterprise: &str, id: &str) -> Result<LedgerRow, NetError> {
    if !is_uuid(id) {
        return Err(NetError::bad_request(format!("Invalid UUID format for disputeId: {id:?}.")));
    }
    let id = id.to_ascii_lowercase();
    state
        .store
        .net_ledger_get(kinds::DISPUTE, &id)
        .await?
        .filter(|r| r.client_tenant.as_deref() == Some(enterprise))
        .ok_or_else(|| NetError::not_found(format!("Dispute {id} not found.")))
}

pub(super) async fn update(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    dispute_id: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let enterprise = caller.enterprise().id.clone();
    let body = json_object(&body_bytes(body)?)?;
    let conn_id = required_uuid(&body, "connectionId")?;
    let retracted = match body.get("retracted") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(NetError::bad_request("retracted is required and must be a boolean.")),
    };
    let reason = book::optional_str(&body, "reason")?;
    let expected = expected(&body, false)?;
    let nonce = stored_str(&body, "nonce")?;
    let first = own_dispute(&state, &enterprise, &dispute_id).await?;
    if first.connection_id.as_deref() != Some(conn_id.as_str()) {
        return Err(NetError::unprocessable("connectionId is not the connection the dispute was created under."));
    }
    book::verify_signed(
        &state,
        &caller,
        &body,
        &["connectionId", "retracted", "nonce"],
        &["reason", "expectedTransfers"],
        &[("disputeId", &first.id)],
    )
    .await?;
    for attempt in 0..MAX_TRIES {
        let row = own_dispute(&state, &enterprise, &first.id).await?;
        let next_state = ledger::dispute_update(state_of(&row), Some(retracted)).map_err(dispute_error)?;
        let now = state.clock.now_ms();
        let mut next = row.clone();
        next.updated_at = now;
        next.flag = matches!(next_state, DisputeState::Open { retracted: true });
        let d = &mut next.data["dispute"];
        d["updatedAt"] = json!(timestamp(now));
        d["retracted"] = json!(retracted);
        if let Some(e) = &expected {
            d["expectedTransfers"] = e.clone();
        }
        if retracted {
            d["retractedBy"] = json!(caller.user_id());
            d["retractedAt"] = json!(timestamp(now));
            if let Some(r) = &reason {
                d["retractedReason"] = json!(r);
            }
        } else if let Some(r) = &reason {
            d["reason"] = json!(r);
        }
        let rows = vec![(next.clone(), Some(row.version))];
        if commit_step(&state, rows, (format!("client:{enterprise}"), nonce.clone()), attempt).await?.is_some() {
            return book::json_status(StatusCode::OK, &json!({"dispute": next.data["dispute"]}));
        }
    }
    Err(book::too_busy())
}

pub(super) async fn close(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    dispute_id: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let enterprise = caller.enterprise().id.clone();
    let body = json_object(&body_bytes(body)?)?;
    let notes = stored_str(&body, "notes")?;
    let nonce = stored_str(&body, "nonce")?;
    let first = own_dispute(&state, &enterprise, &dispute_id).await?;
    book::verify_signed(&state, &caller, &body, &["notes", "nonce"], &[], &[("disputeId", &first.id)]).await?;
    let payload = required_str(&body, "payload")?;
    let signature = required_str(&body, "signature")?;
    let closure_id = state.entropy.uuid_string();
    for attempt in 0..MAX_TRIES {
        let row = own_dispute(&state, &enterprise, &first.id).await?;
        ledger::dispute_close(state_of(&row)).map_err(dispute_error)?;
        let now = state.clock.now_ms();
        // A client closes a dispute it finds invalid: nothing to adjust, so nothing to review.
        let closure = json!({
            "id": closure_id, "createdAt": timestamp(now), "updatedAt": timestamp(now), "closedBy": "client",
            "userId": caller.user_id(), "notes": notes, "payload": payload, "signature": signature,
            "status": "approved", "adjustedTransfers": {},
        });
        let mut next = row.clone();
        next.status = CLOSED.into();
        next.updated_at = now;
        next.data["dispute"]["disputeClosureId"] = json!(closure_id);
        next.data["dispute"]["updatedAt"] = json!(timestamp(now));
        next.data["closure"] = closure.clone();
        let rows = vec![(next, Some(row.version))];
        if commit_step(&state, rows, (format!("client:{enterprise}"), nonce.clone()), attempt).await?.is_some() {
            tracing::info!(dispute = %row.id, "dispute closed by the client");
            return book::json_status(StatusCode::OK, &json!({"disputeClosure": closure}));
        }
    }
    Err(book::too_busy())
}

pub(super) async fn list(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
    side: NetSide,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let enterprise = caller.enterprise().id.clone();
    let mut f = LedgerFilter {
        parent_ids: params.uuids("settlementIds")?,
        connection_ids: params.uuids("connectionIds")?,
        partner_ids: params.uuids("partnerIds")?,
        ids: params.uuids("disputeIds")?,
        ..Default::default()
    };
    // Nothing here is settled in a later settlement yet: asking for one finds nothing.
    let settled_in = !params.uuids("settledInSettlementIds")?.is_empty();
    let closure_ids = params.uuids("disputeClosureIds")?;
    if let Some(closed) = params.boolean("closed")? {
        f.statuses = vec![if closed { CLOSED } else { OPEN }.into()];
    }
    let mut show_retracted = true;
    let mut settled_in_external = false;
    match side {
        NetSide::Client => f.client_tenant = Some(enterprise.clone()),
        NetSide::Partner => {
            f.partner_tenant = Some(enterprise.clone());
            f.client_ids = params.uuids("clientIds")?;
            show_retracted = params.boolean("showRetracted")?.unwrap_or(true);
            settled_in_external = !params.strings("settledInSettlementExternalIds")?.is_empty();
            let externals = params.strings("settlementExternalIds")?;
            if !externals.is_empty() {
                let mut ids = Vec::new();
                for e in externals {
                    if let Some(s) =
                        state.store.net_ledger_by_key(kinds::SETTLEMENT, &format!("{enterprise}|{e}")).await?
                    {
                        ids.push(s.id);
                    }
                }
                if ids.is_empty() {
                    return book::json_status(StatusCode::OK, &json!({"disputes": []}));
                }
                if f.parent_ids.is_empty() {
                    f.parent_ids = ids;
                } else {
                    f.parent_ids.retain(|p| ids.contains(p));
                }
            }
        }
    }
    if !show_retracted {
        f.flag = Some(false);
    }
    if settled_in || settled_in_external || (!f.parent_ids.is_empty() && f.parent_ids.iter().all(String::is_empty)) {
        return book::json_status(StatusCode::OK, &json!({"disputes": []}));
    }
    let rows = if closure_ids.is_empty() {
        state.store.net_ledger_list(kinds::DISPUTE, &f, limit, offset).await?
    } else {
        let all = state.store.net_ledger_list(kinds::DISPUTE, &f, i64::MAX, 0).await?;
        all.into_iter()
            .filter(|r| r.data["closure"]["id"].as_str().is_some_and(|c| closure_ids.iter().any(|w| w == c)))
            .skip(offset as usize)
            .take(limit as usize)
            .collect()
    };
    let items: Vec<Value> = rows.iter().map(with_closure).collect();
    book::json_status(StatusCode::OK, &json!({ "disputes": items }))
}

/// The disputes of one settlement as one side sees them (`settlementDisputes`).
pub(super) async fn of_settlement(
    state: &AppState,
    settlement_id: &str,
    side: NetSide,
    enterprise: &str,
) -> Result<Vec<Value>, NetError> {
    let mut f = LedgerFilter { parent_ids: vec![settlement_id.to_string()], ..Default::default() };
    match side {
        NetSide::Client => f.client_tenant = Some(enterprise.to_string()),
        NetSide::Partner => f.partner_tenant = Some(enterprise.to_string()),
    }
    let rows = state.store.net_ledger_list(kinds::DISPUTE, &f, i64::MAX, 0).await?;
    Ok(rows.iter().map(with_closure).collect())
}

// ---- Routes -------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlements/{settlementId}/disputes", operation_id = "createClientSettlementDispute", tag = "Client Disputes",
    params(("enterpriseId" = String, Path, min_length = 1), ("settlementId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_dispute(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    create(state, headers, ent, id, body).await
}

#[utoipa::path(put, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlements/disputes/{disputeId}", operation_id = "updateClientSettlementDispute", tag = "Client Disputes",
    params(("enterpriseId" = String, Path, min_length = 1), ("disputeId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn update_dispute(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    update(state, headers, ent, id, body).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlements/disputes/{disputeId}/close", operation_id = "V1ClientSettlementDisputeClosurePostRoute", tag = "Client Disputes",
    params(("enterpriseId" = String, Path, min_length = 1), ("disputeId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn close_dispute(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    close(state, headers, ent, id, body).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlement/disputes", operation_id = "listClientSettlementDisputes", tag = "Client Disputes",
    params(("enterpriseId" = String, Path, min_length = 1), ("settlementIds" = Option<Vec<uuid::Uuid>>, Query), ("settledInSettlementIds" = Option<Vec<uuid::Uuid>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("closed" = Option<bool>, Query), ("disputeIds" = Option<Vec<uuid::Uuid>>, Query), ("disputeClosureIds" = Option<Vec<uuid::Uuid>>, Query), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$")),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_client_disputes(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlement/disputes", operation_id = "listPartnerSettlementDisputes", tag = "Partner Disputes",
    params(("enterpriseId" = String, Path, min_length = 1), ("settlementIds" = Option<Vec<uuid::Uuid>>, Query), ("settledInSettlementIds" = Option<Vec<uuid::Uuid>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("closed" = Option<bool>, Query), ("disputeIds" = Option<Vec<uuid::Uuid>>, Query), ("disputeClosureIds" = Option<Vec<uuid::Uuid>>, Query), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("settlementExternalIds" = Option<Vec<wire::NonEmptyString>>, Query), ("settledInSettlementExternalIds" = Option<Vec<wire::NonEmptyString>>, Query), ("showRetracted" = Option<bool>, Query), ("clientIds" = Option<Vec<uuid::Uuid>>, Query)),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_partner_disputes(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Partner).await
}
