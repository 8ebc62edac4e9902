//! Customers: their tokens and magic links, the customer upsert and list.
//!
//! Routes: `POST /v1/customer/{customer_id}/token` · `POST /v1/customer/{customer_id}/magic-link`
//! · `GET|PUT /v1/customer`

use super::*;

/// The customer record, created (with a new API key) when missing; returns it and its raw key.
pub(super) async fn ensure_customer(
    state: &AppState,
    org: &str,
    id: &str,
    metadata: Option<Value>,
) -> Result<(Record, String), InError> {
    let rid = format!("{org}/{id}");
    let now = state.clock.now_ms();
    if let Some(rec) = state.store.get_record(org, kind::IN_CUSTOMER, &rid).await? {
        let secret = rec.open_secret(&state.vault)?.unwrap_or(Value::Null);
        let key = secret["apiKey"].as_str().map(str::to_string);
        let needs_key = key.is_none();
        let key = key.unwrap_or_else(|| format!("key_cus_{}", catalog::ulid(&state.entropy, state.clock.now_ms())));
        if metadata.is_some() || needs_key {
            let mut data = rec.data.clone();
            if let Some(m) = metadata {
                data["metadata"] = shallow_merge(&data["metadata"], &m);
            }
            let write = RecordWrite {
                tenant: org.into(),
                kind: kind::IN_CUSTOMER.into(),
                id: rid.clone(),
                data,
                secret: Some(json!({"apiKey": key})),
            };
            state.store.put_record(&write, &[], &state.vault, now).await?;
            if needs_key {
                put_customer_key(state, org, &rid, &key, now).await?;
            }
        }
        let rec = state.store.get_record(org, kind::IN_CUSTOMER, &rid).await?.unwrap_or(rec);
        return Ok((rec, key));
    }
    let key = format!("key_cus_{}", catalog::ulid(&state.entropy, state.clock.now_ms()));
    let write = RecordWrite {
        tenant: org.into(),
        kind: kind::IN_CUSTOMER.into(),
        id: rid.clone(),
        data: json!({"customerId": id, "metadata": metadata.unwrap_or(json!({}))}),
        secret: Some(json!({"apiKey": key})),
    };
    state.store.put_record(&write, &[], &state.vault, now).await?;
    put_customer_key(state, org, &rid, &key, now).await?;
    let rec =
        state.store.get_record(org, kind::IN_CUSTOMER, &rid).await?.ok_or(StoreError::Corrupt("customer".into()))?;
    Ok((rec, key))
}

pub(super) async fn put_customer_key(
    state: &AppState,
    org: &str,
    rid: &str,
    key: &str,
    now: i64,
) -> Result<(), InError> {
    let cred = Credential {
        face: "integrations".into(),
        principal_kind: "customer".into(),
        principal_id: rid.into(),
        tenant: org.into(),
        scopes: Vec::new(),
    };
    state.store.put_credential(key, &cred, now).await?;
    Ok(())
}

/// A customer id: stored as text (a record's id), so no NUL either.
pub(super) fn customer_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && !id.contains(['/', '\0'])
}

#[utoipa::path(post, path = "/v1/customer/{customer_id}/token", operation_id = "createToken", tag = "Customers",
    params(("customer_id" = String, Path, pattern = "^[^/\\u0000]{1,256}$")), request_body(content = Option<wire::CreateToken>),
    responses((status = 200, description = "A customer token", body = wire::Token), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn create_token(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(customer): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    typed(customer_link(&state, &headers, &customer, body).await?)
}

/// OpenInt's `createMagicLink`: the link of a customer token (the same options as `createToken`).
#[utoipa::path(post, path = "/v1/customer/{customer_id}/magic-link", operation_id = "createMagicLink", tag = "Customers",
    params(("customer_id" = String, Path, pattern = "^[^/\\u0000]{1,256}$")), request_body(content = Option<wire::CreateToken>),
    responses((status = 200, description = "The magic link", body = wire::MagicLink), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Org admin only", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)),
    security(("bearer" = [])))]
pub(super) async fn create_magic_link(
    State(state): State<AppState>,
    Headers(headers): Headers,
    Path(customer): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let t = customer_link(&state, &headers, &customer, body).await?;
    typed(wire::MagicLink { magic_link_url: t.magic_link_url })
}

/// A customer token and its magic link (`createToken`, `createMagicLink`).
pub(super) async fn customer_link(
    state: &AppState,
    headers: &HeaderMap,
    customer: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<wire::Token, InError> {
    let viewer = authenticate(state, headers).await?;
    let org = viewer.org_only()?.to_string();
    if !customer_id_ok(customer) {
        return Err(InError::issue(&["customer_id"], "customer_id must be 1-256 characters without '/' or NUL"));
    }
    let body = body_object(body)?;
    let validity = match body.get("validity_in_seconds") {
        None | Some(Value::Null) => 2_592_000,
        // JSON integers may be written as 3600.0.
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e15).map(|f| f as i64))
            .filter(|n| (1..=31_536_000).contains(n))
            .ok_or_else(|| {
                InError::issue(&["validity_in_seconds"], "validity_in_seconds must be an integer from 1 to 31536000")
            })?,
    };
    let connect_options = optional_object(&body, "connect_options")?;
    let (_, api_key) = ensure_customer(state, &org, customer, None).await?;
    let now = state.clock.now_ms() / 1000;
    let claims = Claims {
        role: "customer".into(),
        sub: format!("{org}/{customer}"),
        org_id: Some(org.clone()),
        customer_id: Some(customer.to_string()),
        connect_options: connect_options.clone(),
        exp: now + validity,
        iat: now,
    };
    let key = token_secret(state).await?;
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&key))
        .map_err(|e| InError::from(StoreError::Corrupt(e.to_string())))?;
    let base = state
        .config
        .integrations
        .connect_base_url
        .clone()
        .unwrap_or_else(|| crate::face::base_url(&state.config, headers));
    let mut link = form_urlencoded::Serializer::new(String::new());
    link.append_pair("token", &token);
    if let Some(Value::Object(o)) = &connect_options {
        for (k, v) in o {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            link.append_pair(k, &s);
        }
    }
    Ok(wire::Token {
        token,
        magic_link_url: format!("{}/connect?{}", base.trim_end_matches('/'), link.finish()),
        api_key,
    })
}

pub(super) fn customer_json(rec: &Record, api_key: &str) -> wire::Customer {
    wire::Customer {
        org_id: rec.tenant.clone(),
        id: rec.data["customerId"].as_str().unwrap_or_default().to_string(),
        api_key: api_key.to_string(),
        metadata: Some(rec.data["metadata"].clone()).filter(|m| m.is_object()).unwrap_or(json!({})),
        created_at: timestamp(rec.created_at),
        updated_at: timestamp(rec.updated_at),
    }
}

#[utoipa::path(put, path = "/v1/customer", operation_id = "upsertCustomer", tag = "Customers",
    request_body(content = Option<wire::UpsertCustomer>),
    responses((status = 200, description = "The customer", body = wire::Customer), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn upsert_customer(
    State(state): State<AppState>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org_only()?.to_string();
    let body = body_object(body)?;
    let id = optional_string(&body, "id")?
        .unwrap_or_else(|| format!("cus_{}", catalog::ulid(&state.entropy, state.clock.now_ms())));
    if !customer_id_ok(&id) {
        return Err(InError::issue(&["id"], "id must be 1-256 characters without '/' or NUL"));
    }
    let metadata = optional_object(&body, "metadata")?;
    let (rec, key) = ensure_customer(&state, &org, &id, metadata).await?;
    typed(customer_json(&rec, &key))
}

#[utoipa::path(get, path = "/v1/customer", operation_id = "listCustomers", tag = "Customers",
    params(("limit" = Option<i64>, Query, minimum = 0, maximum = 3000, description = "Default 50"), ("offset" = Option<i64>, Query, minimum = 0), ("search_query" = Option<String>, Query)),
    responses((status = 200, description = "Customers with connections", body = wire::CustomerPage), (status = 400, description = "Invalid input", body = wire::Error), (status = 401, description = "Invalid credentials", body = wire::Error), (status = 403, description = "Forbidden", body = wire::Error), (status = 429, description = "Rate limited", body = wire::Error, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::Error)), security(("bearer" = [])))]
pub(super) async fn list_customers(
    State(state): State<AppState>,
    Headers(headers): Headers,
    RawQuery(q): RawQuery,
) -> InResult {
    let viewer = authenticate(&state, &headers).await?;
    let org = viewer.org_only()?.to_string();
    let q = Query::parse(q.as_deref())?;
    let (limit, offset) = q.page()?;
    let (rows, total) = state.store.in_customers(&org, q.one("search_query"), limit, offset).await?;
    let items = rows
        .iter()
        .map(|r| wire::CustomerSummary {
            id: r.id.clone(),
            connection_count: r.connection_count,
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
        })
        .collect();
    typed(wire::CustomerPage::new(items, total, limit, offset))
}
