//! The listing clients (`discover::Source`, GQL and Helix) against the simulated world: the
//! archive videos they find locate playlists the simulated CDN serves.
//!
//! It drives the library, not the binary, and lives here rather than beside the world's own
//! tests because the simulator does not know its client: those check the world against its
//! truth, this one checks the client against the world.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use vodprobe::config::{SourceConfig, SourceKind};
use vodprobe::discover::{Source, VideoHint, VideoOf};
use vodprobe::fetch::{FetchSettings, Fetcher};
use vodprobe_sim::world::VIDEO_KEEP_SECS;
use vodprobe_sim::{DomainSpec, SIM_CLIENT_ID, SimCdn, SimListing, SimVideo, World, WorldSpec, vod_dir};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

/// A world advanced through `times` against fresh simulators.
fn run(spec: WorldSpec, times: impl IntoIterator<Item = i64>) -> (World, SimListing, SimCdn) {
    let listing = SimListing::start().expect("listing");
    let cdn = SimCdn::start((0..spec.domains).map(|_| DomainSpec::healthy()).collect()).expect("cdn");
    let mut world = World::new(spec);
    for t in times {
        world.advance(t, &listing, &cdn);
    }
    (world, listing, cdn)
}

fn steps(from: i64, to: i64, step: i64) -> impl Iterator<Item = i64> {
    (0..=(to - from) / step).map(move |i| from + i * step).chain([to])
}

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut resp = agent.get(url).call().expect("request");
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().expect("body");
    (status, body)
}

/// The videos the listing should show for each channel with any at the world's time, from the
/// truth: stored broadcasts with a video object, not quick-deleted, started less than
/// `VIDEO_KEEP_SECS` ago; newest first.
fn expected_videos(world: &World, cdn: &SimCdn) -> HashMap<u64, Vec<SimVideo>> {
    let mut out: HashMap<u64, Vec<SimVideo>> = HashMap::new();
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

/// A spec with no outages and many quick deletes.
fn busy_spec(channels: usize) -> WorldSpec {
    let mut spec = WorldSpec::benchmark_day(T0, 4, channels);
    spec.outages.clear();
    spec.quick_delete_share = 0.4;
    spec
}

/// The appliance's view: both listing clients, through the real fetcher, find the videos of
/// the world's channels, and each hint locates a playlist the CDN serves.
#[test]
fn video_hints_locate_playlists() {
    let (world, listing, cdn) = run(busy_spec(200), steps(T0, T0 + 4 * 3600, 300));
    let fetcher = Fetcher::new(FetchSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_body_bytes: 1 << 20,
    });
    let truth = world.broadcasts();
    let mut public_seen = HashSet::new();
    let mut muted_seen = HashSet::new();
    let expected = expected_videos(&world, &cdn);
    // In id order (not the map's random order), so the same channels, public and sub-only
    // among them, are checked on every run.
    let mut channels: Vec<u64> = expected
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(id, _)| *id)
        .collect();
    channels.sort_unstable();
    channels.truncate(24);
    assert!(channels.len() >= 12);
    for kind in [SourceKind::Gql, SourceKind::Helix] {
        let mut source = Source::new(&SourceConfig {
            kind,
            gql_url: listing.gql_url(),
            helix_url: listing.helix_url(),
            token_url: listing.token_url(),
            client_id: SIM_CLIENT_ID.into(),
            client_secret: "s3cret".into(),
            min_viewers_observe: 5,
            min_viewers_record: 10,
            restart_every: Duration::from_secs(150),
            confirm_after: Duration::from_secs(60),
            reread_videos_every: Duration::ZERO,
            reread_channel_after: Duration::from_secs(3600),
            pages_per_second: 3.0,
            scope: vodprobe::config::Scope::All,
        });
        for id in &channels {
            let now = vodprobe::schedule::Clock::system().now();
            let hints = source.videos(&fetcher, *id, 20, now).expect("videos");
            // The truth does not say which videos the mute pass reached; the listing does.
            let listed = listing.videos(*id).unwrap_or_default();
            let stretches = |v: &SimVideo| -> Vec<(u64, u64)> {
                listed
                    .iter()
                    .filter(|l| l.folder == v.folder)
                    .flat_map(|l| {
                        l.muted
                            .iter()
                            .map(|s| (u64::from(s.offset), u64::from(s.duration)))
                    })
                    .collect()
            };
            let muted = |v: &SimVideo| !stretches(v).is_empty();
            let want: Vec<VideoHint> = expected[id]
                .iter()
                .map(|v| VideoHint {
                    broadcast: VideoOf::Stream(v.stream_id),
                    domain: v.domain_url.clone(),
                    folder: v.folder.clone(),
                    ts: v.folder.rsplit('_').next().expect("ts").to_string(),
                    public: v.public,
                    muted: Some(muted(v)),
                    muted_stretches: stretches(v),
                })
                .collect();
            assert_eq!(hints, want, "{} {id}", source.name());
            for hint in &hints {
                public_seen.insert(hint.public);
                muted_seen.insert(hint.muted);
                let t = truth
                    .iter()
                    .find(|t| {
                        VideoOf::Stream(t.stream_id) == hint.broadcast
                            && t.path_ts.as_deref() == Some(hint.ts.as_str())
                    })
                    .expect("a true broadcast");
                assert_eq!(t.public, hint.public);
                assert_eq!(get(&hint.playlist_url("chunked")).0, 200, "{hint:?}");
            }
        }
    }
    assert_eq!(public_seen.len(), 2, "public and sub-only hints");
    // The world's mute pass reaches the clients: muted and unmuted videos, never "unknown".
    assert_eq!(muted_seen, HashSet::from([Some(true), Some(false)]));
}
