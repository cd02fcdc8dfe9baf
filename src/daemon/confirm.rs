//! The confirmation stage: ends known without a full pass of the listing.
//!
//! Only a finished pass ends streams in the crawl, and only after `ended_after`; a pass may
//! never finish (Twitch refuses the web client's cursor pages, or `restart_every` cuts it).
//! So from the crawl's tick, at most every [`CONFIRM_EVERY`] seconds, the live records the
//! listing has not shown for `source.confirm_after`, or that the last complete pass did not
//! show, are asked about by channel id, 100 channels per request, with the crawl's own listing
//! client (the same token and quota). A channel answered offline, or live with another stream
//! id (a restart), has ended: its record ends exactly as the pass-based [`track::end_unseen`]
//! would end it (`track::end_confirmed`), and its first probe is due `settle` later. A channel
//! live with the same stream id counts as seen then, so it is asked again only after the same
//! delay: a stream the listing never reaches costs a hundredth of a request per
//! `confirm_after`. Only evidence ends a stream: a failed request (the listing down) ends
//! nothing, and a channel without a readable answer is left alone. It runs on the crawl's
//! task, so confirmations and pages never overlap, and a run spends at most half of what the
//! listing's pace (`pages_per_second`) allows in the meantime, the stalest channels first.

use super::crawl::{CrawlParts, note_ends};
use super::every::blocking;
use super::state::Settings;
use crate::discover::{CONFIRM_BATCH, LiveNow, Source};
use crate::metrics::{Kind, Metrics};
use crate::record::Status;
use crate::track::{self, Confirmed};
use std::collections::{HashMap, HashSet};
use tracing::{debug, warn};

/// At most one confirmation run per this many seconds (of the appliance's clock): a stream
/// is asked about at most this long after it is due.
pub const CONFIRM_EVERY: i64 = 15;

/// Declares the stage's series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_listing_confirm_requests_total",
        Kind::Counter,
        "Requests asking the listing by channel id which tracked streams are still live.",
    );
    metrics.describe(
        "vodprobe_streams_confirmed_ended_total",
        Kind::Counter,
        "Live streams ended because a confirmation by id showed them offline or restarted.",
    );
}

/// When confirmations last ran.
#[derive(Default)]
pub struct Confirm {
    last_run: Option<i64>,
}

impl Confirm {
    /// Confirms the stale live records if a run is due; gives the listing client back (`None`
    /// when it was lost to a panic).
    ///
    /// `complete_pass_started`: when the last complete pass of the listing began; the live
    /// records it did not show are asked about at once.
    pub async fn tick(
        &mut self,
        parts: &CrawlParts,
        settings: &Settings,
        complete_pass_started: Option<i64>,
        mut source: Source,
    ) -> Option<Source> {
        let now = parts.clock.now();
        let confirm_after = settings.config.source.confirm_after.as_secs() as i64;
        if confirm_after == 0 || self.last_run.is_some_and(|last| now - last < CONFIRM_EVERY) {
            return Some(source);
        }
        self.last_run = Some(now);
        let stale_before = (now - confirm_after).max(complete_pass_started.unwrap_or(i64::MIN));
        // A store failure skips this run but keeps the client (its token and quota).
        let Some(live) = parts
            .store
            .job("could not read the live streams to confirm", |store| store.live())
            .await
        else {
            return Some(source);
        };
        let mut stale: Vec<_> = live
            .iter()
            .filter(|r| r.status == Status::Live && r.last_seen < stale_before)
            .map(|r| (r.last_seen, r.streamer_id))
            .collect();
        if stale.is_empty() {
            return Some(source);
        }
        stale.sort_unstable();
        let mut seen = HashSet::new();
        let ids: Vec<u64> = stale
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| seen.insert(*id))
            .take(CONFIRM_BATCH * max_requests_per_run(parts, settings))
            .collect();
        let fetcher = settings.fetcher.clone();
        let (source, answer) = blocking("the confirmation task", move || {
            let mut answer = LiveNow::default();
            let mut requests = 0;
            let mut error = None;
            for batch in ids.chunks(CONFIRM_BATCH) {
                requests += 1;
                match source.live_streams(&fetcher, batch, now) {
                    Ok(part) => {
                        answer.live.extend(part.live);
                        answer.offline.extend(part.offline);
                        answer.skipped += part.skipped;
                    }
                    Err(failure) => {
                        error = Some(failure);
                        break;
                    }
                }
            }
            (source, (answer, requests, error))
        })
        .await?;
        let (answer, requests, error) = answer;
        parts
            .metrics
            .add("vodprobe_listing_confirm_requests_total", &[], requests as f64);
        if let Some(error) = &error {
            parts
                .metrics
                .inc("vodprobe_listing_errors_total", &[("kind", error.kind())]);
            warn!("confirming live streams by id failed: {error}; nothing is ended without an answer");
        }
        if answer.skipped > 0 {
            warn!(
                skipped = answer.skipped,
                "confirmation entries left out as malformed"
            );
        }
        let mut confirmed: HashMap<u64, Confirmed> = answer
            .offline
            .iter()
            .map(|id| (*id, Confirmed::Offline))
            .collect();
        confirmed.extend(answer.live.iter().map(|(id, (stream_id, _))| {
            (
                *id,
                Confirmed::Live {
                    stream_id: *stream_id,
                },
            )
        }));
        if confirmed.is_empty() {
            return Some(source);
        }
        let rules = settings.rules.clone();
        let clock = parts.clock;
        let metrics = parts.metrics.clone();
        let ended = parts
            .store
            .job("could not store confirmed ends", move |store| {
                store.update(|tx| {
                    let live = tx.live()?;
                    let update = track::end_confirmed(&live, &confirmed, now, clock.now(), &rules);
                    note_ends(&metrics, "confirm", &update.write, |_| true, clock.now());
                    let ended = update.delete.len()
                        + update.write.iter().filter(|r| r.status != Status::Live).count();
                    for record in update.write.iter().filter(|r| r.status != Status::Live) {
                        debug!(login = %record.login, stream_id = record.stream_id, "stream ended (confirmed by id)");
                    }
                    tx.apply(&update.write, &update.delete)?;
                    Ok::<_, crate::store::StoreError>(ended)
                })
            })
            .await;
        if let Some(ended @ 1..) = ended {
            parts
                .metrics
                .add("vodprobe_streams_confirmed_ended_total", &[], ended as f64);
            debug!(ended, "streams ended by confirmation");
        }
        Some(source)
    }
}

/// Requests one run may spend: half of the pages the listing's pace allows between two runs
/// (`pages_per_second` is in real seconds, so an accelerated clock scales it), at least one.
fn max_requests_per_run(parts: &CrawlParts, settings: &Settings) -> usize {
    let between = parts
        .clock
        .real(std::time::Duration::from_secs(CONFIRM_EVERY as u64));
    let pages = settings.config.source.pages_per_second * between.as_secs_f64();
    ((pages / 2.0).ceil() as usize).max(1)
}
