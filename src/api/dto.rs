//! The JSON shapes of the API (snake_case, RFC 3339 UTC times, ids as strings), converted from
//! store records here and nowhere else.

use crate::record::StreamRecord;
use crate::store::{Counts, StreamerMatch};
use serde::Serialize;

/// RFC 3339 in UTC, seconds precision.
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The playlist route's path for a broadcast.
pub fn playlist_path(stream_id: u64, start_unix: i64) -> String {
    format!("/vods/{stream_id}/{start_unix}.m3u8")
}

#[derive(Serialize)]
pub struct Vod {
    pub stream_id: String,
    pub start_unix: i64,
    pub start_time: String,
    pub streamer_id: String,
    pub login: String,
    pub title: String,
    pub game_id: String,
    pub game_name: String,
    pub language: String,
    pub is_mature: bool,
    pub max_viewers: u32,
    pub first_seen: String,
    pub last_seen: String,
    pub ended_at: Option<String>,
    pub status: &'static str,
    pub public: Option<bool>,
    pub playlist_url: Option<String>,
    /// The master playlist's path when more than one quality was found.
    pub master_playlist_url: Option<String>,
    pub domain: Option<String>,
    pub domains: Vec<String>,
    pub timestamp_form: Option<String>,
    pub duration_seconds: Option<f64>,
    pub segments: Option<u32>,
    pub muted_segments: Option<u32>,
    pub container: Option<&'static str>,
    pub qualities: Vec<String>,
    pub fetched_at: Option<String>,
}

impl From<StreamRecord> for Vod {
    fn from(record: StreamRecord) -> Vod {
        let archive = record.archive;
        Vod {
            stream_id: record.stream_id.to_string(),
            start_unix: record.start_unix,
            start_time: rfc3339(record.start_unix),
            streamer_id: record.streamer_id.to_string(),
            login: record.login,
            title: record.title,
            game_id: record.game_id,
            game_name: record.game_name,
            language: record.language,
            is_mature: record.is_mature,
            max_viewers: record.max_viewers,
            first_seen: rfc3339(record.first_seen),
            last_seen: rfc3339(record.last_seen),
            ended_at: record.ended_at.map(rfc3339),
            status: record.status.as_str(),
            public: record.public,
            playlist_url: archive
                .as_ref()
                .map(|_| playlist_path(record.stream_id, record.start_unix)),
            master_playlist_url: archive
                .as_ref()
                .filter(|a| a.qualities.len() > 1)
                .map(|_| format!("/vods/{}/{}/master.m3u8", record.stream_id, record.start_unix)),
            domain: archive.as_ref().map(|a| a.domain.clone()),
            domains: archive.as_ref().map(|a| a.domains.clone()).unwrap_or_default(),
            timestamp_form: archive.as_ref().map(|a| a.timestamp_form.clone()),
            duration_seconds: archive.as_ref().map(|a| a.duration_seconds),
            segments: archive.as_ref().map(|a| a.segments),
            muted_segments: archive.as_ref().map(|a| a.muted_segments),
            container: archive.as_ref().map(|a| a.container.as_str()),
            qualities: archive.as_ref().map(|a| a.qualities.clone()).unwrap_or_default(),
            fetched_at: archive.as_ref().map(|a| rfc3339(a.fetched_at)),
        }
    }
}

#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct Streamer {
    pub streamer_id: String,
    pub login: String,
    pub matched_login: String,
    pub logins: Vec<String>,
    pub broadcasts: u64,
    pub last_start_time: String,
}

impl From<StreamerMatch> for Streamer {
    fn from(found: StreamerMatch) -> Streamer {
        Streamer {
            streamer_id: found.streamer_id.to_string(),
            login: found.login,
            matched_login: found.matched_login,
            logins: found.logins,
            broadcasts: found.broadcasts,
            last_start_time: rfc3339(found.last_start),
        }
    }
}

#[derive(Serialize)]
pub struct Category {
    pub game_id: String,
    pub game_name: String,
    pub broadcasts: u64,
}

#[derive(Serialize)]
pub struct Language {
    pub language: String,
    pub broadcasts: u64,
}

#[derive(Serialize)]
pub struct CountList<T> {
    pub items: Vec<T>,
    /// When the counts were computed; they cover the day before it.
    pub computed_at: Option<String>,
    pub total: u64,
}

pub fn categories(counts: Option<(Counts, i64)>) -> CountList<Category> {
    let (counts, at) = counts.map_or((Counts::default(), None), |(c, at)| (c, Some(at)));
    CountList {
        total: counts.total,
        computed_at: at.map(rfc3339),
        items: counts
            .games
            .into_iter()
            .map(|(game_id, game_name, broadcasts)| Category {
                game_id,
                game_name,
                broadcasts,
            })
            .collect(),
    }
}

pub fn languages(counts: Option<(Counts, i64)>) -> CountList<Language> {
    let (counts, at) = counts.map_or((Counts::default(), None), |(c, at)| (c, Some(at)));
    CountList {
        total: counts.total,
        computed_at: at.map(rfc3339),
        items: counts
            .languages
            .into_iter()
            .map(|(language, broadcasts)| Language { language, broadcasts })
            .collect(),
    }
}

/// One CDN domain as `/api/v1/domains` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DomainStatus {
    pub url: String,
    pub enabled: bool,
    pub probe: String,
    /// "up", "down" or "unknown" (never asked yet).
    pub health: &'static str,
    pub last_success: Option<String>,
    pub last_failure: Option<String>,
    pub hits: u64,
}

/// `/healthz`.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    /// "ok", or "degraded" when the store or the config has a problem.
    pub status: &'static str,
    pub version: &'static str,
    pub config: ComponentStatus,
    pub store: ComponentStatus,
    pub records: u64,
    pub store_bytes: u64,
    pub queue_depth: u64,
    pub last_discover: Option<String>,
    pub last_probe: Option<String>,
    pub listing: ComponentStatus,
}

#[derive(Clone, Debug, Serialize)]
pub struct ComponentStatus {
    pub ok: bool,
    pub message: Option<String>,
}

impl ComponentStatus {
    pub fn ok() -> ComponentStatus {
        ComponentStatus {
            ok: true,
            message: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> ComponentStatus {
        ComponentStatus {
            ok: false,
            message: Some(message.into()),
        }
    }
}

/// An admin lookup, while it runs and after.
#[derive(Clone, Debug, Serialize)]
pub struct LookupState {
    pub id: String,
    /// "running", "found", "not_found" or "failed".
    pub state: &'static str,
    pub streamer: String,
    pub stream_id: String,
    pub requests: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub timestamp_form: Option<String>,
    pub duration_seconds: Option<f64>,
    pub segments: Option<u32>,
    pub muted_segments: Option<u32>,
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct Requeued {
    pub requeued: u64,
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
}
