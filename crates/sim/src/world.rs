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
//! (every channel on the first call, so all the world's users are known to the listing). The
//! mute pass that mutes a copy on the CDN also lists its muted stretches on its video.
//!
//! Viewer counts follow a rise / plateau / decline curve per part, updated once a minute, with
//! a small downward jitter outside the plateau. The plateau (at least 10 minutes, or the rest
//! of a short part) shows exactly the part's `peak_viewers`, so a crawler that sees the part
//! during its plateau sees the truth's peak; a long ramp lets a stream cross a record
//! threshold late. Peaks are heavy-tailed (Pareto, tail index 0.6): most streams are small.
//!
//! Retention. Each channel has a retention kind ([`RETENTION_SHARES`], a hash of the seed and
//! the channel); its copies carry it, and `advance` sets the CDN's clock to `now`, so a copy
//! answers 403 from `retention_end` on (recorded in the truth), and muted originals stop
//! answering a day after the muting pass. Archive video objects still follow
//! [`VIDEO_KEEP_SECS`].
//!
//! Files. This one is the driver: the spec, the truth, and stepping time. Every random draw
//! (channel traits, sessions, the parts' curves) is in `world/population.rs`, the generators
//! in `world/rng.rs`; the driver only evaluates what was drawn at the current time.

mod population;
mod rng;

use std::collections::{HashSet, VecDeque};

use crate::cdn::{Broadcast, BroadcastId, Fault, Retention, SimCdn, vod_dir};
use crate::listing::{LiveStream, MutedStretch, SimListing, SimVideo};
use population::{GAMES, Part, SEGMENT_SECS, STREAM_ID_BASE, draw_channel, draw_length, plan_session};
pub use rng::Rng;
use rng::hashed_chance;

/// The timestamp forms, indexed like [`WorldSpec::form_weights`].
pub const FORMS: [&str; 3] = ["unix", "unix-1", "second-of-minute"];
/// How long archive videos stay listed (Twitch's default for affiliates: 7 days).
pub const VIDEO_KEEP_SECS: i64 = 7 * 86_400;
/// Shares of channels by retention kind. The reference gives no proportions: assumed mostly
/// regular channels, many affiliates, few partners.
pub const RETENTION_SHARES: [(Retention, f64); 3] = [
    (Retention::Regular, 0.55),
    (Retention::Affiliate, 0.40),
    (Retention::Partner, 0.05),
];
const VIDEO_ID_BASE: u64 = 1_900_000_000;
/// Salt of the hashed video-object draw per broadcast.
const VIDEO_SALT: u64 = 0x7669_6465_6f73;

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

    /// A week of Twitch scaled down by `scale` (N): about [`WEEK_RECORDABLE_PER_DAY`] / N
    /// broadcasts a day reaching 10 viewers, 9 % of channels storing nothing (the operator's
    /// figure), forms 90/9/1, restarts, 3 % quick deletes, and two 15–20-minute outages
    /// ([`Fault::Blackhole`]) of the CloudFront hosts (the last three quarters of the
    /// domains) each day at different hours, for [`WEEK_OUTAGE_DAYS`] days. Channels stream
    /// about three hours with gaps of about a day and a half, so a channel comes back about
    /// 4.5 times a week (the "3–6 days a week" of most channels). Retention 7/14/60 days by
    /// channel kind is the world's own ([`RETENTION_SHARES`]).
    pub fn benchmark_week(start_unix: i64, domains: usize, scale: f64) -> WorldSpec {
        let channels =
            (WEEK_RECORDABLE_PER_DAY / scale.max(1.0) / WEEK_RECORDABLE_PER_CHANNEL_DAY).round() as usize;
        WorldSpec {
            seed: WEEK_SEED,
            channels: channels.max(1),
            start_unix,
            domains,
            regions: default_regions(domains),
            share_without_vods: 0.09,
            form_weights: [0.90, 0.09, 0.01],
            restart_share: 0.02,
            quick_delete_share: 0.03,
            mean_gap_minutes: WEEK_GAP_MINUTES,
            mean_length_minutes: WEEK_LENGTH_MINUTES,
            // Down to 3 viewers, so the crawler pages past the record threshold (10) into the
            // observed-only streams (5–9) as it does on Twitch; streams below that are never
            // paged and cost the simulation without changing what is measured.
            viewers: (3, 150_000),
            outages: week_outages(start_unix, domains),
            video_share: 0.7,
            subonly_share: 0.2,
        }
    }
}

/// Broadcasts a day that reach 10 viewers on all of Twitch (the operator's notes).
pub const WEEK_RECORDABLE_PER_DAY: f64 = 168_000.0;
/// Days with two outages each in [`WorldSpec::benchmark_week`]: a week and one more, so the
/// hours a run goes on past the week to let the last broadcasts conclude are like the rest.
pub const WEEK_OUTAGE_DAYS: i64 = 8;
const WEEK_GAP_MINUTES: f64 = 2060.0;
const WEEK_LENGTH_MINUTES: f64 = 180.0;
/// Broadcasts reaching 10 viewers per channel per day in the week's population: sessions a
/// day (1440 / (gap + length)) × 1.02 for restarts × the share of channels popular enough
/// (measured: `benchmark_week_proportions`).
const WEEK_RECORDABLE_PER_CHANNEL_DAY: f64 = 0.334;
const WEEK_SEED: u64 = 0x3ee4_ba7c;
/// Salt of the week's outage draws.
const OUTAGE_SALT: u64 = 0x6f75_7461_6765;

/// Two outages a day of the last three quarters of the domains: one starting between 01:00
/// and 11:00, the other between 13:00 and 23:00, 15–20 minutes each, hours drawn per day.
fn week_outages(start_unix: i64, domains: usize) -> Vec<Outage> {
    let hosts: Vec<usize> = (domains / 4..domains).collect();
    if hosts.is_empty() {
        return Vec::new();
    }
    let mut rng = Rng::new(rng::mix(WEEK_SEED ^ OUTAGE_SALT));
    let mut out = Vec::new();
    for day in 0..WEEK_OUTAGE_DAYS {
        for half in [1, 13] {
            let at = start_unix + day * 86_400 + rng.range(half * 3600, (half + 10) * 3600);
            out.push(Outage {
                start_unix: at,
                duration_secs: rng.range(15 * 60, 20 * 60 + 1),
                domains: hosts.clone(),
                fault: Fault::Blackhole,
            });
        }
    }
    out
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
    /// The channel's retention kind.
    pub retention: Retention,
    /// When retention deletes the copy (playlist and segments) from its domain, if stored.
    pub retention_end: Option<i64>,
    /// When the mute pass muted the copy (the hour after its end), if it did and the copy
    /// was not deleted before.
    pub muted_at: Option<i64>,
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
    retention: Retention,
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
    /// Set by the mute pass.
    muted: Vec<MutedStretch>,
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
        let channels = (0..spec.channels)
            .map(|idx| draw_channel(&spec, idx, &regions, id_epoch, &mut logins))
            .collect();
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

    /// A channel takes a new login, as Twitch lets it: the listing and its user lookups
    /// answer the new one at once (for a broadcast live now too), while folders already on the
    /// CDN and videos already listed keep the login they were created under; broadcasts that
    /// start later carry the new one (folder, video, truth). False for an unknown channel.
    pub fn rename(&mut self, streamer_id: u64, new_login: &str, listing: &SimListing) -> bool {
        let Some(ch) = self.channels.iter_mut().find(|c| c.streamer_id == streamer_id) else {
            return false;
        };
        ch.login = new_login.to_string();
        for live in self.live.iter_mut().filter(|s| s.streamer_id == streamer_id) {
            live.login = new_login.to_string();
        }
        listing.rename(streamer_id, new_login);
        true
    }

    /// Advance to `now` (a `now` earlier than the last one is treated as the last one) and
    /// bring the listing and the CDN to the world's state at `now`.
    pub fn advance(&mut self, now: i64, listing: &SimListing, cdn: &SimCdn) {
        let now = now.max(self.now);
        self.now = now;
        // Before any copy changes, so the CDN judges lifetimes at this time.
        cdn.set_now(now);
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
            let was_muted = a.muted;
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
            if a.muted && !was_muted && truth[a.truth].has_video {
                // Assumed: the video object lists its muted segments from the same pass that
                // mutes the CDN copy (on the hour), never before.
                let ch = &mut channels[a.channel];
                let id = video_id(&a.part);
                if let Some(video) = ch.videos.iter_mut().find(|v| v.video_id == id) {
                    video.muted = muted_stretches(&a.part);
                    ch.videos_dirty = true;
                }
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
                    muted: v.muted.clone(),
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
                        muted: Vec::new(),
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
                    retention: ch.retention,
                    // The same rule the CDN applies to the copy's `start_unix`.
                    retention_end: ch
                        .domain
                        .and(ch.retention.days())
                        .map(|d| part.true_start() + i64::from(d) * 86_400),
                    muted_at: None,
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
        b.retention = ch.retention;
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
        // A copy deleted before the pass has nothing to mute (judged by time, so a big step
        // that deletes and mutes at once agrees with small ones).
        if truth.deleted_at.is_none_or(|deleted| deleted > a.mute_at()) {
            truth.muted_at = Some(a.mute_at());
        }
        // At the pass's own time, so big jumps and small steps start the same grace.
        cdn.mute_at(copy.id, a.mute_at());
    }
    deleted
}

/// A part's muted segment ranges as a video lists them: seconds from the start, segments
/// being [`SEGMENT_SECS`] long.
fn muted_stretches(p: &Part) -> Vec<MutedStretch> {
    let secs = |segments: u32| segments.saturating_mul(SEGMENT_SECS as u32);
    p.muted
        .iter()
        .map(|r| MutedStretch {
            offset: secs(r.start),
            duration: secs(r.end.saturating_sub(r.start)),
        })
        .collect()
}

/// Unique per part (the two parts of a restart share a stream id).
fn video_id(p: &Part) -> u64 {
    VIDEO_ID_BASE + p.stream_id.saturating_sub(STREAM_ID_BASE) * 2 + u64::from(p.restarted)
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

#[cfg(test)]
mod tests;
