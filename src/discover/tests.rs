//! `Source` end to end: the real `Fetcher` against the simulated listing (both protocols,
//! token refresh, the Helix quota, faults), plus the fixtures the protocols' decoder tests share.

use super::*;
use crate::fetch::FetchSettings;
use crate::schedule::Clock;
use vodprobe_sim::{
    ListingFault, LiveStream, MutedStretch, SIM_CLIENT_ID, SimListing, SimVideo, WEB_CLIENT_ID,
};

/// The reference's test vector.
pub(super) const FOLDER: &str = "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929";

pub(super) fn hint(domain: &str, folder: &str, stream_id: u64, ts: &str, public: bool) -> VideoHint {
    VideoHint {
        broadcast: VideoOf::Stream(stream_id),
        domain: domain.into(),
        folder: folder.into(),
        ts: ts.into(),
        public,
        muted: None,
        muted_stretches: Vec::new(),
    }
}

pub(super) fn decode_error(result: Result<ListingPage, DiscoverError>) -> String {
    match result {
        Err(DiscoverError::Decode(message)) => message,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn excerpts() {
    let refusal = br#"{"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}"#;
    assert_eq!(excerpt(refusal), "Invalid OAuth token");
    assert_eq!(
        excerpt(b"  upstream\n connect   error "),
        "upstream connect error"
    );
    assert_eq!(excerpt(&[b'x'; 500]).len(), EXCERPT_CHARS);
}

/// The caller's clock, as the daemon passes it.
fn now() -> i64 {
    Clock::system().now()
}

// End to end: the real `Fetcher` against the simulated listing.

fn fetcher(timeout_ms: u64) -> Fetcher {
    Fetcher::new(FetchSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(timeout_ms),
        max_body_bytes: 1 << 20,
    })
}

fn source(sim: &SimListing, kind: SourceKind) -> Source {
    Source::new(&source_config(sim, kind))
}

fn source_config(sim: &SimListing, kind: SourceKind) -> SourceConfig {
    SourceConfig {
        kind,
        gql_url: sim.gql_url(),
        helix_url: sim.helix_url(),
        token_url: sim.token_url(),
        client_id: SIM_CLIENT_ID.into(),
        client_secret: "s3cret+/=".into(),
        min_viewers_observe: 5,
        min_viewers_record: 10,
        restart_every: Duration::from_secs(150),
        confirm_after: Duration::from_secs(60),
        reread_videos_every: Duration::ZERO,
        reread_channel_after: Duration::from_secs(3600),
        pages_per_second: 3.0,
        scope: crate::config::Scope::All,
    }
}

fn sim() -> SimListing {
    let sim = SimListing::start().expect("sim");
    // More than two Helix pages; past index 200 viewer counts tie (broken by stream id, so
    // the listing order is still the sample order).
    sim.set_streams((0..250).map(LiveStream::sample).collect());
    sim
}

fn crawl(source: &mut Source, fetcher: &Fetcher) -> Vec<Sighting> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = source.page(fetcher, cursor.as_deref(), now()).expect("page");
        assert_eq!(page.skipped, 0);
        all.extend(page.sightings);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

fn assert_auth(result: Result<ListingPage, DiscoverError>, expected: &str) {
    assert!(
        matches!(&result, Err(DiscoverError::Auth(m)) if m.contains(expected)),
        "{result:?}"
    );
}

/// What a correct client of either API reports for a simulated stream: the oracle.
pub(crate) fn sighting(s: LiveStream) -> Sighting {
    Sighting {
        stream_id: s.stream_id,
        streamer_id: s.streamer_id,
        login: s.login,
        title: s.title,
        game_id: s.game_id,
        game_name: s.game_name,
        language: s.language,
        is_mature: s.is_mature,
        viewers: s.viewers,
        started_at: s.started_at,
    }
}

#[test]
fn both_sources_page_the_whole_simulated_listing() {
    let sim = sim();
    // The last Helix page ends the listing (its looping cursor: helix_ends_a_looping_listing).
    sim.set_looping_last_cursor(false);
    let expected: Vec<Sighting> = (0..250).map(|i| sighting(LiveStream::sample(i))).collect();
    let fetcher = fetcher(5000);
    for (kind, pages, name) in [(SourceKind::Gql, 9, "gql"), (SourceKind::Helix, 3, "helix")] {
        let before = sim.requests();
        let mut source = source(&sim, kind);
        assert_eq!(source.name(), name);
        // GQL's language enum has no region for Portuguese: "pt-br" reads as "pt" there.
        let expected: Vec<Sighting> = match kind {
            SourceKind::Gql => expected
                .iter()
                .cloned()
                .map(|mut s| {
                    if s.language == "pt-br" {
                        s.language = "pt".into();
                    }
                    s
                })
                .collect(),
            _ => expected.clone(),
        };
        assert_eq!(crawl(&mut source, &fetcher), expected, "{name}");
        assert_eq!(sim.requests() - before, pages, "{name}");
    }
    assert_eq!(sim.token_requests(), 1);
}

#[test]
fn gql_integrity_refusal_names_the_client_id_and_the_remedy() {
    let sim = sim();
    let fetcher = fetcher(5000);
    let mut gql = Source::new(&SourceConfig {
        client_id: WEB_CLIENT_ID.into(),
        ..source_config(&sim, SourceKind::Gql)
    });
    let first = gql
        .page(&fetcher, None, now())
        .expect("the first page is answered");
    let error = gql
        .page(&fetcher, first.next_cursor.as_deref(), now())
        .expect_err("cursor pages are refused");
    assert_eq!(error.kind(), "integrity");
    let message = error.to_string();
    assert!(message.contains(WEB_CLIENT_ID), "{message}");
    assert!(
        message.contains("dev.twitch.tv") && message.contains("client_secret"),
        "{message}"
    );
}

#[test]
fn helix_ends_a_looping_listing_and_names_an_invalid_cursor() {
    let sim = sim();
    let expected: Vec<Sighting> = (0..250).map(|i| sighting(LiveStream::sample(i))).collect();
    let fetcher = fetcher(5000);
    let mut helix = source(&sim, SourceKind::Helix);
    for pass in 1..=2 {
        // The last page's cursor leads back to page 1: that page ends the pass, once.
        assert_eq!(crawl(&mut helix, &fetcher), expected);
        assert_eq!(sim.requests(), 4 * pass);
    }
    sim.set_invalid_cursor_every(Some(1));
    let first = helix.page(&fetcher, None, now()).expect("page 1");
    let error = helix
        .page(&fetcher, first.next_cursor.as_deref(), now())
        .expect_err("invalid cursor");
    assert_eq!(error.kind(), "invalid_cursor");
}

#[test]
fn helix_refreshes_its_token_once() {
    let sim = sim();
    let fetcher = fetcher(5000);
    let mut helix = source(&sim, SourceKind::Helix);
    helix.page(&fetcher, None, now()).expect("page");
    // Refused token: one refresh, then the page.
    sim.expire_tokens();
    helix.page(&fetcher, None, now()).expect("page after refresh");
    assert_eq!((sim.token_requests(), sim.requests()), (2, 3));
    // Expired by the clock: renewed before sending, no 401 round trip. The caller's clock has
    // moved a day past the simulated tokens' 60-day life.
    let later = now() + 61 * 86_400;
    helix.page(&fetcher, None, later).expect("page after renewal");
    assert_eq!((sim.token_requests(), sim.requests()), (3, 4));
    // A fresh token that is refused too is an auth error, not a loop.
    sim.set_token_lifetime(Duration::ZERO);
    sim.expire_tokens();
    assert_auth(helix.page(&fetcher, None, later), "Invalid OAuth token");
    assert_eq!((sim.token_requests(), sim.requests()), (4, 6));
    // A wrong client id is refused at the token endpoint, and by GQL.
    sim.set_client_id("another-app");
    assert_auth(helix.page(&fetcher, None, later), "token: invalid client");
    assert_auth(
        source(&sim, SourceKind::Gql).page(&fetcher, None, now()),
        "Client-ID",
    );
}

#[test]
fn helix_respects_the_budget() {
    let sim = sim();
    sim.set_helix_points(2);
    let fetcher = fetcher(5000);
    let mut helix = source(&sim, SourceKind::Helix);
    helix.page(&fetcher, None, now()).expect("page");
    helix.page(&fetcher, None, now()).expect("page");
    let wait = |result: Result<ListingPage, DiscoverError>| match result {
        Err(DiscoverError::RateLimited { retry_after }) => retry_after,
        other => panic!("expected rate limiting, got {other:?}"),
    };
    let until_reset = Duration::from_secs(1)..=Duration::from_secs(61);
    // The last answer said 0 remaining: refused here, nothing sent.
    assert!(until_reset.contains(&wait(helix.page(&fetcher, None, now()))));
    assert_eq!(sim.requests(), 2);
    // A source that did not know gets a 429 and waits until the reset.
    assert!(until_reset.contains(&wait(source(&sim, SourceKind::Helix).page(&fetcher, None, now()))));
    assert_eq!(sim.requests(), 3);
    // `Retry-After` wins when present.
    sim.set_fault(ListingFault::RateLimited { retry_after_secs: 7 });
    let retry_after = wait(source(&sim, SourceKind::Gql).page(&fetcher, None, now()));
    assert_eq!(retry_after, Duration::from_secs(7));
}

#[test]
fn a_reset_far_from_our_clock_waits_a_minute_at_most() {
    // Our clock 11 months behind Twitch's (a Pi booted without a real-time clock): the reset
    // Twitch names is a year away by it, but points come back within the minute.
    let sim = sim();
    sim.set_helix_points(1);
    let fetcher = fetcher(5000);
    let mut helix = source(&sim, SourceKind::Helix);
    let behind = now() - 340 * 86_400;
    helix.page(&fetcher, None, behind).expect("page");
    let waited = match helix.page(&fetcher, None, behind) {
        Err(DiscoverError::RateLimited { retry_after }) => retry_after,
        other => panic!("expected rate limiting, got {other:?}"),
    };
    assert!(waited <= Duration::from_secs(60), "{waited:?}");
    assert_eq!(sim.requests(), 1, "refused here, nothing sent");
    // A minute later by our clock the quota is asked again (and the sim answers).
    sim.set_helix_points(100);
    helix
        .page(&fetcher, None, behind + 61)
        .expect("asked again after the wait");
    assert_eq!(sim.requests(), 2);
}

fn sim_video(sim_cdn: &str, n: u64, public: bool) -> SimVideo {
    let folder = vodprobe_sim::vod_dir(
        "some_login",
        315_000_000_000 + n,
        &(1_750_000_000 + n).to_string(),
    );
    SimVideo {
        video_id: 2_000 + n,
        stream_id: 315_000_000_000 + n,
        created_at: 1_750_000_000 + n as i64,
        domain_url: sim_cdn.into(),
        folder,
        public,
        muted: Vec::new(),
    }
}

fn expected_hint(video: &SimVideo) -> VideoHint {
    VideoHint {
        broadcast: VideoOf::Stream(video.stream_id),
        domain: video.domain_url.clone(),
        folder: video.folder.clone(),
        ts: video.created_at.to_string(),
        public: video.public,
        muted: Some(!video.muted.is_empty()),
        muted_stretches: video
            .muted
            .iter()
            .map(|s| (u64::from(s.offset), u64::from(s.duration)))
            .collect(),
    }
}

#[test]
fn both_sources_return_the_simulated_videos() {
    let sim = sim();
    let fetcher = fetcher(5000);
    let prefixed = "http://127.0.0.1:9/cdn/prefix/";
    let public: Vec<SimVideo> = (0..5)
        .map(|n| sim_video("http://127.0.0.1:9/", n, true))
        .collect();
    let subonly: Vec<SimVideo> = (10..13).map(|n| sim_video(prefixed, n, false)).collect();
    sim.set_videos(77, public.clone());
    sim.set_videos(78, subonly.clone());
    sim.set_videos(79, Vec::new());
    // Newest first, whatever order they were set in.
    let newest_first = |videos: &[SimVideo]| videos.iter().rev().map(expected_hint).collect::<Vec<_>>();
    for kind in [SourceKind::Gql, SourceKind::Helix] {
        let mut source = source(&sim, kind);
        let name = source.name();
        let before = (sim.requests(), sim.video_requests());
        assert_eq!(
            source.videos(&fetcher, 77, 20, now()).expect("videos"),
            newest_first(&public),
            "{name}"
        );
        assert_eq!(
            source.videos(&fetcher, 77, 2, now()).expect("videos"),
            newest_first(&public)[..2],
            "{name}"
        );
        assert_eq!(
            source.videos(&fetcher, 78, 500, now()).expect("videos"),
            newest_first(&subonly),
            "{name}"
        );
        assert_eq!(
            source.videos(&fetcher, 79, 20, now()).expect("videos"),
            [],
            "{name}"
        );
        assert_eq!(
            source.videos(&fetcher, 12345, 20, now()).expect("videos"),
            [],
            "{name}"
        );
        assert_eq!(
            source.videos(&fetcher, 77, 0, now()).expect("videos"),
            [],
            "{name}"
        );
        assert_eq!(
            (sim.requests(), sim.video_requests()),
            (before.0 + 5, before.1 + 5),
            "{name}"
        );
        // Listing pages are not video requests.
        source.page(&fetcher, None, now()).expect("page");
        assert_eq!(sim.video_requests(), before.1 + 5, "{name}");
    }
    sim.set_fault(ListingFault::Unavailable);
    let failed = source(&sim, SourceKind::Gql).videos(&fetcher, 77, 20, now());
    assert!(
        matches!(failed, Err(DiscoverError::Status { status: 503, .. })),
        "{failed:?}"
    );
    sim.set_fault(ListingFault::Garbage);
    let garbage = source(&sim, SourceKind::Helix).videos(&fetcher, 77, 20, now());
    assert!(matches!(garbage, Err(DiscoverError::Decode(_))), "{garbage:?}");
}

#[test]
fn placeholder_thumbnails_and_null_seek_previews_from_the_simulator() {
    // Only video 1's broadcast is live (the sample streams share the videos' stream ids).
    let sim = SimListing::start().expect("sim");
    let fetcher = fetcher(5000);
    let videos: Vec<SimVideo> = (0..3)
        .map(|n| sim_video("http://127.0.0.1:9/", n, true))
        .collect();
    sim.set_videos(77, videos.clone());
    sim.set_streams(vec![LiveStream {
        stream_id: videos[1].stream_id,
        ..LiveStream::sample(1)
    }]);
    sim.set_processing_period(Some(Duration::from_secs(600)));
    // Video ids 2000..=2002: 2001 answers a null seekPreviewsURL.
    sim.set_null_seek_previews_every(Some(3));
    // Helix: the live one is known by stream id, public, with no path.
    let helix = source(&sim, SourceKind::Helix)
        .videos(&fetcher, 77, 20, now())
        .expect("helix videos");
    let no_path = VideoHint {
        broadcast: VideoOf::Stream(videos[1].stream_id),
        domain: String::new(),
        folder: String::new(),
        ts: String::new(),
        public: true,
        muted: Some(false),
        muted_stretches: Vec::new(),
    };
    assert_eq!(
        helix,
        [
            expected_hint(&videos[2]),
            no_path.clone(),
            expected_hint(&videos[0])
        ]
    );
    assert!(!helix[1].path_known() && helix[0].path_known());
    // GQL: the storyboard URLs decode; the null one names its broadcast by start, no path.
    let gql = source(&sim, SourceKind::Gql)
        .videos(&fetcher, 77, 20, now())
        .expect("gql videos");
    let by_start = VideoHint {
        broadcast: VideoOf::StartedAt(videos[1].created_at),
        ..no_path
    };
    assert_eq!(
        gql,
        [expected_hint(&videos[2]), by_start, expected_hint(&videos[0])]
    );
}

#[test]
fn muted_videos_from_the_simulator() {
    let sim = SimListing::start().expect("sim");
    let fetcher = fetcher(5000);
    let videos: Vec<SimVideo> = (0..3)
        .map(|n| sim_video("http://127.0.0.1:9/", n, true))
        .collect();
    sim.set_videos(77, videos);
    // Newest first: video ids 2002, 2001, 2000.
    let muted = |sim: &SimListing, kind: SourceKind| -> Vec<Option<bool>> {
        let hints = source(sim, kind).videos(&fetcher, 77, 20, now()).expect("videos");
        hints.iter().map(|h| h.muted).collect()
    };
    for kind in [SourceKind::Gql, SourceKind::Helix] {
        assert_eq!(muted(&sim, kind), [Some(false); 3], "{kind:?} before the mute");
    }
    let stretch = MutedStretch {
        offset: 120,
        duration: 30,
    };
    assert!(sim.set_video_muted(2_001, vec![stretch]));
    for kind in [SourceKind::Gql, SourceKind::Helix] {
        let after = [Some(false), Some(true), Some(false)];
        assert_eq!(muted(&sim, kind), after, "{kind:?} after the mute");
    }
    // Without the field, nothing is claimed either way.
    sim.set_mute_info_withheld(true);
    for kind in [SourceKind::Gql, SourceKind::Helix] {
        assert_eq!(muted(&sim, kind), [None; 3], "{kind:?} withheld");
    }
}

#[test]
fn faults_become_typed_errors() {
    let sim = sim();
    let fetcher = fetcher(300);
    let mut gql = source(&sim, SourceKind::Gql);
    sim.set_fault(ListingFault::Unavailable);
    let unavailable = gql.page(&fetcher, None, now());
    let expected = "upstream connect error";
    assert!(
        matches!(&unavailable, Err(DiscoverError::Status { status: 503, body_excerpt }) if body_excerpt == expected),
        "{unavailable:?}"
    );
    sim.set_fault(ListingFault::Garbage);
    assert!(decode_error(gql.page(&fetcher, None, now())).starts_with("body: not JSON"));
    sim.set_fault(ListingFault::Blackhole);
    let held = source(&sim, SourceKind::Helix).page(&fetcher, None, now());
    assert!(
        matches!(held, Err(DiscoverError::Fetch(FetchError::Timeout { .. }))),
        "{held:?}"
    );
    sim.set_fault(ListingFault::None);
    assert_eq!(gql.page(&fetcher, None, now()).expect("page").sightings.len(), 30);
}

#[test]
fn followed_channels_resolve_and_come_back_as_sightings_on_both_protocols() {
    let sim = sim();
    let fetcher = fetcher(5000);
    sim.set_user(77, "Offline_One");
    for kind in [SourceKind::Gql, SourceKind::Helix] {
        let mut source = source(&sim, kind);
        let asked: Vec<String> = ["user_3", "offline_one", "nobody"].map(String::from).to_vec();
        let mut found = source.users_by_login(&fetcher, &asked, now()).expect("logins");
        found.sort();
        let expected = vec![
            ("offline_one".to_string(), 77, "Offline_One".to_string()),
            ("user_3".to_string(), 9_003, "user_3".to_string()),
        ];
        assert_eq!(found, expected, "{kind:?}");

        let answer = source.live_streams(&fetcher, &[9_003, 77], now()).expect("check");
        assert_eq!(answer.offline, std::collections::HashSet::from([77]), "{kind:?}");
        let sample = LiveStream::sample(3);
        assert_eq!(answer.sightings.len(), 1, "{kind:?}");
        let s = &answer.sightings[0];
        assert_eq!(
            (s.stream_id, s.streamer_id, s.viewers, s.started_at),
            (
                sample.stream_id,
                sample.streamer_id,
                sample.viewers,
                sample.started_at
            ),
            "{kind:?}"
        );
        assert_eq!(
            (s.login.as_str(), s.title.as_str()),
            ("user_3", "stream #3"),
            "{kind:?}"
        );
        assert_eq!(
            (s.game_id.as_str(), s.game_name.as_str()),
            ("503", "Game 3"),
            "{kind:?}"
        );
        assert_eq!(s.language, sample.language, "{kind:?}");
    }
    // After a rename the old login is unknown and the checks answer the new one.
    sim.rename(9_003, "user_3_new");
    let mut gql = source(&sim, SourceKind::Gql);
    assert!(
        gql.users_by_login(&fetcher, &["user_3".into()], now())
            .expect("logins")
            .is_empty()
    );
    let answer = gql.live_streams(&fetcher, &[9_003], now()).expect("check");
    assert_eq!(answer.sightings[0].login, "user_3_new");
}
