//! Segment checks at capture: a captured playlist can answer while its segments answer 403, so
//! after each first capture a few of its segments (`segments::pick`) are asked on the domain
//! that holds it, and the result (ok, partial, gone) is stored beside the record.
//!
//! The survival watch: after a conclusive check the capture stays queued for the next one
//! (`segments::next_watch`: around each retention edge, and a cadence that slows with age)
//! until its segments are gone or it is past the longest retention. Queue order is by due
//! time; among the earliest [`CANDIDATES`] due now, the youngest broadcast goes first (a fresh
//! capture's first check, then the 7-day edge, whose deletions are the most common). A check
//! due earlier waits at most behind the other candidates, so none starves.
//!
//! A check is its own small job, never part of a probe: the capture commits first, with the
//! check queued as "unchecked" in the same transaction (so a restart still checks it), and the
//! check runs only when no probe is due, one at a time, on the shared budget. One that cannot
//! get a slot soon hands its turn back and stays due; a failing domain (timeout, 5xx) changes
//! nothing stored and the check is asked again later.

use super::every::OneAtATime;
use super::probing::{ProbeParts, Steering};
use crate::metrics::{Kind, Metrics};
use crate::playlist::segment_urls;
use crate::record::{Status, StreamKey, StreamRecord};
use crate::search::{Cdn, HandedBack, check_segments};
use crate::segments::{self, SegmentState, SegmentStatus, SegmentVerdict};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

/// How many of the earliest due checks one run considers, skipping captures whose domain is
/// down.
const CANDIDATES: usize = 16;

/// A check whose domain failed is asked again after this long (seconds): soon enough to
/// report a loss the same hour, late enough not to add to a struggling domain's load.
pub const RETRY_AFTER_FAILURE: i64 = 300;

/// A check whose domain was removed from the configuration waits this long (seconds): a
/// reload may bring it back.
const RETRY_WITHOUT_DOMAIN: i64 = 3_600;

/// Declares the segment checks' series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_segment_checks_total",
        Kind::Counter,
        "Segment checks of captures, by result (ok, partial, gone, inconclusive).",
    );
    metrics.describe(
        "vodprobe_segment_check_requests_total",
        Kind::Counter,
        "CDN requests of segment checks (part of vodprobe_cdn_requests_total).",
    );
    metrics.describe(
        "vodprobe_segment_checks_waiting",
        Kind::Gauge,
        "Captures whose segment check is still to run (due now or later), the survival watch's \
         included.",
    );
    metrics.describe(
        "vodprobe_segment_losses_total",
        Kind::Counter,
        "Captures a check found newly lost, by the state found (partial, gone).",
    );
}

/// Puts on the watch the captures a binary from before the survival watch checked once and
/// left with nothing due (`segments::next_watch` from `now`); those past the watch's end stay
/// as they are. Returns how many were queued. Blocking; at start-up, before any check runs.
pub(super) fn watch_unwatched(
    store: &crate::store::Store,
    now: i64,
) -> Result<usize, crate::store::StoreError> {
    let waiting: Vec<(StreamKey, SegmentStatus)> = store
        .unwatched_alive()?
        .into_iter()
        .filter_map(|(key, status)| {
            let state = status.state?;
            let due = segments::next_watch(key.0, state, now)?;
            Some((
                key,
                SegmentStatus {
                    due: Some(due),
                    ..status
                },
            ))
        })
        .collect();
    // Short transactions: start-up must not hold the writer for a whole archive.
    for chunk in waiting.chunks(512) {
        store.update(|tx| {
            for (key, status) in chunk {
                tx.set_segment_status(*key, status)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })?;
    }
    Ok(waiting.len())
}

pub struct SegmentChecks {
    parts: Arc<ProbeParts>,
    /// At most one check at a time: it only uses spare budget.
    job: OneAtATime,
}

impl SegmentChecks {
    pub fn new(parts: Arc<ProbeParts>) -> SegmentChecks {
        SegmentChecks {
            parts,
            job: OneAtATime::new("a segment check"),
        }
    }

    /// Starts one check if none is running and one is due.
    pub fn start(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let parts = self.parts.clone();
        let shutdown = shutdown.clone();
        self.job.start(tracker, move || check_next(&parts, &shutdown));
    }
}

/// A capture to check: its record, what is stored of its check, and the segments to ask.
struct Due {
    record: StreamRecord,
    status: SegmentStatus,
    urls: Vec<String>,
}

/// The earliest due check whose domain is not down, settling on the way those that have
/// nothing to check (no longer found, no playlist). Blocking.
fn next_due(parts: &ProbeParts, now: i64) -> Option<Due> {
    let store = parts.store.get();
    let next = store.segment_checks_due(now, CANDIDATES).and_then(|mut keys| {
        // Youngest first: see the module's documentation.
        keys.sort_by(|a, b| b.cmp(a));
        for key in keys {
            let status = store.segment_status(key)?.unwrap_or_default();
            let record = store.get_stream(key)?;
            let playlist = store.playlist(key)?;
            let found = record.filter(|r| r.status == Status::Found && r.archive.is_some());
            let (Some(record), Some(text)) = (found, playlist) else {
                // Nothing to check: it leaves the queue, still unchecked.
                settle(&store, key, SegmentStatus { due: None, ..status })?;
                continue;
            };
            let Some(archive) = record.archive.as_ref() else {
                continue;
            };
            // One unreachable domain must not hold up the checks of every other.
            if parts.domains.is_down(&archive.domain) {
                continue;
            }
            let all = segment_urls(&text, &archive.url, crate::playlist::Audio::Muted);
            let urls: Vec<String> = segments::pick(all.len())
                .into_iter()
                .filter_map(|index| all.get(index).cloned())
                .collect();
            if urls.is_empty() {
                settle(&store, key, SegmentStatus { due: None, ..status })?;
                continue;
            }
            return Ok(Some(Due { record, status, urls }));
        }
        Ok(None)
    });
    match next {
        Ok(next) => next,
        Err(error) => {
            parts
                .store
                .report("could not read the segment checks due", &error);
            None
        }
    }
}

fn settle(
    store: &crate::store::Store,
    key: StreamKey,
    status: SegmentStatus,
) -> Result<(), crate::store::StoreError> {
    store.update(|tx| tx.set_segment_status(key, &status).map(|_| ()))
}

/// Runs the earliest due check and stores what it found. Blocking.
pub(super) fn check_next(parts: &ProbeParts, shutdown: &CancellationToken) {
    let Some(Due { record, status, urls }) = next_due(parts, parts.clock.now()) else {
        return;
    };
    let key = record.key();
    let Some(archive) = record.archive.as_ref() else {
        return;
    };
    let settings = parts.settings.get();
    let steering = Steering::new(&parts.settings, shutdown);
    let cdn = Cdn {
        config: &settings.config,
        fetcher: &settings.fetcher,
        budget: &parts.budget,
        steer: &steering,
    };
    let probe = check_segments(cdn, &archive.domain, &urls);
    let metrics = &parts.metrics;
    metrics.add(
        "vodprobe_segment_check_requests_total",
        &[],
        probe.requests as f64,
    );
    let now = parts.clock.now();
    let verdict = segments::classify(&probe.answers);
    let found = match (&probe.handed_back, &verdict) {
        (None, SegmentVerdict::Conclusive(state)) => Some(*state),
        _ => None,
    };
    let next = match (&probe.handed_back, verdict) {
        (Some(HandedBack::Stopped | HandedBack::NoBudget), _) => {
            debug!(stream = ?key, "segment check handed back: {:?}; it stays due", probe.handed_back);
            return;
        }
        (Some(HandedBack::NotConfigured(domain)), _) => {
            debug!(stream = ?key, "segment check waits: {domain} is not configured");
            SegmentStatus {
                due: Some(now + RETRY_WITHOUT_DOMAIN),
                ..status
            }
        }
        (None, SegmentVerdict::Inconclusive(reason)) => {
            metrics.inc("vodprobe_segment_checks_total", &[("result", "inconclusive")]);
            debug!(stream = ?key, "segment check inconclusive: {reason}; asked again later");
            SegmentStatus {
                due: Some(now + RETRY_AFTER_FAILURE),
                ..status
            }
        }
        (None, SegmentVerdict::Conclusive(state)) => {
            metrics.inc("vodprobe_segment_checks_total", &[("result", state.as_str())]);
            info!(
                login = %record.login,
                stream_id = record.stream_id,
                requests = probe.requests,
                segments = state.as_str(),
                "segments checked"
            );
            // Re-read in the write below: only the check's own fields change.
            status.concluded(state, record.start_unix, now)
        }
    };
    let written = parts.store.get().update(|tx| {
        let stored = tx.segment_status(key)?.unwrap_or_default();
        let merged = SegmentStatus {
            lost_at: stored.lost_at.or(next.lost_at),
            ..next
        };
        tx.set_segment_status(key, &merged)?;
        Ok::<_, crate::store::StoreError>(stored.state)
    });
    match written {
        Ok(before) => {
            // A loss is counted once per state it reaches: ok → partial → gone counts both.
            if let Some(state) = found.filter(|state| *state != SegmentState::Ok && Some(*state) != before) {
                metrics.inc("vodprobe_segment_losses_total", &[("state", state.as_str())]);
            }
        }
        Err(error) => parts
            .store
            .report("could not store a segment check (it stays due)", &error),
    }
}
