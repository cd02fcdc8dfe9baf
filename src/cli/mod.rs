//! Command-line parsing and dispatch: a closed set of commands, one file each, every file the
//! same shape (`run(args) -> Exit`). Arguments are parsed raw by clap, then validated into
//! library types; only validated values reach the library.

mod check_config;
mod compact;
#[cfg(feature = "demo")]
mod demo;
mod domains;
mod lookup;
mod serve;

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
    Serve(serve::ServeArgs),
    /// Find one broadcast's playlist now, from its streamer, stream id and start time.
    Lookup(lookup::LookupArgs),
    /// Check every configured CDN domain now and print a table.
    Domains(ConfigArg),
    /// Validate config.toml and probes/*.toml; exit 0, or 1 with every problem explained.
    CheckConfig(ConfigArg),
    /// Run serve against a built-in simulated Twitch, offline.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
    /// Rewrite the database compactly (stop serve first; needs room for a second copy).
    Compact(ConfigArg),
}

#[derive(clap::Args, Debug)]
pub struct ConfigArg {
    /// The configuration file [default: ./config.toml if present, else the built-in default].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

pub fn run(args: Args) -> Exit {
    match args.command {
        Command::Serve(serve_args) => serve::run(serve_args),
        Command::Lookup(lookup_args) => lookup::run(lookup_args),
        Command::Domains(config_arg) => domains::run(config_arg),
        Command::CheckConfig(config_arg) => check_config::run(config_arg),
        #[cfg(feature = "demo")]
        Command::Demo(demo_args) => demo::run(demo_args),
        Command::Compact(config_arg) => compact::run(config_arg),
    }
}

/// Loads the configuration, printing every problem; `None` if it cannot be used.
pub fn load_config(path: Option<&std::path::Path>) -> Option<Config> {
    config::load(path)
        .map_err(|error| print_config_error(&error))
        .ok()
}

/// Prints every problem of a refused configuration, one per line, then how many.
pub fn print_config_error(error: &ConfigError) {
    match error {
        ConfigError::Read { .. } => eprintln!("error: {error}"),
        ConfigError::Invalid { problems } => {
            for problem in problems {
                eprintln!("error: {problem}");
            }
            eprintln!(
                "the configuration has {} problem(s) and was not accepted; fix them and run \
                 `vodprobe check-config`",
                problems.len()
            );
        }
    }
}
