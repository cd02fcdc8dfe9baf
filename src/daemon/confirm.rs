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
//! listing's pace (`pages_per_second`) allows in the meantime: the recordable streams first (the
//! others are only dropped when they end), each group those the current pass has read past
//! without showing first (`passed.rs`), then the stalest (`track::to_confirm`).

use super::crawl::{CrawlParts, note_ends};
use super::every::blocking;
use super::passed::PassedOver;
use super::state::Settings;
use crate::discover::{CONFIRM_BATCH, LiveNow, Source};
use crate::metrics::{Kind, Metrics};
use crate::record::Status;
use crate::track::{self, Confirmed};
use std::collections::HashMap;
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

/// When confirmations last ran, and the requests they may spend.
#[derive(Default)]
pub struct Confirm {
    last_run: Option<i64>,
    /// Requests owed at half the listing's pace, the fraction carried over, so a pace below
    /// two pages per run is kept on average (rounding each run's share up to one request gave
    /// the week benchmark's confirmations more than the whole pace).
    allowance: f64,
    /// Clock time the allowance was last accrued.
    accrued_at: Option<i64>,
}

impl Confirm {
    /// Confirms the stale live records if a run is due; gives the listing client back (`None`
    /// when it was lost to a panic).
    ///
    /// `complete_pass_started`: when the last complete pass of the listing began; the live
    /// records it did not show are asked about at once. `passed`: the channels the current
    /// pass has read past without showing, asked about first.
    pub async fn tick(
        &mut self,
        parts: &CrawlParts,
        settings: &Settings,
        complete_pass_started: Option<i64>,
        passed: &PassedOver,
        mut source: Source,
    ) -> Option<Source> {
        let now = parts.clock.now();
        let confirm_after = settings.config.source.confirm_after.as_secs() as i64;
        if confirm_after == 0 || self.last_run.is_some_and(|last| now - last < CONFIRM_EVERY) {
            return Some(source);
        }
        let most = self.accrue(parts, settings, now);
        if most == 0 {
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
        let mut ids = track::to_confirm(&live, stale_before, &settings.rules, |id| passed.passed(id));
        if ids.is_empty() {
            return Some(source);
        }
        ids.truncate(CONFIRM_BATCH * most);
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
        self.allowance = (self.allowance - requests as f64).max(0.0);
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

    /// Accrues the requests owed since the last call at half the listing's pace
    /// (`pages_per_second` is in real seconds, so an accelerated clock scales it) and says how
    /// many whole requests this run may spend.
    fn accrue(&mut self, parts: &CrawlParts, settings: &Settings, now: i64) -> usize {
        let per_second = settings.config.source.pages_per_second / parts.clock.speed() / 2.0;
        self.accrue_at(per_second, now)
    }

    /// The allowance at `now` at `per_second`: at most one run's worth ([`CONFIRM_EVERY`]
    /// seconds) on top of one whole request, so the fraction a request leaves is carried over
    /// and a pause is not made up in a burst. The first call may spend one run's worth.
    fn accrue_at(&mut self, per_second: f64, now: i64) -> usize {
        let run = per_second * CONFIRM_EVERY as f64;
        // Capped at one run's worth (at least a request), a pace below a request a run lost
        // the fraction at each cap: the week benchmark's 0.030 requests a second became 0.022.
        let most = run + 1.0;
        let since = self.accrued_at.map_or(CONFIRM_EVERY, |at| (now - at).max(0));
        self.accrued_at = Some(now);
        self.allowance = (self.allowance + per_second * since as f64).min(most);
        self.allowance.floor() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests spent in `seconds` when every run spends all it may.
    fn spent(per_second: f64, seconds: i64) -> usize {
        let mut confirm = Confirm::default();
        let mut total = 0;
        for now in (0..seconds).step_by(CONFIRM_EVERY as usize) {
            let most = confirm.accrue_at(per_second, now);
            confirm.allowance -= most as f64;
            total += most;
        }
        total
    }

    #[test]
    fn confirmations_keep_their_pace_below_a_request_a_run() {
        // The week benchmark's pace: 0.030 a second, 0.45 a run; an hour owes 108.
        let slow = spent(0.03, 3600);
        assert!(
            (106..=109).contains(&slow),
            "{slow} requests in an hour at 0.030 a second"
        );
        // Twitch's: 1.5 a second, 22.5 a run.
        let fast = spent(1.5, 3600);
        assert!(
            (5380..=5410).contains(&fast),
            "{fast} requests in an hour at 1.5 a second"
        );
    }

    #[test]
    fn a_pause_is_not_made_up_in_a_burst() {
        let mut confirm = Confirm::default();
        assert_eq!(confirm.accrue_at(1.5, 0), 22);
        confirm.allowance -= 22.0;
        // An hour without a run (the listing down): one run's worth and a request, no more.
        assert_eq!(confirm.accrue_at(1.5, 3600), 23);
    }
}
