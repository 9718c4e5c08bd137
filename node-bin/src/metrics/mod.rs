//! `/metrics` through `prometheus-client`, in the Prometheus text format 0.0.4.
//!
//! Two kinds of families, one registry per scrape:
//!
//! - live library metrics, updated as things happen: the client API's responses and request
//!   latency histograms ([`http`]);
//! - a scrape-time [`collector::Scrape`]: the actors' own lock-free counters and gauges (the
//!   consensus actor's `RaftMetrics`, the storage actor's `StorageMetrics`, the network
//!   actor's `NetworkStats`, the applier's snapshot figures), the consistency check's and the
//!   process's (`/proc`), copied once and encoded by the library.
//!
//! The actor crates keep their relaxed atomics rather than depend on a metrics library: they
//! are written on the hot path by one actor each, any replacement actor can fill them, and the
//! node alone decides names, types and labels. Nothing here formats exposition text by hand.

pub mod collector;
pub mod http;
pub mod process;

pub use collector::{ConsistencyFigures, Scrape};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The exposition text of one scrape.
pub fn render(scrape: Scrape, api: &http::ApiCounters) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    api.register(&mut registry);
    let mut text = String::new();
    // Writing to a String cannot fail, and no collector of ours returns an error of its own.
    prometheus_text::encode(&mut text, &registry).expect("encoding metrics into a String");
    text
}
