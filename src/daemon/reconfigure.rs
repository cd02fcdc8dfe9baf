//! Live configuration: follow `config.toml` and `probes/`, validate every edit exactly as at
//! start-up, and swap the settings in force when it is valid.
//!
//! A refused edit changes nothing: the log and `/healthz` name the file, line and key, and the
//! last good settings stay in force until a valid edit clears the error. A deleted file keeps
//! them too. Keys read only at start-up (`api.listen`, `data_dir`, `limits.cache_bytes`) keep
//! their running value and are named in the log. Domain health and learned paths live outside
//! the settings (keyed by URL), so they survive; a removed domain is not asked again even by
//! searches already running (see `Steering`). `SIGHUP` reloads too, for `systemctl reload`.

use super::every::blocking;
use super::state::{Settings, SettingsCell};
use crate::api::{ComponentStatus, ServerSettings};
use crate::budget::Budget;
use crate::config::{self, Config, ConfigError};
use crate::fetch::{FetchSettings, Fetcher};
use crate::follow::Selection;
use crate::metrics::{Kind, Metrics};
use crate::reload::ConfigWatch;
use crate::track::Rules;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// What reconfiguration uses of the appliance.
pub struct Reconfigure {
    pub settings: Arc<SettingsCell>,
    pub budget: Arc<Budget>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<ConfigStatus>,
}

/// What `/healthz` says about the configuration, shared with the API's backend.
pub struct ConfigStatus(Mutex<ConfigState>);

impl ConfigStatus {
    pub fn new(server: tokio::sync::watch::Sender<ServerSettings>) -> ConfigStatus {
        ConfigStatus(Mutex::new(ConfigState::new(server)))
    }

    fn lock(&self) -> MutexGuard<'_, ConfigState> {
        // Plain values, consistent at every return point.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn status(&self, config: &Config) -> ComponentStatus {
        self.lock().status(config)
    }
}

struct ConfigState {
    /// Why the last reload was refused (or the file is gone), until a valid edit.
    error: Option<String>,
    /// Start-up-only keys edited since the start: (key, running, in the file).
    pending_restart: Vec<(&'static str, String, String)>,
    /// Wall-clock unix seconds of the last applied reload.
    reloaded_at: Option<i64>,
    server: tokio::sync::watch::Sender<ServerSettings>,
}

impl ConfigState {
    fn new(server: tokio::sync::watch::Sender<ServerSettings>) -> ConfigState {
        ConfigState {
            error: None,
            pending_restart: Vec::new(),
            reloaded_at: None,
            server,
        }
    }

    fn status(&self, config: &Config) -> ComponentStatus {
        let source = match &config.file {
            Some(path) => format!("loaded from {}", path.display()),
            None => "the built-in default".to_string(),
        };
        let mut message = match (&self.error, self.reloaded_at) {
            (Some(error), _) => format!(
                "{error}; the last good settings ({source}) stay in force until the file is \
                 corrected (it is read again when saved)"
            ),
            (None, Some(at)) => format!("{source}, reloaded at {}", wall_time(at)),
            (None, None) => source,
        };
        for (key, running, wanted) in &self.pending_restart {
            message.push_str(&format!(
                "; {key} changed ({running} -> {wanted}): takes effect at the next start"
            ));
        }
        ComponentStatus {
            ok: self.error.is_none(),
            message: Some(message),
        }
    }
}

fn wall_time(unix: i64) -> String {
    crate::api::rfc3339(unix)
}

/// Wall-clock time: reload times are real, even when the pipeline runs on a test clock.
fn wall_now() -> i64 {
    crate::schedule::Clock::system().now()
}

pub fn describe(metrics: &Metrics) {
    metrics.describe(
        "vodprobe_config_reloads_total",
        Kind::Counter,
        "Configuration reloads by result: applied, unchanged, refused (invalid edit), missing (file deleted).",
    );
    metrics.describe(
        "vodprobe_config_last_reload_successful",
        Kind::Gauge,
        "1 if the configuration files on disk are in force, 0 if the last edit was refused.",
    );
    metrics.describe(
        "vodprobe_config_last_reload_success_timestamp_seconds",
        Kind::Gauge,
        "When the settings in force were last applied (start-up or reload).",
    );
    metrics.set("vodprobe_config_last_reload_successful", &[], 1.0);
    metrics.set(
        "vodprobe_config_last_reload_success_timestamp_seconds",
        &[],
        wall_now() as f64,
    );
}

/// Follows `file` (and `probes/` beside it) until shutdown; each settled change, or SIGHUP,
/// reloads.
pub async fn follow(parts: Reconfigure, file: PathBuf, shutdown: CancellationToken) {
    let mut watch = match ConfigWatch::start(&file) {
        Ok(watch) => {
            if watch.polling() {
                warn!(
                    "inotify is unavailable; checking {} for edits by polling instead",
                    file.display()
                );
            } else {
                debug!(file = %file.display(), "following the configuration for edits");
            }
            Some(watch)
        }
        Err(error) => {
            warn!("{error}; edits to the configuration apply after SIGHUP or a restart");
            None
        }
    };
    let mut hangup = Hangup::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = next_change(&mut watch) => {}
            () = hangup.recv() => info!("SIGHUP received: reloading the configuration"),
        }
        reload(&parts, &file).await;
    }
}

async fn next_change(watch: &mut Option<ConfigWatch>) {
    match watch {
        Some(watch) => watch.changed().await,
        None => std::future::pending().await,
    }
}

/// SIGHUP where there is one.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        Hangup {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending().await
    }
}

/// Reads, validates and applies the files as they are now.
async fn reload(parts: &Reconfigure, file: &Path) {
    let path = file.to_path_buf();
    let Some(loaded) = blocking("reading the configuration", move || config::load(Some(&path))).await else {
        return;
    };
    let metrics = &parts.metrics;
    match loaded {
        Ok(new) => apply(parts, new),
        Err(ConfigError::Read { path, source })
            if path == file && source.kind() == std::io::ErrorKind::NotFound =>
        {
            let message = format!("{} was deleted", file.display());
            warn!("{message}; the last good settings stay in force (the next start would not find it)");
            metrics.inc("vodprobe_config_reloads_total", &[("result", "missing")]);
            metrics.set("vodprobe_config_last_reload_successful", &[], 0.0);
            parts.status.lock().error = Some(message);
        }
        Err(error) => {
            let problems = error.to_string();
            error!(
                "configuration edit refused; the last good settings stay in force until the \
                 next valid edit:\n{problems}"
            );
            metrics.inc("vodprobe_config_reloads_total", &[("result", "refused")]);
            metrics.set("vodprobe_config_last_reload_successful", &[], 0.0);
            parts.status.lock().error = Some(problems.replace('\n', "; "));
        }
    }
}

/// Swaps in a valid configuration, rebuilding only what depends on what changed.
fn apply(parts: &Reconfigure, new: Config) {
    let metrics = &parts.metrics;
    let current = parts.settings.get();
    let running = &current.config;
    let pending_restart = running.restart_only_changes(&new);
    let new = running.keeping_restart_only(new);
    let changes = running.changes(&new);
    {
        let mut state = parts.status.lock();
        if state.error.take().is_some() {
            info!("the configuration on disk is valid again");
        }
        for (key, old, wanted) in &pending_restart {
            if !state
                .pending_restart
                .iter()
                .any(|(k, _, w)| k == key && w == wanted)
            {
                warn!("{key} changed ({old} -> {wanted}); it takes effect at the next start");
            }
        }
        state.pending_restart = pending_restart;
    }
    metrics.set("vodprobe_config_last_reload_successful", &[], 1.0);
    if changes.is_empty() {
        debug!("configuration saved without a change in effect");
        metrics.inc("vodprobe_config_reloads_total", &[("result", "unchanged")]);
        return;
    }
    let fetch = FetchSettings::from_limits(&new.limits);
    let fetcher = if fetch == current.fetcher.settings() {
        current.fetcher.clone()
    } else {
        Fetcher::new(fetch)
    };
    if new.limits.requests_per_second != running.limits.requests_per_second {
        parts.budget.set_rate(new.limits.requests_per_second);
    }
    for gone in running
        .domains
        .iter()
        .filter(|d| !new.domains.iter().any(|n| n.url == d.url))
    {
        // Its statistics stay in the domain book (it may come back); its gauges go.
        let labels = [("domain", gone.url.as_str())];
        metrics.remove("vodprobe_domain_hits", &labels);
        metrics.remove("vodprobe_domain_up", &labels);
    }
    let server = ServerSettings::from_config(&new.api);
    // The followed ids resolved so far stay until the follow stage plans the new follows.
    let mut rules = Rules::from_config(&new);
    rules.selection = Arc::new(Selection {
        rules: new.rules.clone(),
        ..(*current.rules.selection).clone()
    });
    let settings = Settings {
        rules,
        fetcher,
        config: new,
    };
    parts.settings.replace(settings);
    {
        let mut state = parts.status.lock();
        state.reloaded_at = Some(wall_now());
        state.server.send_if_modified(|current| {
            let changed = *current != server;
            *current = server;
            changed
        });
    }
    metrics.inc("vodprobe_config_reloads_total", &[("result", "applied")]);
    metrics.set(
        "vodprobe_config_last_reload_success_timestamp_seconds",
        &[],
        wall_now() as f64,
    );
    info!(changed = %changes.join(", "), "configuration reloaded");
}
