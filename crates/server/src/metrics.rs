//! Prometheus' text format, written by hand: requests by route and status, a latency
//! histogram per route, and the inference queue's depth and jobs in flight.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Upper bounds of the latency buckets, in seconds: from a LeNet on a small picture to a
/// face pipeline on a large photo.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct Histogram {
    /// Requests at or under each bound (not yet cumulative).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    pub fn record(&self, route: &str, status: u16, seconds: f64) {
        // A poisoned registry still counts: every update leaves it whole.
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        *r.requests.entry((route.to_string(), status)).or_default() += 1;
        let h = r.latency.entry(route.to_string()).or_default();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            h.counts[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The exposition text, with the pool's gauges as they are now.
    pub fn render(&self, queue_depth: usize, in_flight: usize) -> String {
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP convnet_requests_total Requests answered, by route and status."
        );
        let _ = writeln!(out, "# TYPE convnet_requests_total counter");
        for ((route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "convnet_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP convnet_request_seconds Time to answer a request, by route."
        );
        let _ = writeln!(out, "# TYPE convnet_request_seconds histogram");
        for (route, h) in &r.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "convnet_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "convnet_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "convnet_request_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "convnet_request_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP convnet_queue_depth Inference jobs waiting for a worker."
        );
        let _ = writeln!(out, "# TYPE convnet_queue_depth gauge");
        let _ = writeln!(out, "convnet_queue_depth {queue_depth}");
        let _ = writeln!(out, "# HELP convnet_in_flight Inference jobs running.");
        let _ = writeln!(out, "# TYPE convnet_in_flight gauge");
        let _ = writeln!(out, "convnet_in_flight {in_flight}");
        out
    }
}

/// A label value as the text format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: counts and times every request under its route's pattern (not its path, so
/// `/v1/gallery/people/{name}` is one series whoever is named).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let response = next.run(request).await;
    state.metrics().record(
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_cumulative_buckets_render_as_prometheus_text() {
        let m = Metrics::default();
        m.record("/v1/classify", 200, 0.003);
        m.record("/v1/classify", 200, 0.3);
        m.record("/v1/classify", 400, 20.0);
        let text = m.render(2, 1);
        for line in [
            "convnet_requests_total{route=\"/v1/classify\",status=\"200\"} 2",
            "convnet_requests_total{route=\"/v1/classify\",status=\"400\"} 1",
            "convnet_request_seconds_bucket{route=\"/v1/classify\",le=\"0.001\"} 0",
            "convnet_request_seconds_bucket{route=\"/v1/classify\",le=\"0.005\"} 1",
            "convnet_request_seconds_bucket{route=\"/v1/classify\",le=\"0.5\"} 2",
            "convnet_request_seconds_bucket{route=\"/v1/classify\",le=\"10\"} 2",
            "convnet_request_seconds_bucket{route=\"/v1/classify\",le=\"+Inf\"} 3",
            "convnet_request_seconds_count{route=\"/v1/classify\"} 3",
            "convnet_queue_depth 2",
            "convnet_in_flight 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(escape("a\"b\\"), "a\\\"b\\\\");
    }
}
