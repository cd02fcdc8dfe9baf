//! The appliance: wiring of the pipeline's loops, their schedules, and graceful shutdown.
//!
//! Four loops run on cron schedules read from the config, against an injected [`Clock`]:
//! discover (page the live listing, upsert sightings, end unseen streams), probe (run the due
//! probes under the request budget, most viewed first), health (check every domain) and prune
//! (delete records past retention). Each is an edge: it logs what happened and decides what to
//! do about failures; the rules it applies live in `track` and `probe`, the I/O in `store`,
//! `discover` and `fetch`. Blocking work (redb, ureq) runs on `spawn_blocking`, never on the
//! async threads. A panic in one job is caught by its task and logged; the loop carries on.
//!
//! Durability: every state change is committed before it is acted on. A probe is chosen from
//! the store's due queue and the record leaves the queue only when its outcome is written, so a
//! probe in flight when the process dies is simply due again after restart (at least once). The
//! request budget starts one interval after start-up, so restarts cannot flood the CDN.

mod backend;
mod reconfigure;

use crate::api;
use crate::budget::Budget;
use crate::config::{Config, CronSchedule, ScheduleConfig, SourceConfig};
use crate::discover::{DiscoverError, Source};
use crate::fetch::{FetchSettings, Fetcher};
use crate::lookup::{Steer, check_domains, check_qualities};
use crate::metrics::Metrics;
use crate::probe::{DomainBook, ProbeReport, VideoFacts, from_videos, probe};
use crate::record::{Sighting, Status, StreamKey, StreamRecord};
use crate::schedule::{Clock, next_run};
use crate::store::{Counts, OpenError, PackingStep, Store, StoreError};
use crate::track::{self, ProbeResult, Rules};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

/// Searches running at once; they share the budget, so this bounds threads, not requests.
const MAX_SEARCHES: usize = 8;
/// How long shutdown waits for in-flight work before handing it back (it stays due).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
const BOOK_STATE: &str = "domain_book";
const DATABASE_FILE: &str = "vodprobe.redb";

/// Where `config`'s database lives.
pub fn database_path(config: &Config) -> PathBuf {
    config.data_dir.join(DATABASE_FILE)
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("opening the database panicked: {0}")]
    OpenPanicked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source} (another program uses the port? change api.listen)")]
    Listen { address: String, source: std::io::Error },
}

/// Counters for logs and, later, metrics.
#[derive(Default)]
pub struct Stats {
    pub pages: AtomicU64,
    pub sightings: AtomicU64,
    pub passes: AtomicU64,
    pub probes: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub inconclusive: AtomicU64,
    pub deferred: AtomicU64,
    pub probe_requests: AtomicU64,
}

/// The settings in force. A reload swaps the whole value; work holds the `Arc` it started
/// with, so a probe or a request finishes under the settings it began with.
pub struct Settings {
    pub config: Config,
    pub rules: Rules,
    pub fetcher: Fetcher,
}

impl Settings {
    fn new(config: Config) -> Settings {
        Settings {
            fetcher: Fetcher::new(FetchSettings::from_limits(&config.limits)),
            rules: Rules::from_config(&config),
            config,
        }
    }
}

/// What every loop shares.
pub struct Shared {
    settings: RwLock<Arc<Settings>>,
    /// Bumped by every applied reload; loops waiting on a schedule look again.
    generation: tokio::sync::watch::Sender<u64>,
    config_state: Mutex<reconfigure::ConfigState>,
    pub clock: Clock,
    store: RwLock<Arc<Store>>,
    pub budget: Budget,
    /// The listing API for video lookups: its own client, so lookups never wait on the crawl.
    videos: Mutex<Source>,
    book: Mutex<DomainBook>,
    /// Serialises read-modify-write of records between the discover and probe loops.
    records: Mutex<()>,
    in_flight: Mutex<HashSet<StreamKey>>,
    /// A background quality check is running (at most one: it only uses spare budget).
    quality_in_flight: AtomicBool,
    pub stats: Stats,
    pub metrics: Arc<Metrics>,
    /// Unix seconds (appliance clock) of the last stored page and the last stored probe outcome.
    last_page: AtomicI64,
    last_probe: AtomicI64,
    /// The live listing's last failure, until it answers again.
    listing_error: Mutex<Option<String>>,
    /// The store's last failure, until a write succeeds again.
    store_error: Mutex<Option<String>>,
    /// The last day's counts for the API, refreshed on `schedule.counts`.
    counts: Mutex<Option<(Counts, i64)>>,
    lookups: Mutex<backend::Lookups>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent at every await/return point, so a panic elsewhere
    // while holding the lock does not make them unusable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn store(&self) -> Arc<Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After an I/O error redb refuses further writes on a handle: open the file again.
    fn recover_store(&self, error: &StoreError) {
        *lock(&self.store_error) = Some(error.to_string());
        if !error.needs_reopen() {
            return;
        }
        let current = self.store();
        match current.reopen() {
            Ok(fresh) => {
                *self.store.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
                warn!("database reopened after an I/O error ({error}); nothing committed was lost");
            }
            Err(reopen_error) => error!(
                "database could not be reopened after an I/O error ({error}): {reopen_error}; \
                 free disk space or check the data directory"
            ),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// Opens the store and runs every loop until `shutdown` is cancelled. With `follow`, edits to
/// that config file (and the `probes/` beside it) are applied while running.
pub async fn run(
    config: Config,
    clock: Clock,
    shutdown: CancellationToken,
    follow: Option<PathBuf>,
) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| DaemonError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let path = database_path(&config);
    let cache = config.limits.cache_bytes;
    let store = tokio::task::spawn_blocking(move || Store::open(&path, cache))
        .await
        .map_err(|join| DaemonError::OpenPanicked(join.to_string()))??;
    let book = store
        .get_state(BOOK_STATE)?
        .and_then(|bytes| serde_json::from_slice::<DomainBook>(&bytes).ok())
        .unwrap_or_default();
    info!(
        path = %store.path().display(),
        records = store.count_streams()?,
        queue = store.queue_len()?,
        "database open"
    );
    let server_settings = api::ServerSettings::from_config(&config.api);
    let (server_tx, server_rx) = tokio::sync::watch::channel(server_settings);
    let shared = Arc::new(Shared {
        budget: Budget::new(config.limits.requests_per_second),
        videos: Mutex::new(Source::new(&config.source)),
        config_state: Mutex::new(reconfigure::ConfigState::new(server_tx)),
        settings: RwLock::new(Arc::new(Settings::new(config))),
        generation: tokio::sync::watch::channel(0).0,
        clock,
        store: RwLock::new(Arc::new(store)),
        book: Mutex::new(book),
        records: Mutex::new(()),
        in_flight: Mutex::new(HashSet::new()),
        quality_in_flight: AtomicBool::new(false),
        stats: Stats::default(),
        metrics: Arc::new(Metrics::new()),
        last_page: AtomicI64::new(0),
        last_probe: AtomicI64::new(0),
        listing_error: Mutex::new(None),
        store_error: Mutex::new(None),
        counts: Mutex::new(None),
        lookups: Mutex::new(backend::Lookups::default()),
    });
    backend::describe(&shared.metrics);
    reconfigure::describe(&shared.metrics);
    let settings = shared.settings();
    let config = &settings.config;
    info!(
        source = config.source.kind.name(),
        domains = config.domains.iter().filter(|d| d.enabled).count(),
        requests_per_second = config.limits.requests_per_second,
        "vodprobe serve started"
    );
    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            address: config.api.listen.to_string(),
            source,
        })?;
    let address = listener
        .local_addr()
        .map_or_else(|_| config.api.listen.to_string(), |a| a.to_string());
    info!("API listening on http://{address}/ (try /api/v1/vods, /healthz, /metrics)");
    drop(settings);
    let tracker = TaskTracker::new();
    let api_backend: Arc<dyn api::Backend> = Arc::new(backend::ApiBackend(shared.clone()));
    let api_done = CancellationToken::new();
    let api_task = tokio::spawn({
        let api_done = api_done.clone();
        async move { api::serve(listener, api_backend, server_rx, api_done).await }
    });
    backend::refresh_counts(shared.clone()).await;
    tracker.spawn(every(
        shared.clone(),
        |s| &s.counts,
        shutdown.clone(),
        backend::refresh_counts,
    ));
    tracker.spawn(discover_loop(shared.clone(), shutdown.clone()));
    let probe_tracker = tracker.clone();
    let probe_shutdown = shutdown.clone();
    tracker.spawn(every(
        shared.clone(),
        |s| &s.probe,
        shutdown.clone(),
        move |shared| start_due_probes(shared, probe_tracker.clone(), probe_shutdown.clone()),
    ));
    tracker.spawn(every(
        shared.clone(),
        |s| &s.health,
        shutdown.clone(),
        check_health,
    ));
    tracker.spawn(every(shared.clone(), |s| &s.prune, shutdown.clone(), prune));
    let compact_shutdown = shutdown.clone();
    tracker.spawn(every(
        shared.clone(),
        |s| &s.compact,
        shutdown.clone(),
        move |shared| compact(shared, compact_shutdown.clone()),
    ));
    tracker.spawn(report_status(shared.clone(), shutdown.clone()));
    tracker.spawn(pack_playlists(shared.clone(), shutdown.clone()));
    if let Some(file) = follow {
        tracker.spawn(reconfigure::follow(shared.clone(), file, shutdown.clone()));
    }
    shutdown.cancelled().await;
    info!(
        "shutting down: finishing in-flight work (at most {}s)",
        SHUTDOWN_GRACE.as_secs()
    );
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!("in-flight probes did not finish in time; they stay due and run after the next start");
    }
    save_book(&shared).await;
    // The API answers until the pipeline has stopped, then finishes its requests.
    api_done.cancel();
    let _ = api_task.await;
    info!("stopped");
    Ok(())
}

/// Picks one job's schedule out of the settings in force.
type Pick = fn(&ScheduleConfig) -> &CronSchedule;

/// Waits for the next run of the schedule `pick` names in the settings in force; `false` on
/// shutdown. Runs missed while the job was busy are coalesced: the next run is counted from
/// now. A reload makes it look again, so a changed schedule applies at once.
async fn wait_for_next_run(shared: &Shared, pick: Pick, shutdown: &CancellationToken) -> bool {
    let mut reloads = shared.generation.subscribe();
    loop {
        let schedule = pick(&shared.settings().config.schedule).clone();
        let wait = match next_run(&schedule.schedule, shared.clock.now_ms()) {
            Some(next) => shared.clock.real_until(next),
            None => {
                warn!(
                    schedule = %schedule.text,
                    "the schedule has no future run; the job waits for a new one in config.toml"
                );
                Duration::MAX
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(wait.min(Duration::from_secs(86_400 * 365))) => return true,
            changed = reloads.changed() => {
                if changed.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Runs `job` at every run of the schedule `pick` names until shutdown.
async fn every<F, Fut>(shared: Arc<Shared>, pick: Pick, shutdown: CancellationToken, mut job: F)
where
    F: FnMut(Arc<Shared>) -> Fut,
    Fut: Future<Output = ()>,
{
    while wait_for_next_run(&shared, pick, &shutdown).await {
        job(shared.clone()).await;
    }
}

async fn discover_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut crawl = Crawl::new(&shared.settings().config);
    while wait_for_next_run(&shared, |s| &s.discover, &shutdown).await {
        crawl.tick(&shared).await;
    }
}

/// Runs blocking work off the async threads; a panic becomes an error message.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| format!("task failed: {join}"))
}

/// The crawler's position in the listing, kept between ticks.
struct Crawl {
    source: Arc<Mutex<Source>>,
    /// What `source` was built from: a reload that changes it restarts the crawl.
    source_config: SourceConfig,
    cursor: Option<String>,
    /// Clock time the current pass started from the top.
    pass_started: Option<i64>,
    pages_in_pass: u64,
    last_tick: Option<Instant>,
    paused_until: Option<Instant>,
    /// Listing failures in a row: the pause doubles with each (5 s up to 5 minutes).
    failures: u32,
}

impl Crawl {
    fn new(config: &Config) -> Crawl {
        Crawl {
            source: Arc::new(Mutex::new(Source::new(&config.source))),
            source_config: config.source.clone(),
            cursor: None,
            pass_started: None,
            pages_in_pass: 0,
            last_tick: None,
            paused_until: None,
            failures: 0,
        }
    }

    /// Fetches the pages this tick's share of `pages_per_second` allows, continuing the pass.
    async fn tick(&mut self, shared: &Arc<Shared>) {
        let settings = shared.settings();
        if settings.config.source != self.source_config {
            info!(
                source = settings.config.source.kind.name(),
                "live listing settings changed: the crawl starts again from the top"
            );
            *self = Crawl::new(&settings.config);
        }
        let now_real = Instant::now();
        if self.paused_until.is_some_and(|until| until > now_real) {
            return;
        }
        let rate = settings.config.source.pages_per_second;
        let since = self
            .last_tick
            .map_or(Duration::from_secs(1), |t| now_real.duration_since(t));
        self.last_tick = Some(now_real);
        let pages = (rate * since.as_secs_f64()).round().clamp(1.0, 30.0) as usize;
        for page_index in 0..pages {
            if page_index > 0 {
                tokio::time::sleep(Duration::from_secs_f64(1.0 / rate)).await;
            }
            if !self.fetch_one(shared, &settings).await {
                break;
            }
        }
    }

    /// One page; `false` when the tick should stop (pass finished or an error).
    async fn fetch_one(&mut self, shared: &Arc<Shared>, settings: &Settings) -> bool {
        let now = shared.now();
        let pass_started = *self.pass_started.get_or_insert(now);
        let restart_every = settings.config.source.restart_every.as_secs() as i64;
        if self.cursor.is_some() && now - pass_started >= restart_every {
            debug!(
                pages = self.pages_in_pass,
                "restarting the crawl from the top (restart_every)"
            );
            self.finish_pass(shared, pass_started, false).await;
            return false;
        }
        let source = self.source.clone();
        let fetcher = settings.fetcher.clone();
        let cursor = self.cursor.clone();
        let page = blocking(move || lock(&source).page(&fetcher, cursor.as_deref())).await;
        let page = match page {
            Ok(Ok(page)) => page,
            Ok(Err(error)) => {
                let kind = [("kind", error.kind())];
                shared.metrics.inc("vodprobe_listing_errors_total", &kind);
                *lock(&shared.listing_error) = Some(error.to_string());
                self.failures = self.failures.saturating_add(1);
                let backoff = Duration::from_secs((5u64 << (self.failures - 1).min(6)).min(300));
                let pause = match &error {
                    DiscoverError::RateLimited { retry_after } => *retry_after,
                    _ => backoff,
                };
                warn!(
                    "live listing failed: {error}; restarting from the top in {}s \
                     (streams stay tracked meanwhile)",
                    pause.as_secs()
                );
                self.paused_until = Some(Instant::now() + shared.clock.real(pause).min(pause));
                self.cursor = None;
                self.pass_started = None;
                self.pages_in_pass = 0;
                return false;
            }
            Err(message) => {
                error!("live listing task failed: {message}");
                return false;
            }
        };
        if self.failures > 0 {
            info!(after = self.failures, "live listing answers again");
            self.failures = 0;
        }
        *lock(&shared.listing_error) = None;
        shared.last_page.store(shared.now(), Ordering::Relaxed);
        if page.skipped > 0 {
            warn!(
                skipped = page.skipped,
                "listing entries left out: {}",
                page.first_skip.as_deref().unwrap_or("malformed")
            );
        }
        self.pages_in_pass += 1;
        shared.stats.pages.fetch_add(1, Ordering::Relaxed);
        let floor = settings.config.source.min_viewers_observe;
        let reached_floor = page.sightings.last().is_none_or(|s| s.viewers < floor);
        let sightings: Vec<Sighting> = page
            .sightings
            .into_iter()
            .filter(|s| s.viewers >= floor)
            .collect();
        shared
            .stats
            .sightings
            .fetch_add(sightings.len() as u64, Ordering::Relaxed);
        if !sightings.is_empty() {
            let shared_for_write = shared.clone();
            let written = blocking(move || apply_page(&shared_for_write, &sightings, now)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    error!("could not store a page of sightings: {error}");
                    shared.recover_store(&error);
                }
                Err(message) => error!("storing sightings failed: {message}"),
            }
        }
        if reached_floor || page.next_cursor.is_none() {
            self.finish_pass(shared, pass_started, true).await;
            return false;
        }
        self.cursor = page.next_cursor;
        true
    }

    /// A pass reached the viewer floor (`complete`) or was cut by `restart_every`: streams not
    /// seen since `ended_after` before the pass began have ended, and after a complete pass,
    /// streams it did not show are probed early. Nothing is ended while the listing fails,
    /// because then no pass finishes.
    async fn finish_pass(&mut self, shared: &Arc<Shared>, pass_started: i64, complete: bool) {
        shared.stats.passes.fetch_add(1, Ordering::Relaxed);
        debug!(pages = self.pages_in_pass, "crawl pass finished");
        self.cursor = None;
        self.pass_started = None;
        self.pages_in_pass = 0;
        let shared = shared.clone();
        let result = blocking(move || end_unseen(&shared, pass_started, complete)).await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(ended)) => debug!(ended, "streams ended"),
            Ok(Err(error)) => error!("could not end unseen streams: {error}"),
            Err(message) => error!("ending unseen streams failed: {message}"),
        }
    }
}

fn apply_page(shared: &Shared, sightings: &[Sighting], now: i64) -> Result<(), StoreError> {
    let store = shared.store();
    let _records = lock(&shared.records);
    let keys: Vec<StreamKey> = sightings.iter().map(|s| (s.started_at, s.stream_id)).collect();
    let known: HashMap<StreamKey, StreamRecord> = store
        .get_streams(&keys)?
        .into_iter()
        .flatten()
        .map(|r| (r.key(), r))
        .collect();
    let mut live_of_streamer = HashMap::new();
    for sighting in sightings {
        if live_of_streamer.contains_key(&sighting.streamer_id) {
            continue;
        }
        if let Some(latest) = store.latest_of_streamer(sighting.streamer_id, None)?
            && latest.status == Status::Live
        {
            live_of_streamer.insert(sighting.streamer_id, latest);
        }
    }
    let rules = &shared.settings().rules;
    let update = track::apply_sightings(sightings, &known, &live_of_streamer, now, rules);
    store.apply(&update.write, &update.delete)
}

fn end_unseen(shared: &Shared, pass_started: i64, complete: bool) -> Result<usize, StoreError> {
    let store = shared.store();
    let _records = lock(&shared.records);
    let live = store.live()?;
    let now = shared.now();
    let settings = shared.settings();
    let mut update = track::end_unseen(&live, pass_started.min(now), &settings.rules);
    if complete {
        let ended: HashSet<StreamKey> = update
            .write
            .iter()
            .map(StreamRecord::key)
            .chain(update.delete.iter().copied())
            .collect();
        let still_live: Vec<StreamRecord> = live.into_iter().filter(|r| !ended.contains(&r.key())).collect();
        update.write.extend(track::absent_after_pass(
            &still_live,
            pass_started,
            now,
            &settings.rules,
        ));
    }
    let ended = update.write.len() + update.delete.len();
    for record in &update.write {
        debug!(login = %record.login, stream_id = record.stream_id, "stream ended");
    }
    store.apply(&update.write, &update.delete)?;
    Ok(ended)
}

/// Starts searches for due records, most viewed first, up to `MAX_SEARCHES` at once.
async fn start_due_probes(shared: Arc<Shared>, tracker: TaskTracker, shutdown: CancellationToken) {
    bound_queue(&shared).await;
    let free = MAX_SEARCHES.saturating_sub(lock(&shared.in_flight).len());
    if free == 0 || shutdown.is_cancelled() {
        return;
    }
    let now = shared.now();
    let shared_for_read = shared.clone();
    let due = blocking(move || shared_for_read.store().due(now, MAX_SEARCHES * 8)).await;
    let mut due = match due {
        Ok(Ok(due)) => due,
        Ok(Err(error)) => {
            error!("could not read the probe queue: {error}");
            shared.recover_store(&error);
            return;
        }
        Err(message) => {
            error!("reading the probe queue failed: {message}");
            return;
        }
    };
    due.sort_by(|a, b| b.max_viewers.cmp(&a.max_viewers).then(a.key().cmp(&b.key())));
    if due.is_empty() {
        // Nothing is due: spare budget goes to checking captured broadcasts' other qualities.
        start_quality_check(&shared, &tracker, &shutdown);
        return;
    }
    let mut started = 0;
    for record in due {
        if started == free {
            break;
        }
        if !lock(&shared.in_flight).insert(record.key()) {
            continue;
        }
        started += 1;
        let shared = shared.clone();
        let shutdown_for_probe = shutdown.clone();
        tracker.spawn(async move {
            let key = record.key();
            let worker = shared.clone();
            let stop = shutdown_for_probe.clone();
            if let Err(message) = blocking(move || probe_one(&worker, record, &stop)).await {
                error!(stream = ?key, "probe failed: {message}; it stays due");
            }
            lock(&shared.in_flight).remove(&key);
        });
    }
}

/// How many of the most viewed queued captures a quality check considers, skipping those on
/// domains that are down.
const QUALITY_CANDIDATES: usize = 16;

/// Starts one background quality check if none is running and a capture waits for one.
fn start_quality_check(shared: &Arc<Shared>, tracker: &TaskTracker, shutdown: &CancellationToken) {
    if shared.quality_in_flight.swap(true, Ordering::AcqRel) {
        return;
    }
    let shared = shared.clone();
    let shutdown = shutdown.clone();
    tracker.spawn(async move {
        let worker = shared.clone();
        if let Err(message) = blocking(move || check_next_qualities(&worker, &shutdown)).await {
            error!("quality check failed: {message}; it stays queued");
        }
        shared.quality_in_flight.store(false, Ordering::Release);
    });
}

/// Checks the most viewed queued capture's other quality folders and records what exists.
/// Blocking. An unfinished check (a domain failure, shutdown) leaves it queued for later.
fn check_next_qualities(shared: &Shared, shutdown: &CancellationToken) {
    let store = shared.store();
    let next = store.quality_queue(QUALITY_CANDIDATES).and_then(|keys| {
        // The most viewed whose domain is not down: one unreachable domain must not hold up
        // the captures on every other.
        let book = lock(&shared.book).clone();
        let settings = shared.settings();
        let configured = |url: &str| settings.config.domains.iter().any(|d| d.url == url);
        for key in keys {
            match store.get_stream(key)? {
                Some(record) => match record.archive {
                    // Its domain was removed from the configuration: it can never be checked;
                    // it keeps what the archive says and leaves the queue.
                    Some(archive) if !configured(&archive.domain) => {
                        store.set_qualities(key, &archive.qualities)?
                    }
                    Some(archive) if book.is_down(&archive.domain) => continue,
                    Some(archive) => return Ok(Some((key, archive))),
                    // No longer archived: nothing to check.
                    None => store.set_qualities(key, &[])?,
                },
                None => store.set_qualities(key, &[])?,
            }
        }
        Ok(None)
    });
    let (key, archive) = match next {
        Ok(Some(next)) => next,
        Ok(None) => return,
        Err(error) => {
            error!("could not read the quality queue: {error}");
            shared.recover_store(&error);
            return;
        }
    };
    let settings = shared.settings();
    let check = check_qualities(
        &settings.config,
        &settings.fetcher,
        &shared.budget,
        &archive.domain,
        &archive.url,
        &Steering::new(shared, shutdown),
    );
    shared
        .metrics
        .add("vodprobe_quality_requests_total", &[], check.requests as f64);
    let qualities = match &check.unfinished {
        // Keep what the archive says and leave the queue.
        Some(reason) if check.impossible => {
            debug!(stream = ?key, "quality check impossible: {reason}");
            archive.qualities
        }
        Some(reason) => {
            debug!(stream = ?key, "quality check unfinished: {reason}; it stays queued");
            return;
        }
        None => check.qualities,
    };
    let _records = lock(&shared.records);
    match store.set_qualities(key, &qualities) {
        Ok(()) => debug!(
            stream = ?key,
            qualities = ?qualities,
            requests = check.requests,
            "qualities checked"
        ),
        Err(error) => {
            error!("could not store a quality check: {error}; it stays queued");
            shared.recover_store(&error);
        }
    }
}

/// Asks the channel's video list where the broadcast's playlist is (a listing API request, not
/// a CDN one). `None` when the list could not be read.
fn video_lookup(shared: &Shared, settings: &Settings, record: &StreamRecord) -> Option<VideoFacts> {
    match lock(&shared.videos).videos(&settings.fetcher, record.streamer_id, 20) {
        Ok(videos) => {
            let facts = from_videos(&settings.config, record, &videos);
            if let Some(domain) = &facts.unknown_domain {
                warn!(
                    login = %record.login,
                    domain = %domain,
                    "the broadcast's video names a CDN domain that is not configured; add it as a \
                     [[domain]] in config.toml"
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

/// Steers a probe or quality check: it stops at shutdown, and stops asking a domain as soon as
/// a reload removes or disables it (the rest of the work keeps the settings it started with).
struct Steering<'a> {
    shared: &'a Shared,
    shutdown: &'a CancellationToken,
    started_under: u64,
}

impl<'a> Steering<'a> {
    fn new(shared: &'a Shared, shutdown: &'a CancellationToken) -> Steering<'a> {
        Steering {
            shared,
            shutdown,
            started_under: *shared.generation.borrow(),
        }
    }
}

impl Steer for Steering<'_> {
    fn stop(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    fn withdrawn(&self, domain_url: &str) -> bool {
        if *self.shared.generation.borrow() == self.started_under {
            return false;
        }
        let settings = self.shared.settings();
        !settings
            .config
            .domains
            .iter()
            .any(|domain| domain.url == domain_url && domain.enabled)
    }
}

/// Probes one record and writes the outcome. Blocking. On shutdown the probe is handed back:
/// nothing is written and the record stays due.
fn probe_one(shared: &Shared, mut record: StreamRecord, shutdown: &CancellationToken) {
    let store = shared.store();
    let settings = shared.settings();
    let mut public = None;
    let mut channel_hint = None;
    let mut no_archive_while_live = false;
    if record.probe.learned.is_none()
        && let Some(facts) = video_lookup(shared, &settings, &record)
    {
        // Twitch creates the archive video when a stream starts: none for this live broadcast,
        // and none at all for the channel, means no archive is being written. Learning now
        // would cost a sweep of every domain; the probes at its absence and end still search.
        no_archive_while_live = record.status == Status::Live
            && !record.probe.absence_probed
            && facts.learned.is_none()
            && facts.channel_hint.is_none()
            && facts.unknown_domain.is_none();
        record.probe.learned = facts.learned;
        public = facts.public;
        channel_hint = facts.channel_hint;
    }
    let hint = match record.probe.learned {
        Some(_) => None,
        None => store
            .latest_of_streamer(record.streamer_id, Some(record.start_unix))
            .ok()
            .flatten()
            .and_then(|previous| previous.probe.learned)
            .or(channel_hint),
    };
    let book = lock(&shared.book).clone();
    let probed = if no_archive_while_live {
        let reason = "live without an archive video: searched when it ends".to_string();
        Some((ProbeResult::Deferred { reason }, ProbeReport::default()))
    } else {
        probe(
            &settings.config,
            &settings.fetcher,
            &shared.budget,
            &record,
            hint.as_ref(),
            &book,
            shared.now(),
            &Steering::new(shared, shutdown),
        )
    };
    let Some((result, report)) = probed else {
        debug!(login = %record.login, "probe handed back at shutdown; it stays due");
        return;
    };
    let now = shared.now();
    shared.stats.probes.fetch_add(1, Ordering::Relaxed);
    shared
        .stats
        .probe_requests
        .fetch_add(report.requests as u64, Ordering::Relaxed);
    {
        let mut book = lock(&shared.book);
        for failure in &report.failed_domains {
            book.record_failure(&failure.domain_url, &failure.reason);
        }
        for url in &report.answered_domains {
            book.record_success(url, now);
        }
        if let ProbeResult::Hit { archive, .. } = &result {
            book.record_hit(&archive.domain, now);
        }
    }
    for failure in &report.failed_domains {
        shared.metrics.inc(
            "vodprobe_domain_failures_total",
            &[("domain", &failure.domain_url), ("kind", failure.kind)],
        );
    }
    for url in &report.answered_domains {
        shared
            .metrics
            .inc("vodprobe_domain_answers_total", &[("domain", url)]);
    }
    let _records = lock(&shared.records);
    // Re-read: the discover loop may have updated the record while the probe ran.
    let fresh = match store.get_stream(record.key()) {
        Ok(Some(fresh)) => fresh,
        Ok(None) => return,
        Err(error) => {
            error!("could not re-read a probed record: {error}; it stays due");
            shared.recover_store(&error);
            return;
        }
    };
    if fresh.probe.next_due.is_none() {
        // Concluded meanwhile (dropped from an over-full queue): the outcome no longer applies.
        debug!(login = %fresh.login, "probe outcome discarded: the record no longer waits for a probe");
        return;
    }
    let outcome_name = match &result {
        ProbeResult::Hit { .. } => "found",
        ProbeResult::Miss => "missed",
        ProbeResult::Inconclusive { .. } => "inconclusive",
        ProbeResult::Deferred { .. } => "deferred",
    };
    let counter = match &result {
        ProbeResult::Hit { .. } => &shared.stats.hits,
        ProbeResult::Miss => &shared.stats.misses,
        ProbeResult::Inconclusive { .. } => &shared.stats.inconclusive,
        ProbeResult::Deferred { .. } => &shared.stats.deferred,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let mut updated = track::after_probe(fresh, result, now, &settings.rules);
    if public.is_some() {
        updated.public = public;
    }
    let written = match &report.playlist {
        Some(text) => store.put_archived(&updated, text),
        None => store.put_streams(std::slice::from_ref(&updated)),
    };
    match written {
        Ok(()) => {
            shared.last_probe.store(now, Ordering::Relaxed);
            *lock(&shared.store_error) = None;
            shared
                .metrics
                .inc("vodprobe_probes_total", &[("outcome", outcome_name)]);
            info!(
                login = %updated.login,
                stream_id = updated.stream_id,
                requests = report.requests,
                status = updated.status.as_str(),
                next_due = ?updated.probe.next_due,
                "probe {outcome_name}"
            )
        }
        Err(error) => {
            error!("could not store a probe outcome: {error}; the probe stays due");
            shared.recover_store(&error);
        }
    }
}

/// Keeps the probe queue within `max_queue` (see `track::shed_backlog`).
async fn bound_queue(shared: &Arc<Shared>) {
    let worker = shared.clone();
    let max_queue = shared.settings().config.pipeline.max_queue;
    let shed = blocking(move || {
        let store = worker.store();
        if store.queue_len()? <= max_queue as u64 {
            return Ok(0);
        }
        let _records = lock(&worker.records);
        let queued = store.due(i64::MAX, usize::MAX)?;
        let shed = track::shed_backlog(queued, max_queue);
        store.put_streams(&shed)?;
        Ok::<_, StoreError>(shed.len())
    })
    .await;
    match shed {
        Ok(Ok(0)) => {}
        Ok(Ok(count)) => warn!(
            count,
            max_queue,
            "probe queue over max_queue: dropped the least viewed waiting broadcasts; raise \
             limits.requests_per_second or min_viewers_record if this repeats"
        ),
        Ok(Err(error)) => {
            error!("could not bound the probe queue: {error}");
            shared.recover_store(&error);
        }
        Err(message) => error!("bounding the probe queue failed: {message}"),
    }
}

async fn check_health(shared: Arc<Shared>) {
    let worker = shared.clone();
    let results = blocking(move || {
        let settings = worker.settings();
        check_domains(&settings.config, &settings.fetcher, &worker.budget)
    })
    .await;
    let Ok(results) = results else {
        return;
    };
    let now = shared.now();
    let mut down = Vec::new();
    {
        let mut book = lock(&shared.book);
        for result in results.iter().filter(|r| r.enabled) {
            if result.ok {
                book.record_success(&result.domain_url, now);
            } else {
                book.record_failure(&result.domain_url, &result.detail);
                down.push(format!("{} ({})", result.domain_url, result.detail));
            }
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
    save_book(&shared).await;
}

async fn save_book(shared: &Arc<Shared>) {
    let Ok(bytes) = serde_json::to_vec(&*lock(&shared.book)) else {
        return;
    };
    let worker = shared.clone();
    if let Ok(Err(error)) = blocking(move || worker.store().put_state(BOOK_STATE, &bytes)).await {
        warn!("could not save domain statistics: {error}");
    }
}

async fn prune(shared: Arc<Shared>) {
    let cutoff = shared.now() - shared.settings().config.pipeline.retention.as_secs() as i64;
    let worker = shared.clone();
    match blocking(move || worker.store().prune(cutoff, 1000)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(deleted)) => info!(deleted, "pruned records past retention"),
        Ok(Err(error)) => {
            error!("prune failed: {error}");
            shared.recover_store(&error);
        }
        Err(message) => error!("prune failed: {message}"),
    }
}

/// Unused bytes below which a scheduled compaction is skipped (unless `compact_waste` is 0).
const COMPACT_MIN_UNUSED: u64 = 16 << 20;

/// Rewrites the database compactly when enough of it is unused (`limits.compact_waste`).
/// Reads and writes go on meanwhile; shutdown stops the copy and leaves the file as it was.
async fn compact(shared: Arc<Shared>, shutdown: CancellationToken) {
    let threshold = shared.settings().config.limits.compact_waste;
    let worker = shared.clone();
    let occupancy = match blocking(move || worker.store().occupancy()).await {
        Ok(Ok(occupancy)) => occupancy,
        Ok(Err(error)) => {
            warn!("compaction check failed: {error}");
            return;
        }
        Err(message) => {
            warn!("compaction check failed: {message}");
            return;
        }
    };
    let waste = occupancy.waste();
    let metrics = &shared.metrics;
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
    let worker = shared.clone();
    let stop = shutdown.clone();
    let result = blocking(move || worker.store().compact_online(&mut |_, _, _| !stop.is_cancelled())).await;
    let seconds = started.elapsed().as_secs_f64();
    let outcome = match result {
        Ok(Ok(done)) => {
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
        Ok(Err(error)) if error.is_refusal() => {
            warn!("compaction did not run: {error}; the next scheduled run tries again");
            "skipped"
        }
        Ok(Err(error)) => {
            error!("compaction failed: {error}; the database in use is unchanged");
            "failed"
        }
        Err(message) => {
            error!("compaction failed: {message}; the database in use is unchanged");
            "failed"
        }
    };
    metrics.inc("vodprobe_compactions_total", &[("result", outcome)]);
}

/// Playlists per transaction when an older file's playlists are converted.
const PACKING_BATCH: usize = 500;

/// Converts the zstd playlists of a file from before schema 3 to the structural encoding, a
/// batch at a time between the pipeline's own writes. Reads work throughout; a restart resumes.
async fn pack_playlists(shared: Arc<Shared>, shutdown: CancellationToken) {
    let started = Instant::now();
    let mut total = PackingStep::default();
    let mut last_report = Instant::now();
    while !shutdown.is_cancelled() {
        let worker = shared.clone();
        match blocking(move || worker.store().pack_playlists(PACKING_BATCH)).await {
            Ok(Ok(step)) => {
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
                if step.done || last_report.elapsed() > Duration::from_secs(30) {
                    last_report = Instant::now();
                    if total.examined > 0 {
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
                }
                if step.done {
                    return;
                }
            }
            Ok(Err(error)) => {
                error!("playlist conversion failed: {error}; retrying in a minute");
                shared.recover_store(&error);
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
            }
            Err(message) => {
                error!("playlist conversion task failed: {message}; it resumes at the next start");
                return;
            }
        }
        // Leave room for the pipeline's writes (redb runs one write transaction at a time).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A status line every minute of real time: what the appliance is doing, at a glance.
async fn report_status(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        let worker = shared.clone();
        let counts = blocking(move || {
            let store = worker.store();
            Ok::<_, StoreError>((store.count_streams()?, store.queue_len()?, store.live()?.len()))
        })
        .await;
        if let Ok(Ok((records, queue, live))) = counts {
            let stats = &shared.stats;
            info!(
                records,
                live,
                queue,
                pages = stats.pages.load(Ordering::Relaxed),
                probes = stats.probes.load(Ordering::Relaxed),
                found = stats.hits.load(Ordering::Relaxed),
                cdn_requests = shared.budget.taken(),
                "status"
            );
        }
    }
}
