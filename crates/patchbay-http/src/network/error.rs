//! The Network face's one error type and its wire shape, `{"error": "<message>"}`
//! (every status, 400 included; docs/compatibility.md).

use super::*;

/// A Network face error: a status and a message, rendered `{"error": message}`.
#[derive(Debug)]
pub struct NetError {
    pub(super) status: StatusCode,
    pub(super) message: String,
    pub(super) retry_after: Option<Response>,
}

impl NetError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(super) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub(super) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
}

impl From<StoreError> for NetError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Nul = e {
            return Self::bad_request(crate::face::NUL_REFUSED);
        }
        tracing::error!(error = %e, "network face storage error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }
}

impl IntoResponse for NetError {
    fn into_response(self) -> Response {
        match self.retry_after {
            Some(resp) => resp,
            None => Face::Network.error(self.status, &self.message),
        }
    }
}

pub(super) type NetResult = Result<Response, NetError>;
