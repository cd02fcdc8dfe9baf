//! The raw configuration, as TOML deserializes it, and its validation into the typed
//! [`Config`].
//!
//! The raw types mirror the file one to one (unknown keys refused, so a typo is an error, not a
//! silently ignored setting); values stay as written (strings for durations and schedules,
//! signed integers for counts) so that a wrong value is reported by the validator, with its
//! key, rather than by serde. The [`Validator`] reports every problem and carries on with a
//! placeholder, so one run lists them all.

use probes::ProbeModule;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{
    ApiConfig, Config, CronSchedule, DomainConfig, FollowConfig, FollowTarget, LimitsConfig, NotifyConfig,
    NotifyKind, PipelineConfig, RuleAction, RuleConfig, ScheduleConfig, Scope, SourceConfig, SourceKind,
    base_dir_of,
};

/// Merges `user` over `defaults`: tables recursively, everything else (arrays included) replaced.
pub(super) fn merge(defaults: &mut toml::Table, user: toml::Table) {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    data_dir: String,
    api: RawApi,
    source: RawSource,
    schedule: RawSchedule,
    pipeline: RawPipeline,
    limits: RawLimits,
    #[serde(default)]
    domain: Vec<RawDomain>,
    #[serde(default)]
    follow: Vec<RawFollow>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    notify: Vec<RawNotify>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    name: Option<String>,
    kind: String,
    url: String,
    secret: Option<String>,
    events: Option<Vec<String>>,
    #[serde(default)]
    channels: Vec<String>,
    max_backlog: Option<i64>,
}

/// A target's backlog bound when `max_backlog` is not given.
const DEFAULT_MAX_BACKLOG: u64 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFollow {
    login: Option<String>,
    id: Option<i64>,
    retention: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: String,
    #[serde(default)]
    games: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    title_words: Vec<String>,
    mature: Option<bool>,
    min_viewers: Option<i64>,
    max_viewers: Option<i64>,
    #[serde(default)]
    followed: bool,
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
    confirm_after: String,
    reread_videos_every: String,
    reread_channel_after: String,
    pages_per_second: f64,
    scope: String,
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
    original_audio_every: String,
    retries: Vec<String>,
    retention: String,
    max_queue: i64,
    max_wait: String,
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
pub(super) struct Validator {
    /// (key path, message), in the order found.
    pub(super) problems: Vec<(String, String)>,
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

    pub(super) fn config(
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
        let follows = self.follows(raw.follow);
        let rules = self.rules(raw.rule);
        let notify = self.notify(raw.notify);
        Config {
            file,
            data_dir,
            api,
            source,
            schedule,
            pipeline,
            limits,
            domains,
            follows,
            rules,
            notify,
            probes,
        }
    }

    fn notify(&mut self, raw: Vec<RawNotify>) -> Vec<NotifyConfig> {
        let mut targets: Vec<NotifyConfig> = Vec::with_capacity(raw.len());
        for (index, raw) in raw.into_iter().enumerate() {
            let key = |field: &str| format!("notify[{index}].{field}");
            let url = self.http_url(&key("url"), &raw.url, false);
            let kind = match (raw.kind.as_str(), raw.secret) {
                ("webhook", Some(secret)) if !secret.is_empty() => NotifyKind::Webhook { secret },
                ("webhook", _) => {
                    self.report(&key("secret"), "a webhook needs a secret to sign its bodies with");
                    NotifyKind::Webhook {
                        secret: String::new(),
                    }
                }
                ("ntfy", None) => NotifyKind::Ntfy,
                ("ntfy", Some(_)) => {
                    self.report(&key("secret"), "ntfy is not signed; leave secret out");
                    NotifyKind::Ntfy
                }
                (other, _) => {
                    self.report(
                        &key("kind"),
                        format!("{other:?} is not a notification kind; use \"webhook\" or \"ntfy\""),
                    );
                    NotifyKind::Ntfy
                }
            };
            let events = raw
                .events
                .unwrap_or_default()
                .iter()
                .filter_map(|name| {
                    let kind = crate::event::EventKind::parse(name);
                    if kind.is_none() {
                        self.report(&key("events"), format!("{name:?} is not an event kind"));
                    }
                    kind
                })
                .collect();
            let channels = raw
                .channels
                .iter()
                .map(|channel| channel.trim().to_ascii_lowercase())
                .collect();
            let max_backlog = match raw.max_backlog {
                None => DEFAULT_MAX_BACKLOG,
                Some(n) if n > 0 => n as u64,
                Some(n) => {
                    self.report(&key("max_backlog"), format!("must be above 0 (got {n})"));
                    1
                }
            };
            let name = raw.name.unwrap_or_else(|| url.clone());
            if targets.iter().any(|target| target.name == name) {
                self.report(&key("name"), format!("{name:?} names two targets"));
            }
            targets.push(NotifyConfig {
                name,
                kind,
                url,
                events,
                channels,
                max_backlog,
            });
        }
        targets
    }

    fn source(&mut self, raw: RawSource) -> SourceConfig {
        let kind = match raw.kind.as_str() {
            "auto" => auto_source_kind(&raw),
            "gql" => SourceKind::Gql,
            "helix" => SourceKind::Helix,
            other => {
                self.report(
                    "source.kind",
                    format!("{other:?} is not a source; use \"auto\", \"gql\" or \"helix\""),
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
            confirm_after: self.duration("source.confirm_after", &raw.confirm_after, true),
            reread_videos_every: self.duration("source.reread_videos_every", &raw.reread_videos_every, true),
            reread_channel_after: self.duration(
                "source.reread_channel_after",
                &raw.reread_channel_after,
                false,
            ),
            pages_per_second: self.positive_rate("source.pages_per_second", raw.pages_per_second),
            scope: match raw.scope.as_str() {
                "all" => Scope::All,
                "followed" => Scope::Followed,
                other => {
                    self.report(
                        "source.scope",
                        format!("{other:?} is not a scope; use \"all\" or \"followed\""),
                    );
                    Scope::All
                }
            },
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
            original_audio_every: self.duration(
                "pipeline.original_audio_every",
                &raw.original_audio_every,
                false,
            ),
            retries,
            retention: self.duration("pipeline.retention", &raw.retention, false),
            max_queue: self.count("pipeline.max_queue", raw.max_queue, 1) as usize,
            max_wait: self.duration("pipeline.max_wait", &raw.max_wait, false),
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

    fn follows(&mut self, raw: Vec<RawFollow>) -> Vec<FollowConfig> {
        let mut follows: Vec<FollowConfig> = Vec::with_capacity(raw.len());
        for (index, raw_follow) in raw.into_iter().enumerate() {
            let key = |field: &str| format!("follow[{index}].{field}");
            let target = match (raw_follow.login, raw_follow.id) {
                (Some(login), None) => {
                    let login = login.trim().to_ascii_lowercase();
                    // Twitch logins: 1 to 25 letters, digits and underscores.
                    let valid = (1..=25).contains(&login.len())
                        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        self.report(
                            &key("login"),
                            format!("{login:?} is not a Twitch login (1 to 25 letters, digits or _)"),
                        );
                    }
                    FollowTarget::Login(login)
                }
                (None, Some(id)) => {
                    if id <= 0 {
                        self.report(&key("id"), format!("must be a channel id above 0 (got {id})"));
                    }
                    FollowTarget::Id(id.max(1) as u64)
                }
                (Some(_), Some(_)) => {
                    self.report(
                        &format!("follow[{index}]"),
                        "give login or id, not both (the id wins over a rename anyway)",
                    );
                    FollowTarget::Id(0)
                }
                (None, None) => {
                    self.report(&format!("follow[{index}]"), "needs login = \"...\" or id = 123");
                    FollowTarget::Id(0)
                }
            };
            // An entry already refused (both or neither given) is not a duplicate as well.
            if target != FollowTarget::Id(0) && follows.iter().any(|f| f.target == target) {
                self.report(
                    &format!("follow[{index}]"),
                    format!("{target:?} is followed twice"),
                );
            }
            let retention = raw_follow
                .retention
                .as_deref()
                .map(|text| self.duration(&key("retention"), text, false));
            follows.push(FollowConfig { target, retention });
        }
        follows
    }

    fn rules(&mut self, raw: Vec<RawRule>) -> Vec<RuleConfig> {
        let mut rules = Vec::with_capacity(raw.len());
        for (index, raw_rule) in raw.into_iter().enumerate() {
            let key = |field: &str| format!("rule[{index}].{field}");
            let action = match raw_rule.action.as_str() {
                "record" => RuleAction::Record,
                "skip" => RuleAction::Skip,
                other => {
                    self.report(
                        &key("action"),
                        format!("{other:?} is not an action; use \"record\" or \"skip\""),
                    );
                    RuleAction::Skip
                }
            };
            let viewers = |validator: &mut Validator, field: &str, value: Option<i64>| {
                value.map(|v| validator.count(&key(field), v, 0).min(i64::from(u32::MAX)) as u32)
            };
            let min_viewers = viewers(self, "min_viewers", raw_rule.min_viewers);
            let max_viewers = viewers(self, "max_viewers", raw_rule.max_viewers);
            if let (Some(min), Some(max)) = (min_viewers, max_viewers)
                && max < min
            {
                self.report(
                    &key("max_viewers"),
                    format!("{max} is below min_viewers ({min}): the rule never matches"),
                );
            }
            let lower = |list: Vec<String>| -> Vec<String> {
                list.into_iter().map(|s| s.trim().to_lowercase()).collect()
            };
            let (games, languages, title_words) = (
                lower(raw_rule.games),
                lower(raw_rule.languages),
                lower(raw_rule.title_words),
            );
            for (field, list) in [
                ("games", &games),
                ("languages", &languages),
                ("title_words", &title_words),
            ] {
                if list.iter().any(String::is_empty) {
                    self.report(&key(field), "has an empty entry, which would match nothing");
                }
            }
            if title_words.iter().any(|w| w.contains(char::is_whitespace)) {
                self.report(
                    &key("title_words"),
                    "one word per entry (a title matches any of them)",
                );
            }
            let constrained = !games.is_empty()
                || !languages.is_empty()
                || !title_words.is_empty()
                || raw_rule.mature.is_some()
                || min_viewers.is_some()
                || max_viewers.is_some();
            if !constrained {
                self.report(
                    &format!("rule[{index}]"),
                    "has no condition (games, languages, title_words, mature, min_viewers, \
                     max_viewers), so it would match every stream",
                );
            }
            rules.push(RuleConfig {
                action,
                games,
                languages,
                title_words,
                mature: raw_rule.mature,
                min_viewers,
                max_viewers,
                followed: raw_rule.followed,
            });
        }
        rules
    }
}

/// `kind = "auto"`: Helix when the app's credentials are set, else GQL.
fn auto_source_kind(raw: &RawSource) -> SourceKind {
    if !raw.client_id.is_empty() && !raw.client_secret.is_empty() {
        SourceKind::Helix
    } else {
        SourceKind::Gql
    }
}
