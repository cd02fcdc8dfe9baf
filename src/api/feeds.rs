//! The feed routes: captures as Atom (all, per channel) and a channel's playable captures as
//! M3U, built from the store into [`feed`](super::feed)'s model, with `ETag`/`Last-Modified`
//! and 304 answers for polling readers. No warp here.
//!
//! Links are absolute, as feed readers and IPTV players need, and the API has no configured
//! public address: they are made from the request's `Host` header (checked to be a plain
//! host and port, else 400) and `X-Forwarded-Proto: https` when a TLS proxy sets it.

use super::Backend;
use super::dto::playlist_path;
use super::event_feeds;
use super::feed::{self, Entry, Feed, Link, PlaylistItem};
use super::handlers::{ApiError, Reply, Result, blocking, etag_matches, etag_of};
use super::params::Query;
use crate::audio::{AudioState, OriginalAudio};
use crate::record::{Status, StreamRecord};
use crate::segments::{SegmentState, SegmentStatus};
use crate::store::{Sort, StoreError, VodFilter};
use std::sync::Arc;

const DEFAULT_ENTRIES: usize = 100;
const MAX_ENTRIES: usize = 500;
/// Index entries one feed may examine (as the lists).
const MAX_EXAMINED: usize = 10_000;

/// Which feed a request names.
pub enum FeedTarget {
    /// `/feeds/captures.atom`
    Captures,
    /// `/feeds/channels/{file}`: `{login}.atom` or `{login}.m3u`.
    Channel(String),
    /// `/feeds/events.atom`
    Events,
    /// `/feeds/channels/{login}/events.atom`
    ChannelEvents(String),
}

/// The request parts the feed routes read.
pub struct FeedRequest {
    pub target: FeedTarget,
    pub host: Option<String>,
    pub forwarded_proto: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub query: String,
}

enum Format {
    Atom,
    M3u,
}

/// `http://host[:port]` from the request, refusing anything but a host name or address and a
/// port: the value is written into every link, so it must not carry a path, quotes or spaces.
pub(super) fn base_url(host: Option<&str>, forwarded_proto: Option<&str>) -> Result<String> {
    let host = host.map(str::trim).unwrap_or_default();
    let plain = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !plain {
        return Err(ApiError::new(
            400,
            "bad_header",
            "feeds need a Host header of a host name or address and an optional port: their links are absolute",
        ));
    }
    let scheme = match forwarded_proto.map(str::trim) {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    Ok(format!("{scheme}://{host}"))
}

pub(super) fn limit(query: &Query) -> Result<usize> {
    match query.get("limit") {
        None => Ok(DEFAULT_ENTRIES),
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_ENTRIES).contains(&limit) => Ok(limit),
            _ => Err(ApiError::bad_parameter(
                "limit",
                format!("must be a whole number from 1 to {MAX_ENTRIES}, not {text:?}"),
            )),
        },
    }
}

/// A capture with its segment check and original-audio watch.
type Capture = (StreamRecord, Option<SegmentStatus>, Option<OriginalAudio>);

fn playable(capture: &Capture) -> bool {
    let (record, check, _) = capture;
    record.status == Status::Found
        && record.archive.is_some()
        && check.and_then(|c| c.state) != Some(SegmentState::Gone)
}

pub async fn feed(backend: Arc<dyn Backend>, request: FeedRequest) -> Result<Reply> {
    let events = matches!(request.target, FeedTarget::Events | FeedTarget::ChannelEvents(_));
    let params: &[&str] = if events { &["limit", "kind"] } else { &["limit"] };
    let query = Query::parse(&request.query, params)?;
    let limit = limit(&query)?;
    let base = base_url(request.host.as_deref(), request.forwarded_proto.as_deref())?;
    let (format, login) = match &request.target {
        FeedTarget::Captures => (Format::Atom, None),
        FeedTarget::Events => {
            return event_feeds::feed(backend, None, &query, &base, limit, &request).await;
        }
        FeedTarget::ChannelEvents(login) => {
            let login = Some(login.to_ascii_lowercase());
            return event_feeds::feed(backend, login, &query, &base, limit, &request).await;
        }
        FeedTarget::Channel(file) => {
            let (login, format) = if let Some(login) = file.strip_suffix(".atom") {
                (login, Format::Atom)
            } else if let Some(login) = file.strip_suffix(".m3u") {
                (login, Format::M3u)
            } else {
                return Err(ApiError::not_found(format!(
                    "no feed {file:?}: a channel's feeds are {{login}}.atom and {{login}}.m3u"
                )));
            };
            (format, Some(login.to_ascii_lowercase()))
        }
    };
    let store = backend.store();
    let wanted = login.clone();
    let (ids, captures) = blocking(move || {
        let mut filter = VodFilter {
            status: Some(Status::Found),
            ..VodFilter::default()
        };
        let ids = match &wanted {
            // A login names every account that used it, as `/api/v1/vods?streamer=` reads it.
            Some(login) => {
                let ids = store.streamer_ids_for_login(login)?;
                filter.streamer_ids = Some(ids.clone());
                ids
            }
            None => Vec::new(),
        };
        if wanted.is_some() && ids.is_empty() {
            return Ok((ids, Vec::new()));
        }
        let page = store.vods(&filter, Sort::Recent, None, limit, MAX_EXAMINED)?;
        let keys: Vec<_> = page.items.iter().map(StreamRecord::key).collect();
        let checks = store.segment_statuses(&keys)?;
        let audio = store.original_audios(&keys)?;
        let captures: Vec<Capture> = page
            .items
            .into_iter()
            .zip(checks)
            .zip(audio)
            .map(|((record, check), audio)| (record, check, audio))
            .collect();
        Ok::<_, StoreError>((ids, captures))
    })
    .await?;
    if let Some(login) = &login
        && ids.is_empty()
    {
        return Err(ApiError::not_found(format!(
            "no streamer ever used the login {login:?}"
        )));
    }
    let (content_type, body, updated) = match format {
        Format::Atom => {
            let feed = atom_feed(&base, login.as_deref(), &ids, &captures, backend.now());
            let updated = feed.updated();
            ("application/atom+xml; charset=utf-8", feed::atom(&feed), updated)
        }
        Format::M3u => {
            let items: Vec<PlaylistItem> = captures
                .iter()
                .filter(|capture| playable(capture))
                .filter_map(|(record, _, _)| {
                    let archive = record.archive.as_ref()?;
                    Some(PlaylistItem {
                        seconds: archive.duration_seconds,
                        title: entry_title(record),
                        url: format!("{base}{}", playlist_path(record.stream_id, record.start_unix)),
                    })
                })
                .collect();
            let updated = captures.iter().map(entry_updated).max().unwrap_or(0);
            ("audio/x-mpegurl; charset=utf-8", feed::m3u(&items), updated)
        }
    };
    Ok(conditional(content_type, body.into_bytes(), updated, &request))
}

/// The reply, or 304 when the client's validators match: `If-None-Match` when sent (it
/// decides alone, RFC 9110 13.2.2), else `If-Modified-Since` against `updated`.
pub(super) fn conditional(
    content_type: &'static str,
    body: Vec<u8>,
    updated: i64,
    request: &FeedRequest,
) -> Reply {
    let etag = etag_of(&body);
    let mut headers = vec![
        ("etag", etag.clone()),
        ("cache-control", "no-cache".to_string()),
        ("vary", "Host, X-Forwarded-Proto".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if let Some(last_modified) = http_date(updated) {
        headers.push(("last-modified", last_modified));
    }
    let unchanged = match (&request.if_none_match, &request.if_modified_since) {
        (Some(tags), _) => etag_matches(Some(tags), &etag),
        (None, Some(since)) => {
            chrono::DateTime::parse_from_rfc2822(since.trim()).is_ok_and(|since| updated <= since.timestamp())
        }
        (None, None) => false,
    };
    Reply {
        status: if unchanged { 304 } else { 200 },
        content_type,
        headers,
        body: if unchanged { Vec::new() } else { body },
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(unix: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(unix, 0).map(|time| time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

fn entry_title(record: &StreamRecord) -> String {
    let start = chrono::DateTime::from_timestamp(record.start_unix, 0)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    format!("{}: {} ({start})", record.login, record.title.trim())
}

/// When a capture last changed in a way a reader should see: captured again, segments lost,
/// original audio gone.
fn entry_updated(capture: &Capture) -> i64 {
    let (record, check, audio) = capture;
    [
        record.archive.as_ref().map(|a| a.fetched_at),
        check.and_then(|c| c.lost_at),
        audio.as_ref().and_then(|a| a.gone_at),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(record.last_seen)
}

fn summary(capture: &Capture) -> String {
    let (record, check, audio) = capture;
    let mut parts = Vec::new();
    if let Some(archive) = &record.archive {
        let minutes = (archive.duration_seconds / 60.0).round() as u64;
        parts.push(format!(
            "captured: {}h{:02}m, {} segments, {} muted",
            minutes / 60,
            minutes % 60,
            archive.segments,
            archive.muted_segments
        ));
        if archive.rebuilt {
            parts.push("rebuilt from the segments that still answer".to_string());
        }
    }
    let state = check
        .and_then(|c| c.state)
        .map_or("unchecked", SegmentState::as_str);
    parts.push(format!("segments {state}"));
    if let Some(audio) = audio.as_ref().and_then(OriginalAudio::state) {
        parts.push(format!("original audio {}", audio.as_str()));
        if audio == AudioState::Available
            && let Some(until) = audio_until(capture)
        {
            parts.push(format!("original audio likely until {until}"));
        }
    }
    match record.public {
        Some(true) => parts.push("public".to_string()),
        Some(false) => parts.push("not publicly listed".to_string()),
        None => {}
    }
    parts.push(format!(
        "{} ({}), {} viewers at most",
        record.game_name, record.language, record.max_viewers
    ));
    if !playable(capture) {
        parts.push("not playable".to_string());
    }
    parts.join("; ")
}

fn audio_until(capture: &Capture) -> Option<String> {
    capture.2.as_ref()?.until().map(super::dto::rfc3339)
}

fn atom_feed(base: &str, login: Option<&str>, ids: &[u64], captures: &[Capture], now: i64) -> Feed {
    let entries = captures
        .iter()
        .map(|capture| {
            let record = &capture.0;
            let mut links = vec![
                Link {
                    rel: "alternate",
                    href: format!("{base}/#/vod/{}/{}", record.stream_id, record.start_unix),
                    media_type: Some("text/html"),
                },
                Link {
                    rel: "related",
                    href: format!("{base}/#/channel/{}", record.streamer_id),
                    media_type: Some("text/html"),
                },
            ];
            if playable(capture) {
                links.push(Link {
                    rel: "enclosure",
                    href: format!("{base}{}", playlist_path(record.stream_id, record.start_unix)),
                    media_type: Some("application/vnd.apple.mpegurl"),
                });
            }
            Entry {
                id: format!("urn:vodprobe:capture:{}:{}", record.stream_id, record.start_unix),
                title: entry_title(record),
                updated: entry_updated(capture),
                published: Some(record.start_unix),
                author: record.login.clone(),
                links,
                summary: summary(capture),
            }
        })
        .collect();
    let (id, title, self_path, alternate) = match login {
        None => (
            "urn:vodprobe:feed:captures".to_string(),
            "vodprobe: latest captures".to_string(),
            "/feeds/captures.atom".to_string(),
            "/#/".to_string(),
        ),
        Some(login) => {
            // Keyed by account, so a rename keeps the feed's id.
            let keys: Vec<String> = ids.iter().map(u64::to_string).collect();
            let shown = captures.first().map_or(login, |c| c.0.login.as_str());
            (
                format!("urn:vodprobe:feed:channel:{}", keys.join("+")),
                format!("vodprobe: captures of {shown}"),
                format!("/feeds/channels/{login}.atom"),
                ids.first()
                    .map_or("/#/".to_string(), |id| format!("/#/channel/{id}")),
            )
        }
    };
    Feed {
        id,
        title,
        self_url: format!("{base}{self_path}"),
        alternate_url: format!("{base}{alternate}"),
        entries,
        // An empty feed changes only when its first entry comes: a fixed time keeps its ETag.
        empty_updated: if captures.is_empty() { 0 } else { now },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_host_makes_the_links() {
        assert_eq!(
            base_url(Some("127.0.0.1:8080"), None).ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            base_url(Some("[::1]:80"), Some("https")).ok().as_deref(),
            Some("https://[::1]:80")
        );
        for bad in [
            None,
            Some(""),
            Some("a b"),
            Some("h/x"),
            Some("h\"><x"),
            Some("h@evil"),
        ] {
            assert_eq!(base_url(bad, None).map_err(|e| e.status), Err(400), "{bad:?}");
        }
    }

    #[test]
    fn validators_answer_304() {
        let request = |inm: Option<&str>, ims: Option<&str>| FeedRequest {
            target: FeedTarget::Captures,
            host: None,
            forwarded_proto: None,
            if_none_match: inm.map(str::to_string),
            if_modified_since: ims.map(str::to_string),
            query: String::new(),
        };
        let first = conditional("text/plain", b"x".to_vec(), 784_111_777, &request(None, None));
        assert_eq!(first.status, 200);
        let etag = first
            .headers
            .iter()
            .find(|(n, _)| *n == "etag")
            .map(|(_, v)| v.clone());
        let modified = first
            .headers
            .iter()
            .find(|(n, _)| *n == "last-modified")
            .map(|(_, v)| v.clone());
        assert_eq!(modified.as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        let again =
            |inm, ims| conditional("text/plain", b"x".to_vec(), 784_111_777, &request(inm, ims)).status;
        assert_eq!(again(etag.as_deref(), None), 304);
        assert_eq!(again(None, modified.as_deref()), 304);
        assert_eq!(again(None, Some("Sun, 06 Nov 1994 08:49:36 GMT")), 200);
        // A mismatching ETag decides even when the date would match.
        assert_eq!(again(Some("\"other\""), modified.as_deref()), 200);
    }
}
