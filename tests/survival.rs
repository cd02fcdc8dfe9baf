//! The survival watch, through `serve` against the simulated CDN: after the check at capture a
//! capture is checked again on the watch's schedule (a day after the start, around each
//! retention edge, ...), so segments that expire later are reported `partial` or `gone` with
//! the first loss's time, and a capture near a retention edge is listed as at risk. Days pass
//! by restarting `serve` with `--clock-start` further on (the store keeps the queue), with the
//! simulated CDN's clock moved alike where retention matters. The watch stays inside the
//! request budget and a probe that comes due while watch checks wait is not held up.

use crate::api::get;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use std::time::Instant;
use vodprobe::api::rfc3339;
use vodprobe_sim::{Broadcast, Segments};

const DAY: i64 = 86_400;
const DOMAIN: usize = 1;

/// Stops `serve` and starts it again with its clock at `clock`; the old log is set aside so
/// the new API address is the one read.
fn restart_at(world: &mut World, clock: i64) {
    world.stop();
    let log = world.dir.path().join("serve.log");
    let _ = std::fs::rename(&log, world.dir.path().join(format!("serve.{clock}.log")));
    world.start(&["--clock-start", &clock.to_string()]);
}

/// The API's item for the broadcast (the first with that stream id).
fn item(base: &str, stream_id: u64) -> Value {
    get(&format!("{base}/api/v1/vods/{stream_id}")).json()["items"][0].clone()
}

fn ids(base: &str, query: &str) -> Vec<String> {
    let answer = get(&format!("{base}/api/v1/vods?{query}"));
    assert_eq!(answer.status, 200, "{query}: {}", answer.text());
    answer.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["stream_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the broadcast's last check ran at or after `since` (clock time).
fn checked_since(world: &World, stream_id: u64, since: i64) -> Value {
    let base = world.api_url();
    let since = rfc3339(since);
    let mut last = Value::Null;
    world.wait_until("a watch check", 30, |_| {
        last = item(&base, stream_id);
        last["segments_checked_at"]
            .as_str()
            .is_some_and(|at| at >= since.as_str())
    });
    last
}

/// A world whose broadcasts (30 segments each, held by `DOMAIN` unless said) were seen live,
/// ended, were captured and checked ok. Returns the world and their start.
fn captured(broadcasts: &[(&str, u64)]) -> (World, i64, Vec<usize>) {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    let sim: Vec<usize> = broadcasts
        .iter()
        .map(|(login, id)| {
            world
                .cdn
                .add_broadcast(Broadcast::new(login, *id, &start.to_string(), vec![DOMAIN]))
        })
        .collect();
    world.listing.set_streams(
        broadcasts
            .iter()
            .map(|(login, id)| stream(*id, *id, login, start, 50))
            .collect(),
    );
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    world.wait_until("every capture checked ok", 60, |_| {
        ids(&base, "segments_state=ok").len() == broadcasts.len()
    });
    (world, start, sim)
}

/// Segment checks' requests (HEAD), the latecomer's own check at capture left out.
fn head_requests(world: &World) -> usize {
    (0..world.cdn.domain_count())
        .flat_map(|d| world.cdn.request_log(d))
        .filter(|r| r.method == "HEAD" && !r.target.contains(LATECOMER))
        .count()
}

const LATECOMER: &str = "_latecomer_2399_";

#[test]
fn the_watch_reports_later_losses_and_keeps_the_first() {
    let (mut world, start, sim) = captured(&[("watchall", 2301), ("watchnth", 2302)]);
    let base = world.api_url();
    let fresh = item(&base, 2301);
    assert_eq!(fresh["at_risk_until"], rfc3339(start + 7 * DAY), "{fresh}");
    assert!(ids(&base, "at_risk=true").is_empty(), "a week from the edge");
    assert_eq!(ids(&base, "at_risk=false").len(), 2);
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_segment_checks_waiting 2"),
        "both stay watched: {metrics}"
    );

    // A day later, the watch's first re-check: some segments answer 403 now.
    world.cdn.expire_segments(sim[0], Segments::Range(0..10));
    world
        .cdn
        .expire_segments(sim[1], Segments::EveryNth { n: 15, first: 0 });
    let heads = head_requests(&world);
    let day1 = start + DAY + 60;
    restart_at(&mut world, day1);
    let all = checked_since(&world, 2301, day1);
    let nth = checked_since(&world, 2302, day1);
    let base = world.api_url();
    for partial in [&all, &nth] {
        assert_eq!(partial["segments_state"], "partial", "{partial}");
        assert_eq!(
            partial["segments_lost_at"], partial["segments_checked_at"],
            "{partial}"
        );
        assert_eq!(partial["playable"], true, "partly playable: {partial}");
    }
    assert_eq!(head_requests(&world) - heads, 6, "three requests a check");
    let mut lost = ids(&base, &format!("lost_since={day1}"));
    lost.sort();
    assert_eq!(lost, ["2301", "2302"]);
    assert!(ids(&base, &format!("lost_since={}", day1 + 3600)).is_empty());
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_segment_losses_total{state=\"partial\"} 2"),
        "{metrics}"
    );

    // The next day every segment of one is gone: its loss still dates from the partial check.
    world.cdn.expire_segments(sim[0], Segments::All);
    let day2 = start + 2 * DAY + 60;
    restart_at(&mut world, day2);
    let gone = checked_since(&world, 2301, day2);
    let still = checked_since(&world, 2302, day2);
    let base = world.api_url();
    assert_eq!(gone["segments_state"], "gone", "{gone}");
    assert_eq!(
        gone["segments_lost_at"], all["segments_lost_at"],
        "the first loss is kept"
    );
    assert_eq!(gone["playable"], false);
    assert_eq!(gone["at_risk_until"], Value::Null, "nothing left to save");
    assert_eq!(still["segments_state"], "partial", "{still}");
    assert_eq!(still["segments_lost_at"], nth["segments_lost_at"]);
    assert_eq!(ids(&base, "segments_state=gone"), ["2301"]);
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_segment_losses_total{state=\"gone\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vodprobe_segment_checks_waiting 1"),
        "a gone capture leaves the watch: {metrics}"
    );
}

#[test]
fn a_capture_is_at_risk_before_its_retention_edge_and_found_gone_after_it() {
    let (mut world, start, _) = captured(&[("weekly", 2311)]);
    // A day before the 7-day edge (the broadcast's retention in the simulator).
    let before = start + 6 * DAY + 60;
    world.cdn.set_now(before);
    restart_at(&mut world, before);
    let alive = checked_since(&world, 2311, before);
    let base = world.api_url();
    assert_eq!(alive["segments_state"], "ok", "{alive}");
    assert_eq!(alive["at_risk_until"], rfc3339(start + 7 * DAY));
    assert_eq!(ids(&base, "at_risk=true"), ["2311"]);
    assert!(ids(&base, &format!("lost_since={start}")).is_empty());
    let script = get(&format!("{base}/web/app.js")).text();
    assert!(script.contains("at_risk_until"), "the page reads the edge");

    // Just after the edge and the watch's margin: retention deleted everything.
    let after = start + 7 * DAY + 2 * 3600 + 60;
    world.cdn.set_now(after);
    restart_at(&mut world, after);
    let gone = checked_since(&world, 2311, after);
    let base = world.api_url();
    assert_eq!(gone["segments_state"], "gone", "{gone}");
    assert_eq!(gone["segments_lost_at"], gone["segments_checked_at"]);
    assert!(ids(&base, "at_risk=true").is_empty());
    assert_eq!(ids(&base, &format!("lost_since={}", start + 7 * DAY)), ["2311"]);
}

#[test]
fn the_watch_stays_within_the_budget_and_never_delays_a_due_probe() {
    const RATE: usize = 3;
    const CAPTURES: u64 = 12;
    let names: Vec<String> = (0..CAPTURES).map(|n| format!("watched{n}")).collect();
    let broadcasts: Vec<(&str, u64)> = names
        .iter()
        .zip(2320..)
        .map(|(name, id)| (name.as_str(), id))
        .collect();
    let (mut world, start, _) = captured(&broadcasts);
    // The day-1 checks of all twelve are due at once, at a tight budget.
    let config = std::fs::read_to_string(world.config_path()).expect("config");
    let tight = config.replace(
        "requests_per_second = 50",
        &format!("requests_per_second = {RATE}"),
    );
    assert_ne!(config, tight);
    std::fs::write(world.config_path(), tight).expect("config");
    // A broadcast that ends while the checks wait: its probe comes due among them.
    let late_start = start + DAY;
    world.cdn.add_broadcast(Broadcast::new(
        "latecomer",
        2399,
        &late_start.to_string(),
        vec![0],
    ));
    world
        .listing
        .set_streams(vec![stream(2399, 2399, "latecomer", late_start, 90)]);
    let heads = head_requests(&world);
    let listed = world.listing.requests();
    let restarted = Instant::now();
    restart_at(&mut world, start + DAY + 120);
    world.wait_until("the latecomer seen", 10, |w| w.listing.requests() >= listed + 2);
    world.listing.set_streams(vec![]);
    let watch = 3 * CAPTURES as usize;
    world.wait_until("every watch check", 60, |w| head_requests(w) - heads >= watch);
    world.wait_until("the latecomer captured", 30, |w| {
        w.requests_for("latecomer", 2399) >= 1
    });

    // (arrival, is a watch check's, is the latecomer's probe's) of every request since the
    // restart.
    let mut arrivals: Vec<(Instant, bool, bool)> = (0..world.cdn.domain_count())
        .flat_map(|d| {
            let log = world.cdn.request_log(d);
            world.cdn.arrivals(d).into_iter().zip(log)
        })
        .filter(|(at, _)| *at >= restarted)
        .map(|(at, r)| {
            let latecomer = r.target.contains(LATECOMER);
            (
                at,
                r.method == "HEAD" && !latecomer,
                latecomer && r.target.ends_with(".m3u8"),
            )
        })
        .collect();
    arrivals.sort_by_key(|(at, ..)| *at);
    let first_probe = arrivals
        .iter()
        .position(|(_, _, probe)| *probe)
        .expect("the latecomer probed");
    let checks_after = arrivals[first_probe..]
        .iter()
        .filter(|(_, head, _)| *head)
        .count();
    assert!(
        checks_after > 0,
        "the probe waited for the watch to drain: {arrivals:?}"
    );
    // As in tests/segments.rs: a request that left its slot late shares a second with the next.
    let times: Vec<Instant> = arrivals.iter().map(|(at, ..)| *at).collect();
    crate::segments::assert_within_budget(&times, RATE);
    let base = world.api_url();
    assert_eq!(item(&base, 2399)["status"], "found");
}
