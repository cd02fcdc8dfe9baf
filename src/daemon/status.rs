//! The status page's day of history ([`StatusSeries`]): sampled every minute and whenever the
//! API asks, saved to `state_v1` at each bucket's end and at shutdown, so a restart keeps the day.

use super::every::blocking;
use super::upkeep::Upkeep;
use crate::event::EventKind;
use crate::series::{Bucket, DomainHealth, Sample, StatusSeries};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// `state_v1` entry holding the series.
pub const SERIES_STATE: &str = "status_series";
/// How often the series is sampled without being asked.
const SAMPLE_EVERY: Duration = Duration::from_secs(60);

/// The series, shared by the sampler and the API.
#[derive(Default)]
pub struct StatusLog {
    series: Mutex<StatusSeries>,
}

fn lock(mutex: &Mutex<StatusSeries>) -> MutexGuard<'_, StatusSeries> {
    // Samples change the series in one step: it is consistent at every return point.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl StatusLog {
    pub fn new(series: StatusSeries) -> StatusLog {
        StatusLog {
            series: Mutex::new(series),
        }
    }

    /// Reads the appliance's counters now and adds them to the series; returns the day.
    /// Blocking: it reads the store.
    pub fn sample(&self, parts: &Upkeep) -> Vec<Bucket> {
        let now = parts.clock.now();
        let store = parts.store.get();
        let captures_total = store.events_written().map_or(0, |written| {
            written
                .into_iter()
                .find(|(kind, _)| *kind == EventKind::Captured)
                .map_or(0, |(_, count)| count)
        });
        let settings = parts.settings.get();
        let book = parts.domains.snapshot();
        let domains = settings
            .config
            .domains
            .iter()
            .filter(|domain| domain.enabled)
            .map(|domain| {
                let health = match book.domains.get(&domain.url) {
                    Some(entry) if entry.down => DomainHealth::Down,
                    Some(entry) if entry.last_success.is_some() => DomainHealth::Up,
                    _ => DomainHealth::Unknown,
                };
                (domain.url.clone(), health)
            })
            .collect();
        let sample = Sample {
            now,
            captures_total,
            requests_total: parts.budget.taken(),
            queue_depth: store.queue_len().unwrap_or(0),
            rate: settings.config.limits.requests_per_second,
            domains,
        };
        let mut series = lock(&self.series);
        series.sample(&sample);
        series.day(now)
    }

    fn to_json(&self) -> Option<Vec<u8>> {
        lock(&self.series).to_json()
    }
}

impl Upkeep {
    /// Samples the series every minute until shutdown, saving it when a bucket ends.
    pub async fn keep_status(&self, shutdown: &CancellationToken) {
        let mut saved_bucket = None;
        loop {
            let job = self.clone();
            let day = blocking("sampling the status series", move || job.status.sample(&job)).await;
            let current = day.and_then(|day| day.last().map(|bucket| bucket.at));
            if saved_bucket.is_some() && current != saved_bucket {
                self.save_status().await;
            }
            saved_bucket = current.or(saved_bucket);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
        }
    }

    /// Keeps the series across restarts.
    pub async fn save_status(&self) {
        let Some(bytes) = self.status.to_json() else {
            return;
        };
        let store = self.store.clone();
        let saved = blocking("saving the status series", move || {
            store.get().put_state(SERIES_STATE, &bytes)
        })
        .await;
        if let Some(Err(error)) = saved {
            warn!("could not save the status series: {error}");
        }
    }
}

/// The saved series, or an empty one.
pub fn load(store: &crate::store::Store) -> Arc<StatusLog> {
    let series = store
        .get_state(SERIES_STATE)
        .ok()
        .flatten()
        .map(|bytes| StatusSeries::from_json(&bytes))
        .unwrap_or_default();
    Arc::new(StatusLog::new(series))
}
