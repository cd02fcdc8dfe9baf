//! The pipeline's rules, as pure functions over records: sightings → records, ended and
//! restarted streams, and when each broadcast is probed next.
//!
//! Nothing here touches the store, the network or the clock: callers pass `now` (unix seconds)
//! and the records involved, and get back the records to write. That keeps every rule of the
//! operator's notes — restarts ending the previous broadcast, reused stream ids, the hourly
//! muting pass, the retry schedule — testable with plain data.

use crate::config::{Config, RuleAction};
use crate::follow::Selection;
use crate::probe::ProbeResult;
use crate::record::{ProbeState, Sighting, Status, StreamKey, StreamRecord};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The settings the rules read, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub min_viewers_record: u32,
    pub ended_after: i64,
    pub settle: i64,
    /// 0: live learning is off.
    pub learn_live_after: i64,
    pub align_to_hour: bool,
    pub hour_margin: i64,
    pub retries: Vec<i64>,
    /// Back-off cap after inconclusive probes (every domain that could hold it failed).
    pub max_backoff: i64,
    /// Follows and `[[rule]]`s: recorded whatever the viewers, or left out.
    pub selection: Arc<Selection>,
}

impl Rules {
    pub fn from_config(config: &Config) -> Rules {
        let pipeline = &config.pipeline;
        Rules {
            min_viewers_record: config.source.min_viewers_record,
            ended_after: pipeline.ended_after.as_secs() as i64,
            settle: pipeline.settle.as_secs() as i64,
            learn_live_after: pipeline.learn_live_after.as_secs() as i64,
            align_to_hour: pipeline.align_to_hour,
            hour_margin: pipeline.hour_margin.as_secs() as i64,
            retries: pipeline.retries.iter().map(|d| d.as_secs() as i64).collect(),
            max_backoff: 3600,
            selection: Arc::new(Selection {
                rules: config.rules.clone(),
                ..Selection::default()
            }),
        }
    }

    /// Followed, or a rule says record; else the viewer threshold (a skip rule: never).
    pub fn recordable(&self, record: &StreamRecord) -> bool {
        match self.selection.decide(&record.into()) {
            Some(RuleAction::Record) => true,
            Some(RuleAction::Skip) => false,
            None => record.max_viewers >= self.min_viewers_record,
        }
    }
}

/// What the records touched by a page of sightings become.
#[derive(Debug, Default, PartialEq)]
pub struct PageUpdate {
    pub write: Vec<StreamRecord>,
    /// Ended streams that never reached the record threshold: nothing to keep.
    pub delete: Vec<StreamKey>,
}

/// Applies one page of the live listing at `now`. `known` holds the stored records of the
/// sighted keys; `live_of_streamer` the stored live record of each sighted streamer (to detect
/// restarts). Sightings of one key within the page are merged.
pub fn apply_sightings(
    page: &[Sighting],
    known: &HashMap<StreamKey, StreamRecord>,
    live_of_streamer: &HashMap<u64, StreamRecord>,
    now: i64,
    rules: &Rules,
) -> PageUpdate {
    let mut touched: HashMap<StreamKey, StreamRecord> = HashMap::new();
    let mut update = PageUpdate::default();
    for sighting in page {
        let key = (sighting.started_at, sighting.stream_id);
        let record = touched
            .remove(&key)
            .or_else(|| known.get(&key).cloned())
            .map(|record| seen_again(record, sighting, now, rules))
            .unwrap_or_else(|| first_sighting(sighting, now, rules));
        // A new start for the same streamer ends the previous broadcast at once (a restart).
        if let Some(previous) = live_of_streamer.get(&sighting.streamer_id) {
            let previous_key = previous.key();
            if previous_key != key && previous.start_unix < key.0 && previous.status == Status::Live {
                let previous = touched.remove(&previous_key).unwrap_or_else(|| previous.clone());
                if previous.status == Status::Live {
                    match end(previous, now, rules) {
                        Ended::Keep(ended) => {
                            touched.insert(previous_key, *ended);
                        }
                        Ended::Drop(dropped) => update.delete.push(dropped),
                    }
                }
            }
        }
        touched.insert(key, record);
    }
    let mut write: Vec<StreamRecord> = touched.into_values().collect();
    write.sort_by_key(StreamRecord::key);
    update.write = write;
    update
}

fn first_sighting(sighting: &Sighting, now: i64, rules: &Rules) -> StreamRecord {
    let mut record = StreamRecord {
        start_unix: sighting.started_at,
        stream_id: sighting.stream_id,
        streamer_id: sighting.streamer_id,
        login: sighting.login.to_ascii_lowercase(),
        title: sighting.title.clone(),
        game_id: sighting.game_id.clone(),
        game_name: sighting.game_name.clone(),
        language: sighting.language.clone(),
        is_mature: sighting.is_mature,
        max_viewers: sighting.viewers,
        first_seen: now,
        last_seen: now,
        ended_at: None,
        status: Status::Live,
        public: None,
        probe: ProbeState::default(),
        archive: None,
    };
    schedule_live_learning(&mut record, now, rules);
    record
}

fn seen_again(mut record: StreamRecord, sighting: &Sighting, now: i64, rules: &Rules) -> StreamRecord {
    record.last_seen = record.last_seen.max(now);
    record.max_viewers = record.max_viewers.max(sighting.viewers);
    // Seen again after being taken for ended (a listing hiccup): live again unless it was
    // already probed after its end, whose outcome stands.
    if record.status == Status::Pending && record.probe.probes == 0 {
        record.status = Status::Live;
        record.ended_at = None;
        record.probe.next_due = None;
    }
    if record.status == Status::Live {
        // Title and category follow the listing while live (the store's comparison makes
        // their change events); the crawl writes the record anyway, so this costs no write.
        if record.title != sighting.title {
            record.title.clone_from(&sighting.title);
        }
        if record.game_id != sighting.game_id {
            record.game_id.clone_from(&sighting.game_id);
            record.game_name.clone_from(&sighting.game_name);
        }
        // Back in the listing: a later absence is worth a probe again when it costs one request.
        if record.probe.learned.is_some() {
            record.probe.absence_probed = false;
        }
        schedule_live_learning(&mut record, now, rules);
    }
    record
}

/// Once a recordable stream has been live `learn_live_after`, find its path while it exists.
fn schedule_live_learning(record: &mut StreamRecord, now: i64, rules: &Rules) {
    let wanted = rules.learn_live_after > 0
        && rules.recordable(record)
        && record.probe.learned.is_none()
        && record.probe.next_due.is_none()
        && record.probe.probes == 0;
    if wanted {
        record.probe.next_due = Some(now.max(record.start_unix + rules.learn_live_after));
    }
}

enum Ended {
    Keep(Box<StreamRecord>),
    Drop(StreamKey),
}

/// Ends a live broadcast at `now` (its end is taken as its last sighting): recordable ones
/// wait for their first probe `settle` later; others are dropped.
fn end(mut record: StreamRecord, now: i64, rules: &Rules) -> Ended {
    if !rules.recordable(&record) {
        return Ended::Drop(record.key());
    }
    record.ended_at = Some(record.last_seen);
    let complete_capture = record
        .archive
        .as_ref()
        .filter(|archive| archive.ended)
        .map(|a| a.fetched_at);
    match complete_capture {
        // Already captured with #EXT-X-ENDLIST (probed at its first absence): only the
        // hour-aligned re-probe remains.
        Some(fetched_at) => {
            record.status = Status::Found;
            record.probe.captured_at.get_or_insert(fetched_at);
            record.probe.next_due = None;
            schedule_hour_probe(&mut record, now, rules);
        }
        None => {
            record.status = Status::Pending;
            // An absence probe already due sooner (a complete pass missed it) keeps its time;
            // any other due time (live learning) gives way to the probe at the end.
            let due = now + rules.settle;
            record.probe.next_due = match record.probe.next_due {
                Some(current) if record.probe.absence_probed && current < due => Some(current),
                _ => Some(due),
            };
        }
    }
    Ended::Keep(Box::new(record))
}

/// After a capture, once more after the next hour boundary (Twitch mutes on the hour), unless
/// that moment has already passed.
fn schedule_hour_probe(record: &mut StreamRecord, now: i64, rules: &Rules) {
    if !rules.align_to_hour || record.probe.hour_probe_done {
        return;
    }
    let hour_probe = hour_probe_time(content_end(record), rules);
    if now >= hour_probe {
        record.probe.hour_probe_done = true;
    } else {
        record.probe.next_due = Some(hour_probe);
    }
}

/// When the broadcast ended, as far as its record can tell: the end the listing showed, or
/// later the end of the stored copy, since a stream that fell below the listing's viewer
/// floor went on unseen, and Twitch mutes on the hour after the copy's real end (the week
/// benchmark found muted copies missed for want of this); a copy still growing when fetched
/// ended after that.
fn content_end(record: &StreamRecord) -> i64 {
    let listed = record.ended_at.unwrap_or(record.last_seen);
    match &record.archive {
        Some(archive) if archive.ended => {
            listed.max(record.start_unix + archive.duration_seconds.ceil() as i64)
        }
        Some(archive) => listed.max(archive.fetched_at),
        None => listed,
    }
}

/// The order due probes start in: followed channels first, then the most viewed, then by key
/// (within a rank, a backlog is shed in the reverse order).
pub fn probe_order(a: &StreamRecord, b: &StreamRecord, rules: &Rules) -> std::cmp::Ordering {
    let followed = |r: &StreamRecord| rules.selection.is_followed(r.streamer_id);
    followed(b)
        .cmp(&followed(a))
        .then(b.max_viewers.cmp(&a.max_viewers))
        .then(a.key().cmp(&b.key()))
}

/// Whether a waiting probe's search has a hint — the channel's domain and form, from its last
/// capture or its other videos — as the probe stage's read-ahead of video lists found (the
/// record does not keep it).
pub type Hinted<'a> = &'a dyn Fn(&StreamRecord) -> bool;

/// What a waiting probe is likely to cost and buy, best first: a capture whose path is known
/// (one request), the search of an ended broadcast whose channel's domain and form are known
/// (`hinted`: mostly one request, and a broadcast to capture), an hour-aligned re-fetch (one
/// request; the capture is already stored), the search of an ended broadcast with no hint
/// (every domain), then the learning search of a live broadcast (up to a sweep of every
/// domain; optional, since the probe at its end comes anyway).
fn cost_class(record: &StreamRecord, hinted: Hinted<'_>) -> u8 {
    match (record.status, record.probe.learned.is_some()) {
        (Status::Found, _) => 2,
        (_, true) => 0,
        (Status::Live, false) => 4,
        (_, false) if hinted(record) => 1,
        (_, false) => 3,
    }
}

/// Which probe a due record's is, for the operator's figures: `live` (learning the path while
/// live, or at its first absence), `end` (the first after the end), `retry` (after a miss) or
/// `hour` (the re-fetch after the hour boundary of a capture).
pub fn probe_kind(record: &StreamRecord) -> &'static str {
    match record.status {
        Status::Live => "live",
        Status::Found | Status::NotFound => "hour",
        Status::Pending if record.probe.misses > 0 || record.probe.inconclusive > 0 => "retry",
        Status::Pending => "end",
    }
}

/// A live broadcast's learning search (the costliest kind of probe, and optional).
pub fn is_sweep(record: &StreamRecord) -> bool {
    cost_class(record, &|_| false) == 4
}

/// How long after it became due a probe still counts as fresh in a backlog (seconds): a
/// broadcast that just ended, which a streamer may delete within minutes.
pub const FRESH_SECS: i64 = 900;

/// The order due probes start in when more are due than one read holds (demand above the
/// budget): followed channels first; then what is at risk — not publicly listed (sub-only,
/// hidden or deleted), or just ended — and costs about one request (a known path, or the
/// channel's domain and form): a streamer may delete it within minutes, while a broadcast that
/// has waited longer keeps; then the cheapest (see [`cost_class`]), so the budget buys the most
/// captures; within a class what is at risk, then the most viewed, then the newest due.
pub fn backlog_order(
    a: &StreamRecord,
    b: &StreamRecord,
    now: i64,
    rules: &Rules,
    hinted: Hinted<'_>,
) -> std::cmp::Ordering {
    let followed = |r: &StreamRecord| rules.selection.is_followed(r.streamer_id);
    let due = |r: &StreamRecord| r.probe.next_due.unwrap_or(now);
    let at_risk = |r: &StreamRecord| r.public == Some(false) || now - due(r) < FRESH_SECS;
    let urgent = |r: &StreamRecord| at_risk(r) && cost_class(r, hinted) <= 1;
    followed(b)
        .cmp(&followed(a))
        .then(urgent(b).cmp(&urgent(a)))
        .then(cost_class(a, hinted).cmp(&cost_class(b, hinted)))
        .then(at_risk(b).cmp(&at_risk(a)))
        .then(b.max_viewers.cmp(&a.max_viewers))
        .then(due(b).cmp(&due(a)))
        .then(a.key().cmp(&b.key()))
}

/// After a complete pass of the listing that started at `pass_started`: recordable live
/// streams it did not show have probably ended. Probe them `settle` from now, once, so a
/// broadcast deleted minutes after its end is still captured.
pub fn absent_after_pass(
    live: &[StreamRecord],
    pass_started: i64,
    now: i64,
    rules: &Rules,
) -> Vec<StreamRecord> {
    live.iter()
        .filter(|record| {
            record.status == Status::Live
                && record.last_seen < pass_started
                && rules.recordable(record)
                // A followed channel's end is asked by id: its absence from the listing (below
                // the viewer floor) says nothing.
                && !rules.selection.is_followed(record.streamer_id)
                && !record.probe.absence_probed
                && !record.probe.missed_live
        })
        .map(|record| {
            let mut record = record.clone();
            record.probe.absence_probed = true;
            let due = now + rules.settle;
            record.probe.next_due = Some(record.probe.next_due.map_or(due, |current| current.min(due)));
            record
        })
        .collect()
}

/// The channels to ask about by id, in order, of the `live` records unseen since
/// `stale_before`: the recordable ones first (their ends are probed, and a quick delete's
/// window is minutes; the others are only dropped), each group those the listing's current
/// pass has read past without showing first (`passed`: most likely ended), then the stalest.
pub fn to_confirm(
    live: &[StreamRecord],
    stale_before: i64,
    rules: &Rules,
    passed: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let mut stale: Vec<_> = live
        .iter()
        .filter(|r| r.status == Status::Live && r.last_seen < stale_before)
        .map(|r| {
            (
                !rules.recordable(r),
                !passed(r.streamer_id),
                r.last_seen,
                r.streamer_id,
            )
        })
        .collect();
    stale.sort_unstable();
    let mut seen = HashSet::new();
    stale
        .into_iter()
        .map(|(_, _, _, id)| id)
        .filter(|id| seen.insert(*id))
        .collect()
}

/// Live records unseen for `ended_after` have ended.
pub fn end_unseen(live: &[StreamRecord], now: i64, rules: &Rules) -> PageUpdate {
    let mut update = PageUpdate::default();
    for record in live {
        if record.status != Status::Live || record.last_seen + rules.ended_after > now {
            continue;
        }
        // Detected late (the appliance was down): the first probe is due now, not in the past.
        let detected = (record.last_seen + rules.ended_after)
            .max(now - rules.settle)
            .min(now);
        match end(record.clone(), detected, rules) {
            Ended::Keep(ended) => update.write.push(*ended),
            Ended::Drop(key) => update.delete.push(key),
        }
    }
    update
}

/// What a direct confirmation answered for one streamer (see [`end_confirmed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Not live now.
    Offline,
    /// Live now with this stream id.
    Live { stream_id: u64 },
}

/// Applies the answers of a direct confirmation (asked at `asked_at`) to the live records,
/// without a pass of the listing. A streamer shown offline, or live with another stream id (a
/// restart), has ended: its record ends as [`end_unseen`] would end it, detected `now`. A
/// streamer live with the same stream id was seen at `asked_at`. Records the listing saw at or
/// after `asked_at`, and streamers without an answer, are left alone: only evidence ends a
/// stream.
pub fn end_confirmed(
    live: &[StreamRecord],
    confirmed: &HashMap<u64, Confirmed>,
    asked_at: i64,
    now: i64,
    rules: &Rules,
) -> PageUpdate {
    let mut update = PageUpdate::default();
    for record in live {
        if record.status != Status::Live || record.last_seen >= asked_at {
            continue;
        }
        match confirmed.get(&record.streamer_id) {
            None => {}
            Some(Confirmed::Live { stream_id }) if *stream_id == record.stream_id => {
                let mut record = record.clone();
                record.last_seen = asked_at;
                update.write.push(record);
            }
            Some(_) => match end(record.clone(), now.max(asked_at), rules) {
                Ended::Keep(ended) => update.write.push(*ended),
                Ended::Drop(key) => update.delete.push(key),
            },
        }
    }
    update
}

/// The first hour boundary after `t`, plus the margin: when the muted playlist is final.
pub fn hour_probe_time(ended_at: i64, rules: &Rules) -> i64 {
    (ended_at.div_euclid(3600) + 1) * 3600 + rules.hour_margin
}

/// The `last_error` of a capture whose playlist was gone at the hour-aligned re-fetch: the
/// channel deleted it soon after the end (`probe` reads it back as channel history).
pub const GONE_BEFORE_HOUR: &str = "gone before the hour-aligned probe";

/// The `last_error` of a broadcast whose known path and segment 0 both answered missing where
/// it was: deleted, so only the last retry is left and it tries no rebuild.
pub const GONE_WHERE_IT_WAS: &str =
    "not found where it was: its playlist and segment 0 are gone (deleted), asked again once later";

/// The record after a probe at `now`. Whether the archive is replaced is the caller's: a Hit
/// always carries the fetched playlist.
pub fn after_probe(mut record: StreamRecord, result: ProbeResult, now: i64, rules: &Rules) -> StreamRecord {
    record.probe.probes += 1;
    record.probe.next_due = None;
    match result {
        ProbeResult::Hit { mut archive, learned } => {
            // A re-capture (the hour probe) fetches the primary quality only: keep the other
            // qualities an earlier check found.
            if let Some(previous) = &record.archive {
                for quality in &previous.qualities {
                    if !archive.qualities.contains(quality) {
                        archive.qualities.push(quality.clone());
                    }
                }
            }
            record.probe.last_error = None;
            record.probe.misses = 0;
            record.probe.inconclusive = 0;
            record.probe.learned = Some(learned);
            if record.status == Status::Live {
                // Learned while live: the capture after the end will cost one request. The
                // partial playlist is kept in case the broadcast is deleted right after it ends.
                record.probe.learned_live = true;
                record.archive = Some(*archive);
                return record;
            }
            record.status = Status::Found;
            record.archive = Some(*archive);
            record.probe.captured_at.get_or_insert(now);
            schedule_hour_probe(&mut record, now, rules);
        }
        ProbeResult::Miss => {
            let gone_where_it_was = record.probe.last_error.as_deref() == Some(GONE_WHERE_IT_WAS);
            record.probe.inconclusive = 0;
            record.probe.last_error = Some("not found on any domain".to_string());
            if record.status == Status::Live {
                // Twitch's EVENT playlist exists while a broadcast is live, so a miss now means
                // the channel most likely keeps no VODs: one probe after the end settles it.
                record.probe.missed_live = true;
                return record;
            }
            if record.probe.absence_probed
                && record.public == Some(false)
                && !record.probe.missed_live
                && record.probe.misses == 0
            {
                // The probe at its absence from the listing, for a broadcast the channel's video
                // list did not show, run after a confirmation by id ended the stream first: it
                // stands for the miss while live, so one more probe settles it, as it would
                // have had the probe come first (a channel that keeps no VODs costs two
                // searches, not one per retry).
                record.probe.missed_live = true;
                record.probe.next_due = Some(now + rules.settle);
                return record;
            }
            if record.status == Status::Found {
                // Deleted after the first capture: the stored copy stands.
                record.probe.hour_probe_done = true;
                record.probe.last_error = Some(GONE_BEFORE_HOUR.to_string());
                return record;
            }
            record.probe.misses += 1;
            // Its path was known (asked where it was, then segment 0 for a rebuild: both
            // missing) and the domain answered: the copy was deleted, and a deleted copy does
            // not come back. Only the last retry is left, against a domain that refused
            // everything for a while, and it asks the playlist alone (`probe::rebuild`): the
            // retries in between cost a playlist and segment 0 each, for nothing.
            if record.probe.learned.is_some() {
                if !gone_where_it_was {
                    record.probe.misses = record.probe.misses.max(rules.retries.len() as u32);
                }
                record.probe.last_error = Some(GONE_WHERE_IT_WAS.to_string());
            }
            if record.probe.missed_live {
                record.status = Status::NotFound;
                record.probe.last_error = Some("not found while live nor after the end".to_string());
                return record;
            }
            match rules.retries.get(record.probe.misses as usize - 1) {
                Some(delay) => record.probe.next_due = Some(now + delay),
                None => record.status = Status::NotFound,
            }
        }
        ProbeResult::Deferred { reason } => {
            // `probes` moved on above, so live learning is not scheduled again.
            record.probe.last_error = Some(reason);
        }
        ProbeResult::Skipped { reason } => {
            record.probe.hour_probe_done = true;
            record.probe.last_error = Some(reason);
        }
        ProbeResult::KnownEmpty { reason } => {
            record.probe.last_error = Some(reason);
            // Only an ended broadcast is settled; one still live waits for its end.
            if record.status == Status::Pending {
                record.status = Status::NotFound;
            }
        }
        ProbeResult::Inconclusive { reason } => {
            record.probe.last_error = Some(reason);
            // Domains recover (outages last 15–20 minutes): back off, never give up.
            let delay = (60_i64 << record.probe.inconclusive.min(6)).min(rules.max_backoff);
            record.probe.inconclusive += 1;
            record.probe.next_due = Some(now + delay);
        }
    }
    record
}

/// Makes `record` due at `now` when it waits out an inconclusive back-off that a domain in
/// `recovered` (answering again after being down) could end; returns whether it did. A
/// broadcast whose path is unknown could be on any domain; one whose path was learned only on
/// its own (unless `configured` no longer has that domain: the path is then asked everywhere).
/// The back-off count stays, so a probe that fails again backs off from where it was.
pub fn due_after_recovery(
    record: &mut StreamRecord,
    recovered: &[String],
    configured: impl Fn(&str) -> bool,
    now: i64,
) -> bool {
    let backing_off = record.probe.inconclusive > 0 && record.probe.next_due.is_some_and(|due| due > now);
    let could_hold = match &record.probe.learned {
        None => !recovered.is_empty(),
        Some(learned) => recovered.contains(&learned.domain) || !configured(&learned.domain),
    };
    if backing_off && could_hold {
        record.probe.next_due = Some(now);
    }
    backing_off && could_hold
}

/// The `last_error` of a broadcast given up by [`shed_backlog`] (the week bench and the
/// channel-history rules in `probe` read it back).
pub const SHED: &str = "dropped for want of budget: more than max_queue broadcasts waited for a probe";
/// The `last_error` of a broadcast given up by [`shed_beyond_wait`].
pub const SHED_WAIT: &str =
    "dropped for want of budget: the request budget could not reach it within pipeline.max_wait";
/// The start of both, and of what older versions wrote.
const SHED_PREFIXES: [&str; 2] = ["dropped for want of budget", "dropped as least viewed"];

/// Given up for want of budget ([`shed_backlog`], [`shed_beyond_wait`]): says nothing about
/// whether the channel stores its broadcasts.
pub fn was_shed(record: &StreamRecord) -> bool {
    let error = record.probe.last_error.as_deref().unwrap_or("");
    SHED_PREFIXES.iter().any(|prefix| error.starts_with(prefix))
}

/// When more than `max_queue` broadcasts wait for a probe, the least at risk beyond the bound
/// are given up — not_found with the reason, or, for one already captured, its hour-aligned
/// re-probe cancelled — so the backlog stays bounded and what was dropped stays visible.
pub fn shed_backlog(mut queued: Vec<StreamRecord>, max_queue: usize, rules: &Rules) -> Vec<StreamRecord> {
    // A live broadcast's learning probe is never given up: shedding would end a broadcast that
    // is still live (its probe at the end comes anyway).
    queued.retain(|record| record.status != Status::Live);
    if queued.len() <= max_queue {
        return Vec::new();
    }
    // Least at risk first: hour-aligned re-fetches (the capture is stored), then broadcasts
    // whose path is unknown (possibly nothing stored) before those known to be stored, each
    // least viewed first; followed channels last.
    let keep_rank = |r: &StreamRecord| {
        (
            rules.selection.is_followed(r.streamer_id),
            r.status != Status::Found,
            r.probe.learned.is_some(),
        )
    };
    queued.sort_by(|a, b| {
        keep_rank(a)
            .cmp(&keep_rank(b))
            .then_with(|| probe_order(b, a, rules))
    });
    let excess = queued.len() - max_queue;
    queued.truncate(excess);
    for record in &mut queued {
        give_up(record, SHED);
    }
    queued
}

/// Requests a waiting probe is expected to cost: one for a known path, an hour-aligned
/// re-fetch or a search with a hint (the channel's domain and form: week benchmark, 0.9 a
/// broadcast), one a domain for a search without one (a stored copy is found about halfway
/// through the two common forms; week benchmark, about 12 for 12 domains), and every domain
/// in every form for a live learning search (never given up, but counted).
pub fn expected_requests(record: &StreamRecord, domains: usize, hinted: Hinted<'_>) -> usize {
    match cost_class(record, hinted) {
        4 => expected_requests_most(domains),
        3 => domains.max(1),
        _ => 1,
    }
}

/// The most [`expected_requests`] asks of one probe.
pub fn expected_requests_most(domains: usize) -> usize {
    3 * domains.max(1)
}

/// When the due probes (`queued`) would ask more than `work_limit` requests — the budget's
/// requests in `pipeline.max_wait` — those beyond it in [`backlog_order`] (the costliest and
/// least at risk) are given up as [`shed_backlog`] gives them up, and returned: so a backlog
/// the budget cannot serve is dropped while it is fresh, not after days of waiting, and what
/// is kept starts within `max_wait`.
pub fn shed_beyond_wait(
    mut queued: Vec<StreamRecord>,
    work_limit: usize,
    domains: usize,
    now: i64,
    rules: &Rules,
    hinted: Hinted<'_>,
) -> Vec<StreamRecord> {
    // As in `shed_backlog`: live learning probes are left alone (and mostly ask nothing).
    queued.retain(|record| record.status != Status::Live);
    queued.sort_by(|a, b| backlog_order(a, b, now, rules, hinted));
    let mut work = 0;
    let keep = queued
        .iter()
        .take_while(|record| {
            work += expected_requests(record, domains, hinted);
            work <= work_limit || rules.selection.is_followed(record.streamer_id)
        })
        .count();
    let mut shed = queued.split_off(keep);
    for record in &mut shed {
        give_up(record, SHED_WAIT);
    }
    shed
}

/// Marks a waiting record given up for want of budget: not_found with [`SHED`], or, for one
/// already captured, its hour-aligned re-probe cancelled.
fn give_up(record: &mut StreamRecord, reason: &str) {
    record.probe.next_due = None;
    if record.status == Status::Found {
        record.probe.hour_probe_done = true;
        record.probe.last_error = Some("hour-aligned probe dropped for want of budget".to_string());
    } else {
        record.status = Status::NotFound;
        record.probe.last_error = Some(reason.to_string());
    }
}

#[cfg(test)]
mod tests;
