//! The probe queue's bounds: `max_queue` and the request budget's `max_wait`.

use std::time::Duration;
use vodprobe::record::{Status, StreamRecord};
use vodprobe_sim::{Broadcast, DomainSpec, LiveStream, SimVideo, vod_dir};

use super::{DOMAINS, FAST, World, now, stream};

/// The stream ids of the records given up with a reason naming `bound`.
fn dropped_for(records: &[StreamRecord], bound: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r.probe.last_error.as_deref().is_some_and(|e| e.contains(bound)))
        .map(|r| r.stream_id)
        .collect()
}

/// Fourteen broadcasts live since 300 s ago, ids from `first` and logins `{prefix}{id}`, more
/// viewed with each id, their copies spread over the domains and their videos naming the
/// paths (one request each once read). Returns their ids.
fn live_with_named_paths(world: &World, first: u64, prefix: &str) -> Vec<u64> {
    let start = now() - 300;
    let ts = start.to_string();
    let ids: Vec<u64> = (0..14).map(|i| first + i).collect();
    let login = |id: u64| format!("{prefix}{id}");
    for (i, &id) in ids.iter().enumerate() {
        let domain = i % DOMAINS;
        world
            .cdn
            .add_broadcast(Broadcast::new(&login(id), id, &ts, vec![domain]));
        world.listing.set_videos(
            id + 100,
            vec![SimVideo {
                video_id: id + 5000,
                stream_id: id,
                created_at: start,
                domain_url: world.cdn.base_url(domain),
                folder: vod_dir(&login(id), id, &ts),
                public: true,
                muted: Vec::new(),
            }],
        );
    }
    let streams: Vec<LiveStream> = ids
        .iter()
        .map(|&id| stream(id, id + 100, &login(id), start, 20 + (id - first) as u32))
        .collect();
    world.listing.set_streams(streams);
    ids
}

#[test]
fn the_probe_queue_is_bounded_by_max_queue() {
    let mut world = World::configured(
        (0..DOMAINS).map(|_| DomainSpec::healthy()).collect(),
        &format!("{FAST}\nmax_queue = 2"),
        "kind = \"gql\"",
        "health = \"* * * * * *\"",
        "requests_per_second = 0.5",
    );
    let start = now() - 300;
    let streams: Vec<LiveStream> = (0..6)
        .map(|i| stream(900 + i, 90 + i, &format!("queued{i}"), start, 10 + i as u32))
        .collect();
    world.listing.set_streams(streams);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    std::thread::sleep(Duration::from_secs(6));
    // What was given up is named in /healthz and counted by reason.
    let base = world.api_url();
    let health = crate::api::get(&format!("{base}/healthz")).json();
    let shed = health["last_shed"].as_str().unwrap_or_default().to_string();
    assert!(shed.contains("given up as not found"), "{health}");
    let metrics = crate::api::get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_shed_total{reason=\"capture\"}"),
        "{metrics}"
    );
    world.stop();
    assert!(
        world.log().contains("over max_queue"),
        "the drop is logged: {}",
        world.log()
    );
    let records = world.records();
    let dropped = dropped_for(&records, "max_queue");
    assert!(!dropped.is_empty(), "{records:?}");
    // The least viewed go first: the most viewed is never dropped.
    assert!(!dropped.contains(&905), "{dropped:?}");
    let waiting = records.iter().filter(|r| r.probe.next_due.is_some()).count();
    assert!(waiting <= 2, "{records:?}");
}

#[test]
fn the_probe_queue_is_bounded_by_max_wait_of_the_request_budget() {
    // Half a request a second and a minute of it: 30 requests. A search of an ended
    // broadcast's unknown path counts 3 (its channel's domain in its forms): 10 fit besides
    // the 8 probes running, which the bound spares.
    let mut world = World::configured(
        (0..DOMAINS).map(|_| DomainSpec::healthy()).collect(),
        &format!(
            "{}\nmax_wait = \"1m\"",
            FAST.replace("learn_live_after = \"0s\"", "learn_live_after = \"1h\"")
        ),
        "kind = \"gql\"",
        "health = \"0 0 0 1 1 *\"",
        "requests_per_second = 0.5",
    );
    let start = now() - 300;
    let streams: Vec<LiveStream> = (0..22)
        .map(|i| stream(950 + i, 95 + i, &format!("waiting{i}"), start, 20 + i as u32))
        .collect();
    world.listing.set_streams(streams);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("the bound", 30, |w| w.log().contains("max_wait"));
    let base = world.api_url();
    let health = crate::api::get(&format!("{base}/healthz")).json();
    assert!(
        health["last_shed"]
            .as_str()
            .unwrap_or_default()
            .contains("given up as not found"),
        "{health}"
    );
    world.stop();
    let records = world.records();
    let dropped = dropped_for(&records, "max_wait");
    // The least viewed are dropped first; the most viewed are kept, and waited at most a
    // minute of budget.
    assert!(!dropped.is_empty(), "{records:?}");
    assert!(!dropped.contains(&963) && !dropped.contains(&962), "{dropped:?}");
    let kept_min = records
        .iter()
        .filter(|r| !dropped.contains(&r.stream_id))
        .map(|r| r.max_viewers)
        .min();
    let dropped_max = records
        .iter()
        .filter(|r| dropped.contains(&r.stream_id))
        .map(|r| r.max_viewers)
        .max();
    assert!(dropped_max < kept_min, "{records:?}");
}

#[test]
fn a_backlog_reads_video_lists_ahead_so_paths_they_name_cost_one_request_and_are_kept() {
    // One request a second and 20 s of it: 20 requests. Fourteen ended broadcasts counted as
    // searches (3 requests each, 42) would not fit, and some would be dropped; their videos
    // name their paths, so once read ahead they cost one request each (14) and all are kept.
    let mut world = World::configured(
        (0..DOMAINS).map(|_| DomainSpec::healthy()).collect(),
        &format!(
            "{}\nmax_wait = \"20s\"",
            FAST.replace("learn_live_after = \"0s\"", "learn_live_after = \"1h\"")
        ),
        "kind = \"gql\"",
        "health = \"0 0 0 1 1 *\"",
        "requests_per_second = 1",
    );
    let ids = live_with_named_paths(&world, 970, "named");
    let login = |id: u64| format!("named{id}");
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("every capture", 60, |w| {
        ids.iter().all(|&id| w.requests_for(&login(id), id) >= 1)
    });
    let metrics = crate::api::get(&format!("{}/metrics", world.api_url())).text();
    assert!(
        metrics.contains("vodprobe_lookahead_total{outcome=\"learned\"}"),
        "{metrics}"
    );
    world.stop();
    let records = world.records();
    assert!(dropped_for(&records, "max_wait").is_empty(), "{records:?}");
    for &id in &ids {
        assert_eq!(world.requests_for(&login(id), id), 1, "{id}");
        let record = records.iter().find(|r| r.stream_id == id).expect("record");
        assert_eq!(record.status, Status::Found, "{record:?}");
    }
}

#[test]
fn background_checks_wait_while_probes_wait_for_the_budget() {
    // One request a second and fourteen ended broadcasts due at once, each one request (its
    // video names the path): more than the probe slots, so they wait for the budget. The
    // captures' segment checks must not take its requests meanwhile: none arrives before the
    // last capture.
    let mut world = World::configured(
        (0..DOMAINS).map(|_| DomainSpec::healthy()).collect(),
        &FAST.replace("learn_live_after = \"0s\"", "learn_live_after = \"1h\""),
        "kind = \"gql\"",
        "health = \"0 0 0 1 1 *\"",
        "requests_per_second = 1",
    );
    let ids = live_with_named_paths(&world, 1990, "spare");
    let login = |id: u64| format!("spare{id}");
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("every capture", 60, |w| {
        ids.iter().all(|&id| w.requests_for(&login(id), id) >= 1)
    });
    // A few seconds more, in which the old rule ("nothing due") would start checks.
    std::thread::sleep(Duration::from_secs(3));
    let metrics = crate::api::get(&format!("{}/metrics", world.api_url())).text();
    assert!(
        metrics.lines().any(|line| line == "vodprobe_background_paused 1"),
        "paused within the budget's time for 64 requests of the backlog: {metrics}"
    );
    world.stop();
    // (arrival, is a playlist) of every request.
    let mut arrivals: Vec<(std::time::Instant, bool)> = (0..world.cdn.domain_count())
        .flat_map(|d| {
            let log = world.cdn.request_log(d);
            world.cdn.arrivals(d).into_iter().zip(log)
        })
        .map(|(at, r)| (at, r.target.ends_with(".m3u8")))
        .collect();
    arrivals.sort_by_key(|(at, _)| *at);
    let last_capture = arrivals
        .iter()
        .rposition(|(_, playlist)| *playlist)
        .expect("captures");
    let early_checks = arrivals[..last_capture]
        .iter()
        .filter(|(_, playlist)| !playlist)
        .count();
    assert_eq!(
        early_checks, 0,
        "segment requests among the waiting probes' {arrivals:?}"
    );
    let records = world.records();
    for &id in &ids {
        let record = records.iter().find(|r| r.stream_id == id).expect("record");
        assert_eq!(record.status, Status::Found, "{record:?}");
    }
}
