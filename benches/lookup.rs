//! Lookup benchmark: `cargo bench --bench lookup`.
//!
//! Twelve simulated domains, three of them faulty (503, blackhole, slow trickle), the broadcast
//! on one healthy domain with the `unix-1` form; default limits (20 requests/s for a lookup,
//! 5 s connect and 10 s request timeouts). Prints, for exact-second and whole-minute input and
//! for a broadcast that does not exist: requests sent, wall time, found or not, and checks the
//! politeness bounds (no URL twice, one request per faulty domain).

use std::collections::HashSet;
use std::time::Instant;
use vodprobe::config::{self, EMBEDDED_CONFIG};
use vodprobe::fetch::{FetchSettings, Fetcher};
use vodprobe::search::{SearchLimits, SearchRequest, lookup};
use vodprobe::time_input::parse_time;
use vodprobe_sim::{Broadcast, DomainSpec, Fault, SimCdn};

const DOMAINS: usize = 12;
const FAULTY: [(usize, Fault); 3] = [
    (1, Fault::Unavailable),
    (4, Fault::Blackhole),
    (7, Fault::SlowTrickle),
];
/// The healthy domain that holds the broadcast: late in the list, so most domains are searched.
const HOLDER: usize = 10;
const START: i64 = 1_664_038_929;

fn main() {
    let specs = (0..DOMAINS)
        .map(|domain| DomainSpec {
            prefix: String::new(),
            fault: FAULTY
                .iter()
                .find(|(index, _)| *index == domain)
                .map_or(Fault::None, |(_, fault)| fault.clone()),
        })
        .collect();
    let cdn = SimCdn::start(specs).expect("simulator starts");
    cdn.add_broadcast(Broadcast::new(
        "benchmark",
        47_198_535_725,
        &(START - 1).to_string(),
        vec![HOLDER],
    ));

    // The embedded defaults with the simulated domains in place of Twitch's.
    let mut text = EMBEDDED_CONFIG[..EMBEDDED_CONFIG.find("\n[[domain]]").expect("domains")].to_string();
    for domain in 0..DOMAINS {
        text.push_str(&format!(
            "\n[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n\n",
            cdn.base_url(domain)
        ));
    }
    let config = config::parse(None, &text, &[]).expect("benchmark config is valid");
    let limits = SearchLimits::from_config(&config);
    println!(
        "lookup benchmark: {DOMAINS} domains ({} faulty: 503, blackhole, slow trickle), {} requests/s, \
         request timeout {:?}",
        FAULTY.len(),
        limits.requests_per_second,
        config.limits.request_timeout
    );
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>10} {:>12}",
        "case", "found", "requests", "seconds", "bound", "bounds held"
    );
    let cases = [
        (
            "exact second (unix-1 form)",
            "benchmark",
            "2022-09-24 17:02:09",
            36,
        ),
        (
            "whole minute (unix-1 form)",
            "benchmark",
            "2022-09-24 17:02",
            61 * 9 + 3,
        ),
        (
            "exact second, does not exist",
            "nobody",
            "2022-09-24 17:02:09",
            36,
        ),
        (
            "whole minute, does not exist",
            "nobody",
            "2022-09-24 17:02",
            121 * 9 + 3,
        ),
    ];
    for (name, login, time, bound) in cases {
        cdn.clear_requests();
        let fetcher = Fetcher::new(FetchSettings::from_limits(&config.limits));
        let request = SearchRequest {
            login: login.to_string(),
            stream_id: 47_198_535_725,
            time: parse_time(time).expect("valid time"),
            window_minutes: 0,
            all_domains: false,
        };
        let started = Instant::now();
        let outcome = lookup(&config, &fetcher, &request, limits, |_| {}).expect("lookup runs");
        let seconds = started.elapsed().as_secs_f64();
        let mut bounds_held = outcome.requests <= bound;
        for domain in 0..DOMAINS {
            let paths = cdn.requests(domain);
            let unique: HashSet<&String> = paths.iter().collect();
            bounds_held &= unique.len() == paths.len();
            if FAULTY.iter().any(|(index, _)| *index == domain) {
                bounds_held &= paths.len() <= 1;
            }
        }
        println!(
            "{name:<34} {:>6} {:>9} {:>9.2} {:>10} {:>12}",
            if outcome.found.is_some() { "yes" } else { "no" },
            outcome.requests,
            seconds,
            format!("<= {bound}"),
            if bounds_held { "yes" } else { "NO" }
        );
    }
    println!("bounds: no URL asked twice, at most one request per faulty domain, requests within the bound");
}
