//! Rebuilt playlists in the pipeline, through `serve` against the simulated CDN: a broadcast
//! whose location is known (its video names it, or it was learned while live) and whose
//! playlist answers 403 while its segments answer is rebuilt from the segments, stored as
//! `rebuilt`, served like any capture, and plays in ffprobe.

use crate::api::get;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use std::time::{Duration, Instant};
use vodprobe_sim::{Broadcast, SimVideo, vod_dir};

const DOMAIN: usize = 1;

/// The API's item once the broadcast is no longer waiting (found or not found).
fn settled_item(world: &World, stream_id: u64) -> Value {
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let answer = get(&format!("{base}/api/v1/vods/{stream_id}"));
        if answer.status == 200 {
            let item = answer.json()["items"][0].clone();
            if item["status"] == "found" || item["status"] == "not_found" {
                return item;
            }
        }
        assert!(Instant::now() < deadline, "never settled: {}", world.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A counter `serve` reports on /metrics (`name` with its labels, if any).
fn counter(world: &World, name: &str) -> u64 {
    let metrics = get(&format!("{}/metrics", world.api_url())).text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}")) as u64
}

/// The probe requests `serve` counted (playlists asked and the rebuild's segments).
fn probe_requests(world: &World) -> u64 {
    counter(world, "vodprobe_probe_requests_total")
}

#[test]
fn a_deleted_playlist_named_by_its_video_is_rebuilt_served_and_plays() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    let (login, stream_id, streamer_id) = ("deletedvod", 2201, 2201);
    let mut broadcast = Broadcast::new(login, stream_id, &start.to_string(), vec![DOMAIN]);
    broadcast.segments = 30;
    broadcast.total_seconds = 295.5;
    broadcast.muted.push(12..20);
    let id = world.cdn.add_broadcast(broadcast);
    world.cdn.mute(id);
    world.cdn.delete_playlist(id);
    world.listing.set_videos(
        streamer_id,
        vec![SimVideo {
            video_id: 9201,
            stream_id,
            created_at: start,
            domain_url: world.cdn.base_url(DOMAIN),
            folder: vod_dir(login, stream_id, &start.to_string()),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(stream_id, streamer_id, login, start, 50)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);

    let item = settled_item(&world, stream_id);
    assert_eq!(item["status"], "found", "{item}");
    assert_eq!(item["rebuilt"], true, "{item}");
    assert_eq!(item["segments"], 30, "{item}");
    assert_eq!(item["muted_segments"], 8, "{item}");
    assert_eq!(item["playable"], true, "{item}");
    let url = format!("{}/vods/{stream_id}/{start}.m3u8", world.api_url());
    let mut answer = ureq::get(&url).call().expect("the playable route serves it");
    let served = answer.body_mut().read_to_string().expect("text");
    assert!(
        served.contains("12-muted.ts") && served.contains("20.ts"),
        "{served}"
    );
    assert!(served.contains("#EXT-X-ENDLIST"), "{served}");
    if let Some(packets) = crate::player::ffprobe_packets(&url) {
        // All 295.5 s of 24 ms audio frames: every segment the rebuilt playlist lists answers.
        assert_eq!(packets, (295.5f64 / 0.024).ceil() as u64);
    }
    let rebuild = counter(&world, "vodprobe_rebuild_requests_total");
    println!("rebuild of a 30-segment broadcast with a muted run: {rebuild} requests");
    assert!(rebuild <= 40, "{rebuild}");
    assert_eq!(counter(&world, "vodprobe_rebuilds_total{result=\"rebuilt\"}"), 1);
    // The web page names it.
    let script = get(&format!("{}/web/app.js", world.api_url())).text();
    assert!(script.contains("rebuilt"), "the page shows rebuilt captures");
    world.stop();
    let records = world.records();
    let record = records.iter().find(|r| r.stream_id == stream_id).expect("stored");
    assert!(record.archive.as_ref().is_some_and(|a| a.rebuilt), "{record:?}");
}

#[test]
fn a_twelve_hour_broadcast_captured_live_is_rebuilt_in_about_fifteen_requests() {
    // Live learning on: the path is learned, and the playlist captured, while it is live.
    let mut world = World::healthy(
        "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"1s\"\nalign_to_hour = false\nretries = [\"1s\", \"1s\"]",
    );
    let start = now() - 60;
    let (login, stream_id) = ("twelvehours", 2202);
    // Live: its EVENT playlist lists 100 segments when the live probe captures it.
    let mut broadcast = Broadcast::new(login, stream_id, &start.to_string(), vec![DOMAIN]);
    broadcast.segments = 100;
    broadcast.total_seconds = 1000.0;
    broadcast.ended = false;
    let id = world.cdn.add_broadcast(broadcast);
    // An older archive video of the channel names its domain, so the live probe searches
    // there (a new channel, not known to keep its broadcasts: the live copy is taken). Had
    // this broadcast's own video named the path, the live fetch would be skipped.
    let older = start - 86_400;
    world.listing.set_videos(
        stream_id,
        vec![SimVideo {
            video_id: 9202,
            stream_id: stream_id - 1,
            created_at: older,
            domain_url: world.cdn.base_url(DOMAIN),
            folder: vod_dir(login, stream_id - 1, &older.to_string()),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(stream_id, stream_id, login, start, 50)]);
    world.start(&[]);
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(&format!("{base}/api/v1/vods/{stream_id}"));
        if answer.status == 200 && !answer.json()["items"][0]["segments"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "never captured live: {}", world.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        get(&format!("{base}/api/v1/vods/{stream_id}")).json()["items"][0]["status"],
        "live"
    );
    let before = probe_requests(&world);
    let playlist_asks = |w: &World| {
        w.paths_requested(login, stream_id)
            .iter()
            .filter(|p| p.ends_with(".m3u8"))
            .count() as u64
    };
    let playlists_before = playlist_asks(&world);
    // It runs to 12 hours and ends; the streamer deletes it before the capture at its end.
    world.cdn.grow(id, 4320 - 100);
    world.cdn.end(id);
    world.cdn.delete_playlist(id);
    world.listing.set_streams(vec![]);

    let item = settled_item(&world, stream_id);
    assert_eq!(item["status"], "found", "{item}");
    assert_eq!(item["rebuilt"], true, "{item}");
    assert_eq!(item["segments"], 4320, "{item}");
    assert_eq!(item["duration_seconds"], 43_200.0, "{item}");
    let spent = probe_requests(&world) - before;
    // The probes at its absence from the listing and at its end each ask the playlist (403);
    // the one at the end then asks segment 0 and searches above the 100 segments the live
    // copy listed (13 steps under the 8192-segment bound), and one more to confirm the end.
    let rebuild = spent - (playlist_asks(&world) - playlists_before);
    assert_eq!(counter(&world, "vodprobe_rebuild_requests_total"), rebuild);
    println!("probes after the end: {spent} requests, of which the rebuild of a 12 h broadcast: {rebuild}");
    assert!(
        rebuild <= 15,
        "{rebuild}: {:?}",
        world.paths_requested(login, stream_id)
    );
    assert!(
        spent <= 17,
        "{spent}: {:?}",
        world.paths_requested(login, stream_id)
    );
    let asked: Vec<String> = world
        .paths_requested(login, stream_id)
        .into_iter()
        .filter(|p| !p.ends_with(".m3u8"))
        .collect();
    assert!(asked.iter().any(|p| p.ends_with("/chunked/4319.ts")), "{asked:?}");
    world.stop();
}
