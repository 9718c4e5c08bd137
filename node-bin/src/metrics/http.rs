//! The client API's own metrics, live in the library's types: responses by status code and
//! request latency by method, route and status.
//!
//! The route is the pattern the request matched (`/v1/kv/{key:.*}`), never the raw path, so
//! the series do not grow with the keys clients use; a request that matched no route is
//! `unmatched`, and a method outside the standard ones is `other`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Upper bounds of the request latency buckets, in seconds: from a local read (well under a
/// millisecond) to a write that waits out the request timeout.
pub const REQUEST_LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: u16,
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_LATENCY_BUCKETS_SECONDS)
}

/// Shared by every HTTP worker (the families are `Arc`s inside).
#[derive(Clone, Debug)]
pub struct ApiCounters {
    responses: Family<CodeLabels, Counter>,
    request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for ApiCounters {
    fn default() -> Self {
        ApiCounters {
            responses: Family::default(),
            request_duration: Family::new_with_constructor(request_histogram),
        }
    }
}

/// A bounded method label.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

impl ApiCounters {
    /// Counts one response and its latency. `route` is the matched pattern, if any.
    pub fn observe_request(
        &self,
        method: &'static str,
        route: Option<String>,
        status: u16,
        elapsed: Duration,
    ) {
        self.responses
            .get_or_create(&CodeLabels { code: status })
            .inc();
        let labels = RequestLabels {
            method,
            route: route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned()),
            status,
        };
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Adds the families to a scrape's registry (they stay shared with the workers).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "http_responses",
            "Client API responses by status code",
            self.responses.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Client API request latency, from the request's arrival to its response, by method, route pattern and status",
            self.request_duration.clone(),
        );
    }
}
