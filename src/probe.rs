//! Probing a tracked broadcast: which candidate URLs to ask, in which order, and what the
//! answer means for the record.
//!
//! Order matters more here than in a one-off lookup because every request comes out of the
//! appliance's small budget. What earlier probes learned is reused: a broadcast whose path was
//! learned while live costs one request at its end; a streamer's next broadcast starts with the
//! domain and timestamp form of the last one (each channel's copies sit on one region's
//! domain). Otherwise domains are weighted by how often they held copies, and domains known to
//! be down are left out (the probe is then inconclusive and retried, not counted as a miss).

use crate::config::Config;
use crate::discover::{VideoHint, VideoOf};
use crate::record::{ArchiveInfo, Learned, Status, StreamRecord};
use crate::search::{self, Cdn, DomainFailure, QualityCheck, SearchError, SearchLimits, SearchRequest};
use crate::track::{self, Rules};
use probes::{Candidate, DomainPlan, TimeGuess, TimestampForm};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

mod history;
mod rebuild;

#[cfg(test)]
use history::concluded_empty;
pub use history::{
    EMPTY_STREAK, HISTORY_LOOKBACK, KNOWN_EMPTY, REVERIFY_AFTER, REVERIFY_EVERY, SEARCHED_LIVE,
    SEARCHED_ONCE, UNMUTED_STREAK, hour_fetch_skipped, keeps_no_vods, live_fetch_skipped, muted_from_video,
    settled_by_history,
};

/// What the appliance knows about each domain, by base URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainBook {
    pub domains: HashMap<String, DomainEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainEntry {
    /// Broadcasts found on this domain.
    pub hits: u64,
    /// `false` after a transport failure, until a health check or a probe succeeds.
    pub down: bool,
    pub last_success: Option<i64>,
    pub last_failure: Option<String>,
}

impl DomainBook {
    fn weight(&self, url: &str) -> f64 {
        let total: u64 = self.domains.values().map(|entry| entry.hits).sum();
        let hits = self.domains.get(url).map_or(0, |entry| entry.hits);
        1.0 + 10.0 * hits as f64 / (1 + total) as f64
    }

    pub fn is_down(&self, url: &str) -> bool {
        self.domains.get(url).is_some_and(|entry| entry.down)
    }

    /// Records an answer; `true` when the domain was down until now (it recovered).
    pub fn record_success(&mut self, url: &str, now: i64) -> bool {
        let entry = self.domains.entry(url.to_string()).or_default();
        let recovered = entry.down;
        entry.down = false;
        entry.last_success = Some(now);
        recovered
    }

    pub fn record_failure(&mut self, url: &str, reason: &str) {
        let entry = self.domains.entry(url.to_string()).or_default();
        entry.down = true;
        entry.last_failure = Some(reason.to_string());
    }

    /// As [`DomainBook::record_success`], counting a broadcast found there.
    pub fn record_hit(&mut self, url: &str, now: i64) -> bool {
        let recovered = self.record_success(url, now);
        self.domains.entry(url.to_string()).or_default().hits += 1;
        recovered
    }
}

/// What the channel's video list says about a broadcast.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VideoFacts {
    /// Where its playlist is, when its own video object exists on a configured domain.
    pub learned: Option<Learned>,
    /// Publicly listed; a broadcast absent from a list that could be read is not (deleted,
    /// hidden, or never archived).
    pub public: Option<bool>,
    /// The channel's domain from its other videos (a channel's copies sit on one domain), for
    /// a broadcast whose own video is gone: searched first, as a streamer hint.
    pub channel_hint: Option<Learned>,
    /// A domain a video names that is not configured (worth telling the operator).
    pub unknown_domain: Option<String>,
    /// Its own video lists muted stretches (true) or says none (false); `None` without an own
    /// video or when the list did not say (see [`VideoHint::muted`]).
    pub muted: Option<bool>,
    /// The stretches its own video lists as muted (see [`VideoHint::muted_stretches`]).
    pub muted_stretches: Vec<(u64, u64)>,
}

pub fn from_videos(config: &Config, record: &StreamRecord, videos: &[VideoHint]) -> VideoFacts {
    let configured = |url: &str| {
        config
            .domains
            .iter()
            .any(|domain| domain.enabled && domain.url == url)
    };
    let mut facts = VideoFacts::default();
    let Some(video) = own_video(record, videos) else {
        facts.public = Some(false);
        facts.channel_hint = videos
            .iter()
            .find(|video| configured(&video.domain))
            .map(|video| Learned {
                domain: video.domain.clone(),
                form: TimestampForm::Unix.as_str().to_string(),
                ts: String::new(),
            });
        return facts;
    };
    let form = [
        TimestampForm::Unix,
        TimestampForm::UnixMinus1,
        TimestampForm::SecondOfMinute,
    ]
    .into_iter()
    .find(|form| form.render(record.start_unix) == video.ts)
    .unwrap_or(TimestampForm::Unix);
    facts.public = Some(video.public);
    facts.muted = video.muted;
    facts.muted_stretches.clone_from(&video.muted_stretches);
    if !video.path_known() {
        // The video exists but names no path yet: the CDN search finds it.
        return facts;
    }
    if configured(&video.domain) {
        facts.learned = Some(Learned {
            domain: video.domain.clone(),
            form: form.as_str().to_string(),
            ts: video.ts.clone(),
        });
    } else {
        facts.unknown_domain = Some(video.domain.clone());
    }
    facts
}

/// How far a video's start (GQL `createdAt`) may be from the broadcast's start as the live
/// listing reported it and still be its video. Both name the same instant, but the listing's
/// time is sometimes a second late and a record's start can come from the other API; two
/// minutes covers that, while a channel's next broadcast rarely starts within two minutes of
/// the last (a quick restart usually keeps its stream id, which the record keys on anyway).
const VIDEO_START_TOLERANCE: i64 = 120;

/// The broadcast's own video: by stream id, else (a video that names only its start) the one
/// that started nearest to it within [`VIDEO_START_TOLERANCE`].
pub(crate) fn own_video<'a>(record: &StreamRecord, videos: &'a [VideoHint]) -> Option<&'a VideoHint> {
    let by_id = videos
        .iter()
        .find(|video| video.broadcast == VideoOf::Stream(record.stream_id));
    by_id.or_else(|| {
        videos
            .iter()
            .filter_map(|video| match video.broadcast {
                VideoOf::StartedAt(start) => Some((start.abs_diff(record.start_unix), video)),
                VideoOf::Stream(_) => None,
            })
            .filter(|(off, _)| *off <= VIDEO_START_TOLERANCE.unsigned_abs())
            .min_by_key(|(off, _)| *off)
            .map(|(_, video)| video)
    })
}

/// What one probe of a broadcast found.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeResult {
    /// The playlist, with where it was found.
    Hit {
        archive: Box<ArchiveInfo>,
        learned: Learned,
    },
    /// Every candidate answered "not there".
    Miss,
    /// No conclusion: a domain that could hold it failed, or the budget ran out.
    Inconclusive { reason: String },
    /// Not searched: while live, nothing suggests an archive is being written. The probes at
    /// its absence and end still search.
    Deferred { reason: String },
    /// Not searched, and settled as not found: the channel's history and its empty video list
    /// say nothing is stored (see [`settled_by_history`]).
    KnownEmpty { reason: String },
    /// Not fetched: the hour-aligned re-fetch of a capture on a channel whose history shows no
    /// muting (see [`hour_fetch_skipped`]).
    Skipped { reason: String },
}

impl ProbeResult {
    /// The outcome's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ProbeResult::Hit { .. } => "found",
            ProbeResult::Miss => "missed",
            ProbeResult::Inconclusive { .. } => "inconclusive",
            ProbeResult::Deferred { .. } => "deferred",
            ProbeResult::KnownEmpty { .. } => "known_empty",
            ProbeResult::Skipped { .. } => "skipped",
        }
    }
}

/// How a due probe goes, decided before any CDN request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeStart {
    /// Where to look first when the record has no learned path (the streamer's previous
    /// broadcast, else the channel's domain from its other videos).
    pub hint: Option<Learned>,
    /// Whether the broadcast is publicly listed, when the video list said.
    pub public: Option<bool>,
    /// The channel's video list was read and shows no video at all (see [`lists_no_video`]).
    pub lists_no_video: bool,
    /// The stream id was seen before with another start: a restart, whose copy may use the
    /// second-of-minute form (see [`run`]).
    pub restart: bool,
}

/// The channel's video list was read and shows no archive video at all: not this broadcast's,
/// not another's. Twitch creates the archive video when a stream starts, so a channel that
/// stores its broadcasts shows them; one full search that misses settles such a broadcast.
pub fn lists_no_video(facts: &VideoFacts) -> bool {
    facts.learned.is_none()
        && facts.channel_hint.is_none()
        && facts.unknown_domain.is_none()
        && facts.public == Some(false)
}

/// Applies what the channel's video list said (`facts`: `None` when it was not read or could
/// not be) to `record` and decides how its probe starts. `previous` gives the learned path of
/// the streamer's broadcast before this one; it is asked only when a hint is wanted.
pub fn start(
    record: &mut StreamRecord,
    facts: Option<VideoFacts>,
    previous: impl FnOnce() -> Option<Learned>,
) -> ProbeStart {
    let mut start = ProbeStart::default();
    let mut channel_hint = None;
    if record.probe.learned.is_none()
        && let Some(facts) = facts
    {
        // Twitch creates the archive video when a stream starts: none for this broadcast, and
        // none at all for the channel, means most likely no archive is being written. One
        // search settles it; made while live (the EVENT playlist exists, nobody has deleted
        // it yet), its miss is proof enough that the end needs no other.
        start.lists_no_video = lists_no_video(&facts);
        record.probe.learned = facts.learned;
        start.public = facts.public;
        channel_hint = facts.channel_hint;
    }
    if record.probe.learned.is_none() {
        start.hint = previous().or(channel_hint);
    }
    start
}

/// The record a probe's outcome makes of `fresh` (the record as stored when the outcome is
/// written), or `None` when the outcome no longer applies: the record was concluded meanwhile
/// (dropped from an over-full queue) and waits for no probe.
pub fn conclude(
    fresh: StreamRecord,
    result: ProbeResult,
    start: &ProbeStart,
    now: i64,
    rules: &Rules,
) -> Option<StreamRecord> {
    fresh.probe.next_due?;
    let missed = result == ProbeResult::Miss;
    let mut updated = track::after_probe(fresh, result, now, rules);
    if start.public.is_some() {
        updated.public = start.public;
    }
    // One full search that missed after the end, the channel listing no video: nothing is
    // stored. Retries (or a second search at `settle`) would sweep every domain again for a
    // broadcast that was never written.
    let ended = matches!(updated.status, Status::Pending | Status::NotFound);
    if missed && start.lists_no_video && ended && updated.archive.is_none() {
        updated.status = Status::NotFound;
        updated.probe.next_due = None;
        updated.probe.misses = updated.probe.misses.max(1);
        updated.probe.last_error = Some(SEARCHED_ONCE.to_string());
    }
    Some(updated)
}

/// What to do with a capture waiting for a quality check.
#[derive(Clone, Debug, PartialEq)]
pub enum QualityStep {
    /// It can never be checked (no longer archived, or its domain is no longer configured):
    /// store these qualities and take it off the queue.
    Settle(Vec<String>),
    /// Its domain is down: leave it queued and look at the next.
    Later,
    /// Check its other qualities on the domain that holds it.
    Check(Box<ArchiveInfo>),
}

/// Decides a queued capture's quality check from its stored record (`None`: gone).
pub fn next_quality_check(
    record: Option<StreamRecord>,
    configured: impl Fn(&str) -> bool,
    is_down: impl Fn(&str) -> bool,
) -> QualityStep {
    match record.and_then(|record| record.archive) {
        // Its domain was removed from the configuration: it keeps what the archive says.
        Some(archive) if !configured(&archive.domain) => QualityStep::Settle(archive.qualities),
        // One unreachable domain must not hold up the captures on every other.
        Some(archive) if is_down(&archive.domain) => QualityStep::Later,
        Some(archive) => QualityStep::Check(Box::new(archive)),
        // No longer archived: nothing to check.
        None => QualityStep::Settle(Vec::new()),
    }
}

/// The qualities to store after a check, or `None` when it did not finish and the capture
/// stays queued. A check that can never run keeps what the archive says (`archived`).
pub fn checked_qualities(check: &QualityCheck, archived: &[String]) -> Option<Vec<String>> {
    match &check.unfinished {
        Some(_) if check.impossible => Some(archived.to_vec()),
        Some(_) => None,
        None => Some(check.qualities.clone()),
    }
}

/// The candidates for one probe, most promising first, and how many domains were left out
/// because they are down.
pub fn candidates(
    config: &Config,
    record: &StreamRecord,
    streamer_hint: Option<&Learned>,
    book: &DomainBook,
    sweep: bool,
) -> (Vec<Candidate>, usize) {
    let usable: Vec<usize> = config
        .domains
        .iter()
        .enumerate()
        .filter(|(_, domain)| domain.enabled && !book.is_down(&domain.url))
        .map(|(index, _)| index)
        .collect();
    let skipped = config.domains.iter().filter(|d| d.enabled).count() - usable.len();
    let index_of = |url: &str| usable.iter().copied().find(|&i| config.domains[i].url == url);
    let mut ordered: Vec<usize> = usable.clone();
    ordered.sort_by(|&a, &b| {
        book.weight(&config.domains[b].url)
            .total_cmp(&book.weight(&config.domains[a].url))
            .then(a.cmp(&b))
    });
    let candidate = |domain: usize, ts: &str, form: TimestampForm| {
        let module = config.module_of(&config.domains[domain]);
        Candidate {
            domain,
            ts: ts.to_string(),
            form,
            start_unix: record.start_unix,
            path: module.path(&record.login, record.stream_id, ts, module.primary_quality()),
            probability: 1.0,
        }
    };
    // The path is known: ask it where it was, and nowhere else. A channel's copies sit on one
    // domain, so the same path elsewhere costs a request per domain for nothing, on every
    // retry while that domain is down and on every probe of a deleted broadcast. It is asked
    // even when marked down (the probe is then inconclusive and retried, one request each).
    // Only a domain since removed from the config sends the path to the others.
    if let Some(learned) = &record.probe.learned {
        let form = TimestampForm::parse(&learned.form).unwrap_or(TimestampForm::Unix);
        let holder = config
            .domains
            .iter()
            .position(|domain| domain.enabled && domain.url == learned.domain);
        let list = match holder {
            Some(domain) => vec![candidate(domain, &learned.ts, form)],
            None => ordered
                .iter()
                .map(|&domain| candidate(domain, &learned.ts, form))
                .collect(),
        };
        return (list, if holder.is_some() { 0 } else { skipped });
    }
    let mut list: Vec<Candidate> = Vec::new();
    // The channel's domain and form are known (its last capture, or its other videos): a
    // channel's copies sit on its domain, so it is asked there in every form, and nowhere
    // else until the last retry asks every other domain once (a wrong hint costs a wait, not
    // the capture). A sweep at every miss cost about 25 requests for each broadcast deleted
    // before its first probe (week benchmark). While that domain is down nothing is asked:
    // the probe is inconclusive and runs again when the domain answers. With `sweep` (a miss
    // would settle the broadcast, or no wait is wanted) the hint only goes first.
    //
    // The last retry's sweep asks the other domains in the hint's form only. The form is the
    // broadcast's (which start time Twitch wrote into the path), not the domain's, and the
    // channel's domain was asked in every form at every probe before; a copy elsewhere is a
    // channel that moved or a second copy, in the form its broadcasts take. Every form on
    // every domain cost 36 requests for each broadcast deleted before its first probe, 5–11 a
    // day in the week benchmark (a tenth of the budget), for no capture.
    let final_retry = !sweep && is_last_retry(record, config.pipeline.retries.len());
    let last = sweep || final_retry;
    if let Some(hint) = streamer_hint
        && let Some(form) = TimestampForm::parse(&hint.form)
    {
        let configured = config.domains.iter().any(|d| d.enabled && d.url == hint.domain);
        let in_form = |domain: usize| candidate(domain, &form.render(record.start_unix), form);
        match index_of(&hint.domain) {
            Some(domain) => {
                list.push(in_form(domain));
                if !last || final_retry {
                    for other in TimestampForm::ALL {
                        if other != form {
                            list.push(candidate(domain, &other.render(record.start_unix), other));
                        }
                    }
                    if final_retry {
                        list.extend(ordered.iter().filter(|&&d| d != domain).map(|&d| in_form(d)));
                    }
                    return (list, skipped);
                }
            }
            None if configured && !last => return (Vec::new(), skipped),
            None if final_retry => {
                list.extend(ordered.iter().map(|&d| in_form(d)));
                return (list, skipped);
            }
            None => {}
        }
    }
    let plans: Vec<DomainPlan<'_>> = ordered
        .iter()
        .map(|&domain| DomainPlan {
            domain,
            module: config.module_of(&config.domains[domain]),
            weight: book.weight(&config.domains[domain].url)
                * if streamer_hint.is_some_and(|h| h.domain == config.domains[domain].url) {
                    100.0
                } else {
                    1.0
                },
        })
        .collect();
    let planned = probes::plan(
        &plans,
        &record.login,
        record.stream_id,
        TimeGuess::Exact(record.start_unix),
        0,
    );
    let mut seen: HashSet<(usize, String)> = list.iter().map(|c| (c.domain, c.path.clone())).collect();
    for candidate in planned {
        if seen.insert((candidate.domain, candidate.path.clone())) {
            list.push(candidate);
        }
    }
    (list, skipped)
}

/// Whether `record`'s next probe is its last retry (of `retries`): the one that asks every
/// domain whatever the hint says (in the hint's form, where there is one).
pub fn is_last_retry(record: &StreamRecord, retries: usize) -> bool {
    record.probe.misses as usize >= retries
}

/// What one probe did, for the domain book and metrics.
#[derive(Clone, Debug, Default)]
pub struct ProbeReport {
    pub requests: usize,
    /// Each domain that failed during the probe.
    pub failed_domains: Vec<DomainFailure>,
    /// Domains that answered (held it or not).
    pub answered_domains: Vec<String>,
    /// The raw playlist text of a hit.
    pub playlist: Option<String>,
    /// Of `requests`, those a rebuild attempt spent (segment 0 and the search), if one ran.
    pub rebuild_requests: Option<usize>,
}

/// Requests one probe keeps in flight after its first candidate: every request beyond the
/// one that finds the playlist is spent from the appliance's small budget, so a search goes
/// nearly one by one (a domain that hangs costs its timeout, not the whole search).
const PROBE_IN_FLIGHT: usize = 2;

/// Probes one broadcast under the shared budget. Blocking; run it off the async threads.
/// Returns `None` when `cdn.steer` stopped it: the probe is handed back and stays due.
/// `partial` is the playlist an earlier capture of it stored, if any: when its playlist is
/// gone but its segments answer, the rebuild reads the segment count and length from it.
pub fn run(
    cdn: Cdn<'_>,
    record: &StreamRecord,
    start: &ProbeStart,
    book: &DomainBook,
    now: i64,
    partial: Option<&str>,
) -> Option<(ProbeResult, ProbeReport)> {
    let config = cdn.config;
    // Every domain at once where a miss settles the broadcast (its channel lists no video:
    // nothing stored), and for a restart's later part, which need not share the first
    // part's domain (the simulated restarts store it elsewhere).
    let sweep = start.lists_no_video || start.restart;
    let (mut list, skipped) = candidates(config, record, start.hint.as_ref(), book, sweep);
    // The second-of-minute form is seen mostly for restarted broadcasts that reuse a stream id
    // (the reference); elsewhere it costs a third of a full search that misses, so it is left
    // to the last retry. A search that is the only one (its channel lists no video: a miss
    // settles it) asks it too, and so do a restart and a hint that names it. On the channel's
    // own domain (see `candidates`) it is one request more, not a search of every domain and
    // a retry (27 requests a capture, several a day in the week benchmark).
    let last_retry = is_last_retry(record, config.pipeline.retries.len());
    let hinted = start
        .hint
        .as_ref()
        .is_some_and(|hint| TimestampForm::parse(&hint.form) == Some(TimestampForm::SecondOfMinute));
    // A known path is asked as it is, whatever its form.
    let known = record.probe.learned.is_some();
    let hint_domain = start.hint.as_ref().and_then(|hint| {
        config
            .domains
            .iter()
            .position(|d| d.enabled && d.url == hint.domain)
    });
    if !(known || start.restart || last_retry || hinted || start.lists_no_video) {
        list.retain(|candidate| {
            candidate.form != TimestampForm::SecondOfMinute || Some(candidate.domain) == hint_domain
        });
    }
    let mut report = ProbeReport::default();
    if list.is_empty() {
        let channel_down = start.hint.as_ref().is_some_and(|hint| book.is_down(&hint.domain));
        let reason = if channel_down {
            "its channel's domain is down: asked when it answers again"
        } else if skipped > 0 {
            "every domain is down"
        } else {
            "no enabled domain"
        };
        return Some((
            ProbeResult::Inconclusive {
                reason: reason.to_string(),
            },
            report,
        ));
    }
    let request = SearchRequest {
        login: record.login.clone(),
        stream_id: record.stream_id,
        time: TimeGuess::Exact(record.start_unix),
        window_minutes: 0,
        all_domains: false,
    };
    let limits = SearchLimits {
        requests_per_second: config.limits.requests_per_second,
        max_in_flight: PROBE_IN_FLIGHT,
        max_in_flight_per_domain: 2,
        first_alone: true,
    };
    let asked: HashSet<usize> = list.iter().map(|c| c.domain).collect();
    let outcome = match search::run(cdn, list, &request, limits, |_| {}) {
        Ok(outcome) if outcome.interrupted => return None,
        Ok(outcome) => outcome,
        Err(SearchError::NoDomainAnswered { failures }) => {
            report.failed_domains = failures.clone();
            return Some((
                ProbeResult::Inconclusive {
                    reason: format!("no domain answered ({} failed)", failures.len()),
                },
                report,
            ));
        }
        Err(error) => {
            return Some((
                ProbeResult::Inconclusive {
                    reason: error.to_string(),
                },
                report,
            ));
        }
    };
    report.requests = outcome.requests;
    report.failed_domains = outcome.failed_domains.clone();
    let failed: HashSet<&str> = outcome
        .failed_domains
        .iter()
        .map(|f| f.domain_url.as_str())
        .collect();
    report.answered_domains = asked
        .iter()
        .map(|&i| config.domains[i].url.clone())
        .filter(|url| !failed.contains(url.as_str()))
        .collect();
    match outcome.found {
        Some(found) => {
            let module = config.module_of(&config.domains[found.domain]);
            let archive = Box::new(ArchiveInfo {
                domain: found.domain_url.clone(),
                domains: found.domains.clone(),
                timestamp_form: found.form.as_str().to_string(),
                ts: found.timestamp.clone(),
                url: found.url.clone(),
                duration_seconds: found.summary.duration_seconds,
                segments: found.summary.segments,
                muted_segments: found.summary.muted_segments,
                container: found.summary.container,
                qualities: vec![module.primary_quality().to_string()],
                fetched_at: now,
                ended: found.summary.ended,
                rebuilt: false,
            });
            let learned = Learned {
                domain: found.domain_url,
                form: found.form.as_str().to_string(),
                ts: found.timestamp,
            };
            report.playlist = Some(found.raw);
            Some((ProbeResult::Hit { archive, learned }, report))
        }
        None if !outcome.failed_domains.is_empty() || skipped > 0 => {
            let reason = format!(
                "not found on the domains that answered; {} failed and {skipped} were down",
                outcome.failed_domains.len()
            );
            Some((ProbeResult::Inconclusive { reason }, report))
        }
        None => match rebuild::location(cdn, record) {
            Some(location) => {
                let after = rebuild::attempt(cdn, record, location, partial, now);
                report.requests += after.requests;
                report.rebuild_requests = Some(after.requests);
                report.playlist = after.playlist;
                Some((after.result?, report))
            }
            None => Some((ProbeResult::Miss, report)),
        },
    }
}

#[cfg(test)]
mod tests;
