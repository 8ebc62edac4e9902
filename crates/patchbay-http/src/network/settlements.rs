//! Settlements, the partner's writes: the signed offchain settlement (and its deprecated
//! `nonReconciled` twin) with its signing payload, and what every settlement is made of —
//! its request, its connections, its transfers (one row per account, currency and
//! counterparty) and its objects. A settlement moves available funds between network
//! accounts and the partner's settlement account in one commit. Reading them:
//! settlement_views.rs.
//!
//! Routes (under `/api/network/v1/enterprises/{enterpriseId}`):
//! - `GET|POST /partners/settlements-signing` · `POST /partners/settlements` · `POST /partners/settlements/nonReconciled`
use std::collections::{BTreeMap, HashMap};

use patchbay_core::ledger::{self, Account, Amount, SettlementAmounts, Transfer};
use patchbay_core::ledger_objects::{SettlementFields, TransferEnd, settlement_object, transfer_object};
use patchbay_store::{Committed, LedgerCommit, LedgerRow};

use super::book::{self, Book, MAX_TRIES, kinds};
use super::*;

pub(super) const SETTLEMENT_STATUSES: &[&str] = &["failed", "completed", "pending", "rejected"];
pub(super) const TRANSFER_STATUSES: &[&str] = &[
    "pending",
    "pending_onchain",
    "onchain_initiated",
    "onchain_failed",
    "completed",
    "failed",
    "rejected",
    "disputed",
    "pending_settlement_assignment",
];

/// A settlement request's fields (signing, offchain and onchain alike).
pub(super) struct SettleRequest {
    pub(super) external_id: String,
    pub(super) notes: Option<String>,
    pub(super) nonce: String,
    pub(super) raw_amounts: Value,
    /// `(party connection, counterparty connection, currency, signed amount)`.
    pub(super) lines: Vec<(String, Option<String>, String, Amount)>,
    pub(super) counterparty: bool,
}

pub(super) fn settle_request(body: &Map<String, Value>) -> Result<SettleRequest, NetError> {
    let external_id = stored_str(body, "externalId")?;
    let notes = book::optional_str(body, "notes")?;
    let nonce = stored_str(body, "nonce")?;
    let Some(Value::Object(amounts)) = body.get("settlementAmounts") else {
        return Err(NetError::bad_request("settlementAmounts is required and must be an object."));
    };
    if amounts.is_empty() {
        return Err(NetError::bad_request("settlementAmounts must name at least one connection."));
    }
    let uuid_key = |k: &str| -> Result<String, NetError> {
        if is_uuid(k) {
            Ok(k.to_ascii_lowercase())
        } else {
            Err(NetError::bad_request(format!("Invalid settlementAmounts: {k:?} is not a connection id.")))
        }
    };
    let amount = |at: &str, v: &Value| -> Result<Amount, NetError> {
        let s = v
            .as_str()
            .ok_or_else(|| NetError::bad_request(format!("Invalid settlementAmounts: {at} must be a string.")))?;
        Amount::parse_nonzero(s).map_err(|e| NetError::bad_request(format!("Invalid settlementAmounts: {at} {e}.")))
    };
    let counterparty = amounts.values().any(|v| v.as_object().is_some_and(|m| m.values().any(Value::is_object)));
    let mut lines = Vec::new();
    for (party, inner) in amounts {
        let party_id = uuid_key(party)?;
        let Value::Object(inner) = inner else {
            return Err(NetError::bad_request(format!("Invalid settlementAmounts: {party} must be an object.")));
        };
        if inner.is_empty() {
            return Err(NetError::bad_request(format!("Invalid settlementAmounts: {party} names no currency.")));
        }
        for (k, v) in inner {
            if counterparty {
                let cp = uuid_key(k)?;
                let Value::Object(currencies) = v else {
                    return Err(NetError::bad_request(format!(
                        "Invalid settlementAmounts: {party}.{k} must be an object."
                    )));
                };
                for (currency, q) in currencies {
                    no_nul("currency", currency)?;
                    lines.push((
                        party_id.clone(),
                        Some(cp.clone()),
                        currency.clone(),
                        amount(&format!("{party}.{k}.{currency}"), q)?,
                    ));
                }
            } else {
                no_nul("currency", k)?;
                lines.push((party_id.clone(), None, k.clone(), amount(&format!("{party}.{k}"), v)?));
            }
        }
    }
    Ok(SettleRequest { external_id, notes, nonce, raw_amounts: Value::Object(amounts.clone()), lines, counterparty })
}

/// The connections a settlement names, all of this partner enterprise and of one partner.
pub(super) async fn settlement_connections(
    state: &AppState,
    enterprise: &str,
    r: &SettleRequest,
) -> Result<(HashMap<String, Arc<NetConnection>>, Record), NetError> {
    let mut conns = HashMap::new();
    for (party, cp, _, _) in &r.lines {
        for id in std::iter::once(party).chain(cp.iter()) {
            if conns.contains_key(id) {
                continue;
            }
            let c = state.store.net_get_connection(NetSide::Partner, enterprise, id).await?.ok_or_else(|| {
                NetError::bad_request(format!("Invalid settlementAmounts: {id} is not a connection of this partner."))
            })?;
            conns.insert(id.clone(), c);
        }
    }
    let mut partner_ids: Vec<&str> = conns.values().map(|c| c.partner_id.as_str()).collect();
    partner_ids.sort_unstable();
    partner_ids.dedup();
    if partner_ids.len() != 1 {
        return Err(NetError::bad_request("Invalid settlementAmounts: the connections belong to different partners."));
    }
    let any = conns.values().next().expect("at least one connection");
    let partner = book::partner_of(state, any).await?;
    if partner.data["active"].as_bool() == Some(false) {
        return Err(NetError::forbidden("The partner is not active."));
    }
    for (_, _, currency, _) in &r.lines {
        book::supported(&partner, currency)?;
    }
    Ok((conns, partner))
}

/// The transfers of a settlement, in terms of network accounts.
pub(super) fn transfers_of(
    r: &SettleRequest,
    conns: &HashMap<String, Arc<NetConnection>>,
    partner: &Record,
) -> Vec<Transfer> {
    let acct = |id: &str| conns[id].network_account_id.clone();
    let amounts = if r.counterparty {
        let mut m: BTreeMap<String, BTreeMap<String, BTreeMap<String, Amount>>> = BTreeMap::new();
        for (party, cp, currency, q) in &r.lines {
            let cp = cp.as_deref().expect("counterparty lines name one");
            m.entry(acct(party)).or_default().entry(acct(cp)).or_default().insert(currency.clone(), *q);
        }
        SettlementAmounts::Counterparty(m)
    } else {
        let mut m: BTreeMap<String, BTreeMap<String, Amount>> = BTreeMap::new();
        for (party, _, currency, q) in &r.lines {
            m.entry(acct(party)).or_default().insert(currency.clone(), *q);
        }
        SettlementAmounts::Party(m)
    };
    ledger::settlement_transfers(&amounts, &Account::Partner(partner.id.clone()))
}

/// What a transfer row says about each account: its connection (network
/// accounts) or partner, and the trading account behind it.
pub(super) struct AccountNames {
    by_account: HashMap<String, (Option<Arc<NetConnection>>, String)>,
}

impl AccountNames {
    pub(super) async fn new(
        state: &AppState,
        conns: &HashMap<String, Arc<NetConnection>>,
        partner: &Record,
    ) -> Result<Self, NetError> {
        let mut by_account = HashMap::new();
        let mut wallets: HashMap<String, String> = HashMap::new();
        for c in conns.values() {
            if !wallets.contains_key(&c.client_id) {
                let client = state.store.find_record(kind::NET_CLIENT, &c.client_id).await?;
                let wallet = client.and_then(|r| r.data["walletId"].as_str().map(str::to_string));
                wallets.insert(c.client_id.clone(), wallet.unwrap_or_else(|| c.client_id.clone()));
            }
            by_account.insert(c.network_account_id.clone(), (Some(c.clone()), wallets[&c.client_id].clone()));
        }
        by_account.insert(partner.id.clone(), (None, partner.id.clone()));
        Ok(Self { by_account })
    }

    fn id(a: &Account) -> &str {
        match a {
            Account::Network(n) | Account::Partner(n) | Account::Trading(n) => n,
        }
    }

    pub(super) fn connection(&self, a: &Account) -> Option<&Arc<NetConnection>> {
        self.by_account.get(Self::id(a)).and_then(|(c, _)| c.as_ref())
    }

    fn trading(&self, a: &Account) -> String {
        self.by_account.get(Self::id(a)).map(|(_, t)| t.clone()).unwrap_or_else(|| Self::id(a).to_string())
    }
}

/// One transfer row (`V1GetSettlementOkPayload.settlementTransfers` item, with the
/// masked view's fields beside): the client view is cut from it by `settlement_views::client_transfer`.
#[allow(clippy::too_many_arguments)]
pub(super) fn transfer_row(
    t: &Transfer,
    names: &AccountNames,
    settlement: &Value,
    partner: &Record,
    status: &str,
    initiated_by: &str,
    now: i64,
    entropy: &patchbay_core::Entropy,
) -> LedgerRow {
    let id = entropy.uuid_string();
    let settlement_id = settlement["id"].as_str().unwrap_or_default();
    let (source_trading, destination_trading) = (names.trading(&t.source), names.trading(&t.destination));
    let name = |a: &Account| names.connection(a).map(|c| c.name.as_str());
    let data = transfer_object(
        &id,
        settlement,
        &t.currency,
        t.quantity,
        status,
        &TransferEnd {
            trading_account: &source_trading,
            network_account: AccountNames::id(&t.source),
            connection_name: name(&t.source),
        },
        &TransferEnd {
            trading_account: &destination_trading,
            network_account: AccountNames::id(&t.destination),
            connection_name: name(&t.destination),
        },
        now,
    );
    // Who may see it (`e:` the client enterprises, the connections) and which end is whose.
    let mut parties = Vec::new();
    for (end, tag) in [(&t.source, "src"), (&t.destination, "dst")] {
        if let Some(c) = names.connection(end) {
            parties.push(format!("e:{}", c.tenant));
            parties.push(format!("{tag}:{}", c.tenant));
            parties.push(c.id.clone());
        }
    }
    let first = names.connection(&t.source).or_else(|| names.connection(&t.destination));
    LedgerRow {
        kind: kinds::TRANSFER.into(),
        id,
        client_tenant: None,
        partner_tenant: partner.tenant.clone(),
        partner_id: Some(partner.id.clone()),
        client_id: None,
        connection_id: first.map(|c| c.id.clone()),
        parent_id: Some(settlement_id.to_string()),
        subtype: settlement["status"].as_str().map(str::to_string),
        status: status.into(),
        currency: Some(t.currency.clone()),
        external_id: Some(initiated_by.to_string()),
        external_key: None,
        parties,
        flag: false,
        version: 1,
        data,
        created_at: now,
        updated_at: now,
    }
}

/// The settlement object and the transfer direction each client enterprise sees.
pub(super) fn directions(transfers: &[Transfer], names: &AccountNames) -> Value {
    let mut per: BTreeMap<String, Vec<Amount>> = BTreeMap::new();
    for t in transfers {
        if let Some(c) = names.connection(&t.source) {
            per.entry(c.tenant.clone()).or_default().push(-t.quantity);
        }
        if let Some(c) = names.connection(&t.destination) {
            per.entry(c.tenant.clone()).or_default().push(t.quantity);
        }
    }
    let mut out = Map::new();
    for (tenant, amounts) in per {
        if let Some(d) = ledger::transfer_direction(amounts) {
            out.insert(tenant, json!(d));
        }
    }
    Value::Object(out)
}

/// Parties of a settlement: every connection and client enterprise it touches.
pub(super) fn settlement_parties(conns: &HashMap<String, Arc<NetConnection>>) -> Vec<String> {
    let mut parties: Vec<String> = conns.values().map(|c| c.id.clone()).collect();
    parties.extend(conns.values().map(|c| format!("e:{}", c.tenant)));
    parties.sort();
    parties.dedup();
    parties
}

#[allow(clippy::too_many_arguments)]
pub(super) fn settlement_row(
    id: &str,
    partner: &Record,
    r: &SettleRequest,
    settlement: Value,
    dirs: Value,
    parties: Vec<String>,
    status: &str,
    now: i64,
) -> LedgerRow {
    LedgerRow {
        kind: kinds::SETTLEMENT.into(),
        id: id.into(),
        client_tenant: None,
        partner_tenant: partner.tenant.clone(),
        partner_id: Some(partner.id.clone()),
        client_id: None,
        connection_id: None,
        parent_id: None,
        subtype: settlement["settlementType"].as_str().map(str::to_string),
        status: status.into(),
        currency: None,
        external_id: Some(r.external_id.clone()),
        external_key: Some(format!("{}|{}", partner.tenant, r.external_id)),
        parties,
        flag: false,
        version: 1,
        data: json!({"settlement": settlement, "amounts": r.raw_amounts, "directions": dirs}),
        created_at: now,
        updated_at: now,
    }
}

/// The settlement object (`V1…SettlementOutput`).
#[allow(clippy::too_many_arguments)]
pub(super) fn settlement_json(
    id: &str,
    partner: &Record,
    r: &SettleRequest,
    kind: &str,
    status: &str,
    reconciled: bool,
    initiated_by: &str,
    now: i64,
) -> Value {
    settlement_object(&SettlementFields {
        id,
        partner_id: &partner.id,
        external_id: &r.external_id,
        notes: r.notes.as_deref(),
        settlement_type: kind,
        status,
        reconciled,
        initiated_by,
        reason: None,
        created_ms: now,
    })
}

/// An earlier settlement with the same externalId: the same request is answered
/// as before, a different one is a conflict (409).
pub(super) fn replay_settlement(existing: &LedgerRow, r: &SettleRequest, kind: &str) -> Result<Value, NetError> {
    let same = existing.data["amounts"] == r.raw_amounts
        && existing.subtype.as_deref() == Some(kind)
        && existing.data["settlement"]["notes"].as_str() == r.notes.as_deref();
    if !same {
        return Err(NetError::new(
            StatusCode::CONFLICT,
            format!("Settlement already exists with externalId {:?} and different properties.", r.external_id),
        ));
    }
    Ok(existing.data["settlement"].clone())
}

/// The signed fields of a settlement request (checked against `payload`).
pub(super) const SIGNED_SETTLEMENT: &[&str] = &["externalId", "settlementAmounts", "nonce"];

async fn settle(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
    reconciled: bool,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, true).await?;
    let body = json_object(&body_bytes(body)?)?;
    let r = settle_request(&body)?;
    let enterprise = caller.enterprise().id.clone();
    let (conns, partner) = settlement_connections(&state, &enterprise, &r).await?;
    book::verify_signed(&state, &caller, &body, SIGNED_SETTLEMENT, &["notes"], &[]).await?;
    let key = format!("{}|{}", partner.tenant, r.external_id);
    if let Some(existing) = state.store.net_ledger_by_key(kinds::SETTLEMENT, &key).await? {
        return typed_settlement(replay_settlement(&existing, &r, "offchain")?);
    }
    let transfers = transfers_of(&r, &conns, &partner);
    let names = AccountNames::new(&state, &conns, &partner).await?;
    let mut accounts: Vec<Account> = transfers.iter().flat_map(|t| [t.source.clone(), t.destination.clone()]).collect();
    accounts.sort();
    accounts.dedup();
    let id = state.entropy.uuid_string();
    for attempt in 0..MAX_TRIES {
        let mut book = Book::read(&state, &accounts).await?;
        book.apply(&ledger::transfer_movements(&transfers)).map_err(|e| match e {
            ledger::LedgerError::Insufficient { account, currency, available, wanted } => {
                NetError::bad_request(format!(
                    "Insufficient {currency} balance in {} {}: {available} available, {wanted} to transfer.",
                    match account {
                        Account::Partner(_) => "the partner's settlement account",
                        _ => "network account",
                    },
                    AccountNames::id(&account)
                ))
            }
            other => NetError::bad_request(other.to_string()),
        })?;
        let now = state.clock.now_ms();
        let settlement = settlement_json(&id, &partner, &r, "offchain", "completed", reconciled, caller.user_id(), now);
        let mut rows = vec![(
            settlement_row(
                &id,
                &partner,
                &r,
                settlement.clone(),
                directions(&transfers, &names),
                settlement_parties(&conns),
                "completed",
                now,
            ),
            None,
        )];
        for t in &transfers {
            rows.push((
                transfer_row(t, &names, &settlement, &partner, "completed", caller.user_id(), now, &state.entropy),
                None,
            ));
        }
        let commit = LedgerCommit {
            balances: book.writes(),
            rows,
            nonces: vec![(format!("partner:{enterprise}"), r.nonce.clone())],
            jobs: Vec::new(),
            now_ms: now,
        };
        match book::commit(&state, &commit, attempt).await? {
            Committed::Done => {
                tracing::info!(id = %id, partner = %partner.id, transfers = transfers.len(), "settlement completed");
                return typed_settlement(settlement);
            }
            Committed::Stale => continue,
            Committed::NonceUsed => return Err(NetError::bad_request("The nonce has already been used.")),
            Committed::Duplicate => {
                return match state.store.net_ledger_by_key(kinds::SETTLEMENT, &key).await? {
                    Some(e) => typed_settlement(replay_settlement(&e, &r, "offchain")?),
                    None => Err(book::too_busy()),
                };
            }
        }
    }
    Err(book::too_busy())
}

fn typed_settlement(s: Value) -> NetResult {
    book::json_status(StatusCode::OK, &json!({ "settlement": s }))
}

/// The payload a partner signs: the request's fields in the order the spec lists them.
pub(super) async fn settlement_signing(
    state: AppState,
    headers: HeaderMap,
    ent: String,
    body: Result<Bytes, BytesRejection>,
    write: bool,
) -> NetResult {
    let caller = authorize(&state, &headers, &ent, write).await?;
    let body = json_object(&body_bytes(body)?)?;
    let r = settle_request(&body)?;
    settlement_connections(&state, &caller.enterprise().id, &r).await?;
    let cutoff = match book::optional_str(&body, "cutoffAt")? {
        Some(c) => {
            chrono::DateTime::parse_from_rfc3339(&c)
                .map_err(|_| NetError::bad_request("cutoffAt must be an ISO 8601 date-time."))?;
            Some(c)
        }
        None => None,
    };
    let text = |v: &str| Value::String(v.to_string()).to_string();
    let mut payload = format!("{{\"externalId\":{}", text(&r.external_id));
    if let Some(n) = &r.notes {
        payload.push_str(&format!(",\"notes\":{}", text(n)));
    }
    payload.push_str(&format!(",\"settlementAmounts\":{},\"nonce\":{}", r.raw_amounts, text(&r.nonce)));
    if let Some(c) = cutoff {
        payload.push_str(&format!(",\"cutoffAt\":{}", text(&c)));
    }
    payload.push('}');
    typed(wire::SigningPayload { payload })
}

// ---- Routes -------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements-signing", operation_id = "v1PartnerSettlementsSigningPostRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn settlement_signing_post(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    settlement_signing(state, headers, ent, body, true).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements-signing", operation_id = "v1PartnerSettlementSigningGetRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::SigningPayload), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn settlement_signing_get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    settlement_signing(state, headers, ent, body, false).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements", operation_id = "v1PartnerSettlementsPostRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_settlement(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    settle(state, headers, ent, body, true).await
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners/settlements/nonReconciled", operation_id = "v1PartnerSettlementsNonReconciledPostRoute", tag = "Partner Settlements",
    params(("enterpriseId" = String, Path, min_length = 1)), request_body = wire::LedgerAnswer,
    responses((status = 200, description = "OK", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 409, description = "Conflict", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_non_reconciled(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    settle(state, headers, ent, body, false).await
}
