//! Command-line parsing and dispatch: a closed set of commands, one file each, every file the
//! same shape (`run(args) -> Exit`). Arguments are parsed raw by clap, then validated into
//! library types; only validated values reach the library.

mod check_config;
mod domains;
mod lookup;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vodprobe::config::{self, Config, ConfigError};

/// How a command ended; the discriminant is the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    No = 1,
    Error = 2,
}

#[derive(Parser, Debug)]
#[command(
    name = "vodprobe",
    version,
    about = "Archive Twitch VOD playlists — sub-only, unlisted and deleted ones included — by \
             watching live streams and probing Twitch's VOD CDN.",
    after_help = "Exit codes: 0 success (lookup: found), 1 not found / invalid / a domain is down, \
                  2 bad input or nothing could be asked."
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run everything: scheduler, prober, API.
    Serve(ServeArgs),
    /// Find one broadcast's playlist now, from its streamer, stream id and start time.
    Lookup(lookup::LookupArgs),
    /// Check every configured CDN domain now and print a table.
    Domains(ConfigArg),
    /// Validate config.toml and probes/*.toml; exit 0, or 1 with every problem explained.
    CheckConfig(ConfigArg),
    /// Run serve against a built-in simulated Twitch, offline.
    Demo(DemoArgs),
}

#[derive(clap::Args, Debug)]
pub struct ConfigArg {
    /// The configuration file [default: ./config.toml if present, else the built-in default].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args, Debug)]
struct DemoArgs {
    /// Address of the demo's API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
}

pub fn run(args: Args) -> Exit {
    match args.command {
        Command::Serve(serve) => not_yet("serve", serve.config.config.as_deref()),
        Command::Lookup(lookup_args) => lookup::run(lookup_args),
        Command::Domains(config_arg) => domains::run(config_arg),
        Command::CheckConfig(config_arg) => check_config::run(config_arg),
        Command::Demo(demo) => {
            let _ = demo.listen;
            not_yet("demo", None)
        }
    }
}

/// `serve` and `demo` arrive with the pipeline; until then say so plainly, after checking the
/// configuration so the user learns something useful.
fn not_yet(command: &str, config_path: Option<&std::path::Path>) -> Exit {
    if load_config(config_path).is_none() {
        return Exit::Error;
    }
    eprintln!(
        "vodprobe {command}: not built yet — the capture pipeline and API are the next milestone. \
         Until then, `vodprobe lookup` finds a known broadcast's playlist and `vodprobe domains` \
         checks the CDN."
    );
    Exit::Error
}

/// Loads the configuration, printing every problem; `None` if it cannot be used.
pub fn load_config(path: Option<&std::path::Path>) -> Option<Config> {
    match config::load(path) {
        Ok(config) => Some(config),
        Err(error @ ConfigError::Read { .. }) => {
            eprintln!("error: {error}");
            None
        }
        Err(ConfigError::Invalid { problems }) => {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            eprintln!(
                "the configuration has {} problem(s); fix them and run `vodprobe check-config`",
                problems.len()
            );
            None
        }
    }
}
