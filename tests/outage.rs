//! `serve` through a CDN outage: a broadcast held only by a domain that is down is backed off
//! (60 s doubling), and captured as soon as that domain answers again, not when the back-off
//! ends, while every request stays within the budget. On a clock five times real speed.

use crate::serve::{World, find, now, stream};
use std::time::{Duration, Instant};
use vodprobe::record::Status;
use vodprobe_sim::{Broadcast, DomainSpec, Fault, SimVideo, vod_dir};

const SPEED: f64 = 5.0;
const REQUESTS_PER_SECOND: usize = 20;
const PIPELINE: &str = "ended_after = \"10s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = false\nretries = [\"1h\"]";

/// Real time as seconds of the appliance's clock.
fn simulated(real: Duration) -> f64 {
    real.as_secs_f64() * SPEED
}

/// The most requests that arrived on any domain within one second.
fn busiest_second(world: &World) -> usize {
    let mut arrivals: Vec<Instant> = (0..world.cdn.domain_count())
        .flat_map(|d| world.cdn.arrivals(d))
        .collect();
    arrivals.sort();
    (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|&&t| t < arrivals[i] + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// When the first request for the broadcast's path arrived on `domain` after `since`.
fn first_request_after(world: &World, domain: usize, login: &str, since: Instant) -> Option<Instant> {
    let needle = format!("_{login}_");
    world
        .cdn
        .requests(domain)
        .iter()
        .zip(world.cdn.arrivals(domain))
        .find(|(path, at)| *at > since && path.contains(&needle))
        .map(|(_, at)| at)
}

#[test]
fn a_broadcast_on_a_domain_that_was_down_is_captured_when_it_answers_not_after_its_back_off() {
    let specs = vec![
        DomainSpec::healthy(),
        DomainSpec::healthy(),
        DomainSpec {
            prefix: String::new(),
            fault: Fault::Unavailable,
        },
    ];
    // Health every 5 s of the appliance's clock (1 s real): 3 requests a second of 20.
    let limits = format!("requests_per_second = {REQUESTS_PER_SECOND}");
    let mut world = World::configured(
        specs,
        PIPELINE,
        "kind = \"gql\"",
        "health = \"*/5 * * * * *\"",
        &limits,
    );
    let start = now() - 600;
    let ts = start.to_string();
    // One broadcast whose video names its path (each probe asks that domain alone), and three
    // found only by searching every domain; all held by domain 2 only.
    let logins = ["named", "cold1", "cold2", "cold3"];
    for (n, login) in logins.iter().enumerate() {
        world
            .cdn
            .add_broadcast(Broadcast::new(login, 3000 + n as u64, &ts, vec![2]));
    }
    world.listing.set_videos(
        30,
        vec![SimVideo {
            video_id: 777,
            stream_id: 3000,
            created_at: start,
            domain_url: world.cdn.base_url(2),
            folder: vod_dir("named", 3000, &ts),
            public: true,
            muted: Vec::new(),
        }],
    );
    let streams = logins
        .iter()
        .enumerate()
        .map(|(n, login)| stream(3000 + n as u64, 30 + n as u64, login, start, 100))
        .collect();
    world.listing.set_streams(streams);
    world.start(&["--clock-speed", &SPEED.to_string()]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    // The streams end while domain 2 is down: each probe is inconclusive and backs off.
    world.listing.set_streams(vec![]);
    // Probed at its absence from a complete pass, then at its end (`ended_after`): both fail,
    // so the next probe waits out a back-off of at least a minute of the appliance's clock
    // (two, in fact: the second in a row).
    let named = |w: &World| w.cdn.requests(2).iter().filter(|p| p.contains("_named_")).count();
    world.wait_until("two failed probes", 30, |w| named(w) >= 2);
    let second_failed = world.cdn.arrivals(2)[world
        .cdn
        .requests(2)
        .iter()
        .rposition(|p| p.contains("_named_"))
        .expect("asked")];
    let back_off_ends = second_failed + Duration::from_secs_f64(60.0 / SPEED);
    std::thread::sleep(Duration::from_millis(200));
    world.cdn.set_fault(2, Fault::None);
    let restored = Instant::now();
    world.wait_until("every capture", 40, |w| {
        logins
            .iter()
            .all(|login| first_request_after(w, 2, login, restored).is_some())
    });
    let captured: Vec<f64> = logins
        .iter()
        .map(|login| {
            let at = first_request_after(&world, 2, login, restored).expect("asked");
            simulated(at - restored)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    world.stop();
    let busiest = busiest_second(&world);
    eprintln!(
        "captures after domain 2 answered again (s of the appliance's clock): {captured:?}; \
         the back-off had at least {:.0} s left; busiest second: {busiest} requests",
        simulated(back_off_ends - restored)
    );
    for (login, seconds) in logins.iter().zip(&captured) {
        // A health check every 5 s, a probe tick every second, then the search itself.
        assert!(
            *seconds < 30.0,
            "{login} was asked {seconds:.0} s after its domain answered again: {}",
            world.log()
        );
    }
    assert!(
        captured
            .iter()
            .all(|s| restored + Duration::from_secs_f64(s / SPEED) < back_off_ends)
    );
    // The pacer spaces requests as they leave; one that left a slot late (a loaded machine)
    // arrives in the same second as the next ones.
    assert!(
        busiest <= REQUESTS_PER_SECOND + 2,
        "{busiest} requests within one second (budget {REQUESTS_PER_SECOND})"
    );
    let records = world.records();
    for n in 0..logins.len() as u64 {
        let record = find(&records, 3000 + n)[0];
        assert_eq!(record.status, Status::Found, "{record:?}");
        // At least one inconclusive probe before the one that found it.
        assert!(record.probe.probes >= 2, "{record:?}");
    }
    assert!(
        world.log().contains("probes held back by an outage are due now"),
        "the recovery is logged"
    );
}
