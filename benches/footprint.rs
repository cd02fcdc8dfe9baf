//! The appliance's memory while it captures: `cargo bench --bench footprint` (about 5 minutes).
//!
//! Starts the real `vodprobe serve` as its own process (this build's, or another named by
//! `VODPROBE_BENCH_BIN`, such as a static musl build) with the default cache and limits, so its
//! RSS is its own and not the simulators'. First it idles against an empty live listing; then
//! the world of the `day` benchmark (2,000 channels, 12 domains, restarts, quick deletes, a
//! 20-minute blackhole outage of 9 domains seven hours in) runs for 12 simulated hours on a
//! clock 180 times faster than real time — about a thousand broadcasts ending and captured at
//! several a second, a far denser burst than a real box sees. The server's clock is started at
//! the world's with the hidden `--clock-start`/`--clock-speed` flags; the request budget and
//! timeouts are scaled as in `day`. RSS is sampled every 20 ms.

#[path = "common/harness.rs"]
mod harness;

use harness::{day_config, proc_kib};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vodprobe::record::Status;
use vodprobe::schedule::Clock;
use vodprobe::store::Store;
use vodprobe_sim::{DomainSpec, SimCdn, SimListing, World, WorldSpec};

const SPEED: f64 = 180.0;
const DOMAINS: usize = 12;
const CHANNELS: usize = 2000;
const HOURS: i64 = 12;
const IDLE: Duration = Duration::from_secs(5);

fn main() {
    let binary = std::env::var_os("VODPROBE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vodprobe")));
    let data = tempfile::tempdir().expect("temp dir");
    let cdn = SimCdn::start((0..DOMAINS).map(|_| DomainSpec::healthy()).collect()).expect("cdn");
    let listing = SimListing::start().expect("listing");
    let text =
        day_config(data.path(), &listing, &cdn, DOMAINS, SPEED) + "\n[api]\nlisten = \"127.0.0.1:0\"\n";
    let config = data.path().join("config.toml");
    std::fs::write(&config, text).expect("config");

    let start = 1_767_225_600; // 2026-01-01 00:00 UTC
    let clock = Clock::accelerated(start, SPEED);
    let mut child = Command::new(&binary)
        .args(["serve", "--config"])
        .arg(&config)
        .args([
            "--clock-start",
            &start.to_string(),
            "--clock-speed",
            &SPEED.to_string(),
        ])
        .env("VODPROBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vodprobe serve");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ERROR") {
                eprintln!("serve: {line}");
            }
        }
    });
    let status = format!("/proc/{}/status", child.id());
    println!("server: {}", binary.display());
    println!(
        "{CHANNELS} channels, {DOMAINS} domains, {HOURS} simulated hours at x{SPEED} ({:.1} real minutes)",
        (HOURS * 3600) as f64 / SPEED / 60.0
    );

    // Idle: the daemon runs its schedule against a listing with nobody live.
    let idle_started = Instant::now();
    let mut idle = Vec::new();
    while idle_started.elapsed() < IDLE {
        idle.extend(proc_kib(&status, "VmRSS:"));
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut world = World::new(WorldSpec::benchmark_day(start, DOMAINS, CHANNELS));
    let mut busy = Vec::new();
    let mut last_advance = Instant::now() - Duration::from_secs(1);
    let mut last_report = Instant::now();
    let end = start + HOURS * 3600;
    while clock.now() < end {
        if last_advance.elapsed() >= Duration::from_millis(50) {
            world.advance(clock.now(), &listing, &cdn);
            last_advance = Instant::now();
        }
        busy.extend(proc_kib(&status, "VmRSS:"));
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "  clock {:>4.1} h, RSS {:.1} MiB, {} broadcasts so far",
                (clock.now() - start) as f64 / 3600.0,
                busy.last().copied().unwrap_or(0) as f64 / 1024.0,
                world.broadcasts().len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let hwm = proc_kib(&status, "VmHWM:").unwrap_or(0);
    // SIGTERM, as systemd stops it; the store must then open with every capture in it.
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let exit = child.wait().expect("wait for serve");
    assert!(exit.success(), "serve exited {exit} after SIGTERM");
    let stop_secs = stopped.elapsed().as_secs_f64();

    let store = Store::open(&data.path().join("vodprobe.redb"), 1 << 24).expect("store opens");
    let records = store.scan(None, usize::MAX).expect("scan");
    let captured = records.iter().filter(|r| r.status == Status::Found).count();
    let cdn_requests: usize = (0..DOMAINS).map(|d| cdn.requests(d).len()).sum();

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "idle ({:.0} s, empty listing): RSS p50 {:.1} MiB, max {:.1} MiB",
        IDLE.as_secs_f64(),
        mib(percentile(&mut idle, 0.5)),
        mib(percentile(&mut idle, 1.0))
    );
    println!(
        "capturing: {} broadcasts seen, {captured} captured, {cdn_requests} CDN requests; \
         RSS p50 {:.1} MiB, p99 {:.1} MiB, max sampled {:.1} MiB, high-water mark {:.1} MiB",
        records.len(),
        mib(percentile(&mut busy, 0.5)),
        mib(percentile(&mut busy, 0.99)),
        mib(percentile(&mut busy, 1.0)),
        mib(hwm)
    );
    println!(
        "stopped on SIGTERM in {stop_secs:.1} s; database {:.1} MiB on disk",
        mib(store.file_size() / 1024)
    );
}

fn percentile(samples: &mut [u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}
