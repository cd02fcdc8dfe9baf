//! The generated archive the benchmarks share: 60 days of a 20,000-channel population with
//! titles, games, languages, heavy-tailed viewer counts, and a Twitch-shaped playlist for each
//! found broadcast (10-second segments, lengths from 10 minutes to 12 hours, a fifth with a
//! muted range). Deterministic for a seed.

#![allow(dead_code)]

use std::fmt::Write as _;
use vodprobe::playlist::Container;
use vodprobe::record::{ArchiveInfo, ProbeState, Status, StreamRecord};
use vodprobe_sim::{Rng, vod_dir};

pub const RECORDS: u64 = 1_000_000;
pub const CHANNELS: u64 = 20_000;
pub const DAYS: i64 = 60;
/// 2026-01-01 00:00 UTC: the oldest broadcast.
pub const FIRST_START: i64 = 1_767_225_600;
pub const SEED: u64 = 0x00A1_10AD;

pub const GAMES: &[(&str, &str)] = &[
    ("509658", "Just Chatting"),
    ("21779", "League of Legends"),
    ("32982", "Grand Theft Auto V"),
    ("516575", "VALORANT"),
    ("33214", "Fortnite"),
    ("32399", "Counter-Strike"),
    ("27471", "Minecraft"),
    ("29595", "Dota 2"),
    ("512710", "Call of Duty: Warzone"),
    ("26936", "Music"),
    ("509660", "Art"),
    ("18122", "World of Warcraft"),
    ("491487", "Dead by Daylight"),
    ("511224", "Apex Legends"),
    ("498566", "Slots"),
    ("1469308723", "Software and Game Development"),
];
pub const LANGUAGES: &[(&str, f64)] = &[
    ("en", 0.45),
    ("es", 0.12),
    ("de", 0.08),
    ("pt", 0.07),
    ("ru", 0.06),
    ("fr", 0.06),
    ("ja", 0.05),
    ("ko", 0.04),
    ("it", 0.03),
    ("pl", 0.02),
    ("tr", 0.02),
];
const SYLLABLES: &[&str] = &[
    "xq", "shr", "oud", "ka", "ni", "lu", "tom", "zen", "rio", "mar", "ble", "vex", "ash", "kai", "dra",
    "gon", "pix", "el", "fox", "ter", "sam", "lee", "jo", "nat", "ric", "ola", "qua", "ty",
];

pub fn domain_url(i: usize) -> String {
    const HOSTS: &[&str] = &[
        "d1m7jfoe9zdc1j",
        "d1mhjrowxxagfy",
        "d1ymi26ma8va5x",
        "d2nvs31859zcd8",
        "d2vjef5jvl6bfs",
        "d3vd9lfkzbru3h",
        "dgeft87wbj63p",
        "dqrpb9wgowsf5",
    ];
    match i {
        0 => "https://vod-secure.twitch.tv/".to_string(),
        1 => "https://vod-metro.twitch.tv/".to_string(),
        _ => format!("https://{}.cloudfront.net/", HOSTS[(i - 2) % HOSTS.len()]),
    }
}

pub struct Channel {
    pub streamer_id: u64,
    pub login: String,
    pub language: &'static str,
    pub games: [usize; 2],
    pub popularity: f64,
    pub domain: usize,
}

pub fn channels() -> Vec<Channel> {
    let mut rng = Rng::new(SEED);
    let weights: Vec<f64> = LANGUAGES.iter().map(|(_, w)| *w).collect();
    (0..CHANNELS)
        .map(|i| {
            let mut login = String::new();
            for _ in 0..rng.range(2, 5) {
                login.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
            }
            if rng.chance(0.4) {
                let _ = write!(login, "{}", rng.range(1, 999));
            }
            // Unique logins: a suffix from the index where syllables collide.
            let _ = write!(login, "_{i:x}");
            Channel {
                streamer_id: 10_000_000 + i * 13,
                login,
                language: LANGUAGES[rng.weighted(&weights)].0,
                games: [rng.below(GAMES.len()), rng.below(GAMES.len())],
                // Viewers are heavy-tailed: a log-normal popularity per channel.
                popularity: (3.5 + 1.6 * rng.normal()).exp(),
                domain: rng.below(10),
            }
        })
        .collect()
}

/// What a found broadcast's playlist holds.
pub struct PlaylistSpec {
    pub start: i64,
    pub seconds: f64,
    pub segments: u32,
    pub muted: std::ops::Range<u32>,
}

/// Broadcast `i` in start order (ascending): its record and, when found, its playlist's shape.
pub fn broadcast(i: u64, channels: &[Channel], rng: &mut Rng) -> (StreamRecord, Option<PlaylistSpec>) {
    let span = DAYS * 86_400;
    let start = FIRST_START + (i as i64 * span) / RECORDS as i64 + rng.range(0, 4);
    let channel = &channels[rng.below(channels.len())];
    let seconds = (9.2 + 0.8 * rng.normal()).exp().clamp(600.0, 43_200.0);
    let segments = (seconds / 10.0).ceil() as u32;
    let ended = start + seconds as i64;
    let stream_id = 40_000_000_000 + i * 3;
    let game = GAMES[channel.games[rng.below(2)]];
    let status = match rng.unit() {
        x if x < 0.90 => Status::Found,
        x if x < 0.98 => Status::NotFound,
        _ => Status::Pending,
    };
    let mut title = format!("{} | ", game.1.to_uppercase());
    for _ in 0..rng.range(3, 14) {
        title.push_str(SYLLABLES[rng.below(SYLLABLES.len())]);
        title.push(' ');
    }
    title.push_str("!drops !discord");
    let muted = if rng.chance(0.2) {
        let from = rng.range(0, i64::from(segments)) as u32;
        from..(from + rng.range(1, 60) as u32).min(segments)
    } else {
        0..0
    };
    let ts = start.to_string();
    let dir = vod_dir(&channel.login, stream_id, &ts);
    let domain = domain_url(channel.domain);
    let playlist = (status == Status::Found).then(|| PlaylistSpec {
        start,
        seconds,
        segments,
        muted: muted.clone(),
    });
    let archive = (status == Status::Found).then(|| ArchiveInfo {
        url: format!("{domain}{dir}/chunked/index-dvr.m3u8"),
        domain: domain.clone(),
        domains: vec![domain.clone()],
        timestamp_form: "unix".to_string(),
        ts,
        duration_seconds: seconds,
        segments,
        muted_segments: muted.len() as u32,
        container: Container::Ts,
        qualities: vec!["chunked".to_string()],
        fetched_at: ended + 120,
        ended: true,
        rebuilt: false,
    });
    let record = StreamRecord {
        start_unix: start,
        stream_id,
        streamer_id: channel.streamer_id,
        login: channel.login.clone(),
        title,
        game_id: game.0.to_string(),
        game_name: game.1.to_string(),
        language: channel.language.to_string(),
        is_mature: rng.chance(0.15),
        max_viewers: (channel.popularity * rng.uniform(0.5, 1.5)) as u32 + 1,
        first_seen: start + rng.range(30, 300),
        last_seen: ended,
        ended_at: Some(ended + 60),
        status,
        public: Some(rng.chance(0.8)),
        probe: ProbeState {
            captured_at: archive.as_ref().map(|a| a.fetched_at),
            probes: 2,
            hour_probe_done: true,
            ..ProbeState::default()
        },
        archive,
    };
    (record, playlist)
}

/// The `#EXTINF`/segment lines of segments 0..`max`, rendered once; unmuted playlists copy a
/// prefix of them (generating a million playlists line by line would dominate the set-up).
pub struct SegmentLines {
    text: String,
    ends: Vec<usize>,
}

impl SegmentLines {
    pub fn new(max: u32) -> SegmentLines {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(max as usize + 1);
        ends.push(0);
        for n in 0..max {
            let _ = write!(text, "#EXTINF:10.000,\n{n}.ts\n");
            ends.push(text.len());
        }
        SegmentLines { text, ends }
    }

    /// A Twitch-shaped media playlist: 10-second segments, a shorter last one, muted ones listed
    /// as `N-unmuted.ts`.
    pub fn playlist(&self, spec: &PlaylistSpec) -> String {
        let tdtg = chrono::DateTime::from_timestamp(spec.start, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default();
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#ID3-EQUIV-TDTG:{tdtg}\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TWITCH-ELAPSED-SECS:0.000\n\
             #EXT-X-TWITCH-TOTAL-SECS:{:.3}\n",
            spec.seconds
        );
        let full = spec.segments.saturating_sub(1);
        if spec.muted.is_empty() {
            s.push_str(&self.text[..self.ends[full as usize]]);
        } else {
            for n in 0..full {
                let suffix = if spec.muted.contains(&n) { "-unmuted" } else { "" };
                let _ = write!(s, "#EXTINF:10.000,\n{n}{suffix}.ts\n");
            }
        }
        let last = spec.seconds - f64::from(full) * 10.0;
        let _ = write!(s, "#EXTINF:{last:.3},\n{full}.ts\n#EXT-X-ENDLIST\n");
        s
    }
}
