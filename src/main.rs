//! The `vodprobe` binary: parse the command line, set up logging, run a command, and map its
//! result to an exit code. Everything else lives in the library.
//!
//! Exit codes (all commands): 0 success (lookup: found); 1 the command ran and the answer is
//! "no" (lookup: not found; check-config: invalid; domains: some domain is down); 2 bad input,
//! or the command could not run at all (lookup: no domain could be asked).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    init_logging();
    let code = cli::run(args);
    ExitCode::from(code as u8)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VODPROBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
