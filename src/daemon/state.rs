//! The daemon's state, in parts: each stage is handed only the parts it uses, and every part
//! keeps its lock behind methods, so no caller holds one across I/O or an `.await`.
//!
//! - [`SettingsCell`]: the settings in force, swapped whole on reload, with a generation that
//!   scheduled jobs and running searches watch; the followed ids resolved at run time are put
//!   in force beside them without a reload ([`SettingsCell::set_selection`]).
//! - [`StoreSlot`]: the database handle in use, reopened after an I/O error, its last failure
//!   (for `/healthz`), and [`StoreSlot::job`], the one way the async stages run store work.
//! - [`Domains`]: what the appliance knows about each CDN domain (the `DomainBook`).
//! - [`Activity`]: when the listing and the probes last stored something, the listing's last
//!   failure, and the last day's counts for the API.
//!
//! Read-modify-write of records is not serialised here: the store does it inside one write
//! transaction ([`Store::update`]).

use crate::config::Config;
use crate::fetch::{FetchSettings, Fetcher};
use crate::follow::Selection;
use crate::probe::{DomainBook, ProbeReport};
use crate::store::{Counts, Store, StoreError};
use crate::track::Rules;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::sync::watch;
use tracing::{error, warn};

/// Locks a mutex whose value stays consistent at every return point, so a panic elsewhere
/// while holding it does not make the value unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The settings in force. A reload swaps the whole value; work holds the `Arc` it started
/// with, so a probe or a request finishes under the settings it began with.
pub struct Settings {
    pub config: Config,
    pub rules: Rules,
    pub fetcher: Fetcher,
}

impl Settings {
    pub fn new(config: Config) -> Settings {
        Settings {
            fetcher: Fetcher::new(FetchSettings::from_limits(&config.limits)),
            rules: Rules::from_config(&config),
            config,
        }
    }
}

/// Where the settings in force live, and how often they changed.
pub struct SettingsCell {
    current: RwLock<Arc<Settings>>,
    /// Bumped by every applied reload; jobs waiting on a schedule look again.
    generation: watch::Sender<u64>,
}

impl SettingsCell {
    pub fn new(settings: Settings) -> SettingsCell {
        SettingsCell {
            current: RwLock::new(Arc::new(settings)),
            generation: watch::channel(0).0,
        }
    }

    /// The settings in force now.
    pub fn get(&self) -> Arc<Settings> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `settings` in force and tells everyone watching the generation.
    pub fn replace(&self, settings: Settings) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings);
        self.generation.send_modify(|generation| *generation += 1);
    }

    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Puts the followed channels resolved at run time in force. Not a reload: nobody
    /// waiting on the generation is woken.
    pub fn set_selection(&self, selection: Selection) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let mut rules = current.rules.clone();
        rules.selection = Arc::new(selection);
        *current = Arc::new(Settings {
            config: current.config.clone(),
            rules,
            fetcher: current.fetcher.clone(),
        });
    }

    /// Wakes when a reload is applied.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

/// The database handle in use and its last failure.
pub struct StoreSlot {
    store: RwLock<Arc<Store>>,
    /// The store's last failure, until a probe outcome is stored again.
    last_error: Mutex<Option<String>>,
}

impl StoreSlot {
    pub fn new(store: Store) -> StoreSlot {
        StoreSlot {
            store: RwLock::new(Arc::new(store)),
            last_error: Mutex::new(None),
        }
    }

    pub fn get(&self) -> Arc<Store> {
        self.store.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Logs `what` failed with `error`, keeps it for `/healthz`, and after an I/O error (redb
    /// then refuses further writes on the handle) opens the file again.
    pub fn report(&self, what: &str, error: &StoreError) {
        error!("{what}: {error}");
        *lock(&self.last_error) = Some(error.to_string());
        if !error.needs_reopen() {
            return;
        }
        match self.get().reopen() {
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

    /// A write succeeded: the store answers again.
    pub fn succeeded(&self) {
        *lock(&self.last_error) = None;
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Runs `work` on the store in use, off the async threads. A store error is reported (see
    /// [`StoreSlot::report`]) and a panic logged, both as `what` failing; either gives `None`.
    pub async fn job<T: Send + 'static>(
        self: &Arc<Self>,
        what: &'static str,
        work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Option<T> {
        let slot = self.clone();
        let result = super::every::blocking(what, move || {
            let store = slot.get();
            work(&store)
        })
        .await?;
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.report(what, &error);
                None
            }
        }
    }
}

/// What the appliance knows about each domain: health, hits, last failure (kept in the store
/// across restarts), and which domains answered again after being down.
#[derive(Default)]
pub struct Domains {
    inner: Mutex<DomainsInner>,
}

#[derive(Default)]
struct DomainsInner {
    book: DomainBook,
    /// Recoveries so far; a probe notes it at its start to learn which came during its run.
    recoveries: u64,
    /// Each domain's latest recovery, by its number.
    recovered_at: HashMap<String, u64>,
}

impl DomainsInner {
    fn success(&mut self, url: &str, now: i64, hit: bool, recovered: &mut Vec<String>) {
        let was_down = if hit {
            self.book.record_hit(url, now)
        } else {
            self.book.record_success(url, now)
        };
        if was_down {
            self.recoveries += 1;
            self.recovered_at.insert(url.to_string(), self.recoveries);
            if !recovered.iter().any(|r| r == url) {
                recovered.push(url.to_string());
            }
        }
    }
}

impl Domains {
    pub fn new(book: DomainBook) -> Domains {
        Domains {
            inner: Mutex::new(DomainsInner {
                book,
                ..DomainsInner::default()
            }),
        }
    }

    /// A copy to plan with, so no lock is held while a probe runs.
    pub fn snapshot(&self) -> DomainBook {
        lock(&self.inner).book.clone()
    }

    pub fn is_down(&self, url: &str) -> bool {
        lock(&self.inner).book.is_down(url)
    }

    /// What one probe saw of each domain it asked; returns the domains that answered again
    /// after being down.
    pub fn record_probe(&self, report: &ProbeReport, hit_domain: Option<&str>, now: i64) -> Vec<String> {
        let mut inner = lock(&self.inner);
        let mut recovered = Vec::new();
        for failure in &report.failed_domains {
            inner.book.record_failure(&failure.domain_url, &failure.reason);
        }
        for url in &report.answered_domains {
            inner.success(url, now, false, &mut recovered);
        }
        if let Some(domain) = hit_domain {
            inner.success(domain, now, true, &mut recovered);
        }
        recovered
    }

    /// A domain answered; `true` when it was down until now.
    pub fn record_success(&self, url: &str, now: i64) -> bool {
        let mut recovered = Vec::new();
        lock(&self.inner).success(url, now, false, &mut recovered);
        !recovered.is_empty()
    }

    pub fn record_failure(&self, url: &str, reason: &str) {
        lock(&self.inner).book.record_failure(url, reason);
    }

    /// A mark for [`Domains::recovered_since`].
    pub fn recoveries(&self) -> u64 {
        lock(&self.inner).recoveries
    }

    /// The domains that answered again after being down since `mark` was taken: a probe that
    /// ran meanwhile planned without them.
    pub fn recovered_since(&self, mark: u64) -> Vec<String> {
        let inner = lock(&self.inner);
        inner
            .recovered_at
            .iter()
            .filter(|(_, at)| **at > mark)
            .map(|(url, _)| url.clone())
            .collect()
    }

    /// The book as stored in `state_v1`.
    pub fn to_json(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(&lock(&self.inner).book).ok()
    }
}

/// What the pipeline last did, for `/healthz`, the status line and the API's counts.
#[derive(Default)]
pub struct Activity {
    /// Unix seconds (appliance clock) of the last stored page and the last stored probe outcome.
    last_page: AtomicI64,
    last_probe: AtomicI64,
    /// The live listing's last failure, until a pass completes.
    listing_error: Mutex<Option<String>>,
    /// The last day's counts for the API, refreshed on `schedule.counts`, and when.
    counts: Mutex<Option<(Counts, i64)>>,
    /// The last time the probe queue was shed: when, captures given up, re-fetches dropped.
    last_shed: Mutex<Option<(i64, usize, usize)>>,
    /// How the crawl's passes over the listing end.
    passes: Mutex<Passes>,
}

/// The crawl's last passes, for `/healthz`: how long it takes to read the listing down to
/// `min_viewers_record`, the ranks where a broadcast must be seen to be recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passes {
    /// The last pass: clock seconds, pages, and whether it reached `min_viewers_observe`
    /// (else `restart_every` cut it below the record floor).
    pub last: Option<(i64, u64, bool)>,
    /// Clock seconds the last pass that got there took to reach the record floor.
    pub to_record_floor: Option<i64>,
}

impl Passes {
    /// Reading down to the record floor takes longer than `ended_after`: a broadcast recordable
    /// for less than that can end unseen.
    pub fn slow(&self, ended_after: i64) -> bool {
        self.to_record_floor.is_some_and(|seconds| seconds > ended_after)
    }
}

impl Activity {
    /// A page was stored; it leaves a listing error in place (a first page answered does not clear the refusal of the second).
    pub fn listing_page_stored(&self, now: i64) {
        self.last_page.store(now, Ordering::Relaxed);
    }

    /// A pass reached the viewer floor or the last page: the listing works again.
    pub fn listing_pass_completed(&self) {
        *lock(&self.listing_error) = None;
    }

    /// A pass ended after `seconds` of clock time and `pages`: `complete` when it reached the
    /// viewer floor or the last page; `to_record_floor` when it read below `min_viewers_record`.
    pub fn listing_pass_finished(
        &self,
        seconds: i64,
        pages: u64,
        complete: bool,
        to_record_floor: Option<i64>,
    ) -> Passes {
        let mut passes = lock(&self.passes);
        passes.last = Some((seconds, pages, complete));
        if to_record_floor.is_some() {
            passes.to_record_floor = to_record_floor;
        }
        *passes
    }

    pub fn listing_passes(&self) -> Passes {
        *lock(&self.passes)
    }

    pub fn listing_failed(&self, error: String) {
        *lock(&self.listing_error) = Some(error);
    }

    pub fn listing_error(&self) -> Option<String> {
        lock(&self.listing_error).clone()
    }

    pub fn probe_stored(&self, now: i64) {
        self.last_probe.store(now, Ordering::Relaxed);
    }

    pub fn shed(&self, now: i64, captures: usize, refetches: usize) {
        *lock(&self.last_shed) = Some((now, captures, refetches));
    }

    pub fn last_shed(&self) -> Option<(i64, usize, usize)> {
        *lock(&self.last_shed)
    }

    pub fn last_page(&self) -> i64 {
        self.last_page.load(Ordering::Relaxed)
    }

    pub fn last_probe(&self) -> i64 {
        self.last_probe.load(Ordering::Relaxed)
    }

    pub fn set_counts(&self, counts: Counts, at: i64) {
        *lock(&self.counts) = Some((counts, at));
    }

    pub fn counts(&self) -> Option<(Counts, i64)> {
        lock(&self.counts).clone()
    }
}
