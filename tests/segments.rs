//! Segment checks at capture, through `serve` against the simulated CDN: a capture has its
//! first, middle and last segment asked on the domain that holds it (HEAD, at most three
//! requests), and the API reports `ok`, `partial` or `gone` — a capture whose segments are gone
//! is never offered as playable — all within the request budget.

use crate::api::get;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use std::time::{Duration, Instant};
use vodprobe_sim::{Broadcast, DomainSpec, Segments, vod_dir};

const DOMAIN: usize = 1;

/// A world with one broadcast (30 segments) held by `DOMAIN`, live until `serve` has seen it;
/// `expire` runs on the CDN before anything is asked. Returns the world and the start time.
fn captured(login: &str, stream_id: u64, expire: impl FnOnce(&World, usize)) -> (World, i64) {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    let id = world
        .cdn
        .add_broadcast(Broadcast::new(login, stream_id, &start.to_string(), vec![DOMAIN]));
    expire(&world, id);
    world
        .listing
        .set_streams(vec![stream(stream_id, stream_id, login, start, 50)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    (world, start)
}

/// The API's item for the broadcast once its segment check has concluded.
fn checked_item(world: &World, stream_id: u64) -> Value {
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(&format!("{base}/api/v1/vods/{stream_id}"));
        if answer.status == 200 {
            let item = answer.json()["items"][0].clone();
            if !item["segments_state"].is_null() {
                return item;
            }
        }
        assert!(Instant::now() < deadline, "no segment check: {}", world.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The requests for the broadcast's segments (not its playlists) on `DOMAIN`.
fn segment_requests(world: &World, login: &str, stream_id: u64) -> Vec<vodprobe_sim::LoggedRequest> {
    let needle = format!("_{login}_{stream_id}_");
    world
        .cdn
        .request_log(DOMAIN)
        .into_iter()
        .filter(|r| r.target.contains(&needle) && !r.target.ends_with(".m3u8"))
        .collect()
}

fn ids(base: &str, query: &str) -> Vec<String> {
    get(&format!("{base}/api/v1/vods?{query}")).json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["stream_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_capture_is_checked_ok_with_at_most_three_requests() {
    let (world, start) = captured("okstream", 2101, |_, _| {});
    let item = checked_item(&world, 2101);
    assert_eq!(item["segments_state"], "ok", "{item}");
    assert!(item["segments_checked_at"].is_string(), "{item}");
    assert_eq!(item["segments_lost_at"], Value::Null);
    assert_eq!(item["playable"], true);
    assert_eq!(item["playlist_url"], format!("/vods/2101/{start}.m3u8"));
    let asked = segment_requests(&world, "okstream", 2101);
    assert!((1..=3).contains(&asked.len()), "{asked:?}");
    assert!(asked.iter().all(|r| r.method == "HEAD"), "{asked:?}");
    // First, middle and last of the 30 segments.
    let dir = vod_dir("okstream", 2101, &start.to_string());
    let targets: Vec<&str> = asked.iter().map(|r| r.target.as_str()).collect();
    for n in [0, 15, 29] {
        let path = format!("/{dir}/chunked/{n}.ts");
        assert!(
            targets.iter().any(|t| t.ends_with(&path)),
            "{path} not in {targets:?}"
        );
    }
    let base = world.api_url();
    assert_eq!(ids(&base, "segments_state=ok"), ["2101"]);
    assert!(ids(&base, "segments_state=unchecked").is_empty());
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_segment_checks_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vodprobe_segment_check_requests_total 3"),
        "{metrics}"
    );
}

#[test]
fn a_capture_whose_segments_expired_is_gone_and_not_playable() {
    let (world, _) = captured("gonestream", 2102, |w, id| {
        w.cdn.expire_segments(id, Segments::All)
    });
    let item = checked_item(&world, 2102);
    assert_eq!(item["status"], "found", "the playlist still answers: {item}");
    assert_eq!(item["segments_state"], "gone", "{item}");
    assert!(item["segments_lost_at"].is_string(), "{item}");
    assert_eq!(item["segments_lost_at"], item["segments_checked_at"]);
    assert_eq!(item["playable"], false);
    assert_eq!(item["playlist_url"], Value::Null, "{item}");
    assert_eq!(item["master_playlist_url"], Value::Null, "{item}");
    let base = world.api_url();
    assert_eq!(ids(&base, "segments_state=gone"), ["2102"]);
    assert!(ids(&base, "segments_state=ok").is_empty());
    // The list shows the same, and the page has a badge for it rather than a player.
    let listed = get(&format!("{base}/api/v1/vods?status=found")).json();
    assert_eq!(listed["items"][0]["segments_state"], "gone");
    assert_eq!(listed["items"][0]["playable"], false);
    let script = get(&format!("{base}/web/app.js")).text();
    assert!(script.contains("segments gone"), "the page names the state");
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_segment_checks_total{result=\"gone\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_capture_missing_some_segments_is_partial() {
    let (world, start) = captured("partstream", 2103, |w, id| {
        w.cdn.expire_segments(id, Segments::Range(0..10))
    });
    let item = checked_item(&world, 2103);
    assert_eq!(item["segments_state"], "partial", "{item}");
    assert!(item["segments_lost_at"].is_string(), "{item}");
    // Partly playable: still offered.
    assert_eq!(item["playable"], true);
    assert_eq!(item["playlist_url"], format!("/vods/2103/{start}.m3u8"));
    let asked = segment_requests(&world, "partstream", 2103);
    assert_eq!(asked.len(), 3, "{asked:?}");
}

#[test]
fn segment_checks_stay_within_the_request_budget() {
    const RATE: usize = 4;
    let specs = (0..3).map(|_| DomainSpec::healthy()).collect();
    let limits = format!("requests_per_second = {RATE}");
    let mut world = World::configured(specs, FAST, "kind = \"gql\"", "health = \"0 0 * * * *\"", &limits);
    let start = now() - 600;
    let streams: Vec<_> = (0..5u64)
        .map(|n| {
            let login = format!("budget{n}");
            world.cdn.add_broadcast(Broadcast::new(
                &login,
                2200 + n,
                &start.to_string(),
                vec![(n % 3) as usize],
            ));
            stream(2200 + n, 2200 + n, &login, start, 50 + n as u32)
        })
        .collect();
    world.listing.set_streams(streams);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    world.wait_until("every capture checked", 60, |_| {
        ids(&base, "segments_state=ok").len() == 5
    });
    let checks: usize = (0..3)
        .flat_map(|d| world.cdn.request_log(d))
        .filter(|r| r.method == "HEAD")
        .count();
    assert!((5..=15).contains(&checks), "{checks} segment requests");
    let mut arrivals: Vec<Instant> = (0..3).flat_map(|d| world.cdn.arrivals(d)).collect();
    arrivals.sort();
    assert_within_budget(&arrivals, RATE);
}

/// Asserts that requests arriving at `arrivals` (sorted) kept a budget of `rate` a second. The
/// pacer spaces requests as they leave: one that left its slot a little late arrives in the
/// same second as the next ones, so a window holds at most one more than its share.
pub(crate) fn assert_within_budget(arrivals: &[Instant], rate: usize) {
    let busiest = |window: Duration| {
        (0..arrivals.len())
            .map(|i| {
                arrivals[i..]
                    .iter()
                    .take_while(|&&t| t < arrivals[i] + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    };
    let second = busiest(Duration::from_secs(1));
    assert!(
        second <= rate + 1,
        "{second} requests in one second, budget {rate}"
    );
    let three = busiest(Duration::from_secs(3));
    assert!(
        three <= 3 * rate + 1,
        "{three} requests in three seconds, budget {rate}/s"
    );
}
