//! `vodprobe domains`: check every configured domain now and print one line per domain.

use super::{ConfigArg, Exit, load_config};
use vodprobe::budget::Budget;
use vodprobe::fetch::{FetchSettings, Fetcher};
use vodprobe::search::check_domains;

pub fn run(args: ConfigArg) -> Exit {
    let Some(config) = load_config(args.config.as_deref()) else {
        return Exit::Error;
    };
    let fetcher = Fetcher::new(FetchSettings::from_limits(&config.limits));
    let budget = Budget::immediate(config.limits.lookup_requests_per_second);
    let results = check_domains(&config, &fetcher, &budget);
    let width = results
        .iter()
        .map(|r| r.domain_url.len())
        .max()
        .unwrap_or(6)
        .max(6);
    println!(
        "{:<width$}  {:<12}  {:<8}  {:>8}  DETAIL",
        "DOMAIN", "PROBE", "STATUS", "LATENCY"
    );
    for result in &results {
        let status = match (result.enabled, result.ok) {
            (false, _) => "disabled",
            (true, true) => "ok",
            (true, false) => "FAILED",
        };
        let latency = result
            .latency
            .map_or_else(|| "-".to_string(), |l| format!("{}ms", l.as_millis()));
        println!(
            "{:<width$}  {:<12}  {:<8}  {:>8}  {}",
            result.domain_url, result.probe, status, latency, result.detail
        );
    }
    let failed = results.iter().filter(|r| r.enabled && !r.ok).count();
    if failed > 0 {
        eprintln!(
            "{failed} domain(s) failed; a lookup skips a failing domain after its first failure. \
             Disable dead domains in config.toml with `enabled = false`."
        );
        Exit::No
    } else {
        Exit::Success
    }
}
