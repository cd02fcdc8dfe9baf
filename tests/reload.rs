//! Live configuration: edits to `config.toml` and `probes/` reach a running `serve`, saved the
//! ways editors save; bad edits are refused loudly and change nothing.

use crate::api::{Answer, get, request};
use crate::editors::{STYLES, Save, save};
use crate::serve::{FAST, World, now};
use std::time::{Duration, Instant};
use vodprobe_sim::Broadcast;

/// A config for `world` with the given domains (indexes), admin token and extra lines.
fn config_text(world: &World, domains: &[(usize, &str)], token: &str, health: &str) -> String {
    let mut text = format!(
        "data_dir = \"data\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"{token}\"\n\
         [source]\ngql_url = \"{}\"\npages_per_second = 20\n\
         [schedule]\ndiscover = \"* * * * * *\"\nprobe = \"* * * * * *\"\nhealth = \"{health}\"\nprune = \"0 0 0 * * *\"\n\
         [pipeline]\n{FAST}\n\
         [limits]\nrequests_per_second = 50\nconnect_timeout = \"1s\"\nrequest_timeout = \"1s\"\n",
        world.listing.gql_url(),
    );
    for (domain, module) in domains {
        text.push_str(&format!(
            "[[domain]]\nurl = \"{}\"\nprobe = \"{module}\"\n",
            world.cdn.base_url(*domain)
        ));
    }
    text
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Waits until `check` holds, polling every 20 ms; panics with the log after `seconds`.
fn eventually(world: &World, what: &str, seconds: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn domain_urls(base: &str) -> Vec<String> {
    get(&format!("{base}/api/v1/domains")).json()["items"]
        .as_array()
        .expect("domains")
        .iter()
        .map(|d| d["url"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs an admin lookup to its end and returns its final state.
fn lookup(base: &str, token: &str, login: &str, stream_id: u64, start: i64) -> serde_json::Value {
    let auth = bearer(token);
    let headers = [("Authorization", auth.as_str())];
    let input = format!(r#"{{"streamer": "{login}", "stream_id": "{stream_id}", "time": "{start}"}}"#);
    let started = request("POST", &format!("{base}/api/v1/lookups"), &headers, Some(&input));
    assert_eq!(started.status, 202, "{}", started.text());
    let location = started.header("location").expect("location").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = request("GET", &format!("{base}{location}"), &headers, None).json();
        if state["state"] != "running" {
            return state;
        }
        assert!(Instant::now() < deadline, "lookup never finished: {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn requests_on(world: &World, domain: usize, needle: &str) -> usize {
    world
        .cdn
        .requests(domain)
        .iter()
        .filter(|p| p.contains(needle))
        .count()
}

fn health(base: &str) -> serde_json::Value {
    get(&format!("{base}/healthz")).json()
}

pub(crate) fn metric(base: &str, line_start: &str) -> f64 {
    let text = get(&format!("{base}/metrics")).text();
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn authorized(base: &str, token: &str) -> Answer {
    let auth = bearer(token);
    request(
        "GET",
        &format!("{base}/api/v1/lookups/999999"),
        &[("Authorization", auth.as_str())],
        None,
    )
}

#[test]
fn domains_and_probe_modules_follow_the_file() {
    let mut world = World::with_api(FAST, "");
    let start = now() - 3600;
    world
        .cdn
        .add_broadcast(Broadcast::new("gamma", 701, &start.to_string(), vec![2]));
    let path = world.dir.path().join("config.toml");
    let first = config_text(
        &world,
        &[(0, "twitch-vod"), (1, "twitch-vod")],
        "tok",
        "0 0 * * * *",
    );
    std::fs::write(&path, &first).expect("config");
    world.start(&[]);
    let base = world.api_url();
    assert_eq!(lookup(&base, "tok", "gamma", 701, start)["state"], "not_found");
    assert_eq!(requests_on(&world, 2, "_gamma_701_"), 0);

    // Add the domain that holds it: the next lookup uses it.
    let added = config_text(
        &world,
        &[(0, "twitch-vod"), (1, "twitch-vod"), (2, "twitch-vod")],
        "tok",
        "0 0 * * * *",
    );
    save(&path, &first, &added, Save::Rename);
    eventually(&world, "the added domain", 5, || domain_urls(&base).len() == 3);
    let found = lookup(&base, "tok", "gamma", 701, start);
    assert_eq!(found["state"], "found", "{found}");
    assert_eq!(found["domain"], world.cdn.base_url(2));

    // Remove domain 0: never asked again, whatever is looked up.
    let removed = config_text(
        &world,
        &[(1, "twitch-vod"), (2, "twitch-vod")],
        "tok",
        "0 0 * * * *",
    );
    save(&path, &added, &removed, Save::Recreate);
    eventually(&world, "the removed domain", 5, || domain_urls(&base).len() == 2);
    let asked_before = world.cdn.requests(0).len();
    assert_eq!(lookup(&base, "tok", "nobody", 702, start)["state"], "not_found");
    assert!(
        requests_on(&world, 1, "_nobody_702_") > 0,
        "the lookup asked the other domains"
    );
    assert_eq!(
        world.cdn.requests(0).len(),
        asked_before,
        "a removed domain was asked"
    );

    // Switch domain 2 to a module (new in probes/) that builds other paths: it is asked those.
    std::fs::create_dir(world.dir.path().join("probes")).expect("probes dir");
    let module = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/probes/twitch-vod.toml"))
        .expect("module")
        .replace("path = \"{hash}", "path = \"mirror/{hash}");
    std::fs::write(world.dir.path().join("probes/mirror.toml"), module).expect("module file");
    let switched = config_text(&world, &[(1, "twitch-vod"), (2, "mirror")], "tok", "0 0 * * * *");
    save(&path, &removed, &switched, Save::InPlace);
    eventually(&world, "the module switch", 5, || {
        get(&format!("{base}/api/v1/domains")).json()["items"][1]["probe"] == "mirror"
    });
    let state = lookup(&base, "tok", "gamma", 701, start);
    assert_eq!(
        state["state"], "not_found",
        "the mirror paths do not exist: {state}"
    );
    let mirror_paths = world
        .cdn
        .requests(2)
        .into_iter()
        .filter(|p| p.contains("_gamma_701_") && p.contains("mirror/"))
        .count();
    assert!(mirror_paths > 0, "domain 2 was not asked through the new module");
    world.stop();
    let log = world.log();
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("domain") && log.contains("added"), "{log}");
}

#[test]
fn bad_edits_are_refused_and_good_ones_apply_however_saved() {
    let mut world = World::with_api(FAST, "");
    let path = world.dir.path().join("config.toml");
    let domains = [(0, "twitch-vod")];
    let mut current = config_text(&world, &domains, "token-0", "0 0 * * * *");
    std::fs::write(&path, &current).expect("config");
    world.start(&[]);
    let base = world.api_url();
    assert_eq!(authorized(&base, "token-0").status, 404);
    assert_eq!(health(&base)["config"]["ok"], true);

    // The admin token rotates, whichever way the file is saved.
    for (round, style) in STYLES.into_iter().enumerate() {
        let token = format!("token-{}", round + 1);
        let next = config_text(&world, &domains, &token, "0 0 * * * *");
        save(&path, &current, &next, style);
        eventually(&world, &format!("the token saved by {style:?}"), 5, || {
            authorized(&base, &token).status == 404
        });
        let old = format!("token-{round}");
        assert_eq!(
            authorized(&base, &old).status,
            401,
            "the old token still works after {style:?}"
        );
        current = next;
    }
    assert_eq!(
        metric(&base, "vodprobe_config_reloads_total{result=\"refused\"}"),
        0.0
    );

    // A schedule change applies at once: the hourly health check becomes every second.
    let next = config_text(&world, &domains, "token-5", "* * * * * *");
    save(&path, &current, &next, Save::InPlace);
    current = next;
    eventually(&world, "a health check on the new schedule", 10, || {
        !get(&format!("{base}/api/v1/domains")).json()["items"][0]["last_success"].is_null()
    });

    // A broken edit: refused, the old settings keep serving, the problem is visible.
    let broken = current.replace("[schedule]", "[schedule\n");
    save(&path, &current, &broken, Save::InPlace);
    eventually(&world, "the refusal", 5, || {
        health(&base)["config"]["ok"] == false
    });
    let status = health(&base);
    assert_eq!(status["status"], "degraded");
    let message = status["config"]["message"].as_str().expect("message").to_string();
    assert!(message.contains("config.toml:"), "{message}");
    assert!(message.contains("last good settings"), "{message}");
    assert_eq!(
        authorized(&base, "token-5").status,
        404,
        "old settings still serve"
    );
    assert_eq!(metric(&base, "vodprobe_config_last_reload_successful"), 0.0);

    // An invalid value names its key and line.
    let bad_value = current.replace("requests_per_second = 50", "requests_per_second = -3");
    save(&path, &broken, &bad_value, Save::Rename);
    eventually(&world, "the key named", 5, || {
        let message = health(&base)["config"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        message.contains("requests_per_second")
    });

    // Fixed: applied, the error clears.
    let fixed = config_text(&world, &domains, "token-6", "* * * * * *");
    save(&path, &bad_value, &fixed, Save::InPlace);
    eventually(&world, "the fix", 5, || {
        authorized(&base, "token-6").status == 404
    });
    assert_eq!(health(&base)["config"]["ok"], true);
    assert_eq!(metric(&base, "vodprobe_config_last_reload_successful"), 1.0);

    // Deleted: the last good settings stay; recreated: applied.
    std::fs::remove_file(&path).expect("delete");
    eventually(&world, "the deletion noticed", 5, || {
        health(&base)["config"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deleted")
    });
    assert_eq!(authorized(&base, "token-6").status, 404);
    let recreated = config_text(&world, &domains, "token-7", "* * * * * *");
    std::fs::write(&path, &recreated).expect("recreate");
    eventually(&world, "the recreated file", 5, || {
        authorized(&base, "token-7").status == 404
    });

    // A start-up-only key is named, and the server stays where it is.
    let moved = recreated.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    save(&path, &recreated, &moved, Save::InPlace);
    eventually(&world, "the restart-only key named", 5, || {
        health(&base)["config"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("api.listen")
    });
    assert_eq!(health(&base)["config"]["ok"], true);
    assert_eq!(authorized(&base, "token-7").status, 404);
    assert!(
        metric(&base, "vodprobe_config_reloads_total{result=\"refused\"}") >= 2.0,
        "refusals counted"
    );
    world.stop();
    let log = world.log();
    assert!(log.contains("configuration edit refused"), "{log}");
    assert!(log.contains("takes effect at the next start"), "{log}");
    assert!(!log.contains("token-7"), "a secret was logged");
}
