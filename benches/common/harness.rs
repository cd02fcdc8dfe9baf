//! What several benchmarks share besides the corpus: the compressed day's configuration (scaled
//! down for the week), the Helix source, and a process's memory read from `/proc`.

#![allow(dead_code)]

use std::path::Path;
use vodprobe_sim::{SimCdn, SimListing};

/// The compressed day's crawl and probe schedules (clock time): coarser than the defaults'
/// every second, which on a clock 180 times faster would cost CPU the day does not need. The
/// week swaps them for the defaults' (`VODPROBE_WEEK_TICKS`).
pub const COARSE_DISCOVER: &str = "*/30 * * * * *";
pub const COARSE_PROBE: &str = "*/10 * * * * *";

/// Minutes between health checks of every domain at full scale (`schedule.health`).
pub const HEALTH_MINUTES: u32 = 5;

/// The configuration of the compressed day (`WorldSpec::benchmark_day`) on a clock `speed`
/// times faster than real time. Durations in the config are clock time, so the pipeline's
/// thresholds scale with the clock; the request budget and the timeouts, which are real time,
/// are scaled by the same factor.
pub fn day_config(data_dir: &Path, listing: &SimListing, cdn: &SimCdn, domains: usize, speed: f64) -> String {
    scaled_config(data_dir, listing, cdn, domains, speed, 1.0)
}

/// [`day_config`] for a population `scale` (N) times smaller than Twitch's: the request budget
/// and the listing's pace are divided by N. So are the health checks, a fixed cost per domain
/// that would otherwise take more than the whole budget (12 domains every 5 minutes is 1.3 %
/// of 3 requests a second, 130 % of it at N = 100): they run about every N × 5 minutes
/// ([`health_cron`]), keeping their share.
pub fn scaled_config(
    data_dir: &Path,
    listing: &SimListing,
    cdn: &SimCdn,
    domains: usize,
    speed: f64,
    scale: f64,
) -> String {
    let mut text = format!(
        "data_dir = {data:?}\n\
         [source]\ngql_url = \"{gql}\"\npages_per_second = {pages}\n\
         [schedule]\ndiscover = {COARSE_DISCOVER:?}\nprobe = {COARSE_PROBE:?}\nhealth = \"{health}\"\nprune = \"0 0 * * * *\"\n\
         [limits]\nrequests_per_second = {rate}\nconnect_timeout = \"{timeout}ms\"\nrequest_timeout = \"{timeout}ms\"\n",
        data = data_dir.display().to_string(),
        gql = listing.gql_url(),
        pages = 3.0 * speed / scale,
        health = health_cron(f64::from(HEALTH_MINUTES) * scale),
        rate = 3.0 * speed / scale,
        timeout = ((10_000.0 / speed) as u64).max(100),
    );
    for domain in 0..domains {
        text.push_str(&format!(
            "\n[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
            cdn.base_url(domain)
        ));
    }
    text
}

/// A cron expression running evenly about every `minutes` (the nearest interval a cron
/// expression can keep even within a day: 5 to 30 minutes, or 1 to 24 hours).
pub fn health_cron(minutes: f64) -> String {
    const EVEN: [u32; 13] = [5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440];
    let nearest = EVEN
        .iter()
        .copied()
        .min_by(|a, b| {
            (f64::from(*a) - minutes)
                .abs()
                .total_cmp(&(f64::from(*b) - minutes).abs())
        })
        .unwrap_or(HEALTH_MINUTES);
    match nearest {
        m if m < 60 => format!("0 */{m} * * * *"),
        1440 => "0 0 0 * * *".to_string(),
        m => format!("0 0 */{} * * *", m / 60),
    }
}

/// `text` (from [`scaled_config`]) listing through Helix with client credentials, and the
/// listing's point budget set to Twitch's 800 a minute, divided by N, in clock time.
pub fn helix_source(text: &str, listing: &SimListing, speed: f64, scale: f64) -> String {
    listing.set_helix_points((800.0 * speed / scale).max(1.0) as u32);
    text.replacen(
        "[source]\n",
        &format!(
            "[source]\nkind = \"helix\"\nhelix_url = \"{}\"\ntoken_url = \"{}\"\nclient_secret = \"s3cret\"\n",
            listing.helix_url(),
            listing.token_url()
        ),
        1,
    )
}

/// A field of `/proc/<pid>/status` in KiB, such as `VmRSS:` or `VmHWM:`.
pub fn proc_kib(path: &str, field: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
