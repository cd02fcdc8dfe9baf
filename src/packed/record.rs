//! A compact encoding of stream records: no field names, times as differences from the start
//! (a few bytes instead of five), known domains, timestamp forms and quality folders as codes,
//! and a playlist URL that follows Twitch's path rule reduced to its hash. The key supplies
//! `start_unix` and `stream_id`. Anything that does not fit a shorthand is written out, so
//! every record round-trips exactly; the store checks that before trusting an encoding.
//!
//! The tables below are part of the stored format: entries may be appended, never changed.

use super::{Reader, UnpackError, put_str, put_varint, unzigzag, zigzag};
use crate::playlist::Container;
use crate::record::{ArchiveInfo, Learned, ProbeState, Status, StreamKey, StreamRecord};

/// CDN domains with a one-byte code (the defaults when this format was made). Append only.
const DOMAINS: &[&str] = &[
    "https://vod-secure.twitch.tv/",
    "https://vod-metro.twitch.tv/",
    "https://vod-pop-secure.twitch.tv/",
    "https://d1m7jfoe9zdc1j.cloudfront.net/",
    "https://d1mhjrowxxagfy.cloudfront.net/",
    "https://d1ymi26ma8va5x.cloudfront.net/",
    "https://d2nvs31859zcd8.cloudfront.net/",
    "https://d2vjef5jvl6bfs.cloudfront.net/",
    "https://d3vd9lfkzbru3h.cloudfront.net/",
    "https://dgeft87wbj63p.cloudfront.net/",
    "https://dqrpb9wgowsf5.cloudfront.net/",
    "https://ds0h3roq6wcgc.cloudfront.net/",
    "https://d3fi1amfgojobc.cloudfront.net/",
    "https://d2vi6trrdongqn.cloudfront.net/",
    "https://d3stzm2eumvgb4.cloudfront.net/",
];

/// Timestamp forms. Append only.
const FORMS: &[&str] = &["unix", "unix-1", "second-of-minute"];

/// Quality folders, in the order the probe module lists them. Append only.
const QUALITIES: &[&str] = &[
    "chunked",
    "2160p60",
    "1440p60",
    "1080p60",
    "1080p30",
    "936p60",
    "900p60",
    "720p60",
    "720p30",
    "480p30",
    "360p30",
    "160p30",
    "144p30",
    "audio_only",
    // The fps variants added to the probe module in 2026, appended: a record listing them in
    // the module's order spells its qualities out rather than using the bit set.
    "2160p30",
    "2160p20",
    "1440p30",
    "1440p20",
    "1080p20",
    "720p20",
    "480p60",
    "360p60",
    "160p60",
];

/// Twitch categories with a code: `(game_id, game_name)` as Helix spells them. A record whose
/// pair is not here (the long tail, or a renamed category) spells both out. Append only.
const GAMES: &[(&str, &str)] = &[
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
    ("509659", "ASMR"),
    ("518203", "Sports"),
    ("417752", "Talk Shows & Podcasts"),
    ("491931", "Escape from Tarkov"),
    ("138585", "Hearthstone"),
    ("513143", "Teamfight Tactics"),
    ("30921", "Rocket League"),
    ("493057", "PUBG: BATTLEGROUNDS"),
    ("488190", "Poker"),
    ("263490", "Rust"),
    ("509663", "Special Events"),
    ("", ""),
];

/// Broadcaster languages as Twitch reports them. Append only.
const LANGUAGES: &[&str] = &[
    "en", "es", "de", "pt", "ru", "fr", "ja", "ko", "it", "pl", "tr", "zh", "ar", "nl", "sv", "no", "da",
    "fi", "cs", "hu", "el", "th", "vi", "id", "uk", "ro", "bg", "sk", "ca", "ms", "tl", "hi", "he", "asl",
    "other",
];

/// How a record's game and language are written: tag 2 spelled them out; tag 3 (written now)
/// codes the known ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Spelled,
    Coded,
}

const MATURE: u32 = 1;
const PUBLIC_SHIFT: u32 = 1; // 2 bits: unknown, false, true
const STATUS_SHIFT: u32 = 3; // 2 bits
const HAS_ENDED_AT: u32 = 1 << 5;
const HAS_ARCHIVE: u32 = 1 << 6;
const HAS_NEXT_DUE: u32 = 1 << 7;
const HAS_CAPTURED_AT: u32 = 1 << 8;
const HAS_LEARNED: u32 = 1 << 9;
const HAS_LAST_ERROR: u32 = 1 << 10;
const HOUR_PROBE_DONE: u32 = 1 << 11;
const LEARNED_LIVE: u32 = 1 << 12;
const MISSED_LIVE: u32 = 1 << 13;
const ABSENCE_PROBED: u32 = 1 << 14;
const ALL_FLAGS: u32 = (1 << 15) - 1;

/// In the archive's flag byte, after the container (bit 0) and `ended` (bit 1): appended for
/// rebuilt playlists, so every byte written before reads as not rebuilt.
const REBUILT_SHIFT: u8 = 2;

const PLAYLIST_FILE: &str = "index-dvr.m3u8";
const HASH_BYTES: usize = 10;

fn put_time(out: &mut Vec<u8>, time: i64, start: i64) {
    put_varint(out, zigzag(time.wrapping_sub(start)));
}

/// 0 then the text, or 1 + its index in `table`.
fn put_code(out: &mut Vec<u8>, text: &str, table: &[&str]) {
    match table.iter().position(|known| *known == text) {
        Some(index) => put_varint(out, index as u64 + 1),
        None => {
            put_varint(out, 0);
            put_str(out, text);
        }
    }
}

/// 0 then the text, or 1 when it is the start time written out (the usual `{ts}`).
fn put_ts(out: &mut Vec<u8>, ts: &str, start: i64) {
    if ts == start.to_string() {
        put_varint(out, 1);
    } else {
        put_varint(out, 0);
        put_str(out, ts);
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// The parts of `{domain}{hash}_{login}_{stream_id}_{ts}/{quality}/index-dvr.m3u8`, if the
/// URL is exactly that with a 20-digit lowercase hex hash.
fn url_parts<'a>(
    url: &'a str,
    archive: &ArchiveInfo,
    login: &str,
    stream_id: u64,
) -> Option<([u8; HASH_BYTES], &'a str)> {
    let rest = url.strip_prefix(archive.domain.as_str())?;
    let (hex, rest) = rest.split_at_checked(2 * HASH_BYTES)?;
    let folder_tail = format!("_{login}_{stream_id}_{}/", archive.ts);
    let quality = rest
        .strip_prefix(folder_tail.as_str())?
        .strip_suffix(PLAYLIST_FILE)?
        .strip_suffix('/')?;
    if quality.contains('/') {
        return None;
    }
    let mut hash = [0u8; HASH_BYTES];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        hash[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some((hash, quality))
}

/// The first bytes of sha1(`{login}_{stream_id}_{ts}`): the hash Twitch puts before the rest
/// of a broadcast's folder name.
fn folder_hash(login: &str, stream_id: u64, ts: &str) -> [u8; HASH_BYTES] {
    use sha1::{Digest, Sha1};
    let mut hasher = Sha1::new();
    hasher.update(login.as_bytes());
    hasher.update(b"_");
    hasher.update(stream_id.to_string().as_bytes());
    hasher.update(b"_");
    hasher.update(ts.as_bytes());
    let digest = hasher.finalize();
    let mut hash = [0u8; HASH_BYTES];
    hash.copy_from_slice(&digest[..HASH_BYTES]);
    hash
}

fn put_duration(out: &mut Vec<u8>, seconds: f64) {
    let millis = (seconds * 1000.0).round();
    if seconds.is_finite()
        && seconds.is_sign_positive()
        && (0.0..1e15).contains(&millis)
        && (millis / 1000.0).to_bits() == seconds.to_bits()
    {
        put_varint(out, 1);
        put_varint(out, millis as u64);
    } else {
        put_varint(out, 0);
        out.extend_from_slice(&seconds.to_bits().to_le_bytes());
    }
}

/// Encodes `record` in the [`Layout::Coded`] layout (its key is not written: the store's key
/// holds it).
pub fn pack_record(record: &StreamRecord) -> Vec<u8> {
    pack_in(record, Layout::Coded)
}

/// Encodes `record` in `layout` (tests write the older layout to check it stays readable).
pub fn pack_in(record: &StreamRecord, layout: Layout) -> Vec<u8> {
    let start = record.start_unix;
    let probe = &record.probe;
    let mut flags = u32::from(record.is_mature) * MATURE;
    flags |= match record.public {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    } << PUBLIC_SHIFT;
    flags |= match record.status {
        Status::Live => 0,
        Status::Pending => 1,
        Status::Found => 2,
        Status::NotFound => 3,
    } << STATUS_SHIFT;
    let mut set = |present: bool, flag: u32| {
        if present {
            flags |= flag;
        }
    };
    set(record.ended_at.is_some(), HAS_ENDED_AT);
    set(record.archive.is_some(), HAS_ARCHIVE);
    set(probe.next_due.is_some(), HAS_NEXT_DUE);
    set(probe.captured_at.is_some(), HAS_CAPTURED_AT);
    set(probe.learned.is_some(), HAS_LEARNED);
    set(probe.last_error.is_some(), HAS_LAST_ERROR);
    set(probe.hour_probe_done, HOUR_PROBE_DONE);
    set(probe.learned_live, LEARNED_LIVE);
    set(probe.missed_live, MISSED_LIVE);
    set(probe.absence_probed, ABSENCE_PROBED);
    let mut out = Vec::with_capacity(160);
    put_varint(&mut out, u64::from(flags));
    put_varint(&mut out, record.streamer_id);
    put_str(&mut out, &record.login);
    put_str(&mut out, &record.title);
    let game = GAMES
        .iter()
        .position(|(id, name)| *id == record.game_id && *name == record.game_name);
    match (layout, game) {
        (Layout::Coded, Some(index)) => put_varint(&mut out, index as u64 + 1),
        (Layout::Coded, None) => {
            put_varint(&mut out, 0);
            put_str(&mut out, &record.game_id);
            put_str(&mut out, &record.game_name);
        }
        (Layout::Spelled, _) => {
            put_str(&mut out, &record.game_id);
            put_str(&mut out, &record.game_name);
        }
    }
    match layout {
        Layout::Coded => put_code(&mut out, &record.language, LANGUAGES),
        Layout::Spelled => put_str(&mut out, &record.language),
    }
    put_varint(&mut out, u64::from(record.max_viewers));
    put_time(&mut out, record.first_seen, start);
    put_time(&mut out, record.last_seen, start);
    if let Some(ended_at) = record.ended_at {
        put_time(&mut out, ended_at, start);
    }
    if let Some(next_due) = probe.next_due {
        put_time(&mut out, next_due, start);
    }
    put_varint(&mut out, u64::from(probe.misses));
    put_varint(&mut out, u64::from(probe.inconclusive));
    put_varint(&mut out, u64::from(probe.probes));
    if let Some(captured_at) = probe.captured_at {
        put_time(&mut out, captured_at, start);
    }
    if let Some(learned) = &probe.learned {
        put_code(&mut out, &learned.domain, DOMAINS);
        put_code(&mut out, &learned.form, FORMS);
        put_ts(&mut out, &learned.ts, start);
    }
    if let Some(error) = &probe.last_error {
        put_str(&mut out, error);
    }
    if let Some(archive) = &record.archive {
        put_code(&mut out, &archive.domain, DOMAINS);
        if archive.domains.len() == 1 && archive.domains[0] == archive.domain {
            put_varint(&mut out, 0);
        } else {
            put_varint(&mut out, archive.domains.len() as u64 + 1);
            for domain in &archive.domains {
                put_code(&mut out, domain, DOMAINS);
            }
        }
        put_code(&mut out, &archive.timestamp_form, FORMS);
        put_ts(&mut out, &archive.ts, start);
        match url_parts(&archive.url, archive, &record.login, record.stream_id) {
            // Twitch's rule: the hash is the start of sha1 of the rest of the folder name, so
            // the decoder can compute it instead of reading 10 bytes.
            Some((hash, quality)) if hash == folder_hash(&record.login, record.stream_id, &archive.ts) => {
                put_varint(&mut out, 2);
                put_code(&mut out, quality, QUALITIES);
            }
            Some((hash, quality)) => {
                put_varint(&mut out, 1);
                out.extend_from_slice(&hash);
                put_code(&mut out, quality, QUALITIES);
            }
            None => {
                put_varint(&mut out, 0);
                put_str(&mut out, &archive.url);
            }
        }
        put_duration(&mut out, archive.duration_seconds);
        put_varint(&mut out, u64::from(archive.segments));
        put_varint(&mut out, u64::from(archive.muted_segments));
        let container = match archive.container {
            Container::Ts => 0,
            Container::Fmp4 => 1,
        };
        out.push(container | u8::from(archive.ended) << 1 | u8::from(archive.rebuilt) << REBUILT_SHIFT);
        let in_order: Vec<&str> = QUALITIES
            .iter()
            .copied()
            .filter(|known| archive.qualities.iter().any(|q| q == known))
            .collect();
        if in_order.len() == archive.qualities.len()
            && in_order.iter().zip(&archive.qualities).all(|(a, b)| *a == b)
        {
            let bits = QUALITIES
                .iter()
                .enumerate()
                .filter(|(_, known)| in_order.contains(known))
                .fold(0u64, |bits, (i, _)| bits | 1 << i);
            put_varint(&mut out, bits << 1 | 1);
        } else {
            put_varint(&mut out, (archive.qualities.len() as u64) << 1);
            for quality in &archive.qualities {
                put_str(&mut out, quality);
            }
        }
        put_time(&mut out, archive.fetched_at, start);
    }
    out
}

impl Reader<'_> {
    fn str(&mut self) -> Result<String, UnpackError> {
        self.text().map(str::to_string)
    }

    fn time(&mut self, start: i64) -> Result<i64, UnpackError> {
        Ok(start.wrapping_add(unzigzag(self.varint()?)))
    }

    fn small(&mut self) -> Result<u32, UnpackError> {
        u32::try_from(self.varint()?).map_err(|_| UnpackError::Invalid("a count past 32 bits"))
    }

    fn code(&mut self, table: &[&str]) -> Result<String, UnpackError> {
        match self.varint()? {
            0 => self.str(),
            code => table
                .get(usize::try_from(code - 1).unwrap_or(usize::MAX))
                .map(|known| known.to_string())
                .ok_or(UnpackError::Invalid("unknown code")),
        }
    }

    fn ts(&mut self, start: i64) -> Result<String, UnpackError> {
        match self.varint()? {
            0 => self.str(),
            1 => Ok(start.to_string()),
            _ => Err(UnpackError::Invalid("timestamp code")),
        }
    }
}

/// Decodes what [`pack_record`] (or, for [`Layout::Spelled`], an older binary) wrote for the
/// record at `key`.
pub fn unpack_record(key: StreamKey, bytes: &[u8], layout: Layout) -> Result<StreamRecord, UnpackError> {
    let (start, stream_id) = key;
    let mut r = Reader { bytes, at: 0 };
    let flags = r.small()?;
    if flags & !ALL_FLAGS != 0 {
        return Err(UnpackError::Invalid("flags"));
    }
    let has = |flag: u32| flags & flag != 0;
    let streamer_id = r.varint()?;
    let login = r.str()?;
    let title = r.str()?;
    let (game_id, game_name, language) = match layout {
        Layout::Spelled => (r.str()?, r.str()?, r.str()?),
        Layout::Coded => {
            let (game_id, game_name) = match r.varint()? {
                0 => (r.str()?, r.str()?),
                code => GAMES
                    .get(usize::try_from(code - 1).unwrap_or(usize::MAX))
                    .map(|(id, name)| (id.to_string(), name.to_string()))
                    .ok_or(UnpackError::Invalid("unknown game code"))?,
            };
            (game_id, game_name, r.code(LANGUAGES)?)
        }
    };
    let max_viewers = r.small()?;
    let first_seen = r.time(start)?;
    let last_seen = r.time(start)?;
    let ended_at = if has(HAS_ENDED_AT) {
        Some(r.time(start)?)
    } else {
        None
    };
    let next_due = if has(HAS_NEXT_DUE) {
        Some(r.time(start)?)
    } else {
        None
    };
    let misses = r.small()?;
    let inconclusive = r.small()?;
    let probes = r.small()?;
    let captured_at = if has(HAS_CAPTURED_AT) {
        Some(r.time(start)?)
    } else {
        None
    };
    let learned = if has(HAS_LEARNED) {
        Some(Learned {
            domain: r.code(DOMAINS)?,
            form: r.code(FORMS)?,
            ts: r.ts(start)?,
        })
    } else {
        None
    };
    let last_error = if has(HAS_LAST_ERROR) { Some(r.str()?) } else { None };
    let archive = if has(HAS_ARCHIVE) {
        let domain = r.code(DOMAINS)?;
        let domains = match r.varint()? {
            0 => vec![domain.clone()],
            n => {
                let count = usize::try_from(n - 1).map_err(|_| UnpackError::Invalid("count"))?;
                if count > bytes.len() {
                    return Err(UnpackError::Invalid("more domains than bytes"));
                }
                (0..count).map(|_| r.code(DOMAINS)).collect::<Result<_, _>>()?
            }
        };
        let timestamp_form = r.code(FORMS)?;
        let ts = r.ts(start)?;
        let url = match r.varint()? {
            0 => r.str()?,
            code @ (1 | 2) => {
                let derived;
                let hash = if code == 1 {
                    r.take(HASH_BYTES)?
                } else {
                    derived = folder_hash(&login, stream_id, &ts);
                    &derived[..]
                };
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let quality = r.code(QUALITIES)?;
                let id = stream_id.to_string();
                let mut url = String::with_capacity(
                    domain.len() + 2 * HASH_BYTES + login.len() + id.len() + ts.len() + quality.len() + 20,
                );
                url.push_str(&domain);
                for &byte in hash {
                    url.push(char::from(HEX[usize::from(byte >> 4)]));
                    url.push(char::from(HEX[usize::from(byte & 15)]));
                }
                for part in ["_", &login, "_", &id, "_", &ts, "/", &quality, "/", PLAYLIST_FILE] {
                    url.push_str(part);
                }
                url
            }
            _ => return Err(UnpackError::Invalid("url code")),
        };
        let duration_seconds = match r.varint()? {
            1 => r.varint()? as f64 / 1000.0,
            0 => {
                let raw = r.take(8)?;
                f64::from_bits(u64::from_le_bytes(
                    raw.try_into().map_err(|_| UnpackError::Truncated)?,
                ))
            }
            _ => return Err(UnpackError::Invalid("duration code")),
        };
        let segments = r.small()?;
        let muted_segments = r.small()?;
        let bits = r.byte()?;
        if bits >> (REBUILT_SHIFT + 1) != 0 {
            return Err(UnpackError::Invalid("archive flags"));
        }
        let container = if bits & 1 == 0 {
            Container::Ts
        } else {
            Container::Fmp4
        };
        let qualities_code = r.varint()?;
        let qualities = if qualities_code & 1 == 1 {
            let bits = qualities_code >> 1;
            if bits >> QUALITIES.len() != 0 {
                return Err(UnpackError::Invalid("quality bits"));
            }
            QUALITIES
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, q)| q.to_string())
                .collect()
        } else {
            let count = usize::try_from(qualities_code >> 1).map_err(|_| UnpackError::Invalid("count"))?;
            if count > bytes.len() {
                return Err(UnpackError::Invalid("more qualities than bytes"));
            }
            (0..count).map(|_| r.str()).collect::<Result<_, _>>()?
        };
        Some(ArchiveInfo {
            domain,
            domains,
            timestamp_form,
            ts,
            url,
            duration_seconds,
            segments,
            muted_segments,
            container,
            qualities,
            fetched_at: r.time(start)?,
            ended: bits & 2 != 0,
            rebuilt: bits >> REBUILT_SHIFT & 1 != 0,
        })
    } else {
        None
    };
    if r.at != bytes.len() {
        return Err(UnpackError::Invalid("trailing bytes"));
    }
    Ok(StreamRecord {
        start_unix: start,
        stream_id,
        streamer_id,
        login,
        title,
        game_id,
        game_name,
        language,
        is_mature: has(MATURE),
        max_viewers,
        first_seen,
        last_seen,
        ended_at,
        status: match (flags >> STATUS_SHIFT) & 3 {
            0 => Status::Live,
            1 => Status::Pending,
            2 => Status::Found,
            _ => Status::NotFound,
        },
        public: match (flags >> PUBLIC_SHIFT) & 3 {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(UnpackError::Invalid("public flag")),
        },
        probe: ProbeState {
            next_due,
            misses,
            inconclusive,
            probes,
            hour_probe_done: has(HOUR_PROBE_DONE),
            learned_live: has(LEARNED_LIVE),
            missed_live: has(MISSED_LIVE),
            captured_at,
            absence_probed: has(ABSENCE_PROBED),
            learned,
            last_error,
        },
        archive,
    })
}
