//! The live listing as today's Twitch answers it: GQL refuses cursor pages from the web
//! client id (integrity check), so the default config pages with another public id or with
//! Helix when credentials are set (`source.kind = "auto"`).

use crate::api::get;
use crate::serve::{FAST, World, find, now, stream};
use std::time::Duration;
use vodprobe::record::Status;
use vodprobe_sim::{Broadcast, DomainSpec, LiveStream, WEB_CLIENT_ID};

/// 100 live streams, most viewed first (1000, 990, ... viewers): ranks 0..100, ids 900+rank.
fn hundred_streams(start: i64) -> Vec<LiveStream> {
    (0..100u32)
        .map(|rank| {
            let id = 900 + u64::from(rank);
            stream(id, id, &format!("ranked{rank}"), start, 1000 - rank * 10)
        })
        .collect()
}

fn world(source: &str) -> World {
    World::configured(
        (0..3).map(|_| DomainSpec::healthy()).collect(),
        FAST,
        source,
        "health = \"0 0 * * * *\"",
        "requests_per_second = 50",
    )
}

/// A hundred live streams; the one at rank 80 has a stored VOD. Returns them.
fn list_with_rank_80_stored(world: &World) -> Vec<LiveStream> {
    let start = now() - 300;
    let streams = hundred_streams(start);
    world
        .cdn
        .add_broadcast(Broadcast::new("ranked80", 980, &start.to_string(), vec![0]));
    world.listing.set_streams(streams.clone());
    streams
}

/// The stream at rank 80 ends; it is captured only if the crawl had paged down to it.
fn end_rank_80(world: &World, mut streams: Vec<LiveStream>) {
    streams.retain(|s| s.stream_id != 980);
    world.listing.set_streams(streams);
    world.wait_until("the capture", 25, |w| w.requests_for("ranked80", 980) >= 1);
    std::thread::sleep(Duration::from_millis(500));
}

/// The stream at rank 80 ends with a stored VOD; the crawl must have paged down to it.
fn capture_rank_80(world: &mut World) {
    let streams = list_with_rank_80_stored(world);
    world.start(&[]);
    // Page 3 of GQL (30 a page) or page 1 of Helix shows rank 80; a full pass asks 4 or 1.
    world.wait_until("a full pass", 15, |w| w.listing.requests() >= 5);
    end_rank_80(world, streams);
}

#[test]
fn the_default_config_pages_past_the_first_page() {
    // No kind, no client id: auto without a secret is GQL with the default public client id.
    let mut world = world("");
    capture_rank_80(&mut world);
    let health = get(&format!("{}/healthz", world.api_url())).json();
    assert_eq!(health["listing"]["ok"], true, "{health}");
    assert!(
        health["listing_source"]
            .as_str()
            .is_some_and(|s| s.starts_with("gql")),
        "{health}"
    );
    world.stop();
    let records = world.records();
    let found = find(&records, 980);
    assert_eq!(found.len(), 1, "{records:?}");
    assert_eq!(found[0].status, Status::Found, "{:?}", found[0]);
}

#[test]
fn the_refused_web_client_id_fails_the_listing_and_says_what_to_do() {
    let mut world = world(&format!("client_id = \"{WEB_CLIENT_ID}\""));
    world.listing.set_streams(hundred_streams(now() - 300));
    world.start(&[]);
    let base = world.api_url();
    world.wait_until("the refusal in /healthz", 15, |_| {
        get(&format!("{base}/healthz")).json()["listing"]["ok"] == false
    });
    // Page 1 keeps answering between the refusals; the component stays failed.
    for _ in 0..6 {
        let health = get(&format!("{base}/healthz")).json();
        assert_eq!(health["listing"]["ok"], false, "{health}");
        let message = health["listing"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("failed integrity check"), "{health}");
        assert!(message.contains(WEB_CLIENT_ID), "{health}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_listing_errors_total{kind=\"integrity\"}"),
        "{metrics}"
    );
    world.stop();
    let log = world.log();
    assert!(
        log.contains("register an app at dev.twitch.tv") && log.contains("client_secret"),
        "{log}"
    );
}

#[test]
fn auto_with_helix_credentials_keeps_capturing() {
    // The refused GQL id does not matter: with a secret, auto lists through Helix.
    let mut world = world(&format!(
        "client_id = \"{WEB_CLIENT_ID}\"\nclient_secret = \"secret\""
    ));
    // The app registered at dev.twitch.tv happens to carry the refused id: Helix takes it.
    world.listing.set_client_id(WEB_CLIENT_ID);
    capture_rank_80(&mut world);
    let health = get(&format!("{}/healthz", world.api_url())).json();
    assert!(
        health["listing_source"]
            .as_str()
            .is_some_and(|s| s.starts_with("helix")),
        "{health}"
    );
    world.stop();
    assert!(world.listing.token_requests() >= 1);
    let records = world.records();
    assert_eq!(find(&records, 980)[0].status, Status::Found, "{records:?}");
}

#[test]
fn auto_switches_to_helix_when_credentials_are_added_live() {
    // Refused first: the web client id without a secret lists through GQL.
    let mut world = world(&format!("client_id = \"{WEB_CLIENT_ID}\""));
    world.listing.set_client_id(WEB_CLIENT_ID);
    let streams = list_with_rank_80_stored(&world);
    world.start(&[]);
    let base = world.api_url();
    world.wait_until("the refusal in /healthz", 15, |_| {
        let health = get(&format!("{base}/healthz")).json();
        health["listing"]["ok"] == false && health["status"] == "degraded"
    });
    // The user follows the advice: a registered app's secret, saved while serve runs.
    let path = world.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen("[source]\n", "[source]\nclient_secret = \"secret\"\n", 1);
    std::fs::write(&path, text).expect("config saved");
    world.wait_until("helix in force and the listing healthy", 20, |_| {
        let health = get(&format!("{base}/healthz")).json();
        health["listing"]["ok"] == true
            && health["listing_source"]
                .as_str()
                .is_some_and(|s| s.starts_with("helix"))
    });
    // Rank 80, beyond the refused GQL page 1, is now reached and captured at its end.
    world.wait_until("a helix pass", 15, |w| w.listing.token_requests() >= 1);
    std::thread::sleep(Duration::from_millis(500));
    end_rank_80(&world, streams);
    world.stop();
    let log = world.log();
    assert!(
        log.contains("live listing settings changed") && log.contains("helix"),
        "{log}"
    );
    let records = world.records();
    let found = find(&records, 980);
    assert_eq!(found.len(), 1, "{records:?}");
    assert_eq!(found[0].status, Status::Found, "{:?}", found[0]);
}

/// A counter's value in the `/metrics` text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn helix_looping_and_invalid_cursors_end_or_restart_the_pass() {
    let mut world = world(&format!(
        "client_id = \"{}\"\nclient_secret = \"secret\"",
        vodprobe_sim::SIM_CLIENT_ID
    ));
    // 250 streams above the floor: 3 pages of 100, then the cursor back to page 1.
    let start = now() - 300;
    let streams: Vec<LiveStream> = (0..250u32)
        .map(|rank| {
            let id = 2000 + u64::from(rank);
            stream(id, id, &format!("looped{rank}"), start, 3000 - rank * 10)
        })
        .collect();
    world.listing.set_streams(streams);
    world.listing.set_invalid_cursor_every(Some(7));
    world.start(&[]);
    let base = world.api_url();
    let passes = |text: &str| metric(text, "vodprobe_listing_passes_total");
    world.wait_until("four passes", 30, |_| {
        passes(&get(&format!("{base}/metrics")).text()) >= 4.0
    });
    let text = get(&format!("{base}/metrics")).text();
    let invalid = metric(&text, "vodprobe_listing_errors_total{kind=\"invalid_cursor\"}");
    assert!(invalid >= 1.0, "{text}");
    let health = get(&format!("{base}/healthz")).json();
    assert_eq!(
        health["listing"]["ok"], true,
        "an invalid cursor is no failure: {health}"
    );
    world.stop();
    // Each pass asks 4 pages at most (the last leads back to page 1); each invalid cursor
    // wastes at most the 3 pages before it; one pass may be under way.
    let requests = (world.listing.requests() - world.listing.video_requests()) as f64;
    let bound = 4.0 * (passes(&text) + 2.0) + 3.0 * (invalid + 1.0);
    assert!(
        requests <= bound,
        "{requests} listing requests, bound {bound}: {text}"
    );
    let log = world.log();
    assert!(!log.contains("live listing failed"), "{log}");
}
