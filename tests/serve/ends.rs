//! Captures, restarts and ends: misses and their retries, channels that list no video,
//! published and learned paths, and the muted-playlist probe.

use std::time::Duration;
use vodprobe::record::Status;
use vodprobe_sim::{Broadcast, MutedStretch, SimVideo, vod_dir};

use super::{DOMAINS, FAST, World, find, now, stream};

#[test]
fn ended_streams_are_captured_and_thresholds_apply() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    world
        .cdn
        .add_broadcast(Broadcast::new("bigstream", 101, &start.to_string(), vec![1]));
    world
        .cdn
        .add_broadcast(Broadcast::new("smallstream", 102, &start.to_string(), vec![1]));
    world.listing.set_streams(vec![
        stream(101, 1, "bigstream", start, 50),
        stream(102, 2, "smallstream", start, 7),
        stream(103, 3, "tinystream", start, 3),
    ]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 20, |w| w.requests_for("bigstream", 101) >= 1);
    std::thread::sleep(Duration::from_millis(500));
    world.stop();

    let records = world.records();
    let big = find(&records, 101);
    assert_eq!(big.len(), 1, "{records:?}");
    let big = big[0];
    assert_eq!(big.status, Status::Found, "{big:?}");
    assert_eq!(big.max_viewers, 50);
    assert_eq!(big.title, "bigstream live");
    let archive = big.archive.as_ref().expect("archived");
    assert_eq!(archive.domain, world.cdn.base_url(1));
    assert_eq!(archive.segments, 30);
    assert_eq!(archive.timestamp_form, "unix");
    let text = world.playlist(big).expect("playlist stored");
    assert!(text.starts_with("#EXTM3U"));
    // Observed but below the record threshold: never probed, dropped at its end.
    assert!(find(&records, 102).is_empty(), "{records:?}");
    assert_eq!(world.requests_for("smallstream", 102), 0);
    // Below the observe threshold: never stored.
    assert!(find(&records, 103).is_empty());
}

#[test]
fn restarts_and_reused_stream_ids_are_separate_broadcasts() {
    let mut world = World::healthy(FAST);
    let first_start = now() - 900;
    let second_start = now() - 30;
    // The restarted broadcast reuses the stream id; Twitch stores it with the second-of-minute form.
    world.cdn.add_broadcast(Broadcast::new(
        "restarter",
        201,
        &first_start.to_string(),
        vec![0],
    ));
    let seconds = second_start.rem_euclid(60).to_string();
    world
        .cdn
        .add_broadcast(Broadcast::new("restarter", 201, &seconds, vec![2]));
    world
        .listing
        .set_streams(vec![stream(201, 9, "restarter", first_start, 40)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    // The restart: same streamer, same stream id, a new start time.
    world
        .listing
        .set_streams(vec![stream(201, 9, "restarter", second_start, 45)]);
    world.wait_until("the capture of the first broadcast", 15, |w| {
        w.requests_for("restarter", 201) >= 1
    });
    world.listing.set_streams(vec![]);
    world.wait_until("both captures", 25, |w| {
        (0..DOMAINS).any(|d| {
            w.cdn
                .requests(d)
                .iter()
                .any(|p| p.contains(&format!("_restarter_201_{seconds}/")))
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    world.stop();
    let records = world.records();
    let both = find(&records, 201);
    assert_eq!(both.len(), 2, "{records:?}");
    assert_eq!(both[0].start_unix, first_start);
    assert_eq!(both[1].start_unix, second_start);
    for record in &both {
        assert_eq!(record.status, Status::Found, "{record:?}");
    }
    assert_eq!(
        both[1].archive.as_ref().expect("archive").timestamp_form,
        "second-of-minute"
    );
}

#[test]
fn a_miss_on_a_channel_that_lists_no_video_is_settled_after_one_search() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    world
        .listing
        .set_streams(vec![stream(301, 3, "ghost", start, 30)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    // One search, every form on every domain (it is the only one), then no retry.
    world.wait_until("the search", 30, |w| w.requests_for("ghost", 301) >= 9);
    std::thread::sleep(Duration::from_millis(1500));
    world.stop();
    let records = world.records();
    let ghost = find(&records, 301)[0];
    assert_eq!(ghost.status, Status::NotFound, "{ghost:?}");
    assert_eq!((ghost.probe.probes, ghost.probe.next_due), (1, None));
    assert!(
        ghost
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lists no video")),
        "{ghost:?}"
    );
    assert_eq!(
        world.requests_for("ghost", 301),
        9,
        "no request beyond the search"
    );
}

#[test]
fn misses_are_retried_on_the_channels_domain_then_everywhere_then_not_found() {
    let mut world = World::healthy(&FAST.replace("learn_live_after = \"0s\"", "learn_live_after = \"1h\""));
    let start = now() - 600;
    // An older video of the channel names its domain (1): this broadcast's own is missing.
    world.listing.set_videos(
        3,
        vec![SimVideo {
            video_id: 1,
            stream_id: 300,
            created_at: start - 86_400,
            domain_url: world.cdn.base_url(1),
            folder: vod_dir("ghost", 300, &(start - 86_400).to_string()),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(301, 3, "ghost", start, 30)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    // The first search and the first retry ask the channel's domain alone, in its 3 forms;
    // the last retry that domain again and every other in the hint's form.
    world.wait_until("the last retry", 30, |w| {
        w.requests_for("ghost", 301) >= 3 + 3 + 5
    });
    std::thread::sleep(Duration::from_millis(1500));
    world.stop();
    let records = world.records();
    let ghost = find(&records, 301)[0];
    assert_eq!(ghost.status, Status::NotFound, "{ghost:?}");
    assert_eq!(ghost.probe.probes, 3);
    let on_its_domain = world
        .cdn
        .requests(1)
        .iter()
        .filter(|p| p.contains("_ghost_301_"))
        .count();
    assert_eq!(on_its_domain, 3 + 3 + 3);
    for other in [0, 2] {
        let asked: Vec<String> = world
            .cdn
            .requests(other)
            .into_iter()
            .filter(|p| p.contains("_ghost_301_"))
            .collect();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(asked[0].contains(&format!("_ghost_301_{start}/")), "{asked:?}");
    }
    assert_eq!(
        world.requests_for("ghost", 301),
        11,
        "no request beyond the schedule"
    );
}

#[test]
fn a_path_learned_while_live_makes_the_capture_cost_one_request() {
    let mut world = World::healthy(
        "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"1s\"\nalign_to_hour = false\nretries = [\"1s\"]",
    );
    let start = now() - 60;
    let mut live = Broadcast::new("learner", 401, &(start - 1).to_string(), vec![2]);
    live.ended = false;
    let id = world.cdn.add_broadcast(live);
    // This broadcast's video is hidden; an older one names the channel's domain.
    let older = (start - 86_400).to_string();
    world.listing.set_videos(
        4,
        vec![SimVideo {
            video_id: 1,
            stream_id: 400,
            created_at: start - 86_400,
            domain_url: world.cdn.base_url(2),
            folder: vod_dir("learner", 400, &older),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(401, 4, "learner", start, 80)]);
    world.start(&[]);
    let learned_path = format!("_learner_401_{}/", start - 1);
    world.wait_until("the live learning hit", 15, |w| {
        w.cdn.requests(2).iter().any(|p| p.contains(&learned_path))
    });
    std::thread::sleep(Duration::from_millis(300));
    let learning_requests = world.requests_for("learner", 401);
    // The streamer ends and deletes the broadcast's other copies; the learned domain holds it.
    world.cdn.grow(id, 5);
    world.cdn.end(id);
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 15, |w| {
        w.requests_for("learner", 401) > learning_requests
    });
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    assert_eq!(
        world.requests_for("learner", 401),
        learning_requests + 1,
        "the capture cost one request"
    );
    let records = world.records();
    let learner = find(&records, 401)[0];
    assert_eq!(learner.status, Status::Found);
    assert!(learner.probe.learned_live);
    let archive = learner.archive.as_ref().expect("archive");
    assert_eq!(archive.segments, 35);
    assert!(archive.ended);
    assert_eq!(archive.timestamp_form, "unix-1");
}

#[test]
fn the_hour_aligned_probe_records_the_muted_playlist_asking_the_cdn_only_where_the_video_cannot_say() {
    // Clock: 17:58:00, twenty times real speed, so the hour boundary is 6 real seconds away.
    let clock_start: i64 = 1_664_042_280;
    let mut world = World::healthy(
        "ended_after = \"10s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = true\nhour_margin = \"1m\"\nretries = [\"1m\"]",
    );
    let start = clock_start - 3600;
    // Three broadcasts, muted or not by the pass on the hour, each with its video object:
    // - "muted": segments 3–5 muted, its video lists 30 s from 0:30, on segment boundaries:
    //   the stored copy is marked without a CDN request;
    // - "offbeat": the same muting, but its video's stretch (0:35, 20 s) is not on segment
    //   boundaries: the playlist is fetched again;
    // - "quiet": its video lists no muted segment: no CDN request.
    let mut ids = Vec::new();
    for (login, stream_id) in [("muted", 601), ("offbeat", 603)] {
        let mut broadcast = Broadcast::new(login, stream_id, &start.to_string(), vec![0]);
        broadcast.muted = std::iter::once(3..6).collect();
        ids.push(world.cdn.add_broadcast(broadcast));
    }
    world
        .cdn
        .add_broadcast(Broadcast::new("quiet", 602, &start.to_string(), vec![0]));
    let video = |stream_id: u64, login: &str| SimVideo {
        video_id: 9000 + stream_id,
        stream_id,
        created_at: start,
        domain_url: world.cdn.base_url(0),
        folder: vod_dir(login, stream_id, &start.to_string()),
        public: true,
        muted: Vec::new(),
    };
    world.listing.set_videos(6, vec![video(601, "muted")]);
    world.listing.set_videos(7, vec![video(602, "quiet")]);
    world.listing.set_videos(8, vec![video(603, "offbeat")]);
    world.listing.set_streams(vec![
        stream(601, 6, "muted", start, 70),
        stream(602, 7, "quiet", start, 70),
        stream(603, 8, "offbeat", start, 70),
    ]);
    world.start(&["--clock-start", &clock_start.to_string(), "--clock-speed", "20"]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("the first captures", 10, |w| {
        [("muted", 601), ("quiet", 602), ("offbeat", 603)]
            .iter()
            .all(|&(login, id)| w.requests_for(login, id) >= 1)
    });
    // Twitch's muting pass on the hour: the copies and their video objects.
    for id in ids {
        world.cdn.mute(id);
    }
    let stretch = |offset, duration| MutedStretch { offset, duration };
    assert!(world.listing.set_video_muted(9601, vec![stretch(30, 30)]));
    assert!(world.listing.set_video_muted(9603, vec![stretch(35, 20)]));
    world.wait_until("the offbeat one re-fetched", 20, |w| {
        w.requests_for("offbeat", 603) >= 2
    });
    world.wait_until("the quiet one's re-fetch settled", 20, |w| {
        w.log().contains("probe skipped")
    });
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    let records = world.records();
    for (id, requests) in [(601, 1), (603, 2)] {
        let muted = find(&records, id)[0];
        assert!(muted.probe.hour_probe_done, "{muted:?}");
        assert_eq!(muted.probe.next_due, None);
        assert_eq!(muted.archive.as_ref().expect("archive").muted_segments, 3);
        let stored = world.playlist(muted).expect("stored");
        for segment in ["3-unmuted.ts", "4-unmuted.ts", "5-unmuted.ts"] {
            assert!(stored.contains(segment), "{stored}");
        }
        assert!(stored.contains("\n2.ts") && stored.contains("\n6.ts"), "{stored}");
        assert_eq!(world.requests_for(&muted.login, id), requests, "{id}");
    }
    let quiet = find(&records, 602)[0];
    assert_eq!((quiet.status, quiet.probe.next_due), (Status::Found, None));
    assert!(
        quiet
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no muted segments")),
        "{quiet:?}"
    );
    assert_eq!(world.requests_for("quiet", 602), 1, "no CDN re-fetch");
}

#[test]
fn a_published_video_makes_the_capture_cost_one_cdn_request() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    // Stored with the unix-1 form on the last domain: a search would cost 7 requests.
    let ts = (start - 1).to_string();
    world
        .cdn
        .add_broadcast(Broadcast::new("published", 1001, &ts, vec![2]));
    world.listing.set_videos(
        10,
        vec![SimVideo {
            video_id: 555,
            stream_id: 1001,
            created_at: start,
            domain_url: world.cdn.base_url(2),
            folder: vod_dir("published", 1001, &ts),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(1001, 10, "published", start, 60)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 20, |w| w.requests_for("published", 1001) >= 1);
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    assert_eq!(
        world.requests_for("published", 1001),
        1,
        "the video named the path"
    );
    assert!(world.listing.video_requests() >= 1);
    let records = world.records();
    let published = find(&records, 1001)[0];
    assert_eq!(published.status, Status::Found);
    assert_eq!(published.public, Some(true));
    assert_eq!(
        published.archive.as_ref().expect("archive").timestamp_form,
        "unix-1"
    );
}

#[test]
fn a_live_broadcast_whose_channel_lists_no_video_is_searched_once_while_live() {
    let mut world = World::healthy(
        "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"1s\"\nalign_to_hour = false\nretries = [\"1s\"]",
    );
    let start = now() - 120;
    // Stored on domain 1 with no video object (hidden), and a channel that stores nothing.
    world
        .cdn
        .add_broadcast(Broadcast::new("novideo", 1101, &start.to_string(), vec![1]));
    world.listing.set_streams(vec![
        stream(1101, 11, "novideo", start, 40),
        stream(1102, 12, "nothing", start, 30),
    ]);
    world.start(&[]);
    // While live: the stored one is found (its path learned), the other swept in full.
    world.wait_until("the live searches", 20, |w| {
        w.requests_for("novideo", 1101) >= 1 && w.requests_for("nothing", 1102) >= 9
    });
    world.listing.set_streams(vec![]);
    // The stored one's live copy already ended (the simulated playlist is complete): found.
    world.wait_until("the end settled without a search", 20, |w| {
        w.log().contains("probe known_empty")
    });
    std::thread::sleep(Duration::from_millis(1500));
    world.stop();
    let records = world.records();
    let record = find(&records, 1101)[0];
    assert_eq!(record.status, Status::Found, "{record:?}");
    assert_eq!(record.public, Some(false));
    let nothing = find(&records, 1102)[0];
    assert_eq!(nothing.status, Status::NotFound, "{nothing:?}");
    assert!(
        nothing
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("while live")),
        "{nothing:?}"
    );
    // One search in all for the channel that stores nothing: its end asked nothing more.
    assert_eq!(world.requests_for("nothing", 1102), 9);
}
