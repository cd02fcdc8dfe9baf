//! A compressed day: `cargo bench --bench day` (about 8 minutes). `VODPROBE_DAY_PIPELINE` adds
//! `[pipeline]` lines to measure another probe schedule (e.g. `align_to_hour = false`);
//! `VODPROBE_DAY_SOURCE=helix` lists through Helix (client credentials, the point budget scaled
//! with the clock) instead of GQL. The simulated listing answers as today's Twitch does (GQL
//! refuses cursor pages of the web client id, Helix's last cursor loops back to page 1).
//!
//! The real daemon, in-process, against the simulated world (`WorldSpec::benchmark_day`: 2,000
//! channels, about half storing no VODs, each channel's copies on one region's domain, forms
//! about 90/9/1, restarts, quick deletes, one 20-minute outage of 9 of 12 domains) on a clock
//! running `SPEED` times faster than real time. Durations in the config are clock time, so the
//! pipeline's thresholds scale with the clock; the request budget and the timeouts, which are
//! real time, are scaled by the same factor. Scored against the world's ground truth and the
//! CDN's request logs.

#[path = "common/harness.rs"]
mod harness;
#[path = "common/scoring.rs"]
mod scoring;

use harness::{day_config, helix_source, proc_kib};
use scoring::{percentile, requests_by_broadcast};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vodprobe::config;
use vodprobe::daemon;
use vodprobe::record::{Status, StreamRecord};
use vodprobe::schedule::Clock;
use vodprobe::store::Store;
use vodprobe_sim::{DomainSpec, SimCdn, SimListing, TruthBroadcast, World, WorldSpec};

const SPEED: f64 = 180.0;
const DOMAINS: usize = 12;
const CHANNELS: usize = 2000;
const DAY: i64 = 86_400;
/// Broadcasts must have ended this long before the run stops to be scored (retries take time).
const SCORING_MARGIN: i64 = 3 * 3600;

fn main() {
    let data = tempfile::tempdir().expect("temp dir");
    let cdn = SimCdn::start((0..DOMAINS).map(|_| DomainSpec::healthy()).collect()).expect("cdn");
    let listing = SimListing::start().expect("listing");
    let start = 1_767_225_600; // 2026-01-01 00:00 UTC
    let clock = Clock::accelerated(start, SPEED);
    let mut text = day_config(data.path(), &listing, &cdn, DOMAINS, SPEED);
    let source = std::env::var("VODPROBE_DAY_SOURCE").unwrap_or_else(|_| "gql".to_string());
    match source.as_str() {
        "gql" => {}
        // Twitch's 800 points a minute, in clock time.
        "helix" => text = helix_source(&text, &listing, SPEED, 1.0),
        other => panic!("VODPROBE_DAY_SOURCE is gql or helix, not {other:?}"),
    }
    println!("listing source: {source}");
    // Probe-schedule variants to measure (e.g. `align_to_hour = false`), as [pipeline] lines.
    if let Ok(lines) = std::env::var("VODPROBE_DAY_PIPELINE") {
        println!("[pipeline] {lines:?}");
        text.push_str(&format!("\n[pipeline]\n{lines}\n"));
    }
    let config = config::parse(None, &text, &[]).expect("benchmark config is valid");
    let min_record = config.source.min_viewers_record;
    println!(
        "compressed day: {CHANNELS} channels, {DOMAINS} domains, clock x{SPEED} ({:.1} real minutes)",
        DAY as f64 / SPEED / 60.0
    );

    let shutdown = CancellationToken::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The bench binds the API's port itself (the daemon takes a bound listener), so it can
    // watch the appliance's live list.
    let api = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    api.set_nonblocking(true).expect("non-blocking");
    let mut watch = EndWatch::new(format!("http://{}", api.local_addr().expect("address")));
    let daemon = {
        let shutdown = shutdown.clone();
        let config = config.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(api)?;
                daemon::run(config, clock, listener, shutdown, None)
                    .await
                    .map_err(std::io::Error::other)
            })
        })
    };
    let mut world = World::new(WorldSpec::benchmark_day(start, DOMAINS, CHANNELS));
    let started = Instant::now();
    let mut peak_rss = 0;
    let mut last_report = Instant::now();
    let mut last_watch = Instant::now();
    while clock.now() < start + DAY {
        world.advance(clock.now(), &listing, &cdn);
        if last_watch.elapsed() >= Duration::from_millis(100) {
            last_watch = Instant::now();
            watch.poll(clock.now());
        }
        peak_rss = peak_rss.max(proc_kib("/proc/self/status", "VmRSS:").unwrap_or(0));
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "  clock {:>5.1} h, {} broadcasts so far",
                (clock.now() - start) as f64 / 3600.0,
                world.broadcasts().len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    shutdown.cancel();
    daemon.join().expect("daemon thread").expect("daemon ran");
    let wall = started.elapsed();
    let end = clock.now();

    let store = Store::open(&data.path().join("vodprobe.redb"), 1 << 24).expect("store opens");
    let records: HashMap<(i64, u64), StreamRecord> = store
        .scan(None, usize::MAX)
        .expect("scan")
        .into_iter()
        .map(|r| (r.key(), r))
        .collect();
    let (requests, background) = requests_by_broadcast(&cdn, DOMAINS);
    let truth = world.broadcasts();
    score(&truth, &records, &requests, min_record, start, end);
    watch.report(&truth, min_record, start, end);
    let checked = records
        .values()
        .filter(|r| r.archive.as_ref().is_some_and(|a| a.qualities.len() > 1))
        .count();
    println!(
        "background quality checks (spare budget only, not counted above): {} CDN requests; \
         {checked} captures with more than one quality",
        background.qualities
    );
    let captures = records.values().filter(|r| r.status == Status::Found).count();
    println!(
        "background segment checks (spare budget only, not counted above): {} CDN requests, {:.2} per capture ({captures})",
        background.segments,
        background.segments as f64 / captures.max(1) as f64
    );
    // Listing requests per hour of clock time: pages apart from confirmations and video lists.
    let hours = (end - start) as f64 / 3600.0;
    let confirms = listing.confirm_requests();
    let videos = listing.video_requests();
    let pages = listing
        .requests()
        .saturating_sub(confirms + videos + listing.token_requests());
    println!(
        "listing requests per hour: {:.0} pages, {:.0} end confirmations, {:.0} video lists",
        pages as f64 / hours,
        confirms as f64 / hours,
        videos as f64 / hours
    );
    // Lifecycle events: how fast they are written at this pace (per real second of the run,
    // and per clock second, which the clock's speed turns into real Twitch time).
    let written = store.events_written().expect("events written");
    let events: u64 = written.iter().map(|(_, n)| n).sum();
    let by_kind: Vec<String> = written
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| format!("{} {n}", kind.as_str()))
        .collect();
    println!(
        "lifecycle events written: {events} ({:.1} per real second of the run, {:.3} per clock second); {}",
        events as f64 / wall.as_secs_f64(),
        events as f64 / (end - start) as f64,
        by_kind.join(", ")
    );
    println!(
        "wall time {:.1} min; peak RSS (appliance + simulators) {} MiB; database {} KiB",
        wall.as_secs_f64() / 60.0,
        peak_rss / 1024,
        store.file_size() / 1024
    );
}

fn score(
    truth: &[TruthBroadcast],
    records: &HashMap<(i64, u64), StreamRecord>,
    requests: &HashMap<(String, u64), Vec<String>>,
    min_record: u32,
    start: i64,
    end: i64,
) {
    // Broadcasts that started before the appliance may have peaked before it could see them.
    let scored: Vec<&TruthBroadcast> = truth
        .iter()
        .filter(|b| {
            b.listed_start >= start
                && b.peak_viewers >= min_record
                && b.ended_at.is_some_and(|e| e + SCORING_MARGIN <= end)
        })
        .collect();
    let stored: Vec<&&TruthBroadcast> = scored.iter().filter(|b| b.path_ts.is_some()).collect();
    let captured = |b: &TruthBroadcast| scoring::captured(records.get(&(b.listed_start, b.stream_id)));
    let captured_count = stored.iter().filter(|b| captured(b)).count();
    // Requests are counted per (login, stream id); restarted halves share an id, so count them once.
    let mut seen = std::collections::HashSet::new();
    let mut captured_requests = 0usize;
    let mut captured_wrong = 0usize;
    let mut captured_streams = 0usize;
    let mut nothing_requests = 0usize;
    let mut nothing_streams = 0usize;
    // Per [without video, with video]: broadcasts, wrong requests for the right folder on
    // another domain, wrong requests for another folder, fetches of the right URL.
    let mut breakdown = [(0usize, 0usize, 0usize, 0usize); 2];
    for broadcast in &scored {
        if !seen.insert((broadcast.login.clone(), broadcast.stream_id)) {
            continue;
        }
        let sent = requests
            .get(&(broadcast.login.clone(), broadcast.stream_id))
            .map_or(0, Vec::len);
        if broadcast.path_ts.is_some() && captured(broadcast) {
            captured_requests += sent;
            captured_streams += 1;
            let right = match (broadcast.domain, broadcast.playlist_path("chunked")) {
                (Some(domain), Some(path)) => format!("{domain}/{path}"),
                _ => String::new(),
            };
            let wrong: Vec<&String> = requests
                .get(&(broadcast.login.clone(), broadcast.stream_id))
                .map_or(Vec::new(), |sent| sent.iter().filter(|r| **r != right).collect());
            captured_wrong += wrong.len();
            // Where the wrong ones went: the right folder on another domain, or another
            // folder (timestamp form) anywhere; split by whether a video object named it.
            let same_folder = wrong
                .iter()
                .filter(|r| {
                    broadcast
                        .playlist_path("chunked")
                        .is_some_and(|p| r.ends_with(&p))
                })
                .count();
            let slot = &mut breakdown[usize::from(broadcast.has_video)];
            slot.0 += 1;
            slot.1 += same_folder;
            slot.2 += wrong.len() - same_folder;
            slot.3 += sent - wrong.len();
        } else if broadcast.path_ts.is_none() {
            nothing_requests += sent;
            nothing_streams += 1;
        }
    }
    let mut delays: Vec<i64> = stored
        .iter()
        .filter_map(|b| {
            let record = records.get(&(b.listed_start, b.stream_id))?;
            Some(record.probe.captured_at? - b.ended_at?)
        })
        .collect();
    delays.sort_unstable();
    let deleted: Vec<&&&TruthBroadcast> = stored.iter().filter(|b| b.deleted_at.is_some()).collect();
    let deleted_captured = deleted.iter().filter(|b| captured(b)).count();
    let missed: Vec<String> = stored
        .iter()
        .filter(|b| !captured(b))
        .take(10)
        .map(|b| {
            let state = records
                .get(&(b.listed_start, b.stream_id))
                .map_or("no record".to_string(), |r| {
                    format!("{} {:?}", r.status.as_str(), r.probe.last_error)
                });
            format!(
                "{} {} ({}, deleted {:?}): {state}",
                b.login,
                b.stream_id,
                b.form,
                b.deleted_at.map(|d| d - b.ended_at.unwrap_or(d))
            )
        })
        .collect();
    println!(
        "broadcasts scored (started after the appliance, peak >= {min_record} viewers, ended >= 3 h before the stop): {}",
        scored.len()
    );
    println!(
        "stored broadcasts captured: {captured_count} / {} = {:.2}%",
        stored.len(),
        100.0 * captured_count as f64 / stored.len().max(1) as f64
    );
    println!(
        "CDN requests per captured broadcast: {:.2} in all; search (requests to wrong URLs + the first hit): {:.2}; \
         fetches of the right URL (live, end, hour): {:.2}",
        captured_requests as f64 / captured_streams.max(1) as f64,
        (captured_wrong + captured_streams) as f64 / captured_streams.max(1) as f64,
        (captured_requests - captured_wrong) as f64 / captured_streams.max(1) as f64
    );
    for (label, (count, other_domain, other_folder, right)) in
        ["without a video object", "with a video object"]
            .iter()
            .zip(breakdown)
    {
        let per = |n: usize| n as f64 / count.max(1) as f64;
        println!(
            "  captured {label}: {count}; per broadcast {:.2} right-URL fetches, {:.2} to the right \
             folder on other domains, {:.2} to other folders",
            per(right),
            per(other_domain),
            per(other_folder)
        );
    }
    println!(
        "CDN requests per stream with nothing stored: {:.1}",
        nothing_requests as f64 / nothing_streams.max(1) as f64
    );
    println!(
        "time from end to capture (clock): p50 {} s, p99 {} s",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99)
    );
    println!(
        "quickly deleted broadcasts captured: {deleted_captured} / {} = {:.1}%",
        deleted.len(),
        100.0 * deleted_captured as f64 / deleted.len().max(1) as f64
    );
    for line in missed {
        println!("  missed: {line}");
    }
}

/// When the appliance stopped listing each broadcast as live, polled from its API every 100 ms
/// of real time (18 s of clock time at x180): how long after a stream's real end it knew.
struct EndWatch {
    base: String,
    live: std::collections::HashSet<(i64, u64)>,
    known_ended: HashMap<(i64, u64), i64>,
}

impl EndWatch {
    fn new(base: String) -> EndWatch {
        EndWatch {
            base,
            live: Default::default(),
            known_ended: HashMap::new(),
        }
    }

    /// One look at the live list (every page); a failed look changes nothing.
    fn poll(&mut self, now: i64) {
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{}/api/v1/vods?status=live&limit=500", self.base);
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let Ok(mut answer) = ureq::get(&url).call() else {
                return;
            };
            let Ok(text) = answer.body_mut().read_to_string() else {
                return;
            };
            let Ok(page) = serde_json::from_str::<serde_json::Value>(&text) else {
                return;
            };
            for item in page["items"].as_array().into_iter().flatten() {
                let start = item["start_unix"].as_i64();
                let id = item["stream_id"].as_str().and_then(|id| id.parse::<u64>().ok());
                if let (Some(start), Some(id)) = (start, id) {
                    seen.insert((start, id));
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        for gone in self.live.difference(&seen) {
            self.known_ended.entry(*gone).or_insert(now);
        }
        self.live = seen;
    }

    /// Real end → the appliance no longer listing it as live, over the scored broadcasts it
    /// saw live.
    fn report(&self, truth: &[TruthBroadcast], min_record: u32, start: i64, end: i64) {
        let mut delays: Vec<i64> = truth
            .iter()
            .filter(|t| t.listed_start > start && t.peak_viewers >= min_record)
            .filter_map(|t| {
                let ended = t.ended_at.filter(|e| *e + SCORING_MARGIN <= end)?;
                let known = self.known_ended.get(&(t.listed_start, t.stream_id))?;
                Some((known - ended).max(0))
            })
            .collect();
        delays.sort_unstable();
        let at = |q: f64| {
            delays
                .get(((delays.len() as f64 - 1.0) * q).round() as usize)
                .copied()
        };
        match (at(0.5), at(0.99)) {
            (Some(p50), Some(p99)) => println!(
                "time from a stream's real end to the appliance knowing it (clock, {} streams, \
                 polled every ~18 s): p50 {p50} s, p99 {p99} s",
                delays.len()
            ),
            _ => println!("time from a stream's real end to the appliance knowing it: no stream seen end"),
        }
    }
}
