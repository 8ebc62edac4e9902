//! Who calls: the bearer token, then the enterprise, membership, OES licence and scopes,
//! in one store query (`Caller`); every Network handler starts here.

use super::*;

/// The authenticated caller, within one enterprise: the store's (shared)
/// answer, not copied per request.
pub(super) struct Caller {
    pub(super) found: std::sync::Arc<patchbay_store::CredentialWith>,
}

impl Caller {
    pub(super) fn enterprise(&self) -> &Record {
        // `authorize` builds a Caller only when the enterprise was found.
        self.found.other.as_ref().expect("a caller's enterprise exists")
    }
    pub(super) fn user_id(&self) -> &str {
        &self.found.credential.principal_id
    }
    pub(super) fn trust_org(&self) -> Option<&str> {
        self.enterprise().data["trustOrg"].as_str()
    }
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Token → enterprise exists (404) → membership (401) → OES licence (403) → scopes (403).
pub(super) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    enterprise_id: &str,
    write: bool,
) -> Result<Caller, NetError> {
    if enterprise_id.is_empty() {
        return Err(NetError::bad_request("enterpriseId must not be empty."));
    }
    let token =
        bearer(headers).ok_or_else(|| NetError::unauthorized("Unauthorized: a bearer access token is required."))?;
    // The token, the caller's user record and the enterprise, in one query.
    let found = state
        .store
        .find_credential_with(
            token,
            ("network", kind::NET_USER),
            Some((enterprise_id, kind::NET_ENTERPRISE, enterprise_id)),
        )
        .await?
        .filter(|c| c.credential.face == "network")
        .ok_or_else(|| NetError::unauthorized("Unauthorized: the access token is invalid or expired."))?;
    let cred = &found.credential;
    if let Err(resp) = state.authenticated(Face::Network, &cred.principal_id, Some(enterprise_id)).await {
        return Err(NetError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: String::new(),
            retry_after: Some(resp),
        });
    }
    let enterprise =
        found.other.as_ref().ok_or_else(|| NetError::not_found(format!("Enterprise {enterprise_id} not found.")))?;
    let member = found
        .principal
        .as_ref()
        .and_then(|u| u.data["enterprises"].as_array())
        .is_some_and(|ents| ents.iter().any(|e| e.as_str() == Some(enterprise_id)));
    if !member {
        return Err(NetError::unauthorized("Caller is not a member of the enterprise."));
    }
    if enterprise.data["oesLicense"].as_bool() != Some(true) {
        return Err(NetError::forbidden("Enterprise does not have OES license."));
    }
    let has = |s: &str| cred.scopes.iter().any(|x| x == s);
    if !has(SCOPE_READ) {
        return Err(NetError::forbidden(format!("The access token lacks the {SCOPE_READ} scope.")));
    }
    if write && !has(SCOPE_WRITE) {
        return Err(NetError::forbidden(format!("The access token lacks the {SCOPE_WRITE} scope.")));
    }
    Ok(Caller { found })
}

pub(super) fn path_error(_: PathRejection) -> NetError {
    NetError::bad_request("Invalid path parameters.")
}

pub(super) fn connection_id(id: &str) -> Result<String, NetError> {
    if is_uuid(id) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(NetError::bad_request(format!("Invalid UUID format for connectionId: {id:?}.")))
    }
}

pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, NetError> {
    body.map_err(|r| NetError::new(r.status(), r.body_text()))
}
