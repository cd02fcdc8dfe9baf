//! Ends found without a full pass: tracked streams the listing no longer shows are confirmed
//! by channel id, so they end and are captured even when later pages are refused, and nothing
//! ends while the listing is down. On a clock 60 times real speed; `ended_after` is two hours,
//! so no pass-based end can happen within the tests.

use crate::serve::{World, find, now, stream};
use std::time::{Duration, Instant};
use vodprobe::record::Status;
use vodprobe_sim::{Broadcast, DomainSpec, ListingFault};

const PIPELINE: &str = "ended_after = \"2h\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = false\nretries = [\"1s\", \"1s\"]";
const SPEED: u64 = 60;
const GQL: &str = "kind = \"gql\"";

fn login(n: u64) -> String {
    format!("chan{n}")
}

/// `count` streams, stream id 1000 + n by channel n, most viewed first, each on the CDN;
/// `source`: extra lines of the `[source]` table.
fn world_with(count: u64, source: &str) -> World {
    let specs = (0..3).map(|_| DomainSpec::healthy()).collect();
    let health = "health = \"0 0 * * * *\"";
    let mut world = World::configured(specs, PIPELINE, source, health, "requests_per_second = 50");
    let start = now() - 600;
    let streams = (1..=count)
        .map(|n| stream(1000 + n, n, &login(n), start, 2000 - n as u32 * 10))
        .collect();
    world.listing.set_streams(streams);
    for n in 1..=count {
        world
            .cdn
            .add_broadcast(Broadcast::new(&login(n), 1000 + n, &start.to_string(), vec![0]));
    }
    let speed = SPEED.to_string();
    world.start(&["--clock-speed", &speed]);
    world
}

/// Waits `simulated` seconds of the appliance's clock.
fn sleep_simulated(simulated: u64) {
    std::thread::sleep(Duration::from_millis(simulated * 1000 / SPEED));
}

#[test]
fn ends_are_confirmed_by_id_while_later_pages_are_refused() {
    let mut world = world_with(35, GQL);
    // Tracked from a full pass first (two GQL pages), then every page after the first refused.
    world.wait_until("a full pass", 20, |w| w.listing.requests() >= 4);
    world.listing.set_fault(ListingFault::RefuseCursorPages);
    let refused_from = Instant::now();
    let confirms_before = world.listing.confirm_requests();
    // Ended meanwhile: one from the first page, two from the refused second page.
    for ended in [5, 33, 34] {
        world.listing.remove(1000 + ended);
    }
    world.wait_until("the captures of the ended streams", 30, |w| {
        [5, 33, 34]
            .iter()
            .all(|n| w.requests_for(&login(*n), 1000 + n) >= 1)
    });
    // 30 simulated minutes of refusals in all.
    let elapsed = refused_from.elapsed();
    std::thread::sleep(Duration::from_millis(30 * 60 * 1000 / SPEED).saturating_sub(elapsed));
    let confirms = world.listing.confirm_requests() - confirms_before;
    // The operator's figures: three ends known by confirmation, each at least confirm_after
    // (60 s) after its last sighting; the three first probes after them started.
    let base = world.api_url();
    let count = |series: &str| crate::reload::metric(&base, series);
    let ends = count("vodprobe_stream_end_seen_seconds_count{by=\"confirm\"}");
    let late = ends - count("vodprobe_stream_end_seen_seconds_bucket{by=\"confirm\",le=\"30\"}");
    let end_probes = count("vodprobe_probe_wait_seconds_count{probe=\"end\"}");
    world.stop();
    assert_eq!(ends, 3.0, "ends known by confirmation");
    assert_eq!(late, 3.0, "each unseen for confirm_after first");
    assert!(end_probes >= 3.0, "{end_probes} first probes after the end");

    let records = world.records();
    for ended in [5, 33, 34] {
        let record = find(&records, 1000 + ended);
        assert_eq!(record.len(), 1, "{records:?}");
        assert_eq!(record[0].status, Status::Found, "{:?}", record[0]);
        assert!(
            world
                .playlist(record[0])
                .is_some_and(|p| p.starts_with("#EXTM3U"))
        );
    }
    for live in (1..=35).filter(|n| ![5, 33, 34].contains(n)) {
        let record = find(&records, 1000 + live);
        assert_eq!(record.len(), 1, "{records:?}");
        assert_eq!(record[0].status, Status::Live, "{:?}", record[0]);
        assert_eq!(
            world.requests_for(&login(live), 1000 + live),
            0,
            "a live stream is not probed"
        );
    }
    // The two streams left on the refused page are asked about (in one request) once they
    // are unseen for confirm_after (60 s), by runs at most every 15 s: every 60-75 s, so 24
    // to 30 requests in 30 minutes; not one per run (120).
    assert!(
        (12..=36).contains(&confirms),
        "{confirms} confirmation requests in 30 minutes"
    );
    eprintln!("confirmation requests in 30 simulated minutes of refused pages: {confirms}");
}

#[test]
fn nothing_ends_while_the_listing_is_down_and_capture_resumes_after() {
    let mut world = world_with(3, GQL);
    world.wait_until("a full pass", 20, |w| w.listing.requests() >= 2);
    sleep_simulated(10);
    world.listing.set_fault(ListingFault::Unavailable);
    // Ended while the listing is down: nothing can tell, so nothing ends.
    world.listing.remove(1002);
    let confirms_before = world.listing.confirm_requests();
    sleep_simulated(30 * 60);
    assert!(
        world.listing.confirm_requests() > confirms_before,
        "confirmations were tried meanwhile"
    );
    // (The hourly domain check may run meanwhile: only the broadcasts' playlists count.)
    for n in 1..=3 {
        assert_eq!(
            world.requests_for(&login(n), 1000 + n),
            0,
            "nothing ended, so nothing was probed"
        );
    }
    world.listing.set_fault(ListingFault::None);
    world.wait_until("the capture once the listing answers", 30, |w| {
        w.requests_for(&login(2), 1002) >= 1
    });
    // Give the end time to be written after the capture of the still-live record, if any.
    world.wait_until("the end to be recorded", 30, |w| {
        w.log().contains("streams ended by confirmation")
    });
    sleep_simulated(60);
    world.stop();

    let records = world.records();
    let ended = find(&records, 1002);
    assert_eq!(ended.len(), 1, "{records:?}");
    assert_eq!(ended[0].status, Status::Found, "{:?}", ended[0]);
    assert!(world.playlist(ended[0]).is_some());
    for live in [1001, 1003] {
        assert_eq!(find(&records, live)[0].status, Status::Live);
    }
}

#[test]
fn helix_confirms_ends_too() {
    // Two Helix pages of 100; the second refused once the streams are tracked.
    let mut world = world_with(105, "kind = \"helix\"\nclient_secret = \"secret\"");
    world.wait_until("a full pass", 20, |w| w.listing.requests() >= 3);
    world.listing.set_fault(ListingFault::RefuseCursorPages);
    for ended in [2, 103] {
        world.listing.remove(1000 + ended);
    }
    world.wait_until("the captures of the ended streams", 30, |w| {
        [2, 103].iter().all(|n| w.requests_for(&login(*n), 1000 + n) >= 1)
    });
    sleep_simulated(60);
    world.stop();
    let records = world.records();
    for ended in [2, 103] {
        assert_eq!(
            find(&records, 1000 + ended)[0].status,
            Status::Found,
            "{records:?}"
        );
    }
    for live in [1, 101, 104, 105] {
        assert_eq!(find(&records, 1000 + live)[0].status, Status::Live, "{records:?}");
    }
}

#[test]
fn confirmations_go_on_while_one_tick_reads_a_long_pass() {
    // 50 GQL pages: 5 recordable streams on top, then streams of 6 viewers (observed, never
    // recorded), read at the test worlds' 20 pages a (real) second, so a crawl tick keeps reading whole
    // seconds of pages (60 clock seconds at x60). Confirmations, limited to one run per 15 s
    // and to half the pace (about 1.7 requests per run here), must not wait for the tick: at
    // one run a tick there would be at most 3 requests a run and 18 in 360 clock seconds.
    let specs = (0..3).map(|_| DomainSpec::healthy()).collect();
    let source = "kind = \"gql\"\nrestart_every = \"1h\"";
    let health = "health = \"0 0 * * * *\"";
    let mut world = World::configured(specs, PIPELINE, source, health, "requests_per_second = 50");
    let start = now() - 600;
    let streams = (1..=1500u64)
        .map(|n| {
            let viewers = if n <= 5 { 2000 - n as u32 } else { 6 };
            stream(1000 + n, n, &login(n), start, viewers)
        })
        .collect();
    world.listing.set_streams(streams);
    let speed = SPEED.to_string();
    world.start(&["--clock-speed", &speed]);
    world.wait_until("a full pass and its stale streams", 30, |w| {
        w.listing.requests() >= 60
    });
    let before = world.listing.confirm_requests();
    sleep_simulated(360);
    let confirms = world.listing.confirm_requests() - before;
    world.stop();
    assert!(
        confirms >= 30,
        "{confirms} confirmation requests in 360 clock seconds of a crawl reading whole passes"
    );
    eprintln!("confirmation requests in 360 clock seconds: {confirms}");
}
