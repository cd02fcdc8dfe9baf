//! Discover: fetch and decode pages of Twitch's live listing, most viewed first.
//!
//! A [`Source`] is one of the two listings Twitch offers (a closed set, so an enum dispatching
//! with `match`), each protocol in its own file with its own decoders:
//! - [`GqlSource`] (`gql.rs`): the web client's GraphQL API (no registration; unofficial). One
//!   POST per page of 30, cursors per edge; the last edge's cursor continues the listing.
//! - [`HelixSource`] (`helix.rs`): the official API. An app token from the client-credentials
//!   grant is cached until shortly before it expires and refreshed once on a 401; the per-minute
//!   point quota reported in `Ratelimit-*` headers is remembered, so a spent quota answers
//!   [`DiscoverError::RateLimited`] without sending anything.
//!
//! What both share lives here: the [`ListingPage`] result, [`DiscoverError`], [`VideoHint`],
//! and the quoting of error bodies; `json.rs` holds the field readers both decoders use and
//! `videos.rs` turns a video's preview URL into a hint.
//!
//! This module only fetches and decodes one page at a time: the crawler decides when to stop
//! (the viewer floor), when to restart from the top and how fast to go. It never reads the
//! clock either: the caller passes `now` (unix seconds from its injected clock), which token
//! expiry and the quota's reset time are measured against. Decoding is strict about the
//! envelope (a page that is not what the API promises is an error naming the path of the
//! problem) and lenient about single streams: a malformed edge or item is skipped and counted
//! in [`ListingPage::skipped`], so one odd stream cannot hide the other 29.
//!
//! [`Source::videos`] asks either API for a channel's recent archive videos. While a video
//! object exists (public or sub-only), its preview URLs name the CDN domain and the playlist
//! folder exactly, so the caller can fetch the playlist without searching: a [`VideoHint`]
//! per video whose URL parses. A video whose URL names no path yet (Helix's placeholder
//! thumbnail, GQL's null `seekPreviewsURL`) still says the video exists and whether it is
//! public: a hint without a path. Other videos are left out.
//!
//! [`Source::live_streams`] (`confirm.rs`) asks which of up to 100 channels per request are
//! live now, by id, so a tracked stream's end is known without a full pass of the listing.

mod confirm;
mod gql;
mod helix;
mod json;
mod videos;

#[cfg(test)]
pub(crate) mod tests;

use std::time::Duration;

use serde_json::Value;

use crate::config::{SourceConfig, SourceKind};
use crate::fetch::{ApiAnswer, FetchError, Fetcher};
use crate::record::Sighting;

pub use confirm::{CONFIRM_BATCH, GQL_LOGINS_QUERY, GQL_USERS_QUERY, LiveNow, UserId};
pub use gql::{GQL_PAGE_SIZE, GQL_STREAMS_QUERY, GQL_VIDEOS_QUERY, GqlSource};
// The decoders are reached directly by the fuzz targets (`crate::fuzz`).
pub(crate) use confirm::{decode_gql_users, decode_helix_live};
pub(crate) use gql::{decode_gql, decode_gql_videos};
pub use helix::{HELIX_PAGE_SIZE, HelixSource};
pub(crate) use helix::{decode_helix, decode_helix_videos};
pub(crate) use videos::parse_folder;

/// Both APIs refuse more videos per request than this.
pub const VIDEOS_MAX_FIRST: u32 = 100;

/// The wait suggested when a 429 names no time (neither `Retry-After` nor a reset).
const DEFAULT_BACKOFF: Duration = Duration::from_secs(30);
/// Error bodies are quoted up to this many characters.
const EXCERPT_CHARS: usize = 200;

/// One page of the live listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListingPage {
    /// In listing order (most viewed first).
    pub sightings: Vec<Sighting>,
    /// Where the next page starts; `None` when this was the last page.
    pub next_cursor: Option<String>,
    /// Edges or items that were malformed and left out.
    pub skipped: usize,
    /// Why the first skipped one was left out (e.g. `edges[3].node.createdAt: not RFC 3339`).
    pub first_skip: Option<String>,
}

impl ListingPage {
    fn skip(&mut self, reason: String) {
        self.skipped += 1;
        self.first_skip.get_or_insert(reason);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("listing request failed: {0}")]
    Fetch(#[from] FetchError),
    /// An unexpected status, or an API-level refusal (GQL `errors` with no data answers 200).
    #[error("listing answered {status}: {body_excerpt}")]
    Status { status: u16, body_excerpt: String },
    /// Wait this long before the next request to this source.
    #[error("listing is rate limited; retry in {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The credentials were refused (client id, secret or token).
    #[error("listing refused the credentials: {0}")]
    Auth(String),
    /// The answer is not what the API promises; names the path of the problem.
    #[error("listing answer not understood: {0}")]
    Decode(String),
    /// GQL refused a cursor page with its integrity challenge (Twitch does so for some public
    /// client ids; the first page is still answered).
    #[error(
        "Twitch refused GQL cursor paging for client id {client_id} (failed integrity check): \
         register an app at dev.twitch.tv and set source.client_id and client_secret (auto then \
         uses Helix), or set another public client_id"
    )]
    Integrity { client_id: String },
    /// Helix refused the cursor (400 "invalid cursor"; happens now and then): start the pass
    /// again from the top.
    #[error("listing answered 400: invalid cursor")]
    InvalidCursor,
    /// GQL does not know a persisted query (a hash sent without the query text).
    #[error("GQL answered PersistedQueryNotFound: the query must be sent as text")]
    PersistedQueryNotFound,
}

impl DiscoverError {
    /// A short fixed name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            DiscoverError::Fetch(error) => error.kind(),
            DiscoverError::Status { .. } => "http_status",
            DiscoverError::RateLimited { .. } => "rate_limited",
            DiscoverError::Auth(_) => "auth",
            DiscoverError::Decode(_) => "decode",
            DiscoverError::Integrity { .. } => "integrity",
            DiscoverError::PersistedQueryNotFound => "persisted_query",
            DiscoverError::InvalidCursor => "invalid_cursor",
        }
    }
}

/// Which broadcast a video belongs to, as far as its listing says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoOf {
    /// By stream id (from the folder, or Helix's `stream_id`): exact.
    Stream(u64),
    /// Only by when the broadcast started (GQL `createdAt`, unix seconds): a GQL video whose
    /// `seekPreviewsURL` is null names no folder, and GQL's video node carries no stream id.
    StartedAt(i64),
}

/// Where one archive video's playlist lives, as the listing API reveals it.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoHint {
    /// The broadcast the video belongs to.
    pub broadcast: VideoOf,
    /// CDN base URL ending in '/', with any path prefix before the folder
    /// (e.g. `https://d2nvs31859zcd8.cloudfront.net/`).
    pub domain: String,
    /// `{hash}_{login}_{stream_id}_{ts}`; the playlist is `{domain}{folder}/{quality}/index-dvr.m3u8`.
    pub folder: String,
    /// The `{ts}` part of the folder.
    pub ts: String,
    /// A publicly listed archive (false: sub-only or otherwise restricted).
    pub public: bool,
    /// Whether Twitch's mute pass silenced part of it: true when the video lists a muted
    /// stretch, false when the field is there and lists none, `None` when the answer lacks the
    /// field or it is unreadable (never read as "not muted"). See [`videos::muted_from`].
    pub muted: Option<bool>,
    /// The muted stretches it lists, offset and duration in seconds (empty when `muted` is
    /// not `Some(true)`): enough to mark the muted segments of a stored copy without fetching
    /// it again (`playlist::mark_muted`).
    pub muted_stretches: Vec<(u64, u64)>,
}

impl VideoHint {
    /// False for a video that exists (public or not, as `public` says) but whose URL names no
    /// path (Helix's placeholder thumbnail while live or processing, GQL's null
    /// `seekPreviewsURL`): search the CDN.
    pub fn path_known(&self) -> bool {
        !self.domain.is_empty()
    }

    /// The playlist URL of one quality folder (e.g. `chunked`).
    pub fn playlist_url(&self, quality: &str) -> String {
        format!("{}{}/{quality}/index-dvr.m3u8", self.domain, self.folder)
    }
}

/// A live-stream listing.
#[derive(Debug)]
pub enum Source {
    Gql(GqlSource),
    Helix(HelixSource),
}

impl Source {
    pub fn new(config: &SourceConfig) -> Source {
        match config.kind {
            SourceKind::Gql => Source::Gql(GqlSource::new(config)),
            SourceKind::Helix => Source::Helix(HelixSource::new(config)),
        }
    }

    /// One page of live streams, most viewed first, starting after `cursor` (`None`: the top).
    /// `now` is the caller's clock in unix seconds (token expiry, the quota's reset).
    pub fn page(
        &mut self,
        fetcher: &Fetcher,
        cursor: Option<&str>,
        now: i64,
    ) -> Result<ListingPage, DiscoverError> {
        match self {
            Source::Gql(source) => source.page(fetcher, cursor),
            Source::Helix(source) => source.page(fetcher, cursor, now),
        }
    }

    /// The streamer's recent archive videos and where their playlists are, newest first, at
    /// most `first` (capped at [`VIDEOS_MAX_FIRST`]; 0 asks nothing). Videos whose preview URL
    /// is neither a path nor a known placeholder are left out; an unknown streamer has none.
    /// `now` as for [`Source::page`].
    pub fn videos(
        &mut self,
        fetcher: &Fetcher,
        streamer_id: u64,
        first: u32,
        now: i64,
    ) -> Result<Vec<VideoHint>, DiscoverError> {
        let first = first.min(VIDEOS_MAX_FIRST);
        if first == 0 {
            return Ok(Vec::new());
        }
        let mut hints = match self {
            Source::Gql(source) => source.videos(fetcher, streamer_id, first)?,
            Source::Helix(source) => source.videos(fetcher, streamer_id, first, now)?,
        };
        hints.truncate(first as usize);
        Ok(hints)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Source::Gql(_) => "gql",
            Source::Helix(_) => "helix",
        }
    }
}

/// The API's own explanation (`message` in Twitch's error JSON) or the start of the body.
fn excerpt(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(message) = value.get("message").and_then(Value::as_str)
    {
        return message.chars().take(EXCERPT_CHARS).collect();
    }
    let text = String::from_utf8_lossy(body);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

fn status_error(answer: &ApiAnswer) -> DiscoverError {
    DiscoverError::Status {
        status: answer.status,
        body_excerpt: excerpt(&answer.body),
    }
}
