//! `vodprobe serve` against the simulated listing and CDN: the real binary, real HTTP, a real
//! redb file. Thresholds are scaled to seconds; the hour-aligned probe runs on an accelerated
//! clock. While `serve` runs its database is locked, so tests watch the simulators' request
//! logs, stop the appliance, then read the store.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vodprobe::record::{Status, StreamRecord};
use vodprobe::store::Store;
use vodprobe_sim::{
    Broadcast, DomainSpec, Fault, ListingFault, LiveStream, MutedStretch, SimCdn, SimListing, SimVideo,
    vod_dir,
};

const DOMAINS: usize = 3;

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cdn: SimCdn,
    pub(crate) listing: SimListing,
    child: Option<Child>,
}

pub(crate) fn stream(
    stream_id: u64,
    streamer_id: u64,
    login: &str,
    started_at: i64,
    viewers: u32,
) -> LiveStream {
    LiveStream {
        stream_id,
        streamer_id,
        login: login.to_string(),
        title: format!("{login} live"),
        game_id: "509658".into(),
        game_name: "Just Chatting".into(),
        language: "en".into(),
        is_mature: false,
        viewers,
        started_at,
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl World {
    fn new(specs: Vec<DomainSpec>, pipeline: &str) -> World {
        World::configured(
            specs,
            pipeline,
            "kind = \"gql\"",
            "health = \"0 0 * * * *\"",
            "requests_per_second = 50",
        )
    }

    /// `source`, `health` and `limits` are extra lines for their tables.
    pub(crate) fn configured(
        specs: Vec<DomainSpec>,
        pipeline: &str,
        source: &str,
        health: &str,
        limits: &str,
    ) -> World {
        World::build(specs, pipeline, source, health, limits, "")
    }

    /// A healthy world whose `[api]` table gets the extra lines `api`.
    pub(crate) fn with_api(pipeline: &str, api: &str) -> World {
        let specs = (0..DOMAINS).map(|_| DomainSpec::healthy()).collect();
        let limits = "requests_per_second = 50";
        World::build(
            specs,
            pipeline,
            "kind = \"gql\"",
            "health = \"0 0 * * * *\"",
            limits,
            api,
        )
    }

    fn build(
        specs: Vec<DomainSpec>,
        pipeline: &str,
        source: &str,
        health: &str,
        limits: &str,
        api: &str,
    ) -> World {
        let cdn = SimCdn::start(specs).expect("cdn");
        let listing = SimListing::start().expect("listing");
        let dir = tempfile::tempdir().expect("dir");
        let mut text = format!(
            "data_dir = \"data\"\n\
             [api]\nlisten = \"127.0.0.1:0\"\n{api}\n\
             [source]\n{source}\ngql_url = \"{}\"\nhelix_url = \"{}\"\ntoken_url = \"{}\"\npages_per_second = 20\n\
             [schedule]\ndiscover = \"* * * * * *\"\nprobe = \"* * * * * *\"\n{health}\nprune = \"0 0 0 * * *\"\n\
             [pipeline]\n{pipeline}\n\
             [limits]\n{limits}\nconnect_timeout = \"1s\"\nrequest_timeout = \"1s\"\n",
            listing.gql_url(),
            listing.helix_url(),
            listing.token_url(),
        );
        for domain in 0..cdn.domain_count() {
            text.push_str(&format!(
                "[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
                cdn.base_url(domain)
            ));
        }
        std::fs::write(dir.path().join("config.toml"), text).expect("config");
        World {
            dir,
            cdn,
            listing,
            child: None,
        }
    }

    pub(crate) fn healthy(pipeline: &str) -> World {
        World::new((0..DOMAINS).map(|_| DomainSpec::healthy()).collect(), pipeline)
    }

    pub(crate) fn start(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("serve.log"))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_vodprobe"))
            .arg("serve")
            .args(extra)
            .current_dir(self.dir.path())
            .env("VODPROBE_LOG", "vodprobe=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        self.child = Some(child);
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "serve exited with {status}: {}", self.log());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop on SIGTERM: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running `serve`'s process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.dir.path().join("data").join("vodprobe.redb")
    }

    pub(crate) fn records(&self) -> Vec<StreamRecord> {
        let store = Store::open(&self.database(), 1 << 20).expect("database opens cleanly");
        store.scan(None, 100_000).expect("scan")
    }

    pub(crate) fn playlist(&self, record: &StreamRecord) -> Option<String> {
        let store = Store::open(&self.database(), 1 << 20).expect("database opens cleanly");
        store.playlist(record.key()).expect("read")
    }

    /// Probe requests for a broadcast's playlist (its primary quality) across domains; the
    /// segment check's requests for its segments are not counted.
    pub(crate) fn requests_for(&self, login: &str, stream_id: u64) -> usize {
        self.paths_requested(login, stream_id)
            .iter()
            .filter(|p| p.contains("/chunked/") && p.ends_with(".m3u8"))
            .count()
    }

    /// Every path requested for a broadcast, on any domain, in no particular order.
    pub(crate) fn paths_requested(&self, login: &str, stream_id: u64) -> Vec<String> {
        let needle = format!("_{login}_{stream_id}_");
        (0..self.cdn.domain_count())
            .flat_map(|d| self.cdn.requests(d))
            .filter(|p| p.contains(&needle))
            .collect()
    }

    /// The API's base URL (`http://127.0.0.1:PORT`), from the log line that announces it.
    pub(crate) fn api_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(rest) = log.split("API listening on http://").nth(1) {
                let address = rest.split('/').next().unwrap_or_default();
                return format!("http://{address}");
            }
            assert!(Instant::now() < deadline, "the API never listened: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn wait_until(&self, what: &str, seconds: u64, mut condition: impl FnMut(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn find(records: &[StreamRecord], stream_id: u64) -> Vec<&StreamRecord> {
    records.iter().filter(|r| r.stream_id == stream_id).collect()
}

pub(crate) const FAST: &str = "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = false\nretries = [\"1s\", \"1s\"]";

#[test]
fn ended_streams_are_captured_and_thresholds_apply() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    world
        .cdn
        .add_broadcast(Broadcast::new("bigstream", 101, &start.to_string(), vec![1]));
    world
        .cdn
        .add_broadcast(Broadcast::new("smallstream", 102, &start.to_string(), vec![1]));
    world.listing.set_streams(vec![
        stream(101, 1, "bigstream", start, 50),
        stream(102, 2, "smallstream", start, 7),
        stream(103, 3, "tinystream", start, 3),
    ]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 20, |w| w.requests_for("bigstream", 101) >= 1);
    std::thread::sleep(Duration::from_millis(500));
    world.stop();

    let records = world.records();
    let big = find(&records, 101);
    assert_eq!(big.len(), 1, "{records:?}");
    let big = big[0];
    assert_eq!(big.status, Status::Found, "{big:?}");
    assert_eq!(big.max_viewers, 50);
    assert_eq!(big.title, "bigstream live");
    let archive = big.archive.as_ref().expect("archived");
    assert_eq!(archive.domain, world.cdn.base_url(1));
    assert_eq!(archive.segments, 30);
    assert_eq!(archive.timestamp_form, "unix");
    let text = world.playlist(big).expect("playlist stored");
    assert!(text.starts_with("#EXTM3U"));
    // Observed but below the record threshold: never probed, dropped at its end.
    assert!(find(&records, 102).is_empty(), "{records:?}");
    assert_eq!(world.requests_for("smallstream", 102), 0);
    // Below the observe threshold: never stored.
    assert!(find(&records, 103).is_empty());
}

#[test]
fn restarts_and_reused_stream_ids_are_separate_broadcasts() {
    let mut world = World::healthy(FAST);
    let first_start = now() - 900;
    let second_start = now() - 30;
    // The restarted broadcast reuses the stream id; Twitch stores it with the second-of-minute form.
    world.cdn.add_broadcast(Broadcast::new(
        "restarter",
        201,
        &first_start.to_string(),
        vec![0],
    ));
    let seconds = second_start.rem_euclid(60).to_string();
    world
        .cdn
        .add_broadcast(Broadcast::new("restarter", 201, &seconds, vec![2]));
    world
        .listing
        .set_streams(vec![stream(201, 9, "restarter", first_start, 40)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    // The restart: same streamer, same stream id, a new start time.
    world
        .listing
        .set_streams(vec![stream(201, 9, "restarter", second_start, 45)]);
    world.wait_until("the capture of the first broadcast", 15, |w| {
        w.requests_for("restarter", 201) >= 1
    });
    world.listing.set_streams(vec![]);
    world.wait_until("both captures", 25, |w| {
        (0..DOMAINS).any(|d| {
            w.cdn
                .requests(d)
                .iter()
                .any(|p| p.contains(&format!("_restarter_201_{seconds}/")))
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    world.stop();
    let records = world.records();
    let both = find(&records, 201);
    assert_eq!(both.len(), 2, "{records:?}");
    assert_eq!(both[0].start_unix, first_start);
    assert_eq!(both[1].start_unix, second_start);
    for record in &both {
        assert_eq!(record.status, Status::Found, "{record:?}");
    }
    assert_eq!(
        both[1].archive.as_ref().expect("archive").timestamp_form,
        "second-of-minute"
    );
}

#[test]
fn a_miss_on_a_channel_that_lists_no_video_is_settled_after_one_search() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    world
        .listing
        .set_streams(vec![stream(301, 3, "ghost", start, 30)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    // One search, every form on every domain (it is the only one), then no retry.
    world.wait_until("the search", 30, |w| w.requests_for("ghost", 301) >= 9);
    std::thread::sleep(Duration::from_millis(1500));
    world.stop();
    let records = world.records();
    let ghost = find(&records, 301)[0];
    assert_eq!(ghost.status, Status::NotFound, "{ghost:?}");
    assert_eq!((ghost.probe.probes, ghost.probe.next_due), (1, None));
    assert!(
        ghost
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lists no video")),
        "{ghost:?}"
    );
    assert_eq!(
        world.requests_for("ghost", 301),
        9,
        "no request beyond the search"
    );
}

#[test]
fn misses_are_retried_on_the_channels_domain_then_everywhere_then_not_found() {
    let mut world = World::healthy(&FAST.replace("learn_live_after = \"0s\"", "learn_live_after = \"1h\""));
    let start = now() - 600;
    // An older video of the channel names its domain (1): this broadcast's own is missing.
    world.listing.set_videos(
        3,
        vec![SimVideo {
            video_id: 1,
            stream_id: 300,
            created_at: start - 86_400,
            domain_url: world.cdn.base_url(1),
            folder: vod_dir("ghost", 300, &(start - 86_400).to_string()),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(301, 3, "ghost", start, 30)]);
    world.start(&[]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    // The first search leaves the second-of-minute form to the retries (3 domains × 2 forms);
    // the first retry asks the channel's domain in its 3 forms; the last one every domain in
    // every form.
    world.wait_until("the last retry", 30, |w| {
        w.requests_for("ghost", 301) >= 6 + 3 + 9
    });
    std::thread::sleep(Duration::from_millis(1500));
    world.stop();
    let records = world.records();
    let ghost = find(&records, 301)[0];
    assert_eq!(ghost.status, Status::NotFound, "{ghost:?}");
    assert_eq!(ghost.probe.probes, 3);
    let on_its_domain = world
        .cdn
        .requests(1)
        .iter()
        .filter(|p| p.contains("_ghost_301_"))
        .count();
    assert_eq!(on_its_domain, 2 + 3 + 3);
    assert_eq!(
        world.requests_for("ghost", 301),
        18,
        "no request beyond the schedule"
    );
}

#[test]
fn a_path_learned_while_live_makes_the_capture_cost_one_request() {
    let mut world = World::healthy(
        "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"1s\"\nalign_to_hour = false\nretries = [\"1s\"]",
    );
    let start = now() - 60;
    let mut live = Broadcast::new("learner", 401, &(start - 1).to_string(), vec![2]);
    live.ended = false;
    let id = world.cdn.add_broadcast(live);
    // This broadcast's video is hidden; an older one names the channel's domain.
    let older = (start - 86_400).to_string();
    world.listing.set_videos(
        4,
        vec![SimVideo {
            video_id: 1,
            stream_id: 400,
            created_at: start - 86_400,
            domain_url: world.cdn.base_url(2),
            folder: vod_dir("learner", 400, &older),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(401, 4, "learner", start, 80)]);
    world.start(&[]);
    let learned_path = format!("_learner_401_{}/", start - 1);
    world.wait_until("the live learning hit", 15, |w| {
        w.cdn.requests(2).iter().any(|p| p.contains(&learned_path))
    });
    std::thread::sleep(Duration::from_millis(300));
    let learning_requests = world.requests_for("learner", 401);
    // The streamer ends and deletes the broadcast's other copies; the learned domain holds it.
    world.cdn.grow(id, 5);
    world.cdn.end(id);
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 15, |w| {
        w.requests_for("learner", 401) > learning_requests
    });
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    assert_eq!(
        world.requests_for("learner", 401),
        learning_requests + 1,
        "the capture cost one request"
    );
    let records = world.records();
    let learner = find(&records, 401)[0];
    assert_eq!(learner.status, Status::Found);
    assert!(learner.probe.learned_live);
    let archive = learner.archive.as_ref().expect("archive");
    assert_eq!(archive.segments, 35);
    assert!(archive.ended);
    assert_eq!(archive.timestamp_form, "unix-1");
}

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

#[test]
fn the_second_probe_after_the_hour_records_the_muted_playlist_and_asks_only_where_muted() {
    // Clock: 17:58:00, twenty times real speed, so the hour boundary is 6 real seconds away.
    let clock_start: i64 = 1_664_042_280;
    let mut world = World::healthy(
        "ended_after = \"10s\"\nsettle = \"0s\"\nlearn_live_after = \"0s\"\nalign_to_hour = true\nhour_margin = \"1m\"\nretries = [\"1m\"]",
    );
    let start = clock_start - 3600;
    let mut broadcast = Broadcast::new("muted", 601, &start.to_string(), vec![0]);
    broadcast.muted = std::iter::once(3..6).collect();
    let id = world.cdn.add_broadcast(broadcast);
    // A second broadcast whose video object, read after the hour, lists no muted segment: its
    // hour-aligned re-fetch needs no CDN request. The muted one's video says it was muted.
    world
        .cdn
        .add_broadcast(Broadcast::new("quiet", 602, &start.to_string(), vec![0]));
    let video = |stream_id: u64, login: &str| SimVideo {
        video_id: 9000 + stream_id,
        stream_id,
        created_at: start,
        domain_url: world.cdn.base_url(0),
        folder: vod_dir(login, stream_id, &start.to_string()),
        public: true,
        muted: Vec::new(),
    };
    world.listing.set_videos(6, vec![video(601, "muted")]);
    world.listing.set_videos(7, vec![video(602, "quiet")]);
    world.listing.set_streams(vec![
        stream(601, 6, "muted", start, 70),
        stream(602, 7, "quiet", start, 70),
    ]);
    world.start(&["--clock-start", &clock_start.to_string(), "--clock-speed", "20"]);
    world.wait_until("the first sighting", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("the first captures", 10, |w| {
        w.requests_for("muted", 601) >= 1 && w.requests_for("quiet", 602) >= 1
    });
    // Twitch's muting pass on the hour: the copy and its video object.
    world.cdn.mute(id);
    let stretch = MutedStretch {
        offset: 30,
        duration: 30,
    };
    assert!(world.listing.set_video_muted(9601, vec![stretch]));
    world.wait_until("the hour-aligned capture", 20, |w| {
        w.requests_for("muted", 601) >= 2
    });
    world.wait_until("the quiet one's re-fetch settled", 20, |w| {
        w.log().contains("probe skipped")
    });
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    let records = world.records();
    let muted = find(&records, 601)[0];
    assert!(muted.probe.hour_probe_done, "{muted:?}");
    assert_eq!(muted.probe.next_due, None);
    assert_eq!(muted.archive.as_ref().expect("archive").muted_segments, 3);
    assert!(world.playlist(muted).expect("stored").contains("3-unmuted.ts"));
    assert_eq!(world.requests_for("muted", 601), 2);
    let quiet = find(&records, 602)[0];
    assert_eq!((quiet.status, quiet.probe.next_due), (Status::Found, None));
    assert!(
        quiet
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no muted segments")),
        "{quiet:?}"
    );
    assert_eq!(world.requests_for("quiet", 602), 1, "no CDN re-fetch");
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

/// The stream ids of the records given up with a reason naming `bound`.
fn dropped_for(records: &[StreamRecord], bound: &str) -> Vec<u64> {
    records
        .iter()
        .filter(|r| r.probe.last_error.as_deref().is_some_and(|e| e.contains(bound)))
        .map(|r| r.stream_id)
        .collect()
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
    // broadcast's unknown path counts 3 (its channel's domain in its forms): 10 fit.
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
    let streams: Vec<LiveStream> = (0..14)
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
fn a_published_video_makes_the_capture_cost_one_cdn_request() {
    let mut world = World::healthy(FAST);
    let start = now() - 600;
    // Stored with the unix-1 form on the last domain: a search would cost 7 requests.
    let ts = (start - 1).to_string();
    world
        .cdn
        .add_broadcast(Broadcast::new("published", 1001, &ts, vec![2]));
    world.listing.set_videos(
        10,
        vec![SimVideo {
            video_id: 555,
            stream_id: 1001,
            created_at: start,
            domain_url: world.cdn.base_url(2),
            folder: vod_dir("published", 1001, &ts),
            public: true,
            muted: Vec::new(),
        }],
    );
    world
        .listing
        .set_streams(vec![stream(1001, 10, "published", start, 60)]);
    world.start(&[]);
    world.wait_until("the first crawl", 10, |w| w.listing.requests() >= 2);
    world.listing.set_streams(vec![]);
    world.wait_until("the capture", 20, |w| w.requests_for("published", 1001) >= 1);
    std::thread::sleep(Duration::from_millis(800));
    world.stop();
    assert_eq!(
        world.requests_for("published", 1001),
        1,
        "the video named the path"
    );
    assert!(world.listing.video_requests() >= 1);
    let records = world.records();
    let published = find(&records, 1001)[0];
    assert_eq!(published.status, Status::Found);
    assert_eq!(published.public, Some(true));
    assert_eq!(
        published.archive.as_ref().expect("archive").timestamp_form,
        "unix-1"
    );
}

#[test]
fn a_live_broadcast_whose_channel_lists_no_video_is_searched_once_while_live() {
    let mut world = World::healthy(
        "ended_after = \"2s\"\nsettle = \"0s\"\nlearn_live_after = \"1s\"\nalign_to_hour = false\nretries = [\"1s\"]",
    );
    let start = now() - 120;
    // Stored on domain 1 with no video object (hidden), and a channel that stores nothing.
    world
        .cdn
        .add_broadcast(Broadcast::new("novideo", 1101, &start.to_string(), vec![1]));
    world.listing.set_streams(vec![
        stream(1101, 11, "novideo", start, 40),
        stream(1102, 12, "nothing", start, 30),
    ]);
    world.start(&[]);
    // While live: the stored one is found (its path learned), the other swept in full.
    world.wait_until("the live searches", 20, |w| {
        w.requests_for("novideo", 1101) >= 1 && w.requests_for("nothing", 1102) >= 9
    });
    world.listing.set_streams(vec![]);
    // The stored one's live copy already ended (the simulated playlist is complete): found.
    world.wait_until("the end settled without a search", 20, |w| {
        w.log().contains("probe known_empty")
    });
    std::thread::sleep(Duration::from_millis(1500));
    world.stop();
    let records = world.records();
    let record = find(&records, 1101)[0];
    assert_eq!(record.status, Status::Found, "{record:?}");
    assert_eq!(record.public, Some(false));
    let nothing = find(&records, 1102)[0];
    assert_eq!(nothing.status, Status::NotFound, "{nothing:?}");
    assert!(
        nothing
            .probe
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("while live")),
        "{nothing:?}"
    );
    // One search in all for the channel that stores nothing: its end asked nothing more.
    assert_eq!(world.requests_for("nothing", 1102), 9);
}
