//! The confirmation stage: ends known without a full pass of the listing.
//!
//! Only a finished pass ends streams in the crawl, and a pass may never finish (Twitch refuses
//! the web client's cursor pages, or `restart_every` cuts it). So from the crawl's tick, at
//! most every [`CONFIRM_EVERY`] seconds, the live records the listing has not shown for
//! `restart_every` + [`CONFIRM_MARGIN`] (a pass that works shows every stream it reaches
//! within that) are asked about by channel id, 100 channels per request, with the crawl's own
//! listing client (the same token and quota). A channel answered offline, or live with
//! another stream id (a restart), has ended: its record ends exactly as the pass-based
//! [`track::end_unseen`] would end it (`track::end_confirmed`), and its first probe is due
//! `settle` later. A channel live with the same stream id counts as seen then, so it is
//! asked again only after the same delay: a stream the listing never reaches costs a hundredth
//! of a request per `restart_every` + 60 s. Only evidence ends a stream: a failed request
//! (the listing down) ends nothing, and a channel without a readable answer is left alone.
//! It runs on the crawl's task, so confirmations and pages never overlap.

use super::crawl::CrawlParts;
use super::every::blocking;
use super::state::Settings;
use crate::discover::{CONFIRM_BATCH, LiveNow, Source};
use crate::metrics::{Kind, Metrics};
use crate::record::Status;
use crate::track::{self, Confirmed};
use std::collections::{HashMap, HashSet};
use tracing::{debug, warn};

/// At most one confirmation run per this many seconds (of the appliance's clock).
pub const CONFIRM_EVERY: i64 = 30;
/// Added to `restart_every`: a record unseen this long is asked about.
pub const CONFIRM_MARGIN: i64 = 60;
/// Requests per run at most (the most stale channels first); the rest wait for the next run.
const MAX_REQUESTS_PER_RUN: usize = 10;

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
    pub async fn tick(
        &mut self,
        parts: &CrawlParts,
        settings: &Settings,
        mut source: Source,
    ) -> Option<Source> {
        let now = parts.clock.now();
        if self.last_run.is_some_and(|last| now - last < CONFIRM_EVERY) {
            return Some(source);
        }
        self.last_run = Some(now);
        let stale_before = now - settings.config.source.restart_every.as_secs() as i64 - CONFIRM_MARGIN;
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
            .take(CONFIRM_BATCH * MAX_REQUESTS_PER_RUN)
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
        let ended = parts
            .store
            .job("could not store confirmed ends", move |store| {
                store.update(|tx| {
                    let live = tx.live()?;
                    let update = track::end_confirmed(&live, &confirmed, now, clock.now(), &rules);
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
