//! Video hints: where an archive video's playlist lives, read from its preview URL.
//!
//! Both listings describe a video with an image URL (GQL `seekPreviewsURL`, Helix
//! `thumbnail_url`) that contains the playlist's folder on the CDN, so parsing that URL locates
//! the playlist without a search. Pure string work, shared by both protocols' decoders, as is
//! reading whether a video was muted.

use serde_json::Value;

use super::{VideoHint, VideoOf};

/// Whether a video was muted, from its list of muted stretches (Helix `muted_segments`, GQL
/// `muteInfo.mutedSegmentConnection.nodes`), each `{offset, duration}` in seconds: `None` when
/// the answer has no such field (`list` is `None`) or it is malformed, `Some(false)` when it is
/// null or empty, `Some(true)` with at least one stretch. Twitch lists the stretches from its
/// mute pass on (the pass that mutes the CDN copy, on the hour; assumed simultaneous).
pub(super) fn muted_from(list: Option<&Value>) -> Option<bool> {
    match list? {
        Value::Null => Some(false),
        Value::Array(stretches) => {
            let seconds = |s: &Value, key: &str| s.get(key).and_then(Value::as_u64).is_some();
            let readable = stretches
                .iter()
                .all(|s| seconds(s, "offset") && seconds(s, "duration"));
            readable.then_some(!stretches.is_empty())
        }
        _ => None,
    }
}

/// The muted stretches of a list [`muted_from`] reads as muted, as (offset, duration) seconds;
/// empty otherwise.
pub(super) fn stretches_from(list: Option<&Value>) -> Vec<(u64, u64)> {
    if muted_from(list) != Some(true) {
        return Vec::new();
    }
    let seconds = |s: &Value, key: &str| s.get(key).and_then(Value::as_u64).unwrap_or(0);
    list.and_then(Value::as_array)
        .map(|stretches| {
            stretches
                .iter()
                .map(|s| (seconds(s, "offset"), seconds(s, "duration")))
                .collect()
        })
        .unwrap_or_default()
}

/// The CDN location in a video's preview URL (GQL `seekPreviewsURL`, Helix `thumbnail_url`):
/// the first path segment shaped like `{hash}_{login}_{stream_id}_{ts}` is the folder and
/// everything before it the domain, except that `static-cdn.jtvnw.net/cf_vods/{id}/` stands
/// for `https://{id}.cloudfront.net/`. `None` when no folder is found (placeholders such as
/// `404_processing` thumbnails, empty URLs).
pub(super) fn parse_preview_url(url: &str, public: bool) -> Option<VideoHint> {
    let (scheme, rest) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (host, path) = rest.split_once('/')?;
    if host.is_empty() {
        return None;
    }
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments.iter().position(|s| parse_folder(s).is_some())?;
    let (stream_id, ts) = parse_folder(segments[at])?;
    let before = &segments[..at];
    let domain = if host.eq_ignore_ascii_case("static-cdn.jtvnw.net") {
        // The image host only mirrors thumbnails; the CloudFront id names the VOD host.
        match before {
            ["cf_vods", id] if is_host_label(id) => format!("https://{id}.cloudfront.net/"),
            _ => return None,
        }
    } else {
        let mut domain = format!("{scheme}://{host}/");
        for segment in before.iter().filter(|s| !s.is_empty()) {
            domain.push_str(segment);
            domain.push('/');
        }
        domain
    };
    Some(VideoHint {
        broadcast: VideoOf::Stream(stream_id),
        domain,
        folder: segments[at].to_string(),
        ts: ts.to_string(),
        public,
        muted: None,
        muted_stretches: Vec::new(),
    })
}

/// `{hash}_{login}_{stream_id}_{ts}`: 20 lowercase hex digits, a login of `[A-Za-z0-9_]`,
/// then two decimal fields (stream id, `{ts}`) → (stream id, ts).
pub(crate) fn parse_folder(folder: &str) -> Option<(u64, &str)> {
    let (hash, rest) = folder.split_once('_')?;
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if hash.len() != 20 || !hash.bytes().all(hex) {
        return None;
    }
    let (rest, ts) = rest.rsplit_once('_')?;
    let (login, stream_id) = rest.rsplit_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let login_ok = !login.is_empty() && login.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !login_ok || !digits(stream_id) || !digits(ts) {
        return None;
    }
    Some((stream_id.parse().ok()?, ts))
}

fn is_host_label(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests;
