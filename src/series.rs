//! The status page's day of history: small, bounded time series of what the appliance did
//! (captures, CDN requests taken from the budget, queue depth, each domain's health) in
//! five-minute buckets over the last 24 hours.
//!
//! Pure: the daemon samples ([`StatusSeries::sample`]) and persists the JSON form in
//! `state_v1`, the API reads a copy. Counters arrive as running totals and are turned into
//! per-bucket amounts here, so a restart (whose request counter starts again at 0) is no spike.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Width of one bucket, seconds.
pub const BUCKET_SECONDS: i64 = 300;
/// Buckets kept: a day.
pub const BUCKETS: usize = (86_400 / BUCKET_SECONDS) as usize;

/// A domain's health as one bucket saw it; a failure anywhere in the bucket makes it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainHealth {
    Unknown,
    Up,
    Down,
}

impl DomainHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainHealth::Unknown => "unknown",
            DomainHealth::Up => "up",
            DomainHealth::Down => "down",
        }
    }
}

/// One five-minute bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Its start, unix seconds, a multiple of [`BUCKET_SECONDS`].
    pub at: i64,
    /// Broadcasts captured during it.
    pub captures: u64,
    /// CDN requests taken from the budget during it.
    pub requests: u64,
    /// The deepest probe queue seen during it.
    pub queue_depth: u64,
    /// The budget's rate in force at its last sample (requests per second).
    pub rate: f64,
    /// Each domain's worst health seen during it, by base URL.
    pub domains: BTreeMap<String, DomainHealth>,
}

/// What one sample reads off the appliance.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub now: i64,
    /// Captures written since the store began (kept across restarts).
    pub captures_total: u64,
    /// Requests taken from the budget since this process started.
    pub requests_total: u64,
    pub queue_depth: u64,
    pub rate: f64,
    pub domains: Vec<(String, DomainHealth)>,
}

/// The day of buckets, oldest first, and the totals last seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusSeries {
    buckets: VecDeque<Bucket>,
    last_captures: Option<u64>,
    /// The budget's counter starts at 0 in each process: not saved, the first sample sets it.
    #[serde(skip)]
    last_requests: Option<u64>,
}

impl StatusSeries {
    /// Adds what happened since the last sample to the bucket `sample.now` falls in.
    pub fn sample(&mut self, sample: &Sample) {
        let captures = delta(&mut self.last_captures, sample.captures_total);
        let requests = delta(&mut self.last_requests, sample.requests_total);
        let at = sample.now - sample.now.rem_euclid(BUCKET_SECONDS);
        // A clock set back: start over rather than keep buckets from the future.
        if self.buckets.back().is_some_and(|last| last.at > at) {
            self.buckets.clear();
        }
        if self.buckets.back().is_none_or(|last| last.at != at) {
            self.buckets.push_back(Bucket {
                at,
                captures: 0,
                requests: 0,
                queue_depth: 0,
                rate: sample.rate,
                domains: BTreeMap::new(),
            });
        }
        let cutoff = at - (BUCKETS as i64 - 1) * BUCKET_SECONDS;
        while self.buckets.front().is_some_and(|first| first.at < cutoff) {
            self.buckets.pop_front();
        }
        if let Some(bucket) = self.buckets.back_mut() {
            bucket.captures += captures;
            bucket.requests += requests;
            bucket.queue_depth = bucket.queue_depth.max(sample.queue_depth);
            bucket.rate = sample.rate;
            for (url, health) in &sample.domains {
                let seen = bucket.domains.entry(url.clone()).or_insert(*health);
                *seen = (*seen).max(*health);
            }
        }
    }

    /// The buckets of the day before `now`, oldest first.
    pub fn day(&self, now: i64) -> Vec<Bucket> {
        let from = now - 86_400;
        self.buckets
            .iter()
            .filter(|bucket| bucket.at + BUCKET_SECONDS > from && bucket.at <= now)
            .cloned()
            .collect()
    }

    pub fn to_json(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    /// The saved series, or an empty one if the bytes are not one.
    pub fn from_json(bytes: &[u8]) -> StatusSeries {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// How much a running total grew since it was last seen; a total that went down was reset.
fn delta(last: &mut Option<u64>, total: u64) -> u64 {
    let grown = match *last {
        Some(before) if total >= before => total - before,
        Some(_) => total,
        None => 0,
    };
    *last = Some(total);
    grown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(now: i64, captures: u64, requests: u64, queue: u64, health: DomainHealth) -> Sample {
        Sample {
            now,
            captures_total: captures,
            requests_total: requests,
            queue_depth: queue,
            rate: 5.0,
            domains: vec![("https://a/".to_string(), health)],
        }
    }

    #[test]
    fn totals_become_amounts_per_bucket_and_the_worst_health_stays() {
        let mut series = StatusSeries::default();
        let t = 1_000_200;
        series.sample(&sample(t, 10, 100, 3, DomainHealth::Up));
        series.sample(&sample(t + 30, 12, 150, 7, DomainHealth::Down));
        series.sample(&sample(t + 60, 12, 160, 1, DomainHealth::Up));
        series.sample(&sample(t + 400, 15, 200, 2, DomainHealth::Up));
        let day = series.day(t + 400);
        assert_eq!(day.len(), 2);
        assert_eq!((day[0].captures, day[0].requests, day[0].queue_depth), (2, 60, 7));
        assert_eq!(day[0].domains["https://a/"], DomainHealth::Down);
        assert_eq!((day[1].captures, day[1].requests, day[1].queue_depth), (3, 40, 2));
        assert_eq!(day[1].domains["https://a/"], DomainHealth::Up);
        assert_eq!(day[0].at % BUCKET_SECONDS, 0);
    }

    #[test]
    fn a_restart_keeps_the_day_and_its_reset_request_counter_is_no_spike() {
        let mut series = StatusSeries::default();
        let t = 2_000_000;
        series.sample(&sample(t, 4, 500, 0, DomainHealth::Up));
        series.sample(&sample(t + 10, 5, 900, 0, DomainHealth::Up));
        let mut restarted = StatusSeries::from_json(&series.to_json().expect("json"));
        restarted.sample(&sample(t + 20, 6, 3, 0, DomainHealth::Up));
        restarted.sample(&sample(t + 30, 6, 13, 0, DomainHealth::Up));
        let day = restarted.day(t + 30);
        assert_eq!(day.len(), 1);
        assert_eq!((day[0].captures, day[0].requests), (2, 410));
        assert_eq!(StatusSeries::from_json(b"not json"), StatusSeries::default());
    }

    #[test]
    fn only_a_day_is_kept() {
        let mut series = StatusSeries::default();
        let t = 3_000_000;
        for step in 0..(2 * BUCKETS as i64) {
            series.sample(&sample(
                t + step * BUCKET_SECONDS,
                step as u64,
                0,
                0,
                DomainHealth::Up,
            ));
        }
        let now = t + (2 * BUCKETS as i64 - 1) * BUCKET_SECONDS;
        assert_eq!(series.buckets.len(), BUCKETS);
        assert_eq!(series.day(now).len(), BUCKETS);
        assert!(series.day(now).iter().all(|bucket| bucket.captures == 1));
    }
}
