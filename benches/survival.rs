//! The survival watch over two months: `cargo bench --bench survival` (about 4 minutes).
//!
//! The real daemon, in-process (`daemon::run`: the probe stage starting the segment-check job
//! when no probe is due, the budget, the store), against the simulated CDN, on a clock running
//! `SPEED` times faster than real time for `RUN_DAYS` days. The store is seeded with
//! `CAPTURES` captures (broadcasts starting over the first two days, captured 4 hours after
//! their start, their check queued as the capture does), so the run measures the watch alone.
//! The simulated CDN's clock follows the daemon's, so retention deletes each broadcast at 7, 14
//! or 60 days (half, three tenths, a fifth); a quarter are deleted by their streamer at a
//! random time before that (every segment answers 403), and a tenth lose their first
//! segments at a random time (partial). Prints the segment-check requests per capture per day
//! and how long after each loss the watch noticed it (p50 / p99), scored against the losses
//! injected and the `segments_lost_at` stored. `SURVIVAL_DAYS` shortens the run;
//! `VODPROBE_LOG=vodprobe=info` shows the daemon's log.

use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vodprobe::config;
use vodprobe::daemon;
use vodprobe::playlist::Container;
use vodprobe::record::{ArchiveInfo, ProbeState, Status, StreamRecord};
use vodprobe::schedule::Clock;
use vodprobe::store::Store;
use vodprobe_sim::{Broadcast, DomainSpec, Expiry, Retention, Rng, Segments, SimCdn, SimListing};

const SPEED: f64 = 25_000.0;
const DOMAINS: usize = 4;
const CAPTURES: usize = 300;
const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
/// Long enough for the watch of the last broadcast (started on day 2) to end (61 days + 2 h).
const RUN_DAYS: i64 = 64;

/// One seeded capture and the loss injected into it.
struct Seeded {
    key: (i64, u64),
    /// When its segments first stop answering (in part or wholly).
    lost: i64,
    /// What stops them first: "retention", "deleted" (every segment) or "partial".
    cause: &'static str,
}

fn main() {
    // `VODPROBE_LOG=vodprobe=debug` shows what the daemon does.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("VODPROBE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let data = tempfile::tempdir().expect("temp dir");
    let cdn = SimCdn::start((0..DOMAINS).map(|_| DomainSpec::healthy()).collect()).expect("cdn");
    let listing = SimListing::start().expect("listing");
    let origin = 1_767_225_600; // 2026-01-01 00:00 UTC
    let days = std::env::var("SURVIVAL_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(RUN_DAYS);
    let end = origin + days * DAY;
    let config = config::parse(None, &config_text(data.path(), &listing, &cdn), &[])
        .expect("benchmark config is valid");
    let seeded = seed(&config, &cdn, origin);
    println!(
        "survival watch: {CAPTURES} captures, {days} days on a clock x{SPEED} ({:.1} real minutes)",
        (days * DAY) as f64 / SPEED / 60.0
    );

    let clock = Clock::accelerated(origin, SPEED);
    cdn.set_now(clock.now());
    let shutdown = CancellationToken::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let daemon = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                daemon::run(config, clock, listener, shutdown, None)
                    .await
                    .map_err(std::io::Error::other)
            })
        })
    };
    let started = Instant::now();
    // The CDN judges retention and timed expiries by its own clock: keep it on the daemon's.
    while clock.now() < end {
        cdn.set_now(clock.now());
        std::thread::sleep(Duration::from_millis(1));
    }
    shutdown.cancel();
    daemon.join().expect("daemon thread").expect("daemon ran");
    let wall = started.elapsed();
    report(&seeded, &cdn, data.path(), days, end);
    println!("wall time {:.1} min", wall.as_secs_f64() / 60.0);
}

/// Clock-time schedules slow enough not to swamp the run: the probe tick (which starts a
/// segment check when none runs) every clock minute, the rest rarely. The request budget is
/// real time, high enough that spare budget is never what limits the watch.
fn config_text(data_dir: &std::path::Path, listing: &SimListing, cdn: &SimCdn) -> String {
    let mut text = format!(
        "data_dir = {data:?}\n\
         [source]\ngql_url = \"{gql}\"\npages_per_second = 100\n\
         [schedule]\ndiscover = \"0 0 * * * *\"\nprobe = \"0 * * * * *\"\nhealth = \"0 0 0 * * *\"\n\
         prune = \"0 0 0 * * *\"\ncounts = \"0 0 0 * * *\"\ncompact = \"0 30 3 1 1 *\"\n\
         [pipeline]\nretention = \"90d\"\n\
         [limits]\nrequests_per_second = 1000\nconnect_timeout = \"1s\"\nrequest_timeout = \"1s\"\n",
        data = data_dir.display().to_string(),
        gql = listing.gql_url(),
    );
    for domain in 0..DOMAINS {
        text.push_str(&format!(
            "\n[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
            cdn.base_url(domain)
        ));
    }
    text
}

/// Adds the broadcasts to the CDN with their losses and writes their captures to the store.
fn seed(config: &config::Config, cdn: &SimCdn, origin: i64) -> Vec<Seeded> {
    let mut rng = Rng::new(21);
    let mut seeded = Vec::new();
    let mut captures = Vec::new();
    for n in 0..CAPTURES {
        let start = origin + (n as i64 * 2 * DAY) / CAPTURES as i64;
        let stream_id = 40_000 + n as u64;
        let login = format!("keeper{n}");
        let domain = n % DOMAINS;
        let mut broadcast = Broadcast::new(&login, stream_id, &start.to_string(), vec![domain]);
        let (retention, days) = match rng.below(10) {
            0..=4 => (Retention::Regular, 7),
            5..=7 => (Retention::Affiliate, 14),
            _ => (Retention::Partner, 60),
        };
        broadcast.retention = retention;
        let id = cdn.add_broadcast(broadcast);
        let (mut lost, mut cause) = (start + days * DAY, "retention");
        let roll = rng.unit();
        if roll < 0.35 {
            // Before the retention edge, so it is the first loss.
            let at = start + rng.range(6 * HOUR, days * DAY);
            let (which, named) = if roll < 0.25 {
                (Segments::All, "deleted")
            } else {
                (Segments::Range(0..10), "partial")
            };
            cdn.expire_later(id, at, Expiry::Segments(which));
            (lost, cause) = (at, named);
        }
        let base = cdn.base_url(domain);
        let text = cdn.playlist_text(id, "chunked").expect("playlist");
        let fetched = start + 4 * HOUR;
        let archive = ArchiveInfo {
            url: format!("{base}{}", cdn.playlist_path(id, "chunked")),
            domain: base.clone(),
            domains: vec![base],
            timestamp_form: "unix".to_string(),
            ts: start.to_string(),
            duration_seconds: 300.0,
            segments: 30,
            muted_segments: 0,
            container: Container::Ts,
            qualities: vec!["chunked".to_string()],
            fetched_at: fetched,
            ended: true,
            rebuilt: false,
        };
        let record = StreamRecord {
            start_unix: start,
            stream_id,
            streamer_id: stream_id,
            login,
            title: "kept".to_string(),
            game_id: "509658".to_string(),
            game_name: "Just Chatting".to_string(),
            language: "en".to_string(),
            is_mature: false,
            max_viewers: 10,
            first_seen: start,
            last_seen: start + 300,
            ended_at: Some(start + 300),
            status: Status::Found,
            public: Some(true),
            probe: ProbeState {
                captured_at: Some(fetched),
                probes: 1,
                hour_probe_done: true,
                ..ProbeState::default()
            },
            archive: Some(archive),
        };
        seeded.push(Seeded {
            key: record.key(),
            lost,
            cause,
        });
        captures.push((record, text));
    }
    let store = Store::open(&daemon::database_path(config), 1 << 24).expect("store opens");
    // As a capture archives (`put_archived_many`, for imports, queues no check).
    store
        .update(|tx| {
            captures
                .iter()
                .try_for_each(|(record, text)| tx.put_archived(record, text))
        })
        .expect("seeded");
    seeded
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(seeded: &[Seeded], cdn: &SimCdn, data_dir: &std::path::Path, days: i64, end: i64) {
    let heads = (0..DOMAINS)
        .flat_map(|d| cdn.request_log(d))
        .filter(|r| r.method == "HEAD")
        .count();
    println!(
        "segment-check requests (the check at capture included): {heads} in all, {:.1} per \
         capture, {:.3} per capture per day",
        heads as f64 / CAPTURES as f64,
        heads as f64 / CAPTURES as f64 / days as f64
    );
    let store = Store::open(&data_dir.join("vodprobe.redb"), 1 << 24).expect("store opens");
    let keys: Vec<_> = seeded.iter().map(|s| s.key).collect();
    let statuses = store.segment_statuses(&keys).expect("statuses");
    let scored: Vec<(&Seeded, Option<i64>)> = seeded
        .iter()
        .zip(statuses)
        .filter(|(seed, _)| seed.lost < end)
        .map(|(seed, status)| (seed, status.and_then(|s| s.lost_at)))
        .collect();
    for cause in ["all", "retention", "deleted", "partial"] {
        let mut delays = Vec::new();
        let (mut missed, mut early) = (0, 0);
        for (seed, noticed) in scored.iter().filter(|(s, _)| cause == "all" || s.cause == cause) {
            match noticed {
                Some(noticed) if *noticed >= seed.lost => delays.push(noticed - seed.lost),
                Some(_) => early += 1,
                None => missed += 1,
            }
        }
        delays.sort_unstable();
        let hours = |seconds: i64| seconds as f64 / 3600.0;
        println!(
            "losses ({cause}): {} noticed of {} (never: {missed}, before the loss: {early}); \
             after the loss p50 {:.1} h, p99 {:.1} h, max {:.1} h",
            delays.len(),
            delays.len() + missed + early,
            hours(percentile(&delays, 0.5)),
            hours(percentile(&delays, 0.99)),
            hours(delays.last().copied().unwrap_or(0))
        );
    }
}
