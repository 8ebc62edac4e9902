//! Prometheus metrics: requests by route and status, latency histograms,
//! and job counts by state (read from the store at scrape time).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use axum::http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Labels of a request: built per request without allocating (the method is a
/// static name, the route an interned template, the status a number).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: Arc<str>,
    pub status: u16,
}

/// The method's name as a label; methods outside the standard set share one.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobKindLabels {
    pub kind: String,
    pub state: String,
}

type HistogramFamily = Family<RequestLabels, Histogram>;

/// Upper bounds of the latency buckets, in seconds: 0.25 ms doubling to ~8 s
/// (and +Inf after them).
const BOUNDS: [f64; 16] = {
    let mut b = [0.00025; 16];
    let mut i = 1;
    while i < 16 {
        b[i] = b[i - 1] * 2.0;
        i += 1;
    }
    b
};

/// A latency histogram kept in atomics. prometheus-client's takes a write lock
/// for each observation: every request of a route and status shares one, and a
/// worker thread switched out while holding it (the load generator shares the
/// cores) stalled the other worker's requests until it ran again.
#[derive(Debug, Clone, Default)]
pub struct Histogram(Arc<HistogramCells>);

#[derive(Debug, Default)]
struct HistogramCells {
    /// Observations per bucket (not cumulative); the last is +Inf. The count is
    /// their sum, so a scrape's `_count` always equals its `+Inf` bucket.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    /// The sum of observations, as the bits of an `f64`.
    sum: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let cells = &self.0;
        let bucket = BOUNDS.iter().position(|b| seconds <= *b).unwrap_or(BOUNDS.len());
        cells.buckets[bucket].fetch_add(1, Relaxed);
        let _ = cells.sum.fetch_update(Relaxed, Relaxed, |bits| Some((f64::from_bits(bits) + seconds).to_bits()));
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let cells = &self.0;
        // +Inf is f64::MAX for the encoder (as prometheus-client's own histogram has it).
        let bounds = BOUNDS.iter().copied().chain(std::iter::once(f64::MAX));
        let buckets: Vec<(f64, u64)> = bounds.zip(cells.buckets.iter().map(|b| b.load(Relaxed))).collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(cells.sum.load(Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    jobs: Family<JobLabels, Gauge>,
    jobs_by_kind: Family<JobKindLabels, Gauge>,
    jobs_with_errors: Family<JobKindLabels, Gauge>,
    /// Route templates seen so far (a fixed set: the router's), each with the
    /// handles of its request series.
    routes: RwLock<foldhash::HashMap<Arc<str>, Arc<RouteMetrics>>>,
}

/// One route's request series: its label, and for each (method, status) seen so
/// far the families' own counter and histogram (handles share the families'
/// state), so a request finds them by a short scan instead of hashing its labels
/// into two families behind their locks.
pub struct RouteMetrics {
    label: Arc<str>,
    series: RwLock<Vec<Series>>,
}

struct Series {
    method: &'static str,
    status: u16,
    count: Counter,
    latency: Histogram,
}

impl RouteMetrics {
    /// The route template (`unmatched` for none).
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("patchbay");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = HistogramFamily::default();
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by route and status",
            latency.clone(),
        );
        let jobs_by_kind = Family::<JobKindLabels, Gauge>::default();
        let jobs_with_errors = Family::<JobKindLabels, Gauge>::default();
        registry.register("jobs", "Background jobs by state", jobs.clone());
        registry.register("jobs_by_kind", "Background jobs by kind and state", jobs_by_kind.clone());
        registry.register(
            "jobs_with_errors",
            "Background jobs whose last attempt failed (retrying when queued), by kind and state",
            jobs_with_errors.clone(),
        );
        Self { registry, requests, latency, jobs, jobs_by_kind, jobs_with_errors, routes: RwLock::default() }
    }

    /// The metrics of a route template (`unmatched` for none).
    pub fn route(&self, route: Option<&str>) -> Arc<RouteMetrics> {
        let route = route.unwrap_or("unmatched");
        if let Some(r) = self.routes.read().unwrap_or_else(|e| e.into_inner()).get(route) {
            return r.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = routes.get(route) {
            return r.clone();
        }
        let label: Arc<str> = Arc::from(route);
        let r = Arc::new(RouteMetrics { label: label.clone(), series: RwLock::default() });
        routes.insert(label, r.clone());
        r
    }

    pub fn observe_request(&self, method: &'static str, route: &RouteMetrics, status: u16, seconds: f64) {
        let found = |series: &[Series]| {
            series.iter().find(|s| s.status == status && s.method == method).map(|s| {
                s.count.inc();
                s.latency.observe(seconds);
            })
        };
        if found(&route.series.read().unwrap_or_else(|e| e.into_inner())).is_some() {
            return;
        }
        let mut series = route.series.write().unwrap_or_else(|e| e.into_inner());
        if found(&series).is_none() {
            let labels = RequestLabels { method, route: route.label.clone(), status };
            let (count, latency) =
                (self.requests.get_or_create(&labels).clone(), self.latency.get_or_create(&labels).clone());
            count.inc();
            latency.observe(seconds);
            series.push(Series { method, status, count, latency });
        }
    }

    pub fn set_job_count(&self, state: &str, n: i64) {
        self.jobs.get_or_create(&JobLabels { state: state.to_string() }).set(n);
    }

    pub fn set_job_kind(&self, kind: &str, state: &str, count: i64, with_errors: i64) {
        let labels = JobKindLabels { kind: kind.to_string(), state: state.to_string() };
        self.jobs_by_kind.get_or_create(&labels).set(count);
        self.jobs_with_errors.get_or_create(&labels).set(with_errors);
    }

    /// The OpenMetrics text exposition (which Prometheus scrapes natively).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_in_its_route_method_and_status_series() {
        let m = Metrics::new();
        let conn = m.route(Some("/v1/connection/{id}"));
        assert!(Arc::ptr_eq(&conn, &m.route(Some("/v1/connection/{id}"))));
        m.observe_request("GET", &conn, 200, 0.001);
        m.observe_request("GET", &m.route(Some("/v1/connection/{id}")), 200, 0.003);
        m.observe_request("GET", &conn, 404, 0.0001);
        m.observe_request("DELETE", &conn, 200, 0.002);
        m.observe_request("GET", &m.route(None), 404, 0.0001);
        m.observe_request("GET", &conn, 500, 100.0);
        let text = m.render();
        for line in [
            r#"patchbay_http_requests_total{method="GET",route="/v1/connection/{id}",status="200"} 2"#,
            r#"patchbay_http_requests_total{method="GET",route="/v1/connection/{id}",status="404"} 1"#,
            r#"patchbay_http_requests_total{method="DELETE",route="/v1/connection/{id}",status="200"} 1"#,
            r#"patchbay_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
            r#"patchbay_http_request_duration_seconds_sum{method="GET",route="/v1/connection/{id}",status="200"} 0.004"#,
            r#"patchbay_http_request_duration_seconds_count{method="GET",route="/v1/connection/{id}",status="200"} 2"#,
            r#"patchbay_http_request_duration_seconds_bucket{le="0.001",method="GET",route="/v1/connection/{id}",status="200"} 1"#,
            r#"patchbay_http_request_duration_seconds_bucket{le="0.004",method="GET",route="/v1/connection/{id}",status="200"} 2"#,
            r#"patchbay_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/connection/{id}",status="200"} 2"#,
            r#"patchbay_http_request_duration_seconds_bucket{le="0.00025",method="GET",route="/v1/connection/{id}",status="404"} 1"#,
            r#"patchbay_http_request_duration_seconds_bucket{le="8.192",method="GET",route="/v1/connection/{id}",status="500"} 0"#,
            r#"patchbay_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/connection/{id}",status="500"} 1"#,
            r#"patchbay_http_request_duration_seconds_sum{method="GET",route="/v1/connection/{id}",status="500"} 100.0"#,
            "# TYPE patchbay_http_request_duration_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
    }
}
