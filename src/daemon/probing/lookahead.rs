//! The probe stage's read-ahead: the video lists of probes left waiting, read before their
//! turn (listing requests, not CDN ones), so the backlog is ordered and bounded by what each
//! will really cost.

use super::super::every::blocking;
use super::Probing;
use crate::probe;
use crate::record::{Status, StreamRecord};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tracing::{debug, error};

/// Read-ahead workers (see [`Probing::look_ahead`]) running at once, each reading one video
/// list at a time.
const LOOKUPS_AT_ONCE: usize = 2;
/// Waiting probes one read-ahead worker reads in a row, per start of the probe stage.
const LOOKUPS_PER_WORKER: usize = 8;
/// Clock seconds before a waiting probe's video list is read ahead again: a video still being
/// processed (a placeholder thumbnail) can name its path later.
const LOOKUP_AGAIN: i64 = 1800;
/// Read-ahead times kept before the old ones are forgotten (a forgotten one is read again).
/// Only a safety net for memory: the `max_wait` bound keeps exactly the probes still waiting
/// each time it reads the whole queue, since a hint forgotten while its probe waits makes a
/// one-request capture look like a costly search, which the bound then drops first.
const LOOKUPS_KEPT: usize = 1 << 17;

impl Probing {
    /// Reads ahead the video lists of probes left waiting (a listing request, not a CDN one),
    /// so the backlog is ordered and bounded by what they will really cost: a video naming the
    /// path makes a one-request capture of what looked like a search, a channel known to store
    /// nothing or a video saying its broadcast was not muted concludes without a CDN request,
    /// and a sub-only video marks a broadcast at risk. Each waiting probe is read once per
    /// [`LOOKUP_AGAIN`]; a probe starting meanwhile waits for the read to finish.
    pub(super) fn look_ahead(self: &Arc<Self>, waiting: Vec<StreamRecord>, now: i64) {
        let room = LOOKUPS_AT_ONCE.saturating_sub(self.lookups.load(Relaxed));
        if room == 0 || waiting.is_empty() {
            return;
        }
        let mut batches: Vec<Vec<StreamRecord>> = vec![Vec::new(); room];
        {
            let mut looked = self.looked_up();
            if looked.len() > LOOKUPS_KEPT {
                looked.retain(|_, (at, _)| now - *at < LOOKUP_AGAIN);
            }
            let wanted: Vec<StreamRecord> = waiting
                .into_iter()
                .filter(|record| {
                    let refetch = record.status == Status::Found && !record.probe.hour_probe_done;
                    let unknown = record.probe.learned.is_none() || refetch;
                    unknown
                        && looked
                            .get(&record.key())
                            .is_none_or(|&(at, _)| now - at >= LOOKUP_AGAIN)
                })
                .take(room * LOOKUPS_PER_WORKER)
                .collect();
            for (i, record) in wanted.into_iter().enumerate() {
                looked.insert(record.key(), (now, false));
                batches[i % room].push(record);
            }
        }
        for batch in batches.into_iter().filter(|batch| !batch.is_empty()) {
            self.lookups.fetch_add(1, Relaxed);
            let stage = self.clone();
            self.tracker.spawn(async move {
                for record in batch {
                    if stage.shutdown.is_cancelled() {
                        break;
                    }
                    let key = record.key();
                    // A probe of it started meanwhile: it reads the list itself.
                    if !stage.in_flight().insert(key) {
                        continue;
                    }
                    stage.reading.fetch_add(1, Relaxed);
                    let worker = stage.clone();
                    if blocking("a video read-ahead", move || worker.probe_one(record, false))
                        .await
                        .is_none()
                    {
                        error!(stream = ?key, "the video read-ahead did not finish");
                    }
                    stage.in_flight().remove(&key);
                    stage.reading.fetch_sub(1, Relaxed);
                }
                stage.lookups.fetch_sub(1, Relaxed);
            });
        }
    }

    /// Keeps what a read-ahead's video list said of a waiting probe (`record` as [`probe::start`]
    /// left it): the path its video names and whether it is public, written into the stored
    /// record if it still waits for its probe. Blocking.
    pub(super) fn keep_what_the_list_said(&self, record: &StreamRecord, start: &probe::ProbeStart) {
        let parts = &self.parts;
        let learned = record.probe.learned.clone();
        if let Some(entry) = self.looked_up().get_mut(&record.key()) {
            entry.1 = start.hint.is_some();
        }
        let outcome = if learned.is_some() { "learned" } else { "nothing" };
        debug!(login = %record.login, stream_id = record.stream_id, outcome, "video list read ahead of the probe");
        parts
            .metrics
            .inc("vodprobe_lookahead_total", &[("outcome", outcome)]);
        if learned.is_none() && start.public.is_none() {
            return;
        }
        let written = parts.store.get().update(|tx| {
            let Some(mut fresh) = tx.get_stream(record.key())? else {
                return Ok(());
            };
            if fresh.probe.next_due.is_none() {
                return Ok(());
            }
            let before = (fresh.probe.learned.clone(), fresh.public);
            if fresh.probe.learned.is_none() {
                fresh.probe.learned.clone_from(&learned);
            }
            if start.public.is_some() {
                fresh.public = start.public;
            }
            if (fresh.probe.learned.clone(), fresh.public) != before {
                tx.put_streams(std::slice::from_ref(&fresh))?;
            }
            Ok(())
        });
        if let Err(error) = written {
            parts.store.report(
                "could not keep what a video list said (the probe reads it again)",
                &error,
            );
        }
    }
}
