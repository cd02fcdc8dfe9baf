//! The simulated Twitch live listing: GQL (`POST /gql`), Helix (`GET /helix/streams`,
//! `GET /helix/videos`, `GET /helix/users`) and the app-token endpoint (`POST /oauth2/token`)
//! on one loopback listener. Channels are known by id and login (GQL `users(ids:)` and
//! `users(logins:)`, Helix `users?login=&id=`) once a stream of theirs went live or
//! [`SimListing::set_user`] named them; [`SimListing::rename`] changes a login.
//!
//! The live set is whatever the world driver last put there ([`SimListing::set_streams`],
//! [`SimListing::upsert`], [`SimListing::remove`]). Every listing request sorts it afresh —
//! viewers descending, ties by stream id — and cursors are opaque strings that encode an
//! offset into that order. So, like the real listing, a page boundary is a position and not a
//! stream: when counts change between two requests, streams shift across it and a crawler sees
//! some twice and misses others, which is why the crawler restarts from the top.
//!
//! What is checked is what Twitch checks, with its error shapes (`{"error", "status",
//! "message"}`): GQL needs the configured `Client-Id` (400 otherwise) and caps `first` at 30;
//! Helix needs a bearer token issued here for the same client id (401 otherwise), refuses
//! `first` above 100 (400), and charges one point per request against a per-minute budget
//! reported in `Ratelimit-Limit/Remaining/Reset` (429 once it is spent). The token endpoint
//! wants `grant_type=client_credentials`, the configured client id (400) and any non-empty
//! secret (403). Faults ([`ListingFault`]) apply to every endpoint and act after the request
//! is counted, so tests can assert on what a client sent.
//!
//! Archive videos are per channel, as the world driver last set them
//! ([`SimListing::set_videos`]), newest first. GQL answers `user(id) { videos(first) {...}
//! subscriptionProducts { hasSubonlyVideoArchive } }` with `seekPreviewsURL` =
//! `{domain_url}{folder}/storyboards/{video_id}-info.json` (Twitch's storyboard form; `null`
//! for every Nth video id once [`SimListing::set_null_seek_previews_every`] is set; `user:
//! null` for a channel never set); Helix answers `/helix/videos?user_id=` with `stream_id`,
//! `viewable` and `thumbnail_url` = `{domain_url}{folder}//thumb/thumb0-%{width}x%{height}.jpg`
//! (the direct-host form: simulated domains are not CloudFront hosts). Once
//! [`SimListing::set_processing_period`] is set, a video whose broadcast is in the live set, or
//! left it less than that period ago (wall clock of the simulator), answers Twitch's
//! placeholder [`PROCESSING_THUMBNAIL`] instead: the video exists, its URL names no path. Both
//! cap `first` at 100. A video's muted stretches ([`MutedStretch`], set by the world's mute pass
//! or [`SimListing::set_video_muted`]) are GQL `muteInfo` (when the query names it) and Helix
//! `muted_segments`, null when none; [`SimListing::set_mute_info_withheld`] answers them as
//! unavailable instead.
//!
//! Today's refusals are on by default and switchable: GQL cursor pages from refused client ids
//! fail the integrity check, persisted queries are not found, Helix's last page loops back to
//! page 1, and token secrets only in the URL are refused. This file holds the state, the
//! setters and the routing; `listing/gql.rs` and `listing/helix.rs` answer each protocol.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use crate::http::{Reply, Request, Response, Server, lock};

mod gql;
mod helix;

use gql::*;
use helix::*;

/// Helix's `thumbnail_url` while a video's broadcast is live or processing.
pub const PROCESSING_THUMBNAIL: &str =
    "https://vod-secure.twitch.tv/_404/404_processing_%{width}x%{height}.png";

/// A typical processing period after a broadcast ends (Twitch shows the placeholder for
/// minutes); a suggestion for [`SimListing::set_processing_period`], which is off by default.
pub const PROCESSING_PERIOD: Duration = Duration::from_secs(600);

/// The client id the simulator accepts on every endpoint until [`SimListing::set_client_id`]:
/// the public client id the configured default names (yt-dlp's, accepted by Twitch's GQL for
/// cursor paging at the time of writing), so a default config works against it.
pub const SIM_CLIENT_ID: &str = "ue6666qo983tsx6so1t0vnawi233wa";
/// Twitch's own web client id: GQL answers its first page but refuses cursor pages with
/// "failed integrity check" (since 2023-05); the default of [`SimListing::set_refused_client_ids`].
pub const WEB_CLIENT_ID: &str = "kimne78kx3ncx6brgo4mv6wki5h1ko";
/// Public client ids GQL accepts besides the configured one ([`SIM_CLIENT_ID`] until
/// [`SimListing::set_client_id`]); Helix accepts only the configured one.
pub const PUBLIC_CLIENT_IDS: [&str; 2] = [WEB_CLIENT_ID, "kd1unb4b3q4t58fwlpcbzcbnm76a8fp"];

const GQL_MAX_FIRST: u64 = 30;
const HELIX_DEFAULT_FIRST: u64 = 20;
const HELIX_MAX_FIRST: u64 = 100;
/// `User.videos(first:)` refuses more.
const GQL_MAX_VIDEOS: u64 = 100;
const DEFAULT_POINTS_PER_MINUTE: u32 = 800;
/// Twitch's app tokens live about 60 days.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 86_400);
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Twitch takes at most this many channels in one confirmation by id.
const CONFIRM_MAX_IDS: usize = 100;

/// One live stream as the listing knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveStream {
    pub stream_id: u64,
    pub streamer_id: u64,
    pub login: String,
    pub title: String,
    /// "" for no game (GQL then answers `game: null`).
    pub game_id: String,
    pub game_name: String,
    /// Lowercase ISO code as Helix spells it ("en"); GQL answers its enum form ("EN").
    pub language: String,
    pub is_mature: bool,
    pub viewers: u32,
    /// Unix seconds.
    pub started_at: i64,
}

impl LiveStream {
    /// A plausible stream for demos and tests, `index` 0 the most viewed: ids beyond 32 bits,
    /// every 4th without a game, languages cycling through "en", "de" and "pt-br" (which GQL
    /// answers as "PT": its enum has no PT_BR), every 5th mature, 50 000 / (index + 1) viewers, starts a minute apart.
    pub fn sample(index: u32) -> LiveStream {
        let (game_id, game_name) = match index % 4 {
            0 => (String::new(), String::new()),
            _ => ((500 + index).to_string(), format!("Game {index}")),
        };
        LiveStream {
            stream_id: 315_000_000_000 + u64::from(index),
            streamer_id: 9_000 + u64::from(index),
            login: format!("user_{index}"),
            title: format!("stream #{index}"),
            game_id,
            game_name,
            language: ["en", "de", "pt-br"][index as usize % 3].into(),
            is_mature: index % 5 == 0,
            viewers: 50_000 / (index + 1),
            started_at: 1_750_000_000 - i64::from(index) * 60,
        }
    }
}

/// One archive video object of a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct SimVideo {
    pub video_id: u64,
    /// The broadcast it archives.
    pub stream_id: u64,
    /// Unix seconds (the broadcast's start: Twitch creates the archive when the stream starts).
    pub created_at: i64,
    /// The CDN base URL of the copy, ending in '/' (e.g. `http://127.0.0.1:PORT/`).
    pub domain_url: String,
    /// `{hash}_{login}_{stream_id}_{ts}`.
    pub folder: String,
    /// Publicly listed; false for sub-only. GQL reports sub-only per channel: a channel with
    /// any non-public video has `hasSubonlyVideoArchive`.
    pub public: bool,
    /// The stretches Twitch's mute pass silenced, in order; empty: nothing muted (yet).
    /// Answered as GQL `muteInfo` and Helix `muted_segments` (see [`MutedStretch`]).
    pub muted: Vec<MutedStretch>,
}

/// One muted stretch of a video, in whole seconds from the video's start: Helix
/// `muted_segments[]` items are `{"duration": secs, "offset": secs}` ("Get Videos" in Twitch's
/// API reference; its example answers `[{"duration":30,"offset":120}]`, null when nothing is
/// muted; the same shape in @twurple/api's `HelixVideoMutedSegmentData` and docs.rs
/// `twitch_api`'s get_videos), GQL `Video.muteInfo.mutedSegmentConnection.nodes[]` are `{offset duration}` (the
/// query of Twitch's web player overlay `VideoPlayer_MutedSegmentsAlertOverlay`, read by
/// Brisppy/twitch-archiver `get_muted_segments`; the connection is null when nothing is muted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutedStretch {
    pub offset: u32,
    pub duration: u32,
}

impl SimVideo {
    /// The login part of the folder (`{hash}_{login}_{stream_id}_{ts}`).
    fn login(&self) -> &str {
        let rest = self.folder.split_once('_').map_or("", |(_, rest)| rest);
        let rest = rest.rsplit_once('_').map_or("", |(rest, _)| rest);
        rest.rsplit_once('_').map_or("", |(login, _)| login)
    }

    fn seek_previews_url(&self) -> String {
        format!(
            "{}{}/storyboards/{}-info.json",
            self.domain_url, self.folder, self.video_id
        )
    }

    fn thumbnail_url(&self) -> String {
        format!(
            "{}{}//thumb/thumb0-%{{width}}x%{{height}}.jpg",
            self.domain_url, self.folder
        )
    }
}

/// How the listing misbehaves; applies to every endpoint, after the request is counted.
#[derive(Clone, Debug, PartialEq)]
pub enum ListingFault {
    None,
    /// 503 with a plain-text body.
    Unavailable,
    /// 200 with an HTML body.
    Garbage,
    /// Read the request, never answer.
    Blackhole,
    /// 429 with `Retry-After`.
    RateLimited {
        retry_after_secs: u32,
    },
    /// Pages after the first (a cursor given) are refused: GQL with an `errors` answer, Helix
    /// with 400. First pages and confirmations are served.
    RefuseCursorPages,
}

struct Token {
    client_id: String,
    expires: Instant,
}

struct State {
    streams: BTreeMap<u64, LiveStream>,
    /// Every channel the listing knows, live or not: streamer id → login.
    users: BTreeMap<u64, String>,
    /// Per streamer id, newest first.
    videos: HashMap<u64, Vec<SimVideo>>,
    /// When each stream id last left the live set (wall clock).
    ended: HashMap<u64, Instant>,
    /// Helix placeholder thumbnails while live and this long after; `None`: never.
    processing_period: Option<Duration>,
    /// GQL `seekPreviewsURL` is null for video ids divisible by this.
    null_seek_previews_every: Option<u64>,
    /// Answer as if the muted-segments fields were unavailable (GQL `muteInfo: null`, Helix
    /// without `muted_segments`).
    mute_info_withheld: bool,
    fault: ListingFault,
    requests: usize,
    video_requests: usize,
    token_requests: usize,
    confirm_requests: usize,
    client_id: String,
    /// GQL client ids whose cursor pages fail the integrity check.
    refused_client_ids: Vec<String>,
    /// The token endpoint refuses a client secret that is not in the form body.
    reject_query_secrets: bool,
    /// Helix `/streams`: the last page's cursor leads back to page 1.
    looping_last_cursor: bool,
    /// Helix requests with a cursor, and every how many of them answer 400 "invalid cursor".
    cursor_requests: usize,
    invalid_cursor_every: Option<usize>,
    tokens: HashMap<String, Token>,
    tokens_issued: u64,
    token_lifetime: Duration,
    points_per_minute: u32,
    /// The current rate window: when it started, its end in unix seconds, points used.
    window: Option<(Instant, i64, u32)>,
}

/// The simulated listing; dropping it shuts the server down.
pub struct SimListing {
    state: Arc<Mutex<State>>,
    server: Server,
}

impl SimListing {
    /// Listens on 127.0.0.1:0 with no streams, no fault, [`SIM_CLIENT_ID`] and 800 points.
    pub fn start() -> std::io::Result<SimListing> {
        let state = Arc::new(Mutex::new(State {
            streams: BTreeMap::new(),
            users: BTreeMap::new(),
            videos: HashMap::new(),
            ended: HashMap::new(),
            processing_period: None,
            null_seek_previews_every: None,
            mute_info_withheld: false,
            fault: ListingFault::None,
            requests: 0,
            video_requests: 0,
            token_requests: 0,
            confirm_requests: 0,
            client_id: SIM_CLIENT_ID.to_string(),
            refused_client_ids: vec![WEB_CLIENT_ID.to_string()],
            reject_query_secrets: true,
            looping_last_cursor: true,
            cursor_requests: 0,
            invalid_cursor_every: None,
            tokens: HashMap::new(),
            tokens_issued: 0,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            points_per_minute: DEFAULT_POINTS_PER_MINUTE,
            window: None,
        }));
        let shared = Arc::clone(&state);
        let server = Server::bind("127.0.0.1:0", move |req: &Request| handle(&shared, req))?;
        Ok(SimListing { state, server })
    }

    pub fn gql_url(&self) -> String {
        format!("http://{}/gql", self.server.local_addr())
    }

    /// Ends with '/', like the configured `helix_url`.
    pub fn helix_url(&self) -> String {
        format!("http://{}/helix/", self.server.local_addr())
    }

    pub fn token_url(&self) -> String {
        format!("http://{}/oauth2/token", self.server.local_addr())
    }

    /// Replaces the whole live set.
    pub fn set_streams(&self, streams: Vec<LiveStream>) {
        let mut st = lock(&self.state);
        let new: BTreeMap<u64, LiveStream> = streams.into_iter().map(|s| (s.stream_id, s)).collect();
        let now = Instant::now();
        let gone: Vec<u64> = st
            .streams
            .keys()
            .filter(|id| !new.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            st.ended.insert(id, now);
        }
        for id in new.keys() {
            st.ended.remove(id);
        }
        for stream in new.values() {
            st.users.insert(stream.streamer_id, stream.login.clone());
        }
        st.streams = new;
    }

    /// Adds a stream or replaces the one with its stream id.
    pub fn upsert(&self, stream: LiveStream) {
        let mut st = lock(&self.state);
        st.ended.remove(&stream.stream_id);
        st.users.insert(stream.streamer_id, stream.login.clone());
        st.streams.insert(stream.stream_id, stream);
    }

    /// Makes a channel known (for `users(logins:)` / `/helix/users`) without a live stream.
    /// Channels of streams put live are known already.
    pub fn set_user(&self, streamer_id: u64, login: &str) {
        lock(&self.state).users.insert(streamer_id, login.to_string());
    }

    /// A channel changes its login: the user lookups and its live streams answer the new one
    /// from now on, and the old login is unknown. Its videos keep their folders (Twitch names
    /// a folder when the broadcast starts); the CDN folders of its new broadcasts are the
    /// world driver's (`World::rename`).
    pub fn rename(&self, streamer_id: u64, new_login: &str) {
        let mut st = lock(&self.state);
        st.users.insert(streamer_id, new_login.to_string());
        for stream in st.streams.values_mut().filter(|s| s.streamer_id == streamer_id) {
            stream.login = new_login.to_string();
        }
    }

    pub fn remove(&self, stream_id: u64) {
        let mut st = lock(&self.state);
        if st.streams.remove(&stream_id).is_some() {
            st.ended.insert(stream_id, Instant::now());
        }
    }

    /// Helix answers [`PROCESSING_THUMBNAIL`] for a video whose broadcast is in the live set or
    /// left it less than `period` ago (simulator wall clock, from the `set_streams`/`remove`
    /// that ended it); `None` (the default) always answers the real thumbnail.
    pub fn set_processing_period(&self, period: Option<Duration>) {
        lock(&self.state).processing_period = period;
    }

    /// GQL answers `seekPreviewsURL: null` for every video whose id is divisible by `n`
    /// (deterministic); `None` (the default) never.
    pub fn set_null_seek_previews_every(&self, n: Option<u64>) {
        lock(&self.state).null_seek_previews_every = n.filter(|&n| n > 0);
    }

    /// Replaces one channel's archive videos (any order; answers list them newest first). A
    /// channel set once is known from then on, even with no videos.
    pub fn set_videos(&self, streamer_id: u64, mut videos: Vec<SimVideo>) {
        videos.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.video_id.cmp(&a.video_id)));
        lock(&self.state).videos.insert(streamer_id, videos);
    }

    /// One channel's videos as last set, newest first (`None`: never set).
    pub fn videos(&self, streamer_id: u64) -> Option<Vec<SimVideo>> {
        lock(&self.state).videos.get(&streamer_id).cloned()
    }

    /// Sets the muted stretches of the video with this id (empty: none), as the mute pass
    /// does; false when no channel lists it. The world driver replaces a channel's list
    /// whenever it changes, so with a world running, its own mute pass is what counts.
    pub fn set_video_muted(&self, video_id: u64, stretches: Vec<MutedStretch>) -> bool {
        let mut st = lock(&self.state);
        let Some(video) = st.videos.values_mut().flatten().find(|v| v.video_id == video_id) else {
            return false;
        };
        video.muted = stretches;
        true
    }

    /// Whether both protocols answer as if the muted-segments fields were unavailable (GQL
    /// `muteInfo: null`, Helix items without `muted_segments`), so a client must not read
    /// "not muted" from them. Default: false (the fields are answered).
    pub fn set_mute_info_withheld(&self, withheld: bool) {
        lock(&self.state).mute_info_withheld = withheld;
    }

    pub fn set_fault(&self, fault: ListingFault) {
        lock(&self.state).fault = fault;
    }

    /// Listing requests received (GQL and Helix, streams and videos, answered or not); token
    /// requests are counted apart.
    pub fn requests(&self) -> usize {
        lock(&self.state).requests
    }

    /// The part of [`SimListing::requests`] that asked for videos (GQL queries naming
    /// `videos(`, Helix `/helix/videos`).
    pub fn video_requests(&self) -> usize {
        lock(&self.state).video_requests
    }

    /// The part of [`SimListing::requests`] that confirmed channels by id (GQL queries naming
    /// `users(`, Helix `/helix/streams` with `user_id`).
    pub fn confirm_requests(&self) -> usize {
        lock(&self.state).confirm_requests
    }

    pub fn token_requests(&self) -> usize {
        lock(&self.state).token_requests
    }

    /// The Helix budget per minute (default 800); takes effect in the current window.
    pub fn set_helix_points(&self, per_minute: u32) {
        lock(&self.state).points_per_minute = per_minute;
    }

    /// Every token issued so far is invalid from now on (Helix answers 401).
    pub fn expire_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// The lifetime of tokens issued from now on (and the `expires_in` they report).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state).token_lifetime = lifetime;
    }

    /// The only client id accepted by Helix and the token endpoint; GQL accepts it and the
    /// [`PUBLIC_CLIENT_IDS`].
    pub fn set_client_id(&self, client_id: &str) {
        lock(&self.state).client_id = client_id.to_string();
    }

    /// Whether the last page of Helix `/streams` carries a cursor back to page 1, as Twitch's
    /// often does (default: true; false ends the listing with an empty pagination).
    pub fn set_looping_last_cursor(&self, looping: bool) {
        lock(&self.state).looping_last_cursor = looping;
    }

    /// Every `n`th Helix request with a cursor (`after`) answers 400 "invalid cursor"
    /// (default: `None`, never; the count runs from the start of the simulator).
    pub fn set_invalid_cursor_every(&self, n: Option<usize>) {
        lock(&self.state).invalid_cursor_every = n;
    }

    /// Whether the token endpoint refuses (400) a client secret passed only in the URL's query
    /// string (default: true; false accepts it from either place).
    pub fn set_reject_query_secrets(&self, reject: bool) {
        lock(&self.state).reject_query_secrets = reject;
    }

    /// GQL client ids whose cursor pages (a non-null `$cursor`) are refused with Twitch's
    /// integrity challenge; their first page is answered. Default: [`WEB_CLIENT_ID`] only.
    pub fn set_refused_client_ids(&self, ids: Vec<String>) {
        lock(&self.state).refused_client_ids = ids;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Route {
    Gql,
    Helix,
    HelixVideos,
    HelixUsers,
    Token,
}

fn handle(state: &Mutex<State>, req: &Request) -> Reply {
    let mut st = lock(state);
    let route = match req.path() {
        "/gql" => Route::Gql,
        "/helix/streams" => Route::Helix,
        "/helix/videos" => Route::HelixVideos,
        "/helix/users" => Route::HelixUsers,
        "/oauth2/token" => Route::Token,
        _ => return twitch_error(404, "no such endpoint").into(),
    };
    if route == Route::Token {
        st.token_requests += 1;
    } else {
        st.requests += 1;
        if route == Route::HelixVideos || (route == Route::Gql && gql_asks_videos(&req.body)) {
            st.video_requests += 1;
        }
    }
    let confirm = asks_confirmation(route, req);
    if confirm {
        st.confirm_requests += 1;
    }
    match st.fault.clone() {
        ListingFault::None => {}
        ListingFault::RefuseCursorPages => {
            if let Some(refusal) = refuse_cursor_page(route, req) {
                return refusal.into();
            }
        }
        ListingFault::Unavailable => {
            return Response::new(503, "text/plain", "upstream connect error\n").into();
        }
        ListingFault::Garbage => {
            let body = "<!DOCTYPE html><html><body>Something went wrong</body></html>";
            return Response::new(200, "text/html", body).into();
        }
        ListingFault::Blackhole => return Reply::Hold,
        ListingFault::RateLimited { retry_after_secs } => {
            return twitch_error(429, "Too Many Requests")
                .header("Retry-After", retry_after_secs.to_string())
                .into();
        }
    }
    let expected = match route {
        Route::Helix | Route::HelixVideos | Route::HelixUsers => "GET",
        Route::Gql | Route::Token => "POST",
    };
    if req.method != expected {
        return twitch_error(405, "method not allowed")
            .header("Allow", expected)
            .into();
    }
    match route {
        Route::Gql if confirm => gql_users(&st, req),
        Route::Gql if gql_asks_logins(&req.body) => gql_logins(&st, req),
        Route::HelixUsers => helix(&mut st, req, helix_users),
        Route::Helix if confirm => helix(&mut st, req, helix_streams_of_users),
        Route::Gql => gql(&st, req),
        Route::Helix => helix(&mut st, req, helix_streams),
        Route::HelixVideos => helix(&mut st, req, helix_videos),
        Route::Token => token(&mut st, req),
    }
    .into()
}

/// Twitch's error body: `{"error": reason, "status": n, "message": ...}`.
fn twitch_error(status: u16, message: &str) -> Response {
    let body = json!({"error": crate::http::reason(status), "status": status, "message": message});
    Response::new(status, "application/json", body.to_string())
}

fn json_ok(body: &Value) -> Response {
    Response::new(200, "application/json", body.to_string())
}

/// The live set in listing order: viewers descending, ties by stream id.
fn ordered(st: &State) -> Vec<&LiveStream> {
    let mut order: Vec<&LiveStream> = st.streams.values().collect();
    order.sort_by(|a, b| b.viewers.cmp(&a.viewers).then(a.stream_id.cmp(&b.stream_id)));
    order
}

/// A confirmation by id: a GQL `users(` query, or Helix streams asked by `user_id`.
fn asks_confirmation(route: Route, req: &Request) -> bool {
    match route {
        Route::Gql => {
            serde_json::from_slice::<Value>(&req.body).is_ok_and(|b| gql_query(&b).contains("users("))
                && !gql_asks_logins(&req.body)
        }
        Route::Helix => query_pairs(req.query().unwrap_or(""))
            .iter()
            .any(|(k, _)| k == "user_id"),
        Route::HelixVideos | Route::HelixUsers | Route::Token => false,
    }
}

/// [`ListingFault::RefuseCursorPages`]: the refusal of a streams page that names a cursor.
fn refuse_cursor_page(route: Route, req: &Request) -> Option<Response> {
    match route {
        Route::Gql => {
            let body = serde_json::from_slice::<Value>(&req.body).ok()?;
            let cursor = body.get("variables")?.get("cursor")?;
            (gql_query(&body).contains("streams(") && !cursor.is_null())
                .then(|| gql_errors("failed integrity check"))
        }
        Route::Helix => query_pairs(req.query().unwrap_or(""))
            .iter()
            .any(|(k, _)| k == "after")
            .then(|| twitch_error(400, "The parameter \"after\" was refused")),
        Route::HelixVideos | Route::HelixUsers | Route::Token => None,
    }
}

/// The channel's stream in the live set (the newest start if several).
fn live_stream_of(st: &State, streamer_id: u64) -> Option<&LiveStream> {
    st.streams
        .values()
        .filter(|s| s.streamer_id == streamer_id)
        .max_by_key(|s| (s.started_at, s.stream_id))
}
/// The channel with this login now (without case), if any.
fn user_by_login<'a>(st: &'a State, login: &str) -> Option<(u64, &'a str)> {
    st.users
        .iter()
        .find(|(_, known)| known.eq_ignore_ascii_case(login))
        .map(|(id, known)| (*id, known.as_str()))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc3339(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

const CURSOR_PREFIX: &str = "sim-offset:";

/// Hex of `sim-offset:N`: opaque to clients, like Twitch's base64 cursors.
fn encode_cursor(offset: usize) -> String {
    format!("{CURSOR_PREFIX}{offset}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    if cursor.len() % 2 != 0 || !cursor.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok())
        .collect();
    String::from_utf8(bytes?)
        .ok()?
        .strip_prefix(CURSOR_PREFIX)?
        .parse()
        .ok()
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded; undecodable pairs are dropped.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(key)?, percent_decode(value)?))
        })
        .collect()
}

fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        out.push(match byte {
            b'%' => {
                u8::from_str_radix(std::str::from_utf8(&[bytes.next()?, bytes.next()?]).ok()?, 16).ok()?
            }
            b'+' => b' ',
            other => other,
        });
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    mod mute;

    /// A plain HTTP client (ureq), so the simulator is tested without the client it serves.
    struct Client {
        agent: ureq::Agent,
    }

    fn client(timeout_ms: u64) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            .build();
        Client { agent: config.into() }
    }

    #[derive(Clone, Copy)]
    enum Method {
        Get,
        Post,
    }

    /// One answer: status, headers (names lowercased), the whole body, `Retry-After` if numeric.
    #[derive(Debug)]
    struct Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        retry_after: Option<Duration>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        }
    }

    impl Client {
        fn send(
            &self,
            method: Method,
            url: &str,
            headers: &[(&str, String)],
            body: Option<&[u8]>,
        ) -> Result<Answer, ureq::Error> {
            fn with<B>(
                request: ureq::RequestBuilder<B>,
                headers: &[(&str, String)],
            ) -> ureq::RequestBuilder<B> {
                headers.iter().fold(request, |request, (name, value)| {
                    request.header(*name, value.as_str())
                })
            }
            let mut response = match (method, body) {
                (Method::Get, _) => with(self.agent.get(url), headers).call()?,
                (Method::Post, Some(bytes)) => with(self.agent.post(url), headers).send(bytes)?,
                (Method::Post, None) => with(self.agent.post(url), headers).send_empty()?,
            };
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
                })
                .collect();
            let retry_after = headers
                .iter()
                .find(|(name, _)| name == "retry-after")
                .and_then(|(_, value)| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.body_mut().read_to_vec()?;
            Ok(Answer {
                status: response.status().as_u16(),
                headers,
                body,
                retry_after,
            })
        }
    }

    /// 95 sample streams; 5 and 6 share a viewer count to exercise the tie rule.
    fn sim() -> SimListing {
        let sim = SimListing::start().expect("start");
        let mut streams: Vec<LiveStream> = (0..95).map(LiveStream::sample).collect();
        streams[6].viewers = streams[5].viewers;
        sim.set_streams(streams);
        sim
    }

    fn json(answer: &Answer) -> Value {
        serde_json::from_slice(&answer.body).expect("json body")
    }

    fn post_gql(sim: &SimListing, headers: &[(&str, String)], body: &Value) -> Answer {
        let body = body.to_string();
        let answer = client(2000).send(Method::Post, &sim.gql_url(), headers, Some(body.as_bytes()));
        answer.expect("answer")
    }

    fn gql_page(sim: &SimListing, first: u64, cursor: Option<&str>) -> Value {
        let body = json!({"query": "query { streams(first: $first) { edges { cursor } } }",
                          "variables": {"first": first, "cursor": cursor}});
        let answer = post_gql(sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &body);
        assert_eq!(answer.status, 200);
        json(&answer)
    }

    fn new_token(sim: &SimListing, client_id: &str, secret: &str) -> Answer {
        let form = format!("client_id={client_id}&client_secret={secret}&grant_type=client_credentials");
        client(2000)
            .send(Method::Post, &sim.token_url(), &[], Some(form.as_bytes()))
            .expect("answer")
    }

    #[test]
    fn token_secrets_only_in_the_query_string_are_refused_by_default() {
        let sim = sim();
        let url = format!(
            "{}?client_id={SIM_CLIENT_ID}&client_secret=s3cret&grant_type=client_credentials",
            sim.token_url()
        );
        let post = || client(2000).send(Method::Post, &url, &[], None).expect("answer");
        assert_eq!(post().status, 400);
        sim.set_reject_query_secrets(false);
        assert_eq!(post().status, 200);
    }

    fn helix_get(sim: &SimListing, token: &str, query: &str) -> Answer {
        helix_get_path(sim, token, "streams", query)
    }

    fn helix_get_path(sim: &SimListing, token: &str, path: &str, query: &str) -> Answer {
        let headers = [
            ("Client-Id", SIM_CLIENT_ID.to_string()),
            ("Authorization", format!("Bearer {token}")),
        ];
        let url = format!("{}{path}?{query}", sim.helix_url());
        client(2000)
            .send(Method::Get, &url, &headers, None)
            .expect("answer")
    }

    fn good_token(sim: &SimListing) -> String {
        let answer = new_token(sim, SIM_CLIENT_ID, "s3cret");
        assert_eq!(answer.status, 200);
        json(&answer)["access_token"].as_str().expect("token").to_string()
    }

    fn assert_once_each(mut ids: Vec<String>) {
        assert_eq!(ids.len(), 95);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 95);
    }

    #[test]
    fn gql_pages_every_stream_once_in_viewer_order() {
        let sim = sim();
        let mut seen: Vec<(u64, String)> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            // Asks for 50: the listing caps pages at 30.
            let page = gql_page(&sim, 50, cursor.as_deref());
            let streams = &page["data"]["streams"];
            let edges = streams["edges"].as_array().expect("edges");
            assert!(edges.len() <= 30);
            for node in edges.iter().map(|edge| &edge["node"]) {
                let id = node["id"].as_str().expect("id").to_string();
                seen.push((node["viewersCount"].as_u64().expect("viewers"), id));
            }
            if streams["pageInfo"]["hasNextPage"] != true {
                break;
            }
            cursor = edges
                .last()
                .and_then(|e| e["cursor"].as_str())
                .map(str::to_string);
        }
        assert_eq!(sim.requests(), 4);
        assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "viewers descending");
        // The tie is broken by stream id.
        let tie: Vec<&str> = seen
            .iter()
            .filter(|(v, _)| *v == 8333)
            .map(|(_, id)| id.as_str())
            .collect();
        assert_eq!(tie, ["315000000005", "315000000006"]);
        assert_once_each(seen.into_iter().map(|(_, id)| id).collect());
    }

    #[test]
    fn gql_checks_client_id_and_variables() {
        let sim = sim();
        let body =
            json!({"query": "query { streams(first: 1) { edges { cursor } } }", "variables": {"first": 1}});
        let missing = post_gql(&sim, &[], &body);
        assert_eq!(missing.status, 400);
        assert!(
            json(&missing)["message"]
                .as_str()
                .is_some_and(|m| m.contains("missing"))
        );
        let wrong = post_gql(&sim, &[("Client-Id", "nope".to_string())], &body);
        assert_eq!((wrong.status, json(&wrong)["status"].as_u64()), (400, Some(400)));
        let bad_cursor = gql_page(&sim, 5, Some("not-a-cursor"));
        assert_eq!(bad_cursor["errors"][0]["message"], "invalid cursor");
        assert_eq!(bad_cursor["data"]["streams"], Value::Null);
        // A stream without a game answers `game: null`; languages in GQL's enum form.
        let page = gql_page(&sim, 1, None);
        let node = &page["data"]["streams"]["edges"][0]["node"];
        assert_eq!(node["game"], Value::Null);
        assert_eq!(node["broadcaster"]["broadcastSettings"]["language"], "EN");
        assert_eq!(node["createdAt"], "2025-06-15T15:06:40Z");
    }

    #[test]
    fn gql_refuses_cursor_pages_of_refused_client_ids() {
        let sim = sim();
        let page = |client_id: &str, cursor: Option<&str>| {
            let body = json!({"query": "query { streams(first: $first, after: $cursor) { edges { cursor } } }",
                              "variables": {"first": 30, "cursor": cursor}});
            let answer = post_gql(&sim, &[("Client-Id", client_id.to_string())], &body);
            assert_eq!(answer.status, 200);
            json(&answer)
        };
        let cursor = encode_cursor(30);
        // The web client id: page 1 answered, cursor pages refused in Twitch's shape.
        assert_eq!(
            page(WEB_CLIENT_ID, None)["data"]["streams"]["edges"]
                .as_array()
                .map(Vec::len),
            Some(30)
        );
        let refused = page(WEB_CLIENT_ID, Some(&cursor));
        assert_eq!(refused["data"]["streams"], Value::Null);
        assert_eq!(refused["errors"][0]["message"], "failed integrity check");
        assert_eq!(refused["errors"][0]["path"], json!(["streams"]));
        assert_eq!(refused["extensions"]["challenge"]["type"], "integrity");
        // Another public id pages on; the refused set is switchable.
        assert!(page(PUBLIC_CLIENT_IDS[1], Some(&cursor))["data"]["streams"]["edges"].is_array());
        assert!(page(SIM_CLIENT_ID, Some(&cursor))["data"]["streams"]["edges"].is_array());
        sim.set_refused_client_ids(vec![SIM_CLIENT_ID.to_string()]);
        assert!(page(WEB_CLIENT_ID, Some(&cursor))["data"]["streams"]["edges"].is_array());
        assert_eq!(
            page(SIM_CLIENT_ID, Some(&cursor))["errors"][0]["message"],
            "failed integrity check"
        );
        // A persisted query (hash, no text) is not found.
        let persisted = json!({"operationName": "GetStreams", "variables": {"first": 30},
                               "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}});
        let answer = post_gql(&sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &persisted);
        assert_eq!(json(&answer)["errors"][0]["message"], "PersistedQueryNotFound");
    }

    #[test]
    fn helix_last_cursor_loops_and_cursors_can_be_invalid() {
        let sim = sim();
        let token = good_token(&sim);
        let whole = json(&helix_get(&sim, &token, "first=100"));
        let back = whole["pagination"]["cursor"]
            .as_str()
            .expect("a looping cursor")
            .to_string();
        let again = json(&helix_get(&sim, &token, &format!("first=100&after={back}")));
        assert_eq!(
            again["data"][0], whole["data"][0],
            "the cursor leads back to page 1"
        );
        sim.set_invalid_cursor_every(Some(2));
        assert_eq!(
            helix_get(&sim, &token, &format!("first=10&after={back}")).status,
            400
        );
        let answered = helix_get(&sim, &token, &format!("first=10&after={back}"));
        assert_eq!(answered.status, 200);
        let refused = helix_get(&sim, &token, &format!("first=10&after={back}"));
        assert_eq!(
            (refused.status, json(&refused)["message"].as_str()),
            (400, Some("invalid cursor"))
        );
        assert_eq!(
            helix_get(&sim, &token, "first=10").status,
            200,
            "page 1 has no cursor"
        );
    }

    #[test]
    fn helix_pages_every_stream_once() {
        let sim = sim();
        // The last page ends the listing here (the looping cursor is tested apart).
        sim.set_looping_last_cursor(false);
        let token = good_token(&sim);
        let whole = json(&helix_get(&sim, &token, "first=100"));
        assert_eq!(whole["data"].as_array().map(Vec::len), Some(95));
        assert_eq!(whole["pagination"], json!({}));
        let mut ids = Vec::new();
        let mut query = "first=40".to_string();
        loop {
            let page = json(&helix_get(&sim, &token, &query));
            let items = page["data"].as_array().expect("data");
            ids.extend(
                items
                    .iter()
                    .map(|item| item["id"].as_str().expect("id").to_string()),
            );
            match page["pagination"]["cursor"].as_str() {
                Some(cursor) => query = format!("first=40&after={cursor}"),
                None => break,
            }
        }
        assert_eq!(sim.requests(), 4);
        assert_once_each(ids);
        assert_eq!(helix_get(&sim, &token, "first=101").status, 400);
        assert_eq!(helix_get(&sim, &token, "after=zz").status, 400);
    }

    #[test]
    fn pages_shift_when_counts_change() {
        let sim = sim();
        let first = gql_page(&sim, 30, None);
        let cursor = first["data"]["streams"]["edges"][29]["cursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        // The top stream drops below the page boundary: the next page starts one position
        // later in the new order, so stream 30 (the 31st of the old order) is never shown.
        sim.upsert(LiveStream {
            viewers: 1,
            ..LiveStream::sample(0)
        });
        let next = gql_page(&sim, 30, Some(&cursor));
        assert_eq!(next["data"]["streams"]["edges"][0]["node"]["id"], "315000000031");
        sim.remove(315_000_000_000);
        sim.set_streams(Vec::new());
        let empty = gql_page(&sim, 30, None);
        assert_eq!(empty["data"]["streams"]["edges"], json!([]));
        assert_eq!(empty["data"]["streams"]["pageInfo"]["hasNextPage"], false);
    }

    #[test]
    fn token_flow_and_expiry() {
        let sim = sim();
        assert_eq!(new_token(&sim, "someone-else", "s3cret").status, 400);
        assert_eq!(new_token(&sim, SIM_CLIENT_ID, "").status, 403);
        let body = json(&new_token(&sim, SIM_CLIENT_ID, "s3cret"));
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], DEFAULT_TOKEN_LIFETIME.as_secs());
        let token = body["access_token"].as_str().expect("token").to_string();
        assert_eq!(sim.token_requests(), 3);

        assert_eq!(helix_get(&sim, "forged", "first=1").status, 401);
        assert_eq!(helix_get(&sim, &token, "first=1").status, 200);
        sim.expire_tokens();
        let refused = helix_get(&sim, &token, "first=1");
        assert_eq!(
            (refused.status, json(&refused)["message"].as_str()),
            (401, Some("Invalid OAuth token"))
        );
        let fresh = good_token(&sim);
        assert_ne!(fresh, token);
        assert_eq!(helix_get(&sim, &fresh, "first=1").status, 200);
        sim.set_token_lifetime(Duration::ZERO);
        let stillborn = good_token(&sim);
        assert_eq!(helix_get(&sim, &stillborn, "first=1").status, 401);
    }

    #[test]
    fn helix_rate_limit_headers_and_429() {
        let sim = sim();
        sim.set_helix_points(3);
        let token = good_token(&sim);
        let now = unix_now();
        for remaining in ["2", "1", "0"] {
            let answer = helix_get(&sim, &token, "first=1");
            assert_eq!(
                (answer.status, answer.header("Ratelimit-Limit")),
                (200, Some("3"))
            );
            assert_eq!(answer.header("ratelimit-remaining"), Some(remaining));
        }
        let refused = helix_get(&sim, &token, "first=1");
        assert_eq!(
            (refused.status, refused.header("Ratelimit-Remaining")),
            (429, Some("0"))
        );
        let reset: i64 = refused
            .header("Ratelimit-Reset")
            .and_then(|r| r.parse().ok())
            .expect("reset");
        assert!((now + 59..=now + 61).contains(&reset), "{reset} vs {now}");
        // A bigger budget applies within the same window.
        sim.set_helix_points(5);
        assert_eq!(
            helix_get(&sim, &token, "first=1").header("Ratelimit-Remaining"),
            Some("1")
        );
    }

    #[test]
    fn faults_apply_to_every_endpoint() {
        let sim = sim();
        sim.set_fault(ListingFault::Unavailable);
        assert_eq!(new_token(&sim, SIM_CLIENT_ID, "s").status, 503);
        assert_eq!(helix_get(&sim, "x", "first=1").status, 503);
        sim.set_fault(ListingFault::Garbage);
        let garbage = helix_get(&sim, "x", "first=1");
        assert_eq!(garbage.status, 200);
        assert!(serde_json::from_slice::<Value>(&garbage.body).is_err());
        sim.set_fault(ListingFault::RateLimited { retry_after_secs: 7 });
        let limited = helix_get(&sim, "x", "first=1");
        assert_eq!(
            (limited.status, limited.retry_after),
            (429, Some(Duration::from_secs(7)))
        );
        sim.set_fault(ListingFault::Blackhole);
        let started = Instant::now();
        let held = client(300).send(Method::Get, &format!("{}streams", sim.helix_url()), &[], None);
        assert!(matches!(held, Err(ureq::Error::Timeout(_))), "{held:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!((sim.requests(), sim.token_requests()), (4, 1));
        sim.set_fault(ListingFault::None);
        let edges = &gql_page(&sim, 1, None)["data"]["streams"]["edges"];
        assert_eq!(edges.as_array().map(Vec::len), Some(1));
    }

    fn video(n: u64, public: bool) -> SimVideo {
        SimVideo {
            video_id: 2_000 + n,
            stream_id: 315_000_000_000 + n,
            created_at: 1_750_000_000 + n as i64 * 3600,
            domain_url: "http://127.0.0.1:9/pre/".into(),
            folder: crate::vod_dir(
                "a_b",
                315_000_000_000 + n,
                &(1_750_000_000 + n * 3600).to_string(),
            ),
            public,
            muted: Vec::new(),
        }
    }

    fn gql_videos(sim: &SimListing, id: Value, first: u64) -> Value {
        let body = json!({"query": "query Videos($id: ID!, $first: Int!) { user(id: $id) { videos(first: $first) { edges { node { id } } } } }",
                          "variables": {"id": id, "first": first}});
        let answer = post_gql(sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &body);
        assert_eq!(answer.status, 200);
        json(&answer)
    }

    fn helix_videos_get(sim: &SimListing, token: &str, query: &str) -> Answer {
        let headers = [
            ("Client-Id", SIM_CLIENT_ID.to_string()),
            ("Authorization", format!("Bearer {token}")),
        ];
        let url = format!("{}videos?{query}", sim.helix_url());
        client(2000)
            .send(Method::Get, &url, &headers, None)
            .expect("answer")
    }

    #[test]
    fn gql_serves_videos_newest_first() {
        let sim = sim();
        // Set oldest first: answered newest first.
        let videos: Vec<SimVideo> = (0..4).map(|n| video(n, n != 2)).collect();
        sim.set_videos(77, videos.clone());
        sim.set_videos(78, vec![video(9, true)]);
        assert_eq!(sim.videos(77).map(|v| v[0].video_id), Some(2_003));
        let answer = gql_videos(&sim, json!("77"), 3);
        let user = &answer["data"]["user"];
        let edges = user["videos"]["edges"].as_array().expect("edges");
        let urls: Vec<&str> = edges
            .iter()
            .map(|e| e["node"]["seekPreviewsURL"].as_str().expect("url"))
            .collect();
        let expected: Vec<String> = videos[1..]
            .iter()
            .rev()
            .map(|v| {
                format!(
                    "http://127.0.0.1:9/pre/{}/storyboards/{}-info.json",
                    v.folder, v.video_id
                )
            })
            .collect();
        assert_eq!(urls, expected);
        assert_eq!(edges[0]["node"]["id"], "2003");
        assert_eq!(edges[0]["node"]["createdAt"], rfc3339(videos[3].created_at));
        assert_eq!(user["videos"]["pageInfo"]["hasNextPage"], true);
        // One sub-only video makes the channel's archive sub-only.
        assert_eq!(user["subscriptionProducts"][0]["hasSubonlyVideoArchive"], true);
        let public = gql_videos(&sim, json!(78), 10);
        assert_eq!(
            public["data"]["user"]["subscriptionProducts"][0]["hasSubonlyVideoArchive"],
            false
        );
        assert_eq!(
            public["data"]["user"]["videos"]["edges"].as_array().map(Vec::len),
            Some(1)
        );
        // Unknown and malformed users are null; a channel set empty is known with no videos.
        assert_eq!(
            gql_videos(&sim, json!("12345"), 5),
            json!({"data": {"user": null}})
        );
        assert_eq!(gql_videos(&sim, json!("x"), 5)["data"]["user"], Value::Null);
        sim.set_videos(78, Vec::new());
        let empty = gql_videos(&sim, json!("78"), 5);
        assert_eq!(empty["data"]["user"]["videos"]["edges"], json!([]));
        assert!(gql_videos(&sim, json!("77"), 101)["errors"][0]["message"].is_string());
        assert_eq!((sim.requests(), sim.video_requests()), (6, 6));
        // The streams query is still served beside it, and not counted as a video request.
        gql_page(&sim, 1, None);
        assert_eq!((sim.requests(), sim.video_requests()), (7, 6));
    }

    #[test]
    fn helix_serves_videos_with_pagination() {
        let sim = sim();
        let videos: Vec<SimVideo> = (0..5).map(|n| video(n, n % 2 == 0)).collect();
        sim.set_videos(77, videos.clone());
        let token = good_token(&sim);
        let whole = json(&helix_videos_get(
            &sim,
            &token,
            "user_id=77&type=archive&first=100",
        ));
        let data = whole["data"].as_array().expect("data");
        assert_eq!(data.len(), 5);
        assert_eq!(whole["pagination"], json!({}));
        let newest = &data[0];
        let v = &videos[4];
        assert_eq!(newest["id"], "2004");
        assert_eq!(newest["stream_id"], v.stream_id.to_string());
        assert_eq!(newest["user_id"], "77");
        assert_eq!(newest["user_login"], "a_b");
        assert_eq!(newest["viewable"], "public");
        assert_eq!(data[1]["viewable"], "private");
        assert_eq!(
            newest["thumbnail_url"],
            format!(
                "http://127.0.0.1:9/pre/{}//thumb/thumb0-%{{width}}x%{{height}}.jpg",
                v.folder
            )
        );
        // Pages of two, in the same order.
        let mut ids = Vec::new();
        let mut query = "user_id=77&first=2".to_string();
        loop {
            let page = json(&helix_videos_get(&sim, &token, &query));
            ids.extend(
                page["data"]
                    .as_array()
                    .expect("data")
                    .iter()
                    .map(|i| i["id"].clone()),
            );
            match page["pagination"]["cursor"].as_str() {
                Some(cursor) => query = format!("user_id=77&first=2&after={cursor}"),
                None => break,
            }
        }
        let all: Vec<Value> = data.iter().map(|i| i["id"].clone()).collect();
        assert_eq!(ids, all);
        // Unknown user or other video types: nothing. No user: 400. Auth and budget apply.
        let unknown = json(&helix_videos_get(&sim, &token, "user_id=5"));
        assert_eq!(unknown, json!({"data": [], "pagination": {}}));
        let highlights = json(&helix_videos_get(&sim, &token, "user_id=77&type=highlight"));
        assert_eq!(highlights["data"], json!([]));
        assert_eq!(helix_videos_get(&sim, &token, "first=5").status, 400);
        assert_eq!(helix_videos_get(&sim, &token, "user_id=77&first=0").status, 400);
        let refused = helix_videos_get(&sim, "forged", "user_id=77");
        assert_eq!(refused.status, 401);
        assert_eq!((sim.requests(), sim.video_requests()), (9, 9));
        sim.set_helix_points(1);
        assert_eq!(helix_videos_get(&sim, &token, "user_id=77").status, 429);
        sim.set_fault(ListingFault::Unavailable);
        assert_eq!(helix_videos_get(&sim, &token, "user_id=77").status, 503);
        assert_eq!(sim.video_requests(), 11);
    }

    #[test]
    fn placeholder_thumbnails_while_live_and_processing_and_null_seek_previews() {
        // Nothing live yet (the sample streams share the videos' stream ids).
        let sim = SimListing::start().expect("start");
        let videos: Vec<SimVideo> = (0..3).map(|n| video(n, true)).collect();
        sim.set_videos(77, videos.clone());
        let token = good_token(&sim);
        let thumbnails = |sim: &SimListing| -> Vec<(String, String)> {
            let answer = json(&helix_videos_get(sim, &token, "user_id=77&first=100"));
            let data = answer["data"].as_array().expect("data").clone();
            data.iter()
                .map(|v| {
                    let stream_id = v["stream_id"].as_str().expect("stream_id").to_string();
                    (
                        stream_id,
                        v["thumbnail_url"].as_str().expect("thumbnail").to_string(),
                    )
                })
                .collect()
        };
        let real = |v: &SimVideo| {
            format!(
                "http://127.0.0.1:9/pre/{}//thumb/thumb0-%{{width}}x%{{height}}.jpg",
                v.folder
            )
        };
        let live = |n: u64| LiveStream {
            stream_id: videos[n as usize].stream_id,
            ..LiveStream::sample(n as u32)
        };
        // Off by default: the real thumbnail even while live.
        sim.set_streams(vec![live(2)]);
        assert_eq!(thumbnails(&sim)[0].1, real(&videos[2]));
        // On: live (2) and just ended (1) show the placeholder; never live (0) does not.
        sim.set_processing_period(Some(Duration::from_millis(300)));
        sim.set_streams(vec![live(1)]);
        sim.set_streams(vec![live(2)]);
        let now = thumbnails(&sim);
        assert_eq!(
            now[0],
            (videos[2].stream_id.to_string(), PROCESSING_THUMBNAIL.to_string())
        );
        assert_eq!(
            now[1],
            (videos[1].stream_id.to_string(), PROCESSING_THUMBNAIL.to_string())
        );
        assert_eq!(now[2], (videos[0].stream_id.to_string(), real(&videos[0])));
        // The period passes for the ended one; the removed one starts its own.
        sim.remove(videos[2].stream_id);
        std::thread::sleep(Duration::from_millis(350));
        sim.upsert(live(0));
        sim.remove(videos[0].stream_id);
        let later = thumbnails(&sim);
        assert_eq!(later[0].1, real(&videos[2]));
        assert_eq!(later[1].1, real(&videos[1]));
        assert_eq!(later[2].1, PROCESSING_THUMBNAIL);
        // GQL: the storyboard form, null for video ids divisible by 3 (2001 of 2000..=2002).
        sim.set_null_seek_previews_every(Some(3));
        let answer = gql_videos(&sim, json!("77"), 10);
        let urls: Vec<Value> = answer["data"]["user"]["videos"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["seekPreviewsURL"].clone())
            .collect();
        let info = |v: &SimVideo| {
            json!(format!(
                "http://127.0.0.1:9/pre/{}/storyboards/{}-info.json",
                v.folder, v.video_id
            ))
        };
        assert_eq!(urls, [info(&videos[2]), Value::Null, info(&videos[0])]);
        sim.set_null_seek_previews_every(None);
        let answer = gql_videos(&sim, json!("77"), 10);
        assert_eq!(
            answer["data"]["user"]["videos"]["edges"][1]["node"]["seekPreviewsURL"],
            info(&videos[1])
        );
    }

    #[test]
    fn cursors_and_queries() {
        for offset in [0, 1, 30, 12345] {
            assert_eq!(decode_cursor(&encode_cursor(offset)), Some(offset));
        }
        for junk in ["", "zz", "abc", "é1", "73696d"] {
            assert_eq!(decode_cursor(junk), None, "{junk}");
        }
        let pairs = query_pairs("a=1&b=x%20y+z&&c&d=%zz");
        let expected = [("a", "1"), ("b", "x y z"), ("c", "")].map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn confirmations_by_id_answer_from_the_live_set_and_are_counted_apart() {
        let sim = sim();
        let gql = json!({"query": "query LiveNow($ids: [ID!]) { users(ids: $ids) { id stream { id createdAt } } }",
                         "variables": {"ids": ["9000", "123"]}});
        let answer = json(&post_gql(&sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &gql));
        assert_eq!(answer["data"]["users"][0]["stream"]["id"], "315000000000");
        assert_eq!(answer["data"]["users"][0]["login"], "user_0");
        assert_eq!(answer["data"]["users"][0]["stream"]["viewersCount"], 50_000);
        assert!(answer["data"]["users"][1].is_null(), "an id never seen is null");
        sim.set_user(123, "quiet");
        let answer = json(&post_gql(&sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &gql));
        assert_eq!(answer["data"]["users"][1]["login"], "quiet");
        assert!(answer["data"]["users"][1]["stream"].is_null());
        let token = good_token(&sim);
        let answer = json(&helix_get(&sim, &token, "first=100&user_id=9001&user_id=123"));
        let data = answer["data"].as_array().expect("data");
        assert_eq!(data.len(), 1);
        assert_eq!(data[0]["user_id"], "9001");
        assert_eq!(sim.confirm_requests(), 3);
        assert_eq!(sim.requests(), 3);
        // Logins resolve without case, unknown ones are null (GQL) or left out (Helix), and
        // a rename makes the old login unknown; none of it counts as a confirmation.
        let logins = json!({"query": "query Logins($logins: [String!]) { users(logins: $logins) { id login } }",
                            "variables": {"logins": ["USER_1", "ghost"]}});
        let answer = json(&post_gql(
            &sim,
            &[("Client-Id", SIM_CLIENT_ID.to_string())],
            &logins,
        ));
        assert_eq!(
            answer["data"]["users"],
            json!([{"id": "9001", "login": "user_1"}, null])
        );
        sim.rename(9001, "user_1_b");
        let answer = json(&helix_get_path(
            &sim,
            &token,
            "users",
            "login=user_1&login=user_1_b",
        ));
        assert_eq!(answer["data"].as_array().expect("data").len(), 1);
        assert_eq!(answer["data"][0]["id"], "9001");
        assert_eq!(sim.confirm_requests(), 3);
        let too_many: String = (0..101).map(|n| format!("&user_id={n}")).collect();
        assert_eq!(
            helix_get(&sim, &token, &format!("first=100{too_many}")).status,
            400
        );
        sim.set_fault(ListingFault::Unavailable);
        let answer = post_gql(&sim, &[("Client-Id", SIM_CLIENT_ID.to_string())], &gql);
        assert_eq!(
            answer.status, 503,
            "a listing that is down fails confirmations too"
        );
        assert_eq!(sim.confirm_requests(), 5);
    }

    #[test]
    fn refused_cursor_pages_leave_first_pages_and_confirmations_alone() {
        let sim = sim();
        sim.set_fault(ListingFault::RefuseCursorPages);
        let first = gql_page(&sim, 30, None);
        let cursor = first["data"]["streams"]["edges"][29]["cursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        let refused = gql_page(&sim, 30, Some(&cursor));
        assert!(refused["data"]["streams"].is_null(), "{refused}");
        assert!(refused["errors"][0]["message"].is_string());
        let token = good_token(&sim);
        assert_eq!(helix_get(&sim, &token, "first=20").status, 200);
        assert_eq!(
            helix_get(&sim, &token, &format!("first=20&after={cursor}")).status,
            400
        );
        assert_eq!(helix_get(&sim, &token, "user_id=9000").status, 200);
    }
}
