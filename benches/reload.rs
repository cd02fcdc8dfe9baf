//! Live reload latency: `cargo bench --bench reload` (about a minute).
//!
//! Runs the real `vodprobe serve` with a config file in a temporary directory, then saves 50
//! edits in each way editors save (in place, rename over, `sed -i`, delete and recreate, a
//! burst of partial writes). Each edit rotates `api.admin_token`; the time measured runs from
//! the end of the save to the first admin request the new token opens (polled every 2 ms over
//! a keep-alive connection). Prints median and max per style, edits never applied (missed),
//! refused reloads, and whether the process survived.

#[path = "../tests/editors.rs"]
mod editors;

use editors::{STYLES, save};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vodprobe_sim::{DomainSpec, SimCdn, SimListing};

const EDITS: usize = 50;
/// An edit not in force after this long counts as missed.
const GIVE_UP: Duration = Duration::from_secs(10);

fn config(listing: &SimListing, cdn: &SimCdn, token: &str) -> String {
    format!(
        "data_dir = \"data\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"{token}\"\n\
         [source]\ngql_url = \"{}\"\n\
         [[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
        listing.gql_url(),
        cdn.base_url(0),
    )
}

fn status(agent: &ureq::Agent, url: &str, token: &str) -> u16 {
    agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .map_or(0, |mut response| {
            let _ = response.body_mut().read_to_vec();
            response.status().as_u16()
        })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cdn = SimCdn::start(vec![DomainSpec::healthy()]).expect("cdn");
    let listing = SimListing::start().expect("listing");
    let path = dir.path().join("config.toml");
    let mut current = config(&listing, &cdn, "token-0");
    std::fs::write(&path, &current).expect("config");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vodprobe"))
        .args(["serve", "--config", "config.toml"])
        .current_dir(dir.path())
        .env("VODPROBE_LOG", "warn,vodprobe=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts");
    let base = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(rest) = text.split("API listening on http://").nth(1) {
            break format!("http://{}", rest.split('/').next().unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let url = format!("{base}/api/v1/lookups/999999");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    assert_eq!(status(&agent, &url, "token-0"), 404, "serve answers");
    println!("reload latency: {EDITS} edits per style, each rotating api.admin_token");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>7}",
        "style", "median ms", "p90 ms", "max ms", "missed"
    );
    let mut edit = 0;
    let mut all = Vec::new();
    let mut missed_total = 0;
    for style in STYLES {
        let mut times = Vec::new();
        let mut missed = 0;
        for _ in 0..EDITS {
            edit += 1;
            let token = format!("token-{edit}");
            let next = config(&listing, &cdn, &token);
            save(&path, &current, &next, style);
            let saved = Instant::now();
            current = next;
            loop {
                if status(&agent, &url, &token) == 404 {
                    times.push(saved.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                if saved.elapsed() > GIVE_UP {
                    missed += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        times.sort_by(f64::total_cmp);
        all.extend_from_slice(&times);
        missed_total += missed;
        println!(
            "{:<10} {:>9.0} {:>9.0} {:>9.0} {:>7}",
            format!("{style:?}"),
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times.last().copied().unwrap_or(f64::NAN),
            missed
        );
    }
    all.sort_by(f64::total_cmp);
    let metrics = agent
        .get(&format!("{base}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default();
    let counter = |result: &str| {
        let prefix = format!("vodprobe_config_reloads_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or("0")
            .to_string()
    };
    let alive = matches!(child.try_wait(), Ok(None));
    println!(
        "all {} edits: median {:.0} ms, max {:.0} ms, missed {missed_total}; reloads applied {}, \
         unchanged {}, refused {}; serve {}",
        all.len() + missed_total,
        percentile(&all, 0.5),
        all.last().copied().unwrap_or(f64::NAN),
        counter("applied"),
        counter("unchanged"),
        counter("refused"),
        if alive { "still running (no crash)" } else { "DIED" },
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = child.wait().expect("wait");
    println!("serve stopped on SIGTERM: {exit}");
}
