//! Delivering lifecycle events to the `[[notify]]` targets (rules in `crate::notify`).
//!
//! Each target has its own task, so a slow or failing receiver holds up only itself, never the
//! pipeline: the events it has not got yet simply wait in `events_v1`, the outbox. The task
//! reads the table after the target's cursor, POSTs the events it wants one at a time, and
//! moves the cursor (kept in the store) only after a 2xx answer: delivery is at least once and
//! in order, across restarts. A failure waits `notify::backoff` of clock time before the
//! next try. Targets are read from the settings in force: a reload adds, changes or stops them.

use super::state::{SettingsCell, StoreSlot};
use crate::config::NotifyConfig;
use crate::fetch::{FetchSettings, Fetcher, Method};
use crate::metrics::{Kind, Metrics};
use crate::notify::{self, BroadcastInfo, Cursor, cursor_state_name};
use crate::record::Status;
use crate::schedule::Clock;
use crate::segments::SegmentState;
use crate::store::{EventFilter, Store, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// How often an idle target looks for new events (real time): the delivery lag when idle.
const POLL: Duration = Duration::from_millis(200);
/// Events read per pass.
const PAGE: usize = 64;

/// What `/healthz` shows of one target.
#[derive(Clone, Debug, Default)]
pub struct TargetHealth {
    pub delivered_through: u64,
    pub backlog: u64,
    pub dropped: u64,
    pub failures_in_row: u32,
    pub last_error: Option<String>,
}

/// Every running target's state, by name.
#[derive(Default)]
pub struct NotifyBook(Mutex<BTreeMap<String, TargetHealth>>);

impl NotifyBook {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, TargetHealth>> {
        // Plain values, consistent at every return point.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn snapshot(&self) -> Vec<(String, TargetHealth)> {
        self.lock()
            .iter()
            .map(|(name, health)| (name.clone(), health.clone()))
            .collect()
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut TargetHealth)) {
        change(self.lock().entry(name.to_string()).or_default());
    }
}

#[derive(Clone)]
pub struct NotifyParts {
    pub settings: Arc<SettingsCell>,
    pub clock: Clock,
    pub store: Arc<StoreSlot>,
    pub metrics: Arc<Metrics>,
    pub book: Arc<NotifyBook>,
}

pub fn describe(metrics: &Metrics) {
    let series = [
        (
            "vodprobe_notify_delivered_total",
            Kind::Counter,
            "Events delivered to each notification target (2xx answers).",
        ),
        (
            "vodprobe_notify_failures_total",
            Kind::Counter,
            "Failed deliveries to each notification target (non-2xx or no answer).",
        ),
        (
            "vodprobe_notify_backlog",
            Kind::Gauge,
            "Events stored after each target's cursor (before its filters).",
        ),
        (
            "vodprobe_notify_dropped_total",
            Kind::Counter,
            "Events a target never got: pruned before delivery or past its max_backlog.",
        ),
    ];
    for (name, kind, help) in series {
        metrics.describe(name, kind, help);
    }
}

/// Gives every configured target without a cursor one at the newest event, so a target hears
/// of what happens from when it was added, not the whole history. Blocking.
pub(super) fn start_cursors(store: &Store, targets: &[NotifyConfig]) -> Result<(), StoreError> {
    let newest = store.event_bounds()?.map_or(0, |(_, newest)| newest);
    for target in targets {
        let name = cursor_state_name(&target.name);
        if store.get_state(&name)?.is_none() {
            save(
                store,
                &target.name,
                Cursor {
                    through: newest,
                    dropped: 0,
                },
            )?;
        }
    }
    Ok(())
}

fn load(store: &Store, target: &str) -> Result<Cursor, StoreError> {
    Ok(store
        .get_state(&cursor_state_name(target))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

fn save(store: &Store, target: &str, cursor: Cursor) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&cursor).unwrap_or_default();
    store.put_state(&cursor_state_name(target), &bytes)
}

/// Starts the targets' cursors (before the pipeline writes anything, so none misses the first
/// events), then keeps one delivery task per configured target until shutdown.
pub async fn run(parts: NotifyParts, tracker: TaskTracker, shutdown: CancellationToken) {
    let mut reloads = parts.settings.subscribe();
    let mut running: HashSet<String> = HashSet::new();
    let running_names = Arc::new(Mutex::new(HashSet::<String>::new()));
    loop {
        let targets = parts.settings.get().config.notify.clone();
        let store = parts.store.get();
        let to_start = targets.clone();
        let started = super::every::blocking("starting notification cursors", move || {
            start_cursors(&store, &to_start)
        })
        .await;
        if let Some(Err(error)) = started {
            parts.store.report("starting notification cursors", &error);
        }
        running.retain(|name| lock(&running_names).contains(name));
        for target in targets {
            if running.insert(target.name.clone()) {
                lock(&running_names).insert(target.name.clone());
                info!(target = %target.name, url = %target.url, "notifications start");
                let (parts, shutdown, names) = (parts.clone(), shutdown.clone(), running_names.clone());
                tracker.spawn(async move {
                    deliver(&parts, &target.name, &shutdown).await;
                    lock(&names).remove(&target.name);
                    parts.book.lock().remove(&target.name);
                });
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = reloads.changed() => if changed.is_err() { return },
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One step of a target's delivery, as the blocking pass reports it.
enum Step {
    /// Nothing left to send now.
    Idle,
    /// Sent or passed over some events; there may be more.
    Progress,
    /// The receiver failed: wait before trying again.
    Failed(String),
}

/// Delivers to the target named `name` until it leaves the configuration or shutdown.
async fn deliver(parts: &NotifyParts, name: &str, shutdown: &CancellationToken) {
    let mut failures: u32 = 0;
    // One client (its connections reused), made again only when `[limits]` change.
    let mut fetcher: Option<Fetcher> = None;
    loop {
        let settings = parts.settings.get();
        let Some(target) = settings.config.notify.iter().find(|t| t.name == name).cloned() else {
            info!(target = %name, "notifications stop: the target left the configuration");
            return;
        };
        let bounds = FetchSettings::from_limits(&settings.config.limits);
        let client = match &fetcher {
            Some(client) if client.settings() == bounds => client.clone(),
            _ => fetcher.insert(Fetcher::new(bounds)).clone(),
        };
        let (store, job_parts) = (parts.store.get(), parts.clone());
        let step = super::every::blocking("a notification", move || {
            pass(&job_parts, &store, &target, &client)
        })
        .await
        .unwrap_or(Step::Idle);
        let wait = match step {
            Step::Progress => {
                failures = 0;
                continue;
            }
            Step::Idle => {
                failures = 0;
                POLL
            }
            Step::Failed(error) => {
                failures += 1;
                let wait = notify::backoff(failures);
                parts
                    .metrics
                    .inc("vodprobe_notify_failures_total", &[("target", name)]);
                parts.book.update(name, |health| {
                    health.failures_in_row = failures;
                    health.last_error = Some(error.clone());
                });
                if failures >= notify::FAILING_AFTER {
                    warn!(target = %name, failures, %error, retry_in = ?wait, "notification target keeps failing");
                } else {
                    info!(target = %name, %error, retry_in = ?wait, "notification failed; retrying");
                }
                parts.clock.real(wait)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Reads the target's next events after its cursor and sends them one at a time, stopping at
/// the first failure. Blocking.
fn pass(parts: &NotifyParts, store: &Store, target: &NotifyConfig, fetcher: &Fetcher) -> Step {
    let name = target.name.as_str();
    let labels = [("target", name)];
    let mut cursor = match load(store, name) {
        Ok(cursor) => cursor,
        Err(error) => return Step::Failed(format!("reading the cursor: {error}")),
    };
    let bounds = match store.event_bounds() {
        Ok(bounds) => bounds,
        Err(error) => return Step::Failed(format!("reading the events: {error}")),
    };
    let Some((oldest, newest)) = bounds else {
        return Step::Idle;
    };
    let skipped = cursor.skip_ahead(oldest, newest, target.max_backlog);
    if skipped > 0 {
        warn!(target = %name, dropped = skipped, "notification backlog past its bound or pruned: events dropped");
        parts
            .metrics
            .add("vodprobe_notify_dropped_total", &labels, skipped as f64);
        if let Err(error) = save(store, name, cursor) {
            return Step::Failed(format!("saving the cursor: {error}"));
        }
    }
    let backlog = newest.saturating_sub(cursor.through);
    parts
        .metrics
        .set("vodprobe_notify_backlog", &labels, backlog as f64);
    parts.book.update(name, |health| {
        health.delivered_through = cursor.through;
        health.backlog = backlog;
        health.dropped = cursor.dropped;
    });
    if backlog == 0 {
        return Step::Idle;
    }
    let filter = EventFilter {
        ascending: true,
        after: Some(cursor.through),
        ..EventFilter::default()
    };
    let page = match store.events(&filter, PAGE) {
        Ok(page) => page,
        Err(error) => return Step::Failed(format!("reading the events: {error}")),
    };
    if page.events.is_empty() {
        return Step::Idle;
    }
    let last = page.events.last().map_or(0, |(seq, _)| *seq);
    for (seq, event) in page.events {
        let record = store.get_stream(event.stream).ok().flatten();
        let delivered = notify::admits(target, &event, record.as_ref().map(|r| r.login.as_str()));
        if delivered {
            let gone = store
                .segment_status(event.stream)
                .ok()
                .flatten()
                .is_some_and(|status| status.state == Some(SegmentState::Gone));
            let broadcast = record
                .as_ref()
                .map(|record| BroadcastInfo::new(record, record.status == Status::Found && !gone));
            let (kind, detail) = (event.kind.as_str(), event.detail.clone());
            let item = crate::api::EventItem::new(seq, event, record.clone());
            let request = notify::request(target, &item, kind, &detail, broadcast.as_ref());
            match fetcher.send(Method::Post, &target.url, &request.headers, Some(&request.body)) {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    parts.metrics.inc("vodprobe_notify_delivered_total", &labels);
                }
                Ok(answer) => return Step::Failed(format!("event {seq}: answered {}", answer.status)),
                Err(error) => return Step::Failed(format!("event {seq}: {error}")),
            }
        }
        cursor.through = seq;
        // Saved after each delivery, so a crash repeats at most the one in flight; events
        // passed over are saved with the next delivery or at the end of the page.
        if delivered || seq == last {
            if let Err(error) = save(store, name, cursor) {
                return Step::Failed(format!("saving the cursor: {error}"));
            }
        }
        parts.book.update(name, |health| {
            health.delivered_through = seq;
            health.backlog = newest.saturating_sub(seq);
            health.failures_in_row = 0;
            health.last_error = None;
        });
    }
    Step::Progress
}
