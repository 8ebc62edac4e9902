//! The sandbox's rules, for teams testing against Patchbay: fault rules and
//! when they fire, the request journal and its queries, what a journal keeps of
//! a body (secrets redacted), path globs and durations. The HTTP layer applies
//! them (`patchbay-http/src/sandbox/`).

pub mod faults;
pub mod journal;
pub mod redact;

/// Which way a request goes: to Patchbay, or from it to the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

/// Whether `path` matches `glob`: `*` matches within one path segment, `**`
/// across segments, every other character itself.
pub fn glob_matches(glob: &str, path: &str) -> bool {
    fn go(g: &[u8], p: &[u8]) -> bool {
        match g {
            [] => p.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=p.len()).any(|i| go(rest, &p[i..])),
            [b'*', rest @ ..] => {
                let seg = p.iter().position(|&c| c == b'/').unwrap_or(p.len());
                (0..=seg).any(|i| go(rest, &p[i..]))
            }
            [c, rest @ ..] => p.first() == Some(c) && go(rest, &p[1..]),
        }
    }
    go(glob.as_bytes(), path.as_bytes())
}

/// A duration such as `250ms`, `30s`, `5m`, `2h`, `1d` or `1h30m`, in
/// milliseconds (a leading `-` moves back).
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {text:?}: expected e.g. 250ms, 30s, 5m, 2h, 1d or 1h30m");
    let t = text.trim();
    let (sign, t) = match t.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1, t),
    };
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    // About 290 years either way is plenty for a test clock.
    if total > 1 << 53 {
        return Err(bad());
    }
    Ok(sign * total)
}

/// An RFC 3339 instant in milliseconds since the epoch.
pub fn parse_instant_ms(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("invalid instant {text:?}: expected RFC 3339, e.g. 2027-01-01T00:00:00Z"))
}

/// Milliseconds since the epoch as RFC 3339 with milliseconds, UTC.
pub fn instant_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("/v1/connection/*", "/v1/connection/conn_1"));
        assert!(!glob_matches("/v1/connection/*", "/v1/connection/conn_1/x"));
        assert!(glob_matches("/v1/**", "/v1/connection/conn_1/x"));
        assert!(glob_matches("/export/**/runs", "/export/connections/abc/runs"));
        assert!(glob_matches("/a/*/c", "/a//c"));
        assert!(glob_matches("/exact", "/exact"));
        assert!(!glob_matches("/exact", "/exact/"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("/x*y", "/xaby"));
        assert!(!glob_matches("/x*y", "/xa/by"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1d"), Ok(86_400_000));
        assert_eq!(parse_duration_ms("-5s"), Ok(-5_000));
        for bad in ["", "5", "h", "5x", "1h 30m", "99999999999999999999s", "-"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_instant_ms("1970-01-01T00:00:01Z"), Ok(1000));
        assert!(parse_instant_ms("yesterday").is_err());
        assert_eq!(instant_text(1500), "1970-01-01T00:00:01.500Z");
    }
}
