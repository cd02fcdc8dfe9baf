//! Upkeep jobs: domain health checks, pruning past retention, the last day's counts,
//! scheduled compaction, the background playlist conversion of older files, and the status
//! line. Each is an edge over one store or CDN operation: it logs what happened and what to do.

use super::every::blocking;
use super::probing::requeue_after_recovery;
use super::state::{Activity, Domains, Settings, SettingsCell, StoreSlot};
use crate::budget::Budget;
use crate::metrics::{Kind, Metrics};
use crate::schedule::Clock;
use crate::search::check_domains;
use crate::store::{PackingStep, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// `state_v1` entry holding the domain book.
pub const BOOK_STATE: &str = "domain_book";
/// Unused bytes below which a scheduled compaction is skipped (unless `compact_waste` is 0).
const COMPACT_MIN_UNUSED: u64 = 16 << 20;
/// Playlists per transaction when an older file's playlists are converted.
const PACKING_BATCH: usize = 500;

/// What the upkeep jobs use of the appliance.
#[derive(Clone)]
pub struct Upkeep {
    pub settings: Arc<SettingsCell>,
    pub clock: Clock,
    pub store: Arc<StoreSlot>,
    pub budget: Arc<Budget>,
    pub domains: Arc<Domains>,
    pub activity: Arc<Activity>,
    pub metrics: Arc<Metrics>,
    /// The notification targets' delivery state, for `/healthz`.
    pub notify: Arc<super::notify::NotifyBook>,
    /// The status page's day of history.
    pub status: Arc<super::status::StatusLog>,
}

/// Declares the upkeep jobs' series once, at start-up.
pub fn describe(metrics: &Metrics) {
    let series = [
        (
            "vodprobe_store_unused_ratio",
            Kind::Gauge,
            "Share of the database file a compaction would give back (measured at each \
             scheduled compaction check).",
        ),
        (
            "vodprobe_compactions_total",
            Kind::Counter,
            "Scheduled compactions, by result (done, skipped, failed).",
        ),
        (
            "vodprobe_compaction_seconds",
            Kind::Gauge,
            "Duration of the last finished compaction.",
        ),
    ];
    for (name, kind, help) in series {
        metrics.describe(name, kind, help);
    }
}

impl Upkeep {
    /// Asks every domain once and records which are down.
    pub async fn check_health(&self) {
        let settings = self.settings.get();
        let budget = self.budget.clone();
        let checked_under = settings.clone();
        let Some(results) = blocking("the domain health check", move || {
            check_domains(&settings.config, &settings.fetcher, &budget)
        })
        .await
        else {
            return;
        };
        let now = self.clock.now();
        let mut down = Vec::new();
        let mut recovered = Vec::new();
        for result in results.iter().filter(|r| r.enabled) {
            if result.ok {
                if self.domains.record_success(&result.domain_url, now) {
                    recovered.push(result.domain_url.clone());
                }
            } else {
                self.domains.record_failure(&result.domain_url, &result.detail);
                down.push(format!("{} ({})", result.domain_url, result.detail));
            }
        }
        if down.is_empty() {
            debug!("every domain is healthy");
        } else {
            warn!(
                "domains down: {}; probes skip them until they answer again",
                down.join(", ")
            );
        }
        // Before the book is saved: a restart before the probes are due again still finds these
        // domains down and makes them due at their next answer.
        if !recovered.is_empty() {
            self.requeue_after_recovery(checked_under, recovered, now).await;
        }
        self.save_book().await;
    }

    /// Makes the probes an outage held back due now that `recovered` answer again (see
    /// [`requeue_after_recovery`]).
    pub async fn requeue_after_recovery(&self, settings: Arc<Settings>, recovered: Vec<String>, now: i64) {
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        blocking("making held-back probes due", move || {
            requeue_after_recovery(&store, &settings, &metrics, &recovered, now)
        })
        .await;
    }

    /// Keeps the domain book across restarts.
    pub async fn save_book(&self) {
        let Some(bytes) = self.domains.to_json() else {
            return;
        };
        let store = self.store.clone();
        let saved = blocking("saving domain statistics", move || {
            store.get().put_state(BOOK_STATE, &bytes)
        })
        .await;
        if let Some(Err(error)) = saved {
            warn!("could not save domain statistics: {error}");
        }
    }

    /// Deletes records past retention.
    pub async fn prune(&self) {
        let settings = self.settings.get();
        let now = self.clock.now();
        let cutoff = now - settings.config.pipeline.retention.as_secs() as i64;
        // A followed channel's own retention replaces the common one for its broadcasts.
        let own: std::collections::HashMap<u64, i64> = settings
            .rules
            .selection
            .retention
            .iter()
            .map(|(id, retention)| (*id, now - retention.as_secs() as i64))
            .collect();
        let deleted = self
            .store
            .job("prune failed", move |store| store.prune_with(cutoff, &own, 1000))
            .await;
        if let Some(deleted @ 1..) = deleted {
            info!(deleted, "pruned records past retention");
        }
    }

    /// Recomputes the last day's counts for the API.
    pub async fn refresh_counts(&self) {
        let now = self.clock.now();
        let counts = self
            .store
            .job("could not count the last day's broadcasts", move |store| {
                store.counts_since(now - 86_400)
            })
            .await;
        if let Some(counts) = counts {
            self.activity.set_counts(counts, now);
        }
    }

    /// Rewrites the database compactly when enough of it is unused (`limits.compact_waste`).
    /// Reads and writes go on meanwhile; shutdown stops the copy and leaves the file as it was.
    pub async fn compact(&self, shutdown: &CancellationToken) {
        let threshold = self.settings.get().config.limits.compact_waste;
        let store = self.store.clone();
        let occupancy = match blocking("the compaction check", move || store.get().occupancy()).await {
            Some(Ok(occupancy)) => occupancy,
            Some(Err(error)) => {
                warn!("compaction check failed: {error}");
                return;
            }
            None => return,
        };
        let waste = occupancy.waste();
        let metrics = &self.metrics;
        metrics.set("vodprobe_store_unused_ratio", &[], waste);
        let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
        // A small file's unused share is mostly redb's fixed overhead: not worth a copy.
        let unused = occupancy.disk_bytes.saturating_sub(occupancy.live_bytes);
        if threshold >= 1.0 || waste < threshold || (threshold > 0.0 && unused < COMPACT_MIN_UNUSED) {
            debug!(
                unused_percent = waste * 100.0,
                threshold_percent = threshold * 100.0,
                "no compaction needed"
            );
            return;
        }
        info!(
            unused_percent = (waste * 1000.0).round() / 10.0,
            mib_on_disk = mib(occupancy.disk_bytes),
            "compacting the database (limits.compact_waste = {threshold}); reads and writes go on meanwhile"
        );
        let started = Instant::now();
        let store = self.store.clone();
        let stop = shutdown.clone();
        let result = blocking("the compaction", move || {
            store.get().compact_online(&mut |_, _, _| !stop.is_cancelled())
        })
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match result {
            Some(Ok(done)) => {
                info!(
                    mib_before = mib(done.bytes_before),
                    mib_after = mib(done.bytes_after),
                    seconds,
                    rewritten_during = done.caught_up,
                    writes_paused_ms = done.writes_paused.as_millis() as u64,
                    "database compacted"
                );
                metrics.set("vodprobe_compaction_seconds", &[], seconds);
                metrics.set("vodprobe_store_bytes", &[], done.bytes_after as f64);
                "done"
            }
            Some(Err(error)) if error.is_refusal() => {
                warn!("compaction did not run: {error}; the next scheduled run tries again");
                "skipped"
            }
            Some(Err(error)) => {
                error!("compaction failed: {error}; the database in use is unchanged");
                "failed"
            }
            None => "failed",
        };
        metrics.inc("vodprobe_compactions_total", &[("result", outcome)]);
    }

    /// Converts the zstd playlists of a file from before schema 3 to the structural encoding,
    /// a batch at a time between the pipeline's own writes. Reads work throughout; a restart
    /// resumes.
    pub async fn pack_playlists(&self, shutdown: &CancellationToken) {
        let started = Instant::now();
        let mut total = PackingStep::default();
        let mut last_report = Instant::now();
        while !shutdown.is_cancelled() {
            let store = self.store.clone();
            let step = blocking("the playlist conversion", move || {
                store.get().pack_playlists(PACKING_BATCH)
            })
            .await;
            let step = match step {
                Some(Ok(step)) => step,
                Some(Err(error)) => {
                    self.store
                        .report("playlist conversion failed (retrying in a minute)", &error);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    }
                    continue;
                }
                // It resumes at the next start.
                None => return,
            };
            if total.examined == 0 && !step.done {
                info!(
                    "converting archived playlists to the compact encoding in the background; \
                     everything stays readable meanwhile and a restart resumes it"
                );
            }
            total.examined += step.examined;
            total.converted += step.converted;
            total.bytes_before += step.bytes_before;
            total.bytes_after += step.bytes_after;
            if (step.done || last_report.elapsed() > Duration::from_secs(30)) && total.examined > 0 {
                last_report = Instant::now();
                info!(
                    examined = total.examined,
                    converted = total.converted,
                    mib_before = total.bytes_before as f64 / 1_048_576.0,
                    mib_after = total.bytes_after as f64 / 1_048_576.0,
                    seconds = started.elapsed().as_secs(),
                    "{}",
                    if step.done {
                        "playlist conversion finished"
                    } else {
                        "playlist conversion"
                    }
                );
            }
            if step.done {
                return;
            }
            // Leave room for the pipeline's writes (redb runs one write transaction at a time).
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A status line every minute of real time: what the appliance is doing, at a glance.
    pub async fn report_status(&self, shutdown: &CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            let store = self.store.clone();
            let counts = blocking("the status line", move || {
                let store = store.get();
                Ok::<_, StoreError>((store.count_streams()?, store.queue_len()?, store.live()?.len()))
            })
            .await;
            if let Some(Ok((records, queue, live))) = counts {
                let metrics = &self.metrics;
                let probes: f64 = ["found", "missed", "inconclusive", "deferred"]
                    .iter()
                    .map(|outcome| metrics.value("vodprobe_probes_total", &[("outcome", outcome)]))
                    .sum();
                info!(
                    records,
                    live,
                    queue,
                    pages = metrics.value("vodprobe_listing_pages_total", &[]) as u64,
                    probes = probes as u64,
                    found = metrics.value("vodprobe_probes_total", &[("outcome", "found")]) as u64,
                    cdn_requests = self.budget.taken(),
                    "status"
                );
            }
        }
    }
}
