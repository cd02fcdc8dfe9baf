//! Twitch HLS media playlists: [`validate`] checks that what the VOD CDN answered really is a
//! media playlist (and not an error page, a master playlist or a truncated body) and summarises
//! it as a [`PlaylistSummary`]; [`make_playable`] rewrites it into a playlist that plays from
//! anywhere, with every URI absolute and muted segments named the way the CDN serves them.
//!
//! The module is pure (no I/O, no logging): it works on the bytes the fetch layer got, so the
//! fetcher, the simulated CDN, tests and a fuzz target all drive the same code, and every failure
//! is a [`PlaylistError`] value whose message a user can act on. It is deliberately not a general
//! HLS library: one line-oriented pass checks only what archiving needs (a header, a target
//! duration, segments each with a numeric `#EXTINF`), and the rewrite touches only URIs, so tags
//! it does not know (Twitch adds its own) survive byte for byte, line endings included. Slicing
//! goes through `get` and parsing through `Option`, so no input can make it panic.
//!
//! Leniency, decided once: a UTF-8 byte-order mark and blank lines or whitespace before
//! `#EXTM3U` are accepted (editors and proxies add them, and nothing else that starts with
//! `#EXTM3U` is anything but HLS); whitespace around lines is ignored; `#EXTINF` needs no comma
//! and may carry a title. Strict where it matters: a URI with no `#EXTINF`, an `#EXTINF` with no
//! URI after it (a truncated body) and a missing `#EXT-X-TARGETDURATION` are errors. A playlist
//! without `#EXT-X-ENDLIST` is valid: it is the EVENT playlist of a broadcast still live.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How the segments are packaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// MPEG transport stream segments (`N.ts`).
    Ts,
    /// Fragmented MP4: an `#EXT-X-MAP` init segment and `N.mp4` segments (newer and 4K/HEVC).
    Fmp4,
}

impl Container {
    /// `"ts"` or `"fmp4"`, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "fmp4",
        }
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a valid media playlist holds.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaylistSummary {
    /// Number of media segments.
    pub segments: u32,
    /// Segments whose URI names a muted part: `N-muted.ts` or `N-unmuted.ts` (and `.mp4`).
    pub muted_segments: u32,
    /// Sum of the `#EXTINF` durations.
    pub duration_seconds: f64,
    /// [`Container::Fmp4`] if `#EXT-X-MAP` is present or segments end in `.mp4`/`.m4s`.
    pub container: Container,
    /// `#EXT-X-ENDLIST` is present: the broadcast has ended and the playlist is complete.
    pub ended: bool,
    /// The `#EXT-X-TARGETDURATION` value, in seconds.
    pub target_duration: u32,
}

/// Why an answer is not a usable media playlist.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlaylistError {
    /// The answer is larger than the caller allows.
    #[error("the answer is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The answer is not UTF-8 text.
    #[error("the answer is not UTF-8 text, so it is not an HLS playlist")]
    NotUtf8,
    /// The answer does not start with `#EXTM3U` (an error page, an empty body, garbage).
    #[error("the answer is not an HLS playlist: it does not start with #EXTM3U")]
    NotHls,
    /// The answer lists variant streams (`#EXT-X-STREAM-INF`), not segments.
    #[error(
        "the answer is a master playlist (it lists #EXT-X-STREAM-INF variants), \
         not a media playlist of segments"
    )]
    MasterPlaylist,
    /// The playlist is well formed but lists no segment.
    #[error("the playlist lists no segments")]
    NoSegments,
    /// The playlist breaks the format at a 1-based line number.
    #[error("the playlist is malformed at line {line}: {reason}")]
    Malformed { line: usize, reason: String },
}

const BOM: char = '\u{feff}';
const UNMUTED: &str = "-unmuted";
const MUTED: &str = "-muted";
/// Tags whose `URI="..."` attribute names a resource and is made absolute by [`make_playable`].
const URI_TAGS: &[&str] = &[
    "#EXT-X-MAP",
    "#EXT-X-KEY",
    "#EXT-X-SESSION-KEY",
    "#EXT-X-PART",
    "#EXT-X-PRELOAD-HINT",
    "#EXT-X-RENDITION-REPORT",
    "#EXT-X-MEDIA",
    "#EXT-X-I-FRAME-STREAM-INF",
    "#EXT-X-SESSION-DATA",
];
/// Tags found only in master playlists.
const MASTER_TAGS: &[&str] = &["#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF"];

/// Accepts only an HLS media playlist no larger than `max_bytes`.
///
/// Checks run in this order, so the error names the first problem a user would fix: size,
/// encoding, `#EXTM3U` header, master playlist, then line by line, then segments and target
/// duration. Line numbers in [`PlaylistError::Malformed`] count from the very first byte.
pub fn validate(body: &[u8], max_bytes: usize) -> Result<PlaylistSummary, PlaylistError> {
    if body.len() > max_bytes {
        return Err(PlaylistError::TooLarge {
            size: body.len(),
            limit: max_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| PlaylistError::NotUtf8)?;
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut lines = text.split('\n').enumerate().map(|(i, line)| (i + 1, line.trim()));

    let header_line = loop {
        match lines.next() {
            Some((_, "")) => continue,
            Some((n, "#EXTM3U")) => break n,
            _ => return Err(PlaylistError::NotHls),
        }
    };
    if lines
        .clone()
        .any(|(_, line)| MASTER_TAGS.contains(&tag_name(line)))
    {
        return Err(PlaylistError::MasterPlaylist);
    }

    let mut segments = 0u32;
    let mut muted_segments = 0u32;
    let mut duration_seconds = 0.0f64;
    let mut has_map = false;
    let mut has_mp4_segment = false;
    let mut ended = false;
    let mut target_duration: Option<u32> = None;
    // The line and duration of an #EXTINF still waiting for its URI.
    let mut pending: Option<(usize, f64)> = None;

    for (n, line) in lines {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            let Some((_, duration)) = pending.take() else {
                return Err(malformed(
                    n,
                    format!("the segment URI {} has no #EXTINF before it", excerpt(line)),
                ));
            };
            segments = segments.saturating_add(1);
            if is_muted(line) {
                muted_segments = muted_segments.saturating_add(1);
            }
            if is_mp4(line) {
                has_mp4_segment = true;
            }
            duration_seconds += duration;
            if !duration_seconds.is_finite() {
                return Err(malformed(n, "the segment durations add up to infinity"));
            }
            continue;
        }
        let value = line.split_once(':').map(|(_, v)| v.trim());
        match tag_name(line) {
            "#EXTINF" => {
                if let Some((first, _)) = pending {
                    return Err(malformed(first, "#EXTINF is not followed by a segment URI"));
                }
                let text = value
                    .map(|v| v.split_once(',').map_or(v, |(d, _)| d).trim())
                    .unwrap_or("");
                let Some(duration) = parse_duration(text) else {
                    return Err(malformed(
                        n,
                        format!(
                            "the #EXTINF duration {} is not a number of seconds",
                            excerpt(text)
                        ),
                    ));
                };
                pending = Some((n, duration));
            }
            "#EXT-X-TARGETDURATION" => {
                let text = value.unwrap_or("");
                let parsed = text
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| text.parse::<u32>().ok())
                    .flatten();
                let Some(seconds) = parsed else {
                    return Err(malformed(
                        n,
                        format!(
                            "#EXT-X-TARGETDURATION {} is not a whole number of seconds",
                            excerpt(text)
                        ),
                    ));
                };
                if target_duration.is_some() {
                    return Err(malformed(n, "#EXT-X-TARGETDURATION appears twice"));
                }
                target_duration = Some(seconds);
            }
            "#EXT-X-MAP" => {
                if uri_attribute(line).is_none() {
                    return Err(malformed(n, "#EXT-X-MAP has no URI=\"...\" attribute"));
                }
                has_map = true;
            }
            "#EXT-X-ENDLIST" => ended = true,
            _ => {}
        }
    }

    if let Some((n, _)) = pending {
        return Err(malformed(
            n,
            "#EXTINF is not followed by a segment URI (is the answer truncated?)",
        ));
    }
    if segments == 0 {
        return Err(PlaylistError::NoSegments);
    }
    let Some(target_duration) = target_duration else {
        return Err(malformed(
            header_line,
            "the playlist has no #EXT-X-TARGETDURATION tag",
        ));
    };
    Ok(PlaylistSummary {
        segments,
        muted_segments,
        duration_seconds,
        container: if has_map || has_mp4_segment {
            Container::Fmp4
        } else {
            Container::Ts
        },
        ended,
        target_duration,
    })
}

/// A master playlist listing one variant per quality folder, each at `{quality}.m3u8` beside
/// it, in the archive's order (the primary, the source, first). HLS requires a `BANDWIDTH`;
/// the archive does not know it, so it is estimated from the folder's name (`720p60` →
/// 1280x720 at 60 fps): players use it only to choose a starting variant.
pub fn master_playlist(qualities: &[String]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    for quality in qualities {
        let (bandwidth, attributes) = variant_attributes(quality);
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth}{attributes}\n{quality}.m3u8\n"
        ));
    }
    out
}

/// `(bandwidth, extra attributes)` for a quality folder name.
fn variant_attributes(quality: &str) -> (u64, String) {
    if quality == "audio_only" {
        return (160_000, ",CODECS=\"mp4a.40.2\"".to_string());
    }
    let parsed = quality.split_once('p').and_then(|(height, fps)| {
        let height: u64 = height.parse().ok()?;
        let fps: u64 = if fps.is_empty() { 30 } else { fps.parse().ok()? };
        Some((height, fps))
    });
    match parsed {
        Some((height, fps)) => {
            // 16:9 with an even width; about 0.1 bit per pixel per frame.
            let width = (height * 16 / 9 + 1) & !1;
            let bandwidth = (width * height * fps / 10).max(100_000);
            (
                bandwidth,
                format!(",RESOLUTION={width}x{height},FRAME-RATE={fps}.000"),
            )
        }
        // The source ("chunked"): the best there is, of unknown size.
        None => (8_000_000, String::new()),
    }
}

/// The directory of a playlist URL, with its trailing '/': what its relative URIs resolve
/// against (`https://d/p/chunked/index-dvr.m3u8` → `https://d/p/chunked/`).
pub fn directory_of(url: &str) -> &str {
    match url.rfind('/') {
        Some(slash) => &url[..=slash],
        None => url,
    }
}

/// Makes every URI absolute against `base_url` (which ends with '/':
/// `"{domain}{path}/{quality}/"`): segment URI lines and `URI="..."` attributes of tags
/// (`#EXT-X-MAP`, and also `#EXT-X-KEY` / `#EXT-X-PART` and the other URI-bearing tags if
/// present). Rewrites `-unmuted` to `-muted` in segment and MAP URIs (Twitch lists
/// `N-unmuted.ts` after muting, which answers 403). URIs that are already absolute keep their
/// host but still get the muted rewrite; a URI starting with '/' is resolved against the base
/// URL's origin; comments and other tags are kept verbatim. Line endings are preserved (LF or
/// CRLF, line by line) and the output ends with a newline iff the input does.
///
/// Details: any URI with a scheme (`scheme:` as in RFC 3986, so also `data:` or `skd:`) counts
/// as absolute; `//host/x` takes the base's scheme; `.` and `..` segments are resolved; a
/// `base_url` without its trailing '/' is still taken as the directory. Only the file name's
/// stem is muted (`12-unmuted.ts` → `12-muted.ts`), never a host or directory. Segment URI lines
/// lose surrounding whitespace; a byte-order mark is kept. Meant for text that [`validate`]
/// accepted; on anything else it still returns without panicking.
pub fn make_playable(text: &str, base_url: &str) -> String {
    make_playable_with(text, base_url, Audio::Muted)
}

/// Which audio a served playlist points at where Twitch muted a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audio {
    /// `-unmuted` is rewritten to `-muted`: the silent copy, which lasts.
    Muted,
    /// `-unmuted` is kept: the original audio, which answers for about a day after muting.
    Original,
}

/// [`make_playable`], with `audio` deciding whether `-unmuted` URIs are rewritten.
pub fn make_playable_with(text: &str, base_url: &str, audio: Audio) -> String {
    let mut base = Base::parse(base_url);
    base.audio = audio;
    let mut out = String::with_capacity(text.len() + text.len() / 2 + 64);
    let body = match text.strip_prefix(BOM) {
        Some(rest) => {
            out.push(BOM);
            rest
        }
        None => text,
    };
    for piece in body.split_inclusive('\n') {
        let (content, ending) = if let Some(c) = piece.strip_suffix("\r\n") {
            (c, "\r\n")
        } else if let Some(c) = piece.strip_suffix('\n') {
            (c, "\n")
        } else {
            (piece, "")
        };
        let trimmed = content.trim();
        if trimmed.is_empty() {
            out.push_str(content);
        } else if trimmed.starts_with('#') {
            rewrite_tag(content, &base, &mut out);
        } else if !base.push_plain_child(trimmed, &mut out) {
            out.push_str(&base.unmute(base.resolve(trimmed)));
        }
        out.push_str(ending);
    }
    out
}

/// The absolute URLs of the media segments of `text` (a playlist fetched from `playlist_url`),
/// in order, as [`make_playable_with`] serves them with `audio` (so with [`Audio::Muted`]
/// `-unmuted` reads `-muted`: what a player would ask).
pub fn segment_urls(text: &str, playlist_url: &str, audio: Audio) -> Vec<String> {
    make_playable_with(text, directory_of(playlist_url), audio)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Whether `text` lists a segment by its `-unmuted` original name (Twitch's listing after a
/// mute pass).
pub fn lists_originals(text: &str) -> bool {
    text.contains(UNMUTED)
        && text
            .lines()
            .map(str::trim)
            .any(|line| !line.is_empty() && !line.starts_with('#') && file_name(line).0.ends_with(UNMUTED))
}

/// One stretch of consecutive muted segments (`-muted` or `-unmuted`).
#[derive(Clone, Debug, PartialEq)]
pub struct MutedRange {
    /// First and last segment index (0-based, as listed).
    pub first: u32,
    pub last: u32,
    /// Where it starts and ends in the broadcast, in seconds (from the `#EXTINF` durations).
    pub from_seconds: f64,
    pub to_seconds: f64,
}

/// The muted stretches of `text`, in order; empty when nothing is muted.
pub fn muted_ranges(text: &str) -> Vec<MutedRange> {
    let mut ranges: Vec<MutedRange> = Vec::new();
    let (mut index, mut elapsed, mut duration) = (0u32, 0.0f64, 0.0f64);
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(0.0);
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if is_muted(line) {
            match ranges.last_mut() {
                Some(range) if range.last + 1 == index => {
                    range.last = index;
                    range.to_seconds = elapsed + duration;
                }
                _ => ranges.push(MutedRange {
                    first: index,
                    last: index,
                    from_seconds: elapsed,
                    to_seconds: elapsed + duration,
                }),
            }
        }
        index += 1;
        elapsed += duration;
        duration = 0.0;
    }
    ranges
}

/// `text` as Twitch lists it after a mute pass that muted `stretches` (offset and duration in
/// seconds, as a video's `muted_segments` / `muteInfo` give them): each segment they cover is
/// listed by its `-unmuted` original name (`12.ts` → `12-unmuted.ts`), as the re-fetched
/// playlist would list it. `None` when that cannot be said for sure — a stretch that does
/// not start and end on segment boundaries, one past the listed segments, fragmented MP4
/// segments (their muted naming is not documented), or nothing left to mark — so the
/// playlist is fetched again instead.
pub fn mark_muted(text: &str, stretches: &[(u64, u64)]) -> Option<String> {
    const EPSILON: f64 = 0.01;
    let mut starts = Vec::new();
    let (mut elapsed, mut duration) = (0.0f64, 0.0f64);
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = parse_duration(rest.split(',').next().unwrap_or(""))?;
        } else if !line.starts_with('#') {
            starts.push((elapsed, duration));
            elapsed += duration;
            duration = 0.0;
        }
    }
    // Whole seconds: a stretch ending within a second of the end covers the short last segment.
    let stretches: Vec<(f64, f64)> = stretches
        .iter()
        .map(|&(offset, length)| {
            let to = (offset + length) as f64;
            (
                offset as f64,
                if (to - elapsed).abs() < 1.0 { elapsed } else { to },
            )
        })
        .collect();
    let on_boundary =
        |at: f64| (at - elapsed).abs() < EPSILON || starts.iter().any(|(s, _)| (s - at).abs() < EPSILON);
    let exact = stretches
        .iter()
        .all(|&(from, to)| to > from && to <= elapsed + EPSILON && on_boundary(from) && on_boundary(to));
    if stretches.is_empty() || !exact {
        return None;
    }
    let covered = |(start, length): (f64, f64)| {
        stretches
            .iter()
            .any(|&(from, to)| start + EPSILON >= from && start + length <= to + EPSILON)
    };
    let mut out = String::with_capacity(text.len() + 16 * stretches.len());
    let (mut index, mut marked) = (0usize, 0usize);
    for line in text.split_inclusive('\n') {
        let content = line.trim();
        if content.is_empty() || content.starts_with('#') {
            out.push_str(line);
            continue;
        }
        let segment = starts.get(index).copied();
        index += 1;
        if !segment.is_some_and(covered) || is_muted(content) {
            out.push_str(line);
            continue;
        }
        if is_mp4(content) {
            return None;
        }
        let (start, end) = path_range(content);
        let path = content.get(start..end)?;
        let dot = path
            .rfind('.')
            .filter(|&dot| dot > path.rfind('/').map_or(0, |slash| slash + 1))?;
        out.push_str(content.get(..start + dot)?);
        out.push_str(UNMUTED);
        out.push_str(content.get(start + dot..)?);
        out.push_str(&line[line.trim_end().len()..]);
        marked += 1;
    }
    (marked > 0).then_some(out)
}

/// The absolute URLs of the `-unmuted` originals `text` lists, in order; empty when nothing
/// was muted (or the playlist was captured before the mute pass).
pub fn original_urls(text: &str, playlist_url: &str) -> Vec<String> {
    // Most playlists were never muted: skip the rendering for them.
    if !lists_originals(text) {
        return Vec::new();
    }
    segment_urls(text, playlist_url, Audio::Original)
        .into_iter()
        .filter(|url| file_name(url).0.ends_with(UNMUTED))
        .collect()
}

fn malformed(line: usize, reason: impl Into<String>) -> PlaylistError {
    PlaylistError::Malformed {
        line,
        reason: reason.into(),
    }
}

/// A quoted, shortened copy of user data for error messages.
fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

/// `#EXTINF` for `#EXTINF:10,`; the whole line for a tag without a value; `""` for non-tags.
fn tag_name(line: &str) -> &str {
    if !line.starts_with('#') {
        return "";
    }
    line.split_once(':').map_or(line, |(name, _)| name).trim_end()
}

/// A decimal number of seconds (`10`, `10.000`, `.5`): digits and at most one point.
fn parse_duration(text: &str) -> Option<f64> {
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let points = text.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || points > 1 || digits + points != text.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|d| d.is_finite())
}

/// The byte range of the quoted value of the `URI` attribute in a tag line, quotes excluded.
fn uri_attribute(line: &str) -> Option<(usize, usize)> {
    let mut at = line.find(':')? + 1;
    loop {
        let rest = line.get(at..)?;
        let stop = rest.find(['=', ','])?;
        let name = rest.get(..stop)?.trim();
        let after = at + stop + 1;
        if rest.as_bytes().get(stop) == Some(&b',') {
            at = after; // an attribute without a value
            continue;
        }
        let value = line.get(after..)?;
        if let Some(quoted) = value.strip_prefix('"') {
            let start = after + 1;
            let end = start + quoted.find('"')?;
            if name == "URI" {
                return Some((start, end));
            }
            at = end + 1 + line.get(end + 1..)?.find(',')? + 1;
        } else {
            at = after + value.find(',')? + 1;
        }
    }
}

/// Writes a comment or tag line, with its `URI="..."` attribute made absolute if it has one.
fn rewrite_tag(content: &str, base: &Base<'_>, out: &mut String) {
    let name = tag_name(content.trim_start());
    let range = URI_TAGS.contains(&name).then(|| uri_attribute(content)).flatten();
    let parts = range.and_then(|(start, end)| {
        Some((
            content.get(..start)?,
            content.get(start..end)?,
            content.get(end..)?,
        ))
    });
    let Some((head, uri, tail)) = parts else {
        out.push_str(content);
        return;
    };
    let resolved = base.resolve(uri);
    out.push_str(head);
    if name == "#EXT-X-MAP" {
        out.push_str(&base.unmute(resolved));
    } else {
        out.push_str(&resolved);
    }
    out.push_str(tail);
}

/// The length of the scheme if `s` starts with one (`http:` → 4); RFC 3986 `ALPHA *(ALPHA /
/// DIGIT / "+" / "-" / ".") ":"`. A relative reference cannot look like this.
fn scheme_len(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = s.get(..colon)?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(colon)
}

/// The byte range of the path of a URI or reference: after `scheme:` and `//authority`,
/// before `?query` or `#fragment`.
fn path_range(uri: &str) -> (usize, usize) {
    let mut start = scheme_len(uri).map_or(0, |colon| colon + 1);
    if uri.get(start..).is_some_and(|rest| rest.starts_with("//")) {
        let authority = start + 2;
        start = uri
            .get(authority..)
            .and_then(|rest| rest.find(['/', '?', '#']))
            .map_or(uri.len(), |i| authority + i);
    }
    let end = uri
        .get(start..)
        .and_then(|rest| rest.find(['?', '#']))
        .map_or(uri.len(), |i| start + i);
    (start, end)
}

/// The file name of a URI's path split into stem and extension (without the point).
fn file_name(uri: &str) -> (&str, &str) {
    let (start, end) = path_range(uri);
    let path = uri.get(start..end).unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').unwrap_or((name, ""))
}

fn is_muted(uri: &str) -> bool {
    let (stem, _) = file_name(uri);
    stem.ends_with(MUTED) || stem.ends_with(UNMUTED)
}

fn is_mp4(uri: &str) -> bool {
    let (_, ext) = file_name(uri);
    ext.eq_ignore_ascii_case("mp4") || ext.eq_ignore_ascii_case("m4s")
}

/// `…/12-unmuted.ts?x` → `…/12-muted.ts?x`; anything else unchanged.
fn unmute(uri: &str) -> String {
    let (start, end) = path_range(uri);
    let name_start = uri
        .get(start..end)
        .and_then(|path| path.rfind('/'))
        .map_or(start, |i| start + i + 1);
    let stem_end = uri
        .get(name_start..end)
        .and_then(|name| name.rfind('.'))
        .map_or(end, |i| name_start + i);
    let parts = uri
        .get(name_start..stem_end)
        .filter(|stem| stem.ends_with(UNMUTED))
        .and_then(|_| Some((uri.get(..stem_end - UNMUTED.len())?, uri.get(stem_end..)?)));
    match parts {
        Some((head, tail)) => format!("{head}{MUTED}{tail}"),
        None => uri.to_owned(),
    }
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986 §5.2.4), never above the root.
fn remove_dot_segments(path: &str) -> String {
    let Some(rest) = path.strip_prefix('/') else {
        return path.to_owned();
    };
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            other => {
                kept.push(other);
                continue;
            }
        }
        if last {
            kept.push(""); // "a/b/.." names the directory "a/"
        }
    }
    format!("/{}", kept.join("/"))
}

/// A base URL taken apart once for [`Base::resolve`].
struct Base<'a> {
    /// `http`, or empty when the base has no scheme.
    scheme: &'a str,
    /// `http://host:port`, or empty when the base has no scheme.
    origin: &'a str,
    /// The directory path, ending with '/'.
    dir: String,
    /// `dir` starts with '/' and has no `.`/`..` segments: a plain file name resolves to
    /// `origin + dir + name` with nothing to normalize.
    plain_dir: bool,
    /// Whether resolved segment and MAP URIs are muted.
    audio: Audio,
}

impl<'a> Base<'a> {
    fn parse(url: &'a str) -> Self {
        let url = url.find(['?', '#']).and_then(|i| url.get(..i)).unwrap_or(url);
        let (path_start, _) = path_range(url);
        let scheme = scheme_len(url).and_then(|i| url.get(..i)).unwrap_or("");
        let origin = url.get(..path_start).unwrap_or("");
        let path = url.get(path_start..).unwrap_or("");
        let mut dir = if path.is_empty() && !origin.is_empty() {
            String::from("/")
        } else {
            path.to_owned()
        };
        if !dir.is_empty() && !dir.ends_with('/') {
            dir.push('/');
        }
        let plain_dir = !origin.is_empty() && normalize(&dir) == dir;
        Base {
            scheme,
            origin,
            dir,
            plain_dir,
            audio: Audio::Muted,
        }
    }

    /// [`unmute`] unless the original audio is wanted.
    fn unmute(&self, uri: String) -> String {
        match self.audio {
            Audio::Muted => unmute(&uri),
            Audio::Original => uri,
        }
    }

    /// The fast path of [`make_playable`] for the usual segment line, a bare file name such as
    /// `12.ts` or `12-unmuted.ts`: writes what `unmute(resolve(name))` would, without the
    /// intermediate strings, and returns whether it applied.
    fn push_plain_child(&self, name: &str, out: &mut String) -> bool {
        let plain = self.plain_dir
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !plain {
            return false;
        }
        out.push_str(self.origin);
        out.push_str(&self.dir);
        let stem_end = name.rfind('.').unwrap_or(name.len());
        let muted = name[..stem_end]
            .strip_suffix(UNMUTED)
            .filter(|_| self.audio == Audio::Muted);
        match muted {
            Some(head) => {
                out.push_str(head);
                out.push_str(MUTED);
                out.push_str(&name[stem_end..]);
            }
            None => out.push_str(name),
        }
        true
    }

    fn resolve(&self, reference: &str) -> String {
        if reference.is_empty() || scheme_len(reference).is_some() {
            return reference.to_owned();
        }
        if reference.starts_with("//") {
            return if self.scheme.is_empty() {
                reference.to_owned()
            } else {
                format!("{}:{reference}", self.scheme)
            };
        }
        let split = reference.find(['?', '#']).unwrap_or(reference.len());
        let (path, suffix) = reference.split_at_checked(split).unwrap_or((reference, ""));
        let path = if path.starts_with('/') {
            normalize(path)
        } else if path.is_empty() {
            self.dir.clone()
        } else {
            normalize(&format!("{}{path}", self.dir))
        };
        format!("{}{path}{suffix}", self.origin)
    }
}

fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        remove_dot_segments(path)
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 8 << 20;
    const BASE: &str = "https://d2e2de1etea730.cloudfront.net/abc_x_1_2/chunked/";

    const TS: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:10
#ID3-EQUIV-TDTG:2022-09-24T20:21:30
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-TWITCH-ELAPSED-SECS:0.000
#EXT-X-TWITCH-TOTAL-SECS:24.500
#EXTINF:10.000,
0.ts
#EXTINF:10.000,
1-unmuted.ts
#EXTINF:4.500,
2-muted.ts
#EXT-X-ENDLIST
";

    #[test]
    fn a_mute_pass_is_marked_from_the_stretches_a_video_lists() {
        let text = "#EXTM3U\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1.ts\n#EXTINF:10.000,\n2.ts\n#EXTINF:4.500,\n3.ts\n#EXT-X-ENDLIST\n";
        let marked = mark_muted(text, &[(10, 20)]).expect("segment-aligned");
        assert_eq!(
            marked,
            "#EXTM3U\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1-unmuted.ts\n#EXTINF:10.000,\n2-unmuted.ts\n#EXTINF:4.500,\n3.ts\n#EXT-X-ENDLIST\n"
        );
        // As the re-fetched playlist would read: its muted ranges are the video's stretches.
        let ranges = muted_ranges(&marked);
        assert_eq!((ranges[0].first, ranges[0].last), (1, 2));
        assert!(lists_originals(&marked));
        // Up to the short last segment, and CRLF kept.
        let crlf = text.replace('\n', "\r\n");
        let end = mark_muted(&crlf, &[(30, 4)]).expect("the last segment");
        assert!(end.contains("3-unmuted.ts\r\n"), "{end}");
        // Not sure: off a segment boundary, past the end, empty, fMP4, nothing left to mark.
        assert_eq!(mark_muted(text, &[(15, 10)]), None);
        assert_eq!(mark_muted(text, &[(30, 30)]), None);
        assert_eq!(mark_muted(text, &[]), None);
        let mp4 = "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:10.000,\n0.mp4\n#EXT-X-ENDLIST\n";
        assert_eq!(mark_muted(mp4, &[(0, 10)]), None);
        assert_eq!(mark_muted(&marked, &[(10, 20)]), None);
    }

    #[test]
    fn muted_ranges_are_the_runs_of_muted_segments_with_their_times() {
        let text = "#EXTM3U\n#EXTINF:10.000,\n0.ts\n#EXTINF:10.000,\n1-unmuted.ts\n#EXTINF:10.000,\n2-muted.ts\n#EXTINF:10.000,\n3.ts\n#EXTINF:4.500,\n4-muted.ts\n#EXT-X-ENDLIST\n";
        let ranges = muted_ranges(text);
        assert_eq!(
            ranges,
            [
                MutedRange {
                    first: 1,
                    last: 2,
                    from_seconds: 10.0,
                    to_seconds: 30.0
                },
                MutedRange {
                    first: 4,
                    last: 4,
                    from_seconds: 40.0,
                    to_seconds: 44.5
                },
            ]
        );
        assert!(muted_ranges("#EXTM3U\n#EXTINF:10.000,\n0.ts\n").is_empty());
    }

    #[test]
    fn segment_urls_are_absolute_and_muted_as_served() {
        let url = format!("{BASE}index-dvr.m3u8");
        assert_eq!(
            segment_urls(TS, &url, Audio::Muted),
            vec![
                format!("{BASE}0.ts"),
                format!("{BASE}1-muted.ts"),
                format!("{BASE}2-muted.ts")
            ]
        );
        assert!(segment_urls("#EXTM3U\n", &url, Audio::Muted).is_empty());
    }

    #[test]
    fn original_audio_keeps_unmuted_uris_and_nothing_else_changes() {
        let url = format!("{BASE}index-dvr.m3u8");
        assert_eq!(
            segment_urls(TS, &url, Audio::Original),
            vec![
                format!("{BASE}0.ts"),
                format!("{BASE}1-unmuted.ts"),
                format!("{BASE}2-muted.ts")
            ]
        );
        assert_eq!(original_urls(TS, &url), vec![format!("{BASE}1-unmuted.ts")]);
        assert!(original_urls("#EXTM3U\n#EXTINF:10,\n0.ts\n", &url).is_empty());
        assert!(lists_originals(TS));
        assert!(!lists_originals("#EXTM3U\n#X-unmuted\n#EXTINF:10,\n0-muted.ts\n"));
        // The two renderings differ only where a URI names an original.
        let fmp4 = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init-0-unmuted.mp4\"\n\
                    #EXTINF:2,\n0-unmuted.mp4\n#EXTINF:2,\n../x/1-unmuted.mp4\n";
        let original = make_playable_with(fmp4, BASE, Audio::Original);
        assert_eq!(
            original,
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"{BASE}init-0-unmuted.mp4\"\n\
                 #EXTINF:2,\n{BASE}0-unmuted.mp4\n#EXTINF:2,\n\
                 https://d2e2de1etea730.cloudfront.net/abc_x_1_2/x/1-unmuted.mp4\n"
            )
        );
        assert_eq!(make_playable(fmp4, BASE), original.replace("-unmuted", "-muted"));
        assert_eq!(
            make_playable_with(TS, BASE, Audio::Muted),
            make_playable(TS, BASE)
        );
    }

    const FMP4: &str = "#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-MAP:URI=\"init-0-unmuted.mp4\"
#EXTINF:2.000,
0.mp4
#EXTINF:2.000,
1.mp4
";

    fn summary(
        segments: u32,
        muted_segments: u32,
        duration_seconds: f64,
        container: Container,
        ended: bool,
        target_duration: u32,
    ) -> PlaylistSummary {
        PlaylistSummary {
            segments,
            muted_segments,
            duration_seconds,
            container,
            ended,
            target_duration,
        }
    }

    fn check(input: &str, expected: Result<PlaylistSummary, PlaylistError>) {
        assert_eq!(validate(input.as_bytes(), LIMIT), expected, "input:\n{input}");
    }

    fn check_playable(input: &str, base: &str, expected: &str) {
        let out = make_playable(input, base);
        assert_eq!(out, expected, "input:\n{input}");
        // What validate accepted, it accepts again after the rewrite, with the same summary.
        if let Ok(before) = validate(input.as_bytes(), LIMIT) {
            assert_eq!(validate(out.as_bytes(), LIMIT), Ok(before), "output:\n{out}");
        }
    }

    fn bad(line: usize, reason: &str) -> Result<PlaylistSummary, PlaylistError> {
        Err(malformed(line, reason))
    }

    #[test]
    fn summaries() {
        check(TS, Ok(summary(3, 2, 24.5, Container::Ts, true, 10)));
        check(FMP4, Ok(summary(2, 0, 4.0, Container::Fmp4, false, 2)));
        // fMP4 recognised by segment extension alone.
        check(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n0.m4s\n#EXTINF:4,\n1-muted.mp4\n",
            Ok(summary(2, 1, 8.0, Container::Fmp4, false, 4)),
        );
        // EXTINF variants, BOM, leading blank lines, trailing whitespace, unknown tags, query.
        check(
            "\u{feff}\n  \n#EXTM3U  \n#EXT-X-TARGETDURATION:10 \n#EXT-X-FOO:bar\n# comment\n\
             #EXTINF:10,\n0.ts  \n#EXTINF:10.000,title, with commas\n1-unmuted.ts?t=1\n\
             #EXTINF:3\n\n#EXT-X-DISCONTINUITY\nhttps://h/2.ts\n#EXT-X-ENDLIST",
            Ok(summary(3, 1, 23.0, Container::Ts, true, 10)),
        );
        // CRLF.
        check(
            &TS.replace('\n', "\r\n"),
            Ok(summary(3, 2, 24.5, Container::Ts, true, 10)),
        );
    }

    #[test]
    fn size_limit_is_exact() {
        let body = TS.as_bytes();
        let n = body.len();
        assert!(validate(body, n).is_ok());
        assert_eq!(
            validate(body, n - 1),
            Err(PlaylistError::TooLarge {
                size: n,
                limit: n - 1
            })
        );
        assert_eq!(
            PlaylistError::TooLarge {
                size: 9123456,
                limit: 8388608
            }
            .to_string(),
            "the answer is 9123456 bytes, over the 8388608-byte limit"
        );
        // Size is checked before anything else.
        assert_eq!(
            validate(&[0xff; 10], 9),
            Err(PlaylistError::TooLarge { size: 10, limit: 9 })
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            validate(b"#EXTM3U\n\xff\xfe.ts\n", LIMIT),
            Err(PlaylistError::NotUtf8)
        );
        for not_hls in [
            "",
            "\n\n  ",
            "<!DOCTYPE html><html><body>403 Forbidden</body></html>",
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>",
            "garbage\n#EXTM3U\n",
            "#EXTM3U8\n#EXTINF:1,\n0.ts\n",
            "#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n0.ts\n",
            "{\"error\":\"Not Found\"}",
        ] {
            check(not_hls, Err(PlaylistError::NotHls));
        }
        check(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080\nchunked/index-dvr.m3u8\n",
            Err(PlaylistError::MasterPlaylist),
        );
        check(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-ENDLIST\n",
            Err(PlaylistError::NoSegments),
        );
        check("#EXTM3U\n", Err(PlaylistError::NoSegments));
    }

    #[test]
    fn malformed_lines() {
        let cases: Vec<(&str, Result<PlaylistSummary, PlaylistError>)> = vec![
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:ten,\n0.ts\n",
                bad(3, "the #EXTINF duration \"ten\" is not a number of seconds"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:-1,\n0.ts\n",
                bad(3, "the #EXTINF duration \"-1\" is not a number of seconds"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF\n0.ts\n",
                bad(3, "the #EXTINF duration \"\" is not a number of seconds"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:NaN,\n0.ts\n",
                bad(3, "the #EXTINF duration \"NaN\" is not a number of seconds"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n0.ts\n#EXTINF:10,\n",
                bad(
                    5,
                    "#EXTINF is not followed by a segment URI (is the answer truncated?)",
                ),
            ),
            (
                "#EXTM3U\r\n#EXT-X-TARGETDURATION:10\r\n#EXTINF:10,\r\n#EXTINF:10,\r\n0.ts\r\n",
                bad(3, "#EXTINF is not followed by a segment URI"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n0.ts\n",
                bad(3, "the segment URI \"0.ts\" has no #EXTINF before it"),
            ),
            (
                "\n#EXTM3U\n#EXTINF:10,\n0.ts\n",
                bad(2, "the playlist has no #EXT-X-TARGETDURATION tag"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10.5\n#EXTINF:10,\n0.ts\n",
                bad(
                    2,
                    "#EXT-X-TARGETDURATION \"10.5\" is not a whole number of seconds",
                ),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-TARGETDURATION:10\n",
                bad(3, "#EXT-X-TARGETDURATION appears twice"),
            ),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n#EXTINF:2,\n0.mp4\n",
                bad(3, "#EXT-X-MAP has no URI=\"...\" attribute"),
            ),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
        assert_eq!(
            malformed(7, "x").to_string(),
            "the playlist is malformed at line 7: x"
        );
    }

    #[test]
    fn playable_ts() {
        let expected = format!(
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:10
#ID3-EQUIV-TDTG:2022-09-24T20:21:30
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-TWITCH-ELAPSED-SECS:0.000
#EXT-X-TWITCH-TOTAL-SECS:24.500
#EXTINF:10.000,
{BASE}0.ts
#EXTINF:10.000,
{BASE}1-muted.ts
#EXTINF:4.500,
{BASE}2-muted.ts
#EXT-X-ENDLIST
"
        );
        check_playable(TS, BASE, &expected);
        // CRLF round trip, and no final newline stays without one.
        check_playable(&TS.replace('\n', "\r\n"), BASE, &expected.replace('\n', "\r\n"));
        check_playable(TS.trim_end(), BASE, expected.trim_end());
        // Mixed endings are kept line by line.
        check_playable(
            "#EXTM3U\r\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\r\n0.ts\n",
            "http://h/",
            "#EXTM3U\r\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\r\nhttp://h/0.ts\n",
        );
    }

    #[test]
    fn playable_fmp4() {
        let base = "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/";
        check_playable(
            FMP4,
            base,
            &FMP4
                .replace(
                    "URI=\"init-0-unmuted.mp4\"",
                    &format!("URI=\"{base}init-0-muted.mp4\""),
                )
                .replace("\n0.mp4", &format!("\n{base}0.mp4"))
                .replace("\n1.mp4", &format!("\n{base}1.mp4")),
        );
        // Other attributes and other URI tags; KEY URIs are not muted, unknown tags untouched.
        check_playable(
            "#EXT-X-MAP:BYTERANGE=\"720@0\",URI=\"/x/init-unmuted.mp4\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"key-unmuted\",IV=0x1\n\
             #EXT-X-PART:DURATION=1.0,URI=\"p.0.mp4\"\n\
             #EXT-X-TWITCH-INFO:URI=\"keep.ts\"\n\
             #EXT-X-KEY:METHOD=NONE\n",
            "http://h:1/a/b/",
            "#EXT-X-MAP:BYTERANGE=\"720@0\",URI=\"http://h:1/x/init-muted.mp4\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"http://h:1/a/b/key-unmuted\",IV=0x1\n\
             #EXT-X-PART:DURATION=1.0,URI=\"http://h:1/a/b/p.0.mp4\"\n\
             #EXT-X-TWITCH-INFO:URI=\"keep.ts\"\n\
             #EXT-X-KEY:METHOD=NONE\n",
        );
    }

    #[test]
    fn resolution() {
        let base = "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/";
        let cases = [
            // Relative, with a path prefix in the base.
            ("0.ts", "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/0.ts"),
            (
                "3-unmuted.ts",
                "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/3-muted.ts",
            ),
            (
                "../160p30/0.ts",
                "http://127.0.0.1:9/cdn/vods/abc_x_1_2/160p30/0.ts",
            ),
            (
                "./0.ts?t=1",
                "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/0.ts?t=1",
            ),
            ("?t=1", "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/?t=1"),
            // Root-relative: against the origin.
            ("/other/4-unmuted.ts", "http://127.0.0.1:9/other/4-muted.ts"),
            ("/../x.ts", "http://127.0.0.1:9/x.ts"),
            // Network-path: the base's scheme.
            ("//cdn.example/5.ts", "http://cdn.example/5.ts"),
            // Absolute: untouched apart from muting the file name only.
            ("https://other.example/v/0.ts", "https://other.example/v/0.ts"),
            (
                "https://a-unmuted.example/b-unmuted/6-unmuted.ts?q=7-unmuted.ts",
                "https://a-unmuted.example/b-unmuted/6-muted.ts?q=7-unmuted.ts",
            ),
            ("HTTP://H/7-unmuted.mp4", "HTTP://H/7-muted.mp4"),
            ("https://h-unmuted", "https://h-unmuted"),
        ];
        for (uri, expected) in cases {
            let input = format!("#EXTINF:1,\n{uri}\n");
            assert_eq!(
                make_playable(&input, base),
                format!("#EXTINF:1,\n{expected}\n"),
                "uri {uri}"
            );
        }
        // A base without its trailing slash is still the directory; its query is ignored.
        assert_eq!(
            make_playable("0.ts", "http://h/a/chunked"),
            "http://h/a/chunked/0.ts"
        );
        assert_eq!(make_playable("0.ts", "http://h/a/?sig=1"), "http://h/a/0.ts");
        assert_eq!(make_playable("0.ts", "http://h"), "http://h/0.ts");
    }

    #[test]
    fn ended_or_live() {
        let live = TS.replace("#EXT-X-ENDLIST\n", "");
        check(&live, Ok(summary(3, 2, 24.5, Container::Ts, false, 10)));
        let out = make_playable(&live, BASE);
        assert!(!out.contains("ENDLIST"));
        assert_eq!(validate(out.as_bytes(), LIMIT).map(|s| s.ended), Ok(false));
    }

    #[test]
    fn container_strings() {
        assert_eq!(Container::Ts.as_str(), "ts");
        assert_eq!(Container::Fmp4.to_string(), "fmp4");
    }

    /// xorshift64: deterministic, no crates.
    struct Xorshift64(u64);

    impl Xorshift64 {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
    }

    #[test]
    fn never_panics() {
        const TOKENS: &[&[u8]] = &[
            b"\n",
            b"\r\n",
            b"\r",
            b",",
            b":",
            b"\"",
            b"=",
            b"#",
            b"/",
            b"..",
            b"//",
            b"?",
            b"#EXTINF:",
            b"#EXTINF:10.0,",
            b"#EXT-X-MAP:URI=\"",
            b"#EXT-X-KEY:METHOD=AES-128,URI=\"",
            b"#EXT-X-STREAM-INF:",
            b"#EXT-X-TARGETDURATION:",
            b"#EXT-X-ENDLIST",
            b"URI=\"",
            b"-unmuted",
            b"-muted",
            b".mp4",
            b"http://",
            b"\xef\xbb\xbf",
            "é€😀".as_bytes(),
            b"\xff",
            b"\xc3",
            b"99999999999999999999999",
            b"1e400",
        ];
        let seeds: Vec<Vec<u8>> = vec![
            TS.into(),
            FMP4.into(),
            TS.replace('\n', "\r\n").into(),
            b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n".to_vec(),
            b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:1,\n/a/0.ts\n"
                .to_vec(),
            Vec::new(),
        ];
        let bases = [
            BASE,
            "http://127.0.0.1:9/cdn/vods/abc_x_1_2/chunked/",
            "",
            "/",
            "x",
            "http://",
            "http:",
            "://",
            "\u{feff}é?#",
        ];
        let mut rng = Xorshift64(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..4000 {
            let mut input = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(6) {
                let at = rng.below(input.len() + 1);
                match rng.below(5) {
                    0 => {
                        if let Some(b) = input.get_mut(at) {
                            *b = rng.next() as u8;
                        }
                    }
                    1 | 2 => {
                        let token = TOKENS[rng.below(TOKENS.len())];
                        input.splice(at..at, token.iter().copied());
                    }
                    3 => {
                        let end = (at + rng.below(16)).min(input.len());
                        input.drain(at..end);
                    }
                    _ => input.truncate(at),
                }
            }
            let limit = rng.below(input.len() + 2);
            let _ = validate(&input, limit);
            let result = validate(&input, LIMIT);
            let text = String::from_utf8_lossy(&input);
            for base in bases {
                let _ = make_playable(&text, base);
            }
            if let Ok(before) = result {
                accepted += 1;
                for base in &bases[..2] {
                    let out = make_playable(&text, base);
                    assert_eq!(
                        validate(out.as_bytes(), LIMIT),
                        Ok(before.clone()),
                        "input {text:?}\noutput {out:?}"
                    );
                    assert_eq!(out.ends_with('\n'), text.ends_with('\n'));
                }
            }
        }
        // The mutations keep some inputs valid, so the round-trip property is exercised.
        assert!(accepted > 100, "only {accepted} inputs were valid");
    }

    #[test]
    fn master_playlists_list_each_quality_with_a_bandwidth() {
        let qualities: Vec<String> = ["chunked", "720p60", "480p30", "audio_only"]
            .iter()
            .map(|q| q.to_string())
            .collect();
        assert_eq!(
            master_playlist(&qualities),
            "#EXTM3U\n#EXT-X-VERSION:3\n\
             #EXT-X-STREAM-INF:BANDWIDTH=8000000\nchunked.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=5529600,RESOLUTION=1280x720,FRAME-RATE=60.000\n720p60.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1229760,RESOLUTION=854x480,FRAME-RATE=30.000\n480p30.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=160000,CODECS=\"mp4a.40.2\"\naudio_only.m3u8\n"
        );
    }

    #[test]
    fn the_plain_name_fast_path_agrees_with_full_resolution() {
        let bases = [
            "https://d.net/ab_c_1_2/chunked/",
            "https://d.net/ab_c_1_2/chunked/index-dvr.m3u8",
            "http://h:1/x/../y/",
            "https://d.net",
            "https://d.net/./a/",
        ];
        let names = [
            "0.ts",
            "12-unmuted.ts",
            "a.b-unmuted.mp4",
            "init-0.mp4",
            "x-unmuted",
            "-unmuted.ts",
            "_.ts",
            "12-muted.ts",
            "unmuted.ts",
            "a-unmuted.b.ts",
        ];
        for base_url in bases {
            let base = Base::parse(base_url);
            for name in names {
                let mut fast = String::new();
                if base.push_plain_child(name, &mut fast) {
                    assert_eq!(fast, unmute(&base.resolve(name)), "{base_url} + {name}");
                }
            }
        }
        let mut out = String::new();
        assert!(Base::parse(bases[0]).push_plain_child("0.ts", &mut out));
        assert!(!Base::parse(bases[2]).push_plain_child("0.ts", &mut out));
        assert!(!Base::parse(bases[0]).push_plain_child("../0.ts", &mut out));
    }
}
