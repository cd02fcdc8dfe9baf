//! vodprobe: archive Twitch VOD playlists by probing the VOD CDN.
//!
//! The binary (`src/main.rs` and `src/cli/`) is a thin edge over this library so that
//! integration tests and benchmarks drive the same code the user runs. Layers point downward
//! only, as README's code map draws them: the CLI edge → `daemon` → `api`, `search`, `probe`,
//! `track`, `schedule` → `store`, `packed`, `discover`, `fetch`, `budget`, `config`, `reload`,
//! `playlist`, `segments`, `record`, `time_input`, `metrics` and the `probes` crate.
//!
//! The simulated Twitch is not here: it is the `vodprobe-sim` crate, a dev-dependency of the
//! tests and benchmarks (and of this library's unit tests), and an optional dependency of the
//! binary for `vodprobe demo` (feature `demo`, on by default). Nothing in the library uses it.

pub mod api;
pub mod audio;
pub mod budget;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod event;
pub mod fetch;
pub mod follow;
#[doc(hidden)]
pub mod fuzz;
pub mod metrics;
pub mod notify;
pub mod packed;
pub mod playlist;
pub mod probe;
pub mod rebuild;
pub mod record;
pub mod reload;
pub mod schedule;
pub mod search;
pub mod segments;
pub mod series;
pub mod store;
pub mod time_input;
pub mod track;
pub mod visibility;
