//! Running jobs: on a cron schedule from the settings in force, and off the async threads.
//!
//! A schedule is read afresh before every wait, and a reload wakes the wait, so a changed
//! schedule applies at once. Runs missed while a job was busy are coalesced: the next run is
//! counted from when the job finished. Blocking work (redb, ureq) runs on `spawn_blocking`; a
//! panic there is caught, logged and the loop carries on.

use super::state::SettingsCell;
use crate::config::{CronSchedule, ScheduleConfig};
use crate::schedule::{Clock, next_run};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

/// Picks one job's schedule out of the settings in force.
pub type Pick = fn(&ScheduleConfig) -> &CronSchedule;

/// What a scheduled job needs to wait for its runs.
#[derive(Clone)]
pub struct Timetable {
    pub settings: Arc<SettingsCell>,
    pub clock: Clock,
    pub shutdown: CancellationToken,
}

impl Timetable {
    /// Waits for the next run of the schedule `pick` names; `false` on shutdown.
    pub async fn next_run(&self, pick: Pick) -> bool {
        let mut reloads = self.settings.subscribe();
        loop {
            let schedule = pick(&self.settings.get().config.schedule).clone();
            let wait = match next_run(&schedule.schedule, self.clock.now_ms()) {
                Some(next) => self.clock.real_until(next),
                None => {
                    warn!(
                        schedule = %schedule.text,
                        "the schedule has no future run; the job waits for a new one in config.toml"
                    );
                    Duration::MAX
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
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
    pub async fn every<F, Fut>(self, pick: Pick, mut job: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        while self.next_run(pick).await {
            job().await;
        }
    }
}

/// Runs blocking work off the async threads. A panic is logged as `what` failing and gives
/// `None`.
pub async fn blocking<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(join) => {
            error!("{what}: the task failed: {join}");
            None
        }
    }
}

/// A background job that runs at most once at a time (the checks that only use spare budget):
/// a start while the last run goes on does nothing.
pub struct OneAtATime {
    /// What the job is, for the log ("a quality check").
    what: &'static str,
    running: Arc<AtomicBool>,
}

impl OneAtATime {
    pub fn new(what: &'static str) -> OneAtATime {
        OneAtATime {
            what,
            running: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs `job` on a blocking thread under `tracker`, unless the last run still goes on.
    pub fn start(&self, tracker: &TaskTracker, job: impl FnOnce() + Send + 'static) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = self.running.clone();
        let what = self.what;
        tracker.spawn(async move {
            if blocking(what, job).await.is_none() {
                debug!("{what} did not finish; its capture stays queued");
            }
            running.store(false, Ordering::Release);
        });
    }
}
