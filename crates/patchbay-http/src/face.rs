//! The four API faces and their error shapes, plus the guard every request
//! runs under: panics and timeouts become errors in the face's shape.

use std::panic::AssertUnwindSafe;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use serde_json::{Value, json};

/// The message of the 400 for a NUL character in a value to be stored or looked
/// up (PostgreSQL text cannot hold one); each face says it in its own shape.
pub const NUL_REFUSED: &str = "Values must not contain NUL characters.";

/// The request's headers, moved out of the request instead of cloned (axum's
/// `HeaderMap` extractor copies the whole map). Nothing extracted after it
/// reads headers: the handlers' last extractors are `Bytes` bodies, paths and
/// queries, none of which look at them.
pub struct Headers(pub axum::http::HeaderMap);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Headers {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Headers(std::mem::take(&mut parts.headers)))
    }
}

/// A JSON response (`application/json`), with the bytes `axum::Json` would
/// write, serialised by `sonic-rs`: its SIMD string escaping made a list page
/// of 100 connections a third faster than `serde_json`'s byte-at-a-time loop
/// (docs/benchmarks.md, round 5; the test below checks the bytes are the same).
///
/// The buffer starts at 1 KiB, which holds one connection object: `sonic_rs::to_vec`
/// starts at 128 bytes and grew (reallocating and copying) three times for one.
pub fn json_response<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    let mut buf = Vec::with_capacity(1024);
    match sonic_rs::to_writer(&mut buf, v) {
        Ok(()) => json_bytes_response(status, buf),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A JSON response of bytes already written (by [`write_json_str`] and literal
/// punctuation): for the objects answered most often, written field by field.
pub fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` (and sonic-rs)
/// escape it: `"` and `\` with a backslash, `\b \f \n \r \t` by name, other
/// bytes below 0x20 as `\u00xx` (lowercase hex), everything else as it is.
/// Strings with nothing to escape (ids, dates, most names) are copied whole,
/// found eight bytes at a time.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if nothing_to_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        let mut from = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let named: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..0x20 => &[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]],
                _ => continue,
            };
            out.extend_from_slice(&bytes[from..i]);
            out.extend_from_slice(named);
            from = i + 1;
        }
        out.extend_from_slice(&bytes[from..]);
    }
    out.push(b'"');
}

/// Appends an optional string: the string, or `null`.
pub fn write_json_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `[a,b,…]`, each item written by `write`.
pub fn write_json_list<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// Appends a timestamp (milliseconds) as the JSON string `timestamp` writes.
pub fn write_json_millis(out: &mut Vec<u8>, ms: i64) {
    match patchbay_core::network::timestamp_ascii(ms) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(&text);
            out.push(b'"');
        }
        // Years outside 0..=9999: chrono's longer form.
        None => write_json_str(out, &patchbay_core::network::timestamp(ms)),
    }
}

/// Whether no byte needs escaping, tested a word at a time: whole words, then
/// the last eight bytes again (or, for a shorter string, the bytes padded).
fn nothing_to_escape(bytes: &[u8]) -> bool {
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("eight bytes"));
    let mut words = bytes.chunks_exact(8);
    if words.any(|w| needs_escape(word(w))) {
        return false;
    }
    let last = match bytes.len() {
        0 => return true,
        n if n >= 8 => word(&bytes[n - 8..]),
        n => {
            let mut padded = [b'a'; 8];
            padded[..n].copy_from_slice(bytes);
            u64::from_le_bytes(padded)
        }
    };
    !needs_escape(last)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any of the eight bytes is below 0x20, `"` or `\\` (each test finds
/// whether some byte of a word is zero, or less than n, without false negatives).
const fn needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * b'"' as u64);
    let backslash = word ^ (ONES * b'\\' as u64);
    const fn zero(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v
    }
    (below_space | zero(quote) | zero(backslash)) & HIGH != 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Face {
    /// BitGo OES: `{"error": "<message>"}`.
    Network,
    /// iTwin Export: `{"error": {"code", "message"}}`.
    Export,
    /// OpenInt: `{"code": "<tRPC code>", "message"}`.
    Integrations,
    /// Patchbay's admin API: `{"error": "<message>"}` (plus `path` for seed problems).
    Admin,
}

impl Face {
    pub const ALL: [Face; 4] = [Face::Network, Face::Export, Face::Integrations, Face::Admin];

    /// The face's place in `ALL` (a new face fails to compile here until it has one).
    pub const fn index(self) -> usize {
        match self {
            Face::Network => 0,
            Face::Export => 1,
            Face::Integrations => 2,
            Face::Admin => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Face::Network => "network",
            Face::Export => "export",
            Face::Integrations => "integrations",
            Face::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Face> {
        Face::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The face whose prefix a request path carries (the admin API and the
    /// platform's own endpoints otherwise).
    pub fn of_path(path: &str) -> Face {
        if path.starts_with("/api/network/") {
            Face::Network
        } else if path.starts_with("/export/") || path == "/export" {
            Face::Export
        } else if path.starts_with("/v1/") || path.starts_with("/v2/") || path.starts_with("/api/v2/") {
            Face::Integrations
        } else {
            Face::Admin
        }
    }

    /// The error body of this face for a status and message.
    pub fn error_body(self, status: StatusCode, message: &str) -> Value {
        match self {
            Face::Network | Face::Admin => json!({ "error": message }),
            Face::Export => json!({ "error": { "code": export_code(status), "message": message } }),
            Face::Integrations => json!({ "code": trpc_code(status), "message": message }),
        }
    }

    pub fn error(self, status: StatusCode, message: &str) -> Response {
        (status, axum::Json(self.error_body(status, message))).into_response()
    }

    /// 429 with `Retry-After` in seconds.
    pub fn rate_limited(self, retry_after_secs: u64) -> Response {
        let message = match self {
            // iTwin's documented wording.
            Face::Export => {
                "The client sent more requests than allowed by this API for the current tier of the client.".into()
            }
            _ => format!("Rate limit exceeded; retry after {retry_after_secs} seconds."),
        };
        let mut resp = self.error(StatusCode::TOO_MANY_REQUESTS, &message);
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        resp
    }
}

/// iTwin Platform error codes for platform-level failures.
fn export_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "InvalidRequest",
        401 => "Unauthorized",
        403 => "InsufficientPermissions",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        408 => "RequestTimeout",
        413 => "RequestTooLarge",
        422 => "InvalidRequest",
        429 => "RateLimitExceeded",
        503 => "ServiceUnavailable",
        _ => "InternalServerError",
    }
}

/// The absolute base URL for links: the configured public one, else the request's
/// `Host` under this server's scheme (`https` on a TLS port).
pub fn base_url(config: &crate::state::HttpConfig, headers: &axum::http::HeaderMap) -> String {
    if let Some(b) = &config.public_base_url {
        return b.trim_end_matches('/').to_string();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{}://{host}", if config.tls { "https" } else { "http" })
}

/// tRPC error code names, as OpenInt returns them.
fn trpc_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_SUPPORTED",
        408 => "TIMEOUT",
        409 => "CONFLICT",
        412 => "PRECONDITION_FAILED",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        429 => "TOO_MANY_REQUESTS",
        501 => "NOT_IMPLEMENTED",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        _ => "INTERNAL_SERVER_ERROR",
    }
}

/// Runs a request's handler so that a panic answers 500 and exceeding the
/// request timeout answers 503, both in the face's error shape.
pub async fn guard<F>(face: Face, request_id: &str, timeout: std::time::Duration, handler: F) -> Response
where
    F: std::future::Future<Output = Response>,
{
    match tokio::time::timeout(timeout, AssertUnwindSafe(handler).catch_unwind()).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            tracing::error!(request_id, face = face.name(), panic = %what, "handler panicked");
            face.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
        }
        Err(_) => {
            tracing::warn!(request_id, face = face.name(), "request timed out");
            face.error(StatusCode::SERVICE_UNAVAILABLE, "The request took too long and was abandoned.")
        }
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[tokio::test]
    async fn json_response_writes_what_serde_json_writes() {
        let v = json!({
            "floats": [1.0, 0.1, 1e300, -0.0, 2.5e-8, 123456789.125, f64::MAX, f64::MIN_POSITIVE],
            "ints": [0, -1, u64::MAX, i64::MIN, 9007199254740993u64],
            "text": ["\u{0}\u{1f}\u{7f}", "\"\\/", "\u{2028}\u{2029}", "</script>", "é😀", "\t\n\r\u{8}\u{c}", ""],
            "nested": {"z": null, "a": [true, false, {}], "m": []},
        });
        let resp = json_response(StatusCode::CREATED, &v);
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&body), serde_json::to_string(&v).unwrap());
    }

    #[test]
    fn write_json_str_escapes_as_serde_json_does() {
        let mut every_ascii: String = (0u8..0x80).map(char::from).collect();
        every_ascii.push_str("é😀\u{2028}");
        let mut cases = vec![
            String::new(),
            "a".into(),
            "0123456".into(),
            "01234567".into(),
            "012345678".into(),
            "9a2b4c6d-8e0f-4a1b-8c3d-5e7f9a1b3c02".into(),
            "Desk \"1\" \\ \u{1} é".into(),
            "\u{7f}\u{80}\u{ff}".into(),
            every_ascii,
        ];
        // Each byte that needs escaping, at every place in and around a word.
        for bad in ['"', '\\', '\n', '\u{0}', '\u{1f}', '\u{8}'] {
            for at in 0..18 {
                let mut s: String = "abcdefghijklmnopq".chars().take(at).collect();
                s.push(bad);
                cases.push(s.clone()); // ending with it (short strings are padded)
                s.push_str("rstuvwxyz");
                cases.push(s);
            }
        }
        // Bytes next to the thresholds the word test works with.
        for b in [0x1fu8, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f] {
            cases.push(std::iter::repeat_n(char::from(b), 19).collect());
        }
        for s in cases {
            let mut out = b"x".to_vec();
            write_json_str(&mut out, &s);
            assert_eq!(&out[1..], serde_json::to_string(&s).unwrap().as_bytes(), "{s:?}");
        }
    }
}
