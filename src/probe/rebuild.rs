//! The probe's last resort: a broadcast whose location is known (learned while live, from its
//! video object, or an earlier capture) and whose playlist now answers "missing" is rebuilt
//! from its segments when segment 0 still answers (reference, "Domains": a deleted VOD's
//! playlist answers 403 while its segments may live on).
//!
//! Only for an ended broadcast without a complete capture: while live a miss means no archive,
//! and a stored complete copy beats a rebuilt one. The requests go through the probe's budget
//! like its search's: segment 0 costs one request per retry of a deleted broadcast, a rebuild
//! about fifteen.

use super::ProbeResult;
use crate::record::{ArchiveInfo, Learned, Status, StreamRecord};
use crate::search::rebuild::{RebuildOutcome, rebuild_at};
use crate::search::{Cdn, HandedBack};

/// What a rebuild attempt after a miss made of the probe.
pub(super) struct AfterMiss {
    /// `None`: stopped (shutdown); the probe is handed back.
    pub result: Option<ProbeResult>,
    pub requests: usize,
    /// The rebuilt playlist, for the store.
    pub playlist: Option<String>,
}

/// Whether a miss of `record` is worth a rebuild attempt, and where: the learned domain and
/// the playlist URL there.
pub(super) fn location(cdn: Cdn<'_>, record: &StreamRecord) -> Option<(String, String)> {
    if matches!(record.status, Status::Live | Status::Found) {
        return None;
    }
    let learned = record.probe.learned.as_ref()?;
    let domain = cdn
        .config
        .domains
        .iter()
        .find(|domain| domain.enabled && domain.url == learned.domain)?;
    let module = cdn.config.module_of(domain);
    let path = module.path(
        &record.login,
        record.stream_id,
        &learned.ts,
        module.primary_quality(),
    );
    Some((domain.url.clone(), format!("{}{path}", domain.url)))
}

/// Tries the rebuild at `domain_url` / `playlist_url` (see [`location`]); `partial` is the
/// playlist an earlier capture stored (a copy taken while live), if any.
pub(super) fn attempt(
    cdn: Cdn<'_>,
    record: &StreamRecord,
    (domain_url, playlist_url): (String, String),
    partial: Option<&str>,
    now: i64,
) -> AfterMiss {
    let attempt = rebuild_at(cdn, &domain_url, &playlist_url, partial, false);
    let mut after = AfterMiss {
        result: None,
        requests: attempt.requests,
        playlist: None,
    };
    after.result = match attempt.outcome {
        RebuildOutcome::Rebuilt(rebuilt) => {
            let learned = record.probe.learned.clone().unwrap_or_else(|| Learned {
                domain: domain_url.clone(),
                form: String::new(),
                ts: String::new(),
            });
            let qualities = cdn
                .config
                .domains
                .iter()
                .find(|domain| domain.url == domain_url)
                .map(|domain| vec![cdn.config.module_of(domain).primary_quality().to_string()])
                .unwrap_or_default();
            let archive = ArchiveInfo {
                domain: domain_url.clone(),
                domains: vec![domain_url],
                timestamp_form: learned.form.clone(),
                ts: learned.ts.clone(),
                url: rebuilt.url,
                duration_seconds: rebuilt.summary.duration_seconds,
                segments: rebuilt.summary.segments,
                muted_segments: rebuilt.summary.muted_segments,
                container: rebuilt.summary.container,
                qualities,
                fetched_at: now,
                ended: rebuilt.summary.ended,
                rebuilt: true,
            };
            after.playlist = Some(rebuilt.raw);
            Some(ProbeResult::Hit {
                archive: Box::new(archive),
                learned,
            })
        }
        RebuildOutcome::NoSegments => Some(ProbeResult::Miss),
        RebuildOutcome::Inconclusive(reason) => Some(ProbeResult::Inconclusive {
            reason: format!("the playlist is gone; its rebuild from the segments failed: {reason}"),
        }),
        RebuildOutcome::HandedBack(HandedBack::Stopped) => None,
        // The domain left the configuration meanwhile (or no slot came, which a probe's
        // waiting rebuild never hears): the miss stands.
        RebuildOutcome::HandedBack(HandedBack::NotConfigured(_) | HandedBack::NoBudget) => {
            Some(ProbeResult::Miss)
        }
    };
    after
}
