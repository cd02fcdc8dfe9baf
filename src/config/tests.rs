//! Loading and validation end to end on small texts: defaults, every kind of problem with its
//! file, line and key, durations, probe module files, key location.

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
    let keys: Vec<(Option<&str>, Option<usize>)> = found.iter().map(|p| (p.key.as_deref(), p.line)).collect();
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

#[test]
fn source_kind_auto_is_helix_with_credentials_else_gql() {
    let gql = parse_text("").expect("defaults");
    assert_eq!(gql.source.kind, SourceKind::Gql);
    assert_eq!(gql.source.client_id, "ue6666qo983tsx6so1t0vnawi233wa");
    assert!(
        gql.source.describe().contains("no client_secret"),
        "{}",
        gql.source.describe()
    );
    let helix = parse_text("[source]\nclient_id = \"app\"\nclient_secret = \"s\"\n").expect("helix");
    assert_eq!(helix.source.kind, SourceKind::Helix);
    assert!(helix.source.describe().starts_with("helix"));
    let forced = parse_text("[source]\nkind = \"gql\"\nclient_secret = \"s\"\n").expect("gql");
    assert_eq!(forced.source.kind, SourceKind::Gql);
}

#[test]
fn follows_rules_and_scope_are_read_and_checked() {
    let config = parse_text("").expect("defaults");
    assert_eq!(config.source.scope, Scope::All);
    assert!(config.follows.is_empty() && config.rules.is_empty());
    let text = "[source]\nscope = \"followed\"\n\
                [[follow]]\nlogin = \"SomeOne\"\nretention = \"365d\"\n\
                [[follow]]\nid = 42\n\
                [[rule]]\naction = \"skip\"\ntitle_words = [\"Rerun\"]\n\
                [[rule]]\naction = \"record\"\ngames = [\"Chess\"]\nmin_viewers = 5\n";
    let config = parse_text(text).expect("valid");
    assert_eq!(config.source.scope, Scope::Followed);
    assert_eq!(
        config.follows,
        vec![
            FollowConfig {
                target: FollowTarget::Login("someone".into()),
                retention: Some(Duration::from_secs(365 * 86_400)),
            },
            FollowConfig {
                target: FollowTarget::Id(42),
                retention: None,
            },
        ]
    );
    assert_eq!(config.rules[0].action, RuleAction::Skip);
    assert_eq!(config.rules[0].title_words, vec!["rerun".to_string()]);
    assert_eq!(config.rules[1].games, vec!["chess".to_string()]);
    assert_eq!(config.rules[1].min_viewers, Some(5));

    let wrong = "[source]\nscope = \"everything\"\n\
                 [[follow]]\nlogin = \"not a login\"\n\
                 [[follow]]\nlogin = \"a\"\nid = 3\n\
                 [[follow]]\nretention = \"1d\"\n\
                 [[follow]]\nid = 7\n[[follow]]\nid = 7\n\
                 [[rule]]\naction = \"keep\"\ngames = [\"x\"]\n\
                 [[rule]]\naction = \"skip\"\n\
                 [[rule]]\naction = \"skip\"\nmin_viewers = 10\nmax_viewers = 5\n";
    let found: Vec<(Option<String>, Option<usize>)> =
        problems(wrong).into_iter().map(|p| (p.key, p.line)).collect();
    let keys: Vec<&str> = found.iter().filter_map(|(k, _)| k.as_deref()).collect();
    assert_eq!(
        keys,
        vec![
            "source.scope",
            "follow[0].login",
            "follow[1]",
            "follow[2]",
            "follow[4]",
            "rule[0].action",
            "rule[1]",
            "rule[2].max_viewers",
        ]
    );
    assert!(found.iter().all(|(_, line)| line.is_some()), "{found:?}");
    let unknown = problems("[[follow]]\nname = \"x\"\n");
    assert_eq!(unknown[0].key.as_deref(), Some("follow[0].name"), "{unknown:?}");
}

#[test]
fn notify_targets_are_read_and_checked() {
    use crate::event::EventKind;
    let text = "[[notify]]\nkind = \"webhook\"\nurl = \"https://example.org/hook\"\nsecret = \"s\"\n\
                events = [\"deleted\", \"muted\"]\nchannels = [\"SomeOne\", \"42\"]\n\
                [[notify]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/my-vods\"\nmax_backlog = 5\n";
    let config = parse_text(text).expect("valid");
    assert_eq!(
        config.notify,
        vec![
            NotifyConfig {
                name: "https://example.org/hook".into(),
                kind: NotifyKind::Webhook { secret: "s".into() },
                url: "https://example.org/hook".into(),
                events: vec![EventKind::Deleted, EventKind::Muted],
                channels: vec!["someone".into(), "42".into()],
                max_backlog: 10_000,
            },
            NotifyConfig {
                name: "phone".into(),
                kind: NotifyKind::Ntfy,
                url: "https://ntfy.sh/my-vods".into(),
                events: vec![],
                channels: vec![],
                max_backlog: 5,
            },
        ]
    );
    let wrong = "[[notify]]\nkind = \"webhook\"\nurl = \"https://a.test/\"\n\
                 [[notify]]\nkind = \"mail\"\nurl = \"https://b.test/\"\n\
                 [[notify]]\nkind = \"ntfy\"\nurl = \"ftp://c\"\nevents = [\"exploded\"]\nmax_backlog = 0\n";
    let keys: Vec<String> = problems(wrong).into_iter().filter_map(|p| p.key).collect();
    assert_eq!(
        keys,
        [
            "notify[0].secret",
            "notify[1].kind",
            "notify[2].url",
            "notify[2].events",
            "notify[2].max_backlog"
        ]
    );
}
