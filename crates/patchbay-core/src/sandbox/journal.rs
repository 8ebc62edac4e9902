//! The request journal: a bounded ring of entries (inbound requests and
//! outbound calls), its queries and the verify check.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Direction, glob_matches, parse_instant_ms};

/// One request or call.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339, sandbox clock.
    pub time: String,
    #[serde(skip)]
    pub time_ms: i64,
    pub direction: Direction,
    pub face: String,
    pub method: String,
    /// The path (and query, secrets redacted); outbound: the URL's.
    pub path: String,
    /// Inbound: the matched route template.
    pub route: Option<String>,
    /// Outbound: which call.
    pub call: Option<String>,
    /// Outbound: the URL's host.
    pub host: Option<String>,
    pub principal: Option<String>,
    pub tenant: Option<String>,
    /// `null` when no answer came.
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub request_id: Option<String>,
    /// The fault rule applied.
    pub fault: Option<String>,
    /// JSON as sent (secrets redacted), or text; `null` when empty or binary.
    #[schema(value_type = Option<serde_json::Value>)]
    pub request_body: Option<Value>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub response_body: Option<Value>,
    /// Outbound: why the call failed.
    pub error: Option<String>,
}

/// A query of the journal (every field optional; all given must hold).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    pub direction: Option<Direction>,
    pub face: Option<String>,
    pub method: Option<String>,
    pub route: Option<String>,
    /// A glob on the path (without its query).
    pub path: Option<String>,
    #[schema(minimum = 100, maximum = 599)]
    #[param(minimum = 100, maximum = 599)]
    pub status: Option<u16>,
    pub principal: Option<String>,
    pub tenant: Option<String>,
    pub call: Option<String>,
    /// RFC 3339, inclusive.
    #[schema(format = DateTime)]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    #[schema(format = DateTime)]
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Lists only: the newest this many.
    pub limit: Option<usize>,
}

impl Filter {
    /// Checks the instants; the message names the field.
    pub fn bounds(&self) -> Result<(Option<i64>, Option<i64>), String> {
        if self.status.is_some_and(|s| !(100..=599).contains(&s)) {
            return Err("status must be an HTTP status, 100 to 599".into());
        }
        let since = self.since.as_deref().map(parse_instant_ms).transpose().map_err(|e| format!("since: {e}"))?;
        let until = self.until.as_deref().map(parse_instant_ms).transpose().map_err(|e| format!("until: {e}"))?;
        Ok((since, until))
    }

    fn matches(&self, e: &Entry, since: Option<i64>, until: Option<i64>) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        self.direction.is_none_or(|d| d == e.direction)
            && self.face.as_deref().is_none_or(|f| f == e.face)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
            && eq(&self.route, &e.route)
            && self.path.as_deref().is_none_or(|g| glob_matches(g, e.path.split('?').next().unwrap_or("")))
            && self.status.is_none_or(|s| Some(s) == e.status)
            && eq(&self.principal, &e.principal)
            && eq(&self.tenant, &e.tenant)
            && eq(&self.call, &e.call)
            && since.is_none_or(|s| e.time_ms >= s)
            && until.is_none_or(|u| e.time_ms < u)
    }
}

/// The ring.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    entries: Mutex<VecDeque<Entry>>,
    next: AtomicU64,
    /// Entries pushed out by newer ones since the last clear.
    dropped: AtomicU64,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            next: AtomicU64::new(1),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an entry (its `seq` is set here), pushing out the oldest when full.
    pub fn push(&self, mut entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        entry.seq = self.next.fetch_add(1, Ordering::SeqCst);
        if entries.len() == self.capacity {
            entries.pop_front();
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
        entries.push_back(entry);
    }

    /// The entries that match, oldest first (at most the newest `filter.limit`).
    pub fn query(&self, filter: &Filter) -> Result<Vec<Entry>, String> {
        let limit = filter.limit;
        let (since, until) = filter.bounds()?;
        let entries = self.lock();
        let mut found: Vec<Entry> = entries.iter().filter(|e| filter.matches(e, since, until)).cloned().collect();
        if let Some(l) = limit
            && found.len() > l
        {
            found.drain(..found.len() - l);
        }
        Ok(found)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Empties the ring; how many entries it held.
    pub fn clear(&self) -> usize {
        let mut entries = self.lock();
        self.dropped.store(0, Ordering::SeqCst);
        std::mem::take(&mut *entries).len()
    }
}

/// What a verify call expects: an exact count, or bounds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    #[serde(default, rename = "match")]
    pub filter: Filter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<u64>,
}

impl Expectation {
    /// Checks the expectation is stated (a count or bounds, not both).
    pub fn validate(&self) -> Result<(), String> {
        match (self.count, self.at_least, self.at_most) {
            (None, None, None) => Err("give count, or at_least and/or at_most".into()),
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err("give count or bounds, not both".into()),
            (_, Some(lo), Some(hi)) if lo > hi => Err("at_least must not exceed at_most".into()),
            _ => self.filter.bounds().map(|_| ()),
        }
    }

    /// Whether `n` matching entries meet it.
    pub fn met_by(&self, n: u64) -> bool {
        self.count.is_none_or(|c| n == c) && self.at_least.is_none_or(|l| n >= l) && self.at_most.is_none_or(|h| n <= h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(face: &str, status: u16, time_ms: i64) -> Entry {
        Entry {
            seq: 0,
            time: super::super::instant_text(time_ms),
            time_ms,
            direction: Direction::Inbound,
            face: face.into(),
            method: "GET".into(),
            path: "/v1/connection?x=1".into(),
            route: Some("/v1/connection".into()),
            call: None,
            host: None,
            principal: Some("org_a".into()),
            tenant: Some("org_a".into()),
            status: Some(status),
            latency_ms: 1.0,
            request_id: None,
            fault: None,
            request_body: None,
            response_body: None,
            error: None,
        }
    }

    #[test]
    fn ring_query_and_verify() {
        let j = Journal::new(3);
        for (i, s) in [429u16, 429, 200, 200].into_iter().enumerate() {
            j.push(entry("integrations", s, i as i64 * 1000));
        }
        assert_eq!(j.len(), 3);
        assert_eq!(j.dropped(), 1);
        let all = j.query(&Filter::default()).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 4]);
        let f = Filter { status: Some(200), path: Some("/v1/*".into()), ..Default::default() };
        assert_eq!(j.query(&f).unwrap().len(), 2);
        assert_eq!(j.query(&Filter { limit: Some(1), ..f.clone() }).unwrap()[0].seq, 4, "limit keeps the newest");
        let f = Filter { since: Some("1970-01-01T00:00:02Z".into()), ..Default::default() };
        assert_eq!(j.query(&f).unwrap().len(), 2);
        let f = Filter {
            until: Some("1970-01-01T00:00:02Z".into()),
            face: Some("integrations".into()),
            ..Default::default()
        };
        assert_eq!(j.query(&f).unwrap().len(), 1);
        assert!(j.query(&Filter { since: Some("x".into()), ..Default::default() }).is_err());
        let e = Expectation { count: Some(3), ..Default::default() };
        assert!(e.validate().is_ok() && e.met_by(3) && !e.met_by(2));
        let e = Expectation { at_least: Some(1), at_most: Some(2), ..Default::default() };
        assert!(e.met_by(1) && e.met_by(2) && !e.met_by(3) && !e.met_by(0));
        assert!(Expectation::default().validate().is_err());
        assert!(Expectation { count: Some(1), at_most: Some(1), ..Default::default() }.validate().is_err());
        assert_eq!(j.clear(), 3);
        assert!(j.is_empty());
        j.push(entry("export", 200, 0));
        assert_eq!(j.query(&Filter::default()).unwrap()[0].seq, 5, "sequence numbers keep counting");
    }
}
