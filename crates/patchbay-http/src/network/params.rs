//! List parameters of the Network face: zero-based paging and array filters
//! that may arrive as repeated keys, `key[]=`, comma-separated values, or (for
//! BitGoJS, which sends them with `.send()` on GET) a JSON body; both merge.

use std::collections::BTreeMap;

use serde_json::Value;

use super::NetError;

/// Default and maximum `pageSize`.
pub const DEFAULT_PAGE_SIZE: i64 = 100;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// Raw values by parameter name, in arrival order.
#[derive(Debug, Default)]
pub struct RawParams(BTreeMap<String, Vec<String>>);

/// Parameters whose values are free text and are never split on commas.
const FREE_TEXT: &[&str] = &["names"];

fn normalise_key(k: &str) -> &str {
    // `key[]` and `key[3]` are the same parameter as `key`.
    match k.find('[') {
        Some(i) if k.ends_with(']') => &k[..i],
        _ => k,
    }
}

impl RawParams {
    fn push(&mut self, key: &str, value: &str) {
        let key = normalise_key(key);
        let entry = self.0.entry(key.to_string()).or_default();
        if FREE_TEXT.contains(&key) || !value.contains(',') {
            entry.push(value.to_string());
        } else {
            // A comma-separated list; empty segments (`a,,b`, a lone `,`) carry nothing.
            entry.extend(value.split(',').filter(|v| !v.is_empty()).map(str::to_string));
        }
    }

    /// Query string and optional JSON body, merged.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, NetError> {
        let mut out = RawParams::default();
        if let Some(q) = query {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                out.push(&k, &v);
            }
        }
        if body.iter().any(|b| !b.is_ascii_whitespace()) {
            let v: Value = serde_json::from_slice(body)
                .map_err(|_| NetError::bad_request("The request body must be a JSON object of filters."))?;
            let Value::Object(map) = v else {
                return Err(NetError::bad_request("The request body must be a JSON object of filters."));
            };
            for (k, v) in map {
                match v {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            out.push(&k, &scalar(&k, &item)?);
                        }
                    }
                    other => out.push(&k, &scalar(&k, &other)?),
                }
            }
        }
        Ok(out)
    }

    fn values(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    fn single(&self, key: &str) -> Result<Option<&str>, NetError> {
        match self.values(key) {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            _ => Err(NetError::bad_request(format!("Invalid value for {key}: expected a single value."))),
        }
    }

    /// `pageSize` and `pageNumber` as (limit, offset).
    pub fn page(&self) -> Result<(i64, i64), NetError> {
        let size = match self.single("pageSize")? {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => s.trim().parse::<i64>().ok().filter(|n| (1..=MAX_PAGE_SIZE).contains(n)).ok_or_else(|| {
                NetError::bad_request(format!(
                    "Invalid value for pageSize: expected an integer from 1 to {MAX_PAGE_SIZE}."
                ))
            })?,
        };
        let number = match self.single("pageNumber")? {
            None => 0,
            Some(s) => s.trim().parse::<i64>().ok().filter(|n| (0..=1_000_000_000).contains(n)).ok_or_else(|| {
                NetError::bad_request("Invalid value for pageNumber: expected a non-negative integer.")
            })?,
        };
        Ok((size, size.saturating_mul(number)))
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, NetError> {
        match self.single(key)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(NetError::bad_request(format!("Invalid value for {key}: expected true or false."))),
        }
    }

    pub fn uuids(&self, key: &str) -> Result<Vec<String>, NetError> {
        let mut out = Vec::new();
        for v in self.values(key) {
            let v = v.trim();
            if !is_uuid(v) {
                return Err(NetError::bad_request(format!("Invalid value for {key}: {v:?} is not a UUID.")));
            }
            out.push(v.to_ascii_lowercase());
        }
        Ok(out)
    }

    /// Every value as given, empty ones included (filters whose items the spec does not
    /// require to be non-empty: an empty value matches nothing).
    pub fn strings_any(&self, key: &str) -> Vec<String> {
        self.values(key).to_vec()
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>, NetError> {
        let mut out = Vec::new();
        for v in self.values(key) {
            if v.is_empty() {
                return Err(NetError::bad_request(format!("Invalid value for {key}: values must not be empty.")));
            }
            out.push(v.clone());
        }
        Ok(out)
    }
}

fn scalar(key: &str, v: &Value) -> Result<String, NetError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(NetError::bad_request(format!("Invalid value for {key}: expected strings."))),
    }
}

/// A UUID in its hyphenated 36-character form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_bracketed_comma_and_body_values_merge() {
        let p = RawParams::parse(
            Some("connectionIds=a&connectionIds[]=b&partnerIds=c,d&names=x,y&pageSize=5"),
            br#"{"connectionIds": ["e"], "active": true, "names": "z"}"#,
        )
        .unwrap();
        assert_eq!(p.values("connectionIds"), ["a", "b", "e"]);
        assert_eq!(p.values("partnerIds"), ["c", "d"]);
        assert_eq!(p.values("names"), ["x,y", "z"]);
        assert_eq!(p.boolean("active").unwrap(), Some(true));
        assert_eq!(p.page().unwrap(), (5, 0));
    }

    #[test]
    fn bad_values_are_400s() {
        let bad = |q: &str| {
            RawParams::parse(Some(q), b"").and_then(|p| {
                p.page()?;
                p.boolean("active")?;
                p.uuids("connectionIds")?;
                p.strings("partnersClientIds")?;
                Ok(())
            })
        };
        for q in [
            "pageSize=0",
            "pageSize=1001",
            "pageSize=x",
            "pageNumber=-1",
            "pageNumber=1.5",
            "active=yes",
            "active=true&active=false",
            "connectionIds=nope",
            "partnersClientIds=",
            "pageSize=1&pageSize=2",
        ] {
            assert!(bad(q).is_err(), "{q}");
        }
        assert!(bad("pageSize=1000&pageNumber=3&active=false").is_ok());
        assert!(RawParams::parse(None, b"[1]").is_err());
        assert!(RawParams::parse(None, b"{nope").is_err());
        assert_eq!(RawParams::parse(Some("pageNumber=2&pageSize=10"), b"").unwrap().page().unwrap(), (10, 20));
    }
}
