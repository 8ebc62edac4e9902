//! Prometheus metrics: requests by route and status, latency histograms,
//! and job counts by state (read from the store at scrape time).

use std::sync::{Arc, RwLock};

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
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

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    jobs: Family<JobLabels, Gauge>,
    jobs_by_kind: Family<JobKindLabels, Gauge>,
    jobs_with_errors: Family<JobKindLabels, Gauge>,
    /// Route templates seen so far (a fixed set: the router's), shared by labels.
    routes: RwLock<foldhash::HashSet<Arc<str>>>,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
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
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
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

    /// The shared label for a route template (`unmatched` for none).
    pub fn route_label(&self, route: Option<&str>) -> Arc<str> {
        let route = route.unwrap_or("unmatched");
        if let Some(r) = self.routes.read().unwrap_or_else(|e| e.into_inner()).get(route) {
            return r.clone();
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = routes.get(route) {
            return r.clone();
        }
        let r: Arc<str> = Arc::from(route);
        routes.insert(r.clone());
        r
    }

    pub fn observe_request(&self, method: &'static str, route: Arc<str>, status: u16, seconds: f64) {
        let labels = RequestLabels { method, route, status };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
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
