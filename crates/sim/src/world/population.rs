//! The seeded population: each channel's stable traits and, one session at a time, its
//! broadcasts as planned ([`Part`]) with everything random about them.
//!
//! Every draw from a channel's stream happens here, in a fixed order, when the channel is
//! created or a session is planned; the driver in `world.rs` only reads the plans and
//! evaluates them at the current time. Keeping the draws apart from the stepping is what keeps
//! the history a function of the seed alone, however the caller steps the clock.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;

use super::rng::{Rng, hashed_chance, mix, unit};
use super::{Channel, WorldSpec};
use crate::cdn::{Container, Retention};

const SECOND_OF_MINUTE: usize = 2;

pub(super) const SEGMENT_SECS: i64 = 10;
pub(super) const STREAM_ID_BASE: u64 = 40_000_000_000;
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
/// Salt of the hashed sub-only draw per channel.
const SUBONLY_SALT: u64 = 0x0073_7562_6f6e_6c79;

const WORDS: [&str; 48] = [
    "pixel", "shadow", "lunar", "frost", "nova", "zen", "blaze", "echo", "mango", "rogue", "tiny", "cosmic",
    "ninja", "otter", "sage", "viper", "wolf", "panda", "retro", "turbo", "chess", "kappa", "salty", "cozy",
    "drift", "ember", "fable", "gamer", "hyper", "ivy", "jade", "karma", "lofi", "mocha", "nyx", "orbit",
    "quake", "raven", "storm", "tempo", "umbra", "vex", "waffle", "yeti", "zero", "bard", "crit", "dusk",
];
const LANGUAGES: [&str; 9] = ["en", "es", "pt", "de", "fr", "ja", "ko", "ru", "it"];
const LANGUAGE_WEIGHTS: [f64; 9] = [0.50, 0.10, 0.08, 0.07, 0.06, 0.06, 0.05, 0.05, 0.03];
pub(super) const GAMES: [(&str, &str); 10] = [
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
pub(super) struct Part {
    pub(super) stream_id: u64,
    pub(super) listed_start: i64,
    pub(super) end: i64,
    pub(super) form: usize,
    pub(super) restarted: bool,
    pub(super) peak: u32,
    /// Viewer curve, in seconds from `listed_start`: ramp up to `ramp_end`, plateau until
    /// `plateau_end`, then decline to `end_share` of the peak.
    pub(super) ramp_end: i64,
    pub(super) plateau_end: i64,
    pub(super) end_share: f64,
    pub(super) delete_after: Option<i64>,
    pub(super) muted: Vec<Range<u32>>,
    pub(super) container: Container,
    pub(super) qualities: &'static str,
    pub(super) title: String,
    pub(super) game: usize,
}

impl Part {
    fn len(&self) -> i64 {
        self.end - self.listed_start
    }

    fn final_segments(&self) -> u32 {
        segments_for(self.len())
    }

    /// Segments listed at `t`: one per started 10 s while live, all of them once ended.
    pub(super) fn segments_at(&self, t: i64) -> u32 {
        let n = self.final_segments();
        if t >= self.end {
            return n;
        }
        segments_for(t - self.listed_start).clamp(1, n)
    }

    /// Seconds the final playlist lacks from full segments (its last segment is shorter).
    pub(super) fn short_by(&self) -> i64 {
        i64::from(self.final_segments()) * SEGMENT_SECS - self.len()
    }

    pub(super) fn path_ts(&self) -> String {
        match self.form {
            0 => self.listed_start.to_string(),
            1 => (self.listed_start - 1).to_string(),
            _ => self.listed_start.rem_euclid(60).to_string(),
        }
    }

    pub(super) fn true_start(&self) -> i64 {
        if self.form == 1 {
            self.listed_start - 1
        } else {
            self.listed_start
        }
    }

    /// Viewers the listing shows at `t` (updated once a minute); never above `peak`.
    pub(super) fn viewers(&self, t: i64) -> u32 {
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

/// Draws channel `idx`'s stable traits from its own stream, and its first session if it is
/// live when the world starts (else when its first session starts).
/// Salt of the hashed retention draw per channel.
const RETENTION_SALT: u64 = 0x7265_7465_6e74;

/// A hash of the seed and the channel, not a draw from its stream, so adding it left every
/// other draw (and so existing histories) unchanged.
fn draw_retention(seed: u64, streamer_id: u64) -> Retention {
    let x = unit(mix(mix(seed ^ RETENTION_SALT) ^ streamer_id));
    let mut acc = 0.0;
    for (kind, share) in super::RETENTION_SHARES {
        acc += share;
        if x < acc {
            return kind;
        }
    }
    Retention::Regular
}

pub(super) fn draw_channel(
    spec: &WorldSpec,
    idx: usize,
    regions: &[Vec<usize>],
    id_epoch: i64,
    logins: &mut HashSet<String>,
) -> Channel {
    let mut rng = Rng::new(mix(spec.seed) ^ mix(idx as u64 + 1));
    let login = make_login(&mut rng, idx, logins);
    let streamer_id =
        STREAMER_ID_BASE + idx as u64 * STREAMER_ID_STRIDE + rng.below(STREAMER_ID_STRIDE as usize) as u64;
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
        retention: draw_retention(spec.seed, streamer_id),
        videos: VecDeque::new(),
        videos_dirty: true,
    };
    let mean_len = spec.mean_length_minutes.max(1.0);
    let p_live = mean_len / (mean_len + spec.mean_gap_minutes.max(1.0));
    if ch.rng.chance(p_live) {
        let len = draw_length(&mut ch.rng, spec);
        let start = spec.start_unix - (len as f64 * ch.rng.unit()) as i64;
        plan_session(&mut ch, idx, spec, id_epoch, start, len);
    } else {
        ch.next_start = spec.start_unix + draw_gap(&mut ch.rng, spec);
    }
    ch
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
pub(super) fn draw_length(rng: &mut Rng, spec: &WorldSpec) -> i64 {
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
pub(super) fn plan_session(
    ch: &mut Channel,
    idx: usize,
    spec: &WorldSpec,
    id_epoch: i64,
    start: i64,
    len: i64,
) {
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
