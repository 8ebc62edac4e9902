//! Partners: the list a client chooses from, and creating a partner.

use super::*;

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/partners", operation_id = "v1PartnersGetRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"), ("pageNumber" = Option<String>, Query, pattern = "^[0-9]{1,9}$", description = "Zero-based page number"), ("pageSize" = Option<String>, Query, pattern = "^([1-9][0-9]{0,2}|1000)$", description = "Page size (default 100, maximum 1000)"), ("ids" = Option<Vec<uuid::Uuid>>, Query), ("names" = Option<Vec<wire::NonEmptyString>>, Query), ("institutionIds" = Option<Vec<uuid::Uuid>>, Query),
           ("institutionIdentifiers" = Option<Vec<wire::NonEmptyString>>, Query), ("active" = Option<bool>, Query), ("filterByTrustOrg" = Option<bool>, Query), ("allocationPoliciesEnabled" = Option<bool>, Query)),
    responses((status = 200, description = "The partner directory", body = wire::PartnersEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn list_partners(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let (limit, offset) = params.page()?;
    let ids = params.uuids("ids")?;
    let names = params.strings("names")?;
    let institution_ids = params.uuids("institutionIds")?;
    let identifiers = params.strings("institutionIdentifiers")?;
    let active = params.boolean("active")?;
    let by_trust_org = params.boolean("filterByTrustOrg")?.unwrap_or(false);
    let policies = params.boolean("allocationPoliciesEnabled")?;
    let caller_org = caller.trust_org().unwrap_or("BitGo Trust").to_string();
    let mut partners = state.store.list_kind(kind::NET_PARTNER).await?;
    partners.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let text = |p: &Record, k: &str| p.data[k].as_str().unwrap_or_default().to_string();
    let matching: Vec<wire::Partner> = partners
        .iter()
        .filter(|p| ids.is_empty() || ids.contains(&p.id))
        .filter(|p| names.is_empty() || names.contains(&text(p, "name")))
        .filter(|p| institution_ids.is_empty() || institution_ids.contains(&text(p, "institutionId")))
        .filter(|p| identifiers.is_empty() || identifiers.contains(&text(p, "institutionIdentifier")))
        .filter(|p| active.is_none_or(|a| p.data["active"].as_bool().unwrap_or(true) == a))
        .filter(|p| !by_trust_org || partner_trust_org(p) == caller_org)
        .filter(|p| policies.is_none_or(|a| p.data["allocationPoliciesEnabled"].as_bool().unwrap_or(false) == a))
        .skip(offset as usize)
        .take(limit as usize)
        .map(partner_json)
        .collect();
    typed(wire::PartnersEnvelope { partners: matching })
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/partners", operation_id = "v1PartnersPostRoute", tag = "Partner Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body = wire::CreatePartnerRequest,
    responses((status = 200, description = "The new partner", body = wire::CreatedPartnerEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 422, description = "Unprocessable", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn create_partner(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    let body = json_object(&body_bytes(body)?)?;
    let name = required_str(&body, "name")?;
    let identifier = required_str(&body, "institutionIdentifier")?;
    let schema = required_str(&body, "connectionKeySchema")?;
    if rules::key_fields(&schema).is_none() {
        return Err(NetError::bad_request(
            "connectionKeySchema must be one of token, tokenAndSignature, apiKeyAndSecret, clearloop.",
        ));
    }
    let broker = match body.get("broker") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(NetError::bad_request("broker must be a boolean.")),
        None => return Err(NetError::bad_request("broker is required.")),
    };
    let institution_id = match body.get("institutionId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_uuid(s) => Some(s.to_ascii_lowercase()),
        Some(_) => return Err(NetError::bad_request("Invalid UUID format for institutionId.")),
    };
    let number = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => Ok(Some(n.clone())),
        Some(_) => Err(NetError::bad_request(format!("{k} must be a non-negative number."))),
    };
    let dispute = number("clientDisputeWindowMinutes")?;
    let top_up = number("topUpWindowMinutes")?;
    let policies = match body.get("allocationPoliciesEnabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(NetError::bad_request("allocationPoliciesEnabled must be a boolean.")),
    };
    if caller.enterprise().data["partnerEligible"].as_bool() != Some(true) {
        return Err(NetError::unprocessable("No partner configuration has been provisioned for this enterprise."));
    }
    let trust_org = caller.trust_org().filter(|t| TRUST_ORGS.contains(t)).unwrap_or("BitGo Trust").to_string();
    let client = ensure_client(&state, &caller, &Map::new()).await?;
    let id = state.entropy.uuid_string();
    let data = json!({
        "enterpriseId": caller.enterprise().id, "name": name, "institutionIdentifier": identifier,
        "institutionId": institution_id, "connectionKeySchema": schema, "active": true, "trustOrg": trust_org,
        "stablePartner": false, "callbackUrl": null, "publicKey": null, "broker": broker,
        "clientDisputeWindowMinutes": dispute, "topUpWindowMinutes": top_up, "allocationPoliciesEnabled": policies,
    });
    let now = state.clock.now_ms();
    let rec = RecordWrite {
        tenant: caller.enterprise().id.clone(),
        kind: kind::NET_PARTNER.into(),
        id: id.clone(),
        data,
        secret: None,
    };
    state.store.put_record(&rec, &[], &state.vault, now).await?;
    let d = &rec.data;
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    typed(wire::CreatedPartnerEnvelope {
        partner: wire::CreatedPartner {
            id,
            enterprise_id: caller.enterprise().id.clone(),
            trust_org,
            institution_id: d["institutionId"].as_str().map(str::to_string),
            institution_identifier: text("institutionIdentifier"),
            name: text("name"),
            connection_key_schema: text("connectionKeySchema"),
            created_at: timestamp(now),
            updated_at: timestamp(now),
            client_id: client.id,
            broker,
            active: true,
            client_dispute_window_minutes: d["clientDisputeWindowMinutes"].as_number().cloned(),
            top_up_window_minutes: d["topUpWindowMinutes"].as_number().cloned(),
            allocation_policies_enabled: policies,
        },
    })
}

#[utoipa::path(get, path = "/api/network/v1/enterprises/{enterpriseId}/supportedCurrencies", operation_id = "v1EnterpriseSupportedCurrenciesRoute", tag = "Client Allocations & Deallocations",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id"),
           ("partnerIds" = Vec<uuid::Uuid>, Query, min_items = 1, description = "Partner ids (repeated or comma-separated); required")),
    responses((status = 200, description = "Each requested partner's supported currencies", body = wire::SupportedCurrenciesEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn supported_currencies(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    authorize(&state, &headers, &ent, false).await?;
    let params = RawParams::parse(query.as_deref(), &body_bytes(body)?)?;
    let ids = params.uuids("partnerIds")?;
    if ids.is_empty() {
        return Err(NetError::bad_request("partnerIds is required."));
    }
    let mut supported = std::collections::BTreeMap::new();
    for id in ids {
        // Partners the enterprise cannot see do not exist for it: no key in the answer.
        let Some(p) = state.store.find_record(kind::NET_PARTNER, &id).await? else { continue };
        let name = p.data["name"].as_str().unwrap_or_default().to_string();
        let list = p.data["supportedCurrencies"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| wire::SupportedCurrency {
                        ofc_currency: c["ofcCurrency"].as_str().unwrap_or_default().to_string(),
                        backing_currency: c["backingCurrency"].as_str().unwrap_or_default().to_string(),
                        partner_names: vec![name.clone()],
                    })
                    .collect()
            })
            .unwrap_or_default();
        supported.insert(p.id.clone(), list);
    }
    typed(wire::SupportedCurrenciesEnvelope { supported_currencies: supported, domain: "bitgo-network".into() })
}
