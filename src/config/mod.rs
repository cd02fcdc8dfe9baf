//! Configuration: `config.toml` and `probes/*.toml` → a validated [`Config`].
//!
//! Defaults are written once, in the repository's `config.toml`, which the binary embeds: a
//! user's file is merged over it table by table (arrays such as `[[domain]]` replace the
//! default wholesale), so a short file is a valid file and the documented defaults cannot drift
//! from the code. Raw TOML is deserialized with unknown keys refused, then validated into typed
//! values (durations, cron schedules, URLs, probe modules); only the validated type travels.
//! Every problem names its file, line and key, and all problems are reported at once.

use probes::{ProbeModule, ProbeModuleError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

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

#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    pub kind: SourceKind,
    pub gql_url: String,
    pub helix_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub min_viewers_observe: u32,
    pub min_viewers_record: u32,
    pub restart_every: Duration,
    pub pages_per_second: f64,
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
    pub retries: Vec<Duration>,
    pub retention: Duration,
    pub max_queue: usize,
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

    /// Keys read only at start-up whose value differs in `new`: (key, running, new).
    pub fn restart_only_changes(&self, new: &Config) -> Vec<(&'static str, String, String)> {
        let mut changes = Vec::new();
        if self.api.listen != new.api.listen {
            changes.push((
                "api.listen",
                self.api.listen.to_string(),
                new.api.listen.to_string(),
            ));
        }
        if self.data_dir != new.data_dir {
            let show = |dir: &Path| dir.display().to_string();
            changes.push(("data_dir", show(&self.data_dir), show(&new.data_dir)));
        }
        if self.limits.cache_bytes != new.limits.cache_bytes {
            changes.push((
                "limits.cache_bytes",
                self.limits.cache_bytes.to_string(),
                new.limits.cache_bytes.to_string(),
            ));
        }
        changes
    }

    /// `new` with this configuration's start-up-only keys, which a running appliance keeps.
    pub fn keeping_restart_only(&self, mut new: Config) -> Config {
        new.api.listen = self.api.listen;
        new.data_dir = self.data_dir.clone();
        new.limits.cache_bytes = self.limits.cache_bytes;
        new
    }

    /// What differs in `new`, by table and domain, for the log. Values are left out: some are
    /// secrets (`api.admin_token`, `source.client_secret`).
    pub fn changes(&self, new: &Config) -> Vec<String> {
        let mut changes = Vec::new();
        let mut table = |name: &str, same: bool| {
            if !same {
                changes.push(format!("[{name}]"));
            }
        };
        table("api", self.api == new.api);
        table("source", self.source == new.source);
        table("schedule", self.schedule == new.schedule);
        table("pipeline", self.pipeline == new.pipeline);
        table("limits", self.limits == new.limits);
        for domain in &new.domains {
            match self.domains.iter().find(|d| d.url == domain.url) {
                None => changes.push(format!("domain {} added", domain.url)),
                Some(old) if old != domain => changes.push(format!("domain {} changed", domain.url)),
                Some(_) => {}
            }
        }
        for domain in &self.domains {
            if !new.domains.iter().any(|d| d.url == domain.url) {
                changes.push(format!("domain {} removed", domain.url));
            }
        }
        for (name, module) in &new.probes {
            match self.probes.get(name) {
                None => changes.push(format!("probe module {name} added")),
                Some(old) if old != module => changes.push(format!("probe module {name} changed")),
                Some(_) => {}
            }
        }
        for name in self.probes.keys() {
            if !new.probes.contains_key(name) {
                changes.push(format!("probe module {name} removed"));
            }
        }
        if self.file != new.file {
            changes.push("file".to_string());
        }
        changes
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

/// One thing wrong with a configuration file, located as precisely as possible.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
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

/// Merges `user` over `defaults`: tables recursively, everything else (arrays included) replaced.
fn merge(defaults: &mut toml::Table, user: toml::Table) {
    for (key, value) in user {
        match (defaults.get_mut(&key), value) {
            (Some(toml::Value::Table(default_table)), toml::Value::Table(user_table)) => {
                merge(default_table, user_table)
            }
            (_, value) => {
                defaults.insert(key, value);
            }
        }
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The 1-based line of a dotted key path (`limits.request_timeout`, `domain[2].url`,
/// `form[1].kind`) in a TOML text, or of its table when the key itself is absent.
/// A line scanner rather than a full parser: it understands `[table]`, `[[array]]` and `key =`
/// lines, which is how configuration files are written; anything else falls back to `None`.
pub fn locate(text: &str, path: &str) -> Option<usize> {
    let mut parts: Vec<(String, Option<usize>)> = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, index)) => {
                let index = index.trim_end_matches(']').parse().ok();
                parts.push((name.to_string(), index));
            }
            None => parts.push((part.to_string(), None)),
        }
    }
    let (table, key) = match parts.len() {
        0 => return None,
        1 => (None, parts.remove(0)),
        _ => {
            let key = parts.pop().expect("two or more parts");
            (Some(parts.remove(0)), key)
        }
    };
    let mut in_table = table.is_none();
    let mut seen = 0usize;
    let mut table_line = None;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        // A top-level array of tables key (`domain[2]`) locates its header.
        if table.is_none() && key.1.is_some() && trimmed.starts_with("[[") {
            let header = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            if header == key.0 {
                if key.1 == Some(seen) {
                    return Some(number + 1);
                }
                seen += 1;
            }
        }
        if trimmed.starts_with('[') {
            let header = trimmed.trim_start_matches('[');
            let header = header.split(']').next().unwrap_or("").trim();
            in_table = match &table {
                None => false,
                Some((name, index)) if header == name => {
                    let hit = index.is_none_or(|wanted| wanted == seen);
                    seen += 1;
                    hit
                }
                Some(_) => false,
            };
            if in_table {
                table_line = Some(number + 1);
            }
            continue;
        }
        if in_table {
            let name = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
            if trimmed.contains('=') && name == key.0 {
                return Some(number + 1);
            }
        }
    }
    table_line
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: String,
    api: RawApi,
    source: RawSource,
    schedule: RawSchedule,
    pipeline: RawPipeline,
    limits: RawLimits,
    #[serde(default)]
    domain: Vec<RawDomain>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    listen: String,
    admin_token: String,
    cors_origin: String,
    max_concurrent_requests: i64,
    max_connections: i64,
    header_timeout: String,
    idle_timeout: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: String,
    gql_url: String,
    helix_url: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    min_viewers_observe: i64,
    min_viewers_record: i64,
    restart_every: String,
    pages_per_second: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    discover: String,
    probe: String,
    health: String,
    prune: String,
    counts: String,
    compact: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    ended_after: String,
    settle: String,
    learn_live_after: String,
    align_to_hour: bool,
    hour_margin: String,
    retries: Vec<String>,
    retention: String,
    max_queue: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    requests_per_second: f64,
    lookup_requests_per_second: f64,
    connect_timeout: String,
    request_timeout: String,
    max_playlist_bytes: i64,
    cache_bytes: i64,
    compact_waste: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    url: String,
    probe: String,
    enabled: Option<bool>,
    requests_per_second: Option<f64>,
    timeout: Option<String>,
}

/// Parses `"500ms"`, `"90s"`, `"15m"`, `"1h"`, `"60d"` and combinations such as `"1h30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let explain =
        || format!("{text:?} is not a duration; write e.g. \"500ms\", \"90s\", \"15m\", \"1h\", \"60d\"");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(explain());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(explain());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| explain())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(explain()),
        };
        rest = &rest[unit_len..];
        let millis = number.checked_mul(millis_per_unit).ok_or_else(explain)?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(explain)?;
    }
    Ok(total)
}

/// Collects every problem while turning raw values into typed ones; placeholders stand in for
/// invalid values so validation can continue and report everything at once.
struct Validator {
    problems: Vec<(String, String)>,
}

impl Validator {
    fn report(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push((key.to_string(), message.into()));
    }

    fn duration(&mut self, key: &str, text: &str, allow_zero: bool) -> Duration {
        match parse_duration(text) {
            Ok(duration) if duration.is_zero() && !allow_zero => {
                self.report(key, "must be longer than zero");
                Duration::from_secs(1)
            }
            Ok(duration) => duration,
            Err(message) => {
                self.report(key, message);
                Duration::from_secs(1)
            }
        }
    }

    fn positive_rate(&mut self, key: &str, value: f64) -> f64 {
        if value.is_finite() && value > 0.0 {
            value
        } else {
            self.report(key, format!("must be a number greater than zero (got {value})"));
            1.0
        }
    }

    fn share(&mut self, key: &str, value: f64) -> f64 {
        if (0.0..=1.0).contains(&value) {
            value
        } else {
            self.report(
                key,
                format!("must be a share from 0 to 1, e.g. 0.1 (got {value})"),
            );
            1.0
        }
    }

    fn count(&mut self, key: &str, value: i64, min: i64) -> i64 {
        if value < min {
            self.report(key, format!("must be at least {min} (got {value})"));
            min
        } else {
            value
        }
    }

    fn http_url(&mut self, key: &str, url: &str, must_end_with_slash: bool) -> String {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
        if rest.is_none() || host.is_none_or(str::is_empty) {
            self.report(
                key,
                format!("{url:?} is not an http:// or https:// URL with a host"),
            );
        } else if url.contains(['?', '#', ' ']) {
            self.report(
                key,
                format!("{url:?}: a base URL has no query, fragment or spaces"),
            );
        } else if must_end_with_slash && !url.ends_with('/') {
            self.report(
                key,
                format!("{url:?} must end with \"/\" (write {:?})", format!("{url}/")),
            );
        }
        url.to_string()
    }

    fn cron(&mut self, key: &str, text: &str) -> CronSchedule {
        let schedule = match cron::Schedule::from_str(text) {
            Ok(schedule) => schedule,
            Err(error) => {
                self.report(
                    key,
                    format!(
                        "{text:?} is not a cron expression ({error}); write six fields with \
                         seconds first, e.g. \"0 */5 * * * *\" for every five minutes"
                    ),
                );
                cron::Schedule::from_str("* * * * * *").expect("a constant cron expression parses")
            }
        };
        CronSchedule {
            text: text.to_string(),
            schedule,
        }
    }

    fn config(
        &mut self,
        raw: RawConfig,
        file: Option<PathBuf>,
        probes: BTreeMap<String, ProbeModule>,
    ) -> Config {
        if raw.data_dir.trim().is_empty() {
            self.report("data_dir", "must name a directory");
        }
        let data_dir = base_dir_of(file.as_deref()).join(&raw.data_dir);
        let listen = raw.api.listen.parse().unwrap_or_else(|_| {
            self.report(
                "api.listen",
                format!(
                    "{:?} is not an address; write e.g. \"127.0.0.1:8080\"",
                    raw.api.listen
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let api = ApiConfig {
            listen,
            admin_token: raw.api.admin_token,
            cors_origin: raw.api.cors_origin,
            max_concurrent_requests: self.count(
                "api.max_concurrent_requests",
                raw.api.max_concurrent_requests,
                1,
            ) as usize,
            max_connections: self.count("api.max_connections", raw.api.max_connections, 1) as usize,
            header_timeout: self.duration("api.header_timeout", &raw.api.header_timeout, false),
            idle_timeout: self.duration("api.idle_timeout", &raw.api.idle_timeout, false),
        };
        let source = self.source(raw.source);
        let schedule = ScheduleConfig {
            discover: self.cron("schedule.discover", &raw.schedule.discover),
            probe: self.cron("schedule.probe", &raw.schedule.probe),
            health: self.cron("schedule.health", &raw.schedule.health),
            prune: self.cron("schedule.prune", &raw.schedule.prune),
            counts: self.cron("schedule.counts", &raw.schedule.counts),
            compact: self.cron("schedule.compact", &raw.schedule.compact),
        };
        let pipeline = self.pipeline(raw.pipeline);
        let limits = self.limits(raw.limits);
        let domains = self.domains(raw.domain, &probes);
        Config {
            file,
            data_dir,
            api,
            source,
            schedule,
            pipeline,
            limits,
            domains,
            probes,
        }
    }

    fn source(&mut self, raw: RawSource) -> SourceConfig {
        let kind = match raw.kind.as_str() {
            "gql" => SourceKind::Gql,
            "helix" => SourceKind::Helix,
            other => {
                self.report(
                    "source.kind",
                    format!("{other:?} is not a source; use \"gql\" or \"helix\""),
                );
                SourceKind::Gql
            }
        };
        if kind == SourceKind::Helix && raw.client_secret.is_empty() {
            self.report(
                "source.client_secret",
                "the helix source needs client_id and client_secret of an app registered at dev.twitch.tv",
            );
        }
        if raw.client_id.is_empty() {
            self.report("source.client_id", "must not be empty");
        }
        let observe = self.count("source.min_viewers_observe", raw.min_viewers_observe, 0);
        let record = self.count("source.min_viewers_record", raw.min_viewers_record, 0);
        if record < observe {
            self.report(
                "source.min_viewers_record",
                format!(
                    "{record} is below min_viewers_observe ({observe}): streams below that are never seen"
                ),
            );
        }
        SourceConfig {
            kind,
            gql_url: self.http_url("source.gql_url", &raw.gql_url, false),
            helix_url: self.http_url("source.helix_url", &raw.helix_url, true),
            token_url: self.http_url("source.token_url", &raw.token_url, false),
            client_id: raw.client_id,
            client_secret: raw.client_secret,
            min_viewers_observe: observe.min(i64::from(u32::MAX)) as u32,
            min_viewers_record: record.min(i64::from(u32::MAX)) as u32,
            restart_every: self.duration("source.restart_every", &raw.restart_every, false),
            pages_per_second: self.positive_rate("source.pages_per_second", raw.pages_per_second),
        }
    }

    fn pipeline(&mut self, raw: RawPipeline) -> PipelineConfig {
        let retries = raw
            .retries
            .iter()
            .enumerate()
            .map(|(index, text)| self.duration(&format!("pipeline.retries[{index}]"), text, false))
            .collect();
        PipelineConfig {
            ended_after: self.duration("pipeline.ended_after", &raw.ended_after, false),
            settle: self.duration("pipeline.settle", &raw.settle, true),
            learn_live_after: self.duration("pipeline.learn_live_after", &raw.learn_live_after, true),
            align_to_hour: raw.align_to_hour,
            hour_margin: self.duration("pipeline.hour_margin", &raw.hour_margin, true),
            retries,
            retention: self.duration("pipeline.retention", &raw.retention, false),
            max_queue: self.count("pipeline.max_queue", raw.max_queue, 1) as usize,
        }
    }

    fn limits(&mut self, raw: RawLimits) -> LimitsConfig {
        LimitsConfig {
            requests_per_second: self.positive_rate("limits.requests_per_second", raw.requests_per_second),
            lookup_requests_per_second: self.positive_rate(
                "limits.lookup_requests_per_second",
                raw.lookup_requests_per_second,
            ),
            connect_timeout: self.duration("limits.connect_timeout", &raw.connect_timeout, false),
            request_timeout: self.duration("limits.request_timeout", &raw.request_timeout, false),
            max_playlist_bytes: self.count("limits.max_playlist_bytes", raw.max_playlist_bytes, 1024)
                as usize,
            cache_bytes: self.count("limits.cache_bytes", raw.cache_bytes, 1 << 20) as u64,
            compact_waste: self.share("limits.compact_waste", raw.compact_waste),
        }
    }

    fn domains(&mut self, raw: Vec<RawDomain>, probes: &BTreeMap<String, ProbeModule>) -> Vec<DomainConfig> {
        let mut domains: Vec<DomainConfig> = Vec::with_capacity(raw.len());
        for (index, raw_domain) in raw.into_iter().enumerate() {
            let key = |field: &str| format!("domain[{index}].{field}");
            let url = self.http_url(&key("url"), &raw_domain.url, true);
            if domains.iter().any(|d| d.url == url) {
                self.report(&key("url"), format!("{url:?} is listed twice"));
            }
            if !probes.contains_key(&raw_domain.probe) {
                let known: Vec<&str> = probes.keys().map(String::as_str).collect();
                self.report(
                    &key("probe"),
                    format!(
                        "no probe module {:?}; known: {} (add probes/{}.toml beside the config)",
                        raw_domain.probe,
                        known.join(", "),
                        raw_domain.probe
                    ),
                );
            }
            let requests_per_second = raw_domain
                .requests_per_second
                .map(|rate| self.positive_rate(&key("requests_per_second"), rate));
            let timeout = raw_domain
                .timeout
                .as_deref()
                .map(|text| self.duration(&key("timeout"), text, false));
            domains.push(DomainConfig {
                url,
                probe: raw_domain.probe,
                enabled: raw_domain.enabled.unwrap_or(true),
                requests_per_second,
                timeout,
            });
        }
        domains
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Config, ConfigError> {
        parse(Some(PathBuf::from("/etc/vodprobe/config.toml")), text, &[])
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse_text(text) {
            Err(ConfigError::Invalid { problems }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn compaction_keys_have_defaults_and_are_checked() {
        let config = parse_text("").expect("defaults");
        assert_eq!(config.schedule.compact.text, "0 30 3 * * *");
        assert_eq!(config.limits.compact_waste, 0.1);
        let wrong = "[schedule]\ncompact = \"daily\"\n[limits]\ncompact_waste = 1.5\n";
        let keys: Vec<Option<String>> = problems(wrong).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            vec![
                Some("schedule.compact".to_string()),
                Some("limits.compact_waste".to_string())
            ]
        );
    }

    #[test]
    fn embedded_config_is_valid_and_documents_spec_defaults() {
        let config = parse(None, EMBEDDED_CONFIG, &[]).expect("embedded config is valid");
        assert_eq!(config.api.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.source.kind, SourceKind::Gql);
        assert_eq!(config.source.min_viewers_observe, 5);
        assert_eq!(config.source.min_viewers_record, 10);
        assert_eq!(config.pipeline.ended_after, Duration::from_secs(900));
        assert_eq!(
            config.pipeline.retries,
            vec![
                Duration::from_secs(600),
                Duration::from_secs(3600),
                Duration::from_secs(21600)
            ]
        );
        assert_eq!(config.pipeline.retention, Duration::from_secs(60 * 86400));
        assert_eq!(config.limits.requests_per_second, 3.0);
        assert_eq!(config.limits.lookup_requests_per_second, 20.0);
        assert_eq!(config.limits.max_playlist_bytes, 8_388_608);
        assert_eq!(config.limits.cache_bytes, 16_777_216);
        assert_eq!(config.domains.len(), 15);
        assert!(
            config
                .domains
                .iter()
                .all(|d| d.probe == "twitch-vod" && d.enabled)
        );
        assert_eq!(config.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn embedded_probe_modules_are_valid() {
        for (name, text) in EMBEDDED_PROBES {
            ProbeModule::from_toml(name, text).expect("embedded module is valid");
        }
    }

    #[test]
    fn short_file_takes_defaults_and_replaces_domains() {
        let config = parse_text(
            "[limits]\nrequests_per_second = 1.5\n\n[[domain]]\nurl = \"http://127.0.0.1:9/cdn/\"\nprobe = \"twitch-vod\"\ntimeout = \"2s\"\n",
        )
        .expect("valid");
        assert_eq!(config.limits.requests_per_second, 1.5);
        assert_eq!(config.limits.lookup_requests_per_second, 20.0);
        assert_eq!(config.domains.len(), 1);
        assert_eq!(config.domains[0].timeout, Some(Duration::from_secs(2)));
        assert_eq!(config.data_dir, PathBuf::from("/etc/vodprobe/data"));
    }

    #[test]
    fn durations() {
        let check = |text: &str, expected: Option<u64>| {
            assert_eq!(
                parse_duration(text).ok().map(|d| d.as_millis() as u64),
                expected,
                "{text}"
            );
        };
        check("500ms", Some(500));
        check("90s", Some(90_000));
        check("15m", Some(900_000));
        check("1h", Some(3_600_000));
        check("60d", Some(5_184_000_000));
        check("1h30m", Some(5_400_000));
        check("0s", Some(0));
        check("", None);
        check("10", None);
        check("s", None);
        check("5 m", None);
        check("1w", None);
        check("-5s", None);
        check("99999999999999999999d", None);
    }

    #[test]
    fn problems_name_file_line_and_key() {
        let text = "data_dir = \"d\"\n\n[limits]\nrequests_per_second = 0\nrequest_timeout = \"10 s\"\n";
        let found = problems(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].file, "/etc/vodprobe/config.toml");
        assert_eq!(found[0].key.as_deref(), Some("limits.requests_per_second"));
        assert_eq!(found[0].line, Some(4));
        assert_eq!(found[1].key.as_deref(), Some("limits.request_timeout"));
        assert_eq!(found[1].line, Some(5));
        assert!(
            found[1]
                .to_string()
                .starts_with("/etc/vodprobe/config.toml:5: key `limits.request_timeout`: ")
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let found = problems("[api]\nlisten = \"127.0.0.1:80\"\nmax_concurrent_requests = \n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, Some(3));
    }

    #[test]
    fn unknown_and_mistyped_keys_are_refused() {
        let found = problems("[limits]\nrequests_per_secnd = 3\n");
        assert_eq!(found[0].line, Some(2), "{found:?}");
        assert!(found[0].message.contains("requests_per_secnd"), "{found:?}");
        let found = problems("[pipeline]\nmax_queue = \"many\"\n");
        assert_eq!(found[0].key.as_deref(), Some("pipeline.max_queue"));
        assert_eq!(found[0].line, Some(2));
    }

    #[test]
    fn domain_problems() {
        let text = "[[domain]]\nurl = \"https://a.example/\"\nprobe = \"twitch-vod\"\n\n[[domain]]\nurl = \"https://b.example\"\nprobe = \"nope\"\n\n[[domain]]\nurl = \"ftp://c/\"\nprobe = \"twitch-vod\"\n[[domain]]\nurl = \"https://a.example/\"\nprobe = \"twitch-vod\"\n";
        let found = problems(text);
        let keys: Vec<(Option<&str>, Option<usize>)> =
            found.iter().map(|p| (p.key.as_deref(), p.line)).collect();
        assert_eq!(
            keys,
            vec![
                (Some("domain[1].url"), Some(6)),
                (Some("domain[1].probe"), Some(7)),
                (Some("domain[2].url"), Some(10)),
                (Some("domain[3].url"), Some(13)),
            ]
        );
        assert!(found[0].message.contains("must end with \"/\""));
        assert!(found[1].message.contains("known: twitch-vod"));
    }

    #[test]
    fn cron_and_thresholds() {
        let found = problems("[schedule]\nprobe = \"*/5 * * * *\"\n[source]\nmin_viewers_record = 2\n");
        let keys: Vec<&str> = found.iter().filter_map(|p| p.key.as_deref()).collect();
        assert_eq!(keys, vec!["source.min_viewers_record", "schedule.probe"]);
        let found = problems("[source]\nkind = \"helix\"\n");
        assert_eq!(found[0].key.as_deref(), Some("source.client_secret"));
    }

    #[test]
    fn probe_files_override_and_report_their_own_lines() {
        let good = EMBEDDED_PROBES[0]
            .1
            .replace("\"chunked\", \"2160p60\"", "\"chunked\"");
        let files = vec![(
            "twitch-vod".to_string(),
            PathBuf::from("probes/twitch-vod.toml"),
            good,
        )];
        let config = parse(None, EMBEDDED_CONFIG, &files).expect("valid");
        assert!(
            !config.probes["twitch-vod"]
                .qualities
                .contains(&"2160p60".to_string())
        );

        let bad = EMBEDDED_PROBES[0]
            .1
            .replace("kind = \"unix-1\"", "kind = \"unix-2\"");
        let line = bad.lines().position(|l| l.contains("unix-2")).expect("present") + 1;
        let files = vec![("other".to_string(), PathBuf::from("probes/other.toml"), bad)];
        let Err(ConfigError::Invalid { problems }) = parse(None, EMBEDDED_CONFIG, &files) else {
            panic!("expected a refusal");
        };
        assert_eq!(problems[0].file, "probes/other.toml");
        assert_eq!(problems[0].key.as_deref(), Some("form[1].kind"));
        assert_eq!(problems[0].line, Some(line));
    }

    #[test]
    fn locate_paths() {
        let text = "a = 1\n[t]\nx = 2\n[[d]]\nu = 1\n[[d]]\nu = 2\n";
        assert_eq!(locate(text, "a"), Some(1));
        assert_eq!(locate(text, "t.x"), Some(3));
        assert_eq!(locate(text, "t.missing"), Some(2));
        assert_eq!(locate(text, "d[1].u"), Some(7));
        assert_eq!(locate(text, "d[0].u"), Some(5));
        assert_eq!(locate(text, "d[1]"), Some(6));
        assert_eq!(locate(text, "nothing.here"), None);
    }
}
