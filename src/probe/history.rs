//! What a channel's history and its video list decide about a probe before any CDN request:
//! a channel known to store nothing is settled without a search, a live fetch is skipped
//! where the end probe costs one request anyway, and the hour-aligned re-fetch is skipped or
//! made from the video's muted stretches.

use super::{ProbeResult, ProbeStart, VideoFacts, lists_no_video};
use crate::playlist;
use crate::record::{Learned, Status, StreamRecord};
use crate::track;

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
pub(super) fn concluded_empty(record: &StreamRecord) -> bool {
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

/// The hour-aligned re-fetch of `record` (a capture waiting for it) made without a CDN
/// request: its own video, read after the hour boundary (`facts`), lists the stretches the
/// mute pass muted, and they fall on the stored copy's segment boundaries (`stored`, its
/// playlist text), so its muted segments are marked by their `-unmuted` original names as
/// the re-fetched playlist would list them ([`playlist::mark_muted`]). The outcome, and the
/// playlist to store with it; `None` when the CDN must be asked.
pub fn muted_from_video(
    record: &StreamRecord,
    facts: Option<&VideoFacts>,
    stored: &str,
    now: i64,
) -> Option<(ProbeResult, String)> {
    let facts = facts?;
    let waiting = record.status == Status::Found && !record.probe.hour_probe_done;
    if !waiting || facts.muted != Some(true) {
        return None;
    }
    let marked = playlist::mark_muted(stored, &facts.muted_stretches)?;
    let summary = playlist::validate(marked.as_bytes(), marked.len() + 1).ok()?;
    let mut archive = record.archive.clone()?;
    archive.muted_segments = summary.muted_segments;
    archive.fetched_at = now;
    let learned = record.probe.learned.clone().or_else(|| {
        Some(Learned {
            domain: archive.domain.clone(),
            form: archive.timestamp_form.clone(),
            ts: archive.ts.clone(),
        })
    })?;
    Some((
        ProbeResult::Hit {
            archive: Box::new(archive),
            learned,
        },
        marked,
    ))
}
