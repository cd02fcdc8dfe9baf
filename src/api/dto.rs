//! The JSON shapes of the API (snake_case, RFC 3339 UTC times, ids as strings), converted from
//! store records here and nowhere else.

use crate::audio::{AudioState, OriginalAudio};
use crate::record::{Status, StreamRecord};
use crate::segments::{SegmentState, SegmentStatus};
use crate::store::{Counts, StreamerMatch};
use serde::Serialize;

/// RFC 3339 in UTC, seconds precision (`2026-01-31T23:59:59Z`).
pub fn rfc3339(unix: i64) -> String {
    match rfc3339_bytes(unix) {
        Some(text) => String::from_utf8_lossy(&text).into_owned(),
        // Outside years 0-9999 (never a real broadcast): chrono's own spelling, or empty.
        None => chrono::DateTime::from_timestamp(unix, 0)
            .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default(),
    }
}

/// The 20 ASCII bytes of [`rfc3339`] by hand (civil-from-days); `None` outside years 0-9999.
/// A page of 50 items writes 250 of these: chrono's formatter showed up in profiles.
fn rfc3339_bytes(unix: i64) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut put = |at: usize, value: i64, digits: usize| {
        let mut v = value;
        for i in (0..digits).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, seconds / 3600, 2);
    put(14, seconds / 60 % 60, 2);
    put(17, seconds % 60, 2);
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'Z'),
    ] {
        out[at] = separator;
    }
    Some(out)
}

/// The playlist route's path for a broadcast.
pub fn playlist_path(stream_id: u64, start_unix: i64) -> String {
    format!("/vods/{stream_id}/{start_unix}.m3u8")
}

/// A broadcast item, serialized straight from the stored record: lists are the API's hot
/// path, and writing each field in place avoids building ~20 strings per item. The fields and
/// their order are the contract in `openapi.json` (`Vod`). Beside the record, its segment
/// check (`None` for a broadcast never captured, or captured before checks existed).
/// Then its original-audio watch (`None` for a capture that never listed `-unmuted` originals).
/// Last, whether its channel is followed.
pub struct Vod(
    pub StreamRecord,
    pub Option<SegmentStatus>,
    pub Option<OriginalAudio>,
    pub bool,
);

/// Unix seconds written as RFC 3339 without an intermediate `String`.
struct Time(i64);

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&rfc3339(self.0))
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match rfc3339_bytes(self.0) {
            Some(text) => serializer.serialize_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => serializer.collect_str(self),
        }
    }
}

/// Ids are strings in JSON (they exceed 2^53 in some clients' numbers).
struct Id(u64);

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl Serialize for Vod {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let record = &self.0;
        let check = self.1.unwrap_or_default();
        // A capture whose segments are gone plays nothing: it is never offered as playable.
        let playable = record.status == Status::Found
            && record.archive.is_some()
            && check.state != Some(SegmentState::Gone);
        let archive = record.archive.as_ref();
        let playable_archive = archive.filter(|_| playable);
        let mut item = serializer.serialize_struct("Vod", 37)?;
        item.serialize_field("stream_id", &Id(record.stream_id))?;
        item.serialize_field("start_unix", &record.start_unix)?;
        item.serialize_field("start_time", &Time(record.start_unix))?;
        item.serialize_field("streamer_id", &Id(record.streamer_id))?;
        item.serialize_field("login", &record.login)?;
        item.serialize_field("title", &record.title)?;
        item.serialize_field("game_id", &record.game_id)?;
        item.serialize_field("game_name", &record.game_name)?;
        item.serialize_field("language", &record.language)?;
        item.serialize_field("is_mature", &record.is_mature)?;
        item.serialize_field("max_viewers", &record.max_viewers)?;
        item.serialize_field("followed", &self.3)?;
        item.serialize_field("first_seen", &Time(record.first_seen))?;
        item.serialize_field("last_seen", &Time(record.last_seen))?;
        item.serialize_field("ended_at", &record.ended_at.map(Time))?;
        item.serialize_field("status", record.status.as_str())?;
        item.serialize_field("public", &record.public)?;
        item.serialize_field("playable", &playable)?;
        item.serialize_field(
            "playlist_url",
            &playable_archive.map(|_| playlist_path(record.stream_id, record.start_unix)),
        )?;
        item.serialize_field(
            "master_playlist_url",
            &playable_archive
                .filter(|a| a.qualities.len() > 1)
                .map(|_| format!("/vods/{}/{}/master.m3u8", record.stream_id, record.start_unix)),
        )?;
        item.serialize_field("domain", &archive.map(|a| &a.domain))?;
        item.serialize_field("domains", archive.map_or(&[][..], |a| &a.domains[..]))?;
        item.serialize_field("timestamp_form", &archive.map(|a| &a.timestamp_form))?;
        item.serialize_field("duration_seconds", &archive.map(|a| a.duration_seconds))?;
        item.serialize_field("segments", &archive.map(|a| a.segments))?;
        item.serialize_field("muted_segments", &archive.map(|a| a.muted_segments))?;
        item.serialize_field("container", &archive.map(|a| a.container.as_str()))?;
        item.serialize_field("rebuilt", &archive.is_some_and(|a| a.rebuilt))?;
        item.serialize_field("qualities", archive.map_or(&[][..], |a| &a.qualities[..]))?;
        item.serialize_field("fetched_at", &archive.map(|a| Time(a.fetched_at)))?;
        item.serialize_field("segments_state", &check.state.map(SegmentState::as_str))?;
        item.serialize_field("segments_checked_at", &check.checked_at.map(Time))?;
        item.serialize_field("segments_lost_at", &check.lost_at.map(Time))?;
        let audio = self.2.as_ref();
        item.serialize_field(
            "original_audio",
            &audio.and_then(|a| a.state()).map(AudioState::as_str),
        )?;
        item.serialize_field("original_audio_seen_at", &audio.and_then(|a| a.seen_at).map(Time))?;
        item.serialize_field("original_audio_until", &audio.and_then(|a| a.until()).map(Time))?;
        item.serialize_field(
            "at_risk_until",
            &crate::segments::at_risk_until(record.start_unix, &check).map(Time),
        )?;
        item.end()
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
    /// "ok", or "degraded" when the store, the config or the live listing has a problem; each
    /// failing part's `message` says why and what to do.
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
    /// The live listing in force and why (`SourceConfig::describe`).
    pub listing_source: String,
    /// Each `[[notify]]` target's delivery; one failing three times in a row degrades.
    pub notify: Vec<NotifyHealth>,
    /// The last time the probe queue was over `max_queue` and what was given up; `None` since
    /// start-up otherwise.
    pub last_shed: Option<String>,
}

/// One notification target in `/healthz`.
#[derive(Clone, Debug, Serialize)]
pub struct NotifyHealth {
    pub name: String,
    pub ok: bool,
    /// The last event sequence number delivered or passed over.
    pub delivered_through: u64,
    /// Events stored after it (before the target's filters).
    pub backlog: u64,
    /// Events it never got: pruned before delivery or past `max_backlog`.
    pub dropped: u64,
    pub failures_in_row: u32,
    pub last_error: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::{Time, rfc3339};

    #[test]
    fn rfc3339_matches_chrono() {
        let around_years_0_and_10000 = [-62_135_596_801, -62_167_219_201, 253_402_300_800];
        for unix in [
            0,
            59,
            951_782_400,
            1_714_586_400,
            1_767_225_599,
            4_102_444_800,
            253_402_300_799,
        ]
        .into_iter()
        .chain(around_years_0_and_10000)
        {
            let expected = chrono::DateTime::from_timestamp(unix, 0)
                .expect("time")
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(rfc3339(unix), expected);
            assert_eq!(serde_json::to_value(Time(unix)).ok(), Some(expected.into()));
        }
    }
}
