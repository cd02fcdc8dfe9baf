//! vodprobe: archive Twitch VOD playlists by probing the VOD CDN.
//!
//! The binary (`src/main.rs` and `src/cli/`) is a thin edge over this library so that
//! integration tests and benchmarks drive the same code the user runs. Layers point downward
//! only: the CLI edge → `lookup` → `config`, `fetch`, `playlist`, `time_input` and the `probes`
//! crate. `sim` is the simulated Twitch used by `demo`, tests and benchmarks; nothing else in
//! the library depends on it.

pub mod api;
pub mod budget;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod fetch;
#[doc(hidden)]
pub mod fuzz;
pub mod metrics;
pub mod packed;
pub mod playlist;
pub mod probe;
pub mod record;
pub mod reload;
pub mod schedule;
pub mod search;
pub mod sim;
pub mod store;
pub mod time_input;
pub mod track;
