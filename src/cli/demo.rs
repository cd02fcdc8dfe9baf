//! `vodprobe demo`: the real appliance against a built-in simulated Twitch, offline.
//!
//! A simulated live listing and twelve CDN domains run on loopback; a population of channels
//! starts, ends, restarts and deletes broadcasts on an accelerated clock (one hour per real
//! minute), and `serve` captures them into a throw-away database.

use super::Exit;
use super::serve::serve;
use std::time::Duration;
use tracing::{error, info};
use vodprobe::config;
use vodprobe::schedule::Clock;
use vodprobe_sim::{DomainSpec, SimCdn, SimListing, World, WorldSpec};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Address for the HTTP API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// How many times faster than real time the simulated world runs.
    #[arg(long, value_name = "FACTOR", default_value_t = 60.0)]
    speed: f64,
}

const DOMAINS: usize = 12;

pub fn run(args: DemoArgs) -> Exit {
    if !(1.0..=3600.0).contains(&args.speed) {
        eprintln!("error: --speed must be between 1 and 3600");
        return Exit::Error;
    }
    let (cdn, listing) = match (
        SimCdn::start((0..DOMAINS).map(|_| DomainSpec::healthy()).collect()),
        SimListing::start(),
    ) {
        (Ok(cdn), Ok(listing)) => (cdn, listing),
        (Err(error), _) | (_, Err(error)) => {
            error!("cannot start the simulated Twitch: {error}");
            return Exit::Error;
        }
    };
    let data_dir = std::env::temp_dir().join(format!("vodprobe-demo-{}", std::process::id()));
    let mut text = format!(
        "data_dir = {data_dir:?}\n\
         [api]\nlisten = {listen:?}\n\
         [source]\ngql_url = \"{gql}\"\npages_per_second = 5\n\
         [schedule]\ndiscover = \"*/20 * * * * *\"\nprobe = \"*/10 * * * * *\"\nhealth = \"0 */5 * * * *\"\nprune = \"0 0 * * * *\"\n\
         [limits]\nconnect_timeout = \"2s\"\nrequest_timeout = \"3s\"\n",
        data_dir = data_dir.display().to_string(),
        listen = args.listen,
        gql = listing.gql_url(),
    );
    for domain in 0..DOMAINS {
        text.push_str(&format!(
            "\n[[domain]]\nurl = \"{}\"\nprobe = \"twitch-vod\"\n",
            cdn.base_url(domain)
        ));
    }
    let config = match config::parse(None, &text, &[]) {
        Ok(config) => config,
        Err(error) => {
            error!("the demo's configuration is invalid (a bug): {error}");
            return Exit::Error;
        }
    };
    let clock = Clock::accelerated(Clock::system().now(), args.speed);
    let spec = WorldSpec::demo(clock.now(), DOMAINS);
    let channels = spec.channels;
    info!(
        "demo: a simulated Twitch with {channels} channels and {DOMAINS} CDN domains at {}x speed \
         (one simulated hour every {:.0} s); database in {}. Captures appear at \
         http://{}/api/v1/vods?status=found as they happen; Ctrl-C stops.",
        args.speed,
        3600.0 / args.speed,
        data_dir.display(),
        args.listen
    );
    std::thread::spawn(move || {
        let mut world = World::new(spec);
        loop {
            world.advance(clock.now(), &listing, &cdn);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    serve(config, clock, None)
}
