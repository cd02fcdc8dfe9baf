//! The search executor: find a broadcast's playlist in the fewest requests (one-off lookups,
//! probes and admin lookups all run it); the quality, segment and domain checks are in
//! `checks.rs`.
//!
//! The search asks the planned candidates (see `probes::plan`) in descending probability under
//! one request budget, a few at a time. Three rules keep it polite and bounded:
//! - no URL is asked twice (the plan holds each once and nothing is retried);
//! - a domain that has not yet answered gets one request at a time, so a blackholed domain ties
//!   up one request and costs one timeout, not one per candidate;
//! - a domain that fails at the transport level (timeout, reset, 5xx, 429, garbage) is demoted
//!   for the rest of the lookup: its remaining candidates are skipped and reported.
//!
//! Requests run on short-lived threads (blocking I/O, bounded by the fetch timeouts); the
//! dispatcher owns all state, so no locks are held across I/O. Library code: no logging, no
//! printing; progress goes to a callback and the outcome is returned.

use crate::budget::Budget;
use crate::config::{Config, DomainConfig};
use crate::fetch::Fetcher;
use crate::playlist::{self, PlaylistSummary};
use probes::{Candidate, DomainPlan, ProbeModule, TimeGuess, TimestampForm};
use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod checks;
pub mod rebuild;

pub use checks::{
    DomainHealth, HandedBack, QualityCheck, SegmentProbe, check_domains, check_qualities, check_segments,
};

/// A lookup as the user asked for it, validated.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    pub login: String,
    pub stream_id: u64,
    pub time: TimeGuess,
    pub window_minutes: u32,
    /// After the hit, also ask every other domain whether it holds the same path.
    pub all_domains: bool,
}

/// What every CDN request of a search needs: the settings it runs under, the client, the
/// shared request budget, and its owner's steering.
#[derive(Clone, Copy)]
pub struct Cdn<'a> {
    pub config: &'a Config,
    pub fetcher: &'a Fetcher,
    pub budget: &'a Budget,
    pub steer: &'a dyn Steer,
}

/// How fast and how wide the search may go.
#[derive(Clone, Copy, Debug)]
pub struct SearchLimits {
    pub requests_per_second: f64,
    /// Requests in flight at once, over all domains.
    pub max_in_flight: usize,
    /// Requests in flight at once to one domain that has proven it answers.
    pub max_in_flight_per_domain: usize,
    /// Ask the first candidate alone and wait for its answer before asking more: when it is
    /// a path learned before, it is usually right, and the speculative requests that would
    /// otherwise go out meanwhile are wasted. That first request also goes before the other
    /// requests waiting for the budget ([`Budget::first_in_line`]): a probe's.
    pub first_alone: bool,
}

impl SearchLimits {
    pub fn from_config(config: &Config) -> SearchLimits {
        SearchLimits {
            requests_per_second: config.limits.lookup_requests_per_second,
            max_in_flight: 32,
            max_in_flight_per_domain: 4,
            first_alone: false,
        }
    }
}

/// The playlist that was found.
#[derive(Clone, Debug)]
pub struct Found {
    /// Index into the config's domains.
    pub domain: usize,
    pub domain_url: String,
    pub url: String,
    /// The broadcast's folder on the domain (`{hash}_{login}_{stream_id}_{ts}` on Twitch).
    pub folder: String,
    pub form: TimestampForm,
    /// The `{ts}` in the path.
    pub timestamp: String,
    /// The start second the form implies.
    pub start_unix: i64,
    pub summary: PlaylistSummary,
    /// The playlist exactly as the CDN served it.
    pub raw: String,
    /// The playlist with absolute URIs and the muted rewrite.
    pub playable: String,
    /// Every domain known to hold it (the hit, plus others with `all_domains`).
    pub domains: Vec<String>,
}

/// A domain that was demoted during the lookup, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainFailure {
    pub domain_url: String,
    /// A fixed name for metrics: a [`FetchError::kind`](crate::fetch::FetchError::kind), or
    /// `not_playlist`, `rate_limited`, `http_status`.
    pub kind: &'static str,
    pub reason: String,
}

/// What a finished search learned.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    pub found: Option<Found>,
    pub requests: usize,
    /// Candidates planned (the size of a full sweep).
    pub planned: usize,
    pub elapsed: Duration,
    pub failed_domains: Vec<DomainFailure>,
    /// The search was stopped before it finished (shutdown); nothing can be concluded.
    pub interrupted: bool,
}

/// Progress for a bar: requests sent so far out of the planned sweep.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub requests: usize,
    pub planned: usize,
    pub failed_domains: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("no enabled domain in the configuration; add a [[domain]] to config.toml")]
    NoDomains,
    #[error("no domain could be asked: {}", describe(.failures))]
    NoDomainAnswered { failures: Vec<DomainFailure> },
}

fn describe(failures: &[DomainFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{} ({})", f.domain_url, f.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What one request told us about a candidate.
#[derive(Debug)]
enum Verdict {
    Hit(PlaylistSummary, String),
    Miss,
    /// A failure's kind (see [`DomainFailure::kind`]) and reason.
    DomainFailed(&'static str, String),
}

struct DomainState<'a> {
    config: &'a DomainConfig,
    module: &'a ProbeModule,
    in_flight: usize,
    /// Has answered at least once with a meaningful status.
    proven: bool,
    failure: Option<(&'static str, String)>,
}

/// Asks one candidate URL and judges the answer by the domain's probe module.
fn judge(fetcher: &Fetcher, url: &str, module: &ProbeModule, timeout: Option<Duration>) -> Verdict {
    let answer = match fetcher.get(url, &module.answer.found, timeout) {
        Ok(answer) => answer,
        Err(error) => return Verdict::DomainFailed(error.kind(), error.to_string()),
    };
    if module.answer.found.contains(&answer.status) {
        let limit = fetcher.settings().max_body_bytes;
        return match playlist::validate(&answer.body, limit) {
            Ok(summary) => {
                let text = String::from_utf8_lossy(&answer.body).into_owned();
                Verdict::Hit(summary, text)
            }
            Err(error) => Verdict::DomainFailed(
                "not_playlist",
                format!(
                    "answered {} with something that is not a playlist: {error}",
                    answer.status
                ),
            ),
        };
    }
    if module.answer.missing.contains(&answer.status) {
        return Verdict::Miss;
    }
    match (answer.status, answer.retry_after) {
        (429, Some(after)) => Verdict::DomainFailed(
            "rate_limited",
            format!("rate limited (429, retry after {}s)", after.as_secs()),
        ),
        (429, None) => Verdict::DomainFailed("rate_limited", "rate limited (429)".to_string()),
        (status, _) => Verdict::DomainFailed("http_status", format!("answered HTTP {status}")),
    }
}

/// Searches for the broadcast's playlist at `lookup_requests_per_second`.
/// `on_progress` is called after every request.
pub fn lookup(
    config: &Config,
    fetcher: &Fetcher,
    request: &SearchRequest,
    limits: SearchLimits,
    on_progress: impl FnMut(Progress),
) -> Result<SearchOutcome, SearchError> {
    let budget = Budget::immediate(limits.requests_per_second);
    let cdn = Cdn {
        config,
        fetcher,
        budget: &budget,
        steer: &|| false,
    };
    lookup_under(cdn, request, limits, on_progress)
}

/// [`lookup`] under a budget shared with other work (the appliance's admin lookups), steered
/// by its owner (see [`Steer`]).
pub fn lookup_under(
    cdn: Cdn<'_>,
    request: &SearchRequest,
    limits: SearchLimits,
    on_progress: impl FnMut(Progress),
) -> Result<SearchOutcome, SearchError> {
    let candidates = plan(cdn.config, request)?;
    run(cdn, candidates, request, limits, on_progress)
}

/// The candidates of a lookup, most probable first (see `probes::plan`).
fn plan(config: &Config, request: &SearchRequest) -> Result<Vec<Candidate>, SearchError> {
    let plans: Vec<DomainPlan<'_>> = config
        .domains
        .iter()
        .enumerate()
        .filter(|(_, domain)| domain.enabled)
        .map(|(index, domain)| DomainPlan {
            domain: index,
            module: config.module_of(domain),
            weight: 1.0,
        })
        .collect();
    if plans.is_empty() {
        return Err(SearchError::NoDomains);
    }
    Ok(probes::plan(
        &plans,
        &request.login,
        request.stream_id,
        request.time,
        request.window_minutes,
    ))
}

/// How a search's owner steers it while it runs.
pub trait Steer {
    /// End the search early (shutdown): nothing is concluded.
    fn stop(&self) -> bool;
    /// The domain was removed from the running configuration (or disabled) since the search
    /// began: ask it nothing more.
    fn withdrawn(&self, _domain_url: &str) -> bool {
        false
    }
}

/// A plain stop flag steers a search too.
impl<F: Fn() -> bool> Steer for F {
    fn stop(&self) -> bool {
        self()
    }
}

/// Asks `candidates` (indexes into `config.domains`, most promising first) under `budget`
/// until one is a playlist; with `request.all_domains`, then asks the same path everywhere.
/// When `steer.stop()` turns true the search ends early with `interrupted` set (shutdown).
pub fn run(
    cdn: Cdn<'_>,
    candidates: Vec<Candidate>,
    request: &SearchRequest,
    limits: SearchLimits,
    mut on_progress: impl FnMut(Progress),
) -> Result<SearchOutcome, SearchError> {
    let Cdn {
        config,
        fetcher,
        budget,
        steer,
    } = cdn;
    let started = Instant::now();
    let mut domains: Vec<DomainState<'_>> = config
        .domains
        .iter()
        .map(|domain| DomainState {
            config: domain,
            module: config.module_of(domain),
            in_flight: 0,
            proven: false,
            failure: None,
        })
        .collect();
    let planned = candidates.len();
    let mut search = Search {
        fetcher,
        limits,
        pending: candidates
            .into_iter()
            .filter(|candidate| candidate.domain < domains.len())
            .map(Some)
            .collect(),
        first_pending: 0,
        in_flight: 0,
        requests: 0,
        asked: HashSet::new(),
        results: mpsc::channel(),
    };
    let mut found: Option<Found> = None;
    let mut interrupted = false;
    // A probe's first request goes before the other requests waiting for the budget
    // (`budget` module): for a known path it is the whole capture.
    let mut first_in_line = limits.first_alone.then(|| budget.first_in_line());
    loop {
        while let Ok((candidate, verdict)) = search.results.1.try_recv() {
            search.in_flight -= 1;
            let state = &mut domains[candidate.domain];
            state.in_flight -= 1;
            match verdict {
                Verdict::Hit(summary, text) => {
                    state.proven = true;
                    match &mut found {
                        None => {
                            found = Some(make_found(state, &candidate, request, summary, &text));
                            if request.all_domains {
                                search.replace_with_same_path(&candidate, &domains, request);
                            } else {
                                search.pending.clear();
                            }
                        }
                        Some(found) => {
                            if !found.domains.contains(&state.config.url) {
                                found.domains.push(state.config.url.clone());
                            }
                        }
                    }
                }
                Verdict::Miss => state.proven = true,
                Verdict::DomainFailed(kind, reason) => {
                    if state.failure.is_none() {
                        state.failure = Some((kind, reason));
                    }
                }
            }
            on_progress(Progress {
                requests: search.requests,
                planned,
                failed_domains: domains.iter().filter(|d| d.failure.is_some()).count(),
            });
        }
        if found.is_some() && !request.all_domains {
            break;
        }
        if steer.stop() {
            interrupted = true;
            break;
        }
        match search.next_eligible(&domains) {
            Some(index) => {
                let domain_index = index_domain(&search, index);
                let domain = &domains[domain_index].config;
                if steer.withdrawn(&domain.url) {
                    search.drop_domain(domain_index);
                    continue;
                }
                let now = Instant::now();
                let taken = match &first_in_line {
                    Some(first) => budget.try_take_first(first, &domain.url, domain.requests_per_second, now),
                    None => budget.try_take(&domain.url, domain.requests_per_second, now),
                };
                match taken {
                    Ok(()) => {
                        first_in_line = None;
                        search.dispatch(index, &mut domains);
                    }
                    Err(ready) => search.wait_for_result(ready.saturating_duration_since(Instant::now())),
                }
            }
            None if search.in_flight == 0 => break,
            None => search.wait_for_result(Duration::from_millis(50)),
        }
    }
    // Holders in configuration order, whichever answered first: the report is the same on
    // every run.
    if let Some(found) = &mut found {
        found
            .domains
            .sort_by_key(|url| config.domains.iter().position(|d| &d.url == url));
    }
    let failed_domains: Vec<DomainFailure> = domains
        .iter()
        .filter_map(|state| {
            state.failure.as_ref().map(|(kind, reason)| DomainFailure {
                domain_url: state.config.url.clone(),
                kind,
                reason: reason.clone(),
            })
        })
        .collect();
    if found.is_none() && !interrupted && planned > 0 && !domains.iter().any(|d| d.proven) {
        return Err(SearchError::NoDomainAnswered {
            failures: failed_domains,
        });
    }
    Ok(SearchOutcome {
        found,
        requests: search.requests,
        planned,
        elapsed: started.elapsed(),
        failed_domains,
        interrupted,
    })
}

fn index_domain(search: &Search<'_>, index: usize) -> usize {
    search.pending[index]
        .as_ref()
        .map_or(0, |candidate| candidate.domain)
}

fn make_found(
    state: &DomainState<'_>,
    candidate: &Candidate,
    request: &SearchRequest,
    summary: PlaylistSummary,
    text: &str,
) -> Found {
    let url = format!("{}{}", state.config.url, candidate.path);
    let base = playlist::directory_of(&url);
    Found {
        domain: candidate.domain,
        domain_url: state.config.url.clone(),
        folder: state
            .module
            .folder(&request.login, request.stream_id, &candidate.ts),
        form: candidate.form,
        timestamp: candidate.ts.clone(),
        start_unix: candidate.start_unix,
        playable: playlist::make_playable(text, base),
        raw: text.to_string(),
        summary,
        domains: vec![state.config.url.clone()],
        url,
    }
}

type Outcome = (Candidate, Verdict);

struct Search<'f> {
    fetcher: &'f Fetcher,
    limits: SearchLimits,
    /// The plan; `None` once dispatched or skipped.
    pending: Vec<Option<Candidate>>,
    /// Everything before this index is `None`.
    first_pending: usize,
    in_flight: usize,
    requests: usize,
    /// (domain, path) of every request sent: nothing is asked twice.
    asked: HashSet<(usize, String)>,
    results: (mpsc::Sender<Outcome>, mpsc::Receiver<Outcome>),
}

impl Search<'_> {
    /// The most probable candidate that may be asked now: its domain has not failed, is under
    /// its in-flight cap and its own rate. Candidates of failed domains are dropped on the way.
    fn next_eligible(&mut self, domains: &[DomainState<'_>]) -> Option<usize> {
        if self.in_flight >= self.limits.max_in_flight
            || (self.limits.first_alone && self.requests == 1 && self.in_flight == 1)
        {
            return None;
        }
        while self.first_pending < self.pending.len() && self.pending[self.first_pending].is_none() {
            self.first_pending += 1;
        }
        for index in self.first_pending..self.pending.len() {
            let Some(candidate) = &self.pending[index] else {
                continue;
            };
            let state = &domains[candidate.domain];
            if state.failure.is_some() {
                self.pending[index] = None;
                continue;
            }
            let cap = if state.proven {
                self.limits.max_in_flight_per_domain
            } else {
                1
            };
            if state.in_flight < cap {
                return Some(index);
            }
        }
        None
    }

    /// Forgets every pending candidate on `domain`.
    fn drop_domain(&mut self, domain: usize) {
        for slot in &mut self.pending {
            if slot.as_ref().is_some_and(|candidate| candidate.domain == domain) {
                *slot = None;
            }
        }
    }

    fn dispatch(&mut self, index: usize, domains: &mut [DomainState<'_>]) {
        let Some(candidate) = self.pending[index].take() else {
            return;
        };
        if !self.asked.insert((candidate.domain, candidate.path.clone())) {
            return;
        }
        let state = &mut domains[candidate.domain];
        state.in_flight += 1;
        self.in_flight += 1;
        self.requests += 1;
        let url = format!("{}{}", state.config.url, candidate.path);
        let module = state.module.clone();
        let timeout = state.config.timeout;
        let fetcher = self.fetcher.clone();
        let sender = self.results.0.clone();
        std::thread::spawn(move || {
            let verdict = judge(&fetcher, &url, &module, timeout);
            // The receiver is gone once the lookup has finished; the answer is no longer needed.
            let _ = sender.send((candidate, verdict));
        });
    }

    fn wait_for_result(&mut self, at_most: Duration) {
        if self.in_flight == 0 {
            std::thread::sleep(at_most);
            return;
        }
        if let Ok(outcome) = self.results.1.recv_timeout(at_most) {
            // Put it back for the main loop to handle in order with the others.
            let _ = self.results.0.send(outcome);
        }
    }

    /// After a hit with `all_domains`: the remaining work is the same path on every other domain.
    fn replace_with_same_path(
        &mut self,
        hit: &Candidate,
        domains: &[DomainState<'_>],
        request: &SearchRequest,
    ) {
        self.pending.clear();
        self.first_pending = 0;
        for (index, state) in domains.iter().enumerate() {
            if index == hit.domain || !state.config.enabled || state.failure.is_some() {
                continue;
            }
            let quality = state.module.primary_quality();
            self.pending.push(Some(Candidate {
                domain: index,
                path: state
                    .module
                    .path(&request.login, request.stream_id, &hit.ts, quality),
                ..hit.clone()
            }));
        }
    }
}
