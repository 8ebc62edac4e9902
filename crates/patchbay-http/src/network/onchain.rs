//! On-chain settlements: the partner pays clients on a blockchain, so the
//! settlement stays pending (its transfers `pending_onchain`) until the partner
//! reports the deposits; each deposit completes the transfers of its currency
//! and credits the clients' network accounts, and the last one completes the
//! settlement. Also the signing payloads of deposits and of trades.
//!
//! Routes (under `/api/network/v1/enterprises/{enterpriseId}`):
//! - `POST /partners/settlements/onchain`
//! - `POST /partners/settlements/onchain/deposits` · `GET /partners/settlements/onchain/deposits/signing`
//! - `GET /partners/trades/signing`

use patchbay_core::ledger::{self, Account, Amount, Transfer};
use patchbay_store::{Committed, LedgerCommit, LedgerFilter, LedgerRow};

use super::book::{self, Book, MAX_TRIES, kinds};
use super::settlements::{
    AccountNames, SIGNED_SETTLEMENT, directions, replay_settlement, settle_request, settlement_connections,
    settlement_json, settlement_parties, settlement_row, transfer_row, transfers_of,
};
use super::*;

pub(super) async fn create(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let body = json_object(&body_bytes(body)?)?;
    let r = settle_request(&body)?;
    if r.counterparty || r.lines.iter().any(|(_, _, _, q)| q.is_negative()) {
        return Err(NetError::bad_request(
            "Invalid settlementAmounts: on-chain settlements pay clients only (positive amounts per connection and currency).",
        ));
    }
    let enterprise = caller.enterprise().id.clone();
    let (conns, partner) = settlement_connections(&state, &enterprise, &r).await?;
    book::verify_signed(&state, &caller, &body, SIGNED_SETTLEMENT, &["notes"], &[]).await?;
    let key = format!("{}|{}", partner.tenant, r.external_id);
    let pending = |s: Value| book::json_status(StatusCode::ACCEPTED, &json!({ "settlement": s }));
    if let Some(existing) = state.store.net_ledger_by_key(kinds::SETTLEMENT, &key).await? {
        let s = replay_settlement(&existing, &r, "onchain")?;
        return if existing.status == "pending" {
            pending(s)
        } else {
            book::json_status(StatusCode::OK, &json!({"settlement": s}))
        };
    }
    let transfers = transfers_of(&r, &conns, &partner);
    let names = AccountNames::new(&state, &conns, &partner).await?;
    let now = state.clock.now_ms();
    let id = state.entropy.uuid_string();
    let settlement = settlement_json(&id, &partner, &r, "onchain", "pending", true, caller.user_id(), now);
    let mut rows = vec![(
        settlement_row(
            &id,
            &partner,
            &r,
            settlement.clone(),
            directions(&transfers, &names),
            settlement_parties(&conns),
            "pending",
            now,
        ),
        None,
    )];
    for t in &transfers {
        rows.push((
            transfer_row(t, &names, &settlement, &partner, "pending_onchain", caller.user_id(), now, &state.entropy),
            None,
        ));
    }
    let commit = LedgerCommit {
        balances: Vec::new(),
        rows,
        nonces: vec![(format!("partner:{enterprise}"), r.nonce.clone())],
        jobs: Vec::new(),
        now_ms: now,
    };
    match state.store.net_ledger_commit(&commit).await? {
        Committed::Done => pending(settlement),
        Committed::NonceUsed => Err(NetError::bad_request("The nonce has already been used.")),
        Committed::Duplicate | Committed::Stale => {
            match state.store.net_ledger_by_key(kinds::SETTLEMENT, &key).await? {
                Some(e) => pending(replay_settlement(&e, &r, "onchain")?),
                None => Err(book::too_busy()),
            }
        }
    }
}

struct DepositRequest {
    external_settlement_id: String,
    settlement_id: Option<String>,
    deposits: Vec<(String, String)>,
}

fn deposit_request(body: &Map<String, Value>) -> Result<DepositRequest, NetError> {
    let external_settlement_id = stored_str(body, "externalSettlementId")?;
    let settlement_id = match body.get("settlementId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_uuid(s) => Some(s.to_ascii_lowercase()),
        Some(_) => return Err(NetError::bad_request("Invalid UUID format for settlementId.")),
    };
    let Some(Value::Array(items)) = body.get("deposits") else {
        return Err(NetError::bad_request("deposits is required and must be an array."));
    };
    if items.is_empty() {
        return Err(NetError::bad_request("deposits must contain at least one deposit."));
    }
    let mut deposits = Vec::new();
    for (i, d) in items.iter().enumerate() {
        let Value::Object(d) = d else {
            return Err(NetError::bad_request(format!("deposits[{i}] must be an object.")));
        };
        let currency =
            stored_str(d, "currency").map_err(|e| NetError::bad_request(format!("deposits[{i}].{}", e.message)))?;
        let tx =
            stored_str(d, "onChainTxId").map_err(|e| NetError::bad_request(format!("deposits[{i}].{}", e.message)))?;
        deposits.push((currency, tx));
    }
    Ok(DepositRequest { external_settlement_id, settlement_id, deposits })
}

fn deposit_json(row: &LedgerRow) -> Value {
    row.data.clone()
}

pub(super) async fn deposits(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let body = json_object(&body_bytes(body)?)?;
    let d = deposit_request(&body)?;
    let enterprise = caller.enterprise().id.clone();
    book::verify_signed(&state, &caller, &body, &["externalSettlementId", "deposits"], &["settlementId"], &[]).await?;
    // The same deposit listed twice is one deposit; one transaction for two currencies conflicts.
    let mut unique: Vec<(String, String)> = Vec::new();
    for (currency, tx) in &d.deposits {
        match unique.iter().find(|(_, t)| t == tx) {
            Some((c, _)) if c == currency => {}
            Some(_) => {
                return Err(NetError::new(StatusCode::CONFLICT, format!("Deposit {tx} is listed for two currencies.")));
            }
            None => unique.push((currency.clone(), tx.clone())),
        }
    }
    let d = DepositRequest { deposits: unique, ..d };
    let key = format!("{enterprise}|{}", d.external_settlement_id);
    let not_found = || NetError::not_found(format!("Settlement {:?} not found.", d.external_settlement_id));
    for attempt in 0..MAX_TRIES {
        let settlement = state
            .store
            .net_ledger_by_key(kinds::SETTLEMENT, &key)
            .await?
            .filter(|s| d.settlement_id.as_ref().is_none_or(|id| *id == s.id))
            .ok_or_else(not_found)?;
        if settlement.subtype.as_deref() != Some("onchain") {
            return Err(NetError::new(StatusCode::CONFLICT, "The settlement is not an on-chain settlement."));
        }
        // Deposits already recorded: the same again is answered as before; for another settlement, a conflict.
        let mut answered = Vec::new();
        let mut fresh = Vec::new();
        for (currency, tx) in &d.deposits {
            match state.store.net_ledger_by_key(kinds::DEPOSIT, tx).await? {
                Some(existing)
                    if existing.parent_id.as_deref() == Some(settlement.id.as_str())
                        && existing.currency.as_deref() == Some(currency) =>
                {
                    answered.push(deposit_json(&existing))
                }
                Some(_) => {
                    return Err(NetError::new(
                        StatusCode::CONFLICT,
                        format!("Deposit {tx} has already been submitted for a different settlement."),
                    ));
                }
                None => fresh.push((currency.clone(), tx.clone())),
            }
        }
        if fresh.is_empty() {
            return book::json_status(StatusCode::CREATED, &json!({"deposits": answered}));
        }
        let f = LedgerFilter { parent_ids: vec![settlement.id.clone()], ..Default::default() };
        let transfers = state.store.net_ledger_list(kinds::TRANSFER, &f, i64::MAX, 0).await?;
        let now = state.clock.now_ms();
        let mut rows = Vec::new();
        let mut moved = Vec::new();
        let mut next_transfers: Vec<LedgerRow> = transfers.clone();
        for (currency, tx) in &fresh {
            let mut transfer_id = Value::Null;
            for t in next_transfers.iter_mut() {
                if t.currency.as_deref() == Some(currency) && t.status == "pending_onchain" {
                    t.status = "completed".into();
                    t.updated_at = now;
                    t.data["status"] = json!("completed");
                    t.data["updatedAt"] = json!(timestamp(now));
                    if let Some(ids) = t.data["txIds"].as_array_mut() {
                        ids.push(json!(tx));
                    }
                    transfer_id = json!(t.id);
                    let q =
                        t.data["quantity"].as_str().and_then(|q| Amount::parse_positive(q).ok()).unwrap_or_default();
                    let dest =
                        Account::Network(t.data["destinationNetworkAccountId"].as_str().unwrap_or_default().into());
                    moved.push(Transfer {
                        source: Account::Partner(String::new()),
                        destination: dest,
                        currency: currency.clone(),
                        quantity: q,
                    });
                }
            }
            let id = state.entropy.uuid_string();
            let mut data = json!({"onChainTxId": tx, "currency": currency, "id": id, "settlementId": settlement.id,
                "createdAt": timestamp(now), "updatedAt": timestamp(now), "externalSettlementId": d.external_settlement_id});
            if !transfer_id.is_null() {
                data["transferId"] = transfer_id;
            }
            rows.push((
                LedgerRow {
                    kind: kinds::DEPOSIT.into(),
                    id,
                    client_tenant: None,
                    partner_tenant: enterprise.clone(),
                    partner_id: settlement.partner_id.clone(),
                    client_id: None,
                    connection_id: None,
                    parent_id: Some(settlement.id.clone()),
                    subtype: None,
                    status: "recorded".into(),
                    currency: Some(currency.clone()),
                    external_id: Some(d.external_settlement_id.clone()),
                    external_key: Some(tx.clone()),
                    parties: Vec::new(),
                    flag: false,
                    version: 1,
                    data,
                    created_at: now,
                    updated_at: now,
                },
                None,
            ));
        }
        // The last deposit completes the settlement (and every transfer says so).
        let complete = next_transfers.iter().all(|t| t.status == "completed");
        let mut next_settlement = settlement.clone();
        if complete {
            next_settlement.status = "completed".into();
            next_settlement.updated_at = now;
            let s = &mut next_settlement.data["settlement"];
            s["status"] = json!("completed");
            s["updatedAt"] = json!(timestamp(now));
            s["finalizedAt"] = json!(timestamp(now));
        }
        for (old, new) in transfers.iter().zip(next_transfers.iter_mut()) {
            if complete {
                new.subtype = Some("completed".into());
                new.data["settlementStatus"] = json!("completed");
            }
            if new != old {
                rows.push((new.clone(), Some(old.version)));
            }
        }
        if complete {
            rows.push((next_settlement, Some(settlement.version)));
        }
        let mut accounts: Vec<Account> = moved.iter().map(|t| t.destination.clone()).collect();
        accounts.sort();
        accounts.dedup();
        let mut book = Book::read(&state, &accounts).await?;
        book.apply(&ledger::deposit_movements(&moved)).map_err(|e| NetError::bad_request(e.to_string()))?;
        let deposits: Vec<Value> = answered
            .into_iter()
            .chain(rows.iter().filter(|(r, _)| r.kind == kinds::DEPOSIT).map(|(r, _)| deposit_json(r)))
            .collect();
        let commit = LedgerCommit { balances: book.writes(), rows, nonces: Vec::new(), jobs: Vec::new(), now_ms: now };
        match book::commit(&state, &commit, attempt).await? {
            Committed::Done => {
                tracing::info!(settlement = %settlement.id, deposits = fresh.len(), complete, "on-chain deposits recorded");
                return book::json_status(StatusCode::CREATED, &json!({ "deposits": deposits }));
            }
            Committed::Stale | Committed::Duplicate => continue,
            Committed::NonceUsed => return Err(book::too_busy()),
        }
    }
    Err(book::too_busy())
}

pub(super) async fn deposits_signing(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let body = json_object(&body_bytes(body)?)?;
    let d = deposit_request(&body)?;
    let key = format!("{}|{}", caller.enterprise().id, d.external_settlement_id);
    state
        .store
        .net_ledger_by_key(kinds::SETTLEMENT, &key)
        .await?
        .filter(|s| d.settlement_id.as_ref().is_none_or(|id| *id == s.id))
        .ok_or_else(|| NetError::not_found(format!("Settlement {:?} not found.", d.external_settlement_id)))?;
    let text = |v: &str| Value::String(v.to_string()).to_string();
    let mut payload = format!("{{\"externalSettlementId\":{}", text(&d.external_settlement_id));
    if let Some(s) = &d.settlement_id {
        payload.push_str(&format!(",\"settlementId\":{}", text(s)));
    }
    let items: Vec<String> =
        d.deposits.iter().map(|(c, t)| format!("{{\"currency\":{},\"onChainTxId\":{}}}", text(c), text(t))).collect();
    payload.push_str(&format!(",\"deposits\":[{}]}}", items.join(",")));
    typed(wire::SigningPayload { payload })
}

/// The payload a partner signs for a trade (`{trade, tradeCorrection?, nonce}`): the
/// trade checked as `InboundTrade` (one side positive, the other negative).
pub(super) async fn trade_signing(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, false).await?;
    let body = json_object(&body_bytes(body)?)?;
    let nonce = stored_str(&body, "nonce")?;
    let Some(Value::Object(trade)) = body.get("trade") else {
        return Err(NetError::bad_request("trade is required and must be an object."));
    };
    for key in ["externalId", "externalOrderId"] {
        stored_str(trade, key).map_err(|e| NetError::bad_request(format!("trade.{}", e.message)))?;
    }
    let party =
        required_uuid(trade, "partyConnectionId").map_err(|e| NetError::bad_request(format!("trade.{}", e.message)))?;
    state.store.net_get_connection(NetSide::Partner, &caller.enterprise().id, &party).await?.ok_or_else(|| {
        NetError::bad_request(format!("trade.partyConnectionId {party} is not a connection of this partner."))
    })?;
    if let Some(cp) = trade.get("counterpartyConnectionId")
        && !cp.as_str().is_some_and(is_uuid)
    {
        return Err(NetError::bad_request("trade.counterpartyConnectionId must be a UUID."));
    }
    let traded = stored_str(trade, "tradedAt").map_err(|e| NetError::bad_request(format!("trade.{}", e.message)))?;
    chrono::DateTime::parse_from_rfc3339(&traded)
        .map_err(|_| NetError::bad_request("trade.tradedAt must be an ISO 8601 date-time."))?;
    let side = |k: &str| -> Result<Amount, NetError> {
        let Some(Value::Object(a)) = trade.get(k) else {
            return Err(NetError::bad_request(format!(
                "trade.{k} is required and must be an object of currency and quantity."
            )));
        };
        // `BNSupportedCurrency` is any string.
        match a.get("currency") {
            Some(Value::String(c)) => no_nul(&format!("trade.{k}.currency"), c)?,
            _ => return Err(NetError::bad_request(format!("trade.{k}.currency is required and must be a string."))),
        }
        let q = a
            .get("quantity")
            .and_then(Value::as_str)
            .ok_or_else(|| NetError::bad_request(format!("trade.{k}.quantity must be a string.")))?;
        Amount::parse_nonzero(q).map_err(|e| NetError::bad_request(format!("trade.{k}.quantity {e}.")))
    };
    let (base, quote) = (side("base")?, side("quote")?);
    if base.is_negative() == quote.is_negative() {
        return Err(NetError::bad_request("trade.base and trade.quote must have opposite signs."));
    }
    if let Some(c) = body.get("tradeCorrection") {
        let Value::Object(c) = c else {
            return Err(NetError::bad_request("tradeCorrection must be an object."));
        };
        for key in ["correctingUser", "reason"] {
            stored_str(c, key).map_err(|e| NetError::bad_request(format!("tradeCorrection.{}", e.message)))?;
        }
    }
    let mut payload = format!("{{\"trade\":{}", Value::Object(trade.clone()));
    if let Some(c) = body.get("tradeCorrection") {
        payload.push_str(&format!(",\"tradeCorrection\":{c}"));
    }
    payload.push_str(&format!(",\"nonce\":{}}}", Value::String(nonce)));
    typed(wire::SigningPayload { payload })
}

// ---- Routes -------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements/onchain", operation_id = "v1PartnerOnChainSettlementPostRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 202, description = "OK", body = wire::LedgerAnswer), (status = 200, description = "OK", body = wire::ErrorPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_onchain(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    create(state, headers, ent, body).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements/onchain/deposits", operation_id = "v1PartnerExtDepositsPostRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 201, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_deposits(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    deposits(state, headers, ent, body).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements/onchain/deposits/signing", operation_id = "v1PartnerExtDepositsSigningGetRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn deposits_signing_get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    deposits_signing(state, headers, ent, body).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/trades/signing", operation_id = "v1PartnerTradesSigningGetRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn trade_signing_get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    trade_signing(state, headers, ent, body).await
}
