//! `vodprobe serve`: run the appliance until SIGINT or SIGTERM.

use super::{Exit, load_config};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use vodprobe::config::Config;
use vodprobe::daemon;
use vodprobe::schedule::Clock;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The configuration file [default: ./config.toml if present, else the built-in default].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Testing: start the appliance's clock at this unix time instead of now.
    #[arg(long, value_name = "UNIX", hide = true)]
    pub clock_start: Option<i64>,
    /// Testing: run the appliance's clock this many times faster than real time.
    #[arg(long, value_name = "FACTOR", hide = true, default_value_t = 1.0)]
    pub clock_speed: f64,
}

pub fn run(args: ServeArgs) -> Exit {
    let Some(config) = load_config(args.config.as_deref()) else {
        return Exit::Error;
    };
    let clock = match args.clock_start {
        Some(start) => Clock::accelerated(start, args.clock_speed),
        None if args.clock_speed != 1.0 => Clock::accelerated(Clock::system().now(), args.clock_speed),
        None => Clock::system(),
    };
    // Follow the file given, or ./config.toml (which may appear later) for the default.
    let follow = args.config.unwrap_or_else(|| PathBuf::from("config.toml"));
    serve(config, clock, Some(follow))
}

/// Runs the daemon on a small runtime (a Pi has few cores) until a signal arrives.
pub fn serve(config: Config, clock: Clock, follow: Option<PathBuf>) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(32)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!("cannot start the runtime: {error}");
            return Exit::Error;
        }
    };
    let exit = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        let started = match daemon::bind(config.api.listen).await {
            Ok(listener) => daemon::run(config, clock, listener, shutdown, follow).await,
            Err(error) => Err(error),
        };
        match started {
            Ok(()) => Exit::Success,
            Err(error) => {
                error!("{error}");
                Exit::Error
            }
        }
    });
    // Requests still in flight end within their timeouts; do not wait for them here.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    exit
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => info!("SIGINT received"),
                    _ = terminate.recv() => info!("SIGTERM received"),
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    shutdown.cancel();
}
