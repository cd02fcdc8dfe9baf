//! The discover stage: page the live listing, most viewed first, down to
//! `min_viewers_observe`, upsert what it shows (less what a `[[rule]]` skips), and after each
//! pass end the streams it no longer shows. Each tick first lets `follow.rs` check the
//! followed channels; with `scope = "followed"` that is all it does.
//!
//! Only a finished pass ends streams here (between passes, `confirm.rs` ends them by asking
//! about channels by id, from this tick), so a listing that fails ends nothing: a failed page
//! pauses the crawl (doubling from 5 s up to 5 minutes, or the listing's `Retry-After`) and
//! starts the pass again from the top. The crawl owns its listing client and cursor; it runs
//! on one task, so neither needs a lock — the client is moved into the blocking call and back.

use super::every::blocking;
use super::passed::PassedOver;
use super::state::{Activity, Settings, SettingsCell, StoreSlot};
use crate::config::{Config, Scope, SourceConfig};
use crate::discover::{DiscoverError, Source};
use crate::metrics::{Kind, Metrics, WAIT_BUCKETS};
use crate::record::{Sighting, Status, StreamKey, StreamRecord};
use crate::schedule::Clock;
use crate::store::{StoreError, Update};
use crate::track::{self, Rules};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// What the crawl uses of the appliance.
pub struct CrawlParts {
    pub settings: Arc<SettingsCell>,
    pub clock: Clock,
    pub store: Arc<StoreSlot>,
    pub activity: Arc<Activity>,
    pub metrics: Arc<Metrics>,
}

/// Declares the crawl's series once, at start-up.
pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_listing_pages_total",
        Kind::Counter,
        "Live-listing pages read.",
    );
    metrics.describe(
        "vodprobe_listing_sightings_total",
        Kind::Counter,
        "Live streams the listing showed at or above min_viewers_observe.",
    );
    metrics.describe(
        "vodprobe_listing_errors_total",
        Kind::Counter,
        "Live-listing requests that failed, by kind (timeout, dns, connect, reset, tls, \
         http_status, rate_limited, auth, decode, integrity, invalid_cursor, ...).",
    );
    metrics.describe(
        "vodprobe_listing_passes_total",
        Kind::Counter,
        "Passes over the live listing finished (down to the viewer floor or cut by restart_every).",
    );
    metrics.describe(
        "vodprobe_listing_passes_cut_total",
        Kind::Counter,
        "Passes cut by restart_every below min_viewers_record, before min_viewers_observe \
         (a pass is never cut above the record floor).",
    );
    metrics.describe(
        "vodprobe_listing_pass_seconds",
        Kind::Gauge,
        "Seconds the last pass over the live listing took (complete or cut).",
    );
    metrics.describe(
        "vodprobe_listing_pass_pages",
        Kind::Gauge,
        "Pages the last pass over the live listing read (complete or cut).",
    );
    metrics.describe_histogram(
        END_SEEN,
        "Seconds from a recordable broadcast's last sighting to when its end was known, by how \
         it was known: pass (unseen for pipeline.ended_after), confirm (asked by channel id), \
         follow (a followed channel checked) or restart (a new start of the channel). Its first \
         probe comes pipeline.settle later.",
        WAIT_BUCKETS,
    );
    metrics.describe(
        "vodprobe_listing_record_floor_seconds",
        Kind::Gauge,
        "Seconds the last pass took to read the listing down to min_viewers_record: a broadcast \
         above it for less than this may be missed.",
    );
}

/// The histogram of how late ends are known (see [`describe`]).
const END_SEEN: &str = "vodprobe_stream_end_seen_seconds";

/// Records in [`END_SEEN`] the ends among `written` (records whose stored copy was live
/// before, as `was_live` tells) that are kept for probing, known at `now`.
pub(super) fn note_ends(
    metrics: &Metrics,
    by: &str,
    written: &[StreamRecord],
    was_live: impl Fn(&StreamRecord) -> bool,
    now: i64,
) {
    for record in written.iter().filter(|r| r.status != Status::Live && was_live(r)) {
        metrics.observe(END_SEEN, &[("by", by)], (now - record.last_seen).max(0) as f64);
    }
}

/// The crawler's position in the listing, kept between ticks.
pub struct Crawl {
    parts: CrawlParts,
    /// The listing client; `None` only while a page is being fetched.
    source: Option<Source>,
    /// What `source` was built from: a reload that changes it restarts the crawl.
    source_config: SourceConfig,
    cursor: Option<String>,
    /// Clock time the current pass started from the top.
    pass_started: Option<i64>,
    pages_in_pass: u64,
    /// Clock seconds into the current pass when a page first went below `min_viewers_record`:
    /// only then may `restart_every` cut the pass, since what it would leave unread is only
    /// observed, never recorded.
    record_floor_after: Option<i64>,
    /// When the listing's next page may go out, and how many are owed (see [`Pace`]).
    pace: Pace,
    paused_until: Option<Instant>,
    /// Listing failures in a row: the pause doubles with each (5 s up to 5 minutes).
    failures: u32,
    /// Ends confirmed by channel id between passes (`confirm.rs`).
    confirm: super::confirm::Confirm,
    /// Captured channels' video lists re-read for deletions and sub-only (`reread.rs`).
    reread: super::reread::Reread,
    /// The followed channels, checked by id (`follow.rs`).
    follow: super::follow::Follow,
    /// Clock time the last complete pass started: what it did not show is confirmed at once.
    complete_pass_started: Option<i64>,
    /// The channels this pass has gone past without showing, confirmed first.
    passed: PassedOver,
    /// Invalid cursors since the last complete pass; past [`MAX_INVALID_CURSORS`] they count
    /// as failures (with the pause), so a listing that refuses every cursor cannot spin.
    invalid_cursors: u32,
}

/// Invalid cursors restarted at once before the pause of a failure applies.
const MAX_INVALID_CURSORS: u32 = 3;

/// The listing's pace: pages owed at `pages_per_second` accrue between ticks, the fraction
/// carried over, and a page goes out `1 / rate` after the one before it went out, so the time
/// an answer takes is part of the gap, not added to it. Sleeping `1 / rate` after each answer
/// and rounding each tick's share read 0.048 pages a clock second of the week benchmark's
/// 0.060 (slower passes, ends seen later); on Twitch, with answers of 200 ms, a tick's pages
/// grew to the 30 it was clamped at and the crawl read about 1.9 pages a second of 3 (the test
/// below simulates both).
#[derive(Debug, Default)]
struct Pace {
    owed: f64,
    accrued_at: Option<Instant>,
    next_at: Option<Instant>,
}

impl Pace {
    /// Most pages owed at once: after a pause (a listing failure's back-off) the crawl goes on
    /// at its pace, not with a longer run of pages than a tick may take.
    const MOST_OWED: f64 = 30.0;

    /// Whole pages owed at `now` at `rate` a second (a tick's first call counts one second).
    fn accrue(&mut self, rate: f64, now: Instant) -> usize {
        if rate.is_nan() || rate <= 0.0 {
            return 0;
        }
        let since = self
            .accrued_at
            .map_or(1.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.accrued_at = Some(now);
        self.owed = (self.owed + rate * since).min(Self::MOST_OWED);
        self.owed.floor() as usize
    }

    /// When the next page may go out: `now` if it is already due.
    fn next_at(&self, now: Instant) -> Instant {
        self.next_at.map_or(now, |at| at.max(now))
    }

    /// A page went out at `at`.
    fn sent(&mut self, rate: f64, at: Instant) {
        self.owed = (self.owed - 1.0).max(0.0);
        self.next_at = Some(at + Duration::from_secs_f64(1.0 / rate));
    }
}

impl Crawl {
    pub fn new(parts: CrawlParts) -> Crawl {
        let config = &parts.settings.get().config;
        Crawl {
            source: Some(Source::new(&config.source)),
            source_config: config.source.clone(),
            cursor: None,
            pass_started: None,
            pages_in_pass: 0,
            record_floor_after: None,
            pace: Pace::default(),
            paused_until: None,
            failures: 0,
            confirm: Default::default(),
            reread: Default::default(),
            follow: Default::default(),
            complete_pass_started: None,
            passed: PassedOver::default(),
            invalid_cursors: 0,
            parts,
        }
    }

    /// Starts from the top with a new client, as at start-up.
    fn restart(&mut self, config: &Config) {
        self.source = Some(Source::new(&config.source));
        self.source_config = config.source.clone();
        self.cursor = None;
        self.pass_started = None;
        self.pages_in_pass = 0;
        self.record_floor_after = None;
        self.pace = Pace::default();
        self.paused_until = None;
        self.failures = 0;
        self.invalid_cursors = 0;
        self.passed.abandoned();
    }

    /// Fetches the pages this tick's share of `pages_per_second` allows, continuing the pass.
    pub async fn tick(&mut self) {
        let settings = self.parts.settings.get();
        if settings.config.source != self.source_config {
            info!(
                source = settings.config.source.kind.name(),
                listing = %settings.config.source.describe(),
                "live listing settings changed: the crawl starts again from the top"
            );
            self.restart(&settings.config);
        }
        let now_real = Instant::now();
        if self.paused_until.is_some_and(|until| until > now_real) {
            return;
        }
        self.between_pages(&settings).await;
        if settings.config.source.scope == Scope::Followed {
            // Only the followed channels are watched: no page of the listing is read.
            return;
        }
        let rate = settings.config.source.pages_per_second;
        let pages = self.pace.accrue(rate, now_real);
        for page in 0..pages {
            let at = self.pace.next_at(Instant::now());
            tokio::time::sleep_until(at.into()).await;
            // A tick may read a whole pass (the pages owed keep pace with the time they take):
            // the followed channels, the confirmations and the re-reads, each limited to its
            // own period, are not held until it ends. Held, they ran once a pass (about every
            // 200 s in the week benchmark), and ends were known 4–5 minutes late.
            if page > 0 {
                self.between_pages(&settings).await;
            }
            self.pace.sent(rate, at);
            if !self.fetch_one(&settings).await {
                break;
            }
        }
    }

    /// The followed channels' check, the confirmation of ends and the video list re-reads,
    /// each when its own period says so.
    async fn between_pages(&mut self, settings: &Settings) {
        if let Some(source) = self.source.take() {
            self.source = self.follow.tick(&self.parts, settings, source).await;
        }
        if let Some(source) = self.source.take() {
            self.source = self
                .confirm
                .tick(
                    &self.parts,
                    settings,
                    self.complete_pass_started,
                    &self.passed,
                    source,
                )
                .await;
        }
        if let Some(source) = self.source.take() {
            self.source = self.reread.tick(&self.parts, settings, source).await;
        }
    }

    /// One page (after a pass cut by `restart_every`, the first of the next); `false` when the
    /// tick should stop (a pass read to its end, or an error).
    async fn fetch_one(&mut self, settings: &Settings) -> bool {
        let now = self.parts.clock.now();
        let mut pass_started = *self.pass_started.get_or_insert(now);
        let restart_every = settings.config.source.restart_every.as_secs() as i64;
        // A pass is cut only below the record floor: a cut above it would leave the same ranks
        // unread every pass, and broadcasts there would never be recorded.
        if self.cursor.is_some() && self.record_floor_after.is_some() && now - pass_started >= restart_every {
            debug!(
                pages = self.pages_in_pass,
                "restarting the crawl from the top (restart_every)"
            );
            self.finish_pass(pass_started, false).await;
            // This page's turn goes to the top of the next pass. Given up, with the tick
            // ended, it cost the week benchmark a page's gap and the wait for the next tick
            // each pass: 0.052 pages a clock second of 0.060.
            pass_started = *self.pass_started.get_or_insert(self.parts.clock.now());
        }
        let mut source = match self.source.take() {
            Some(source) => source,
            None => Source::new(&settings.config.source),
        };
        let fetcher = settings.fetcher.clone();
        let cursor = self.cursor.clone();
        let fetched = blocking("the live listing task", move || {
            let page = source.page(&fetcher, cursor.as_deref(), now);
            (source, page)
        })
        .await;
        // A client lost to a panic is built again at the next page.
        let Some((source, page)) = fetched else {
            return false;
        };
        self.source = Some(source);
        let page = match page {
            Ok(page) => page,
            Err(DiscoverError::InvalidCursor) if self.invalid_cursors < MAX_INVALID_CURSORS => {
                self.invalid_cursor();
                return false;
            }
            Err(error) => {
                self.listing_failed(&error);
                return false;
            }
        };
        let parts = &self.parts;
        if self.failures > 0 {
            info!(after = self.failures, "live listing answers again");
            self.failures = 0;
        }
        // The error stays until a pass completes: page 1 answering every pass must not hide
        // the refusal of page 2.
        parts.activity.listing_page_stored(parts.clock.now());
        if page.skipped > 0 {
            warn!(
                skipped = page.skipped,
                "listing entries left out: {}",
                page.first_skip.as_deref().unwrap_or("malformed")
            );
        }
        self.pages_in_pass += 1;
        self.passed.page(&page.sightings);
        parts.metrics.inc("vodprobe_listing_pages_total", &[]);
        let floor = settings.config.source.min_viewers_observe;
        let last_viewers = page.sightings.last().map(|s| s.viewers);
        let reached_floor = last_viewers.is_none_or(|v| v < floor);
        if self.record_floor_after.is_none()
            && last_viewers.is_none_or(|v| v < settings.config.source.min_viewers_record)
        {
            self.record_floor_after = Some(now - pass_started);
        }
        let selection = settings.rules.selection.clone();
        let sightings: Vec<Sighting> = page
            .sightings
            .into_iter()
            .filter(|s| s.viewers >= floor && !selection.skips(&s.into()))
            .collect();
        parts
            .metrics
            .add("vodprobe_listing_sightings_total", &[], sightings.len() as f64);
        if !sightings.is_empty() {
            let rules = settings.rules.clone();
            let metrics = parts.metrics.clone();
            parts
                .store
                .job("could not store a page of sightings", move |store| {
                    store.update(|tx| apply_page(tx, &sightings, now, &rules, &metrics))
                })
                .await;
        }
        if reached_floor || page.next_cursor.is_none() {
            self.parts.activity.listing_pass_completed();
            self.invalid_cursors = 0;
            self.finish_pass(pass_started, true).await;
            return false;
        }
        self.cursor = page.next_cursor;
        true
    }

    /// Helix refused the cursor (it does now and then): counted, and the pass starts again from
    /// the top at the next tick, without the failure pause.
    fn invalid_cursor(&mut self) {
        self.parts
            .metrics
            .inc("vodprobe_listing_errors_total", &[("kind", "invalid_cursor")]);
        self.invalid_cursors += 1;
        debug!(
            pages = self.pages_in_pass,
            "invalid cursor: restarting the pass from the top"
        );
        self.cursor = None;
        self.pass_started = None;
        self.pages_in_pass = 0;
        self.record_floor_after = None;
        self.passed.abandoned();
    }

    /// Pauses the crawl after a failed page; the pass starts again from the top.
    fn listing_failed(&mut self, error: &DiscoverError) {
        let parts = &self.parts;
        parts
            .metrics
            .inc("vodprobe_listing_errors_total", &[("kind", error.kind())]);
        parts.activity.listing_failed(error.to_string());
        self.failures = self.failures.saturating_add(1);
        let backoff = Duration::from_secs((5u64 << (self.failures - 1).min(6)).min(300));
        let pause = match error {
            DiscoverError::RateLimited { retry_after } => *retry_after,
            _ => backoff,
        };
        warn!(
            "live listing failed: {error}; restarting from the top in {}s \
             (streams stay tracked meanwhile)",
            pause.as_secs()
        );
        self.paused_until = Some(Instant::now() + parts.clock.real(pause).min(pause));
        self.cursor = None;
        self.pass_started = None;
        self.pages_in_pass = 0;
        self.record_floor_after = None;
        self.passed.abandoned();
    }

    /// A pass reached the viewer floor (`complete`) or was cut by `restart_every`: streams not
    /// seen since `ended_after` before the pass began have ended, and after a complete pass,
    /// streams it did not show are probed early. Nothing is ended while the listing fails,
    /// because then no pass finishes.
    async fn finish_pass(&mut self, pass_started: i64, complete: bool) {
        let metrics = &self.parts.metrics;
        metrics.inc("vodprobe_listing_passes_total", &[]);
        let seconds = self.parts.clock.now() - pass_started;
        let pages = self.pages_in_pass;
        let to_record_floor = self.record_floor_after;
        let ended_after = self.parts.settings.get().config.pipeline.ended_after.as_secs() as i64;
        let was_slow = self.parts.activity.listing_passes().slow(ended_after);
        let passes = self
            .parts
            .activity
            .listing_pass_finished(seconds, pages, complete, to_record_floor);
        metrics.set("vodprobe_listing_pass_seconds", &[], seconds as f64);
        metrics.set("vodprobe_listing_pass_pages", &[], pages as f64);
        if let Some(after) = to_record_floor {
            metrics.set("vodprobe_listing_record_floor_seconds", &[], after as f64);
        }
        if !complete {
            metrics.inc("vodprobe_listing_passes_cut_total", &[]);
        }
        debug!(pages, seconds, complete, "crawl pass finished");
        if complete {
            self.complete_pass_started = Some(pass_started);
        }
        // Said when it starts, not every pass: each slow pass risks the same broadcasts.
        if passes.slow(ended_after) && !was_slow {
            warn!(
                seconds = to_record_floor.unwrap_or(seconds),
                pages,
                "the crawl took longer than pipeline.ended_after to read the listing down to \
                 min_viewers_record: a broadcast above it for less than a pass may never be seen; \
                 raise source.pages_per_second (Helix pages hold 100 streams, GQL's 30) or \
                 source.min_viewers_record"
            );
        }
        self.cursor = None;
        self.pass_started = None;
        self.pages_in_pass = 0;
        self.record_floor_after = None;
        self.passed.finished();
        let clock = self.parts.clock;
        let rules = self.parts.settings.get().rules.clone();
        let metrics = self.parts.metrics.clone();
        let ended = self
            .parts
            .store
            .job("could not end unseen streams", move |store| {
                store.update(|tx| end_unseen(tx, pass_started, clock.now(), complete, &rules, &metrics))
            })
            .await;
        if let Some(ended @ 1..) = ended {
            debug!(ended, "streams ended");
        }
    }
}

/// Upserts a page of sightings (restarts and new starts of a streamer included).
pub(super) fn apply_page(
    tx: &mut Update<'_>,
    sightings: &[Sighting],
    now: i64,
    rules: &Rules,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    let keys: Vec<StreamKey> = sightings.iter().map(|s| (s.started_at, s.stream_id)).collect();
    let known: HashMap<StreamKey, StreamRecord> = tx
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
        if let Some(latest) = tx.latest_of_streamer(sighting.streamer_id, None)?
            && latest.status == Status::Live
        {
            live_of_streamer.insert(sighting.streamer_id, latest);
        }
    }
    let update = track::apply_sightings(sightings, &known, &live_of_streamer, now, rules);
    tx.apply(&update.write, &update.delete)?;
    let was_live = |r: &StreamRecord| {
        let live =
            |k: Option<&StreamRecord>| k.is_some_and(|k| k.key() == r.key() && k.status == Status::Live);
        live(known.get(&r.key())) || live(live_of_streamer.get(&r.streamer_id))
    };
    note_ends(metrics, "restart", &update.write, was_live, now);
    Ok(())
}

/// Ends the live streams unseen since `ended_after` before the pass began, and after a
/// complete pass schedules the early probe of those it did not show. Returns how many ended.
fn end_unseen(
    tx: &mut Update<'_>,
    pass_started: i64,
    now: i64,
    complete: bool,
    rules: &Rules,
    metrics: &Metrics,
) -> Result<usize, StoreError> {
    let live = tx.live()?;
    let mut update = track::end_unseen(&live, pass_started.min(now), rules);
    note_ends(metrics, "pass", &update.write, |_| true, now);
    if complete {
        let ended: HashSet<StreamKey> = update
            .write
            .iter()
            .map(StreamRecord::key)
            .chain(update.delete.iter().copied())
            .collect();
        let still_live: Vec<StreamRecord> = live.into_iter().filter(|r| !ended.contains(&r.key())).collect();
        update
            .write
            .extend(track::absent_after_pass(&still_live, pass_started, now, rules));
    }
    let ended = update.write.len() + update.delete.len();
    for record in &update.write {
        debug!(login = %record.login, stream_id = record.stream_id, "stream ended");
    }
    tx.apply(&update.write, &update.delete)?;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::{Duration, Instant};

    /// Runs the crawl's ticks over `seconds` of simulated time: a tick starts on the next
    /// whole second after the last one finished (the schedule), takes the pages owed, each
    /// sent when the pace allows and answered after `answer`. Returns when each page went
    /// out, in seconds from the start.
    fn crawl(rate: f64, answer: Duration, seconds: u64, pause: Option<(u64, u64)>) -> Vec<f64> {
        let start = Instant::now();
        let mut pace = Pace::default();
        let mut now = start;
        let mut sent = Vec::new();
        let mut second = 0;
        while second < seconds {
            let tick = start + Duration::from_secs(second);
            now = now.max(tick);
            let paused = pause.is_some_and(|(from, to)| (from..to).contains(&second));
            if !paused {
                for _ in 0..pace.accrue(rate, now) {
                    let at = pace.next_at(now);
                    pace.sent(rate, at);
                    sent.push(at.duration_since(start).as_secs_f64());
                    now = at + answer;
                }
            }
            second = now.duration_since(start).as_secs() + 1;
        }
        sent.retain(|&t| t < seconds as f64);
        sent
    }

    fn closest(sent: &[f64]) -> f64 {
        sent.windows(2).map(|w| w[1] - w[0]).fold(f64::MAX, f64::min)
    }

    #[test]
    fn slow_answers_do_not_slow_the_listing_below_its_pace() {
        // Twitch's pace (3 pages a second) with answers of 200 ms: ten minutes read 1,800
        // pages, never two closer than a third of a second. Sleeping a third of a second after
        // each answer, and rounding each tick's share, read 1,124 in the same simulation.
        let sent = crawl(3.0, Duration::from_millis(200), 600, None);
        assert!((1795..=1803).contains(&sent.len()), "{}", sent.len());
        assert!(closest(&sent) >= 1.0 / 3.0 - 1e-6, "{}", closest(&sent));
        // A pace below a page a second is kept too (a tick used to take at least one page).
        let sent = crawl(0.5, Duration::from_millis(10), 600, None);
        assert!((298..=302).contains(&sent.len()), "{}", sent.len());
        assert!(closest(&sent) >= 2.0 - 1e-6);
        // Answers slower than the pace bound it: one page at a time (at most 120 in a minute
        // of 500 ms answers), less the wait for the next tick between runs of pages.
        let sent = crawl(3.0, Duration::from_millis(500), 60, None);
        assert!((100..=120).contains(&sent.len()), "{}", sent.len());
    }

    #[test]
    fn a_pause_is_not_made_up_in_a_burst() {
        // A minute's pause (a listing failure's back-off): afterwards at most 30 pages are
        // owed, and they still go out at the pace.
        let sent = crawl(3.0, Duration::from_millis(50), 180, Some((60, 120)));
        let after: Vec<f64> = sent.iter().copied().filter(|&t| t >= 120.0).collect();
        assert!(closest(&sent) >= 1.0 / 3.0 - 1e-6);
        assert!((178..=182).contains(&after.len()), "{}", after.len());
        // None lost in the first minute, none made up beyond the cap later.
        let before = sent.iter().filter(|&&t| t < 60.0).count();
        assert!((178..=181).contains(&before), "{before}");
        // Nothing owed but never rate: zero pages.
        let mut pace = Pace::default();
        assert_eq!(pace.accrue(0.0, Instant::now()), 0);
    }
}
