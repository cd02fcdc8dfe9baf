//! The week benchmark's view of where a broadcast's wait goes before its first request: how
//! late its end was known (`vodprobe_stream_end_seen_seconds`, by how) and how long due probes
//! waited for a slot (`vodprobe_probe_wait_seconds`, by which probe), from `/metrics` sampled
//! at each day's first and last second.

use std::collections::BTreeMap;

/// One histogram series: cumulative counts at each bound (`+Inf` as infinity), and the count.
#[derive(Clone, Default)]
struct Series {
    buckets: Vec<(f64, f64)>,
}

impl Series {
    fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// The upper bound of the bucket holding the `p` quantile ("> last bound" past it).
    fn quantile(&self, p: f64) -> String {
        let target = self.count() * p;
        match self.buckets.iter().find(|b| b.1 >= target && b.1 > 0.0) {
            Some((bound, _)) if bound.is_finite() => format!("≤ {bound:.0}"),
            Some(_) => format!("> {:.0}", self.buckets.iter().rev().nth(1).map_or(0.0, |b| b.0)),
            None => "–".to_string(),
        }
    }

    fn since(&self, earlier: Option<&Series>) -> Series {
        let before = |bound: f64| {
            earlier
                .and_then(|e| e.buckets.iter().find(|b| b.0 == bound))
                .map_or(0.0, |b| b.1)
        };
        Series {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, n)| (bound, n - before(bound)))
                .collect(),
        }
    }
}

/// The two histograms' series at one moment, keyed by (family, label value).
#[derive(Clone, Default)]
pub struct WaitSample {
    series: BTreeMap<(String, String), Series>,
}

const FAMILIES: [(&str, &str); 2] = [
    ("vodprobe_stream_end_seen_seconds_bucket{by=\"", "end"),
    ("vodprobe_probe_wait_seconds_bucket{probe=\"", "wait"),
];

/// The waits' histograms in the text of `/metrics`.
pub fn wait_sample(text: &str) -> WaitSample {
    let mut sample = WaitSample::default();
    for line in text.lines() {
        for (prefix, family) in FAMILIES {
            let Some(rest) = line.strip_prefix(prefix) else {
                continue;
            };
            let Some((label, rest)) = rest.split_once('"') else {
                continue;
            };
            let Some((bound, value)) = rest.strip_prefix(",le=\"").and_then(|r| r.split_once("\"} ")) else {
                continue;
            };
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().unwrap_or(f64::NAN)
            };
            let (Ok(value), false) = (value.trim().parse::<f64>(), bound.is_nan()) else {
                continue;
            };
            sample
                .series
                .entry((family.to_string(), label.to_string()))
                .or_default()
                .buckets
                .push((bound, value));
        }
    }
    sample
}

/// Per day: the first and last sample.
#[derive(Clone, Default)]
pub struct Waits {
    first: Option<WaitSample>,
    last: Option<WaitSample>,
}

impl Waits {
    pub fn add(&mut self, sample: WaitSample) {
        if self.first.is_none() {
            self.first = Some(sample.clone());
        }
        self.last = Some(sample);
    }

    fn day(&self) -> BTreeMap<(String, String), Series> {
        let (Some(first), Some(last)) = (&self.first, &self.last) else {
            return BTreeMap::new();
        };
        last.series
            .iter()
            .map(|(key, series)| (key.clone(), series.since(first.series.get(key))))
            .collect()
    }
}

pub fn print_waits(waits: &[Waits], days: i64) {
    println!(
        "\nbefore a broadcast's first request, per day (from /metrics; every recordable broadcast, \
         scored or not): its end known after its last sighting, by how, and a due probe's wait for \
         a slot, by which probe: count, p50 / p90 clock seconds as histogram bucket bounds"
    );
    println!("| day | end known: how | count | p50 | p90 | probe | started | wait p50 | wait p90 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (day, day_waits) in waits.iter().enumerate().take(days as usize) {
        let series = day_waits.day();
        let of = |family: &str| -> Vec<(&String, &Series)> {
            series
                .iter()
                .filter(|((f, _), s)| f == family && s.count() > 0.0)
                .map(|((_, label), s)| (label, s))
                .collect()
        };
        let (ends, probes) = (of("end"), of("wait"));
        for row in 0..ends.len().max(probes.len()) {
            let cells = |entry: Option<&(&String, &Series)>| {
                entry.map_or(["".to_string(), "".into(), "".into(), "".into()], |(label, s)| {
                    [
                        label.to_string(),
                        format!("{:.0}", s.count()),
                        s.quantile(0.5),
                        s.quantile(0.9),
                    ]
                })
            };
            let [how, ended, end50, end90] = cells(ends.get(row));
            let [probe, started, wait50, wait90] = cells(probes.get(row));
            println!(
                "| {} | {how} | {ended} | {end50} | {end90} | {probe} | {started} | {wait50} | {wait90} |",
                day + 1
            );
        }
    }
}
