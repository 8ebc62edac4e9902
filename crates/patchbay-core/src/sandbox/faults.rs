//! Fault rules: what a rule matches, what it does, and when it fires
//! (probability, the first N matches, every Nth, until an expiry).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::{Direction, glob_matches, instant_text, parse_duration_ms, parse_instant_ms};

/// The calls Patchbay makes to the outside, as outbound rules name them.
pub const OUTBOUND_CALLS: [&str; 6] =
    ["partner_initialize", "partner_notify", "oauth_token", "api_key_check", "webhook", "blob_upload"];

/// The faces a rule can name.
pub const FACES: [&str; 4] = ["network", "export", "integrations", "admin"];

/// A rule as a client writes it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub direction: Direction,
    #[serde(default, rename = "match")]
    pub matcher: Matcher,
    pub effect: Effect,
    /// Chance that a match fires (0–1, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub probability: Option<f64>,
    /// Fires on the first N matches only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub first: Option<u64>,
    /// Fires on every Nth match only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub every: Option<u64>,
    /// No longer fires from this instant (RFC 3339, sandbox clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// No longer fires this long after it was made (`30s`, `5m`, `2h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^([0-9]{1,15}(ms|s|m|h|d))+$")]
    pub ttl: Option<String>,
}

/// What a rule matches; every field given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(network|export|integrations|admin)$")]
    pub face: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z]+$")]
    pub method: Option<String>,
    /// Inbound: the route template, as the journal shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[/*]")]
    pub route: Option<String>,
    /// A glob on the path (`*` within a segment, `**` across).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[/*]")]
    pub path: Option<String>,
    /// Inbound: the authenticated caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Inbound: the enterprise (Network) or organisation (Integrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Inbound: headers that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Outbound: which call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(partner_initialize|partner_notify|oauth_token|api_key_check|webhook|blob_upload)$")]
    pub call: Option<String>,
    /// Outbound: the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Answer (inbound) or see (outbound) this status.
    Status {
        #[schema(minimum = 400, maximum = 599)]
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(max_length = 1000)]
        message: Option<String>,
    },
    /// Wait `ms` (or a uniform draw up to `max_ms`, not below `ms`) first.
    Latency {
        #[schema(maximum = 600000)]
        ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(maximum = 600000)]
        max_ms: Option<u64>,
    },
    /// Close the connection without an answer (outbound: the call fails so).
    Drop,
    /// Inbound: the real answer, its body trickled at this rate.
    SlowBody {
        #[schema(minimum = 1)]
        bytes_per_second: u64,
    },
    /// Outbound: the call times out.
    Timeout,
    /// Outbound: the provider answers 400 with an OAuth error.
    OauthError {
        #[schema(pattern = "^[ -~]+$")]
        error: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

/// The longest latency a rule may ask for (10 minutes).
pub const MAX_LATENCY_MS: u64 = 600_000;

impl Effect {
    /// The wait of a latency effect, given a draw in `[0, 1)`.
    pub fn latency_ms(&self, draw: f64) -> Option<u64> {
        match self {
            Effect::Latency { ms, max_ms: Some(max) } if max > ms => Some(ms + ((max - ms) as f64 * draw) as u64),
            Effect::Latency { ms, .. } => Some(*ms),
            _ => None,
        }
    }
}

impl RuleSpec {
    /// Checks the rule; the message names the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        let m = &self.matcher;
        let inbound = self.direction == Direction::Inbound;
        if let Some(f) = &m.face
            && !FACES.contains(&f.as_str())
        {
            return Err(format!("match.face must be one of {}", FACES.join(", ")));
        }
        if let Some(method) = &m.method
            && (method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err("match.method must be an HTTP method".into());
        }
        for (name, v) in [("route", &m.route), ("path", &m.path)] {
            if v.as_deref().is_some_and(|p| !p.starts_with('/') && !p.starts_with('*')) {
                return Err(format!("match.{name} must start with /"));
            }
        }
        if inbound {
            if m.call.is_some() || m.host.is_some() {
                return Err("match.call and match.host apply to outbound rules".into());
            }
            if matches!(self.effect, Effect::Timeout | Effect::OauthError { .. }) {
                return Err("effect timeout and oauth_error apply to outbound rules".into());
            }
        } else {
            if m.route.is_some() || m.principal.is_some() || m.tenant.is_some() || !m.headers.is_empty() {
                return Err("match.route, principal, tenant and headers apply to inbound rules".into());
            }
            if let Some(c) = &m.call
                && !OUTBOUND_CALLS.contains(&c.as_str())
            {
                return Err(format!("match.call must be one of {}", OUTBOUND_CALLS.join(", ")));
            }
            if matches!(self.effect, Effect::SlowBody { .. }) {
                return Err("effect slow_body applies to inbound rules".into());
            }
        }
        match &self.effect {
            Effect::Status { status, .. } if !(400..=599).contains(status) => {
                return Err("effect.status must be between 400 and 599".into());
            }
            Effect::Latency { ms, max_ms } => {
                if *ms > MAX_LATENCY_MS || max_ms.is_some_and(|x| x > MAX_LATENCY_MS) {
                    return Err(format!("effect latency must be at most {MAX_LATENCY_MS} ms"));
                }
                if max_ms.is_some_and(|x| x < *ms) {
                    return Err("effect.max_ms must not be below effect.ms".into());
                }
            }
            Effect::SlowBody { bytes_per_second: 0 } => return Err("effect.bytes_per_second must be at least 1".into()),
            Effect::OauthError { error, .. }
                if error.is_empty() || !error.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
            {
                return Err("effect.error must be an OAuth error code".into());
            }
            Effect::Status { message: Some(msg), .. } if msg.len() > 1000 => {
                return Err("effect.message must be at most 1000 characters".into());
            }
            _ => {}
        }
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err("probability must be between 0 and 1".into());
        }
        if self.first == Some(0) || self.every == Some(0) {
            return Err("first and every must be at least 1".into());
        }
        if self.expires_at.is_some() && self.ttl.is_some() {
            return Err("give expires_at or ttl, not both".into());
        }
        if let Some(t) = &self.expires_at {
            parse_instant_ms(t).map_err(|e| format!("expires_at: {e}"))?;
        }
        if let Some(t) = &self.ttl {
            let ms = parse_duration_ms(t).map_err(|e| format!("ttl: {e}"))?;
            if ms <= 0 {
                return Err("ttl must be positive".into());
            }
        }
        Ok(())
    }

    /// Whether the rule names the caller (and so is checked once the caller is known).
    pub fn names_caller(&self) -> bool {
        self.matcher.principal.is_some() || self.matcher.tenant.is_some()
    }
}

/// What is known of a request or call when rules are tried.
#[derive(Debug, Default, Clone)]
pub struct Probe<'a> {
    pub direction: Direction,
    pub face: &'a str,
    pub method: &'a str,
    pub route: Option<&'a str>,
    pub path: &'a str,
    pub principal: Option<&'a str>,
    pub tenant: Option<&'a str>,
    /// Request headers (names lower case).
    pub headers: &'a [(String, String)],
    pub call: Option<&'a str>,
    pub host: Option<&'a str>,
}

impl Matcher {
    fn matches(&self, p: &Probe<'_>) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
        self.face.as_deref().is_none_or(|f| f == p.face)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(p.method))
            && eq(&self.route, p.route)
            && self.path.as_deref().is_none_or(|g| glob_matches(g, p.path))
            && eq(&self.principal, p.principal)
            && eq(&self.tenant, p.tenant)
            && eq(&self.call, p.call)
            && self.host.as_deref().is_none_or(|h| p.host.is_some_and(|ph| ph.eq_ignore_ascii_case(h)))
            && self
                .headers
                .iter()
                .all(|(name, value)| p.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value))
    }
}

/// A stored rule and its counters.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub spec: RuleSpec,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    matched: AtomicU64,
    hits: AtomicU64,
}

/// A rule as listed: its id, the spec's fields, counters and times.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    pub id: String,
    pub direction: Direction,
    #[serde(rename = "match")]
    pub matcher: Matcher,
    pub effect: Effect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Matches seen.
    pub matched: u64,
    /// Times applied.
    pub hits: u64,
    pub created_at: String,
}

impl Rule {
    pub fn view(&self) -> RuleView {
        let s = self.spec.clone();
        RuleView {
            id: self.id.clone(),
            direction: s.direction,
            matcher: s.matcher,
            effect: s.effect,
            probability: s.probability,
            first: s.first,
            every: s.every,
            expires_at: s.expires_at,
            ttl: s.ttl,
            matched: self.matched.load(Ordering::SeqCst),
            hits: self.hits.load(Ordering::SeqCst),
            created_at: instant_text(self.created_ms),
        }
    }

    /// Counts a match and says whether it fires.
    fn fire(&self, now_ms: i64, draw: &mut dyn FnMut() -> f64) -> bool {
        if self.expires_ms.is_some_and(|e| now_ms >= e) {
            return false;
        }
        let n = self.matched.fetch_add(1, Ordering::SeqCst) + 1;
        if self.spec.first.is_some_and(|f| n > f) || self.spec.every.is_some_and(|e| !n.is_multiple_of(e)) {
            return false;
        }
        if let Some(p) = self.spec.probability
            && p < 1.0
            && draw() >= p
        {
            return false;
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// Where a rule is tried: before the handler (rules that do not name the
/// caller) or once the caller is authenticated (rules that do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Request,
    Caller,
}

/// The rule set, in creation order.
#[derive(Debug, Default)]
pub struct Faults {
    rules: RwLock<Vec<Arc<Rule>>>,
}

impl Faults {
    /// Adds a rule (validated) made at `now_ms` with this id.
    pub fn add(&self, id: String, spec: RuleSpec, now_ms: i64) -> Result<Arc<Rule>, String> {
        spec.validate()?;
        let expires_ms = match (&spec.expires_at, &spec.ttl) {
            (Some(t), _) => Some(parse_instant_ms(t)?),
            (None, Some(t)) => Some(now_ms + parse_duration_ms(t)?),
            _ => None,
        };
        let rule = Arc::new(Rule {
            id,
            spec,
            created_ms: now_ms,
            expires_ms,
            matched: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        });
        self.write().push(rule.clone());
        Ok(rule)
    }

    pub fn list(&self) -> Vec<Arc<Rule>> {
        self.read().clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Rule>> {
        self.read().iter().find(|r| r.id == id).cloned()
    }

    pub fn delete(&self, id: &str) -> bool {
        let mut rules = self.write();
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    /// Deletes every rule; how many there were.
    pub fn clear(&self) -> usize {
        std::mem::take(&mut *self.write()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether any inbound rule names the caller.
    pub fn any_caller_rules(&self) -> bool {
        self.read().iter().any(|r| r.spec.direction == Direction::Inbound && r.spec.names_caller())
    }

    /// The first rule of this stage that matches and fires: its id and effect.
    pub fn check(
        &self,
        probe: &Probe<'_>,
        stage: Stage,
        now_ms: i64,
        draw: &mut dyn FnMut() -> f64,
    ) -> Option<(String, Effect)> {
        let rules = self.read();
        rules
            .iter()
            .filter(|r| r.spec.direction == probe.direction)
            .filter(|r| probe.direction == Direction::Outbound || r.spec.names_caller() == (stage == Stage::Caller))
            .filter(|r| r.spec.matcher.matches(probe))
            .find(|r| r.fire(now_ms, draw))
            .map(|r| (r.id.clone(), r.spec.effect.clone()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Rule>>> {
        self.rules.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Rule>>> {
        self.rules.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> RuleSpec {
        serde_json::from_value(v).unwrap()
    }

    fn probe<'a>(path: &'a str, principal: Option<&'a str>) -> Probe<'a> {
        Probe {
            face: "integrations",
            method: "GET",
            route: Some("/v1/connection"),
            path,
            principal,
            ..Default::default()
        }
    }

    #[test]
    fn first_every_probability_and_expiry() {
        let f = Faults::default();
        let mut one = || 0.0;
        f.add(
            "a".into(),
            spec(json!({"match": {"route": "/v1/connection"}, "effect": {"type": "drop"}, "first": 2})),
            0,
        )
        .unwrap();
        let p = probe("/v1/connection", None);
        assert_eq!(f.check(&p, Stage::Request, 0, &mut one).map(|x| x.0).as_deref(), Some("a"));
        assert!(f.check(&p, Stage::Request, 0, &mut one).is_some());
        assert!(f.check(&p, Stage::Request, 0, &mut one).is_none(), "first: 2 is spent");
        let v = f.get("a").unwrap().view();
        assert_eq!((v.matched, v.hits), (3, 2));
        f.clear();

        f.add("e".into(), spec(json!({"effect": {"type": "drop"}, "every": 3})), 0).unwrap();
        let fired: Vec<bool> = (0..6).map(|_| f.check(&p, Stage::Request, 0, &mut one).is_some()).collect();
        assert_eq!(fired, [false, false, true, false, false, true]);
        f.clear();

        f.add("p".into(), spec(json!({"effect": {"type": "drop"}, "probability": 0.5})), 0).unwrap();
        assert!(f.check(&p, Stage::Request, 0, &mut || 0.49).is_some());
        assert!(f.check(&p, Stage::Request, 0, &mut || 0.5).is_none());
        f.clear();

        f.add("t".into(), spec(json!({"effect": {"type": "drop"}, "ttl": "30s"})), 1_000).unwrap();
        assert!(f.check(&p, Stage::Request, 30_999, &mut one).is_some());
        assert!(f.check(&p, Stage::Request, 31_000, &mut one).is_none(), "expired on the sandbox clock");
    }

    #[test]
    fn stages_and_matchers() {
        let f = Faults::default();
        let mut one = || 0.0;
        f.add(
            "c".into(),
            spec(json!({"match": {"principal": "org_a"}, "effect": {"type": "status", "status": 503}})),
            0,
        )
        .unwrap();
        assert!(f.check(&probe("/v1/connection", Some("org_a")), Stage::Request, 0, &mut one).is_none());
        assert!(f.check(&probe("/v1/connection", Some("org_b")), Stage::Caller, 0, &mut one).is_none());
        assert!(f.check(&probe("/v1/connection", Some("org_a")), Stage::Caller, 0, &mut one).is_some());
        assert!(f.any_caller_rules());
        f.clear();
        f.add(
            "h".into(),
            spec(json!({"match": {"path": "/v1/**", "method": "get", "headers": {"X-Case": "7"}},
                         "effect": {"type": "latency", "ms": 5, "max_ms": 15}})),
            0,
        )
        .unwrap();
        let headers = [("x-case".to_string(), "7".to_string())];
        let mut p = probe("/v1/connection/x", None);
        assert!(f.check(&p, Stage::Request, 0, &mut one).is_none(), "header missing");
        p.headers = &headers;
        let (_, effect) = f.check(&p, Stage::Request, 0, &mut one).unwrap();
        assert_eq!(effect.latency_ms(0.5), Some(10));
        // Outbound rules only see outbound calls.
        f.clear();
        f.add(
            "o".into(),
            spec(json!({"direction": "outbound", "match": {"call": "oauth_token", "host": "Example.com"},
                         "effect": {"type": "oauth_error", "error": "invalid_grant"}})),
            0,
        )
        .unwrap();
        let out = Probe {
            direction: Direction::Outbound,
            face: "integrations",
            method: "POST",
            path: "/token",
            call: Some("oauth_token"),
            host: Some("example.com"),
            ..Default::default()
        };
        assert!(f.check(&out, Stage::Request, 0, &mut one).is_some());
        assert!(f.check(&probe("/token", None), Stage::Request, 0, &mut one).is_none());
        assert!(f.delete("o") && !f.delete("o"));
    }

    #[test]
    fn invalid_rules_are_refused() {
        for (bad, why) in [
            (json!({"effect": {"type": "status", "status": 200}}), "between 400"),
            (json!({"effect": {"type": "timeout"}}), "outbound"),
            (json!({"direction": "outbound", "effect": {"type": "slow_body", "bytes_per_second": 5}}), "inbound"),
            (json!({"direction": "outbound", "match": {"principal": "x"}, "effect": {"type": "drop"}}), "inbound"),
            (json!({"direction": "outbound", "match": {"call": "fax"}, "effect": {"type": "drop"}}), "match.call"),
            (json!({"match": {"face": "bank"}, "effect": {"type": "drop"}}), "match.face"),
            (json!({"effect": {"type": "latency", "ms": 10, "max_ms": 5}}), "max_ms"),
            (json!({"effect": {"type": "latency", "ms": 900000}}), "at most"),
            (json!({"effect": {"type": "drop"}, "probability": 1.5}), "probability"),
            (json!({"effect": {"type": "drop"}, "first": 0}), "at least 1"),
            (json!({"effect": {"type": "drop"}, "ttl": "soon"}), "ttl"),
            (json!({"effect": {"type": "drop"}, "ttl": "1s", "expires_at": "2027-01-01T00:00:00Z"}), "not both"),
            (json!({"match": {"route": "v1"}, "effect": {"type": "drop"}}), "start with /"),
        ] {
            let err = spec(bad.clone()).validate().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(serde_json::from_value::<RuleSpec>(json!({"effect": {"type": "explode"}})).is_err());
        assert!(serde_json::from_value::<RuleSpec>(json!({"effect": {"type": "drop"}, "extra": 1})).is_err());
    }
}
