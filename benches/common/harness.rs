//! What several benchmarks share besides the corpus: the compressed day's configuration and a
//! process's memory read from `/proc`.

#![allow(dead_code)]

use std::path::Path;
use vodprobe_sim::{SimCdn, SimListing};

/// The configuration of the compressed day (`WorldSpec::benchmark_day`) on a clock `speed`
/// times faster than real time. Durations in the config are clock time, so the pipeline's
/// thresholds scale with the clock; the request budget and the timeouts, which are real time,
/// are scaled by the same factor.
pub fn day_config(data_dir: &Path, listing: &SimListing, cdn: &SimCdn, domains: usize, speed: f64) -> String {
    let mut text = format!(
        "data_dir = {data:?}\n\
         [source]\ngql_url = \"{gql}\"\npages_per_second = {pages}\n\
         [schedule]\ndiscover = \"*/30 * * * * *\"\nprobe = \"*/10 * * * * *\"\nhealth = \"0 */5 * * * *\"\nprune = \"0 0 * * * *\"\n\
         [limits]\nrequests_per_second = {rate}\nconnect_timeout = \"{timeout}ms\"\nrequest_timeout = \"{timeout}ms\"\n",
        data = data_dir.display().to_string(),
        gql = listing.gql_url(),
        pages = 3.0 * speed,
        rate = 3.0 * speed,
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
