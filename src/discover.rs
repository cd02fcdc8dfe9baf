//! Discover: fetch and decode pages of Twitch's live listing, most viewed first.
//!
//! A [`Source`] is one of the two listings Twitch offers (a closed set, so an enum):
//! - [`GqlSource`]: the web client's GraphQL API (no registration; unofficial). One POST per
//!   page of 30, cursors per edge; the last edge's cursor continues the listing.
//! - [`HelixSource`]: the official API. An app token from the client-credentials grant is
//!   cached until shortly before it expires and refreshed once on a 401; the per-minute point
//!   budget reported in `Ratelimit-*` headers is remembered, so a spent budget answers
//!   [`DiscoverError::RateLimited`] without sending anything.
//!
//! This module only fetches and decodes one page at a time: the crawler decides when to stop
//! (the viewer floor), when to restart from the top and how fast to go. Decoding is strict
//! about the envelope (a page that is not what the API promises is an error naming the path of
//! the problem) and lenient about single streams: a malformed edge or item is skipped and
//! counted in [`Page::skipped`], so one odd stream cannot hide the other 29.
//!
//! [`Source::videos`] asks either API for a channel's recent archive videos. While a video
//! object exists (public or sub-only), its preview URLs name the CDN domain and the playlist
//! folder exactly, so the caller can fetch the playlist without searching: a [`VideoHint`]
//! per video whose URL parses (others are left out).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::config::{SourceConfig, SourceKind};
use crate::fetch::{ApiAnswer, FetchError, Fetcher, Method};
use crate::record::Sighting;

/// GQL refuses pages larger than this.
pub const GQL_PAGE_SIZE: u32 = 30;
/// Helix refuses pages larger than this.
pub const HELIX_PAGE_SIZE: u32 = 100;

/// The query from the reference notes: only the fields a [`Sighting`] needs.
pub const GQL_STREAMS_QUERY: &str = "query GetStreams($first: Int!, $cursor: Cursor) {
  streams(first: $first, after: $cursor) {
    pageInfo { hasNextPage }
    edges { cursor node { id viewersCount createdAt
      broadcaster { id login broadcastSettings { title language isMature } }
      game { id name } } }
  }
}";

/// A channel's newest archive videos, with what locates their playlists
/// (`seekPreviewsURL`) and whether the channel's archives are sub-only.
pub const GQL_VIDEOS_QUERY: &str = "query Videos($id: ID!, $first: Int!) {
  user(id: $id) {
    videos(first: $first, type: ARCHIVE, sort: TIME) { edges { node { id createdAt seekPreviewsURL } } }
    subscriptionProducts { hasSubonlyVideoArchive }
  }
}";
/// Both APIs refuse more videos per request than this.
pub const VIDEOS_MAX_FIRST: u32 = 100;

/// The wait suggested when a 429 names no time (neither `Retry-After` nor a reset).
const DEFAULT_BACKOFF: Duration = Duration::from_secs(30);
/// Error bodies are quoted up to this many characters.
const EXCERPT_CHARS: usize = 200;
/// A token is replaced this long before Twitch says it expires (at most a tenth of its life),
/// so a page is never sent with a token that dies in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Longer lifetimes are taken as this (app tokens live about 60 days).
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(365 * 86_400);

/// One page of the listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// In listing order (most viewed first).
    pub sightings: Vec<Sighting>,
    /// Where the next page starts; `None` when this was the last page.
    pub next_cursor: Option<String>,
    /// Edges or items that were malformed and left out.
    pub skipped: usize,
    /// Why the first skipped one was left out (e.g. `edges[3].node.createdAt: not RFC 3339`).
    pub first_skip: Option<String>,
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
        }
    }
}

/// Where one archive video's playlist lives, as the listing API reveals it.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoHint {
    /// The broadcast the video belongs to (from the folder).
    pub stream_id: u64,
    /// CDN base URL ending in '/', with any path prefix before the folder
    /// (e.g. `https://d2nvs31859zcd8.cloudfront.net/`).
    pub domain: String,
    /// `{hash}_{login}_{stream_id}_{ts}`; the playlist is `{domain}{folder}/{quality}/index-dvr.m3u8`.
    pub folder: String,
    /// The `{ts}` part of the folder.
    pub ts: String,
    /// A publicly listed archive (false: sub-only or otherwise restricted).
    pub public: bool,
}

impl VideoHint {
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
            SourceKind::Gql => Source::Gql(GqlSource {
                url: config.gql_url.clone(),
                client_id: config.client_id.clone(),
            }),
            SourceKind::Helix => Source::Helix(HelixSource {
                streams_url: format!("{}streams", config.helix_url),
                videos_url: format!("{}videos", config.helix_url),
                token_url: config.token_url.clone(),
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                token: None,
                budget: None,
            }),
        }
    }

    /// One page of live streams, most viewed first, starting after `cursor` (`None`: the top).
    pub fn page(&mut self, fetcher: &Fetcher, cursor: Option<&str>) -> Result<Page, DiscoverError> {
        match self {
            Source::Gql(source) => source.page(fetcher, cursor),
            Source::Helix(source) => source.page(fetcher, cursor),
        }
    }

    /// The streamer's recent archive videos that reveal a playlist location, newest first, at
    /// most `first` (capped at [`VIDEOS_MAX_FIRST`]; 0 asks nothing). Videos whose preview URL
    /// does not parse are left out; an unknown streamer has none.
    pub fn videos(
        &mut self,
        fetcher: &Fetcher,
        streamer_id: u64,
        first: u32,
    ) -> Result<Vec<VideoHint>, DiscoverError> {
        let first = first.min(VIDEOS_MAX_FIRST);
        if first == 0 {
            return Ok(Vec::new());
        }
        let mut hints = match self {
            Source::Gql(source) => source.videos(fetcher, streamer_id, first)?,
            Source::Helix(source) => source.videos(fetcher, streamer_id, first)?,
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

/// Twitch's GraphQL listing.
#[derive(Debug)]
pub struct GqlSource {
    url: String,
    client_id: String,
}

impl GqlSource {
    fn page(&self, fetcher: &Fetcher, cursor: Option<&str>) -> Result<Page, DiscoverError> {
        let body = json!({
            "query": GQL_STREAMS_QUERY,
            "variables": {"first": GQL_PAGE_SIZE, "cursor": cursor},
        });
        decode_gql(&self.post(fetcher, &body)?)
    }

    fn videos(
        &self,
        fetcher: &Fetcher,
        streamer_id: u64,
        first: u32,
    ) -> Result<Vec<VideoHint>, DiscoverError> {
        let body = json!({
            "query": GQL_VIDEOS_QUERY,
            "variables": {"id": streamer_id.to_string(), "first": first},
        });
        decode_gql_videos(&self.post(fetcher, &body)?)
    }

    /// One GraphQL request; the body of a 2xx answer, or the error the answer means.
    fn post(&self, fetcher: &Fetcher, body: &Value) -> Result<Vec<u8>, DiscoverError> {
        let body = body.to_string();
        let headers = [
            ("Client-Id", self.client_id.clone()),
            ("Content-Type", "application/json".to_string()),
        ];
        let answer = fetcher.send(Method::Post, &self.url, &headers, Some(body.as_bytes()))?;
        match answer.status {
            200..=299 => Ok(answer.body),
            401 | 403 => Err(DiscoverError::Auth(excerpt(&answer.body))),
            // Twitch refuses a missing or unknown client id with 400 and says so.
            400 if excerpt(&answer.body).to_ascii_lowercase().contains("client-id") => {
                Err(DiscoverError::Auth(excerpt(&answer.body)))
            }
            429 => Err(DiscoverError::RateLimited {
                retry_after: answer.retry_after.unwrap_or(DEFAULT_BACKOFF),
            }),
            _ => Err(status_error(&answer)),
        }
    }
}

/// Twitch's official listing (Helix) with client credentials.
pub struct HelixSource {
    streams_url: String,
    videos_url: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    token: Option<Token>,
    budget: Option<Budget>,
}

// By hand so that the secret and the token never reach a log through `{:?}`.
impl std::fmt::Debug for HelixSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (url, id, budget) = (&self.streams_url, &self.client_id, &self.budget);
        write!(
            f,
            "HelixSource {{ streams_url: {url:?}, client_id: {id:?}, budget: {budget:?}, .. }}"
        )
    }
}

struct Token {
    value: String,
    /// When to stop using it (before Twitch's expiry, by the margin).
    renew_at: Instant,
}

/// The budget as the last answer reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Budget {
    remaining: u32,
    /// Unix seconds when the budget is full again.
    reset: i64,
}

impl HelixSource {
    fn page(&mut self, fetcher: &Fetcher, cursor: Option<&str>) -> Result<Page, DiscoverError> {
        let mut url = format!("{}?first={HELIX_PAGE_SIZE}", self.streams_url);
        if let Some(cursor) = cursor {
            url.push_str("&after=");
            url.push_str(&encode_component(cursor));
        }
        decode_helix(&self.get(fetcher, &url)?)
    }

    fn videos(
        &mut self,
        fetcher: &Fetcher,
        streamer_id: u64,
        first: u32,
    ) -> Result<Vec<VideoHint>, DiscoverError> {
        let url = format!(
            "{}?user_id={streamer_id}&type=archive&first={first}",
            self.videos_url
        );
        decode_helix_videos(&self.get(fetcher, &url)?)
    }

    /// One authorized GET under the remembered budget, refreshing a refused token once; the
    /// body of a 2xx answer, or the error the answer means.
    fn get(&mut self, fetcher: &Fetcher, url: &str) -> Result<Vec<u8>, DiscoverError> {
        if let Some(retry_after) = self.budget_wait(unix_now()) {
            return Err(DiscoverError::RateLimited { retry_after });
        }
        loop {
            // A token fetched for this very request that is refused is not worth refreshing.
            let fresh = self.token.as_ref().is_none_or(|t| Instant::now() >= t.renew_at);
            if fresh {
                self.token = Some(self.fetch_token(fetcher)?);
            }
            let bearer = self
                .token
                .as_ref()
                .map_or(String::new(), |t| format!("Bearer {}", t.value));
            let headers = [("Client-Id", self.client_id.clone()), ("Authorization", bearer)];
            let answer = fetcher.send(Method::Get, url, &headers, None)?;
            self.note_budget(&answer);
            match answer.status {
                200..=299 => return Ok(answer.body),
                401 if !fresh => self.token = None,
                401 => return Err(DiscoverError::Auth(excerpt(&answer.body))),
                429 => {
                    let retry_after = answer
                        .retry_after
                        .or_else(|| self.budget.map(|b| until(b.reset, unix_now())))
                        .unwrap_or(DEFAULT_BACKOFF);
                    return Err(DiscoverError::RateLimited { retry_after });
                }
                _ => return Err(status_error(&answer)),
            }
        }
    }

    /// How long to wait when the last answer said the budget is spent and not yet reset.
    fn budget_wait(&self, now: i64) -> Option<Duration> {
        self.budget
            .filter(|b| b.remaining == 0 && b.reset > now)
            .map(|b| until(b.reset, now))
    }

    fn note_budget(&mut self, answer: &ApiAnswer) {
        let number = |name: &str| answer.header(name).and_then(|v| v.trim().parse::<i64>().ok());
        if let (Some(remaining), Some(reset)) = (number("ratelimit-remaining"), number("ratelimit-reset")) {
            self.budget = Some(Budget {
                remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
                reset,
            });
        }
    }

    fn fetch_token(&self, fetcher: &Fetcher) -> Result<Token, DiscoverError> {
        let separator = if self.token_url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{separator}client_id={}&client_secret={}&grant_type=client_credentials",
            self.token_url,
            encode_component(&self.client_id),
            encode_component(&self.client_secret)
        );
        let asked = Instant::now();
        let answer = fetcher.send(Method::Post, &url, &[], None)?;
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
            // Bounded so the arithmetic below cannot overflow an `Instant`.
            .min(MAX_TOKEN_LIFE);
        Ok(Token {
            value,
            renew_at: asked + (life - TOKEN_MARGIN.min(life / 10)),
        })
    }
}

/// `data.streams` of a GQL answer → a page.
pub(crate) fn decode_gql(body: &[u8]) -> Result<Page, DiscoverError> {
    let root = parse_json(body, "body")?;
    let streams = root
        .get("data")
        .and_then(|d| d.get("streams"))
        .filter(|s| !s.is_null());
    let Some(streams) = streams else {
        return Err(gql_refusal(&root, "data.streams"));
    };
    let has_next = streams
        .get("pageInfo")
        .and_then(|p| p.get("hasNextPage"))
        .and_then(Value::as_bool)
        .ok_or_else(|| DiscoverError::Decode("data.streams.pageInfo.hasNextPage: missing".into()))?;
    let edges = streams
        .get("edges")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data.streams.edges: not a list".into()))?;
    let mut page = Page::default();
    for (index, edge) in edges.iter().enumerate() {
        let path = format!("edges[{index}].node");
        match edge
            .get("node")
            .ok_or(format!("{path}: missing"))
            .and_then(|n| gql_node(n, &path))
        {
            Ok(sighting) => page.sightings.push(sighting),
            Err(reason) => page.skip(reason),
        }
    }
    if has_next {
        // The last edge's cursor continues the listing even when that edge's node was skipped.
        let last = edges.len().saturating_sub(1);
        let cursor = edges
            .last()
            .and_then(|edge| edge.get("cursor"))
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DiscoverError::Decode(format!("edges[{last}].cursor: missing although hasNextPage"))
            })?;
        page.next_cursor = Some(cursor.to_string());
    }
    Ok(page)
}

fn gql_node(node: &Value, path: &str) -> Result<Sighting, String> {
    if !node.is_object() {
        return Err(format!("{path}: not an object"));
    }
    let broadcaster = node
        .get("broadcaster")
        .filter(|b| b.is_object())
        .ok_or(format!("{path}.broadcaster: missing"))?;
    let broadcaster_path = format!("{path}.broadcaster");
    let settings = broadcaster.get("broadcastSettings").unwrap_or(&Value::Null);
    let settings_path = format!("{broadcaster_path}.broadcastSettings");
    let game = node.get("game").unwrap_or(&Value::Null);
    let game_path = format!("{path}.game");
    Ok(Sighting {
        stream_id: id_at(node, "id", path)?,
        streamer_id: id_at(broadcaster, "id", &broadcaster_path)?,
        login: str_at(broadcaster, "login", &broadcaster_path)?.to_string(),
        title: opt_str_at(settings, "title", &settings_path)?,
        game_id: opt_str_at(game, "id", &game_path)?,
        game_name: opt_str_at(game, "name", &game_path)?,
        // GQL spells languages as an enum ("EN", "ZH_HK"); store them as Helix does.
        language: opt_str_at(settings, "language", &settings_path)?
            .to_lowercase()
            .replace('_', "-"),
        is_mature: opt_bool_at(settings, "isMature", &settings_path)?,
        viewers: count_at(node, "viewersCount", path)?,
        started_at: time_at(node, "createdAt", path)?,
    })
}

/// A Helix `/streams` answer → a page.
pub(crate) fn decode_helix(body: &[u8]) -> Result<Page, DiscoverError> {
    let root = parse_json(body, "body")?;
    let items = root
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data: not a list".into()))?;
    let mut page = Page::default();
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

fn helix_item(item: &Value, path: &str) -> Result<Sighting, String> {
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

/// `data.user` of a GQL videos answer → hints (a null user has no videos).
pub(crate) fn decode_gql_videos(body: &[u8]) -> Result<Vec<VideoHint>, DiscoverError> {
    let root = parse_json(body, "body")?;
    let Some(data) = root.get("data").filter(|d| d.is_object()) else {
        return Err(gql_refusal(&root, "data"));
    };
    let user = match data.get("user") {
        Some(Value::Null) => return Ok(Vec::new()),
        Some(user) if user.is_object() => user,
        _ => return Err(gql_refusal(&root, "data.user")),
    };
    // Sub-only archives are a channel setting, carried by its subscription products (a list
    // on Twitch; a single object is accepted too).
    let subonly = match user.get("subscriptionProducts") {
        Some(Value::Array(products)) => products.iter().any(subonly_product),
        Some(product) => subonly_product(product),
        None => false,
    };
    let edges = user
        .get("videos")
        .and_then(|v| v.get("edges"))
        .and_then(Value::as_array)
        .ok_or_else(|| DiscoverError::Decode("data.user.videos.edges: not a list".into()))?;
    let hints = edges
        .iter()
        .filter_map(|edge| edge.get("node")?.get("seekPreviewsURL")?.as_str())
        .filter_map(|url| parse_preview_url(url, !subonly))
        .collect();
    Ok(hints)
}

fn subonly_product(product: &Value) -> bool {
    product.get("hasSubonlyVideoArchive").and_then(Value::as_bool) == Some(true)
}

/// The error for a GQL answer without the expected data: GraphQL answers 200 and explains in
/// `errors` when it cannot serve the query (errors beside data concern single nodes, which
/// then come back null and are skipped); without `errors`, a decode error naming `path`.
fn gql_refusal(root: &Value, path: &str) -> DiscoverError {
    let messages: Vec<&str> = root
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(|e| e.get("message")?.as_str()).collect())
        .unwrap_or_default();
    if messages.is_empty() {
        return DiscoverError::Decode(format!("{path}: missing"));
    }
    DiscoverError::Status {
        status: 200,
        body_excerpt: format!("GraphQL errors: {}", messages.join("; ")),
    }
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
            parse_preview_url(url, public)
        })
        .collect();
    Ok(hints)
}

/// The CDN location in a video's preview URL (GQL `seekPreviewsURL`, Helix `thumbnail_url`):
/// the first path segment shaped like `{hash}_{login}_{stream_id}_{ts}` is the folder and
/// everything before it the domain, except that `static-cdn.jtvnw.net/cf_vods/{id}/` stands
/// for `https://{id}.cloudfront.net/`. `None` when no folder is found (placeholders such as
/// `404_processing` thumbnails, empty URLs).
fn parse_preview_url(url: &str, public: bool) -> Option<VideoHint> {
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
        stream_id,
        domain,
        folder: segments[at].to_string(),
        ts: ts.to_string(),
        public,
    })
}

/// `{hash}_{login}_{stream_id}_{ts}`: 20 lowercase hex digits, a login of `[A-Za-z0-9_]`,
/// then two decimal fields (stream id, `{ts}`) → (stream id, ts).
fn parse_folder(folder: &str) -> Option<(u64, &str)> {
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

impl Page {
    fn skip(&mut self, reason: String) {
        self.skipped += 1;
        self.first_skip.get_or_insert(reason);
    }
}

fn parse_json(body: &[u8], what: &str) -> Result<Value, DiscoverError> {
    serde_json::from_slice(body)
        .map_err(|error| DiscoverError::Decode(format!("{what}: not JSON ({error}): {}", excerpt(body))))
}

fn str_at<'a>(value: &'a Value, key: &str, path: &str) -> Result<&'a str, String> {
    match value.get(key) {
        Some(Value::String(text)) => Ok(text),
        None | Some(Value::Null) => Err(format!("{path}.{key}: missing")),
        Some(_) => Err(format!("{path}.{key}: not a string")),
    }
}

/// A string that may be null or absent (titles, games): "" then.
fn opt_str_at(value: &Value, key: &str, path: &str) -> Result<String, String> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("{path}.{key}: not a string")),
    }
}

fn opt_bool_at(value: &Value, key: &str, path: &str) -> Result<bool, String> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(format!("{path}.{key}: not a boolean")),
    }
}

/// Twitch ids are decimal strings.
fn id_at(value: &Value, key: &str, path: &str) -> Result<u64, String> {
    let text = str_at(value, key, path)?;
    text.parse()
        .map_err(|_| format!("{path}.{key}: {text:?} is not a numeric id"))
}

fn count_at(value: &Value, key: &str, path: &str) -> Result<u32, String> {
    match value.get(key) {
        // Saturate rather than refuse: more than 4 billion viewers only means "very many".
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or(format!("{path}.{key}: not a viewer count")),
        None | Some(Value::Null) => Err(format!("{path}.{key}: missing")),
        Some(_) => Err(format!("{path}.{key}: not a viewer count")),
    }
}

fn time_at(value: &Value, key: &str, path: &str) -> Result<i64, String> {
    let text = str_at(value, key, path)?;
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| format!("{path}.{key}: not RFC 3339"))
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

/// From `now` to `reset` (unix seconds), at least a second so a caller never spins.
fn until(reset: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(reset.saturating_sub(now)).unwrap_or(0).max(1))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
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
mod tests {
    use super::*;
    use crate::fetch::FetchSettings;
    use vodprobe_sim::{ListingFault, LiveStream, SIM_CLIENT_ID, SimListing, SimVideo};

    const T0: &str = "2024-01-01T00:00:00Z";

    fn node(id: &str, viewers: i64, created: &str) -> Value {
        json!({"id": id, "viewersCount": viewers, "createdAt": created,
               "broadcaster": {"id": "77", "login": "gmhikaru",
                               "broadcastSettings": {"title": "chess", "language": "PT_BR", "isMature": true}},
               "game": {"id": "743", "name": "Chess"}})
    }

    fn edge(cursor: &str, node: Value) -> Value {
        json!({"cursor": cursor, "node": node})
    }

    fn gql_body(edges: Vec<Value>, has_next: bool) -> Vec<u8> {
        let body = json!({"data": {"streams": {"pageInfo": {"hasNextPage": has_next}, "edges": edges}}});
        body.to_string().into_bytes()
    }

    fn decode_error(result: Result<Page, DiscoverError>) -> String {
        match result {
            Err(DiscoverError::Decode(message)) => message,
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn gql_valid_page_and_nulls() {
        let mut sparse = node("5", 9, "2022-09-24T19:02:09+02:00");
        sparse["game"] = Value::Null;
        sparse["broadcaster"]["broadcastSettings"] =
            json!({"title": null, "language": null, "isMature": null});
        let body = gql_body(
            vec![
                edge("c1", node("47198535725", 1200, "2022-09-24T17:02:09Z")),
                edge("c2", sparse),
            ],
            true,
        );
        let page = decode_gql(&body).expect("page");
        assert_eq!(
            (page.next_cursor.as_deref(), page.skipped, page.first_skip),
            (Some("c2"), 0, None)
        );
        let expected = Sighting {
            stream_id: 47198535725,
            streamer_id: 77,
            login: "gmhikaru".into(),
            title: "chess".into(),
            game_id: "743".into(),
            game_name: "Chess".into(),
            language: "pt-br".into(),
            is_mature: true,
            viewers: 1200,
            started_at: 1664038929,
        };
        assert_eq!(page.sightings[0], expected);
        // Null title, settings and game: empty strings and false, not a skipped edge.
        let blank = &page.sightings[1];
        let texts = [&blank.title, &blank.game_id, &blank.game_name, &blank.language];
        assert!(
            texts.iter().all(|t| t.is_empty()) && !blank.is_mature,
            "{blank:?}"
        );
        let last = decode_gql(&gql_body(vec![edge("", node("3", 5, T0))], false)).expect("page");
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn gql_malformed_edges_are_skipped_and_counted() {
        let mut no_broadcaster = node("4", 1, T0);
        no_broadcaster["broadcaster"] = Value::Null;
        let edges = vec![
            edge("a", node("1", 9, T0)),
            edge("b", Value::Null),
            edge("c", node("x1", 8, T0)),
            edge("d", node("3", 7, "yesterday")),
            edge("e", no_broadcaster),
            edge("f", node("6", -3, T0)),
        ];
        let page = decode_gql(&gql_body(edges.clone(), true)).expect("page");
        assert_eq!((page.sightings.len(), page.skipped), (1, 5));
        assert_eq!(page.first_skip.as_deref(), Some("edges[1].node: not an object"));
        // The reasons name the path of the problem.
        for (index, expected) in [
            (2, "edges[0].node.id: \"x1\" is not a numeric id"),
            (3, "edges[0].node.createdAt: not RFC 3339"),
            (4, "edges[0].node.broadcaster: missing"),
            (5, "edges[0].node.viewersCount: not a viewer count"),
        ] {
            let page = decode_gql(&gql_body(vec![edges[index].clone()], false)).expect("page");
            assert_eq!(page.first_skip.as_deref(), Some(expected));
        }
        // The cursor of a skipped last edge still continues the listing.
        let page = decode_gql(&gql_body(edges[..2].to_vec(), true)).expect("page");
        assert_eq!(page.next_cursor.as_deref(), Some("b"));
    }

    #[test]
    fn gql_envelope_errors() {
        let errors =
            br#"{"errors":[{"message":"service timeout"},{"message":"again"}],"data":{"streams":null}}"#;
        let refused = decode_gql(errors);
        let expected = "GraphQL errors: service timeout; again";
        let status = |m: &str| m == expected;
        assert!(matches!(&refused, Err(DiscoverError::Status { status: 200, body_excerpt: m }) if status(m)));
        let lost = gql_body(vec![json!({"node": node("1", 1, T0)})], true);
        let no_info = br#"{"data":{"streams":{"edges":[]}}}"#;
        let no_edges = br#"{"data":{"streams":{"pageInfo":{"hasNextPage":false}}}}"#;
        for (body, expected) in [
            (&b"{\"data\":{}}"[..], "data.streams: missing"),
            (no_info, "data.streams.pageInfo.hasNextPage: missing"),
            (no_edges, "data.streams.edges: not a list"),
            (&lost, "edges[0].cursor: missing although hasNextPage"),
        ] {
            assert_eq!(decode_error(decode_gql(body)), expected);
        }
        assert!(decode_error(decode_gql(b"<html>")).starts_with("body: not JSON"));
    }

    #[test]
    fn helix_items_and_pagination() {
        let item = json!({"id": "9", "user_id": "8", "user_login": "a_b", "game_id": "", "game_name": "",
                          "type": "live", "title": "t", "viewer_count": 5_000_000_000u64,
                          "started_at": "2021-03-10T15:04:21Z", "language": "en", "is_mature": false});
        let mut bad = item.clone();
        bad["viewer_count"] = json!("many");
        let body = json!({"data": [item, bad, 3], "pagination": {"cursor": "eyJiIjp7"}}).to_string();
        let page = decode_helix(body.as_bytes()).expect("page");
        let first = &page.sightings[0];
        assert_eq!((first.viewers, first.started_at), (u32::MAX, 1615388661));
        assert_eq!((first.login.as_str(), page.sightings.len()), ("a_b", 1));
        let skip = page.first_skip.as_deref();
        assert_eq!(
            (page.skipped, skip),
            (2, Some("data[1].viewer_count: not a viewer count"))
        );
        assert_eq!(page.next_cursor.as_deref(), Some("eyJiIjp7"));
        let last = decode_helix(br#"{"data":[],"pagination":{}}"#).expect("page");
        assert_eq!(last.next_cursor, None);
        assert_eq!(
            decode_error(decode_helix(br#"{"pagination":{}}"#)),
            "data: not a list"
        );
    }

    /// The reference's test vector.
    const FOLDER: &str = "c5992ececce7bd7d350d_gmhikaru_47198535725_1664038929";

    fn hint(domain: &str, folder: &str, stream_id: u64, ts: &str, public: bool) -> VideoHint {
        VideoHint {
            stream_id,
            domain: domain.into(),
            folder: folder.into(),
            ts: ts.into(),
            public,
        }
    }

    fn gql_videos_body(urls: &[Value], products: Value) -> Vec<u8> {
        let edges: Vec<Value> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| json!({"node": {"id": (100 + i).to_string(), "createdAt": T0, "seekPreviewsURL": url}}))
            .collect();
        json!({"data": {"user": {"videos": {"edges": edges}, "subscriptionProducts": products}}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn gql_video_hints() {
        let cloudfront =
            format!("https://d2nvs31859zcd8.cloudfront.net/{FOLDER}/storyboards/1600000000-strip-0.jpg");
        let prefixed = "http://127.0.0.1:8080/vods/x/0123456789abcdef0123_a_b_c_315000000001_7/storyboards/5-strip-0.jpg";
        let urls = [
            json!(cloudfront),
            json!("https://vod-secure.twitch.tv/_404/404_processing_320x180.png"),
            Value::Null,
            json!(prefixed),
            json!(""),
            json!(12),
        ];
        let sub_only = json!([{"hasSubonlyVideoArchive": true}]);
        let hints = decode_gql_videos(&gql_videos_body(&urls, sub_only)).expect("hints");
        let prefixed_folder = "0123456789abcdef0123_a_b_c_315000000001_7";
        assert_eq!(
            hints,
            [
                hint(
                    "https://d2nvs31859zcd8.cloudfront.net/",
                    FOLDER,
                    47198535725,
                    "1664038929",
                    false
                ),
                hint(
                    "http://127.0.0.1:8080/vods/x/",
                    prefixed_folder,
                    315000000001,
                    "7",
                    false
                ),
            ]
        );
        assert_eq!(
            hints[0].playlist_url("chunked"),
            format!("https://d2nvs31859zcd8.cloudfront.net/{FOLDER}/chunked/index-dvr.m3u8")
        );
        // Public unless some product has sub-only archives; a single object is read too.
        for (products, public) in [
            (json!([]), true),
            (Value::Null, true),
            (
                json!([{"hasSubonlyVideoArchive": false}, {"hasSubonlyVideoArchive": true}]),
                false,
            ),
            (json!({"hasSubonlyVideoArchive": false}), true),
        ] {
            let hints = decode_gql_videos(&gql_videos_body(&urls[..1], products)).expect("hints");
            assert_eq!(hints[0].public, public);
        }
        // An unknown user has no videos; envelope problems are errors.
        assert_eq!(decode_gql_videos(br#"{"data":{"user":null}}"#).expect("none"), []);
        let refused = decode_gql_videos(br#"{"errors":[{"message":"bad id"}],"data":null}"#);
        let bad_id = |m: &str| m == "GraphQL errors: bad id";
        assert!(matches!(&refused, Err(DiscoverError::Status { status: 200, body_excerpt: m }) if bad_id(m)));
        for (body, expected) in [
            (
                &br#"{"data":{"user":{"videos":null}}}"#[..],
                "data.user.videos.edges: not a list",
            ),
            (br#"{"data":{}}"#, "data.user: missing"),
            (br#"{}"#, "data: missing"),
        ] {
            match decode_gql_videos(body) {
                Err(DiscoverError::Decode(message)) => assert_eq!(message, expected),
                other => panic!("expected a decode error, got {other:?}"),
            }
        }
    }

    #[test]
    fn helix_video_hints() {
        let cf = format!(
            "https://static-cdn.jtvnw.net/cf_vods/d2nvs31859zcd8/{FOLDER}//thumb/thumb0-%{{width}}x%{{height}}.jpg"
        );
        let direct = format!("https://vod-secure.twitch.tv/{FOLDER}/thumb/thumb0-%{{width}}x%{{height}}.jpg");
        let item = |url: &str, viewable: Value| json!({"id": "1", "stream_id": "47198535725", "thumbnail_url": url, "viewable": viewable});
        let mut no_stream = item(&cf, json!("public"));
        no_stream["stream_id"] = Value::Null;
        let body = json!({"data": [
            item(&cf, json!("public")),
            item(&direct, json!("private")),
            // Live and processing videos have no usable thumbnail yet.
            item("", json!("public")),
            item("https://vod-secure.twitch.tv/_404/404_processing_%{width}x%{height}.png", json!("public")),
            item(&format!("https://static-cdn.jtvnw.net/s3_vods/{FOLDER}/thumb/x.jpg"), json!("public")),
            json!({"id": "2"}),
            7,
            no_stream,
            item(&direct, Value::Null),
        ], "pagination": {}});
        let hints = decode_helix_videos(body.to_string().as_bytes()).expect("hints");
        let cloudfront = "https://d2nvs31859zcd8.cloudfront.net/";
        let twitch = "https://vod-secure.twitch.tv/";
        let (id, ts) = (47198535725, "1664038929");
        assert_eq!(
            hints,
            [
                hint(cloudfront, FOLDER, id, ts, true),
                hint(twitch, FOLDER, id, ts, false),
                hint(cloudfront, FOLDER, id, ts, true),
                hint(twitch, FOLDER, id, ts, true),
            ]
        );
        assert!(
            matches!(decode_helix_videos(b"{}"), Err(DiscoverError::Decode(m)) if m == "data: not a list")
        );
    }

    #[test]
    fn preview_urls_and_folders() {
        assert_eq!(parse_folder(FOLDER), Some((47198535725, "1664038929")));
        // Logins may hold '_'; the first '_' ends the hash, the last two delimit id and time.
        assert_eq!(parse_folder("0123456789abcdef0123__x__9_59"), Some((9, "59")));
        for bad in [
            "C5992ECECCE7BD7D350D_gmhikaru_47198535725_1664038929",
            "c5992ececce7bd7d350_gmhikaru_47198535725_1664038929",
            "c5992ececce7bd7d350d_gmhikaru_4719853572x_1664038929",
            "c5992ececce7bd7d350d_gmhikaru_47198535725_",
            "c5992ececce7bd7d350d__47198535725_1664038929",
            "c5992ececce7bd7d350d_gm-hikaru_47198535725_1664038929",
            "c5992ececce7bd7d350d_47198535725_1664038929",
            "storyboards",
        ] {
            assert_eq!(parse_folder(bad), None, "{bad}");
        }
        let with_query = format!("https://vod-metro.twitch.tv/{FOLDER}/storyboards/1-info.json?token=x");
        let parsed = parse_preview_url(&with_query, true).expect("hint");
        assert_eq!(parsed.domain, "https://vod-metro.twitch.tv/");
        for bad in [
            format!("ftp://vod-secure.twitch.tv/{FOLDER}/x"),
            format!("https:///{FOLDER}/x"),
            format!("https://static-cdn.jtvnw.net/cf_vods/d2n.vs/{FOLDER}/x"),
            format!("https://static-cdn.jtvnw.net/{FOLDER}/x"),
            format!("https://vod-secure.twitch.tv?q=/{FOLDER}/x"),
            "not a url".into(),
        ] {
            assert_eq!(parse_preview_url(&bad, true), None, "{bad}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(encode_component("a+b/c=d é"), "a%2Bb%2Fc%3Dd%20%C3%A9");
        let refusal = br#"{"error":"Unauthorized","status":401,"message":"Invalid OAuth token"}"#;
        assert_eq!(excerpt(refusal), "Invalid OAuth token");
        assert_eq!(
            excerpt(b"  upstream\n connect   error "),
            "upstream connect error"
        );
        assert_eq!(excerpt(&[b'x'; 500]).len(), EXCERPT_CHARS);
        assert_eq!(until(100, 40), Duration::from_secs(60));
        assert_eq!(until(40, 100), Duration::from_secs(1));
    }

    // End to end: the real `Fetcher` against the simulated listing.

    fn fetcher(timeout_ms: u64) -> Fetcher {
        Fetcher::new(FetchSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(timeout_ms),
            max_body_bytes: 1 << 20,
        })
    }

    fn source(sim: &SimListing, kind: SourceKind) -> Source {
        Source::new(&SourceConfig {
            kind,
            gql_url: sim.gql_url(),
            helix_url: sim.helix_url(),
            token_url: sim.token_url(),
            client_id: SIM_CLIENT_ID.into(),
            client_secret: "s3cret+/=".into(),
            min_viewers_observe: 5,
            min_viewers_record: 10,
            restart_every: Duration::from_secs(150),
            pages_per_second: 3.0,
        })
    }

    fn sim() -> SimListing {
        let sim = SimListing::start().expect("sim");
        // More than two Helix pages; past index 200 viewer counts tie (broken by stream id, so
        // the listing order is still the sample order).
        sim.set_streams((0..250).map(LiveStream::sample).collect());
        sim
    }

    fn crawl(source: &mut Source, fetcher: &Fetcher) -> Vec<Sighting> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = source.page(fetcher, cursor.as_deref()).expect("page");
            assert_eq!(page.skipped, 0);
            all.extend(page.sightings);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return all,
            }
        }
    }

    fn assert_auth(result: Result<Page, DiscoverError>, expected: &str) {
        assert!(
            matches!(&result, Err(DiscoverError::Auth(m)) if m.contains(expected)),
            "{result:?}"
        );
    }

    /// What a correct client of either API reports for a simulated stream: the oracle.
    fn sighting(s: LiveStream) -> Sighting {
        Sighting {
            stream_id: s.stream_id,
            streamer_id: s.streamer_id,
            login: s.login,
            title: s.title,
            game_id: s.game_id,
            game_name: s.game_name,
            language: s.language,
            is_mature: s.is_mature,
            viewers: s.viewers,
            started_at: s.started_at,
        }
    }

    #[test]
    fn both_sources_page_the_whole_simulated_listing() {
        let sim = sim();
        let expected: Vec<Sighting> = (0..250).map(|i| sighting(LiveStream::sample(i))).collect();
        let fetcher = fetcher(5000);
        for (kind, pages, name) in [(SourceKind::Gql, 9, "gql"), (SourceKind::Helix, 3, "helix")] {
            let before = sim.requests();
            let mut source = source(&sim, kind);
            assert_eq!(source.name(), name);
            assert_eq!(crawl(&mut source, &fetcher), expected, "{name}");
            assert_eq!(sim.requests() - before, pages, "{name}");
        }
        assert_eq!(sim.token_requests(), 1);
    }

    #[test]
    fn helix_refreshes_its_token_once() {
        let sim = sim();
        let fetcher = fetcher(5000);
        let mut helix = source(&sim, SourceKind::Helix);
        helix.page(&fetcher, None).expect("page");
        // Refused token: one refresh, then the page.
        sim.expire_tokens();
        helix.page(&fetcher, None).expect("page after refresh");
        assert_eq!((sim.token_requests(), sim.requests()), (2, 3));
        // Expired by the clock: renewed before sending, no 401 round trip.
        if let Source::Helix(inner) = &mut helix
            && let Some(token) = inner.token.as_mut()
        {
            token.renew_at = Instant::now();
        }
        helix.page(&fetcher, None).expect("page after renewal");
        assert_eq!((sim.token_requests(), sim.requests()), (3, 4));
        // A fresh token that is refused too is an auth error, not a loop.
        sim.set_token_lifetime(Duration::ZERO);
        sim.expire_tokens();
        assert_auth(helix.page(&fetcher, None), "Invalid OAuth token");
        assert_eq!((sim.token_requests(), sim.requests()), (4, 6));
        // A wrong client id is refused at the token endpoint, and by GQL.
        sim.set_client_id("another-app");
        assert_auth(helix.page(&fetcher, None), "token: invalid client");
        assert_auth(source(&sim, SourceKind::Gql).page(&fetcher, None), "Client-ID");
    }

    #[test]
    fn helix_respects_the_budget() {
        let sim = sim();
        sim.set_helix_points(2);
        let fetcher = fetcher(5000);
        let mut helix = source(&sim, SourceKind::Helix);
        helix.page(&fetcher, None).expect("page");
        helix.page(&fetcher, None).expect("page");
        let wait = |result: Result<Page, DiscoverError>| match result {
            Err(DiscoverError::RateLimited { retry_after }) => retry_after,
            other => panic!("expected rate limiting, got {other:?}"),
        };
        let until_reset = Duration::from_secs(1)..=Duration::from_secs(61);
        // The last answer said 0 remaining: refused here, nothing sent.
        assert!(until_reset.contains(&wait(helix.page(&fetcher, None))));
        assert_eq!(sim.requests(), 2);
        // A source that did not know gets a 429 and waits until the reset.
        assert!(until_reset.contains(&wait(source(&sim, SourceKind::Helix).page(&fetcher, None))));
        assert_eq!(sim.requests(), 3);
        // `Retry-After` wins when present.
        sim.set_fault(ListingFault::RateLimited { retry_after_secs: 7 });
        let retry_after = wait(source(&sim, SourceKind::Gql).page(&fetcher, None));
        assert_eq!(retry_after, Duration::from_secs(7));
    }

    fn sim_video(sim_cdn: &str, n: u64, public: bool) -> SimVideo {
        let folder = vodprobe_sim::vod_dir(
            "some_login",
            315_000_000_000 + n,
            &(1_750_000_000 + n).to_string(),
        );
        SimVideo {
            video_id: 2_000 + n,
            stream_id: 315_000_000_000 + n,
            created_at: 1_750_000_000 + n as i64,
            domain_url: sim_cdn.into(),
            folder,
            public,
        }
    }

    fn expected_hint(video: &SimVideo) -> VideoHint {
        VideoHint {
            stream_id: video.stream_id,
            domain: video.domain_url.clone(),
            folder: video.folder.clone(),
            ts: video.created_at.to_string(),
            public: video.public,
        }
    }

    #[test]
    fn both_sources_return_the_simulated_videos() {
        let sim = sim();
        let fetcher = fetcher(5000);
        let prefixed = "http://127.0.0.1:9/cdn/prefix/";
        let public: Vec<SimVideo> = (0..5)
            .map(|n| sim_video("http://127.0.0.1:9/", n, true))
            .collect();
        let subonly: Vec<SimVideo> = (10..13).map(|n| sim_video(prefixed, n, false)).collect();
        sim.set_videos(77, public.clone());
        sim.set_videos(78, subonly.clone());
        sim.set_videos(79, Vec::new());
        // Newest first, whatever order they were set in.
        let newest_first = |videos: &[SimVideo]| videos.iter().rev().map(expected_hint).collect::<Vec<_>>();
        for kind in [SourceKind::Gql, SourceKind::Helix] {
            let mut source = source(&sim, kind);
            let name = source.name();
            let before = (sim.requests(), sim.video_requests());
            assert_eq!(
                source.videos(&fetcher, 77, 20).expect("videos"),
                newest_first(&public),
                "{name}"
            );
            assert_eq!(
                source.videos(&fetcher, 77, 2).expect("videos"),
                newest_first(&public)[..2],
                "{name}"
            );
            assert_eq!(
                source.videos(&fetcher, 78, 500).expect("videos"),
                newest_first(&subonly),
                "{name}"
            );
            assert_eq!(source.videos(&fetcher, 79, 20).expect("videos"), [], "{name}");
            assert_eq!(source.videos(&fetcher, 12345, 20).expect("videos"), [], "{name}");
            assert_eq!(source.videos(&fetcher, 77, 0).expect("videos"), [], "{name}");
            assert_eq!(
                (sim.requests(), sim.video_requests()),
                (before.0 + 5, before.1 + 5),
                "{name}"
            );
            // Listing pages are not video requests.
            source.page(&fetcher, None).expect("page");
            assert_eq!(sim.video_requests(), before.1 + 5, "{name}");
        }
        sim.set_fault(ListingFault::Unavailable);
        let failed = source(&sim, SourceKind::Gql).videos(&fetcher, 77, 20);
        assert!(
            matches!(failed, Err(DiscoverError::Status { status: 503, .. })),
            "{failed:?}"
        );
        sim.set_fault(ListingFault::Garbage);
        let garbage = source(&sim, SourceKind::Helix).videos(&fetcher, 77, 20);
        assert!(matches!(garbage, Err(DiscoverError::Decode(_))), "{garbage:?}");
    }

    #[test]
    fn faults_become_typed_errors() {
        let sim = sim();
        let fetcher = fetcher(300);
        let mut gql = source(&sim, SourceKind::Gql);
        sim.set_fault(ListingFault::Unavailable);
        let unavailable = gql.page(&fetcher, None);
        let expected = "upstream connect error";
        assert!(
            matches!(&unavailable, Err(DiscoverError::Status { status: 503, body_excerpt }) if body_excerpt == expected),
            "{unavailable:?}"
        );
        sim.set_fault(ListingFault::Garbage);
        assert!(decode_error(gql.page(&fetcher, None)).starts_with("body: not JSON"));
        sim.set_fault(ListingFault::Blackhole);
        let held = source(&sim, SourceKind::Helix).page(&fetcher, None);
        assert!(
            matches!(held, Err(DiscoverError::Fetch(FetchError::Timeout { .. }))),
            "{held:?}"
        );
        sim.set_fault(ListingFault::None);
        assert_eq!(gql.page(&fetcher, None).expect("page").sightings.len(), 30);
    }
}
