//! Counters, gauges and histograms in the Prometheus text format, for `/metrics`.
//!
//! Small on purpose: one mutex-guarded map of series. The edges record (the API per request,
//! the daemon per probe and page); nothing here knows HTTP. Series names and help texts are
//! declared once with [`Metrics::describe`]; recording an undeclared name still works and
//! renders without help.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Upper bounds (seconds) for the pipeline's waits, which last seconds to hours: the end of a
/// broadcast seen, a due probe started (see [`Metrics::describe_histogram`]).
pub const WAIT_BUCKETS: &[f64] = &[
    15.0, 30.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Default)]
struct Family {
    help: String,
    kind: Option<Kind>,
    /// A histogram's bucket bounds, when not [`LATENCY_BUCKETS`].
    bounds: Option<&'static [f64]>,
    /// Rendered label set (`{a="b"}` or empty) → value.
    values: BTreeMap<String, f64>,
    /// Rendered label set → (bucket counts, sum, count).
    histograms: BTreeMap<String, (Vec<u64>, f64, u64)>,
}

/// The registry. `Send + Sync`; share it in an `Arc`.
#[derive(Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<String, Family>>,
}

fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Adds `le` to a rendered label set.
fn with_le(labels: &str, le: &str) -> String {
    if labels.is_empty() {
        format!("{{le=\"{le}\"}}")
    } else {
        format!("{},le=\"{le}\"}}", &labels[..labels.len() - 1])
    }
}

fn number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Family) -> T) -> T {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        f(families.entry(name.to_string()).or_default())
    }

    /// Declares a series family's type and help text.
    pub fn describe(&self, name: &str, kind: Kind, help: &str) {
        self.with(name, |family| {
            family.kind = Some(kind);
            family.help = help.to_string();
        });
    }

    /// Declares a histogram whose buckets are `bounds` (ascending seconds) instead of the
    /// request latencies'.
    pub fn describe_histogram(&self, name: &str, help: &str, bounds: &'static [f64]) {
        self.with(name, |family| {
            family.kind = Some(Kind::Histogram);
            family.help = help.to_string();
            family.bounds = Some(bounds);
        });
    }

    pub fn add(&self, name: &str, labels: &[(&str, &str)], delta: f64) {
        let key = label_set(labels);
        self.with(name, |family| *family.values.entry(key).or_default() += delta);
    }

    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    pub fn set(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let key = label_set(labels);
        self.with(name, |family| {
            family.values.insert(key, value);
        });
    }

    /// Drops one series (a gauge whose subject is gone, such as a removed domain).
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) {
        let key = label_set(labels);
        self.with(name, |family| {
            family.values.remove(&key);
        });
    }

    /// Records one observation (seconds) in a histogram.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], seconds: f64) {
        let key = label_set(labels);
        self.with(name, |family| {
            let bounds = family.bounds.unwrap_or(&LATENCY_BUCKETS);
            let entry = family
                .histograms
                .entry(key)
                .or_insert_with(|| (vec![0; bounds.len()], 0.0, 0));
            for (count, bound) in entry.0.iter_mut().zip(bounds) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
            entry.1 += seconds;
            entry.2 += 1;
        });
    }

    /// A value recorded with [`Metrics::add`] or [`Metrics::set`] (0 when never recorded).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = label_set(labels);
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        families
            .get(name)
            .and_then(|family| family.values.get(&key).copied())
            .unwrap_or(0.0)
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(4096);
        for (name, family) in families.iter() {
            if family.values.is_empty() && family.histograms.is_empty() {
                continue;
            }
            if !family.help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {}", family.help);
            }
            if let Some(kind) = family.kind {
                let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
            }
            for (labels, value) in &family.values {
                let _ = writeln!(out, "{name}{labels} {}", number(*value));
            }
            let bounds = family.bounds.unwrap_or(&LATENCY_BUCKETS);
            for (labels, (buckets, sum, count)) in &family.histograms {
                for (bucket, bound) in buckets.iter().zip(bounds) {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {bucket}",
                        with_le(labels, &bound.to_string())
                    );
                }
                let _ = writeln!(out, "{name}_bucket{} {count}", with_le(labels, "+Inf"));
                let _ = writeln!(out, "{name}_sum{labels} {sum}");
                let _ = writeln!(out, "{name}_count{labels} {count}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.describe("http_requests_total", Kind::Counter, "Requests answered.");
        metrics.inc("http_requests_total", &[("route", "vods"), ("status", "200")]);
        metrics.inc("http_requests_total", &[("route", "vods"), ("status", "200")]);
        metrics.set("queue_depth", &[], 7.0);
        metrics.describe("latency_seconds", Kind::Histogram, "Latency.");
        metrics.observe("latency_seconds", &[("route", "vods")], 0.003);
        metrics.inc("odd", &[("domain", "a\"b\\c")]);
        let text = metrics.render();
        assert!(
            text.contains(
                "# HELP http_requests_total Requests answered.\n# TYPE http_requests_total counter\n"
            )
        );
        assert!(
            text.contains("http_requests_total{route=\"vods\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("queue_depth 7\n"));
        assert!(
            text.contains("latency_seconds_bucket{route=\"vods\",le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("latency_seconds_bucket{route=\"vods\",le=\"0.005\"} 1\n"));
        assert!(text.contains("latency_seconds_bucket{route=\"vods\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("latency_seconds_count{route=\"vods\"} 1\n"));
        assert!(text.contains("odd{domain=\"a\\\"b\\\\c\"} 1\n"));
        assert_eq!(metrics.value("queue_depth", &[]), 7.0);
    }

    #[test]
    fn a_histogram_described_with_its_own_bounds_uses_them() {
        let metrics = Metrics::new();
        metrics.describe_histogram("wait_seconds", "Waits.", WAIT_BUCKETS);
        metrics.observe("wait_seconds", &[("by", "pass")], 75.0);
        metrics.observe("wait_seconds", &[("by", "pass")], 7_200.0);
        let text = metrics.render();
        assert!(text.contains("# TYPE wait_seconds histogram\n"), "{text}");
        assert!(
            text.contains("wait_seconds_bucket{by=\"pass\",le=\"60\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("wait_seconds_bucket{by=\"pass\",le=\"90\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wait_seconds_bucket{by=\"pass\",le=\"3600\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wait_seconds_bucket{by=\"pass\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("wait_seconds_sum{by=\"pass\"} 7275\n"), "{text}");
        assert!(!text.contains("le=\"0.0005\""), "{text}");
    }
}
