//! Settlements as each side reads them: lists and gets from both sides (with their
//! transfers and disputes), and the client's settlement transfers, masked to its own side.
//!
//! Routes (under `/api/network/v1/enterprises/{enterpriseId}`):
//! - `GET /partners/settlements` · `GET /partners/settlements/{settlementId}`
//! - `GET /clients/settlements` · `GET /clients/settlements/{settlementId}` · `GET /clients/settlementTransfers`

use patchbay_store::{LedgerFilter, LedgerRow};

use super::book::{self, kinds};
use super::settlements::{SETTLEMENT_STATUSES, TRANSFER_STATUSES};
use super::*;

/// A transfer as one client sees it: the other side's accounts masked.
pub(super) fn client_transfer(row: &LedgerRow, enterprise: &str) -> Value {
    let mut v = row.data.clone();
    for (tag, prefix) in [("src", "source"), ("dst", "destination")] {
        if !row.parties.contains(&format!("{tag}:{enterprise}"))
            && let Some(m) = v.as_object_mut()
        {
            m.remove(&format!("{prefix}TradingAccountId"));
            m.remove(&format!("{prefix}NetworkAccountId"));
        }
    }
    v
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
    let mut party_connections = params.uuids("partyConnectionIds")?;
    party_connections.extend(params.uuids("counterpartyConnectionIds")?);
    let mut f = LedgerFilter {
        ids: params.uuids("settlementIds")?,
        partner_ids: params.uuids("partnerIds")?,
        party_connections,
        flag: params.boolean("onlyShowDisputed")?.filter(|b| *b),
        ..Default::default()
    };
    match side {
        NetSide::Client => {
            f.party = Some(format!("e:{enterprise}"));
            f.statuses = book::enum_values(&params, "statuses", SETTLEMENT_STATUSES)?;
        }
        NetSide::Partner => {
            f.partner_tenant = Some(enterprise.clone());
            f.external_ids = params.strings("externalIds")?;
            f.created_from = book::date_param(&params, "createdOnOrAfter")?;
            f.created_before = book::date_param(&params, "createdBefore")?;
            f.updated_from = book::date_param(&params, "updatedOnOrAfter")?;
            f.updated_before = book::date_param(&params, "updatedBefore")?;
        }
    }
    let rows = state.store.net_ledger_list(kinds::SETTLEMENT, &f, limit, offset).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut s = r.data["settlement"].clone();
            if side == NetSide::Client {
                s["transferDirection"] = r.data["directions"][&enterprise].clone();
            }
            s
        })
        .collect();
    book::json_status(StatusCode::OK, &json!({ "settlements": items }))
}

/// A settlement the enterprise may see from its side.
pub(super) async fn visible_settlement(
    state: &AppState,
    enterprise: &str,
    id: &str,
    side: NetSide,
) -> Result<LedgerRow, NetError> {
    if !is_uuid(id) {
        return Err(NetError::bad_request(format!("Invalid UUID format for settlementId: {id:?}.")));
    }
    let id = id.to_ascii_lowercase();
    let row = state.store.net_ledger_get(kinds::SETTLEMENT, &id).await?;
    let tag = format!("e:{enterprise}");
    row.filter(|r| match side {
        NetSide::Client => r.parties.contains(&tag),
        NetSide::Partner => r.partner_tenant == enterprise,
    })
    .ok_or_else(|| NetError::not_found(format!("Settlement {id} not found.")))
}

pub(super) async fn get_one(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    id: String,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
    side: NetSide,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let currencies = params.strings_any("currencies");
    let enterprise = caller.enterprise().id.clone();
    let row = visible_settlement(&state, &enterprise, &id, side).await?;
    let by_ends: Vec<(&str, Vec<String>)> = match side {
        NetSide::Partner => vec![
            ("sourceNetworkAccountId", params.uuids("sourceNetworkAccountIds")?),
            ("sourceTradingAccountId", params.uuids("sourceTradingAccountIds")?),
            ("destinationNetworkAccountId", params.uuids("destinationNetworkAccountIds")?),
            ("destinationTradingAccountId", params.uuids("destinationTradingAccountIds")?),
        ],
        NetSide::Client => Vec::new(),
    };
    let f = LedgerFilter {
        parent_ids: vec![row.id.clone()],
        currencies,
        party: (side == NetSide::Client).then(|| format!("e:{enterprise}")),
        ..Default::default()
    };
    let transfers = state.store.net_ledger_list(kinds::TRANSFER, &f, i64::MAX, 0).await?;
    let transfers: Vec<Value> = transfers
        .iter()
        .filter(|t| {
            by_ends.iter().all(|(key, wanted)| {
                wanted.is_empty()
                    || t.data[*key].as_str().is_some_and(|v| wanted.iter().any(|w| w.eq_ignore_ascii_case(v)))
            })
        })
        .skip(offset as usize)
        .take(limit as usize)
        .map(|t| match side {
            NetSide::Client => client_transfer(t, &enterprise),
            NetSide::Partner => t.data.clone(),
        })
        .collect();
    let disputes = super::disputes::of_settlement(&state, &row.id, side, &enterprise).await?;
    let mut settlement = row.data["settlement"].clone();
    if side == NetSide::Client {
        settlement["transferDirection"] = row.data["directions"][&enterprise].clone();
    }
    book::json_status(
        StatusCode::OK,
        &json!({"settlement": settlement, "settlementTransfers": transfers, "settlingDisputes": [], "settlementDisputes": disputes}),
    )
}

pub(super) async fn client_transfers(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let enterprise = caller.enterprise().id.clone();
    let sort = book::enum_param(&params, "sortField", &["updatedAt"])?;
    let desc = book::enum_param(&params, "sortDirection", &["ASC", "DESC"])? == Some("DESC");
    let f = LedgerFilter {
        party: Some(format!("e:{enterprise}")),
        currencies: params.strings_any("currencies"),
        external_ids: params.strings("initiatedBy")?,
        partner_ids: params.uuids("partnerIds")?,
        parent_ids: params.uuids("settlementIds")?,
        subtypes: book::enum_values(&params, "settlementStatuses", SETTLEMENT_STATUSES)?,
        statuses: book::enum_values(&params, "settlementTransferStatuses", TRANSFER_STATUSES)?,
        updated_from: book::date_param(&params, "settlementUpdatedOnOrAfter")?,
        updated_before: book::date_param(&params, "settlementUpdatedBefore")?,
        order: sort.map(|_| ("updated_at", desc)),
        ..Default::default()
    };
    let rows = state.store.net_ledger_list(kinds::TRANSFER, &f, limit, offset).await?;
    let items: Vec<Value> = rows.iter().map(|t| client_transfer(t, &enterprise)).collect();
    book::json_status(StatusCode::OK, &json!({ "settlementTransfers": items }))
}

// ---- Routes -------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements", operation_id = "v1PartnerSettlementsGetRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("settlementIds" = Option<Vec<uuid::Uuid>>, Query), ("onlyShowDisputed" = Option<bool>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("partyConnectionIds" = Option<Vec<uuid::Uuid>>, Query), ("counterpartyConnectionIds" = Option<Vec<uuid::Uuid>>, Query), ("externalIds" = Option<Vec<wire::NonEmptyString>>, Query), ("createdOnOrAfter" = Option<String>, Query, format = DateTime), ("createdBefore" = Option<String>, Query, format = DateTime), ("updatedOnOrAfter" = Option<String>, Query, format = DateTime), ("updatedBefore" = Option<String>, Query, format = DateTime)),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_partner_settlements(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements/{settlementId}", operation_id = "v1PartnerSettlementGetRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1), ("settlementId" = uuid::Uuid, Path), ("sourceNetworkAccountIds" = Option<Vec<uuid::Uuid>>, Query), ("sourceTradingAccountIds" = Option<Vec<uuid::Uuid>>, Query), ("destinationNetworkAccountIds" = Option<Vec<uuid::Uuid>>, Query), ("destinationTradingAccountIds" = Option<Vec<uuid::Uuid>>, Query), ("currencies" = Option<Vec<wire::NonEmptyString>>, Query), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$")),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn get_partner_settlement(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, query, body, NetSide::Partner).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlements", operation_id = "v1ClientSettlementsGetRoute", tag = "Client Settlements",
    params(("enterpriseId" = String, Path, min_length = 1), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("settlementIds" = Option<Vec<uuid::Uuid>>, Query), ("onlyShowDisputed" = Option<bool>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("partyConnectionIds" = Option<Vec<uuid::Uuid>>, Query), ("counterpartyConnectionIds" = Option<Vec<uuid::Uuid>>, Query), ("statuses" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_client_settlements(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    list(state, headers, ent, query, body, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlements/{settlementId}", operation_id = "v1ClientSettlementGetRoute", tag = "Client Settlements",
    params(("enterpriseId" = String, Path, min_length = 1), ("settlementId" = uuid::Uuid, Path), ("currencies" = Option<Vec<wire::NonEmptyString>>, Query), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$")),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn get_client_settlement(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path((ent, id)) = path.map_err(path_error)?;
    get_one(state, headers, ent, id, query, body, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/settlementTransfers", operation_id = "v1ClientSettlementTransfersGetRoute", tag = "Client Settlements",
    params(("enterpriseId" = String, Path, min_length = 1), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("currencies" = Option<Vec<wire::NonEmptyString>>, Query), ("initiatedBy" = Option<Vec<wire::NonEmptyString>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("settlementIds" = Option<Vec<uuid::Uuid>>, Query), ("settlementStatuses" = Option<Vec<String>>, Query), ("settlementTransferStatuses" = Option<Vec<String>>, Query), ("settlementUpdatedBefore" = Option<String>, Query, format = DateTime), ("settlementUpdatedOnOrAfter" = Option<String>, Query, format = DateTime), ("sortField" = Option<String>, Query), ("sortDirection" = Option<String>, Query)),
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_client_transfers(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    client_transfers(state, headers, ent, query, body).await
}
