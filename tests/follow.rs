//! Followed channels through the real `serve` against the simulated listing and CDN: one
//! below every viewer threshold is captured, one renamed between two broadcasts is still
//! captured, and `scope = "followed"` spends listing requests in proportion to the follows and
//! none on the crawl. On a clock 60 times real speed (a follow check every simulated minute,
//! one real second); `ended_after` is two hours, so only checks by id end streams here.

use crate::serve::{World, find, now, stream};
use std::time::Duration;
use vodprobe::record::Status;
use vodprobe_sim::{Broadcast, DomainSpec};

const PIPELINE: &str = "ended_after = \"2h\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = false\nretries = [\"1s\", \"1s\"]";
const SPEED: &str = "60";

/// A world whose config gets `source` lines in `[source]` and `tail` at its end (follows).
fn world(source: &str, tail: &str) -> World {
    let specs = (0..3).map(|_| DomainSpec::healthy()).collect();
    let health = "health = \"0 0 * * * *\"";
    let world = World::configured(specs, PIPELINE, source, health, "requests_per_second = 50");
    let mut text = std::fs::read_to_string(world.config_path()).expect("config");
    text.push_str(tail);
    std::fs::write(world.config_path(), text).expect("config");
    world
}

#[test]
fn a_followed_channel_below_the_viewer_threshold_is_captured() {
    let mut world = world("kind = \"gql\"", "[[follow]]\nlogin = \"Quietone\"\n");
    let start = now() - 600;
    world
        .cdn
        .add_broadcast(Broadcast::new("quietone", 301, &start.to_string(), vec![1]));
    world
        .cdn
        .add_broadcast(Broadcast::new("otherquiet", 302, &start.to_string(), vec![1]));
    world.listing.set_streams(vec![
        stream(300, 30, "bigone", start, 500),
        // Below min_viewers_observe (5): the crawl never stores them.
        stream(301, 31, "quietone", start, 2),
        stream(302, 32, "otherquiet", start, 2),
    ]);
    world.start(&["--clock-speed", SPEED]);
    world.wait_until("the followed login resolved and checked", 20, |w| {
        w.log().contains("followed channels checked")
    });
    std::thread::sleep(Duration::from_millis(500));
    world.listing.remove(301);
    world.listing.remove(302);
    world.wait_until("the followed channel's capture", 20, |w| {
        w.requests_for("quietone", 301) >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    world.stop();

    let records = world.records();
    let quiet = find(&records, 301);
    assert_eq!(quiet.len(), 1, "{records:?}");
    assert_eq!(quiet[0].status, Status::Found, "{:?}", quiet[0]);
    assert_eq!(quiet[0].max_viewers, 2);
    assert!(world.playlist(quiet[0]).is_some_and(|p| p.starts_with("#EXTM3U")));
    assert!(
        find(&records, 302).is_empty(),
        "not followed, below the thresholds"
    );
    assert_eq!(world.requests_for("otherquiet", 302), 0);
    assert!(world.log().contains("followed login resolved"), "{}", world.log());
}

#[test]
fn a_followed_channel_renamed_mid_week_is_still_captured() {
    let mut world = world("kind = \"gql\"", "[[follow]]\nlogin = \"oldname\"\n");
    let first_start = now() - 3 * 86_400;
    world
        .cdn
        .add_broadcast(Broadcast::new("oldname", 401, &first_start.to_string(), vec![0]));
    world
        .listing
        .set_streams(vec![stream(401, 40, "oldname", first_start, 3)]);
    world.start(&["--clock-speed", SPEED]);
    world.wait_until("the followed channel checked live", 20, |w| {
        w.log().contains("followed channels checked")
    });
    world.listing.set_streams(vec![]);
    world.wait_until("the first capture", 20, |w| w.requests_for("oldname", 401) >= 1);
    std::thread::sleep(Duration::from_millis(300));
    world.stop();

    // Mid-week, while serve is stopped, the channel takes another login: "oldname" resolves to
    // nothing any more, and the new broadcast's folder carries the new login.
    world.listing.rename(40, "newname");
    let second_start = now() - 300;
    world
        .cdn
        .add_broadcast(Broadcast::new("newname", 402, &second_start.to_string(), vec![2]));
    world
        .listing
        .set_streams(vec![stream(402, 40, "newname", second_start, 3)]);
    world.start(&["--clock-speed", SPEED]);
    world.wait_until("the rename noticed", 20, |w| {
        w.log().contains("followed channel renamed")
    });
    world.listing.set_streams(vec![]);
    world.wait_until("the capture after the rename", 20, |w| {
        w.requests_for("newname", 402) >= 1
    });
    std::thread::sleep(Duration::from_millis(300));
    world.stop();

    let records = world.records();
    for (stream_id, login) in [(401, "oldname"), (402, "newname")] {
        let record = find(&records, stream_id);
        assert_eq!(record.len(), 1, "{records:?}");
        assert_eq!(record[0].status, Status::Found, "{:?}", record[0]);
        assert_eq!(record[0].login, login);
        assert_eq!(record[0].streamer_id, 40);
    }
    let log = world.log();
    assert!(
        !log.contains("unknown to Twitch"),
        "the stored id is followed: {log}"
    );
}

/// Listing requests of `serve` with `follows` channels followed by id and `scope = "followed"`
/// over `minutes` simulated minutes (after start-up), and how many were not checks by id.
fn followed_scope_requests(follows: u64, minutes: u64) -> (usize, usize) {
    let mut tail = String::new();
    for n in 0..follows {
        tail.push_str(&format!("[[follow]]\nid = {}\n", 5000 + n));
    }
    let mut world = world("kind = \"gql\"\nscope = \"followed\"", &tail);
    let start = now() - 600;
    // A tenth of them live, and a busy listing the crawl would page through.
    let mut streams: Vec<_> = (0..follows / 10)
        .map(|n| stream(70_000 + n, 5000 + n, &format!("f{n}"), start, 1))
        .collect();
    streams
        .extend((0..200).map(|n| stream(90_000 + n, 80_000 + n, &format!("big{n}"), start, 1000 + n as u32)));
    world.listing.set_streams(streams);
    for n in 0..follows {
        world.listing.set_user(5000 + n, &format!("f{n}"));
    }
    world.start(&["--clock-speed", SPEED]);
    world.wait_until("the first check", 20, |w| w.listing.confirm_requests() >= 1);
    let before = world.listing.requests();
    std::thread::sleep(Duration::from_millis(minutes * 1000));
    let requests = world.listing.requests() - before;
    let not_checks = world.listing.requests() - world.listing.confirm_requests();
    world.stop();
    (requests, not_checks)
}

#[test]
fn followed_scope_costs_listing_requests_in_proportion_to_the_follows() {
    let minutes = 6;
    for (follows, per_check) in [(10, 1), (100, 1), (300, 3)] {
        let (requests, not_checks) = followed_scope_requests(follows, minutes);
        let per_minute = requests as f64 / minutes as f64;
        eprintln!("scope = followed, {follows} follows: {per_minute:.1} listing requests per minute");
        assert_eq!(not_checks, 0, "no crawl page, no other request");
        // One check a simulated minute (a real second): allow the start-up and timing slack.
        let expected = per_check * minutes as usize;
        assert!(
            requests + per_check >= expected && requests <= expected + 2 * per_check,
            "{follows} follows: {requests} requests in {minutes} minutes, expected about {expected}"
        );
    }
}

fn stream_ids(url: &str) -> Vec<(String, bool)> {
    let answer = crate::api::get(url);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let id = item["stream_id"].as_str().expect("id").to_string();
            (id, item["followed"].as_bool().expect("followed"))
        })
        .collect()
}

#[test]
fn follows_and_rules_apply_live_and_the_api_marks_and_filters_followed_channels() {
    let rules = "[[rule]]\naction = \"skip\"\ntitle_words = [\"rerun\"]\n\
                 [[rule]]\naction = \"record\"\ngames = [\"chess\"]\n";
    let mut world = world("kind = \"gql\"", rules);
    let start = now() - 600;
    let mut rerun = stream(501, 51, "rerunner", start, 500);
    rerun.title = "RERUN: yesterday's finals".into();
    let mut chess = stream(502, 52, "chessie", start, 7);
    chess.game_name = "Chess".into();
    let streams = vec![
        // Skipped by the first rule whatever its viewers.
        rerun,
        // Below min_viewers_record (10), recorded by the second rule.
        chess,
        // Below min_viewers_observe (5): followed only after a live edit of the config.
        stream(503, 53, "laterfollow", start, 2),
        // Observed, below min_viewers_record, no rule: dropped at its end.
        stream(504, 54, "plain", start, 7),
    ];
    for s in &streams {
        world
            .cdn
            .add_broadcast(Broadcast::new(&s.login, s.stream_id, &start.to_string(), vec![0]));
    }
    world.listing.set_streams(streams);
    world.start(&["--clock-speed", SPEED]);
    world.wait_until("a crawl pass", 20, |w| w.log().contains("crawl pass finished"));
    let mut text = std::fs::read_to_string(world.config_path()).expect("config");
    text.push_str("[[follow]]\nlogin = \"laterfollow\"\n");
    std::fs::write(world.config_path(), text).expect("config");
    world.wait_until("the follow added live and checked", 20, |w| {
        let log = w.log();
        log.contains("followed login resolved") && log.contains("followed channels checked")
    });
    world.listing.set_streams(vec![]);
    world.wait_until("the captures", 30, |w| {
        w.requests_for("chessie", 502) >= 1 && w.requests_for("laterfollow", 503) >= 1
    });
    let api = world.api_url();
    world.wait_until("both captures stored", 20, |_| {
        stream_ids(&format!("{api}/api/v1/vods?status=found")).len() == 2
    });
    assert_eq!(
        stream_ids(&format!("{api}/api/v1/vods?followed=true")),
        vec![("503".to_string(), true)]
    );
    assert_eq!(
        stream_ids(&format!("{api}/api/v1/vods?followed=false")),
        vec![("502".to_string(), false)]
    );
    world.stop();

    let records = world.records();
    assert!(find(&records, 501).is_empty(), "skipped by rule: {records:?}");
    assert!(
        find(&records, 504).is_empty(),
        "below the thresholds: {records:?}"
    );
    assert_eq!(world.requests_for("rerunner", 501), 0);
    assert_eq!(world.requests_for("plain", 504), 0);
    for id in [502, 503] {
        assert_eq!(find(&records, id)[0].status, Status::Found, "{records:?}");
    }
}
