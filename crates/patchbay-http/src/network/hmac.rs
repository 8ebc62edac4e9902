//! BitGo's v2 authentication on the Network face (`patchbay_core::bitgo_hmac` has
//! the rules). A request with `BitGo-Auth-Version` is checked here before its
//! handler runs: the bearer is the token's hash, the token is found sealed
//! (`network.access_token`), `Auth-Timestamp` and `HMAC` are verified, and the
//! handler then sees the token itself as its bearer, so the face's one
//! authorisation chain applies. The answer is signed with `hmac` and
//! `timestamp`, as `@bitgo/sdk-hmac`'s `verifyResponse` expects.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use patchbay_core::bitgo_hmac::{self, AuthVersion, V2Error};
use patchbay_core::seed::kind;
use tower_service::Service;

use crate::AppState;
use crate::face::Face;

/// The header that asks for v2 or v3 authentication.
pub const AUTH_VERSION: &str = "bitgo-auth-version";

/// Whether a Network request asks for BitGo's HMAC authentication.
pub fn wants_v2(req: &Request) -> bool {
    req.headers().contains_key(AUTH_VERSION)
}

fn unauthorized(message: &str) -> Response {
    Face::Network.error(StatusCode::UNAUTHORIZED, message)
}

/// Verifies a v2 request, runs it through `inner` with the token as its bearer,
/// and signs the answer. `body` is the request's whole body (already read).
pub async fn v2<S>(state: AppState, req: Request, body: axum::body::Bytes, mut inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let (mut parts, _) = req.into_parts();
    let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).map(str::to_string);
    let Some(version) = text(AUTH_VERSION).as_deref().and_then(AuthVersion::parse) else {
        return unauthorized("Unauthorized: BitGo-Auth-Version must be 2.0 or 3.0.");
    };
    let method = parts.method.as_str().to_string();
    let (Some(timestamp), Some(presented)) = (text("auth-timestamp"), text("hmac")) else {
        return unauthorized("Unauthorized: v2 authentication needs the Auth-Timestamp and HMAC headers.");
    };
    let bearer = text(header::AUTHORIZATION.as_str())
        .and_then(|v| {
            v.split_once(' ').filter(|(s, _)| s.eq_ignore_ascii_case("bearer")).map(|(_, t)| t.trim().to_string())
        })
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(bearer) = bearer else {
        return unauthorized("Unauthorized: the access token is invalid or expired.");
    };
    let token = match state.store.get_record("network", kind::NET_ACCESS_TOKEN, &bearer.to_ascii_lowercase()).await {
        Ok(Some(rec)) => match rec.open_secret(&state.vault) {
            Ok(Some(secret)) => secret["token"].as_str().map(str::to_string),
            _ => None,
        },
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "v2 token lookup failed");
            return Face::Network.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.");
        }
    };
    let Some(token) = token else {
        return unauthorized("Unauthorized: the access token is invalid or expired.");
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| parts.uri.path().into());
    match bitgo_hmac::verify_request(
        version,
        &method,
        &token,
        &timestamp,
        &path,
        &body,
        &presented,
        state.clock.now_ms(),
    ) {
        Ok(()) => {}
        Err(V2Error::Stale) => {
            return unauthorized("Unauthorized: the request timestamp is outside the validity window.");
        }
        Err(V2Error::BadTimestamp) => {
            return unauthorized("Unauthorized: Auth-Timestamp must be milliseconds since the epoch.");
        }
        Err(V2Error::BadHmac) => return unauthorized("Unauthorized: the request HMAC is invalid."),
    }
    // The face's own authorisation sees the token, as if sent plainly.
    let Ok(plain) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return unauthorized("Unauthorized: the access token is invalid or expired.");
    };
    parts.headers.insert(header::AUTHORIZATION, plain);
    let resp = match inner.call(Request::from_parts(parts, Body::from(body))).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    sign(&state, version, &method, &token, &path, resp).await
}

/// Adds `hmac` and `timestamp` over the answer's status and body.
async fn sign(
    state: &AppState,
    version: AuthVersion,
    method: &str,
    token: &str,
    path: &str,
    resp: Response,
) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not read an answer to sign it");
            return Face::Network.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.");
        }
    };
    let timestamp = state.clock.now_ms().to_string();
    let subject = bitgo_hmac::response_subject(version, method, &timestamp, path, parts.status.as_u16(), &bytes);
    let hmac = bitgo_hmac::hmac_hex(token, &subject);
    parts.headers.insert("hmac", HeaderValue::from_str(&hmac).expect("hex is a valid header value"));
    parts.headers.insert("timestamp", HeaderValue::from_str(&timestamp).expect("digits are a valid header value"));
    Response::from_parts(parts, Body::from(bytes))
}
