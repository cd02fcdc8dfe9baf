//! Keeping the probe queue within `max_queue` and `max_wait`: the pure choices are
//! `track::shed_backlog` and `track::shed_beyond_wait`; this runs them in one store
//! transaction, spares what is running or unread, and says what it gave up.

use super::{Probing, UNREAD_GRACE, WAIT_BOUND_EVERY};
use crate::record::{Status, StreamKey, StreamRecord};
use crate::track;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use tracing::warn;

impl Probing {
    /// Keeps the probe queue within `max_queue` (see `track::shed_backlog`).
    pub(super) async fn bound_queue(&self) {
        let settings = self.parts.settings.get();
        let max_queue = settings.config.pipeline.max_queue;
        let rules = settings.rules.clone();
        let now = self.parts.clock.now();
        // The budget's requests in `max_wait` (clock time: an accelerated clock shortens it).
        let work_limit = (settings.config.limits.requests_per_second
            * settings.config.pipeline.max_wait.as_secs_f64()
            / self.parts.clock.speed().max(f64::MIN_POSITIVE)) as usize;
        let domains = settings.config.domains.iter().filter(|d| d.enabled).count();
        let slot = now.div_euclid(WAIT_BOUND_EVERY);
        let wait_due = self.wait_bound_slot.swap(slot, Relaxed) != slot;
        // Spared by the max_wait bound: probes running now (their requests are being spent),
        // and waiting ones whose cost is not known yet — no probe and no read-ahead has read
        // their video list, which may name the path (one request, not a search).
        let spared: HashSet<StreamKey> = self.in_flight().clone();
        let read: HashMap<StreamKey, bool> = if wait_due {
            self.looked_up()
                .iter()
                .map(|(key, &(_, hinted))| (*key, hinted))
                .collect()
        } else {
            HashMap::new()
        };
        let shed = self
            .parts
            .store
            .job("could not bound the probe queue", move |store| {
                let queued = store.queue_len()?;
                // Every waiting probe a search of an unknown path: it would still fit.
                let fits =
                    !wait_due || queued as usize * track::expected_requests_most(domains) <= work_limit;
                if queued <= max_queue as u64 && fits {
                    return Ok((0, 0, None));
                }
                store.update(|tx| {
                    // The queue is read once: what max_queue leaves waiting and is due now
                    // is what the max_wait bound judges.
                    let queued = tx.due(i64::MAX, usize::MAX)?;
                    let waiting: HashSet<StreamKey> = queued.iter().map(StreamRecord::key).collect();
                    let mut shed = track::shed_backlog(queued.clone(), max_queue, &rules);
                    tx.put_streams(&shed)?;
                    if !fits {
                        let dropped: HashSet<StreamKey> = shed.iter().map(StreamRecord::key).collect();
                        let due: Vec<_> = queued
                            .into_iter()
                            .filter(|r| r.probe.next_due.is_some_and(|due| due <= now))
                            .filter(|r| !dropped.contains(&r.key()))
                            .filter(|r| !spared.contains(&r.key()))
                            .collect();
                        let unread = |r: &StreamRecord| {
                            r.probe.learned.is_none() && r.probe.probes == 0 && !read.contains_key(&r.key())
                        };
                        // The read-ahead reads the unread within a few ticks, the most at risk
                        // first: judging now would drop what it has read (more viewed) and
                        // spare what it has not. One left unread past the grace (the listing
                        // fails) is spared and blocks nothing.
                        let reading = due
                            .iter()
                            .any(|r| unread(r) && now - r.probe.next_due.unwrap_or(now) < UNREAD_GRACE);
                        if reading {
                            return Ok(shed_counts(&shed, waiting));
                        }
                        let due: Vec<_> = due.into_iter().filter(|r| !unread(r)).collect();
                        let hinted = |r: &StreamRecord| read.get(&r.key()).copied().unwrap_or(false);
                        let beyond = track::shed_beyond_wait(due, work_limit, domains, now, &rules, &hinted);
                        tx.put_streams(&beyond)?;
                        shed.extend(beyond);
                    }
                    Ok(shed_counts(&shed, waiting))
                })
            })
            .await;
        let Some((refetches, captures, waiting)) = shed else {
            return;
        };
        // What the read-ahead learned is kept for every probe still waiting, however long it
        // waits (forgetting a hint makes a one-request capture look like a search, and the
        // bound drops it as costly), and only for those.
        if let Some(waiting) = waiting {
            self.looked_up().retain(|key, _| waiting.contains(key));
        }
        let metrics = &self.parts.metrics;
        metrics.add(
            "vodprobe_shed_total",
            &[("reason", "hour_refetch")],
            refetches as f64,
        );
        metrics.add("vodprobe_shed_total", &[("reason", "capture")], captures as f64);
        if refetches + captures > 0 {
            self.parts
                .activity
                .shed(self.parts.clock.now(), captures, refetches);
            warn!(
                refetches,
                captures,
                max_queue,
                max_wait = ?settings.config.pipeline.max_wait,
                "probe queue over max_queue or longer than max_wait of the request budget: dropped \
                 the least at risk waiting broadcasts; raise limits.requests_per_second or \
                 min_viewers_record, or narrow source.scope, if this repeats"
            );
        }
    }
}

/// Hour-aligned re-fetches and captures among the records a bound gave up, and the keys of
/// the probes still waiting (`waiting` as read before, less what was given up).
fn shed_counts(
    shed: &[StreamRecord],
    mut waiting: HashSet<StreamKey>,
) -> (usize, usize, Option<HashSet<StreamKey>>) {
    let refetches = shed.iter().filter(|r| r.status == Status::Found).count();
    for record in shed {
        waiting.remove(&record.key());
    }
    (refetches, shed.len() - refetches, Some(waiting))
}
