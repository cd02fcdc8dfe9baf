//! Configuration: `config.toml` and `probes/*.toml` → a validated [`Config`].
//!
//! Defaults are written once, in the repository's `config.toml`, which the binary embeds: a
//! user's file is merged over it table by table (arrays such as `[[domain]]` replace the
//! default wholesale), so a short file is a valid file and the documented defaults cannot drift
//! from the code. Raw TOML is deserialized with unknown keys refused, then validated into typed
//! values (durations, cron schedules, URLs, probe modules); only the validated type travels.
//! Every problem names its file, line and key, and all problems are reported at once.
//!
//! This file holds the validated types and the loading (`load`, `parse`, probe module files);
//! the other concepts have their own files, re-exported here so callers keep the
//! `crate::config::…` paths: `raw.rs` (the raw TOML shape, its validation, durations),
//! `report.rs` (a [`Problem`] and the line of a key, [`locate`]), `diff.rs` (what a reload
//! changes: [`Config::changes`], [`Config::restart_only_changes`]).

mod diff;
mod raw;
mod report;

#[cfg(test)]
mod tests;

use probes::{ProbeModule, ProbeModuleError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::parse_duration;
pub use report::{Problem, locate};

use raw::{RawConfig, Validator, merge};
use report::line_of_offset;

/// The repository's `config.toml`: the defaults and the documentation of every key.
pub const EMBEDDED_CONFIG: &str = include_str!("../../config.toml");

/// The repository's `probes/*.toml`, embedded as defaults: (module name, text).
pub const EMBEDDED_PROBES: &[(&str, &str)] = &[("twitch-vod", include_str!("../../probes/twitch-vod.toml"))];

const EMBEDDED_CONFIG_NAME: &str = "<embedded config.toml>";

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it came from; `None` for the embedded default.
    pub file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub api: ApiConfig,
    pub source: SourceConfig,
    pub schedule: ScheduleConfig,
    pub pipeline: PipelineConfig,
    pub limits: LimitsConfig,
    pub domains: Vec<DomainConfig>,
    /// `[[follow]]`: channels recorded whatever their viewers, in the order written.
    pub follows: Vec<FollowConfig>,
    /// `[[rule]]`: record or skip by category, language, title, maturity and viewers; the
    /// first rule that matches decides.
    pub rules: Vec<RuleConfig>,
    /// `[[notify]]`: where lifecycle events are delivered, each target in order.
    pub notify: Vec<NotifyConfig>,
    /// Probe modules by name: embedded defaults, overridden by the `probes/` directory.
    pub probes: BTreeMap<String, ProbeModule>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    pub admin_token: String,
    pub cors_origin: String,
    pub max_concurrent_requests: usize,
    /// Open connections at once; beyond this new connections wait in the kernel's backlog.
    pub max_connections: usize,
    /// A client must send a request's headers within this (slowloris).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Gql,
    Helix,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Gql => "gql",
            SourceKind::Helix => "helix",
        }
    }
}

impl SourceConfig {
    /// Which listing is in force and why, for the start-up log and `/healthz`.
    pub fn describe(&self) -> String {
        let has_credentials = !self.client_id.is_empty() && !self.client_secret.is_empty();
        match (self.kind, has_credentials) {
            (SourceKind::Helix, true) => "helix (client_id and client_secret are set)".to_string(),
            (SourceKind::Helix, false) => "helix".to_string(),
            (SourceKind::Gql, false) => format!(
                "gql with client id {} (no client_secret set for helix)",
                self.client_id
            ),
            (SourceKind::Gql, true) => format!("gql with client id {}", self.client_id),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    /// The listing in force: `kind = "auto"` is resolved when the config is read.
    pub kind: SourceKind,
    pub gql_url: String,
    pub helix_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub min_viewers_observe: u32,
    pub min_viewers_record: u32,
    pub restart_every: Duration,
    /// A live stream the listing has not shown for this long is asked about by channel id
    /// (zero: never; ends then wait for complete passes and `ended_after`).
    pub confirm_after: Duration,
    /// At most one captured channel's video list is re-read per this long, to see captures
    /// deleted or made sub-only (zero: never).
    pub reread_videos_every: Duration,
    /// A channel's video list is re-read at most this often.
    pub reread_channel_after: Duration,
    pub pages_per_second: f64,
    /// `all`: crawl the listing, follows on top; `followed`: only the followed channels.
    pub scope: Scope,
}

/// What the appliance watches (`source.scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The live listing's crawl, and the followed channels checked by id on top.
    All,
    /// Only the followed channels, checked by id in batches: no crawl of the listing.
    Followed,
}

/// Who a `[[follow]]` entry names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FollowTarget {
    /// A login, lower-cased; resolved to a channel id once, then the id is followed.
    Login(String),
    Id(u64),
}

/// One `[[follow]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowConfig {
    pub target: FollowTarget,
    /// Replaces `pipeline.retention` for this channel's broadcasts.
    pub retention: Option<Duration>,
}

/// How a `[[notify]]` target is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyKind {
    /// A JSON POST signed with HMAC-SHA256 of the body under `secret`.
    Webhook { secret: String },
    /// An ntfy topic URL: the message text POSTed with `Title`, `Tags` and `Click` headers.
    Ntfy,
}

/// One `[[notify]]` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Names the target in logs, metrics and `/healthz`, and keys its delivery cursor.
    pub name: String,
    pub kind: NotifyKind,
    pub url: String,
    /// Only these kinds (empty: every kind).
    pub events: Vec<crate::event::EventKind>,
    /// Only these channels, by login (lower-cased) or numeric id (empty: every channel).
    pub channels: Vec<String>,
    /// Events the target may fall behind; beyond this the oldest are skipped and counted.
    pub max_backlog: u64,
}

/// What a matching `[[rule]]` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// Record whatever the viewers (above the listing's `min_viewers_observe`).
    Record,
    /// Leave out: not stored, not probed.
    Skip,
}

/// One `[[rule]]`: every condition given must hold (an empty list or an absent key does not
/// constrain); lists match when any of their entries does.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleConfig {
    pub action: RuleAction,
    /// Category names (case-insensitive) or ids.
    pub games: Vec<String>,
    /// Broadcast languages, lower-cased ("en", "pt-br").
    pub languages: Vec<String>,
    /// Words, lower-cased, any of which in the title matches (whole words).
    pub title_words: Vec<String>,
    pub mature: Option<bool>,
    pub min_viewers: Option<u32>,
    pub max_viewers: Option<u32>,
    /// The rule applies to followed channels too (by default a follow overrides rules).
    pub followed: bool,
}

/// A cron schedule with the text it came from (for logs and `/healthz`).
#[derive(Clone, Debug)]
pub struct CronSchedule {
    pub text: String,
    pub schedule: cron::Schedule,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &CronSchedule) -> bool {
        self.text == other.text
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleConfig {
    pub discover: CronSchedule,
    pub probe: CronSchedule,
    pub health: CronSchedule,
    pub prune: CronSchedule,
    pub counts: CronSchedule,
    /// When the database may be rewritten compactly (if [`LimitsConfig::compact_waste`] says so).
    pub compact: CronSchedule,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub ended_after: Duration,
    pub settle: Duration,
    pub learn_live_after: Duration,
    pub align_to_hour: bool,
    pub hour_margin: Duration,
    /// How often originals still answering are asked again (`crate::audio`).
    pub original_audio_every: Duration,
    pub retries: Vec<Duration>,
    pub retention: Duration,
    pub max_queue: usize,
    /// Most budget time the due probes may wait for (see `track::shed_beyond_wait`).
    pub max_wait: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    pub requests_per_second: f64,
    pub lookup_requests_per_second: f64,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_playlist_bytes: usize,
    pub cache_bytes: u64,
    /// A scheduled compaction runs when at least this share of the file is unused (0 to 1).
    pub compact_waste: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DomainConfig {
    /// Base URL, ending in `/`.
    pub url: String,
    /// Name of the probe module that builds this domain's URLs (present in `Config::probes`).
    pub probe: String,
    pub enabled: bool,
    pub requests_per_second: Option<f64>,
    pub timeout: Option<Duration>,
}

impl Config {
    /// The probe module of a domain. Validation guarantees it exists.
    pub fn module_of(&self, domain: &DomainConfig) -> &ProbeModule {
        self.probes
            .get(&domain.probe)
            .or_else(|| self.probes.values().next())
            .expect("validation guarantees every domain's probe module exists")
    }

    /// Where `probes/` and relative paths are looked up: the config file's directory, or the
    /// working directory for the embedded default.
    pub fn base_dir(&self) -> PathBuf {
        base_dir_of(self.file.as_deref())
    }
}

/// The directory `probes/` and relative paths are looked up in, for a config file (or `.`).
pub fn base_dir_of(file: Option<&Path>) -> PathBuf {
    match file.and_then(Path::parent) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Why a configuration was refused: every problem found, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

/// Which file to load: `--config PATH`, else `./config.toml` if present, else the embedded one.
pub fn resolve_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let local = PathBuf::from("config.toml");
            local.is_file().then_some(local)
        }
    }
}

/// Loads and validates the configuration as `serve`, `lookup` and `check-config` see it.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let file = resolve_path(explicit);
    let text = match &file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?,
        None => EMBEDDED_CONFIG.to_string(),
    };
    let probes_dir = base_dir_of(file.as_deref()).join("probes");
    let probe_files = read_probe_dir(&probes_dir)?;
    parse(file, &text, &probe_files)
}

/// A probe module file from disk: (module name, path, text).
pub type ProbeFile = (String, PathBuf, String);

fn read_probe_dir(dir: &Path) -> Result<Vec<ProbeFile>, ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| ConfigError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        let is_toml = path.extension().is_some_and(|ext| ext == "toml");
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if !is_toml || name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        files.push((name.to_string(), path, text));
    }
    files.sort();
    Ok(files)
}

/// Parses and validates a configuration from text; `file` is used in messages and for
/// relative paths. `probe_files` override the embedded probe modules by name.
pub fn parse(file: Option<PathBuf>, text: &str, probe_files: &[ProbeFile]) -> Result<Config, ConfigError> {
    let file_name = file
        .as_ref()
        .map_or_else(|| EMBEDDED_CONFIG_NAME.to_string(), |p| p.display().to_string());
    let mut problems = Vec::new();
    let probes = load_probes(probe_files, &mut problems);
    let problem = |line: Option<usize>, key: Option<String>, message: String| Problem {
        file: file_name.clone(),
        line,
        key,
        message,
    };

    let user: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            let line = error.span().map(|span| line_of_offset(text, span.start));
            problems.push(problem(line, None, error.message().trim().to_string()));
            return Err(ConfigError::Invalid { problems });
        }
    };
    let mut merged: toml::Table =
        toml::from_str(EMBEDDED_CONFIG).expect("the embedded config.toml parses (unit-tested)");
    merge(&mut merged, user);
    let raw: RawConfig = match serde_path_to_error::deserialize(toml::Value::Table(merged)) {
        Ok(raw) => raw,
        Err(error) => {
            let key = error.path().to_string();
            // toml appends "in `table`" on a second line; the key already says where.
            let message = error.inner().to_string();
            let message = message.lines().next().unwrap_or("").trim().to_string();
            problems.push(problem(locate(text, &key), Some(key), message));
            return Err(ConfigError::Invalid { problems });
        }
    };
    let mut validator = Validator { problems: Vec::new() };
    let config = validator.config(raw, file.clone(), probes);
    for (key, message) in validator.problems {
        problems.push(problem(locate(text, &key), Some(key), message));
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { problems })
    }
}

fn load_probes(probe_files: &[ProbeFile], problems: &mut Vec<Problem>) -> BTreeMap<String, ProbeModule> {
    let mut modules = BTreeMap::new();
    for (name, text) in EMBEDDED_PROBES {
        let module =
            ProbeModule::from_toml(name, text).expect("embedded probe modules are valid (unit-tested)");
        modules.insert(name.to_string(), module);
    }
    for (name, path, text) in probe_files {
        match ProbeModule::from_toml(name, text) {
            Ok(module) => {
                modules.insert(name.clone(), module);
            }
            Err(error) => {
                let (line, key) = match &error {
                    ProbeModuleError::Syntax { span, .. } => {
                        (span.as_ref().map(|s| line_of_offset(text, s.start)), None)
                    }
                    ProbeModuleError::Invalid { key, .. } => (locate(text, key), Some(key.clone())),
                };
                let message = match error {
                    ProbeModuleError::Syntax { message, .. } => message.trim().to_string(),
                    ProbeModuleError::Invalid { message, .. } => message,
                };
                problems.push(Problem {
                    file: path.display().to_string(),
                    line,
                    key,
                    message,
                });
            }
        }
    }
    modules
}
