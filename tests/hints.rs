//! Video hints read right: while a broadcast is live (and for a while after, processing),
//! Helix lists its video with a placeholder thumbnail that names no path, and GQL sometimes
//! answers a null `seekPreviewsURL`. The video still says the broadcast is public (GQL's by its
//! start, since its node has no stream id); the path comes from the CDN search.

use crate::api::get;
use crate::serve::{FAST, World, find, now, stream};
use std::time::{Duration, Instant};
use vodprobe::record::Status;
use vodprobe_sim::{Broadcast, DomainSpec, PROCESSING_PERIOD, SIM_CLIENT_ID, SimListing, SimVideo, vod_dir};

#[test]
fn placeholder_thumbnails_record_public_and_the_search_finds_the_path() {
    let source = format!("client_id = \"{SIM_CLIENT_ID}\"\nclient_secret = \"secret\"");
    pathless_videos_record_public(&source, "helix", |listing| {
        listing.set_processing_period(Some(PROCESSING_PERIOD));
    });
}

#[test]
fn null_seek_previews_record_public_and_the_search_finds_the_path() {
    // No secret: GQL. Every video answers a null seekPreviewsURL.
    let source = format!("client_id = \"{SIM_CLIENT_ID}\"");
    pathless_videos_record_public(&source, "gql", |listing| {
        listing.set_null_seek_previews_every(Some(1));
    });
}

/// Two broadcasts end while their videos name no path (`pathless` sets the listing up so);
/// both are found by the search and recorded public.
fn pathless_videos_record_public(source: &str, source_name: &str, pathless: impl Fn(&SimListing)) {
    let mut world = World::configured(
        (0..3).map(|_| DomainSpec::healthy()).collect(),
        FAST,
        source,
        "health = \"0 0 * * * *\"",
        "requests_per_second = 50",
    );
    pathless(&world.listing);
    let start = now() - 600;
    // (stream id, streamer id, login, ts, domain): one per timestamp form the search tries.
    let broadcasts = [
        (1201, 21, "placeholder", start.to_string(), 2),
        (1202, 22, "processing", (start - 1).to_string(), 1),
    ];
    for (stream_id, streamer_id, login, ts, domain) in &broadcasts {
        world
            .cdn
            .add_broadcast(Broadcast::new(login, *stream_id, ts, vec![*domain]));
        world.listing.set_videos(
            *streamer_id,
            vec![SimVideo {
                video_id: 7000 + stream_id,
                stream_id: *stream_id,
                created_at: start,
                domain_url: world.cdn.base_url(*domain),
                folder: vod_dir(login, *stream_id, ts),
                public: true,
                muted: Vec::new(),
            }],
        );
    }
    world.listing.set_streams(
        broadcasts
            .iter()
            .map(|(id, streamer, login, _, _)| stream(*id, *streamer, login, start, 50))
            .collect(),
    );
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    // The broadcasts end; their videos name no path for the rest of the test.
    world.listing.set_streams(vec![]);
    let base = world.api_url();
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let found = get(&format!("{base}/api/v1/vods?status=found")).json();
        if found["items"].as_array().map_or(0, Vec::len) == 2 {
            break found;
        }
        assert!(Instant::now() < deadline, "no captures: {found} {}", world.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    for item in found["items"].as_array().expect("items") {
        assert_eq!(item["public"], true, "{item}");
        assert_eq!(item["status"], "found", "{item}");
    }
    let health = get(&format!("{base}/healthz")).json();
    assert!(
        health["listing_source"]
            .as_str()
            .is_some_and(|s| s.starts_with(source_name)),
        "{health}"
    );
    world.stop();
    // The videos were asked, and answered without a path: the CDN search found the
    // playlists, asking more than the one request a path would have cost.
    assert!(world.listing.video_requests() >= 2);
    for (stream_id, streamer_id, login, _, _) in &broadcasts {
        let listed = world.listing.videos(*streamer_id).expect("videos");
        assert_eq!(listed[0].stream_id, *stream_id);
        let records = world.records();
        let record = find(&records, *stream_id)[0];
        assert_eq!(record.status, Status::Found, "{record:?}");
        assert_eq!(record.public, Some(true), "{record:?}");
        assert!(
            world.paths_requested(login, *stream_id).len() > 1,
            "the search, not the thumbnail, found {login}"
        );
    }
}
