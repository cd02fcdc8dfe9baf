//! The `vodprobe` binary: parse the command line, set up logging, run a command, and map its
//! result to an exit code. Everything else lives in the library.
//!
//! Exit codes (all commands): 0 success (lookup: found); 1 the command ran and the answer is
//! "no" (lookup: not found; check-config: invalid; domains: some domain is down); 2 bad input,
//! or the command could not run at all (lookup: no domain could be asked).

mod cli;

use clap::Parser;
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    #[cfg(feature = "mimalloc")]
    tune_allocator();
    let args = cli::Args::parse();
    init_logging();
    let code = cli::run(args);
    ExitCode::from(code as u8)
}

/// mimalloc's defaults trade memory for speed: arenas committed up front, freed pages returned
/// after a delay, and the API's blocking threads each keep their own. Measured on the API
/// benchmark, a playlist load took RSS to 620 MiB and kept it there; committing on demand and
/// returning freed pages at once holds it near 60 MiB, which a 1 GiB box can afford.
#[cfg(feature = "mimalloc")]
fn tune_allocator() {
    // Option numbers from mimalloc.h of the pinned libmimalloc-sys (mimalloc 3.3.2), which
    // names only some of them.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain setters of process-wide options, called before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
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
