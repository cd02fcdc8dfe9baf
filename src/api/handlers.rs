//! What each route does, on plain types: a handler takes the backend and the request's parts
//! and returns a [`Reply`] or an [`ApiError`]. No warp here.

use super::cache::ReplyCache;
use super::dto::{self, ErrorBody, ErrorDetail, List, Requeued, Vod};
use super::params::{self, Query};
use super::readers;
use super::{Backend, LookupInput};
use crate::audio::AudioState;
use crate::playlist::{Audio, directory_of, make_playable_with, master_playlist};
use crate::record::StreamRecord;
use crate::store::{NamePosition, Position, Sort, Store, StoreError, VodFilter};
use serde::Serialize;
use sha1::{Digest, Sha1};
use std::io::Write;
use std::sync::Arc;

/// Index entries one list request may examine: bounds the cost of a sparse filter.
const MAX_EXAMINED: usize = 10_000;

/// A response on plain types.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(value: &impl Serialize) -> Reply {
        Reply::json_status(200, value)
    }

    pub fn json_status(status: u16, value: &impl Serialize) -> Reply {
        // Sized for a page of list items, so the body is not copied while it grows.
        let mut body = Vec::with_capacity(64 * 1024);
        if serde_json::to_writer(&mut body, value).is_err() {
            body.clear();
        }
        Reply {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
        }
    }
}

/// An error answered as `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_parameter(name: &str, problem: impl std::fmt::Display) -> ApiError {
        ApiError::new(400, "bad_parameter", format!("parameter {name:?} {problem}"))
    }

    pub fn bad_body(problem: impl std::fmt::Display) -> ApiError {
        ApiError::new(400, "bad_body", problem.to_string())
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", message)
    }

    pub fn reply(&self) -> Reply {
        let mut reply = Reply::json_status(
            self.status,
            &ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: &self.message,
                },
            },
        );
        if self.status == 503 {
            reply.headers.push(("retry-after", "1".to_string()));
        }
        if self.status == 401 {
            reply.headers.push(("www-authenticate", "Bearer".to_string()));
        }
        reply
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::new(500, "store_error", error.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ApiError>;

/// Runs store work on the API's reader threads (see [`readers`]).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::result::Result<T, StoreError> + Send + 'static,
) -> Result<T> {
    match readers::read(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(failed) => Err(ApiError::new(500, "internal", failed.to_string())),
    }
}

const VOD_PARAMS: &[&str] = &[
    "streamer",
    "streamer_id",
    "game_id",
    "language",
    "status",
    "segments_state",
    "lost_since",
    "at_risk",
    "public",
    "followed",
    "since",
    "until",
    "sort",
    "limit",
    "cursor",
];

/// A list request's parameters, checked: all `vods` needs besides the store.
struct VodRequest {
    filter: VodFilter,
    login: Option<String>,
    /// `followed=true`: only the followed channels; `false`: only the others.
    followed: Option<bool>,
    sort: Sort,
    after: Option<Position>,
    limit: usize,
}

fn vod_request(raw: &str, now: i64) -> Result<VodRequest> {
    let query = Query::parse(raw, VOD_PARAMS)?;
    let sort = query.sort()?;
    let limit = query.limit()?;
    let after = query
        .get("cursor")
        .map(|cursor| params::decode_position(cursor, sort))
        .transpose()?;
    let filter = VodFilter {
        streamer_ids: query.id("streamer_id")?.map(|id| vec![id]),
        game_id: query.get("game_id").map(str::to_string),
        language: query.text("language")?.map(str::to_string),
        status: query.status()?,
        public: query.bool("public")?,
        since: query.time("since")?,
        until: query.time("until")?,
        segments: query.segments_state()?,
        excluded_streamers: Vec::new(),
        lost_since: query.time("lost_since")?,
        at_risk: query.bool("at_risk")?.map(|wanted| (now, wanted)),
    };
    let login = query.text("streamer")?.map(str::to_string);
    Ok(VodRequest {
        filter,
        login,
        followed: query.bool("followed")?,
        sort,
        after,
        limit,
    })
}

/// A list route's answer from `cache` while the store is unchanged since it was computed,
/// else from `list` (and kept). Only 200 answers are kept.
pub async fn cached<Fut>(
    cache: &ReplyCache,
    route: &'static str,
    backend: Arc<dyn Backend>,
    raw: String,
    list: impl FnOnce(Arc<dyn Backend>, String) -> Fut,
) -> Result<Reply>
where
    Fut: std::future::Future<Output = Result<Reply>>,
{
    // Read before the query: an answer computed while a write commits is kept under the
    // older generation and so never served after it.
    let generation = backend.store().generation();
    // Items say whether their channel is followed: a change of follows is a change of answer.
    let follows = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        backend.followed().hash(&mut hasher);
        hasher.finish()
    };
    // Whether a capture is at risk changes with the clock, not only with the store: such an
    // answer is kept for the minute it was computed in.
    let key = if raw.contains("at_risk") {
        format!("{route}@{}?{raw}#{follows:x}", backend.now() / 60)
    } else {
        format!("{route}?{raw}#{follows:x}")
    };
    if let Some(body) = cache.get(&key, generation) {
        return Ok(Reply {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_vec(),
        });
    }
    let reply = list(backend, raw).await?;
    if reply.status == 200 {
        cache.put(&key, generation, &reply.body);
    }
    Ok(reply)
}

pub async fn vods(backend: Arc<dyn Backend>, raw: String) -> Result<Reply> {
    let VodRequest {
        mut filter,
        login,
        followed,
        sort,
        after,
        limit,
    } = vod_request(&raw, backend.now())?;
    let followed_ids = backend.followed();
    match followed {
        Some(true) => {
            filter.streamer_ids = Some(match filter.streamer_ids.take() {
                Some(wanted) => wanted
                    .into_iter()
                    .filter(|id| followed_ids.contains(id))
                    .collect(),
                None => followed_ids.clone(),
            })
        }
        Some(false) => filter.excluded_streamers = followed_ids.clone(),
        None => {}
    }
    let store = backend.store();
    let page = blocking(move || {
        if let Some(login) = login {
            // A login names every account that used it; combined with streamer_id, both apply.
            let ids = store.streamer_ids_for_login(&login)?;
            filter.streamer_ids = Some(match filter.streamer_ids.take() {
                Some(wanted) => ids.into_iter().filter(|id| wanted.contains(id)).collect(),
                None => ids,
            });
        }
        let page = store.vods(&filter, sort, after, limit, MAX_EXAMINED)?;
        let keys: Vec<_> = page.items.iter().map(StreamRecord::key).collect();
        let checks = store.segment_statuses(&keys)?;
        let audio = store.original_audios(&keys)?;
        Ok::<_, StoreError>((page, checks, audio))
    })
    .await?;
    let (page, checks, audio) = page;
    Ok(Reply::json(&List {
        items: page
            .items
            .into_iter()
            .zip(checks)
            .zip(audio)
            .map(|((r, c), a)| {
                let followed = followed_ids.binary_search(&r.streamer_id).is_ok();
                Vod(r, c, a, followed)
            })
            .collect::<Vec<_>>(),
        next_cursor: page.next.map(params::encode_position),
    }))
}

fn path_id(name: &str, text: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| ApiError::bad_parameter(name, format!("must be a numeric id, not {text:?}")))
}

pub async fn vods_by_stream_id(backend: Arc<dyn Backend>, id: String, raw: String) -> Result<Reply> {
    Query::parse(&raw, &[])?;
    let stream_id = path_id("stream_id", &id)?;
    let store = backend.store();
    let (records, checks, audio) = blocking(move || {
        let records = store.by_stream_id(stream_id)?;
        let keys: Vec<_> = records.iter().map(StreamRecord::key).collect();
        let checks = store.segment_statuses(&keys)?;
        let audio = store.original_audios(&keys)?;
        Ok::<_, StoreError>((records, checks, audio))
    })
    .await?;
    if records.is_empty() {
        return Err(ApiError::not_found(format!(
            "no broadcast with stream id {stream_id}"
        )));
    }
    // Newest first, like the lists.
    let followed = backend.followed();
    let items: Vec<Vod> = records
        .into_iter()
        .zip(checks)
        .zip(audio)
        .rev()
        .map(|((r, c), a)| {
            let is_followed = followed.binary_search(&r.streamer_id).is_ok();
            Vod(r, c, a, is_followed)
        })
        .collect();
    Ok(Reply::json(&List {
        items,
        next_cursor: None,
    }))
}

/// The fuzzing entry for query strings (see `crate::fuzz`): parses `raw` as the list and
/// search routes do. Any answer is fine, a panic is not, and a cursor that decodes must
/// encode back to itself.
pub fn check_query(raw: &str) {
    if let Ok(request) = vod_request(raw, 0)
        && let Some(after) = request.after
    {
        let again = params::decode_position(&params::encode_position(after), request.sort);
        assert_eq!(again.ok(), Some(after), "list cursor round trip");
    }
    if let Ok((_, Some(after), _)) = streamer_request(raw) {
        let again = params::decode_name_position(&params::encode_name_position(&after));
        assert_eq!(again.ok(), Some(after), "search cursor round trip");
    }
    for name in ["since", "until"] {
        let _ = params::parse_time(name, raw);
    }
}

/// The request headers the playlist route reads.
pub struct PlaylistRequest {
    pub stream_id: String,
    /// `{start_unix}.m3u8`, or `{start_unix}` when `variant` is given.
    pub file: String,
    /// `{quality}.m3u8` or `master.m3u8` under `/vods/{stream_id}/{start_unix}/`.
    pub variant: Option<String>,
    pub accept_encoding: Option<String>,
    pub if_none_match: Option<String>,
    /// The raw query string: `audio=original` or `audio=muted`.
    pub query: String,
}

/// The playlist route's `audio` parameter: `original` (the `-unmuted` originals while they
/// answer) or `muted`; `None` when not given.
fn audio_asked(raw: &str) -> Result<Option<Audio>> {
    let query = Query::parse(raw, &["audio"])?;
    match query.get("audio") {
        None => Ok(None),
        Some("original") => Ok(Some(Audio::Original)),
        Some("muted") => Ok(Some(Audio::Muted)),
        Some(other) => Err(ApiError::bad_parameter(
            "audio",
            format!("must be original or muted, not {other:?}"),
        )),
    }
}

/// Whether the client accepts gzip (`q=0` refuses it).
pub(super) fn accepts_gzip(header: Option<&str>) -> bool {
    header.is_some_and(|header| {
        header.split(',').any(|part| {
            let mut pieces = part.split(';');
            let coding = pieces.next().unwrap_or("").trim();
            let refused = pieces.any(|param| {
                let param = param.trim();
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

/// A strong validator of a whole body: the first 96 bits of its SHA-1, quoted.
pub(super) fn etag_of(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    let hash: String = digest[..12].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("\"{hash}\"")
}

pub(super) fn etag_matches(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|header| {
        header
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag)
    })
}

/// Which playlist a playlist route names.
enum Wanted {
    /// The archived (primary quality) media playlist.
    Primary,
    Master,
    Quality(String),
}

fn playlist_target(request: &PlaylistRequest) -> Result<(i64, Wanted)> {
    let bad_start = || {
        ApiError::bad_parameter(
            "start_unix",
            format!("must be unix seconds followed by .m3u8, not {:?}", request.file),
        )
    };
    match &request.variant {
        None => {
            let start = request
                .file
                .strip_suffix(".m3u8")
                .and_then(|start| start.parse().ok());
            Ok((start.ok_or_else(bad_start)?, Wanted::Primary))
        }
        Some(file) => {
            let start = request.file.parse().map_err(|_| {
                ApiError::bad_parameter(
                    "start_unix",
                    format!("must be unix seconds, not {:?}", request.file),
                )
            })?;
            let wanted = match file.strip_suffix(".m3u8") {
                Some("master") => Wanted::Master,
                Some(quality) if !quality.is_empty() => Wanted::Quality(quality.to_string()),
                _ => {
                    return Err(ApiError::bad_parameter(
                        "quality",
                        format!("must be master.m3u8 or a quality such as 720p60.m3u8, not {file:?}"),
                    ));
                }
            };
            Ok((start, wanted))
        }
    }
}

/// The folder of `quality` beside the archived playlist's own (`.../chunked/` → `.../720p60/`).
fn quality_directory(playlist_url: &str, quality: &str) -> String {
    let directory = directory_of(playlist_url).trim_end_matches('/');
    let parent = directory.rsplit_once('/').map_or(directory, |(parent, _)| parent);
    format!("{parent}/{quality}/")
}

pub async fn playlist(backend: Arc<dyn Backend>, request: PlaylistRequest) -> Result<Reply> {
    let stream_id = path_id("stream_id", &request.stream_id)?;
    let (start, wanted) = playlist_target(&request)?;
    let store = backend.store();
    // Rendering and compressing run with the read on the fixed reader threads: a 12-hour
    // playlist with absolute URIs and its compressor take a few hundred KB, and on the async
    // threads every request in flight could hold them at once.
    blocking(move || Ok(render_playlist(&store, (start, stream_id), wanted, &request))).await?
}

fn render_playlist(
    store: &Store,
    key: (i64, u64),
    wanted: Wanted,
    request: &PlaylistRequest,
) -> Result<Reply> {
    let (start, stream_id) = key;
    let asked = audio_asked(&request.query)?;
    let (record, text) = (store.get_stream(key)?, store.playlist(key)?);
    let (Some(record), Some(text)) = (record, text) else {
        return Err(ApiError::not_found(format!(
            "no archived playlist for stream {stream_id} started at {start}"
        )));
    };
    let Some(archive) = record.archive else {
        return Err(ApiError::not_found(format!(
            "no archived playlist for stream {stream_id} started at {start}"
        )));
    };
    let base = match &wanted {
        // Relative URIs resolve against the playlist's directory, not the playlist itself.
        Wanted::Primary => directory_of(&archive.url).to_string(),
        Wanted::Master => String::new(),
        // Twitch cuts every quality at the same segment boundaries under the same names, so
        // a quality's playlist is the archived one pointed at that quality's folder.
        Wanted::Quality(quality) if archive.qualities.contains(quality) => {
            quality_directory(&archive.url, quality)
        }
        Wanted::Quality(quality) => {
            return Err(ApiError::not_found(format!(
                "stream {stream_id} started at {start} has no quality {quality:?}; it has {}",
                archive.qualities.join(", ")
            )));
        }
    };
    // The original audio only while its last check found it answering; otherwise the muted
    // copies, and the header says which was served.
    let audio = match asked {
        Some(Audio::Original) if !matches!(wanted, Wanted::Master) => {
            let watch = store.original_audio(key)?;
            if watch.and_then(|w| w.state()) == Some(AudioState::Available) {
                Audio::Original
            } else {
                Audio::Muted
            }
        }
        _ => Audio::Muted,
    };
    // The ETag covers what the body is made from (the stored text, the base URL, the
    // qualities, the audio), so a revalidation is answered without rendering the playlist.
    let mut hasher = Sha1::new();
    if audio == Audio::Original {
        hasher.update(b"original\0");
    }
    hasher.update(text.as_bytes());
    hasher.update([0]);
    hasher.update(base.as_bytes());
    hasher.update([0]);
    hasher.update(archive.qualities.join(",").as_bytes());
    let digest = hasher.finalize();
    let hash: String = digest[..12].iter().map(|byte| format!("{byte:02x}")).collect();
    let gzip = accepts_gzip(request.accept_encoding.as_deref());
    let etag = if gzip {
        format!("\"{hash}-gz\"")
    } else {
        format!("\"{hash}\"")
    };
    let mut headers = vec![
        ("etag", etag.clone()),
        ("vary", "Accept-Encoding".to_string()),
        // Re-captured after the hour boundary (muting): cache briefly, then revalidate.
        ("cache-control", "public, max-age=60".to_string()),
    ];
    if asked.is_some() && !matches!(wanted, Wanted::Master) {
        let served = match audio {
            Audio::Original => "original",
            Audio::Muted => "muted",
        };
        headers.push(("x-vodprobe-audio", served.to_string()));
    }
    if etag_matches(request.if_none_match.as_deref(), &etag) {
        return Ok(Reply {
            status: 304,
            content_type: "application/vnd.apple.mpegurl",
            headers,
            body: Vec::new(),
        });
    }
    let body = match wanted {
        Wanted::Master => master_playlist(&archive.qualities),
        _ => make_playable_with(&text, &base, audio),
    };
    let body = if gzip {
        headers.push(("content-encoding", "gzip".to_string()));
        // Level 1: playlists are repetitive text and shrink about tenfold even at the fastest level.
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 6), flate2::Compression::fast());
        encoder
            .write_all(body.as_bytes())
            .and_then(|()| encoder.finish())
            .map_err(|error| ApiError::new(500, "internal", format!("gzip failed: {error}")))?
    } else {
        body.into_bytes()
    };
    Ok(Reply {
        status: 200,
        content_type: "application/vnd.apple.mpegurl",
        headers,
        body,
    })
}

/// A search request's parameters, checked: the text, where to resume, how many.
fn streamer_request(raw: &str) -> Result<(String, Option<NamePosition>, usize)> {
    let query = Query::parse(raw, &["q", "limit", "cursor"])?;
    let q = query
        .get("q")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ApiError::bad_parameter("q", "is required: a part of a login"))?
        .to_string();
    if q.len() > 64 {
        return Err(ApiError::bad_parameter(
            "q",
            "is longer than any login (64 characters at most)",
        ));
    }
    let limit = query.limit()?;
    let after = query
        .get("cursor")
        .map(params::decode_name_position)
        .transpose()?;
    Ok((q, after, limit))
}

pub async fn streamers(backend: Arc<dyn Backend>, raw: String) -> Result<Reply> {
    let (q, after, limit) = streamer_request(&raw)?;
    let store = backend.store();
    let page = blocking(move || store.search_streamers(&q, after, limit, MAX_EXAMINED)).await?;
    Ok(Reply::json(&List {
        items: page
            .items
            .into_iter()
            .map(dto::Streamer::from)
            .collect::<Vec<_>>(),
        next_cursor: page.next.as_ref().map(params::encode_name_position),
    }))
}

pub fn categories(backend: &dyn Backend, raw: &str) -> Result<Reply> {
    Query::parse(raw, &[])?;
    Ok(Reply::json(&dto::categories(backend.counts())))
}

pub fn languages(backend: &dyn Backend, raw: &str) -> Result<Reply> {
    Query::parse(raw, &[])?;
    Ok(Reply::json(&dto::languages(backend.counts())))
}

pub fn domains(backend: &dyn Backend, raw: &str) -> Result<Reply> {
    Query::parse(raw, &[])?;
    Ok(Reply::json(&serde_json::json!({ "items": backend.domains() })))
}

/// The OpenAPI 3.1 description of these routes, kept beside them and checked against real
/// responses by the integration tests.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn openapi(raw: &str) -> Result<Reply> {
    Query::parse(raw, &[])?;
    Ok(Reply {
        status: 200,
        content_type: "application/json",
        headers: vec![("cache-control", "max-age=3600".to_string())],
        body: OPENAPI.as_bytes().to_vec(),
    })
}

pub async fn healthz(backend: Arc<dyn Backend>) -> Result<Reply> {
    let health = tokio::task::spawn_blocking(move || backend.health())
        .await
        .map_err(|join| ApiError::new(500, "internal", join.to_string()))?;
    // Degraded still answers 200: the process is alive and serving; the body says what is wrong.
    Ok(Reply::json(&health))
}

pub async fn metrics(backend: Arc<dyn Backend>) -> Result<Reply> {
    let text = tokio::task::spawn_blocking(move || {
        backend.sample_metrics();
        backend.metrics().render()
    })
    .await
    .map_err(|join| ApiError::new(500, "internal", join.to_string()))?;
    Ok(Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: Vec::new(),
        body: text.into_bytes(),
    })
}

/// Admin routes: off while the token is empty; otherwise the bearer token must match,
/// compared in constant time.
pub fn authorize(backend: &dyn Backend, authorization: Option<&str>) -> Result<()> {
    let token = backend.admin_token();
    if token.is_empty() {
        return Err(ApiError::new(
            403,
            "admin_disabled",
            "admin routes are off: set api.admin_token in config.toml",
        ));
    }
    let given = authorization
        .and_then(|header| header.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "unauthorized",
            "send Authorization: Bearer <api.admin_token>",
        ))
    }
}

/// Compares without an early exit, so the time taken does not reveal how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (index, byte) in b.iter().enumerate() {
        difference |= usize::from(a.get(index).copied().unwrap_or(0) ^ byte);
    }
    difference == 0
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_body(format!("the JSON body is not valid: {error}")))
}

pub async fn start_lookup(backend: Arc<dyn Backend>, body: Vec<u8>) -> Result<Reply> {
    let input: LookupInput = json_body(&body)?;
    let id = tokio::task::spawn_blocking({
        let backend = backend.clone();
        move || backend.start_lookup(input)
    })
    .await
    .map_err(|join| ApiError::new(500, "internal", join.to_string()))??;
    let state = backend
        .lookup(id)
        .ok_or_else(|| ApiError::new(500, "internal", "the lookup vanished"))?;
    let mut reply = Reply::json_status(202, &state);
    reply.headers.push(("location", format!("/api/v1/lookups/{id}")));
    Ok(reply)
}

pub fn lookup(backend: &dyn Backend, id: &str) -> Result<Reply> {
    let id = path_id("id", id)?;
    backend
        .lookup(id)
        .map(|state| Reply::json(&state))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no lookup {id} (lookups are kept in memory until restart)"
            ))
        })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RequeueInput {
    since: serde_json::Value,
    until: serde_json::Value,
}

fn body_time(name: &str, value: &serde_json::Value) -> Result<i64> {
    match value {
        serde_json::Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| ApiError::bad_body(format!("{name} must be whole unix seconds"))),
        serde_json::Value::String(text) => {
            params::parse_time(name, text).map_err(|error| ApiError::bad_body(error.message))
        }
        _ => Err(ApiError::bad_body(format!(
            "{name} must be unix seconds or an RFC 3339 string"
        ))),
    }
}

pub async fn requeue(backend: Arc<dyn Backend>, body: Vec<u8>) -> Result<Reply> {
    let input: RequeueInput = json_body(&body)?;
    let since = body_time("since", &input.since)?;
    let until = body_time("until", &input.until)?;
    if since >= until {
        return Err(ApiError::bad_body("since must be before until"));
    }
    let requeued = tokio::task::spawn_blocking(move || backend.requeue(since, until))
        .await
        .map_err(|join| ApiError::new(500, "internal", join.to_string()))??;
    Ok(Reply::json(&Requeued { requeued }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_negotiated_and_q_zero_refuses_it() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("gzip; q=0.000")));
        assert!(!accepts_gzip(Some("br")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn etags_match_lists_weak_forms_and_star() {
        assert!(etag_matches(Some("\"a\", \"b\""), "\"b\""));
        assert!(etag_matches(Some("W/\"b\""), "\"b\""));
        assert!(etag_matches(Some("*"), "\"b\""));
        assert!(!etag_matches(Some("\"c\""), "\"b\""));
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"secretx", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
