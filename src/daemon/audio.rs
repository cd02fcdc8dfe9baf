//! Original-audio checks: a capture whose playlist lists `-unmuted` originals has one or two of
//! them asked (HEAD) on the holding domain, to know whether `?audio=original` can still be
//! served; what was found is stored in `original_audio_v1` (`crate::audio`).
//!
//! Like the segment checks, a sibling job: it runs only when no probe is due, one at a time,
//! on the shared budget; one that cannot get a slot soon hands its turn back and stays due,
//! and a failing domain changes nothing stored (asked again after
//! `segments::RETRY_AFTER_FAILURE`). While the originals answer they are asked again every
//! `pipeline.original_audio_every`; once gone, never again.

use super::every::OneAtATime;
use super::probing::{ProbeParts, Steering};
use super::segments::RETRY_AFTER_FAILURE;
use crate::audio::{self, OriginalAudio};
use crate::metrics::{Kind, Metrics};
use crate::playlist::original_urls;
use crate::record::{Status, StreamKey, StreamRecord};
use crate::search::{Cdn, HandedBack, check_segments};
use crate::segments::{self, SegmentVerdict};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

/// How many of the earliest due checks one run considers, skipping captures whose domain is
/// down.
const CANDIDATES: usize = 16;

/// A check whose domain was removed from the configuration waits this long (seconds).
const RETRY_WITHOUT_DOMAIN: i64 = 3_600;

/// Declares the original-audio checks' series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_original_audio_checks_total",
        Kind::Counter,
        "Checks of captures' -unmuted originals, by result (available, gone, inconclusive).",
    );
    metrics.describe(
        "vodprobe_original_audio_check_requests_total",
        Kind::Counter,
        "CDN requests of original-audio checks (part of vodprobe_cdn_requests_total).",
    );
}

pub struct AudioChecks {
    parts: Arc<ProbeParts>,
    /// At most one check at a time: it only uses spare budget.
    job: OneAtATime,
}

impl AudioChecks {
    pub fn new(parts: Arc<ProbeParts>) -> AudioChecks {
        AudioChecks {
            parts,
            job: OneAtATime::new("an original-audio check"),
        }
    }

    /// Starts one check if none is running and one is due.
    pub fn start(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let parts = self.parts.clone();
        let shutdown = shutdown.clone();
        self.job.start(tracker, move || check_next(&parts, &shutdown));
    }
}

/// A capture to check: its record, its watch, and the originals to ask.
struct Due {
    record: StreamRecord,
    watch: OriginalAudio,
    urls: Vec<String>,
}

/// The earliest due check whose domain is not down, settling on the way those that have
/// nothing to check (not found, no originals listed). Blocking.
fn next_due(parts: &ProbeParts, now: i64) -> Option<Due> {
    let store = parts.store.get();
    let next = store.original_audio_due(now, CANDIDATES).and_then(|keys| {
        for key in keys {
            let Some(watch) = store.original_audio(key)? else {
                continue;
            };
            let found = store
                .get_stream(key)?
                // A copy taken while live counts: the originals it lists answer already.
                .filter(|r| r.status != Status::NotFound && r.archive.is_some());
            let (Some(record), Some(text)) = (found, store.playlist(key)?) else {
                settle(&store, key, OriginalAudio { due: None, ..watch })?;
                continue;
            };
            let Some(archive) = record.archive.as_ref() else {
                continue;
            };
            if parts.domains.is_down(&archive.domain) {
                continue;
            }
            let urls = audio::pick(&original_urls(&text, &archive.url));
            if urls.is_empty() {
                settle(&store, key, OriginalAudio { due: None, ..watch })?;
                continue;
            }
            return Ok(Some(Due { record, watch, urls }));
        }
        Ok(None)
    });
    match next {
        Ok(next) => next,
        Err(error) => {
            parts
                .store
                .report("could not read the original-audio checks due", &error);
            None
        }
    }
}

fn settle(
    store: &crate::store::Store,
    key: StreamKey,
    watch: OriginalAudio,
) -> Result<(), crate::store::StoreError> {
    store.update(|tx| tx.set_original_audio(key, &watch).map(|_| ()))
}

/// Runs the earliest due check and stores what it found. Blocking.
pub(super) fn check_next(parts: &ProbeParts, shutdown: &CancellationToken) {
    let Some(Due { record, watch, urls }) = next_due(parts, parts.clock.now()) else {
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
        "vodprobe_original_audio_check_requests_total",
        &[],
        probe.requests as f64,
    );
    let now = parts.clock.now();
    let next = match (&probe.handed_back, segments::classify(&probe.answers)) {
        (Some(HandedBack::Stopped | HandedBack::NoBudget), _) => {
            debug!(stream = ?key, "original-audio check handed back: {:?}; it stays due", probe.handed_back);
            return;
        }
        (Some(HandedBack::NotConfigured(domain)), _) => {
            debug!(stream = ?key, "original-audio check waits: {domain} is not configured");
            OriginalAudio {
                due: Some(now + RETRY_WITHOUT_DOMAIN),
                ..watch
            }
        }
        (None, SegmentVerdict::Inconclusive(reason)) => {
            metrics.inc(
                "vodprobe_original_audio_checks_total",
                &[("result", "inconclusive")],
            );
            debug!(stream = ?key, "original-audio check inconclusive: {reason}; asked again later");
            OriginalAudio {
                due: Some(now + RETRY_AFTER_FAILURE),
                ..watch
            }
        }
        (None, SegmentVerdict::Conclusive(state)) => {
            let every = settings.config.pipeline.original_audio_every.as_secs() as i64;
            let concluded = watch.concluded(state, now, every);
            let result = concluded
                .state()
                .map_or("inconclusive", audio::AudioState::as_str);
            metrics.inc("vodprobe_original_audio_checks_total", &[("result", result)]);
            info!(
                login = %record.login,
                stream_id = record.stream_id,
                requests = probe.requests,
                original_audio = result,
                "original audio checked"
            );
            concluded
        }
    };
    let written = parts.store.get().update(|tx| {
        // Only the check's own fields change; the first loss stays the one kept.
        let stored = tx.original_audio(key)?.unwrap_or(watch);
        let merged = OriginalAudio {
            listed_at: stored.listed_at,
            gone_at: stored.gone_at.or(next.gone_at),
            due: if stored.gone_at.is_some() { None } else { next.due },
            ..next
        };
        tx.set_original_audio(key, &merged)
    });
    if let Err(error) = written {
        parts
            .store
            .report("could not store an original-audio check (it stays due)", &error);
    }
}
