//! The appliance as the API sees it: [`api::Backend`] over the daemon's shared state, the
//! scheduled refresh of the counts, and admin lookups run under the pipeline's budget.

use super::{Shared, Steering, blocking, lock};
use crate::api::{self, ApiError, ComponentStatus, DomainStatus, Health, LookupInput, LookupState};
use crate::lookup::{LookupLimits, LookupRequest, lookup_under};
use crate::metrics::{Kind, Metrics};
use crate::record::Status;
use crate::store::{Counts, Store, StoreError};
use crate::time_input::parse_time;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Finished lookups kept for `GET /api/v1/lookups/{id}`.
const KEPT_LOOKUPS: usize = 200;
/// Admin lookups running at once (each may send many requests).
const MAX_RUNNING_LOOKUPS: usize = 4;

#[derive(Default)]
pub struct Lookups {
    next_id: u64,
    states: BTreeMap<u64, LookupState>,
}

pub struct ApiBackend(pub Arc<Shared>);

/// Recomputes the last day's counts off the async threads.
pub async fn refresh_counts(shared: Arc<Shared>) {
    let worker = shared.clone();
    let now = shared.now();
    match blocking(move || worker.store().counts_since(now - 86_400)).await {
        Ok(Ok(counts)) => *lock(&shared.counts) = Some((counts, now)),
        Ok(Err(error)) => {
            error!("could not count the last day's broadcasts: {error}");
            shared.recover_store(&error);
        }
        Err(message) => error!("counting the last day's broadcasts failed: {message}"),
    }
}

/// An RFC 3339 time, or `None` for 0 (never happened).
fn time_text(unix: i64) -> Option<String> {
    (unix > 0).then(|| api::rfc3339(unix))
}

/// Declares the pipeline's series once, at start-up.
pub(super) fn describe(metrics: &Metrics) {
    let series = [
        (
            "vodprobe_probes_total",
            Kind::Counter,
            "Probe outcomes stored, by outcome.",
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
            "vodprobe_quality_requests_total",
            Kind::Counter,
            "CDN requests of background quality checks (part of vodprobe_cdn_requests_total).",
        ),
        (
            "vodprobe_quality_queue",
            Kind::Gauge,
            "Captured broadcasts whose other qualities are still to be checked.",
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
            "vodprobe_listing_pages_total",
            Kind::Counter,
            "Live-listing pages read.",
        ),
        (
            "vodprobe_listing_errors_total",
            Kind::Counter,
            "Live-listing requests that failed, by kind (timeout, dns, connect, reset, tls, \
             http_status, rate_limited, auth, decode, ...).",
        ),
        (
            "vodprobe_store_ok",
            Kind::Gauge,
            "1 while the store answers, 0 after an error.",
        ),
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

impl ApiBackend {
    fn store_counts(store: &Store) -> Result<(u64, u64), StoreError> {
        Ok((store.count_streams()?, store.queue_len()?))
    }
}

impl api::Backend for ApiBackend {
    fn store(&self) -> Arc<Store> {
        self.0.store()
    }

    fn now(&self) -> i64 {
        self.0.now()
    }

    fn admin_token(&self) -> String {
        self.0.settings().config.api.admin_token.clone()
    }

    fn cors_origin(&self) -> String {
        self.0.settings().config.api.cors_origin.clone()
    }

    fn domains(&self) -> Vec<DomainStatus> {
        let settings = self.0.settings();
        let book = lock(&self.0.book);
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
        let shared = &self.0;
        let store = shared.store();
        let (store_status, records, queue) = match ApiBackend::store_counts(&store) {
            Ok((records, queue)) => match lock(&shared.store_error).clone() {
                Some(error) => (
                    ComponentStatus::failed(format!("last write failed: {error}")),
                    records,
                    queue,
                ),
                None => (ComponentStatus::ok(), records, queue),
            },
            Err(error) => (ComponentStatus::failed(error.to_string()), 0, 0),
        };
        let listing = match lock(&shared.listing_error).clone() {
            Some(error) => ComponentStatus::failed(error),
            None => ComponentStatus::ok(),
        };
        let config = lock(&shared.config_state).status(&shared.settings().config);
        let degraded = !store_status.ok || !config.ok;
        Health {
            status: if degraded { "degraded" } else { "ok" },
            version: env!("CARGO_PKG_VERSION"),
            config,
            store: store_status,
            records,
            store_bytes: store.file_size(),
            queue_depth: queue,
            last_discover: time_text(shared.last_page.load(Ordering::Relaxed)),
            last_probe: time_text(shared.last_probe.load(Ordering::Relaxed)),
            listing,
        }
    }

    fn counts(&self) -> Option<(Counts, i64)> {
        lock(&self.0.counts).clone()
    }

    fn metrics(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    fn sample_metrics(&self) {
        let shared = &self.0;
        let metrics = &shared.metrics;
        let store = shared.store();
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
        metrics.set("vodprobe_cdn_requests_total", &[], shared.budget.taken() as f64);
        metrics.set(
            "vodprobe_budget_requests_per_second",
            &[],
            shared.settings().config.limits.requests_per_second,
        );
        let stats = &shared.stats;
        metrics.set(
            "vodprobe_listing_pages_total",
            &[],
            stats.pages.load(Ordering::Relaxed) as f64,
        );
        let settings = shared.settings();
        let book = lock(&shared.book);
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
        let shared = self.0.clone();
        let id = {
            let mut lookups = lock(&shared.lookups);
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
                    started_at: time_text(shared.now()).unwrap_or_default(),
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
        let request = LookupRequest {
            login,
            stream_id,
            time,
            window_minutes: 0,
            all_domains: false,
        };
        info!(id, streamer = %request.login, stream_id, "admin lookup started");
        std::thread::spawn(move || run_lookup(&shared, id, &request));
        Ok(id)
    }

    fn lookup(&self, id: u64) -> Option<LookupState> {
        lock(&self.0.lookups).states.get(&id).cloned()
    }

    fn requeue(&self, since: i64, until: i64) -> Result<u64, ApiError> {
        let shared = &self.0;
        let now = shared.now();
        // One more probe each: a miss goes straight back to not_found, a hit is archived.
        let retries = shared.settings().config.pipeline.retries.len() as u32;
        let _records = lock(&shared.records);
        let store = shared.store();
        let changed = store
            .modify_by_status(Status::NotFound, since, until, 500, &mut |record| {
                record.status = Status::Pending;
                record.probe.next_due = Some(now);
                record.probe.misses = retries;
                record.probe.inconclusive = 0;
                record.probe.last_error = Some("requeued by an admin".to_string());
            })
            .map_err(|error| {
                shared.recover_store(&error);
                ApiError::from(error)
            })?;
        info!(since, until, changed, "admin requeue of not-found broadcasts");
        Ok(changed)
    }
}

fn run_lookup(shared: &Shared, id: u64, request: &LookupRequest) {
    let update = |change: &dyn Fn(&mut LookupState)| {
        if let Some(state) = lock(&shared.lookups).states.get_mut(&id) {
            change(state);
        }
    };
    let settings = shared.settings();
    let limits = LookupLimits::from_config(&settings.config);
    let never = CancellationToken::new();
    let outcome = lookup_under(
        &settings.config,
        &settings.fetcher,
        &shared.budget,
        request,
        limits,
        &Steering::new(shared, &never),
        |progress| update(&|state| state.requests = progress.requests as u64),
    );
    let finished = time_text(shared.now());
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
