//! A week of Twitch, scaled: `cargo bench --bench week` (about 30 minutes). `VODPROBE_WEEK_DAYS`
//! (default 7) runs fewer days, `VODPROBE_WEEK_SCALE` sets N (default 50), and
//! `VODPROBE_WEEK_SOURCE=helix` lists through Helix instead of GQL, and `VODPROBE_WEEK_PIPELINE`
//! adds lines to the `[pipeline]` table (`settle = "0s"`: a what-if against the defaults),
//! the crawl and the probes run every clock second as the defaults have them (`VODPROBE_WEEK_TICKS=S`:
//! every S seconds; `coarse`: every 30 and 10, as runs before the ninth session did). `VODPROBE_WEEK_DEMAND=1`
//! steps the world alone (no appliance, seconds) and prints what its broadcasts ask for, by
//! kind, per day (also printed after a full run).
//!
//! The real daemon, in-process, against `WorldSpec::benchmark_week`: Twitch's 168,000 recordable
//! broadcasts a day divided by N, 9 % storing nothing, channels coming back about 4.5 times a
//! week, each channel's copies on its region's domain, forms about 90/9/1, restarts, 3 % quick
//! deletes, retention 7/14/60 days by channel kind, two 15–20-minute outages of the CloudFront
//! hosts a day, and the listing as today's Twitch answers it. The clock runs `SPEED` times
//! faster than real time. The request budget, the listing's pace (pages a second, Helix points)
//! and `max_queue` are divided by N and multiplied by the clock's speed, so the population's
//! demand and what it may spend shrink together; so do the health checks, a fixed cost per
//! domain, which run about every N × 5 minutes (`harness::scaled_config`).
//!
//! Scored per simulated day against the world's ground truth and the CDN's request logs, over
//! the broadcasts that started after the appliance, reached `min_viewers_record` and ended that
//! day; the run goes on `SCORING_MARGIN` past the last day so the last day's ends can conclude.

#[path = "common/crawl.rs"]
mod crawl;
#[path = "week/demand.rs"]
mod demand;
#[path = "common/harness.rs"]
mod harness;
#[path = "common/hourly.rs"]
mod hourly;
#[path = "common/scoring.rs"]
mod scoring;
#[path = "week/waits.rs"]
mod waits;

use crawl::{Passes, listing_sample, print_passes};
use demand::{KINDS, demand_kinds, pct, print_by_kind, print_demand, ratio};
use harness::{COARSE_DISCOVER, COARSE_PROBE, helix_source, proc_kib, scaled_config};
use hourly::Hourly;
use scoring::{
    Background, captured, percentile, probe_segments, probe_times, request_trail, requests_by_broadcast,
};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use vodprobe::config;
use vodprobe::daemon;
use vodprobe::record::{Status, StreamRecord};
use vodprobe::schedule::Clock;
use vodprobe::store::Store;
use vodprobe_sim::{
    DomainSpec, SimCdn, SimListing, TruthBroadcast, WEEK_RECORDABLE_PER_DAY, World, WorldSpec,
};
use waits::{Waits, print_waits, wait_sample};

/// Seven days and the margin in about 29 real minutes.
const SPEED: f64 = 360.0;
const DEFAULT_SCALE: f64 = 50.0;
const DOMAINS: usize = 12;
const DAY: i64 = 86_400;
/// The run goes on this long past the last day so its last ends can be probed (and retried).
const SCORING_MARGIN: i64 = 3 * 3600;
/// `pipeline.max_queue` at full scale (config.toml's default).
const FULL_MAX_QUEUE: f64 = 50_000.0;
/// What `track::shed_backlog` writes into a record it gives up.
const SHED_NOT_FOUND: &str = "dropped for want of budget";
const SHED_HOUR_PROBE: &str = "hour-aligned probe dropped";

fn main() {
    let days: i64 = env_number("VODPROBE_WEEK_DAYS", 7.0) as i64;
    let scale = env_number("VODPROBE_WEEK_SCALE", DEFAULT_SCALE);
    assert!((1..=7).contains(&days), "VODPROBE_WEEK_DAYS is 1 to 7");
    assert!(scale >= 1.0, "VODPROBE_WEEK_SCALE is at least 1");
    let data = tempfile::tempdir().expect("temp dir");
    let cdn = SimCdn::start((0..DOMAINS).map(|_| DomainSpec::healthy()).collect()).expect("cdn");
    let listing = SimListing::start().expect("listing");
    let start = 1_767_225_600; // 2026-01-01 00:00 UTC
    let clock = Clock::accelerated(start, SPEED);
    let mut text = scaled_config(data.path(), &listing, &cdn, DOMAINS, SPEED, scale);
    let source = std::env::var("VODPROBE_WEEK_SOURCE").unwrap_or_else(|_| "gql".to_string());
    match source.as_str() {
        "gql" => {}
        "helix" => text = helix_source(&text, &listing, SPEED, scale),
        other => panic!("VODPROBE_WEEK_SOURCE is gql or helix, not {other:?}"),
    }
    // The crawl's and the probes' ticks: every clock second, as the defaults have them, or every
    // S seconds (`VODPROBE_WEEK_TICKS=S`); `coarse` keeps the compressed day's 30 and 10, which
    // earlier sessions' week runs used (less CPU, slower to notice what is due).
    let ticks = std::env::var("VODPROBE_WEEK_TICKS").unwrap_or_else(|_| "1".to_string());
    let mut schedule = (COARSE_DISCOVER.to_string(), COARSE_PROBE.to_string());
    if ticks != "coarse" {
        let every: u32 = ticks
            .parse()
            .expect("VODPROBE_WEEK_TICKS is a number of seconds or \"coarse\"");
        let cron = if every <= 1 {
            "* * * * * *".to_string()
        } else {
            format!("*/{every} * * * * *")
        };
        text = text
            .replace(
                &format!("discover = {COARSE_DISCOVER:?}"),
                &format!("discover = {cron:?}"),
            )
            .replace(&format!("probe = {COARSE_PROBE:?}"), &format!("probe = {cron:?}"));
        schedule = (cron.clone(), cron);
    }
    let max_queue = (FULL_MAX_QUEUE / scale).round().max(1.0);
    text.push_str(&format!("\n[pipeline]\nmax_queue = {max_queue}\n"));
    // What-ifs against the contract's defaults (`settle = "0s"`), printed in the header.
    let pipeline = std::env::var("VODPROBE_WEEK_PIPELINE").unwrap_or_default();
    if !pipeline.is_empty() {
        text.push_str(&format!("{}\n", pipeline.replace("\\n", "\n")));
    }
    let config = config::parse(None, &text, &[]).expect("benchmark config is valid");
    assert_eq!(
        (&config.schedule.discover.text, &config.schedule.probe.text),
        (&schedule.0, &schedule.1),
        "the week's schedules replace the compressed day's"
    );
    let min_record = config.source.min_viewers_record;
    // Listing pages a clock second, as the daemon sees them.
    let pages_per_second = config.source.pages_per_second / SPEED;
    // Requests a clock second, as the daemon sees them.
    let budget = config.limits.requests_per_second / SPEED;
    let spec = WorldSpec::benchmark_week(start, DOMAINS, scale);
    let stop = start + days * DAY + SCORING_MARGIN;
    if std::env::var("VODPROBE_WEEK_DEMAND").is_ok_and(|v| v == "1") {
        let mut world = World::new(spec);
        let mut now = start;
        while now < stop {
            now += 600;
            world.advance(now, &listing, &cdn);
        }
        print_demand(&world.broadcasts(), start, days, config.source.min_viewers_record);
        return;
    }
    println!(
        "week of Twitch at 1/{scale}: {days} days + {} h margin, {} channels (about {:.0} recordable \
         broadcasts a day), {DOMAINS} domains, listing {source}, clock x{SPEED} ({:.1} real minutes); \
         budget {budget:.3} CDN requests per clock second, max_queue {max_queue}, health checks {:?}, \
         pipeline {pipeline:?}, discover {:?}, probe {:?}",
        SCORING_MARGIN / 3600,
        spec.channels,
        WEEK_RECORDABLE_PER_DAY / scale,
        (stop - start) as f64 / SPEED / 60.0,
        config.schedule.health.text,
        config.schedule.discover.text,
        config.schedule.probe.text
    );

    let shutdown = CancellationToken::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let api = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    api.set_nonblocking(true).expect("non-blocking");
    let health_url = format!("http://{}/healthz", api.local_addr().expect("address"));
    let daemon = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(api)?;
                daemon::run(config, clock, listener, shutdown, None)
                    .await
                    .map_err(std::io::Error::other)
            })
        })
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let mut world = World::new(spec);
    let started = Instant::now();
    let mut peak_rss = 0;
    let mut last_report = Instant::now();
    let mut last_poll = Instant::now();
    // Per day (and one more for the margin): the deepest queue seen, and the CDN's request
    // counts when the day ended (requests made that day are the differences).
    let mut queue_peak = vec![0u64; days as usize + 1];
    let mut made = vec![Made::default()];
    // Per day: the crawl's passes (complete, cut by restart_every) and the clock seconds of
    // each complete pass as sampled, to tell a listing that is read to its floor from one
    // whose tail goes unseen.
    let metrics_url = health_url.replace("/healthz", "/metrics");
    let mut passes = vec![Passes::default(); days as usize + 1];
    let mut waits = vec![Waits::default(); days as usize + 1];
    let mut last_metrics = Instant::now();
    let mut hourly = Hourly::default();
    // What stepping the world costs (it shares the cores with the appliance).
    let (mut advances, mut advancing) = (0u32, Duration::ZERO);
    while clock.now() < stop {
        let now = clock.now();
        let stepped = Instant::now();
        world.advance(now, &listing, &cdn);
        advancing += stepped.elapsed();
        advances += 1;
        let day = ((now - start) / DAY).min(days) as usize;
        if made.len() <= day {
            made.push(Made::count(&cdn));
        }
        if last_poll.elapsed() >= Duration::from_millis(250) {
            last_poll = Instant::now();
            if let Some(depth) = queue_depth(&agent, &health_url) {
                queue_peak[day] = queue_peak[day].max(depth);
            }
        }
        if last_metrics.elapsed() >= Duration::from_secs(1) {
            last_metrics = Instant::now();
            if let Some(text) = body_of(&agent, &metrics_url) {
                passes[day].add(listing_sample(&text));
                waits[day].add(wait_sample(&text));
                hourly.add(now - start, &text);
            }
        }
        peak_rss = peak_rss.max(proc_kib("/proc/self/status", "VmRSS:").unwrap_or(0));
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "  clock day {} {:>4.1} h: {} broadcasts so far, {} CDN requests, queue peak today {}",
                day + 1,
                ((now - start) % DAY) as f64 / 3600.0,
                world.broadcasts().len(),
                cdn.total_requests(),
                queue_peak[day]
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    shutdown.cancel();
    daemon.join().expect("daemon thread").expect("daemon ran");
    made.push(Made::count(&cdn));
    let wall = started.elapsed();
    let cpu = cpu_seconds();

    let store = Store::open(&data.path().join("vodprobe.redb"), 1 << 24).expect("store opens");
    let records: HashMap<(i64, u64), StreamRecord> = store
        .scan(None, usize::MAX)
        .expect("scan")
        .into_iter()
        .map(|r| (r.key(), r))
        .collect();
    let (mut requests, _) = requests_by_broadcast(&cdn, DOMAINS);
    let mut times = probe_times(&cdn, DOMAINS);
    // Segment requests before a broadcast's capture are its probes' (rebuild attempts):
    // counted with its requests, and taken out of the day's background.
    let mut captured_at: HashMap<(String, u64), i64> = HashMap::new();
    for record in records.values() {
        let at = record
            .probe
            .captured_at
            .or(record.archive.as_ref().map(|archive| archive.fetched_at));
        if let Some(at) = at {
            let entry = captured_at
                .entry((record.login.clone(), record.stream_id))
                .or_insert(at);
            *entry = (*entry).min(at);
        }
    }
    let mut probe_segments_by_day = vec![0usize; days as usize + 1];
    let mut segment_names: HashMap<String, usize> = HashMap::new();
    for (login, id, at, path) in probe_segments(&cdn, DOMAINS, &captured_at) {
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        *segment_names.entry(name).or_default() += 1;
        let day = ((at - start).max(0) / DAY).min(days) as usize;
        probe_segments_by_day[day] += 1;
        requests.entry((login.clone(), id)).or_default().push(path);
        times.entry((login, id)).or_default().push(at);
    }
    let mut names: Vec<_> = segment_names.into_iter().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.1));
    names.truncate(6);
    println!(
        "\nsegment requests of probes before a capture (rebuild attempts), per day: {:?}; most asked: {names:?}",
        &probe_segments_by_day[..days as usize]
    );
    let truth = world.broadcasts();
    println!(
        "\nscored per day: broadcasts that started after the appliance, peaked at >= {min_record} viewers \
         and ended that day; requests are those of the day's recordable streams (restarted halves once), \
         background and health checks counted apart by when they were made (a probe's segment \
         requests before the broadcast's capture, rebuild attempts, count as the broadcast's)\n"
    );
    println!(
        "| day | recordable | stored captured | quick deletes captured | CDN req / recordable stream | \
         per captured | per nothing stored | background (quality + segment) | health checks | \
         CDN req made / day's budget | queue peak | shed | end → capture p50 / p99 | \
         per stream: live / end / after the hour | muted captures holding the muted playlist |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let kinds = demand_kinds(&truth, start, min_record);
    let run = Run {
        truth: &truth,
        kinds: &kinds,
        records: &records,
        requests: &requests,
        times: &times,
        made: &made,
        probe_segments_by_day: &probe_segments_by_day,
        queue_peak: &queue_peak,
        min_record,
        start,
        budget_per_day: budget * DAY as f64,
    };
    let mut missed = Vec::new();
    let mut pooled = Vec::new();
    let mut lost = Vec::new();
    let mut unhinted = Vec::new();
    for day in 0..days {
        let label = match day {
            0 => "1 (cold)".to_string(),
            d => (d + 1).to_string(),
        };
        let row = run.row(&label, day..day + 1);
        if day == 0 {
            pooled.push(("1 (cold)", row.by_kind));
            lost.push(("1 (cold)", row.lost.clone()));
        }
        missed.extend(
            row.missed
                .into_iter()
                .take(3)
                .chain(row.muted_missed.into_iter().take(3))
                .chain(std::iter::once(format!(
                    "hinted captures by requests up to the capture: {:?}",
                    row.hinted_costs
                )))
                .chain(std::iter::once(format!(
                    "another video names the domain, by (captured, all requests): {:?}",
                    row.hinted_totals
                )))
                .chain(std::iter::once(format!(
                    "captures, end → first request p50 / p90 {} / {} s, first request → capture \
                     p50 / p90 {} / {} s",
                    percentile(&row.waits.0, 0.5),
                    percentile(&row.waits.0, 0.9),
                    percentile(&row.waits.1, 0.5),
                    percentile(&row.waits.1, 0.9)
                )))
                .chain(row.hinted_examples)
                .map(|m| format!("day {}: {m}", day + 1)),
        );
    }
    // The days README's table reports, pooled: the targets are for the warm days 5–7.
    for (label, days_pooled) in [("2–4", 1..4), ("5–7 (warm)", 4..7)] {
        if days_pooled.end <= days {
            let row = run.row(label, days_pooled);
            pooled.push((label, row.by_kind));
            lost.push((label, row.lost));
            unhinted.push((label, row.unhinted));
        }
    }
    print_by_kind(&pooled);
    print_passes(&passes, days, pages_per_second);
    print_waits(&waits, days);
    // The first day and the last whole one, hour by hour.
    let mut shown = vec![1, days as usize];
    shown.dedup();
    hourly.print(&shown);
    for (label, lost) in lost {
        let mut causes: Vec<((usize, String), usize)> = lost.into_iter().collect();
        causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        println!(
            "\nstored broadcasts not captured, days {label}, by kind and what their record says (top 12)"
        );
        for ((kind, cause), count) in causes.into_iter().take(12) {
            println!("  {count:>6}  {}: {cause}", KINDS[kind]);
        }
    }
    for (label, spent) in unhinted {
        let mut causes: Vec<((usize, String), (usize, usize))> = spent.into_iter().collect();
        causes.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));
        println!(
            "\nbroadcasts without a video naming the domain, days {label}, by kind and what their record \
             says (top 16 by requests): broadcasts, probe requests"
        );
        for ((kind, cause), (count, sent)) in causes.into_iter().take(16) {
            println!("  {count:>6} {sent:>6}  {}: {cause}", KINDS[kind]);
        }
    }
    println!(
        "(margin, {} h past the last day: queue peak {})",
        SCORING_MARGIN / 3600,
        queue_peak[days as usize]
    );
    for line in missed {
        println!("  missed: {line}");
    }
    print_demand(&truth, start, days, min_record);
    let captures = records.values().filter(|r| r.status == Status::Found).count();
    println!(
        "World::advance: {advances} calls, {:.2} ms each on average ({:.1} % of the wall time)",
        advancing.as_secs_f64() * 1000.0 / f64::from(advances.max(1)),
        100.0 * advancing.as_secs_f64() / wall.as_secs_f64()
    );
    println!(
        "wall time {:.1} min ({:.2} cores busy on average: appliance, simulators and bench); \
         peak RSS {} MiB; database {} KiB; {captures} captures",
        wall.as_secs_f64() / 60.0,
        cpu / wall.as_secs_f64(),
        peak_rss / 1024,
        store.file_size() / 1024
    );
}

fn env_number(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name} is a number, not {text:?}")),
        Err(_) => default,
    }
}

/// The body of a GET (`/metrics`, `/healthz`).
fn body_of(agent: &ureq::Agent, url: &str) -> Option<String> {
    agent.get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// The appliance's probe queue as `/healthz` reports it; None when it did not answer.
fn queue_depth(agent: &ureq::Agent, url: &str) -> Option<u64> {
    let text = body_of(agent, url)?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["queue_depth"].as_u64()
}

/// User and system CPU seconds of this process so far (`/proc/self/stat`, 100 ticks a second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The CDN's request counts at one moment: every request, and the background ones by kind.
#[derive(Clone, Copy, Default)]
struct Made {
    total: usize,
    background: Background,
}

impl Made {
    fn count(cdn: &SimCdn) -> Made {
        Made {
            total: cdn.total_requests(),
            background: requests_by_broadcast(cdn, DOMAINS).1,
        }
    }

    fn since(&self, earlier: &Made) -> Made {
        Made {
            total: self.total - earlier.total,
            background: Background {
                qualities: self.background.qualities - earlier.background.qualities,
                segments: self.background.segments - earlier.background.segments,
                health: self.background.health - earlier.background.health,
            },
        }
    }
}

/// What a run left to score: the truth, the store, the CDN's logs and what was sampled per day.
struct Run<'a> {
    truth: &'a [TruthBroadcast],
    /// What each recordable broadcast asks for ([`demand_kinds`]).
    kinds: &'a HashMap<(i64, u64), (usize, bool)>,
    records: &'a HashMap<(i64, u64), StreamRecord>,
    requests: &'a HashMap<(String, u64), Vec<String>>,
    /// When each probe request arrived, per broadcast.
    times: &'a HashMap<(String, u64), Vec<i64>>,
    /// CDN request counts at the start of each day (and at the stop).
    made: &'a [Made],
    /// Per day, the segment requests of probes (rebuild attempts before a capture), which
    /// `made` counts as background.
    probe_segments_by_day: &'a [usize],
    queue_peak: &'a [u64],
    min_record: u32,
    start: i64,
    budget_per_day: f64,
}

impl Run<'_> {
    /// Scores and prints the table row of `days` (0-based, pooled when more than one).
    fn row(&self, label: &str, days: std::ops::Range<i64>) -> DayRow {
        let (from, to) = (self.start + days.start * DAY, self.start + days.end * DAY);
        let scored: Vec<&TruthBroadcast> = self
            .truth
            .iter()
            .filter(|b| {
                b.listed_start >= self.start
                    && b.peak_viewers >= self.min_record
                    && b.ended_at.is_some_and(|e| (from..to).contains(&e))
            })
            .collect();
        let row = score_day(&scored, self.records, self.requests, self.times, self.kinds);
        let (first, last) = (days.start as usize, days.end as usize);
        let mut spent = self.made[last].since(&self.made[first]);
        let probe_segments = self.probe_segments_by_day[first..last].iter().sum::<usize>();
        spent.background.segments = spent.background.segments.saturating_sub(probe_segments);
        let budget = self.budget_per_day * (last - first) as f64;
        let queue_peak = self.queue_peak[first..last].iter().max().copied().unwrap_or(0);
        println!(
            "| {label} | {} | {} / {} = {:.2} % | {} / {} = {:.1} % | {:.2} | {:.2} | {:.1} | {} + {} | {} | \
             {} / {:.0} = {:.0} % | {queue_peak} | {} ({} stored; {} hour probes) | {} s / {} s | \
             {:.2} / {:.2} / {:.2} | {} / {} |",
            row.recordable,
            row.captured,
            row.stored,
            pct(row.captured, row.stored),
            row.deletes_captured,
            row.deletes,
            pct(row.deletes_captured, row.deletes),
            ratio(row.requests, row.streams),
            ratio(row.captured_requests, row.captured_streams),
            ratio(row.nothing_requests, row.nothing_streams),
            spent.background.qualities,
            spent.background.segments,
            spent.background.health,
            spent.total,
            budget,
            100.0 * spent.total as f64 / budget,
            row.shed,
            row.shed_stored,
            row.hour_shed,
            percentile(&row.delays, 0.5),
            percentile(&row.delays, 0.99),
            ratio(row.phases[0], row.streams),
            ratio(row.phases[1], row.streams),
            ratio(row.phases[2], row.streams),
            row.muted_recorded,
            row.muted,
        );
        row
    }
}

/// One row's figures: a day, or days pooled.
#[derive(Default)]
struct DayRow {
    recordable: usize,
    stored: usize,
    captured: usize,
    deletes: usize,
    deletes_captured: usize,
    /// Distinct streams (a restart's two halves share an id and their requests) and their
    /// probe requests: all, the captured ones', and those storing nothing.
    streams: usize,
    requests: usize,
    captured_streams: usize,
    captured_requests: usize,
    nothing_streams: usize,
    nothing_requests: usize,
    /// Given up because the queue was over `max_queue`: broadcasts concluded not_found (and how
    /// many of them were stored), and captures whose hour-aligned re-probe was cancelled.
    shed: usize,
    shed_stored: usize,
    hour_shed: usize,
    delays: Vec<i64>,
    /// Captures after the end: end → the first request after it, and that request → capture.
    waits: (Vec<i64>, Vec<i64>),
    missed: Vec<String>,
    muted_missed: Vec<String>,
    /// Captured hinted searches (another video names the domain) by requests up to the
    /// capture (7: seven or more), and a few of the costly ones with what they asked.
    hinted_costs: std::collections::BTreeMap<usize, usize>,
    /// Every broadcast whose channel's other videos name the domain, by whether it was
    /// captured and all its requests (capped at 30): where that kind's requests go.
    hinted_totals: std::collections::BTreeMap<(bool, usize), usize>,
    hinted_examples: Vec<String>,
    /// Probe requests made while live, between the end and the next hour boundary (the end
    /// probe and its quick retries), and after it (the hour-aligned re-fetch, later retries).
    phases: [usize; 3],
    /// Per [`KINDS`]: broadcasts, captured, shed, distinct streams, their probe requests, and
    /// those made after the hour.
    by_kind: [[usize; 7]; 5],
    /// Stored broadcasts not captured, per [`KINDS`] index and what their record says.
    lost: HashMap<(usize, String), usize>,
    /// Broadcasts without a video of their own or of their channel's (the costly kinds), per
    /// [`KINDS`] index and what their record says: how many, and their probe requests.
    unhinted: HashMap<(usize, String), (usize, usize)>,
    /// Captures the mute pass muted, and those whose record holds the muted playlist (the
    /// hour-aligned copy the pipeline promises where Twitch mutes).
    muted: usize,
    muted_recorded: usize,
}

fn score_day(
    scored: &[&TruthBroadcast],
    records: &HashMap<(i64, u64), StreamRecord>,
    requests: &HashMap<(String, u64), Vec<String>>,
    times: &HashMap<(String, u64), Vec<i64>>,
    kinds: &HashMap<(i64, u64), (usize, bool)>,
) -> DayRow {
    // A restart's halves share an id and their requests: counted once.
    let mut seen = HashSet::new();
    let mut row = DayRow {
        recordable: scored.len(),
        ..DayRow::default()
    };
    for b in scored {
        let record = records.get(&(b.listed_start, b.stream_id));
        let kind = kinds.get(&(b.listed_start, b.stream_id)).map(|k| k.0);
        let mut by_kind = [0usize; 7];
        let error = record.and_then(|r| r.probe.last_error.as_deref()).unwrap_or("");
        if error.contains(SHED_NOT_FOUND) {
            row.shed += 1;
            row.shed_stored += usize::from(b.path_ts.is_some());
            by_kind[2] += 1;
        }
        by_kind[0] += 1;
        row.hour_shed += usize::from(error.contains(SHED_HOUR_PROBE));
        let stored = b.path_ts.is_some();
        let got = stored && captured(record);
        if stored {
            row.stored += 1;
            row.captured += usize::from(got);
            by_kind[1] += usize::from(got);
            if b.deleted_at.is_some() {
                row.deletes += 1;
                row.deletes_captured += usize::from(got);
            }
            if let (Some(at), Some(end)) = (record.and_then(|r| r.probe.captured_at), b.ended_at) {
                row.delays.push(at - end);
                let asked = times.get(&(b.login.clone(), b.stream_id));
                if let Some(first) = asked.and_then(|t| t.iter().copied().filter(|&t| t >= end).min())
                    && first <= at
                {
                    row.waits.0.push(first - end);
                    row.waits.1.push(at - first);
                }
            }
            if let (true, Some(muted_at), Some(r)) = (got, b.muted_at, record) {
                row.muted += 1;
                let archive = r.archive.as_ref();
                if archive.is_some_and(|a| a.muted_segments > 0) {
                    row.muted_recorded += 1;
                } else {
                    row.muted_missed.push(format!(
                        "muted copy not recorded: {} {} (video {}, public {}): fetched {} s after the \
                         mute pass, hour probe done {}, {} probes, last error {:?}",
                        b.login,
                        b.stream_id,
                        b.has_video,
                        b.public,
                        archive.map_or(0, |a| a.fetched_at - muted_at),
                        r.probe.hour_probe_done,
                        r.probe.probes,
                        r.probe.last_error
                    ));
                }
            }
            if !got {
                let state = record.map_or("no record".to_string(), |r| {
                    format!("{} {:?}", r.status.as_str(), r.probe.last_error)
                });
                if let Some(kind) = kind {
                    let deleted = if b.deleted_at.is_some() {
                        "quick delete, "
                    } else {
                        ""
                    };
                    let mut cause: String = state.chars().take(70).collect();
                    if record.is_none() {
                        // Never recorded: how long it lasted and how many watched, from the truth.
                        let minutes = b.ended_at.map_or(0, |e| (e - b.listed_start) / 60);
                        let length = match minutes {
                            ..10 => "< 10 min",
                            10..30 => "10–30 min",
                            30..120 => "30–120 min",
                            _ => ">= 2 h",
                        };
                        let peak = match b.peak_viewers {
                            ..15 => "peak 10–14",
                            15..50 => "peak 15–49",
                            _ => "peak >= 50",
                        };
                        let restart = if b.restarted {
                            ", a restart's second part"
                        } else {
                            ""
                        };
                        cause = format!("{cause} ({length}, {peak}{restart})");
                    }
                    *row.lost.entry((kind, format!("{deleted}{cause}"))).or_default() += 1;
                }
                row.missed.push(format!(
                    "{} {} ({}, domain {:?}, deleted {:?} s after the end): {state}",
                    b.login,
                    b.stream_id,
                    b.form,
                    b.domain,
                    b.deleted_at.zip(b.ended_at).map(|(d, e)| d - e)
                ));
            }
        }
        let first = seen.insert((b.login.clone(), b.stream_id));
        if first {
            by_kind[3] += 1;
            by_kind[4] = requests.get(&(b.login.clone(), b.stream_id)).map_or(0, Vec::len);
            if kind == Some(1) {
                *row.hinted_totals.entry((got, by_kind[4].min(30))).or_default() += 1;
                // A hinted broadcast never captured that still cost a search of every domain:
                // what was asked, where, and when after the end.
                if !got && by_kind[4] >= 20 && row.hinted_examples.len() < 6 {
                    let key = (b.login.clone(), b.stream_id);
                    let asked = requests.get(&key).map_or(&[][..], Vec::as_slice);
                    let when = times.get(&key).map_or(&[][..], Vec::as_slice);
                    let end = b.ended_at.unwrap_or(0);
                    row.hinted_examples.push(format!(
                        "uncaptured {} {} (form {}, domain {:?}, deleted {:?} s after the end; record {:?} {:?}): {} requests: {}",
                        b.login,
                        b.stream_id,
                        b.form,
                        b.domain,
                        b.deleted_at.map(|d| d - end),
                        record.map(|r| r.status),
                        record.and_then(|r| r.probe.last_error.clone()),
                        asked.len(),
                        request_trail(asked, when, end)
                    ));
                }
            }
            if let Some(end) = b.ended_at {
                let hour = (end.div_euclid(3600) + 1) * 3600;
                let captured_at = record.and_then(|r| r.probe.captured_at);
                if let (Some(1), Some(c)) = (kind, captured_at) {
                    // A hinted search: how many requests the capture took, and what they asked.
                    let before = times
                        .get(&(b.login.clone(), b.stream_id))
                        .map_or(0, |t| t.iter().filter(|&&at| at <= c).count());
                    *row.hinted_costs.entry(before.min(7)).or_default() += 1;
                    if before >= 4 && row.hinted_examples.len() < 3 {
                        let asked = requests
                            .get(&(b.login.clone(), b.stream_id))
                            .cloned()
                            .unwrap_or_default();
                        row.hinted_examples.push(format!(
                            "{} {} (form {}, domain {:?}, ended {:?}, captured {c}): {} requests before the capture: {}",
                            b.login,
                            b.stream_id,
                            b.form,
                            b.domain,
                            b.ended_at,
                            before,
                            asked.join(" ")
                        ));
                    }
                }
                for &at in times.get(&(b.login.clone(), b.stream_id)).into_iter().flatten() {
                    row.phases[usize::from(at >= end) + usize::from(at >= hour)] += 1;
                    by_kind[5] += usize::from(at >= hour);
                    // After the capture: re-fetches (hour-aligned, final) of what is stored.
                    by_kind[6] += usize::from(captured_at.is_some_and(|c| at > c));
                }
            }
        }
        if let Some(kind) = kind {
            for (total, add) in row.by_kind[kind].iter_mut().zip(by_kind) {
                *total += add;
            }
        }
        if !first {
            continue;
        }
        let sent = by_kind[4];
        if let Some(kind @ 2..) = kind {
            let state = record.map_or("no record".to_string(), |r| {
                let error: String = r
                    .probe
                    .last_error
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .take(60)
                    .collect();
                format!("{} {error}", r.status.as_str())
            });
            let entry = row.unhinted.entry((kind, state)).or_default();
            entry.0 += 1;
            entry.1 += sent;
        }
        row.streams += 1;
        row.requests += sent;
        if got {
            row.captured_streams += 1;
            row.captured_requests += sent;
        } else if !stored {
            row.nothing_streams += 1;
            row.nothing_requests += sent;
        }
    }
    row.delays.sort_unstable();
    row.waits.0.sort_unstable();
    row.waits.1.sort_unstable();
    row
}
