//! Allocations and deallocations: the client's signed requests and their signing
//! payloads, lists and gets from both sides, and the partner's clear/release.
//!
//! Routes (under `/api/network/v1/enterprises/{enterpriseId}`):
//! - `POST /clients/connections/{connectionId}/allocations` · `…/deallocations`
//! - `GET|POST /clients/connections/{connectionId}/allocations/signing` · `…/deallocations/signing`
//! - `GET /clients/allocations` · `GET /clients/allocations/{allocationId}`
//! - `GET /partners/allocations` · `GET /partners/allocations/{allocationId}`
//! - `PUT /partners/allocations` · `PUT /partners/deallocations`

use patchbay_core::ledger::{self, AllocationAccounts, Amount, Direction, LedgerError, Status};
use patchbay_core::ledger_objects::{AllocationFields, allocation_object};
use patchbay_store::{Committed, LedgerCommit, LedgerFilter, LedgerRow};

use super::book::{self, Book, MAX_TRIES, kinds};
use super::*;

const AWAITING_PARTNER: &str = "Awaiting the partner's confirmation.";

fn quantity_of(row: &LedgerRow) -> Amount {
    row.data["amount"]["quantity"].as_str().and_then(|q| Amount::parse_positive(q).ok()).unwrap_or_default()
}

/// `{"allocation": …}` or `{"deallocation": …}`.
fn envelope(d: Direction, obj: &Value) -> Value {
    json!({ d.as_str(): obj })
}

/// The answer to a create (or its replay): 200, or 422 with the error when released.
fn created_answer(d: Direction, row: &LedgerRow) -> NetResult {
    if row.status == Status::Released.as_str() {
        let mut v = envelope(d, &row.data);
        v["error"] = row.data["reason"].clone();
        return book::json_status(StatusCode::UNPROCESSABLE_ENTITY, &v);
    }
    book::json_status(StatusCode::OK, &envelope(d, &row.data))
}

struct StepRequest {
    currency: String,
    quantity: Amount,
    client_external_id: String,
    nonce: String,
    notes: Option<String>,
}

fn step_request(body: &Map<String, Value>) -> Result<StepRequest, NetError> {
    let (currency, quantity) = book::amount_field(body, "amount")?;
    Ok(StepRequest {
        currency,
        quantity,
        client_external_id: stored_str(body, "clientExternalId")?,
        nonce: stored_str(body, "nonce")?,
        notes: book::optional_str(body, "notes")?,
    })
}

/// The client's connection, and its partner supporting the currency.
async fn usable_connection(
    state: &AppState,
    caller: &Caller,
    id: &str,
    d: Direction,
    currency: &str,
) -> Result<(Arc<NetConnection>, Record), NetError> {
    let conn = state
        .store
        .net_get_connection(NetSide::Client, &caller.enterprise().id, id)
        .await?
        .ok_or_else(|| NetError::not_found(format!("Connection {id} not found.")))?;
    if d == Direction::Allocation && !conn.active {
        return Err(NetError::bad_request(
            "The connection is not active: allocations are refused (deallocations are not).",
        ));
    }
    let partner = book::partner_of(state, &conn).await?;
    if partner.data["active"].as_bool() == Some(false) {
        return Err(NetError::bad_request("The partner is not active."));
    }
    book::supported(&partner, currency)?;
    Ok((conn, partner))
}

pub(super) async fn create(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    conn_id: String,
    body: Result<Bytes, BytesRejection>,
    d: Direction,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let conn_id = connection_id(&conn_id)?;
    let body = json_object(&body_bytes(body)?)?;
    let r = step_request(&body)?;
    let (conn, partner) = usable_connection(&state, &caller, &conn_id, d, &r.currency).await?;
    book::verify_signed(
        &state,
        &caller,
        &body,
        &["amount", "clientExternalId", "nonce"],
        &["notes"],
        &[("connectionId", &conn.id), ("enterpriseId", &ent)],
    )
    .await?;
    let key = format!("{}|{}", caller.enterprise().id, r.client_external_id);
    if let Some(existing) = state.store.net_ledger_by_key(kinds::ALLOCATION, &key).await? {
        return replay(d, &conn, &r, &existing);
    }
    let at = AllocationAccounts::new(&conn.tenant, &conn.network_account_id);
    let asynchronous = partner.data["asyncAllocations"].as_bool() == Some(true);
    let id = state.entropy.uuid_string();
    for attempt in 0..MAX_TRIES {
        let mut book = Book::read(&state, &[at.trading.clone(), at.network.clone()]).await?;
        let now = state.clock.now_ms();
        let moves = if asynchronous {
            ledger::reserve(d, &at, &r.currency, r.quantity)
        } else {
            ledger::clear_now(d, &at, &r.currency, r.quantity)
        };
        let mut obj = allocation_object(&AllocationFields {
            id: &id,
            direction: d,
            connection_id: &conn.id,
            currency: &r.currency,
            quantity: r.quantity,
            client_external_id: &r.client_external_id,
            notes: r.notes.as_deref(),
            initiated_by: caller.user_id(),
            status: Status::Reserved,
            reason: None,
            created_ms: now,
        });
        let status = match book.apply(&moves) {
            Ok(()) if asynchronous => {
                obj["reason"] = json!(AWAITING_PARTNER);
                Status::Reserved
            }
            Ok(()) => Status::Cleared,
            Err(e) => {
                // Refused for funds: recorded as released, with the reason (the spec's 422).
                let reason = match e {
                    LedgerError::Insufficient { available, wanted, .. } => format!(
                        "Insufficient {} balance to {}: {available} available, {wanted} requested.",
                        r.currency,
                        if d == Direction::Allocation { "allocate" } else { "deallocate" }
                    ),
                    other => other.to_string(),
                };
                book.touch(&moves);
                obj["reason"] = json!(reason);
                Status::Released
            }
        };
        obj["status"] = json!(status.as_str());
        let row = LedgerRow {
            kind: kinds::ALLOCATION.into(),
            id: id.clone(),
            client_tenant: Some(conn.tenant.clone()),
            partner_tenant: conn.partner_tenant.clone(),
            partner_id: Some(conn.partner_id.clone()),
            client_id: Some(conn.client_id.clone()),
            connection_id: Some(conn.id.clone()),
            parent_id: None,
            subtype: Some(d.as_str().into()),
            status: status.as_str().into(),
            currency: Some(r.currency.clone()),
            external_id: Some(r.client_external_id.clone()),
            external_key: Some(key.clone()),
            parties: Vec::new(),
            flag: false,
            version: 1,
            data: obj,
            created_at: now,
            updated_at: now,
        };
        // BitGo tells the partner's platform (docs/compatibility.md): a durable call.
        let jobs = if partner.data["callbackUrl"].is_string() && status != Status::Released {
            vec![NewJob::now(
                &conn.tenant,
                super::notify::NOTIFY_JOB,
                json!({"allocationId": id}),
                super::notify::MAX_ATTEMPTS,
                now,
            )]
        } else {
            Vec::new()
        };
        let commit = LedgerCommit {
            balances: book.writes(),
            rows: vec![(row.clone(), None)],
            nonces: vec![(format!("client:{}", caller.enterprise().id), r.nonce.clone())],
            jobs,
            now_ms: now,
        };
        match book::commit(&state, &commit, attempt).await? {
            Committed::Done => {
                tracing::info!(id = %id, kind = d.as_str(), connection = %conn.id, status = status.as_str(), "ledger step");
                return created_answer(d, &row);
            }
            Committed::Stale => continue,
            Committed::NonceUsed => return Err(NetError::bad_request("The nonce has already been used.")),
            Committed::Duplicate => {
                let existing = state.store.net_ledger_by_key(kinds::ALLOCATION, &key).await?;
                return match existing {
                    Some(e) => replay(d, &conn, &r, &e),
                    None => Err(book::too_busy()),
                };
            }
        }
    }
    Err(book::too_busy())
}

/// The same `clientExternalId` again: the same request gets the recorded answer;
/// a different one is refused.
fn replay(d: Direction, conn: &NetConnection, r: &StepRequest, existing: &LedgerRow) -> NetResult {
    let same = existing.subtype.as_deref() == Some(d.as_str())
        && existing.connection_id.as_deref() == Some(conn.id.as_str())
        && existing.currency.as_deref() == Some(r.currency.as_str())
        && quantity_of(existing) == r.quantity;
    if !same {
        return Err(NetError::bad_request(format!(
            "clientExternalId {:?} was already used for a different request.",
            r.client_external_id
        )));
    }
    created_answer(d, existing)
}

/// The payload a client signs: the SDK's field order (`prepareAllocation`).
pub(super) async fn signing(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    conn_id: String,
    body: Result<Bytes, BytesRejection>,
    d: Direction,
    write: bool,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, write).await?;
    let conn_id = connection_id(&conn_id)?;
    let body = json_object(&body_bytes(body)?)?;
    let r = step_request(&body)?;
    let (conn, _) = usable_connection(&state, &caller, &conn_id, d, &r.currency).await?;
    // Written field by field: JSON objects here do not keep insertion order.
    let text = |v: &str| Value::String(v.to_string()).to_string();
    let mut payload = format!(
        "{{\"connectionId\":{},\"amount\":{{\"currency\":{},\"quantity\":{}}}",
        text(&conn.id),
        text(&r.currency),
        text(body["amount"]["quantity"].as_str().unwrap_or_default())
    );
    if let Some(n) = &r.notes {
        payload.push_str(&format!(",\"notes\":{}", text(n)));
    }
    payload.push_str(&format!(",\"clientExternalId\":{},\"nonce\":{}}}", text(&r.client_external_id), text(&r.nonce)));
    typed(wire::SigningPayload { payload })
}

const STATUSES: &[&str] = &["cleared", "released", "reserved"];
const TYPES: &[&str] = &["allocation", "deallocation"];

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
        ids: params.uuids("allocationIds")?,
        subtypes: book::enum_values(&params, "types", TYPES)?,
        statuses: book::enum_values(&params, "statuses", STATUSES)?,
        currencies: params.strings_any("currencies"),
        connection_ids: params.uuids("connectionIds")?,
        partner_ids: params.uuids("partnerIds")?,
        created_from: book::date_param(&params, "createdOnOrAfter")?,
        created_before: book::date_param(&params, "createdBefore")?,
        ..Default::default()
    };
    let sorts: &[&str] = match side {
        NetSide::Client => &["id", "updatedAt", "quantity", "currency"],
        NetSide::Partner => &["id", "updatedAt", "quantity"],
    };
    let sort = book::enum_param(&params, "sortField", sorts)?;
    let desc = book::enum_param(&params, "sortDirection", &["ASC", "DESC"])? == Some("DESC");
    match side {
        NetSide::Client => f.client_tenant = Some(enterprise),
        NetSide::Partner => {
            f.partner_tenant = Some(enterprise);
            f.client_ids = params.uuids("clientIds")?;
        }
    }
    f.order = match sort {
        Some("id") => Some(("id", desc)),
        Some("updatedAt") => Some(("updated_at", desc)),
        Some("currency") => Some(("currency", desc)),
        _ => None,
    };
    let rows = if sort == Some("quantity") {
        // Quantities compare as numbers, not text: sorted here, then paged.
        let mut all = state.store.net_ledger_list(kinds::ALLOCATION, &f, i64::MAX, 0).await?;
        all.sort_by(|a, b| (quantity_of(a), &a.id).cmp(&(quantity_of(b), &b.id)));
        if desc {
            all.reverse();
        }
        all.into_iter().skip(offset as usize).take(limit as usize).collect()
    } else {
        state.store.net_ledger_list(kinds::ALLOCATION, &f, limit, offset).await?
    };
    let items: Vec<&Value> = rows.iter().map(|r| &r.data).collect();
    book::json_status(StatusCode::OK, &json!({ "allocations": items }))
}

pub(super) async fn get_one(state: AppState, headers: HeaderMap, ent: String, id: String, side: NetSide) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    if !is_uuid(&id) {
        return Err(NetError::bad_request(format!("Invalid UUID format for allocationId: {id:?}.")));
    }
    let id = id.to_ascii_lowercase();
    let row = state.store.net_ledger_get(kinds::ALLOCATION, &id).await?;
    let enterprise = &caller.enterprise().id;
    let visible = |r: &LedgerRow| match side {
        NetSide::Client => r.client_tenant.as_deref() == Some(enterprise.as_str()),
        NetSide::Partner => &r.partner_tenant == enterprise,
    };
    match row.filter(visible) {
        Some(r) => book::json_status(StatusCode::OK, &json!({ "allocation": r.data })),
        None => Err(NetError::not_found(format!("Allocation {id} not found."))),
    }
}

/// The partner clears or releases a reserved allocation or deallocation.
pub(super) async fn partner_update(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
    d: Direction,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let body = json_object(&body_bytes(body)?)?;
    let (id_key, partners_id_key) = match d {
        Direction::Allocation => ("allocationId", "partnersAllocationId"),
        Direction::Deallocation => ("deallocationId", "partnersDeallocationId"),
    };
    let id = required_uuid(&body, id_key)?;
    let (currency, q) = book::amount_field(&body, "amount")?;
    let client_id = required_uuid(&body, "clientId")?;
    let conn_id = required_uuid(&body, "connectionId")?;
    let partners_client_id = stored_str(&body, "partnersClientId")?;
    let partners_connection_id = stored_str(&body, "partnersConnectionId")?;
    let partners_id = stored_str(&body, partners_id_key)?;
    let nonce = stored_str(&body, "nonce")?;
    let to = match body.get("status").and_then(Value::as_str) {
        Some("cleared") => Status::Cleared,
        Some("released") => Status::Released,
        _ => return Err(NetError::bad_request("status is required and must be cleared or released.")),
    };
    let reject_reason = book::optional_str(&body, "rejectReason")?;
    let policy = book::optional_str(&body, "policyResult")?;
    if policy.as_deref().is_some_and(|p| p != "approved" && p != "rejected") {
        return Err(NetError::bad_request("policyResult must be approved or rejected."));
    }
    book::verify_signed(
        &state,
        &caller,
        &body,
        &[id_key, "amount", "status", "nonce", partners_id_key],
        &["clientId", "connectionId", "partnersClientId", "partnersConnectionId", "rejectReason"],
        &[],
    )
    .await?;
    let not_found = || NetError::not_found(format!("{} {id} not found.", capitalised(d)));
    let conn = state
        .store
        .net_get_connection(NetSide::Partner, &caller.enterprise().id, &conn_id)
        .await?
        .ok_or_else(not_found)?;
    let at = AllocationAccounts::new(&conn.tenant, &conn.network_account_id);
    for attempt in 0..MAX_TRIES {
        let row = state
            .store
            .net_ledger_get(kinds::ALLOCATION, &id)
            .await?
            .filter(|r| r.partner_tenant == caller.enterprise().id && r.subtype.as_deref() == Some(d.as_str()))
            .ok_or_else(not_found)?;
        if row.connection_id.as_deref() != Some(conn.id.as_str()) || row.client_id.as_deref() != Some(&client_id) {
            return Err(NetError::unprocessable(format!(
                "The {} does not belong to this client and connection.",
                d.as_str()
            )));
        }
        if row.currency.as_deref() != Some(currency.as_str()) || quantity_of(&row) != q {
            return Err(NetError::unprocessable(format!("amount does not match the {}.", d.as_str())));
        }
        let from = Status::parse(&row.status).unwrap_or(Status::Released);
        if from == to && row.data["partnerExternalId"].as_str() == Some(partners_id.as_str()) {
            // The same update again (a partner's retry): answered as before, nothing moves.
            return update_answer(d, &row, &partners_client_id, &partners_connection_id, &partners_id);
        }
        let moves = ledger::resolve(d, &id, from, to, &at, &currency, q).map_err(|e| {
            NetError::new(StatusCode::CONFLICT, format!("{}: it is {}.", capitalise(&e.to_string()), from))
        })?;
        let mut book = Book::read(&state, &[at.trading.clone(), at.network.clone()]).await?;
        book.apply(&moves).map_err(|e| {
            tracing::error!(id = %id, error = %e, "a reserved step's held funds are missing");
            NetError::new(StatusCode::CONFLICT, e.to_string())
        })?;
        let now = state.clock.now_ms();
        let mut next = row.clone();
        next.status = to.as_str().into();
        next.updated_at = now;
        next.data["status"] = json!(to.as_str());
        next.data["updatedAt"] = json!(timestamp(now));
        next.data["partnerExternalId"] = json!(partners_id);
        next.data["reason"] = match (to, &reject_reason) {
            (Status::Released, Some(r)) => json!(r),
            (Status::Released, None) => json!("Released by the partner."),
            _ => Value::Null,
        };
        if let Some(p) = &policy {
            next.data["policyResult"] = json!(p);
        }
        let commit = LedgerCommit {
            balances: book.writes(),
            rows: vec![(next.clone(), Some(row.version))],
            nonces: vec![(format!("partner:{}", caller.enterprise().id), nonce.clone())],
            jobs: Vec::new(),
            now_ms: now,
        };
        match book::commit(&state, &commit, attempt).await? {
            Committed::Done => {
                tracing::info!(id = %id, kind = d.as_str(), status = to.as_str(), "ledger step resolved by the partner");
                return update_answer(d, &next, &partners_client_id, &partners_connection_id, &partners_id);
            }
            Committed::Stale => continue,
            Committed::NonceUsed => return Err(NetError::bad_request("The nonce has already been used.")),
            Committed::Duplicate => return Err(book::too_busy()),
        }
    }
    Err(book::too_busy())
}

fn capitalised(d: Direction) -> &'static str {
    match d {
        Direction::Allocation => "Allocation",
        Direction::Deallocation => "Deallocation",
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `V1PartnerUpdateAllocationResponse` / `V1PartnerUpdateDeallocationResponse`.
fn update_answer(d: Direction, row: &LedgerRow, pcl: &str, pcn: &str, pid: &str) -> NetResult {
    let (id_key, pid_key) = match d {
        Direction::Allocation => ("allocationId", "partnersAllocationId"),
        Direction::Deallocation => ("deallocationId", "partnersDeallocationId"),
    };
    let mut v = json!({
        id_key: row.id,
        "amount": row.data["amount"],
        "clientId": row.client_id,
        "connectionId": row.connection_id,
        "partnersClientId": pcl,
        "partnersConnectionId": pcn,
        pid_key: pid,
    });
    if let Some(p) = row.data.get("policyResult") {
        v["policyResult"] = p.clone();
    }
    book::json_status(StatusCode::OK, &v)
}

// ---- Routes -------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}/allocations", operation_id = "V1ClientAllocationsPostRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("connectionId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "Cleared, or reserved until the partner answers", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Released with an error", body = wire::LedgerAnswer), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_allocation(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    create(state, headers, ent, id, body, Direction::Allocation).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}/deallocations", operation_id = "V1ClientDeallocationsPostRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("connectionId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "Cleared, or reserved until the partner answers", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Released with an error", body = wire::LedgerAnswer), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_deallocation(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    create(state, headers, ent, id, body, Direction::Deallocation).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}/allocations/signing", operation_id = "v1ClientAllocationsSigningPostRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("connectionId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn allocation_signing(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    method: axum::http::Method,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    signing(state, headers, ent, id, body, Direction::Allocation, method == axum::http::Method::POST).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}/deallocations/signing", operation_id = "V1ClientDeallocationsSigningPostRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("connectionId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn deallocation_signing(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
    method: axum::http::Method,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    signing(state, headers, ent, id, body, Direction::Deallocation, method == axum::http::Method::POST).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/allocations", operation_id = "v1ClientAllocationsGetRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("allocationIds" = Option<Vec<uuid::Uuid>>, Query), ("types" = Option<Vec<String>>, Query), ("statuses" = Option<Vec<String>>, Query), ("currencies" = Option<Vec<wire::NonEmptyString>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("createdOnOrAfter" = Option<String>, Query, format = DateTime), ("createdBefore" = Option<String>, Query, format = DateTime), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("sortField" = Option<String>, Query), ("sortDirection" = Option<String>, Query)),
    responses((status = 200, description = "Allocations and deallocations", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_client_allocations(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/allocations", operation_id = "v1PartnerAllocationsGetRoute", tag = "Partner Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("allocationIds" = Option<Vec<uuid::Uuid>>, Query), ("types" = Option<Vec<String>>, Query), ("statuses" = Option<Vec<String>>, Query), ("currencies" = Option<Vec<wire::NonEmptyString>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("clientIds" = Option<Vec<uuid::Uuid>>, Query), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("sortField" = Option<String>, Query), ("sortDirection" = Option<String>, Query)),
    responses((status = 200, description = "Allocations and deallocations", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_partner_allocations(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/allocations/{allocationId}", operation_id = "v1ClientAllocationGetRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("allocationId" = uuid::Uuid, Path)),
    responses((status = 200, description = "The allocation", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn get_client_allocation(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/allocations/{allocationId}", operation_id = "v1PartnerAllocationGetRoute", tag = "Partner Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("allocationId" = uuid::Uuid, Path)),
    responses((status = 200, description = "The allocation", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn get_partner_allocation(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    Headers(headers): Headers,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, NetSide::Partner).await
}

#[utoipa::path(put, path = "/api/network/v1/enterprises/{enterpriseId}/partners/allocations", operation_id = "v1PartnerAllocationsPutRoute", tag = "Partner Allocations",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "Cleared or released", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn update_allocation(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    partner_update(state, headers, ent, body, Direction::Allocation).await
}

#[utoipa::path(put, path = "/api/network/v1/enterprises/{enterpriseId}/partners/deallocations", operation_id = "V1PartnerDeallocationsPutRoute", tag = "Partner Allocations",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "Cleared or released", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn update_deallocation(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    partner_update(state, headers, ent, body, Direction::Deallocation).await
}

/// Documentation of the GET variant of the allocation signing route (same handler as POST).
#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}/allocations/signing", operation_id = "v1ClientAllocationsSigningGetRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("connectionId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
#[allow(dead_code)]
pub(super) fn allocation_signing_get_doc() {}

/// Documentation of the GET variant of the deallocation signing route (same handler as POST).
#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/connections/{connectionId}/deallocations/signing", operation_id = "V1ClientDeallocationsSigningGetRoute", tag = "Client Allocations",
    params(("enterpriseId" = String, Path, min_length = 1), ("connectionId" = uuid::Uuid, Path)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "The payload to sign", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
#[allow(dead_code)]
pub(super) fn deallocation_signing_get_doc() {}
