//! Background quality checks: with spare budget (no probe due), the most viewed capture not yet
//! checked has each other quality folder of its probe module asked once on the domain that
//! holds it; the qualities that answer are recorded and served as a master playlist.
//!
//! At most one check runs at a time. Which capture is next and what a check's answer means are
//! pure rules (`probe::next_quality_check`, `probe::checked_qualities`); a domain failure leaves
//! the capture queued for later.

use super::every::OneAtATime;
use super::probing::{ProbeParts, Steering};
use crate::metrics::{Kind, Metrics};
use crate::probe::{self, QualityStep};
use crate::record::StreamKey;
use crate::search::{Cdn, check_qualities};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

/// How many of the most viewed queued captures a quality check considers, skipping those on
/// domains that are down.
const QUALITY_CANDIDATES: usize = 16;

/// Declares the quality checks' series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_quality_requests_total",
        Kind::Counter,
        "CDN requests of background quality checks (part of vodprobe_cdn_requests_total).",
    );
    metrics.describe(
        "vodprobe_quality_queue",
        Kind::Gauge,
        "Captured broadcasts whose other qualities are still to be checked.",
    );
}

pub struct QualityChecks {
    parts: Arc<ProbeParts>,
    /// At most one check at a time: it only uses spare budget.
    job: OneAtATime,
}

impl QualityChecks {
    pub fn new(parts: Arc<ProbeParts>) -> QualityChecks {
        QualityChecks {
            parts,
            job: OneAtATime::new("a quality check"),
        }
    }

    /// Starts one check if none is running and a capture waits for one.
    pub fn start(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let parts = self.parts.clone();
        let shutdown = shutdown.clone();
        self.job.start(tracker, move || check_next(&parts, &shutdown));
    }
}

/// The most viewed queued capture whose domain is not down, settling on the way those that
/// can never be checked. Blocking.
fn next_capture(parts: &ProbeParts) -> Option<(StreamKey, crate::record::ArchiveInfo)> {
    let store = parts.store.get();
    let settings = parts.settings.get();
    let configured = |url: &str| settings.config.domains.iter().any(|d| d.url == url);
    let next = store.quality_queue(QUALITY_CANDIDATES).and_then(|keys| {
        // The most viewed whose domain is not down: one unreachable domain must not hold up
        // the captures on every other.
        for key in keys {
            let record = store.get_stream(key)?;
            match probe::next_quality_check(record, configured, |url| parts.domains.is_down(url)) {
                QualityStep::Settle(qualities) => store.set_qualities(key, &qualities)?,
                QualityStep::Later => continue,
                QualityStep::Check(archive) => return Ok(Some((key, *archive))),
            }
        }
        Ok(None)
    });
    match next {
        Ok(next) => next,
        Err(error) => {
            parts.store.report("could not read the quality queue", &error);
            None
        }
    }
}

/// Checks the most viewed queued capture's other quality folders and records what exists.
/// Blocking. An unfinished check (a domain failure, shutdown) leaves it queued for later.
fn check_next(parts: &ProbeParts, shutdown: &CancellationToken) {
    let Some((key, archive)) = next_capture(parts) else {
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
    let check = check_qualities(cdn, &archive.domain, &archive.url);
    parts
        .metrics
        .add("vodprobe_quality_requests_total", &[], check.requests as f64);
    let Some(qualities) = probe::checked_qualities(&check, &archive.qualities) else {
        debug!(
            stream = ?key,
            "quality check unfinished: {}; it stays queued",
            check.unfinished.as_deref().unwrap_or_default()
        );
        return;
    };
    if let Some(reason) = &check.unfinished {
        debug!(stream = ?key, "quality check impossible: {reason}");
    }
    match parts.store.get().set_qualities(key, &qualities) {
        Ok(()) => debug!(
            stream = ?key,
            qualities = ?qualities,
            requests = check.requests,
            "qualities checked"
        ),
        Err(error) => parts
            .store
            .report("could not store a quality check (it stays queued)", &error),
    }
}
