//! The appliance: the pipeline's stages wired together, their schedules, and graceful shutdown.
//!
//! [`run`] takes a bound listener and a shutdown token (mini-redis's `server::run`), opens the
//! store and runs, each on its cron schedule from the settings in force against an injected
//! [`Clock`]: the crawl of the live listing (`crawl`), the due probes and, with spare budget,
//! quality checks (`probing`, `qualities`), and the upkeep jobs — domain health, pruning,
//! counts, compaction (`upkeep`). Three more tasks run unscheduled: the status line, the
//! background conversion of older files' playlists, and, with a followed config file, live
//! reconfiguration (`reconfigure`). The API answers through `backend`.
//!
//! Each stage gets only the parts of the state it uses (`state`), and each is an edge: it logs
//! what happened and decides what to do about failures; the rules it applies are pure functions
//! in `track` and `probe`, the I/O is in `store`, `discover` and `fetch`. Blocking work (redb,
//! ureq) runs off the async threads; a panic in one job is caught and logged and the loop
//! carries on.
//!
//! Durability: every state change is committed before it is acted on. A probe is chosen from
//! the store's due queue and the record leaves the queue only when its outcome is written, so a
//! probe in flight when the process dies is simply due again after restart (at least once). The
//! request budget starts one interval after start-up, so restarts cannot flood the CDN.

mod audio;
mod backend;
mod confirm;
mod crawl;
mod every;
mod follow;
mod notify;
mod passed;
mod probing;
mod qualities;
mod reconfigure;
mod reread;
mod segments;
mod state;
mod status;
#[cfg(test)]
mod tests;
mod upkeep;

use crate::api;
use crate::budget::Budget;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::probe::DomainBook;
use crate::schedule::Clock;
use crate::store::{OpenError, Store, StoreError};
use every::Timetable;
use state::{Activity, Domains, Settings, SettingsCell, StoreSlot};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// How long shutdown waits for in-flight work before handing it back (it stays due).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source} (another program uses the port? change api.listen)")]
    Listen { address: String, source: std::io::Error },
    #[error("opening the database failed: {0}")]
    Panicked(String),
}

/// Binds the API's listener at `address` (`api.listen`), with an error that says what to do.
pub async fn bind(address: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| DaemonError::Listen {
            address: address.to_string(),
            source,
        })
}

/// Opens the store and runs every stage until `shutdown` is cancelled, serving the API on
/// `listener`. With `follow`, edits to that config file (and the `probes/` beside it) are
/// applied while running.
pub async fn run(
    config: Config,
    clock: Clock,
    listener: TcpListener,
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
        .map_err(|join| DaemonError::Panicked(join.to_string()))??;
    let now = clock.now();
    let (store, watched) = tokio::task::spawn_blocking(move || {
        let watched = segments::watch_unwatched(&store, now);
        (store, watched)
    })
    .await
    .map_err(|join| DaemonError::Panicked(join.to_string()))?;
    let watched = watched?;
    if watched > 0 {
        info!(
            captures = watched,
            "captures checked before the survival watch existed are now watched"
        );
    }
    // Cursors before the pipeline runs, so a target added now misses none of its first events.
    notify::start_cursors(&store, &config.notify)?;
    let book = store
        .get_state(upkeep::BOOK_STATE)?
        .and_then(|bytes| serde_json::from_slice::<DomainBook>(&bytes).ok())
        .unwrap_or_default();
    info!(
        path = %store.path().display(),
        records = store.count_streams()?,
        queue = store.queue_len()?,
        "database open"
    );
    let status_log = status::load(&store);
    let (server_tx, server_rx) = tokio::sync::watch::channel(api::ServerSettings::from_config(&config.api));
    info!(
        source = config.source.kind.name(),
        listing = %config.source.describe(),
        domains = config.domains.iter().filter(|d| d.enabled).count(),
        requests_per_second = config.limits.requests_per_second,
        "vodprobe serve started"
    );
    let address = listener
        .local_addr()
        .map_or_else(|_| config.api.listen.to_string(), |a| a.to_string());
    info!("API listening on http://{address}/ (try /api/v1/vods, /healthz, /metrics)");
    let metrics = Arc::new(Metrics::new());
    let upkeep = upkeep::Upkeep {
        budget: Arc::new(Budget::new(config.limits.requests_per_second)),
        settings: Arc::new(SettingsCell::new(Settings::new(config))),
        clock,
        store: Arc::new(StoreSlot::new(store)),
        domains: Arc::new(Domains::new(book)),
        activity: Arc::new(Activity::default()),
        metrics: metrics.clone(),
        notify: Arc::new(notify::NotifyBook::default()),
        status: status_log,
    };
    describe(&metrics);
    // A domain the saved book shows answering may have recovered after the probes it held back
    // were last written (a crash between the two): they are due now rather than after their
    // back-off.
    let answering: Vec<String> = {
        let settings = upkeep.settings.get();
        let book = upkeep.domains.snapshot();
        settings
            .config
            .domains
            .iter()
            .filter(|domain| domain.enabled && !book.is_down(&domain.url))
            .map(|domain| domain.url.clone())
            .collect()
    };
    upkeep
        .requeue_after_recovery(upkeep.settings.get(), answering, upkeep.clock.now())
        .await;
    let config_status = Arc::new(reconfigure::ConfigStatus::new(server_tx));

    let tracker = TaskTracker::new();
    let api_backend: Arc<dyn api::Backend> =
        Arc::new(backend::ApiBackend::new(upkeep.clone(), config_status.clone()));
    let api_done = CancellationToken::new();
    let api_task = tokio::spawn({
        let api_done = api_done.clone();
        async move { api::serve(listener, api_backend, server_rx, api_done).await }
    });
    upkeep.refresh_counts().await;
    let timetable = Timetable {
        settings: upkeep.settings.clone(),
        clock,
        shutdown: shutdown.clone(),
    };
    let job = upkeep.clone();
    tracker.spawn(timetable.clone().every(
        |s| &s.counts,
        move || {
            let job = job.clone();
            async move { job.refresh_counts().await }
        },
    ));
    let mut crawl = crawl::Crawl::new(crawl::CrawlParts {
        settings: upkeep.settings.clone(),
        clock,
        store: upkeep.store.clone(),
        activity: upkeep.activity.clone(),
        metrics: metrics.clone(),
    });
    let crawl_timetable = timetable.clone();
    tracker.spawn(async move {
        while crawl_timetable.next_run(|s| &s.discover).await {
            crawl.tick().await;
        }
    });
    let probing = probing::Probing::new(
        probing::ProbeParts {
            settings: upkeep.settings.clone(),
            clock,
            store: upkeep.store.clone(),
            budget: upkeep.budget.clone(),
            domains: upkeep.domains.clone(),
            activity: upkeep.activity.clone(),
            metrics: metrics.clone(),
            videos: Arc::new(probing::VideoList::default()),
        },
        tracker.clone(),
        shutdown.clone(),
    );
    tracker.spawn(timetable.clone().every(
        |s| &s.probe,
        move || {
            let probing = probing.clone();
            async move { probing.start_due().await }
        },
    ));
    let job = upkeep.clone();
    tracker.spawn(timetable.clone().every(
        |s| &s.health,
        move || {
            let job = job.clone();
            async move { job.check_health().await }
        },
    ));
    let job = upkeep.clone();
    tracker.spawn(timetable.clone().every(
        |s| &s.prune,
        move || {
            let job = job.clone();
            async move { job.prune().await }
        },
    ));
    let job = upkeep.clone();
    let stop = shutdown.clone();
    tracker.spawn(timetable.clone().every(
        |s| &s.compact,
        move || {
            let (job, stop) = (job.clone(), stop.clone());
            async move { job.compact(&stop).await }
        },
    ));
    let notify_parts = notify::NotifyParts {
        settings: upkeep.settings.clone(),
        clock,
        store: upkeep.store.clone(),
        metrics: metrics.clone(),
        book: upkeep.notify.clone(),
    };
    tracker.spawn(notify::run(notify_parts, tracker.clone(), shutdown.clone()));
    let (job, stop) = (upkeep.clone(), shutdown.clone());
    tracker.spawn(async move { job.report_status(&stop).await });
    let (job, stop) = (upkeep.clone(), shutdown.clone());
    tracker.spawn(async move { job.pack_playlists(&stop).await });
    let (job, stop) = (upkeep.clone(), shutdown.clone());
    tracker.spawn(async move { job.keep_status(&stop).await });
    if let Some(file) = follow {
        let reconfigure = reconfigure::Reconfigure {
            settings: upkeep.settings.clone(),
            budget: upkeep.budget.clone(),
            metrics: metrics.clone(),
            status: config_status,
        };
        tracker.spawn(reconfigure::follow(reconfigure, file, shutdown.clone()));
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
    upkeep.save_book().await;
    upkeep.save_status().await;
    // The API answers until the pipeline has stopped, then finishes its requests.
    api_done.cancel();
    let _ = api_task.await;
    info!("stopped");
    Ok(())
}

/// Declares every stage's series once, at start-up.
fn describe(metrics: &Metrics) {
    crawl::describe(metrics);
    confirm::describe(metrics);
    reread::describe(metrics);
    follow::describe(metrics);
    notify::describe(metrics);
    probing::describe(metrics);
    qualities::describe(metrics);
    segments::describe(metrics);
    audio::describe(metrics);
    upkeep::describe(metrics);
    backend::describe(metrics);
    reconfigure::describe(metrics);
}
