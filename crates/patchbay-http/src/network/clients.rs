//! Clients: onboarding an enterprise as a client, and the client record Connect uses.

use super::*;

pub(super) const TRUST_ORGS: &[&str] = &[
    "BitGo Trust",
    "BitGo New York",
    "BitGo Germany",
    "BitGo Switzerland",
    "BitGo Europe ApS",
    "Frankfurt DE Trust",
    "BitGo Singapore",
    "BitGo Korea",
    "BitGo Custody MENA FZE",
    "BitGo India",
    "BitGo Sister Trust 1",
];

/// The enterprise's client, created on first need.
pub(super) async fn ensure_client(
    state: &AppState,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Record, NetError> {
    // The body is validated even when the client exists already.
    let wallet_id = match body.get("walletId") {
        None | Some(Value::Null) => hex::encode(state.entropy.uuid().as_bytes())[..24].to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(NetError::bad_request("walletId must be a non-empty string.")),
    };
    let public_key = match body.get("publicKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if rules::is_compressed_public_key(&s.to_ascii_lowercase()) => {
            Some(s.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(NetError::bad_request("publicKey must be a 33-byte compressed secp256k1 public key in hex."));
        }
    };
    if let Some(c) = client_of(state, &caller.enterprise().id).await? {
        return Ok(c);
    }
    let rec = RecordWrite {
        tenant: caller.enterprise().id.clone(),
        kind: kind::NET_CLIENT.into(),
        id: state.entropy.uuid_string(),
        data: json!({"enterpriseId": caller.enterprise().id, "walletId": wallet_id, "publicKey": public_key}),
        secret: None,
    };
    state.store.create_record(&rec, &state.vault, state.clock.now_ms()).await?;
    // A concurrent onboarding may have won: answer with whichever exists first.
    client_of(state, &caller.enterprise().id)
        .await?
        .ok_or_else(|| NetError::from(StoreError::Corrupt("client vanished".into())))
}

pub(super) fn client_json(c: &Record, caller: &Caller) -> wire::Client {
    wire::Client {
        id: c.id.clone(),
        enterprise_id: c.tenant.clone(),
        trust_org: caller.trust_org().unwrap_or("BitGo Trust").to_string(),
        wallet_id: c.data["walletId"].as_str().unwrap_or_default().to_string(),
        created_at: timestamp(c.created_at),
        updated_at: timestamp(c.updated_at),
    }
}

#[utoipa::path(post, path = "/api/network/v1/enterprises/{enterpriseId}/clients", operation_id = "v1ClientsPostRoute", tag = "Client Activation",
    params(("enterpriseId" = String, Path, min_length = 1, description = "The enterprise id")), request_body(content = Option<wire::OnboardClientRequest>, description = "Patchbay extension: wallet and signing key"),
    responses((status = 200, description = "The enterprise's client", body = wire::ClientEnvelope), (status = 400, description = "Invalid request", body = wire::ErrorPayload), (status = 401, description = "Not authorised", body = wire::ErrorPayload), (status = 403, description = "No OES licence or missing scope", body = wire::ErrorPayload), (status = 404, description = "Not found", body = wire::ErrorPayload), (status = 429, description = "Rate limited", body = wire::ErrorPayload, headers(("Retry-After" = u64, description = "Seconds to wait"))), (status = 500, description = "Internal error", body = wire::ErrorPayload)),
    security(("bearer" = [])))]
pub(super) async fn onboard_client(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Headers(headers): Headers,
    body: Result<Bytes, BytesRejection>,
) -> NetResult {
    let Path(ent) = path.map_err(path_error)?;
    let caller = authorize(&state, &headers, &ent, true).await?;
    let bytes = body_bytes(body)?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) { Map::new() } else { json_object(&bytes)? };
    let client = ensure_client(&state, &caller, &body).await?;
    typed(wire::ClientEnvelope { client: client_json(&client, &caller) })
}
