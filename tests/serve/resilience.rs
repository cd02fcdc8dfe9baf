//! Resilience: listing failures and CDN faults, SIGKILL at random moments, and an expired
//! helix token.

use std::time::Duration;
use vodprobe::record::Status;
use vodprobe::store::Store;
use vodprobe_sim::{Broadcast, DomainSpec, Fault, ListingFault, LiveStream};

use super::{DOMAINS, FAST, World, find, now, stream};

#[test]
fn listing_failures_end_nothing_and_cdn_faults_do_not_lose_captures() {
    let mut specs = vec![
        DomainSpec {
            prefix: String::new(),
            fault: Fault::Blackhole,
        },
        DomainSpec::healthy(),
        DomainSpec {
            prefix: "vods/".into(),
            fault: Fault::None,
        },
    ];
    specs[1].fault = Fault::Unavailable;
    let mut world = World::new(specs, FAST);
    let start = now() - 600;
    world
        .cdn
        .add_broadcast(Broadcast::new("survivor", 501, &start.to_string(), vec![2]));
    world
        .listing
        .set_streams(vec![stream(501, 5, "survivor", start, 90)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    // The listing fails for longer than ended_after: the stream must not be taken for ended.
    world.listing.set_fault(ListingFault::Unavailable);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        world.requests_for("survivor", 501),
        0,
        "nothing ended while the listing failed"
    );
    world.listing.set_fault(ListingFault::None);
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 25, |w| {
        w.cdn.requests(2).iter().any(|p| p.contains("_survivor_501_"))
    });
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    assert!(
        world.log().contains("live listing failed"),
        "the failure is logged"
    );
    let records = world.records();
    let survivor = find(&records, 501)[0];
    assert_eq!(survivor.status, Status::Found, "{survivor:?}");
    assert!(survivor.archive.as_ref().expect("archive").url.contains("/vods/"));
}

/// A small deterministic generator for kill timings (seeded from the clock, printed on failure).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn sigkill_at_random_moments_loses_nothing() {
    let mut world = World::healthy(FAST);
    let mut seed = (now() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let initial_seed = seed;
    let base = now() - 1200;
    let forms = [0, 0, 0, 1, 0, 0, 2, 0, 0, 0];
    let mut streams = Vec::new();
    for index in 0..24u64 {
        let start = base + index as i64 * 7;
        let stream_id = 700 + index;
        let login = format!("crash{index}");
        // Two thirds hold a copy somewhere, in one of the three forms.
        if index % 3 != 0 {
            let ts = match forms[(index % 10) as usize] {
                0 => start.to_string(),
                1 => (start - 1).to_string(),
                _ => start.rem_euclid(60).to_string(),
            };
            world
                .cdn
                .add_broadcast(Broadcast::new(&login, stream_id, &ts, vec![(index % 3) as usize]));
        }
        streams.push(stream(
            stream_id,
            7000 + index,
            &login,
            start,
            10 + (index as u32 * 13) % 90,
        ));
    }
    world.listing.set_streams(streams.clone());
    for round in 0..6 {
        world.start(&[]);
        // Streams end part way through: the last rounds kill the appliance while it probes.
        if round == 0 {
            // The listing must have been read once for "every stream it showed" to mean anything.
            let before = world.listing.requests();
            world.wait_until("a crawl pass", 10, |w| w.listing.requests() >= before + 2);
        }
        if round == 3 {
            world.listing.set_streams(vec![]);
        }
        let pause = 300 + next_random(&mut seed) % 1700;
        std::thread::sleep(Duration::from_millis(pause));
        world.kill9();
        let store = Store::open(&world.database(), 1 << 20);
        assert!(
            store.is_ok(),
            "seed {initial_seed}: round {round}: {:?}",
            store.err()
        );
    }
    world.start(&[]);
    let stored: Vec<&LiveStream> = streams.iter().filter(|s| (s.stream_id - 700) % 3 != 0).collect();
    world.wait_until("every stored broadcast to be fetched", 60, |w| {
        stored.iter().all(|s| {
            let needle = format!("_{}_{}_", s.login, s.stream_id);
            (0..DOMAINS).any(|d| w.cdn.requests(d).iter().any(|p| p.contains(&needle)))
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    world.stop();
    let records = world.records();
    for stream in &streams {
        let found = find(&records, stream.stream_id);
        assert_eq!(
            found.len(),
            1,
            "seed {initial_seed}: stream {} lost: {records:?}",
            stream.login
        );
        let record = found[0];
        if (stream.stream_id - 700) % 3 != 0 {
            assert_eq!(record.status, Status::Found, "seed {initial_seed}: {record:?}");
            assert!(world.playlist(record).is_some());
        } else {
            assert_ne!(record.status, Status::Found, "seed {initial_seed}: {record:?}");
        }
    }
    // Each event was written with its change: none lost, none repeated across the kills.
    let store = Store::open(&world.database(), 1 << 20).expect("store");
    let filter = vodprobe::store::EventFilter {
        ascending: true,
        ..Default::default()
    };
    let events = store.events(&filter, 10_000).expect("events").events;
    for stream in &streams {
        let kinds: Vec<&str> = events
            .iter()
            .filter(|(_, event)| event.stream.1 == stream.stream_id)
            .map(|(_, event)| event.kind.as_str())
            .collect();
        let expected: &[&str] = if (stream.stream_id - 700) % 3 != 0 {
            &["live", "ended", "captured"]
        } else {
            &["live", "ended"]
        };
        assert_eq!(kinds, expected, "seed {initial_seed}: {}", stream.login);
    }
}

#[test]
fn the_helix_source_feeds_the_pipeline_too() {
    let mut world = World::configured(
        (0..DOMAINS).map(|_| DomainSpec::healthy()).collect(),
        FAST,
        "kind = \"helix\"\nclient_secret = \"secret\"",
        "health = \"0 0 * * * *\"",
        "requests_per_second = 50",
    );
    let start = now() - 300;
    world
        .cdn
        .add_broadcast(Broadcast::new("helixer", 801, &start.to_string(), vec![0]));
    world
        .listing
        .set_streams(vec![stream(801, 8, "helixer", start, 25)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.expire_tokens();
    std::thread::sleep(Duration::from_millis(1500));
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 20, |w| w.requests_for("helixer", 801) >= 1);
    std::thread::sleep(Duration::from_millis(500));
    world.stop();
    assert!(
        world.listing.token_requests() >= 2,
        "the expired token was refreshed"
    );
    let records = world.records();
    assert_eq!(find(&records, 801)[0].status, Status::Found, "{records:?}");
}
