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

mod rebuild;

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

/// Broadcasts in a row, concluded not found, that make a channel known to store nothing; the
/// channel's empty video list must agree as well (Twitch creates the archive video when a
/// stream starts), at every broadcast it settles. One full search is enough. It can be fooled
/// only where a channel stores but lists no video at all (no archive video in its whole list)
/// and its streamer deleted the broadcast before the search, minutes after the end; and the
/// mistake lasts only while the list stays empty — any archive video listed later, or the
/// re-verify, ends it. A second search per channel would cost a sweep of every domain for
/// each of the 9 % of channels that store nothing (half the request budget in the week
/// benchmark) to guard against that rare case.
pub const EMPTY_STREAK: usize = 1;
/// A channel known to store nothing is searched in full again every this many broadcasts…
pub const REVERIFY_EVERY: usize = 32;
/// …or when its last full search is older than this (seconds). A channel that turns VODs on
/// shows archive videos in its list, read at every probe for free (no CDN request); the CDN
/// search only catches one that stores but hides every archive, so it can be rare.
pub const REVERIFY_AFTER: i64 = 30 * 86_400;
/// The `last_error` of a broadcast settled by [`settled_by_history`]: it marks the record as
/// settled without a search (the next full search is counted from it), no new stored field.
pub const KNOWN_EMPTY: &str =
    "not searched: the channel's last broadcasts were never stored and it lists no video";

/// The `last_error` of a broadcast searched in full while live (nothing on any domain) and
/// settled at its end without another search, its channel still listing no video.
pub const SEARCHED_LIVE: &str =
    "not found on any domain while live, and the channel still lists no video: nothing stored";
/// The `last_error` of a broadcast concluded after one full search that missed, its channel
/// listing no video.
pub const SEARCHED_ONCE: &str = "not found on any domain, and the channel lists no video: nothing stored";

/// Searched in full: a miss after its end (`misses` counts those) or while live.
fn searched_in_full(record: &StreamRecord) -> bool {
    record.probe.misses > 0 || record.probe.missed_live
}

/// Concluded not found with nothing stored: after a full search or settled by history.
fn concluded_empty(record: &StreamRecord) -> bool {
    record.status == Status::NotFound
        && record.archive.is_none()
        && record.probe.learned.is_none()
        && record.public != Some(true)
        && (searched_in_full(record) || record.probe.last_error.as_deref() == Some(KNOWN_EMPTY))
}

/// Whether the channel's broadcasts before `start_unix` (`earlier`, newest first, as the store
/// lists a streamer's records) make it known to store nothing: its last [`EMPTY_STREAK`] were
/// concluded not found, and one of the last `REVERIFY_EVERY - 1` of them was searched in full
/// within [`REVERIFY_AFTER`]. Otherwise this broadcast is searched in full.
pub fn keeps_no_vods(earlier: &[StreamRecord], start_unix: i64) -> bool {
    // A broadcast given up for want of budget says nothing about the channel: passed over.
    let recent: Vec<&StreamRecord> = earlier
        .iter()
        .filter(|record| record.start_unix < start_unix)
        .filter(|record| !track::was_shed(record))
        .take(REVERIFY_EVERY - 1)
        .take_while(|record| concluded_empty(record))
        .collect();
    let missed_live = recent.first().is_some_and(|record| record.probe.missed_live);
    (recent.len() >= EMPTY_STREAK || missed_live)
        && recent
            .iter()
            .any(|record| searched_in_full(record) && start_unix - record.start_unix <= REVERIFY_AFTER)
}

/// A due probe that needs no CDN request: the broadcast's path is unknown, the channel's video
/// list was read and shows no video at all, and either its history says it stores nothing
/// ([`keeps_no_vods`]) or this broadcast was already searched in full while live. Ended, it is
/// settled not found; still live (its absence probe), it waits for its end, which is settled
/// the same way.
pub fn settled_by_history(
    record: &StreamRecord,
    facts: Option<&VideoFacts>,
    earlier: &[StreamRecord],
) -> Option<ProbeResult> {
    let no_video = facts.is_some_and(lists_no_video);
    let unknown = no_video && record.probe.learned.is_none() && record.archive.is_none();
    if unknown && record.probe.missed_live && record.status != Status::Live {
        return Some(ProbeResult::KnownEmpty {
            reason: SEARCHED_LIVE.to_string(),
        });
    }
    if !(unknown && keeps_no_vods(earlier, record.start_unix)) {
        return None;
    }
    Some(match record.status {
        Status::Live => ProbeResult::Deferred {
            reason: "live on a channel that stores nothing: settled when it ends".to_string(),
        },
        _ => ProbeResult::KnownEmpty {
            reason: KNOWN_EMPTY.to_string(),
        },
    })
}

/// A channel's broadcasts looked at for quick deletes and muting (see [`live_fetch_skipped`]).
pub const HISTORY_LOOKBACK: usize = 8;

/// Deleted soon after it ended, as the record shows it: gone before the hour-aligned re-fetch,
/// rebuilt from its segments (its playlist was gone), or only a copy taken while live.
fn deleted_quickly(record: &StreamRecord) -> bool {
    let gone_before_hour = record.probe.last_error.as_deref() == Some(track::GONE_BEFORE_HOUR);
    let rebuilt = record.archive.as_ref().is_some_and(|archive| archive.rebuilt);
    let partial_only = record.status == Status::NotFound && record.archive.is_some();
    gone_before_hour || rebuilt || partial_only
}

/// Whether the live learning fetch of `record` (`start` as [`start`] decided it) can be
/// skipped, and why: its path is known from the video list or derivable from the channel's
/// last domain and form, so the probe at its absence or end costs one request anyway, and the
/// channel's last [`HISTORY_LOOKBACK`] broadcasts (`earlier`) include captures and none deleted
/// quickly — for those that did, or a channel not seen before, the copy taken while live is
/// what a rebuild starts from.
pub fn live_fetch_skipped(
    record: &StreamRecord,
    start: &ProbeStart,
    earlier: &[StreamRecord],
) -> Option<String> {
    let learning = record.status == Status::Live
        && !record.probe.absence_probed
        && record.probe.probes == 0
        && record.archive.is_none();
    let recent = || earlier.iter().take(HISTORY_LOOKBACK);
    // Known not to delete quickly: captures, none of them deleted soon after the end. A
    // channel seen for the first time is not known either way, and keeps the live copy.
    let known_to_keep =
        recent().any(|record| record.status == Status::Found) && !recent().any(deleted_quickly);
    // The video names the exact path: the end probe costs one request and comes `settle`
    // after the end, before most quick deletes (minutes later); a derived path can still miss
    // (another form), so it keeps the live copy unless the channel is known to keep.
    let exact = record.probe.learned.is_some();
    let derivable = start.hint.is_some() && known_to_keep;
    (learning && (exact || derivable))
        .then(|| "live, its path known or derivable: fetched when it ends".to_string())
}

/// Captures re-fetched after their hour boundary, none muted, that make muting on a channel
/// unlikely enough to skip the next hour-aligned re-fetch. As re-fetches are skipped, fewer of
/// the last [`HISTORY_LOOKBACK`] broadcasts count, and the re-fetch comes back by itself.
pub const UNMUTED_STREAK: usize = 4;

/// Whether the hour-aligned re-fetch of `record` (a capture waiting for it) can be skipped,
/// and why. Its own video, read after the hour boundary (`facts`), says whether the mute pass
/// muted anything (Helix `muted_segments`, GQL `muteInfo`): not muted, the CDN is not asked;
/// muted, it is. Without that answer (no own video: hidden, or the list unread), the history
/// decides: at least [`UNMUTED_STREAK`] of the channel's last [`HISTORY_LOOKBACK`] broadcasts
/// (`earlier`) were fetched after their hour boundary, and none of them, nor this capture, has
/// muted segments. Twitch mutes on the hour, and mutes the same channels again (music).
pub fn hour_fetch_skipped(
    record: &StreamRecord,
    facts: Option<&VideoFacts>,
    earlier: &[StreamRecord],
) -> Option<String> {
    let archive = record.archive.as_ref()?;
    let waiting = record.status == Status::Found && !record.probe.hour_probe_done;
    match facts.and_then(|facts| facts.muted) {
        Some(false) if waiting => {
            return Some(
                "hour-aligned re-fetch skipped: its video lists no muted segments after the hour".to_string(),
            );
        }
        Some(true) => return None,
        _ => {}
    }
    let after_hour = |record: &StreamRecord| {
        let ended = record.ended_at.unwrap_or(record.last_seen);
        let boundary = (ended.div_euclid(3600) + 1) * 3600;
        record
            .archive
            .as_ref()
            .is_some_and(|archive| archive.fetched_at >= boundary)
    };
    let recent = || earlier.iter().take(HISTORY_LOOKBACK);
    let muted = archive.muted_segments > 0
        || recent().any(|earlier| earlier.archive.as_ref().is_some_and(|a| a.muted_segments > 0));
    let checked = recent().filter(|earlier| after_hour(earlier)).count();
    (waiting && !muted && checked >= UNMUTED_STREAK).then(|| {
        format!(
            "hour-aligned re-fetch skipped: the channel's last {checked} re-fetched captures had no muting"
        )
    })
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
    if let Some(hint) = streamer_hint
        && let Some(domain) = index_of(&hint.domain)
        && let Some(form) = TimestampForm::parse(&hint.form)
    {
        list.push(candidate(domain, &form.render(record.start_unix), form));
        // A retry after a full search missed: the channel's copies sit on its domain, so only
        // that domain's forms are asked again; the last retry sweeps everywhere once more.
        let retry = record.probe.misses > 0;
        let last = record.probe.misses as usize >= config.pipeline.retries.len();
        if retry && !last {
            for other in [
                TimestampForm::Unix,
                TimestampForm::UnixMinus1,
                TimestampForm::SecondOfMinute,
            ] {
                if other != form {
                    list.push(candidate(domain, &other.render(record.start_unix), other));
                }
            }
            return (list, skipped);
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
    let (mut list, skipped) = candidates(config, record, start.hint.as_ref(), book);
    // The second-of-minute form is seen mostly for restarted broadcasts that reuse a stream id
    // (the reference); elsewhere it costs a third of a full search that misses, so it is left
    // to a later probe: the retries on the channel's domain, or the last retry. A search that
    // is the only one (its channel lists no video: a miss settles it) asks it too, and so do a
    // restart and a hint that names it.
    let last_retry = record.probe.misses as usize >= config.pipeline.retries.len();
    let hinted = start
        .hint
        .as_ref()
        .is_some_and(|hint| TimestampForm::parse(&hint.form) == Some(TimestampForm::SecondOfMinute));
    // A retry on the channel's domain (see `candidates`) is three requests: all forms.
    let domain_retry = record.probe.misses > 0 && start.hint.is_some();
    // A known path is asked as it is, whatever its form.
    let known = record.probe.learned.is_some();
    if !(known || start.restart || last_retry || hinted || start.lists_no_video || domain_retry) {
        list.retain(|candidate| candidate.form != TimestampForm::SecondOfMinute);
    }
    let mut report = ProbeReport::default();
    if list.is_empty() {
        let reason = if skipped > 0 {
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
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::config::parse;
    use crate::fetch::Fetcher;
    use crate::record::{ProbeState, Status};

    fn config() -> Config {
        let text = "[[domain]]\nurl = \"http://a.test/\"\nprobe = \"twitch-vod\"\n\
                    [[domain]]\nurl = \"http://b.test/\"\nprobe = \"twitch-vod\"\n\
                    [[domain]]\nurl = \"http://c.test/\"\nprobe = \"twitch-vod\"\n";
        parse(None, text, &[]).expect("valid")
    }

    fn record() -> StreamRecord {
        StreamRecord {
            start_unix: 1_664_038_929,
            stream_id: 47_198_535_725,
            streamer_id: 7,
            login: "gmhikaru".into(),
            title: String::new(),
            game_id: String::new(),
            game_name: String::new(),
            language: "en".into(),
            is_mature: false,
            max_viewers: 100,
            first_seen: 0,
            last_seen: 0,
            ended_at: Some(0),
            status: Status::Pending,
            public: None,
            probe: ProbeState::default(),
            archive: None,
        }
    }

    fn summary(list: &[Candidate]) -> Vec<(usize, String)> {
        list.iter().map(|c| (c.domain, c.ts.clone())).collect()
    }

    #[test]
    fn without_history_domains_in_order_then_forms() {
        let (list, skipped) = candidates(&config(), &record(), None, &DomainBook::default());
        assert_eq!(skipped, 0);
        assert_eq!(list.len(), 9);
        assert_eq!(
            list[0].path,
            "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929/chunked/index-dvr.m3u8"
        );
        assert_eq!(
            summary(&list[..3]),
            vec![
                (0, "1664038929".into()),
                (1, "1664038929".into()),
                (2, "1664038929".into())
            ]
        );
    }

    #[test]
    fn a_learned_path_costs_one_request_first() {
        let mut record = record();
        record.probe.learned = Some(Learned {
            domain: "http://c.test/".into(),
            form: "unix-1".into(),
            ts: "1664038928".into(),
        });
        let (list, _) = candidates(&config(), &record, None, &DomainBook::default());
        assert_eq!(summary(&list), vec![(2, "1664038928".into())]);
        // Asked even when marked down: it is the one place the copy is.
        let mut book = DomainBook::default();
        book.record_failure("http://c.test/", "timed out");
        let (list, skipped) = candidates(&config(), &record, None, &book);
        assert_eq!((summary(&list), skipped), (vec![(2, "1664038928".into())], 0));
        // A domain removed from the config: the same path on the others.
        let mut gone = record.clone();
        if let Some(learned) = gone.probe.learned.as_mut() {
            learned.domain = "http://removed.test/".into();
        }
        let (list, _) = candidates(&config(), &gone, None, &book);
        assert_eq!(
            summary(&list),
            vec![(0, "1664038928".into()), (1, "1664038928".into())]
        );
    }

    /// A config whose domains are the simulated CDN's, with a budget far above what a probe
    /// needs (so only the probe's own restraint limits its requests).
    fn sim_config(cdn: &vodprobe_sim::SimCdn) -> Config {
        let mut text = "[limits]\nrequests_per_second = 1000\nrequest_timeout = \"2s\"\n".to_string();
        for domain in 0..cdn.domain_count() {
            text.push_str(&format!(
                "[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
                cdn.base_url(domain)
            ));
        }
        parse(None, &text, &[]).expect("valid")
    }

    fn probe_sim(cdn: &vodprobe_sim::SimCdn, record: &StreamRecord, hint: Option<&Learned>) -> ProbeReport {
        let start = ProbeStart {
            hint: hint.cloned(),
            restart: true,
            ..ProbeStart::default()
        };
        let (result, report) = probe_sim_with(cdn, record, &start);
        assert!(matches!(result, ProbeResult::Hit { .. }), "{result:?}");
        report
    }

    fn probe_sim_with(
        cdn: &vodprobe_sim::SimCdn,
        record: &StreamRecord,
        start: &ProbeStart,
    ) -> (ProbeResult, ProbeReport) {
        let config = sim_config(cdn);
        let fetcher = Fetcher::new(crate::fetch::FetchSettings::from_limits(&config.limits));
        let budget = Budget::new(1000.0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let cdn = Cdn {
            config: &config,
            fetcher: &fetcher,
            budget: &budget,
            steer: &|| false,
        };
        run(cdn, record, start, &DomainBook::default(), 0, None).expect("not interrupted")
    }

    #[test]
    fn a_full_search_leaves_the_second_of_minute_form_to_a_later_probe_where_one_follows() {
        let domains = (0..3).map(|_| vodprobe_sim::DomainSpec::healthy()).collect();
        let cdn = vodprobe_sim::SimCdn::start(domains).expect("cdn");
        let plain = ProbeStart::default();
        let (result, report) = probe_sim_with(&cdn, &record(), &plain);
        assert_eq!((result, report.requests), (ProbeResult::Miss, 3 * 2));
        let restart = ProbeStart {
            restart: true,
            ..ProbeStart::default()
        };
        assert_eq!(probe_sim_with(&cdn, &record(), &restart).1.requests, 3 * 3);
        let mut last = record();
        last.probe.misses = rules().retries.len() as u32;
        assert_eq!(probe_sim_with(&cdn, &last, &plain).1.requests, 3 * 3);
        // A path known in that form (a restart's video named it) is asked as it is.
        let mut named = record();
        named.probe.learned = Some(Learned {
            domain: cdn.base_url(1),
            form: TimestampForm::SecondOfMinute.as_str().to_string(),
            ts: "9".into(),
        });
        let (result, _) = probe_sim_with(&cdn, &named, &plain);
        assert_eq!(result, ProbeResult::Miss);
        assert!(
            cdn.requests(1)
                .iter()
                .any(|path| path.contains("_9/chunked/index-dvr.m3u8"))
        );
        // The only search a broadcast gets (its channel lists no video) asks every form.
        let only = ProbeStart {
            lists_no_video: true,
            ..ProbeStart::default()
        };
        assert_eq!(probe_sim_with(&cdn, &record(), &only).1.requests, 3 * 3);
    }

    #[test]
    fn a_known_path_is_asked_alone_even_with_budget_to_spare() {
        let cdn = vodprobe_sim::SimCdn::start((0..6).map(|_| vodprobe_sim::DomainSpec::healthy()).collect())
            .expect("cdn");
        let record = record();
        cdn.add_broadcast(vodprobe_sim::Broadcast::new(
            &record.login,
            record.stream_id,
            &record.start_unix.to_string(),
            vec![4],
        ));
        let total = |cdn: &vodprobe_sim::SimCdn| (0..6).map(|d| cdn.requests(d).len()).sum::<usize>();
        // Learned while live: one request, not one per domain in flight.
        let mut learned = record.clone();
        learned.probe.learned = Some(Learned {
            domain: cdn.base_url(4),
            form: "unix".into(),
            ts: record.start_unix.to_string(),
        });
        assert_eq!(probe_sim(&cdn, &learned, None).requests, 1);
        assert_eq!(total(&cdn), 1);
        // The streamer's last domain and form: one request too.
        let hint = Learned {
            domain: cdn.base_url(4),
            form: "unix".into(),
            ts: String::new(),
        };
        assert_eq!(probe_sim(&cdn, &record, Some(&hint)).requests, 1);
        assert_eq!(total(&cdn), 2);
        // A cold search asks a few at a time and stops at the hit. How many misses come back
        // while the hit is in flight depends on timing, so only the end is certain: the hit
        // (fifth in the plan) is asked, and the rest of the plan is not.
        let planned = candidates(&sim_config(&cdn), &record, None, &DomainBook::default())
            .0
            .len();
        let report = probe_sim(&cdn, &record, None);
        assert!(
            report.requests >= 5 && report.requests < planned,
            "{} of {planned}",
            report.requests
        );
    }

    #[test]
    fn the_streamers_domain_and_form_come_first() {
        let hint = Learned {
            domain: "http://b.test/".into(),
            form: "second-of-minute".into(),
            ts: "5".into(),
        };
        let (list, _) = candidates(&config(), &record(), Some(&hint), &DomainBook::default());
        assert_eq!(
            summary(&list[..3]),
            vec![
                (1, "9".into()),
                (1, "1664038929".into()),
                (1, "1664038928".into())
            ]
        );
        assert_eq!(list.len(), 9, "no candidate twice");
    }

    fn video(stream_id: u64, domain: &str, ts: &str, public: bool) -> VideoHint {
        VideoHint {
            broadcast: VideoOf::Stream(stream_id),
            domain: domain.to_string(),
            folder: format!("hash_gmhikaru_{stream_id}_{ts}"),
            ts: ts.to_string(),
            public,
            muted: None,
        }
    }

    #[test]
    fn a_video_reveals_the_path_and_whether_it_is_public() {
        let record = record();
        let videos = vec![
            video(1, "http://a.test/", "1", true),
            video(47_198_535_725, "http://b.test/", "1664038928", false),
        ];
        let facts = from_videos(&config(), &record, &videos);
        let (learned, public) = (facts.learned, facts.public);
        let learned = learned.expect("learned");
        assert_eq!(
            (
                learned.domain.as_str(),
                learned.form.as_str(),
                learned.ts.as_str()
            ),
            ("http://b.test/", "unix-1", "1664038928")
        );
        assert_eq!(public, Some(false));
        // The learned path is the first and only-domain-first candidate: one request.
        let mut with_path = record.clone();
        with_path.probe.learned = Some(learned);
        let (list, _) = candidates(&config(), &with_path, None, &DomainBook::default());
        assert_eq!((list[0].domain, list[0].ts.as_str()), (1, "1664038928"));
    }

    #[test]
    fn the_own_video_says_whether_it_was_muted() {
        let record = record();
        let own = |muted: Option<bool>| VideoHint {
            muted,
            ..video(47_198_535_725, "http://b.test/", "1664038928", true)
        };
        for muted in [Some(true), Some(false), None] {
            assert_eq!(from_videos(&config(), &record, &[own(muted)]).muted, muted);
        }
        // Another broadcast's muted video says nothing about this one.
        let other = VideoHint {
            muted: Some(true),
            ..video(1, "http://b.test/", "1", true)
        };
        assert_eq!(from_videos(&config(), &record, &[other]).muted, None);
    }

    #[test]
    fn absent_or_unknown_domain_videos() {
        let facts = from_videos(&config(), &record(), &[video(5, "http://c.test/", "9", true)]);
        assert_eq!((facts.learned, facts.public), (None, Some(false)));
        // The channel's other video names its domain: searched first.
        let hint = facts.channel_hint.expect("channel hint");
        assert_eq!(hint.domain, "http://c.test/");
        let (list, _) = candidates(&config(), &record(), Some(&hint), &DomainBook::default());
        assert_eq!((list[0].domain, list[0].ts.as_str()), (2, "1664038929"));
        let unknown = [video(47_198_535_725, "http://new-cdn.test/", "1664038929", true)];
        let facts = from_videos(&config(), &record(), &unknown);
        assert_eq!((facts.learned, facts.public), (None, Some(true)));
        assert_eq!(facts.unknown_domain.as_deref(), Some("http://new-cdn.test/"));
        // Helix's processing placeholder: the video exists and is public, the path is searched.
        let placeholder = [video(47_198_535_725, "", "", true)];
        let facts = from_videos(&config(), &record(), &placeholder);
        assert_eq!(
            (facts.learned, facts.public, facts.unknown_domain),
            (None, Some(true), None)
        );
    }

    #[test]
    fn a_video_naming_only_its_start_is_matched_by_time() {
        // GQL's null seekPreviewsURL: no stream id, no path; createdAt is the broadcast's start.
        let record = record();
        let started = |at: i64, public: bool| VideoHint {
            broadcast: VideoOf::StartedAt(at),
            domain: String::new(),
            folder: String::new(),
            ts: String::new(),
            public,
            muted: None,
        };
        let start = record.start_unix;
        let near = [started(start + 3, true)];
        let facts = from_videos(&config(), &record, &near);
        assert_eq!((facts.learned, facts.public), (None, Some(true)));
        // The nearest within the tolerance wins; farther ones are other broadcasts.
        let two = [
            started(start - VIDEO_START_TOLERANCE, false),
            started(start + 1, true),
        ];
        assert_eq!(from_videos(&config(), &record, &two).public, Some(true));
        let edge = [started(start - VIDEO_START_TOLERANCE, true)];
        assert_eq!(from_videos(&config(), &record, &edge).public, Some(true));
        let far = [
            started(start + VIDEO_START_TOLERANCE + 1, true),
            started(start - 3600, true),
        ];
        assert_eq!(from_videos(&config(), &record, &far).public, Some(false));
        // A video naming the stream id is the broadcast's own, whatever starts nearby.
        let both = [started(start, true), video(record.stream_id, "", "", false)];
        assert_eq!(from_videos(&config(), &record, &both).public, Some(false));
    }

    #[test]
    fn hit_counts_order_domains_and_down_domains_are_left_out() {
        let mut book = DomainBook::default();
        book.record_hit("http://c.test/", 1);
        book.record_failure("http://a.test/", "timed out");
        let (list, skipped) = candidates(&config(), &record(), None, &book);
        assert_eq!(skipped, 1);
        assert_eq!(list[0].domain, 2);
        assert!(list.iter().all(|c| c.domain != 0));
        book.record_success("http://a.test/", 2);
        assert!(!book.is_down("http://a.test/"));
    }

    fn learned(domain: &str) -> Learned {
        Learned {
            domain: domain.into(),
            form: "unix".into(),
            ts: "1664038929".into(),
        }
    }

    fn rules() -> Rules {
        Rules::from_config(&config())
    }

    #[test]
    fn a_live_broadcast_without_any_archive_video_is_searched_while_live() {
        let mut live = record();
        live.status = Status::Live;
        let empty_list = VideoFacts {
            public: Some(false),
            ..VideoFacts::default()
        };
        let asked = std::cell::Cell::new(false);
        let start = start(&mut live.clone(), Some(empty_list.clone()), || {
            asked.set(true);
            None
        });
        // Searched now (nothing deferred), the one search a miss settles.
        assert!(start.lists_no_video);
        assert_eq!(start.public, Some(false));
        assert!(asked.get(), "no learned path: the previous broadcast's is asked");
        assert_eq!(live_fetch_skipped(&live, &start, &[]), None);
        // The channel's other videos name a domain: searched now, that domain as the hint.
        let mut live = record();
        live.status = Status::Live;
        let facts = VideoFacts {
            public: Some(false),
            channel_hint: Some(learned("http://b.test/")),
            ..VideoFacts::default()
        };
        let start = super::start(&mut live, Some(facts), || None);
        assert_eq!(
            (start.lists_no_video, start.hint),
            (false, Some(learned("http://b.test/")))
        );
    }

    /// A broadcast of the same channel `days` days before `record()`, concluded not found
    /// after a full search (`searched`) or settled by history.
    fn empty_before(days: i64, searched: bool) -> StreamRecord {
        let mut earlier = record();
        earlier.start_unix -= days * 86_400;
        earlier.stream_id -= days as u64;
        earlier.status = Status::NotFound;
        earlier.public = Some(false);
        if searched {
            earlier.probe.misses = 1;
        } else {
            earlier.probe.last_error = Some(KNOWN_EMPTY.to_string());
        }
        earlier
    }

    #[test]
    fn a_channel_that_stores_nothing_is_settled_without_a_search_and_reverified() {
        let start = record().start_unix;
        let searched = |days| empty_before(days, true);
        let settled = |days| empty_before(days, false);
        // One full search after the end, empty: known to store nothing (the empty list must
        // agree too, see settled_by_history).
        assert!(keeps_no_vods(&[searched(1), searched(2)], start));
        assert!(keeps_no_vods(&[searched(1)], start));
        // One search while live is enough.
        let mut live_miss = empty_before(1, false);
        live_miss.probe.missed_live = true;
        live_miss.probe.last_error = Some(SEARCHED_LIVE.into());
        assert!(keeps_no_vods(&[live_miss], start));
        // No history, or the last broadcast captured: searched.
        assert!(!keeps_no_vods(&[], start));
        let found_at = |days| {
            let mut found = searched(days);
            found.status = Status::Found;
            found
        };
        assert!(!keeps_no_vods(&[found_at(1), searched(2), searched(3)], start));
        let mut shed = searched(1);
        shed.probe.misses = 0;
        shed.probe.last_error = Some(track::SHED.into());
        assert!(!keeps_no_vods(&[shed.clone(), found_at(2), searched(3)], start));
        assert!(!keeps_no_vods(&[shed.clone()], start));
        // A broadcast shed for want of budget says nothing: passed over.
        assert!(keeps_no_vods(&[shed, searched(2), searched(3)], start));
        // Broadcasts settled since the last full search keep it known…
        let settled_days = REVERIFY_EVERY as i64 - 2;
        let mut history: Vec<StreamRecord> = (1..=settled_days).map(|d| settled(d / 2)).collect();
        history.push(searched(settled_days / 2 + 1));
        assert!(keeps_no_vods(&history, start));
        // …until the last full search is REVERIFY_EVERY broadcasts back: searched again.
        history.insert(0, settled(0));
        assert!(!keeps_no_vods(&history, start + 1));
        // Or older than REVERIFY_AFTER.
        let month = REVERIFY_AFTER / 86_400;
        assert!(!keeps_no_vods(&[settled(1), searched(month + 1)], start));
        assert!(keeps_no_vods(&[settled(1), searched(month - 1)], start));
        assert!(keeps_no_vods(
            &[settled(1), settled(2), searched(month - 1)],
            start
        ));
        // Broadcasts after this one (a restart listed later) do not count.
        let mut later = searched(0);
        later.start_unix = start + 10;
        assert!(!keeps_no_vods(&[later], start));

        let history = [searched(1), searched(2)];
        let no_video = VideoFacts {
            public: Some(false),
            ..VideoFacts::default()
        };
        // Ended: settled not found without a CDN request.
        let ended = record();
        let result = settled_by_history(&ended, Some(&no_video), &history).expect("settled");
        assert_eq!(
            result,
            ProbeResult::KnownEmpty {
                reason: KNOWN_EMPTY.to_string()
            }
        );
        let mut concluded = ended.clone();
        concluded.probe.next_due = Some(10);
        let concluded = conclude(concluded, result, &ProbeStart::default(), 20, &rules()).expect("waiting");
        assert_eq!(concluded.status, Status::NotFound);
        assert_eq!(concluded.probe.next_due, None);
        // It counts as settled for the next broadcast.
        assert!(concluded_empty(&concluded));
        // Live (its absence probe): waits for its end, still without a request.
        let mut live = record();
        live.status = Status::Live;
        live.probe.absence_probed = true;
        let result = settled_by_history(&live, Some(&no_video), &history).expect("deferred");
        assert!(matches!(result, ProbeResult::Deferred { .. }));
        // Searched as before when the video list was not read, or shows any video.
        assert_eq!(settled_by_history(&ended, None, &history), None);
        let hinted = VideoFacts {
            channel_hint: Some(learned("http://b.test/")),
            ..no_video.clone()
        };
        assert_eq!(settled_by_history(&ended, Some(&hinted), &history), None);
        assert_eq!(settled_by_history(&ended, Some(&no_video), &[]), None);
    }

    #[test]
    fn one_full_search_settles_a_broadcast_whose_channel_lists_no_video() {
        let no_video = VideoFacts {
            public: Some(false),
            ..VideoFacts::default()
        };
        let mut fresh = record();
        let start = start(&mut fresh, Some(no_video.clone()), || None);
        assert!(start.lists_no_video);
        // A miss after the end: not found at once, no retry and no second search.
        let mut waiting = record();
        waiting.status = Status::Pending;
        waiting.probe.next_due = Some(100);
        let done = conclude(waiting.clone(), ProbeResult::Miss, &start, 200, &rules()).expect("waits");
        assert_eq!((done.status, done.probe.next_due), (Status::NotFound, None));
        assert_eq!(done.probe.last_error.as_deref(), Some(SEARCHED_ONCE));
        assert!(concluded_empty(&done));
        // The same miss where the list shows the channel's other videos: retried as before.
        let hinted = ProbeStart {
            public: Some(false),
            ..ProbeStart::default()
        };
        let retried = conclude(waiting.clone(), ProbeResult::Miss, &hinted, 200, &rules()).expect("waits");
        assert_eq!(retried.status, Status::Pending);
        assert!(retried.probe.next_due.is_some());
        // An inconclusive search settles nothing.
        let inconclusive = ProbeResult::Inconclusive {
            reason: "down".into(),
        };
        let backing_off = conclude(waiting, inconclusive, &start, 200, &rules()).expect("waits");
        assert_eq!(backing_off.status, Status::Pending);
        // A miss while live: its end is settled without another search while the list stays
        // empty, searched again if a video appeared.
        let mut ended = record();
        ended.status = Status::Pending;
        ended.probe.missed_live = true;
        assert_eq!(
            settled_by_history(&ended, Some(&no_video), &[]),
            Some(ProbeResult::KnownEmpty {
                reason: SEARCHED_LIVE.to_string()
            })
        );
        let hinted_facts = VideoFacts {
            channel_hint: Some(learned("http://b.test/")),
            ..no_video
        };
        assert_eq!(settled_by_history(&ended, Some(&hinted_facts), &[]), None);
        assert_eq!(settled_by_history(&ended, None, &[]), None);
    }

    #[test]
    fn a_retry_asks_the_channels_domain_only_until_the_last_one() {
        let config = config();
        let book = DomainBook::default();
        let hint = learned("http://b.test/");
        let mut retry = record();
        retry.probe.misses = 1;
        let (list, _) = candidates(&config, &retry, Some(&hint), &book);
        assert_eq!(list.len(), 3);
        assert!(
            list.iter()
                .all(|c| config.domains[c.domain].url == "http://b.test/")
        );
        // The last retry sweeps every domain; the first probe too.
        retry.probe.misses = config.pipeline.retries.len() as u32;
        let (last, _) = candidates(&config, &retry, Some(&hint), &book);
        assert!(last.len() > 3);
        let (first, _) = candidates(&config, &record(), Some(&hint), &book);
        assert_eq!(first.len(), last.len());
        // Without a hint a retry is a full search.
        retry.probe.misses = 1;
        assert_eq!(candidates(&config, &retry, None, &book).0.len(), last.len());
    }

    #[test]
    fn the_live_fetch_is_skipped_where_the_end_probe_costs_one_request_anyway() {
        let mut live = record();
        live.status = Status::Live;
        let hinted = ProbeStart {
            hint: Some(learned("http://b.test/")),
            ..ProbeStart::default()
        };
        let captured = |last_error: Option<&str>| {
            let mut earlier = archived("http://b.test/");
            earlier.start_unix = live.start_unix - 86_400;
            earlier.probe.last_error = last_error.map(str::to_string);
            earlier
        };
        let quiet = [captured(None)];
        // The channel's last domain and form: fetched at its end instead.
        assert_eq!(
            live_fetch_skipped(&live, &hinted, &quiet).as_deref(),
            Some("live, its path known or derivable: fetched when it ends")
        );
        // The video list named the path: the same.
        let mut named = live.clone();
        named.probe.learned = Some(learned("http://c.test/"));
        assert!(live_fetch_skipped(&named, &ProbeStart::default(), &quiet).is_some());
        // Even on a channel without captures before: the exact path costs one request at the end.
        assert!(live_fetch_skipped(&named, &ProbeStart::default(), &[]).is_some());
        // A derived path on such a channel keeps the live copy.
        assert_eq!(live_fetch_skipped(&live, &hinted, &[]), None);
        let mut missed = captured(None);
        missed.status = Status::NotFound;
        missed.archive = None;
        assert_eq!(live_fetch_skipped(&live, &hinted, &[missed]), None);
        // Nothing to derive the path from: learned while it exists.
        assert_eq!(live_fetch_skipped(&live, &ProbeStart::default(), &quiet), None);
        // A channel that deleted a broadcast soon after its end: the live copy is kept.
        let deleted = [captured(Some(track::GONE_BEFORE_HOUR))];
        assert_eq!(live_fetch_skipped(&live, &hinted, &deleted), None);
        let mut rebuilt = captured(None);
        if let Some(archive) = rebuilt.archive.as_mut() {
            archive.rebuilt = true;
        }
        assert_eq!(live_fetch_skipped(&live, &hinted, &[rebuilt]), None);
        // Only live learning is skipped: the absence probe and the end probe still fetch.
        let mut absent = live.clone();
        absent.probe.absence_probed = true;
        assert_eq!(live_fetch_skipped(&absent, &hinted, &quiet), None);
        assert_eq!(live_fetch_skipped(&record(), &hinted, &quiet), None);
    }

    #[test]
    fn the_hour_aligned_re_fetch_is_skipped_only_on_channels_that_were_never_muted() {
        // This capture, fetched before its hour boundary, waits for the re-fetch.
        let mut capture = archived("http://b.test/");
        capture.ended_at = Some(capture.start_unix + 600);
        capture.probe.next_due = Some(capture.start_unix + 7200);
        // An earlier broadcast of the channel, fetched `after` seconds past its end.
        let earlier = |days: i64, after: i64, muted: u32| {
            let mut earlier = archived("http://b.test/");
            earlier.start_unix -= days * 86_400;
            earlier.ended_at = Some(earlier.start_unix + 600);
            if let Some(archive) = earlier.archive.as_mut() {
                archive.fetched_at = earlier.start_unix + 600 + after;
                archive.muted_segments = muted;
            }
            earlier
        };
        let clean: Vec<StreamRecord> = (1..=4).map(|day| earlier(day, 3600 + 300, 0)).collect();
        let reason = hour_fetch_skipped(&capture, None, &clean).expect("skipped");
        assert_eq!(
            reason,
            "hour-aligned re-fetch skipped: the channel's last 4 re-fetched captures had no muting"
        );
        let done = conclude(
            capture.clone(),
            ProbeResult::Skipped { reason },
            &ProbeStart::default(),
            0,
            &rules(),
        )
        .expect("waiting");
        assert!(done.probe.hour_probe_done && done.status == Status::Found);
        assert_eq!(done.probe.next_due, None);
        // Too few re-fetched captures (the others were fetched before their hour): re-fetched.
        let mut few = clean.clone();
        few[0] = earlier(1, 120, 0);
        assert_eq!(hour_fetch_skipped(&capture, None, &few), None);
        // One muted capture among them, or this one muted already: re-fetched.
        let mut muted = clean.clone();
        muted.push(earlier(5, 120, 3));
        assert_eq!(hour_fetch_skipped(&capture, None, &muted), None);
        let mut muted_now = capture.clone();
        if let Some(archive) = muted_now.archive.as_mut() {
            archive.muted_segments = 2;
        }
        assert_eq!(hour_fetch_skipped(&muted_now, None, &clean), None);
        // Nothing else is skipped: a broadcast not yet captured, or re-fetched already.
        assert_eq!(hour_fetch_skipped(&record(), None, &clean), None);
        let mut done = capture.clone();
        done.probe.hour_probe_done = true;
        assert_eq!(hour_fetch_skipped(&done, None, &clean), None);
        // Its own video, read after the hour, decides over the history: not muted is skipped
        // even without history; muted is re-fetched even on a channel never muted before.
        let said = |muted| VideoFacts {
            public: Some(true),
            muted: Some(muted),
            ..VideoFacts::default()
        };
        let reason = hour_fetch_skipped(&capture, Some(&said(false)), &[]).expect("skipped");
        assert!(reason.contains("no muted segments"), "{reason}");
        assert_eq!(hour_fetch_skipped(&capture, Some(&said(true)), &clean), None);
        assert_eq!(hour_fetch_skipped(&done, Some(&said(false)), &[]), None);
        // No own video (hidden or deleted): the history rule as above.
        let unknown = VideoFacts {
            public: Some(false),
            ..VideoFacts::default()
        };
        assert!(hour_fetch_skipped(&capture, Some(&unknown), &clean).is_some());
        assert_eq!(hour_fetch_skipped(&capture, Some(&unknown), &few), None);
    }

    #[test]
    fn a_video_naming_the_path_is_learned_and_no_hint_is_asked() {
        let mut record = record();
        let facts = VideoFacts {
            learned: Some(learned("http://c.test/")),
            public: Some(true),
            ..VideoFacts::default()
        };
        let start = start(&mut record, Some(facts), || panic!("no hint is wanted"));
        assert_eq!(record.probe.learned, Some(learned("http://c.test/")));
        assert_eq!(
            start,
            ProbeStart {
                hint: None,
                public: Some(true),
                lists_no_video: false,
                restart: false,
            }
        );
    }

    #[test]
    fn the_previous_broadcast_goes_before_the_channel_hint_and_known_paths_ignore_videos() {
        let mut fresh = record();
        let facts = VideoFacts {
            public: Some(false),
            channel_hint: Some(learned("http://b.test/")),
            ..VideoFacts::default()
        };
        let start = start(&mut fresh, Some(facts.clone()), || {
            Some(learned("http://a.test/"))
        });
        assert_eq!(start.hint, Some(learned("http://a.test/")));
        // Unreadable list: the previous broadcast only; nothing said about visibility.
        let start = super::start(&mut record(), None, || Some(learned("http://a.test/")));
        assert_eq!(
            (start.hint, start.public),
            (Some(learned("http://a.test/")), None)
        );
        // Already learned: the video list changes nothing, no hint.
        let mut known = record();
        known.probe.learned = Some(learned("http://c.test/"));
        let start = super::start(&mut known, Some(facts), || panic!("no hint is wanted"));
        assert_eq!(start, ProbeStart::default());
        assert_eq!(known.probe.learned, Some(learned("http://c.test/")));
    }

    #[test]
    fn an_outcome_applies_only_to_a_record_still_waiting_and_sets_visibility() {
        let mut waiting = record();
        waiting.probe.next_due = Some(100);
        let private = ProbeStart {
            public: Some(false),
            ..ProbeStart::default()
        };
        let updated = conclude(waiting.clone(), ProbeResult::Miss, &private, 200, &rules())
            .expect("it waited for this probe");
        assert_eq!((updated.public, updated.probe.misses), (Some(false), 1));
        assert_eq!(updated.probe.next_due, Some(200 + rules().retries[0]));
        // No visibility learned: the stored one stays.
        waiting.public = Some(true);
        let kept =
            conclude(waiting, ProbeResult::Miss, &ProbeStart::default(), 200, &rules()).expect("waits");
        assert_eq!(kept.public, Some(true));
        // Dropped from the queue meanwhile: discarded.
        assert_eq!(
            conclude(record(), ProbeResult::Miss, &private, 200, &rules()),
            None
        );
        assert_eq!(ProbeResult::Miss.name(), "missed");
    }

    fn archived(domain: &str) -> StreamRecord {
        let mut record = record();
        record.status = Status::Found;
        record.archive = Some(ArchiveInfo {
            domain: domain.into(),
            domains: vec![domain.into()],
            timestamp_form: "unix".into(),
            ts: "1664038929".into(),
            url: format!("{domain}x/chunked/index-dvr.m3u8"),
            duration_seconds: 60.0,
            segments: 6,
            muted_segments: 0,
            container: crate::playlist::Container::Ts,
            qualities: vec!["chunked".into()],
            fetched_at: 0,
            ended: true,
            rebuilt: false,
        });
        record
    }

    #[test]
    fn quality_checks_skip_down_domains_and_settle_what_can_never_be_checked() {
        let configured = |url: &str| url != "http://removed.test/";
        let down = |url: &str| url == "http://b.test/";
        let step = |record| next_quality_check(record, configured, down);
        assert!(
            matches!(step(Some(archived("http://a.test/"))), QualityStep::Check(a) if a.domain == "http://a.test/")
        );
        assert_eq!(step(Some(archived("http://b.test/"))), QualityStep::Later);
        assert_eq!(
            step(Some(archived("http://removed.test/"))),
            QualityStep::Settle(vec!["chunked".into()])
        );
        assert_eq!(step(Some(record())), QualityStep::Settle(Vec::new()));
        assert_eq!(step(None), QualityStep::Settle(Vec::new()));
    }

    #[test]
    fn a_quality_check_stores_what_answered_keeps_the_archive_when_impossible_else_waits() {
        let archived = vec!["chunked".to_string()];
        let done = QualityCheck {
            qualities: vec!["chunked".into(), "720p60".into()],
            requests: 13,
            unfinished: None,
            impossible: false,
        };
        assert_eq!(checked_qualities(&done, &archived), Some(done.qualities.clone()));
        let impossible = QualityCheck {
            unfinished: Some("gone".into()),
            impossible: true,
            ..QualityCheck::default()
        };
        assert_eq!(checked_qualities(&impossible, &archived), Some(archived.clone()));
        let unfinished = QualityCheck {
            unfinished: Some("timed out".into()),
            ..QualityCheck::default()
        };
        assert_eq!(checked_qualities(&unfinished, &archived), None);
    }
}
