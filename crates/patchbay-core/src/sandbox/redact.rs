//! What the journal keeps of a body or a query: JSON and form fields whose
//! names look secret are replaced, other text kept, binary left out, all cut at
//! a size.

use serde_json::Value;

/// The replacement for a secret value.
pub const REDACTED: &str = "[redacted]";

/// Whether a field of this name holds a secret (tokens, keys, secrets,
/// passwords, codes, signatures, verifiers, cookies).
pub fn secret_name(name: &str) -> bool {
    let n: String = name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    const PARTS: [&str; 11] = [
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "apikey",
        "privatekey",
        "signature",
        "authorization",
        "codeverifier",
        "assertion",
    ];
    // `sig`: the signature of a SAS URL (Export's outputSasUrl / logsSasUrl).
    const WHOLE: [&str; 8] = ["key", "code", "otp", "pin", "cookie", "prv", "xprv", "sig"];
    PARTS.iter().any(|p| n.contains(p)) || WHOLE.contains(&n.as_str())
}

/// A JSON value with every secret field's value replaced.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if secret_name(k) && !val.is_null() {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact_json(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        // A link with a query (a magic link's token, a SAS URL's signature).
        Value::String(s) if s.contains('?') && (s.starts_with("http://") || s.starts_with("https://")) => {
            if let Some((base, query)) = s.split_once('?') {
                let redacted = redact_path_and_query(base, Some(query));
                *s = redacted;
            }
        }
        _ => {}
    }
}

/// A `name=value&…` form or query with secret values replaced.
pub fn redact_form(text: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        out.append_pair(&k, if secret_name(&k) { REDACTED } else { &v });
    }
    out.finish()
}

/// A path with its query's secret values replaced.
pub fn redact_path_and_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{}", redact_form(q)),
        _ => path.to_string(),
    }
}

/// What the journal keeps of a body: `None` when empty or binary; JSON as a value
/// (or, over `limit` bytes once redacted, as its text cut there); forms and
/// other text as a string.
pub fn body_for_journal(content_type: Option<&str>, body: &[u8], limit: usize) -> Option<Value> {
    if body.is_empty() || limit == 0 {
        return None;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if let Ok(mut v) = serde_json::from_slice::<Value>(body)
        && (ct.contains("json") || ct.is_empty() || matches!(v, Value::Object(_) | Value::Array(_)))
    {
        redact_json(&mut v);
        let text = v.to_string();
        return Some(if text.len() <= limit { v } else { Value::String(cut(&text, limit)) });
    }
    let text = std::str::from_utf8(body).ok()?;
    if ct.starts_with("application/x-www-form-urlencoded") {
        return Some(Value::String(cut(&redact_form(text), limit)));
    }
    // HTML pages (the hosted connect page) carry tokens in links and forms: left out.
    if ct.starts_with("text/html") {
        return None;
    }
    if ct.starts_with("text/") || ct.contains("xml") || ct.is_empty() {
        return Some(Value::String(cut(text, limit)));
    }
    None
}

/// The first `limit` bytes (on a character boundary), marked when cut.
fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced() {
        let mut v = json!({"settings": {"oauth": {"credentials": {"access_token": "a", "refresh_token": "r",
            "expires_at": "2030"}}}, "apiKey": "k", "client_secret": "s", "id": "conn_1", "code": "c",
            "code_verifier": "v", "items": [{"password": "p", "name": "n"}], "key": null, "publicKey": "pk",
            "X-BitGo-Signature": "sig"});
        redact_json(&mut v);
        assert_eq!(
            v,
            json!({"settings": {"oauth": {"credentials": {"access_token": REDACTED, "refresh_token": REDACTED,
                "expires_at": "2030"}}}, "apiKey": REDACTED, "client_secret": REDACTED, "id": "conn_1",
                "code": REDACTED, "code_verifier": REDACTED, "items": [{"password": REDACTED, "name": "n"}],
                "key": null, "publicKey": "pk", "X-BitGo-Signature": REDACTED})
        );
        assert_eq!(
            redact_form("grant_type=refresh_token&refresh_token=abc&client_id=cid&client_secret=x"),
            "grant_type=refresh_token&refresh_token=%5Bredacted%5D&client_id=cid&client_secret=%5Bredacted%5D"
        );
        assert_eq!(redact_path_and_query("/connect", Some("token=eyJ&view=x")), "/connect?token=%5Bredacted%5D&view=x");
        assert_eq!(redact_path_and_query("/v1/x", None), "/v1/x");
        let mut v = json!({"magic_link_url": "http://h/connect?token=eyJ&view=add", "outputSasUrl": "https://b/c?sv=1&sig=abc",
                           "note": "what? no link"});
        redact_json(&mut v);
        assert_eq!(
            v,
            json!({"magic_link_url": "http://h/connect?token=%5Bredacted%5D&view=add",
                   "outputSasUrl": "https://b/c?sv=1&sig=%5Bredacted%5D", "note": "what? no link"})
        );
    }

    #[test]
    fn bodies_are_kept_within_the_limit() {
        assert_eq!(body_for_journal(Some("application/json"), br#"{"a":1}"#, 100), Some(json!({"a": 1})));
        assert_eq!(
            body_for_journal(Some("application/json"), br#"{"token":"abcdef"}"#, 100),
            Some(json!({"token": REDACTED}))
        );
        assert_eq!(
            body_for_journal(Some("application/json"), br#"{"a":"0123456789"}"#, 8),
            Some(json!("{\"a\":\"01…"))
        );
        assert_eq!(body_for_journal(Some("application/zip"), b"PK\x03\x04\xff", 100), None);
        assert_eq!(body_for_journal(Some("text/plain"), "é".repeat(10).as_bytes(), 3), Some(json!("é…")));
        assert_eq!(body_for_journal(Some("text/html; charset=utf-8"), b"<a href=\"/connect?token=x\">", 100), None);
        assert_eq!(body_for_journal(None, b"", 100), None);
        assert_eq!(
            body_for_journal(Some("application/x-www-form-urlencoded"), b"code=1&state=2", 100),
            Some(json!("code=%5Bredacted%5D&state=2"))
        );
    }
}
