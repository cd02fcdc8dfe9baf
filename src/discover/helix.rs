//! The Helix listing: Twitch's official API, with an app's client credentials.
//!
//! Every request carries an app token from the client-credentials grant, cached until shortly
//! before it expires and refreshed once when refused (a fresh token that is refused too is an
//! auth error, not a loop). Each answer reports the per-minute point quota in `Ratelimit-*`
//! headers; the last report is kept, so a spent quota answers [`DiscoverError::RateLimited`]
//! without sending anything. Both are measured against the `now` the caller passes (its
//! injected clock), never the system clock.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::json::{count_at, id_at, opt_bool_at, opt_str_at, parse_json, str_at, time_at};
use super::videos::{muted_from, parse_preview_url, stretches_from};
use super::{DEFAULT_BACKOFF, DiscoverError, ListingPage, VideoHint, VideoOf, excerpt, status_error};
use crate::config::SourceConfig;
use crate::fetch::{ApiAnswer, Fetcher, Method};
use crate::record::Sighting;

/// Helix refuses pages larger than this.
pub const HELIX_PAGE_SIZE: u32 = 100;
/// A token is replaced this long before Twitch says it expires (at most a tenth of its life),
/// so a page is never sent with a token that dies in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Longer lifetimes are taken as this (app tokens live about 60 days).
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(365 * 86_400);

/// Twitch's official listing (Helix) with client credentials.
pub struct HelixSource {
    pub(super) streams_url: String,
    videos_url: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    token: Option<Token>,
    rate_limit: Option<RateLimit>,
    /// The pass in progress: page 1's first stream and the cursors followed, to end a pass
    /// whose last cursor leads back to page 1 (Twitch's often does).
    pass: PassMemory,
}

#[derive(Default)]
struct PassMemory {
    top_stream: Option<u64>,
    cursors: std::collections::HashSet<String>,
}

// By hand so that the secret and the token never reach a log through `{:?}`.
impl std::fmt::Debug for HelixSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (url, id, rate_limit) = (&self.streams_url, &self.client_id, &self.rate_limit);
        write!(
            f,
            "HelixSource {{ streams_url: {url:?}, client_id: {id:?}, rate_limit: {rate_limit:?}, .. }}"
        )
    }
}

struct Token {
    value: String,
    /// When to stop using it, in unix seconds of the caller's clock (before Twitch's expiry, by
    /// the margin).
    renew_at: i64,
}

/// The point quota as the last answer's `Ratelimit-*` headers reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RateLimit {
    remaining: u32,
    /// When the quota is full again, on the caller's clock: `Ratelimit-Reset` taken as a wait
    /// from the answer, at most [`MOST_RESET_WAIT`].
    reset: i64,
}

/// Helix refills its points within a minute, so a `Ratelimit-Reset` further away than this is
/// a disagreement of clocks (a Pi without a real-time clock booted in the past, an accelerated
/// test clock), not a quota. Taken at its word it stopped the crawl for as long: the week
/// benchmark's Helix listing, on a clock 11 months behind Twitch's, never read a page again
/// after its first spent minute.
const MOST_RESET_WAIT: i64 = 60;

impl HelixSource {
    pub(super) fn new(config: &SourceConfig) -> HelixSource {
        HelixSource {
            streams_url: format!("{}streams", config.helix_url),
            videos_url: format!("{}videos", config.helix_url),
            token_url: config.token_url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            token: None,
            rate_limit: None,
            pass: PassMemory::default(),
        }
    }

    /// Ends the listing where its cursor leads back: a page (asked with a cursor) that starts
    /// with page 1's first stream shows nothing new and is the end; a cursor already followed
    /// in this pass is not followed again.
    fn end_looping_pass(&mut self, cursor: Option<&str>, mut page: ListingPage) -> ListingPage {
        let first = page.sightings.first().map(|s| s.stream_id);
        match cursor {
            None => {
                self.pass = PassMemory {
                    top_stream: first,
                    cursors: Default::default(),
                };
            }
            Some(cursor) => {
                self.pass.cursors.insert(cursor.to_string());
                if first.is_some() && first == self.pass.top_stream {
                    return ListingPage::default();
                }
            }
        }
        if page
            .next_cursor
            .as_ref()
            .is_some_and(|next| self.pass.cursors.contains(next))
        {
            page.next_cursor = None;
        }
        page
    }

    pub(super) fn page(
        &mut self,
        fetcher: &Fetcher,
        cursor: Option<&str>,
        now: i64,
    ) -> Result<ListingPage, DiscoverError> {
        let mut url = format!("{}?first={HELIX_PAGE_SIZE}", self.streams_url);
        if let Some(cursor) = cursor {
            url.push_str("&after=");
            url.push_str(&encode_component(cursor));
        }
        let page = decode_helix(&self.get(fetcher, &url, now)?)?;
        Ok(self.end_looping_pass(cursor, page))
    }

    pub(super) fn videos(
        &mut self,
        fetcher: &Fetcher,
        streamer_id: u64,
        first: u32,
        now: i64,
    ) -> Result<Vec<VideoHint>, DiscoverError> {
        let url = format!(
            "{}?user_id={streamer_id}&type=archive&first={first}",
            self.videos_url
        );
        decode_helix_videos(&self.get(fetcher, &url, now)?)
    }

    /// One authorized GET under the remembered quota, refreshing a refused token once; the
    /// body of a 2xx answer, or the error the answer means. `now`: unix seconds, caller's clock.
    pub(super) fn get(&mut self, fetcher: &Fetcher, url: &str, now: i64) -> Result<Vec<u8>, DiscoverError> {
        if let Some(retry_after) = self.rate_limit_wait(now) {
            return Err(DiscoverError::RateLimited { retry_after });
        }
        loop {
            // A token fetched for this very request that is refused is not worth refreshing.
            let fresh = self.token.as_ref().is_none_or(|t| now >= t.renew_at);
            if fresh {
                self.token = Some(self.fetch_token(fetcher, now)?);
            }
            let bearer = self
                .token
                .as_ref()
                .map_or(String::new(), |t| format!("Bearer {}", t.value));
            let headers = [("Client-Id", self.client_id.clone()), ("Authorization", bearer)];
            let answer = fetcher.send(Method::Get, url, &headers, None)?;
            self.note_rate_limit(&answer, now);
            match answer.status {
                200..=299 => return Ok(answer.body),
                401 if !fresh => self.token = None,
                401 => return Err(DiscoverError::Auth(excerpt(&answer.body))),
                400 if excerpt(&answer.body).eq_ignore_ascii_case("invalid cursor") => {
                    return Err(DiscoverError::InvalidCursor);
                }
                429 => {
                    let retry_after = answer
                        .retry_after
                        .or_else(|| self.rate_limit.map(|limit| until(limit.reset, now)))
                        .unwrap_or(DEFAULT_BACKOFF);
                    return Err(DiscoverError::RateLimited { retry_after });
                }
                _ => return Err(status_error(&answer)),
            }
        }
    }

    /// How long to wait when the last answer said the quota is spent and not yet reset.
    fn rate_limit_wait(&self, now: i64) -> Option<Duration> {
        self.rate_limit
            .filter(|limit| limit.remaining == 0 && limit.reset > now)
            .map(|limit| until(limit.reset, now))
    }

    /// Keeps what an answer received at `now` says of the quota.
    fn note_rate_limit(&mut self, answer: &ApiAnswer, now: i64) {
        let number = |name: &str| answer.header(name).and_then(|v| v.trim().parse::<i64>().ok());
        if let (Some(remaining), Some(reset)) = (number("ratelimit-remaining"), number("ratelimit-reset")) {
            self.rate_limit = Some(RateLimit {
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset: now.saturating_add(reset.saturating_sub(now).clamp(0, MOST_RESET_WAIT)),
            });
        }
    }

    /// A new app token, asked at `now` (unix seconds, caller's clock).
    fn fetch_token(&self, fetcher: &Fetcher, now: i64) -> Result<Token, DiscoverError> {
        // The secret goes in the form body, never in the URL (logs, proxies).
        let form = format!(
            "client_id={}&client_secret={}&grant_type=client_credentials",
            encode_component(&self.client_id),
            encode_component(&self.client_secret)
        );
        let headers = [("Content-Type", "application/x-www-form-urlencoded".to_string())];
        let answer = fetcher.send(Method::Post, &self.token_url, &headers, Some(form.as_bytes()))?;
        match answer.status {
            200..=299 => {}
            400 | 401 | 403 => return Err(DiscoverError::Auth(format!("token: {}", excerpt(&answer.body)))),
            429 => {
                return Err(DiscoverError::RateLimited {
                    retry_after: answer.retry_after.unwrap_or(DEFAULT_BACKOFF),
                });
            }
            _ => return Err(status_error(&answer)),
        }
        let body = parse_json(&answer.body, "token")?;
        let value = str_at(&body, "access_token", "token")
            .map_err(DiscoverError::Decode)?
            .to_string();
        if value.is_empty() {
            return Err(DiscoverError::Decode("token.access_token: empty".into()));
        }
        let life = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .map(Duration::from_secs)
            .ok_or_else(|| DiscoverError::Decode("token.expires_in: not a number of seconds".into()))?
            // Bounded so the arithmetic below cannot overflow.
            .min(MAX_TOKEN_LIFE);
        let usable = life - TOKEN_MARGIN.min(life / 10);
        Ok(Token {
            value,
            renew_at: now.saturating_add(i64::try_from(usable.as_secs()).unwrap_or(i64::MAX)),
        })
    }
}

/// A Helix `/streams` answer → a page.
pub(crate) fn decode_helix(body: &[u8]) -> Result<ListingPage, DiscoverError> {
    let root = parse_json(body, "body")?;
    let items = root
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data: not a list".into()))?;
    let mut page = ListingPage::default();
    for (index, item) in items.iter().enumerate() {
        match helix_item(item, &format!("data[{index}]")) {
            Ok(sighting) => page.sightings.push(sighting),
            Err(reason) => page.skip(reason),
        }
    }
    // The last page has `"pagination": {}`.
    page.next_cursor = root
        .get("pagination")
        .and_then(|p| p.get("cursor"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok(page)
}

pub(super) fn helix_item(item: &Value, path: &str) -> Result<Sighting, String> {
    if !item.is_object() {
        return Err(format!("{path}: not an object"));
    }
    Ok(Sighting {
        stream_id: id_at(item, "id", path)?,
        streamer_id: id_at(item, "user_id", path)?,
        login: str_at(item, "user_login", path)?.to_string(),
        title: opt_str_at(item, "title", path)?,
        game_id: opt_str_at(item, "game_id", path)?,
        game_name: opt_str_at(item, "game_name", path)?,
        language: opt_str_at(item, "language", path)?,
        is_mature: opt_bool_at(item, "is_mature", path)?,
        viewers: count_at(item, "viewer_count", path)?,
        started_at: time_at(item, "started_at", path)?,
    })
}

/// A Helix `/videos` answer → hints. `viewable` other than "public" marks a restricted video;
/// a missing one counts as public (Helix lists only what the caller may see).
pub(crate) fn decode_helix_videos(body: &[u8]) -> Result<Vec<VideoHint>, DiscoverError> {
    let root = parse_json(body, "body")?;
    let items = root
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data: not a list".into()))?;
    let hints = items
        .iter()
        .filter_map(|item| {
            let url = item.get("thumbnail_url")?.as_str()?;
            let public = match item.get("viewable") {
                None | Some(Value::Null) => true,
                Some(viewable) => viewable.as_str() == Some("public"),
            };
            let hint = helix_video_hint(item, url, public)?;
            Some(VideoHint {
                // `muted_segments`: null when nothing is muted ("Get Videos").
                muted: muted_from(item.get("muted_segments")),
                muted_stretches: stretches_from(item.get("muted_segments")),
                ..hint
            })
        })
        .collect();
    Ok(hints)
}

/// One Helix video: matched to its broadcast by `stream_id` (not by the URL); a placeholder
/// thumbnail (live or processing: `…/_404/404_processing_…`, or empty) says the video exists
/// but names no path, so the hint has no domain ([`VideoHint::path_known`] is false).
fn helix_video_hint(item: &Value, url: &str, public: bool) -> Option<VideoHint> {
    let stream_id = item
        .get("stream_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse::<u64>().ok());
    match (parse_preview_url(url, public), stream_id) {
        (Some(hint), Some(stream_id)) => Some(VideoHint {
            broadcast: VideoOf::Stream(stream_id),
            ..hint
        }),
        (Some(hint), None) => Some(hint),
        (None, Some(stream_id)) if url.is_empty() || url.contains("/_404/404_processing_") => {
            Some(VideoHint {
                broadcast: VideoOf::Stream(stream_id),
                domain: String::new(),
                folder: String::new(),
                ts: String::new(),
                public,
                muted: None,
                muted_stretches: Vec::new(),
            })
        }
        (None, _) => None,
    }
}

/// From `now` to `reset` (unix seconds), at least a second so a caller never spins.
fn until(reset: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(reset.saturating_sub(now)).unwrap_or(0).max(1))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (cursors and secrets may
/// hold `=`, `+` or `/`).
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
