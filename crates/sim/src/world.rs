//! A deterministic simulated Twitch *world* that evolves over simulated time and drives
//! [`SimListing`] (who is live, with how many viewers) and [`SimCdn`] (the VOD copies).
//!
//! Shape. A [`WorldSpec`] describes a population of channels; [`World::new`] draws each
//! channel's stable traits (login, streamer id, popularity, language, whether it stores VODs
//! and, if so, the one CDN domain of one region its copies sit on) from a per-channel
//! splitmix64 stream seeded by `(seed, channel index)`. Each channel then alternates offline
//! gaps and *sessions*; a session is one broadcast, or two *parts* when it restarts (the
//! second part gets a new `started_at`, keeps the stream id and its copy uses the
//! second-of-minute path form). Everything random about a session is drawn from the
//! channel's stream when the session is planned, in a fixed order, and later state is a pure
//! function of the current time (viewer curves, playlist growth, end, quick delete, hourly
//! mute, outages). So the history depends on the seed alone, never on how the caller steps
//! the clock: one big jump and many small steps give the same truth, the same live set and
//! the same CDN contents (only the CDN's internal `BroadcastId`s differ).
//!
//! [`World::advance`] moves to `now`: starts due parts (truth entry, CDN copy as a growing
//! EVENT playlist), updates the live parts (viewers, growth), ends, deletes and mutes the
//! finished ones, switches outage faults on and off, and pushes the live set to the listing
//! once. Parts whose lifecycle is over are dropped from the working set, so per-call work is
//! proportional to the channels and the live parts; only the truth list grows (one small
//! record per broadcast). At world creation about `length / (length + gap)` of the channels
//! are already live (started up to 12 h earlier); parts that ended before `start_unix` are
//! never created.
//!
//! Archive videos. A stored broadcast gets a video object when it starts (Twitch creates the
//! archive at stream start) with probability `video_share`; it is public unless its channel's
//! archives are sub-only (`subonly_share` of the channels). The video disappears with a quick
//! delete, and [`VIDEO_KEEP_SECS`] after its start. Both draws are hashes of the seed and the
//! broadcast (or channel), not draws from the channel's stream, so they do not perturb the
//! rest of the history. `advance` pushes the video list of each channel whose list changed
//! (every channel on the first call, so all the world's users are known to the listing).
//!
//! Viewer counts follow a rise / plateau / decline curve per part, updated once a minute, with
//! a small downward jitter outside the plateau. The plateau (at least 10 minutes, or the rest
//! of a short part) shows exactly the part's `peak_viewers`, so a crawler that sees the part
//! during its plateau sees the truth's peak; a long ramp lets a stream cross a record
//! threshold late. Peaks are heavy-tailed (Pareto, tail index 0.6): most streams are small.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;

use crate::cdn::{Broadcast, BroadcastId, Container, Fault, SimCdn, vod_dir};
use crate::listing::{LiveStream, SimListing, SimVideo};

/// The timestamp forms, indexed like [`WorldSpec::form_weights`].
pub const FORMS: [&str; 3] = ["unix", "unix-1", "second-of-minute"];
const SECOND_OF_MINUTE: usize = 2;

const SEGMENT_SECS: i64 = 10;
const STREAM_ID_BASE: u64 = 40_000_000_000;
const STREAMER_ID_BASE: u64 = 20_000_000;
const STREAMER_ID_STRIDE: u64 = 7919;
/// Pareto tail index of channel popularity (smaller: heavier tail).
const VIEWER_TAIL: f64 = 0.6;
const MIN_PART_SECS: i64 = 180;
const MAX_SESSION_SECS: i64 = 12 * 3600;
const MIN_GAP_SECS: i64 = 300;
const MIN_PLATEAU_SECS: i64 = 600;
const LENGTH_SIGMA: f64 = 0.8;
const MUTED_SHARE: f64 = 0.25;
const FMP4_SHARE: f64 = 0.1;
/// How long archive videos stay listed (Twitch's default for affiliates: 7 days).
pub const VIDEO_KEEP_SECS: i64 = 7 * 86_400;
const VIDEO_ID_BASE: u64 = 1_900_000_000;
/// Salts of the hashed draws (video object per broadcast, sub-only per channel).
const VIDEO_SALT: u64 = 0x7669_6465_6f73;
const SUBONLY_SALT: u64 = 0x0073_7562_6f6e_6c79;

#[derive(Clone, Debug)]
pub struct WorldSpec {
    pub seed: u64,
    pub channels: usize,
    /// World time at creation (unix seconds).
    pub start_unix: i64,
    /// CDN domains available (indices `0..domains` of the [`SimCdn`]).
    pub domains: usize,
    /// Domain groups; each storing channel's copies sit on one domain of one region (uniform
    /// region, then domains weighted 1, 1/2, 1/3, ... in listed order). Empty: one region of
    /// all domains. Indices `>= domains` are ignored.
    pub regions: Vec<Vec<usize>>,
    /// Share of channels that store no VODs (no CDN copy at all).
    pub share_without_vods: f64,
    /// Weights of the `{ts}` forms unix / unix-1 / second-of-minute (see [`FORMS`]).
    pub form_weights: [f64; 3],
    /// Share of sessions that restart once mid-stream.
    pub restart_share: f64,
    /// Share of broadcasts deleted from the CDN 2–10 minutes after their end.
    pub quick_delete_share: f64,
    pub mean_gap_minutes: f64,
    /// Mean session length; lengths are log-normal, 3 minutes to 12 hours.
    pub mean_length_minutes: f64,
    /// Min / max peak viewers.
    pub viewers: (u32, u32),
    pub outages: Vec<Outage>,
    /// Share of stored broadcasts whose archive video object exists (public or sub-only); the
    /// rest were deleted by the streamer or sit in channels whose archives are hidden.
    pub video_share: f64,
    /// Share of channels whose archive videos are sub-only.
    pub subonly_share: f64,
}

/// Domains answering with `fault` during `[start_unix, start_unix + duration_secs)`; the
/// world sets the fault when the outage starts and `Fault::None` when it ends (only on
/// transitions, so faults set by hand on other domains or at other times stay).
#[derive(Clone, Debug)]
pub struct Outage {
    pub start_unix: i64,
    pub duration_secs: i64,
    pub domains: Vec<usize>,
    pub fault: Fault,
}

impl Outage {
    pub fn active_at(&self, now: i64) -> bool {
        now >= self.start_unix && now < self.start_unix.saturating_add(self.duration_secs)
    }
}

impl WorldSpec {
    /// 200 channels, shorter gaps and broadcasts so an accelerated demo shows activity, and a
    /// 15-minute outage (503) of a quarter of the domains 90 minutes in.
    pub fn demo(start_unix: i64, domains: usize) -> WorldSpec {
        let outage_domains: Vec<usize> = (0..domains).rev().take(domains / 4).collect();
        WorldSpec {
            seed: 0x5eed_de30,
            channels: 200,
            start_unix,
            domains,
            regions: default_regions(domains),
            share_without_vods: 0.5,
            form_weights: [0.90, 0.09, 0.01],
            restart_share: 0.03,
            quick_delete_share: 0.05,
            mean_gap_minutes: 240.0,
            mean_length_minutes: 120.0,
            viewers: (1, 50_000),
            outages: outage(start_unix + 90 * 60, 15 * 60, outage_domains, Fault::Unavailable),
            video_share: 0.7,
            subonly_share: 0.2,
        }
    }

    /// A compressed day: `channels` channels (about 2000), ten hours offline and three hours
    /// live on average, and one 20-minute outage of the last three quarters of the domains
    /// (9 of 12: the CloudFront hosts) seven hours in, whose connections hang
    /// ([`Fault::Blackhole`]) as Twitch's CloudFront failures look to a client.
    pub fn benchmark_day(start_unix: i64, domains: usize, channels: usize) -> WorldSpec {
        let outage_domains: Vec<usize> = (domains / 4..domains).collect();
        WorldSpec {
            seed: 0xbe7c_da11,
            channels,
            start_unix,
            domains,
            regions: default_regions(domains),
            share_without_vods: 0.5,
            form_weights: [0.90, 0.09, 0.01],
            restart_share: 0.02,
            quick_delete_share: 0.03,
            mean_gap_minutes: 600.0,
            mean_length_minutes: 180.0,
            viewers: (1, 100_000),
            outages: outage(start_unix + 7 * 3600, 20 * 60, outage_domains, Fault::Blackhole),
            video_share: 0.7,
            subonly_share: 0.2,
        }
    }
}

fn outage(start_unix: i64, duration_secs: i64, domains: Vec<usize>, fault: Fault) -> Vec<Outage> {
    if domains.is_empty() {
        return Vec::new();
    }
    vec![Outage {
        start_unix,
        duration_secs,
        domains,
        fault,
    }]
}

/// Three regions: the first quarter of the domains (Twitch's own hosts), then the rest split
/// in two; fewer than three domains make one region.
fn default_regions(domains: usize) -> Vec<Vec<usize>> {
    if domains < 3 {
        return vec![(0..domains).collect()];
    }
    let first = (domains / 4).max(1);
    let middle = first + (domains - first).div_ceil(2);
    vec![
        (0..first).collect(),
        (first..middle).collect(),
        (middle..domains).collect(),
    ]
}

/// Ground truth about one broadcast (one part of a restarted session counts as one).
#[derive(Clone, Debug, PartialEq)]
pub struct TruthBroadcast {
    pub login: String,
    pub streamer_id: u64,
    pub stream_id: u64,
    /// The start time the listing reports (the key the appliance uses).
    pub listed_start: i64,
    /// The `{ts}` of the copy's path; None when the channel stores no VODs.
    pub path_ts: Option<String>,
    /// "unix", "unix-1" or "second-of-minute" (the form the copy uses or would use).
    pub form: &'static str,
    pub domain: Option<usize>,
    pub peak_viewers: u32,
    pub ended_at: Option<i64>,
    /// Quick deletes: when the copy was deleted from its domain.
    pub deleted_at: Option<i64>,
    /// This broadcast is the second part of a restart.
    pub restarted: bool,
    /// An archive video object was created at the start (stored broadcasts only); it is
    /// listed until `deleted_at`, if any, and at most [`VIDEO_KEEP_SECS`] after the start.
    pub has_video: bool,
    /// That video is publicly listed (false without a video, or in a sub-only channel).
    pub public: bool,
}

impl TruthBroadcast {
    /// `{hash}_{login}_{stream_id}_{ts}/{quality}/index-dvr.m3u8` (no domain), if stored.
    pub fn playlist_path(&self, quality: &str) -> Option<String> {
        let ts = self.path_ts.as_deref()?;
        Some(format!(
            "{}/{quality}/index-dvr.m3u8",
            vod_dir(&self.login, self.stream_id, ts)
        ))
    }
}

/// splitmix64: tiny, fast, deterministic on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        unit(self.next_u64())
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..hi`; `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Index drawn in proportion to `weights` (negative weights count as 0).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().map(|w| w.max(0.0)).sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            let w = w.max(0.0);
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// The splitmix64 finalizer: a good 64-bit hash.
fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

const WORDS: [&str; 48] = [
    "pixel", "shadow", "lunar", "frost", "nova", "zen", "blaze", "echo", "mango", "rogue", "tiny", "cosmic",
    "ninja", "otter", "sage", "viper", "wolf", "panda", "retro", "turbo", "chess", "kappa", "salty", "cozy",
    "drift", "ember", "fable", "gamer", "hyper", "ivy", "jade", "karma", "lofi", "mocha", "nyx", "orbit",
    "quake", "raven", "storm", "tempo", "umbra", "vex", "waffle", "yeti", "zero", "bard", "crit", "dusk",
];
const LANGUAGES: [&str; 9] = ["en", "es", "pt", "de", "fr", "ja", "ko", "ru", "it"];
const LANGUAGE_WEIGHTS: [f64; 9] = [0.50, 0.10, 0.08, 0.07, 0.06, 0.06, 0.05, 0.05, 0.03];
const GAMES: [(&str, &str); 10] = [
    ("509658", "Just Chatting"),
    ("21779", "League of Legends"),
    ("32982", "Grand Theft Auto V"),
    ("516575", "VALORANT"),
    ("33214", "Fortnite"),
    ("27471", "Minecraft"),
    ("32399", "Counter-Strike"),
    ("743", "Chess"),
    ("509660", "Art"),
    ("", ""),
];
/// Quality folders per broadcast (space-separated), "chunked" first.
const TS_QUALITIES: [&str; 4] = [
    "chunked 720p60 720p30 480p30 360p30 160p30 audio_only",
    "chunked 720p30 480p30 360p30 160p30 audio_only",
    "chunked 1080p60 720p60 480p30 360p30 160p30 audio_only",
    "chunked audio_only",
];
const FMP4_QUALITIES: &str = "chunked 1440p60 1080p60 720p60 480p30 360p30 160p30 audio_only";

/// One broadcast as planned: everything random about it, drawn when its session is planned.
#[derive(Clone, Debug)]
struct Part {
    stream_id: u64,
    listed_start: i64,
    end: i64,
    form: usize,
    restarted: bool,
    peak: u32,
    /// Viewer curve, in seconds from `listed_start`: ramp up to `ramp_end`, plateau until
    /// `plateau_end`, then decline to `end_share` of the peak.
    ramp_end: i64,
    plateau_end: i64,
    end_share: f64,
    delete_after: Option<i64>,
    muted: Vec<Range<u32>>,
    container: Container,
    qualities: &'static str,
    title: String,
    game: usize,
}

impl Part {
    fn len(&self) -> i64 {
        self.end - self.listed_start
    }

    fn final_segments(&self) -> u32 {
        segments_for(self.len())
    }

    /// Segments listed at `t`: one per started 10 s while live, all of them once ended.
    fn segments_at(&self, t: i64) -> u32 {
        let n = self.final_segments();
        if t >= self.end {
            return n;
        }
        segments_for(t - self.listed_start).clamp(1, n)
    }

    /// Seconds the final playlist lacks from full segments (its last segment is shorter).
    fn short_by(&self) -> i64 {
        i64::from(self.final_segments()) * SEGMENT_SECS - self.len()
    }

    fn path_ts(&self) -> String {
        match self.form {
            0 => self.listed_start.to_string(),
            1 => (self.listed_start - 1).to_string(),
            _ => self.listed_start.rem_euclid(60).to_string(),
        }
    }

    fn true_start(&self) -> i64 {
        if self.form == 1 {
            self.listed_start - 1
        } else {
            self.listed_start
        }
    }

    /// Viewers the listing shows at `t` (updated once a minute); never above `peak`.
    fn viewers(&self, t: i64) -> u32 {
        let e = (t - self.listed_start).clamp(0, self.len()) / 60 * 60;
        let shape = if e < self.ramp_end {
            0.15 + 0.85 * e as f64 / self.ramp_end as f64
        } else if e < self.plateau_end {
            return self.peak;
        } else {
            let span = (self.len() - self.plateau_end).max(1) as f64;
            1.0 - (1.0 - self.end_share) * (e - self.plateau_end) as f64 / span
        };
        let noise = mix(self.stream_id ^ mix(e as u64) ^ u64::from(self.restarted));
        let jitter = 1.0 - 0.08 * unit(noise);
        let v = (f64::from(self.peak) * shape * jitter).round();
        (v as u32).min(self.peak)
    }
}

struct Channel {
    login: String,
    streamer_id: u64,
    domain: Option<usize>,
    popularity: f64,
    language: &'static str,
    mature: bool,
    rng: Rng,
    /// Planned parts not started yet, in start order.
    upcoming: VecDeque<Part>,
    /// Start of the next session once `upcoming` is empty (planned lazily).
    next_start: i64,
    sessions: u32,
    /// Archives are sub-only.
    subonly: bool,
    /// Listed archive videos, oldest first.
    videos: VecDeque<Video>,
    /// `videos` changed since the listing last got them.
    videos_dirty: bool,
}

/// One listed archive video (the channel's domain and sub-only flag complete it).
#[derive(Clone, Debug, PartialEq)]
struct Video {
    video_id: u64,
    stream_id: u64,
    created_at: i64,
    folder: String,
}

struct Copy {
    id: BroadcastId,
    segments: u32,
}

/// A started part whose lifecycle is not over yet.
struct Active {
    channel: usize,
    truth: usize,
    part: Part,
    copy: Option<Copy>,
    ended: bool,
    deleted: bool,
    muted: bool,
}

impl Active {
    fn mute_at(&self) -> i64 {
        (self.part.end.div_euclid(3600) + 1) * 3600
    }

    fn done(&self, has_domain: bool) -> bool {
        self.ended
            && (!has_domain
                || (self.deleted || self.part.delete_after.is_none())
                    && (self.muted || self.deleted || self.part.muted.is_empty()))
    }
}

pub struct World {
    spec: WorldSpec,
    channels: Vec<Channel>,
    active: Vec<Active>,
    truth: Vec<TruthBroadcast>,
    live: Vec<LiveStream>,
    /// Domains touched by outages and the fault the world last set there.
    faults: Vec<(usize, Fault)>,
    now: i64,
    /// Stream ids grow with start time from here.
    id_epoch: i64,
}

impl World {
    pub fn new(spec: WorldSpec) -> World {
        let regions: Vec<Vec<usize>> = if spec.regions.is_empty() {
            default_regions(spec.domains)
        } else {
            spec.regions.clone()
        };
        let regions: Vec<Vec<usize>> = regions
            .into_iter()
            .map(|r| r.into_iter().filter(|&d| d < spec.domains).collect::<Vec<_>>())
            .filter(|r| !r.is_empty())
            .collect();
        let id_epoch = spec.start_unix - 2 * 86_400;
        let mut logins = HashSet::new();
        let mut channels = Vec::with_capacity(spec.channels);
        for idx in 0..spec.channels {
            let mut rng = Rng(mix(spec.seed) ^ mix(idx as u64 + 1));
            let login = make_login(&mut rng, idx, &mut logins);
            let streamer_id = STREAMER_ID_BASE
                + idx as u64 * STREAMER_ID_STRIDE
                + rng.below(STREAMER_ID_STRIDE as usize) as u64;
            let stores = !rng.chance(spec.share_without_vods);
            let region = regions.get(rng.below(regions.len()));
            let domain = region.filter(|_| stores).map(|r| {
                let weights: Vec<f64> = (0..r.len()).map(|k| 1.0 / (k + 1) as f64).collect();
                r[rng.weighted(&weights)]
            });
            let (lo, hi) = (f64::from(spec.viewers.0.max(1)), f64::from(spec.viewers.1.max(1)));
            // Truncated Pareto on [lo, hi] by inversion.
            let floor = (lo / hi).powf(VIEWER_TAIL);
            let u = rng.uniform(floor, 1.0).max(f64::MIN_POSITIVE);
            let popularity = lo / u.powf(1.0 / VIEWER_TAIL);
            let language = LANGUAGES[rng.weighted(&LANGUAGE_WEIGHTS)];
            let mature = rng.chance(0.15);
            let mut ch = Channel {
                login,
                streamer_id,
                domain,
                popularity,
                language,
                mature,
                rng,
                upcoming: VecDeque::new(),
                next_start: spec.start_unix,
                sessions: 0,
                subonly: hashed_chance(spec.seed ^ SUBONLY_SALT, streamer_id, spec.subonly_share),
                videos: VecDeque::new(),
                videos_dirty: true,
            };
            let mean_len = spec.mean_length_minutes.max(1.0);
            let p_live = mean_len / (mean_len + spec.mean_gap_minutes.max(1.0));
            if ch.rng.chance(p_live) {
                let len = draw_length(&mut ch.rng, &spec);
                let start = spec.start_unix - (len as f64 * ch.rng.unit()) as i64;
                plan_session(&mut ch, idx, &spec, id_epoch, start, len);
            } else {
                ch.next_start = spec.start_unix + draw_gap(&mut ch.rng, &spec);
            }
            channels.push(ch);
        }
        let mut faults: Vec<(usize, Fault)> = Vec::new();
        for d in spec.outages.iter().flat_map(|o| o.domains.iter()) {
            if !faults.iter().any(|(x, _)| x == d) {
                faults.push((*d, Fault::None));
            }
        }
        World {
            now: spec.start_unix,
            spec,
            channels,
            active: Vec::new(),
            truth: Vec::new(),
            live: Vec::new(),
            faults,
            id_epoch,
        }
    }

    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    /// The time of the last [`World::advance`] (`start_unix` before the first).
    pub fn now(&self) -> i64 {
        self.now
    }

    /// The live set last pushed to the listing, ordered by stream id.
    pub fn live_streams(&self) -> &[LiveStream] {
        &self.live
    }

    /// Advance to `now` (a `now` earlier than the last one is treated as the last one) and
    /// bring the listing and the CDN to the world's state at `now`.
    pub fn advance(&mut self, now: i64, listing: &SimListing, cdn: &SimCdn) {
        let now = now.max(self.now);
        self.now = now;
        self.start_due(now);
        let World {
            channels,
            active,
            truth,
            live,
            ..
        } = self;
        live.clear();
        for a in active.iter_mut() {
            let ch = &channels[a.channel];
            let deleted = step_part(a, ch, &mut truth[a.truth], now, cdn);
            if !a.ended {
                live.push(live_stream(ch, &a.part, now));
            }
            if deleted && truth[a.truth].has_video {
                let ch = &mut channels[a.channel];
                let id = video_id(&a.part);
                ch.videos.retain(|v| v.video_id != id);
                ch.videos_dirty = true;
            }
        }
        active.retain(|a| !a.done(channels[a.channel].domain.is_some()));
        live.sort_by_key(|s| s.stream_id);
        self.apply_outages(now, cdn);
        listing.set_streams(self.live.clone());
        self.push_videos(now, listing, cdn);
    }

    /// Expires old videos and gives the listing every channel's list that changed.
    fn push_videos(&mut self, now: i64, listing: &SimListing, cdn: &SimCdn) {
        for ch in &mut self.channels {
            while ch
                .videos
                .front()
                .is_some_and(|v| v.created_at + VIDEO_KEEP_SECS <= now)
            {
                ch.videos.pop_front();
                ch.videos_dirty = true;
            }
            if !ch.videos_dirty {
                continue;
            }
            ch.videos_dirty = false;
            let domain_url = ch.domain.map(|d| cdn.base_url(d)).unwrap_or_default();
            let videos = ch
                .videos
                .iter()
                .map(|v| SimVideo {
                    video_id: v.video_id,
                    stream_id: v.stream_id,
                    created_at: v.created_at,
                    domain_url: domain_url.clone(),
                    folder: v.folder.clone(),
                    public: !ch.subonly,
                })
                .collect();
            listing.set_videos(ch.streamer_id, videos);
        }
    }

    /// Ground truth for scoring: every broadcast started so far, ordered by listed start
    /// (then stream id), with its state at the last advance.
    pub fn broadcasts(&self) -> Vec<TruthBroadcast> {
        let mut all = self.truth.clone();
        all.sort_by_key(|t| (t.listed_start, t.stream_id));
        all
    }

    /// Starts every part due by `now`, planning sessions as channels come to them.
    fn start_due(&mut self, now: i64) {
        for (idx, ch) in self.channels.iter_mut().enumerate() {
            loop {
                if ch.upcoming.is_empty() {
                    if ch.next_start > now {
                        break;
                    }
                    let len = draw_length(&mut ch.rng, &self.spec);
                    let start = ch.next_start;
                    plan_session(ch, idx, &self.spec, self.id_epoch, start, len);
                }
                if ch.upcoming.front().is_none_or(|p| p.listed_start > now) {
                    break;
                }
                let Some(part) = ch.upcoming.pop_front() else {
                    break;
                };
                let has_video = ch.domain.is_some()
                    && hashed_chance(
                        self.spec.seed ^ VIDEO_SALT,
                        part.stream_id.wrapping_mul(2) + u64::from(part.restarted),
                        self.spec.video_share,
                    );
                if has_video {
                    ch.videos.push_back(Video {
                        video_id: video_id(&part),
                        stream_id: part.stream_id,
                        created_at: part.listed_start,
                        folder: vod_dir(&ch.login, part.stream_id, &part.path_ts()),
                    });
                    ch.videos_dirty = true;
                }
                self.truth.push(TruthBroadcast {
                    login: ch.login.clone(),
                    streamer_id: ch.streamer_id,
                    stream_id: part.stream_id,
                    listed_start: part.listed_start,
                    path_ts: ch.domain.map(|_| part.path_ts()),
                    form: FORMS[part.form],
                    domain: ch.domain,
                    peak_viewers: part.peak,
                    ended_at: None,
                    deleted_at: None,
                    restarted: part.restarted,
                    has_video,
                    public: has_video && !ch.subonly,
                });
                self.active.push(Active {
                    channel: idx,
                    truth: self.truth.len() - 1,
                    part,
                    copy: None,
                    ended: false,
                    deleted: false,
                    muted: false,
                });
            }
        }
    }

    fn apply_outages(&mut self, now: i64, cdn: &SimCdn) {
        for (domain, applied) in &mut self.faults {
            let want = self
                .spec
                .outages
                .iter()
                .rfind(|o| o.active_at(now) && o.domains.contains(domain))
                .map_or(Fault::None, |o| o.fault.clone());
            if *applied != want {
                cdn.set_fault(*domain, want.clone());
                *applied = want;
            }
        }
    }
}

/// Brings one started part and its copy to the state at `now`; true when this call deleted
/// the copy (a quick delete).
fn step_part(a: &mut Active, ch: &Channel, truth: &mut TruthBroadcast, now: i64, cdn: &SimCdn) -> bool {
    let p = &a.part;
    if let (None, Some(domain)) = (&a.copy, ch.domain) {
        let segments = p.segments_at(now);
        let mut b = Broadcast::new(&ch.login, p.stream_id, &p.path_ts(), vec![domain]);
        b.qualities = p.qualities.split(' ').map(str::to_string).collect();
        b.container = p.container;
        b.segments = segments;
        b.segment_seconds = SEGMENT_SECS as f64;
        b.total_seconds = (i64::from(segments) * SEGMENT_SECS - p.short_by()) as f64;
        b.muted = p.muted.clone();
        b.ended = false;
        b.start_unix = p.true_start();
        a.copy = Some(Copy {
            id: cdn.add_broadcast(b),
            segments,
        });
    }
    if let Some(copy) = &mut a.copy {
        let target = p.segments_at(now);
        if target > copy.segments {
            cdn.grow(copy.id, target - copy.segments);
            copy.segments = target;
        }
    }
    if !a.ended && now >= p.end {
        a.ended = true;
        truth.ended_at = Some(p.end);
        if let Some(copy) = &a.copy {
            cdn.end(copy.id);
        }
    }
    if !a.ended {
        return false;
    }
    let Some(copy) = &a.copy else {
        return false;
    };
    let mut deleted = false;
    if let Some(after) = p.delete_after
        && !a.deleted
        && now >= p.end + after
    {
        a.deleted = true;
        deleted = true;
        truth.deleted_at = Some(p.end + after);
        if let Some(domain) = ch.domain {
            cdn.delete_from(copy.id, domain);
        }
    }
    if !a.muted && !p.muted.is_empty() && now >= a.mute_at() {
        a.muted = true;
        cdn.mute(copy.id);
    }
    deleted
}

/// Unique per part (the two parts of a restart share a stream id).
fn video_id(p: &Part) -> u64 {
    VIDEO_ID_BASE + p.stream_id.saturating_sub(STREAM_ID_BASE) * 2 + u64::from(p.restarted)
}

/// A deterministic draw with probability `p` from `salt` (seed-derived) and `key`.
fn hashed_chance(salt: u64, key: u64, p: f64) -> bool {
    unit(mix(mix(salt) ^ key)) < p
}

fn live_stream(ch: &Channel, p: &Part, now: i64) -> LiveStream {
    let (game_id, game_name) = GAMES[p.game];
    LiveStream {
        stream_id: p.stream_id,
        streamer_id: ch.streamer_id,
        login: ch.login.clone(),
        title: p.title.clone(),
        game_id: game_id.to_string(),
        game_name: game_name.to_string(),
        language: ch.language.to_string(),
        is_mature: ch.mature,
        viewers: p.viewers(now),
        started_at: p.listed_start,
    }
}

/// Segments needed for `secs` seconds of video (10 s each, the last one possibly shorter).
fn segments_for(secs: i64) -> u32 {
    u32::try_from((secs.max(0) + SEGMENT_SECS - 1) / SEGMENT_SECS).unwrap_or(u32::MAX)
}

/// Lowercase `[a-z0-9_]`, 4–25 characters, unique in the world.
fn make_login(rng: &mut Rng, idx: usize, taken: &mut HashSet<String>) -> String {
    let a = WORDS[rng.below(WORDS.len())];
    let b = WORDS[rng.below(WORDS.len())];
    let sep = if rng.chance(0.3) { "_" } else { "" };
    let digits = if rng.chance(0.4) {
        rng.range(1, 1000).to_string()
    } else {
        String::new()
    };
    let mut login = format!("{a}{sep}{b}{digits}");
    if taken.contains(&login) {
        login = format!("{a}_{b}{idx}");
    }
    taken.insert(login.clone());
    login
}

/// Session length: log-normal with the spec's mean, clamped to 3 minutes – 12 hours.
fn draw_length(rng: &mut Rng, spec: &WorldSpec) -> i64 {
    let mean = (spec.mean_length_minutes * 60.0).max(MIN_PART_SECS as f64);
    let mu = mean.ln() - LENGTH_SIGMA * LENGTH_SIGMA / 2.0;
    let len = (mu + LENGTH_SIGMA * rng.normal()).exp();
    (len as i64).clamp(MIN_PART_SECS, MAX_SESSION_SECS)
}

/// Offline gap: five minutes plus an exponential, with the spec's mean overall.
fn draw_gap(rng: &mut Rng, spec: &WorldSpec) -> i64 {
    let mean = (spec.mean_gap_minutes * 60.0 - MIN_GAP_SECS as f64).max(60.0);
    MIN_GAP_SECS + rng.exponential(mean) as i64
}

/// Plans one session `[start, start + len)` of channel `idx`: one part, or two on a restart.
/// Parts that ended before the world started are dropped. Sets the next session's start.
fn plan_session(ch: &mut Channel, idx: usize, spec: &WorldSpec, id_epoch: i64, start: i64, len: i64) {
    let rng = &mut ch.rng;
    ch.sessions += 1;
    let end = start + len;
    let stream_id =
        STREAM_ID_BASE + u64::try_from(start - id_epoch).unwrap_or(0) * spec.channels as u64 + idx as u64;
    let game = rng.below(GAMES.len());
    let title = match GAMES[game].1 {
        "" => format!("hanging out | day {}", ch.sessions),
        name => format!("{name} | !socials day {}", ch.sessions),
    };
    let restart = len >= 4 * MIN_PART_SECS && rng.chance(spec.restart_share);
    let form = rng.weighted(&spec.form_weights);
    let base = PartBase {
        spec,
        popularity: ch.popularity,
        stream_id,
        title,
        game,
    };
    let parts = if restart {
        let mut gap = rng.range(15, 181);
        let r = (start + (len as f64 * rng.uniform(0.2, 0.8)) as i64)
            .clamp(start + MIN_PART_SECS, end - MIN_PART_SECS - gap - 1);
        // Both parts in second-of-minute form must not share a path.
        if form == SECOND_OF_MINUTE && (r + gap).rem_euclid(60) == start.rem_euclid(60) {
            gap += 1;
        }
        let first = base.draw(rng, start, r, form, false);
        let second = base.draw(rng, r + gap, end, SECOND_OF_MINUTE, true);
        vec![first, second]
    } else {
        vec![base.draw(rng, start, end, form, false)]
    };
    ch.upcoming
        .extend(parts.into_iter().filter(|p| p.end > spec.start_unix));
    ch.next_start = end + draw_gap(rng, spec);
}

/// What the parts of one session share.
struct PartBase<'a> {
    spec: &'a WorldSpec,
    popularity: f64,
    stream_id: u64,
    title: String,
    game: usize,
}

impl PartBase<'_> {
    fn draw(&self, rng: &mut Rng, start: i64, end: i64, form: usize, restarted: bool) -> Part {
        let (lo, hi) = self.spec.viewers;
        let len = end - start;
        let peak = (self.popularity * (0.35 * rng.normal()).exp())
            .round()
            .clamp(f64::from(lo), f64::from(hi.max(lo))) as u32;
        // Whole minutes, so that some once-a-minute sample falls on the plateau.
        let ramp_end = ((len as f64 * rng.uniform(0.05, 0.5)) as i64 + 59) / 60 * 60;
        let plateau_end = (ramp_end + MIN_PLATEAU_SECS.max(len / 10)).min(len);
        let end_share = rng.uniform(0.3, 0.8);
        let delete_after = rng
            .chance(self.spec.quick_delete_share)
            .then(|| rng.range(120, 601));
        let segments = segments_for(len);
        let mut muted = Vec::new();
        if rng.chance(MUTED_SHARE) {
            for _ in 0..rng.range(1, 4) {
                let from = rng.below(segments as usize) as u32;
                let to = (from + rng.range(6, 61) as u32).min(segments);
                muted.push(from..to);
            }
            muted.sort_by_key(|r| r.start);
        }
        let (container, qualities) = if rng.chance(FMP4_SHARE) {
            (Container::Fmp4, FMP4_QUALITIES)
        } else {
            (Container::Ts, TS_QUALITIES[rng.below(TS_QUALITIES.len())])
        };
        Part {
            stream_id: self.stream_id,
            listed_start: start,
            end,
            form,
            restarted,
            peak,
            ramp_end,
            plateau_end,
            end_share,
            delete_after,
            muted,
            container,
            qualities,
            title: self.title.clone(),
            game: self.game,
        }
    }
}

#[cfg(test)]
mod tests;
