//! Lifecycle events through the real `serve` against the simulated listing and CDN: each
//! change the simulator makes (segments gone, original audio gone, a rename, the muting pass
//! after the hour) appears once in `GET /api/v1/events`, in order per broadcast, and paging
//! with cursors (either order) returns each event once. A capture's video deleted (or
//! unlisted: the list cannot tell them apart) or made sub-only, and a live broadcast's title and
//! category changes, appear once each too.

use crate::api::get;
use crate::serve::{FAST, World, now, stream};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use vodprobe_sim::{Broadcast, DomainSpec, Segments, SimVideo, vod_dir};

const DOMAIN: usize = 1;

/// Every event, oldest first, paged `limit` at a time with the cursors the API gives.
fn all_events(base: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let answer = get(&format!("{base}/api/v1/events?limit={limit}{query}{after}"));
        assert_eq!(answer.status, 200, "{}", answer.text());
        let page = answer.json();
        events.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return events,
        }
    }
}

/// Each broadcast's event kinds in the order written.
fn kinds_by_stream(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut by_stream: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in events {
        by_stream
            .entry(event["stream_id"].as_str().expect("stream_id").to_string())
            .or_default()
            .push(event["kind"].as_str().expect("kind").to_string());
    }
    by_stream
}

fn ids(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|event| event["id"].as_str().and_then(|id| id.parse().ok()).expect("id"))
        .collect()
}

#[test]
fn each_lifecycle_change_appears_once_in_order_and_pages_return_each_once() {
    let mut world = World::healthy(&format!("{FAST}\noriginal_audio_every = \"1s\""));
    let start = now() - 900;
    // Muted with originals listed (they answer until expire_unmuted).
    let mut muted = Broadcast::new("evaudio", 2301, &start.to_string(), vec![DOMAIN]);
    muted.muted.push(2..4);
    let audio_id = world.cdn.add_broadcast(muted);
    world.cdn.mute(audio_id);
    // Its segments expire before anyone asks.
    let gone_id = world
        .cdn
        .add_broadcast(Broadcast::new("evgone", 2302, &start.to_string(), vec![DOMAIN]));
    world.cdn.expire_segments(gone_id, Segments::All);
    world.listing.set_streams(vec![
        stream(2301, 231, "evaudio", start, 100),
        stream(2302, 232, "evgone", start, 100),
    ]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    let has = |kind: &str| {
        let base = base.clone();
        let kind = kind.to_string();
        move |_: &World| !all_events(&base, &format!("&kind={kind}"), 50).is_empty()
    };
    world.wait_until("the segments gone", 30, has("segments_gone"));
    world.wait_until("the originals checked", 30, |w| {
        get(&format!("{}/api/v1/vods/2301", w.api_url())).json()["items"][0]["original_audio"] == "available"
    });
    world.cdn.expire_unmuted(audio_id);
    world.wait_until("the originals gone", 30, has("original_audio_gone"));
    // The channel of 2302 comes back under another login.
    world.listing.rename(232, "evrenamed");
    let again = now() - 60;
    world.cdn.add_broadcast(Broadcast::new(
        "evrenamed",
        2303,
        &again.to_string(),
        vec![DOMAIN],
    ));
    world
        .listing
        .set_streams(vec![stream(2303, 232, "evrenamed", again, 100)]);
    world.wait_until("the rename", 30, has("renamed"));
    world.listing.set_streams(vec![]);
    world.wait_until("the renamed channel's capture", 30, |w| {
        all_events(&w.api_url(), "&streamer=evrenamed&kind=captured", 50).len() == 1
    });
    // Nothing more is to come; a few more rounds must not repeat anything.
    std::thread::sleep(Duration::from_secs(3));

    let events = all_events(&base, "&order=asc", 500);
    let by_stream = kinds_by_stream(&events);
    let expected: BTreeMap<String, Vec<String>> = [
        ("2301", vec!["live", "ended", "captured", "original_audio_gone"]),
        ("2302", vec!["live", "ended", "captured", "segments_gone"]),
        ("2303", vec!["live", "renamed", "ended", "captured"]),
    ]
    .into_iter()
    .map(|(id, kinds)| (id.to_string(), kinds.into_iter().map(String::from).collect()))
    .collect();
    // "renamed" is written with the new login's first record, after or before its "live".
    let mut sorted = by_stream.clone();
    let mut want = expected.clone();
    for kinds in sorted.values_mut().chain(want.values_mut()) {
        kinds.sort();
    }
    assert_eq!(sorted, want, "{events:#?}");
    for (stream_id, kinds) in &by_stream {
        let order: Vec<&str> = kinds
            .iter()
            .map(String::as_str)
            .filter(|k| *k != "renamed")
            .collect();
        let expected: Vec<&str> = expected[stream_id]
            .iter()
            .map(String::as_str)
            .filter(|k| *k != "renamed")
            .collect();
        assert_eq!(order, expected, "{stream_id}: {events:#?}");
    }
    let renamed = events.iter().find(|e| e["kind"] == "renamed").expect("renamed");
    assert_eq!(renamed["detail"], "evgone → evrenamed");
    assert_eq!(renamed["streamer_id"], "232");

    // Ascending ids; every page size, both orders, returns each once.
    let all = ids(&events);
    assert!(all.windows(2).all(|pair| pair[0] < pair[1]), "{all:?}");
    for limit in [1, 2, 5] {
        assert_eq!(ids(&all_events(&base, "&order=asc", limit)), all);
        let mut newest_first = ids(&all_events(&base, "", limit));
        newest_first.reverse();
        assert_eq!(newest_first, all);
    }
    // Filters: by streamer id or login (old and new), kinds as a list, since.
    let of_232 = all_events(&base, "&streamer=232&order=asc", 50);
    assert_eq!(of_232.len(), 8, "{of_232:#?}");
    assert_eq!(all_events(&base, "&streamer=evgone", 50).len(), 8);
    let two_kinds = all_events(&base, "&kind=segments_gone,original_audio_gone", 50);
    assert_eq!(two_kinds.len(), 2, "{two_kinds:#?}");
    assert!(all_events(&base, "&since=2100-01-01T00:00:00Z", 50).is_empty());
    assert_eq!(get(&format!("{base}/api/v1/events?kind=exploded")).status, 400);
    assert_eq!(get(&format!("{base}/api/v1/events?cursor=zz")).status, 400);
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_events_total{kind=\"captured\"} 3"),
        "{metrics}"
    );

    // Durable: after a restart the same events, no more.
    world.stop();
    world.start(&[]);
    world.wait_until("the second start's API", 20, |w| {
        w.log().matches("API listening on http://").count() == 2
    });
    std::thread::sleep(Duration::from_secs(2));
    let log = world.log();
    let address = log
        .rsplit("API listening on http://")
        .next()
        .and_then(|rest| rest.split('/').next())
        .expect("address");
    assert_eq!(
        ids(&all_events(&format!("http://{address}"), "&order=asc", 500)),
        all
    );
}

#[test]
fn the_muting_pass_after_the_hour_is_one_muted_event() {
    // As serve's hour test: 17:58:00 at twenty times real speed, the hour 6 real seconds away.
    let clock_start: i64 = 1_664_042_280;
    let mut world = World::healthy(
        "ended_after = \"10s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = true\nhour_margin = \"1m\"\nretries = [\"1m\"]",
    );
    let start = clock_start - 3600;
    let mut broadcast = Broadcast::new("evmuted", 2401, &start.to_string(), vec![0]);
    broadcast.muted = std::iter::once(3..6).collect();
    let id = world.cdn.add_broadcast(broadcast);
    world
        .listing
        .set_streams(vec![stream(2401, 241, "evmuted", start, 70)]);
    world.start(&["--clock-start", &clock_start.to_string(), "--clock-speed", "20"]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("the first capture", 10, |w| w.requests_for("evmuted", 2401) >= 1);
    world.cdn.mute(id);
    world.wait_until("the hour-aligned capture", 20, |w| {
        w.requests_for("evmuted", 2401) >= 2
    });
    std::thread::sleep(Duration::from_millis(800));
    let events = all_events(&world.api_url(), "&order=asc", 50);
    let kinds = kinds_by_stream(&events);
    assert_eq!(
        kinds["2401"],
        ["live", "ended", "captured", "muted"],
        "{events:#?}"
    );
    let muted = events.iter().find(|e| e["kind"] == "muted").expect("muted");
    assert_eq!(
        muted["detail"],
        "muted segments 0 → 3; muted: segments 3–5 (0:00:30–0:01:00)"
    );
}

#[test]
fn deleted_sub_only_title_and_category_changes_are_one_event_each() {
    changes_are_one_event_each("kind = \"gql\"");
}

#[test]
fn helix_sees_deletions_and_sub_only_too() {
    changes_are_one_event_each("kind = \"helix\"\nclient_secret = \"secret\"");
}

/// With the listing `source` (GQL tells sub-only per channel, Helix per video).
fn changes_are_one_event_each(source: &str) {
    let mut world = World::configured(
        (0..3).map(|_| DomainSpec::healthy()).collect(),
        FAST,
        &format!("{source}\nreread_videos_every = \"1s\"\nreread_channel_after = \"1s\""),
        "health = \"0 0 * * * *\"",
        "requests_per_second = 50",
    );
    let start = now() - 900;
    let ts = start.to_string();
    let video = |world: &World, stream_id: u64, login: &str, public: bool| SimVideo {
        video_id: 9000 + stream_id,
        stream_id,
        created_at: start,
        domain_url: world.cdn.base_url(DOMAIN),
        folder: vod_dir(login, stream_id, &ts),
        public,
        muted: Vec::new(),
    };
    // Two captures listed publicly; one channel that stays live.
    for (stream_id, streamer_id, login) in [(2501, 251, "evdeleted"), (2502, 252, "evsubonly")] {
        world
            .cdn
            .add_broadcast(Broadcast::new(login, stream_id, &ts, vec![DOMAIN]));
        let listed = video(&world, stream_id, login, true);
        world.listing.set_videos(streamer_id, vec![listed]);
    }
    let mut live = stream(2503, 253, "evlive", start, 100);
    world.listing.set_streams(vec![
        stream(2501, 251, "evdeleted", start, 100),
        stream(2502, 252, "evsubonly", start, 100),
        live.clone(),
    ]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![live.clone()]);
    let base = world.api_url();
    let count = |query: &str| all_events(&base, query, 50).len();
    world.wait_until("both captures", 30, |_| count("&kind=captured") == 2);
    // Deleted from the video list; made sub-only.
    world.listing.set_videos(251, vec![]);
    let restricted = video(&world, 2502, "evsubonly", false);
    world.listing.set_videos(252, vec![restricted]);
    world.wait_until("the deletion", 30, |_| count("&kind=deleted") == 1);
    world.wait_until("the sub-only", 30, |_| count("&kind=sub_only") == 1);
    // The live channel changes its title, then its category.
    live.title = "a new title".into();
    world.listing.set_streams(vec![live.clone()]);
    world.wait_until("the title change", 20, |_| count("&kind=title_changed") == 1);
    live.game_id = "33214".into();
    live.game_name = "Fortnite".into();
    world.listing.set_streams(vec![live.clone()]);
    world.wait_until("the category change", 20, |_| {
        count("&kind=category_changed") == 1
    });
    // More re-reads and pages must not repeat anything.
    std::thread::sleep(Duration::from_secs(4));

    let events = all_events(&base, "&order=asc", 500);
    let kinds = kinds_by_stream(&events);
    assert_eq!(
        kinds["2501"],
        ["live", "ended", "captured", "deleted"],
        "{events:#?}"
    );
    assert_eq!(
        kinds["2502"],
        ["live", "ended", "captured", "sub_only"],
        "{events:#?}"
    );
    assert_eq!(
        kinds["2503"],
        ["live", "title_changed", "category_changed"],
        "{events:#?}"
    );
    let detail = |kind: &str| {
        events
            .iter()
            .find(|event| event["kind"] == kind)
            .map(|event| event["detail"].as_str().unwrap_or_default().to_string())
            .expect(kind)
    };
    assert_eq!(
        detail("deleted"),
        "vanished from the video list (deleted or unlisted)"
    );
    assert_eq!(detail("title_changed"), "evlive live → a new title");
    assert_eq!(detail("category_changed"), "Just Chatting → Fortnite");
    // The records say so too.
    let vod = |id: u64| get(&format!("{base}/api/v1/vods/{id}")).json()["items"][0].clone();
    assert_eq!(vod(2501)["public"], false);
    assert_eq!(vod(2502)["public"], false);
    assert_eq!(vod(2503)["title"], "a new title");
    let metrics = get(&format!("{base}/metrics")).text();
    assert!(
        metrics.contains("vodprobe_listing_reread_requests_total"),
        "{metrics}"
    );
}
