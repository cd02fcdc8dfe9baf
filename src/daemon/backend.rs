//! The appliance as the API sees it: [`api::Backend`] over the daemon's state (health, the
//! domain table, sampled metrics, counts), admin lookups run under the pipeline's budget, and
//! the admin requeue.

use super::probing::Steering;
use super::reconfigure::ConfigStatus;
use super::state::Passes;
use super::upkeep::Upkeep;
use crate::api::{self, ApiError, ComponentStatus, DomainStatus, Health, LookupInput, LookupState};
use crate::config::{SourceConfig, SourceKind};
use crate::metrics::{Kind, Metrics};
use crate::record::Status;
use crate::search::{Cdn, SearchLimits, SearchRequest, lookup_under};
use crate::store::{Counts, Store, StoreError};
use crate::time_input::parse_time;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Finished lookups kept for `GET /api/v1/lookups/{id}`.
const KEPT_LOOKUPS: usize = 200;
/// Admin lookups running at once (each may send many requests).
const MAX_RUNNING_LOOKUPS: usize = 4;

/// Admin lookups, running and finished.
#[derive(Default)]
struct Lookups {
    next_id: u64,
    states: BTreeMap<u64, LookupState>,
}

pub struct ApiBackend {
    parts: Upkeep,
    config: Arc<ConfigStatus>,
    lookups: Arc<Mutex<Lookups>>,
}

/// An RFC 3339 time, or `None` for 0 (never happened).
fn time_text(unix: i64) -> Option<String> {
    (unix > 0).then(|| api::rfc3339(unix))
}

/// Declares the pipeline's series once, at start-up.
pub(super) fn describe(metrics: &Metrics) {
    let series = [
        (
            "vodprobe_domain_hits",
            Kind::Gauge,
            "Broadcasts found on each domain (kept across restarts).",
        ),
        (
            "vodprobe_domain_up",
            Kind::Gauge,
            "1 when the domain answered last time, 0 after a failure.",
        ),
        (
            "vodprobe_cdn_requests_total",
            Kind::Counter,
            "CDN requests taken from the budget since start.",
        ),
        (
            "vodprobe_budget_requests_per_second",
            Kind::Gauge,
            "The configured CDN request budget.",
        ),
        (
            "vodprobe_queue_depth",
            Kind::Gauge,
            "Broadcasts waiting for a probe.",
        ),
        ("vodprobe_records", Kind::Gauge, "Broadcasts in the store."),
        ("vodprobe_live", Kind::Gauge, "Broadcasts live now."),
        (
            "vodprobe_store_bytes",
            Kind::Gauge,
            "Bytes the database file occupies on disk.",
        ),
        (
            "vodprobe_store_ok",
            Kind::Gauge,
            "1 while the store answers, 0 after an error.",
        ),
        (
            "vodprobe_events_total",
            Kind::Counter,
            "Lifecycle events written, by kind (kept across restarts).",
        ),
    ];
    for (name, kind, help) in series {
        metrics.describe(name, kind, help);
    }
}

impl ApiBackend {
    pub fn new(parts: Upkeep, config: Arc<ConfigStatus>) -> ApiBackend {
        ApiBackend {
            parts,
            config,
            lookups: Arc::default(),
        }
    }

    fn lookups(&self) -> MutexGuard<'_, Lookups> {
        lock(&self.lookups)
    }

    fn store_counts(store: &Store) -> Result<(u64, u64), StoreError> {
        Ok((store.count_streams()?, store.queue_len()?))
    }
}

/// The live listing in `/healthz`: which source is in force and, while it fails, why and what to
/// do about it.
pub(super) fn listing_status(
    source: &SourceConfig,
    error: Option<&str>,
    passes: Passes,
    ended_after: i64,
) -> ComponentStatus {
    let kind = source.kind.name();
    match error {
        None if passes.slow(ended_after) => ComponentStatus::failed(format!(
            "the last pass took {}s to read the {kind} listing down to min_viewers_record ({}), \
             longer than pipeline.ended_after ({ended_after}s): a broadcast above it for less \
             than a pass can end unseen and is lost; raise source.pages_per_second (Helix pages \
             hold 100 streams, GQL's 30; a registered application allows more) or \
             source.min_viewers_record",
            passes.to_record_floor.unwrap_or_default(),
            source.min_viewers_record,
        )),
        None => ComponentStatus {
            ok: true,
            message: Some(match (passes.last, passes.to_record_floor) {
                (Some((seconds, pages, _)), Some(floor)) => format!(
                    "live streams are listed by {kind}; the last pass read {pages} pages in \
                     {seconds}s, down to min_viewers_record in {floor}s"
                ),
                (Some((seconds, pages, _)), None) => {
                    format!(
                        "live streams are listed by {kind}; the last pass read {pages} pages in {seconds}s"
                    )
                }
                _ => format!("live streams are listed by {kind}"),
            }),
        },
        Some(error) => {
            let advice = match source.kind {
                SourceKind::Helix => {
                    "check client_id and client_secret in [source] (an application registered \
                     at dev.twitch.tv) and the network"
                }
                _ => {
                    "Twitch may refuse its web API (gql) to other clients; a registered \
                     application is reliable: create one at dev.twitch.tv and set its client_id \
                     and client_secret in [source] (README, \"Which listing source\")"
                }
            };
            ComponentStatus::failed(format!(
                "{error}; nothing new is captured until the {kind} listing answers again: {advice}"
            ))
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Lookup states are plain values, consistent at every return point.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl api::Backend for ApiBackend {
    fn store(&self) -> Arc<Store> {
        self.parts.store.get()
    }

    fn now(&self) -> i64 {
        self.parts.clock.now()
    }

    fn admin_token(&self) -> String {
        self.parts.settings.get().config.api.admin_token.clone()
    }

    fn cors_origin(&self) -> String {
        self.parts.settings.get().config.api.cors_origin.clone()
    }

    fn domains(&self) -> Vec<DomainStatus> {
        let settings = self.parts.settings.get();
        let book = self.parts.domains.snapshot();
        settings
            .config
            .domains
            .iter()
            .map(|domain| {
                let entry = book.domains.get(&domain.url);
                DomainStatus {
                    url: domain.url.clone(),
                    enabled: domain.enabled,
                    probe: domain.probe.clone(),
                    health: match entry {
                        Some(entry) if entry.down => "down",
                        Some(entry) if entry.last_success.is_some() => "up",
                        _ => "unknown",
                    },
                    last_success: entry.and_then(|e| e.last_success).and_then(time_text),
                    last_failure: entry.and_then(|e| e.last_failure.clone()),
                    hits: entry.map_or(0, |e| e.hits),
                }
            })
            .collect()
    }

    fn health(&self) -> Health {
        let parts = &self.parts;
        let store = parts.store.get();
        const STORE_ADVICE: &str = "nothing new is stored until a write succeeds: \
             free space on the store's disk or fix its permissions; what is held is still served";
        let (store_status, records, queue) = match ApiBackend::store_counts(&store) {
            Ok((records, queue)) => match parts.store.last_error() {
                Some(error) => (
                    ComponentStatus::failed(format!("last write failed: {error}; {STORE_ADVICE}")),
                    records,
                    queue,
                ),
                None => (ComponentStatus::ok(), records, queue),
            },
            Err(error) => (ComponentStatus::failed(format!("{error}; {STORE_ADVICE}")), 0, 0),
        };
        let settings = parts.settings.get();
        let listing = listing_status(
            &settings.config.source,
            parts.activity.listing_error().as_deref(),
            parts.activity.listing_passes(),
            settings.config.pipeline.ended_after.as_secs() as i64,
        );
        let config = self.config.status(&settings.config);
        let notify: Vec<api::NotifyHealth> = parts
            .notify
            .snapshot()
            .into_iter()
            .map(|(name, health)| api::NotifyHealth {
                name,
                ok: health.failures_in_row < crate::notify::FAILING_AFTER,
                delivered_through: health.delivered_through,
                backlog: health.backlog,
                dropped: health.dropped,
                failures_in_row: health.failures_in_row,
                last_error: health.last_error,
            })
            .collect();
        // Any failing part degrades the whole: a refused listing captures nothing new.
        let degraded =
            !store_status.ok || !config.ok || !listing.ok || notify.iter().any(|target| !target.ok);
        Health {
            status: if degraded { "degraded" } else { "ok" },
            version: env!("CARGO_PKG_VERSION"),
            config,
            store: store_status,
            records,
            store_bytes: store.file_size(),
            queue_depth: queue,
            last_discover: time_text(parts.activity.last_page()),
            last_probe: time_text(parts.activity.last_probe()),
            listing,
            listing_source: parts.settings.get().config.source.describe(),
            notify,
            last_shed: parts.activity.last_shed().map(|(at, captures, refetches)| {
                format!(
                    "{}: {captures} broadcasts given up as not found and {refetches} hour-aligned \
                     re-fetches dropped (probe queue over pipeline.max_queue; raise \
                     limits.requests_per_second or min_viewers_record)",
                    time_text(at).unwrap_or_default()
                )
            }),
        }
    }

    fn counts(&self) -> Option<(Counts, i64)> {
        self.parts.activity.counts()
    }

    fn metrics(&self) -> Arc<Metrics> {
        self.parts.metrics.clone()
    }

    fn sample_metrics(&self) {
        let parts = &self.parts;
        let metrics = &parts.metrics;
        let store = parts.store.get();
        let counts = ApiBackend::store_counts(&store)
            .and_then(|(records, queue)| Ok((records, queue, store.live_last_seen()?.len())));
        match counts {
            Ok((records, queue, live)) => {
                metrics.set("vodprobe_records", &[], records as f64);
                metrics.set("vodprobe_queue_depth", &[], queue as f64);
                metrics.set("vodprobe_live", &[], live as f64);
                metrics.set("vodprobe_store_ok", &[], 1.0);
            }
            Err(_) => metrics.set("vodprobe_store_ok", &[], 0.0),
        }
        metrics.set("vodprobe_store_bytes", &[], store.file_size() as f64);
        if let Ok(waiting) = store.quality_queue_len() {
            metrics.set("vodprobe_quality_queue", &[], waiting as f64);
        }
        if let Ok(written) = store.events_written() {
            for (kind, count) in written {
                metrics.set("vodprobe_events_total", &[("kind", kind.as_str())], count as f64);
            }
        }
        if let Ok(waiting) = store.segment_checks_waiting() {
            metrics.set("vodprobe_segment_checks_waiting", &[], waiting as f64);
        }
        metrics.set("vodprobe_cdn_requests_total", &[], parts.budget.taken() as f64);
        let settings = parts.settings.get();
        metrics.set(
            "vodprobe_budget_requests_per_second",
            &[],
            settings.config.limits.requests_per_second,
        );
        let book = parts.domains.snapshot();
        for domain in &settings.config.domains {
            let entry = book.domains.get(&domain.url);
            let labels = [("domain", domain.url.as_str())];
            metrics.set(
                "vodprobe_domain_hits",
                &labels,
                entry.map_or(0, |e| e.hits) as f64,
            );
            let up = entry.is_none_or(|e| !e.down);
            metrics.set("vodprobe_domain_up", &labels, if up { 1.0 } else { 0.0 });
        }
    }

    fn start_lookup(&self, input: LookupInput) -> Result<u64, ApiError> {
        let login = input.streamer.trim().to_ascii_lowercase();
        if login.is_empty()
            || login.len() > 64
            || !login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ApiError::bad_body(
                "streamer must be a Twitch login (letters, digits, _)",
            ));
        }
        let stream_id: u64 = input
            .stream_id
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_body("stream_id must be a numeric id"))?;
        let time = parse_time(&input.time).map_err(|error| ApiError::bad_body(format!("time: {error}")))?;
        let id = {
            let mut lookups = self.lookups();
            let running = lookups.states.values().filter(|s| s.state == "running").count();
            if running >= MAX_RUNNING_LOOKUPS {
                return Err(ApiError::unavailable(format!(
                    "{running} lookups are running; wait for one to finish"
                )));
            }
            lookups.next_id += 1;
            let id = lookups.next_id;
            lookups.states.insert(
                id,
                LookupState {
                    id: id.to_string(),
                    state: "running",
                    streamer: login.clone(),
                    stream_id: stream_id.to_string(),
                    requests: 0,
                    started_at: time_text(self.parts.clock.now()).unwrap_or_default(),
                    finished_at: None,
                    url: None,
                    domain: None,
                    timestamp_form: None,
                    duration_seconds: None,
                    segments: None,
                    muted_segments: None,
                    error: None,
                },
            );
            while lookups.states.len() > KEPT_LOOKUPS {
                let oldest = lookups.states.keys().next().copied();
                if let Some(oldest) = oldest {
                    lookups.states.remove(&oldest);
                }
            }
            id
        };
        let request = SearchRequest {
            login,
            stream_id,
            time,
            window_minutes: 0,
            all_domains: false,
        };
        info!(id, streamer = %request.login, stream_id, "admin lookup started");
        let (parts, lookups) = (self.parts.clone(), self.lookups.clone());
        std::thread::spawn(move || run_lookup(&parts, &lookups, id, &request));
        Ok(id)
    }

    fn lookup(&self, id: u64) -> Option<LookupState> {
        self.lookups().states.get(&id).cloned()
    }

    fn requeue(&self, since: i64, until: i64) -> Result<u64, ApiError> {
        let parts = &self.parts;
        let now = parts.clock.now();
        // One more probe each: a miss goes straight back to not_found, a hit is archived.
        let retries = parts.settings.get().config.pipeline.retries.len() as u32;
        let store = parts.store.get();
        let changed = store
            .modify_by_status(Status::NotFound, since, until, 500, &mut |record| {
                record.status = Status::Pending;
                record.probe.next_due = Some(now);
                record.probe.misses = retries;
                record.probe.inconclusive = 0;
                record.probe.last_error = Some("requeued by an admin".to_string());
            })
            .map_err(|error| {
                parts.store.report("the admin requeue failed", &error);
                ApiError::from(error)
            })?;
        info!(since, until, changed, "admin requeue of not-found broadcasts");
        Ok(changed)
    }

    fn followed(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .parts
            .settings
            .get()
            .rules
            .selection
            .followed
            .iter()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    fn status_series(&self) -> Vec<crate::series::Bucket> {
        self.parts.status.sample(&self.parts)
    }
}

fn run_lookup(parts: &Upkeep, lookups: &Mutex<Lookups>, id: u64, request: &SearchRequest) {
    let update = |change: &dyn Fn(&mut LookupState)| {
        if let Some(state) = lock(lookups).states.get_mut(&id) {
            change(state);
        }
    };
    let settings = parts.settings.get();
    let limits = SearchLimits::from_config(&settings.config);
    let never = CancellationToken::new();
    let steering = Steering::new(&parts.settings, &never);
    let cdn = Cdn {
        config: &settings.config,
        fetcher: &settings.fetcher,
        budget: &parts.budget,
        steer: &steering,
    };
    let outcome = lookup_under(cdn, request, limits, |progress| {
        update(&|state| state.requests = progress.requests as u64)
    });
    let finished = time_text(parts.clock.now());
    match outcome {
        Ok(outcome) => {
            let found = outcome.found;
            update(&|state| {
                state.requests = outcome.requests as u64;
                state.finished_at = finished.clone();
                match &found {
                    Some(found) => {
                        state.state = "found";
                        state.url = Some(found.url.clone());
                        state.domain = Some(found.domain_url.clone());
                        state.timestamp_form = Some(found.form.as_str().to_string());
                        state.duration_seconds = Some(found.summary.duration_seconds);
                        state.segments = Some(found.summary.segments);
                        state.muted_segments = Some(found.summary.muted_segments);
                    }
                    None => state.state = "not_found",
                }
            });
            info!(
                id,
                requests = outcome.requests,
                found = found.is_some(),
                "admin lookup finished"
            );
        }
        Err(error) => {
            warn!(id, "admin lookup failed: {error}");
            let message = error.to_string();
            update(&|state| {
                state.state = "failed";
                state.finished_at = finished.clone();
                state.error = Some(message.clone());
            });
        }
    }
}
