//! Balances, from the ledger: the client's trading account and each of its
//! connections' network accounts; the partner's connections' network accounts
//! and its own settlement account.
//!
//! Routes (under `/api/network/v1/enterprises/{enterpriseId}`):
//! - `GET /clients/balances`
//! - `GET /partners/balances`

use patchbay_core::ledger::Account;

use super::book::{self, Book};
use super::*;

/// `{currency: {available, held}}` of one account.
fn record_of(book: &Book, account: &Account) -> Value {
    let mut out = Map::new();
    for ((acc, currency), b) in &book.balances {
        if acc == account {
            out.insert(currency.clone(), json!({"available": b.available.to_string(), "held": b.held.to_string()}));
        }
    }
    Value::Object(out)
}

/// The partner's id for the connection; the connection's own id until the
/// partner has initialised it (docs/compatibility.md).
fn partners_connection_id(c: &NetConnection) -> &str {
    c.partners_connection_id.as_deref().unwrap_or(&c.id)
}

pub(super) async fn balances(
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
    let mut filter = NetConnectionFilter {
        ids: params.uuids("connectionIds")?,
        partner_ids: params.uuids("partnerIds")?,
        ..Default::default()
    };
    if side == NetSide::Partner {
        filter.client_ids = params.uuids("clientIds")?;
        filter.partners_connection_ids = params.strings("partnersConnectionIds")?;
        filter.partners_connection_ids.retain(|v| !v.contains('\0'));
    }
    let conns = state.store.net_list_connections(side, &enterprise, &filter, limit, offset).await?;
    let mut accounts: Vec<Account> = conns.iter().map(|c| Account::Network(c.network_account_id.clone())).collect();
    let partners = match side {
        NetSide::Client => {
            accounts.push(Account::Trading(enterprise.clone()));
            Vec::new()
        }
        NetSide::Partner => {
            let partners = book::partners_of(&state, &enterprise).await?;
            accounts.extend(partners.iter().map(|p| Account::Partner(p.id.clone())));
            partners
        }
    };
    let book = Book::read(&state, &accounts).await?;
    let mut network = Map::new();
    match side {
        NetSide::Client => {
            let client = client_of(&state, &enterprise)
                .await?
                .ok_or_else(|| NetError::not_found("The enterprise is not onboarded as an OES client."))?;
            let mut partner_cache: std::collections::HashMap<String, Record> = Default::default();
            for c in conns.iter() {
                if !partner_cache.contains_key(&c.partner_id) {
                    partner_cache.insert(c.partner_id.clone(), book::partner_of(&state, c).await?);
                }
                let p = &partner_cache[&c.partner_id];
                network.insert(
                    c.network_account_id.clone(),
                    json!({
                        "partnerId": c.partner_id,
                        "partnersConnectionId": partners_connection_id(c),
                        "name": c.name,
                        "partnerInstitutionIdentifier": p.data["institutionIdentifier"],
                        "balances": record_of(&book, &Account::Network(c.network_account_id.clone())),
                    }),
                );
            }
            book::json_status(
                StatusCode::OK,
                &json!({
                    "clientId": client.id,
                    "balances": record_of(&book, &Account::Trading(enterprise)),
                    "networkBalances": network,
                }),
            )
        }
        NetSide::Partner => {
            for c in conns.iter() {
                network.insert(
                    c.network_account_id.clone(),
                    json!({
                        "clientId": c.client_id,
                        "partnerId": c.partner_id,
                        "partnersConnectionId": partners_connection_id(c),
                        "balances": record_of(&book, &Account::Network(c.network_account_id.clone())),
                    }),
                );
            }
            // The partner's own settlement account (the first partner's per currency, should one
            // enterprise run several).
            let mut own = Map::new();
            for p in &partners {
                if let Value::Object(m) = record_of(&book, &Account::Partner(p.id.clone())) {
                    for (currency, v) in m {
                        own.entry(currency).or_insert(v);
                    }
                }
            }
            book::json_status(StatusCode::OK, &json!({"networkBalances": network, "balances": own}))
        }
    }
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/clients/balances", operation_id = "v1ClientBalancesGetRoute", tag = "Client Balances",
    params(("enterpriseId" = String, Path, min_length = 1), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query)),
    responses((status = 200, description = "The client's balances", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn client_balances(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    balances(state, headers, ent, query, body, NetSide::Client).await
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners/balances", operation_id = "v1PartnerBalancesGetRoute", tag = "Partner Balances",
    params(("enterpriseId" = String, Path, min_length = 1), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$"), ("partnerIds" = Option<Vec<uuid::Uuid>>, Query), ("clientIds" = Option<Vec<uuid::Uuid>>, Query), ("connectionIds" = Option<Vec<uuid::Uuid>>, Query), ("partnersConnectionIds" = Option<Vec<wire::NonEmptyString>>, Query)),
    responses((status = 200, description = "The partner's balances", body = wire::LedgerAnswer), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn partner_balances(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    balances(state, headers, ent, query, body, NetSide::Partner).await
}
