//! Unit tests for the simulated world (kept apart from `world.rs` only for file length).

use super::*;
use crate::{DomainSpec, SIM_CLIENT_ID};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

fn servers(domains: usize) -> (SimListing, SimCdn) {
    let listing = SimListing::start().expect("listing");
    let cdn = SimCdn::start((0..domains).map(|_| DomainSpec::healthy()).collect()).expect("cdn");
    (listing, cdn)
}

/// A world advanced through `times` against fresh simulators.
fn run(spec: WorldSpec, times: impl IntoIterator<Item = i64>) -> (World, SimListing, SimCdn) {
    let (listing, cdn) = servers(spec.domains);
    let mut world = World::new(spec);
    for t in times {
        world.advance(t, &listing, &cdn);
    }
    (world, listing, cdn)
}

fn steps(from: i64, to: i64, step: i64) -> impl Iterator<Item = i64> {
    (0..=(to - from) / step).map(move |i| from + i * step).chain([to])
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into()
}

fn get(url: &str) -> (u16, String) {
    let mut resp = agent().get(url).call().expect("request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().expect("body");
    (status, body)
}

fn playlist(cdn: &SimCdn, t: &TruthBroadcast) -> (u16, String) {
    let domain = t.domain.expect("stored");
    get(&format!(
        "{}{}",
        cdn.base_url(domain),
        t.playlist_path("chunked").expect("path")
    ))
}

/// Every stream of the GQL listing: (stream id, viewers, createdAt, login).
fn gql_all(listing: &SimListing) -> Vec<(u64, u64, String, String)> {
    let mut out = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let body = json!({"query": "query GetStreams($first: Int!, $cursor: Cursor) { streams(first: $first, after: $cursor) { edges { cursor } } }",
                          "variables": {"first": 30, "cursor": cursor}})
        .to_string();
        let mut resp = agent()
            .post(&listing.gql_url())
            .header("Client-Id", SIM_CLIENT_ID)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .expect("gql");
        assert_eq!(resp.status().as_u16(), 200);
        let page: Value =
            serde_json::from_str(&resp.body_mut().read_to_string().expect("body")).expect("json");
        let streams = &page["data"]["streams"];
        let edges = streams["edges"].as_array().expect("edges");
        for e in edges {
            let n = &e["node"];
            out.push((
                n["id"].as_str().expect("id").parse().expect("numeric id"),
                n["viewersCount"].as_u64().expect("viewers"),
                n["createdAt"].as_str().expect("createdAt").to_string(),
                n["broadcaster"]["login"].as_str().expect("login").to_string(),
            ));
        }
        if !streams["pageInfo"]["hasNextPage"].as_bool().expect("hasNextPage") {
            return out;
        }
        cursor = edges.last().expect("edge")["cursor"].clone();
    }
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The videos the listing should show for each channel at the world's time, from the truth:
/// stored broadcasts with a video object, not quick-deleted, started less than
/// `VIDEO_KEEP_SECS` ago; newest first.
fn expected_videos(world: &World, cdn: &SimCdn) -> HashMap<u64, Vec<SimVideo>> {
    let mut out: HashMap<u64, Vec<SimVideo>> = world
        .channels
        .iter()
        .map(|c| (c.streamer_id, Vec::new()))
        .collect();
    for t in world.broadcasts().iter().rev() {
        if !t.has_video || t.deleted_at.is_some() || t.listed_start + VIDEO_KEEP_SECS <= world.now() {
            continue;
        }
        let ts = t.path_ts.as_deref().expect("stored");
        out.entry(t.streamer_id).or_default().push(SimVideo {
            video_id: 0,
            stream_id: t.stream_id,
            created_at: t.listed_start,
            domain_url: cdn.base_url(t.domain.expect("stored")),
            folder: vod_dir(&t.login, t.stream_id, ts),
            public: t.public,
            muted: Vec::new(),
        });
    }
    out
}

/// What the listing holds per channel, video ids and muted stretches blanked (the truth does
/// not carry them; `the_mute_pass_lists_muted_stretches_on_the_video` checks the latter).
fn listed_videos(world: &World, listing: &SimListing) -> HashMap<u64, Vec<SimVideo>> {
    world
        .channels
        .iter()
        .map(|c| {
            let videos = listing.videos(c.streamer_id).expect("every channel is pushed");
            let blank = videos
                .into_iter()
                .map(|v| SimVideo {
                    video_id: 0,
                    muted: Vec::new(),
                    ..v
                })
                .collect();
            (c.streamer_id, blank)
        })
        .collect()
}

/// A spec with no outages and many quick deletes, for lifecycle tests.
fn busy_spec(channels: usize) -> WorldSpec {
    let mut spec = WorldSpec::benchmark_day(T0, 4, channels);
    spec.outages.clear();
    spec.quick_delete_share = 0.4;
    spec
}

#[test]
fn same_seed_same_history() {
    let spec = WorldSpec::benchmark_day(T0, 12, 300);
    let (a, _, _) = run(spec.clone(), steps(T0, T0 + 8 * 3600, 600));
    let (b, _, _) = run(spec.clone(), steps(T0, T0 + 8 * 3600, 600));
    assert!(a.broadcasts().len() > 100);
    assert_eq!(a.broadcasts(), b.broadcasts());
    assert_eq!(a.live_streams(), b.live_streams());
    let mut other = spec;
    other.seed ^= 1;
    let (c, _, _) = run(other, steps(T0, T0 + 8 * 3600, 600));
    assert_ne!(a.broadcasts(), c.broadcasts());
}

#[test]
fn big_jumps_equal_small_steps() {
    let spec = busy_spec(300);
    let end = T0 + 9 * 3600 + 17;
    // Irregular small steps of 1..=97 s.
    let mut small_times = Vec::new();
    let mut t = T0;
    let mut k = 0;
    while t < end {
        small_times.push(t);
        k += 1;
        t += 1 + (k * 37) % 97;
    }
    small_times.push(end);
    let (small, small_listing, small_cdn) = run(spec.clone(), small_times);
    let (big, big_listing, big_cdn) = run(spec, [T0 + 3 * 3600, end]);
    let truth = small.broadcasts();
    assert_eq!(truth, big.broadcasts());
    assert_eq!(small.live_streams(), big.live_streams());
    // The same videos, domains aside (each run has its own CDN ports).
    let strip = |listing: &SimListing, world: &World| {
        let mut all: Vec<(u64, SimVideo)> = world
            .channels
            .iter()
            .flat_map(|c| {
                let videos = listing.videos(c.streamer_id).unwrap_or_default();
                videos.into_iter().map(|v| {
                    (
                        c.streamer_id,
                        SimVideo {
                            domain_url: String::new(),
                            ..v
                        },
                    )
                })
            })
            .collect();
        all.sort_by_key(|(_, v)| v.video_id);
        all
    };
    let small_videos = strip(&small_listing, &small);
    assert!(small_videos.len() > 50, "{}", small_videos.len());
    assert_eq!(small_videos, strip(&big_listing, &big));
    assert!(truth.iter().any(|t| t.deleted_at.is_some()));
    // The CDNs serve the same thing: live, ended and deleted copies alike.
    let stored: Vec<&TruthBroadcast> = truth.iter().filter(|t| t.domain.is_some()).collect();
    for t in stored.iter().step_by(stored.len() / 40 + 1) {
        assert_eq!(playlist(&small_cdn, t), playlist(&big_cdn, t), "{t:?}");
    }
}

#[test]
fn benchmark_day_statistics() {
    let spec = WorldSpec::benchmark_day(T0, 12, 2000);
    let regions = spec.regions.clone();
    let (world, _, _) = run(spec, steps(T0, T0 + 86_400, 300));
    let truth = world.broadcasts();
    assert!((2000..10_000).contains(&truth.len()), "{}", truth.len());

    // About half the channels store nothing; the others keep one domain of one region.
    let without = world.channels.iter().filter(|c| c.domain.is_none()).count();
    assert!((900..1100).contains(&without), "{without}");
    let mut domains: HashMap<&str, HashSet<Option<usize>>> = HashMap::new();
    for t in &truth {
        domains.entry(&t.login).or_default().insert(t.domain);
        assert_eq!(t.domain.is_some(), t.path_ts.is_some());
        let login_ok = t.login.len() >= 4
            && t.login.len() <= 25
            && t.login
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(login_ok, "{}", t.login);
    }
    assert!(domains.values().all(|d| d.len() == 1));
    for d in domains.values().flatten().flatten() {
        assert!(regions.iter().any(|r| r.contains(d)));
    }
    let without_copy = domains.values().filter(|d| d.contains(&None)).count() as f64;
    let share = without_copy / domains.len() as f64;
    assert!((0.4..0.6).contains(&share), "{share}");

    // Forms about 90 / 9 / 1 on broadcasts that were not restarted.
    let plain: Vec<&TruthBroadcast> = truth
        .iter()
        .filter(|t| t.domain.is_some() && !t.restarted)
        .collect();
    let share_of = |form: &str| plain.iter().filter(|t| t.form == form).count() as f64 / plain.len() as f64;
    let (unix, unix1, som) = (share_of("unix"), share_of("unix-1"), share_of("second-of-minute"));
    assert!((0.86..0.94).contains(&unix), "{unix}");
    assert!((0.06..0.12).contains(&unix1), "{unix1}");
    assert!(som > 0.0 && som < 0.03, "{som}");
    for t in &plain {
        let ts: i64 = t.path_ts.as_deref().expect("ts").parse().expect("number");
        let want = match t.form {
            "unix" => t.listed_start,
            "unix-1" => t.listed_start - 1,
            _ => t.listed_start % 60,
        };
        assert_eq!(ts, want);
    }

    // Restarts: the second part reuses the stream id, starts after the first part ended and
    // uses second-of-minute; otherwise stream ids are unique.
    let mut by_id: HashMap<u64, Vec<&TruthBroadcast>> = HashMap::new();
    for t in &truth {
        by_id.entry(t.stream_id).or_default().push(t);
    }
    let mut pairs = 0;
    for group in by_id.values() {
        match group.as_slice() {
            [one] => assert!(!one.restarted || one.listed_start < T0 + 12 * 3600),
            [first, second] => {
                pairs += 1;
                assert!(!first.restarted && second.restarted);
                assert_eq!(first.login, second.login);
                assert!(first.ended_at.expect("first part ended") < second.listed_start);
                assert_eq!(second.form, "second-of-minute");
                if let Some(ts) = &second.path_ts {
                    assert_eq!(*ts, (second.listed_start % 60).to_string());
                }
            }
            more => panic!("{} broadcasts share a stream id", more.len()),
        }
    }
    assert!(pairs >= 20, "{pairs}");

    // Quick deletes 2–10 minutes after the end, stored broadcasts only.
    let deleted: Vec<&TruthBroadcast> = truth.iter().filter(|t| t.deleted_at.is_some()).collect();
    assert!(deleted.len() >= 20, "{}", deleted.len());
    for t in deleted {
        let after = t.deleted_at.expect("deleted") - t.ended_at.expect("ended");
        assert!((120..=600).contains(&after) && t.domain.is_some(), "{t:?}");
    }

    // Video objects for about 70% of the stored broadcasts; a fifth of the channels sub-only.
    let stored: Vec<&TruthBroadcast> = truth.iter().filter(|t| t.domain.is_some()).collect();
    let with_video = stored.iter().filter(|t| t.has_video).count() as f64 / stored.len() as f64;
    assert!((0.65..0.75).contains(&with_video), "{with_video}");
    assert!(
        truth
            .iter()
            .all(|t| (t.has_video || !t.public) && (t.domain.is_some() || !t.has_video))
    );
    let mut public_by_channel: HashMap<&str, HashSet<bool>> = HashMap::new();
    for t in truth.iter().filter(|t| t.has_video) {
        public_by_channel.entry(&t.login).or_default().insert(t.public);
    }
    assert!(
        public_by_channel.values().all(|p| p.len() == 1),
        "sub-only is per channel"
    );
    let subonly = public_by_channel.values().filter(|p| p.contains(&false)).count() as f64
        / public_by_channel.len() as f64;
    assert!((0.15..0.25).contains(&subonly), "{subonly}");

    // Heavy-tailed peaks: most streams are small, a few are big.
    let mut peaks: Vec<u32> = truth.iter().map(|t| t.peak_viewers).collect();
    peaks.sort_unstable();
    let recordable = peaks.iter().filter(|&&p| p >= 10).count() as f64 / peaks.len() as f64;
    assert!((0.1..0.5).contains(&recordable), "{recordable}");
    assert!(
        peaks[peaks.len() / 2] < 10 && peaks[peaks.len() - 1] >= 1000,
        "{peaks:?}"
    );

    // The live set is exactly the broadcasts started and not ended; memory stays bounded.
    let live: HashSet<u64> = world.live_streams().iter().map(|s| s.stream_id).collect();
    let open: HashSet<u64> = truth
        .iter()
        .filter(|t| t.ended_at.is_none())
        .map(|t| t.stream_id)
        .collect();
    assert_eq!(live, open);
    assert!(
        world.active.len() < 2 * live.len() + 200,
        "{}",
        world.active.len()
    );
}

#[test]
fn listing_shows_exactly_the_live_broadcasts() {
    let spec = WorldSpec::demo(T0, 12);
    let (listing, cdn) = servers(12);
    let mut world = World::new(spec);
    let mut seen_viewers = HashMap::new();
    for t in [T0, T0 + 45 * 60, T0 + 46 * 60 + 7] {
        world.advance(t, &listing, &cdn);
        let mut listed = gql_all(&listing);
        listed.sort();
        let mut expected: Vec<(u64, u64, String, String)> = world
            .live_streams()
            .iter()
            .map(|s| {
                (
                    s.stream_id,
                    u64::from(s.viewers),
                    rfc3339(s.started_at),
                    s.login.clone(),
                )
            })
            .collect();
        expected.sort();
        assert!(!listed.is_empty());
        assert_eq!(listed, expected);
        let truth: Vec<u64> = world
            .broadcasts()
            .iter()
            .filter(|b| b.ended_at.is_none())
            .map(|b| b.stream_id)
            .collect();
        let mut ids: Vec<u64> = listed.iter().map(|l| l.0).collect();
        ids.sort_unstable();
        let mut truth_ids = truth;
        truth_ids.sort_unstable();
        assert_eq!(ids, truth_ids);
        for (id, v, ..) in listed {
            seen_viewers.entry(id).or_insert_with(Vec::new).push(v);
        }
    }
    // Viewer counts move between calls.
    assert!(seen_viewers.values().any(|v| v.windows(2).any(|w| w[0] != w[1])));
}

#[test]
fn cdn_serves_live_ended_deleted_and_muted_copies() {
    let spec = busy_spec(200);
    let (listing, cdn) = servers(4);
    let mut world = World::new(spec);
    let mut now = T0;
    while now < T0 + 6 * 3600 {
        world.advance(now, &listing, &cdn);
        now += 300;
    }
    world.advance(now, &listing, &cdn);
    let truth = world.broadcasts();

    // A live copy with two hours to go.
    let (live, live_end) = world
        .active
        .iter()
        .find(|a| !a.ended && a.copy.is_some() && a.part.end > world.now() + 7200)
        .map(|a| (world.truth[a.truth].clone(), a.part.end))
        .expect("a live copy");
    let live = &live;
    assert_eq!(live.ended_at, None);
    let (status, before) = playlist(&cdn, live);
    assert_eq!(status, 200);
    assert!(before.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !before.contains("#EXT-X-ENDLIST"));
    let other = (live.domain.expect("domain") + 1) % 4;
    let elsewhere = format!(
        "{}{}",
        cdn.base_url(other),
        live.playlist_path("chunked").expect("path")
    );
    assert_eq!(get(&elsewhere).0, 403);

    let ended = truth
        .iter()
        .find(|t| t.domain.is_some() && t.ended_at.is_some() && t.deleted_at.is_none())
        .expect("an ended copy");
    let (status, body) = playlist(&cdn, ended);
    assert_eq!(status, 200);
    assert!(body.ends_with("#EXT-X-ENDLIST\n"));
    let total = format!(
        "#EXT-X-TWITCH-TOTAL-SECS:{}.000\n",
        ended.ended_at.expect("end") - ended.listed_start
    );
    assert!(body.contains(&total), "{body}");

    let deleted = truth
        .iter()
        .find(|t| t.deleted_at.is_some())
        .expect("a deleted copy");
    assert_eq!(playlist(&cdn, deleted).0, 403);

    // A copy ended but not yet deleted answers until its delete time, then 403.
    let mut pending = None;
    for _ in 0..60 {
        pending = world
            .active
            .iter()
            .filter(|a| a.ended && !a.deleted && a.copy.is_some())
            .find_map(|a| Some((world.truth[a.truth].clone(), a.part.end + a.part.delete_after?)));
        if pending.is_some() {
            break;
        }
        world.advance(world.now() + 60, &listing, &cdn);
    }
    let (t, delete_at) = pending.expect("a copy waiting for its quick delete");
    assert_eq!(playlist(&cdn, &t).0, 200);
    world.advance(delete_at - 1, &listing, &cdn);
    assert_eq!(playlist(&cdn, &t).0, 200);
    world.advance(delete_at, &listing, &cdn);
    assert_eq!(playlist(&cdn, &t).0, 403);
    assert_eq!(
        world.broadcasts().iter().find(|b| **b == t),
        None,
        "truth records the delete"
    );

    // The live copy grew meanwhile, and gets its ENDLIST once the broadcast ends.
    let (_, after) = playlist(&cdn, live);
    assert!(after.matches("#EXTINF").count() > before.matches("#EXTINF").count());
    assert!(!after.contains("#EXT-X-ENDLIST"));
    world.advance(live_end, &listing, &cdn);
    let (_, ended) = playlist(&cdn, live);
    assert!(ended.ends_with("#EXT-X-ENDLIST\n"));
    assert!(ended.contains(&format!(
        "#EXT-X-TWITCH-TOTAL-SECS:{}.000",
        live_end - live.listed_start
    )));

    // Muting on the next hour boundary after the end.
    let mut to_mute = None;
    for _ in 0..48 {
        to_mute = world
            .active
            .iter()
            .find(|a| {
                a.ended
                    && !a.muted
                    && a.part.delete_after.is_none()
                    && a.copy.is_some()
                    && !a.part.muted.is_empty()
            })
            .map(|a| (world.truth[a.truth].clone(), a.mute_at()));
        if to_mute.is_some() {
            break;
        }
        world.advance(world.now() + 600, &listing, &cdn);
    }
    let to_mute = to_mute.expect("an ended copy waiting for the muting pass");
    assert!(to_mute.1 % 3600 == 0 && to_mute.1 > to_mute.0.ended_at.expect("ended"));
    world.advance(to_mute.1 - 1, &listing, &cdn);
    let (status, body) = playlist(&cdn, &to_mute.0);
    assert!(status == 200 && !body.contains("-unmuted"));
    world.advance(to_mute.1, &listing, &cdn);
    let (status, body) = playlist(&cdn, &to_mute.0);
    assert!(status == 200 && body.contains("-unmuted.ts"), "{body}");
}

#[test]
fn videos_appear_at_start_and_vanish_on_delete() {
    let spec = busy_spec(200);
    let (listing, cdn) = servers(4);
    let mut world = World::new(spec);
    let (mut appeared, mut vanished) = (0, 0);
    let mut before: HashSet<(u64, String)> = HashSet::new();
    let mut now = T0;
    while now < T0 + 6 * 3600 {
        world.advance(now, &listing, &cdn);
        // The listing holds exactly what the truth says, every minute.
        assert_eq!(
            listed_videos(&world, &listing),
            expected_videos(&world, &cdn),
            "at {now}"
        );
        let current: HashSet<(u64, String)> = expected_videos(&world, &cdn)
            .into_values()
            .flatten()
            .map(|v| (v.stream_id, v.folder))
            .collect();
        appeared += current.difference(&before).count();
        vanished += before.difference(&current).count();
        before = current;
        now += 60;
    }
    assert!(appeared > 30 && vanished > 5, "{appeared} {vanished}");
    // A video is listed from the second its broadcast starts (tried on the next starts of
    // stored channels until one gets a video).
    let mut with_video = 0;
    for _ in 0..20 {
        let (start, streamer) = world
            .channels
            .iter()
            .filter(|c| c.domain.is_some())
            .map(|c| {
                (
                    c.upcoming.front().map_or(c.next_start, |p| p.listed_start),
                    c.streamer_id,
                )
            })
            .min()
            .expect("a stored channel");
        world.advance(start - 1, &listing, &cdn);
        let count = |listing: &SimListing| listing.videos(streamer).map_or(0, |v| v.len());
        let was = count(&listing);
        world.advance(start, &listing, &cdn);
        let truth = world.broadcasts();
        let started = truth
            .iter()
            .find(|t| t.listed_start == start && t.streamer_id == streamer);
        let has_video = started.expect("started").has_video;
        assert_eq!(count(&listing), was + usize::from(has_video));
        with_video += usize::from(has_video);
    }
    assert!(with_video > 5, "{with_video}");

    // Videos leave the listing a week after their start.
    let (listing, cdn) = servers(4);
    let mut world = World::new(busy_spec(20));
    world.advance(T0 + 3600, &listing, &cdn);
    let early = expected_videos(&world, &cdn).into_values().flatten().count();
    assert!(early > 0);
    world.advance(T0 + VIDEO_KEEP_SECS + 2 * 3600, &listing, &cdn);
    assert_eq!(listed_videos(&world, &listing), expected_videos(&world, &cdn));
    let listed: Vec<SimVideo> = listed_videos(&world, &listing).into_values().flatten().collect();
    assert!(listed.iter().all(|v| v.created_at > T0 + 2 * 3600));
    assert!(!listed.is_empty());
}

#[test]
fn presets_publish_videos() {
    for spec in [WorldSpec::demo(T0, 12), WorldSpec::benchmark_day(T0, 12, 100)] {
        assert_eq!((spec.video_share, spec.subonly_share), (0.7, 0.2));
    }
    let (world, listing, _) = run(WorldSpec::demo(T0, 12), steps(T0, T0 + 12 * 3600, 600));
    let truth = world.broadcasts();
    let stored: Vec<&TruthBroadcast> = truth.iter().filter(|t| t.domain.is_some()).collect();
    let share = stored.iter().filter(|t| t.has_video).count() as f64 / stored.len() as f64;
    assert!(
        stored.len() > 100 && (0.55..0.85).contains(&share),
        "{share} of {}",
        stored.len()
    );
    let listed: usize = world
        .channels
        .iter()
        .map(|c| listing.videos(c.streamer_id).map_or(0, |v| v.len()))
        .sum();
    assert!(listed > 50, "{listed}");
}

#[test]
fn outage_faults_switch_on_and_off() {
    let spec = WorldSpec::benchmark_day(T0, 12, 50);
    let outage = spec.outages[0].clone();
    assert_eq!(outage.domains.len(), 9);
    assert_eq!(outage.duration_secs, 20 * 60);
    let (listing, cdn) = servers(12);
    let mut world = World::new(spec.clone());
    let faults = |cdn: &SimCdn| (0..12).map(|d| cdn.fault(d).expect("domain")).collect::<Vec<_>>();
    world.advance(outage.start_unix - 1, &listing, &cdn);
    assert!(faults(&cdn).iter().all(|f| *f == Fault::None));
    world.advance(outage.start_unix, &listing, &cdn);
    for (d, f) in faults(&cdn).iter().enumerate() {
        let want = if outage.domains.contains(&d) {
            outage.fault.clone()
        } else {
            Fault::None
        };
        assert_eq!(*f, want, "domain {d}");
    }
    world.advance(outage.start_unix + outage.duration_secs, &listing, &cdn);
    assert!(faults(&cdn).iter().all(|f| *f == Fault::None));

    // Jumping over the whole outage leaves the domains healthy; a hand-set fault stays.
    let (listing, cdn) = servers(12);
    let mut world = World::new(spec);
    cdn.set_fault(0, Fault::Garbage);
    world.advance(outage.start_unix + 3600, &listing, &cdn);
    assert_eq!(cdn.fault(0), Some(Fault::Garbage));
    assert!(faults(&cdn)[1..].iter().all(|f| *f == Fault::None));
}

#[test]
fn viewers_rise_plateau_and_fall() {
    let spec = WorldSpec::benchmark_day(T0, 12, 300);
    let mut world = World::new(spec);
    world.start_due(T0 + 12 * 3600);
    let mut late_crossers = 0;
    for a in &world.active {
        let p = &a.part;
        let samples: Vec<u32> = (p.listed_start..p.end)
            .step_by(60)
            .map(|t| p.viewers(t))
            .collect();
        assert_eq!(samples.iter().max().copied(), Some(p.peak), "{p:?}");
        let top = samples.iter().position(|&v| v == p.peak).unwrap_or(0);
        assert!(samples[..top].windows(2).all(|w| w[0] <= w[1] + p.peak / 10 + 1));
        if samples[0] < 10 && p.peak >= 10 && top >= 30 {
            late_crossers += 1;
        }
    }
    assert!(late_crossers > 5, "{late_crossers}");
}

#[test]
fn copies_are_deleted_at_their_channels_retention() {
    let spec = busy_spec(300);
    let (listing, cdn) = servers(spec.domains);
    let mut world = World::new(spec);
    for t in steps(T0, T0 + 6 * 3600, 1800) {
        world.advance(t, &listing, &cdn);
    }
    let kept: Vec<TruthBroadcast> = world
        .broadcasts()
        .into_iter()
        .filter(|t| t.domain.is_some() && t.deleted_at.is_none() && t.ended_at.is_some())
        .collect();
    // Every kind shows up, roughly in proportion, with its days.
    let count = |kind| kept.iter().filter(|t| t.retention == kind).count();
    let (regular, affiliate) = (count(Retention::Regular), count(Retention::Affiliate));
    assert!(
        regular > 0 && affiliate > 0 && regular + affiliate < kept.len(),
        "{regular} {affiliate} {}",
        kept.len()
    );
    for t in &kept {
        let days = i64::from(t.retention.days().expect("days"));
        let end = t.retention_end.expect("stored");
        assert!((end - t.listed_start - days * 86_400).abs() <= 1, "{t:?}");
    }
    // Just before a regular copy's end all answer; at it, that one is gone, the longer ones stay.
    let first = kept
        .iter()
        .filter(|t| t.retention == Retention::Regular)
        .min_by_key(|t| t.retention_end)
        .expect("a regular copy");
    let end = first.retention_end.expect("end");
    world.advance(end - 1, &listing, &cdn);
    assert_eq!(playlist(&cdn, first).0, 200);
    world.advance(end, &listing, &cdn);
    assert_eq!(playlist(&cdn, first).0, 403);
    for t in kept.iter().filter(|t| t.retention_end > Some(end)) {
        assert_eq!(playlist(&cdn, t).0, 200, "{t:?}");
    }
    for t in kept.iter().filter(|t| t.retention_end <= Some(end)) {
        assert_eq!(playlist(&cdn, t).0, 403, "{t:?}");
    }
}

#[test]
fn a_rename_changes_the_login_of_later_broadcasts_only() {
    let spec = busy_spec(40);
    let (mut world, listing, cdn) = run(spec, steps(T0, T0 + 6 * 3600, 600));
    let before = world.broadcasts();
    let renamed = before[0].clone();
    assert!(world.rename(renamed.streamer_id, "brand_new_name", &listing));
    assert!(!world.rename(1, "nobody", &listing), "unknown channel");
    for t in steps(T0 + 6 * 3600, T0 + 4 * 86_400, 600) {
        world.advance(t, &listing, &cdn);
    }
    let after: Vec<TruthBroadcast> = world
        .broadcasts()
        .into_iter()
        .filter(|t| t.streamer_id == renamed.streamer_id)
        .collect();
    let old: Vec<_> = after.iter().filter(|t| t.listed_start < T0 + 6 * 3600).collect();
    let new: Vec<_> = after.iter().filter(|t| t.listed_start > T0 + 6 * 3600).collect();
    assert!(!old.is_empty() && !new.is_empty(), "{after:?}");
    assert!(old.iter().all(|t| t.login == renamed.login));
    assert!(new.iter().all(|t| t.login == "brand_new_name"));
    // The CDN holds the new broadcasts under the new login.
    for t in new
        .iter()
        .filter(|t| t.domain.is_some() && t.deleted_at.is_none())
    {
        assert_eq!(playlist(&cdn, t).0, 200, "{t:?}");
    }
}

#[test]
fn benchmark_week_proportions() {
    let scale = 200.0;
    let spec = WorldSpec::benchmark_week(T0, 12, scale);
    let week = 7 * 86_400;
    let (world, _, _) = run(spec.clone(), steps(T0, T0 + week, 1800));
    let truth: Vec<TruthBroadcast> = world
        .broadcasts()
        .into_iter()
        .filter(|t| t.listed_start >= T0)
        .collect();
    let recordable: Vec<&TruthBroadcast> = truth.iter().filter(|t| t.peak_viewers >= 10).collect();

    // 168,000 recordable broadcasts a day at full scale, divided by N, on every day.
    let want = WEEK_RECORDABLE_PER_DAY / scale;
    for day in 0..7 {
        let from = T0 + day * 86_400;
        let n = recordable
            .iter()
            .filter(|t| (from..from + 86_400).contains(&t.listed_start))
            .count() as f64;
        assert!(
            (0.8 * want..1.2 * want).contains(&n),
            "day {day}: {n} recordable, want {want}"
        );
    }

    // About 9 % of recordable broadcasts store nothing.
    let nothing = recordable.iter().filter(|t| t.path_ts.is_none()).count() as f64;
    let share = nothing / recordable.len() as f64;
    assert!((0.06..0.12).contains(&share), "{share}");

    // Channels come back: about 4.5 sessions a week (restarted halves share a stream id),
    // and most channels broadcast on several days.
    let mut sessions: HashMap<&str, HashSet<u64>> = HashMap::new();
    for t in &truth {
        sessions.entry(&t.login).or_default().insert(t.stream_id);
    }
    let per_channel: Vec<usize> = world
        .channels
        .iter()
        .map(|c| sessions.get(c.login.as_str()).map_or(0, HashSet::len))
        .collect();
    let mean = per_channel.iter().sum::<usize>() as f64 / per_channel.len() as f64;
    assert!((3.5..5.5).contains(&mean), "{mean} sessions per channel per week");
    let several = per_channel.iter().filter(|&&n| n >= 2).count() as f64 / per_channel.len() as f64;
    assert!(
        several > 0.85,
        "{several} of the channels broadcast twice or more"
    );

    // Quick deletes about 3 % of the stored broadcasts.
    let stored: Vec<&TruthBroadcast> = truth.iter().filter(|t| t.path_ts.is_some()).collect();
    let deleted = stored.iter().filter(|t| t.deleted_at.is_some()).count() as f64 / stored.len() as f64;
    assert!((0.015..0.045).contains(&deleted), "{deleted}");

    // Two outages a day of the 9 CloudFront hosts of 12, 15–20 minutes, hours apart.
    for day in 0..WEEK_OUTAGE_DAYS {
        let from = T0 + day * 86_400;
        let today: Vec<&Outage> = spec
            .outages
            .iter()
            .filter(|o| (from..from + 86_400).contains(&o.start_unix))
            .collect();
        assert_eq!(today.len(), 2, "day {day}");
        assert!(today[1].start_unix - today[0].start_unix >= 2 * 3600, "day {day}");
        for o in today {
            assert!((15 * 60..=20 * 60).contains(&o.duration_secs), "{o:?}");
            assert_eq!(o.domains, (3..12).collect::<Vec<_>>());
        }
    }
}

#[test]
fn the_mute_pass_lists_muted_stretches_on_the_video() {
    let (listing, cdn) = servers(4);
    let mut world = World::new(busy_spec(300));
    // Video id → (channel, mute pass time, stretches), for every muted part with a video.
    let mut muted: HashMap<u64, (u64, i64, Vec<MutedStretch>)> = HashMap::new();
    let (mut before, mut after) = (0, 0);
    for now in steps(T0, T0 + 8 * 3600, 300) {
        world.advance(now, &listing, &cdn);
        for a in &world.active {
            if !a.part.muted.is_empty() && world.truth[a.truth].has_video {
                let channel = world.channels[a.channel].streamer_id;
                let entry = (channel, a.mute_at(), muted_stretches(&a.part));
                muted.entry(video_id(&a.part)).or_insert(entry);
            }
        }
        for (id, (channel, mute_at, stretches)) in &muted {
            let videos = listing.videos(*channel).unwrap_or_default();
            let Some(video) = videos.iter().find(|v| v.video_id == *id) else {
                continue;
            };
            if now >= *mute_at {
                assert_eq!(&video.muted, stretches, "video {id} at {now}");
                after += 1;
            } else {
                assert!(
                    video.muted.is_empty(),
                    "video {id} muted before the pass at {now}"
                );
                before += 1;
            }
        }
    }
    assert!(before > 0 && after > 0, "{before} before, {after} after");
    // Offsets and durations are whole segments.
    let stretch = muted
        .values()
        .flat_map(|(_, _, s)| s)
        .next()
        .expect("a muted video");
    assert!(stretch.offset % SEGMENT_SECS as u32 == 0 && stretch.duration >= 6 * SEGMENT_SECS as u32);
}
