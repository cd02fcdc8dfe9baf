//! The probe stage: run the due probes under the request budget, followed channels first, then
//! the most viewed, and store
//! each outcome; keep the queue within `max_queue`.
//!
//! A record leaves the queue only when its outcome is committed, so a probe in flight when the
//! process dies is due again after restart. What a probe asks and what its answer means are
//! pure rules in `probe` and `track`; this file runs them: it reads the channel's video list,
//! asks the CDN off the async threads, and writes the outcome in one store transaction that
//! re-reads the record (the crawl may have changed it meanwhile).

use super::every::blocking;
use super::state::{Activity, Domains, Settings, SettingsCell, StoreSlot};
use crate::budget::Budget;
use crate::config::SourceConfig;
use crate::discover::Source;
use crate::metrics::{Kind, Metrics, WAIT_BUCKETS};
use crate::probe::{self, ProbeReport, ProbeResult, VideoFacts};
use crate::record::{Status, StreamKey, StreamRecord};
use crate::schedule::Clock;
use crate::search::{Cdn, Steer};
use crate::track;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

mod bound;
mod lookahead;

/// Searches running at once; they share the budget, so this bounds threads, not requests.
pub const MAX_SEARCHES: usize = 8;
/// Learning searches of live broadcasts (`track::is_sweep`) running at once
/// while more probes are due than can run: each asks many requests, and every request in
/// flight delays the one-request captures of broadcasts that just ended (a quick delete's
/// window is minutes), so with demand above the budget only this many share it with them.
pub const BACKLOG_SEARCHES: usize = 2;
/// Probes waiting for their first request's slot while more probes are due than can run.
/// Waiting probes take the budget's slots in no particular order, so every probe let in
/// beyond these would wait at random instead of in the queue's order (sorted afresh every
/// tick, what is at risk first): with 16 let in, a broadcast that had just ended waited for
/// up to 16 slots, over four minutes at the week benchmark's pace. Four keep the budget busy
/// between two ticks of the default schedule (one second at 3 requests a second).
pub const BACKLOG_LINE: usize = 4;
/// Clock seconds between two `max_wait` bounds of the queue.
const WAIT_BOUND_EVERY: i64 = 10;
/// Background checks (segments, audio, other qualities) wait until no probe has waited for
/// the budget for as long as the budget takes to spend this many requests (a read of the
/// queue's window). "Nothing due" alone is not spare budget: with demand near the budget the
/// queue empties for moments, and a check's requests then delay the probes that come due next
/// (the week benchmark at N = 50 spent 18 % of its budget on segment checks while it shed a
/// thousand broadcasts a day). In the budget's own time, so it holds at any rate: 21 s at
/// 3 requests a second.
const BACKGROUND_AFTER_BACKLOG: usize = MAX_SEARCHES * 8;
/// How long (clock seconds) after it came due a probe whose video list is unread holds back
/// the `max_wait` bound: the read-ahead reads it within ticks unless the listing fails.
const UNREAD_GRACE: i64 = 600;
/// A followed channel's newest broadcasts looked at for a due probe when the queue's backlog
/// is longer than one read (restarts and the hour-aligned re-probe make several).
const FOLLOWED_DUE_LOOKBACK: usize = 4;

/// What the probe stage (and the quality checks it starts) use of the appliance.
pub struct ProbeParts {
    pub settings: Arc<SettingsCell>,
    pub clock: Clock,
    pub store: Arc<StoreSlot>,
    pub budget: Arc<Budget>,
    pub domains: Arc<Domains>,
    pub activity: Arc<Activity>,
    pub metrics: Arc<Metrics>,
    /// The listing API for video lookups: its own client, so they never wait on the crawl.
    pub videos: Arc<VideoList>,
}

/// Declares the probe stage's series once, at start-up.
pub fn describe(metrics: &Metrics) {
    let series = [
        (
            "vodprobe_probes_total",
            Kind::Counter,
            "Probe outcomes stored, by outcome.",
        ),
        (
            "vodprobe_probe_requests_total",
            Kind::Counter,
            "CDN requests of probes (part of vodprobe_cdn_requests_total).",
        ),
        (
            "vodprobe_background_paused",
            Kind::Gauge,
            "1 while segment, audio and quality checks wait because probes waited for the \
             request budget lately (within the time it takes to spend 64 requests): they use \
             spare budget only.",
        ),
        (
            "vodprobe_domain_failures_total",
            Kind::Counter,
            "Domains that failed during probes, by domain and kind (timeout, dns, connect, reset, \
             tls, too_large, not_playlist, rate_limited, http_status, ...).",
        ),
        (
            "vodprobe_domain_answers_total",
            Kind::Counter,
            "Domains that answered during probes, by domain.",
        ),
        (
            "vodprobe_rebuilds_total",
            Kind::Counter,
            "Rebuild attempts of playlists gone at a known location, by result (rebuilt, \
             no_segments: segment 0 missing too, inconclusive).",
        ),
        (
            "vodprobe_rebuild_requests_total",
            Kind::Counter,
            "CDN requests of rebuild attempts (part of vodprobe_probe_requests_total).",
        ),
        (
            "vodprobe_shed_total",
            Kind::Counter,
            "Broadcasts given up because more than max_queue waited, by reason (hour_refetch: \
             the capture stands, its hour-aligned re-fetch dropped; capture: not captured).",
        ),
        (
            "vodprobe_lookahead_total",
            Kind::Counter,
            "Video lists read ahead of the CDN queue for waiting probes, by what they taught \
             (learned: the path, so the probe costs one request; settled: concluded without a \
             CDN request; nothing).",
        ),
        (
            "vodprobe_probes_due_after_recovery_total",
            Kind::Counter,
            "Probes backing off after an outage made due at once because a domain that could \
             hold the broadcast answered again.",
        ),
    ];
    for (name, kind, help) in series {
        metrics.describe(name, kind, help);
    }
    metrics.describe_histogram(
        PROBE_WAIT,
        "Seconds a probe waited from when it was due to when it started, by which probe \
         (track::probe_kind: live, end, retry, hour).",
        WAIT_BUCKETS,
    );
}

/// The histogram of how long due probes wait for a slot (see [`describe`]).
const PROBE_WAIT: &str = "vodprobe_probe_wait_seconds";

/// The listing clients that read channels' video lists, kept between probes. A probe takes an
/// idle one (or builds one) and puts it back after its request, so no lock is held across the
/// request; clients built from listing settings a reload has since changed are dropped.
#[derive(Default)]
pub struct VideoList {
    idle: Mutex<Vec<(SourceConfig, Source)>>,
}

impl VideoList {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SourceConfig, Source)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the channel's video list where the broadcast's playlist is (a listing API request,
    /// not a CDN one). `None` when the list could not be read.
    fn facts(&self, settings: &Settings, record: &StreamRecord, now: i64) -> Option<VideoFacts> {
        let wanted = &settings.config.source;
        let idle = {
            let mut idle = self.lock();
            idle.retain(|(built_from, _)| built_from == wanted);
            idle.pop()
        };
        let (built_from, mut source) = idle.unwrap_or_else(|| (wanted.clone(), Source::new(wanted)));
        let videos = source.videos(&settings.fetcher, record.streamer_id, 20, now);
        self.lock().push((built_from, source));
        match videos {
            Ok(videos) => {
                let facts = probe::from_videos(&settings.config, record, &videos);
                if let Some(domain) = &facts.unknown_domain {
                    warn!(
                        login = %record.login,
                        domain = %domain,
                        "the broadcast's video names a CDN domain that is not configured; add it \
                         as a [[domain]] in config.toml"
                    );
                }
                Some(facts)
            }
            Err(error) => {
                debug!(login = %record.login, "video lookup failed: {error}; searching the CDN instead");
                None
            }
        }
    }
}

/// Steers a probe or quality check: it stops at shutdown, and stops asking a domain as soon as
/// a reload removes or disables it (the rest of the work keeps the settings it started with).
pub struct Steering<'a> {
    settings: &'a SettingsCell,
    shutdown: &'a CancellationToken,
    started_under: u64,
}

impl<'a> Steering<'a> {
    pub fn new(settings: &'a SettingsCell, shutdown: &'a CancellationToken) -> Steering<'a> {
        Steering {
            settings,
            shutdown,
            started_under: settings.generation(),
        }
    }
}

impl Steer for Steering<'_> {
    fn stop(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    fn withdrawn(&self, domain_url: &str) -> bool {
        if self.settings.generation() == self.started_under {
            return false;
        }
        !self
            .settings
            .get()
            .config
            .domains
            .iter()
            .any(|domain| domain.url == domain_url && domain.enabled)
    }
}

/// The probe stage.
pub struct Probing {
    parts: Arc<ProbeParts>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// The broadcasts being probed now.
    in_flight: Mutex<HashSet<StreamKey>>,
    /// Searches of unknown paths among them (see [`BACKLOG_SEARCHES`]).
    searching: AtomicUsize,
    /// Read-ahead workers running (see [`Probing::look_ahead`]).
    lookups: AtomicUsize,
    /// Video-list reads ahead of the queue among the broadcasts in flight: they ask the
    /// listing, not the CDN, so they take no probe slot.
    reading: AtomicUsize,
    /// When each waiting probe's video list was last read ahead, and whether its search has a
    /// hint (`track::Hinted`).
    looked_up: Mutex<HashMap<StreamKey, (i64, bool)>>,
    /// The clock time (in units of [`WAIT_BOUND_EVERY`]) of the last `max_wait` bound: it
    /// reads the whole due queue, so not at every tick.
    wait_bound_slot: AtomicI64,
    /// The clock time probes last waited for the budget (more due than could start), or
    /// `i64::MIN`: background checks wait [`BACKGROUND_AFTER_BACKLOG`] after it.
    last_backlog: AtomicI64,
    qualities: super::qualities::QualityChecks,
    segments: super::segments::SegmentChecks,
    audio: super::audio::AudioChecks,
}

impl Probing {
    pub fn new(parts: ProbeParts, tracker: TaskTracker, shutdown: CancellationToken) -> Arc<Probing> {
        let parts = Arc::new(parts);
        Arc::new(Probing {
            qualities: super::qualities::QualityChecks::new(parts.clone()),
            segments: super::segments::SegmentChecks::new(parts.clone()),
            audio: super::audio::AudioChecks::new(parts.clone()),
            parts,
            tracker,
            shutdown,
            in_flight: Mutex::new(HashSet::new()),
            wait_bound_slot: AtomicI64::new(i64::MIN),
            last_backlog: AtomicI64::new(i64::MIN),
            searching: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
            reading: AtomicUsize::new(0),
            looked_up: Mutex::new(HashMap::new()),
        })
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<StreamKey>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn looked_up(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, (i64, bool)>> {
        self.looked_up.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts searches for due records, up to `MAX_SEARCHES` at once: followed channels first,
    /// then the most viewed; when more wait than can start, in `track::backlog_order` with at
    /// most `BACKLOG_SEARCHES` sweeps. With nothing due, a segment check of a capture and a
    /// background quality check.
    pub async fn start_due(self: &Arc<Self>) {
        self.bound_queue().await;
        let busy = self.in_flight().len().saturating_sub(self.reading.load(Relaxed));
        // With every slot taken the queue is still read: its waiting probes are read ahead.
        let free = MAX_SEARCHES.saturating_sub(busy);
        if self.shutdown.is_cancelled() {
            return;
        }
        let now = self.parts.clock.now();
        let rules = self.parts.settings.get().rules.clone();
        let followed: Vec<u64> = rules.selection.followed.iter().copied().collect();
        let due = self
            .parts
            .store
            .job("could not read the probe queue", move |store| {
                let window = MAX_SEARCHES * 8;
                let mut due = store.due(now, window)?;
                // A backlog: the broadcasts that just became due are read too, so a fresh end
                // (a quick delete's window is minutes) does not wait behind the oldest.
                let backlog = due.len() == window;
                if backlog {
                    for record in store.due_newest(now, window)? {
                        if !due.iter().any(|d| d.key() == record.key()) {
                            due.push(record);
                        }
                    }
                }
                // A backlog longer than the window may hide a followed channel's probe behind
                // earlier ones: their newest broadcasts are looked at directly.
                if backlog {
                    for id in followed {
                        for record in store.streamer_records(id, FOLLOWED_DUE_LOOKBACK)? {
                            let is_due = record.probe.next_due.is_some_and(|t| t <= now);
                            if is_due && !due.iter().any(|d| d.key() == record.key()) {
                                due.push(record);
                            }
                        }
                    }
                }
                Ok((due, backlog))
            })
            .await;
        let Some((mut due, read_full)) = due else {
            return;
        };
        // More due than can start now (the budget is the bottleneck): the cheapest and most at
        // risk first, and searches capped, so one-request captures are not held behind them.
        let waiting = {
            let in_flight = self.in_flight();
            due.iter().filter(|r| !in_flight.contains(&r.key())).count()
        };
        let backlog = read_full || waiting > free;
        if backlog {
            let looked = self.looked_up();
            let hinted = |r: &StreamRecord| looked.get(&r.key()).is_some_and(|&(_, hinted)| hinted);
            due.sort_by(|a, b| track::backlog_order(a, b, now, &rules, &hinted));
        } else {
            due.sort_by(|a, b| track::probe_order(a, b, &rules));
        }
        if backlog {
            self.last_backlog.store(now, Relaxed);
        }
        if due.is_empty() {
            // Spare budget (nothing due, and no probe waited for the budget lately) goes to
            // checking that captures still play, and their other qualities.
            let since_backlog = now.saturating_sub(self.last_backlog.load(Relaxed));
            let rate = self.parts.settings.get().config.limits.requests_per_second;
            // Clock seconds: an accelerated clock spends the budget's requests faster.
            let quiet =
                BACKGROUND_AFTER_BACKLOG as f64 * self.parts.clock.speed() / rate.max(f64::MIN_POSITIVE);
            if (since_backlog as f64) < quiet {
                self.parts.metrics.set("vodprobe_background_paused", &[], 1.0);
                return;
            }
            self.parts.metrics.set("vodprobe_background_paused", &[], 0.0);
            self.segments.start(&self.tracker, &self.shutdown);
            self.audio.start(&self.tracker, &self.shutdown);
            self.qualities.start(&self.tracker, &self.shutdown);
            return;
        }
        let mut started = 0;
        let searching = &self.searching;
        let mut waiting = Vec::new();
        // A known path's capture (one request, first in the budget's line) may start while
        // every slot is held by searches waiting for the budget, up to as many again: it
        // would otherwise wait for one of them to finish, minutes under a backlog. So may a
        // search with a hint before its last retry: the channel's domain alone, one request
        // mostly and three at most (`probe::candidates`).
        let known_room = (2 * MAX_SEARCHES).saturating_sub(busy);
        // Under a backlog only a short line waits for the budget (see `BACKLOG_LINE`).
        let line_room = if backlog {
            BACKLOG_LINE.saturating_sub(self.parts.budget.first_waiting())
        } else {
            usize::MAX
        };
        let retries = rules.retries.len();
        for record in due {
            if started >= line_room && !rules.selection.is_followed(record.streamer_id) {
                waiting.push(record);
                continue;
            }
            let hinted = || {
                !probe::is_last_retry(&record, retries)
                    && self
                        .looked_up()
                        .get(&record.key())
                        .is_some_and(|&(_, hinted)| hinted)
            };
            let known = record.status != Status::Found && (record.probe.learned.is_some() || hinted());
            if started >= free && !(known && started < known_room) {
                waiting.push(record);
                continue;
            }
            let search = track::is_sweep(&record);
            if backlog && search && searching.load(Relaxed) >= BACKLOG_SEARCHES {
                waiting.push(record);
                continue;
            }
            if !self.in_flight().insert(record.key()) {
                continue;
            }
            started += 1;
            if search {
                searching.fetch_add(1, Relaxed);
            }
            if let Some(due) = record.probe.next_due {
                let labels = [("probe", track::probe_kind(&record))];
                self.parts
                    .metrics
                    .observe(PROBE_WAIT, &labels, (now - due).max(0) as f64);
            }
            let stage = self.clone();
            self.tracker.spawn(async move {
                let key = record.key();
                let worker = stage.clone();
                let ran = blocking("a probe", move || worker.probe_one(record, true)).await;
                if ran.is_none() {
                    error!(stream = ?key, "the probe did not finish; it stays due");
                }
                stage.in_flight().remove(&key);
                if search {
                    stage.searching.fetch_sub(1, Relaxed);
                }
            });
        }
        self.look_ahead(waiting, now);
    }

    /// Probes one record and writes the outcome. Blocking. On shutdown the probe is handed
    /// back: nothing is written and the record stays due. Without `cdn` (a read-ahead), an
    /// outcome that needs the CDN is left to the probe's turn, and only what the video list
    /// taught (the path, whether it is public) is kept.
    fn probe_one(&self, mut record: StreamRecord, cdn: bool) {
        let parts = &self.parts;
        let store = parts.store.get();
        let settings = parts.settings.get();
        // The video list is read (a listing request, not a CDN one) to find an unknown path,
        // and at the hour-aligned re-fetch, whose video says whether the mute pass muted it.
        let hour_refetch = record.status == Status::Found && !record.probe.hour_probe_done;
        let facts = if record.probe.learned.is_none() || hour_refetch {
            parts.videos.facts(&settings, &record, parts.clock.now())
        } else {
            None
        };
        // The channel's earlier broadcasts, newest first: the last known path is the
        // search's hint, and a run of empty ones settles this one without a search.
        let earlier = earlier_broadcasts(&parts.store, &record);
        let facts_seen = if hour_refetch { facts.clone() } else { None };
        let settled = probe::settled_by_history(&record, facts.as_ref(), &earlier).or_else(|| {
            probe::hour_fetch_skipped(&record, facts.as_ref(), &earlier)
                .map(|reason| ProbeResult::Skipped { reason })
        });
        // The newest earlier broadcast whose path is known (one shed or deleted in between
        // does not hide the channel's domain and form).
        let mut start = probe::start(&mut record, facts, || {
            earlier.iter().find_map(|previous| previous.probe.learned.clone())
        });
        start.restart = earlier
            .iter()
            .any(|other| other.stream_id == record.stream_id && other.start_unix != record.start_unix);
        // Taken before the book is copied: a recovery after it may be missing from the copy.
        let mark = parts.domains.recoveries();
        let defer = probe::live_fetch_skipped(&record, &start, &earlier);
        // Muted, its video listing the stretches: the stored copy is marked as the re-fetch
        // would list it, without a CDN request.
        let marked = match (&settled, hour_refetch) {
            (None, true) => store.playlist(record.key()).ok().flatten().and_then(|stored| {
                probe::muted_from_video(&record, facts_seen.as_ref(), &stored, parts.clock.now())
            }),
            _ => None,
        };
        let probed = match (settled, defer) {
            (Some(result), _) => Some((result, ProbeReport::default())),
            (None, _) if marked.is_some() => marked.map(|(result, text)| {
                let report = ProbeReport {
                    playlist: Some(text),
                    ..ProbeReport::default()
                };
                (result, report)
            }),
            (None, Some(reason)) => Some((ProbeResult::Deferred { reason }, ProbeReport::default())),
            (None, None) if !cdn => {
                self.keep_what_the_list_said(&record, &start);
                return;
            }
            (None, None) => {
                let steering = Steering::new(&parts.settings, &self.shutdown);
                let cdn = Cdn {
                    config: &settings.config,
                    fetcher: &settings.fetcher,
                    budget: &parts.budget,
                    steer: &steering,
                };
                let book = parts.domains.snapshot();
                // A copy taken while live helps a rebuild should the playlist be gone now.
                let partial = match &record.archive {
                    Some(_) if record.status != Status::Found => {
                        store.playlist(record.key()).unwrap_or_else(|error| {
                            parts.store.report(
                                "could not read the partial playlist (a rebuild goes without it)",
                                &error,
                            );
                            None
                        })
                    }
                    _ => None,
                };
                probe::run(cdn, &record, &start, &book, parts.clock.now(), partial.as_deref())
            }
        };
        // A path the video list named for a probe that asked nothing is kept: the probe at the
        // end then costs one request even if the video is gone by then.
        let named_path = match &probed {
            Some((ProbeResult::Deferred { .. }, _)) => record.probe.learned.clone(),
            _ => None,
        };
        let Some((result, report)) = probed else {
            debug!(login = %record.login, "probe handed back at shutdown; it stays due");
            return;
        };
        let now = parts.clock.now();
        // Domains that answered again while this probe ran without them (not the ones it saw).
        let meanwhile = parts.domains.recovered_since(mark);
        let recovered = self.count(&result, &report, now);
        let outcome = result.name();
        let key = record.key();
        let rules = &settings.rules;
        let configured = |url: &str| settings.config.domains.iter().any(|d| d.enabled && d.url == url);
        // A playlist listing `-unmuted` originals starts their watch (crate::audio).
        let lists_originals = report
            .playlist
            .as_deref()
            .is_some_and(crate::playlist::lists_originals);
        // Re-read inside the write: the crawl may have updated the record while the probe ran.
        let written = store.update(|tx| {
            let Some(fresh) = tx.get_stream(key)? else {
                return Ok(None);
            };
            let Some(mut updated) = probe::conclude(fresh, result, &start, now, rules) else {
                debug!(login = %record.login, "probe outcome discarded: the record no longer waits for a probe");
                return Ok(None);
            };
            if updated.probe.learned.is_none() {
                updated.probe.learned = named_path;
            }
            track::due_after_recovery(&mut updated, &meanwhile, configured, now);
            match &report.playlist {
                Some(text) => tx.put_archived(&updated, text)?,
                None => tx.put_streams(std::slice::from_ref(&updated))?,
            }
            // Also for a copy taken while live: the crawl may then complete it (its playlist
            // already ended) without another probe, and its originals are already listed.
            if lists_originals && updated.archive.is_some() {
                tx.watch_original_audio(key, now)?;
            }
            Ok(Some(updated))
        });
        match written {
            Ok(Some(updated)) => {
                parts.activity.probe_stored(now);
                parts.store.succeeded();
                parts
                    .metrics
                    .inc("vodprobe_probes_total", &[("outcome", outcome)]);
                if !cdn {
                    parts
                        .metrics
                        .inc("vodprobe_lookahead_total", &[("outcome", "settled")]);
                }
                info!(
                    login = %updated.login,
                    stream_id = updated.stream_id,
                    requests = report.requests,
                    status = updated.status.as_str(),
                    next_due = ?updated.probe.next_due,
                    "probe {outcome}"
                )
            }
            Ok(None) => {}
            Err(error) => parts
                .store
                .report("could not store a probe outcome (the probe stays due)", &error),
        }
        if !recovered.is_empty() {
            requeue_after_recovery(&parts.store, &settings, &parts.metrics, &recovered, now);
        }
    }

    /// What one probe saw, in the domain book and the metrics; returns the domains that
    /// answered again after being down.
    fn count(&self, result: &ProbeResult, report: &ProbeReport, now: i64) -> Vec<String> {
        let parts = &self.parts;
        // A hit made without a request (marked from the video's muted stretches) says nothing
        // of its domain.
        let hit_domain = match result {
            ProbeResult::Hit { archive, .. } if report.requests > 0 => Some(archive.domain.as_str()),
            _ => None,
        };
        let recovered = parts.domains.record_probe(report, hit_domain, now);
        let metrics = &parts.metrics;
        metrics.add("vodprobe_probe_requests_total", &[], report.requests as f64);
        if let Some(requests) = report.rebuild_requests {
            let rebuilt = matches!(result, ProbeResult::Hit { archive, .. } if archive.rebuilt);
            let outcome = match result {
                _ if rebuilt => "rebuilt",
                ProbeResult::Inconclusive { .. } => "inconclusive",
                _ => "no_segments",
            };
            metrics.inc("vodprobe_rebuilds_total", &[("result", outcome)]);
            metrics.add("vodprobe_rebuild_requests_total", &[], requests as f64);
        }
        for failure in &report.failed_domains {
            metrics.inc(
                "vodprobe_domain_failures_total",
                &[("domain", &failure.domain_url), ("kind", failure.kind)],
            );
        }
        for url in &report.answered_domains {
            metrics.inc("vodprobe_domain_answers_total", &[("domain", url)]);
        }
        recovered
    }
}

/// The streamer's broadcasts that started before `record`, newest first, as many as the
/// channel-history rules look at (`probe::keeps_no_vods`). Empty when the store cannot say:
/// the probe then searches without a hint, in full.
fn earlier_broadcasts(store: &StoreSlot, record: &StreamRecord) -> Vec<StreamRecord> {
    // Restarts after this broadcast may be newer than it: read a few more.
    match store
        .get()
        .streamer_records(record.streamer_id, probe::REVERIFY_EVERY + 2)
    {
        Ok(mut records) => {
            records.retain(|earlier| earlier.start_unix < record.start_unix);
            records
        }
        Err(error) => {
            store.report(
                "could not read the streamer's earlier broadcasts (searching without them)",
                &error,
            );
            Vec::new()
        }
    }
}

/// Makes due now, in one transaction, the probes backing off after an outage that one of the
/// `recovered` domains (answering again after being down) could conclude, instead of when
/// their back-off ends (up to an hour, while a streamer can delete). They are only due: the
/// budget still paces their requests, and a restart finds them due. Blocking.
pub(super) fn requeue_after_recovery(
    store: &StoreSlot,
    settings: &Settings,
    metrics: &Metrics,
    recovered: &[String],
    now: i64,
) {
    let configured = |url: &str| settings.config.domains.iter().any(|d| d.enabled && d.url == url);
    let requeued = store.get().update(|tx| {
        // Records backing off are due later than now; the queue is bounded by max_queue.
        let mut requeued = tx.due(i64::MAX, usize::MAX)?;
        requeued.retain_mut(|record| track::due_after_recovery(record, recovered, configured, now));
        tx.put_streams(&requeued)?;
        Ok(requeued.len())
    });
    match requeued {
        Ok(0) => {}
        Ok(count) => {
            metrics.add("vodprobe_probes_due_after_recovery_total", &[], count as f64);
            info!(
                count,
                domains = %recovered.join(", "),
                "probes held back by an outage are due now: a domain that could hold them answers"
            );
        }
        Err(error) => store.report(
            "could not make the probes held back by an outage due (they wait out their back-off)",
            &error,
        ),
    }
}
