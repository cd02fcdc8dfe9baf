//! Stream records: what the appliance knows about one broadcast, from its first sighting in
//! the live listing to its archived playlist.
//!
//! A broadcast is keyed by `(start_unix, stream_id)`: Twitch reuses a stream id when a stream
//! is restarted, so the id alone does not name a broadcast. Records are plain data so the store
//! can persist them, the pipeline's pure rules can transform them, and the API can render them.
//! Times are unix seconds (UTC).

use crate::playlist::Container;
use serde::{Deserialize, Serialize};

/// `(start_unix, stream_id)`: the listing's start time first, so keys sort by time.
pub type StreamKey = (i64, u64);

/// Where a broadcast is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Seen in the listing and not yet ended.
    Live,
    /// Ended (or below the record threshold is never probed: see `StreamRecord::recordable`);
    /// waiting for a probe or a retry.
    Pending,
    /// Its playlist is archived.
    Found,
    /// Every retry missed.
    NotFound,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Live => "live",
            Status::Pending => "pending",
            Status::Found => "found",
            Status::NotFound => "not_found",
        }
    }
}

/// Where a playlist was found, so a re-probe (or the streamer's next broadcast) costs one
/// request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    /// The domain's base URL.
    pub domain: String,
    /// `TimestampForm::as_str()`.
    pub form: String,
    /// The `{ts}` in the path.
    pub ts: String,
}

/// Probe bookkeeping. `next_due` is the scheduling truth: the store indexes it, and a record
/// with `next_due: Some(t)` is probed at or after `t`, at least once, even across crashes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeState {
    pub next_due: Option<i64>,
    /// Misses since the last hit (drives the retry schedule).
    pub misses: u32,
    /// Inconclusive probes in a row (drives the back-off while domains are down).
    pub inconclusive: u32,
    /// Probes sent for this broadcast (first, hour-aligned, retries, live learning).
    pub probes: u32,
    /// The capture after the hour boundary (Twitch mutes on the hour) has been done.
    pub hour_probe_done: bool,
    /// The path was found while the broadcast was live.
    pub learned_live: bool,
    /// A probe while live found nothing on any domain: the channel most likely keeps no VODs.
    pub missed_live: bool,
    /// When the playlist was first captured after the broadcast ended.
    pub captured_at: Option<i64>,
    /// Probed because a complete pass of the listing no longer showed it (it has probably
    /// ended: capture it before a streamer can delete it, without waiting for `ended_after`).
    pub absence_probed: bool,
    pub learned: Option<Learned>,
    pub last_error: Option<String>,
}

/// What the archived playlist says (the playlist text itself is stored separately).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    /// The domain the stored copy came from.
    pub domain: String,
    /// Every domain known to hold it.
    pub domains: Vec<String>,
    pub timestamp_form: String,
    pub ts: String,
    /// The playlist's URL on `domain`.
    pub url: String,
    pub duration_seconds: f64,
    pub segments: u32,
    pub muted_segments: u32,
    pub container: Container,
    pub qualities: Vec<String>,
    pub fetched_at: i64,
    /// The playlist had `#EXT-X-ENDLIST` when fetched.
    pub ended: bool,
    /// The playlist answered 403 and was rebuilt from its segments (see `rebuild`).
    /// Kept by the compact record encoding only (`packed::record`): serde skips it so the
    /// postcard records older binaries wrote (tag 1, not self-describing) still read.
    #[serde(skip)]
    pub rebuilt: bool,
}

/// One broadcast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub start_unix: i64,
    pub stream_id: u64,
    pub streamer_id: u64,
    /// Login, title, game, language and maturity as they were at the start (first sighting).
    pub login: String,
    pub title: String,
    pub game_id: String,
    pub game_name: String,
    pub language: String,
    pub is_mature: bool,
    pub max_viewers: u32,
    pub first_seen: i64,
    pub last_seen: i64,
    pub ended_at: Option<i64>,
    pub status: Status,
    /// Publicly listed as a video: `None` until a source could tell.
    pub public: Option<bool>,
    pub probe: ProbeState,
    pub archive: Option<ArchiveInfo>,
}

impl StreamRecord {
    pub fn key(&self) -> StreamKey {
        (self.start_unix, self.stream_id)
    }
}

/// One stream as a page of the live listing showed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    pub stream_id: u64,
    pub streamer_id: u64,
    pub login: String,
    pub title: String,
    pub game_id: String,
    pub game_name: String,
    pub language: String,
    pub is_mature: bool,
    pub viewers: u32,
    /// The listing's start time (unix seconds).
    pub started_at: i64,
}
