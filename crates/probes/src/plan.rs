//! Search planning: every candidate URL for a broadcast, ordered by probability.
//!
//! Exactly one candidate is right (or none), so asking them in descending probability minimises
//! the expected number of requests to the hit. A candidate's probability is the product of the
//! start-second prior (from the time the user gave), the timestamp form's weight (from the probe
//! module) and the domain's weight (from health and past hits, supplied by the caller). Forms
//! that map different start seconds onto the same `{ts}` (`unix-1` of second s is `unix` of
//! s-1) are merged, so no URL appears twice in a plan.

use crate::module::{ProbeModule, TimestampForm};
use std::cmp::Ordering;
use std::collections::HashMap;

/// What is known about the broadcast's start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeGuess {
    /// Start known to the second (unix seconds).
    Exact(i64),
    /// Start known to the minute: unix seconds of the minute's first second.
    Minute(i64),
}

/// A domain to search and how much the caller believes in it (any positive scale).
#[derive(Clone, Copy, Debug)]
pub struct DomainPlan<'a> {
    pub domain: usize,
    pub module: &'a ProbeModule,
    pub weight: f64,
}

/// One URL to ask: `path` is relative to the domain's base URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub domain: usize,
    pub ts: String,
    /// The form that most likely produced `ts`, and the start second it implies.
    pub form: TimestampForm,
    pub start_unix: i64,
    pub path: String,
    pub probability: f64,
}

/// Start seconds and their (unnormalised) prior for a guess widened by `window_minutes`.
fn start_seconds(guess: TimeGuess, window_minutes: u32) -> Vec<(i64, f64)> {
    let window = i64::from(window_minutes);
    match guess {
        TimeGuess::Exact(second) => {
            // The given second dominates; neighbours fade with distance so an exact input costs
            // its three forms first, then widens second by second.
            let mut seconds = vec![(second, 1.0)];
            for distance in 1..=window * 60 {
                let weight = 0.01 / (1.0 + distance as f64);
                seconds.push((second - distance, weight));
                seconds.push((second + distance, weight));
            }
            seconds
        }
        TimeGuess::Minute(minute_start) => {
            let mut seconds = Vec::with_capacity(((2 * window + 1) * 60) as usize);
            for minute_offset in -window..=window {
                let weight = 1.0 / 60.0 / (1.0 + minute_offset.abs() as f64);
                let first = minute_start + minute_offset * 60;
                seconds.extend((first..first + 60).map(|second| (second, weight)));
            }
            seconds
        }
    }
}

struct TsEntry {
    probability: f64,
    best_form: TimestampForm,
    best_share: f64,
    start_unix: i64,
}

/// `{ts}` strings of one module with their probability, most likely first.
fn timestamps(module: &ProbeModule, seconds: &[(i64, f64)]) -> Vec<(String, TsEntry)> {
    let mut by_ts: HashMap<String, TsEntry> = HashMap::new();
    for &(second, prior) in seconds {
        for rule in &module.forms {
            let share = prior * rule.weight;
            let entry = by_ts.entry(rule.form.render(second)).or_insert(TsEntry {
                probability: 0.0,
                best_form: rule.form,
                best_share: 0.0,
                start_unix: second,
            });
            entry.probability += share;
            if share > entry.best_share {
                entry.best_share = share;
                entry.best_form = rule.form;
                entry.start_unix = second;
            }
        }
    }
    by_ts.into_iter().collect()
}

fn by_probability(a: &Candidate, b: &Candidate) -> Ordering {
    b.probability
        .total_cmp(&a.probability)
        .then(a.domain.cmp(&b.domain))
        .then(a.start_unix.cmp(&b.start_unix))
        .then(a.ts.cmp(&b.ts))
}

/// Every candidate for `login`/`stream_id` on `domains`, most probable first, each URL once.
/// Ties keep the caller's domain order, then earlier seconds first.
pub fn plan(
    domains: &[DomainPlan<'_>],
    login: &str,
    stream_id: u64,
    guess: TimeGuess,
    window_minutes: u32,
) -> Vec<Candidate> {
    let seconds = start_seconds(guess, window_minutes);
    let mut per_module: HashMap<&str, Vec<(String, TsEntry)>> = HashMap::new();
    let mut candidates = Vec::new();
    for domain in domains {
        let stamps = per_module
            .entry(domain.module.name.as_str())
            .or_insert_with(|| timestamps(domain.module, &seconds));
        let quality = domain.module.primary_quality();
        for (ts, entry) in stamps.iter() {
            candidates.push(Candidate {
                domain: domain.domain,
                ts: ts.clone(),
                form: entry.best_form,
                start_unix: entry.start_unix,
                path: domain.module.path(login, stream_id, ts, quality),
                probability: entry.probability * domain.weight,
            });
        }
    }
    candidates.sort_by(by_probability);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::TWITCH_VOD;
    use std::collections::HashSet;

    fn module() -> ProbeModule {
        ProbeModule::from_toml("twitch-vod", TWITCH_VOD).expect("valid")
    }

    fn domains(module: &ProbeModule, count: usize) -> Vec<DomainPlan<'_>> {
        (0..count)
            .map(|domain| DomainPlan {
                domain,
                module,
                weight: 1.0,
            })
            .collect()
    }

    fn summary(candidates: &[Candidate]) -> Vec<(usize, String)> {
        candidates.iter().map(|c| (c.domain, c.ts.clone())).collect()
    }

    #[test]
    fn exact_second_is_form_major() {
        let module = module();
        let plan = plan(&domains(&module, 2), "x", 1, TimeGuess::Exact(1_000_000_029), 0);
        let expected: Vec<(usize, String)> = [
            (0, "1000000029"),
            (1, "1000000029"),
            (0, "1000000028"),
            (1, "1000000028"),
            (0, "9"),
            (1, "9"),
        ]
        .into_iter()
        .map(|(d, ts)| (d, ts.to_string()))
        .collect();
        assert_eq!(summary(&plan), expected);
        assert_eq!(plan[2].form, TimestampForm::UnixMinus1);
        assert_eq!(plan[2].start_unix, 1_000_000_029);
        assert_eq!(plan[4].form, TimestampForm::SecondOfMinute);
    }

    #[test]
    fn whole_minute_has_61_unix_stamps_then_60_seconds_of_minute() {
        let module = module();
        let minute = 1_000_000_020; // a multiple of 60
        assert_eq!(minute % 60, 0);
        let plan = plan(&domains(&module, 1), "x", 1, TimeGuess::Minute(minute), 0);
        assert_eq!(plan.len(), 121);
        let unix: HashSet<i64> = plan[..61].iter().map(|c| c.ts.parse().expect("num")).collect();
        assert_eq!(unix, (minute - 1..minute + 60).collect());
        // The second before the minute is only reachable through `unix-1`: least likely of the 61.
        assert_eq!(plan[60].ts, (minute - 1).to_string());
        let seconds: HashSet<String> = plan[61..].iter().map(|c| c.ts.clone()).collect();
        assert_eq!(seconds, (0..60).map(|s| s.to_string()).collect());
    }

    #[test]
    fn no_url_twice_and_every_url_distinct() {
        let module = module();
        for guess in [TimeGuess::Exact(1_600_000_000), TimeGuess::Minute(1_600_000_020)] {
            let plan = plan(&domains(&module, 3), "x", 7, guess, 2);
            let urls: HashSet<(usize, &str)> = plan.iter().map(|c| (c.domain, c.path.as_str())).collect();
            assert_eq!(urls.len(), plan.len());
        }
    }

    #[test]
    fn domain_weight_orders_domains() {
        let module = module();
        let mut ds = domains(&module, 3);
        ds[2].weight = 5.0;
        ds[0].weight = 0.001;
        let plan = plan(&ds, "x", 1, TimeGuess::Exact(1_000_000_029), 0);
        assert_eq!(plan[0].domain, 2);
        // A nearly dead domain's best guess still comes after healthy domains' unlikely forms.
        assert_eq!(plan.last().map(|c| c.domain), Some(0));
    }

    #[test]
    fn window_widens_exact_second_by_distance() {
        let module = module();
        let plan = plan(&domains(&module, 1), "x", 1, TimeGuess::Exact(1_000_000_029), 1);
        assert_eq!(plan[0].ts, "1000000029");
        assert_eq!(plan[1].ts, "1000000028");
        assert_eq!(plan[2].ts, "9");
        // Then the neighbouring seconds, nearest first.
        let next: HashSet<String> = plan[3..5].iter().map(|c| c.ts.clone()).collect();
        assert!(next.contains("1000000030"), "{next:?}");
        // All 121 unix stamps within ±60 s plus the one before, and every second-of-minute.
        assert_eq!(plan.len(), 122 + 60);
    }

    #[test]
    fn window_on_minute_prefers_the_given_minute() {
        let module = module();
        let minute = 1_000_000_020;
        let plan = plan(&domains(&module, 1), "x", 1, TimeGuess::Minute(minute), 1);
        for candidate in &plan[..60] {
            let ts: i64 = candidate.ts.parse().expect("unix");
            assert!((minute..minute + 60).contains(&ts), "{ts}");
        }
    }
}
