//! The simulated Twitch VOD CDN: several "domains" (one loopback listener each, optionally
//! under a path prefix), broadcasts held on some of them, and per-domain faults that can be
//! switched at run time. Paths are computed here from the public rule (sha1 of
//! `{login}_{stream_id}_{ts}`), independently of the prober, so the simulator is an oracle.
//!
//! Object semantics follow what S3 behind CloudFront shows: an object that exists answers 200,
//! anything else (unknown path, deleted copy, missing quality, expired original) answers 403
//! with the S3 `AccessDenied` XML body, never 404. Existing objects honour one `bytes=` range
//! (206 with `Content-Range`, 416 with `bytes */LEN` when it starts past the end; other forms
//! are ignored and the whole object is sent) and HEAD (headers and `Content-Length` only).
//!
//! Lifetimes. On Twitch a playlist and its segments do not live and die together, so each
//! broadcast's objects can be retired separately, by an explicit call or on the simulated
//! clock ([`SimCdn::set_now`]; without it nothing happens by time):
//! - [`SimCdn::expire`] / [`SimCdn::expire_later`] with an [`Expiry`]: some or all segments
//!   ([`Segments`]: all, a range, every Nth) answer 403 while the playlist still answers 200;
//!   or the playlist answers 403 while the segments (`init-0.mp4` included) still answer 200;
//!   or the `-unmuted` originals stop answering.
//! - Muting ([`SimCdn::mute`] / [`SimCdn::mute_at`]): the playlist lists `N-unmuted`, `N-muted`
//!   exists, the plain `N` is gone, and the original `N-unmuted` keeps answering for
//!   [`Broadcast::unmuted_grace_secs`] of simulated time after the pass (a day by default, as
//!   reported), then 403; muted while no clock was set, it answers until [`Expiry::Unmuted`].
//! - Retention ([`Broadcast::retention`]: 7 / 14 / 60 days or any, counted from
//!   `start_unix`): once the clock passes it, playlist and segments answer 403 on every domain.
//! - [`SimCdn::delete_from`] still deletes one domain's copy outright.
//!
//! [`SimCdn::playlist_text`] is unaffected by all of these: it is the text a domain would serve.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::http::{Reply, Request, Response, Server, lock};

pub type BroadcastId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Ts,
    Fmp4,
}

impl Container {
    fn ext(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "mp4",
        }
    }
}

/// How a domain misbehaves. Every request is logged before the fault acts. HEAD requests get
/// headers only, so the streamed faults (trickle, huge body) answer them at once.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Healthy: 200 for objects that exist, 403 (S3 XML `AccessDenied`) for anything else.
    None,
    /// 503 for every request (a CloudFront outage).
    Unavailable,
    /// 403 for every request, even existing objects.
    Forbidden,
    /// Accept and read the request, never answer; held until the client leaves or shutdown.
    Blackhole,
    /// 200 with headers, then one byte of a valid-looking playlist every 200 ms, forever.
    SlowTrickle,
    /// Close without answering. The request head is left unread, so the kernel answers with
    /// a TCP RST: the client sees "connection reset by peer" (on Linux/BSD; elsewhere at
    /// worst an EOF before any response).
    Reset,
    /// 200 with an HTML body for every request.
    Garbage,
    /// 200 with an endless chunked playlist-looking body, written as fast as the client reads.
    HugeBody,
    /// 429 with `Retry-After`.
    TooManyRequests { retry_after_secs: u32 },
    /// 200 with a `Content-Length`, half of a valid-looking playlist, then the connection
    /// closes: an edge dropping the transfer mid-body.
    CutMidBody,
}

/// How long Twitch keeps a past broadcast: 7 days by default, 14 for affiliates, 60 for
/// partners (and Turbo/Prime owners).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    Regular,
    Affiliate,
    Partner,
    Days(u32),
    /// Never deleted by time (a streamer highlight, or a test that sets the clock freely).
    Forever,
}

impl Retention {
    pub fn days(self) -> Option<u32> {
        match self {
            Retention::Regular => Some(7),
            Retention::Affiliate => Some(14),
            Retention::Partner => Some(60),
            Retention::Days(d) => Some(d),
            Retention::Forever => None,
        }
    }
}

/// A set of segment indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segments {
    /// Every segment, and the fMP4 `init-0.mp4`.
    All,
    Range(Range<u32>),
    /// `first`, `first + n`, `first + 2n`, … (`n` 0 means `first` only).
    EveryNth {
        n: u32,
        first: u32,
    },
}

impl Segments {
    pub fn contains(&self, i: u32) -> bool {
        match self {
            Segments::All => true,
            Segments::Range(r) => r.contains(&i),
            Segments::EveryNth { n: 0, first } => i == *first,
            Segments::EveryNth { n, first } => i >= *first && (i - first) % n == 0,
        }
    }
}

/// One object lifetime ending (see the module doc). Applies to every domain holding the copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// These segments answer 403; the playlist still answers 200.
    Segments(Segments),
    /// The playlist answers 403; the segments still answer 200.
    Playlist,
    /// The `-unmuted` originals answer 403 (ends the grace after the mute pass early).
    Unmuted,
}

pub struct DomainSpec {
    /// "" or a path like "cdn/vods/" (a missing trailing '/' is added, a leading '/' removed).
    pub prefix: String,
    pub fault: Fault,
}

impl DomainSpec {
    pub fn healthy() -> Self {
        DomainSpec {
            prefix: String::new(),
            fault: Fault::None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Broadcast {
    pub login: String,
    pub stream_id: u64,
    /// The `{ts}` as it appears in the path: unix seconds or second-of-minute ("29").
    pub path_ts: String,
    pub domains: Vec<usize>,
    /// "chunked" first, then e.g. "720p30".
    pub qualities: Vec<String>,
    pub container: Container,
    pub segments: u32,
    pub segment_seconds: f64,
    /// Decides the last segment's duration (`total - (segments-1) * segment_seconds`).
    pub total_seconds: f64,
    /// Segment index ranges the hourly muting pass mutes (effective after [`SimCdn::mute`]).
    pub muted: Vec<Range<u32>>,
    pub ended: bool,
    /// For `#ID3-EQUIV-TDTG`, and where retention counts from.
    pub start_unix: i64,
    /// Deletion by time once the clock ([`SimCdn::set_now`]) passes `start_unix` + the days.
    pub retention: Retention,
    /// How long after the mute pass the original `N-unmuted` keeps answering, in seconds of
    /// the simulated clock.
    pub unmuted_grace_secs: i64,
}

impl Broadcast {
    /// Chunked only, TS, 30 segments of 10 s, ended, nothing muted; `start_unix` is `path_ts`
    /// when that is a unix time, else 0 (set it before using retention with a clock);
    /// regular 7-day retention; `-unmuted` originals answer for a day after the mute pass.
    pub fn new(login: &str, stream_id: u64, path_ts: &str, domains: Vec<usize>) -> Self {
        Broadcast {
            login: login.to_string(),
            stream_id,
            path_ts: path_ts.to_string(),
            domains,
            qualities: vec!["chunked".to_string()],
            container: Container::Ts,
            segments: 30,
            segment_seconds: 10.0,
            total_seconds: 300.0,
            muted: Vec::new(),
            ended: true,
            start_unix: path_ts.parse::<i64>().ok().filter(|t| *t > 59).unwrap_or(0),
            retention: Retention::Regular,
            unmuted_grace_secs: UNMUTED_GRACE_SECS,
        }
    }

    /// The directory part of the path: `{hash}_{login}_{stream_id}_{ts}`.
    pub fn dir(&self) -> String {
        vod_dir(&self.login, self.stream_id, &self.path_ts)
    }
}

/// `{hash}_{base}` where base = `{login}_{stream_id}_{ts}` (login lowercased) and hash is the
/// first 20 hex chars of sha1(base).
pub fn vod_dir(login: &str, stream_id: u64, path_ts: &str) -> String {
    let base = format!("{}_{}_{}", login.to_lowercase(), stream_id, path_ts);
    let digest = Sha1::digest(base.as_bytes());
    let mut hex = String::with_capacity(40);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    format!("{}_{base}", &hex[..20])
}

/// Body of a segment object covering `[start, start + seconds)` of the broadcast. For TS, real
/// decodable media (silent audio, see `media`) so players can play what the API serves; for
/// fMP4 a placeholder `ftyp` (init) or `styp` box plus a `free` box naming it.
pub fn segment_bytes(container: Container, quality: &str, file: &str, start: f64, seconds: f64) -> Vec<u8> {
    let tag = format!("vodprobe-sim {quality}/{file}");
    match container {
        Container::Ts => crate::media::ts_segment(start, seconds),
        Container::Fmp4 => {
            let kind: &[u8; 4] = if file.starts_with("init") {
                b"ftyp"
            } else {
                b"styp"
            };
            let mut out = Vec::new();
            out.extend_from_slice(&24u32.to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(b"iso6\0\0\0\0iso6mp41");
            let free_len = u32::try_from(8 + tag.len()).unwrap_or(8);
            out.extend_from_slice(&free_len.to_be_bytes());
            out.extend_from_slice(b"free");
            out.extend_from_slice(&tag.as_bytes()[..free_len as usize - 8]);
            out
        }
    }
}

struct Domain {
    prefix: String,
    fault: Fault,
    log: Vec<LoggedRequest>,
    /// When each request of `log` arrived, for checks of the client's request rate.
    arrivals: Vec<Instant>,
}

/// One request as a domain received it, for tests that care how a client asked (HEAD or GET,
/// which bytes), not only what it asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query as sent, starting with '/'.
    pub target: String,
    /// The `Range` header's value, if any.
    pub range: Option<String>,
    /// The CDN's clock when it arrived ([`SimCdn::set_now`]; `None` before it is set), so a
    /// benchmark can tell a request made while live from one after the end or the hour.
    pub at: Option<i64>,
}

/// A day: VodRecovery's maintainer (#50) reports the unmuted original fetchable about that long.
pub const UNMUTED_GRACE_SECS: i64 = 86_400;

struct Held {
    b: Broadcast,
    dir: String,
    mute_applied: bool,
    /// Clock time of the mute pass; None when it ran before any clock was set.
    muted_at: Option<i64>,
    deleted: HashSet<usize>,
    /// Expiries in force, explicit (`None`) or due at a clock time.
    expiries: Vec<(Option<i64>, Expiry)>,
}

impl Held {
    fn is_muted(&self, n: u32) -> bool {
        self.mute_applied && self.b.muted.iter().any(|r| r.contains(&n))
    }

    fn retention_end(&self) -> Option<i64> {
        let days = self.b.retention.days()?;
        Some(self.b.start_unix.saturating_add(i64::from(days) * 86_400))
    }

    /// Everything gone by retention at `now`.
    fn retired(&self, now: Option<i64>) -> bool {
        matches!((now, self.retention_end()), (Some(t), Some(end)) if t >= end)
    }

    fn due(&self, now: Option<i64>) -> impl Iterator<Item = &Expiry> {
        self.expiries
            .iter()
            .filter(move |(at, _)| match (at, now) {
                (None, _) => true,
                (Some(at), Some(t)) => t >= *at,
                (Some(_), None) => false,
            })
            .map(|(_, e)| e)
    }

    fn playlist_gone(&self, now: Option<i64>) -> bool {
        self.due(now).any(|e| *e == Expiry::Playlist)
    }

    /// Segment `n` (None: the init section, which only `Segments::All` takes) expired.
    fn segment_gone(&self, n: Option<u32>, now: Option<i64>) -> bool {
        self.due(now).any(|e| match (e, n) {
            (Expiry::Segments(s), Some(n)) => s.contains(n),
            (Expiry::Segments(s), None) => *s == Segments::All,
            _ => false,
        })
    }

    fn unmuted_gone(&self, now: Option<i64>) -> bool {
        let grace_over = matches!(
            (self.muted_at, now),
            (Some(at), Some(t)) if t >= at.saturating_add(self.b.unmuted_grace_secs)
        );
        grace_over || self.due(now).any(|e| *e == Expiry::Unmuted)
    }

    fn has_quality(&self, q: &str) -> bool {
        self.b.qualities.iter().any(|x| x == q)
    }

    /// Segment `i`'s duration: full length except a shorter last one.
    fn duration(&self, i: u32) -> f64 {
        let b = &self.b;
        let n = b.segments;
        let seg = b.segment_seconds;
        let last = b.total_seconds - f64::from(n.saturating_sub(1)) * seg;
        if i + 1 == n && last > 0.0 && last <= seg {
            last
        } else {
            seg
        }
    }

    fn playlist(&self) -> String {
        let b = &self.b;
        let n = b.segments;
        let seg = b.segment_seconds;
        let duration = |i: u32| self.duration(i);
        let target = (0..n).map(duration).fold(seg, f64::max).ceil().max(1.0);
        let tdtg = chrono::DateTime::from_timestamp(b.start_unix, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default();
        let version = if b.container == Container::Fmp4 { 6 } else { 3 };
        let mut s = String::new();
        let _ = write!(
            s,
            "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n\
             #ID3-EQUIV-TDTG:{tdtg}\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-TWITCH-ELAPSED-SECS:0.000\n#EXT-X-TWITCH-TOTAL-SECS:{:.3}\n",
            b.total_seconds
        );
        if b.container == Container::Fmp4 {
            s.push_str("#EXT-X-MAP:URI=\"init-0.mp4\"\n");
        }
        let ext = b.container.ext();
        for i in 0..n {
            let suffix = if self.is_muted(i) { "-unmuted" } else { "" };
            let _ = write!(s, "#EXTINF:{:.3},\n{i}{suffix}.{ext}\n", duration(i));
        }
        if b.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    /// The body of an existing object `file` (checked by `has_object`).
    fn segment(&self, quality: &str, file: &str) -> Vec<u8> {
        let n: u32 = file
            .split(['.', '-'])
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let start = f64::from(n) * self.b.segment_seconds;
        segment_bytes(self.b.container, quality, file, start, self.duration(n))
    }

    /// Whether `file` (a segment or init name) exists in this broadcast at `now`.
    fn has_object(&self, file: &str, now: Option<i64>) -> bool {
        let Some(stem) = file
            .strip_suffix(self.b.container.ext())
            .and_then(|s| s.strip_suffix('.'))
        else {
            return false;
        };
        if stem == "init-0" {
            return self.b.container == Container::Fmp4 && !self.segment_gone(None, now);
        }
        let (num, kind) = if let Some(n) = stem.strip_suffix("-unmuted") {
            (n, "unmuted")
        } else if let Some(n) = stem.strip_suffix("-muted") {
            (n, "muted")
        } else {
            (stem, "")
        };
        // Only the canonical spelling exists ("7.ts", not "07.ts" or "+7.ts").
        let Some(n) = num.parse::<u32>().ok().filter(|n| n.to_string() == num) else {
            return false;
        };
        if n >= self.b.segments || self.segment_gone(Some(n), now) {
            return false;
        }
        match kind {
            // Muting renames the original to "-unmuted" (kept for a grace period) and adds a
            // silent "-muted" copy; the plain name is gone.
            "" => !self.is_muted(n),
            "muted" => self.is_muted(n),
            _ => self.is_muted(n) && !self.unmuted_gone(now),
        }
    }
}

struct State {
    /// The simulated clock (unix seconds); None until [`SimCdn::set_now`].
    now: Option<i64>,
    domains: Vec<Domain>,
    broadcasts: Vec<Held>,
    by_dir: HashMap<String, BroadcastId>,
}

pub struct SimCdn {
    state: Arc<Mutex<State>>,
    servers: Vec<Server>,
    bases: Vec<String>,
}

impl SimCdn {
    /// Each domain gets its own listener on 127.0.0.1:0.
    pub fn start(domains: Vec<DomainSpec>) -> std::io::Result<SimCdn> {
        let domains: Vec<Domain> = domains
            .into_iter()
            .map(|d| {
                let mut prefix = d.prefix.trim_start_matches('/').to_string();
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    prefix.push('/');
                }
                Domain {
                    prefix,
                    fault: d.fault,
                    log: Vec::new(),
                    arrivals: Vec::new(),
                }
            })
            .collect();
        let prefixes: Vec<String> = domains.iter().map(|d| d.prefix.clone()).collect();
        let state = Arc::new(Mutex::new(State {
            now: None,
            domains,
            broadcasts: Vec::new(),
            by_dir: HashMap::new(),
        }));
        let mut cdn = SimCdn {
            state,
            servers: Vec::new(),
            bases: Vec::new(),
        };
        for (i, prefix) in prefixes.into_iter().enumerate() {
            let st = Arc::clone(&cdn.state);
            // On error, `cdn` drops here and shuts down the servers already started.
            let server = Server::bind("127.0.0.1:0", move |req: &Request| handle(&st, i, req))?;
            cdn.bases.push(format!("http://{}/{prefix}", server.local_addr()));
            cdn.servers.push(server);
        }
        Ok(cdn)
    }

    pub fn domain_count(&self) -> usize {
        self.bases.len()
    }

    /// "http://127.0.0.1:PORT/{prefix}", always ending with '/'; "" for an unknown domain.
    pub fn base_url(&self, domain: usize) -> String {
        self.bases.get(domain).cloned().unwrap_or_default()
    }

    pub fn set_fault(&self, domain: usize, fault: Fault) {
        if let Some(d) = lock(&self.state).domains.get_mut(domain) {
            d.fault = fault;
        }
    }

    pub fn fault(&self, domain: usize) -> Option<Fault> {
        lock(&self.state).domains.get(domain).map(|d| d.fault.clone())
    }

    /// Adding a broadcast with the same path as an earlier one replaces it in lookups.
    pub fn add_broadcast(&self, b: Broadcast) -> BroadcastId {
        let mut st = lock(&self.state);
        let id = st.broadcasts.len();
        let dir = b.dir();
        st.by_dir.insert(dir.clone(), id);
        st.broadcasts.push(Held {
            b,
            dir,
            mute_applied: false,
            muted_at: None,
            deleted: HashSet::new(),
            expiries: Vec::new(),
        });
        id
    }

    /// The copy on `domain` is gone: 403 there afterwards.
    pub fn delete_from(&self, id: BroadcastId, domain: usize) {
        self.with(id, |h| {
            h.deleted.insert(domain);
        });
    }

    /// The hourly muting pass, now on the simulated clock: segments in `muted` are listed as
    /// `N-unmuted`, which keeps answering for the broadcast's `unmuted_grace_secs`; `N-muted`
    /// exists; the plain `N` is gone. A second pass changes nothing.
    pub fn mute(&self, id: BroadcastId) {
        let now = self.now();
        self.with(id, |h| {
            if !h.mute_applied {
                h.mute_applied = true;
                h.muted_at = now;
            }
        });
    }

    /// [`SimCdn::mute`] as if the pass ran at `at_unix`, so a driver stepping the clock in
    /// large jumps still starts the grace at the pass.
    pub fn mute_at(&self, id: BroadcastId, at_unix: i64) {
        self.with(id, |h| {
            if !h.mute_applied {
                h.mute_applied = true;
                h.muted_at = Some(at_unix);
            }
        });
    }

    /// Applies `what` now, on every domain holding the copy.
    pub fn expire(&self, id: BroadcastId, what: Expiry) {
        self.with(id, |h| h.expiries.push((None, what)));
    }

    /// Applies `what` once the simulated clock reaches `at_unix`.
    pub fn expire_later(&self, id: BroadcastId, at_unix: i64, what: Expiry) {
        self.with(id, |h| h.expiries.push((Some(at_unix), what)));
    }

    /// Shorthand for `expire(id, Expiry::Segments(which))`.
    pub fn expire_segments(&self, id: BroadcastId, which: Segments) {
        self.expire(id, Expiry::Segments(which));
    }

    /// Shorthand for `expire(id, Expiry::Playlist)`: 403 for the playlist, segments stay.
    pub fn delete_playlist(&self, id: BroadcastId) {
        self.expire(id, Expiry::Playlist);
    }

    /// Shorthand for `expire(id, Expiry::Unmuted)`.
    pub fn expire_unmuted(&self, id: BroadcastId) {
        self.expire(id, Expiry::Unmuted);
    }

    /// Sets the simulated clock (unix seconds); time-driven expiries, the unmuted grace and
    /// retention are judged against it at each request. It may go backwards (tests do).
    pub fn set_now(&self, now_unix: i64) {
        lock(&self.state).now = Some(now_unix);
    }

    pub fn now(&self) -> Option<i64> {
        lock(&self.state).now
    }

    /// When retention deletes the broadcast (`start_unix` + its days); None for an unknown id
    /// or [`Retention::Forever`].
    pub fn retention_end(&self, id: BroadcastId) -> Option<i64> {
        lock(&self.state).broadcasts.get(id).and_then(Held::retention_end)
    }

    /// Whether `id`'s playlist answers on `domain` now (a convenience for drivers and tests;
    /// the same rules as a request, faults aside).
    pub fn playlist_exists(&self, id: BroadcastId, domain: usize) -> bool {
        let st = lock(&self.state);
        st.broadcasts.get(id).is_some_and(|h| {
            h.b.domains.contains(&domain)
                && !h.deleted.contains(&domain)
                && !h.retired(st.now)
                && !h.playlist_gone(st.now)
        })
    }

    /// The EVENT playlist gets `#EXT-X-ENDLIST`.
    pub fn end(&self, id: BroadcastId) {
        self.with(id, |h| h.b.ended = true);
    }

    /// Appends `segments` full-length segments (total seconds grow accordingly).
    pub fn grow(&self, id: BroadcastId, segments: u32) {
        self.with(id, |h| {
            h.b.segments = h.b.segments.saturating_add(segments);
            h.b.total_seconds += f64::from(segments) * h.b.segment_seconds;
        });
    }

    /// Full request targets (path and query, starting with '/') in arrival order.
    pub fn requests(&self, domain: usize) -> Vec<String> {
        lock(&self.state)
            .domains
            .get(domain)
            .map(|d| d.log.iter().map(|r| r.target.clone()).collect())
            .unwrap_or_default()
    }

    /// Like [`SimCdn::requests`], with each request's method and `Range` header.
    pub fn request_log(&self, domain: usize) -> Vec<LoggedRequest> {
        lock(&self.state)
            .domains
            .get(domain)
            .map(|d| d.log.clone())
            .unwrap_or_default()
    }

    pub fn request_count(&self, domain: usize) -> usize {
        lock(&self.state).domains.get(domain).map_or(0, |d| d.log.len())
    }

    pub fn total_requests(&self) -> usize {
        lock(&self.state).domains.iter().map(|d| d.log.len()).sum()
    }

    pub fn clear_requests(&self) {
        for d in &mut lock(&self.state).domains {
            d.log.clear();
            d.arrivals.clear();
        }
    }

    /// When each request of [`SimCdn::requests`] arrived on `domain`, in the same order.
    pub fn arrivals(&self, domain: usize) -> Vec<Instant> {
        lock(&self.state)
            .domains
            .get(domain)
            .map(|d| d.arrivals.clone())
            .unwrap_or_default()
    }

    /// "{hash}_{login}_{id}_{ts}/{quality}/index-dvr.m3u8" (no prefix, no leading '/');
    /// "" for an unknown id.
    pub fn playlist_path(&self, id: BroadcastId, quality: &str) -> String {
        lock(&self.state)
            .broadcasts
            .get(id)
            .map(|h| format!("{}/{quality}/index-dvr.m3u8", h.dir))
            .unwrap_or_default()
    }

    /// Exactly what a domain holding the broadcast serves now; None for an unknown id/quality.
    pub fn playlist_text(&self, id: BroadcastId, quality: &str) -> Option<String> {
        let st = lock(&self.state);
        st.broadcasts
            .get(id)
            .filter(|h| h.has_quality(quality))
            .map(Held::playlist)
    }

    fn with(&self, id: BroadcastId, f: impl FnOnce(&mut Held)) {
        if let Some(h) = lock(&self.state).broadcasts.get_mut(id) {
            f(h);
        }
    }
}

impl Drop for SimCdn {
    fn drop(&mut self) {
        // Signal every server first so their connections close in parallel, then join.
        for s in &self.servers {
            s.stop();
        }
        for s in &mut self.servers {
            s.shutdown();
        }
    }
}

mod answer;
use answer::handle;

#[cfg(test)]
mod tests;
